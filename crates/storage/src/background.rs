//! Background work shared by the backends, kept off the request path.
//!
//! - [`AccessCounter`]: a read bumps an in-memory counter; a periodic task writes the counters
//!   in one batched upsert, so a read never waits on an INSERT.
//! - [`Periodic`]: a task that runs a job on an interval until stopped.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use schema_registry_core::SchemaId;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Read counts and total read latency per schema since the last flush.
#[derive(Debug, Default)]
pub(crate) struct AccessCounter {
    /// `std` mutexes, not Tokio's: each is held for one hash-map update and never across an
    /// `.await`, so it cannot stall the runtime, and it is cheaper than an async lock. Sharded
    /// by *thread*, so that reads on different worker threads — even of the same hot schema —
    /// do not meet on one lock (a single lock showed in the cached read path's profile); the
    /// flush adds the shards up.
    shards: [Mutex<HashMap<SchemaId, (i64, i64)>>; SHARDS],
}

/// Shards of [`AccessCounter`]; a power of two well above the worker-thread count.
const SHARDS: usize = 16;

/// This thread's shard: threads take the next one in turn as they first record.
fn thread_shard() -> usize {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % SHARDS;
    }
    SHARD.try_with(|s| *s).unwrap_or(0)
}

/// One flush worth of counters, sorted by id: two servers flushing at once then lock rows in
/// the same order and cannot deadlock.
#[derive(Debug, Default)]
pub(crate) struct AccessBatch {
    pub ids: Vec<SchemaId>,
    pub counts: Vec<i64>,
    /// Summed database read time, microseconds.
    pub latency_us: Vec<i64>,
}

impl AccessCounter {
    /// Counts one read of `id` that took `latency` in the database. Never blocks on I/O.
    pub fn record(&self, id: SchemaId, latency: std::time::Duration) {
        let us = i64::try_from(latency.as_micros()).unwrap_or(i64::MAX);
        let shard = &self.shards[thread_shard()];
        if let Ok(mut counts) = shard.lock() {
            let entry = counts.entry(id).or_default();
            entry.0 += 1;
            entry.1 = entry.1.saturating_add(us);
        }
    }

    /// Takes the counters accumulated so far.
    pub fn take(&self) -> AccessBatch {
        let mut merged: HashMap<SchemaId, (i64, i64)> = HashMap::new();
        for shard in &self.shards {
            let taken = match shard.lock() {
                Ok(mut counts) => std::mem::take(&mut *counts),
                Err(_) => continue,
            };
            for (id, (n, us)) in taken {
                let entry = merged.entry(id).or_default();
                entry.0 = entry.0.saturating_add(n);
                entry.1 = entry.1.saturating_add(us);
            }
        }
        let mut rows: Vec<(SchemaId, (i64, i64))> = merged.into_iter().collect();
        rows.sort_unstable_by_key(|(id, _)| *id);
        let mut batch = AccessBatch::default();
        for (id, (n, us)) in rows {
            batch.ids.push(id);
            batch.counts.push(n);
            batch.latency_us.push(us);
        }
        batch
    }
}

/// A job run every `period` on its own task until [`Periodic::stop`].
#[derive(Debug)]
pub(crate) struct Periodic {
    stop: Arc<Notify>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl Periodic {
    pub fn spawn<F, Fut>(period: Duration, mut job: F) -> Self
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let stop = Arc::new(Notify::new());
        let stopped = stop.clone();
        let handle = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await; // the first tick is immediate
            loop {
                tokio::select! {
                    _ = ticker.tick() => job().await,
                    _ = stopped.notified() => return,
                }
            }
        });
        Periodic {
            stop,
            handle: Mutex::new(Some(handle)),
        }
    }

    /// Stops the task, waiting for a job in progress to be cancelled.
    pub async fn stop(&self) {
        self.stop.notify_one();
        let handle = self.handle.lock().ok().and_then(|mut h| h.take());
        if let Some(handle) = handle {
            handle.abort();
            let _ = handle.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads of one schema on several threads land in different shards; a flush adds them up,
    /// sorted by id, and leaves nothing behind.
    #[test]
    fn access_counts_from_all_threads_are_summed_once() {
        let counter = Arc::new(AccessCounter::default());
        let hot = SchemaId::from_u128(7);
        let cold = SchemaId::from_u128(3);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let counter = counter.clone();
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        counter.record(hot, Duration::from_micros(2));
                    }
                    counter.record(cold, Duration::from_micros(10));
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let batch = counter.take();
        assert_eq!(batch.ids, vec![cold, hot]);
        assert_eq!(batch.counts, vec![4, 400]);
        assert_eq!(batch.latency_us, vec![40, 800]);
        assert!(counter.take().ids.is_empty());
    }
}
