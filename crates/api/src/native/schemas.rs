//! Routes addressed by schema id: `/api/v1/schemas/{id}...`.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use schema_registry_core::{SchemaId, SchemaState};
use schema_registry_registry::PointRead;
use schema_registry_storage::EncodedRecord;
use serde::Deserialize;
use serde_json::{json, Value};

use super::json::{self, RecordJson};
use super::subjects::set_etag;
use super::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, QueryPairs, Segments};

/// Content is immutable (its URL names an id whose content never changes): cache it for a year.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

pub(crate) fn parse_id(raw: &str) -> ApiResult<SchemaId> {
    SchemaId::parse_str(raw).map_err(|_| {
        ApiError::invalid("invalid_id", format!("{raw:?} is not a schema id (a UUID)"))
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/schemas/{id}",
    tag = "schemas",
    summary = "A version by id, whatever its state",
    params(
        ("id" = String, Path, description = "Schema id (UUID)"),
    ),
    responses(
        (status = 200, description = "The record; `ETag` is its checksum", body = super::openapi::Record),
        (status = 404, description = "`schema_not_found`", body = super::openapi::ErrorBody),
        (status = 422, description = "`invalid_id`, `invalid_query`, `invalid_path`", body = super::openapi::ErrorBody),
        super::openapi::StorageFailures,
    ),
)]
pub async fn get_schema(
    State(state): State<AppState>,
    Segments(id): Segments<String>,
    query: QueryPairs,
) -> ApiResult<Response> {
    query.reject_unknown(&[])?;
    let id = parse_id(&id)?;
    let encoded = state.registry.get(PointRead::Id(id)).await?;
    Ok(record_response(encoded))
}

/// A record as JSON, from the encoding the cache made once (see `EncodedRecord`) or, for an
/// uncached read, encoded now; with its checksum as `ETag`.
///
/// The body owns the `Arc` it was given: a cached record's bytes are sent without copying them
/// and without another reference count on them (every reader of a hot record, on every core,
/// would update that count).
///
/// The headers go straight into the response's own map, sized for them and for the request id
/// the edge adds: building a separate map and merging it in (`(headers, body).into_response()`)
/// costs a second map and its growth on every cached read.
pub(crate) fn record_response(encoded: Arc<EncodedRecord>) -> Response {
    let mut headers = HeaderMap::with_capacity(4);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    set_etag(&mut headers, encoded.record.checksum());
    let body = if encoded.encoding(&json::RECORD).is_some() {
        Body::from(Bytes::from_owner(JsonOf(encoded)))
    } else {
        Body::from(json::record_json(&encoded.record))
    };
    let mut response = Response::new(body);
    *response.headers_mut() = headers;
    response
}

/// The native JSON bytes of a shared [`EncodedRecord`] that holds them, as the owner of a
/// `Bytes`.
struct JsonOf(Arc<EncodedRecord>);

impl AsRef<[u8]> for JsonOf {
    fn as_ref(&self) -> &[u8] {
        self.0.encoding(&json::RECORD).map_or(&[], |b| b.as_ref())
    }
}

/// Whether an `If-None-Match` header matches `checksum` (strong or weak, quoted or not, `*`).
fn matches_etag(headers: &HeaderMap, checksum: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',').map(str::trim).any(|tag| {
                let tag = tag.strip_prefix("W/").unwrap_or(tag);
                tag == "*" || tag.trim_matches('"') == checksum
            })
        })
}

/// `GET /api/v1/schemas/{id}/content`: the raw document, with its checksum as `ETag`.
#[utoipa::path(
    get,
    path = "/api/v1/schemas/{id}/content",
    tag = "schemas",
    summary = "The canonical document alone",
    params(
        ("id" = String, Path, description = "Schema id (UUID)"),
        ("If-None-Match" = Option<String>, Header, description = "The checksum, for 304"),
    ),
    responses(
        (status = 200, description = "The document in its format's media type; `ETag`, `Cache-Control: immutable`", body = String, content_type = "application/schema+json"),
        (status = 304, description = "The document has not changed"),
        (status = 404, description = "`schema_not_found`", body = super::openapi::ErrorBody),
        (status = 422, description = "`invalid_id`, `invalid_query`, `invalid_path`", body = super::openapi::ErrorBody),
        super::openapi::StorageFailures,
    ),
)]
pub async fn get_content(
    State(state): State<AppState>,
    Segments(id): Segments<String>,
    query: QueryPairs,
    headers: HeaderMap,
) -> ApiResult<Response> {
    query.reject_unknown(&[])?;
    let record = state.registry.get_by_id(parse_id(&id)?).await?;
    let checksum = record.checksum().to_string();
    let mut response = if matches_etag(&headers, &checksum) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let media_type = record.format().media_type();
        let mut r = record.content.into_text().into_response();
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
        r
    };
    set_etag(response.headers_mut(), &checksum);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    Ok(response)
}

/// Default lifetime of a presigned content URL.
const DEFAULT_URL_EXPIRY_SECS: u64 = 300;
/// A hard ceiling on `expires_in` (7 days, S3's own limit for SigV4 presigned URLs); the
/// configured maximum (`content_url_max_expiry_secs`) caps it further.
const CEILING_URL_EXPIRY_SECS: u64 = 7 * 24 * 3600;

/// `GET /api/v1/schemas/{id}/content-url?expires_in=SECONDS`: a time-limited URL for the raw
/// document. Object-held content on S3 gets a presigned S3 GET URL (clients download it without
/// going through the registry); anything else gets this API's own `/content` URL, which does
/// not expire (`expires_at` is null and `presigned` false). That URL starts with the configured
/// public URL, or else with the request's `Host` and `X-Forwarded-Proto`, which must be valid
/// (400 `invalid_host`, `invalid_forwarded_proto`; see [`super::origin`]).
#[utoipa::path(
    get,
    path = "/api/v1/schemas/{id}/content-url",
    tag = "schemas",
    summary = "A URL for the raw document",
    params(
        ("id" = String, Path, description = "Schema id (UUID)"),
        ("expires_in" = Option<u64>, Query, description = "Seconds, 1 to 604800; default 300"),
    ),
    responses(
        (status = 200, description = "`{\"url\", \"expires_at\", \"expires_in\", \"presigned\"}`", body = super::openapi::Json),
        (status = 400, description = "`invalid_host`, `invalid_forwarded_proto`: without `--public-url`, a `Host` that is not host[:port] or an `X-Forwarded-Proto` that is not `http` or `https`", body = super::openapi::ErrorBody),
        (status = 404, description = "`schema_not_found`", body = super::openapi::ErrorBody),
        (status = 422, description = "`invalid_id`, `invalid_query`, `invalid_path`", body = super::openapi::ErrorBody),
        super::openapi::StorageFailures,
    ),
)]
pub async fn content_url(
    State(state): State<AppState>,
    Segments(id): Segments<String>,
    query: QueryPairs,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    query.reject_unknown(&["expires_in"])?;
    let id = parse_id(&id)?;
    let expires_in = query
        .parse("expires_in", |v| match v.parse::<u64>() {
            Ok(n) if (1..=CEILING_URL_EXPIRY_SECS).contains(&n) => Ok(n),
            _ => Err(format!(
                "expected whole seconds from 1 to {CEILING_URL_EXPIRY_SECS}"
            )),
        })?
        .unwrap_or(DEFAULT_URL_EXPIRY_SECS);
    let presigned = state
        .registry
        .presigned_content_url(id, std::time::Duration::from_secs(expires_in))
        .await?;
    Ok(Json(match presigned {
        Some((url, granted)) => {
            let expires_at = chrono::Utc::now()
                + chrono::Duration::from_std(granted).map_err(ApiError::internal)?;
            json!({
                "url": url.as_str(),
                "expires_at": expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "expires_in": granted.as_secs(),
                "presigned": true,
            })
        }
        None => {
            // Not found is reported by the storage call above; here the content is ours to serve.
            let path = format!("/api/v1/schemas/{id}/content");
            let url = match super::origin::origin(state.public_url.as_deref(), &headers)? {
                Some(origin) => format!("{origin}{path}"),
                None => path,
            };
            json!({"url": url, "expires_at": null, "expires_in": null, "presigned": false})
        }
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateRequest {
    state: String,
}

/// `PATCH /api/v1/schemas/{id}` with `{"state": "deprecated" | "active"}`.
#[utoipa::path(
    patch,
    path = "/api/v1/schemas/{id}",
    tag = "schemas",
    summary = "Set a version's state",
    params(
        ("id" = String, Path, description = "Schema id (UUID)"),
    ),
    request_body(content = super::openapi::StateBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The record", body = super::openapi::Record),
        (status = 404, description = "`schema_not_found`", body = super::openapi::ErrorBody),
        (status = 409, description = "`schema_deleted`", body = super::openapi::ErrorBody),
        (status = 413, description = "`payload_too_large`", body = super::openapi::ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = super::openapi::ErrorBody),
        (status = 422, description = "`invalid_state`, `invalid_json`, `invalid_body`, `invalid_id`, `invalid_query`, `invalid_path`", body = super::openapi::ErrorBody),
        super::openapi::StorageFailures,
    ),
)]
pub async fn set_state(
    State(state): State<AppState>,
    Segments(id): Segments<String>,
    query: QueryPairs,
    ApiJson(body): ApiJson<StateRequest>,
) -> ApiResult<Json<Value>> {
    query.reject_unknown(&[])?;
    let id = parse_id(&id)?;
    let new_state: SchemaState = body.state.parse()?;
    let record = state.registry.set_state(id, new_state).await?;
    Ok(Json(
        serde_json::to_value(RecordJson(&record)).map_err(ApiError::internal)?,
    ))
}

/// Which direction a dependency walk goes.
#[derive(Clone, Copy)]
enum Walk {
    Dependencies,
    Dependents,
}

async fn walk(
    state: AppState,
    id: String,
    query: QueryPairs,
    direction: Walk,
) -> ApiResult<Json<Value>> {
    query.reject_unknown(&["transitive"])?;
    let id = parse_id(&id)?;
    let transitive = query.flag("transitive")?;
    let (key, found) = match direction {
        Walk::Dependencies => (
            "dependencies",
            state.registry.dependencies(id, transitive).await?,
        ),
        Walk::Dependents => (
            "dependents",
            state.registry.dependents(id, transitive).await?,
        ),
    };
    Ok(Json(
        json!({ "schema_id": id, "transitive": transitive, key: found }),
    ))
}

/// `GET /api/v1/schemas/{id}/dependencies[?transitive=true]`.
#[utoipa::path(
    get,
    path = "/api/v1/schemas/{id}/dependencies",
    tag = "schemas",
    summary = "What a version references",
    params(
        ("id" = String, Path, description = "Schema id (UUID)"),
        ("transitive" = Option<bool>, Query, description = "Follow references transitively"),
    ),
    responses(
        (status = 200, description = "`{\"schema_id\", \"transitive\", \"dependencies\": [...]}`", body = super::openapi::Json),
        (status = 404, description = "`schema_not_found`", body = super::openapi::ErrorBody),
        (status = 422, description = "`invalid_id`, `invalid_query`, `invalid_path`", body = super::openapi::ErrorBody),
        super::openapi::StorageFailures,
    ),
)]
pub async fn dependencies(
    State(state): State<AppState>,
    Segments(id): Segments<String>,
    query: QueryPairs,
) -> ApiResult<Json<Value>> {
    walk(state, id, query, Walk::Dependencies).await
}

/// `GET /api/v1/schemas/{id}/dependents[?transitive=true]`.
#[utoipa::path(
    get,
    path = "/api/v1/schemas/{id}/dependents",
    tag = "schemas",
    summary = "What references a version",
    params(
        ("id" = String, Path, description = "Schema id (UUID)"),
        ("transitive" = Option<bool>, Query, description = "Follow references transitively"),
    ),
    responses(
        (status = 200, description = "`{\"schema_id\", \"transitive\", \"dependents\": [...]}`", body = super::openapi::Json),
        (status = 404, description = "`schema_not_found`", body = super::openapi::ErrorBody),
        (status = 422, description = "`invalid_id`, `invalid_query`, `invalid_path`", body = super::openapi::ErrorBody),
        super::openapi::StorageFailures,
    ),
)]
pub async fn dependents(
    State(state): State<AppState>,
    Segments(id): Segments<String>,
    query: QueryPairs,
) -> ApiResult<Json<Value>> {
    walk(state, id, query, Walk::Dependents).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_matching() {
        let mut h = HeaderMap::new();
        assert!(!matches_etag(&h, "abc"));
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"xyz\", W/\"abc\""),
        );
        assert!(matches_etag(&h, "abc"));
        assert!(!matches_etag(&h, "ab"));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(matches_etag(&h, "anything"));
    }
}
