//! The storage traits: [`StorageBackend`] (the data operations), [`Operations`] (the
//! operational ones) and [`Storage`] (both), one vocabulary for every backend and wrapper.
//!
//! They are object-safe (`Arc<dyn Storage>`), so the server picks a backend at start-up from
//! configuration, and wrappers (the cache tier, the metrics decorator) implement the same traits
//! around an inner stack, writing only what they change. The object tier is not a wrapper: the SQL backends route large
//! content to it themselves, because the row and the object must agree inside one transaction.

use async_trait::async_trait;
use std::sync::Arc;

use schema_registry_core::{
    NewSchema, SchemaFormat, SchemaId, SchemaRecord, SchemaState, SchemaSummary, SchemaVersion,
    Subject,
};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::{EncodedRecord, StorageResult};

/// The outcome of a registration.
#[derive(Debug, Clone)]
pub struct Registered {
    pub record: SchemaRecord,
    /// `false` when an identical schema (same checksum and format) was already registered under
    /// the subject and is returned instead: registration is an idempotent retry.
    pub created: bool,
}

/// A page of results and the total number that match.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
}

/// One row of the subject listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubjectSummary {
    pub subject: Subject,
    /// The version `latest` resolves to.
    pub latest_version: SchemaVersion,
    /// Versions that are not deleted.
    pub version_count: u64,
}

/// Default and largest page sizes for listings and search.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Filter and page for [`StorageBackend::list_subjects`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectQuery {
    /// Only subjects starting with this (byte-wise, case-sensitive).
    pub prefix: Option<String>,
    pub limit: u32,
    pub offset: u64,
}

impl Default for SubjectQuery {
    fn default() -> Self {
        SubjectQuery {
            prefix: None,
            limit: DEFAULT_PAGE_SIZE,
            offset: 0,
        }
    }
}

/// Filter, ranking and page for [`StorageBackend::search`].
///
/// All given filters must hold (AND). Deleted versions are excluded unless `state` asks for
/// them explicitly. Results are ordered by relevance to `text` (a match in the subject ranks
/// above one in the description, which ranks above one in the schema text), then newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    /// Free text, matched case-insensitively against subject, description and schema text.
    pub text: Option<String>,
    pub subject_prefix: Option<String>,
    /// Every tag must be present.
    pub tags: Vec<String>,
    pub format: Option<SchemaFormat>,
    pub state: Option<SchemaState>,
    /// Every key must be present in the version's metadata with exactly this JSON value
    /// (containment, as PostgreSQL's `@>`).
    pub metadata: Map<String, Value>,
    pub limit: u32,
    pub offset: u64,
}

impl Default for SearchQuery {
    fn default() -> Self {
        SearchQuery {
            text: None,
            subject_prefix: None,
            tags: Vec::new(),
            format: None,
            state: None,
            metadata: Map::new(),
            limit: DEFAULT_PAGE_SIZE,
            offset: 0,
        }
    }
}

/// Counts over everything stored (soft-deleted versions included in `schemas` and `bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct StorageStats {
    pub schemas: u64,
    /// Subjects with at least one version that is not deleted.
    pub subjects: u64,
    pub active: u64,
    pub deprecated: u64,
    pub deleted: u64,
    /// Total size of all stored schema documents.
    pub bytes: u64,
}

/// Counters of the cache tier, as `/api/v1/stats` shows them.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct CacheStats {
    pub l1_hits: u64,
    pub l2_hits: u64,
    pub misses: u64,
    /// (l1_hits + l2_hits) / lookups; 0 before the first lookup.
    pub hit_rate: f64,
    pub l1_entries: u64,
    /// L1 entries removed for size or age.
    pub evictions: u64,
    pub l2_errors: u64,
    /// `up`, `degraded` or `disabled`.
    pub l2_state: &'static str,
}

/// One tier's health.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TierHealth {
    pub name: &'static str,
    /// `up`, `degraded` or `disabled`.
    pub status: &'static str,
    /// Tier-specific details (entry counts, errors).
    pub detail: Value,
}

/// A point read: the three lookups clients make on every request.
#[derive(Debug, Clone, Copy)]
pub enum PointRead<'a> {
    Id(SchemaId),
    Version(&'a Subject, &'a SchemaVersion),
    Latest(&'a Subject),
}

impl PointRead<'_> {
    /// The operation's name, as the plain method is called (metrics, logs).
    pub fn operation(&self) -> &'static str {
        match self {
            PointRead::Id(_) => "get_by_id",
            PointRead::Version(..) => "get_version",
            PointRead::Latest(_) => "get_latest",
        }
    }
}

/// The data operations the registry is built on.
///
/// # Contract (checked for every backend and wrapper by the conformance suite, `conformance`)
/// - `register` is atomic with its references and race-free: concurrent registrations into one
///   subject never produce the same version twice, and an auto-assigned version is strictly
///   greater than every version the subject has ever had.
/// - A write is durable when the call returns `Ok`.
/// - `latest` is the highest non-deleted release; if the subject has only pre-releases, the
///   highest non-deleted pre-release.
/// - Ids never change and are never reused.
#[async_trait]
pub trait StorageBackend: Send + Sync + std::fmt::Debug + 'static {
    /// Registers a version. Returns the existing record (with `created: false`) when the subject
    /// already has a non-deleted version with the same checksum and format and the request does
    /// not ask for a different exact version.
    async fn register(&self, schema: NewSchema) -> StorageResult<Registered>;

    /// Registers several versions in one transaction: all commit or none do. Later entries may
    /// reference earlier ones.
    async fn register_all(&self, schemas: Vec<NewSchema>) -> StorageResult<Vec<Registered>>;

    /// Any version by id, whatever its state.
    async fn get_by_id(&self, id: SchemaId) -> StorageResult<SchemaRecord>;

    /// A version by subject and exact version, whatever its state.
    async fn get_version(
        &self,
        subject: &Subject,
        version: &SchemaVersion,
    ) -> StorageResult<SchemaRecord>;

    /// The version `latest` resolves to (see the contract above).
    async fn get_latest(&self, subject: &Subject) -> StorageResult<SchemaRecord>;

    /// A point read answered as an [`EncodedRecord`]. The default makes the plain read and
    /// encodes nothing (the interface encodes what it sends); the cache tier answers with the
    /// entry it holds, whose encodings it made once, so a hot read serialises nothing.
    async fn get_encoded(&self, read: PointRead<'_>) -> StorageResult<Arc<EncodedRecord>> {
        let record = match read {
            PointRead::Id(id) => self.get_by_id(id).await?,
            PointRead::Version(subject, version) => self.get_version(subject, version).await?,
            PointRead::Latest(subject) => self.get_latest(subject).await?,
        };
        Ok(Arc::new(EncodedRecord::new(record, &[])))
    }

    /// The subject's versions in ascending semver order. Not found when there is none to list.
    async fn list_versions(
        &self,
        subject: &Subject,
        include_deleted: bool,
    ) -> StorageResult<Vec<SchemaVersion>>;

    /// Subjects with at least one non-deleted version, ordered by name.
    async fn list_subjects(&self, query: &SubjectQuery) -> StorageResult<Page<SubjectSummary>>;

    async fn search(&self, query: &SearchQuery) -> StorageResult<Page<SchemaRecord>>;

    /// Sets `active` or `deprecated`. A deleted version is a conflict.
    async fn set_state(&self, id: SchemaId, state: SchemaState) -> StorageResult<SchemaRecord>;

    /// Marks a version deleted: hidden from `latest`, listings and search, still readable by id.
    /// Deleting a deleted version is a no-op that returns it.
    async fn soft_delete(
        &self,
        subject: &Subject,
        version: &SchemaVersion,
    ) -> StorageResult<SchemaRecord>;

    /// Soft-deletes every version of a subject; returns the versions it deleted (as they are
    /// now), in ascending version order.
    async fn soft_delete_subject(&self, subject: &Subject) -> StorageResult<Vec<SchemaRecord>>;

    /// Removes a soft-deleted version for good. A conflict unless it was soft-deleted first, or
    /// while a version that is not deleted references it. Returns the removed record.
    async fn hard_delete(
        &self,
        subject: &Subject,
        version: &SchemaVersion,
    ) -> StorageResult<SchemaRecord>;

    /// What `id` references: directly, or transitively (every version reachable), each once
    /// at its shortest depth, ordered by depth then subject and version.
    async fn dependencies(
        &self,
        id: SchemaId,
        transitive: bool,
    ) -> StorageResult<Vec<SchemaSummary>>;

    /// What references `id`, directly or transitively; same ordering as `dependencies`.
    async fn dependents(&self, id: SchemaId, transitive: bool)
        -> StorageResult<Vec<SchemaSummary>>;

    async fn statistics(&self) -> StorageResult<StorageStats>;

    /// The most read non-deleted versions, most read first, at most `limit`: the cache-warming
    /// source. Read counts are buffered in memory and written in batches, so this lags reads by
    /// up to one flush interval (and, on PostgreSQL, one materialized-view refresh).
    async fn popular(&self, limit: u32) -> StorageResult<Vec<SchemaRecord>>;

    /// A time-limited URL from which the content of `id` can be fetched directly, when it is held
    /// in an object store that can sign URLs (S3); `None` when the caller must serve it itself
    /// (inline content, or a local directory). `expires_in` is capped by the tier's maximum; the
    /// lifetime granted is returned with the URL.
    async fn presigned_content_url(
        &self,
        id: SchemaId,
        expires_in: std::time::Duration,
    ) -> StorageResult<Option<(url::Url, std::time::Duration)>>;

    /// Counts a read served without asking this backend (a cache hit), so that `popular` still
    /// reflects what clients read. Must not block.
    fn note_access(&self, id: SchemaId, latency: std::time::Duration);
}

/// The operational side of a storage stack: health, pools, tiers, background work, shutdown.
///
/// Every method has a default that asks [`Operations::inner`], the layer below: a wrapper
/// returns its inner stack there and overrides only what it adds (the cache its statistics and
/// its tiers), and a backend, which has no inner layer, overrides what it has. The leaf
/// defaults are "nothing to report".
#[async_trait]
pub trait Operations: Send + Sync + std::fmt::Debug + 'static {
    /// The layer this one wraps; `None` for a backend.
    fn inner(&self) -> Option<&dyn Operations> {
        None
    }

    /// Short name of the backend for logs and health output (`sqlite`, `postgres`).
    fn kind(&self) -> &'static str {
        self.inner().map_or("unknown", Operations::kind)
    }

    /// Checks the backend is reachable and its migrations are applied.
    async fn health(&self) -> StorageResult<()> {
        match self.inner() {
            Some(inner) => inner.health().await,
            None => Ok(()),
        }
    }

    /// Connections of the database pools: (in use, idle).
    fn pool_stats(&self) -> Option<(u32, u32)> {
        self.inner().and_then(Operations::pool_stats)
    }

    /// Cache statistics, when this is (or wraps) a cache.
    fn cache_stats(&self) -> Option<CacheStats> {
        self.inner().and_then(Operations::cache_stats)
    }

    /// The state of each tier besides the database (cache tiers, object storage), for health
    /// reports, outermost first.
    fn tiers(&self) -> Vec<TierHealth> {
        self.inner().map(Operations::tiers).unwrap_or_default()
    }

    /// Runs the periodic background work now: writes buffered read counts and refreshes derived
    /// views. Background tasks do this on timers; tests and operators call it to not wait.
    async fn run_maintenance(&self) -> StorageResult<()> {
        match self.inner() {
            Some(inner) => inner.run_maintenance().await,
            None => Ok(()),
        }
    }

    /// Finishes background work (flushes buffers) and closes connections. Called once at
    /// shutdown, after the last request.
    async fn close(&self) {
        if let Some(inner) = self.inner() {
            inner.close().await;
        }
    }
}

/// A whole storage stack: the data operations and the operational ones. What the layers above
/// hold, as `Arc<dyn Storage>`.
pub trait Storage: StorageBackend + Operations {}

impl<T: StorageBackend + Operations> Storage for T {}
