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
    let path = |id: &Value, kind: &str, t: bool| {
        format!(
            "/api/v1/schemas/{}/{kind}?transitive={t}",
            id.as_str().expect("id")
        )
    };
    let (status, direct) = app.get_json(&path(&a["id"], "dependencies", false)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(direct["dependencies"].as_array().map(Vec::len), Some(1));
    assert_eq!(direct["dependencies"][0]["subject"], "b");
    assert_eq!(direct["dependencies"][0]["depth"], 1);
    let (_, all) = app.get_json(&path(&a["id"], "dependencies", true)).await;
    let subjects: Vec<_> = all["dependencies"]
        .as_array()
        .expect("deps")
        .iter()
        .map(|d| (d["subject"].clone(), d["depth"].clone()))
        .collect();
    assert_eq!(
        subjects,
        vec![(json!("b"), json!(1)), (json!("c"), json!(2))]
    );
    let (_, users) = app.get_json(&path(&c["id"], "dependents", true)).await;
    assert_eq!(users["dependents"].as_array().map(Vec::len), Some(2));
    let (_, users) = app.get_json(&path(&b["id"], "dependents", false)).await;
    assert_eq!(users["dependents"][0]["id"], a["id"]);
}
