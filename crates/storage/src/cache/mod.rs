//! The multi-tier cache: [`CachedBackend`] wraps any [`StorageBackend`] and serves the three
//! lookups clients make on every request — by id, by subject and version, and `latest` — from
//! L1 (in-process, [`l1`]) and L2 (Redis, [`l2`]) before the database. Backends stay cache-free;
//! the cache is never the source of truth.
//!
//! # Layout
//! - [`keys`]: cache keys, the epochs that guard them, and what each write invalidates.
//! - [`l1`]: moka, bounded by entries, bytes and time; the fill guard.
//! - [`l2`]: Redis: epoch-checked fills, pipelined invalidation, pub/sub, breaker.
//! - [`codec`]: the L2 value encoding (MessagePack).
//! - [`breaker`]: the circuit breaker in front of Redis.
//!
//! # Consistency
//! Every write invalidates precisely what it changed — never the whole cache — in L1 before the
//! write returns, and in L2 and every other server's L1 through Redis. A read that raced a write
//! cannot store the old value afterwards (epochs). Without Redis, L1 is exact for one server;
//! several servers on one database need Redis for cross-server invalidation. While this server
//! is not subscribed to invalidations (Redis down), L1 entries older than
//! `degraded_max_age` are not served, which bounds staleness from other servers' writes.

pub mod breaker;
pub mod codec;
pub mod keys;
pub mod l1;
pub mod l2;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use schema_registry_core::{
    NewSchema, SchemaId, SchemaRecord, SchemaState, SchemaSummary, SchemaVersion, Subject,
};
use serde_json::json;
use tokio::task::JoinHandle;

use self::keys::{CacheKey, Invalidation};
use self::l1::{L1Options, L1};
use self::l2::{L2Options, L2};
use crate::{
    CacheStats, EncodedRecord, Encoding, Operations, Page, PointRead, Registered, SearchQuery,
    Storage, StorageBackend, StorageResult, StorageStats, SubjectQuery, SubjectSummary, TierHealth,
};

/// Cache configuration. L1 is bounded by memory (256 MiB) rather than by an entry count: see
/// [`l1`] for why.
#[derive(Debug, Clone)]
pub struct CacheOptions {
    pub l1_max_entries: u64,
    /// Bytes L1 may hold: content, its JSON encoding and a per-entry allowance.
    pub l1_max_bytes: u64,
    pub l1_ttl: Duration,
    pub l1_tti: Duration,
    /// Redis URL; `None` runs with L1 only.
    pub redis_url: Option<String>,
    /// CA certificate (PEM) for `rediss://` with a private CA.
    pub redis_ca_cert: Option<std::path::PathBuf>,
    pub l2_ttl: Duration,
    pub l2_timeout: Duration,
    pub key_prefix: String,
    pub breaker_threshold: u32,
    pub breaker_cooldown: Duration,
    /// While invalidations from other servers may be missed, L1 entries older than this are
    /// not served.
    pub degraded_max_age: Duration,
    /// The wire encodings each entry holds, made once when it is filled: one per interface the
    /// server runs. An interface asks for its own with `EncodedRecord::encoding` and encodes
    /// the record itself when the entry lacks it.
    pub encodings: Vec<&'static Encoding>,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            l1_max_entries: 1_000_000,
            l1_max_bytes: 256 * 1024 * 1024,
            l1_ttl: Duration::from_secs(3600),
            l1_tti: Duration::from_secs(1800),
            redis_url: None,
            redis_ca_cert: None,
            l2_ttl: Duration::from_secs(3600),
            l2_timeout: Duration::from_millis(250),
            key_prefix: "schema-registry".into(),
            breaker_threshold: 3,
            breaker_cooldown: Duration::from_secs(5),
            degraded_max_age: Duration::from_secs(5),
            encodings: Vec::new(),
        }
    }
}

impl CacheOptions {
    /// The L1 part of these options: what [`CachedBackend::new`] builds its L1 from.
    pub fn l1_options(&self) -> L1Options {
        L1Options {
            max_entries: self.l1_max_entries,
            byte_budget: self.l1_max_bytes,
            ttl: self.l1_ttl,
            tti: self.l1_tti,
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    l1_hits: AtomicU64,
    l2_hits: AtomicU64,
    misses: AtomicU64,
}

/// A [`StorageBackend`] with L1 and (optionally) L2 in front of another one.
#[derive(Debug)]
pub struct CachedBackend {
    inner: Arc<dyn Storage>,
    l1: Arc<L1>,
    l2: Option<Arc<L2>>,
    counters: Counters,
    degraded_max_age: Duration,
    /// What each entry holds besides the record (see `CacheOptions::encodings`).
    encodings: Vec<&'static Encoding>,
    subscriber: Mutex<Option<JoinHandle<()>>>,
}

impl CachedBackend {
    /// Wraps `inner`. With a Redis URL, starts the invalidation subscriber (the connection
    /// itself is lazy: Redis may be down now).
    pub fn new(inner: Arc<dyn Storage>, options: CacheOptions) -> StorageResult<Self> {
        let l1 = Arc::new(L1::new(&options.l1_options()));
        let l2 = match &options.redis_url {
            Some(url) => Some(Arc::new(L2::new(L2Options {
                url: url.clone(),
                ttl: options.l2_ttl,
                timeout: options.l2_timeout,
                prefix: options.key_prefix.clone(),
                ca_cert: options.redis_ca_cert.clone(),
                breaker_threshold: options.breaker_threshold,
                breaker_cooldown: options.breaker_cooldown,
            })?)),
            None => None,
        };
        let subscriber = l2
            .as_ref()
            .map(|l2| tokio::spawn(l2.clone().subscribe_loop(l1.clone())));
        Ok(CachedBackend {
            inner,
            l1,
            l2,
            counters: Counters::default(),
            degraded_max_age: options.degraded_max_age,
            encodings: options.encodings,
            subscriber: Mutex::new(subscriber),
        })
    }

    /// Waits (at most `budget`) for the invalidation subscription, then loads the `limit` most
    /// read versions into L1 and L2. Returns how many were loaded.
    pub async fn warm(&self, limit: u32, budget: Duration) -> usize {
        let started = Instant::now();
        let deadline = started + budget;
        if let Some(l2) = &self.l2 {
            while !l2.is_subscribed() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, self.warm_now(limit)).await {
            Ok(Ok(n)) => {
                tracing::info!(
                    loaded = n,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "cache warmed"
                );
                n
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cache warming failed; starting cold");
                0
            }
            Err(_) => {
                tracing::warn!(
                    budget_ms = budget.as_millis() as u64,
                    "cache warming ran out of time; starting partly cold"
                );
                0
            }
        }
    }

    async fn warm_now(&self, limit: u32) -> StorageResult<usize> {
        if limit == 0 {
            return Ok(0);
        }
        let popular = self.inner.popular(limit).await?;
        let keys: Vec<CacheKey> = popular.iter().map(|r| CacheKey::Id(r.id)).collect();
        // Epochs are read before the records are used: a write in between blocks the fill.
        let l1_epochs: Vec<u64> = keys.iter().map(|k| self.l1.epoch(k)).collect();
        let l2_epochs = match &self.l2 {
            Some(l2) if l2.ready().await => l2.epochs(&keys).await.ok(),
            _ => None,
        };
        let fresh = self.inner.popular(limit).await?;
        let fresh: std::collections::HashMap<SchemaId, SchemaRecord> =
            fresh.into_iter().map(|r| (r.id, r)).collect();
        let mut l2_entries = Vec::new();
        for ((key, epoch), i) in keys.iter().zip(&l1_epochs).zip(0..) {
            let CacheKey::Id(id) = key else { continue };
            let Some(record) = fresh.get(id) else {
                continue;
            };
            self.l1
                .fill(key.clone(), Arc::new(self.encode(record.clone())), *epoch)
                .await;
            if let Some(e) = l2_epochs.as_ref().and_then(|es| es.get(i)) {
                l2_entries.push((key.clone(), record.clone(), e.clone()));
            }
        }
        if let Some(l2) = &self.l2 {
            if let Err(e) = l2.fill_many(&l2_entries).await {
                tracing::warn!(error = %e, "warming L2 failed");
            }
        }
        Ok(fresh.len())
    }

    /// How old an L1 entry may be to be served now.
    fn l1_max_age(&self) -> Option<Duration> {
        match &self.l2 {
            Some(l2) if !l2.is_subscribed() => Some(self.degraded_max_age),
            _ => None,
        }
    }

    /// L1, then L2, then `load`; fills the tiers it missed. L1 holds each record with its JSON
    /// encoding, made here once per fill, so the HTTP layer's hit costs no serialisation.
    async fn lookup<F>(&self, key: CacheKey, load: F) -> StorageResult<Arc<EncodedRecord>>
    where
        F: std::future::Future<Output = StorageResult<SchemaRecord>>,
    {
        if let Some(hit) = self.l1.get(&key, self.l1_max_age()).await {
            self.counters.l1_hits.fetch_add(1, Ordering::Relaxed);
            // An L1 hit takes well under the log's one-microsecond resolution: it is counted
            // as taking none, which spares the hot path two clock reads.
            self.inner
                .note_access(hit.encoded.record.id, Duration::ZERO);
            return Ok(hit.encoded);
        }
        let started = Instant::now();
        // Noted after the L1 miss but before L2 or the database is read: that is all the fill
        // guard needs, and a hit does not pay for hashing the epoch key.
        let l1_epoch = self.l1.epoch(&key);
        let mut l2_epoch = None;
        if let Some(l2) = &self.l2 {
            if l2.ready().await {
                match l2.get(&key).await {
                    Ok(found) => match found.record {
                        Some(record) => {
                            self.counters.l2_hits.fetch_add(1, Ordering::Relaxed);
                            self.inner.note_access(record.id, started.elapsed());
                            let encoded = Arc::new(self.encode(record));
                            self.l1.fill(key, encoded.clone(), l1_epoch).await;
                            return Ok(encoded);
                        }
                        None => l2_epoch = Some(found.epoch),
                    },
                    Err(e) => tracing::debug!(error = %e, "L2 read failed; going to the database"),
                }
            }
        }
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
        let record = load.await?;
        if let (Some(l2), Some(epoch)) = (&self.l2, l2_epoch) {
            if let Err(e) = l2.fill(&key, &record, &epoch).await {
                tracing::debug!(error = %e, "L2 fill failed");
            }
        }
        let encoded = Arc::new(self.encode(record));
        self.l1.fill(key, encoded.clone(), l1_epoch).await;
        Ok(encoded)
    }

    /// Stores newly created versions in L2 under their id and their (subject, version), so that
    /// the first read of a new version (clients fetch what they just registered, and every other
    /// server reads it from Redis) is a hit rather than a database query. Safe without a prior
    /// epoch read: the fills expect the fresh id's epoch to be absent, and any write that has
    /// touched the version since (a state change, a delete) created it ([`L2::fill_new`]). `latest`
    /// is not written through: whether the new version is the subject's latest needs the
    /// database. L1 is not filled here either: its epochs are striped and cannot tell "never
    /// touched"; the first read fills it from L2. A failure only costs that first read a miss.
    async fn write_through(&self, registered: &[Registered]) {
        let Some(l2) = &self.l2 else { return };
        let created: Vec<&SchemaRecord> = registered
            .iter()
            .filter(|r| r.created)
            .map(|r| &r.record)
            .collect();
        if created.is_empty() || !l2.ready().await {
            return;
        }
        if let Err(e) = l2.fill_new(&created).await {
            tracing::debug!(error = %e, "L2 write-through failed");
        }
    }

    /// Invalidates everything through which `records`, existing versions that a write changed
    /// or removed, can be reached.
    async fn invalidate_changed(&self, records: &[SchemaRecord]) {
        let mut inv = Invalidation::default();
        for r in records {
            inv.changed(r);
        }
        self.invalidate(inv).await;
    }

    async fn invalidate(&self, invalidation: Invalidation) {
        if invalidation.is_empty() {
            return;
        }
        self.l1
            .invalidate(&invalidation.keys, &invalidation.epochs)
            .await;
        if let Some(l2) = &self.l2 {
            l2.invalidate(invalidation).await;
        }
    }

    /// The entry for `record`, with its encodings.
    fn encode(&self, record: SchemaRecord) -> EncodedRecord {
        EncodedRecord::new(record, &self.encodings)
    }

    /// Exact entry counts (moka counts lazily).
    pub async fn sync(&self) {
        self.l1.sync().await;
    }
}

#[async_trait]
impl StorageBackend for CachedBackend {
    async fn register(&self, schema: NewSchema) -> StorageResult<Registered> {
        let registered = self.inner.register(schema).await?;
        if registered.created {
            let mut inv = Invalidation::default();
            inv.registered(&registered.record);
            self.invalidate(inv).await;
            self.write_through(std::slice::from_ref(&registered)).await;
        }
        Ok(registered)
    }

    async fn register_all(&self, schemas: Vec<NewSchema>) -> StorageResult<Vec<Registered>> {
        let registered = self.inner.register_all(schemas).await?;
        let mut inv = Invalidation::default();
        for r in registered.iter().filter(|r| r.created) {
            inv.registered(&r.record);
        }
        self.invalidate(inv).await;
        self.write_through(&registered).await;
        Ok(registered)
    }

    async fn get_by_id(&self, id: SchemaId) -> StorageResult<SchemaRecord> {
        Ok(self.get_encoded(PointRead::Id(id)).await?.record.clone())
    }

    async fn get_version(
        &self,
        subject: &Subject,
        version: &SchemaVersion,
    ) -> StorageResult<SchemaRecord> {
        let read = PointRead::Version(subject, version);
        Ok(self.get_encoded(read).await?.record.clone())
    }

    async fn get_latest(&self, subject: &Subject) -> StorageResult<SchemaRecord> {
        let read = PointRead::Latest(subject);
        Ok(self.get_encoded(read).await?.record.clone())
    }

    async fn get_encoded(&self, read: PointRead<'_>) -> StorageResult<Arc<EncodedRecord>> {
        match read {
            PointRead::Id(id) => {
                self.lookup(CacheKey::Id(id), self.inner.get_by_id(id))
                    .await
            }
            PointRead::Version(subject, version) => {
                self.lookup(
                    CacheKey::Version(subject.clone(), version.clone()),
                    self.inner.get_version(subject, version),
                )
                .await
            }
            PointRead::Latest(subject) => {
                self.lookup(
                    CacheKey::Latest(subject.clone()),
                    self.inner.get_latest(subject),
                )
                .await
            }
        }
    }

    async fn list_versions(
        &self,
        subject: &Subject,
        include_deleted: bool,
    ) -> StorageResult<Vec<SchemaVersion>> {
        self.inner.list_versions(subject, include_deleted).await
    }

    async fn list_subjects(&self, query: &SubjectQuery) -> StorageResult<Page<SubjectSummary>> {
        self.inner.list_subjects(query).await
    }

    async fn search(&self, query: &SearchQuery) -> StorageResult<Page<SchemaRecord>> {
        self.inner.search(query).await
    }

    async fn set_state(&self, id: SchemaId, state: SchemaState) -> StorageResult<SchemaRecord> {
        let record = self.inner.set_state(id, state).await?;
        self.invalidate_changed(std::slice::from_ref(&record)).await;
        Ok(record)
    }

    async fn soft_delete(
        &self,
        subject: &Subject,
        version: &SchemaVersion,
    ) -> StorageResult<SchemaRecord> {
        let record = self.inner.soft_delete(subject, version).await?;
        self.invalidate_changed(std::slice::from_ref(&record)).await;
        Ok(record)
    }

    async fn soft_delete_subject(&self, subject: &Subject) -> StorageResult<Vec<SchemaRecord>> {
        let records = self.inner.soft_delete_subject(subject).await?;
        self.invalidate_changed(&records).await;
        Ok(records)
    }

    async fn hard_delete(
        &self,
        subject: &Subject,
        version: &SchemaVersion,
    ) -> StorageResult<SchemaRecord> {
        let record = self.inner.hard_delete(subject, version).await?;
        self.invalidate_changed(std::slice::from_ref(&record)).await;
        Ok(record)
    }

    async fn dependencies(
        &self,
        id: SchemaId,
        transitive: bool,
    ) -> StorageResult<Vec<SchemaSummary>> {
        self.inner.dependencies(id, transitive).await
    }

    async fn dependents(
        &self,
        id: SchemaId,
        transitive: bool,
    ) -> StorageResult<Vec<SchemaSummary>> {
        self.inner.dependents(id, transitive).await
    }

    async fn statistics(&self) -> StorageResult<StorageStats> {
        self.inner.statistics().await
    }

    async fn popular(&self, limit: u32) -> StorageResult<Vec<SchemaRecord>> {
        self.inner.popular(limit).await
    }

    fn note_access(&self, id: SchemaId, latency: Duration) {
        self.inner.note_access(id, latency);
    }

    async fn presigned_content_url(
        &self,
        id: SchemaId,
        expires_in: Duration,
    ) -> StorageResult<Option<(url::Url, Duration)>> {
        self.inner.presigned_content_url(id, expires_in).await
    }
}

/// The cache adds its counters, its two tiers (before the backend's), the L1 count sync before
/// maintenance, and stopping the subscriber before the backend closes.
#[async_trait]
impl Operations for CachedBackend {
    fn inner(&self) -> Option<&dyn Operations> {
        Some(&*self.inner)
    }

    fn cache_stats(&self) -> Option<CacheStats> {
        let l1_hits = self.counters.l1_hits.load(Ordering::Relaxed);
        let l2_hits = self.counters.l2_hits.load(Ordering::Relaxed);
        let misses = self.counters.misses.load(Ordering::Relaxed);
        let lookups = l1_hits + l2_hits + misses;
        Some(CacheStats {
            l1_hits,
            l2_hits,
            misses,
            hit_rate: if lookups == 0 {
                0.0
            } else {
                (l1_hits + l2_hits) as f64 / lookups as f64
            },
            l1_entries: self.l1.entry_count(),
            evictions: self.l1.evictions(),
            l2_errors: self.l2.as_ref().map_or(0, |l2| l2.errors()),
            l2_state: self.l2.as_ref().map_or("disabled", |l2| l2.state()),
        })
    }

    fn tiers(&self) -> Vec<TierHealth> {
        let mut tiers = vec![TierHealth {
            name: "l1",
            status: "up",
            detail: json!({"entries": self.l1.entry_count(), "evictions": self.l1.evictions()}),
        }];
        tiers.push(match &self.l2 {
            Some(l2) => TierHealth {
                name: "l2",
                status: l2.state(),
                detail: json!({"errors": l2.errors(), "subscribed": l2.is_subscribed()}),
            },
            None => TierHealth {
                name: "l2",
                status: "disabled",
                detail: json!({}),
            },
        });
        tiers.extend(self.inner.tiers());
        tiers
    }

    async fn run_maintenance(&self) -> StorageResult<()> {
        self.l1.sync().await;
        self.inner.run_maintenance().await
    }

    async fn close(&self) {
        if let Some(l2) = &self.l2 {
            l2.stop();
        }
        let task = self.subscriber.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
        self.inner.close().await;
    }
}
