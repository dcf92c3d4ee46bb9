//! The object tier's two pieces of upkeep, written once for both SQL dialects: moving content
//! kept inline while the store was down (`content_pending`) to the store, and removing an object
//! once no row points to it.
//!
//! Both take the content lock (`WriteStatements::lock_content`) that registrations take before
//! they point to an object, so a row can never point to an object that is being removed.

use schema_registry_core::SchemaContent;

use super::register::WriteStatements;
use super::{Database, WriteTx};
use crate::objects::{confirm, ObjectTier, Placement};
use crate::{StorageError, StorageResult};

/// Rows moved per round; the rest wait for the next one.
const BATCH: u32 = 100;

/// Moves pending content to the store. Returns how many rows are still pending (also published
/// to the tier's health counters).
pub(crate) async fn reconcile<D: Database>(db: &D, tier: &ObjectTier) -> StorageResult<u64> {
    for (id, format, text, checksum) in db.pending(BATCH).await? {
        let format = format
            .parse()
            .map_err(|e| StorageError::Internal(format!("stored format: {e}")))?;
        let content = SchemaContent::from_stored(format, text, checksum);
        let key = match tier.put(&content).await {
            Ok(key) => key,
            Err(StorageError::Unavailable(_)) => break, // still down: next round
            Err(e) => return Err(e),
        };
        let mut tx = db.begin_write().await?;
        tx.lock_content(&key).await?;
        // Under the content lock, make sure the object is still there (a permanent delete of
        // identical content may have removed it since the upload) before pointing to it.
        let Placement::Object(key) = confirm(Some(tier), Placement::Object(key), &content).await?
        else {
            break; // the store went away again: next round
        };
        tx.point_to_object(id, &key).await?;
        tx.commit().await?;
    }
    let left = db.count_pending().await?;
    tier.set_pending(left);
    Ok(left)
}

/// Second phase of a permanent delete: removes the object `key` if no row points to it any
/// more. If this fails, the object stays as harmless garbage; the row is already gone, so no
/// pointer can dangle.
pub(crate) async fn release_object<D: Database>(
    db: &D,
    tier: &ObjectTier,
    key: &str,
) -> StorageResult<()> {
    let mut tx = db.begin_write().await?;
    tx.lock_content(key).await?;
    if tx.rows_pointing_to(key).await? == 0 {
        tier.delete(key).await?;
    }
    tx.commit().await
}
