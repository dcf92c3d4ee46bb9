//! Background work of the PostgreSQL backend:
//! - **access counting**: buffered counts are written to `schema_access_log` in one batched
//!   upsert per interval (see [`crate::background::AccessCounter`]);
//! - **materialized views**: `subject_versions` and `popular_schemas` are refreshed with
//!   `REFRESH ... CONCURRENTLY`, which never blocks readers or writers of the base tables.
//!   Only one server process refreshes at a time (a session advisory lock); the others skip.

use std::sync::Arc;
use std::time::Duration;

use schema_registry_core::SchemaId;
use sqlx::PgPool;

use crate::background::{AccessCounter, Periodic};
use crate::StorageResult;

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

#[derive(Debug, Clone)]
pub(super) struct Maintenance {
    pool: PgPool,
    counter: Arc<AccessCounter>,
    tasks: Arc<[Periodic; 2]>,
}

impl Maintenance {
    pub fn start(pool: PgPool, options: MaintenanceOptions) -> Self {
        let counter = Arc::new(AccessCounter::default());
        let flusher = {
            let (pool, counter) = (pool.clone(), counter.clone());
            Periodic::spawn(options.access_flush_interval, move || {
                let (pool, counter) = (pool.clone(), counter.clone());
                async move {
                    if let Err(e) = flush(&pool, &counter).await {
                        tracing::warn!(error = %e, "access-log flush failed; counts dropped");
                    }
                }
            })
        };
        let refresher = {
            let pool = pool.clone();
            Periodic::spawn(options.view_refresh_interval, move || {
                let pool = pool.clone();
                async move {
                    if let Err(e) = refresh_views(&pool).await {
                        tracing::warn!(error = %e, "materialized view refresh failed");
                    }
                }
            })
        };
        Maintenance {
            pool,
            counter,
            tasks: Arc::new([flusher, refresher]),
        }
    }

    pub fn record_access(&self, id: SchemaId, latency: Duration) {
        self.counter.record(id, latency);
    }

    pub async fn flush(&self) -> StorageResult<()> {
        flush(&self.pool, &self.counter).await
    }

    /// Stops the tasks, then writes what is still buffered.
    pub async fn shutdown(&self) {
        for task in self.tasks.iter() {
            task.stop().await;
        }
        if let Err(e) = self.flush().await {
            tracing::warn!(error = %e, "final access-log flush failed");
        }
    }
}

async fn flush(pool: &PgPool, counter: &AccessCounter) -> StorageResult<()> {
    let batch = counter.take();
    if batch.ids.is_empty() {
        return Ok(());
    }
    // The join skips versions deleted since they were read.
    sqlx::query(
        "INSERT INTO schema_access_log (schema_id, access_count, total_latency_us, last_accessed_at)
         SELECT t.id, t.n, t.us, now()
         FROM unnest($1::uuid[], $2::bigint[], $3::bigint[]) AS t(id, n, us)
         JOIN schemas s ON s.id = t.id
         ORDER BY t.id
         ON CONFLICT (schema_id) DO UPDATE SET
             access_count = schema_access_log.access_count + excluded.access_count,
             total_latency_us = schema_access_log.total_latency_us + excluded.total_latency_us,
             last_accessed_at = excluded.last_accessed_at",
    )
    .bind(&batch.ids)
    .bind(&batch.counts)
    .bind(&batch.latency_us)
    .execute(pool)
    .await?;
    Ok(())
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
        Ok::<(), crate::StorageError>(())
    }
    .await;
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(REFRESH_LOCK_KEY)
        .execute(&mut *conn)
        .await?;
    result
}
