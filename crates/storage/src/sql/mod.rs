//! The SQL backends' shared half: [`SqlBackend`] implements the storage traits once, over the
//! statements each dialect supplies.
//!
//! A dialect (`sqlite::SqliteDb`, `postgres::PostgresDb`) implements `Database`: the reads it
//! runs on its read pool and a `WriteTx`, an open write transaction with the statements the
//! rules need. Everything else — the order of the steps, what is checked before what, when
//! content is read relative to the commit, which locks come first — is written here once:
//!
//! - `register`: registration (idempotent retry, versions, references);
//! - `lifecycle`: state changes, soft and permanent deletes;
//! - `reconcile`: moving content kept inline while the object store was down, and releasing
//!   an object after a permanent delete;
//! - `rows`: decoding stored rows into validated records.
//! - `shared`: the code of the statements both dialects share, written once over each
//!   dialect's SQL text.
//!
//! **Invariant:** a dialect module holds statements and connection handling, never a rule. Where
//! the databases need different guards for the same rule (PostgreSQL's row locks and advisory
//! locks; SQLite's single write lock makes those no-ops), the difference is in the statement.

pub(crate) mod lifecycle;
mod reconcile;
pub(crate) mod register;
pub(crate) mod rows;
pub(crate) mod shared;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use schema_registry_core::{
    NewSchema, SchemaId, SchemaRecord, SchemaState, SchemaSummary, SchemaVersion, Subject,
};

use crate::background::Periodic;
use crate::objects::{place, ObjectTier, Placement};
use crate::{
    NotFound, Operations, Page, Registered, SearchQuery, StorageBackend, StorageError,
    StorageResult, StorageStats, SubjectQuery, SubjectSummary, TierHealth,
};
use lifecycle::Referrer;
use register::{register_in, WriteStatements};
use rows::{PendingRow, RawRecord};

/// Which way a dependency walk goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Walk {
    /// What a version references.
    Dependencies,
    /// What references a version.
    Dependents,
}

/// An open write transaction: the statements registration needs ([`WriteStatements`]) and those
/// of the other writes. Dropping it without [`WriteTx::commit`] rolls back.
#[async_trait]
pub(crate) trait WriteTx: WriteStatements {
    /// A row of this transaction's snapshot.
    async fn fetch_raw(&mut self, id: SchemaId) -> StorageResult<Option<RawRecord>>;
    /// The state of `id`, locked against concurrent changes until the transaction ends.
    async fn state_for_update(&mut self, id: SchemaId) -> StorageResult<Option<String>>;
    async fn update_state(
        &mut self,
        id: SchemaId,
        state: SchemaState,
        now: DateTime<Utc>,
    ) -> StorageResult<()>;
    async fn find_version(
        &mut self,
        subject: &Subject,
        version: &SchemaVersion,
    ) -> StorageResult<Option<RawRecord>>;
    /// Marks the version deleted unless it already is (then it is left as it was) and returns
    /// it as it is now; `None` when it does not exist.
    async fn mark_version_deleted(
        &mut self,
        subject: &Subject,
        version: &SchemaVersion,
        now: DateTime<Utc>,
    ) -> StorageResult<Option<RawRecord>>;
    /// Marks every live version of `subject` deleted and returns them as they are now.
    async fn mark_subject_deleted(
        &mut self,
        subject: &Subject,
        now: DateTime<Utc>,
    ) -> StorageResult<Vec<RawRecord>>;
    /// The first live version (by subject, then version) that references `id`, locked so it
    /// cannot appear or change state before the transaction ends.
    async fn live_referrer(&mut self, id: SchemaId) -> StorageResult<Option<Referrer>>;
    async fn delete_row(&mut self, id: SchemaId) -> StorageResult<()>;
    /// How many rows point to the object `key`.
    async fn rows_pointing_to(&mut self, key: &str) -> StorageResult<u64>;
    /// Points a `content_pending` row at its object and drops the inline copy; a row no longer
    /// pending is left alone.
    async fn point_to_object(&mut self, id: SchemaId, key: &str) -> StorageResult<()>;
    async fn commit(self) -> StorageResult<()>
    where
        Self: Sized;
}

/// The reads of a dialect, on its read pool (see `shared` for their code).
#[async_trait]
pub(crate) trait Reads {
    async fn by_id(&self, id: SchemaId) -> StorageResult<Option<RawRecord>>;
    async fn by_version(
        &self,
        subject: &Subject,
        version: &SchemaVersion,
    ) -> StorageResult<Option<RawRecord>>;
    /// The version `latest` resolves to.
    async fn latest(&self, subject: &Subject) -> StorageResult<Option<RawRecord>>;
    /// The subject's versions in ascending order; empty when none matches.
    async fn versions(
        &self,
        subject: &Subject,
        include_deleted: bool,
    ) -> StorageResult<Vec<SchemaVersion>>;
    async fn subjects(&self, query: &SubjectQuery) -> StorageResult<Page<SubjectSummary>>;
    async fn exists(&self, id: SchemaId) -> StorageResult<bool>;
    /// One walk from `id` (which exists), ordered by depth, then subject and version.
    async fn walk(
        &self,
        walk: Walk,
        id: SchemaId,
        transitive: bool,
    ) -> StorageResult<Vec<SchemaSummary>>;
    async fn statistics(&self) -> StorageResult<StorageStats>;
    /// The most read live versions, most read first.
    async fn popular(&self, limit: u32) -> StorageResult<Vec<RawRecord>>;
    /// `content_location` of `id`: `None` when there is no such row.
    async fn content_location(&self, id: SchemaId) -> StorageResult<Option<Option<String>>>;
    /// Up to `limit` rows whose content waits for the object store.
    async fn pending(&self, limit: u32) -> StorageResult<Vec<PendingRow>>;
    async fn count_pending(&self) -> StorageResult<u64>;
}

/// A dialect: its reads, how it opens a write transaction, its search, and its background work.
#[async_trait]
pub(crate) trait Database: Reads + Send + Sync + std::fmt::Debug + 'static {
    type Tx: WriteTx + Send;

    /// Short name for logs and health output.
    const KIND: &'static str;

    async fn begin_write(&self) -> StorageResult<Self::Tx>;

    async fn search(&self, query: &SearchQuery) -> StorageResult<Page<RawRecord>>;

    /// Counts a read for the access log (buffered, never blocks).
    fn record_access(&self, id: SchemaId, latency: Duration);
    /// Writes buffered read counts now (a background task does it on a timer).
    async fn flush_access(&self) -> StorageResult<()>;
    /// Refreshes derived data (PostgreSQL's materialized views) now.
    async fn refresh_derived(&self) -> StorageResult<()> {
        Ok(())
    }
    /// Reachable, and the migrations applied.
    async fn health(&self) -> StorageResult<()>;
    /// Connections: (in use, idle).
    fn pool_stats(&self) -> (u32, u32);
    /// Stops background work, flushes buffers and closes the pools.
    async fn close(&self);

    /// A registration this dialect can make without the locked path (PostgreSQL's optimistic
    /// one); `None` to take the locked path. Called only for content that stays inline.
    async fn register_unlocked(
        &self,
        _new: &NewSchema,
        _placement: &Placement,
        _objects: Option<&ObjectTier>,
    ) -> StorageResult<Option<Registered>> {
        Ok(None)
    }
}

/// A SQL backend: a dialect, the object tier it routes large content to, and the reconciler
/// that moves content kept inline while that tier was down.
#[derive(Debug, Clone)]
pub struct SqlBackend<D> {
    pub(crate) db: D,
    objects: Option<Arc<ObjectTier>>,
    reconciler: Option<Arc<Periodic>>,
}

// `Database` stays crate-private: callers name only `SqliteBackend` and `PostgresBackend`, and
// the statements behind them are no API.
#[allow(private_bounds)]
impl<D: Database + Clone> SqlBackend<D> {
    /// Wraps an opened dialect and starts the reconciler when there is an object tier.
    pub(crate) fn new(db: D, objects: Option<Arc<ObjectTier>>) -> Self {
        let reconciler = objects.as_ref().map(|tier| {
            let (db, tier) = (db.clone(), tier.clone());
            Arc::new(Periodic::spawn(tier.reconcile_interval(), move || {
                let (db, tier) = (db.clone(), tier.clone());
                async move {
                    if let Err(e) = reconcile::reconcile(&db, &tier).await {
                        tracing::warn!(error = %e, "moving pending content to object storage failed");
                    }
                }
            }))
        });
        SqlBackend {
            db,
            objects,
            reconciler,
        }
    }
}

#[allow(private_bounds)]
impl<D: Database> SqlBackend<D> {
    fn objects(&self) -> Option<&ObjectTier> {
        self.objects.as_deref()
    }

    /// A point read: the row, its content, and a counted access.
    async fn read(
        &self,
        row: StorageResult<Option<RawRecord>>,
        missing: impl FnOnce() -> StorageError,
        started: std::time::Instant,
    ) -> StorageResult<SchemaRecord> {
        let raw = row?.ok_or_else(missing)?;
        let record = raw.finish(self.objects()).await?;
        self.db.record_access(record.id, started.elapsed());
        Ok(record)
    }

    async fn walk(
        &self,
        walk: Walk,
        id: SchemaId,
        transitive: bool,
    ) -> StorageResult<Vec<SchemaSummary>> {
        if !self.db.exists(id).await? {
            return Err(StorageError::NotFound(NotFound::Schema(id)));
        }
        self.db.walk(walk, id, transitive).await
    }

    /// Stops the reconciler, then the dialect's own background work, and closes the pools.
    pub async fn close(&self) {
        if let Some(r) = &self.reconciler {
            r.stop().await;
        }
        self.db.close().await;
    }
}

#[async_trait]
impl<D: Database> StorageBackend for SqlBackend<D> {
    async fn register(&self, schema: NewSchema) -> StorageResult<Registered> {
        let placement = place(self.objects(), &schema.content).await?;
        if !matches!(placement, Placement::Object(_)) {
            if let Some(registered) = self
                .db
                .register_unlocked(&schema, &placement, self.objects())
                .await?
            {
                return Ok(registered);
            }
        }
        let mut tx = self.db.begin_write().await?;
        let registered = register_in(&mut tx, &schema, &placement, self.objects()).await?;
        tx.commit().await?;
        Ok(registered)
    }

    async fn register_all(&self, schemas: Vec<NewSchema>) -> StorageResult<Vec<Registered>> {
        let mut placements = Vec::with_capacity(schemas.len());
        for schema in &schemas {
            placements.push(place(self.objects(), &schema.content).await?);
        }
        let mut tx = self.db.begin_write().await?;
        register::lock_batch(&mut tx, &schemas, &placements).await?;
        let mut out = Vec::with_capacity(schemas.len());
        for (schema, placement) in schemas.iter().zip(&placements) {
            out.push(register_in(&mut tx, schema, placement, self.objects()).await?);
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn get_by_id(&self, id: SchemaId) -> StorageResult<SchemaRecord> {
        let started = std::time::Instant::now();
        let row = self.db.by_id(id).await;
        self.read(
            row,
            || StorageError::NotFound(NotFound::Schema(id)),
            started,
        )
        .await
    }

    async fn get_version(
        &self,
        subject: &Subject,
        version: &SchemaVersion,
    ) -> StorageResult<SchemaRecord> {
        let started = std::time::Instant::now();
        let row = self.db.by_version(subject, version).await;
        let missing = || StorageError::version_not_found(subject, version);
        self.read(row, missing, started).await
    }

    async fn get_latest(&self, subject: &Subject) -> StorageResult<SchemaRecord> {
        let started = std::time::Instant::now();
        let row = self.db.latest(subject).await;
        let missing = || StorageError::NotFound(NotFound::Subject(subject.clone()));
        self.read(row, missing, started).await
    }

    async fn list_versions(
        &self,
        subject: &Subject,
        include_deleted: bool,
    ) -> StorageResult<Vec<SchemaVersion>> {
        let versions = self.db.versions(subject, include_deleted).await?;
        if versions.is_empty() {
            return Err(StorageError::NotFound(NotFound::Subject(subject.clone())));
        }
        Ok(versions)
    }

    async fn list_subjects(&self, query: &SubjectQuery) -> StorageResult<Page<SubjectSummary>> {
        self.db.subjects(query).await
    }

    async fn search(&self, query: &SearchQuery) -> StorageResult<Page<SchemaRecord>> {
        let page = self.db.search(query).await?;
        Ok(Page {
            items: RawRecord::finish_all(page.items, self.objects()).await?,
            total: page.total,
        })
    }

    async fn set_state(&self, id: SchemaId, state: SchemaState) -> StorageResult<SchemaRecord> {
        lifecycle::set_state(&self.db, self.objects(), id, state).await
    }

    async fn soft_delete(
        &self,
        subject: &Subject,
        version: &SchemaVersion,
    ) -> StorageResult<SchemaRecord> {
        lifecycle::soft_delete(&self.db, self.objects(), subject, version).await
    }

    async fn soft_delete_subject(&self, subject: &Subject) -> StorageResult<Vec<SchemaRecord>> {
        lifecycle::soft_delete_subject(&self.db, self.objects(), subject).await
    }

    async fn hard_delete(
        &self,
        subject: &Subject,
        version: &SchemaVersion,
    ) -> StorageResult<SchemaRecord> {
        lifecycle::hard_delete(&self.db, self.objects(), subject, version).await
    }

    async fn dependencies(
        &self,
        id: SchemaId,
        transitive: bool,
    ) -> StorageResult<Vec<SchemaSummary>> {
        self.walk(Walk::Dependencies, id, transitive).await
    }

    async fn dependents(
        &self,
        id: SchemaId,
        transitive: bool,
    ) -> StorageResult<Vec<SchemaSummary>> {
        self.walk(Walk::Dependents, id, transitive).await
    }

    async fn statistics(&self) -> StorageResult<StorageStats> {
        self.db.statistics().await
    }

    async fn popular(&self, limit: u32) -> StorageResult<Vec<SchemaRecord>> {
        let raws = self.db.popular(limit).await?;
        RawRecord::finish_all(raws, self.objects()).await
    }

    async fn presigned_content_url(
        &self,
        id: SchemaId,
        expires_in: Duration,
    ) -> StorageResult<Option<(url::Url, Duration)>> {
        let location = self.db.content_location(id).await?;
        crate::objects::presign_location(self.objects(), id, location, expires_in).await
    }

    fn note_access(&self, id: SchemaId, latency: Duration) {
        self.db.record_access(id, latency);
    }
}

#[async_trait]
impl<D: Database> Operations for SqlBackend<D> {
    fn kind(&self) -> &'static str {
        D::KIND
    }

    async fn health(&self) -> StorageResult<()> {
        self.db.health().await
    }

    fn pool_stats(&self) -> Option<(u32, u32)> {
        Some(self.db.pool_stats())
    }

    fn tiers(&self) -> Vec<TierHealth> {
        self.objects().map(|t| vec![t.health()]).unwrap_or_default()
    }

    async fn run_maintenance(&self) -> StorageResult<()> {
        self.db.flush_access().await?;
        if let Some(tier) = self.objects() {
            reconcile::reconcile(&self.db, tier).await?;
        }
        self.db.refresh_derived().await
    }

    async fn close(&self) {
        SqlBackend::close(self).await
    }
}
