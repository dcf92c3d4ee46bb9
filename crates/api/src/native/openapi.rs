//! The native API's OpenAPI 3.1 document, served at `GET /api/v1/openapi.json`.
//!
//! Each operation is declared by `#[utoipa::path]` on its own handler, so the description sits
//! beside the code it describes; [`NativeApi`] collects them. Two tests keep it honest: every
//! route the router serves is an operation here (and nothing else is), and every status the
//! API answers on a route is one its operation declares.
//!
//! The shapes below document what the handlers send; they are not used to produce it (the
//! handlers build their JSON directly, and records come from `json::RecordJson`). The tests
//! check a served record against [`Record`]'s fields.

use std::sync::OnceLock;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use utoipa::{OpenApi, ToSchema};

/// One version of a subject, as every route that returns a record sends it.
#[derive(ToSchema)]
#[allow(dead_code)] // Documents a shape; never built.
pub struct Record {
    /// UUIDv7, assigned at registration, never changed or reused.
    id: String,
    subject: String,
    /// A semantic version: `1.2.0`, `2.0.0-rc.1`.
    version: String,
    /// `json_schema`, `avro` or `protobuf`.
    format: String,
    /// The canonical document: the JSON document itself for JSON Schema, a string for Avro and
    /// Protobuf.
    #[schema(value_type = Object)]
    schema: Value,
    /// SHA-256 (hex) of the canonical document's bytes.
    checksum: String,
    /// `active`, `deprecated` or `deleted`.
    state: String,
    description: Option<String>,
    #[schema(value_type = Object)]
    metadata: Value,
    tags: Vec<String>,
    references: Vec<Reference>,
    /// RFC 3339.
    created_at: String,
    /// RFC 3339.
    updated_at: String,
    size_bytes: u64,
}

/// A dependency on an exact version of another subject.
#[derive(ToSchema)]
#[allow(dead_code)] // Documents a shape; never built.
pub struct Reference {
    subject: String,
    version: String,
}

/// `POST /api/v1/subjects/{subject}/versions`. Unknown fields are refused.
#[derive(ToSchema)]
#[allow(dead_code)] // Documents a shape; never built.
pub struct RegisterBody {
    /// The document: a JSON value for JSON Schema, a string (or JSON) for Avro, a string for
    /// Protobuf.
    #[schema(value_type = Object)]
    schema: Value,
    /// `json_schema` (default), `avro` or `protobuf`.
    format: Option<String>,
    /// An exact version; excludes `bump`.
    version: Option<String>,
    /// `major`, `minor` (default) or `patch`: raises the highest version ever assigned.
    bump: Option<String>,
    description: Option<String>,
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
    tags: Option<Vec<String>>,
    references: Option<Vec<Reference>>,
}

/// `PATCH /api/v1/schemas/{id}`.
#[derive(ToSchema)]
#[allow(dead_code)] // Documents a shape; never built.
pub struct StateBody {
    /// `active` or `deprecated`; deleting is `DELETE`.
    state: String,
}

/// Every error answer: a stable machine code and a message for people.
#[derive(ToSchema)]
#[allow(dead_code)] // Documents a shape; never built.
pub struct ErrorBody {
    error: ErrorDetail,
}

/// The inside of [`ErrorBody`].
#[derive(ToSchema)]
#[allow(dead_code)] // Documents a shape; never built.
pub struct ErrorDetail {
    /// One of the codes of docs/api.md's error table, e.g. `schema_not_found`,
    /// `invalid_query`, `version_exists`, `storage_unavailable`.
    code: String,
    message: String,
}

/// What every route that reaches storage may answer besides its own statuses.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // Documents answers; never built.
pub enum StorageFailures {
    /// `internal_error`, or `content_corrupted` for a document whose stored bytes fail their
    /// checksum.
    #[response(status = 500)]
    Internal(ErrorBody),
    /// `storage_unavailable`: retry after `Retry-After`.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// Any JSON object this document does not spell out field by field (listings, walks, health
/// and statistics are described in docs/api.md).
#[derive(ToSchema)]
#[schema(value_type = Object)]
#[allow(dead_code)] // Documents a shape; never built.
pub struct Json(Value);

/// The native API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "LLM Schema Registry — native API",
        description = "Subjects, semantic versions and schema documents (JSON Schema, Avro, Protobuf). Errors are {\"error\": {\"code\", \"message\"}}; see docs/api.md for every code.",
    ),
    paths(
        super::subjects::register,
        super::subjects::list_versions,
        super::subjects::get_version,
        super::subjects::delete_version,
        super::subjects::delete_subject,
        super::subjects::list_subjects,
        super::schemas::get_schema,
        super::schemas::set_state,
        super::schemas::get_content,
        super::schemas::content_url,
        super::schemas::dependencies,
        super::schemas::dependents,
        super::search::search,
        super::health::stats,
        super::health::live,
        super::health::ready,
        super::health::storage,
        crate::metrics::render,
        openapi_json,
    ),
    components(schemas(Record, Reference, RegisterBody, StateBody, ErrorBody, ErrorDetail, Json)),
    tags(
        (name = "subjects", description = "Everything addressed by subject name"),
        (name = "schemas", description = "Everything addressed by schema id"),
        (name = "search", description = "Search and statistics"),
        (name = "operations", description = "Health, metrics and this document"),
    )
)]
pub struct NativeApi;

/// The document as JSON, made once.
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        // Serialising a document built from literals cannot fail; an empty object would only
        // make the test of this document fail loudly.
        NativeApi::openapi()
            .to_json()
            .unwrap_or_else(|_| "{}".to_string())
    })
}

/// `GET /api/v1/openapi.json`.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "operations",
    responses((status = 200, description = "This document (OpenAPI 3.1)", body = Json)),
)]
pub async fn openapi_json() -> Response {
    let mut response = document().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_and_lists_every_route_the_router_serves() {
        let doc: Value = serde_json::from_str(document()).expect("the document is JSON");
        assert!(
            doc["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.1")),
            "{}",
            doc["openapi"]
        );
        let paths = doc["paths"].as_object().expect("paths");
        let mut documented: Vec<(String, String)> = paths
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .into_iter()
                    .flat_map(|ops| ops.keys())
                    .map(move |method| (method.to_uppercase(), path.clone()))
            })
            .collect();
        documented.sort();
        let mut served: Vec<(String, String)> = super::super::route_table()
            .into_iter()
            .map(|(method, path)| (method.to_string(), path.to_string()))
            .collect();
        served.sort();
        assert_eq!(documented, served, "documented operations vs routes served");
        // The shared storage failures are merged into each operation that reaches storage.
        let by_id = &paths["/api/v1/schemas/{id}"]["get"]["responses"];
        for status in ["200", "404", "422", "500", "503"] {
            assert!(
                by_id.get(status).is_some(),
                "GET /api/v1/schemas/{{id}} lacks {status}"
            );
        }
    }
}
