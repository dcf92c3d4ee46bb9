//! Prometheus metrics, served at `GET /metrics` in the text exposition format.
//!
//! Metric names use underscores: dots (`schema_registry.operations.total`) are not
//! legal in Prometheus metric names; every name here uses underscores.
//!
//! - **Operations** are recorded by the server's storage decorator (`MeteredBackend`) through
//!   [`record_operation`]:
//!   `schema_registry_operations_total{operation,status}` and
//!   `schema_registry_operation_duration_seconds{operation}` (histogram).
//! - **HTTP** requests by route *template* (never the raw path, which would explode the label
//!   set): `schema_registry_http_requests_total{method,route,status}` and
//!   `schema_registry_http_request_duration_seconds{method,route}`.
//! - **Object store** calls are counted where they happen, in the storage crate:
//!   `schema_registry_s3_operations_total{operation,status,backend}` and
//!   `schema_registry_s3_upload_size_bytes` (histogram).
//! - **State** is read when Prometheus scrapes, so the hot path pays nothing for it: cache hits
//!   and misses, hit ratio, L1 entries, storage size, schemas by state, pool connections.
//!
//! Recording the per-request series is a handful of atomic operations per request (`series`).
//! `--metrics false` removes it all (no recorder, no middleware, no decorator) for a
//! like-for-like comparison.

mod local;
mod series;

pub use series::record_operation;

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use pin_project_lite::pin_project;
use schema_registry_storage::Storage;
use tower::{Layer, Service};

use crate::native::AppState;

/// Latency buckets, seconds: 50 µs to 5 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0,
];
/// Upload size buckets, bytes: 1 MiB to 256 MiB.
const SIZE_BUCKETS: &[f64] = &[
    1_048_576.0,
    2_097_152.0,
    4_194_304.0,
    8_388_608.0,
    16_777_216.0,
    33_554_432.0,
    67_108_864.0,
    134_217_728.0,
    268_435_456.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls return the same handle).
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            // The latency histograms are not the recorder's (see `local`); its one histogram
            // is the upload size.
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("size_bytes".into()), SIZE_BUCKETS);
            match builder.and_then(|b| b.install_recorder()) {
                Ok(handle) => {
                    start_upkeep(handle.clone());
                    Some(handle)
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot install the metrics recorder; /metrics is disabled");
                    None
                }
            }
        })
        .clone()
}

/// How often histogram samples are folded into their buckets.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Folds recorded histogram samples into their buckets every [`UPKEEP_INTERVAL`], on a thread of
/// its own for the life of the process (the recorder is process-wide too). The exporter keeps
/// every sample until upkeep runs: without this, a server that nobody scrapes would grow with
/// every sample for ever (8 bytes per upload, and, before the latency histograms moved to
/// `local`, 16 bytes per request), and a scrape after a long gap would stall on draining them.
fn start_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP_INTERVAL);
            handle.run_upkeep();
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the metrics upkeep thread; histograms are folded only when /metrics is scraped");
    }
}

/// `GET /metrics`.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    summary = "Prometheus metrics, text exposition format",
    responses(
        (status = 200, description = "The series (docs/operations.md)", body = String, content_type = "text/plain; version=0.0.4"),
        (status = 404, description = "`metrics_disabled`: metrics are off", body = crate::native::openapi::ErrorBody),
    ),
)]
pub async fn render(State(state): State<AppState>) -> Response {
    let Some(handle) = state.metrics.as_ref() else {
        return crate::error::ApiError::not_found(
            "metrics_disabled",
            "metrics are turned off (--metrics false)",
        )
        .into_response();
    };
    record_state(state.registry.storage().as_ref()).await;
    handle.run_upkeep();
    let mut text = handle.render();
    local::render_all(&mut text);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Gauges and cumulative counters read from the storage stack at scrape time.
async fn record_state(storage: &dyn Storage) {
    if let Some(c) = storage.cache_stats() {
        metrics::counter!("schema_registry_cache_hits_total", "tier" => "l1").absolute(c.l1_hits);
        metrics::counter!("schema_registry_cache_hits_total", "tier" => "l2").absolute(c.l2_hits);
        metrics::counter!("schema_registry_cache_misses_total").absolute(c.misses);
        metrics::counter!("schema_registry_cache_evictions_total").absolute(c.evictions);
        metrics::counter!("schema_registry_cache_l2_errors_total").absolute(c.l2_errors);
        metrics::gauge!("schema_registry_cache_hit_ratio").set(c.hit_rate);
        metrics::gauge!("schema_registry_cache_l1_entries").set(c.l1_entries as f64);
    }
    if let Some((active, idle)) = storage.pool_stats() {
        metrics::gauge!("schema_registry_db_connections", "state" => "active")
            .set(f64::from(active));
        metrics::gauge!("schema_registry_db_connections", "state" => "idle").set(f64::from(idle));
    }
    match tokio::time::timeout(Duration::from_secs(2), storage.statistics()).await {
        Ok(Ok(s)) => {
            metrics::gauge!("schema_registry_storage_size_bytes").set(s.bytes as f64);
            metrics::gauge!("schema_registry_subjects").set(s.subjects as f64);
            for (state, n) in [
                ("active", s.active),
                ("deprecated", s.deprecated),
                ("deleted", s.deleted),
            ] {
                metrics::gauge!("schema_registry_schemas", "state" => state).set(n as f64);
            }
        }
        Ok(Err(e)) => tracing::debug!(error = %e, "statistics unavailable for /metrics"),
        Err(_) => tracing::debug!("statistics timed out for /metrics"),
    }
}

/// Counts and times the requests of one route, by method and status:
/// `schema_registry_http_requests_total{method,route,status}` and
/// `schema_registry_http_request_duration_seconds{method,route}`. One layer per route, made
/// knowing the route's template (see `routes::router`), so a request never looks up or copies
/// its matched path.
#[derive(Clone, Debug)]
pub struct HttpMetricsLayer {
    route: &'static str,
}

impl HttpMetricsLayer {
    pub fn new(route: &'static str) -> Self {
        HttpMetricsLayer { route }
    }
}

impl<S> Layer<S> for HttpMetricsLayer {
    type Service = HttpMetrics<S>;

    fn layer(&self, inner: S) -> HttpMetrics<S> {
        HttpMetrics {
            inner,
            layer: self.clone(),
        }
    }
}

/// See [`HttpMetricsLayer`].
#[derive(Clone, Debug)]
pub struct HttpMetrics<S> {
    inner: S,
    layer: HttpMetricsLayer,
}

impl<S> Service<Request> for HttpMetrics<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = HttpMetricsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        HttpMetricsFuture {
            method: req.method().clone(),
            started: Instant::now(),
            route: self.layer.route,
            inner: self.inner.call(req),
        }
    }
}

pin_project! {
    /// The response future of [`HttpMetrics`]: records when the response is ready.
    pub struct HttpMetricsFuture<F> {
        #[pin]
        inner: F,
        method: Method,
        started: Instant,
        route: &'static str,
    }
}

impl<F, E> Future for HttpMetricsFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        if let Ok(response) = &result {
            series::record_http(
                this.route,
                this.method,
                response.status().as_u16(),
                this.started.elapsed(),
            );
        }
        Poll::Ready(result)
    }
}
