//! Routes addressed by subject: `/api/v1/subjects...`.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use schema_registry_core::{SchemaVersion, Subject};
use schema_registry_registry::{PointRead, Registration, RegistrationReference};
use schema_registry_storage::SubjectQuery;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::json::RecordJson;
use super::{page_params, AppState};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, QueryPairs, Segments};

/// `POST /api/v1/subjects/{subject}/versions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// The document: a JSON value for JSON Schema, a string (or JSON) for Avro, a string for
    /// Protobuf.
    schema: Value,
    format: Option<String>,
    version: Option<String>,
    bump: Option<String>,
    description: Option<String>,
    metadata: Option<Map<String, Value>>,
    tags: Option<Vec<String>>,
    references: Option<Vec<ReferenceRequest>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceRequest {
    subject: String,
    version: String,
}

impl From<RegisterRequest> for Registration {
    fn from(r: RegisterRequest) -> Self {
        Registration {
            schema: r.schema,
            format: r.format,
            version: r.version,
            bump: r.bump,
            description: r.description,
            metadata: r.metadata,
            tags: r.tags,
            references: r
                .references
                .unwrap_or_default()
                .into_iter()
                .map(|r| RegistrationReference {
                    subject: r.subject,
                    version: r.version,
                })
                .collect(),
        }
    }
}

/// What a `{version}` path segment names.
pub(crate) enum VersionSelector {
    Latest,
    Exact(SchemaVersion),
}

pub(crate) fn parse_selector(raw: &str) -> Result<VersionSelector, ApiError> {
    if raw == "latest" {
        Ok(VersionSelector::Latest)
    } else {
        Ok(VersionSelector::Exact(SchemaVersion::parse(raw)?))
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/subjects/{subject}/versions",
    tag = "subjects",
    summary = "Register a version",
    params(
        ("subject" = String, Path, description = "Subject name, percent-encoded (`/` as `%2F`)"),
    ),
    request_body(content = super::openapi::RegisterBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Registered; `Location: /api/v1/schemas/{id}`", body = super::openapi::Record),
        (status = 200, description = "An identical live version exists: it is returned (idempotent retry)", body = super::openapi::Record),
        (status = 409, description = "`version_exists`", body = super::openapi::ErrorBody),
        (status = 413, description = "`payload_too_large`", body = super::openapi::ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = super::openapi::ErrorBody),
        (status = 422, description = "`invalid_json`, `invalid_body`, `invalid_subject`, `invalid_version`, `invalid_bump`, `invalid_format`, `invalid_schema`, `invalid_description`, `invalid_metadata`, `invalid_tag`, `invalid_reference`, `unknown_reference`, `invalid_query`, `invalid_path`", body = super::openapi::ErrorBody),
        super::openapi::StorageFailures,
    ),
)]
pub async fn register(
    State(state): State<AppState>,
    Segments(subject): Segments<String>,
    query: QueryPairs,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> ApiResult<Response> {
    query.reject_unknown(&[])?;
    let subject = Subject::parse(subject)?;
    let registered = state.registry.register(subject, body.into()).await?;
    let status = if registered.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = (status, Json(RecordJson(&registered.record))).into_response();
    if let Ok(location) =
        HeaderValue::from_str(&format!("/api/v1/schemas/{}", registered.record.id))
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

#[utoipa::path(
    get,
    path = "/api/v1/subjects/{subject}/versions",
    tag = "subjects",
    summary = "List a subject's versions",
    params(
        ("subject" = String, Path, description = "Subject name, percent-encoded (`/` as `%2F`)"),
        ("include_deleted" = Option<bool>, Query, description = "`true`/`false`/`1`/`0`: include soft-deleted versions"),
    ),
    responses(
        (status = 200, description = "`{\"versions\": [...]}` in ascending semver order", body = super::openapi::Json),
        (status = 404, description = "`subject_not_found`", body = super::openapi::ErrorBody),
        (status = 422, description = "`invalid_subject`, `invalid_query`, `invalid_path`", body = super::openapi::ErrorBody),
        super::openapi::StorageFailures,
    ),
)]
pub async fn list_versions(
    State(state): State<AppState>,
    Segments(subject): Segments<String>,
    query: QueryPairs,
) -> ApiResult<Json<Value>> {
    query.reject_unknown(&["include_deleted"])?;
    let subject = Subject::parse(subject)?;
    let include_deleted = query.flag("include_deleted")?;
    let versions = state
        .registry
        .list_versions(&subject, include_deleted)
        .await?;
    Ok(Json(json!({ "versions": versions })))
}

#[utoipa::path(
    get,
    path = "/api/v1/subjects/{subject}/versions/{version}",
    tag = "subjects",
    summary = "One version of a subject",
    params(
        ("subject" = String, Path, description = "Subject name, percent-encoded (`/` as `%2F`)"),
        ("version" = String, Path, description = "`latest` or an exact semantic version"),
        ("include_deleted" = Option<bool>, Query, description = "`true`/`false`/`1`/`0`: include soft-deleted versions"),
    ),
    responses(
        (status = 200, description = "The record; `ETag` is its checksum", body = super::openapi::Record),
        (status = 404, description = "`subject_not_found`, `version_not_found`", body = super::openapi::ErrorBody),
        (status = 422, description = "`invalid_subject`, `invalid_version`, `invalid_query`, `invalid_path`", body = super::openapi::ErrorBody),
        super::openapi::StorageFailures,
    ),
)]
pub async fn get_version(
    State(state): State<AppState>,
    Segments((subject, version)): Segments<(String, String)>,
    query: QueryPairs,
) -> ApiResult<Response> {
    query.reject_unknown(&["include_deleted"])?;
    let subject = Subject::parse(subject)?;
    let selector = parse_selector(&version)?;
    // Parsed whatever the selector and the data: a bad value is refused even where the flag
    // changes nothing (`latest` is never a deleted version).
    let include_deleted = query.flag("include_deleted")?;
    let encoded = match selector {
        VersionSelector::Latest => state.registry.get(PointRead::Latest(&subject)).await?,
        VersionSelector::Exact(v) => {
            state
                .registry
                .get_version(&subject, &v, include_deleted)
                .await?
        }
    };
    Ok(super::schemas::record_response(encoded))
}

pub(crate) fn set_etag(headers: &mut HeaderMap, checksum: &str) {
    if let Ok(v) = HeaderValue::from_str(&format!("\"{checksum}\"")) {
        headers.insert(header::ETAG, v);
    }
}

#[utoipa::path(
    delete,
    path = "/api/v1/subjects/{subject}/versions/{version}",
    tag = "subjects",
    summary = "Soft-delete a version, or delete a soft-deleted one for good",
    params(
        ("subject" = String, Path, description = "Subject name, percent-encoded (`/` as `%2F`)"),
        ("version" = String, Path, description = "`latest` or an exact semantic version"),
        ("permanent" = Option<bool>, Query, description = "Delete a soft-deleted version for good"),
    ),
    responses(
        (status = 200, description = "The record, with `\"permanent\"`", body = super::openapi::Json),
        (status = 404, description = "`version_not_found`", body = super::openapi::ErrorBody),
        (status = 409, description = "`not_soft_deleted`, `schema_referenced`", body = super::openapi::ErrorBody),
        (status = 422, description = "`invalid_subject`, `invalid_version` (also for `latest`), `invalid_query`, `invalid_path`", body = super::openapi::ErrorBody),
        super::openapi::StorageFailures,
    ),
)]
pub async fn delete_version(
    State(state): State<AppState>,
    Segments((subject, version)): Segments<(String, String)>,
    query: QueryPairs,
) -> ApiResult<Json<Value>> {
    query.reject_unknown(&["permanent"])?;
    let subject = Subject::parse(subject)?;
    let VersionSelector::Exact(version) = parse_selector(&version)? else {
        return Err(ApiError::invalid(
            "invalid_version",
            "delete needs an exact version, not \"latest\"",
        ));
    };
    let permanent = query.flag("permanent")?;
    let record = state
        .registry
        .delete_version(subject, version, permanent)
        .await?;
    let mut body = serde_json::to_value(RecordJson(&record)).map_err(ApiError::internal)?;
    if let Value::Object(map) = &mut body {
        map.insert("permanent".into(), Value::Bool(permanent));
    }
    Ok(Json(body))
}

#[utoipa::path(
    delete,
    path = "/api/v1/subjects/{subject}",
    tag = "subjects",
    summary = "Soft-delete every live version of a subject",
    params(
        ("subject" = String, Path, description = "Subject name, percent-encoded (`/` as `%2F`)"),
    ),
    responses(
        (status = 200, description = "`{\"subject\", \"deleted_versions\"}`", body = super::openapi::Json),
        (status = 404, description = "`subject_not_found`", body = super::openapi::ErrorBody),
        (status = 422, description = "`invalid_subject`, `invalid_query`, `invalid_path`", body = super::openapi::ErrorBody),
        super::openapi::StorageFailures,
    ),
)]
pub async fn delete_subject(
    State(state): State<AppState>,
    Segments(subject): Segments<String>,
    query: QueryPairs,
) -> ApiResult<Json<Value>> {
    query.reject_unknown(&[])?;
    let subject = Subject::parse(subject)?;
    let deleted = state.registry.delete_subject(subject.clone()).await?;
    let versions: Vec<_> = deleted.into_iter().map(|r| r.version).collect();
    Ok(Json(
        json!({ "subject": subject, "deleted_versions": versions }),
    ))
}

#[utoipa::path(
    get,
    path = "/api/v1/subjects",
    tag = "subjects",
    summary = "List subjects with a live version",
    params(
        ("prefix" = Option<String>, Query, description = "Only subjects starting with this (case-sensitive)"),
        ("limit" = Option<u32>, Query, description = "1–1000, default 100"),
        ("offset" = Option<u64>, Query, description = "Default 0"),
    ),
    responses(
        (status = 200, description = "`{\"subjects\": [{\"subject\", \"latest_version\", \"version_count\"}], \"total\"}`", body = super::openapi::Json),
        (status = 422, description = "`invalid_query` (unknown or malformed query parameter), `invalid_path`", body = super::openapi::ErrorBody),
        super::openapi::StorageFailures,
    ),
)]
pub async fn list_subjects(
    State(state): State<AppState>,
    query: QueryPairs,
) -> ApiResult<Json<Value>> {
    query.reject_unknown(&["prefix", "limit", "offset"])?;
    let (limit, offset) = page_params(&query)?;
    let q = SubjectQuery {
        prefix: query.get("prefix").map(str::to_string),
        limit,
        offset,
    };
    let page = state.registry.list_subjects(&q).await?;
    Ok(Json(json!({ "subjects": page.items, "total": page.total })))
}
