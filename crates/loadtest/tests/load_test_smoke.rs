//! Smoke test of the load generator: the real server in-process on a fresh SQLite database, a
//! two-second run, and checks that every operation kind ran without errors and that the report
//! is complete. It asserts nothing about speed.

use clap::Parser;
use schema_registry_loadtest::{self as loadtest, LoadTestArgs, OpKind, StopReason};
use schema_registry_server::app::Application;
use schema_registry_server::config::Settings;
use serde_json::Value;
use tokio::sync::oneshot;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: LoadTestArgs,
}

/// Parses `flags` (split at whitespace) as the load test's command line against `address` and
/// runs it.
async fn run_against(address: &str, flags: &str) -> loadtest::Report {
    let argv = ["load_test", "--target", address]
        .into_iter()
        .chain(flags.split_whitespace());
    let args = Cli::try_parse_from(argv).expect("arguments").args;
    loadtest::run(args).await.expect("load test")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_run_exercises_every_operation_without_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = Settings::for_database(dir.path().join("data"), None).expect("settings");
    let app = Application::build(settings).await.expect("build app");
    let address = format!("http://{}", app.local_addr().expect("addr"));
    let (shutdown, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async move {
        let _ = stopped.await;
    }));

    let args = Cli::try_parse_from([
        "load_test",
        "--target",
        &address,
        "--duration",
        "2s",
        "--concurrency",
        "4",
        "--schemas",
        "50",
        "--subjects",
        "5",
        "--no-progress",
        // Every kind often enough that two seconds on a busy debug build surely run each.
        "--mix",
        "get_by_id=50,get_latest=15,get_by_version=15,search=10,register=10",
    ])
    .expect("arguments")
    .args;
    let mix = args.mix.clone();
    let report = loadtest::run(args).await.expect("load test");
    let json = serde_json::to_value(&report).expect("report as JSON");
    println!("{}", report.table());

    // Seeding created the data set.
    assert!(!report.seeding.skipped);
    assert_eq!(report.seeding.created, 50, "{json:#}");
    assert!(report.seeding.catalogue_versions >= 50, "{json:#}");
    assert_eq!(report.seeding.catalogue_subjects, 5, "{json:#}");
    let stats: Value = reqwest::get(format!("{address}/api/v1/stats"))
        .await
        .expect("stats")
        .json()
        .await
        .expect("stats JSON");
    assert!(stats["schemas"].as_u64().unwrap_or(0) >= 50, "{stats}");

    // Every kind in the mix ran, none failed, percentiles are ordered.
    assert_eq!(report.stop_reason, Some(StopReason::Duration));
    for kind in mix.active() {
        let op = report
            .ops
            .iter()
            .find(|o| o.op == kind)
            .unwrap_or_else(|| panic!("{kind} missing from the report: {json:#}"));
        assert!(op.operations > 0, "no {kind} operations: {json:#}");
        assert_eq!(op.errors, 0, "{kind} failed: {json:#}");
        let l = op.latency_us.expect("latency");
        assert!(l.p50 <= l.p99 && l.p99 <= l.max, "{kind}: {l:?}");
    }
    assert_eq!(report.ops.len(), OpKind::ALL.len());
    assert_eq!(report.total_errors, 0);
    assert_eq!(
        report.total_operations,
        report.ops.iter().map(|o| o.operations).sum::<u64>()
    );
    assert!(report.wall_secs > 0.0 && report.throughput_ops_per_sec > 0.0);

    // The server's cache section, the server stats and the client CPU are there.
    let cache = report.cache.as_ref().expect("cache section");
    assert!(cache.after.get("hit_rate").is_some(), "{json:#}");
    let run = cache.run.expect("cache over the run");
    assert!(
        run.lookups > 0 && (0.0..=1.0).contains(&run.hit_rate),
        "{run:?}"
    );
    assert!(json["cache"]["after"]["l1_hits"].is_u64(), "{json:#}");
    assert!(report.server_stats.is_some());
    if cfg!(target_os = "linux") {
        assert!(report.client_cpu.is_some());
    }
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);

    // A second seeding reuses the data set instead of registering it again.
    let reseed = run_against(
        &address,
        "--schemas 50 --subjects 5 --seed-only --no-progress",
    )
    .await;
    assert_eq!(
        (reseed.seeding.subjects_reused, reseed.seeding.registrations),
        (5, 0)
    );
    assert_eq!(reseed.stop_reason, None);

    // `--operations` stops the run first; `--skip-seed` uses the data set as it is.
    let counted = run_against(
        &address,
        "--duration 60s --operations 100 --concurrency 3 --schemas 50 --subjects 5 --skip-seed \
         --distribution uniform --mix get_by_id=1,get_by_version=1 --no-progress",
    )
    .await;
    assert_eq!(counted.stop_reason, Some(StopReason::Operations));
    assert_eq!((counted.total_operations, counted.total_errors), (100, 0));
    assert_eq!(counted.seeding.registrations, 0);
    assert_eq!(counted.ops.len(), 2);

    // `--rate`: an open loop releases operations at the rate, no faster, for the whole run.
    let paced = run_against(
        &address,
        "--duration 2s --rate 200 --concurrency 4 --schemas 50 --subjects 5 --skip-seed \
         --mix get_by_id=1 --no-progress --json",
    )
    .await;
    let json = serde_json::to_value(&paced).expect("report as JSON");
    assert_eq!(json["config"]["rate"], 200, "{json:#}");
    assert_eq!(paced.stop_reason, Some(StopReason::Duration));
    assert_eq!(paced.total_errors, 0, "{json:#}");
    // 2 s at 200/s releases 400 operations (the k-th due at k / 200 s, k = 0..399); a request
    // still in flight at the deadline is not counted, and a busy debug build may lag a little.
    assert!((300..=400).contains(&paced.total_operations), "{json:#}");
    // A worker waiting for a release has issued nothing: an --operations the rate cannot reach
    // in time leaves the run to end by --duration.
    let short_of_count = run_against(
        &address,
        "--duration 2s --rate 100 --operations 202 --concurrency 4 --schemas 50 --subjects 5 \
         --skip-seed --mix get_by_id=1 --no-progress",
    )
    .await;
    assert_eq!(short_of_count.stop_reason, Some(StopReason::Duration));
    assert!(short_of_count.total_operations <= 200);
    // And with `--operations`, the pacer releases exactly that many.
    let paced_count = run_against(
        &address,
        "--duration 60s --operations 50 --rate 500 --skip-seed --schemas 50 --subjects 5 \
         --mix get_by_id=1 --no-progress",
    )
    .await;
    assert_eq!(paced_count.stop_reason, Some(StopReason::Operations));
    assert_eq!(
        (paced_count.total_operations, paced_count.total_errors),
        (50, 0)
    );

    let _ = shutdown.send(());
    server.await.expect("server task").expect("server run");
}

/// A target where nothing listens is a clear error, not a panic.
#[tokio::test]
async fn an_unreachable_server_is_a_clear_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        l.local_addr().expect("addr").port()
    };
    let args = Cli::try_parse_from([
        "load_test",
        "--target",
        &format!("http://127.0.0.1:{port}"),
        "--no-progress",
    ])
    .expect("arguments")
    .args;
    let err = loadtest::run(args)
        .await
        .expect_err("no server")
        .to_string();
    assert!(err.contains("not reachable"), "{err}");
}
