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
//! - `queries`: the SQL text of the statements both dialects share (their code is
//!   `sql::shared`'s);
//! - `statements`: the locked write transaction, and the statements that are PostgreSQL's
//!   alone;
//! - `registration`: the one-statement insert and the optimistic path;
//! - `search`: the search statement builder;
//! - `maintenance`: the access-log flush and the materialized-view refresh.

mod maintenance;
mod queries;
mod registration;
mod search;
mod statements;

pub use queries::{LIST_VERSIONS, SELECT_BY_ID, SELECT_BY_VERSION, SELECT_LATEST};

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use schema_registry_core::{DomainError, NewSchema, SchemaId};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::Row;

use crate::objects::{ObjectTier, Placement};
use crate::sql::rows::{common_columns, Columns, RawRecord};
use crate::sql::{Database, SqlBackend};
use crate::{migrate, Page, Registered, SearchQuery, StorageError, StorageResult};

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

    async fn search(&self, query: &SearchQuery) -> StorageResult<Page<RawRecord>> {
        search::search(&self.reader, query).await
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
