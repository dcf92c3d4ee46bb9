//! Routes addressed by schema id: `/api/v1/schemas/{id}...`.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use schema_registry_core::{SchemaId, SchemaState};
use serde::Deserialize;
use serde_json::{json, Value};

use super::subjects::set_etag;
use super::{complete, AppState};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, QueryPairs, Segments};

/// Content is immutable (its URL names an id whose content never changes): cache it for a year.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

pub(crate) fn parse_id(raw: &str) -> ApiResult<SchemaId> {
    SchemaId::parse_str(raw).map_err(|_| {
        ApiError::invalid("invalid_id", format!("{raw:?} is not a schema id (a UUID)"))
    })
}

pub async fn get_schema(
    State(state): State<AppState>,
    Segments(id): Segments<String>,
    query: QueryPairs,
) -> ApiResult<Response> {
    query.reject_unknown(&[])?;
    let record = state.storage.get_by_id(parse_id(&id)?).await?;
    let mut response = Json(&record).into_response();
    set_etag(response.headers_mut(), record.checksum());
    Ok(response)
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
pub async fn get_content(
    State(state): State<AppState>,
    Segments(id): Segments<String>,
    query: QueryPairs,
    headers: HeaderMap,
) -> ApiResult<Response> {
    query.reject_unknown(&[])?;
    let record = state.storage.get_by_id(parse_id(&id)?).await?;
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateRequest {
    state: String,
}

/// `PATCH /api/v1/schemas/{id}` with `{"state": "deprecated" | "active"}`.
pub async fn set_state(
    State(state): State<AppState>,
    Segments(id): Segments<String>,
    query: QueryPairs,
    ApiJson(body): ApiJson<StateRequest>,
) -> ApiResult<Json<Value>> {
    query.reject_unknown(&[])?;
    let id = parse_id(&id)?;
    let new_state: SchemaState = body.state.parse()?;
    if !new_state.is_settable() {
        return Err(ApiError::invalid(
            "invalid_state",
            "state can be set to active or deprecated; use DELETE to delete",
        ));
    }
    let storage = state.storage.clone();
    let record = complete(async move {
        storage
            .set_state(id, new_state)
            .await
            .map_err(ApiError::from)
    })
    .await?;
    Ok(Json(
        serde_json::to_value(&record).map_err(ApiError::internal)?,
    ))
}

pub async fn dependencies(
    State(state): State<AppState>,
    Segments(id): Segments<String>,
    query: QueryPairs,
) -> ApiResult<Json<Value>> {
    query.reject_unknown(&["transitive"])?;
    let id = parse_id(&id)?;
    let transitive = query.flag("transitive")?;
    let deps = state.storage.dependencies(id, transitive).await?;
    Ok(Json(
        json!({ "schema_id": id, "transitive": transitive, "dependencies": deps }),
    ))
}

pub async fn dependents(
    State(state): State<AppState>,
    Segments(id): Segments<String>,
    query: QueryPairs,
) -> ApiResult<Json<Value>> {
    query.reject_unknown(&["transitive"])?;
    let id = parse_id(&id)?;
    let transitive = query.flag("transitive")?;
    let deps = state.storage.dependents(id, transitive).await?;
    Ok(Json(
        json!({ "schema_id": id, "transitive": transitive, "dependents": deps }),
    ))
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
