//! State changes and deletes, written once for both SQL dialects.
//!
//! Each write reads the record it returns *before* its commit: if object-held content cannot be
//! read, nothing changes, and no cache is left holding the old state of a committed change.

use schema_registry_core::{
    DomainError, SchemaId, SchemaRecord, SchemaState, SchemaVersion, Subject,
};

use super::reconcile::release_object;
use super::register::WriteStatements;
use super::rows::{now, RawRecord};
use super::{Database, WriteTx};
use crate::objects::ObjectTier;
use crate::{ConflictReason, NotFound, StorageError, StorageResult};

/// Sets `active` or `deprecated`. A deleted version is a conflict; setting the state it has
/// already is a no-op that returns it.
pub(crate) async fn set_state<D: Database>(
    db: &D,
    objects: Option<&ObjectTier>,
    id: SchemaId,
    state: SchemaState,
) -> StorageResult<SchemaRecord> {
    if !state.is_settable() {
        return Err(DomainError::InvalidState(format!(
            "state {state} cannot be set directly; use delete"
        ))
        .into());
    }
    let mut tx = db.begin_write().await?;
    match tx.state_for_update(id).await?.as_deref() {
        None => return Err(StorageError::NotFound(NotFound::Schema(id))),
        Some("deleted") => {
            return Err(StorageError::conflict(
                ConflictReason::Deleted,
                format!("schema {id} is deleted; its state cannot change"),
            ))
        }
        Some(s) if s == state.as_str() => {}
        Some(_) => tx.update_state(id, state, now()).await?,
    }
    let raw = tx
        .fetch_raw(id)
        .await?
        .ok_or(StorageError::NotFound(NotFound::Schema(id)))?;
    let record = raw.finish(objects).await?;
    tx.commit().await?;
    Ok(record)
}

/// Marks a version deleted; deleting a deleted version is a no-op that returns it.
pub(crate) async fn soft_delete<D: Database>(
    db: &D,
    objects: Option<&ObjectTier>,
    subject: &Subject,
    version: &SchemaVersion,
) -> StorageResult<SchemaRecord> {
    let mut tx = db.begin_write().await?;
    let Some(raw) = tx.mark_version_deleted(subject, version, now()).await? else {
        return Err(StorageError::version_not_found(subject, version));
    };
    let record = raw.finish(objects).await?;
    tx.commit().await?;
    Ok(record)
}

/// Soft-deletes every live version of a subject; returns them in ascending version order. Not
/// found when there is none.
pub(crate) async fn soft_delete_subject<D: Database>(
    db: &D,
    objects: Option<&ObjectTier>,
    subject: &Subject,
) -> StorageResult<Vec<SchemaRecord>> {
    let mut tx = db.begin_write().await?;
    let raws = tx.mark_subject_deleted(subject, now()).await?;
    if raws.is_empty() {
        return Err(StorageError::NotFound(NotFound::Subject(subject.clone())));
    }
    let mut records = RawRecord::finish_all(raws, objects).await?;
    tx.commit().await?;
    records.sort_by(|a, b| a.version.cmp(&b.version));
    Ok(records)
}

/// Removes a soft-deleted version for good, under the subject's lock (a registration into the
/// subject may be about to reference it), then releases its object if no other row points to
/// it. Returns the removed record.
pub(crate) async fn hard_delete<D: Database>(
    db: &D,
    objects: Option<&ObjectTier>,
    subject: &Subject,
    version: &SchemaVersion,
) -> StorageResult<SchemaRecord> {
    let mut tx = db.begin_write().await?;
    tx.lock_subject(subject).await?;
    let Some(raw) = tx.find_version(subject, version).await? else {
        return Err(StorageError::version_not_found(subject, version));
    };
    let referrer = tx.live_referrer(raw.id).await?;
    ensure_removable(subject, version, &raw.state, referrer)?;
    let (id, location) = (raw.id, raw.location.clone());
    let record = finish_for_removal(raw, objects).await?;
    tx.delete_row(id).await?;
    tx.commit().await?;
    if let (Some(key), Some(tier)) = (location, objects) {
        if let Err(e) = release_object(db, tier, &key).await {
            tracing::warn!(key, error = %e, "object left in the store after a permanent delete");
        }
    }
    Ok(record)
}

/// The record of a version about to be removed for good. If its object-held content can no
/// longer be read (missing or corrupted), the removal goes ahead and the record carries empty
/// content: deleting broken data must stay possible.
async fn finish_for_removal(
    raw: RawRecord,
    objects: Option<&ObjectTier>,
) -> StorageResult<SchemaRecord> {
    let fallback = RawRecord {
        content: Some(String::new()),
        ..raw.clone()
    };
    match raw.finish(objects).await {
        Err(StorageError::Corrupted(why)) => {
            tracing::warn!(reason = %why, "removing a version whose content cannot be read");
            fallback.finish(None).await
        }
        other => other,
    }
}

/// A live version that references the one being removed: (subject, major, minor, patch, pre),
/// as the backends' referrer query returns it.
pub(crate) type Referrer = (String, i64, i64, i64, String);

/// The rules of a permanent delete, written once for every backend: only a soft-deleted version
/// may go, and not while a version that is not deleted references it (the first such referrer
/// is named in the message).
fn ensure_removable(
    subject: &Subject,
    version: &SchemaVersion,
    state: &str,
    referrer: Option<Referrer>,
) -> StorageResult<()> {
    if state != SchemaState::Deleted.as_str() {
        return Err(StorageError::conflict(
            ConflictReason::NotSoftDeleted,
            format!("version {version} of subject {subject} must be soft-deleted before it can be deleted permanently"),
        ));
    }
    if let Some((s, major, minor, patch, pre)) = referrer {
        let by = super::rows::version_from_parts(major, minor, patch, &pre)?;
        return Err(StorageError::conflict(
            ConflictReason::Referenced,
            format!("version {version} of subject {subject} is referenced by version {by} of subject {s}"),
        ));
    }
    Ok(())
}
