//! Listing subjects: prefixes, pages and totals — the exact subjects on every page.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::TestApp;

on_both_backends!(subject_listing_pages);

async fn subject_listing_pages(app: &TestApp) {
    for s in ["b.1", "a.3", "a.1", "ab", "a.2"] {
        app.created(s, json!({"schema": {}})).await;
    }
    app.created("a.2", json!({"schema": {"v": 2}})).await;
    let entry = |subject: &str| match subject {
        "a.2" => json!({"subject": "a.2", "latest_version": "1.1.0", "version_count": 2}),
        s => json!({"subject": s, "latest_version": "1.0.0", "version_count": 1}),
    };
    let page = |subjects: &[&str], total: u64| json!({"subjects": subjects.iter().map(|s| entry(s)).collect::<Vec<Value>>(), "total": total});
    let cases: Vec<(&str, Value)> = vec![
        // In subject order, whatever the order of registration.
        ("", page(&["a.1", "a.2", "a.3", "ab", "b.1"], 5)),
        ("?limit=2", page(&["a.1", "a.2"], 5)),
        ("?limit=2&offset=2", page(&["a.3", "ab"], 5)),
        ("?limit=2&offset=4", page(&["b.1"], 5)),
        ("?limit=2&offset=6", page(&[], 5)),
        // A prefix is matched literally: `a.` is not `ab`.
        ("?prefix=a.", page(&["a.1", "a.2", "a.3"], 3)),
        ("?prefix=a.&limit=2", page(&["a.1", "a.2"], 3)),
        ("?prefix=a.&limit=2&offset=1", page(&["a.2", "a.3"], 3)),
        ("?prefix=a.&limit=2&offset=2", page(&["a.3"], 3)),
        ("?prefix=a.&limit=2&offset=3", page(&[], 3)),
        ("?prefix=a", page(&["a.1", "a.2", "a.3", "ab"], 4)),
        ("?prefix=b.1", page(&["b.1"], 1)),
        ("?prefix=c", page(&[], 0)),
    ];
    for (query, expected) in cases {
        let (status, got) = app.get_json(&format!("/api/v1/subjects{query}")).await;
        assert_eq!((status, got), (StatusCode::OK, expected), "{query}");
    }
}
