//! The cache across servers and through a Redis failure.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use schema_registry_testkit::{redis_url, unique_prefix, PrivateRedis, TestDatabase};
use serde_json::{json, Value};

use crate::helpers::{ServerProcess, TestApp};

/// Two server processes sharing PostgreSQL and Redis: a version registered on A is `latest` on
/// B within 100 ms, although B had `latest` cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_registered_on_one_server_is_latest_on_another_within_100ms() {
    let db = TestDatabase::create().await;
    let dir = tempfile::tempdir().expect("tmp");
    let (redis, prefix) = (redis_url(), unique_prefix());
    let a =
        ServerProcess::spawn_with(db.url(), &dir.path().join("a"), Some((&redis, &prefix))).await;
    let b =
        ServerProcess::spawn_with(db.url(), &dir.path().join("b"), Some((&redis, &prefix))).await;
    let client = reqwest::Client::new();
    let register = |n: u32| {
        let client = client.clone();
        let url = format!("{}/api/v1/subjects/prop/versions", a.address);
        async move {
            let r = client
                .post(url)
                .json(&json!({"schema": {"n": n}}))
                .send()
                .await
                .expect("register");
            assert_eq!(r.status(), StatusCode::CREATED);
            r.json::<Value>().await.expect("json")["version"]
                .as_str()
                .expect("v")
                .to_string()
        }
    };
    let latest_on_b = || {
        let client = client.clone();
        let url = format!("{}/api/v1/subjects/prop/versions/latest", b.address);
        async move {
            client
                .get(url)
                .send()
                .await
                .expect("get")
                .json::<Value>()
                .await
                .expect("json")["version"]
                .as_str()
                .unwrap_or("")
                .to_string()
        }
    };
    // Both servers subscribed to invalidations (their l2 reports `up`).
    for server in [&a, &b] {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let health: Value = client
                .get(format!("{}/health/storage", server.address))
                .send()
                .await
                .expect("h")
                .json()
                .await
                .expect("j");
            if health["tiers"]["l2"]["status"] == "up" {
                break;
            }
            assert!(Instant::now() < deadline, "L2 not up: {health}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let mut worst = Duration::ZERO;
    for round in 0..5u32 {
        let v = register(round).await;
        // B caches the current latest (a second read is an L1 hit).
        let deadline = Instant::now() + Duration::from_secs(1);
        while latest_on_b().await != v {
            assert!(Instant::now() < deadline, "B never saw {v}");
        }
        latest_on_b().await;
        let next = register(round + 100).await;
        let registered_at = Instant::now();
        loop {
            if latest_on_b().await == next {
                break;
            }
            assert!(
                registered_at.elapsed() < Duration::from_millis(100),
                "B still served the old latest after 100 ms"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        worst = worst.max(registered_at.elapsed());
    }
    eprintln!("worst time for B to see A's new latest: {worst:?}");
    let stats: Value = client
        .get(format!("{}/api/v1/stats", b.address))
        .send()
        .await
        .expect("s")
        .json()
        .await
        .expect("j");
    assert!(
        stats["cache"]["l1_hits"].as_u64().expect("hits") > 0,
        "B really served from its cache: {stats}"
    );
}

/// Redis is killed during a read/write loop: no request fails, L2 shows as degraded while
/// readiness stays 200; when Redis is back, L2 fills again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_redis_fails_no_request_and_l2_recovers() {
    let mut redis = PrivateRedis::start(None);
    let dir = tempfile::tempdir().expect("tmp");
    let url = redis.url();
    let app = TestApp::start(dir.path().join("data"), None, move |s| {
        if let Some(c) = s.cache.as_mut() {
            c.redis_url = Some(url);
            c.l2_timeout = Duration::from_millis(100);
            c.breaker_cooldown = Duration::from_millis(500);
        }
    })
    .await;
    let mut ids = Vec::new();
    let mut failures = Vec::new();
    for i in 0..300u32 {
        if i == 100 {
            redis.kill();
        }
        if i == 200 {
            let (status, health) = app.get_json("/health/storage").await;
            assert_eq!(status, StatusCode::OK, "{health}");
            assert_eq!(health["tiers"]["l2"]["status"], "degraded", "{health}");
            assert_eq!(app.get("/health/ready").await.status(), StatusCode::OK);
            redis.restart();
        }
        let resp = app
            .post_json(
                "/api/v1/subjects/loop/versions",
                &json!({"schema": {"i": i}}),
            )
            .await;
        if resp.status() != StatusCode::CREATED {
            failures.push(format!("register {i}: {}", resp.status()));
            continue;
        }
        let rec: Value = resp.json().await.expect("json");
        ids.push(rec["id"].as_str().expect("id").to_string());
        for path in [
            format!("/api/v1/schemas/{}", ids[ids.len() / 2]),
            "/api/v1/subjects/loop/versions/latest".to_string(),
        ] {
            let r = app.get(&path).await;
            if r.status() != StatusCode::OK {
                failures.push(format!("GET {path}: {}", r.status()));
            }
        }
    }
    assert!(failures.is_empty(), "requests failed: {failures:?}");

    // Redis is back: L2 recovers by itself and is filled again by reads.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, health) = app.get_json("/health/storage").await;
        if health["tiers"]["l2"]["status"] == "up" {
            break;
        }
        assert!(Instant::now() < deadline, "L2 did not recover: {health}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for id in ids.iter().take(20) {
        assert_eq!(
            app.get(&format!("/api/v1/schemas/{id}")).await.status(),
            StatusCode::OK
        );
    }
    let client = redis::Client::open(redis.url()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("conn");
    let keys: i64 = redis::cmd("DBSIZE")
        .query_async(&mut conn)
        .await
        .expect("dbsize");
    assert!(keys > 0, "L2 fills again after Redis returns");
    let stats = app.stats().await;
    assert!(
        stats["cache"]["l2_errors"].as_u64().expect("errors") > 0,
        "{stats}"
    );
}
