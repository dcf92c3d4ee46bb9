//! `/api/v1/search`: text, tag, metadata, prefix, format and state filters, ranking and pages.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::TestApp;

on_both_backends!(search_filters);

async fn search_filters(app: &TestApp) {
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
