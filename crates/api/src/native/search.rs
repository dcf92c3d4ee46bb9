//! `GET /api/v1/search?q=&subject_prefix=&tag=&format=&state=&metadata.KEY=VALUE&limit=&offset=`

use axum::extract::State;
use axum::Json;
use schema_registry_core::{SchemaFormat, SchemaState};
use schema_registry_storage::SearchQuery;
use serde_json::{json, Map, Value};

use super::{page_params, AppState};
use crate::error::ApiResult;
use crate::extract::QueryPairs;

const KNOWN: &[&str] = &[
    "q",
    "subject_prefix",
    "tag",
    "format",
    "state",
    "metadata.*",
    "limit",
    "offset",
];

/// A `metadata.KEY=VALUE` filter value is JSON when it parses as a JSON scalar (`3`, `true`,
/// `null`, `"3"` for the string), and otherwise the plain string: `metadata.team=payments`
/// matches `{"team": "payments"}`, `metadata.revision=3` matches `{"revision": 3}`.
fn metadata_value(raw: &str) -> Value {
    match serde_json::from_str::<Value>(raw) {
        Ok(v @ (Value::Number(_) | Value::Bool(_) | Value::Null | Value::String(_))) => v,
        _ => Value::String(raw.to_string()),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/search",
    tag = "search",
    summary = "Search versions",
    params(
        ("q" = Option<String>, Query, description = "Free text (at most 1024 bytes) in subject, description and schema text"),
        ("subject_prefix" = Option<String>, Query, description = "Only subjects starting with this"),
        ("tag" = Option<Vec<String>>, Query, description = "Repeatable; every tag must be present"),
        ("format" = Option<String>, Query, description = "`json_schema`, `avro` or `protobuf`"),
        ("state" = Option<String>, Query, description = "`active`, `deprecated` or `deleted` (deleted versions only when asked)"),
        ("metadata.KEY" = Option<String>, Query, description = "Repeatable, one per key: the version's metadata has KEY with this value (a JSON scalar, else the string)"),
        ("limit" = Option<u32>, Query, description = "1–1000, default 100"),
        ("offset" = Option<u64>, Query, description = "Default 0"),
    ),
    responses(
        (status = 200, description = "`{\"results\": [records], \"total\"}`", body = super::openapi::Json),
        (status = 422, description = "`invalid_query`, `invalid_format`, `invalid_state`", body = super::openapi::ErrorBody),
        super::openapi::StorageFailures,
    ),
)]
pub async fn search(State(state): State<AppState>, query: QueryPairs) -> ApiResult<Json<Value>> {
    query.reject_unknown(KNOWN)?;
    let (limit, offset) = page_params(&query)?;
    let format = query
        .get("format")
        .map(str::parse::<SchemaFormat>)
        .transpose()?;
    let state_filter = query
        .get("state")
        .map(str::parse::<SchemaState>)
        .transpose()?;
    let mut metadata = Map::new();
    for (k, v) in &query.0 {
        if let Some(key) = k.strip_prefix("metadata.") {
            metadata.insert(key.to_string(), metadata_value(v));
        }
    }
    let q = SearchQuery {
        text: query.get("q").map(str::to_string).filter(|t| !t.is_empty()),
        subject_prefix: query.get("subject_prefix").map(str::to_string),
        tags: query.all("tag").map(str::to_string).collect(),
        format,
        state: state_filter,
        metadata,
        limit,
        offset,
    };
    let page = state.registry.search(&q).await?;
    Ok(Json(
        json!({ "results": super::json::records(&page.items), "total": page.total }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn metadata_values_are_typed() {
        assert_eq!(metadata_value("payments"), json!("payments"));
        assert_eq!(metadata_value("3"), json!(3));
        assert_eq!(metadata_value("true"), json!(true));
        assert_eq!(metadata_value("\"3\""), json!("3"));
        assert_eq!(metadata_value("{\"a\":1}"), json!("{\"a\":1}"));
    }
}
