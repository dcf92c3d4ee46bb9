//! Version states: deprecating and restoring a version; a deleted one stays deleted.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error, json_of, timestamp, with, TestApp};

on_both_backends!(state_can_be_deprecated_and_restored);

async fn state_can_be_deprecated_and_restored(app: &TestApp) {
    let rec = app.created("st", json!({"schema": {}})).await;
    let path = format!("/api/v1/schemas/{}", rec["id"].as_str().expect("id"));
    let (status, dep) = json_of(app.patch_json(&path, &json!({"state": "deprecated"})).await).await;
    assert_eq!(status, StatusCode::OK, "{dep}");
    assert!(timestamp(&dep["updated_at"]) >= timestamp(&rec["updated_at"]));
    assert_eq!(
        dep,
        with(
            &rec,
            json!({"state": "deprecated", "updated_at": dep["updated_at"]})
        ),
        "only the state (and the time of the change) changed"
    );
    let (_, latest) = app.get_json("/api/v1/subjects/st/versions/latest").await;
    assert_eq!(latest, dep);
    let (status, act) = json_of(app.patch_json(&path, &json!({"state": "active"})).await).await;
    assert_eq!(status, StatusCode::OK, "{act}");
    assert!(timestamp(&act["updated_at"]) >= timestamp(&dep["updated_at"]));
    assert_eq!(
        act,
        with(&rec, json!({"updated_at": act["updated_at"]})),
        "restored as it was"
    );
    let (_, by_id) = app.get_json(&path).await;
    assert_eq!(by_id, act);
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
    let (_, still) = app.get_json(&path).await;
    assert_eq!(
        still["state"], "deleted",
        "the refused change changed nothing"
    );
}
