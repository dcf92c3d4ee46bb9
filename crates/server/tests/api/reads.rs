//! Reading what was registered: by id, by version, `latest`, the raw content, in every format.
//! (The content's headers and conditional GET are HTTP alone: `http.rs`.)

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{json_of, timestamp, TestApp};

on_both_backends!(register_then_fetch_every_way, avro_and_protobuf);

async fn register_then_fetch_every_way(app: &TestApp) {
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
    let uuid = uuid::Uuid::parse_str(&id).expect("the id is a UUID");
    assert_eq!(uuid.get_version_num(), 7, "a time-ordered UUID: {id}");
    let canonical = r#"{"properties":{"id":{"type":"string"}},"type":"object"}"#;
    let created_at = timestamp(&rec["created_at"]);
    let age = chrono::Utc::now() - created_at;
    assert!(
        age >= chrono::Duration::zero() && age < chrono::Duration::minutes(1),
        "created {age} ago"
    );
    assert_eq!(
        rec,
        json!({
            "id": id,
            "subject": "orders.created",
            "version": "1.0.0",
            "format": "json_schema",
            "state": "active",
            "schema": {"type": "object", "properties": {"id": {"type": "string"}}},
            // SHA-256 of the canonical bytes.
            "checksum": "e36382ec6abef464816fd2d62cfb88a3995907a5e91763b95fe4cbed24380252",
            "size_bytes": canonical.len(),
            "description": "An order",
            "metadata": {"team": "payments"},
            "tags": ["pii"],
            "references": [],
            "created_at": rec["created_at"],
            "updated_at": rec["created_at"],
        })
    );

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

    // Raw content: the canonical bytes (headers and conditional GET: `http.rs`).
    let resp = app.get(&format!("{location}/content")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.text().await.expect("text"), canonical);

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

async fn avro_and_protobuf(app: &TestApp) {
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
    assert_eq!(resp.text().await.expect("text"), proto);
}
