//! Object-tier checks: where large content lands, deduplication, integrity, the S3 outage
//! failover and its reconciliation, and permanent deletes. The behavioural suite runs through
//! the tier in `backends.rs`.

use std::sync::Arc;

use schema_registry_core::{Bump, NewSchema, SchemaContent, SchemaFormat, Subject, VersionRequest};
use schema_registry_storage::objects::{ObjectOptions, ObjectTier};
use schema_registry_storage::{
    Operations, PostgresBackend, PostgresOptions, SqliteBackend, SqliteOptions, StorageBackend,
    StorageError,
};
use schema_registry_testkit::{s3_options_for, unique_prefix, PrivateS3, TestDatabase};
use serde_json::json;

const MIB: usize = 1024 * 1024;

fn big_schema(subject: &str, seed: usize, bytes: usize) -> NewSchema {
    let doc = json!({"title": format!("big {seed}"), "description": "d".repeat(bytes)});
    NewSchema::new(
        Subject::parse(subject).expect("subject"),
        VersionRequest::Next(Bump::Minor),
        SchemaContent::parse(SchemaFormat::JsonSchema, &doc).expect("content"),
    )
}

fn pg_options() -> PostgresOptions {
    PostgresOptions {
        max_connections: 4,
        min_connections: 0,
        ..PostgresOptions::default()
    }
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if !p.to_string_lossy().contains(".s3s") {
                out.push(p);
            }
        }
    }
    out
}

/// On PostgreSQL with S3: a 2 MiB document lands in the bucket, not in the row; reads return
/// identical bytes; identical content is stored once; a permanent delete removes the object
/// only when no other row points to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_content_goes_to_s3_once_and_comes_back_identical() {
    let s3 = PrivateS3::start();
    let db = TestDatabase::create().await;
    let prefix = unique_prefix();
    let tier = Arc::new(
        ObjectTier::new(s3_options_for(
            &s3.endpoint(),
            PrivateS3::BUCKET,
            &prefix,
            MIB as u64,
        ))
        .expect("tier"),
    );
    let b = PostgresBackend::open_with_objects(db.url(), &pg_options(), Some(tier))
        .await
        .expect("open");

    let new = big_schema("big.a", 1, 2 * MIB);
    let expected = new.content.clone();
    let rec = b.register(new).await.expect("register").record;
    let (text, location): (Option<String>, Option<String>) =
        sqlx::query_as("SELECT content_text, content_location FROM schemas WHERE id = $1")
            .bind(rec.id)
            .fetch_one(b.pool())
            .await
            .expect("row");
    assert!(text.is_none(), "the row holds no content");
    assert_eq!(
        location.as_deref(),
        Some(format!("{prefix}/{}", expected.checksum()).as_str()),
        "content-addressed key"
    );
    let stored = files_under(&s3.bucket_dir());
    assert_eq!(stored.len(), 1, "one object in the bucket: {stored:?}");
    assert_eq!(
        std::fs::read(&stored[0]).expect("object bytes"),
        expected.text().as_bytes()
    );

    let back = b.get_by_id(rec.id).await.expect("read");
    assert_eq!(back.content.text(), expected.text(), "identical bytes");
    assert_eq!(back.checksum(), expected.checksum());

    // The same content under another subject: a second row, the same object.
    let mut same = big_schema("big.b", 1, 2 * MIB);
    same.subject = Subject::parse("big.b").expect("s");
    let rec_b = b.register(same).await.expect("register again").record;
    assert_eq!(files_under(&s3.bucket_dir()).len(), 1, "stored once");

    // Deleting one row keeps the object the other row points to; deleting both removes it.
    b.soft_delete(&rec.subject, &rec.version)
        .await
        .expect("soft");
    b.hard_delete(&rec.subject, &rec.version)
        .await
        .expect("hard");
    assert_eq!(
        files_under(&s3.bucket_dir()).len(),
        1,
        "still referenced by big.b"
    );
    assert_eq!(
        b.get_by_id(rec_b.id)
            .await
            .expect("still readable")
            .content
            .text(),
        expected.text()
    );
    b.soft_delete(&rec_b.subject, &rec_b.version)
        .await
        .expect("soft");
    b.hard_delete(&rec_b.subject, &rec_b.version)
        .await
        .expect("hard");
    assert!(
        files_under(&s3.bucket_dir()).is_empty(),
        "no row points to it: removed"
    );
    b.close().await;
}

/// A corrupted object is detected on read and reported, never served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_object_is_detected() {
    let dir = tempfile::tempdir().expect("tmp");
    let url = format!("sqlite://{}", dir.path().join("r.db").display());
    let tier =
        Arc::new(ObjectTier::new(ObjectOptions::local(dir.path().join("objects"))).expect("tier"));
    let b = SqliteBackend::open_with_objects(&url, &SqliteOptions::default(), Some(tier.clone()))
        .await
        .expect("open");
    let rec = b
        .register(big_schema("corrupt", 1, 2 * MIB))
        .await
        .expect("register")
        .record;
    let files = files_under(&dir.path().join("objects"));
    assert_eq!(
        files.len(),
        1,
        "the local directory holds the object: {files:?}"
    );
    let mut bytes = std::fs::read(&files[0]).expect("read");
    bytes[100] ^= 0x01; // one flipped bit
    std::fs::write(&files[0], &bytes).expect("corrupt it");
    let err = b.get_by_id(rec.id).await.expect_err("must not be served");
    assert!(matches!(err, StorageError::Corrupted(_)), "{err:?}");
    assert_eq!(
        tier.counters
            .corrupted
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    std::fs::remove_file(&files[0]).expect("remove");
    assert!(
        matches!(b.get_by_id(rec.id).await, Err(StorageError::Corrupted(_))),
        "a missing object too"
    );
    b.close().await;
}

/// S3 is down: registration succeeds with the content inline and flagged; S3 is back: the
/// reconciler moves it and the row points to the object. No acknowledged write is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_outage_keeps_content_inline_until_the_reconciler_moves_it() {
    let mut s3 = PrivateS3::start();
    let db = TestDatabase::create().await;
    let mut options = s3_options_for(
        &s3.endpoint(),
        PrivateS3::BUCKET,
        &unique_prefix(),
        MIB as u64,
    );
    options.timeout = std::time::Duration::from_millis(500);
    let tier = Arc::new(ObjectTier::new(options).expect("tier"));
    let b = PostgresBackend::open_with_objects(db.url(), &pg_options(), Some(tier.clone()))
        .await
        .expect("open");

    s3.kill();
    let new = big_schema("outage", 1, 2 * MIB);
    let expected = new.content.clone();
    let rec = b
        .register(new)
        .await
        .expect("registration succeeds while S3 is down")
        .record;
    let (text, location, pending): (Option<String>, Option<String>, bool) = sqlx::query_as(
        "SELECT content_text, content_location, content_pending FROM schemas WHERE id = $1",
    )
    .bind(rec.id)
    .fetch_one(b.pool())
    .await
    .expect("row");
    assert!(
        text.is_some() && location.is_none() && pending,
        "inline and flagged"
    );
    assert_eq!(
        b.get_by_id(rec.id)
            .await
            .expect("readable meanwhile")
            .content
            .text(),
        expected.text()
    );
    b.run_maintenance()
        .await
        .expect("a reconcile pass while S3 is down changes nothing");
    assert_eq!(b.tiers()[0].detail["pending_uploads"], 1);

    s3.restart();
    // The breaker may still be cooling down: retry the reconcile pass for a few seconds.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        b.run_maintenance().await.expect("reconcile");
        let (text, location, pending): (Option<String>, Option<String>, bool) = sqlx::query_as(
            "SELECT content_text, content_location, content_pending FROM schemas WHERE id = $1",
        )
        .bind(rec.id)
        .fetch_one(b.pool())
        .await
        .expect("row");
        if !pending {
            assert!(
                text.is_none() && location.is_some(),
                "moved: the row points to the object"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the reconciler never moved the content"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert_eq!(files_under(&s3.bucket_dir()).len(), 1);
    assert_eq!(
        b.get_by_id(rec.id)
            .await
            .expect("read from S3")
            .content
            .text(),
        expected.text()
    );
    b.close().await;
}

/// Presigned URLs: a plain HTTP GET fetches the object; after expiry it is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_urls_work_and_expire() {
    let s3 = PrivateS3::start();
    let dir = tempfile::tempdir().expect("tmp");
    let url = format!("sqlite://{}", dir.path().join("r.db").display());
    let tier = Arc::new(
        ObjectTier::new(s3_options_for(
            &s3.endpoint(),
            PrivateS3::BUCKET,
            "p",
            MIB as u64,
        ))
        .expect("tier"),
    );
    let b = SqliteBackend::open_with_objects(&url, &SqliteOptions::default(), Some(tier))
        .await
        .expect("open");
    let new = big_schema("presign", 1, 2 * MIB);
    let expected = new.content.clone();
    let big = b.register(new).await.expect("register").record;
    let small = b
        .register(big_schema("presign.small", 2, 10))
        .await
        .expect("register")
        .record;

    let (signed, granted) = b
        .presigned_content_url(big.id, std::time::Duration::from_secs(2))
        .await
        .expect("presign")
        .expect("object-held content on S3 gets a presigned URL");
    assert_eq!(granted.as_secs(), 2);
    let resp = reqwest_get(signed.as_str()).await;
    assert_eq!(resp.0, 200, "a plain GET works");
    assert_eq!(resp.1, expected.text().as_bytes());
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let resp = reqwest_get(signed.as_str()).await;
    assert_eq!(resp.0, 403, "refused after expiry");

    assert!(b
        .presigned_content_url(small.id, std::time::Duration::from_secs(60))
        .await
        .expect("inline")
        .is_none());
    assert!(matches!(
        b.presigned_content_url(uuid::Uuid::now_v7(), std::time::Duration::from_secs(60))
            .await,
        Err(StorageError::NotFound(_))
    ));
    b.close().await;
}

/// A minimal HTTP/1.1 GET over a TCP socket (the storage crate has no HTTP client): status and
/// body.
async fn reqwest_get(url: &str) -> (u16, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let u = url::Url::parse(url).expect("url");
    let host = format!(
        "{}:{}",
        u.host_str().expect("host"),
        u.port().expect("port")
    );
    let mut stream = tokio::net::TcpStream::connect(&host)
        .await
        .expect("connect");
    let path = match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers end");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
}
