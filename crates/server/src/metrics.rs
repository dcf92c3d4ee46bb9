//! [`MeteredBackend`]: the decorator that counts and times every storage operation, as
//! `schema_registry_operations_total{operation,status}` and
//! `schema_registry_operation_duration_seconds{operation}` (the series live in
//! `schema_registry_api::metrics`, which renders them at `/metrics`).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use schema_registry_api::metrics::record_operation;
use schema_registry_core::{
    NewSchema, SchemaId, SchemaRecord, SchemaState, SchemaSummary, SchemaVersion, Subject,
};
use schema_registry_storage::{
    EncodedRecord, Operations, Page, PointRead, Registered, SearchQuery, Storage, StorageBackend,
    StorageResult, StorageStats, SubjectQuery, SubjectSummary,
};

/// Times and counts every storage operation, then delegates.
pub struct MeteredBackend {
    inner: Arc<dyn Storage>,
}

impl std::fmt::Debug for MeteredBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeteredBackend")
            .field("inner", &self.inner)
            .finish()
    }
}

impl MeteredBackend {
    pub fn new(inner: Arc<dyn Storage>) -> Self {
        MeteredBackend { inner }
    }

    async fn timed<T>(
        &self,
        operation: &'static str,
        f: impl Future<Output = StorageResult<T>>,
    ) -> StorageResult<T> {
        let started = Instant::now();
        let result = f.await;
        let status = match &result {
            Ok(_) => "ok",
            Err(e) => e.kind(),
        };
        record_operation(operation, status, started.elapsed());
        result
    }
}

#[async_trait]
impl StorageBackend for MeteredBackend {
    async fn register(&self, schema: NewSchema) -> StorageResult<Registered> {
        self.timed("register", self.inner.register(schema)).await
    }
    async fn register_all(&self, schemas: Vec<NewSchema>) -> StorageResult<Vec<Registered>> {
        self.timed("register_all", self.inner.register_all(schemas))
            .await
    }
    async fn get_by_id(&self, id: SchemaId) -> StorageResult<SchemaRecord> {
        self.timed("get_by_id", self.inner.get_by_id(id)).await
    }
    async fn get_version(
        &self,
        subject: &Subject,
        version: &SchemaVersion,
    ) -> StorageResult<SchemaRecord> {
        self.timed("get_version", self.inner.get_version(subject, version))
            .await
    }
    async fn get_latest(&self, subject: &Subject) -> StorageResult<SchemaRecord> {
        self.timed("get_latest", self.inner.get_latest(subject))
            .await
    }
    async fn get_encoded(&self, read: PointRead<'_>) -> StorageResult<Arc<EncodedRecord>> {
        self.timed(read.operation(), self.inner.get_encoded(read))
            .await
    }
    async fn list_versions(
        &self,
        subject: &Subject,
        include_deleted: bool,
    ) -> StorageResult<Vec<SchemaVersion>> {
        self.timed(
            "list_versions",
            self.inner.list_versions(subject, include_deleted),
        )
        .await
    }
    async fn list_subjects(&self, query: &SubjectQuery) -> StorageResult<Page<SubjectSummary>> {
        self.timed("list_subjects", self.inner.list_subjects(query))
            .await
    }
    async fn search(&self, query: &SearchQuery) -> StorageResult<Page<SchemaRecord>> {
        self.timed("search", self.inner.search(query)).await
    }
    async fn set_state(&self, id: SchemaId, state: SchemaState) -> StorageResult<SchemaRecord> {
        self.timed("set_state", self.inner.set_state(id, state))
            .await
    }
    async fn soft_delete(
        &self,
        subject: &Subject,
        version: &SchemaVersion,
    ) -> StorageResult<SchemaRecord> {
        self.timed("soft_delete", self.inner.soft_delete(subject, version))
            .await
    }
    async fn soft_delete_subject(&self, subject: &Subject) -> StorageResult<Vec<SchemaRecord>> {
        self.timed(
            "soft_delete_subject",
            self.inner.soft_delete_subject(subject),
        )
        .await
    }
    async fn hard_delete(
        &self,
        subject: &Subject,
        version: &SchemaVersion,
    ) -> StorageResult<SchemaRecord> {
        self.timed("hard_delete", self.inner.hard_delete(subject, version))
            .await
    }
    async fn dependencies(
        &self,
        id: SchemaId,
        transitive: bool,
    ) -> StorageResult<Vec<SchemaSummary>> {
        self.timed("dependencies", self.inner.dependencies(id, transitive))
            .await
    }
    async fn dependents(
        &self,
        id: SchemaId,
        transitive: bool,
    ) -> StorageResult<Vec<SchemaSummary>> {
        self.timed("dependents", self.inner.dependents(id, transitive))
            .await
    }
    async fn statistics(&self) -> StorageResult<StorageStats> {
        self.timed("statistics", self.inner.statistics()).await
    }
    async fn popular(&self, limit: u32) -> StorageResult<Vec<SchemaRecord>> {
        self.timed("popular", self.inner.popular(limit)).await
    }
    async fn presigned_content_url(
        &self,
        id: SchemaId,
        expires_in: Duration,
    ) -> StorageResult<Option<(url::Url, Duration)>> {
        self.timed(
            "presigned_content_url",
            self.inner.presigned_content_url(id, expires_in),
        )
        .await
    }
    fn note_access(&self, id: SchemaId, latency: Duration) {
        self.inner.note_access(id, latency);
    }
}

/// Operational calls are not metered: they pass to the stack below.
impl Operations for MeteredBackend {
    fn inner(&self) -> Option<&dyn Operations> {
        Some(&*self.inner)
    }
}
