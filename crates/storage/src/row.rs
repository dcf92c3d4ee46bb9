//! Turning a stored row back into a [`SchemaRecord`]. Backends decode their column types into a
//! [`RawRecord`] of plain values; the checks that the values still obey the domain rules live
//! here once. A row that breaks them is corrupted data: `Internal`, never a panic.

use chrono::{DateTime, Utc};
use schema_registry_core::{
    SchemaContent, SchemaFormat, SchemaId, SchemaRecord, SchemaReference, SchemaState,
    SchemaSummary, SchemaVersion, Subject,
};
use serde_json::{Map, Value};

use crate::objects::ObjectTier;
use crate::{StorageError, StorageResult};

/// A row's values, decoded from the backend's column types but not yet validated.
#[derive(Clone)]
pub(crate) struct RawRecord {
    pub id: SchemaId,
    pub subject: String,
    pub major: i64,
    pub minor: i64,
    pub patch: i64,
    pub pre: String,
    pub format: String,
    /// The document, or `None` when it lives in object storage at `location`.
    pub content: Option<String>,
    pub location: Option<String>,
    pub checksum: String,
    pub state: String,
    pub description: Option<String>,
    pub metadata: Value,
    pub tags: Vec<String>,
    pub refs: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn corrupt(id: SchemaId, what: impl std::fmt::Display) -> StorageError {
    StorageError::Internal(format!("stored schema {id} is corrupted: {what}"))
}

impl RawRecord {
    /// Completes the record, reading the content from the object tier when the row holds only
    /// a pointer.
    pub async fn finish(mut self, objects: Option<&ObjectTier>) -> StorageResult<SchemaRecord> {
        if self.content.is_none() {
            let id = self.id;
            let (Some(location), Some(tier)) = (self.location.as_deref(), objects) else {
                return Err(StorageError::Internal(format!(
                    "schema {id} has no inline content and no object tier is configured"
                )));
            };
            let format: SchemaFormat = self.format.parse().map_err(|e| corrupt(id, e))?;
            self.content = Some(
                tier.get(location, format, &self.checksum)
                    .await?
                    .into_text(),
            );
        }
        self.into_record()
    }

    /// Completes many records (search pages), reading object-held content one by one.
    pub async fn finish_all(
        rows: Vec<RawRecord>,
        objects: Option<&ObjectTier>,
    ) -> StorageResult<Vec<SchemaRecord>> {
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(r.finish(objects).await?);
        }
        Ok(out)
    }

    fn into_record(self) -> StorageResult<SchemaRecord> {
        let id = self.id;
        let content = self.content.ok_or_else(|| corrupt(id, "no content"))?;
        let format: SchemaFormat = self.format.parse().map_err(|e| corrupt(id, e))?;
        let metadata: Map<String, Value> = match self.metadata {
            Value::Object(m) => m,
            other => return Err(corrupt(id, format!("metadata is not an object: {other}"))),
        };
        let references: Vec<SchemaReference> =
            serde_json::from_value(self.refs).map_err(|e| corrupt(id, e))?;
        Ok(SchemaRecord {
            id,
            subject: Subject::parse(self.subject).map_err(|e| corrupt(id, e))?,
            version: SchemaVersion::from_parts(self.major, self.minor, self.patch, &self.pre)
                .map_err(|e| corrupt(id, e))?,
            content: SchemaContent::from_stored(format, content, self.checksum),
            state: self.state.parse().map_err(|e| corrupt(id, e))?,
            description: self.description,
            metadata,
            tags: self.tags,
            references,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// A dependency-walk row's values.
pub(crate) struct RawSummary {
    pub id: SchemaId,
    pub subject: String,
    pub major: i64,
    pub minor: i64,
    pub patch: i64,
    pub pre: String,
    pub format: String,
    pub state: String,
    pub depth: i64,
}

impl RawSummary {
    pub fn into_summary(self) -> StorageResult<SchemaSummary> {
        let id = self.id;
        Ok(SchemaSummary {
            id,
            subject: Subject::parse(self.subject).map_err(|e| corrupt(id, e))?,
            version: SchemaVersion::from_parts(self.major, self.minor, self.patch, &self.pre)
                .map_err(|e| corrupt(id, e))?,
            format: self.format.parse().map_err(|e| corrupt(id, e))?,
            state: self
                .state
                .parse::<SchemaState>()
                .map_err(|e| corrupt(id, e))?,
            depth: u32::try_from(self.depth).unwrap_or(u32::MAX),
        })
    }
}

/// Rebuilds a version from its columns; bad columns are corrupted data.
pub(crate) fn version_from_parts(
    major: i64,
    minor: i64,
    patch: i64,
    pre: &str,
) -> StorageResult<SchemaVersion> {
    SchemaVersion::from_parts(major, minor, patch, pre)
        .map_err(|e| StorageError::Internal(format!("stored version is corrupted: {e}")))
}

/// Microseconds since the Unix epoch, the embedded backend's timestamp column type.
pub(crate) fn to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_micros(us).unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// The current time, truncated to microseconds (what both backends can store exactly), so a
/// record returned by a write equals the same record read back.
pub(crate) fn now() -> DateTime<Utc> {
    from_micros(Utc::now().timestamp_micros())
}
