//! The report: what was run, how fast, how slow, what failed, what the server's cache did and
//! what the client itself cost. Serialisable as JSON; [`Report::print_table`] for people.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::Value;

use super::args::{format_duration, KeyDistribution, LoadTestArgs, Mix, OpKind};
use super::cpu::CpuReport;
use super::seed::{rate, SeedReport};
use super::worker::{OpStats, RunOutcome, StopReason};

/// The result of a load test.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The registry that was driven.
    pub target: String,
    /// The options of the run.
    pub config: ConfigEcho,
    /// What seeding did.
    pub seeding: SeedReport,
    /// Why the run ended; `None` with `--seed-only`.
    pub stop_reason: Option<StopReason>,
    /// Wall time of the run (seeding excluded), seconds.
    pub wall_secs: f64,
    /// Operations completed, successful or not.
    pub total_operations: u64,
    /// Operations that failed (non-2xx or transport error).
    pub total_errors: u64,
    /// `total_operations / wall_secs`.
    pub throughput_ops_per_sec: f64,
    /// Latency of every successful operation, all kinds together (µs).
    pub latency_us: Option<Latency>,
    /// Per operation kind (those with a weight above 0).
    pub ops: Vec<OpReport>,
    /// The server's cache over the run; `None` when the server reports no cache.
    pub cache: Option<CacheReport>,
    /// `GET /api/v1/stats` after the run, without its `cache` object.
    pub server_stats: Option<Value>,
    /// CPU the client (this process) used during the run; `None` off Linux.
    pub client_cpu: Option<CpuReport>,
    /// Things that did not stop the run but limit the report.
    pub warnings: Vec<String>,
}

/// The options, echoed.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigEcho {
    pub duration: String,
    pub duration_secs: f64,
    pub concurrency: usize,
    /// `None`: unlimited.
    pub operations: Option<u64>,
    /// Operations released per second (open loop); `None`: closed loop.
    pub rate: Option<u64>,
    pub mix: Mix,
    pub distribution: KeyDistribution,
    pub zipf_exponent: f64,
    pub schemas: usize,
    pub subjects: usize,
    pub subject_prefix: String,
    pub payload_bytes: usize,
    pub timeout_ms: u64,
    pub seed_only: bool,
    pub skip_seed: bool,
    /// The `q` of the `search` operation.
    pub search_query: String,
}

impl ConfigEcho {
    pub(crate) fn new(args: &LoadTestArgs, search_query: &str) -> ConfigEcho {
        ConfigEcho {
            duration: format_duration(args.duration),
            duration_secs: args.duration.as_secs_f64(),
            concurrency: args.concurrency,
            operations: args.operations,
            rate: args.rate,
            mix: args.mix.clone(),
            distribution: args.distribution,
            zipf_exponent: args.zipf_exponent,
            schemas: args.schemas,
            subjects: args.subjects,
            subject_prefix: args.subject_prefix.clone(),
            payload_bytes: args.payload_bytes,
            timeout_ms: args.timeout_ms,
            seed_only: args.seed_only,
            skip_seed: args.skip_seed,
            search_query: search_query.to_string(),
        }
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    pub min: u64,
    pub mean: f64,
    pub p50: u64,
    pub p95: u64,
    pub p99: u64,
    pub max: u64,
}

impl Latency {
    /// `None` for an empty histogram.
    pub(crate) fn of(h: &Histogram<u64>) -> Option<Latency> {
        (!h.is_empty()).then(|| Latency {
            min: h.min(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.50),
            p95: h.value_at_quantile(0.95),
            p99: h.value_at_quantile(0.99),
            max: h.max(),
        })
    }
}

/// One operation kind.
#[derive(Debug, Clone, Serialize)]
pub struct OpReport {
    pub op: OpKind,
    pub weight: u32,
    /// Completed, successful or not.
    pub operations: u64,
    pub ok: u64,
    pub errors: u64,
    /// `operations / wall_secs`.
    pub throughput_ops_per_sec: f64,
    /// Of the successful ones, µs.
    pub latency_us: Option<Latency>,
    /// Failures by kind (`HTTP 503`, `timeout`, …).
    pub error_kinds: BTreeMap<String, u64>,
    /// The first failure's message.
    pub sample_error: Option<String>,
}

/// The server's cache counters over the run.
#[derive(Debug, Clone, Serialize)]
pub struct CacheReport {
    /// After minus before; `None` when the snapshot before the run is missing.
    pub run: Option<CacheDelta>,
    /// The `cache` object of `GET /api/v1/stats` after the run, as the server sent it.
    pub after: Value,
}

/// Cache lookups during the run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CacheDelta {
    pub l1_hits: u64,
    pub l2_hits: u64,
    pub misses: u64,
    pub lookups: u64,
    /// `(l1_hits + l2_hits) / lookups`, 0 without lookups.
    pub hit_rate: f64,
}

/// The cache section from the `/api/v1/stats` snapshots before and after the run.
pub(crate) fn cache_report(before: Option<&Value>, after: Option<&Value>) -> Option<CacheReport> {
    let after_cache = after?.get("cache")?.clone();
    let run = before.and_then(|b| b.get("cache")).map(|before_cache| {
        let diff = |field: &str| {
            let read = |v: &Value| v.get(field).and_then(Value::as_u64).unwrap_or(0);
            read(&after_cache).saturating_sub(read(before_cache))
        };
        let (l1_hits, l2_hits, misses) = (diff("l1_hits"), diff("l2_hits"), diff("misses"));
        let lookups = l1_hits + l2_hits + misses;
        CacheDelta {
            l1_hits,
            l2_hits,
            misses,
            lookups,
            hit_rate: if lookups > 0 {
                (l1_hits + l2_hits) as f64 / lookups as f64
            } else {
                0.0
            },
        }
    });
    Some(CacheReport {
        run,
        after: after_cache,
    })
}

/// Per-kind reports and overall latency from the merged run.
pub(crate) fn op_reports(mix: &Mix, outcome: &RunOutcome) -> (Vec<OpReport>, Option<Latency>) {
    let wall = outcome.wall.as_secs_f64();
    let mut all: Option<Histogram<u64>> = None;
    let mut reports = Vec::new();
    for kind in OpKind::ALL {
        let stats: &OpStats = &outcome.stats.ops[kind as usize];
        let errors = stats.error_count();
        if mix.weight(kind) == 0 && stats.ok + errors == 0 {
            continue;
        }
        match &mut all {
            None => all = Some(stats.latency.clone()),
            Some(h) => {
                let _ = h.add(&stats.latency);
            }
        }
        reports.push(OpReport {
            op: kind,
            weight: mix.weight(kind),
            operations: stats.ok + errors,
            ok: stats.ok,
            errors,
            throughput_ops_per_sec: rate(stats.ok + errors, wall),
            latency_us: Latency::of(&stats.latency),
            error_kinds: stats.errors.clone(),
            sample_error: stats.sample_error.clone(),
        });
    }
    (reports, all.as_ref().and_then(Latency::of))
}

impl Report {
    /// Prints the report as a table on stdout.
    pub fn print_table(&self) -> std::io::Result<()> {
        write_out(&self.table())
    }

    /// Prints the table, or the report as pretty JSON when `as_json`.
    pub fn print(&self, as_json: bool) -> anyhow::Result<()> {
        if as_json {
            write_out(&format!("{}\n", serde_json::to_string_pretty(self)?))?;
        } else {
            self.print_table()?;
        }
        Ok(())
    }

    /// The table [`Report::print_table`] prints.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        let c = &self.config;
        line(format!(
            "LLM Schema Registry load test against {}",
            self.target
        ));
        line(format!(
            "config:   {} workers, {}{}, {}, mix {}, keys {}, payload {} B, timeout {} ms",
            c.concurrency,
            c.duration,
            c.operations
                .map(|n| format!(" or {n} operations"))
                .unwrap_or_default(),
            c.rate.map_or_else(
                || "closed loop".to_string(),
                |r| format!("open loop at {r} ops/s")
            ),
            c.mix,
            match c.distribution {
                KeyDistribution::Zipf => format!("zipf (s = {})", c.zipf_exponent),
                KeyDistribution::Uniform => "uniform".to_string(),
            },
            c.payload_bytes,
            c.timeout_ms,
        ));
        let s = &self.seeding;
        if s.skipped {
            line("seeding:  skipped (--skip-seed)".to_string());
        } else {
            line(format!(
                "seeding:  {} versions over {} subjects `{}*`: {} registrations ({} created, {} already present, {} subjects reused) in {:.2} s = {:.1} registrations/s ({} at once)",
                s.target_versions,
                s.subjects,
                c.subject_prefix,
                s.registrations,
                s.created,
                s.already_present,
                s.subjects_reused,
                s.secs,
                s.registrations_per_sec,
                s.concurrency,
            ));
        }
        if s.catalogue_versions > 0 {
            line(format!(
                "data set: {} live versions in {} subjects (listed in {:.2} s); search q={:?}",
                s.catalogue_versions, s.catalogue_subjects, s.catalogue_secs, c.search_query
            ));
        }
        let Some(stop) = self.stop_reason else {
            line("run:      none (--seed-only)".to_string());
            for w in &self.warnings {
                line(format!("warning:  {w}"));
            }
            return out;
        };
        line(format!(
            "run:      {:.2} s wall, {} operations, {:.1} ops/s, {} errors (stopped by {})",
            self.wall_secs,
            self.total_operations,
            self.throughput_ops_per_sec,
            self.total_errors,
            match stop {
                StopReason::Duration => "--duration",
                StopReason::Operations => "--operations",
                StopReason::Interrupted => "Ctrl-C",
            }
        ));
        line(String::new());
        line(format!(
            "{:<15} {:>6} {:>9} {:>9} {:>7} | {:>8} {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} {:>8}",
            "operation",
            "weight",
            "ops",
            "ops/s",
            "errors",
            "p50 µs",
            "p95 µs",
            "p99 µs",
            "max µs",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms",
        ));
        let row = |name: &str,
                   weight: String,
                   ops: u64,
                   rate: f64,
                   errors: u64,
                   l: Option<Latency>| {
            let (us, ms): (Vec<String>, Vec<String>) = match l {
                Some(l) => [l.p50, l.p95, l.p99, l.max]
                    .iter()
                    .map(|v| (v.to_string(), format!("{:.2}", *v as f64 / 1000.0)))
                    .unzip(),
                None => (vec!["-".into(); 4], vec!["-".into(); 4]),
            };
            format!(
                "{:<15} {:>6} {:>9} {:>9.1} {:>7} | {:>8} {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} {:>8}",
                name, weight, ops, rate, errors, us[0], us[1], us[2], us[3], ms[0], ms[1], ms[2], ms[3],
            )
        };
        for op in &self.ops {
            line(row(
                op.op.name(),
                op.weight.to_string(),
                op.operations,
                op.throughput_ops_per_sec,
                op.errors,
                op.latency_us,
            ));
        }
        line(row(
            "all",
            String::new(),
            self.total_operations,
            self.throughput_ops_per_sec,
            self.total_errors,
            self.latency_us,
        ));
        line("latency: successful operations only".to_string());
        for op in self.ops.iter().filter(|o| o.errors > 0) {
            let kinds: Vec<String> = op
                .error_kinds
                .iter()
                .map(|(k, n)| format!("{k} × {n}"))
                .collect();
            line(format!(
                "errors:   {}: {}; first: {}",
                op.op,
                kinds.join(", "),
                op.sample_error.as_deref().unwrap_or("?")
            ));
        }
        line(String::new());
        match &self.cache {
            Some(cache) => {
                if let Some(d) = cache.run {
                    line(format!(
                        "cache (server, during the run): {} lookups, {} L1 hits, {} L2 hits, {} misses, hit rate {:.1} %",
                        d.lookups, d.l1_hits, d.l2_hits, d.misses, d.hit_rate * 100.0
                    ));
                }
                line(format!(
                    "cache (server, after the run):  {}",
                    compact(&cache.after)
                ));
            }
            None => line("cache:    the server reports no cache".to_string()),
        }
        if let Some(stats) = &self.server_stats {
            line(format!("server:   {}", compact(stats)));
        }
        match &self.client_cpu {
            Some(cpu) => line(format!(
                "client:   {:.2} s CPU ({:.2} user, {:.2} system) = {:.0} % of one core, {:.0} % of {} cores over the run",
                cpu.cpu_secs,
                cpu.user_secs,
                cpu.system_secs,
                cpu.percent_of_one_core,
                cpu.percent_of_all_cores,
                cpu.cores
            )),
            None => line("client:   CPU use unknown (no /proc/self/stat)".to_string()),
        }
        for w in &self.warnings {
            line(format!("warning:  {w}"));
        }
        out
    }
}

/// `{"a":1,"b":"x"}` as `a=1 b=x`.
fn compact(v: &Value) -> String {
    match v.as_object() {
        Some(map) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                Value::Number(n) if n.is_f64() => {
                    format!("{k}={:.4}", n.as_f64().unwrap_or(0.0))
                }
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(" "),
        None => v.to_string(),
    }
}

/// Writes `text` to standard output. A reader that went away (`| head`) only cuts the report
/// short (`print!` would panic); any other failure, such as a full disk behind `> report.json`,
/// is an error.
fn write_out(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cache_hit_rate_is_computed_over_the_run() {
        let before = json!({"schemas": 1, "cache": {"l1_hits": 100, "l2_hits": 0, "misses": 50, "hit_rate": 0.66}});
        let after = json!({"schemas": 1, "cache": {"l1_hits": 190, "l2_hits": 0, "misses": 60, "hit_rate": 0.76}});
        let report = cache_report(Some(&before), Some(&after)).unwrap();
        let run = report.run.unwrap();
        assert_eq!((run.l1_hits, run.misses, run.lookups), (90, 10, 100));
        assert!((run.hit_rate - 0.9).abs() < 1e-9);
        assert_eq!(report.after["l1_hits"], 190);
        assert!(cache_report(Some(&before), Some(&json!({"schemas": 1}))).is_none());
        assert!(cache_report(None, Some(&after)).unwrap().run.is_none());
    }

    #[test]
    fn latency_of_an_empty_histogram_is_none() {
        let mut h = Histogram::<u64>::new(3).unwrap();
        assert_eq!(Latency::of(&h), None);
        for v in [10, 20, 30, 1000] {
            h.record(v).unwrap();
        }
        let l = Latency::of(&h).unwrap();
        assert!(l.min <= l.p50 && l.p50 <= l.p99 && l.p99 <= l.max);
        assert_eq!(l.max, 1000);
    }
}
