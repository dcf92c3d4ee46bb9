//! Health endpoints and statistics.
//!
//! - `/health/live`: the process answers. Never touches storage.
//! - `/health/ready`: storage reachable and migrations applied; 503 otherwise, so a load
//!   balancer stops sending traffic until the database is back.
//! - `/health/storage`: every tier's status and probe latency, for operators.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::AppState;
use crate::error::ApiResult;
use crate::extract::QueryPairs;

/// A health probe that takes longer than this counts as a failure.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[utoipa::path(
    get,
    path = "/health/live",
    tag = "operations",
    summary = "The process answers",
    responses(
        (status = 200, description = "`{\"status\": \"ok\", \"uptime_seconds\"}`", body = super::openapi::Json),
    ),
)]
pub async fn live(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"status": "ok", "uptime_seconds": state.started.elapsed().as_secs()}))
}

/// Probes the database: `Ok(latency)` or the reason it failed.
async fn probe(state: &AppState) -> Result<Duration, String> {
    let start = Instant::now();
    match tokio::time::timeout(PROBE_TIMEOUT, state.registry.health()).await {
        Ok(Ok(())) => Ok(start.elapsed()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} ms", PROBE_TIMEOUT.as_millis())),
    }
}

#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "operations",
    summary = "Storage is reachable and migrated",
    responses(
        (status = 200, description = "`{\"status\": \"ready\"}`", body = super::openapi::Json),
        (status = 503, description = "`{\"status\": \"unavailable\", \"reason\"}`", body = super::openapi::Json),
    ),
)]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match probe(&state).await {
        Ok(_) => (StatusCode::OK, Json(json!({"status": "ready"}))),
        Err(reason) => {
            tracing::warn!(%reason, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "reason": "storage unavailable"})),
            )
        }
    }
}

#[utoipa::path(
    get,
    path = "/health/storage",
    tag = "operations",
    summary = "Every tier's status",
    responses(
        (status = 200, description = "`{\"status\", \"tiers\"}`", body = super::openapi::Json),
        (status = 503, description = "The database is down", body = super::openapi::Json),
    ),
)]
pub async fn storage(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let kind = state.registry.backend_kind();
    let (status, database) = match probe(&state).await {
        Ok(latency) => (
            StatusCode::OK,
            json!({"status": "up", "backend": kind, "latency_ms": latency.as_secs_f64() * 1000.0}),
        ),
        Err(reason) => {
            tracing::warn!(%reason, "database tier down");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"status": "down", "backend": kind}),
            )
        }
    };
    let mut tiers = serde_json::Map::new();
    tiers.insert("database".into(), database);
    let mut degraded = false;
    for tier in state.registry.tiers() {
        degraded |= tier.status == "degraded" || tier.status == "down";
        let mut detail = tier.detail;
        if let Value::Object(d) = &mut detail {
            d.insert("status".into(), Value::String(tier.status.into()));
        }
        tiers.insert(tier.name.into(), detail);
    }
    // Only the database decides the status code: a degraded cache slows requests, it does not
    // fail them.
    let overall = match (status == StatusCode::OK, degraded) {
        (false, _) => "unavailable",
        (true, true) => "degraded",
        (true, false) => "ok",
    };
    (status, Json(json!({"status": overall, "tiers": tiers})))
}

/// `GET /api/v1/stats`.
#[utoipa::path(
    get,
    path = "/api/v1/stats",
    tag = "search",
    summary = "Counts over everything stored, and the cache's counters",
    responses(
        (status = 200, description = "`{\"schemas\", \"subjects\", \"active\", \"deprecated\", \"deleted\", \"bytes\", \"cache\"}`", body = super::openapi::Json),
        (status = 422, description = "`invalid_query` (unknown or malformed query parameter), `invalid_path`", body = super::openapi::ErrorBody),
        super::openapi::StorageFailures,
    ),
)]
pub async fn stats(State(state): State<AppState>, query: QueryPairs) -> ApiResult<Json<Value>> {
    query.reject_unknown(&[])?;
    let (s, cache) = state.registry.statistics().await?;
    let mut body = json!({
        "schemas": s.schemas,
        "subjects": s.subjects,
        "active": s.active,
        "deprecated": s.deprecated,
        "deleted": s.deleted,
        "bytes": s.bytes,
    });
    if let (Some(cache), Value::Object(map)) = (cache, &mut body) {
        map.insert(
            "cache".into(),
            serde_json::to_value(cache).map_err(crate::error::ApiError::internal)?,
        );
    }
    Ok(Json(body))
}
