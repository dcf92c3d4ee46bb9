//! Bad input and unknown things: every 4xx with its status and code, and nothing changed.
//!
//! Input is validated before storage is asked, so malformed requests are checked once, on
//! SQLite; what only storage can tell (an unknown id, subject, version or reference, a version
//! already taken) is checked on both backends.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, assert_error_body, encode, json_of, Backend, TestApp};

on_both_backends!(unknown_things_are_not_found_and_refused_writes_change_nothing);

/// Lookups of what does not exist are 404 with the code naming what is missing; writes that
/// storage refuses (a reference to nothing, a version already taken) leave everything as it was.
async fn unknown_things_are_not_found_and_refused_writes_change_nothing(app: &TestApp) {
    let original = app
        .created("keep", json!({"schema": {"type": "string"}, "tags": ["t"]}))
        .await;
    let id = original["id"].as_str().expect("id").to_string();
    let stats_before = app.data_stats().await;
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let not_found = StatusCode::NOT_FOUND;

    let posts: Vec<(Value, StatusCode, &str)> = vec![
        (
            json!({"schema": {}, "references": [{"subject": "missing", "version": "1.0.0"}]}),
            unprocessable,
            "unknown_reference",
        ),
        (
            json!({"schema": {}, "version": "1.0.0"}),
            StatusCode::CONFLICT,
            "version_exists",
        ),
    ];
    for (body, status, code) in posts {
        let resp = app.post_json("/api/v1/subjects/keep/versions", &body).await;
        let (got, err) = json_of(resp).await;
        assert_error_body(got, &err, status, code, &format!("POST {body}"));
    }

    let unknown = uuid::Uuid::now_v7();
    let gets: Vec<(String, &str)> = vec![
        (format!("/api/v1/schemas/{unknown}"), "schema_not_found"),
        (
            format!("/api/v1/schemas/{unknown}/content"),
            "schema_not_found",
        ),
        (
            format!("/api/v1/schemas/{unknown}/dependencies"),
            "schema_not_found",
        ),
        ("/api/v1/subjects/nope/versions".into(), "subject_not_found"),
        (
            "/api/v1/subjects/nope/versions/latest".into(),
            "subject_not_found",
        ),
        (
            "/api/v1/subjects/keep/versions/9.9.9".into(),
            "version_not_found",
        ),
    ];
    for (path, code) in gets {
        let (got, err) = app.get_json(&path).await;
        assert_error_body(got, &err, not_found, code, &format!("GET {path}"));
    }
    assert_error(
        app.patch_json(
            &format!("/api/v1/schemas/{unknown}"),
            &json!({"state": "active"}),
        )
        .await,
        not_found,
        "schema_not_found",
    )
    .await;
    assert_error(
        app.delete("/api/v1/subjects/nope").await,
        not_found,
        "subject_not_found",
    )
    .await;

    assert_eq!(
        app.data_stats().await,
        stats_before,
        "no refused request changed anything"
    );
    let (_, still) = app.get_json(&format!("/api/v1/schemas/{id}")).await;
    assert_eq!(still, original);
}

/// Every kind of malformed input gets its 4xx and code, and leaves stored data exactly as it
/// was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_rejected_and_changes_nothing() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let original = app
        .created("keep", json!({"schema": {"type": "string"}, "tags": ["t"]}))
        .await;
    let id = original["id"].as_str().expect("id").to_string();
    let stats_before = app.data_stats().await;
    let post = |subject: &str| format!("/api/v1/subjects/{}/versions", encode(subject));
    let raw = |path: String, ctype: &'static str, body: &'static str| {
        let req = app
            .client
            .post(app.url(&path))
            .header("content-type", ctype)
            .body(body);
        async move { req.send().await.expect("request") }
    };
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;

    assert_error(
        raw(post("keep"), "application/json", "{\"schema\": ").await,
        unprocessable,
        "invalid_json",
    )
    .await;
    assert_error(
        raw(post("keep"), "application/json", "not json").await,
        unprocessable,
        "invalid_json",
    )
    .await;
    assert_error(
        raw(post("keep"), "text/plain", "{\"schema\": {}}").await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let cases: Vec<(String, Value, StatusCode, &str)> = vec![
        (post("keep"), json!({}), unprocessable, "invalid_body"),
        (
            post("keep"),
            json!({"schema": {}, "descripton": "typo"}),
            unprocessable,
            "invalid_body",
        ),
        (
            post("keep"),
            json!({"schema": {}, "metadata": [1]}),
            unprocessable,
            "invalid_body",
        ),
        (
            post("keep"),
            json!({"schema": {}, "tags": "pii"}),
            unprocessable,
            "invalid_body",
        ),
        (
            post("has space"),
            json!({"schema": {}}),
            unprocessable,
            "invalid_subject",
        ),
        (
            post("tab\there"),
            json!({"schema": {}}),
            unprocessable,
            "invalid_subject",
        ),
        (
            post("nul\0byte"),
            json!({"schema": {}}),
            unprocessable,
            "invalid_subject",
        ),
        (
            post("zero\u{200B}width"),
            json!({"schema": {}}),
            unprocessable,
            "invalid_subject",
        ),
        (
            post(&"x".repeat(256)),
            json!({"schema": {}}),
            unprocessable,
            "invalid_subject",
        ),
        (
            post("keep"),
            json!({"schema": {}, "version": "1.0"}),
            unprocessable,
            "invalid_version",
        ),
        (
            post("keep"),
            json!({"schema": {}, "version": "1.0.0+build"}),
            unprocessable,
            "invalid_version",
        ),
        (
            post("keep"),
            json!({"schema": {}, "version": "2.0.0", "bump": "major"}),
            unprocessable,
            "invalid_version",
        ),
        (
            post("keep"),
            json!({"schema": {}, "bump": "huge"}),
            unprocessable,
            "invalid_bump",
        ),
        (
            post("keep"),
            json!({"schema": {}, "format": "xml"}),
            unprocessable,
            "invalid_format",
        ),
        (
            post("keep"),
            json!({"schema": 42}),
            unprocessable,
            "invalid_schema",
        ),
        (
            post("keep"),
            json!({"schema": [1, 2]}),
            unprocessable,
            "invalid_schema",
        ),
        (
            post("keep"),
            json!({"schema": "{not json"}),
            unprocessable,
            "invalid_schema",
        ),
        (
            post("keep"),
            json!({"schema": {"title": "nul\u{0}"}}),
            unprocessable,
            "invalid_schema",
        ),
        (
            post("keep"),
            json!({"schema": "{\"type\": \"record\"}", "format": "avro"}),
            unprocessable,
            "invalid_schema",
        ),
        // Names the Avro parser panics on: bad input, never a 500.
        (
            post("keep"),
            json!({"schema": "{\"type\":\"record\",\"name\":\"1R\",\"fields\":[]}", "format": "avro"}),
            unprocessable,
            "invalid_schema",
        ),
        (
            post("keep"),
            json!({"schema": {"type": "record", "name": "my-record", "fields": []}, "format": "avro"}),
            unprocessable,
            "invalid_schema",
        ),
        (
            post("keep"),
            json!({"schema": "", "format": "protobuf"}),
            unprocessable,
            "invalid_schema",
        ),
        (
            post("keep"),
            json!({"schema": {}, "tags": [""]}),
            unprocessable,
            "invalid_tag",
        ),
        (
            post("keep"),
            json!({"schema": {}, "tags": ["a\nb"]}),
            unprocessable,
            "invalid_tag",
        ),
        (
            post("keep"),
            json!({"schema": {}, "metadata": {"k": "x".repeat(70_000)}}),
            unprocessable,
            "invalid_metadata",
        ),
        (
            post("keep"),
            json!({"schema": {}, "description": "d".repeat(20_000)}),
            unprocessable,
            "invalid_description",
        ),
        (
            post("keep"),
            json!({"schema": {}, "references": [{"subject": "keep", "version": "one"}]}),
            unprocessable,
            "invalid_reference",
        ),
        (
            post("keep"),
            json!({"schema": {}, "references": [{"subject": "bad name", "version": "1.0.0"}]}),
            unprocessable,
            "invalid_reference",
        ),
    ];
    for (path, body, status, code) in cases {
        let resp = app.post_json(&path, &body).await;
        let (got, err) = json_of(resp).await;
        assert_error_body(got, &err, status, code, &format!("POST {path} {body}"));
    }

    // Oversize body: 413, not a 500 and not a dropped connection. The server answers before
    // reading the rest of the body and then closes that connection (it cannot be reused with
    // an unread body on it), so the request says `Connection: close`: otherwise the client may
    // race the close by reusing the connection for the next request.
    let huge = json!({"schema": {"blob": "x".repeat(17 * 1024 * 1024)}});
    let oversize = app
        .client
        .post(app.url(&post("keep")))
        .header("connection", "close")
        .json(&huge)
        .send()
        .await
        .expect("oversize request");
    assert_error(oversize, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    let not_found = StatusCode::NOT_FOUND;
    let gets: Vec<(String, StatusCode, &str)> = vec![
        (
            "/api/v1/schemas/not-a-uuid".into(),
            unprocessable,
            "invalid_id",
        ),
        (
            "/api/v1/schemas/%27%3B%20DROP%20TABLE%20schemas".into(),
            unprocessable,
            "invalid_id",
        ),
        (
            "/api/v1/subjects/keep/versions/nine".into(),
            unprocessable,
            "invalid_version",
        ),
        (
            "/api/v1/subjects/bad%20name/versions".into(),
            unprocessable,
            "invalid_subject",
        ),
        (
            "/api/v1/subjects?limit=0".into(),
            unprocessable,
            "invalid_query",
        ),
        (
            "/api/v1/subjects?limit=1001".into(),
            unprocessable,
            "invalid_query",
        ),
        (
            "/api/v1/subjects?offset=-1".into(),
            unprocessable,
            "invalid_query",
        ),
        (
            "/api/v1/subjects?prefx=a".into(),
            unprocessable,
            "invalid_query",
        ),
        (
            "/api/v1/search?q=a%00b".into(),
            unprocessable,
            "invalid_query",
        ),
        // Invalid format/state in search are domain errors with their own codes, not generic ones.
        (
            "/api/v1/search?format=xml".into(),
            unprocessable,
            "invalid_format",
        ),
        (
            "/api/v1/search?state=gone".into(),
            unprocessable,
            "invalid_state",
        ),
        (
            "/api/v1/search?colour=red".into(),
            unprocessable,
            "invalid_query",
        ),
        (
            "/api/v1/subjects/keep/versions?include_deleted=maybe".into(),
            unprocessable,
            "invalid_query",
        ),
        ("/api/v1/nowhere".into(), not_found, "route_not_found"),
    ];
    for (path, status, code) in gets {
        let (got, err) = app.get_json(&path).await;
        assert_error_body(got, &err, status, code, &format!("GET {path}"));
    }
    assert_error(
        app.client
            .put(app.url("/api/v1/stats"))
            .send()
            .await
            .expect("req"),
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
    assert_error(
        app.patch_json(
            &format!("/api/v1/schemas/{id}"),
            &json!({"state": "deleted"}),
        )
        .await,
        unprocessable,
        "invalid_state",
    )
    .await;
    assert_error(
        app.patch_json(&format!("/api/v1/schemas/{id}"), &json!({"state": "bogus"}))
            .await,
        unprocessable,
        "invalid_state",
    )
    .await;
    assert_error(
        app.patch_json(&format!("/api/v1/schemas/{id}"), &json!({"stat": "active"}))
            .await,
        unprocessable,
        "invalid_body",
    )
    .await;
    assert_error(
        app.delete("/api/v1/subjects/keep/versions/latest").await,
        unprocessable,
        "invalid_version",
    )
    .await;
    assert_error(
        app.delete("/api/v1/subjects/keep/versions/1.0.0?permanent=yes")
            .await,
        unprocessable,
        "invalid_query",
    )
    .await;

    assert_eq!(
        app.data_stats().await,
        stats_before,
        "no bad request changed anything"
    );
    let (_, still) = app.get_json(&format!("/api/v1/schemas/{id}")).await;
    assert_eq!(still, original);
}
