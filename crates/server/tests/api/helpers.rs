//! `TestApp`: the real server, spawned on a free port with a fresh database, and a typed client.

use std::path::PathBuf;

use reqwest::{Response, StatusCode};
use schema_registry_server::app::Application;
use schema_registry_server::config::Settings;
use schema_registry_testkit::TestDatabase;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Which backend a test app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite with the in-process L1 cache.
    Sqlite,
    /// PostgreSQL with L1 only.
    Postgres,
    /// PostgreSQL with L1 and the test Redis as L2 (under a key prefix of its own).
    PostgresRedis,
}

pub struct TestApp {
    pub address: String,
    /// The database backend, as `/health/storage` names it: `sqlite` or `postgres`.
    pub database: &'static str,
    pub client: reqwest::Client,
    pub data_dir: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    _dir: Option<tempfile::TempDir>,
    _db: Option<TestDatabase>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().join("data");
        let db = match backend {
            Backend::Sqlite => None,
            Backend::Postgres | Backend::PostgresRedis => Some(TestDatabase::create().await),
        };
        let database_url = db.as_ref().map(|d| d.url().to_string());
        let mut app = Self::start(data_dir, database_url, |s| {
            if backend == Backend::PostgresRedis {
                if let Some(cache) = s.cache.as_mut() {
                    cache.redis_url = Some(schema_registry_testkit::redis_url());
                    cache.key_prefix = schema_registry_testkit::unique_prefix();
                }
            }
        })
        .await;
        app._dir = Some(dir);
        app._db = db;
        app
    }

    /// Starts a server on `data_dir` / `database_url`; `tweak` adjusts the settings first.
    pub async fn start(
        data_dir: PathBuf,
        database_url: Option<String>,
        tweak: impl FnOnce(&mut Settings),
    ) -> TestApp {
        let mut settings =
            Settings::for_database(data_dir.clone(), database_url.clone()).expect("settings");
        settings.storage.postgres.max_connections = 8;
        settings.storage.postgres.min_connections = 0;
        tweak(&mut settings);
        let app = Application::build(settings).await.expect("build app");
        let address = format!("http://{}", app.local_addr().expect("addr"));
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run(async move {
            let _ = rx.await;
        }));
        let database = match &database_url {
            Some(url) if url.starts_with("postgres") => "postgres",
            _ => "sqlite",
        };
        TestApp {
            address,
            database,
            client: reqwest::Client::new(),
            data_dir,
            shutdown: Some(tx),
            server: Some(server),
            _dir: None,
            _db: None,
        }
    }

    /// Stops the server gracefully and waits for it; keeps the data (and test database).
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server run");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.client
            .delete(self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn patch_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .patch(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// Registers `body` under `subject`; returns status and JSON body.
    pub async fn register(&self, subject: &str, body: Value) -> (StatusCode, Value) {
        let path = format!("/api/v1/subjects/{}/versions", encode(subject));
        json_of(self.post_json(&path, &body).await).await
    }

    /// Registers and asserts 201; returns the record.
    pub async fn created(&self, subject: &str, body: Value) -> Value {
        let (status, rec) = self.register(subject, body).await;
        assert_eq!(status, StatusCode::CREATED, "{rec}");
        rec
    }

    pub async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        json_of(self.get(path).await).await
    }

    /// `/api/v1/stats` without the `cache` section (counters that reads move).
    pub async fn data_stats(&self) -> Value {
        let mut stats = self.stats().await;
        if let Some(m) = stats.as_object_mut() {
            m.remove("cache");
        }
        stats
    }

    /// `/api/v1/stats` split into the data counts and the `cache` section.
    pub async fn stats_and_cache(&self) -> (Value, Value) {
        let mut stats = self.stats().await;
        let cache = stats
            .as_object_mut()
            .and_then(|m| m.remove("cache"))
            .unwrap_or_else(|| panic!("no cache section in {stats}"));
        (stats, cache)
    }

    pub async fn stats(&self) -> Value {
        let (status, body) = self.get_json("/api/v1/stats").await;
        assert_eq!(status, StatusCode::OK);
        body
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Percent-encodes a path segment.
pub fn encode(segment: &str) -> String {
    let mut out = String::new();
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub async fn json_of(resp: Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.expect("body");
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    (status, value)
}

/// A `/health/storage` body without the database probe's latency (a time), after checking that
/// it is a non-negative number of milliseconds.
pub fn without_latency(mut health: Value) -> Value {
    let latency = health["tiers"]["database"]
        .as_object_mut()
        .and_then(|d| d.remove("latency_ms"));
    assert!(
        latency
            .as_ref()
            .and_then(Value::as_f64)
            .is_some_and(|ms| ms.is_finite() && ms >= 0.0),
        "latency_ms {latency:?} in {health}"
    );
    health
}

/// Takes the count `key` out of `section` (a number, or the test fails) and returns it. For L1's
/// entry count, which moka keeps lazily: read between two of its upkeep runs it may lag behind
/// the entries filled, so tests bound it rather than expect it exactly.
pub fn take_count(section: &mut Value, key: &str) -> u64 {
    let count = section.as_object_mut().and_then(|m| m.remove(key));
    count
        .as_ref()
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{key}: {count:?} is not a count"))
}

/// Asserts an API error: status, and exactly `{"error": {"code": code, "message": …}}` with a
/// non-empty message.
pub async fn assert_error(resp: Response, status: StatusCode, code: &str) {
    let (got, body) = json_of(resp).await;
    assert_error_body(got, &body, status, code, "");
}

/// As [`assert_error`], on a status and body already read; `context` goes into the message.
pub fn assert_error_body(
    got: StatusCode,
    body: &Value,
    status: StatusCode,
    code: &str,
    context: &str,
) {
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{context} no message: {body}");
    assert_eq!(
        (got, body),
        (
            status,
            &serde_json::json!({"error": {"code": code, "message": message}})
        ),
        "{context}"
    );
}

/// `record` with the top-level fields of `changes` replaced.
pub fn with(record: &Value, changes: Value) -> Value {
    let mut out = record.clone();
    if let (Some(out), Value::Object(changes)) = (out.as_object_mut(), changes) {
        out.extend(changes);
    }
    out
}

/// A record's timestamp (`created_at`, `updated_at`): RFC 3339 in UTC, or the test fails.
pub fn timestamp(value: &Value) -> chrono::DateTime<chrono::Utc> {
    value
        .as_str()
        .filter(|t| t.ends_with('Z'))
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|| panic!("{value} is not an RFC 3339 UTC timestamp"))
}

/// The real `llm-schema-registry` binary running as a separate process.
pub struct ServerProcess {
    pub child: std::process::Child,
    pub address: String,
}

impl ServerProcess {
    /// Starts the binary with `database_url` and `data_dir` on a free port and waits until
    /// `/health/ready` answers 200.
    pub async fn spawn(database_url: &str, data_dir: &std::path::Path) -> ServerProcess {
        Self::spawn_with(database_url, data_dir, None).await
    }

    /// As [`ServerProcess::spawn`], with Redis as L2 under `prefix` when given (`Some((url,
    /// prefix))`); without, the process gets no Redis even if the environment names one.
    pub async fn spawn_with(
        database_url: &str,
        data_dir: &std::path::Path,
        redis: Option<(&str, &str)>,
    ) -> ServerProcess {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            l.local_addr().expect("addr").port()
        };
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_llm-schema-registry"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data_dir)
            .args([
                "--database-url",
                database_url,
                "--database-min-connections",
                "0",
                "--database-max-connections",
                "8",
            ])
            .args(
                redis
                    .map(|(url, prefix)| {
                        vec![
                            "--redis-url".to_string(),
                            url.to_string(),
                            "--cache-key-prefix".to_string(),
                            prefix.to_string(),
                        ]
                    })
                    .unwrap_or_default(),
            )
            .env_remove("REDIS_URL")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn server binary");
        let server = ServerProcess {
            child,
            address: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Ok(r) = client
                .get(format!("{}/health/ready", server.address))
                .send()
                .await
            {
                if r.status() == StatusCode::OK {
                    return server;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "server process did not become ready"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no shutdown, no flush, no goodbye.
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill_hard();
    }
}
