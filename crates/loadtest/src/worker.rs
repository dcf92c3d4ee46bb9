//! The measured run: `concurrency` worker tasks sharing one pooled client, each with one request
//! in flight at a time, each recording into its own histograms.
//!
//! **Closed loop** (the default): a worker sends its next request as soon as the last answer is
//! back, and latency runs from the send. **Open loop** (`--rate`): a pacer thread releases
//! operations at the given rate into a queue the workers take from, and latency runs from the
//! *release*. A server that stalls then shows the stall as latency of every operation released
//! meanwhile, as users would feel it, instead of quietly being sent fewer requests (the
//! "coordinated omission" of closed-loop tools). See [`pace`] for how finely releases are
//! spaced; a late wake-up of the pacer itself is not charged to the server.
//!
//! The hot path takes no lock: a worker owns its random generator, histograms and error counts;
//! the only shared state is a few relaxed atomic counters (operations done and errors for the
//! progress bar, operations issued for `--operations`, the stop flag). Per-task results are
//! merged once, after the run ([`TaskStats::merge`]).
//!
//! The run ends at the deadline (a request still in flight then is dropped and not counted), when
//! `--operations` have been issued and completed, or on Ctrl-C (each worker finishes the request
//! it has in flight).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::RngExt;
use serde::Serialize;

use super::args::{Mix, OpKind};
use super::http::{describe_transport_error, encode_segment, transport_error_kind};
use super::progress::{self, Counters};
use super::sampler::{task_rng, KeySampler};
use super::seed::{registration_body, Catalogue};

/// Released operations that may wait for a worker (open loop), 16 bytes each. A rate far above
/// what the server can take would otherwise grow the queue without bound; once it is full the
/// pacer waits for a worker, the run falls behind its rate, and the report says so.
const MAX_BACKLOG: usize = 1 << 20;
/// Significant digits of every latency histogram (0.1 % resolution).
const SIGFIG: u8 = 3;
/// Characters of an error body kept as the sample message.
const SAMPLE_LEN: usize = 200;

/// One seeded version with its URL paths prepared.
#[derive(Debug)]
struct Key {
    id: String,
    /// `subjects/{subject}/versions/{version}`, percent-encoded.
    version_path: String,
}

/// Everything a worker needs to build requests; shared read-only.
#[derive(Debug)]
pub(crate) struct Plan {
    base: String,
    keys: Vec<Key>,
    /// Encoded subject segments, popularity order.
    subjects: Vec<String>,
    /// Subject names, same order (for register bodies).
    subject_names: Vec<String>,
    mix: Mix,
    key_sampler: KeySampler,
    subject_sampler: KeySampler,
    search_url: String,
    payload_bytes: usize,
    /// Makes registered content unique across runs.
    run_tag: String,
}

impl Plan {
    /// Prepares the requests of a run over `catalogue`.
    pub(crate) fn new(
        base: &str,
        catalogue: &Catalogue,
        mix: Mix,
        distribution: super::args::KeyDistribution,
        zipf_exponent: f64,
        search_word: &str,
        payload_bytes: usize,
    ) -> anyhow::Result<Plan> {
        anyhow::ensure!(
            !catalogue.entries.is_empty(),
            "no live versions found for the data set (run without --skip-seed to create them)"
        );
        let keys = catalogue
            .entries
            .iter()
            .map(|e| Key {
                id: e.id.clone(),
                version_path: format!(
                    "subjects/{}/versions/{}",
                    encode_segment(&e.subject),
                    encode_segment(&e.version)
                ),
            })
            .collect::<Vec<_>>();
        let search_url = reqwest::Url::parse_with_params(
            &format!("{base}/api/v1/search"),
            [("q", search_word), ("limit", "10")],
        )?
        .to_string();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Ok(Plan {
            base: base.to_string(),
            key_sampler: KeySampler::new(distribution, zipf_exponent, keys.len())?,
            subject_sampler: KeySampler::new(
                distribution,
                zipf_exponent,
                catalogue.subjects.len(),
            )?,
            keys,
            subjects: catalogue
                .subjects
                .iter()
                .map(|s| encode_segment(s))
                .collect(),
            subject_names: catalogue.subjects.clone(),
            mix,
            search_url,
            payload_bytes,
            run_tag: format!("run {nanos:x}"),
        })
    }

    /// The request of one `op`; `task` and `seq` make a registered document unique.
    fn request<R: rand::Rng + ?Sized>(
        &self,
        client: &reqwest::Client,
        op: OpKind,
        rng: &mut R,
        task: usize,
        seq: u64,
    ) -> reqwest::RequestBuilder {
        let base = &self.base;
        match op {
            OpKind::GetById => {
                let key = &self.keys[self.key_sampler.sample(rng)];
                client.get(format!("{base}/api/v1/schemas/{}", key.id))
            }
            OpKind::GetLatest => {
                let subject = &self.subjects[self.subject_sampler.sample(rng)];
                client.get(format!("{base}/api/v1/subjects/{subject}/versions/latest"))
            }
            OpKind::GetByVersion => {
                let key = &self.keys[self.key_sampler.sample(rng)];
                client.get(format!("{base}/api/v1/{}", key.version_path))
            }
            OpKind::Search => client.get(&self.search_url),
            OpKind::Register => {
                let i = rng.random_range(0..self.subjects.len());
                let tag = format!("{} task {task} #{seq}", self.run_tag);
                let body = registration_body(&self.subject_names[i], &tag, self.payload_bytes);
                client
                    .post(format!(
                        "{base}/api/v1/subjects/{}/versions",
                        self.subjects[i]
                    ))
                    .json(&body)
            }
        }
    }
}

/// Results of one operation kind.
#[derive(Debug, Clone)]
pub(crate) struct OpStats {
    /// Latency of successful operations, microseconds.
    pub latency: Histogram<u64>,
    pub ok: u64,
    /// Failures by kind: `HTTP 503`, `timeout`, `connect error`, …
    pub errors: BTreeMap<String, u64>,
    /// The first failure's message, for diagnosis.
    pub sample_error: Option<String>,
}

impl OpStats {
    fn new() -> OpStats {
        OpStats {
            // Auto-resizing: a histogram only grows to the largest latency it has seen.
            latency: Histogram::new(SIGFIG).expect("3 significant digits are valid"),
            ok: 0,
            errors: BTreeMap::new(),
            sample_error: None,
        }
    }

    pub(crate) fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// A task's results, one [`OpStats`] per kind (indexed by `OpKind as usize`).
#[derive(Debug, Clone)]
pub(crate) struct TaskStats {
    pub ops: Vec<OpStats>,
}

impl TaskStats {
    pub(crate) fn new() -> TaskStats {
        TaskStats {
            ops: OpKind::ALL.iter().map(|_| OpStats::new()).collect(),
        }
    }

    fn record(&mut self, op: OpKind, micros: u64, outcome: Result<(), OpError>) {
        let stats = &mut self.ops[op as usize];
        match outcome {
            Ok(()) => {
                stats.ok += 1;
                // `record` grows the (auto-resizing) histogram; `saturating_record` would not.
                if stats.latency.record(micros.max(1)).is_err() {
                    stats.latency.saturating_record(micros.max(1));
                }
            }
            Err(e) => {
                *stats.errors.entry(e.kind).or_insert(0) += 1;
                stats.sample_error.get_or_insert(e.detail);
            }
        }
    }

    /// Adds `other` into `self`.
    pub(crate) fn merge(&mut self, other: TaskStats) {
        for (mine, theirs) in self.ops.iter_mut().zip(other.ops) {
            // Both auto-resize, so addition cannot run out of range.
            let _ = mine.latency.add(&theirs.latency);
            mine.ok += theirs.ok;
            for (kind, n) in theirs.errors {
                *mine.errors.entry(kind).or_insert(0) += n;
            }
            if mine.sample_error.is_none() {
                mine.sample_error = theirs.sample_error;
            }
        }
    }
}

/// Why the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// `--duration` elapsed.
    Duration,
    /// `--operations` were done.
    Operations,
    /// Ctrl-C.
    Interrupted,
}

/// The merged result of a run.
#[derive(Debug)]
pub(crate) struct RunOutcome {
    pub stats: TaskStats,
    pub wall: Duration,
    pub stop: StopReason,
}

/// State shared by the workers: atomics only.
struct Shared {
    counters: Arc<Counters>,
    issued: AtomicU64,
    max_ops: Option<u64>,
    stopped: AtomicBool,
}

/// A failed operation.
struct OpError {
    kind: String,
    detail: String,
}

/// How a run is driven; see the module documentation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Drive {
    pub concurrency: usize,
    pub duration: Duration,
    pub max_ops: Option<u64>,
    /// Open loop at this many operations per second; `None`: closed loop.
    pub rate: Option<u64>,
}

/// Runs the workers until the deadline, `max_ops`, or Ctrl-C; merges their results.
pub(crate) async fn run_workers(
    client: &reqwest::Client,
    plan: Arc<Plan>,
    drive: Drive,
    show_progress: bool,
) -> anyhow::Result<RunOutcome> {
    let Drive {
        concurrency,
        duration,
        max_ops,
        rate,
    } = drive;
    let shared = Arc::new(Shared {
        counters: Arc::new(Counters::default()),
        issued: AtomicU64::new(0),
        max_ops,
        stopped: AtomicBool::new(false),
    });
    let bar = progress::run_bar(shared.counters.clone(), duration, show_progress);
    let (interrupt_done, interrupt_task) = watch_ctrl_c(shared.clone());
    let started = Instant::now();
    let deadline = tokio::time::Instant::from_std(started + duration);
    let (releases, pacer) = match rate {
        Some(rate) => {
            let (tx, rx) = flume::bounded(MAX_BACKLOG);
            let until = started + duration;
            let pacer = std::thread::Builder::new()
                .name("load-test-pacer".into())
                .spawn({
                    let shared = shared.clone();
                    move || pace(tx, rate, started, until, &shared)
                })?;
            (Some(rx), Some(pacer))
        }
        None => (None, None),
    };
    let handles: Vec<_> = (0..concurrency)
        .map(|task| {
            tokio::spawn(worker(
                task,
                client.clone(),
                plan.clone(),
                shared.clone(),
                deadline,
                releases.clone(),
            ))
        })
        .collect();
    drop(releases);
    let mut stats = TaskStats::new();
    let mut failure = None;
    for handle in handles {
        match handle.await {
            Ok(task_stats) => stats.merge(task_stats),
            Err(e) => failure = Some(e),
        }
    }
    let wall = started.elapsed();
    if let Some(pacer) = pacer {
        // It stops at the deadline, or within one nap of the workers stopping.
        let _ = tokio::task::spawn_blocking(move || pacer.join()).await;
    }
    let _ = interrupt_done.send(());
    let _ = interrupt_task.await;
    bar.finish_and_clear();
    if let Some(e) = failure {
        anyhow::bail!("a load-test worker failed: {e}");
    }
    let stop = if shared.stopped.load(Ordering::Relaxed) {
        StopReason::Interrupted
    } else if max_ops.is_some_and(|max| shared.issued.load(Ordering::Relaxed) >= max) {
        StopReason::Operations
    } else {
        StopReason::Duration
    };
    Ok(RunOutcome { stats, wall, stop })
}

/// Sets the stop flag on Ctrl-C until `done` fires.
fn watch_ctrl_c(
    shared: Arc<Shared>,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        tokio::select! {
            signal = tokio::signal::ctrl_c() => {
                if signal.is_ok() {
                    shared.stopped.store(true, Ordering::Relaxed);
                }
            }
            _ = rx => {}
        }
    });
    (tx, task)
}

/// The open loop's clock, on a thread of its own: queues each operation when it falls due (the
/// k-th at k / `rate` seconds after `started`), stamped with the time it was queued, at most
/// `--operations` in all, until the deadline. It sleeps between releases with the operating
/// system's timer rather than tokio's, whose 1 ms resolution would release operations in
/// millisecond batches (at 20 k/s, bursts of 20 that queue behind each other in the client and
/// inflate every percentile); a sleep overshoots by tens of microseconds instead, and what fell
/// due meanwhile goes out at the next wake-up. Ends early on Ctrl-C or when every worker has
/// stopped.
fn pace(
    releases: flume::Sender<Instant>,
    rate: u64,
    started: Instant,
    deadline: Instant,
    shared: &Shared,
) {
    /// The longest sleep, so that a slow rate still notices Ctrl-C and stopped workers soon.
    const MAX_NAP: Duration = Duration::from_millis(10);
    let limit = shared.max_ops.unwrap_or(u64::MAX);
    let due_at = |k: u64| started + Duration::from_secs_f64(k as f64 / rate as f64);
    let mut released = 0u64;
    while released < limit && !releases.is_disconnected() && !shared.stopped.load(Ordering::Relaxed)
    {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        while released < limit && due_at(released) <= now {
            if releases.send(now).is_err() {
                return; // every worker has stopped
            }
            released += 1;
        }
        let next = due_at(released).min(deadline);
        std::thread::sleep(next.saturating_duration_since(Instant::now()).min(MAX_NAP));
    }
}

/// One worker: take a released operation (open loop) or go at once (closed loop), pick an
/// operation by weight and a key by the distribution, send, time, record.
async fn worker(
    task: usize,
    client: reqwest::Client,
    plan: Arc<Plan>,
    shared: Arc<Shared>,
    deadline: tokio::time::Instant,
    releases: Option<flume::Receiver<Instant>>,
) -> TaskStats {
    let mut rng = task_rng(task);
    let mut stats = TaskStats::new();
    let sleep = tokio::time::sleep_until(deadline);
    tokio::pin!(sleep);
    let total_weight = plan.mix.total();
    let mut seq = 0u64;
    loop {
        if shared.stopped.load(Ordering::Relaxed) || tokio::time::Instant::now() >= deadline {
            break;
        }
        let released = match &releases {
            None => {
                if let Some(max) = shared.max_ops {
                    if shared.issued.fetch_add(1, Ordering::Relaxed) >= max {
                        break;
                    }
                }
                None
            }
            Some(queue) => {
                let at = tokio::select! {
                    biased;
                    () = &mut sleep => break,
                    next = queue.recv_async() => match next {
                        Ok(at) => at,
                        // The pacer has stopped (deadline, --operations, Ctrl-C) and the
                        // queue is drained.
                        Err(_) => break,
                    },
                };
                if shared.stopped.load(Ordering::Relaxed) {
                    break; // Ctrl-C while this worker waited
                }
                // Counted once released, not while waiting: the pacer already caps the
                // releases at --operations, and a waiting worker has issued nothing.
                shared.issued.fetch_add(1, Ordering::Relaxed);
                Some(at)
            }
        };
        let op = plan.mix.pick(rng.random_range(0..total_weight));
        seq += 1;
        let request = plan.request(&client, op, &mut rng, task, seq);
        let started = released.unwrap_or_else(Instant::now);
        let outcome = tokio::select! {
            biased;
            () = &mut sleep => break,
            outcome = execute(request) => outcome,
        };
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        if outcome.is_err() {
            shared.counters.errors.fetch_add(1, Ordering::Relaxed);
        }
        stats.record(op, micros, outcome);
        shared.counters.done.fetch_add(1, Ordering::Relaxed);
    }
    stats
}

/// Sends a request and reads the whole answer (so the connection goes back to the pool); a
/// non-2xx status or a transport failure is an error.
async fn execute(request: reqwest::RequestBuilder) -> Result<(), OpError> {
    let response = request.send().await.map_err(transport)?;
    let status = response.status();
    let body = response.bytes().await.map_err(transport)?;
    if status.is_success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&body);
    Err(OpError {
        kind: format!("HTTP {}", status.as_u16()),
        detail: format!(
            "{status}: {}",
            text.chars().take(SAMPLE_LEN).collect::<String>()
        ),
    })
}

fn transport(e: reqwest::Error) -> OpError {
    OpError {
        kind: transport_error_kind(&e).to_string(),
        detail: describe_transport_error(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(stats: &mut TaskStats, op: OpKind, micros: u64) {
        stats.record(op, micros, Ok(()));
    }

    #[test]
    fn merged_histograms_hold_every_sample() {
        let mut a = TaskStats::new();
        let mut b = TaskStats::new();
        for us in 1..=100 {
            ok(&mut a, OpKind::GetById, us);
            ok(&mut b, OpKind::GetById, us + 100);
        }
        ok(&mut b, OpKind::Search, 5_000_000);
        b.record(
            OpKind::Register,
            10,
            Err(OpError {
                kind: "HTTP 503".into(),
                detail: "503 Service Unavailable: {}".into(),
            }),
        );
        a.merge(b);
        let by_id = &a.ops[OpKind::GetById as usize];
        assert_eq!((by_id.ok, by_id.latency.len()), (200, 200));
        assert_eq!(by_id.latency.max(), 200);
        let p50 = by_id.latency.value_at_quantile(0.5);
        assert!((99..=101).contains(&p50), "{p50}");
        let search = &a.ops[OpKind::Search as usize];
        assert!(
            search.latency.max() >= 4_995_000,
            "{}",
            search.latency.max()
        );
        let register = &a.ops[OpKind::Register as usize];
        assert_eq!((register.ok, register.error_count()), (0, 1));
        assert_eq!(register.errors["HTTP 503"], 1);
        assert!(register.sample_error.is_some());
    }
}
