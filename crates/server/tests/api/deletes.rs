//! Deletes: soft, then permanent (refused while referenced), and whole subjects.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error, json_of, TestApp};

on_both_backends!(deletes_soft_then_permanent);

async fn deletes_soft_then_permanent(app: &TestApp) {
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
