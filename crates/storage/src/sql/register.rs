//! The registration algorithm, written once for every SQL backend.
//!
//! Each backend provides the primitive statements ([`WriteStatements`]) inside its own transaction; the
//! order of the steps and the decisions between them live here, so "idempotent retry",
//! "auto-assigned versions are never reused" and "references must resolve" mean the same thing
//! on SQLite and PostgreSQL.

use async_trait::async_trait;
use schema_registry_core::{
    DomainError, NewSchema, SchemaContent, SchemaId, SchemaRecord, SchemaReference, SchemaState,
    SchemaVersion, Subject, VersionRequest,
};
use uuid::Uuid;

use super::rows::now;
use crate::objects::{confirm, ObjectTier, Placement};
use crate::{NotFound, Registered, StorageError, StorageResult};

/// What a backend writes for one new version.
pub(crate) struct InsertRow<'a> {
    pub id: SchemaId,
    pub new: &'a NewSchema,
    pub version: &'a SchemaVersion,
    /// The subject's highest version ever assigned, after this insert.
    pub new_max: &'a SchemaVersion,
    /// Resolved references, in the order given.
    pub depends_on: &'a [SchemaId],
    /// Where the content goes (see `objects::Placement`).
    pub placement: &'a Placement,
    pub now: chrono::DateTime<chrono::Utc>,
}

/// The reads registration decides on. A locked transaction ([`WriteStatements`]) answers them under the
/// subject's lock; PostgreSQL's optimistic path answers them from one snapshot and lets its
/// compare-and-set insert detect anything that changed since (see `postgres::optimistic`).
#[async_trait]
pub(crate) trait RegistrationReads: Send {
    /// The highest non-deleted version of `subject` with this exact content and format.
    async fn find_identical(
        &mut self,
        subject: &Subject,
        content: &SchemaContent,
    ) -> StorageResult<Option<(SchemaId, SchemaVersion)>>;
    /// Whether `subject` has `version`, in any state.
    async fn version_exists(
        &mut self,
        subject: &Subject,
        version: &SchemaVersion,
    ) -> StorageResult<bool>;
    /// The highest version ever assigned in `subject`.
    async fn max_assigned(&mut self, subject: &Subject) -> StorageResult<Option<SchemaVersion>>;
    /// The id and state of the referenced version.
    async fn resolve(
        &mut self,
        reference: &SchemaReference,
    ) -> StorageResult<Option<(SchemaId, SchemaState)>>;
}

/// The statements registration needs, run inside one open write transaction.
#[async_trait]
pub(crate) trait WriteStatements: RegistrationReads {
    /// Serialises registrations into `subject` until the transaction ends.
    async fn lock_subject(&mut self, subject: &Subject) -> StorageResult<()>;
    /// Serialises writers of one object-store key (registration vs permanent delete) until the
    /// transaction ends.
    async fn lock_content(&mut self, key: &str) -> StorageResult<()>;
    /// Inserts the version, its dependency edges, and records the subject's new maximum.
    async fn insert(&mut self, row: &InsertRow<'_>) -> StorageResult<()>;
}

/// What a registration decided, before it writes anything.
#[derive(Debug)]
pub(crate) enum Plan {
    /// An identical version exists and the request accepts it: an idempotent retry.
    Existing(SchemaId),
    /// Insert a new version.
    Insert(Insertion),
}

/// A new version to write.
#[derive(Debug)]
pub(crate) struct Insertion {
    pub version: SchemaVersion,
    /// The subject's highest version ever assigned, after this insert.
    pub new_max: SchemaVersion,
    /// Resolved references, in the order given.
    pub depends_on: Vec<SchemaId>,
}

impl Insertion {
    /// The row that writes `new` at this version, with a fresh id and timestamp.
    pub(crate) fn row<'a>(&'a self, new: &'a NewSchema, placement: &'a Placement) -> InsertRow<'a> {
        InsertRow {
            id: Uuid::now_v7(),
            new,
            version: &self.version,
            new_max: &self.new_max,
            depends_on: &self.depends_on,
            placement,
            now: now(),
        }
    }
}

/// The registration rules, written once: idempotent retry, explicit versions that must be
/// free, auto-assigned versions bumped from the highest ever assigned (so never reused), and
/// references that must resolve to versions that are not deleted.
pub(crate) async fn plan<R: RegistrationReads + ?Sized>(
    reads: &mut R,
    new: &NewSchema,
) -> StorageResult<Plan> {
    if let Some((id, existing)) = reads.find_identical(&new.subject, &new.content).await? {
        let same_request = match &new.version {
            VersionRequest::Next(_) => true,
            VersionRequest::Exact(v) => *v == existing,
        };
        if same_request {
            return Ok(Plan::Existing(id));
        }
    }

    let max = reads.max_assigned(&new.subject).await?;
    let version = match &new.version {
        VersionRequest::Exact(v) => {
            if reads.version_exists(&new.subject, v).await? {
                return Err(StorageError::VersionExists {
                    subject: new.subject.clone(),
                    version: v.clone(),
                });
            }
            v.clone()
        }
        VersionRequest::Next(bump) => match &max {
            None => SchemaVersion::initial(),
            Some(m) => m.bump(*bump)?,
        },
    };

    let mut depends_on = Vec::with_capacity(new.references.len());
    for r in &new.references {
        match reads.resolve(r).await? {
            None => {
                return Err(DomainError::UnknownReference(format!(
                    "version {} of subject {} does not exist",
                    r.version, r.subject
                ))
                .into())
            }
            Some((_, SchemaState::Deleted)) => {
                return Err(DomainError::UnknownReference(format!(
                    "version {} of subject {} is deleted",
                    r.version, r.subject
                ))
                .into())
            }
            Some((id, _)) => depends_on.push(id),
        }
    }

    let new_max = match max {
        Some(m) if m > version => m,
        _ => version.clone(),
    };
    Ok(Plan::Insert(Insertion {
        version,
        new_max,
        depends_on,
    }))
}

/// Registers `new` inside the caller's transaction, under the subject's lock. The caller
/// commits.
pub(crate) async fn register_in<T: super::WriteTx>(
    tx: &mut T,
    new: &NewSchema,
    placement: &Placement,
    objects: Option<&ObjectTier>,
) -> StorageResult<Registered> {
    tx.lock_subject(&new.subject).await?;
    let insertion = match plan(tx, new).await? {
        Plan::Existing(id) => {
            let raw = tx
                .fetch_raw(id)
                .await?
                .ok_or(StorageError::NotFound(NotFound::Schema(id)))?;
            return Ok(Registered {
                record: raw.finish(objects).await?,
                created: false,
            });
        }
        Plan::Insert(insertion) => insertion,
    };
    let placement = match placement {
        Placement::Object(key) => {
            tx.lock_content(key).await?;
            confirm(objects, placement.clone(), &new.content).await?
        }
        other => other.clone(),
    };
    let row = insertion.row(new, &placement);
    tx.insert(&row).await?;
    Ok(row.registered())
}

/// Takes a batch's locks up front, subjects then object keys, each in sorted order, so that two
/// batches touching the same subjects cannot deadlock on them.
pub(crate) async fn lock_batch<T: WriteStatements + ?Sized>(
    tx: &mut T,
    schemas: &[NewSchema],
    placements: &[Placement],
) -> StorageResult<()> {
    let mut subjects: Vec<&Subject> = schemas.iter().map(|s| &s.subject).collect();
    subjects.sort();
    subjects.dedup();
    let mut keys: Vec<&str> = placements
        .iter()
        .filter_map(|p| match p {
            Placement::Object(k) => Some(k.as_str()),
            _ => None,
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    for subject in subjects {
        tx.lock_subject(subject).await?;
    }
    for key in keys {
        tx.lock_content(key).await?;
    }
    Ok(())
}

impl InsertRow<'_> {
    /// The document's text when the row holds it (not when it lives in object storage).
    pub(crate) fn inline_content(&self) -> Option<&str> {
        match self.placement {
            Placement::Object(_) => None,
            Placement::Inline | Placement::InlinePending => Some(self.new.content.text()),
        }
    }

    /// The object key when the document lives in object storage.
    pub(crate) fn object_key(&self) -> Option<&str> {
        match self.placement {
            Placement::Object(key) => Some(key.as_str()),
            _ => None,
        }
    }

    /// Whether the document waits, inline, for the object store to come back.
    pub(crate) fn pending(&self) -> bool {
        matches!(self.placement, Placement::InlinePending)
    }

    /// The record this row becomes once committed, as a fresh registration returns it.
    pub(crate) fn registered(&self) -> Registered {
        let new = self.new;
        Registered {
            record: SchemaRecord {
                id: self.id,
                subject: new.subject.clone(),
                version: self.version.clone(),
                content: new.content.clone(),
                state: SchemaState::Active,
                description: new.description.clone(),
                metadata: new.metadata.clone(),
                tags: new.tags.clone(),
                references: new.references.clone(),
                created_at: self.now,
                updated_at: self.now,
            },
            created: true,
        }
    }
}
