//! What the cache stores under which key, and which *epoch* guards each key.
//!
//! An epoch is a counter that every write bumps for what it changed: the subject (for `latest`
//! and subject+version lookups) or the id (for lookups by id). A reader notes the epoch before
//! it reads the database and fills the cache only if the epoch has not moved since; so a value
//! read before a write committed can never be stored after that write's invalidation.

use schema_registry_core::{SchemaId, SchemaRecord, SchemaVersion, Subject};
use serde::{Deserialize, Serialize};

/// A cached lookup.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CacheKey {
    Id(SchemaId),
    Version(Subject, SchemaVersion),
    Latest(Subject),
}

/// What guards a [`CacheKey`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EpochKey {
    Id(SchemaId),
    Subject(Subject),
}

impl CacheKey {
    pub fn epoch(&self) -> EpochKey {
        match self {
            CacheKey::Id(id) => EpochKey::Id(*id),
            CacheKey::Version(s, _) | CacheKey::Latest(s) => EpochKey::Subject(s.clone()),
        }
    }

    /// The Redis key. The subject comes last so that a `:` inside it cannot make two keys
    /// collide (versions contain no `:`).
    pub fn redis_key(&self, prefix: &str) -> String {
        match self {
            CacheKey::Id(id) => format!("{prefix}:v1:id:{id}"),
            CacheKey::Version(s, v) => format!("{prefix}:v1:ver:{v}:{s}"),
            CacheKey::Latest(s) => format!("{prefix}:v1:latest:{s}"),
        }
    }
}

impl EpochKey {
    pub fn redis_key(&self, prefix: &str) -> String {
        match self {
            EpochKey::Id(id) => format!("{prefix}:v1:epoch:id:{id}"),
            EpochKey::Subject(s) => format!("{prefix}:v1:epoch:subject:{s}"),
        }
    }
}

/// Everything one write makes stale: the keys to drop and the epochs to bump.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invalidation {
    pub keys: Vec<CacheKey>,
    pub epochs: Vec<EpochKey>,
}

impl Invalidation {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.epochs.is_empty()
    }

    /// A new version in a subject: `latest` may now resolve to it.
    pub fn registered(&mut self, record: &SchemaRecord) {
        self.push_subject(&record.subject);
        self.keys.push(CacheKey::Version(
            record.subject.clone(),
            record.version.clone(),
        ));
    }

    /// An existing version changed (state) or disappeared: every way to reach it is stale.
    pub fn changed(&mut self, record: &SchemaRecord) {
        self.push_subject(&record.subject);
        self.keys.push(CacheKey::Id(record.id));
        self.keys.push(CacheKey::Version(
            record.subject.clone(),
            record.version.clone(),
        ));
        self.epochs.push(EpochKey::Id(record.id));
    }

    fn push_subject(&mut self, subject: &Subject) {
        let latest = CacheKey::Latest(subject.clone());
        if !self.keys.contains(&latest) {
            self.keys.push(latest);
            self.epochs.push(EpochKey::Subject(subject.clone()));
        }
    }
}
