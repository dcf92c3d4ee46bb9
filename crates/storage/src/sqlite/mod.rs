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

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use schema_registry_core::{
    NewSchema, SchemaContent, SchemaId, SchemaRecord, SchemaReference, SchemaState, SchemaSummary,
    SchemaVersion, Subject,
};
use serde_json::Value;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};

use crate::background::{AccessCounter, Periodic};
use crate::objects::{confirm, place, ObjectTier, Placement};
use crate::register::{
    ensure_removable, register_in, InsertRow, Referrer, RegistrationReads, WriteTx,
};
use crate::row::{from_micros, to_micros, version_from_parts, RawRecord, RawSummary};
use crate::{
    migrate, ConflictReason, NotFound, Page, Registered, SearchQuery, StorageBackend, StorageError,
    StorageResult, StorageStats, SubjectQuery, SubjectSummary,
};

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
#[derive(Debug, Clone)]
pub struct SqliteBackend {
    writer: SqlitePool,
    reader: SqlitePool,
    path: PathBuf,
    access: Arc<AccessCounter>,
    flusher: Arc<Periodic>,
    objects: Option<Arc<ObjectTier>>,
    reconciler: Option<Arc<Periodic>>,
}

/// Every column of a record, as [`raw_from_row`] reads them.
macro_rules! record_columns {
    () => {
        "id, subject, major, minor, patch, pre, format, content, content_location, checksum, state, description, metadata, tags, refs, created_at, updated_at"
    };
}

/// Orders a subject's versions so that the first row is what `latest` means: releases before
/// pre-releases, then semver precedence, highest first.
macro_rules! latest_order {
    () => {
        "(pre = '') DESC, major DESC, minor DESC, patch DESC, pre_key DESC"
    };
}

const SELECT_BY_ID: &str = concat!("SELECT ", record_columns!(), " FROM schemas WHERE id = ?1");
const SELECT_BY_VERSION: &str = concat!(
    "SELECT ",
    record_columns!(),
    " FROM schemas WHERE subject = ?1 AND major = ?2 AND minor = ?3 AND patch = ?4 AND pre = ?5"
);
const SELECT_LATEST: &str = concat!(
    "SELECT ",
    record_columns!(),
    " FROM schemas WHERE subject = ?1 AND state <> 'deleted' ORDER BY ",
    latest_order!(),
    " LIMIT 1"
);

/// The search filter, shared by the page query and the count query. Parameters:
/// ?1 text, ?2 subject prefix, ?3 format, ?4 state, ?5 tags (JSON array), ?6 metadata (JSON object),
/// ?9 the first string after every subject that starts with the prefix ([`prefix_upper_bound`]).
/// `$prefix` is one of the `PREFIX_*` clauses: SQLite plans a statement once, so a
/// `?2 IS NULL OR ...` clause could never use an index; a prefix search gets its own statement
/// whose range on `subject` walks the subject index instead of the whole table.
macro_rules! search_filter {
    ($prefix:expr) => {
        concat!(
            " FROM schemas s WHERE
            (?1 IS NULL OR instr(lower(s.subject), lower(?1)) > 0
                        OR instr(lower(coalesce(s.description, '')), lower(?1)) > 0
                        OR instr(lower(s.content), lower(?1)) > 0)",
            $prefix,
            "
        AND (?3 IS NULL OR s.format = ?3)
        AND ((?4 IS NULL AND s.state <> 'deleted') OR s.state = ?4)
        AND NOT EXISTS (SELECT 1 FROM json_each(?5) t
                        WHERE t.value NOT IN (SELECT value FROM json_each(s.tags)))
        AND NOT EXISTS (SELECT 1 FROM json_each(?6) f
                        WHERE NOT EXISTS (SELECT 1 FROM json_each(s.metadata) m
                                          WHERE m.key = f.key AND m.type = f.type
                                            AND (CASE WHEN f.type IN ('object', 'array')
                                                      THEN json(m.value) = json(f.value)
                                                      ELSE m.atom IS f.atom END)))"
        )
    };
}

/// No prefix asked for.
macro_rules! prefix_none {
    () => {
        " AND ?2 IS NULL AND ?9 IS NULL"
    };
}
/// A prefix with an upper bound: an index range, then the exact check.
macro_rules! prefix_range {
    () => {
        " AND s.subject >= ?2 AND s.subject < ?9 AND substr(s.subject, 1, length(?2)) = ?2"
    };
}
/// A prefix without an upper bound (only characters U+10FFFF): the exact check alone.
macro_rules! prefix_scan {
    () => {
        " AND ?9 IS NULL AND substr(s.subject, 1, length(?2)) = ?2"
    };
}

macro_rules! search_page {
    ($prefix:expr) => {
        concat!(
            "SELECT ",
            "s.id, s.subject, s.major, s.minor, s.patch, s.pre, s.format, s.content, s.content_location, s.checksum, s.state, s.description, s.metadata, s.tags, s.refs, s.created_at, s.updated_at,
     CASE WHEN ?1 IS NULL THEN 0 ELSE
        (instr(lower(s.subject), lower(?1)) > 0) * 4
      + (instr(lower(coalesce(s.description, '')), lower(?1)) > 0) * 2
      + (instr(lower(s.content), lower(?1)) > 0) END AS relevance",
            search_filter!($prefix),
            " ORDER BY relevance DESC, s.created_at DESC, s.id DESC LIMIT ?7 OFFSET ?8"
        )
    };
}

/// (page, count) statements for each kind of prefix clause.
const SEARCH_NO_PREFIX: (&str, &str) = (
    search_page!(prefix_none!()),
    concat!("SELECT COUNT(*)", search_filter!(prefix_none!())),
);
const SEARCH_PREFIX_RANGE: (&str, &str) = (
    search_page!(prefix_range!()),
    concat!("SELECT COUNT(*)", search_filter!(prefix_range!())),
);
const SEARCH_PREFIX_SCAN: (&str, &str) = (
    search_page!(prefix_scan!()),
    concat!("SELECT COUNT(*)", search_filter!(prefix_scan!())),
);

/// The smallest string greater than every string that starts with `prefix` (in code-point
/// order, which is SQLite's `BINARY` order for UTF-8): the prefix with its last character that
/// can be raised raised by one. `None` when there is none (empty, or only U+10FFFF).
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (u32::from(last) + 1..=0x10FFFF).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Transitive walks stop at this depth: a guard against a corrupted (cyclic) graph, far beyond
/// any real reference chain.
pub(crate) const MAX_WALK_DEPTH: i64 = 1000;

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

fn raw_from_row(row: &SqliteRow) -> StorageResult<RawRecord> {
    let json = |col: &str| -> StorageResult<Value> {
        let text: String = row.try_get(col)?;
        serde_json::from_str(&text)
            .map_err(|e| StorageError::Internal(format!("column {col} is not JSON: {e}")))
    };
    let tags: Vec<String> = serde_json::from_value(json("tags")?)
        .map_err(|e| StorageError::Internal(format!("column tags is not a string array: {e}")))?;
    Ok(RawRecord {
        id: row.try_get("id")?,
        subject: row.try_get("subject")?,
        major: row.try_get("major")?,
        minor: row.try_get("minor")?,
        patch: row.try_get("patch")?,
        pre: row.try_get("pre")?,
        format: row.try_get("format")?,
        content: row.try_get("content")?,
        location: row.try_get("content_location")?,
        checksum: row.try_get("checksum")?,
        state: row.try_get("state")?,
        description: row.try_get("description")?,
        metadata: json("metadata")?,
        tags,
        refs: json("refs")?,
        created_at: from_micros(row.try_get("created_at")?),
        updated_at: from_micros(row.try_get("updated_at")?),
    })
}

fn summary_from_row(row: &SqliteRow) -> StorageResult<SchemaSummary> {
    RawSummary {
        id: row.try_get("id")?,
        subject: row.try_get("subject")?,
        major: row.try_get("major")?,
        minor: row.try_get("minor")?,
        patch: row.try_get("patch")?,
        pre: row.try_get("pre")?,
        format: row.try_get("format")?,
        state: row.try_get("state")?,
        depth: row.try_get("depth")?,
    }
    .into_summary()
}

fn version_from_row(row: &SqliteRow) -> StorageResult<SchemaVersion> {
    version_from_parts(
        row.try_get("major")?,
        row.try_get("minor")?,
        row.try_get("patch")?,
        &row.try_get::<String, _>("pre")?,
    )
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl SqliteBackend {
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
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(base.clone().create_if_missing(true))
            .await
            .map_err(|e| {
                StorageError::Unavailable(format!("cannot open {}: {e}", path.display()))
            })?;
        migrate::SQLITE.run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(options.readers.max(1))
            .connect_with(base.read_only(true))
            .await
            .map_err(|e| {
                StorageError::Unavailable(format!("cannot open {}: {e}", path.display()))
            })?;
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
        let reconciler = objects.as_ref().map(|tier| {
            let (writer, tier) = (writer.clone(), tier.clone());
            Arc::new(Periodic::spawn(tier.reconcile_interval(), move || {
                let (writer, tier) = (writer.clone(), tier.clone());
                async move {
                    if let Err(e) = reconcile(&writer, &tier).await {
                        tracing::warn!(error = %e, "moving pending content to object storage failed");
                    }
                }
            }))
        });
        Ok(SqliteBackend {
            writer,
            reader,
            path,
            access,
            flusher: Arc::new(flusher),
            objects,
            reconciler,
        })
    }

    /// Writes buffered read counts now (a background task does this on a timer).
    pub async fn flush_access_log(&self) -> StorageResult<()> {
        flush_access(&self.writer, &self.access).await
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes buffered read counts, then closes both pools, waiting for in-flight statements.
    pub async fn close(&self) {
        self.flusher.stop().await;
        if let Some(r) = &self.reconciler {
            r.stop().await;
        }
        if let Err(e) = self.flush_access_log().await {
            tracing::warn!(error = %e, "final access-log flush failed");
        }
        self.reader.close().await;
        self.writer.close().await;
    }

    async fn begin_write(&self) -> StorageResult<Transaction<'static, Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn find_version_row(
        conn: &mut sqlx::SqliteConnection,
        subject: &Subject,
        version: &SchemaVersion,
    ) -> StorageResult<Option<RawRecord>> {
        let row = sqlx::query(SELECT_BY_VERSION)
            .bind(subject.as_str())
            .bind(version.major())
            .bind(version.minor())
            .bind(version.patch())
            .bind(version.pre())
            .fetch_optional(conn)
            .await?;
        row.as_ref().map(raw_from_row).transpose()
    }

    fn objects(&self) -> Option<&ObjectTier> {
        self.objects.as_deref()
    }

    /// Second phase of a permanent delete: removes the object `key` if no row points to it any
    /// more. Runs under the write lock, so no registration can start pointing to it meanwhile.
    /// If this fails, the object stays as harmless garbage; the row is already gone, so no
    /// pointer can dangle.
    async fn release_object(&self, tier: &ObjectTier, key: &str) -> StorageResult<()> {
        let mut tx = self.begin_write().await?;
        let others: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM schemas WHERE content_location = ?1")
                .bind(key)
                .fetch_one(&mut *tx)
                .await?;
        if others == 0 {
            tier.delete(key).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn walk(
        &self,
        sql: &'static str,
        id: SchemaId,
        transitive: bool,
    ) -> StorageResult<Vec<SchemaSummary>> {
        let exists = sqlx::query("SELECT 1 FROM schemas WHERE id = ?1")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        if exists.is_none() {
            return Err(StorageError::NotFound(NotFound::Schema(id)));
        }
        let rows = sqlx::query(sql)
            .bind(id)
            .bind(transitive)
            .bind(MAX_WALK_DEPTH)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(summary_from_row).collect()
    }
}

/// Writes buffered read counts in one transaction. Versions deleted since they were read are
/// skipped by the `WHERE EXISTS`.
async fn flush_access(writer: &SqlitePool, access: &AccessCounter) -> StorageResult<()> {
    let batch = access.take();
    if batch.ids.is_empty() {
        return Ok(());
    }
    let now = to_micros(crate::row::now());
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

/// The record of a version about to be removed for good. If its object-held content can no
/// longer be read (missing or corrupted), the removal goes ahead and the record carries empty
/// content: deleting broken data must stay possible.
pub(crate) async fn finish_for_removal(
    raw: RawRecord,
    objects: Option<&ObjectTier>,
) -> StorageResult<SchemaRecord> {
    let fallback = RawRecord {
        content: Some(String::new()),
        ..raw.clone()
    };
    match raw.finish(objects).await {
        Err(StorageError::Corrupted(why)) => {
            tracing::warn!(reason = %why, "removing a version whose content cannot be read");
            fallback.finish(None).await
        }
        other => other,
    }
}

/// Moves content kept inline while the object store was down (`content_pending`) to the store.
/// Returns how many rows are still pending.
async fn reconcile(writer: &SqlitePool, tier: &ObjectTier) -> StorageResult<u64> {
    let rows: Vec<(SchemaId, String, String, String)> = sqlx::query_as(
        "SELECT id, format, content, checksum FROM schemas WHERE content_pending = 1 LIMIT 100",
    )
    .fetch_all(writer)
    .await?;
    for (id, format, text, checksum) in rows {
        let format = format
            .parse()
            .map_err(|e| StorageError::Internal(format!("stored format: {e}")))?;
        let content = SchemaContent::from_stored(format, text, checksum);
        let key = match tier.put(&content).await {
            Ok(key) => key,
            Err(StorageError::Unavailable(_)) => break, // still down: next round
            Err(e) => return Err(e),
        };
        // Under the write lock, make sure the object is still there (a permanent delete of
        // identical content may have removed it since the upload) before pointing to it.
        let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
        let Placement::Object(key) = confirm(Some(tier), Placement::Object(key), &content).await?
        else {
            break; // the store went away again: next round
        };
        sqlx::query(
            "UPDATE schemas SET content = NULL, content_location = ?2, content_pending = 0
             WHERE id = ?1 AND content_pending = 1",
        )
        .bind(id)
        .bind(&key)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM schemas WHERE content_pending = 1")
        .fetch_one(writer)
        .await?;
    let left = to_u64(left);
    tier.set_pending(left);
    Ok(left)
}

/// One open write transaction, with the statements registration needs.
struct SqliteWriteTx {
    tx: Transaction<'static, Sqlite>,
    objects: Option<Arc<ObjectTier>>,
}

#[async_trait]
impl RegistrationReads for SqliteWriteTx {
    async fn find_identical(
        &mut self,
        subject: &Subject,
        content: &SchemaContent,
    ) -> StorageResult<Option<(SchemaId, SchemaVersion)>> {
        let row = sqlx::query(concat!(
            "SELECT id, major, minor, patch, pre FROM schemas
             WHERE subject = ?1 AND checksum = ?2 AND format = ?3 AND state <> 'deleted'
             ORDER BY ",
            latest_order!(),
            " LIMIT 1"
        ))
        .bind(subject.as_str())
        .bind(content.checksum())
        .bind(content.format().as_str())
        .fetch_optional(&mut *self.tx)
        .await?;
        match row {
            None => Ok(None),
            Some(row) => Ok(Some((row.try_get("id")?, version_from_row(&row)?))),
        }
    }

    async fn version_exists(
        &mut self,
        subject: &Subject,
        version: &SchemaVersion,
    ) -> StorageResult<bool> {
        let row = sqlx::query(
            "SELECT 1 FROM schemas WHERE subject = ?1 AND major = ?2 AND minor = ?3 AND patch = ?4 AND pre = ?5",
        )
        .bind(subject.as_str())
        .bind(version.major())
        .bind(version.minor())
        .bind(version.patch())
        .bind(version.pre())
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(row.is_some())
    }

    async fn max_assigned(&mut self, subject: &Subject) -> StorageResult<Option<SchemaVersion>> {
        let row = sqlx::query(
            "SELECT max_major AS major, max_minor AS minor, max_patch AS patch, max_pre AS pre
             FROM subjects WHERE subject = ?1",
        )
        .bind(subject.as_str())
        .fetch_optional(&mut *self.tx)
        .await?;
        row.as_ref().map(version_from_row).transpose()
    }

    async fn resolve(
        &mut self,
        r: &SchemaReference,
    ) -> StorageResult<Option<(SchemaId, SchemaState)>> {
        let row = sqlx::query(
            "SELECT id, state FROM schemas WHERE subject = ?1 AND major = ?2 AND minor = ?3 AND patch = ?4 AND pre = ?5",
        )
        .bind(r.subject.as_str())
        .bind(r.version.major())
        .bind(r.version.minor())
        .bind(r.version.patch())
        .bind(r.version.pre())
        .fetch_optional(&mut *self.tx)
        .await?;
        match row {
            None => Ok(None),
            Some(row) => {
                let state: String = row.try_get("state")?;
                let state = state
                    .parse()
                    .map_err(|e| StorageError::Internal(format!("stored state: {e}")))?;
                Ok(Some((row.try_get("id")?, state)))
            }
        }
    }
}

#[async_trait]
impl WriteTx for SqliteWriteTx {
    async fn lock_subject(&mut self, _subject: &Subject) -> StorageResult<()> {
        // `BEGIN IMMEDIATE` already holds the database's single write lock.
        Ok(())
    }

    async fn lock_content(&mut self, _key: &str) -> StorageResult<()> {
        // Likewise: every writer of the database is serialised already.
        Ok(())
    }

    async fn insert(&mut self, row: &InsertRow<'_>) -> StorageResult<()> {
        let new = row.new;
        let now = to_micros(row.now);
        sqlx::query(
            "INSERT INTO subjects (subject, max_major, max_minor, max_patch, max_pre, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (subject) DO UPDATE SET
                max_major = excluded.max_major, max_minor = excluded.max_minor,
                max_patch = excluded.max_patch, max_pre = excluded.max_pre",
        )
        .bind(new.subject.as_str())
        .bind(row.new_max.major())
        .bind(row.new_max.minor())
        .bind(row.new_max.patch())
        .bind(row.new_max.pre())
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        let inserted = sqlx::query(
            "INSERT INTO schemas (id, subject, major, minor, patch, pre, pre_key, format, content, checksum,
                                  size_bytes, state, description, metadata, tags, refs, created_at, updated_at,
                                  content_location, content_pending)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'active', ?12, ?13, ?14, ?15, ?16, ?16, ?17, ?18)",
        )
        .bind(row.id)
        .bind(new.subject.as_str())
        .bind(row.version.major())
        .bind(row.version.minor())
        .bind(row.version.patch())
        .bind(row.version.pre())
        .bind(row.version.pre_key())
        .bind(new.content.format().as_str())
        .bind(match row.placement {
            Placement::Object(_) => None,
            Placement::Inline | Placement::InlinePending => Some(new.content.text()),
        })
        .bind(new.content.checksum())
        .bind(to_i64(new.content.size_bytes()))
        .bind(new.description.as_deref())
        .bind(to_json(&new.metadata))
        .bind(to_json(&new.tags))
        .bind(to_json(&new.references))
        .bind(now)
        .bind(match row.placement {
            Placement::Object(key) => Some(key.as_str()),
            _ => None,
        })
        .bind(matches!(row.placement, Placement::InlinePending))
        .execute(&mut *self.tx)
        .await;
        if let Err(sqlx::Error::Database(db)) = &inserted {
            if db.is_unique_violation() {
                return Err(StorageError::VersionExists {
                    subject: new.subject.clone(),
                    version: row.version.clone(),
                });
            }
        }
        inserted?;
        for (position, dep) in row.depends_on.iter().enumerate() {
            sqlx::query(
                "INSERT INTO schema_dependencies (schema_id, depends_on_id, position) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO NOTHING",
            )
            .bind(row.id)
            .bind(*dep)
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    async fn fetch(&mut self, id: SchemaId) -> StorageResult<SchemaRecord> {
        let row = sqlx::query(SELECT_BY_ID)
            .bind(id)
            .fetch_one(&mut *self.tx)
            .await?;
        raw_from_row(&row)?.finish(self.objects.as_deref()).await
    }
}

/// Serialises a JSON-valued column. The values are plain data (maps, strings, references), for
/// which serde_json cannot fail.
fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}

#[async_trait]
impl StorageBackend for SqliteBackend {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    async fn register(&self, schema: NewSchema) -> StorageResult<Registered> {
        let placement = place(self.objects(), &schema.content).await?;
        let mut tx = SqliteWriteTx {
            tx: self.begin_write().await?,
            objects: self.objects.clone(),
        };
        let registered = register_in(&mut tx, &schema, &placement, self.objects()).await?;
        tx.tx.commit().await?;
        Ok(registered)
    }

    async fn register_all(&self, schemas: Vec<NewSchema>) -> StorageResult<Vec<Registered>> {
        let mut placements = Vec::with_capacity(schemas.len());
        for schema in &schemas {
            placements.push(place(self.objects(), &schema.content).await?);
        }
        let mut tx = SqliteWriteTx {
            tx: self.begin_write().await?,
            objects: self.objects.clone(),
        };
        let mut out = Vec::with_capacity(schemas.len());
        for (schema, placement) in schemas.iter().zip(&placements) {
            out.push(register_in(&mut tx, schema, placement, self.objects()).await?);
        }
        tx.tx.commit().await?;
        Ok(out)
    }

    async fn get_by_id(&self, id: SchemaId) -> StorageResult<SchemaRecord> {
        let started = std::time::Instant::now();
        let row = sqlx::query(SELECT_BY_ID)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        match row {
            Some(row) => {
                let raw = raw_from_row(&row)?;
                drop(row);
                let record = raw.finish(self.objects()).await?;
                self.access.record(id, started.elapsed());
                Ok(record)
            }
            None => Err(StorageError::NotFound(NotFound::Schema(id))),
        }
    }

    async fn get_version(
        &self,
        subject: &Subject,
        version: &SchemaVersion,
    ) -> StorageResult<SchemaRecord> {
        let started = std::time::Instant::now();
        let mut conn = self.reader.acquire().await?;
        let raw = Self::find_version_row(&mut conn, subject, version)
            .await?
            .ok_or_else(|| {
                StorageError::NotFound(NotFound::Version {
                    subject: subject.clone(),
                    version: version.clone(),
                })
            })?;
        drop(conn);
        let record = raw.finish(self.objects()).await?;
        self.access.record(record.id, started.elapsed());
        Ok(record)
    }

    async fn get_latest(&self, subject: &Subject) -> StorageResult<SchemaRecord> {
        let started = std::time::Instant::now();
        let row = sqlx::query(SELECT_LATEST)
            .bind(subject.as_str())
            .fetch_optional(&self.reader)
            .await?;
        match row {
            Some(row) => {
                let record = raw_from_row(&row)?.finish(self.objects()).await?;
                self.access.record(record.id, started.elapsed());
                Ok(record)
            }
            None => Err(StorageError::NotFound(NotFound::Subject(subject.clone()))),
        }
    }

    async fn list_versions(
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
        if rows.is_empty() {
            return Err(StorageError::NotFound(NotFound::Subject(subject.clone())));
        }
        rows.iter().map(version_from_row).collect()
    }

    async fn list_subjects(&self, query: &SubjectQuery) -> StorageResult<Page<SubjectSummary>> {
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
        let items = rows
            .iter()
            .map(|row| {
                Ok(SubjectSummary {
                    subject: Subject::parse(row.try_get::<String, _>("subject")?)
                        .map_err(|e| StorageError::Internal(format!("stored subject: {e}")))?,
                    latest_version: version_from_row(row)?,
                    version_count: to_u64(row.try_get("version_count")?),
                })
            })
            .collect::<StorageResult<Vec<_>>>()?;
        Ok(Page {
            items,
            total: to_u64(total),
        })
    }

    async fn search(&self, query: &SearchQuery) -> StorageResult<Page<SchemaRecord>> {
        let tags = serde_json::to_string(&query.tags).unwrap_or_else(|_| "[]".into());
        let metadata = serde_json::to_string(&query.metadata).unwrap_or_else(|_| "{}".into());
        let text = query.text.as_deref().filter(|t| !t.is_empty());
        let format = query.format.map(|f| f.as_str());
        let state = query.state.map(|s| s.as_str());
        let prefix = query.subject_prefix.as_deref();
        let upper = prefix.and_then(prefix_upper_bound);
        let (page_sql, count_sql) = match (prefix, &upper) {
            (None, _) => SEARCH_NO_PREFIX,
            (Some(_), Some(_)) => SEARCH_PREFIX_RANGE,
            (Some(_), None) => SEARCH_PREFIX_SCAN,
        };
        let rows = sqlx::query(page_sql)
            .bind(text)
            .bind(prefix)
            .bind(format)
            .bind(state)
            .bind(&tags)
            .bind(&metadata)
            .bind(i64::from(query.limit))
            .bind(to_i64(query.offset))
            .bind(upper.as_deref())
            .fetch_all(&self.reader)
            .await?;
        let total: i64 = sqlx::query_scalar(count_sql)
            .bind(text)
            .bind(prefix)
            .bind(format)
            .bind(state)
            .bind(&tags)
            .bind(&metadata)
            .bind(None::<i64>) // ?7, ?8: not used by the count
            .bind(None::<i64>)
            .bind(upper.as_deref())
            .fetch_one(&self.reader)
            .await?;
        let raws = rows
            .iter()
            .map(raw_from_row)
            .collect::<StorageResult<Vec<_>>>()?;
        let items = RawRecord::finish_all(raws, self.objects()).await?;
        Ok(Page {
            items,
            total: to_u64(total),
        })
    }

    async fn set_state(&self, id: SchemaId, state: SchemaState) -> StorageResult<SchemaRecord> {
        if !state.is_settable() {
            return Err(schema_registry_core::DomainError::InvalidState(format!(
                "state {state} cannot be set directly; use delete"
            ))
            .into());
        }
        let mut tx = self.begin_write().await?;
        let current: Option<String> = sqlx::query_scalar("SELECT state FROM schemas WHERE id = ?1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        match current.as_deref() {
            None => return Err(StorageError::NotFound(NotFound::Schema(id))),
            Some("deleted") => {
                return Err(StorageError::conflict(
                    ConflictReason::Deleted,
                    format!("schema {id} is deleted; its state cannot change"),
                ))
            }
            Some(s) if s == state.as_str() => {}
            Some(_) => {
                sqlx::query("UPDATE schemas SET state = ?2, updated_at = ?3 WHERE id = ?1")
                    .bind(id)
                    .bind(state.as_str())
                    .bind(to_micros(crate::row::now()))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let row = sqlx::query(SELECT_BY_ID)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        // Content is read before the commit: if it cannot be read, nothing changes (and no
        // cache is left holding the old state of a committed change).
        let record = raw_from_row(&row)?.finish(self.objects()).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn soft_delete(
        &self,
        subject: &Subject,
        version: &SchemaVersion,
    ) -> StorageResult<SchemaRecord> {
        let mut tx = self.begin_write().await?;
        let Some(raw) = Self::find_version_row(&mut tx, subject, version).await? else {
            return Err(StorageError::NotFound(NotFound::Version {
                subject: subject.clone(),
                version: version.clone(),
            }));
        };
        if raw.state == SchemaState::Deleted.as_str() {
            tx.commit().await?;
            return raw.finish(self.objects()).await;
        }
        let id = raw.id;
        let now = to_micros(crate::row::now());
        sqlx::query(
            "UPDATE schemas SET state = 'deleted', deleted_at = ?2, updated_at = ?2 WHERE id = ?1",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(SELECT_BY_ID)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        // Content is read before the commit: if it cannot be read, nothing changes (and no
        // cache is left holding the old state of a committed change).
        let record = raw_from_row(&row)?.finish(self.objects()).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn soft_delete_subject(&self, subject: &Subject) -> StorageResult<Vec<SchemaRecord>> {
        let mut tx = self.begin_write().await?;
        let now = to_micros(crate::row::now());
        let rows = sqlx::query(concat!(
            "UPDATE schemas SET state = 'deleted', deleted_at = ?2, updated_at = ?2
             WHERE subject = ?1 AND state <> 'deleted'
             RETURNING ",
            record_columns!()
        ))
        .bind(subject.as_str())
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Err(StorageError::NotFound(NotFound::Subject(subject.clone())));
        }
        let raws = rows
            .iter()
            .map(raw_from_row)
            .collect::<StorageResult<Vec<_>>>()?;
        let mut records = RawRecord::finish_all(raws, self.objects()).await?;
        tx.commit().await?;
        records.sort_by(|a, b| a.version.cmp(&b.version));
        Ok(records)
    }

    async fn hard_delete(
        &self,
        subject: &Subject,
        version: &SchemaVersion,
    ) -> StorageResult<SchemaRecord> {
        let mut tx = self.begin_write().await?;
        let Some(raw) = Self::find_version_row(&mut tx, subject, version).await? else {
            return Err(StorageError::NotFound(NotFound::Version {
                subject: subject.clone(),
                version: version.clone(),
            }));
        };
        // What the rules need; the rules themselves are `register::ensure_removable`.
        let referrer: Option<Referrer> = sqlx::query_as(
            "SELECT s.subject, s.major, s.minor, s.patch, s.pre
             FROM schema_dependencies d JOIN schemas s ON s.id = d.schema_id
             WHERE d.depends_on_id = ?1 AND s.state <> 'deleted'
             ORDER BY s.subject, s.major, s.minor, s.patch, s.pre_key LIMIT 1",
        )
        .bind(raw.id)
        .fetch_optional(&mut *tx)
        .await?;
        ensure_removable(subject, version, &raw.state, referrer)?;
        let (id, location) = (raw.id, raw.location.clone());
        let record = finish_for_removal(raw, self.objects()).await?;
        sqlx::query("DELETE FROM schemas WHERE id = ?1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if let (Some(key), Some(tier)) = (location, self.objects()) {
            if let Err(e) = self.release_object(tier, &key).await {
                tracing::warn!(key, error = %e, "object left in the store after a permanent delete");
            }
        }
        Ok(record)
    }

    async fn dependencies(
        &self,
        id: SchemaId,
        transitive: bool,
    ) -> StorageResult<Vec<SchemaSummary>> {
        self.walk(DEPENDENCIES, id, transitive).await
    }

    async fn dependents(
        &self,
        id: SchemaId,
        transitive: bool,
    ) -> StorageResult<Vec<SchemaSummary>> {
        self.walk(DEPENDENTS, id, transitive).await
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
        let get = |c: &str| -> StorageResult<u64> { Ok(to_u64(row.try_get::<i64, _>(c)?)) };
        Ok(StorageStats {
            schemas: get("schemas")?,
            subjects: get("subjects")?,
            active: get("active")?,
            deprecated: get("deprecated")?,
            deleted: get("deleted")?,
            bytes: get("bytes")?,
        })
    }

    async fn popular(&self, limit: u32) -> StorageResult<Vec<SchemaRecord>> {
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
        let raws = rows
            .iter()
            .map(raw_from_row)
            .collect::<StorageResult<Vec<_>>>()?;
        RawRecord::finish_all(raws, self.objects()).await
    }

    async fn health(&self) -> StorageResult<()> {
        migrate::check_applied(&migrate::SQLITE, &self.reader).await
    }

    fn note_access(&self, id: SchemaId, latency: Duration) {
        self.access.record(id, latency);
    }

    async fn run_maintenance(&self) -> StorageResult<()> {
        self.flush_access_log().await?;
        if let Some(tier) = self.objects() {
            reconcile(&self.writer, tier).await?;
        }
        Ok(())
    }

    async fn presigned_content_url(
        &self,
        id: SchemaId,
        expires_in: Duration,
    ) -> StorageResult<Option<(url::Url, Duration)>> {
        presigned_url(&self.reader, self.objects(), id, expires_in).await
    }

    fn pool_stats(&self) -> Option<(u32, u32)> {
        let idle =
            u32::try_from(self.reader.num_idle() + self.writer.num_idle()).unwrap_or(u32::MAX);
        let size = self.reader.size() + self.writer.size();
        Some((size.saturating_sub(idle), idle))
    }

    fn tiers(&self) -> Vec<crate::TierHealth> {
        self.objects().map(|t| vec![t.health()]).unwrap_or_default()
    }

    async fn close(&self) {
        SqliteBackend::close(self).await
    }
}

/// The presigned URL of `id`'s object, if it has one and the store can sign.
async fn presigned_url(
    reader: &SqlitePool,
    objects: Option<&ObjectTier>,
    id: SchemaId,
    expires_in: Duration,
) -> StorageResult<Option<(url::Url, Duration)>> {
    let location: Option<Option<String>> =
        sqlx::query_scalar("SELECT content_location FROM schemas WHERE id = ?1")
            .bind(id)
            .fetch_optional(reader)
            .await?;
    crate::objects::presign_location(objects, id, location, expires_in).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_upper_bounds_are_the_next_string_after_the_prefix() {
        assert_eq!(prefix_upper_bound("orders."), Some("orders/".to_string()));
        assert_eq!(prefix_upper_bound("a"), Some("b".to_string()));
        assert_eq!(prefix_upper_bound("é"), Some("ê".to_string()));
        // The surrogate range is skipped.
        assert_eq!(
            prefix_upper_bound("x\u{D7FF}"),
            Some("x\u{E000}".to_string())
        );
        // A last character that cannot be raised is dropped, and the one before is raised.
        assert_eq!(prefix_upper_bound("ab\u{10FFFF}"), Some("ac".to_string()));
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
        assert_eq!(prefix_upper_bound(""), None);
        for p in ["orders.", "é", "ab\u{10FFFF}", "x\u{D7FF}"] {
            let upper = prefix_upper_bound(p).expect("bound");
            for s in [
                p.to_string(),
                format!("{p}\u{10FFFF}\u{10FFFF}"),
                format!("{p}zzz"),
            ] {
                assert!(s.as_str() >= p && s < upper, "{s:?} in [{p:?}, {upper:?})");
            }
        }
    }

    /// A prefix search walks the subject index, not the whole table.
    #[tokio::test]
    async fn prefix_search_uses_the_subject_index() {
        let dir = tempfile::tempdir().expect("tmp");
        let url = format!("sqlite://{}", dir.path().join("r.db").display());
        let backend = SqliteBackend::open(&url, &SqliteOptions::default())
            .await
            .expect("open");
        let sql = format!("EXPLAIN QUERY PLAN {}", SEARCH_PREFIX_RANGE.0);
        let plan: Vec<String> = sqlx::query_as::<_, (i64, i64, i64, String)>(&sql)
            .bind(None::<String>)
            .bind("orders.")
            .bind(None::<String>)
            .bind(None::<String>)
            .bind("[]")
            .bind("{}")
            .bind(10_i64)
            .bind(0_i64)
            .bind("orders/")
            .fetch_all(&backend.reader)
            .await
            .map(|rows| rows.into_iter().map(|r| r.3).collect())
            .expect("plan");
        let first = plan.first().cloned().unwrap_or_default();
        assert!(
            first.contains("USING INDEX") && first.contains("subject<?"),
            "{plan:?}"
        );
        backend.close().await;
    }
}
