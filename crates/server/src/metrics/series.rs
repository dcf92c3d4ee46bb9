//! The per-request series: each finished request and storage operation updates a counter (in the
//! Prometheus recorder) and a latency histogram (in [`latency`], which says why not the
//! recorder's), through handles looked up once per label set and kept ([`Handles`]), because a
//! `metrics::counter!` with labels builds its key and searches the registry on every call.
//!
//! (A variant that buffered samples per worker thread and folded them in batches, so that the
//! hot path would write no atomics shared between cores, measured no faster on the cached-read
//! benchmark, within `docs/perf/quick_ab.sh`'s run-to-run noise, and was dropped as complexity
//! that bought nothing.)

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, LazyLock, RwLock};
use std::time::Duration;

use axum::http::Method;
use metrics::Counter;

use super::latency::{self, LatencyHistogram};

/// One finished request or storage operation.
#[derive(Debug, Clone)]
pub(super) enum Sample {
    /// `schema_registry_http_requests_total{method,route,status}` and
    /// `schema_registry_http_request_duration_seconds{method,route}`.
    Http {
        route: &'static str,
        method: Method,
        status: u16,
        elapsed: Duration,
    },
    /// `schema_registry_operations_total{operation,status}` and
    /// `schema_registry_operation_duration_seconds{operation}`.
    Operation {
        operation: &'static str,
        status: &'static str,
        elapsed: Duration,
    },
}

/// Counts and times one request or operation through the handles of its label set.
pub(super) fn record(sample: Sample) {
    match sample {
        Sample::Http {
            route,
            method,
            status,
            elapsed,
        } => HTTP.record((route, method.clone(), status), elapsed, || {
            let counter = metrics::counter!(
                "schema_registry_http_requests_total",
                "method" => method.as_str().to_owned(),
                "route" => route,
                "status" => status.to_string()
            );
            let histogram = latency::series(
                "schema_registry_http_request_duration_seconds",
                &[("method", method.as_str()), ("route", route)],
            );
            (counter, histogram)
        }),
        Sample::Operation {
            operation,
            status,
            elapsed,
        } => OPERATIONS.record((operation, status), elapsed, || {
            let counter = metrics::counter!("schema_registry_operations_total", "operation" => operation, "status" => status);
            let histogram = latency::series(
                "schema_registry_operation_duration_seconds",
                &[("operation", operation)],
            );
            (counter, histogram)
        }),
    }
}

/// HTTP handles by (route template, method, status).
static HTTP: LazyLock<Handles<(&'static str, Method, u16)>> = LazyLock::new(Handles::new);
/// Operation handles by (operation, status).
static OPERATIONS: LazyLock<Handles<(&'static str, &'static str)>> = LazyLock::new(Handles::new);

/// Metric handles by label set, registered with the recorder on first use and kept, because a
/// `metrics::counter!` with labels builds its key and searches the registry on every call.
struct Handles<K> {
    map: RwLock<HashMap<K, (Counter, Arc<LatencyHistogram>)>>,
}

impl<K: Eq + Hash> Handles<K> {
    fn new() -> Self {
        Handles {
            map: RwLock::new(HashMap::new()),
        }
    }

    /// Counts one event of `key` and records `value` in its histogram; `register` makes the
    /// handles the first time `key` is seen.
    fn record(
        &self,
        key: K,
        value: Duration,
        register: impl FnOnce() -> (Counter, Arc<LatencyHistogram>),
    ) {
        if let Ok(map) = self.map.read() {
            if let Some((counter, histogram)) = map.get(&key) {
                counter.increment(1);
                histogram.record(value);
                return;
            }
        }
        let (counter, histogram) = register();
        counter.increment(1);
        histogram.record(value);
        if let Ok(mut map) = self.map.write() {
            map.entry(key).or_insert((counter, histogram));
        }
    }
}
