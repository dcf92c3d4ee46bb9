//! Turning a stored row back into a [`SchemaRecord`], once for both dialects.
//!
//! The two databases differ only in how a few column types are stored (JSON as text or `jsonb`,
//! time as microseconds or `timestamptz`, tags as a JSON array or `text[]`): each supplies
//! those through [`Columns`], and the decoders here read every row shape through it. The checks
//! that the values still obey the domain rules live here too; a row that breaks them is
//! corrupted data: `Internal`, never a panic.

use chrono::{DateTime, Utc};
use schema_registry_core::{
    SchemaContent, SchemaFormat, SchemaId, SchemaRecord, SchemaReference, SchemaState,
    SchemaSummary, SchemaVersion, Subject,
};
use serde_json::{Map, Value};

use crate::objects::ObjectTier;
use crate::{StorageError, StorageResult};

/// What differs between the dialects' column types. The common ones (integers, text, ids)
/// decode the same way on both; [`common_columns!`] writes them into each implementation.
pub(crate) trait Columns {
    /// The column that holds a document's text (`content` on SQLite, `content_text` on
    /// PostgreSQL, whose `content` is a `jsonb` copy).
    const CONTENT: &'static str;
    fn int(&self, col: &str) -> StorageResult<i64>;
    fn text(&self, col: &str) -> StorageResult<String>;
    fn opt_text(&self, col: &str) -> StorageResult<Option<String>>;
    fn id(&self, col: &str) -> StorageResult<SchemaId>;
    fn json(&self, col: &str) -> StorageResult<Value>;
    fn time(&self, col: &str) -> StorageResult<DateTime<Utc>>;
    fn strings(&self, col: &str) -> StorageResult<Vec<String>>;
}

/// The [`Columns`] methods whose sqlx decoding is the same in every dialect.
macro_rules! common_columns {
    () => {
        fn int(&self, col: &str) -> $crate::StorageResult<i64> {
            Ok(sqlx::Row::try_get(self, col)?)
        }
        fn text(&self, col: &str) -> $crate::StorageResult<String> {
            Ok(sqlx::Row::try_get(self, col)?)
        }
        fn opt_text(&self, col: &str) -> $crate::StorageResult<Option<String>> {
            Ok(sqlx::Row::try_get(self, col)?)
        }
        fn id(&self, col: &str) -> $crate::StorageResult<schema_registry_core::SchemaId> {
            Ok(sqlx::Row::try_get(self, col)?)
        }
    };
}
pub(crate) use common_columns;

/// Every column of a record, in the order [`RawRecord::decode`] reads them, with the dialect's
/// content column in the middle: `record_columns!("content")`.
macro_rules! record_columns {
    ($content:literal) => {
        concat!(
            "id, subject, major, minor, patch, pre, format, ",
            $content,
            ", content_location, checksum, state, description, metadata, tags, refs, created_at, updated_at"
        )
    };
}
pub(crate) use record_columns;

/// Orders a subject's versions so that the first row is what `latest` means: releases before
/// pre-releases, then semver precedence, highest first.
macro_rules! latest_order {
    () => {
        "(pre = '') DESC, major DESC, minor DESC, patch DESC, pre_key DESC"
    };
}
pub(crate) use latest_order;

/// Transitive walks stop at this depth: a guard against a corrupted (cyclic) graph, far beyond
/// any real reference chain.
pub(crate) const MAX_WALK_DEPTH: i32 = 1000;

/// A version from the `major`, `minor`, `patch`, `pre` columns of a row.
pub(crate) fn version_of(row: &impl Columns) -> StorageResult<SchemaVersion> {
    version_from_parts(
        row.int("major")?,
        row.int("minor")?,
        row.int("patch")?,
        &row.text("pre")?,
    )
}

/// A listing row: `subject`, the version columns and `version_count`.
pub(crate) fn subject_summary_of(row: &impl Columns) -> StorageResult<crate::SubjectSummary> {
    Ok(crate::SubjectSummary {
        subject: Subject::parse(row.text("subject")?)
            .map_err(|e| StorageError::Internal(format!("stored subject: {e}")))?,
        latest_version: version_of(row)?,
        version_count: to_u64(row.int("version_count")?),
    })
}

/// A stored state name.
pub(crate) fn state_from(name: &str) -> StorageResult<SchemaState> {
    name.parse()
        .map_err(|e| StorageError::Internal(format!("stored state: {e}")))
}

/// Counts and sizes as SQL integers; the conversions saturate instead of failing, since no real
/// count comes near either bound.
pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

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

/// The (id, format, text, checksum) of a row whose content waits to move to object storage.
pub(crate) type PendingRow = (SchemaId, String, String, String);

fn corrupt(id: SchemaId, what: impl std::fmt::Display) -> StorageError {
    StorageError::Internal(format!("stored schema {id} is corrupted: {what}"))
}

impl RawRecord {
    /// Decodes a row holding [`record_columns!`].
    pub fn decode<R: Columns>(row: &R) -> StorageResult<Self> {
        Ok(RawRecord {
            id: row.id("id")?,
            subject: row.text("subject")?,
            major: row.int("major")?,
            minor: row.int("minor")?,
            patch: row.int("patch")?,
            pre: row.text("pre")?,
            format: row.text("format")?,
            content: row.opt_text(R::CONTENT)?,
            location: row.opt_text("content_location")?,
            checksum: row.text("checksum")?,
            state: row.text("state")?,
            description: row.opt_text("description")?,
            metadata: row.json("metadata")?,
            tags: row.strings("tags")?,
            refs: row.json("refs")?,
            created_at: row.time("created_at")?,
            updated_at: row.time("updated_at")?,
        })
    }

    /// Decodes every row of a result set.
    pub fn decode_all<R: Columns>(rows: &[R]) -> StorageResult<Vec<Self>> {
        rows.iter().map(RawRecord::decode).collect()
    }

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
    /// Decodes a dependency-walk row (the version's columns and `depth`).
    pub fn decode(row: &impl Columns) -> StorageResult<SchemaSummary> {
        RawSummary {
            id: row.id("id")?,
            subject: row.text("subject")?,
            major: row.int("major")?,
            minor: row.int("minor")?,
            patch: row.int("patch")?,
            pre: row.text("pre")?,
            format: row.text("format")?,
            state: row.text("state")?,
            depth: row.int("depth")?,
        }
        .into_summary()
    }

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

/// The statistics row both dialects' statement returns: `schemas`, `subjects`, `active`,
/// `deprecated`, `deleted`, `bytes`.
pub(crate) fn statistics_of(row: &impl Columns) -> StorageResult<crate::StorageStats> {
    let get = |c: &str| -> StorageResult<u64> { Ok(to_u64(row.int(c)?)) };
    Ok(crate::StorageStats {
        schemas: get("schemas")?,
        subjects: get("subjects")?,
        active: get("active")?,
        deprecated: get("deprecated")?,
        deleted: get("deleted")?,
        bytes: get("bytes")?,
    })
}
