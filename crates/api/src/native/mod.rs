//! The native API: `/api/v1`, the health routes and `/metrics`. Handlers parse the request,
//! call one [`Registry`] operation, and shape JSON; they hold no state of their own.
//!
//! # Layout
//! - [`subjects`]: registration, version listing and lookup, deletion — everything addressed
//!   by subject name.
//! - [`schemas`]: everything addressed by schema id: record, raw content, state, dependencies.
//! - [`search`]: `GET /api/v1/search`.
//! - [`json`]: the native JSON shape of a record, and the encoding the cache makes of it.
//! - [`health`]: liveness, readiness, per-tier storage health, and `/api/v1/stats`.

pub mod health;
pub mod json;
pub mod schemas;
pub mod search;
pub mod subjects;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::StatusCode;
use axum::routing::MethodRouter;
use axum::Router;
use schema_registry_registry::Registry;
use schema_registry_storage::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use tower::{Layer, ServiceBuilder};

use crate::edge::{Edge, EdgeLayer};
use crate::error::ApiError;
use crate::extract::QueryPairs;

/// What every handler can reach: one `Arc`, because axum clones the state for every request
/// (with the route, and again for the `State` extractor), and one reference count is cheaper
/// than one per field.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The fields of [`AppState`].
pub struct Shared {
    pub registry: Registry,
    /// The Prometheus handle; `None` when metrics are off.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    pub started: Instant,
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The whole API as one service: the [`Edge`](crate::edge) and the body limit around the
/// router, each applied once to the finished router (see `crate::edge` for why not
/// `Router::layer`).
pub type App = Edge<<DefaultBodyLimit as Layer<Router>>::Service>;

/// Builds [`App`].
pub fn app(state: AppState, max_body_bytes: usize) -> App {
    ServiceBuilder::new()
        .layer(EdgeLayer::new().max_body_bytes(max_body_bytes))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .service(router(state))
}

/// The routes. Full paths rather than `nest("/api/v1", ...)`: a nested router rewrites every
/// request's URI and adds a layer of routing, which showed in the hot read path's profile.
pub fn router(state: AppState) -> Router {
    use axum::routing::MethodFilter as M;
    let metrics = state.metrics.is_some();
    Routes::new(metrics)
        .at("/api/v1/subjects", |t| {
            t.on(M::GET, subjects::list_subjects)
        })
        .at("/api/v1/subjects/{subject}", |t| {
            t.on(M::DELETE, subjects::delete_subject)
        })
        .at("/api/v1/subjects/{subject}/versions", |t| {
            t.on(M::GET, subjects::list_versions)
                .merge(t.on(M::POST, subjects::register))
        })
        .at("/api/v1/subjects/{subject}/versions/{version}", |t| {
            t.on(M::GET, subjects::get_version)
                .merge(t.on(M::DELETE, subjects::delete_version))
        })
        .at("/api/v1/schemas/{id}", |t| {
            t.on(M::GET, schemas::get_schema)
                .merge(t.on(M::PATCH, schemas::set_state))
        })
        .at("/api/v1/schemas/{id}/content", |t| {
            t.on(M::GET, schemas::get_content)
        })
        .at("/api/v1/schemas/{id}/content-url", |t| {
            t.on(M::GET, schemas::content_url)
        })
        .at("/api/v1/schemas/{id}/dependencies", |t| {
            t.on(M::GET, schemas::dependencies)
        })
        .at("/api/v1/schemas/{id}/dependents", |t| {
            t.on(M::GET, schemas::dependents)
        })
        .at("/api/v1/search", |t| t.on(M::GET, search::search))
        .at("/api/v1/stats", |t| t.on(M::GET, health::stats))
        .at("/health/live", |t| t.on(M::GET, health::live))
        .at("/health/ready", |t| t.on(M::GET, health::ready))
        .at("/health/storage", |t| t.on(M::GET, health::storage))
        .at("/metrics", |t| t.on(M::GET, crate::metrics::render))
        .router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Adds routes whose handlers count and time themselves when metrics are on.
struct Routes {
    router: Router<AppState>,
    metrics: bool,
}

impl Routes {
    fn new(metrics: bool) -> Self {
        Routes {
            router: Router::new(),
            metrics,
        }
    }

    /// Adds the route at `path`, built by `endpoint` from the route's [`Track`].
    fn at(
        mut self,
        path: &'static str,
        endpoint: impl FnOnce(&Track) -> MethodRouter<AppState>,
    ) -> Self {
        let track = Track(
            self.metrics
                .then(|| crate::metrics::HttpMetricsLayer::new(path)),
        );
        self.router = self.router.route(path, endpoint(&track));
        self
    }
}

/// One route's HTTP-metrics layer (or none, with metrics off), built knowing the route
/// template, so a request never looks up or copies its matched path.
///
/// The layer wraps each *handler* (`Handler::layer`), not the route (`route_layer`): axum boxes
/// a route layer as a route of its own, and a request would pay for cloning that box as well.
/// Like a route layer, it leaves the route's 405 answers uncounted.
struct Track(Option<crate::metrics::HttpMetricsLayer>);

impl Track {
    fn on<H, T>(&self, filter: axum::routing::MethodFilter, handler: H) -> MethodRouter<AppState>
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        match &self.0 {
            Some(layer) => axum::routing::on(filter, handler.layer(layer.clone())),
            None => axum::routing::on(filter, handler),
        }
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
