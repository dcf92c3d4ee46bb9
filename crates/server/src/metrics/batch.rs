//! Per-request samples, buffered by the worker thread that records them and folded into the
//! Prometheus recorder in batches.
//!
//! **Why.** Every request records two series: its HTTP route and its storage operation, each a
//! counter and a histogram. Through the recorder's handles, each record updates atomics that
//! every worker thread shares (the counter, and the histogram's sample list); at 120k cached
//! reads a second on two cores those cache lines bounce between the cores on every request.
//! Measured with `docs/perf/quick_ab.sh`, that cost 0.8–1.0 µs of server CPU per cached read,
//! about a tenth of it. Here a sample is appended to a buffer that only its own thread touches
//! (its mutex is uncontended except during a flush); a full buffer is folded by the thread that
//! filled it, and a scrape of `/metrics` or the upkeep thread folds every buffer first.
//!
//! **What it changes for a reader of `/metrics`.** Nothing in the output: the same series, the
//! same counts. A scrape folds all buffers before rendering, so it sees every request that
//! finished before it; between scrapes, samples reach the recorder within
//! [`super::UPKEEP_INTERVAL`] or [`FLUSH_AT`] requests of a thread, whichever comes first.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, RwLock};

use axum::http::Method;
use metrics::{Counter, Histogram};

/// A thread folds its own buffer when it holds this many samples (about 48 KiB).
pub const FLUSH_AT: usize = 1024;

/// One finished request or storage operation.
#[derive(Debug, Clone)]
pub enum Sample {
    /// `schema_registry_http_requests_total{method,route,status}` and
    /// `schema_registry_http_request_duration_seconds{method,route}`.
    Http {
        route: &'static str,
        method: Method,
        status: u16,
        seconds: f64,
    },
    /// `schema_registry_operations_total{operation,status}` and
    /// `schema_registry_operation_duration_seconds{operation}`.
    Operation {
        operation: &'static str,
        status: &'static str,
        seconds: f64,
    },
}

type Buffer = Arc<Mutex<Vec<Sample>>>;

/// Every thread's buffer, so that a scrape can fold them all.
static BUFFERS: LazyLock<Mutex<Vec<Buffer>>> = LazyLock::new(|| Mutex::new(Vec::new()));

thread_local! {
    static LOCAL: Buffer = register();
}

fn register() -> Buffer {
    let buffer: Buffer = Arc::new(Mutex::new(Vec::with_capacity(FLUSH_AT)));
    BUFFERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(buffer.clone());
    buffer
}

/// Buffers `sample` on this thread; folds the buffer when it is full.
pub fn record(sample: Sample) {
    let mut sample = Some(sample);
    let full = LOCAL.try_with(|buffer| {
        let mut samples = buffer.lock().unwrap_or_else(PoisonError::into_inner);
        samples.extend(sample.take());
        (samples.len() >= FLUSH_AT)
            .then(|| std::mem::replace(&mut *samples, Vec::with_capacity(FLUSH_AT)))
    });
    match full {
        Ok(Some(batch)) => fold(batch),
        Ok(None) => {}
        // The thread is exiting and its buffer is gone: record directly.
        Err(_) => fold(sample.into_iter().collect()),
    }
}

/// Folds every thread's buffer into the recorder, and forgets the buffers of threads that have
/// exited.
pub fn flush_all() {
    let mut buffers = BUFFERS.lock().unwrap_or_else(PoisonError::into_inner);
    for buffer in buffers.iter() {
        let batch = std::mem::take(&mut *buffer.lock().unwrap_or_else(PoisonError::into_inner));
        fold(batch);
    }
    // Only this list still holds the buffer of a thread that has exited (and it was just
    // emptied above).
    buffers.retain(|b| Arc::strong_count(b) > 1);
}

fn fold(batch: Vec<Sample>) {
    for sample in batch {
        match sample {
            Sample::Http {
                route,
                method,
                status,
                seconds,
            } => HTTP.record((route, method.clone(), status), seconds, || {
                let counter = metrics::counter!(
                    "schema_registry_http_requests_total",
                    "method" => method.as_str().to_owned(),
                    "route" => route,
                    "status" => status.to_string()
                );
                let histogram = metrics::histogram!(
                    "schema_registry_http_request_duration_seconds",
                    "method" => method.as_str().to_owned(),
                    "route" => route
                );
                (counter, histogram)
            }),
            Sample::Operation {
                operation,
                status,
                seconds,
            } => OPERATIONS.record((operation, status), seconds, || {
                let counter = metrics::counter!("schema_registry_operations_total", "operation" => operation, "status" => status);
                let histogram = metrics::histogram!("schema_registry_operation_duration_seconds", "operation" => operation);
                (counter, histogram)
            }),
        }
    }
}

/// HTTP handles by (route template, method, status).
static HTTP: LazyLock<Handles<(&'static str, Method, u16)>> = LazyLock::new(Handles::new);
/// Operation handles by (operation, status).
static OPERATIONS: LazyLock<Handles<(&'static str, &'static str)>> = LazyLock::new(Handles::new);

/// Metric handles by label set, registered with the recorder on first use and kept, because a
/// `metrics::counter!` with labels builds its key and searches the registry on every call.
struct Handles<K> {
    map: RwLock<HashMap<K, (Counter, Histogram)>>,
}

impl<K: Eq + Hash> Handles<K> {
    fn new() -> Self {
        Handles {
            map: RwLock::new(HashMap::new()),
        }
    }

    /// Counts one event of `key` and records `value` in its histogram; `register` makes the
    /// handles the first time `key` is seen.
    fn record(&self, key: K, value: f64, register: impl FnOnce() -> (Counter, Histogram)) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_exporter_prometheus::PrometheusBuilder;

    /// Samples recorded on threads that have since exited all reach the recorder at the next
    /// flush, and those threads' buffers are then dropped.
    #[test]
    fn a_flush_folds_the_buffers_of_all_threads() {
        let threads: Vec<_> = (0..3)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..10 {
                        record(Sample::Operation {
                            operation: "batch_test_op",
                            status: "ok",
                            seconds: 0.001,
                        });
                    }
                    LOCAL.with(|b| Arc::as_ptr(b) as usize)
                })
            })
            .collect();
        let buffers: Vec<usize> = threads
            .into_iter()
            .map(|t| t.join().expect("thread"))
            .collect();

        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, flush_all);
        let text = handle.render();
        assert!(
            text.contains(
                r#"schema_registry_operations_total{operation="batch_test_op",status="ok"} 30"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"schema_registry_operation_duration_seconds_count{operation="batch_test_op"} 30"#
            ),
            "{text}"
        );
        let live = BUFFERS.lock().expect("buffers");
        for exited in buffers {
            assert!(
                !live.iter().any(|b| Arc::as_ptr(b) as usize == exited),
                "an exited thread's buffer is dropped once flushed"
            );
        }
    }

    /// A thread that fills its buffer folds it itself, without waiting for a flush.
    #[test]
    fn a_full_buffer_is_folded_by_its_own_thread() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            std::thread::scope(|scope| {
                scope.spawn(|| {
                    metrics::with_local_recorder(&recorder, || {
                        for _ in 0..FLUSH_AT {
                            record(Sample::Operation {
                                operation: "batch_full_op",
                                status: "ok",
                                seconds: 0.001,
                            });
                        }
                    })
                });
            });
        });
        let text = handle.render();
        assert!(
            text.contains(&format!(
                r#"schema_registry_operations_total{{operation="batch_full_op",status="ok"}} {FLUSH_AT}"#
            )),
            "{text}"
        );
    }
}
