//! [`Registry`]: one method per operation, over the storage stack.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use schema_registry_core::content::contains_nul;
use schema_registry_core::{
    Limits, SchemaId, SchemaRecord, SchemaState, SchemaSummary, SchemaVersion, Subject,
};
pub use schema_registry_storage::PointRead;
use schema_registry_storage::{
    CacheStats, EncodedRecord, NotFound, Page, Registered, SearchQuery, Storage, StorageError,
    StorageResult, StorageStats, SubjectQuery, SubjectSummary, TierHealth,
};

use crate::{Registration, RegistryError, RegistryResult};

/// The longest free-text search query, in bytes.
pub const MAX_SEARCH_TEXT_BYTES: usize = 1024;

/// The registry's operations. Cheap to share: one per process, behind the interfaces.
#[derive(Debug, Clone)]
pub struct Registry {
    storage: Arc<dyn Storage>,
    limits: Limits,
}

/// Runs a write to completion on its own task, so a client that disconnects mid-request (which
/// drops the interface's future) cannot cancel it half-way; the storage call's own transaction
/// decides the outcome.
async fn complete<T, F>(write: F) -> RegistryResult<T>
where
    F: Future<Output = StorageResult<T>> + Send + 'static,
    T: Send + 'static,
{
    match tokio::spawn(write).await {
        Ok(result) => Ok(result?),
        Err(e) => Err(RegistryError::Incomplete(e.to_string())),
    }
}

/// Refuses a search that storage could not run: free text over [`MAX_SEARCH_TEXT_BYTES`], or
/// a NUL in any string (text, prefix, tag, metadata key, or anywhere inside a metadata value,
/// which may be JSON whose escape `\u0000` only becomes a NUL once parsed). PostgreSQL's text
/// and jsonb cannot hold NUL; refusing it here answers the same on every backend.
fn check_search(query: &SearchQuery) -> RegistryResult<()> {
    if query
        .text
        .as_ref()
        .is_some_and(|t| t.len() > MAX_SEARCH_TEXT_BYTES)
    {
        return Err(RegistryError::invalid(
            "invalid_query",
            format!("q is limited to {MAX_SEARCH_TEXT_BYTES} bytes"),
        ));
    }
    let nul = |s: &str| s.contains('\0');
    let nul_in = if query.text.as_deref().is_some_and(nul) {
        Some("q")
    } else if query.subject_prefix.as_deref().is_some_and(nul) {
        Some("subject_prefix")
    } else if query.tags.iter().any(|t| nul(t)) {
        Some("tag")
    } else if query
        .metadata
        .iter()
        .any(|(k, v)| nul(k) || contains_nul(v))
    {
        Some("metadata")
    } else {
        None
    };
    match nul_in {
        Some(field) => Err(RegistryError::invalid(
            "invalid_query",
            format!("the {field} filter contains a NUL character"),
        )),
        None => Ok(()),
    }
}

impl Registry {
    pub fn new(storage: Arc<dyn Storage>, limits: Limits) -> Self {
        Registry { storage, limits }
    }

    /// The storage stack underneath (for the operational views: health, tiers, metrics).
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Registers `registration` under `subject`: every field checked, then stored.
    pub async fn register(
        &self,
        subject: Subject,
        registration: Registration,
    ) -> RegistryResult<Registered> {
        let new = registration.into_new_schema(subject, &self.limits)?;
        let storage = self.storage.clone();
        complete(async move { storage.register(new).await }).await
    }

    /// A point read, with the record's encodings made once (and shared, when cached): by id
    /// whatever the state, `latest` never a deleted version, and an exact version as it is
    /// stored, deleted or not (see [`Registry::get_version`] for the rule an API applies).
    pub async fn get(&self, read: PointRead<'_>) -> RegistryResult<Arc<EncodedRecord>> {
        Ok(self.storage.get_encoded(read).await?)
    }

    /// An exact version of a subject. A soft-deleted version is hidden (version not found)
    /// unless `include_deleted`; by id it stays readable either way.
    pub async fn get_version(
        &self,
        subject: &Subject,
        version: &SchemaVersion,
        include_deleted: bool,
    ) -> RegistryResult<Arc<EncodedRecord>> {
        let encoded = self
            .storage
            .get_encoded(PointRead::Version(subject, version))
            .await?;
        if encoded.record.state == SchemaState::Deleted && !include_deleted {
            return Err(StorageError::NotFound(NotFound::Version {
                subject: subject.clone(),
                version: version.clone(),
            })
            .into());
        }
        Ok(encoded)
    }

    /// A version by id, whatever its state.
    pub async fn get_by_id(&self, id: SchemaId) -> RegistryResult<SchemaRecord> {
        Ok(self.storage.get_by_id(id).await?)
    }

    pub async fn list_versions(
        &self,
        subject: &Subject,
        include_deleted: bool,
    ) -> RegistryResult<Vec<SchemaVersion>> {
        Ok(self.storage.list_versions(subject, include_deleted).await?)
    }

    pub async fn list_subjects(
        &self,
        query: &SubjectQuery,
    ) -> RegistryResult<Page<SubjectSummary>> {
        Ok(self.storage.list_subjects(query).await?)
    }

    /// Searches; the free text is limited to [`MAX_SEARCH_TEXT_BYTES`], and no string of the
    /// query may hold a NUL (see `check_search`).
    pub async fn search(&self, query: &SearchQuery) -> RegistryResult<Page<SchemaRecord>> {
        check_search(query)?;
        Ok(self.storage.search(query).await?)
    }

    /// Sets a version's state: `active` or `deprecated` only (deleting is its own operation).
    pub async fn set_state(
        &self,
        id: SchemaId,
        state: SchemaState,
    ) -> RegistryResult<SchemaRecord> {
        if !state.is_settable() {
            return Err(RegistryError::invalid(
                "invalid_state",
                "state can be set to active or deprecated; use DELETE to delete",
            ));
        }
        let storage = self.storage.clone();
        complete(async move { storage.set_state(id, state).await }).await
    }

    /// Deletes a version: soft (hidden, still readable by id) or, once soft-deleted, for good.
    pub async fn delete_version(
        &self,
        subject: Subject,
        version: SchemaVersion,
        permanent: bool,
    ) -> RegistryResult<SchemaRecord> {
        let storage = self.storage.clone();
        complete(async move {
            if permanent {
                storage.hard_delete(&subject, &version).await
            } else {
                storage.soft_delete(&subject, &version).await
            }
        })
        .await
    }

    /// Soft-deletes every live version of a subject; returns them in ascending order.
    pub async fn delete_subject(&self, subject: Subject) -> RegistryResult<Vec<SchemaRecord>> {
        let storage = self.storage.clone();
        complete(async move { storage.soft_delete_subject(&subject).await }).await
    }

    pub async fn dependencies(
        &self,
        id: SchemaId,
        transitive: bool,
    ) -> RegistryResult<Vec<SchemaSummary>> {
        Ok(self.storage.dependencies(id, transitive).await?)
    }

    pub async fn dependents(
        &self,
        id: SchemaId,
        transitive: bool,
    ) -> RegistryResult<Vec<SchemaSummary>> {
        Ok(self.storage.dependents(id, transitive).await?)
    }

    /// A presigned URL for the content of `id` when its tier can sign one (see
    /// `StorageBackend::presigned_content_url`).
    pub async fn presigned_content_url(
        &self,
        id: SchemaId,
        expires_in: Duration,
    ) -> RegistryResult<Option<(url::Url, Duration)>> {
        Ok(self.storage.presigned_content_url(id, expires_in).await?)
    }

    /// Counts over everything stored, and the cache's counters when there is a cache.
    pub async fn statistics(&self) -> RegistryResult<(StorageStats, Option<CacheStats>)> {
        let stats = self.storage.statistics().await?;
        Ok((stats, self.storage.cache_stats()))
    }

    /// The backend is reachable and migrated.
    pub async fn health(&self) -> StorageResult<()> {
        self.storage.health().await
    }

    /// The backend's short name (`sqlite`, `postgres`).
    pub fn backend_kind(&self) -> &'static str {
        self.storage.kind()
    }

    /// Every tier's state besides the database.
    pub fn tiers(&self) -> Vec<TierHealth> {
        self.storage.tiers()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Map, Value};

    use super::*;

    fn code(query: &SearchQuery) -> Option<&'static str> {
        match check_search(query) {
            Ok(()) => None,
            Err(RegistryError::Invalid { code, .. }) => Some(code),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    fn with_metadata(key: &str, value: Value) -> SearchQuery {
        let mut metadata = Map::new();
        metadata.insert(key.into(), value);
        SearchQuery {
            metadata,
            ..SearchQuery::default()
        }
    }

    #[tokio::test]
    async fn a_deleted_exact_version_is_hidden_unless_included() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("r.db").display());
        let storage = schema_registry_storage::open(&url, &Default::default())
            .await
            .expect("open");
        let registry = Registry::new(storage, Limits::default());
        let subject = Subject::parse("s".to_string()).expect("subject");
        let registration = |n: u32| Registration {
            schema: json!({ "n": n }),
            ..Registration::default()
        };
        for n in [1, 2] {
            registry
                .register(subject.clone(), registration(n))
                .await
                .expect("register");
        }
        let v1 = SchemaVersion::parse("1.0.0").expect("version");
        let v2 = SchemaVersion::parse("1.1.0").expect("version");
        registry
            .delete_version(subject.clone(), v2.clone(), false)
            .await
            .expect("soft delete");
        for include_deleted in [false, true] {
            let live = registry.get_version(&subject, &v1, include_deleted).await;
            assert_eq!(live.expect("live").record.version, v1);
        }
        let hidden = registry.get_version(&subject, &v2, false).await;
        assert!(
            matches!(
                hidden,
                Err(RegistryError::Storage(StorageError::NotFound(
                    NotFound::Version { .. }
                )))
            ),
            "{hidden:?}"
        );
        let shown = registry
            .get_version(&subject, &v2, true)
            .await
            .expect("shown");
        assert_eq!(shown.record.state, SchemaState::Deleted);
    }

    #[test]
    fn search_refuses_nul_anywhere() {
        assert_eq!(code(&with_metadata("n", json!("ok"))), None);
        assert_eq!(
            code(&with_metadata("n", json!("\u{0}"))),
            Some("invalid_query")
        );
        assert_eq!(
            code(&with_metadata("n\u{0}", json!(1))),
            Some("invalid_query")
        );
        let nested = with_metadata("n", json!({"a": ["x", {"\u{0}": 1}]}));
        assert_eq!(code(&nested), Some("invalid_query"));
        for query in [
            SearchQuery {
                text: Some("a\u{0}".into()),
                ..SearchQuery::default()
            },
            SearchQuery {
                subject_prefix: Some("\u{0}".into()),
                ..SearchQuery::default()
            },
            SearchQuery {
                tags: vec!["t".into(), "\u{0}".into()],
                ..SearchQuery::default()
            },
        ] {
            assert_eq!(code(&query), Some("invalid_query"), "{query:?}");
        }
    }
}
