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

/// Shards per histogram: a power of two above the worker-thread count of a small server.
const SHARDS: usize = 8;
/// Buckets plus the overflow (`le="+Inf"` only).
const SLOTS: usize = LATENCY_BUCKETS.len() + 1;

/// One thread's counters, on cache lines of their own.
#[repr(align(128))]
#[derive(Default)]
struct Shard {
    /// Non-cumulative: the samples whose value fell in each bucket.
    slots: [AtomicU64; SLOTS],
    sum_nanos: AtomicU64,
}

/// One series: a metric name and its label set.
pub struct LatencyHistogram {
    name: &'static str,
    /// Rendered labels, `k="v",...`, escaped.
    labels: String,
    shards: Box<[Shard]>,
}

impl std::fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyHistogram")
            .field("name", &self.name)
            .field("labels", &self.labels)
            .finish_non_exhaustive()
    }
}

impl LatencyHistogram {
    pub fn record(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let slot = LATENCY_BUCKETS.partition_point(|&bound| bound < seconds);
        let shard = &self.shards[thread_shard()];
        shard.slots[slot].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        shard.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String) {
        let mut slots = [0u64; SLOTS];
        let mut sum_nanos = 0u64;
        for shard in self.shards.iter() {
            for (total, slot) in slots.iter_mut().zip(&shard.slots) {
                *total = total.wrapping_add(slot.load(Ordering::Relaxed));
            }
            sum_nanos = sum_nanos.wrapping_add(shard.sum_nanos.load(Ordering::Relaxed));
        }
        let (name, labels) = (self.name, self.labels.as_str());
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

/// A counter, sharded by thread.
pub struct LocalCounter {
    name: &'static str,
    labels: String,
    shards: Box<[CounterShard]>,
}

/// One thread's count, on a cache line of its own.
#[repr(align(128))]
#[derive(Default)]
struct CounterShard(AtomicU64);

impl std::fmt::Debug for LocalCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCounter")
            .field("name", &self.name)
            .field("labels", &self.labels)
            .finish_non_exhaustive()
    }
}

impl LocalCounter {
    pub fn increment(&self) {
        self.shards[thread_shard()]
            .0
            .fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String) {
        let total = self
            .shards
            .iter()
            .fold(0u64, |n, s| n.wrapping_add(s.0.load(Ordering::Relaxed)));
        let _ = writeln!(out, "{}{{{}}} {total}", self.name, self.labels);
    }
}

/// What a registry needs of a series.
trait Series {
    /// The Prometheus type, for the `# TYPE` line.
    const KIND: &'static str;
    fn made(name: &'static str, labels: String) -> Self;
    fn key(&self) -> (&'static str, &str);
    fn write(&self, out: &mut String);
}

impl Series for LatencyHistogram {
    const KIND: &'static str = "histogram";
    fn made(name: &'static str, labels: String) -> Self {
        LatencyHistogram {
            name,
            labels,
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
        }
    }
    fn key(&self) -> (&'static str, &str) {
        (self.name, &self.labels)
    }
    fn write(&self, out: &mut String) {
        self.render(out);
    }
}

impl Series for LocalCounter {
    const KIND: &'static str = "counter";
    fn made(name: &'static str, labels: String) -> Self {
        LocalCounter {
            name,
            labels,
            shards: (0..SHARDS).map(|_| CounterShard::default()).collect(),
        }
    }
    fn key(&self) -> (&'static str, &str) {
        (self.name, &self.labels)
    }
    fn write(&self, out: &mut String) {
        self.render(out);
    }
}

/// Every series of one type made so far, in the order made.
struct Registry<T>(Mutex<Vec<Arc<T>>>);

impl<T: Series> Registry<T> {
    const fn new() -> Self {
        Registry(Mutex::new(Vec::new()))
    }

    /// The series `name{labels}`, made the first time it is asked for. Callers keep the `Arc`:
    /// this takes a lock and searches every series, so it is not for the request path.
    fn series(&self, name: &'static str, labels: &[(&str, &str)]) -> Arc<T> {
        let rendered = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect::<Vec<_>>()
            .join(",");
        let mut all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = all.iter().find(|s| s.key() == (name, rendered.as_str())) {
            return found.clone();
        }
        let made = Arc::new(T::made(name, rendered));
        all.push(made.clone());
        made
    }

    /// Appends every series, each metric under one `# TYPE` line.
    fn render(&self, out: &mut String) {
        let all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let mut names: Vec<&'static str> = all.iter().map(|s| s.key().0).collect();
        names.sort_unstable();
        names.dedup();
        for name in names {
            let _ = writeln!(out, "# TYPE {name} {}", T::KIND);
            for s in all.iter().filter(|s| s.key().0 == name) {
                s.write(out);
            }
            out.push('\n');
        }
    }
}

static HISTOGRAMS: Registry<LatencyHistogram> = Registry::new();
static COUNTERS: Registry<LocalCounter> = Registry::new();

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
        h.render(&mut out);
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
