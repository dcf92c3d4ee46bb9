//! Reading what was registered: by id, by version, `latest`, the raw content, in every format.
//! (The content's headers and conditional GET are HTTP alone: `http.rs`.)

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{json_of, TestApp};

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
    assert_eq!(rec["subject"], "orders.created");
    assert_eq!(rec["version"], "1.0.0");
    assert_eq!(rec["format"], "json_schema");
    assert_eq!(rec["state"], "active");
    assert_eq!(
        rec["schema"],
        json!({"type": "object", "properties": {"id": {"type": "string"}}})
    );
    assert_eq!(rec["checksum"].as_str().map(str::len), Some(64));
    assert_eq!(
        rec["size_bytes"],
        json!(r#"{"properties":{"id":{"type":"string"}},"type":"object"}"#.len())
    );
    for key in [
        "description",
        "metadata",
        "tags",
        "references",
        "created_at",
        "updated_at",
    ] {
        assert!(rec.get(key).is_some(), "record has {key}");
    }

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
    assert_eq!(
        resp.text().await.expect("text"),
        r#"{"properties":{"id":{"type":"string"}},"type":"object"}"#
    );

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
