//! Smoke test of the load generator: the `llm-schema-registry-load-test` binary, run as a
//! separate process against the real server (in this test's process, on a fresh SQLite
//! database), with `--json`. Each run is bounded by `--operations` where its outcome matters, and
//! the checks are on counts and on the shape of the report, never on durations or throughput, so
//! the test holds on a slow or busy machine.

use std::process::Output;

use schema_registry_server::app::Application;
use schema_registry_server::config::Settings;
use serde_json::Value;
use tokio::sync::oneshot;

/// The binary under test.
const BINARY: &str = env!("CARGO_BIN_EXE_llm-schema-registry-load-test");

/// Flags every run gets: no progress bar, and a request timeout no busy machine reaches, so that
/// a slow answer is never counted as an error.
const COMMON: [&str; 3] = ["--no-progress", "--timeout-ms", "120000"];

/// The registry in this process, on a temporary SQLite database.
struct Server {
    address: String,
    shutdown: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let settings = Settings::for_database(dir.path().join("data"), None).expect("settings");
        let app = Application::build(settings).await.expect("build app");
        let address = format!("http://{}", app.local_addr().expect("addr"));
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run(async move {
            let _ = stopped.await;
        }));
        Server {
            address,
            shutdown,
            task,
            _dir: dir,
        }
    }

    async fn stop(self) {
        let _ = self.shutdown.send(());
        self.task.await.expect("server task").expect("server run");
    }
}

/// Runs the binary with `args` (and [`COMMON`]) and returns what it did.
async fn load_test(args: &[&str]) -> Output {
    tokio::process::Command::new(BINARY)
        .args(COMMON)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .expect("run llm-schema-registry-load-test")
}

/// Runs the binary against `address` with `flags` (split at whitespace) and `--json`; it must
/// succeed. Returns the report.
async fn run_json(address: &str, flags: &str) -> Value {
    let mut args = vec!["--target", address, "--json"];
    args.extend(flags.split_whitespace());
    let out = load_test(&args).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{flags}: {}: {stderr}", out.status);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{flags}: the report is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn u64_of(report: &Value, pointer: &str) -> u64 {
    report
        .pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{pointer} is not a count: {report:#}"))
}

/// The `ops` entry of `kind`.
fn op<'a>(report: &'a Value, kind: &str) -> &'a Value {
    report["ops"]
        .as_array()
        .expect("ops")
        .iter()
        .find(|o| o["op"] == kind)
        .unwrap_or_else(|| panic!("{kind} missing from the report: {report:#}"))
}

const KINDS: [&str; 5] = [
    "get_by_id",
    "get_latest",
    "get_by_version",
    "search",
    "register",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_exercise_every_operation_and_report_it() {
    let server = Server::start().await;
    let address = server.address.clone();

    // Seeding, then a closed-loop run of every kind, stopped by --operations (the duration is a
    // bound no run reaches). 600 draws from this mix miss a kind of weight 10 with a
    // probability of 0.9^600, about 1e-27.
    let report = run_json(
        &address,
        "--duration 10m --operations 600 --concurrency 4 --schemas 50 --subjects 5 \
         --mix get_by_id=50,get_latest=15,get_by_version=15,search=10,register=10",
    )
    .await;
    let json = &report;

    // Seeding created the data set.
    assert_eq!(report["seeding"]["skipped"], false, "{json:#}");
    assert_eq!(u64_of(json, "/seeding/created"), 50, "{json:#}");
    assert!(
        u64_of(json, "/seeding/catalogue_versions") >= 50,
        "{json:#}"
    );
    assert_eq!(u64_of(json, "/seeding/catalogue_subjects"), 5, "{json:#}");
    let stats: Value = reqwest::get(format!("{address}/api/v1/stats"))
        .await
        .expect("stats")
        .json()
        .await
        .expect("stats JSON");
    assert!(stats["schemas"].as_u64().unwrap_or(0) >= 50, "{stats}");

    // Exactly the operations asked for; every kind ran, none failed, percentiles are ordered.
    assert_eq!(report["stop_reason"], "operations", "{json:#}");
    assert_eq!(u64_of(json, "/total_operations"), 600, "{json:#}");
    assert_eq!(u64_of(json, "/total_errors"), 0, "{json:#}");
    assert_eq!(report["ops"].as_array().map(Vec::len), Some(KINDS.len()));
    let mut sum = 0;
    for kind in KINDS {
        let o = op(json, kind);
        let n = u64_of(o, "/operations");
        assert!(n > 0, "no {kind} operations: {json:#}");
        assert_eq!(u64_of(o, "/errors"), 0, "{kind} failed: {json:#}");
        assert_eq!(u64_of(o, "/ok"), n, "{json:#}");
        let (p50, p99, max) = (
            u64_of(o, "/latency_us/p50"),
            u64_of(o, "/latency_us/p99"),
            u64_of(o, "/latency_us/max"),
        );
        assert!(p50 <= p99 && p99 <= max, "{kind}: {o}");
        sum += n;
    }
    assert_eq!(sum, 600);
    assert!(report["wall_secs"].as_f64().is_some_and(|s| s > 0.0));
    assert!(report["throughput_ops_per_sec"]
        .as_f64()
        .is_some_and(|r| r > 0.0));

    // The server's cache section, the server stats and the client CPU are there.
    let cache = &report["cache"];
    assert!(cache["after"]["hit_rate"].is_number(), "{json:#}");
    assert!(cache["after"]["l1_hits"].is_u64(), "{json:#}");
    assert!(u64_of(json, "/cache/run/lookups") > 0, "{json:#}");
    let hit_rate = cache["run"]["hit_rate"].as_f64().expect("hit rate");
    assert!((0.0..=1.0).contains(&hit_rate), "{json:#}");
    assert!(report["server_stats"].is_object(), "{json:#}");
    if cfg!(target_os = "linux") {
        assert!(report["client_cpu"]["cpu_secs"].is_number(), "{json:#}");
    }
    // This test runs a debug build: the report says its figures measure the client. The only
    // other warning a healthy run may carry is that the client saturated its cores.
    let warnings: Vec<&str> = report["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        warnings.iter().any(|w| w.contains("debug build")),
        cfg!(debug_assertions),
        "{json:#}"
    );
    assert!(
        warnings
            .iter()
            .all(|w| w.contains("debug build") || w.contains("saturated its CPU")),
        "{json:#}"
    );

    // A second seeding reuses the data set instead of registering it again; without --json the
    // report is the table.
    let out = load_test(&[
        "--target",
        &address,
        "--schemas",
        "50",
        "--subjects",
        "5",
        "--seed-only",
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains(&format!("LLM Schema Registry load test against {address}")),
        "{table}"
    );
    let reseed = run_json(&address, "--schemas 50 --subjects 5 --seed-only").await;
    assert_eq!(u64_of(&reseed, "/seeding/subjects_reused"), 5, "{reseed:#}");
    assert_eq!(u64_of(&reseed, "/seeding/registrations"), 0, "{reseed:#}");
    assert_eq!(reseed["stop_reason"], Value::Null, "{reseed:#}");

    // `--operations` stops the run first; `--skip-seed` uses the data set as it is.
    let counted = run_json(
        &address,
        "--duration 10m --operations 100 --concurrency 3 --schemas 50 --subjects 5 --skip-seed \
         --distribution uniform --mix get_by_id=1,get_by_version=1",
    )
    .await;
    assert_eq!(counted["stop_reason"], "operations", "{counted:#}");
    assert_eq!(u64_of(&counted, "/total_operations"), 100, "{counted:#}");
    assert_eq!(u64_of(&counted, "/total_errors"), 0, "{counted:#}");
    assert_eq!(u64_of(&counted, "/seeding/registrations"), 0, "{counted:#}");
    assert_eq!(counted["ops"].as_array().map(Vec::len), Some(2));

    // `--rate`: an open loop releases the k-th operation at k / rate seconds, so a 2 s run at
    // 100/s releases at most 200 (how many are done in time depends on the machine): an
    // --operations it cannot reach leaves the run to end by --duration.
    let paced = run_json(
        &address,
        "--duration 2s --rate 100 --operations 202 --concurrency 4 --schemas 50 --subjects 5 \
         --skip-seed --mix get_by_id=1",
    )
    .await;
    assert_eq!(paced["config"]["rate"], 100, "{paced:#}");
    assert_eq!(paced["stop_reason"], "duration", "{paced:#}");
    assert!(u64_of(&paced, "/total_operations") <= 200, "{paced:#}");
    assert_eq!(u64_of(&paced, "/total_errors"), 0, "{paced:#}");
    // And with `--operations` it can reach, the pacer releases exactly that many.
    let paced_count = run_json(
        &address,
        "--duration 10m --operations 50 --rate 500 --skip-seed --schemas 50 --subjects 5 \
         --mix get_by_id=1",
    )
    .await;
    assert_eq!(paced_count["stop_reason"], "operations", "{paced_count:#}");
    assert_eq!(u64_of(&paced_count, "/total_operations"), 50);
    assert_eq!(u64_of(&paced_count, "/total_errors"), 0, "{paced_count:#}");

    server.stop().await;
}

/// A target where nothing listens is a clear error (exit status 1), not a panic.
#[tokio::test]
async fn an_unreachable_server_is_a_clear_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        l.local_addr().expect("addr").port()
    };
    let out = load_test(&["--target", &format!("http://127.0.0.1:{port}")]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not reachable"), "{stderr}");
    assert!(out.stdout.is_empty());
}

/// `--help` lists the flags; bad flags are refused before anything runs.
#[tokio::test]
async fn help_lists_the_flags_and_bad_flags_are_refused() {
    let out = load_test(&["--help"]).await;
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--target",
        "--duration",
        "--concurrency",
        "--operations",
        "--rate",
        "--mix",
        "--json",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
    let out = load_test(&["--concurrency", "0"]).await;
    assert_eq!(out.status.code(), Some(2), "clap's usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--concurrency"));
}
