//! `/health/*` and `/api/v1/stats`: every field's value, before and after writes and reads.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{take_count, without_latency, TestApp};

on_both_backends!(health_and_stats);

async fn health_and_stats(app: &TestApp) {
    let (status, mut live) = app.get_json("/health/live").await;
    let uptime = take_count(&mut live, "uptime_seconds");
    assert!(uptime < 60, "uptime {uptime} s for a server just started");
    assert_eq!((status, live), (StatusCode::OK, json!({"status": "ok"})));
    let (status, ready) = app.get_json("/health/ready").await;
    assert_eq!(
        (status, ready),
        (StatusCode::OK, json!({"status": "ready"}))
    );
    // L1 in front of the database, no Redis, the default local object directory.
    let storage_health = |l1: Value| {
        json!({"status": "ok", "tiers": {
            "database": {"backend": app.database, "status": "up"},
            "l1": l1,
            "l2": {"status": "disabled"},
            "objects": {"backend": "local", "status": "up", "threshold_bytes": 1024 * 1024,
                "pending_uploads": 0, "puts": 0, "gets": 0, "errors": 0, "corrupted": 0},
        }})
    };
    let (status, health) = app.get_json("/health/storage").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        without_latency(health),
        storage_health(json!({"status": "up", "entries": 0, "evictions": 0}))
    );

    app.created("x", json!({"schema": {"a": 1}})).await;
    let v2 = app.created("x", json!({"schema": {"a": 2}})).await;
    let (stats, cache) = app.stats_and_cache().await;
    assert_eq!(
        stats,
        json!({"schemas": 2, "subjects": 1, "active": 2, "deprecated": 0, "deleted": 0, "bytes": 14})
    );
    // Registering fills no cache tier (without L2 there is nothing to write through to).
    assert_eq!(
        cache,
        json!({"l1_hits": 0, "l2_hits": 0, "misses": 0, "hit_rate": 0.0, "l1_entries": 0,
            "evictions": 0, "l2_errors": 0, "l2_state": "disabled"})
    );

    // Read the same version three times: one miss, then two L1 hits.
    for _ in 0..3 {
        let (status, got) = app.get_json("/api/v1/subjects/x/versions/1.1.0").await;
        assert_eq!((status, &got), (StatusCode::OK, &v2));
    }
    let (_, mut cache) = app.stats_and_cache().await;
    assert!(take_count(&mut cache, "l1_entries") <= 1, "{cache}");
    assert_eq!(
        cache,
        json!({"l1_hits": 2, "l2_hits": 0, "misses": 1, "hit_rate": 2.0 / 3.0,
            "evictions": 0, "l2_errors": 0, "l2_state": "disabled"})
    );
    let (status, mut health) = app.get_json("/health/storage").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        take_count(&mut health["tiers"]["l1"], "entries") <= 1,
        "{health}"
    );
    assert_eq!(
        without_latency(health),
        storage_health(json!({"status": "up", "evictions": 0}))
    );
}
