//! The load generator of LLM Schema Registry: drives a **running** registry over HTTP and
//! reports client-observed latency, throughput, errors, the server's cache hit rate during the
//! run and the client's own CPU use.
//!
//! # Modules
//! - [`args`]: [`LoadTestArgs`] (the flags), the duration and mix parsers.
//! - [`cli`]: the program behind the `llm-schema-registry-load-test` binary and
//!   `examples/load_test.rs`: parse the flags, [`run`], print the [`Report`].
//! - `seed`: registering the data set and listing it back (the catalogue of keys).
//! - `sampler`: Zipf/uniform key sampling over keys in popularity order.
//! - `worker`: the workers, per-task statistics and their merge.
//! - `report`: [`Report`] and its table; `cpu`: `/proc/self/stat`; `http`: client, probe, stats;
//!   `progress`: the indicatif bars.
//!
//! Beside them, `examples/bare_axum.rs` is the HTTP ceiling of `docs/PERFORMANCE.md`: a bare axum
//! server that answers one route with the bytes and headers of a real record.
//!
//! # Running it
//! - `cargo run --release -p llm-schema-registry-loadtest -- --duration 60s --concurrency 100`
//!   (the `llm-schema-registry-load-test` binary; `--help` lists every flag);
//! - `cargo run --release --example load_test -- …`, the same program as an example;
//! - `llm-schema-registry load-test …`, which runs the `llm-schema-registry-load-test` binary
//!   found in the server binary's directory.
//!
//! # What it measures
//! Client-observed latency (p50/p95/p99/max, per operation kind: fetch by id, `latest`, exact
//! version, search, register) and throughput of `--concurrency` workers, each with one request
//! in flight, for `--duration` or `--operations`: as fast as answers come back (a closed loop),
//! or at a fixed `--rate` with latency counted from when each operation was released (an open loop:
//! the way to measure latency at a given load; see `worker`). Keys follow a Zipf (default)
//! or uniform distribution over a data set that is seeded through the API first, so reads hit a
//! realistic mix of hot and cold entries. Around the run it snapshots `GET /api/v1/stats` to
//! report the server's cache hit rate *during the run*, and reads its own CPU time from
//! `/proc/self/stat` so the report shows whether the client, rather than the server, was the
//! limit (a client near 100 % of its cores measures itself).
//!
//! # Why the client is built this way
//! - **One pooled `reqwest::Client`**, HTTP/1.1 keep-alive with at least one idle connection per
//!   worker and `TCP_NODELAY`: after warm-up no request pays a TCP handshake or Nagle delay, so
//!   latency is the server's plus one loopback round trip.
//! - **Per-task HDR histograms** (µs, 3 significant digits, auto-resizing), merged once at the
//!   end: recording is a few arithmetic operations on memory the task owns; no lock or shared
//!   cache line on the hot path besides relaxed counters for the progress bar.
//! - **Requests are prepared cheaply**: keys are pre-encoded URL paths, the search URL is built
//!   once; only `register` serialises a body.
//! - Every response body is read to the end, so connections return to the pool and the timing
//!   covers the whole response.
//!
//! Note: `/proc/self/stat` covers the whole process: when a program calls [`run`] with the server
//! in the same process, the CPU figure includes the server's.

pub mod args;
pub mod cli;
mod cpu;
mod http;
mod progress;
mod report;
mod sampler;
mod seed;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

pub use args::{parse_duration, KeyDistribution, LoadTestArgs, Mix, OpKind};
pub use cpu::CpuReport;
pub use report::{CacheDelta, CacheReport, ConfigEcho, Latency, OpReport, Report};
pub use seed::SeedReport;
pub use worker::StopReason;

/// Prepares the data set, runs the load, and returns the report. Fails (without panicking) when
/// the options are inconsistent, the server is unreachable, or seeding fails; errors of
/// individual operations during the run are counted in the report instead.
pub async fn run(args: LoadTestArgs) -> anyhow::Result<Report> {
    validate(&args)?;
    let base = http::normalize_target(&args.target)?;
    let client = http::build_client(args.concurrency, Duration::from_millis(args.timeout_ms))?;
    http::probe(&client, &base).await?;
    let show_progress = progress::enabled(args.no_progress);
    let search_query = search_word(&args.subject_prefix);
    let mut warnings: Vec<String> = debug_build_warning().into_iter().collect();

    let mut seeding = if args.skip_seed {
        seed::skipped(args.schemas, args.subjects)
    } else {
        seed::seed(&client, &base, &args, show_progress).await?
    };
    let mut report = Report {
        target: base.clone(),
        config: report::ConfigEcho::new(&args, &search_query),
        seeding: seeding.clone(),
        stop_reason: None,
        wall_secs: 0.0,
        total_operations: 0,
        total_errors: 0,
        throughput_ops_per_sec: 0.0,
        latency_us: None,
        ops: Vec::new(),
        cache: None,
        server_stats: None,
        client_cpu: None,
        warnings: Vec::new(),
    };
    if args.seed_only {
        let stats = stats_or_warn(&client, &base, "after seeding", &mut warnings).await;
        report.server_stats = stats.map(without_cache);
        report.warnings = warnings;
        return Ok(report);
    }

    let (catalogue, catalogue_secs) =
        seed::load_catalogue(&client, &base, &args.subject_prefix, args.subjects).await?;
    seeding.catalogue_versions = catalogue.entries.len();
    seeding.catalogue_subjects = catalogue.subjects.len();
    seeding.catalogue_secs = catalogue_secs;
    report.seeding = seeding;
    let plan = Arc::new(worker::Plan::new(
        &base,
        &catalogue,
        args.mix.clone(),
        args.distribution,
        args.zipf_exponent,
        &search_query,
        args.payload_bytes,
    )?);
    drop(catalogue);

    let before = stats_or_warn(&client, &base, "before the run", &mut warnings).await;
    let cpu_before = cpu::sample();
    let drive = worker::Drive {
        concurrency: args.concurrency,
        duration: args.duration,
        max_ops: args.operations,
        rate: args.rate,
    };
    let outcome = worker::run_workers(&client, plan, drive, show_progress).await?;
    let cpu_after = cpu::sample();
    let after = stats_or_warn(&client, &base, "after the run", &mut warnings).await;

    let wall_secs = outcome.wall.as_secs_f64();
    let (ops, latency_us) = report::op_reports(&args.mix, &outcome);
    report.stop_reason = Some(outcome.stop);
    report.wall_secs = wall_secs;
    report.total_operations = ops.iter().map(|o| o.operations).sum();
    report.total_errors = ops.iter().map(|o| o.errors).sum();
    report.throughput_ops_per_sec = seed::rate(report.total_operations, wall_secs);
    report.latency_us = latency_us;
    report.ops = ops;
    if let Some(rate) = args.rate {
        if let Some(warning) = fell_behind(rate, report.throughput_ops_per_sec, outcome.stop) {
            warnings.push(warning);
        }
    }
    report.cache = report::cache_report(before.as_ref(), after.as_ref());
    report.server_stats = after.map(without_cache);
    report.client_cpu = match (cpu_before, cpu_after) {
        (Some(b), Some(a)) => Some(cpu::report(b, a, wall_secs)),
        _ => None,
    };
    if let Some(warning) = report.client_cpu.as_ref().and_then(saturated) {
        warnings.push(warning);
    }
    report.warnings = warnings;
    Ok(report)
}

/// The warning a debug build of this client puts in its report: unoptimised, it spends more
/// time on itself than a server does on a request, so its figures measure the client.
fn debug_build_warning() -> Option<String> {
    cfg!(debug_assertions).then(|| {
        "this client is a debug build: its throughput and latencies measure the client more \
         than the server; build it with --release"
            .to_string()
    })
}

/// Share of its cores above which the client, not the server, may be the bottleneck.
const SATURATED_PERCENT: f64 = 85.0;

/// A warning when the client kept its cores (nearly) busy over the run: the server may have
/// been waiting for it, and the report then understates the server.
fn saturated(cpu: &CpuReport) -> Option<String> {
    (cpu.percent_of_all_cores >= SATURATED_PERCENT).then(|| {
        format!(
            "the client saturated its CPU ({:.0} % of {} cores over the run): the figures may \
             measure the client, not the server; run it on other cores or another machine, or \
             lower --concurrency",
            cpu.percent_of_all_cores, cpu.cores
        )
    })
}

/// A warning when an open-loop run that ran its full duration did not reach 98 % of `--rate`:
/// the server (or this client) could not keep up, and the latencies include the backlog.
fn fell_behind(rate: u64, achieved: f64, stop: StopReason) -> Option<String> {
    let target = rate as f64;
    (stop == StopReason::Duration && achieved < 0.98 * target).then(|| {
        format!(
            "the open loop fell behind: {achieved:.0} ops/s done against --rate {rate} \
             ({:.0} %); the latencies include the queue that built up, but operations still \
             queued or in flight at the end (the slowest) are not counted, nor releases held \
             back once about a million were waiting",
            100.0 * achieved / target
        )
    })
}

/// Checks what clap cannot: options that depend on each other.
fn validate(args: &LoadTestArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.subjects <= args.schemas,
        "--subjects ({}) cannot exceed --schemas ({}): every subject needs a version",
        args.subjects,
        args.schemas
    );
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    anyhow::ensure!(!args.duration.is_zero(), "--duration must be above zero");
    anyhow::ensure!(args.timeout_ms > 0, "--timeout-ms must be at least 1");
    Ok(())
}

/// The `q` of the search operation: the longest word (3+ ASCII letters or digits) of the subject
/// prefix, which every seeded subject contains; otherwise `loadtest`, which every seeded
/// document's description contains.
fn search_word(prefix: &str) -> String {
    prefix
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| w.len() >= 3)
        .max_by_key(|w| w.len())
        .unwrap_or("loadtest")
        .to_string()
}

/// `/api/v1/stats`, or a warning when it cannot be had.
async fn stats_or_warn(
    client: &reqwest::Client,
    base: &str,
    when: &str,
    warnings: &mut Vec<String>,
) -> Option<Value> {
    match http::fetch_stats(client, base).await {
        Ok(v) => Some(v),
        Err(e) => {
            warnings.push(format!("no server statistics {when}: {e:#}"));
            None
        }
    }
}

fn without_cache(mut stats: Value) -> Value {
    if let Some(map) = stats.as_object_mut() {
        map.remove("cache");
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_loop_that_fell_behind_says_so() {
        assert_eq!(fell_behind(1000, 990.0, StopReason::Duration), None);
        let warning = fell_behind(1000, 700.0, StopReason::Duration).expect("a warning");
        assert!(
            warning.contains("700 ops/s") && warning.contains("70 %"),
            "{warning}"
        );
        // A run cut short by --operations or Ctrl-C is not judged by its rate.
        assert_eq!(fell_behind(1000, 10.0, StopReason::Operations), None);
        assert_eq!(fell_behind(1000, 10.0, StopReason::Interrupted), None);
    }

    #[test]
    fn a_client_that_saturated_its_cores_says_so() {
        let cpu = |percent_of_all_cores: f64| CpuReport {
            user_secs: 1.0,
            system_secs: 1.0,
            cpu_secs: 2.0,
            percent_of_one_core: percent_of_all_cores * 2.0,
            cores: 2,
            percent_of_all_cores,
        };
        assert_eq!(saturated(&cpu(40.0)), None);
        let warning = saturated(&cpu(97.0)).expect("a warning");
        assert!(warning.contains("97 % of 2 cores"), "{warning}");
    }

    #[test]
    fn a_debug_build_says_so() {
        assert_eq!(debug_build_warning().is_some(), cfg!(debug_assertions));
    }

    #[test]
    fn the_search_word_comes_from_the_prefix() {
        assert_eq!(search_word("loadtest."), "loadtest");
        assert_eq!(search_word("team/perf-orders."), "orders");
        assert_eq!(search_word("a."), "loadtest");
        assert_eq!(search_word(""), "loadtest");
    }
}
