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
//! - `statements`: the write transaction's statements;
//! - `search`: the search statements, one per kind of prefix clause.

mod search;
mod statements;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use schema_registry_core::{SchemaId, SchemaSummary, SchemaVersion, Subject};
use serde_json::Value;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::Row;

use crate::background::{AccessCounter, Periodic};
use crate::objects::ObjectTier;
use crate::sql::rows::{
    common_columns, from_micros, latest_order, record_columns, statistics_of, subject_summary_of,
    to_i64, to_micros, to_u64, version_of, Columns, PendingRow, RawRecord, RawSummary,
    MAX_WALK_DEPTH,
};
use crate::sql::{Database, SqlBackend, Walk};
use crate::SubjectSummary;
use crate::{migrate, Page, SearchQuery, StorageError, StorageResult, StorageStats, SubjectQuery};

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

const SELECT_BY_ID: &str = concat!(
    "SELECT ",
    record_columns!("content"),
    " FROM schemas WHERE id = ?1"
);
const SELECT_BY_VERSION: &str = concat!(
    "SELECT ",
    record_columns!("content"),
    " FROM schemas WHERE subject = ?1 AND major = ?2 AND minor = ?3 AND patch = ?4 AND pre = ?5"
);
const SELECT_LATEST: &str = concat!(
    "SELECT ",
    record_columns!("content"),
    " FROM schemas WHERE subject = ?1 AND state <> 'deleted' ORDER BY ",
    latest_order!(),
    " LIMIT 1"
);

/// A dependency walk: from the rows whose `$start` column is the schema asked about, follow
/// `$next`; once (direct) or until no new version appears (transitive, `?2`), bounded by depth.
macro_rules! walk_sql {
    ($start:literal, $next:literal) => {
        concat!(
            "WITH RECURSIVE walk(id, depth) AS (
                SELECT ", $next, ", 1 FROM schema_dependencies WHERE ", $start, " = ?1
                UNION
                SELECT d.", $next, ", w.depth + 1
                FROM schema_dependencies d JOIN walk w ON d.", $start, " = w.id
                WHERE ?2 AND w.depth < ?3
            )
            SELECT s.id, s.subject, s.major, s.minor, s.patch, s.pre, s.format, s.state, MIN(w.depth) AS depth
            FROM walk w JOIN schemas s ON s.id = w.id
            GROUP BY s.id
            ORDER BY depth, s.subject, s.major, s.minor, s.patch, s.pre_key"
        )
    };
}

const DEPENDENCIES: &str = walk_sql!("schema_id", "depends_on_id");
const DEPENDENTS: &str = walk_sql!("depends_on_id", "schema_id");

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

    async fn by_id(&self, id: SchemaId) -> StorageResult<Option<RawRecord>> {
        let row = sqlx::query(SELECT_BY_ID)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(RawRecord::decode).transpose()
    }

    async fn by_version(
        &self,
        subject: &Subject,
        version: &SchemaVersion,
    ) -> StorageResult<Option<RawRecord>> {
        statements::find_version(&self.reader, subject, version).await
    }

    async fn latest(&self, subject: &Subject) -> StorageResult<Option<RawRecord>> {
        let row = sqlx::query(SELECT_LATEST)
            .bind(subject.as_str())
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(RawRecord::decode).transpose()
    }

    async fn versions(
        &self,
        subject: &Subject,
        include_deleted: bool,
    ) -> StorageResult<Vec<SchemaVersion>> {
        let rows = sqlx::query(
            "SELECT major, minor, patch, pre FROM schemas
             WHERE subject = ?1 AND (?2 OR state <> 'deleted')
             ORDER BY major, minor, patch, pre_key",
        )
        .bind(subject.as_str())
        .bind(include_deleted)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(version_of).collect()
    }

    async fn subjects(&self, query: &SubjectQuery) -> StorageResult<Page<SubjectSummary>> {
        let rows = sqlx::query(concat!(
            "WITH ranked AS (
                SELECT subject, major, minor, patch, pre,
                       ROW_NUMBER() OVER (PARTITION BY subject ORDER BY ",
            latest_order!(),
            ") AS rn,
                       COUNT(*) OVER (PARTITION BY subject) AS version_count
                FROM schemas
                WHERE state <> 'deleted' AND (?1 IS NULL OR substr(subject, 1, length(?1)) = ?1)
             )
             SELECT subject, major, minor, patch, pre, version_count FROM ranked WHERE rn = 1
             ORDER BY subject LIMIT ?2 OFFSET ?3"
        ))
        .bind(query.prefix.as_deref())
        .bind(i64::from(query.limit))
        .bind(to_i64(query.offset))
        .fetch_all(&self.reader)
        .await?;
        let total: i64 = sqlx::query_scalar(
            "SELECT COUNT(DISTINCT subject) FROM schemas
             WHERE state <> 'deleted' AND (?1 IS NULL OR substr(subject, 1, length(?1)) = ?1)",
        )
        .bind(query.prefix.as_deref())
        .fetch_one(&self.reader)
        .await?;
        Ok(Page {
            items: rows
                .iter()
                .map(subject_summary_of)
                .collect::<StorageResult<_>>()?,
            total: to_u64(total),
        })
    }

    async fn search(&self, query: &SearchQuery) -> StorageResult<Page<RawRecord>> {
        search::search(&self.reader, query).await
    }

    async fn exists(&self, id: SchemaId) -> StorageResult<bool> {
        let row = sqlx::query("SELECT 1 FROM schemas WHERE id = ?1")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.is_some())
    }

    async fn walk(
        &self,
        walk: Walk,
        id: SchemaId,
        transitive: bool,
    ) -> StorageResult<Vec<SchemaSummary>> {
        let sql = match walk {
            Walk::Dependencies => DEPENDENCIES,
            Walk::Dependents => DEPENDENTS,
        };
        let rows = sqlx::query(sql)
            .bind(id)
            .bind(transitive)
            .bind(i64::from(MAX_WALK_DEPTH))
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(RawSummary::decode).collect()
    }

    async fn statistics(&self) -> StorageResult<StorageStats> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS schemas,
                    COALESCE(SUM(state = 'active'), 0) AS active,
                    COALESCE(SUM(state = 'deprecated'), 0) AS deprecated,
                    COALESCE(SUM(state = 'deleted'), 0) AS deleted,
                    COALESCE(SUM(size_bytes), 0) AS bytes,
                    (SELECT COUNT(DISTINCT subject) FROM schemas WHERE state <> 'deleted') AS subjects
             FROM schemas",
        )
        .fetch_one(&self.reader)
        .await?;
        statistics_of(&row)
    }

    async fn popular(&self, limit: u32) -> StorageResult<Vec<RawRecord>> {
        let rows = sqlx::query(
            "SELECT s.id, s.subject, s.major, s.minor, s.patch, s.pre, s.format, s.content, s.content_location, s.checksum, s.state,
                    s.description, s.metadata, s.tags, s.refs, s.created_at, s.updated_at
             FROM schema_access_log l JOIN schemas s ON s.id = l.schema_id
             WHERE s.state <> 'deleted'
             ORDER BY l.access_count DESC, l.schema_id LIMIT ?1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        RawRecord::decode_all(&rows)
    }

    async fn content_location(&self, id: SchemaId) -> StorageResult<Option<Option<String>>> {
        Ok(
            sqlx::query_scalar("SELECT content_location FROM schemas WHERE id = ?1")
                .bind(id)
                .fetch_optional(&self.reader)
                .await?,
        )
    }

    async fn pending(&self, limit: u32) -> StorageResult<Vec<PendingRow>> {
        Ok(sqlx::query_as(
            "SELECT id, format, content, checksum FROM schemas WHERE content_pending = 1 LIMIT ?1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.writer)
        .await?)
    }

    async fn count_pending(&self) -> StorageResult<u64> {
        let left: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM schemas WHERE content_pending = 1")
                .fetch_one(&self.writer)
                .await?;
        Ok(to_u64(left))
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
