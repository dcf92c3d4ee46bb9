//! Bad input and unknown things: every 4xx with its status and code, and nothing changed.
//!
//! Input is validated before storage is asked, so malformed requests are checked once, on
//! SQLite; what only storage can tell (an unknown id, subject, version or reference, a version
//! already taken) is checked on both backends.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, assert_error_body, encode, json_of, Backend, TestApp};

on_both_backends!(
    unknown_things_are_not_found_and_refused_writes_change_nothing,
    nul_is_refused_wherever_it_hides
);

/// PostgreSQL's text and jsonb take no NUL, raw or as the escape `\u0000`: every value that
/// would reach them is refused with 422 and the route's code, on both backends alike, and
/// nothing is stored.
async fn nul_is_refused_wherever_it_hides(app: &TestApp) {
    let stats_before = app.data_stats().await;
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let posts: Vec<(Value, &str)> = vec![
        (json!({"schema": {"title": "a\u{0}b"}}), "invalid_schema"),
        (json!({"schema": {"k\u{0}": 1}}), "invalid_schema"),
        (
            json!({"schema": {"a": [{"b": ["\u{0}"]}]}}),
            "invalid_schema",
        ),
        (
            json!({"schema": "{\"type\": \"record\", \"name\": \"R\", \"doc\": \"\\u0000\", \"fields\": []}", "format": "avro"}),
            "invalid_schema",
        ),
        (
            json!({"schema": "syntax = \"proto3\"; // \u{0}", "format": "protobuf"}),
            "invalid_schema",
        ),
        (
            json!({"schema": {}, "metadata": {"k": "\u{0}"}}),
            "invalid_metadata",
        ),
        (
            json!({"schema": {}, "metadata": {"k\u{0}": 1}}),
            "invalid_metadata",
        ),
        (
            json!({"schema": {}, "metadata": {"k": {"n": ["x", {"\u{0}": 1}]}}}),
            "invalid_metadata",
        ),
        (json!({"schema": {}, "tags": ["a\u{0}"]}), "invalid_tag"),
        (
            json!({"schema": {}, "description": "d\u{0}"}),
            "invalid_description",
        ),
    ];
    for (body, code) in posts {
        let text = body.to_string();
        assert!(text.contains("\\u0000"), "sent as an escape: {text}");
        let resp = app.post_json("/api/v1/subjects/nul/versions", &body).await;
        let (got, err) = json_of(resp).await;
        assert_error_body(got, &err, unprocessable, code, &format!("POST {text}"));
    }
    for query in [
        "metadata.n=%22%5Cu0000%22",
        "metadata.n=%00",
        "metadata.%00=1",
        "q=%00",
        "tag=%00",
        "subject_prefix=%00",
    ] {
        let path = format!("/api/v1/search?{query}");
        let (got, err) = json_of(app.get(&path).await).await;
        assert_error_body(
            got,
            &err,
            unprocessable,
            "invalid_query",
            &format!("GET {path}"),
        );
    }
    assert_eq!(app.data_stats().await, stats_before, "nothing was stored");
}

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

/// A `%` in a path segment that does not start an escape of two hex digits is 422
/// `invalid_path`, never taken literally into a subject name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_percent_escapes_are_refused() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let stats_before = app.data_stats().await;
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    for segment in ["%", "%zz", "a%2", "a%2g", "%%41", "ok%"] {
        let path = format!("/api/v1/subjects/{segment}/versions");
        let resp = app.post_json(&path, &json!({"schema": {}})).await;
        let (got, err) = json_of(resp).await;
        assert_error_body(
            got,
            &err,
            unprocessable,
            "invalid_path",
            &format!("POST {path}"),
        );
        for path in [
            format!("/api/v1/subjects/{segment}/versions"),
            format!("/api/v1/subjects/keep/versions/{segment}"),
            format!("/api/v1/schemas/{segment}"),
        ] {
            let (got, err) = app.get_json(&path).await;
            assert_error_body(
                got,
                &err,
                unprocessable,
                "invalid_path",
                &format!("GET {path}"),
            );
        }
    }
    assert_eq!(app.data_stats().await, stats_before, "nothing was stored");
    // A well-formed escape still decodes, in either case of hex digit.
    let resp = app
        .post_json("/api/v1/subjects/a%2fb/versions", &json!({"schema": {}}))
        .await;
    let (status, created) = json_of(resp).await;
    assert_eq!(
        (status, &created["subject"]),
        (StatusCode::CREATED, &json!("a/b"))
    );
    let (status, _) = app.get_json("/api/v1/subjects/a%2Fb/versions/1.0.0").await;
    assert_eq!(status, StatusCode::OK);
}

/// A flag with a value other than `true`, `false`, `1` or `0` is 422 `invalid_query` on every
/// route that takes one, whatever the data: `latest`, a live or deleted version, a missing
/// subject, version or id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_flags_are_refused_whatever_the_data() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let live = app.created("keep", json!({"schema": {"n": 1}})).await;
    app.created("keep", json!({"schema": {"n": 2}})).await;
    let (status, _) = json_of(app.delete("/api/v1/subjects/keep/versions/1.1.0").await).await;
    assert_eq!(status, StatusCode::OK);
    let id = live["id"].as_str().expect("id");
    let missing = "01a242d8-dcc5-7645-8b72-d9bd37bd4f84";
    let stats_before = app.data_stats().await;
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    for value in ["banana", "", "TRUE", "yes"] {
        let gets = [
            format!("/api/v1/subjects/keep/versions?include_deleted={value}"),
            format!("/api/v1/subjects/missing/versions?include_deleted={value}"),
            format!("/api/v1/subjects/keep/versions/latest?include_deleted={value}"),
            format!("/api/v1/subjects/keep/versions/1.0.0?include_deleted={value}"),
            format!("/api/v1/subjects/keep/versions/1.1.0?include_deleted={value}"),
            format!("/api/v1/subjects/keep/versions/9.0.0?include_deleted={value}"),
            format!("/api/v1/subjects/missing/versions/latest?include_deleted={value}"),
            format!("/api/v1/schemas/{id}/dependencies?transitive={value}"),
            format!("/api/v1/schemas/{id}/dependents?transitive={value}"),
            format!("/api/v1/schemas/{missing}/dependencies?transitive={value}"),
            format!("/api/v1/schemas/{missing}/dependents?transitive={value}"),
        ];
        for path in gets {
            let (got, err) = app.get_json(&path).await;
            assert_error_body(
                got,
                &err,
                unprocessable,
                "invalid_query",
                &format!("GET {path}"),
            );
        }
        for path in [
            format!("/api/v1/subjects/keep/versions/1.0.0?permanent={value}"),
            format!("/api/v1/subjects/keep/versions/1.1.0?permanent={value}"),
            format!("/api/v1/subjects/missing/versions/1.0.0?permanent={value}"),
        ] {
            let (got, err) = json_of(app.delete(&path).await).await;
            assert_error_body(
                got,
                &err,
                unprocessable,
                "invalid_query",
                &format!("DELETE {path}"),
            );
        }
    }
    assert_eq!(app.data_stats().await, stats_before, "nothing changed");
    // Good values still work: a deleted exact version is shown only with the flag on.
    for (query, status) in [
        ("", StatusCode::NOT_FOUND),
        ("?include_deleted=false", StatusCode::NOT_FOUND),
        ("?include_deleted=0", StatusCode::NOT_FOUND),
        ("?include_deleted=true", StatusCode::OK),
        ("?include_deleted=1", StatusCode::OK),
    ] {
        let path = format!("/api/v1/subjects/keep/versions/1.1.0{query}");
        let (got, body) = app.get_json(&path).await;
        assert_eq!(got, status, "GET {path}: {body}");
    }
    let (got, latest) = app
        .get_json("/api/v1/subjects/keep/versions/latest?include_deleted=true")
        .await;
    assert_eq!((got, &latest["version"]), (StatusCode::OK, &json!("1.0.0")));
}

/// A path no route matches is 404 `route_not_found`, with a hint that fits it: where the API
/// lives for a path outside `/api/v1`, how to encode a subject that seems to hold a `/`, and no
/// misleading hint otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_not_found_hints_fit_the_path() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let under = "/api/v1";
    let cases = [
        ("/nowhere", Some(under)),
        ("/subjects/a/versions", Some(under)),
        ("/api/v2/subjects", Some(under)),
        ("/api/v1x", Some(under)),
        ("/api/v1", None),
        ("/api/v1/", None),
        ("/api/v1/nowhere", None),
        ("/api/v1/schemas/x/y", None),
        ("/api/v1/subjects/a/", None),
        ("/api/v1/subjects/a/versions/1.0.0/schema", None),
        (
            "/api/v1/subjects/a/b/versions",
            Some("/api/v1/subjects/a%2Fb/versions"),
        ),
        (
            "/api/v1/subjects/a/b/c/versions/1.0.0",
            Some("/api/v1/subjects/a%2Fb%2Fc/versions/1.0.0"),
        ),
        (
            "/api/v1/subjects/tools/search",
            Some("/api/v1/subjects/tools%2Fsearch"),
        ),
    ];
    for (path, hint) in cases {
        let (got, err) = app.get_json(path).await;
        assert_error_body(got, &err, StatusCode::NOT_FOUND, "route_not_found", path);
        let message = err["error"]["message"].as_str().expect("message");
        let lives_under = message.contains("lives under /api/v1");
        match hint {
            Some(h) if h == under => assert!(lives_under, "{path}: {message}"),
            Some(h) => {
                assert!(!lives_under, "{path}: {message}");
                assert!(
                    message.contains("%2F") && message.contains(h),
                    "{path}: {message}"
                );
            }
            None => assert!(
                !lives_under && !message.contains("%2F"),
                "{path}: {message}"
            ),
        }
    }
}
