//! Background work of the PostgreSQL backend, kept off the request path:
//! - **access counting**: a read bumps an in-memory counter; a task writes the counters to
//!   `schema_access_log` in one batched upsert per interval, so a read never waits on an INSERT;
//! - **materialized views**: a task refreshes `subject_versions` and `popular_schemas` with
//!   `REFRESH ... CONCURRENTLY`, which never blocks readers or writers of the base tables.
//!   Only one server process refreshes at a time (a session advisory lock), the others skip.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use schema_registry_core::SchemaId;
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::{StorageError, StorageResult};

/// Advisory-lock key under which one server at a time refreshes the views ("SRVIEWS").
const REFRESH_LOCK_KEY: i64 = 0x0053_5256_4945_5753;

#[derive(Debug, Clone)]
pub struct MaintenanceOptions {
    /// How often buffered access counts are written.
    pub access_flush_interval: Duration,
    /// How often the materialized views are refreshed.
    pub view_refresh_interval: Duration,
}

impl Default for MaintenanceOptions {
    fn default() -> Self {
        MaintenanceOptions {
            access_flush_interval: Duration::from_secs(10),
            view_refresh_interval: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Default)]
struct Counter {
    count: i64,
}

#[derive(Debug)]
struct Inner {
    pool: PgPool,
    /// A `std` mutex, not Tokio's: it is held for a hash-map update and never across an
    /// `.await`, so it cannot stall the runtime, and it is cheaper than an async lock.
    counts: Mutex<HashMap<SchemaId, Counter>>,
    stop: Notify,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Debug, Clone)]
pub(super) struct Maintenance {
    inner: Arc<Inner>,
}

impl Maintenance {
    pub fn start(pool: PgPool, options: MaintenanceOptions) -> Self {
        let inner = Arc::new(Inner {
            pool,
            counts: Mutex::new(HashMap::new()),
            stop: Notify::new(),
            tasks: Mutex::new(Vec::new()),
        });
        let this = Maintenance { inner };
        let flusher = {
            let this = this.clone();
            tokio::spawn(async move {
                this.every(options.access_flush_interval, || async {
                    if let Err(e) = this.flush().await {
                        tracing::warn!(error = %e, "access-log flush failed; counts dropped");
                    }
                })
                .await
            })
        };
        let refresher = {
            let this = this.clone();
            tokio::spawn(async move {
                this.every(options.view_refresh_interval, || async {
                    if let Err(e) = refresh_views(&this.inner.pool).await {
                        tracing::warn!(error = %e, "materialized view refresh failed");
                    }
                })
                .await
            })
        };
        if let Ok(mut tasks) = this.inner.tasks.lock() {
            tasks.push(flusher);
            tasks.push(refresher);
        }
        this
    }

    async fn every<F, Fut>(&self, period: Duration, mut job: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await; // the first tick is immediate
        loop {
            tokio::select! {
                _ = ticker.tick() => job().await,
                _ = self.inner.stop.notified() => return,
            }
        }
    }

    /// Counts one read of `id`. Never blocks on I/O.
    pub fn record_access(&self, id: SchemaId) {
        if let Ok(mut counts) = self.inner.counts.lock() {
            counts.entry(id).or_default().count += 1;
        }
    }

    /// Writes the buffered counts in one statement.
    pub async fn flush(&self) -> StorageResult<()> {
        let batch = match self.inner.counts.lock() {
            Ok(mut counts) => std::mem::take(&mut *counts),
            Err(_) => {
                return Err(StorageError::Internal(
                    "access counter lock poisoned".into(),
                ))
            }
        };
        if batch.is_empty() {
            return Ok(());
        }
        // Sorted ids: two servers flushing at once lock rows in the same order (no deadlock).
        let mut rows: Vec<(SchemaId, i64)> =
            batch.into_iter().map(|(id, c)| (id, c.count)).collect();
        rows.sort_unstable_by_key(|(id, _)| *id);
        let (ids, counts): (Vec<SchemaId>, Vec<i64>) = rows.into_iter().unzip();
        // The join skips versions deleted since they were read.
        sqlx::query(
            "INSERT INTO schema_access_log (schema_id, access_count, total_latency_us, last_accessed_at)
             SELECT t.id, t.n, 0, now()
             FROM unnest($1::uuid[], $2::bigint[]) AS t(id, n)
             JOIN schemas s ON s.id = t.id
             ORDER BY t.id
             ON CONFLICT (schema_id) DO UPDATE SET
                 access_count = schema_access_log.access_count + excluded.access_count,
                 last_accessed_at = excluded.last_accessed_at",
        )
        .bind(&ids)
        .bind(&counts)
        .execute(&self.inner.pool)
        .await?;
        Ok(())
    }

    /// Stops the tasks after a last flush.
    pub async fn shutdown(&self) {
        self.inner.stop.notify_waiters();
        let tasks = match self.inner.tasks.lock() {
            Ok(mut tasks) => std::mem::take(&mut *tasks),
            Err(_) => Vec::new(),
        };
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
        if let Err(e) = self.flush().await {
            tracing::warn!(error = %e, "final access-log flush failed");
        }
    }
}

/// Refreshes both materialized views unless another server is doing it right now.
pub(super) async fn refresh_views(pool: &PgPool) -> StorageResult<()> {
    let mut conn = pool.acquire().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(REFRESH_LOCK_KEY)
        .fetch_one(&mut *conn)
        .await?;
    if !locked {
        return Ok(());
    }
    let result = async {
        sqlx::query("REFRESH MATERIALIZED VIEW CONCURRENTLY subject_versions")
            .execute(&mut *conn)
            .await?;
        sqlx::query("REFRESH MATERIALIZED VIEW CONCURRENTLY popular_schemas")
            .execute(&mut *conn)
            .await?;
        Ok::<(), StorageError>(())
    }
    .await;
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(REFRESH_LOCK_KEY)
        .execute(&mut *conn)
        .await?;
    result
}
