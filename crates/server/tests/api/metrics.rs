//! `/metrics`: every promised series exists and moves when its operation happens.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use schema_registry_testkit::{s3_test_options, unique_prefix};
use serde_json::json;

use crate::helpers::TestApp;

/// One scrape: series (name with sorted labels) → value.
struct Scrape(BTreeMap<String, f64>);

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let mut out = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            if let Some((series, value)) = line.rsplit_once(' ') {
                if let Ok(v) = value.parse::<f64>() {
                    out.insert(series.to_string(), v);
                }
            }
        }
        Scrape(out)
    }

    /// The sum over the series called `name` whose labels include every `label="value"` given.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut found = None;
        for (series, v) in &self.0 {
            let (n, rest) = series.split_once('{').unwrap_or((series.as_str(), ""));
            if n != name {
                continue;
            }
            if labels
                .iter()
                .all(|(k, val)| rest.contains(&format!("{k}=\"{val}\"")))
            {
                *found.get_or_insert(0.0) += v;
            }
        }
        found
    }
}

async fn scrape(app: &TestApp) -> Scrape {
    let resp = app.get("/metrics").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    Scrape::parse(&resp.text().await.expect("text"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_series_moves_when_its_operation_happens() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = TestApp::start(dir.path().join("data"), None, |s| {
        s.storage.objects = Some(s3_test_options(&unique_prefix(), 1024 * 1024));
    })
    .await;
    let before = scrape(&app).await;
    let get =
        |s: &Scrape, name: &str, labels: &[(&str, &str)]| s.value(name, labels).unwrap_or(0.0);

    let rec = app
        .created("metered", json!({"schema": {"type": "object"}}))
        .await;
    let path = format!("/api/v1/schemas/{}", rec["id"].as_str().expect("id"));
    app.get(&path).await; // a miss
    app.get(&path).await; // an L1 hit
    app.get("/api/v1/search?q=metered").await;
    app.get("/api/v1/schemas/not-a-uuid").await; // a 422
    let big = json!({"description": "z".repeat(2 * 1024 * 1024)});
    app.created("metered.big", json!({"schema": big})).await;
    let after = scrape(&app).await;

    let moved = |name: &str, labels: &[(&str, &str)], by: f64| {
        let (b, a) = (get(&before, name, labels), get(&after, name, labels));
        assert!(
            a - b >= by,
            "{name}{labels:?} moved by {} (expected at least {by})",
            a - b
        );
    };
    moved(
        "schema_registry_operations_total",
        &[("operation", "register"), ("status", "ok")],
        2.0,
    );
    moved(
        "schema_registry_operations_total",
        &[("operation", "get_by_id"), ("status", "ok")],
        2.0,
    );
    moved(
        "schema_registry_operations_total",
        &[("operation", "search"), ("status", "ok")],
        1.0,
    );
    moved(
        "schema_registry_operation_duration_seconds_count",
        &[("operation", "get_by_id")],
        2.0,
    );
    assert!(
        after
            .value(
                "schema_registry_operation_duration_seconds_bucket",
                &[("operation", "register"), ("le", "+Inf")]
            )
            .is_some(),
        "a histogram, with buckets"
    );
    moved("schema_registry_cache_hits_total", &[("tier", "l1")], 1.0);
    moved("schema_registry_cache_misses_total", &[], 1.0);
    assert!(after
        .value("schema_registry_cache_hits_total", &[("tier", "l2")])
        .is_some());
    assert!(after
        .value("schema_registry_cache_hit_ratio", &[])
        .is_some_and(|r| r > 0.0 && r <= 1.0));
    moved(
        "schema_registry_storage_size_bytes",
        &[],
        2.0 * 1024.0 * 1024.0,
    );
    assert!(after
        .value("schema_registry_db_connections", &[("state", "idle")])
        .is_some());
    assert!(after
        .value("schema_registry_db_connections", &[("state", "active")])
        .is_some());
    moved(
        "schema_registry_s3_operations_total",
        &[("operation", "put"), ("status", "ok")],
        1.0,
    );
    moved("schema_registry_s3_upload_size_bytes_count", &[], 1.0);
    moved(
        "schema_registry_http_requests_total",
        &[
            ("route", "/api/v1/subjects/{subject}/versions"),
            ("status", "201"),
            ("method", "POST"),
        ],
        2.0,
    );
    moved(
        "schema_registry_http_requests_total",
        &[("route", "/api/v1/schemas/{id}"), ("status", "422")],
        1.0,
    );
    moved(
        "schema_registry_http_request_duration_seconds_count",
        &[("route", "/api/v1/search")],
        1.0,
    );
    for name in after.0.keys() {
        assert!(
            !name.contains('.') || name.contains('"'),
            "Prometheus-legal names only: {name}"
        );
    }
}

/// The exporter keeps histogram samples until upkeep folds them into buckets; a server nobody
/// scrapes must still do that, or it grows with every request. Installing the recorder starts
/// the upkeep thread.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installing_the_recorder_starts_histogram_upkeep() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut app = TestApp::start(dir.path().join("data"), None, |_| {}).await;
    let threads: Vec<String> = std::fs::read_dir("/proc/self/task")
        .expect("tasks")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_string())
        .collect();
    assert!(
        threads.iter().any(|t| t == "metrics-upkeep"),
        "no upkeep thread among {threads:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_be_turned_off() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = TestApp::start(dir.path().join("data"), None, |s| s.metrics = false).await;
    assert_eq!(app.get("/metrics").await.status(), StatusCode::NOT_FOUND);
    app.created("quiet", json!({"schema": {}})).await;
}
