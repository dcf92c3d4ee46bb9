//! The per-request series — `schema_registry_http_requests_total`,
//! `schema_registry_http_request_duration_seconds`, `schema_registry_operations_total` and
//! `schema_registry_operation_duration_seconds` — kept and rendered here rather than by the
//! Prometheus exporter.
//!
//! **Why.** The exporter keeps every histogram sample in a shared lock-free list until its
//! upkeep folds them into buckets, and every counter increment also bumps a shared generation
//! counter. On the cached read path that cost more than the rest of the metrics together:
//! measured with `perf` against `--metrics false`, the two histogram pushes per request took
//! 0.14 µs and the two counter increments 0.08–0.10 µs, and the sample lists, allocated and freed
//! by the megabyte between upkeeps, added page faults on top. Here a series is a fixed set of
//! counters sharded by thread: a record is, at most, a bucket search and relaxed additions to
//! counters that in practice only one core writes. Nothing is buffered, so a scrape is exact.
//!
//! Histograms use the exporter's latency buckets ([`super::LATENCY_BUCKETS`]); the output is the
//! Prometheus text format (a counter's value; a histogram's cumulative `_bucket{le=...}`, `_sum`
//! and `_count`), appended to the exporter's by `GET /metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::LATENCY_BUCKETS;

/// Shards per series: a power of two above the worker-thread count of a small server.
const SHARDS: usize = 8;
/// Buckets plus the overflow (`le="+Inf"` only).
const SLOTS: usize = LATENCY_BUCKETS.len() + 1;

/// One series: a metric name, its label set, and one shard of counts per thread slot.
pub struct Sharded<S> {
    name: &'static str,
    /// Rendered labels, `k="v",...`, escaped.
    labels: String,
    shards: Box<[S]>,
}

/// A latency histogram (see the module documentation).
pub type LatencyHistogram = Sharded<HistogramShard>;
/// A counter.
pub type LocalCounter = Sharded<CounterShard>;

impl<S> std::fmt::Debug for Sharded<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sharded")
            .field("name", &self.name)
            .field("labels", &self.labels)
            .finish_non_exhaustive()
    }
}

impl<S> Sharded<S> {
    /// This thread's shard.
    fn local(&self) -> &S {
        &self.shards[thread_shard()]
    }
}

/// What one kind of series keeps per thread, and how it is written out.
pub trait Shard: Default {
    /// The Prometheus type, for the `# TYPE` line.
    const KIND: &'static str;
    /// Writes the series whose shards are `shards`.
    fn render(name: &str, labels: &str, shards: &[Self], out: &mut String);
}

/// One thread's histogram counts, on cache lines of their own.
#[repr(align(128))]
#[derive(Default)]
pub struct HistogramShard {
    /// Non-cumulative: the samples whose value fell in each bucket.
    slots: [AtomicU64; SLOTS],
    sum_nanos: AtomicU64,
}

impl LatencyHistogram {
    pub fn record(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let slot = LATENCY_BUCKETS.partition_point(|&bound| bound < seconds);
        let shard = self.local();
        shard.slots[slot].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        shard.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

impl Shard for HistogramShard {
    const KIND: &'static str = "histogram";

    fn render(name: &str, labels: &str, shards: &[Self], out: &mut String) {
        let mut slots = [0u64; SLOTS];
        let mut sum_nanos = 0u64;
        for shard in shards {
            for (total, slot) in slots.iter_mut().zip(&shard.slots) {
                *total = total.wrapping_add(slot.load(Ordering::Relaxed));
            }
            sum_nanos = sum_nanos.wrapping_add(shard.sum_nanos.load(Ordering::Relaxed));
        }
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0u64;
        for (bound, count) in LATENCY_BUCKETS.iter().zip(slots) {
            cumulative += count;
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        cumulative += slots[SLOTS - 1];
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cumulative}"
        );
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", sum_nanos as f64 / 1e9);
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
}

/// One thread's count, on a cache line of its own.
#[repr(align(128))]
#[derive(Default)]
pub struct CounterShard(AtomicU64);

impl LocalCounter {
    pub fn increment(&self) {
        self.local().0.fetch_add(1, Ordering::Relaxed);
    }
}

impl Shard for CounterShard {
    const KIND: &'static str = "counter";

    fn render(name: &str, labels: &str, shards: &[Self], out: &mut String) {
        let total = shards
            .iter()
            .fold(0u64, |n, s| n.wrapping_add(s.0.load(Ordering::Relaxed)));
        let _ = writeln!(out, "{name}{{{labels}}} {total}");
    }
}

/// Every series of one kind made so far, in the order made.
struct Registry<S>(Mutex<Vec<Arc<Sharded<S>>>>);

impl<S: Shard> Registry<S> {
    const fn new() -> Self {
        Registry(Mutex::new(Vec::new()))
    }

    /// The series `name{labels}`, made the first time it is asked for. Callers keep the `Arc`:
    /// this takes a lock and searches every series, so it is not for the request path.
    fn series(&self, name: &'static str, labels: &[(&str, &str)]) -> Arc<Sharded<S>> {
        let rendered = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect::<Vec<_>>()
            .join(",");
        let mut all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = all.iter().find(|s| s.name == name && s.labels == rendered) {
            return found.clone();
        }
        let made = Arc::new(Sharded {
            name,
            labels: rendered,
            shards: (0..SHARDS).map(|_| S::default()).collect(),
        });
        all.push(made.clone());
        made
    }

    /// Appends every series, each metric under one `# TYPE` line.
    fn render(&self, out: &mut String) {
        let all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let mut names: Vec<&'static str> = all.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        for name in names {
            let _ = writeln!(out, "# TYPE {name} {}", S::KIND);
            for s in all.iter().filter(|s| s.name == name) {
                S::render(s.name, &s.labels, &s.shards, out);
            }
            out.push('\n');
        }
    }
}

static HISTOGRAMS: Registry<HistogramShard> = Registry::new();
static COUNTERS: Registry<CounterShard> = Registry::new();

/// The histogram `name{labels}` (see [`Registry::series`]).
pub fn histogram(name: &'static str, labels: &[(&str, &str)]) -> Arc<LatencyHistogram> {
    HISTOGRAMS.series(name, labels)
}

/// The counter `name{labels}` (see [`Registry::series`]).
pub fn counter(name: &'static str, labels: &[(&str, &str)]) -> Arc<LocalCounter> {
    COUNTERS.series(name, labels)
}

/// Appends every counter and histogram in the Prometheus text format.
pub fn render_all(out: &mut String) {
    COUNTERS.render(out);
    HISTOGRAMS.render(out);
}

/// A label value in the text format: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// This thread's shard: threads take the next one in turn as they first record.
fn thread_shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.try_with(|s| *s).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(h: &LatencyHistogram) -> String {
        let mut out = String::new();
        HistogramShard::render(h.name, &h.labels, &h.shards, &mut out);
        out
    }

    #[test]
    fn buckets_are_cumulative_and_count_every_thread() {
        let h = histogram("latency_test_seconds", &[("op", "a\"b")]);
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let h = h.clone();
                std::thread::spawn(move || {
                    h.record(Duration::from_micros(30)); // ≤ 50 µs
                    h.record(Duration::from_millis(3)); // ≤ 5 ms
                    h.record(Duration::from_secs(9)); // above every bound
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let text = rendered(&h);
        let labels = r#"op="a\"b""#;
        for (series, value) in [
            (r#"bucket{LABELS,le="0.00005"}"#, "3"),
            (r#"bucket{LABELS,le="0.0025"}"#, "3"),
            (r#"bucket{LABELS,le="0.005"}"#, "6"),
            (r#"bucket{LABELS,le="5"}"#, "6"),
            (r#"bucket{LABELS,le="+Inf"}"#, "9"),
            ("count{LABELS}", "9"),
            ("sum{LABELS}", "27.00909"),
        ] {
            let line = format!(
                "latency_test_seconds_{} {value}\n",
                series.replace("LABELS", labels)
            );
            assert!(text.contains(&line), "{line:?} in\n{text}");
        }
    }

    #[test]
    fn a_bound_is_inclusive() {
        let h = histogram("latency_bound_test_seconds", &[]);
        h.record(Duration::from_micros(100));
        let text = rendered(&h);
        assert!(
            text.contains("latency_bound_test_seconds_bucket{le=\"0.00005\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("latency_bound_test_seconds_bucket{le=\"0.0001\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn one_series_per_name_and_labels_and_one_type_line_per_name() {
        let a = histogram("latency_family_test_seconds", &[("k", "1")]);
        let b = histogram("latency_family_test_seconds", &[("k", "1")]);
        let c = histogram("latency_family_test_seconds", &[("k", "2")]);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        let mut out = String::new();
        render_all(&mut out);
        assert_eq!(
            out.matches("# TYPE latency_family_test_seconds histogram")
                .count(),
            1
        );
        assert_eq!(out.matches("latency_family_test_seconds_count{").count(), 2);
    }
}
