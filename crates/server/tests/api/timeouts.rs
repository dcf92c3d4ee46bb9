//! Slow and silent clients: the header, body and idle timeouts cut them off while other clients
//! are served; a declared body over the limit is refused before it is read; a server out of
//! descriptors keeps accepting once the timeouts free some.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::TestApp;

/// A server on SQLite with short timeouts: 1 s for headers, 2 s for a body, 3 s idle.
async fn app_with_short_timeouts() -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tmp");
    let app = TestApp::start(dir.path().join("data"), None, |s| {
        s.timeouts.header = Duration::from_secs(1);
        s.timeouts.body = Duration::from_secs(2);
        s.timeouts.idle = Duration::from_secs(3);
    })
    .await;
    (app, dir)
}

async fn connect(app: &TestApp) -> TcpStream {
    let addr = app.address.trim_start_matches("http://");
    TcpStream::connect(addr).await.expect("connect")
}

/// Reads until the server closes the connection (EOF or reset); returns what was read and
/// when the close came. Fails if it has not closed within `limit`.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, Instant) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => panic!(
                "the connection is still open after {limit:?}; read {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => return (got, Instant::now()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Partial headers, a partial body and a silent connection are each cut after their timeout,
/// while a normal request on another connection is answered at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_others_are_served() {
    let (app, _dir) = app_with_short_timeouts().await;

    let started = Instant::now();
    let mut partial_head = connect(&app).await;
    partial_head
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .expect("write");
    let mut silent = connect(&app).await;
    let mut partial_body = connect(&app).await;
    partial_body
        .write_all(
            b"POST /api/v1/subjects/slow/versions HTTP/1.1\r\nHost: x\r\n\
              Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"schema\":",
        )
        .await
        .expect("write");

    // The slow clients hold no one up.
    let resp = app.get("/health/live").await;
    assert_eq!(resp.status(), StatusCode::OK);

    let (_, cut) = read_until_closed(&mut partial_head, Duration::from_secs(10)).await;
    let waited = cut - started;
    assert!(
        waited >= Duration::from_millis(900),
        "cut after {waited:?}, before its header timeout"
    );
    let (_, cut) = read_until_closed(&mut silent, Duration::from_secs(10)).await;
    assert!(cut - started >= Duration::from_millis(900));
    let (_, cut) = read_until_closed(&mut partial_body, Duration::from_secs(10)).await;
    let waited = cut - started;
    assert!(
        waited >= Duration::from_millis(1900),
        "cut after {waited:?}, before its body timeout"
    );
    // Nothing was registered from the half-sent body.
    let (status, _) = app.get_json("/api/v1/subjects/slow/versions").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/health/live").await.status(), StatusCode::OK);
}

/// A keep-alive connection may wait longer than the header timeout between requests, up to
/// the idle timeout, and is then closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let (app, _dir) = app_with_short_timeouts().await;
    let mut stream = connect(&app).await;
    let request = b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut buf = [0u8; 4096];
    for _ in 0..2 {
        stream.write_all(request).await.expect("write");
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("an answer")
            .expect("read");
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
        // Longer than the header timeout, shorter than the idle one.
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let idle_from = Instant::now() - Duration::from_millis(1500);
    let (rest, cut) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(rest.is_empty(), "{rest:?}");
    let waited = cut - idle_from;
    assert!(
        waited >= Duration::from_millis(2900),
        "closed after {waited:?} idle, before the idle timeout"
    );
}

/// A `Content-Length` over `max_body_bytes` is answered 413 `payload_too_large` at once, on
/// any route, before a byte of the body is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_body_over_the_limit_is_refused_before_it_is_read() {
    let (app, _dir) = app_with_short_timeouts().await;
    for path in ["/api/v1/subjects/big/versions", "/health/live"] {
        let mut stream = connect(&app).await;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            64 * 1024 * 1024
        );
        stream.write_all(head.as_bytes()).await.expect("write");
        let started = Instant::now();
        let (answer, _) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
        assert!(
            started.elapsed() < Duration::from_millis(900),
            "answered only after {:?} (a timeout, not the limit)",
            started.elapsed()
        );
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 413"), "{path}: {answer}");
        let body = answer.split("\r\n\r\n").nth(1).expect("a body");
        let body: Value = serde_json::from_str(body).expect("JSON error body");
        assert_eq!(body["error"]["code"], "payload_too_large", "{answer}");
    }
}

/// A server process limited to 128 descriptors, flooded with silent connections, keeps
/// accepting: the header timeout frees the descriptors, `/health/live` answers, and the
/// accept errors are logged once per run of failures, not once each.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_out_of_descriptors_recovers_and_logs_once() {
    let dir = tempfile::tempdir().expect("tmp");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        l.local_addr().expect("addr").port()
    };
    let log = dir.path().join("server.log");
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -n 128 && exec "$0" "$@" >"$LOG""#)
        .arg(env!("CARGO_BIN_EXE_llm-schema-registry"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--header-read-timeout-secs", "1", "--log-format", "json"])
        .env("LOG", &log)
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env("RUST_LOG", "info")
        .spawn()
        .expect("spawn server");
    let base = format!("http://127.0.0.1:{port}");
    // A new connection per request: each must be accepted past the flood.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let ready_by = Instant::now() + Duration::from_secs(30);
    while !client
        .get(format!("{base}/health/live"))
        .send()
        .await
        .is_ok_and(|r| r.status() == StatusCode::OK)
    {
        assert!(Instant::now() < ready_by, "the server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // More silent connections than the server has descriptors.
    let mut idle = Vec::new();
    for _ in 0..200 {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)).await {
            idle.push(s);
        }
    }
    let flooded = Instant::now();
    let recovered_by = flooded + Duration::from_secs(20);
    loop {
        let live = client.get(format!("{base}/health/live")).send().await;
        if live.is_ok_and(|r| r.status() == StatusCode::OK) {
            break;
        }
        assert!(
            Instant::now() < recovered_by,
            "/health/live does not answer"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("recovered after {:?}", flooded.elapsed());
    drop(idle);
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(&log).expect("log");
    let failures = log.matches("cannot accept connections").count();
    assert!(failures >= 1, "no accept failure logged: {log}");
    // The run of failures lasted seconds, with a retry every 100 ms: one line per error would
    // be dozens.
    assert!(failures <= 5, "{failures} lines for accept failures: {log}");
}
