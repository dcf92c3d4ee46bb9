//! The embedded backend: SQLite through sqlx, one file under the data directory. The server runs
//! on it with no external service at all.
//!
//! # Concurrency and durability
//! - **One writer connection, many readers.** SQLite allows one writer at a time; a pool of one
//!   writer connection queues writers in the process instead of having them fight over the lock
//!   with busy-retries. Readers get their own read-only pool and, in WAL mode, never block the
//!   writer nor are blocked by it.
//! - **`BEGIN IMMEDIATE`** for every write transaction: it takes the write lock up front, so a
//!   transaction that reads then writes cannot fail to upgrade its lock if another process
//!   (a `migrate` run, an operator's `sqlite3` shell) writes in between.
//! - **`synchronous = FULL`**: each commit is fsynced to the WAL before the call returns, so an
//!   acknowledged write survives a power cut, not only a process crash.

//!
//! # Layout
//! - this file: options, opening, and the reads (`sql::Database` for [`SqliteDb`]);
//! - `queries`: the SQL text of the statements both dialects share (their code is
//!   `sql::shared`'s);
//! - `statements`: the write transaction, and the statements that are SQLite's alone;
//! - `search`: the search statements, one per kind of prefix clause.

mod queries;
mod search;
mod statements;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use schema_registry_core::SchemaId;
use serde_json::Value;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::Row;

use crate::background::{AccessCounter, Periodic};
use crate::objects::ObjectTier;
use crate::sql::rows::{common_columns, from_micros, to_micros, Columns, RawRecord};
use crate::sql::{Database, SqlBackend};
use crate::{migrate, Page, SearchQuery, StorageError, StorageResult};

use statements::SqliteWriteTx;

/// Tuning for the embedded backend.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Read-only connections (readers run in parallel under WAL).
    pub readers: u32,
    /// How long a statement waits for a lock held by another process before failing.
    pub busy_timeout: Duration,
    /// How often buffered read counts are written to `schema_access_log`.
    pub access_flush_interval: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            readers: 8,
            busy_timeout: Duration::from_secs(5),
            access_flush_interval: Duration::from_secs(10),
        }
    }
}

/// The embedded SQLite backend.
pub type SqliteBackend = SqlBackend<SqliteDb>;

/// SQLite's half of [`SqliteBackend`]: the pools and the access-log buffer.
#[derive(Debug, Clone)]
pub struct SqliteDb {
    writer: SqlitePool,
    pub(crate) reader: SqlitePool,
    path: PathBuf,
    access: Arc<AccessCounter>,
    flusher: Arc<Periodic>,
}

impl Columns for SqliteRow {
    const CONTENT: &'static str = "content";
    common_columns!();

    fn json(&self, col: &str) -> StorageResult<Value> {
        let text: String = self.try_get(col)?;
        serde_json::from_str(&text)
            .map_err(|e| StorageError::Internal(format!("column {col} is not JSON: {e}")))
    }

    fn time(&self, col: &str) -> StorageResult<DateTime<Utc>> {
        Ok(from_micros(self.try_get(col)?))
    }

    fn strings(&self, col: &str) -> StorageResult<Vec<String>> {
        serde_json::from_value(self.json(col)?)
            .map_err(|e| StorageError::Internal(format!("column {col} is not a string array: {e}")))
    }
}

impl SqlBackend<SqliteDb> {
    /// Opens (creating if missing) the database at `url` (`sqlite://path/to/registry.db`) and
    /// applies pending migrations. The parent directory must exist.
    pub async fn open(url: &str, options: &SqliteOptions) -> StorageResult<Self> {
        Self::open_with_objects(url, options, None).await
    }

    /// As [`SqliteBackend::open`], with large content routed to `objects`.
    pub async fn open_with_objects(
        url: &str,
        options: &SqliteOptions,
        objects: Option<Arc<ObjectTier>>,
    ) -> StorageResult<Self> {
        Ok(SqlBackend::new(
            SqliteDb::open(url, options).await?,
            objects,
        ))
    }

    /// Writes buffered read counts now (a background task does this on a timer).
    pub async fn flush_access_log(&self) -> StorageResult<()> {
        self.db.flush_access().await
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.db.path
    }
}

impl SqliteDb {
    async fn open(url: &str, options: &SqliteOptions) -> StorageResult<Self> {
        let base = SqliteConnectOptions::from_str(url)
            .map_err(|e| {
                StorageError::Invalid(schema_registry_core::DomainError::InvalidFormat(format!(
                    "invalid SQLite URL {url:?}: {e}"
                )))
            })?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(options.busy_timeout)
            .foreign_keys(true);
        let path = base.get_filename().to_path_buf();
        if path.as_os_str().is_empty() || path == Path::new(":memory:") {
            return Err(StorageError::Internal(
                "the embedded backend needs a database file, not an in-memory database".into(),
            ));
        }
        let cannot_open = |e: sqlx::Error| {
            StorageError::Unavailable(format!("cannot open {}: {e}", path.display()))
        };
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(base.clone().create_if_missing(true))
            .await
            .map_err(cannot_open)?;
        migrate::SQLITE.run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(options.readers.max(1))
            .connect_with(base.read_only(true))
            .await
            .map_err(cannot_open)?;
        let access = Arc::new(AccessCounter::default());
        let flusher = {
            let (writer, access) = (writer.clone(), access.clone());
            Periodic::spawn(options.access_flush_interval, move || {
                let (writer, access) = (writer.clone(), access.clone());
                async move {
                    if let Err(e) = flush_access(&writer, &access).await {
                        tracing::warn!(error = %e, "access-log flush failed; counts dropped");
                    }
                }
            })
        };
        Ok(SqliteDb {
            writer,
            reader,
            path,
            access,
            flusher: Arc::new(flusher),
        })
    }
}

/// Writes buffered read counts in one transaction. Versions deleted since they were read are
/// skipped by the `WHERE EXISTS`.
async fn flush_access(writer: &SqlitePool, access: &AccessCounter) -> StorageResult<()> {
    let batch = access.take();
    if batch.ids.is_empty() {
        return Ok(());
    }
    let now = to_micros(crate::sql::rows::now());
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    for ((id, n), us) in batch.ids.iter().zip(&batch.counts).zip(&batch.latency_us) {
        sqlx::query(
            "INSERT INTO schema_access_log (schema_id, access_count, total_latency_us, last_accessed_at)
             SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM schemas WHERE id = ?1)
             ON CONFLICT (schema_id) DO UPDATE SET
                 access_count = access_count + excluded.access_count,
                 total_latency_us = total_latency_us + excluded.total_latency_us,
                 last_accessed_at = excluded.last_accessed_at",
        )
        .bind(*id)
        .bind(*n)
        .bind(*us)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[async_trait]
impl Database for SqliteDb {
    type Tx = SqliteWriteTx;
    const KIND: &'static str = "sqlite";

    async fn begin_write(&self) -> StorageResult<SqliteWriteTx> {
        Ok(SqliteWriteTx::new(
            self.writer.begin_with("BEGIN IMMEDIATE").await?,
        ))
    }

    async fn search(&self, query: &SearchQuery) -> StorageResult<Page<RawRecord>> {
        search::search(&self.reader, query).await
    }

    fn record_access(&self, id: SchemaId, latency: Duration) {
        self.access.record(id, latency);
    }

    async fn flush_access(&self) -> StorageResult<()> {
        flush_access(&self.writer, &self.access).await
    }

    async fn health(&self) -> StorageResult<()> {
        migrate::check_applied(&migrate::SQLITE, &self.reader).await
    }

    fn pool_stats(&self) -> (u32, u32) {
        let idle =
            u32::try_from(self.reader.num_idle() + self.writer.num_idle()).unwrap_or(u32::MAX);
        let size = self.reader.size() + self.writer.size();
        (size.saturating_sub(idle), idle)
    }

    /// Writes buffered read counts, then closes both pools, waiting for in-flight statements.
    async fn close(&self) {
        self.flusher.stop().await;
        if let Err(e) = self.flush_access().await {
            tracing::warn!(error = %e, "final access-log flush failed");
        }
        self.reader.close().await;
        self.writer.close().await;
    }
}
