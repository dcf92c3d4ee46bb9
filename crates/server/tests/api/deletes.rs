//! Deletes: soft, then permanent (refused while referenced), and whole subjects.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error, assert_error_body, json_of, timestamp, with, TestApp};

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
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert!(timestamp(&deleted["updated_at"]) >= timestamp(&base["updated_at"]));
    // The record as it is now, and whether the delete was permanent.
    let soft = with(
        &base,
        json!({"state": "deleted", "updated_at": deleted["updated_at"]}),
    );
    assert_eq!(deleted, with(&soft, json!({"permanent": false})));
    let (_, versions) = app.get_json("/api/v1/subjects/base/versions").await;
    assert_eq!(versions, json!({"versions": ["1.1.0"]}));
    let (_, versions) = app
        .get_json("/api/v1/subjects/base/versions?include_deleted=true")
        .await;
    assert_eq!(versions, json!({"versions": ["1.0.0", "1.1.0"]}));
    let (status, hidden) = app.get_json("/api/v1/subjects/base/versions/1.0.0").await;
    assert_error_body(
        status,
        &hidden,
        StatusCode::NOT_FOUND,
        "version_not_found",
        "hidden by subject and version",
    );
    let (status, shown) = app
        .get_json("/api/v1/subjects/base/versions/1.0.0?include_deleted=true")
        .await;
    assert_eq!((status, &shown), (StatusCode::OK, &soft));
    let (status, by_id) = app.get_json(&format!("/api/v1/schemas/{base_id}")).await;
    assert_eq!(
        (status, &by_id),
        (StatusCode::OK, &soft),
        "still readable by id"
    );
    let (_, found) = app.get_json("/api/v1/search?tag=x").await;
    assert_eq!(
        found,
        json!({"results": [], "total": 0}),
        "hidden from search"
    );

    assert_error(
        app.delete("/api/v1/subjects/base/versions/1.0.0?permanent=true")
            .await,
        StatusCode::CONFLICT,
        "schema_referenced",
    )
    .await;
    let (status, user_deleted) =
        json_of(app.delete("/api/v1/subjects/user/versions/1.0.0").await).await;
    assert_eq!(
        (
            status,
            user_deleted["state"].as_str(),
            user_deleted["id"].as_str()
        ),
        (StatusCode::OK, Some("deleted"), user["id"].as_str())
    );
    let (status, gone) = json_of(
        app.delete("/api/v1/subjects/base/versions/1.0.0?permanent=true")
            .await,
    )
    .await;
    assert_eq!(
        (status, gone),
        (StatusCode::OK, with(&soft, json!({"permanent": true})))
    );
    assert_error(
        app.get(&format!("/api/v1/schemas/{base_id}")).await,
        StatusCode::NOT_FOUND,
        "schema_not_found",
    )
    .await;
    let (_, versions) = app
        .get_json("/api/v1/subjects/base/versions?include_deleted=true")
        .await;
    assert_eq!(versions, json!({"versions": ["1.1.0"]}));

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
    assert_eq!(subjects, json!({"subjects": [], "total": 0}));
}
