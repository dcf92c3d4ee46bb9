//! The object tier through the HTTP API.

use reqwest::StatusCode;
use schema_registry_testkit::{s3_test_options, unique_prefix};
use serde_json::{json, Value};

use crate::helpers::{assert_error, Backend, TestApp};

/// A 2 MiB schema on S3: stored and served byte for byte, and its `content-url` is a presigned
/// S3 URL that plain HTTP can fetch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_schemas_on_s3_are_served_and_presigned() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = TestApp::start(dir.path().join("data"), None, |s| {
        s.storage.objects = Some(s3_test_options(&unique_prefix(), 1024 * 1024));
    })
    .await;
    let doc = json!({"type": "object", "description": "x".repeat(2 * 1024 * 1024)});
    let rec = app.created("big", json!({"schema": doc})).await;
    let id = rec["id"].as_str().expect("id");
    assert_eq!(
        rec["size_bytes"].as_u64(),
        Some(doc.to_string().len() as u64)
    );

    let content = app.get(&format!("/api/v1/schemas/{id}/content")).await;
    assert_eq!(content.status(), StatusCode::OK);
    let bytes = content.bytes().await.expect("body");
    assert_eq!(serde_json::from_slice::<Value>(&bytes).expect("json"), doc);

    let asked_at = chrono::Utc::now();
    let (status, link) = app
        .get_json(&format!("/api/v1/schemas/{id}/content-url?expires_in=60"))
        .await;
    let answered_at = chrono::Utc::now();
    assert_eq!(status, StatusCode::OK, "{link}");
    assert_eq!(link["presigned"], true);
    assert_eq!(link["expires_in"], 60);
    // Sixty seconds after the request, in whole seconds, UTC.
    let expires_at = link["expires_at"]
        .as_str()
        .filter(|t| t.len() == "2000-01-01T00:00:00Z".len() && t.ends_with('Z'))
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .unwrap_or_else(|| panic!("expires_at: {link}"));
    let (earliest, latest) = (
        asked_at + chrono::Duration::seconds(59),
        answered_at + chrono::Duration::seconds(61),
    );
    assert!(
        earliest <= expires_at && expires_at <= latest,
        "{expires_at} not about 60 s after {asked_at}"
    );
    let direct = reqwest::get(link["url"].as_str().expect("url"))
        .await
        .expect("GET presigned");
    assert_eq!(direct.status(), StatusCode::OK);
    assert_eq!(
        direct.bytes().await.expect("body"),
        bytes,
        "the same bytes, straight from S3"
    );

    let (_, health) = app.get_json("/health/storage").await;
    assert_eq!(health["tiers"]["objects"]["backend"], "s3");
    assert_eq!(health["tiers"]["objects"]["status"], "up");
}

/// The default tier is a local directory: no presigning, the API's own URL instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_url_falls_back_to_the_api() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let rec = app
        .created("small", json!({"schema": {"type": "string"}}))
        .await;
    let id = rec["id"].as_str().expect("id");
    let (status, link) = app
        .get_json(&format!("/api/v1/schemas/{id}/content-url"))
        .await;
    let url = format!("{}/api/v1/schemas/{id}/content", app.address);
    assert_eq!(
        (status, link),
        (
            StatusCode::OK,
            json!({"url": url, "expires_at": null, "expires_in": null, "presigned": false})
        )
    );
    assert_eq!(
        reqwest::get(&url)
            .await
            .expect("get")
            .text()
            .await
            .expect("text"),
        r#"{"type":"string"}"#
    );

    assert_error(
        app.get(&format!("/api/v1/schemas/{id}/content-url?expires_in=0"))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_query",
    )
    .await;
    assert_error(
        app.get(&format!(
            "/api/v1/schemas/{id}/content-url?expires_in=forever"
        ))
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_query",
    )
    .await;
    assert_error(
        app.get(&format!(
            "/api/v1/schemas/{}/content-url",
            uuid::Uuid::now_v7()
        ))
        .await,
        StatusCode::NOT_FOUND,
        "schema_not_found",
    )
    .await;

    // A 2 MiB document lands in the local object directory and is served identically.
    let doc = json!({"description": "y".repeat(2 * 1024 * 1024)});
    let big = app.created("big-local", json!({"schema": doc})).await;
    let body = app
        .get(&format!(
            "/api/v1/schemas/{}/content",
            big["id"].as_str().expect("id")
        ))
        .await
        .bytes()
        .await
        .expect("b");
    assert_eq!(serde_json::from_slice::<Value>(&body).expect("json"), doc);
    let objects = app.data_dir.join("objects").join("schemas");
    let stored: Vec<_> = std::fs::read_dir(&objects)
        .expect("object dir")
        .flatten()
        .collect();
    assert_eq!(
        stored.len(),
        1,
        "one object file under {}",
        objects.display()
    );
    let (_, health) = app.get_json("/health/storage").await;
    assert_eq!(health["tiers"]["objects"]["backend"], "local");
}

/// The API's own content URL is never built from a `Host` or `X-Forwarded-Proto` a client made
/// up: such a request is 400, and a configured public URL replaces both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_url_trusts_no_made_up_host() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let rec = app
        .created("small", json!({"schema": {"type": "string"}}))
        .await;
    let id = rec["id"].as_str().expect("id").to_string();
    let path = format!("/api/v1/schemas/{id}/content-url");
    let with = |app: &TestApp, headers: &[(&'static str, &'static str)]| {
        let mut req = app.client.get(app.url(&path));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.send()
    };
    for host in [
        "evil.example/phish?x=",
        "",
        "evil.example:80:80",
        "user@evil.example",
    ] {
        let resp = with(&app, &[("host", host)]).await.expect("request");
        assert_error(resp, StatusCode::BAD_REQUEST, "invalid_host").await;
    }
    for proto in ["gopher", "", "https, http"] {
        let resp = with(&app, &[("x-forwarded-proto", proto)])
            .await
            .expect("request");
        assert_error(resp, StatusCode::BAD_REQUEST, "invalid_forwarded_proto").await;
    }
    let (_, link) = crate::helpers::json_of(
        with(
            &app,
            &[
                ("host", "registry.example:8443"),
                ("x-forwarded-proto", "https"),
            ],
        )
        .await
        .expect("request"),
    )
    .await;
    assert_eq!(
        link["url"],
        format!("https://registry.example:8443/api/v1/schemas/{id}/content")
    );

    // With a public URL configured, the headers are not consulted at all.
    let dir = tempfile::tempdir().expect("temp dir");
    let public = TestApp::start(dir.path().join("data"), None, |s| {
        s.public_url = Some("https://registry.example.com/reg".into());
    })
    .await;
    let rec = public
        .created("small", json!({"schema": {"type": "string"}}))
        .await;
    let id = rec["id"].as_str().expect("id").to_string();
    let path = format!("/api/v1/schemas/{id}/content-url");
    let resp = public
        .client
        .get(public.url(&path))
        .header("host", "evil.example/phish?x=")
        .header("x-forwarded-proto", "gopher")
        .send()
        .await
        .expect("request");
    let (status, link) = crate::helpers::json_of(resp).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        link["url"],
        format!("https://registry.example.com/reg/api/v1/schemas/{id}/content")
    );
}
