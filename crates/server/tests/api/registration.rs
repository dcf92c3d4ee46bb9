//! Registering versions: idempotent retries, version assignment (bumps, explicit versions,
//! conflicts) and concurrent writers.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error_body, TestApp};

on_both_backends!(
    retries_are_idempotent,
    versions_bump_or_are_explicit,
    concurrent_writers_get_distinct_versions
);

async fn retries_are_idempotent(app: &TestApp) {
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
        (status, &exact),
        (StatusCode::OK, &first),
        "the same content at its own version"
    );
    let (status, as_string) = app
        .register("s", json!({"schema": "{\"b\":1,\"a\":{\"x\":1,\"y\":2}}"}))
        .await;
    assert_eq!(
        (status, &as_string),
        (StatusCode::OK, &first),
        "a JSON Schema sent as a string is the same schema"
    );
    assert_eq!(
        app.data_stats().await,
        json!({"schemas": 1, "subjects": 1, "active": 1, "deprecated": 0, "deleted": 0,
            "bytes": r#"{"a":{"x":1,"y":2},"b":1}"#.len()})
    );
}

async fn versions_bump_or_are_explicit(app: &TestApp) {
    let mut records = Vec::new();
    for (body, version) in [
        (json!({"schema": {"n": 1}}), "1.0.0"),
        (json!({"schema": {"n": 2}}), "1.1.0"),
        (json!({"schema": {"n": 3}, "bump": "patch"}), "1.1.1"),
        (json!({"schema": {"n": 4}, "bump": "major"}), "2.0.0"),
        (
            json!({"schema": {"n": 5}, "version": "2.5.0-rc.1"}),
            "2.5.0-rc.1",
        ),
    ] {
        let rec = app.created("b", body.clone()).await;
        assert_eq!(rec["version"], version, "{body}");
        records.push(rec);
    }
    let (status, body) = app
        .register("b", json!({"schema": {"n": 6}, "version": "1.0.0"}))
        .await;
    assert_error_body(
        status,
        &body,
        StatusCode::CONFLICT,
        "version_exists",
        "an explicit version already taken",
    );
    let (_, versions) = app.get_json("/api/v1/subjects/b/versions").await;
    assert_eq!(
        versions,
        json!({"versions": ["1.0.0", "1.1.0", "1.1.1", "2.0.0", "2.5.0-rc.1"]})
    );
    let (_, latest) = app.get_json("/api/v1/subjects/b/versions/latest").await;
    assert_eq!(latest, records[3], "latest skips pre-releases");
    let (_, v1) = app.get_json("/api/v1/subjects/b/versions/1.0.0").await;
    assert_eq!(v1, records[0], "the conflicting write changed nothing");
}

async fn concurrent_writers_get_distinct_versions(app: &TestApp) {
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
