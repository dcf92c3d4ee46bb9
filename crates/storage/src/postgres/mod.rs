//! The production backend: PostgreSQL through sqlx's own pool.
//!
//! # Decisions
//! - **One pool, sqlx's.** A second pool library (deadpool-postgres) beside it would split the
//!   connection budget and the statement caches for nothing. sqlx's
//!   pool gives min/max sizes, acquire/idle timeouts and max lifetime, and every connection keeps
//!   a prepared-statement cache, so a statement is parsed and planned once per connection.
//! - **Registration is optimistic first** (`registration`): one statement reads the subject's
//!   revision and what the rules decide on, one statement writes only if the revision is
//!   unchanged. Two round trips, no explicit transaction; one when this process wrote into the
//!   subject last and still knows its revision (the common case with one server per subject's
//!   writers).
//! - **Per-subject serialisation** otherwise, with
//!   `pg_advisory_xact_lock(hashtextextended(subject, 0))`: batches, object-bound content and a
//!   registration whose optimistic try lost to a concurrent writer queue up on it, from
//!   any number of server processes; different subjects almost never share a lock (a 64-bit hash
//!   collision only makes two subjects wait for each other, never breaks correctness, since the
//!   unique index still holds).
//! - **Optional read pool** (`read_url`): reads may go to a replica or a read-only role; writes,
//!   and reads inside a write, always use the primary.
//! - **Search SQL is assembled from fixed fragments** with [`sqlx::QueryBuilder`], binding every
//!   value: each combination of filters gets its own prepared statement and plan, instead of one
//!   catch-all statement whose `$1 IS NULL OR ...` branches defeat the indexes.

//!
//! # Layout
//! - this file: options, opening, and the reads (`sql::Database` for [`PostgresDb`]);
//! - `statements`: the locked write transaction's statements;
//! - `registration`: the one-statement insert and the optimistic path;
//! - `search`: the search statement builder;
//! - `maintenance`: the access-log flush and the materialized-view refresh.

mod maintenance;
mod registration;
mod search;
mod statements;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use schema_registry_core::{
    DomainError, NewSchema, SchemaId, SchemaSummary, SchemaVersion, Subject,
};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::Row;

use crate::objects::{ObjectTier, Placement};
use crate::sql::rows::{
    common_columns, latest_order, record_columns, statistics_of, subject_summary_of, to_i64,
    to_u64, version_of, Columns, PendingRow, RawRecord, RawSummary, MAX_WALK_DEPTH,
};
use crate::sql::{Database, SqlBackend, Walk};
use crate::{
    migrate, Page, Registered, SearchQuery, StorageError, StorageResult, StorageStats,
    SubjectQuery, SubjectSummary,
};

pub use maintenance::MaintenanceOptions;
use statements::PgWriteTx;

/// Pool and connection settings.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    pub max_connections: u32,
    pub min_connections: u32,
    /// How long a request waits for a free connection before failing (fail fast: 503).
    pub acquire_timeout: Duration,
    /// Idle connections above `min_connections` are closed after this long.
    pub idle_timeout: Duration,
    /// Connections are recycled after this long (stale server-side state, DNS changes).
    pub max_lifetime: Duration,
    /// A separate URL for reads (replica or read-only role). `None`: reads use the primary.
    pub read_url: Option<String>,
    /// Whether opening applies pending migrations (the server does; `migrate` does it by hand).
    pub run_migrations: bool,
    pub maintenance: MaintenanceOptions,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            max_connections: 50,
            min_connections: 10,
            acquire_timeout: Duration::from_secs(3),
            idle_timeout: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(1800),
            read_url: None,
            run_migrations: true,
            maintenance: MaintenanceOptions::default(),
        }
    }
}

/// The PostgreSQL backend.
pub type PostgresBackend = SqlBackend<PostgresDb>;

/// PostgreSQL's half of [`PostgresBackend`]: the pools, the background maintenance and the
/// registration hints.
#[derive(Debug, Clone)]
pub struct PostgresDb {
    pool: PgPool,
    reader: PgPool,
    maintenance: maintenance::Maintenance,
    /// What this process last wrote into each subject (see `registration`).
    hints: Arc<registration::Hints>,
}

impl Columns for PgRow {
    const CONTENT: &'static str = "content_text";
    common_columns!();

    fn json(&self, col: &str) -> StorageResult<Value> {
        Ok(self.try_get(col)?)
    }

    fn time(&self, col: &str) -> StorageResult<DateTime<Utc>> {
        Ok(self.try_get(col)?)
    }

    fn strings(&self, col: &str) -> StorageResult<Vec<String>> {
        Ok(self.try_get(col)?)
    }
}

/// The point reads, public so that tests can check the plans PostgreSQL makes of them.
pub const SELECT_BY_ID: &str = concat!(
    "SELECT ",
    record_columns!("content_text"),
    " FROM schemas WHERE id = $1"
);
pub const SELECT_BY_VERSION: &str = concat!(
    "SELECT ",
    record_columns!("content_text"),
    " FROM schemas WHERE subject = $1 AND major = $2 AND minor = $3 AND patch = $4 AND pre = $5"
);
pub const SELECT_LATEST: &str = concat!(
    "SELECT ",
    record_columns!("content_text"),
    " FROM schemas WHERE subject = $1 AND state <> 'deleted' ORDER BY ",
    latest_order!(),
    " LIMIT 1"
);

/// A subject's versions in precedence order. Parameters: subject, include_deleted.
pub const LIST_VERSIONS: &str = "SELECT major, minor, patch, pre FROM schemas
     WHERE subject = $1 AND ($2 OR state <> 'deleted')
     ORDER BY major, minor, patch, pre_key";

/// A dependency walk: from the rows whose `$start` column is the schema asked about, follow
/// `$next`; once (direct) or until no new version appears (transitive, `$2`), bounded by depth.
/// `UNION` drops repeated (id, depth) pairs; `shortest` keeps each version once, at its
/// shortest depth.
macro_rules! walk_sql {
    ($start:literal, $next:literal) => {
        concat!(
            "WITH RECURSIVE walk(id, depth) AS (
                SELECT ", $next, ", 1 FROM schema_dependencies WHERE ", $start, " = $1
                UNION
                SELECT d.", $next, ", w.depth + 1
                FROM schema_dependencies d JOIN walk w ON d.", $start, " = w.id
                WHERE $2 AND w.depth < $3
            ), shortest AS (
                SELECT id, min(depth) AS depth FROM walk GROUP BY id
            )
            SELECT s.id, s.subject, s.major, s.minor, s.patch, s.pre, s.format, s.state, w.depth::bigint AS depth
            FROM shortest w JOIN schemas s ON s.id = w.id
            ORDER BY w.depth, s.subject, s.major, s.minor, s.patch, s.pre_key"
        )
    };
}

const DEPENDENCIES: &str = walk_sql!("schema_id", "depends_on_id");
const DEPENDENTS: &str = walk_sql!("depends_on_id", "schema_id");

fn connect_options(url: &str) -> StorageResult<PgConnectOptions> {
    PgConnectOptions::from_str(url).map_err(|e| {
        StorageError::Invalid(DomainError::InvalidFormat(format!(
            "invalid PostgreSQL URL {}: {e}",
            crate::redact_url(url)
        )))
    })
}

impl SqlBackend<PostgresDb> {
    /// Connects to `url`, applies pending migrations (unless disabled) and starts the background
    /// maintenance (access-log flushing, materialized-view refreshes).
    ///
    /// TLS is chosen by the URL's `sslmode` (`disable`, `prefer` — the default —, `require`,
    /// `verify-ca`, `verify-full`) with `sslrootcert=` for a private CA; rustls does the work.
    pub async fn open(url: &str, options: &PostgresOptions) -> StorageResult<Self> {
        Self::open_with_objects(url, options, None).await
    }

    /// As [`PostgresBackend::open`], with large content routed to `objects`.
    pub async fn open_with_objects(
        url: &str,
        options: &PostgresOptions,
        objects: Option<Arc<ObjectTier>>,
    ) -> StorageResult<Self> {
        Ok(SqlBackend::new(
            PostgresDb::open(url, options).await?,
            objects,
        ))
    }

    /// How many registrations this backend wrote without reading the subject first, on what it
    /// remembered from its own last write there (see `registration`): for diagnosis and tests.
    pub fn registrations_without_read(&self) -> u64 {
        self.db.hints.written()
    }

    /// The primary pool (for tests and tools that inspect the database).
    pub fn pool(&self) -> &PgPool {
        &self.db.pool
    }

    /// Refreshes both materialized views now (the background task does this on a timer).
    pub async fn refresh_views(&self) -> StorageResult<()> {
        self.db.refresh_derived().await
    }

    /// Writes buffered access counts now (the background task does this on a timer).
    pub async fn flush_access_log(&self) -> StorageResult<()> {
        self.db.flush_access().await
    }
}

impl PostgresDb {
    async fn open(url: &str, options: &PostgresOptions) -> StorageResult<Self> {
        // No ping before each acquire (sqlx's default pings): that is a round trip to the
        // server in front of every statement, and under registration load it showed as the
        // single largest item in the server's profile. A connection that broke while idle (a
        // database restart) fails its next statement instead, which answers 503 with
        // `Retry-After` and is closed rather than returned to the pool; `max_lifetime` and
        // `idle_timeout` still recycle connections.
        let pool_options = |min: u32| {
            PgPoolOptions::new()
                .test_before_acquire(false)
                .max_connections(options.max_connections.max(1))
                .min_connections(min.min(options.max_connections))
                .acquire_timeout(options.acquire_timeout)
                .idle_timeout(Some(options.idle_timeout))
                .max_lifetime(Some(options.max_lifetime))
        };
        let pool = pool_options(options.min_connections)
            .connect_with(connect_options(url)?)
            .await?;
        if options.run_migrations {
            migrate::POSTGRES.run(&pool).await?;
        }
        let reader = match &options.read_url {
            Some(read_url) => {
                pool_options(options.min_connections)
                    .connect_with(connect_options(read_url)?)
                    .await?
            }
            None => pool.clone(),
        };
        let maintenance =
            maintenance::Maintenance::start(pool.clone(), options.maintenance.clone());
        Ok(PostgresDb {
            pool,
            reader,
            maintenance,
            hints: Arc::default(),
        })
    }

    fn read_is_separate(&self) -> bool {
        // Clones of one pool share their inner state; a separate read URL has its own.
        !std::ptr::eq(
            self.pool.connect_options().as_ref(),
            self.reader.connect_options().as_ref(),
        )
    }
}

#[async_trait]
impl Database for PostgresDb {
    type Tx = PgWriteTx;
    const KIND: &'static str = "postgres";

    async fn begin_write(&self) -> StorageResult<PgWriteTx> {
        Ok(PgWriteTx::new(self.pool.begin().await?))
    }

    async fn by_id(&self, id: SchemaId) -> StorageResult<Option<RawRecord>> {
        statements::find_id(&self.reader, id).await
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
        let rows = sqlx::query(LIST_VERSIONS)
            .bind(subject.as_str())
            .bind(include_deleted)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(version_of).collect()
    }

    async fn subjects(&self, query: &SubjectQuery) -> StorageResult<Page<SubjectSummary>> {
        // Walks the small `subjects` table in name order and probes the live-version index per
        // subject, so a page costs O(limit) index lookups whatever the total number of versions.
        let pattern = query
            .prefix
            .as_deref()
            .map(|p| format!("{}%", search::escape_like(p)));
        let rows = sqlx::query(concat!(
            "SELECT sub.subject, l.major, l.minor, l.patch, l.pre, c.version_count
             FROM subjects sub
             CROSS JOIN LATERAL (
                 SELECT major, minor, patch, pre FROM schemas s
                 WHERE s.subject = sub.subject AND s.state <> 'deleted'
                 ORDER BY ",
            latest_order!(),
            " LIMIT 1
             ) l
             CROSS JOIN LATERAL (
                 SELECT count(*) AS version_count FROM schemas s
                 WHERE s.subject = sub.subject AND s.state <> 'deleted'
             ) c
             WHERE ($1::text IS NULL OR sub.subject LIKE $1)
             ORDER BY sub.subject
             LIMIT $2 OFFSET $3"
        ))
        .bind(pattern.as_deref())
        .bind(i64::from(query.limit))
        .bind(to_i64(query.offset))
        .fetch_all(&self.reader)
        .await?;
        let total: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM subjects sub
             WHERE ($1::text IS NULL OR sub.subject LIKE $1)
               AND EXISTS (SELECT 1 FROM schemas s WHERE s.subject = sub.subject AND s.state <> 'deleted')",
        )
        .bind(pattern.as_deref())
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
        let row = sqlx::query("SELECT 1 FROM schemas WHERE id = $1")
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
            .bind(MAX_WALK_DEPTH)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(RawSummary::decode).collect()
    }

    async fn statistics(&self) -> StorageResult<StorageStats> {
        let row = sqlx::query(
            "SELECT count(*) AS schemas,
                    count(*) FILTER (WHERE state = 'active') AS active,
                    count(*) FILTER (WHERE state = 'deprecated') AS deprecated,
                    count(*) FILTER (WHERE state = 'deleted') AS deleted,
                    coalesce(sum(size_bytes), 0)::bigint AS bytes,
                    (SELECT count(DISTINCT subject) FROM schemas WHERE state <> 'deleted') AS subjects
             FROM schemas",
        )
        .fetch_one(&self.reader)
        .await?;
        statistics_of(&row)
    }

    async fn popular(&self, limit: u32) -> StorageResult<Vec<RawRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            "s.id, s.subject, s.major, s.minor, s.patch, s.pre, s.format, s.content_text, s.content_location, s.checksum, s.state, s.description, s.metadata, s.tags, s.refs, s.created_at, s.updated_at",
            " FROM popular_schemas p JOIN schemas s ON s.id = p.schema_id
              WHERE s.state <> 'deleted'
              ORDER BY p.access_count DESC, p.schema_id LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        RawRecord::decode_all(&rows)
    }

    async fn content_location(&self, id: SchemaId) -> StorageResult<Option<Option<String>>> {
        Ok(
            sqlx::query_scalar("SELECT content_location FROM schemas WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.reader)
                .await?,
        )
    }

    async fn pending(&self, limit: u32) -> StorageResult<Vec<PendingRow>> {
        Ok(sqlx::query_as(
            "SELECT id, format, content_text, checksum FROM schemas WHERE content_pending LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn count_pending(&self) -> StorageResult<u64> {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM schemas WHERE content_pending")
            .fetch_one(&self.pool)
            .await?;
        Ok(to_u64(left))
    }

    fn record_access(&self, id: SchemaId, latency: Duration) {
        self.maintenance.record_access(id, latency);
    }

    async fn flush_access(&self) -> StorageResult<()> {
        self.maintenance.flush().await
    }

    async fn refresh_derived(&self) -> StorageResult<()> {
        maintenance::refresh_views(&self.pool).await
    }

    async fn health(&self) -> StorageResult<()> {
        migrate::check_applied(&migrate::POSTGRES, &self.pool).await?;
        if self.read_is_separate() {
            sqlx::query("SELECT 1").execute(&self.reader).await?;
        }
        Ok(())
    }

    fn pool_stats(&self) -> (u32, u32) {
        let mut idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        let mut size = self.pool.size();
        if self.read_is_separate() {
            idle += u32::try_from(self.reader.num_idle()).unwrap_or(u32::MAX);
            size += self.reader.size();
        }
        (size.saturating_sub(idle), idle)
    }

    /// Flushes buffered access counts, stops the background tasks and closes the pools.
    async fn close(&self) {
        self.maintenance.shutdown().await;
        self.reader.close().await;
        self.pool.close().await;
    }

    async fn register_unlocked(
        &self,
        new: &NewSchema,
        placement: &Placement,
        objects: Option<&ObjectTier>,
    ) -> StorageResult<Option<Registered>> {
        for _ in 0..registration::ATTEMPTS {
            if let Some(registered) = self
                .register_optimistically(new, placement, objects)
                .await?
            {
                return Ok(Some(registered));
            }
        }
        Ok(None)
    }
}
