//! Multi-process and failure tests: two servers on one database, `kill -9` mid-write, and a
//! PostgreSQL outage.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use schema_registry_testkit::{PrivateCluster, TestDatabase};
use serde_json::{json, Value};

use crate::helpers::{assert_error, ServerProcess, TestApp};

/// Two server processes registering into one subject at once: no duplicates, no gaps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_processes_share_one_subject_without_collisions() {
    let db = TestDatabase::create().await;
    let dir = tempfile::tempdir().expect("tmp");
    let a = ServerProcess::spawn(db.url(), &dir.path().join("a")).await;
    let b = ServerProcess::spawn(db.url(), &dir.path().join("b")).await;
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let url = format!(
            "{}/api/v1/subjects/shared/versions",
            if w % 2 == 0 { &a.address } else { &b.address }
        );
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for i in 0..10 {
                let resp = client
                    .post(&url)
                    .json(&json!({"schema": {"w": w, "i": i}}))
                    .send()
                    .await
                    .expect("request");
                assert_eq!(resp.status(), StatusCode::CREATED);
                let body: Value = resp.json().await.expect("json");
                got.push(body["version"].as_str().expect("version").to_string());
            }
            got
        }));
    }
    let mut versions = BTreeSet::new();
    for t in tasks {
        for v in t.await.expect("task") {
            assert!(
                versions.insert(v.clone()),
                "{v} assigned twice across processes"
            );
        }
    }
    let expected: BTreeSet<String> = (0..80).map(|m| format!("1.{m}.0")).collect();
    assert_eq!(versions, expected, "no duplicates and no gaps");
}

/// Writers hammer a server process; it is killed with SIGKILL; every write it acknowledged is
/// there, byte for byte, after a restart.
async fn kill_dash_nine_loses_no_acknowledged_write(
    database_url: &str,
    data_dir: &std::path::Path,
) {
    let mut server = ServerProcess::spawn(database_url, data_dir).await;
    let client = reqwest::Client::new();
    let stop_at = Instant::now() + Duration::from_millis(700);
    let mut tasks = Vec::new();
    for w in 0..6 {
        let (client, base) = (client.clone(), server.address.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked: Vec<(String, Value)> = Vec::new();
            for i in 0.. {
                let schema = json!({"writer": w, "i": i, "pad": "x".repeat(200)});
                let sent = client
                    .post(format!("{base}/api/v1/subjects/crash-{}/versions", w % 3))
                    .json(&json!({"schema": schema}))
                    .send()
                    .await;
                match sent {
                    Ok(resp) if resp.status() == StatusCode::CREATED => {
                        if let Ok(body) = resp.json::<Value>().await {
                            acked.push((
                                body["id"].as_str().unwrap_or_default().to_string(),
                                schema,
                            ));
                        }
                    }
                    _ => break, // the server is gone
                }
                if Instant::now() > stop_at + Duration::from_secs(5) {
                    break;
                }
            }
            acked
        }));
    }
    tokio::time::sleep_until((stop_at).into()).await;
    server.kill_hard();
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.expect("task"));
    }
    assert!(
        acked.len() > 10,
        "the writers got going before the kill ({} acknowledged)",
        acked.len()
    );

    let again = ServerProcess::spawn(database_url, data_dir).await;
    for (id, schema) in &acked {
        let resp = client
            .get(format!("{}/api/v1/schemas/{id}", again.address))
            .send()
            .await
            .expect("get");
        assert_eq!(
            resp.status(),
            StatusCode::OK,
            "acknowledged write {id} lost"
        );
        let body: Value = resp.json().await.expect("json");
        assert_eq!(&body["schema"], schema, "acknowledged write {id} changed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_on_postgres_loses_no_acknowledged_write() {
    let db = TestDatabase::create().await;
    let dir = tempfile::tempdir().expect("tmp");
    kill_dash_nine_loses_no_acknowledged_write(db.url(), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_on_sqlite_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().expect("tmp");
    let url = format!("sqlite://{}", dir.path().join("registry.db").display());
    kill_dash_nine_loses_no_acknowledged_write(&url, dir.path()).await;
}

/// PostgreSQL stops: readiness goes 503 and requests get 503 `storage_unavailable`, never a
/// 500; PostgreSQL comes back: the server recovers by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_gives_503_and_the_server_recovers_by_itself() {
    let cluster = PrivateCluster::start();
    let dir = tempfile::tempdir().expect("tmp");
    let app = TestApp::start(dir.path().join("data"), Some(cluster.url()), |s| {
        s.storage.postgres.acquire_timeout = Duration::from_secs(1);
    })
    .await;
    let rec = app.created("outage", json!({"schema": {"n": 1}})).await;
    let by_id = format!("/api/v1/schemas/{}", rec["id"].as_str().expect("id"));

    cluster.stop_server();
    let (status, ready) = app.get_json("/health/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    let (status, storage) = app.get_json("/health/storage").await;
    assert_eq!(
        (status, storage["tiers"]["database"]["status"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("down"))
    );
    assert_error(
        app.get(&by_id).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "storage_unavailable",
    )
    .await;
    let resp = app
        .post_json(
            "/api/v1/subjects/outage/versions",
            &json!({"schema": {"n": 2}}),
        )
        .await;
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert_error(resp, StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable").await;
    let (live, _) = app.get_json("/health/live").await;
    assert_eq!(live, StatusCode::OK, "the process itself is alive");

    cluster.start_server();
    let deadline = Instant::now() + Duration::from_secs(20);
    while app.get("/health/ready").await.status() != StatusCode::OK {
        assert!(
            Instant::now() < deadline,
            "the server did not recover after PostgreSQL came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, back) = app.get_json(&by_id).await;
    assert_eq!((status, &back), (StatusCode::OK, &rec));
    let next = app.created("outage", json!({"schema": {"n": 2}})).await;
    assert_eq!(
        next["version"], "1.1.0",
        "the failed write during the outage was not applied"
    );
}

/// A second server on the data directory of a running one exits at once, non-zero, naming the
/// PID of the first, which goes on serving; once the first has stopped, the directory is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_one_sqlite_data_directory_refuses_to_start() {
    let dir = tempfile::tempdir().expect("tmp");
    let data_dir = dir.path().join("data");
    let url = format!("sqlite://{}/registry.db", data_dir.display());
    let mut first = ServerProcess::spawn(&url, &data_dir).await;

    let second = tokio::process::Command::new(env!("CARGO_BIN_EXE_llm-schema-registry"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data_dir)
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), second)
        .await
        .expect("the second server exits instead of serving")
        .expect("run the second server");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("in use by another server")
            && stderr.contains(&format!("PID {}", first.child.id())),
        "{stderr}"
    );
    let resp = reqwest::get(format!("{}/health/ready", first.address))
        .await
        .expect("first still serves");
    assert_eq!(resp.status(), StatusCode::OK);

    first.kill_hard();
    let again = ServerProcess::spawn(&url, &data_dir).await;
    let resp = reqwest::get(format!("{}/health/live", again.address))
        .await
        .expect("live");
    assert_eq!(resp.status(), StatusCode::OK);
}
