//! PostgreSQL with Redis as L2, once: the main flow end to end, through both cache tiers —
//! register, read by id, version and `latest`, list, search, deprecate, soft and permanent
//! deletes, stats and health — with every read after a write checked for staleness.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, json_of, take_count, without_latency, Backend, TestApp};

/// `/health/storage` once L2 is `up` (connected and subscribed to invalidations); the
/// subscription is made in the background after start.
async fn storage_health_with_l2_up(app: &TestApp) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, health) = app.get_json("/health/storage").await;
        assert_eq!(status, StatusCode::OK, "{health}");
        if health["tiers"]["l2"]["status"] == "up" {
            return health;
        }
        assert!(Instant::now() < deadline, "L2 not up: {health}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_main_flow_on_postgres_with_redis() {
    let app = TestApp::spawn(Backend::PostgresRedis).await;
    let objects = json!({"backend": "local", "status": "up", "threshold_bytes": 1024 * 1024,
        "pending_uploads": 0, "puts": 0, "gets": 0, "errors": 0, "corrupted": 0});
    let health = storage_health_with_l2_up(&app).await;
    assert_eq!(
        without_latency(health),
        json!({"status": "ok", "tiers": {
            "database": {"backend": "postgres", "status": "up"},
            "l1": {"status": "up", "entries": 0, "evictions": 0},
            "l2": {"status": "up", "errors": 0, "subscribed": true},
            "objects": objects,
        }})
    );
    let (status, live) = app.get_json("/health/live").await;
    assert_eq!((status, &live["status"]), (StatusCode::OK, &json!("ok")));
    let (status, ready) = app.get_json("/health/ready").await;
    assert_eq!(
        (status, ready),
        (StatusCode::OK, json!({"status": "ready"}))
    );

    // Register two versions; read each way.
    let doc1 = json!({"type": "object", "properties": {"id": {"type": "string"}}});
    let doc2 = json!({"type": "object", "properties": {"id": {"type": "string"}, "total": {"type": "number"}}});
    let v1 = app
        .created(
            "smoke.orders",
            json!({"schema": doc1, "description": "An order", "tags": ["pii"], "metadata": {"team": "payments"}}),
        )
        .await;
    assert_eq!(
        (&v1["version"], &v1["state"], &v1["schema"]),
        (&json!("1.0.0"), &json!("active"), &doc1)
    );
    let by_id = |rec: &Value| format!("/api/v1/schemas/{}", rec["id"].as_str().expect("id"));
    let version = |v: &str| format!("/api/v1/subjects/smoke.orders/versions/{v}");
    for path in [by_id(&v1), version("1.0.0"), version("latest")] {
        let (status, got) = app.get_json(&path).await;
        assert_eq!((status, &got), (StatusCode::OK, &v1), "GET {path}");
    }
    let content = app.get(&format!("{}/content", by_id(&v1))).await;
    assert_eq!(content.status(), StatusCode::OK);
    assert_eq!(
        content.text().await.expect("text"),
        r#"{"properties":{"id":{"type":"string"}},"type":"object"}"#
    );
    let v2 = app.created("smoke.orders", json!({"schema": doc2})).await;
    assert_eq!(v2["version"], "1.1.0");
    for path in [by_id(&v2), version("1.1.0"), version("latest")] {
        let (status, got) = app.get_json(&path).await;
        assert_eq!(
            (status, &got),
            (StatusCode::OK, &v2),
            "GET {path}: no stale latest"
        );
    }
    let (stats, mut cache) = app.stats_and_cache().await;
    let bytes = |doc: &Value| doc.to_string().len();
    assert_eq!(
        stats,
        json!({"schemas": 2, "subjects": 1, "active": 2, "deprecated": 0, "deleted": 0,
            "bytes": bytes(&doc1) + bytes(&doc2)})
    );
    // By id and by version: L2 hits (registration writes new versions through to L2), then
    // in L1; `latest` is not written through: a miss. The content read is an L1 hit by id. L1
    // holds at most the five keys ever filled: two ids, two versions, `latest`.
    assert!(take_count(&mut cache, "l1_entries") <= 5, "{cache}");
    assert_eq!(
        cache,
        json!({"l1_hits": 1, "l2_hits": 4, "misses": 2, "hit_rate": 5.0 / 7.0,
            "evictions": 0, "l2_errors": 0, "l2_state": "up"})
    );

    // List and search.
    let (_, subjects) = app.get_json("/api/v1/subjects").await;
    assert_eq!(
        subjects,
        json!({"subjects": [{"subject": "smoke.orders", "latest_version": "1.1.0", "version_count": 2}], "total": 1})
    );
    let (_, versions) = app.get_json("/api/v1/subjects/smoke.orders/versions").await;
    assert_eq!(versions, json!({"versions": ["1.0.0", "1.1.0"]}));
    let (_, found) = app.get_json("/api/v1/search?tag=pii").await;
    assert_eq!(found, json!({"results": [v1], "total": 1}));
    let (_, found) = app.get_json("/api/v1/search?q=total").await;
    assert_eq!(found, json!({"results": [v2], "total": 1}));

    // Deprecate and restore: every cached way to the version follows.
    let (status, deprecated) = json_of(
        app.patch_json(&by_id(&v2), &json!({"state": "deprecated"}))
            .await,
    )
    .await;
    assert_eq!(
        (status, &deprecated["state"]),
        (StatusCode::OK, &json!("deprecated"))
    );
    for path in [by_id(&v2), version("1.1.0"), version("latest")] {
        let (_, got) = app.get_json(&path).await;
        assert_eq!(got, deprecated, "GET {path}");
    }
    let (status, restored) = json_of(
        app.patch_json(&by_id(&v2), &json!({"state": "active"}))
            .await,
    )
    .await;
    assert_eq!(
        (status, &restored["state"]),
        (StatusCode::OK, &json!("active"))
    );
    let (_, got) = app.get_json(&version("latest")).await;
    assert_eq!(got, restored);

    // Soft delete: hidden by subject and version, from `latest` and from search; kept by id.
    let (status, deleted) = json_of(app.delete(&version("1.1.0")).await).await;
    assert_eq!(
        (status, &deleted["state"], &deleted["permanent"]),
        (StatusCode::OK, &json!("deleted"), &json!(false))
    );
    assert_error(
        app.get(&version("1.1.0")).await,
        StatusCode::NOT_FOUND,
        "version_not_found",
    )
    .await;
    let (_, latest) = app.get_json(&version("latest")).await;
    assert_eq!(latest, v1, "latest falls back to 1.0.0");
    let (status, kept) = app.get_json(&by_id(&v2)).await;
    assert_eq!(
        (status, &kept["state"]),
        (StatusCode::OK, &json!("deleted"))
    );
    let (_, found) = app.get_json("/api/v1/search?q=total").await;
    assert_eq!(found, json!({"results": [], "total": 0}));
    let (_, versions) = app
        .get_json("/api/v1/subjects/smoke.orders/versions?include_deleted=true")
        .await;
    assert_eq!(versions, json!({"versions": ["1.0.0", "1.1.0"]}));

    // Permanent delete: gone by id too.
    let (status, gone) = json_of(
        app.delete(&format!("{}?permanent=true", version("1.1.0")))
            .await,
    )
    .await;
    assert_eq!((status, &gone["permanent"]), (StatusCode::OK, &json!(true)));
    assert_error(
        app.get(&by_id(&v2)).await,
        StatusCode::NOT_FOUND,
        "schema_not_found",
    )
    .await;
    let (_, versions) = app
        .get_json("/api/v1/subjects/smoke.orders/versions?include_deleted=true")
        .await;
    assert_eq!(versions, json!({"versions": ["1.0.0"]}));

    // The whole subject.
    let (status, body) = json_of(app.delete("/api/v1/subjects/smoke.orders").await).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"subject": "smoke.orders", "deleted_versions": ["1.0.0"]})
        )
    );
    assert_error(
        app.get(&version("latest")).await,
        StatusCode::NOT_FOUND,
        "subject_not_found",
    )
    .await;
    let (status, kept) = app.get_json(&by_id(&v1)).await;
    assert_eq!(
        (status, &kept["state"]),
        (StatusCode::OK, &json!("deleted"))
    );
    let (_, subjects) = app.get_json("/api/v1/subjects").await;
    assert_eq!(subjects, json!({"subjects": [], "total": 0}));

    // Every read after a write above missed both tiers: each write invalidated what it changed
    // in L1 and in L2 (ten misses: three after deprecating, one after restoring, three after the
    // soft delete, one after the permanent one, two after deleting the subject).
    let (stats, mut cache) = app.stats_and_cache().await;
    assert_eq!(
        stats,
        json!({"schemas": 1, "subjects": 0, "active": 0, "deprecated": 0, "deleted": 1,
            "bytes": bytes(&doc1)})
    );
    assert!(take_count(&mut cache, "l1_entries") <= 5, "{cache}");
    assert_eq!(
        cache,
        json!({"l1_hits": 1, "l2_hits": 4, "misses": 12, "hit_rate": 5.0 / 17.0,
            "evictions": 0, "l2_errors": 0, "l2_state": "up"})
    );
    let (status, mut health) = app.get_json("/health/storage").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        take_count(&mut health["tiers"]["l1"], "entries") <= 5,
        "{health}"
    );
    assert_eq!(
        without_latency(health),
        json!({"status": "ok", "tiers": {
            "database": {"backend": "postgres", "status": "up"},
            "l1": {"status": "up", "evictions": 0},
            "l2": {"status": "up", "errors": 0, "subscribed": true},
            "objects": objects,
        }})
    );
}
