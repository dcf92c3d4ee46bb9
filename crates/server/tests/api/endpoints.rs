//! The API behaviour suite: each function checks one endpoint family over real HTTP. `main.rs`
//! runs every function against every backend.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, encode, json_of, TestApp};

pub async fn register_then_fetch_every_way(app: &TestApp) {
    let resp = app
        .post_json(
            "/api/v1/subjects/orders.created/versions",
            &json!({"schema": {"type": "object", "properties": {"id": {"type": "string"}}},
                    "description": "An order", "metadata": {"team": "payments"}, "tags": ["pii"]}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let location = resp.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let (_, rec) = json_of(resp).await;
    let id = rec["id"].as_str().expect("id").to_string();
    assert_eq!(location, format!("/api/v1/schemas/{id}"));
    assert_eq!(rec["subject"], "orders.created");
    assert_eq!(rec["version"], "1.0.0");
    assert_eq!(rec["format"], "json_schema");
    assert_eq!(rec["state"], "active");
    assert_eq!(
        rec["schema"],
        json!({"type": "object", "properties": {"id": {"type": "string"}}})
    );
    assert_eq!(rec["checksum"].as_str().map(str::len), Some(64));
    assert_eq!(
        rec["size_bytes"],
        json!(r#"{"properties":{"id":{"type":"string"}},"type":"object"}"#.len())
    );
    for key in [
        "description",
        "metadata",
        "tags",
        "references",
        "created_at",
        "updated_at",
    ] {
        assert!(rec.get(key).is_some(), "record has {key}");
    }

    let (status, by_id) = app.get_json(&location).await;
    assert_eq!((status, &by_id), (StatusCode::OK, &rec));
    let (status, by_version) = app
        .get_json("/api/v1/subjects/orders.created/versions/1.0.0")
        .await;
    assert_eq!((status, &by_version), (StatusCode::OK, &rec));
    let (status, latest) = app
        .get_json("/api/v1/subjects/orders.created/versions/latest")
        .await;
    assert_eq!((status, &latest), (StatusCode::OK, &rec));

    // Raw content: canonical bytes, checksum as ETag, immutable caching, conditional GET.
    let resp = app.get(&format!("{location}/content")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let etag = resp.headers()["etag"].to_str().expect("etag").to_string();
    assert_eq!(
        etag,
        format!("\"{}\"", rec["checksum"].as_str().expect("checksum"))
    );
    assert!(resp.headers()["cache-control"]
        .to_str()
        .expect("cc")
        .contains("immutable"));
    assert_eq!(resp.headers()["content-type"], "application/schema+json");
    assert_eq!(
        resp.text().await.expect("text"),
        r#"{"properties":{"id":{"type":"string"}},"type":"object"}"#
    );
    let resp = app
        .client
        .get(app.url(&format!("{location}/content")))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("req");
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(resp.headers()["etag"].to_str().ok(), Some(etag.as_str()));
    let resp = app
        .client
        .get(app.url(&format!("{location}/content")))
        .header("if-none-match", "\"other\"")
        .send()
        .await
        .expect("req");
    assert_eq!(resp.status(), StatusCode::OK);

    let (status, versions) = app
        .get_json("/api/v1/subjects/orders.created/versions")
        .await;
    assert_eq!(
        (status, versions),
        (StatusCode::OK, json!({"versions": ["1.0.0"]}))
    );
    let (status, subjects) = app.get_json("/api/v1/subjects").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        subjects,
        json!({"subjects": [{"subject": "orders.created", "latest_version": "1.0.0", "version_count": 1}], "total": 1})
    );
}

pub async fn retries_are_idempotent(app: &TestApp) {
    let body = json!({"schema": {"b": 1, "a": {"y": 2, "x": 1}}});
    let first = app.created("s", body.clone()).await;
    let (status, again) = app
        .register("s", json!({"schema": {"a": {"x": 1, "y": 2}, "b": 1}}))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "same canonical content: the existing record, 200"
    );
    assert_eq!(again, first);
    let (status, exact) = app
        .register(
            "s",
            json!({"schema": {"b": 1, "a": {"y": 2, "x": 1}}, "version": "1.0.0"}),
        )
        .await;
    assert_eq!(
        (status, exact["id"].clone()),
        (StatusCode::OK, first["id"].clone())
    );
    let (status, _) = app
        .register("s", json!({"schema": "{\"b\":1,\"a\":{\"x\":1,\"y\":2}}"}))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a JSON Schema sent as a string is the same schema"
    );
    assert_eq!(app.stats().await["schemas"], 1);
}

pub async fn versions_bump_or_are_explicit(app: &TestApp) {
    let v = |r: &Value| r["version"].as_str().expect("version").to_string();
    assert_eq!(
        v(&app.created("b", json!({"schema": {"n": 1}})).await),
        "1.0.0"
    );
    assert_eq!(
        v(&app.created("b", json!({"schema": {"n": 2}})).await),
        "1.1.0"
    );
    assert_eq!(
        v(&app
            .created("b", json!({"schema": {"n": 3}, "bump": "patch"}))
            .await),
        "1.1.1"
    );
    assert_eq!(
        v(&app
            .created("b", json!({"schema": {"n": 4}, "bump": "major"}))
            .await),
        "2.0.0"
    );
    assert_eq!(
        v(&app
            .created("b", json!({"schema": {"n": 5}, "version": "2.5.0-rc.1"}))
            .await),
        "2.5.0-rc.1"
    );
    let (status, body) = app
        .register("b", json!({"schema": {"n": 6}, "version": "1.0.0"}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("version_exists"))
    );
    let (_, versions) = app.get_json("/api/v1/subjects/b/versions").await;
    assert_eq!(
        versions["versions"],
        json!(["1.0.0", "1.1.0", "1.1.1", "2.0.0", "2.5.0-rc.1"])
    );
    let (_, latest) = app.get_json("/api/v1/subjects/b/versions/latest").await;
    assert_eq!(latest["version"], "2.0.0", "latest skips pre-releases");
    let (_, v1) = app.get_json("/api/v1/subjects/b/versions/1.0.0").await;
    assert_eq!(
        v1["schema"],
        json!({"n": 1}),
        "the conflicting write changed nothing"
    );
}

/// Every kind of bad input gets its 4xx and code, and leaves stored data exactly as it was.
pub async fn bad_input_is_rejected_and_changes_nothing(app: &TestApp) {
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
            json!({"schema": {}, "references": [{"subject": "missing", "version": "1.0.0"}]}),
            unprocessable,
            "unknown_reference",
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
        (
            post("keep"),
            json!({"schema": {}, "version": "1.0.0"}),
            StatusCode::CONFLICT,
            "version_exists",
        ),
    ];
    for (path, body, status, code) in cases {
        let resp = app.post_json(&path, &body).await;
        let (got, err) = json_of(resp).await;
        assert_eq!(
            (got, err["error"]["code"].as_str()),
            (status, Some(code)),
            "POST {path} {body}: {err}"
        );
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
    let unknown = uuid::Uuid::now_v7();
    let gets: Vec<(String, StatusCode, &str)> = vec![
        (
            format!("/api/v1/schemas/{unknown}"),
            not_found,
            "schema_not_found",
        ),
        (
            format!("/api/v1/schemas/{unknown}/content"),
            not_found,
            "schema_not_found",
        ),
        (
            format!("/api/v1/schemas/{unknown}/dependencies"),
            not_found,
            "schema_not_found",
        ),
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
            "/api/v1/subjects/nope/versions".into(),
            not_found,
            "subject_not_found",
        ),
        (
            "/api/v1/subjects/nope/versions/latest".into(),
            not_found,
            "subject_not_found",
        ),
        (
            "/api/v1/subjects/keep/versions/9.9.9".into(),
            not_found,
            "version_not_found",
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
        assert_eq!(
            (got, err["error"]["code"].as_str()),
            (status, Some(code)),
            "GET {path}: {err}"
        );
    }
    // Invalid format/state in search are domain errors with their own codes, not generic ones.
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
    assert_error(
        app.delete("/api/v1/subjects/nope").await,
        not_found,
        "subject_not_found",
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

pub async fn state_can_be_deprecated_and_restored(app: &TestApp) {
    let rec = app.created("st", json!({"schema": {}})).await;
    let path = format!("/api/v1/schemas/{}", rec["id"].as_str().expect("id"));
    let (status, dep) = json_of(app.patch_json(&path, &json!({"state": "deprecated"})).await).await;
    assert_eq!(
        (status, dep["state"].as_str()),
        (StatusCode::OK, Some("deprecated"))
    );
    let (_, latest) = app.get_json("/api/v1/subjects/st/versions/latest").await;
    assert_eq!(latest["state"], "deprecated");
    let (status, act) = json_of(app.patch_json(&path, &json!({"state": "active"})).await).await;
    assert_eq!(
        (status, act["state"].as_str()),
        (StatusCode::OK, Some("active"))
    );
    assert_eq!(
        app.delete("/api/v1/subjects/st/versions/1.0.0")
            .await
            .status(),
        StatusCode::OK
    );
    assert_error(
        app.patch_json(&path, &json!({"state": "active"})).await,
        StatusCode::CONFLICT,
        "schema_deleted",
    )
    .await;
}

pub async fn deletes_soft_then_permanent(app: &TestApp) {
    let base = app
        .created("base", json!({"schema": {"n": 1}, "tags": ["x"]}))
        .await;
    app.created("base", json!({"schema": {"n": 2}})).await;
    let user = app
        .created(
            "user",
            json!({"schema": {}, "references": [{"subject": "base", "version": "1.0.0"}]}),
        )
        .await;
    let base_id = base["id"].as_str().expect("id");

    assert_error(
        app.delete("/api/v1/subjects/base/versions/1.0.0?permanent=true")
            .await,
        StatusCode::CONFLICT,
        "not_soft_deleted",
    )
    .await;
    let (status, deleted) = json_of(app.delete("/api/v1/subjects/base/versions/1.0.0").await).await;
    assert_eq!(
        (
            status,
            deleted["state"].as_str(),
            deleted["permanent"].as_bool()
        ),
        (StatusCode::OK, Some("deleted"), Some(false))
    );
    let (_, versions) = app.get_json("/api/v1/subjects/base/versions").await;
    assert_eq!(versions["versions"], json!(["1.1.0"]));
    let (_, versions) = app
        .get_json("/api/v1/subjects/base/versions?include_deleted=true")
        .await;
    assert_eq!(versions["versions"], json!(["1.0.0", "1.1.0"]));
    let (status, _) = app.get_json("/api/v1/subjects/base/versions/1.0.0").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "hidden by subject and version"
    );
    let (status, _) = app
        .get_json("/api/v1/subjects/base/versions/1.0.0?include_deleted=true")
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, by_id) = app.get_json(&format!("/api/v1/schemas/{base_id}")).await;
    assert_eq!(
        (status, by_id["state"].as_str()),
        (StatusCode::OK, Some("deleted")),
        "still readable by id"
    );
    let (_, found) = app.get_json("/api/v1/search?tag=x").await;
    assert_eq!(found["total"], 0, "hidden from search");

    assert_error(
        app.delete("/api/v1/subjects/base/versions/1.0.0?permanent=true")
            .await,
        StatusCode::CONFLICT,
        "schema_referenced",
    )
    .await;
    assert_eq!(
        app.delete("/api/v1/subjects/user/versions/1.0.0")
            .await
            .status(),
        StatusCode::OK
    );
    let (status, gone) = json_of(
        app.delete("/api/v1/subjects/base/versions/1.0.0?permanent=true")
            .await,
    )
    .await;
    assert_eq!(
        (status, gone["permanent"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    assert_error(
        app.get(&format!("/api/v1/schemas/{base_id}")).await,
        StatusCode::NOT_FOUND,
        "schema_not_found",
    )
    .await;
    let _ = user;

    let (status, body) = json_of(app.delete("/api/v1/subjects/base").await).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"subject": "base", "deleted_versions": ["1.1.0"]})
        )
    );
    assert_error(
        app.get("/api/v1/subjects/base/versions/latest").await,
        StatusCode::NOT_FOUND,
        "subject_not_found",
    )
    .await;
    let (_, subjects) = app.get_json("/api/v1/subjects").await;
    assert_eq!(subjects["total"], 0);
}

pub async fn search_filters(app: &TestApp) {
    let a = app.created("events.invoice", json!({"schema": {"title": "a"}, "tags": ["finance", "pii"], "metadata": {"team": "billing", "rev": 3}})).await;
    let b = app.created("events.user", json!({"schema": {"title": "invoice"}, "tags": ["finance"], "metadata": {"team": "billing", "rev": "3"}})).await;
    let c = app.created("other", json!({"schema": "syntax = \"proto3\"; message Invoice {}", "format": "protobuf", "description": "Invoice as protobuf"})).await;
    let ids = |v: &Value| {
        v["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| r["id"].clone())
            .collect::<Vec<_>>()
    };
    let (status, r) = app.get_json("/api/v1/search?q=invoice").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        ids(&r),
        vec![a["id"].clone(), c["id"].clone(), b["id"].clone()],
        "subject, then description, then content"
    );
    assert_eq!(r["total"], 3);
    let (_, r) = app.get_json("/api/v1/search?tag=finance&tag=pii").await;
    assert_eq!(ids(&r), vec![a["id"].clone()]);
    let (_, r) = app.get_json("/api/v1/search?metadata.rev=3").await;
    assert_eq!(ids(&r), vec![a["id"].clone()], "typed: 3 is a number");
    let (_, r) = app.get_json("/api/v1/search?metadata.rev=%223%22").await;
    assert_eq!(ids(&r), vec![b["id"].clone()], "\"3\" is the string");
    let (_, r) = app
        .get_json("/api/v1/search?metadata.team=billing&subject_prefix=events.&limit=1&offset=1")
        .await;
    assert_eq!(
        (ids(&r), r["total"].clone()),
        (vec![a["id"].clone()], json!(2))
    );
    let (_, r) = app.get_json("/api/v1/search?format=protobuf").await;
    assert_eq!(ids(&r), vec![c["id"].clone()]);
    let (_, r) = app.get_json("/api/v1/search?state=deprecated").await;
    assert_eq!(r["total"], 0);
}

pub async fn dependency_endpoints(app: &TestApp) {
    let c = app.created("c", json!({"schema": {"c": 1}})).await;
    let b = app
        .created(
            "b",
            json!({"schema": {"b": 1}, "references": [{"subject": "c", "version": "1.0.0"}]}),
        )
        .await;
    let a = app
        .created(
            "a",
            json!({"schema": {"a": 1}, "references": [{"subject": "b", "version": "1.0.0"}]}),
        )
        .await;
    assert_eq!(
        a["references"],
        json!([{"subject": "b", "version": "1.0.0"}])
    );
    let path = |id: &Value, kind: &str, t: bool| {
        format!(
            "/api/v1/schemas/{}/{kind}?transitive={t}",
            id.as_str().expect("id")
        )
    };
    let (status, direct) = app.get_json(&path(&a["id"], "dependencies", false)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(direct["dependencies"].as_array().map(Vec::len), Some(1));
    assert_eq!(direct["dependencies"][0]["subject"], "b");
    assert_eq!(direct["dependencies"][0]["depth"], 1);
    let (_, all) = app.get_json(&path(&a["id"], "dependencies", true)).await;
    let subjects: Vec<_> = all["dependencies"]
        .as_array()
        .expect("deps")
        .iter()
        .map(|d| (d["subject"].clone(), d["depth"].clone()))
        .collect();
    assert_eq!(
        subjects,
        vec![(json!("b"), json!(1)), (json!("c"), json!(2))]
    );
    let (_, users) = app.get_json(&path(&c["id"], "dependents", true)).await;
    assert_eq!(users["dependents"].as_array().map(Vec::len), Some(2));
    let (_, users) = app.get_json(&path(&b["id"], "dependents", false)).await;
    assert_eq!(users["dependents"][0]["id"], a["id"]);
}

pub async fn avro_and_protobuf(app: &TestApp) {
    let avro = "{\"type\": \"record\", \"name\": \"User\", \"fields\": [{\"name\": \"id\", \"type\": \"long\"}]}";
    let rec = app
        .created("users-avro", json!({"schema": avro, "format": "avro"}))
        .await;
    assert_eq!(
        rec["schema"],
        json!(avro),
        "Avro comes back as the string it was sent as"
    );
    let resp = app
        .get(&format!(
            "/api/v1/schemas/{}/content",
            rec["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(resp.text().await.expect("text"), avro);
    let proto = "syntax = \"proto3\";\nmessage User { int64 id = 1; }\n";
    let rec = app
        .created(
            "users-proto",
            json!({"schema": proto, "format": "protobuf"}),
        )
        .await;
    let resp = app
        .get(&format!(
            "/api/v1/schemas/{}/content",
            rec["id"].as_str().expect("id")
        ))
        .await;
    assert!(resp.headers()["content-type"]
        .to_str()
        .expect("ct")
        .starts_with("text/plain"));
    assert_eq!(resp.text().await.expect("text"), proto);
}

pub async fn health_and_stats(app: &TestApp) {
    let (status, live) = app.get_json("/health/live").await;
    assert_eq!(
        (status, live["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let (status, ready) = app.get_json("/health/ready").await;
    assert_eq!(
        (status, ready["status"].as_str()),
        (StatusCode::OK, Some("ready"))
    );
    let (status, storage) = app.get_json("/health/storage").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(storage["tiers"]["database"]["status"], "up");
    assert!(storage["tiers"]["database"]["latency_ms"]
        .as_f64()
        .is_some());
    app.created("x", json!({"schema": {"a": 1}})).await;
    app.created("x", json!({"schema": {"a": 2}})).await;
    let mut stats = app.stats().await;
    let cache = stats
        .as_object_mut()
        .and_then(|m| m.remove("cache"))
        .expect("cache section");
    assert_eq!(
        stats,
        json!({"schemas": 2, "subjects": 1, "active": 2, "deprecated": 0, "deleted": 0, "bytes": 14})
    );
    for key in [
        "l1_hits",
        "l2_hits",
        "misses",
        "hit_rate",
        "l1_entries",
        "evictions",
        "l2_errors",
        "l2_state",
    ] {
        assert!(cache.get(key).is_some(), "cache.{key} in {cache}");
    }
    // Read the same version three times: one miss, then hits.
    let before = cache["l1_hits"].as_u64().expect("n") + cache["l2_hits"].as_u64().expect("n");
    for _ in 0..3 {
        app.get_json("/api/v1/subjects/x/versions/1.1.0").await;
    }
    let after = app.stats().await["cache"].clone();
    assert!(
        after["l1_hits"].as_u64().expect("n") + after["l2_hits"].as_u64().expect("n") >= before + 2,
        "{after}"
    );
    assert!(after["hit_rate"].as_f64().expect("rate") > 0.0);
    let (_, health) = app.get_json("/health/storage").await;
    assert_eq!(health["tiers"]["l1"]["status"], "up");
    assert!(health["tiers"]["l2"]["status"].is_string());
}

pub async fn concurrent_writers_get_distinct_versions(app: &TestApp) {
    let mut tasks = Vec::new();
    for w in 0..8 {
        let client = app.client.clone();
        let url = app.url("/api/v1/subjects/race/versions");
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for i in 0..5 {
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
    let mut all = BTreeSet::new();
    for t in tasks {
        for v in t.await.expect("task") {
            assert!(all.insert(v.clone()), "{v} handed out twice");
        }
    }
    let expected: BTreeSet<String> = (0..40).map(|m| format!("1.{m}.0")).collect();
    assert_eq!(all, expected);
}

pub async fn subject_listing_pages(app: &TestApp) {
    for s in ["a.1", "a.2", "a.3", "b.1"] {
        app.created(s, json!({"schema": {}})).await;
    }
    let (_, page) = app
        .get_json("/api/v1/subjects?prefix=a.&limit=2&offset=1")
        .await;
    assert_eq!(
        page,
        json!({"subjects": [
        {"subject": "a.2", "latest_version": "1.0.0", "version_count": 1},
        {"subject": "a.3", "latest_version": "1.0.0", "version_count": 1}], "total": 3})
    );
    let (_, unicode) = app
        .get_json(&format!(
            "/api/v1/subjects/{}/versions",
            encode("名前/with/slashes")
        ))
        .await;
    assert_eq!(unicode["error"]["code"], "subject_not_found");
    app.created("名前/with/slashes", json!({"schema": {}}))
        .await;
    let (status, _) = app
        .get_json(&format!(
            "/api/v1/subjects/{}/versions/latest",
            encode("名前/with/slashes")
        ))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "encoded slashes and non-ASCII subjects round-trip"
    );
}
