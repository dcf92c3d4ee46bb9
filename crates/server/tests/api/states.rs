//! Version states: deprecating and restoring a version; a deleted one stays deleted.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error, json_of, TestApp};

on_both_backends!(state_can_be_deprecated_and_restored);

async fn state_can_be_deprecated_and_restored(app: &TestApp) {
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
