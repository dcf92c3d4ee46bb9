//! `/api/v1/search`: text, tag, metadata, prefix, format and state filters, ranking and pages.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::TestApp;

on_both_backends!(search_filters);

async fn search_filters(app: &TestApp) {
    let a = app.created("events.invoice", json!({"schema": {"title": "a"}, "tags": ["finance", "pii"], "metadata": {"team": "billing", "rev": 3}})).await;
    let b = app.created("events.user", json!({"schema": {"title": "invoice"}, "tags": ["finance"], "metadata": {"team": "billing", "rev": "3"}})).await;
    let c = app.created("other", json!({"schema": "syntax = \"proto3\"; message Invoice {}", "format": "protobuf", "description": "Invoice as protobuf"})).await;
    // Results are the full records, as registered.
    let search = |query: &str| {
        let path = format!("/api/v1/search?{query}");
        async move {
            let (status, body) = app.get_json(&path).await;
            assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
            body
        }
    };
    let results = |records: &[&Value], total: u64| json!({"results": records, "total": total});
    assert_eq!(
        search("q=invoice").await,
        results(&[&a, &c, &b], 3),
        "subject, then description, then content"
    );
    assert_eq!(search("tag=finance&tag=pii").await, results(&[&a], 1));
    assert_eq!(
        search("metadata.rev=3").await,
        results(&[&a], 1),
        "typed: 3 is a number"
    );
    assert_eq!(
        search("metadata.rev=%223%22").await,
        results(&[&b], 1),
        "\"3\" is the string"
    );
    assert_eq!(
        search("metadata.team=billing&subject_prefix=events.&limit=1&offset=1").await,
        results(&[&a], 2)
    );
    assert_eq!(search("format=protobuf").await, results(&[&c], 1));
    assert_eq!(search("state=deprecated").await, results(&[], 0));
}
