//! `/health/*` and `/api/v1/stats`.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;

on_both_backends!(health_and_stats);

async fn health_and_stats(app: &TestApp) {
    let (status, live) = app.get_json("/health/live").await;
    assert_eq!(
        (status, live["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let (status, ready) = app.get_json("/health/ready").await;
    assert_eq!(
        (status, ready["status"].as_str()),
        (StatusCode::OK, Some("ready"))
    );
    let (status, storage) = app.get_json("/health/storage").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(storage["tiers"]["database"]["status"], "up");
    assert!(storage["tiers"]["database"]["latency_ms"]
        .as_f64()
        .is_some());
    app.created("x", json!({"schema": {"a": 1}})).await;
    app.created("x", json!({"schema": {"a": 2}})).await;
    let mut stats = app.stats().await;
    let cache = stats
        .as_object_mut()
        .and_then(|m| m.remove("cache"))
        .expect("cache section");
    assert_eq!(
        stats,
        json!({"schemas": 2, "subjects": 1, "active": 2, "deprecated": 0, "deleted": 0, "bytes": 14})
    );
    for key in [
        "l1_hits",
        "l2_hits",
        "misses",
        "hit_rate",
        "l1_entries",
        "evictions",
        "l2_errors",
        "l2_state",
    ] {
        assert!(cache.get(key).is_some(), "cache.{key} in {cache}");
    }
    // Read the same version three times: one miss, then hits.
    let before = cache["l1_hits"].as_u64().expect("n") + cache["l2_hits"].as_u64().expect("n");
    for _ in 0..3 {
        app.get_json("/api/v1/subjects/x/versions/1.1.0").await;
    }
    let after = app.stats().await["cache"].clone();
    assert!(
        after["l1_hits"].as_u64().expect("n") + after["l2_hits"].as_u64().expect("n") >= before + 2,
        "{after}"
    );
    assert!(after["hit_rate"].as_f64().expect("rate") > 0.0);
    let (_, health) = app.get_json("/health/storage").await;
    assert_eq!(health["tiers"]["l1"]["status"], "up");
    assert!(health["tiers"]["l2"]["status"].is_string());
}
