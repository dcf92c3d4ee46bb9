//! The per-request series: each finished request and storage operation updates a counter and a
//! latency histogram of [`local`] (which says why not the Prometheus recorder's), found by label
//! set in [`Slots`].
//!
//! (A variant that buffered samples per worker thread and folded them in batches, so that the
//! hot path would write no atomics shared between cores, measured no faster on the cached-read
//! benchmark, within `docs/perf/quick_ab.sh`'s run-to-run noise, and was dropped as complexity
//! that bought nothing.)

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, LazyLock, OnceLock, RwLock};
use std::time::Duration;

use axum::http::Method;

use super::local::{self, LatencyHistogram, LocalCounter};

/// One finished request: `schema_registry_http_requests_total{method,route,status}` and
/// `schema_registry_http_request_duration_seconds{method,route}`.
pub(super) fn record_http(route: &'static str, method: &Method, status: u16, elapsed: Duration) {
    HTTP.record((route, method.clone(), status), elapsed, || {
        let code = status.to_string();
        let counter = local::counter(
            "schema_registry_http_requests_total",
            &[
                ("method", method.as_str()),
                ("route", route),
                ("status", &code),
            ],
        );
        let histogram = local::histogram(
            "schema_registry_http_request_duration_seconds",
            &[("method", method.as_str()), ("route", route)],
        );
        (counter, histogram)
    });
}

/// One finished storage operation: `schema_registry_operations_total{operation,status}` and
/// `schema_registry_operation_duration_seconds{operation}`.
pub fn record_operation(operation: &'static str, status: &'static str, elapsed: Duration) {
    OPERATIONS.record((operation, status), elapsed, || {
        let counter = local::counter(
            "schema_registry_operations_total",
            &[("operation", operation), ("status", status)],
        );
        let histogram = local::histogram(
            "schema_registry_operation_duration_seconds",
            &[("operation", operation)],
        );
        (counter, histogram)
    });
}

/// HTTP series by (route template, method, status).
static HTTP: LazyLock<Slots<(&'static str, Method, u16)>> = LazyLock::new(|| Slots::new(64));
/// Operation series by (operation, status).
static OPERATIONS: LazyLock<Slots<(&'static str, &'static str)>> = LazyLock::new(|| Slots::new(64));

/// The series of one label set: its counter and its latency histogram.
type Handles = (Arc<LocalCounter>, Arc<LatencyHistogram>);

/// Series by label set, made on first use and then shared. The first label sets seen take
/// fixed slots that a lookup only *reads* (a `OnceLock` each), so recording writes nothing that
/// another core reads or writes too; a lock-guarded map holds any beyond them.
struct Slots<K> {
    slots: Box<[OnceLock<(K, Handles)>]>,
    overflow: RwLock<HashMap<K, Handles>>,
}

impl<K: Eq + Hash + Clone> Slots<K> {
    fn new(fixed: usize) -> Self {
        Slots {
            slots: (0..fixed).map(|_| OnceLock::new()).collect(),
            overflow: RwLock::new(HashMap::new()),
        }
    }

    /// Counts one event of `key` and records `elapsed` in its histogram; `make` makes the
    /// series the first time `key` is seen.
    fn record(&self, key: K, elapsed: Duration, make: impl Fn() -> Handles) {
        let hit = |(counter, histogram): &Handles| {
            counter.increment();
            histogram.record(elapsed);
        };
        for slot in self.slots.iter() {
            let (k, handles) = match slot.get() {
                Some(taken) => taken,
                // A free slot: take it for `key`, unless another thread just took it (for its
                // own key, which may be this one).
                None => slot.get_or_init(|| (key.clone(), make())),
            };
            if *k == key {
                return hit(handles);
            }
        }
        if let Ok(map) = self.overflow.read() {
            if let Some(handles) = map.get(&key) {
                return hit(handles);
            }
        }
        let handles = make();
        hit(&handles);
        if let Ok(mut map) = self.overflow.write() {
            map.entry(key).or_insert(handles);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Label sets beyond the fixed slots go to the overflow map, and every one keeps its own
    /// series.
    #[test]
    fn label_sets_beyond_the_fixed_slots_are_still_counted_apart() {
        let slots: Slots<u16> = Slots::new(2);
        for status in [200u16, 201, 404, 200, 404, 404] {
            slots.record(status, Duration::from_micros(10), || {
                let code = status.to_string();
                (
                    local::counter("slots_test_total", &[("status", &code)]),
                    local::histogram("slots_test_seconds", &[("status", &code)]),
                )
            });
        }
        let mut out = String::new();
        local::render_all(&mut out);
        for (status, n) in [(200, 2), (201, 1), (404, 3)] {
            let line = format!("slots_test_total{{status=\"{status}\"}} {n}\n");
            assert!(out.contains(&line), "{line:?} in\n{out}");
        }
        assert_eq!(slots.overflow.read().expect("map").len(), 1);
    }
}
