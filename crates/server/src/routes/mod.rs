//! The HTTP routes. Handlers parse and validate input (through `core`), call the storage
//! backend, and shape JSON; they hold no state of their own.
//!
//! # Layout
//! - [`subjects`]: registration, version listing and lookup, deletion — everything addressed
//!   by subject name.
//! - [`schemas`]: everything addressed by schema id: record, raw content, state, dependencies.
//! - [`search`]: `GET /api/v1/search`.
//! - [`health`]: liveness, readiness, per-tier storage health, and `/api/v1/stats`.

pub mod health;
pub mod schemas;
pub mod search;
pub mod subjects;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use schema_registry_core::Limits;
use schema_registry_storage::{StorageBackend, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::extract::QueryPairs;

/// What every handler can reach. Cheap to clone (an `Arc` and plain values).
#[derive(Clone)]
pub struct AppState {
    pub storage: Arc<dyn StorageBackend>,
    /// The Prometheus handle; `None` when metrics are off.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    pub limits: Limits,
    pub started: Instant,
}

/// The whole API as one router.
pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    // Full paths rather than `nest("/api/v1", ...)`: a nested router rewrites every request's
    // URI and adds a layer of routing, which showed in the hot read path's profile.
    let request_id = axum::http::HeaderName::from_static("x-request-id");
    let mut routed = Router::new()
        .route("/api/v1/subjects", get(subjects::list_subjects))
        .route(
            "/api/v1/subjects/{subject}",
            axum::routing::delete(subjects::delete_subject),
        )
        .route(
            "/api/v1/subjects/{subject}/versions",
            get(subjects::list_versions).post(subjects::register),
        )
        .route(
            "/api/v1/subjects/{subject}/versions/{version}",
            get(subjects::get_version).delete(subjects::delete_version),
        )
        .route(
            "/api/v1/schemas/{id}",
            get(schemas::get_schema).patch(schemas::set_state),
        )
        .route("/api/v1/schemas/{id}/content", get(schemas::get_content))
        .route(
            "/api/v1/schemas/{id}/content-url",
            get(schemas::content_url),
        )
        .route(
            "/api/v1/schemas/{id}/dependencies",
            get(schemas::dependencies),
        )
        .route("/api/v1/schemas/{id}/dependents", get(schemas::dependents))
        .route("/api/v1/search", get(search::search))
        .route("/api/v1/stats", get(health::stats))
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/health/storage", get(health::storage))
        .route("/metrics", get(crate::metrics::render));
    if state.metrics.is_some() {
        // A route layer runs after routing, so the route template is known.
        routed = routed.route_layer(axum::middleware::from_fn(crate::metrics::track_http));
    }
    routed
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(TraceLayer::new_for_http())
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(
            request_id,
            SequentialRequestId::new(),
        ))
}

/// Request ids for requests that arrive without an `x-request-id`: a random 64-bit prefix
/// chosen at start-up and a counter, written as a UUID. Unique within this process's life and,
/// by the prefix, across restarts and servers in practice; unlike a random UUID per request it
/// costs no `getrandom` call, which showed in the hot read path's profile.
#[derive(Clone, Debug)]
struct SequentialRequestId {
    prefix: u64,
    next: Arc<std::sync::atomic::AtomicU64>,
}

impl SequentialRequestId {
    fn new() -> Self {
        SequentialRequestId {
            prefix: uuid::Uuid::new_v4().as_u64_pair().0,
            next: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        }
    }
}

impl MakeRequestId for SequentialRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = uuid::Uuid::from_u64_pair(self.prefix, n);
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let text = id.hyphenated().encode_lower(&mut text);
        axum::http::HeaderValue::from_str(text)
            .ok()
            .map(RequestId::new)
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found(
        "route_not_found",
        "no such route; the API lives under /api/v1",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}

/// A panic in a handler is a bug: logged, answered as a plain internal error.
fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    ApiError::internal("handler panicked").into_response()
}

/// `limit`/`offset` from the query string, bounded.
pub(crate) fn page_params(q: &QueryPairs) -> Result<(u32, u64), ApiError> {
    let limit = q
        .parse("limit", |v| match v.parse::<u32>() {
            Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => Ok(n),
            _ => Err(format!("expected an integer from 1 to {MAX_PAGE_SIZE}")),
        })?
        .unwrap_or(DEFAULT_PAGE_SIZE);
    let offset = q
        .parse("offset", |v| {
            v.parse::<u64>()
                .map_err(|_| "expected a non-negative integer")
        })?
        .unwrap_or(0);
    Ok((limit, offset))
}

/// Runs a write to completion on its own task, so a client that disconnects mid-request cannot
/// cancel it half-way; the storage call's own transaction decides the outcome.
pub(crate) async fn complete<T, F>(write: F) -> Result<T, ApiError>
where
    F: std::future::Future<Output = Result<T, ApiError>> + Send + 'static,
    T: Send + 'static,
{
    tokio::spawn(write).await.map_err(ApiError::internal)?
}
