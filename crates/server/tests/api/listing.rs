//! Listing subjects: prefixes, pages and totals.

use serde_json::json;

use crate::helpers::TestApp;

on_both_backends!(subject_listing_pages);

async fn subject_listing_pages(app: &TestApp) {
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
}
