//! The production backend: PostgreSQL through sqlx's own pool.
//!
//! # Decisions
//! - **One pool, sqlx's.** The report names both sqlx and deadpool-postgres; two pools over one
//!   database would split the connection budget and the statement caches for nothing. sqlx's
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

mod maintenance;

use std::time::Duration;

use async_trait::async_trait;
use schema_registry_core::{
    DomainError, NewSchema, SchemaContent, SchemaId, SchemaRecord, SchemaReference, SchemaState,
    SchemaSummary, SchemaVersion, Subject,
};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, QueryBuilder, Row, Transaction};
use std::str::FromStr;

use crate::background::Periodic;
use crate::objects::{confirm, place, ObjectTier, Placement};
use crate::register::{
    ensure_removable, register_in, InsertRow, Referrer, RegistrationReads, WriteTx,
};
use crate::row::{version_from_parts, RawRecord, RawSummary};
use crate::sqlite::finish_for_removal;
use crate::sqlite::MAX_WALK_DEPTH;
use crate::{
    migrate, ConflictReason, NotFound, Page, Registered, SearchQuery, StorageBackend, StorageError,
    StorageResult, StorageStats, SubjectQuery, SubjectSummary,
};
use std::sync::Arc;

pub use maintenance::MaintenanceOptions;

/// Pool and connection settings. Defaults are the storage report's.
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
#[derive(Debug, Clone)]
pub struct PostgresBackend {
    pool: PgPool,
    reader: PgPool,
    maintenance: maintenance::Maintenance,
    objects: Option<Arc<ObjectTier>>,
    reconciler: Option<Arc<Periodic>>,
    /// What this process last wrote into each subject (see `registration`).
    hints: Arc<registration::Hints>,
}

macro_rules! record_columns {
    () => {
        "id, subject, major, minor, patch, pre, format, content_text, content_location, checksum, state, description, metadata, tags, refs, created_at, updated_at"
    };
}

macro_rules! latest_order {
    () => {
        "(pre = '') DESC, major DESC, minor DESC, patch DESC, pre_key DESC"
    };
}

// After the macros above, which it uses.
mod registration;

pub const SELECT_BY_ID: &str = concat!("SELECT ", record_columns!(), " FROM schemas WHERE id = $1");
pub const SELECT_BY_VERSION: &str = concat!(
    "SELECT ",
    record_columns!(),
    " FROM schemas WHERE subject = $1 AND major = $2 AND minor = $3 AND patch = $4 AND pre = $5"
);
pub const SELECT_LATEST: &str = concat!(
    "SELECT ",
    record_columns!(),
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

fn raw_from_row(row: &PgRow) -> StorageResult<RawRecord> {
    Ok(RawRecord {
        id: row.try_get("id")?,
        subject: row.try_get("subject")?,
        major: row.try_get("major")?,
        minor: row.try_get("minor")?,
        patch: row.try_get("patch")?,
        pre: row.try_get("pre")?,
        format: row.try_get("format")?,
        content: row.try_get("content_text")?,
        location: row.try_get("content_location")?,
        checksum: row.try_get("checksum")?,
        state: row.try_get("state")?,
        description: row.try_get("description")?,
        metadata: row.try_get("metadata")?,
        tags: row.try_get("tags")?,
        refs: row.try_get("refs")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn summary_from_row(row: &PgRow) -> StorageResult<SchemaSummary> {
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

fn version_from_row(row: &PgRow) -> StorageResult<SchemaVersion> {
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

/// Escapes `LIKE` wildcards so user text matches literally (backslash is PostgreSQL's default
/// `LIKE` escape character).
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn connect_options(url: &str) -> StorageResult<PgConnectOptions> {
    PgConnectOptions::from_str(url).map_err(|e| {
        StorageError::Invalid(DomainError::InvalidFormat(format!(
            "invalid PostgreSQL URL {}: {e}",
            crate::redact_url(url)
        )))
    })
}

impl PostgresBackend {
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
        let reconciler = objects.as_ref().map(|tier| {
            let (pool, tier) = (pool.clone(), tier.clone());
            Arc::new(Periodic::spawn(tier.reconcile_interval(), move || {
                let (pool, tier) = (pool.clone(), tier.clone());
                async move {
                    if let Err(e) = reconcile(&pool, &tier).await {
                        tracing::warn!(error = %e, "moving pending content to object storage failed");
                    }
                }
            }))
        });
        Ok(PostgresBackend {
            pool,
            reader,
            maintenance,
            objects,
            reconciler,
            hints: Arc::default(),
        })
    }

    /// How many registrations this backend wrote without reading the subject first, on what it
    /// remembered from its own last write there (see `registration`): for diagnosis and tests.
    pub fn registrations_without_read(&self) -> u64 {
        self.hints.written()
    }

    /// The primary pool (for tests and tools that inspect the database).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn objects(&self) -> Option<&ObjectTier> {
        self.objects.as_deref()
    }

    /// Second phase of a permanent delete: removes the object `key` if no row points to it any
    /// more, under the content lock registrations take before they point to an object. If this
    /// fails, the object stays as harmless garbage; the row is already gone, so no pointer can
    /// dangle.
    async fn release_object(&self, tier: &ObjectTier, key: &str) -> StorageResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 1))")
            .bind(key)
            .execute(&mut *tx)
            .await?;
        let others: i64 =
            sqlx::query_scalar("SELECT count(*) FROM schemas WHERE content_location = $1")
                .bind(key)
                .fetch_one(&mut *tx)
                .await?;
        if others == 0 {
            tier.delete(key).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Flushes buffered access counts and stops the background tasks, then closes the pools.
    pub async fn close(&self) {
        if let Some(r) = &self.reconciler {
            r.stop().await;
        }
        self.maintenance.shutdown().await;
        self.reader.close().await;
        self.pool.close().await;
    }

    /// Refreshes both materialized views now (the background task does this on a timer).
    pub async fn refresh_views(&self) -> StorageResult<()> {
        maintenance::refresh_views(&self.pool).await
    }

    /// Writes buffered access counts now (the background task does this on a timer).
    pub async fn flush_access_log(&self) -> StorageResult<()> {
        self.maintenance.flush().await
    }

    async fn begin_write(&self) -> StorageResult<Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
    }

    async fn find_id_row<'e, E>(executor: E, id: SchemaId) -> StorageResult<Option<RawRecord>>
    where
        E: sqlx::PgExecutor<'e>,
    {
        let row = sqlx::query(SELECT_BY_ID)
            .bind(id)
            .fetch_optional(executor)
            .await?;
        row.as_ref().map(raw_from_row).transpose()
    }

    async fn find_version_row<'e, E>(
        executor: E,
        subject: &Subject,
        version: &SchemaVersion,
    ) -> StorageResult<Option<RawRecord>>
    where
        E: sqlx::PgExecutor<'e>,
    {
        let row = sqlx::query(SELECT_BY_VERSION)
            .bind(subject.as_str())
            .bind(version.major())
            .bind(version.minor())
            .bind(version.patch())
            .bind(version.pre())
            .fetch_optional(executor)
            .await?;
        row.as_ref().map(raw_from_row).transpose()
    }

    async fn walk(
        &self,
        sql: &'static str,
        id: SchemaId,
        transitive: bool,
    ) -> StorageResult<Vec<SchemaSummary>> {
        let exists = sqlx::query("SELECT 1 FROM schemas WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        if exists.is_none() {
            return Err(StorageError::NotFound(NotFound::Schema(id)));
        }
        let rows = sqlx::query(sql)
            .bind(id)
            .bind(transitive)
            .bind(MAX_WALK_DEPTH as i32)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(summary_from_row).collect()
    }

    /// Appends the search filter (every given condition, AND-ed) to `qb`.
    fn push_search_filter(qb: &mut QueryBuilder<'_, Postgres>, query: &SearchQuery) {
        qb.push(" FROM schemas s WHERE ");
        match query.state {
            Some(state) => qb.push("s.state = ").push_bind(state.as_str().to_string()),
            None => qb.push("s.state <> 'deleted'"),
        };
        if let Some(text) = query.text.as_deref().filter(|t| !t.is_empty()) {
            let pattern = format!("%{}%", escape_like(text));
            qb.push(" AND (s.subject ILIKE ")
                .push_bind(pattern.clone())
                .push(" OR s.description ILIKE ")
                .push_bind(pattern)
                .push(" OR s.search_vector @@ websearch_to_tsquery('simple', ")
                .push_bind(text.to_string())
                .push("))");
        }
        if let Some(prefix) = &query.subject_prefix {
            qb.push(" AND s.subject LIKE ")
                .push_bind(format!("{}%", escape_like(prefix)));
        }
        if let Some(format) = query.format {
            qb.push(" AND s.format = ")
                .push_bind(format.as_str().to_string());
        }
        if !query.tags.is_empty() {
            qb.push(" AND s.tags @> ").push_bind(query.tags.clone());
        }
        if !query.metadata.is_empty() {
            qb.push(" AND s.metadata @> ")
                .push_bind(Value::Object(query.metadata.clone()));
        }
    }
}

/// Whether `subject` has `version`, in any state.
async fn version_exists<'e, E: sqlx::PgExecutor<'e>>(
    executor: E,
    subject: &Subject,
    version: &SchemaVersion,
) -> StorageResult<bool> {
    let row = sqlx::query(
        "SELECT 1 FROM schemas WHERE subject = $1 AND major = $2 AND minor = $3 AND patch = $4 AND pre = $5",
    )
    .bind(subject.as_str())
    .bind(version.major())
    .bind(version.minor())
    .bind(version.patch())
    .bind(version.pre())
    .fetch_optional(executor)
    .await?;
    Ok(row.is_some())
}

/// The id and state of the version a reference names.
async fn resolve<'e, E: sqlx::PgExecutor<'e>>(
    executor: E,
    r: &SchemaReference,
) -> StorageResult<Option<(SchemaId, SchemaState)>> {
    let row = sqlx::query(
        "SELECT id, state FROM schemas WHERE subject = $1 AND major = $2 AND minor = $3 AND patch = $4 AND pre = $5",
    )
    .bind(r.subject.as_str())
    .bind(r.version.major())
    .bind(r.version.minor())
    .bind(r.version.patch())
    .bind(r.version.pre())
    .fetch_optional(executor)
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

/// One open write transaction on the primary.
struct PgWriteTx {
    tx: Transaction<'static, Postgres>,
    objects: Option<Arc<ObjectTier>>,
}

#[async_trait]
impl RegistrationReads for PgWriteTx {
    async fn find_identical(
        &mut self,
        subject: &Subject,
        content: &SchemaContent,
    ) -> StorageResult<Option<(SchemaId, SchemaVersion)>> {
        let row = sqlx::query(concat!(
            "SELECT id, major, minor, patch, pre FROM schemas
             WHERE subject = $1 AND checksum = $2 AND format = $3 AND state <> 'deleted'
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
        version_exists(&mut *self.tx, subject, version).await
    }

    async fn max_assigned(&mut self, subject: &Subject) -> StorageResult<Option<SchemaVersion>> {
        let row = sqlx::query(
            "SELECT max_major AS major, max_minor AS minor, max_patch AS patch, max_pre AS pre
             FROM subjects WHERE subject = $1",
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
        resolve(&mut *self.tx, r).await
    }
}

#[async_trait]
impl WriteTx for PgWriteTx {
    async fn lock_content(&mut self, key: &str) -> StorageResult<()> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 1))")
            .bind(key)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn lock_subject(&mut self, subject: &Subject) -> StorageResult<()> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(subject.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn insert(&mut self, row: &InsertRow<'_>) -> StorageResult<()> {
        if registration::insert_version(&mut *self.tx, row, None, registration::Decided::OnRead)
            .await?
        {
            Ok(())
        } else {
            Err(StorageError::Internal(
                "an unconditional insert wrote nothing".into(),
            ))
        }
    }

    async fn fetch(&mut self, id: SchemaId) -> StorageResult<SchemaRecord> {
        let raw = PostgresBackend::find_id_row(&mut *self.tx, id)
            .await?
            .ok_or(StorageError::NotFound(NotFound::Schema(id)))?;
        raw.finish(self.objects.as_deref()).await
    }
}

#[async_trait]
impl StorageBackend for PostgresBackend {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    async fn register(&self, schema: NewSchema) -> StorageResult<Registered> {
        let placement = place(self.objects(), &schema.content).await?;
        if !matches!(placement, Placement::Object(_)) {
            for _ in 0..registration::ATTEMPTS {
                if let Some(registered) = self.register_optimistically(&schema, &placement).await? {
                    return Ok(registered);
                }
            }
        }
        let mut tx = PgWriteTx {
            tx: self.begin_write().await?,
            objects: self.objects.clone(),
        };
        let registered = register_in(&mut tx, &schema, &placement, self.objects()).await?;
        tx.tx.commit().await?;
        Ok(registered)
    }

    async fn register_all(&self, schemas: Vec<NewSchema>) -> StorageResult<Vec<Registered>> {
        // Lock subjects in a fixed order so two batches touching the same subjects cannot
        // deadlock on their advisory locks.
        let mut subjects: Vec<&Subject> = schemas.iter().map(|s| &s.subject).collect();
        subjects.sort();
        subjects.dedup();
        let mut placements = Vec::with_capacity(schemas.len());
        for schema in &schemas {
            placements.push(place(self.objects(), &schema.content).await?);
        }
        let mut keys: Vec<&str> = placements
            .iter()
            .filter_map(|p| match p {
                Placement::Object(k) => Some(k.as_str()),
                _ => None,
            })
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let mut tx = PgWriteTx {
            tx: self.begin_write().await?,
            objects: self.objects.clone(),
        };
        for subject in subjects {
            tx.lock_subject(subject).await?;
        }
        for key in keys {
            tx.lock_content(key).await?;
        }
        let mut out = Vec::with_capacity(schemas.len());
        for (schema, placement) in schemas.iter().zip(&placements) {
            out.push(register_in(&mut tx, schema, placement, self.objects()).await?);
        }
        tx.tx.commit().await?;
        Ok(out)
    }

    async fn get_by_id(&self, id: SchemaId) -> StorageResult<SchemaRecord> {
        let started = std::time::Instant::now();
        match Self::find_id_row(&self.reader, id).await? {
            Some(raw) => {
                let record = raw.finish(self.objects()).await?;
                self.maintenance.record_access(id, started.elapsed());
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
        let record = Self::find_version_row(&self.reader, subject, version)
            .await?
            .ok_or_else(|| {
                StorageError::NotFound(NotFound::Version {
                    subject: subject.clone(),
                    version: version.clone(),
                })
            })?
            .finish(self.objects())
            .await?;
        self.maintenance.record_access(record.id, started.elapsed());
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
                self.maintenance.record_access(record.id, started.elapsed());
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
        let rows = sqlx::query(LIST_VERSIONS)
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
        // Walks the small `subjects` table in name order and probes the live-version index per
        // subject, so a page costs O(limit) index lookups whatever the total number of versions.
        let pattern = query
            .prefix
            .as_deref()
            .map(|p| format!("{}%", escape_like(p)));
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
        let mut page = PostgresBackend::search_statement("", query);
        let rows = page.build().fetch_all(&self.reader).await?;

        let mut count = QueryBuilder::<Postgres>::new("SELECT count(*)");
        Self::push_search_filter(&mut count, query);
        let total: i64 = count.build_query_scalar().fetch_one(&self.reader).await?;

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
            return Err(DomainError::InvalidState(format!(
                "state {state} cannot be set directly; use delete"
            ))
            .into());
        }
        let mut tx = self.begin_write().await?;
        let current: Option<String> =
            sqlx::query_scalar("SELECT state FROM schemas WHERE id = $1 FOR UPDATE")
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
                sqlx::query("UPDATE schemas SET state = $2, updated_at = $3 WHERE id = $1")
                    .bind(id)
                    .bind(state.as_str())
                    .bind(crate::row::now())
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let raw = Self::find_id_row(&mut *tx, id)
            .await?
            .ok_or(StorageError::NotFound(NotFound::Schema(id)))?;
        // Content is read before the commit: if it cannot be read, nothing changes (and no
        // cache is left holding the old state of a committed change).
        let record = raw.finish(self.objects()).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn soft_delete(
        &self,
        subject: &Subject,
        version: &SchemaVersion,
    ) -> StorageResult<SchemaRecord> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(concat!(
            "UPDATE schemas SET state = 'deleted', deleted_at = coalesce(deleted_at, $6),
                    updated_at = CASE WHEN state = 'deleted' THEN updated_at ELSE $6 END
             WHERE subject = $1 AND major = $2 AND minor = $3 AND patch = $4 AND pre = $5
             RETURNING ",
            record_columns!()
        ))
        .bind(subject.as_str())
        .bind(version.major())
        .bind(version.minor())
        .bind(version.patch())
        .bind(version.pre())
        .bind(crate::row::now())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(StorageError::NotFound(NotFound::Version {
                subject: subject.clone(),
                version: version.clone(),
            }));
        };
        // Content is read before the commit: if it cannot be read, nothing changes (and no
        // cache is left holding the old state of a committed change).
        let record = raw_from_row(&row)?.finish(self.objects()).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn soft_delete_subject(&self, subject: &Subject) -> StorageResult<Vec<SchemaRecord>> {
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(concat!(
            "UPDATE schemas SET state = 'deleted', deleted_at = $2, updated_at = $2
             WHERE subject = $1 AND state <> 'deleted'
             RETURNING ",
            record_columns!()
        ))
        .bind(subject.as_str())
        .bind(crate::row::now())
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
        // Serialise with registrations into this subject (one may be about to reference it).
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(subject.as_str())
            .execute(&mut *tx)
            .await?;
        let Some(raw) = Self::find_version_row(&mut *tx, subject, version).await? else {
            return Err(StorageError::NotFound(NotFound::Version {
                subject: subject.clone(),
                version: version.clone(),
            }));
        };
        // What the rules need; the rules themselves are `register::ensure_removable`.
        let referrer: Option<Referrer> = sqlx::query_as(
            "SELECT s.subject, s.major, s.minor, s.patch, s.pre
             FROM schema_dependencies d JOIN schemas s ON s.id = d.schema_id
             WHERE d.depends_on_id = $1 AND s.state <> 'deleted'
             ORDER BY s.subject, s.major, s.minor, s.patch, s.pre_key LIMIT 1
             FOR SHARE OF s",
        )
        .bind(raw.id)
        .fetch_optional(&mut *tx)
        .await?;
        ensure_removable(subject, version, &raw.state, referrer)?;
        let (id, location) = (raw.id, raw.location.clone());
        let record = finish_for_removal(raw, self.objects()).await?;
        sqlx::query("DELETE FROM schemas WHERE id = $1")
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
        let raws = rows
            .iter()
            .map(raw_from_row)
            .collect::<StorageResult<Vec<_>>>()?;
        RawRecord::finish_all(raws, self.objects()).await
    }

    async fn health(&self) -> StorageResult<()> {
        migrate::check_applied(&migrate::POSTGRES, &self.pool).await?;
        if self.read_is_separate() {
            sqlx::query("SELECT 1").execute(&self.reader).await?;
        }
        Ok(())
    }

    fn note_access(&self, id: SchemaId, latency: Duration) {
        self.maintenance.record_access(id, latency);
    }

    async fn run_maintenance(&self) -> StorageResult<()> {
        self.flush_access_log().await?;
        if let Some(tier) = self.objects() {
            reconcile(&self.pool, tier).await?;
        }
        self.refresh_views().await
    }

    async fn presigned_content_url(
        &self,
        id: SchemaId,
        expires_in: Duration,
    ) -> StorageResult<Option<(url::Url, Duration)>> {
        let location: Option<Option<String>> =
            sqlx::query_scalar("SELECT content_location FROM schemas WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.reader)
                .await?;
        crate::objects::presign_location(self.objects(), id, location, expires_in).await
    }

    fn pool_stats(&self) -> Option<(u32, u32)> {
        let mut idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        let mut size = self.pool.size();
        if self.read_is_separate() {
            idle += u32::try_from(self.reader.num_idle()).unwrap_or(u32::MAX);
            size += self.reader.size();
        }
        Some((size.saturating_sub(idle), idle))
    }

    fn tiers(&self) -> Vec<crate::TierHealth> {
        self.objects().map(|t| vec![t.health()]).unwrap_or_default()
    }

    async fn close(&self) {
        PostgresBackend::close(self).await
    }
}

impl PostgresBackend {
    /// The exact search statement [`StorageBackend::search`] runs for `query`, after `prefix`
    /// (empty, or `EXPLAIN (FORMAT JSON) ` to inspect the plan). Public so that tests and
    /// operators can check which indexes a search uses.
    pub fn search_statement<'q>(
        prefix: &str,
        query: &'q SearchQuery,
    ) -> QueryBuilder<'q, Postgres> {
        let mut page = QueryBuilder::<Postgres>::new(prefix);
        page.push(concat!(
            "SELECT s.",
            "id, s.subject, s.major, s.minor, s.patch, s.pre, s.format, s.content_text, s.content_location, s.checksum, s.state, s.description, s.metadata, s.tags, s.refs, s.created_at, s.updated_at"
        ));
        match query.text.as_deref().filter(|t| !t.is_empty()) {
            Some(text) => {
                let pattern = format!("%{}%", escape_like(text));
                page.push(", (CASE WHEN s.subject ILIKE ")
                    .push_bind(pattern.clone())
                    .push(" THEN 4 ELSE 0 END + CASE WHEN s.description ILIKE ")
                    .push_bind(pattern)
                    .push(" THEN 2 ELSE 0 END + CASE WHEN s.search_vector @@ websearch_to_tsquery('simple', ")
                    .push_bind(text.to_string())
                    .push(") THEN 1 ELSE 0 END) AS relevance");
            }
            None => {
                page.push(", 0 AS relevance");
            }
        }
        PostgresBackend::push_search_filter(&mut page, query);
        // Newest first is `created_at` (its index serves an unfiltered listing); the id, a
        // UUIDv7, breaks ties between versions registered in the same microsecond.
        let has_text = query.text.as_deref().is_some_and(|t| !t.is_empty());
        page.push(if has_text {
            " ORDER BY relevance DESC, s.created_at DESC, s.id DESC LIMIT "
        } else {
            " ORDER BY s.created_at DESC, s.id DESC LIMIT "
        })
        .push_bind(i64::from(query.limit))
        .push(" OFFSET ")
        .push_bind(to_i64(query.offset));
        page
    }
}

impl PostgresBackend {
    fn read_is_separate(&self) -> bool {
        // Clones of one pool share their inner state; a separate read URL has its own.
        !std::ptr::eq(
            self.pool.connect_options().as_ref(),
            self.reader.connect_options().as_ref(),
        )
    }
}

/// Moves content kept inline while the object store was down (`content_pending`) to the store.
/// Returns how many rows are still pending.
async fn reconcile(pool: &PgPool, tier: &ObjectTier) -> StorageResult<u64> {
    let rows: Vec<(SchemaId, String, String, String)> = sqlx::query_as(
        "SELECT id, format, content_text, checksum FROM schemas WHERE content_pending LIMIT 100",
    )
    .fetch_all(pool)
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
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 1))")
            .bind(&key)
            .execute(&mut *tx)
            .await?;
        // Under the content lock, make sure the object is still there (a permanent delete of
        // identical content may have removed it since the upload) before pointing to it.
        let Placement::Object(key) = confirm(Some(tier), Placement::Object(key), &content).await?
        else {
            break; // the store went away again: next round
        };
        sqlx::query(
            "UPDATE schemas SET content_text = NULL, content = NULL, content_location = $2, content_pending = false
             WHERE id = $1 AND content_pending",
        )
        .bind(id)
        .bind(&key)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM schemas WHERE content_pending")
        .fetch_one(pool)
        .await?;
    let left = to_u64(left);
    tier.set_pending(left);
    Ok(left)
}
