//! The OpenAPI document at `/api/v1/openapi.json`: served, 3.1, its record shape is the one the
//! API sends, and every status a route answers (successes and errors alike) is one its
//! operation declares. (That every route is documented is a unit test of the api crate.)

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{Backend, TestApp};

async fn document(app: &TestApp) -> Value {
    let resp = app.get("/api/v1/openapi.json").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    resp.json().await.expect("the document is JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_openapi_3_1_and_describes_the_record_sent() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let doc = document(&app).await;
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "{}",
        doc["openapi"]
    );
    let record = app
        .created("doc.check", json!({"schema": {"type": "object"}}))
        .await;
    let mut sent: Vec<&String> = record.as_object().expect("record").keys().collect();
    let mut documented: Vec<&String> = doc["components"]["schemas"]["Record"]["properties"]
        .as_object()
        .expect("Record's properties")
        .keys()
        .collect();
    sent.sort();
    documented.sort();
    assert_eq!(sent, documented, "fields sent vs fields documented");
}

/// The operation `doc` declares for a request, by path template: `None` for a path or method no
/// route serves (the router's own 404 and 405 fallbacks).
fn operation<'d>(doc: &'d Value, method: &Method, path: &str) -> Option<(&'d str, &'d Value)> {
    let path = path.split('?').next().unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    doc["paths"]
        .as_object()?
        .iter()
        .find(|(template, _)| {
            let parts: Vec<&str> = template.split('/').collect();
            parts.len() == segments.len()
                && parts
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| (t.starts_with('{') && t.ends_with('}')) || t == s)
        })
        .and_then(|(template, item)| {
            item.get(method.as_str().to_lowercase())
                .map(|op| (template.as_str(), op))
        })
}

/// A request to send: method, path, JSON body, one extra header.
type Probe = (
    Method,
    String,
    Option<Value>,
    Option<(&'static str, String)>,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_status_the_api_answers_is_declared() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let doc = document(&app).await;
    let dep = app
        .created("doc.dep", json!({"schema": {"type": "string"}}))
        .await;
    let record = app
        .created(
            "doc.main",
            json!({"schema": {"type": "object"}, "references": [{"subject": "doc.dep", "version": "1.0.0"}]}),
        )
        .await;
    let id = record["id"].as_str().expect("id").to_string();
    let dep_id = dep["id"].as_str().expect("id").to_string();
    let unknown = "0190d7a0-0000-7000-8000-000000000000";
    let schema = json!({"schema": {"type": "object", "title": "another"}});
    let big = json!({"schema": {"type": "string", "description": "x".repeat(2 << 20)}});

    // (method, path, JSON body, extra header): successes and errors on every route.
    let requests: Vec<Probe> = vec![
        (
            Method::POST,
            "/api/v1/subjects/doc.new/versions".into(),
            Some(schema.clone()),
            None,
        ),
        (
            Method::POST,
            "/api/v1/subjects/doc.new/versions".into(),
            Some(schema.clone()),
            None,
        ),
        (
            Method::POST,
            "/api/v1/subjects/doc.new/versions".into(),
            Some(json!({"schema": {"type": "array"}, "version": "1.1.0"})),
            None,
        ),
        (
            Method::POST,
            "/api/v1/subjects/doc.new/versions".into(),
            Some(json!({"schema": 1, "format": "nope"})),
            None,
        ),
        (
            Method::POST,
            "/api/v1/subjects/doc.new/versions".into(),
            Some(big),
            None,
        ),
        (
            Method::POST,
            "/api/v1/subjects/doc.new/versions".into(),
            None,
            Some(("content-type", "text/plain".into())),
        ),
        (
            Method::GET,
            "/api/v1/subjects/doc.new/versions".into(),
            None,
            None,
        ),
        (
            Method::GET,
            "/api/v1/subjects/doc.none/versions".into(),
            None,
            None,
        ),
        (
            Method::GET,
            "/api/v1/subjects/doc.new/versions?include_deleted=2".into(),
            None,
            None,
        ),
        (
            Method::GET,
            "/api/v1/subjects/doc.new/versions/latest".into(),
            None,
            None,
        ),
        (
            Method::GET,
            "/api/v1/subjects/doc.new/versions/9.9.9".into(),
            None,
            None,
        ),
        (
            Method::GET,
            "/api/v1/subjects/doc.new/versions/x.y".into(),
            None,
            None,
        ),
        (
            Method::DELETE,
            "/api/v1/subjects/doc.new/versions/1.1.0?permanent=true".into(),
            None,
            None,
        ),
        (
            Method::DELETE,
            "/api/v1/subjects/doc.new/versions/1.1.0".into(),
            None,
            None,
        ),
        (
            Method::DELETE,
            "/api/v1/subjects/doc.new/versions/9.9.9".into(),
            None,
            None,
        ),
        (
            Method::DELETE,
            "/api/v1/subjects/doc.new/versions/latest".into(),
            None,
            None,
        ),
        (
            Method::DELETE,
            "/api/v1/subjects/doc.new".into(),
            None,
            None,
        ),
        (
            Method::DELETE,
            "/api/v1/subjects/doc.none".into(),
            None,
            None,
        ),
        (
            Method::DELETE,
            "/api/v1/subjects/doc.new?x=1".into(),
            None,
            None,
        ),
        (Method::GET, "/api/v1/subjects".into(), None, None),
        (Method::GET, "/api/v1/subjects?limit=0".into(), None, None),
        (Method::GET, format!("/api/v1/schemas/{id}"), None, None),
        (
            Method::GET,
            format!("/api/v1/schemas/{unknown}"),
            None,
            None,
        ),
        (Method::GET, "/api/v1/schemas/not-an-id".into(), None, None),
        (
            Method::PATCH,
            format!("/api/v1/schemas/{id}"),
            Some(json!({"state": "deprecated"})),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/schemas/{id}"),
            Some(json!({"state": "deleted"})),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/schemas/{unknown}"),
            Some(json!({"state": "active"})),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/schemas/{id}"),
            None,
            Some(("content-type", "text/plain".into())),
        ),
        (
            Method::GET,
            format!("/api/v1/schemas/{id}/content"),
            None,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/schemas/{id}/content"),
            None,
            Some((
                "if-none-match",
                format!("\"{}\"", record["checksum"].as_str().unwrap_or_default()),
            )),
        ),
        (
            Method::GET,
            format!("/api/v1/schemas/{unknown}/content"),
            None,
            None,
        ),
        (
            Method::GET,
            "/api/v1/schemas/nope/content".into(),
            None,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/schemas/{id}/content-url"),
            None,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/schemas/{unknown}/content-url"),
            None,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/schemas/{id}/content-url?expires_in=0"),
            None,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/schemas/{id}/content-url"),
            None,
            Some(("x-forwarded-proto", "gopher".into())),
        ),
        (
            Method::GET,
            format!("/api/v1/schemas/{id}/dependencies?transitive=true"),
            None,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/schemas/{unknown}/dependencies"),
            None,
            None,
        ),
        (
            Method::GET,
            "/api/v1/schemas/nope/dependencies".into(),
            None,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/schemas/{dep_id}/dependents"),
            None,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/schemas/{unknown}/dependents"),
            None,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/schemas/{dep_id}/dependents?transitive=maybe"),
            None,
            None,
        ),
        (Method::GET, "/api/v1/search?q=doc".into(), None, None),
        (Method::GET, "/api/v1/search?format=xml".into(), None, None),
        (Method::GET, "/api/v1/stats".into(), None, None),
        (Method::GET, "/api/v1/stats?x=1".into(), None, None),
        (Method::GET, "/api/v1/openapi.json".into(), None, None),
        (Method::GET, "/health/live".into(), None, None),
        (Method::GET, "/health/ready".into(), None, None),
        (Method::GET, "/health/storage".into(), None, None),
        (Method::GET, "/metrics".into(), None, None),
        // Deleted, then state changes are a conflict; a permanent delete of a live version too.
        (
            Method::DELETE,
            "/api/v1/subjects/doc.main/versions/1.0.0".to_string(),
            None,
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/schemas/{id}"),
            Some(json!({"state": "active"})),
            None,
        ),
        (
            Method::DELETE,
            "/api/v1/subjects/doc.dep/versions/1.0.0?permanent=true".into(),
            None,
            None,
        ),
    ];

    let mut undeclared = Vec::new();
    let mut checked = 0;
    for (method, path, body, header) in &requests {
        let mut request = app.client.request(method.clone(), app.url(path));
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some((name, value)) = header {
            request = request.header(*name, value);
            if *name == "content-type" {
                request = request.body("{}");
            }
        }
        let status = request.send().await.expect("request").status();
        let Some((template, op)) = operation(&doc, method, path) else {
            undeclared.push(format!(
                "{method} {path}: no operation documents it ({status})"
            ));
            continue;
        };
        checked += 1;
        if op["responses"].get(status.as_u16().to_string()).is_none() {
            undeclared.push(format!("{method} {template} ({path}) answered {status}"));
        }
    }
    assert!(
        undeclared.is_empty(),
        "undeclared answers:\n{}",
        undeclared.join("\n")
    );
    assert_eq!(checked, requests.len());
}
