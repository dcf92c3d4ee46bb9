//! HTTP alone, checked once on SQLite: the content's headers (ETag, caching, media type per
//! format) and conditional GET, subjects in encoded path segments, request ids.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error, encode, Backend, TestApp};

/// Raw content carries its checksum as `ETag`, is cached as immutable and answers
/// `If-None-Match` with 304.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_is_served_with_its_checksum_as_etag() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let rec = app
        .created(
            "orders.created",
            json!({"schema": {"type": "object", "properties": {"id": {"type": "string"}}}}),
        )
        .await;
    let location = format!("/api/v1/schemas/{}", rec["id"].as_str().expect("id"));
    let resp = app.get(&format!("{location}/content")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let etag = resp.headers()["etag"].to_str().expect("etag").to_string();
    assert_eq!(
        etag,
        format!("\"{}\"", rec["checksum"].as_str().expect("checksum"))
    );
    assert_eq!(
        resp.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(resp.headers()["content-type"], "application/schema+json");
    let resp = app
        .client
        .get(app.url(&format!("{location}/content")))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("req");
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(resp.headers()["etag"].to_str().ok(), Some(etag.as_str()));
    assert_eq!(
        resp.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(
        resp.bytes().await.expect("body").len(),
        0,
        "a 304 has no body"
    );
    let resp = app
        .client
        .get(app.url(&format!("{location}/content")))
        .header("if-none-match", "\"other\"")
        .send()
        .await
        .expect("req");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.text().await.expect("text"),
        r#"{"properties":{"id":{"type":"string"}},"type":"object"}"#
    );
}

/// Each format's content is served with its own media type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_types_follow_the_format() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let content_type = |rec: serde_json::Value| {
        let app = &app;
        async move {
            let resp = app
                .get(&format!(
                    "/api/v1/schemas/{}/content",
                    rec["id"].as_str().expect("id")
                ))
                .await;
            assert_eq!(resp.status(), StatusCode::OK);
            resp.headers()["content-type"]
                .to_str()
                .expect("ct")
                .to_string()
        }
    };
    let avro = "{\"type\": \"record\", \"name\": \"User\", \"fields\": [{\"name\": \"id\", \"type\": \"long\"}]}";
    let rec = app
        .created("users-avro", json!({"schema": avro, "format": "avro"}))
        .await;
    assert_eq!(content_type(rec).await, "application/json");
    let proto = "syntax = \"proto3\";\nmessage User { int64 id = 1; }\n";
    let rec = app
        .created(
            "users-proto",
            json!({"schema": proto, "format": "protobuf"}),
        )
        .await;
    assert_eq!(content_type(rec).await, "text/plain; charset=utf-8");
}

/// A subject with encoded slashes and non-ASCII characters is one path segment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoded_slashes_and_non_ascii_subjects_round_trip() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let subject = "名前/with/slashes";
    let versions = format!("/api/v1/subjects/{}/versions", encode(subject));
    assert_error(
        app.get(&versions).await,
        StatusCode::NOT_FOUND,
        "subject_not_found",
    )
    .await;
    let rec = app.created(subject, json!({"schema": {}})).await;
    assert_eq!(rec["subject"], subject);
    let (status, latest) = app.get_json(&format!("{versions}/latest")).await;
    assert_eq!(
        (status, &latest),
        (StatusCode::OK, &rec),
        "encoded slashes and non-ASCII subjects round-trip"
    );
    let (_, subjects) = app.get_json("/api/v1/subjects").await;
    assert_eq!(
        subjects,
        json!({"subjects": [{"subject": subject, "latest_version": "1.0.0", "version_count": 1}], "total": 1})
    );
}

/// Every response carries `x-request-id`: the caller's own when it sent one, otherwise a fresh
/// UUID-shaped id, different for every request, that shares the process's random prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_set_and_propagated() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let id_of = |r: &reqwest::Response| {
        r.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .expect("x-request-id on the response")
    };
    let mut seen = std::collections::HashSet::new();
    let mut prefixes = std::collections::HashSet::new();
    for path in [
        "/health/live",
        "/api/v1/subjects",
        "/health/live",
        "/no/such/route",
    ] {
        let id = id_of(&app.get(path).await);
        let parsed = uuid::Uuid::parse_str(&id).unwrap_or_else(|e| panic!("{id:?}: {e}"));
        prefixes.insert(parsed.as_u64_pair().0);
        assert!(seen.insert(id.clone()), "{id} handed out twice");
    }
    assert_eq!(prefixes.len(), 1, "one process, one prefix: {seen:?}");
    let echoed = app
        .client
        .get(app.url("/health/live"))
        .header("x-request-id", "caller-chosen-42")
        .send()
        .await
        .expect("request");
    assert_eq!(id_of(&echoed), "caller-chosen-42");
}
