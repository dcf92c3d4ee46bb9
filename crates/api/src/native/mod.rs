//! The native API: `/api/v1`, the health routes and `/metrics`. Handlers parse the request,
//! call one [`Registry`] operation, and shape JSON; they hold no state of their own.
//!
//! # Layout
//! - [`subjects`]: registration, version listing and lookup, deletion — everything addressed
//!   by subject name.
//! - [`schemas`]: everything addressed by schema id: record, raw content, state, dependencies.
//! - [`search`]: `GET /api/v1/search`.
//! - [`json`]: the native JSON shape of a record, and the encoding the cache makes of it.
//! - [`openapi`]: the OpenAPI 3.1 document of these routes, at `/api/v1/openapi.json`.
//! - [`origin`]: the origin of the URLs the API hands out (public URL, or a checked `Host`).
//! - [`health`]: liveness, readiness, per-tier storage health, and `/api/v1/stats`.

pub mod health;
pub mod json;
pub mod openapi;
pub mod origin;
pub mod schemas;
pub mod search;
pub mod subjects;

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::{Method, StatusCode};
use axum::routing::{MethodFilter, MethodRouter};
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
    /// The public base URL (`https://registry.example.com`, no trailing `/`) that URLs the API
    /// hands out start with; `None`: they are built from the request's checked `Host` (see
    /// [`origin`]).
    pub public_url: Option<String>,
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
    let metrics = state.metrics.is_some();
    routes(metrics)
        .router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Every (method, path template) the router serves: what the OpenAPI document must describe.
pub fn route_table() -> Vec<(Method, &'static str)> {
    routes(false).table
}

/// The one list of routes, for the router and for [`route_table`].
fn routes(metrics: bool) -> Routes {
    Routes::new(metrics)
        .at("/api/v1/subjects", |t| {
            t.on(Method::GET, subjects::list_subjects)
        })
        .at("/api/v1/subjects/{subject}", |t| {
            t.on(Method::DELETE, subjects::delete_subject)
        })
        .at("/api/v1/subjects/{subject}/versions", |t| {
            t.on(Method::GET, subjects::list_versions)
                .merge(t.on(Method::POST, subjects::register))
        })
        .at("/api/v1/subjects/{subject}/versions/{version}", |t| {
            t.on(Method::GET, subjects::get_version)
                .merge(t.on(Method::DELETE, subjects::delete_version))
        })
        .at("/api/v1/schemas/{id}", |t| {
            t.on(Method::GET, schemas::get_schema)
                .merge(t.on(Method::PATCH, schemas::set_state))
        })
        .at("/api/v1/schemas/{id}/content", |t| {
            t.on(Method::GET, schemas::get_content)
        })
        .at("/api/v1/schemas/{id}/content-url", |t| {
            t.on(Method::GET, schemas::content_url)
        })
        .at("/api/v1/schemas/{id}/dependencies", |t| {
            t.on(Method::GET, schemas::dependencies)
        })
        .at("/api/v1/schemas/{id}/dependents", |t| {
            t.on(Method::GET, schemas::dependents)
        })
        .at("/api/v1/search", |t| t.on(Method::GET, search::search))
        .at("/api/v1/stats", |t| t.on(Method::GET, health::stats))
        .at("/api/v1/openapi.json", |t| {
            t.on(Method::GET, openapi::openapi_json)
        })
        .at("/health/live", |t| t.on(Method::GET, health::live))
        .at("/health/ready", |t| t.on(Method::GET, health::ready))
        .at("/health/storage", |t| t.on(Method::GET, health::storage))
        .at("/metrics", |t| t.on(Method::GET, crate::metrics::render))
}

/// Adds routes whose handlers count and time themselves when metrics are on, and lists them.
struct Routes {
    router: Router<AppState>,
    table: Vec<(Method, &'static str)>,
    metrics: bool,
}

impl Routes {
    fn new(metrics: bool) -> Self {
        Routes {
            router: Router::new(),
            table: Vec::new(),
            metrics,
        }
    }

    /// Adds the route at `path`, built by `endpoint` from the route's [`Track`].
    fn at(
        mut self,
        path: &'static str,
        endpoint: impl FnOnce(&Track) -> MethodRouter<AppState>,
    ) -> Self {
        let track = Track {
            layer: self
                .metrics
                .then(|| crate::metrics::HttpMetricsLayer::new(path)),
            methods: RefCell::new(Vec::new()),
        };
        self.router = self.router.route(path, endpoint(&track));
        self.table
            .extend(track.methods.into_inner().into_iter().map(|m| (m, path)));
        self
    }
}

/// One route's HTTP-metrics layer (or none, with metrics off), built knowing the route
/// template, so a request never looks up or copies its matched path; and the methods it serves.
///
/// The layer wraps each *handler* (`Handler::layer`), not the route (`route_layer`): axum boxes
/// a route layer as a route of its own, and a request would pay for cloning that box as well.
/// Like a route layer, it leaves the route's 405 answers uncounted.
struct Track {
    layer: Option<crate::metrics::HttpMetricsLayer>,
    methods: RefCell<Vec<Method>>,
}

impl Track {
    fn on<H, T>(&self, method: Method, handler: H) -> MethodRouter<AppState>
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        // Runs while the router is built, at start-up; every method the routes above name is
        // one axum filters on.
        let filter = MethodFilter::try_from(method.clone()).expect("a method axum filters on");
        self.methods.borrow_mut().push(method);
        match &self.layer {
            Some(layer) => axum::routing::on(filter, handler.layer(layer.clone())),
            None => axum::routing::on(filter, handler),
        }
    }
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found("route_not_found", not_found_message(uri.path()))
}

/// The 404 message for a path no route matches, with a hint only where one fits: where the API
/// lives, for a path outside `/api/v1`; how to encode the subject, for a path under
/// `/api/v1/subjects/` whose subject seems to hold an unencoded `/`.
fn not_found_message(path: &str) -> String {
    if path != "/api/v1" && !path.starts_with("/api/v1/") {
        return "no such route; the API lives under /api/v1".into();
    }
    if let Some(rest) = path.strip_prefix("/api/v1/subjects/") {
        let segments: Vec<&str> = rest.split('/').collect();
        // The subject ends before the first `versions` segment (if any), which must end the
        // path or be followed by one version: otherwise the path is wrong in another way.
        let end = segments
            .iter()
            .skip(1)
            .position(|s| *s == "versions")
            .map_or(segments.len(), |i| i + 1);
        if segments.len() - end > 2 {
            return "no such route under /api/v1".into();
        }
        let subject = &segments[..end];
        if subject.len() >= 2 && subject.iter().all(|s| !s.is_empty()) {
            let mut suggested = format!("/api/v1/subjects/{}", subject.join("%2F"));
            for tail in &segments[end..] {
                suggested.push('/');
                suggested.push_str(tail);
            }
            return format!(
                "no such route; a subject name holding `/` must encode it as `%2F`, as in \
                 {suggested}"
            );
        }
    }
    "no such route under /api/v1".into()
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

#[cfg(test)]
mod tests {
    use super::not_found_message;

    #[test]
    fn not_found_hints_fit_the_path() {
        let outside = "no such route; the API lives under /api/v1";
        let under = "no such route under /api/v1";
        for (path, message) in [
            ("/", outside),
            ("/v1/subjects", outside),
            ("/api/v1x", outside),
            ("/api/v1", under),
            ("/api/v1/nowhere", under),
            ("/api/v1/subjects/a/", under),
            ("/api/v1/subjects//b", under),
            ("/api/v1/subjects/a/versions/1.0.0/schema", under),
            ("/api/v1/subjects/a/b/versions/1.0.0/schema", under),
        ] {
            assert_eq!(not_found_message(path), message, "{path}");
        }
        for (path, suggested) in [
            ("/api/v1/subjects/a/b", "/api/v1/subjects/a%2Fb"),
            (
                "/api/v1/subjects/a/b/versions",
                "/api/v1/subjects/a%2Fb/versions",
            ),
            (
                "/api/v1/subjects/a/b/versions/latest",
                "/api/v1/subjects/a%2Fb/versions/latest",
            ),
        ] {
            let message = not_found_message(path);
            assert!(
                message.ends_with(&format!("as in {suggested}")),
                "{path}: {message}"
            );
        }
    }
}
