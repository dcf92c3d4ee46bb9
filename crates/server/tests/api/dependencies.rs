//! References between versions: `/dependencies` and `/dependents`, direct and transitive.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::TestApp;

on_both_backends!(dependency_endpoints);

async fn dependency_endpoints(app: &TestApp) {
    let c = app.created("c", json!({"schema": {"c": 1}})).await;
    let b = app
        .created(
            "b",
            json!({"schema": {"b": 1}, "references": [{"subject": "c", "version": "1.0.0"}]}),
        )
        .await;
    let a = app
        .created(
            "a",
            json!({"schema": {"a": 1}, "references": [{"subject": "b", "version": "1.0.0"}]}),
        )
        .await;
    assert_eq!(
        a["references"],
        json!([{"subject": "b", "version": "1.0.0"}])
    );
    // What a dependency walk reports of a version, `depth` steps away.
    let node = |rec: &Value, depth: u32| {
        json!({"id": rec["id"], "subject": rec["subject"], "version": rec["version"],
            "format": "json_schema", "state": "active", "depth": depth})
    };
    let walk = |from: &Value, kind: &str, transitive: bool| {
        let id = from["id"].as_str().expect("id").to_string();
        let path = format!("/api/v1/schemas/{id}/{kind}?transitive={transitive}");
        async move {
            let (status, body) = app.get_json(&path).await;
            assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
            body
        }
    };
    let body = |from: &Value, kind: &str, transitive: bool, nodes: Vec<Value>| json!({"schema_id": from["id"], "transitive": transitive, kind: nodes});
    assert_eq!(
        walk(&a, "dependencies", false).await,
        body(&a, "dependencies", false, vec![node(&b, 1)])
    );
    assert_eq!(
        walk(&a, "dependencies", true).await,
        body(&a, "dependencies", true, vec![node(&b, 1), node(&c, 2)])
    );
    assert_eq!(
        walk(&c, "dependencies", true).await,
        body(&c, "dependencies", true, vec![])
    );
    assert_eq!(
        walk(&c, "dependents", true).await,
        body(&c, "dependents", true, vec![node(&b, 1), node(&a, 2)])
    );
    assert_eq!(
        walk(&b, "dependents", false).await,
        body(&b, "dependents", false, vec![node(&a, 1)])
    );
    assert_eq!(
        walk(&a, "dependents", true).await,
        body(&a, "dependents", true, vec![])
    );
}
