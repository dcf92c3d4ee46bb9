//! The statements of a SQLite write transaction.
//!
//! Every write transaction starts with `BEGIN IMMEDIATE` and so holds the database's single
//! write lock from its first statement: the subject and content locks the rules ask for, and
//! the row locks PostgreSQL takes, are already held.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use schema_registry_core::{
    SchemaContent, SchemaId, SchemaReference, SchemaState, SchemaVersion, Subject,
};
use sqlx::{Row, Sqlite, SqliteConnection, Transaction};

use super::{SELECT_BY_ID, SELECT_BY_VERSION};
use crate::objects::Placement;
use crate::sql::lifecycle::Referrer;
use crate::sql::register::{InsertRow, RegistrationReads, WriteStatements};
use crate::sql::rows::{record_columns, state_from, to_i64, to_micros, version_of, RawRecord};
use crate::sql::WriteTx;
use crate::{StorageError, StorageResult};

/// One open write transaction.
pub(crate) struct SqliteWriteTx {
    tx: Transaction<'static, Sqlite>,
}

impl SqliteWriteTx {
    pub(super) fn new(tx: Transaction<'static, Sqlite>) -> Self {
        SqliteWriteTx { tx }
    }
}

/// A version's row by subject and version, on any connection.
pub(super) async fn find_version<'e, E: sqlx::SqliteExecutor<'e>>(
    executor: E,
    subject: &Subject,
    version: &SchemaVersion,
) -> StorageResult<Option<RawRecord>> {
    let row = sqlx::query(SELECT_BY_VERSION)
        .bind(subject.as_str())
        .bind(version.major())
        .bind(version.minor())
        .bind(version.patch())
        .bind(version.pre())
        .fetch_optional(executor)
        .await?;
    row.as_ref().map(RawRecord::decode).transpose()
}

/// The id and state of a subject's version.
async fn id_and_state(
    conn: &mut SqliteConnection,
    subject: &Subject,
    version: &SchemaVersion,
) -> StorageResult<Option<(SchemaId, SchemaState)>> {
    let row = sqlx::query(
        "SELECT id, state FROM schemas WHERE subject = ?1 AND major = ?2 AND minor = ?3 AND patch = ?4 AND pre = ?5",
    )
    .bind(subject.as_str())
    .bind(version.major())
    .bind(version.minor())
    .bind(version.patch())
    .bind(version.pre())
    .fetch_optional(conn)
    .await?;
    match row {
        None => Ok(None),
        Some(row) => Ok(Some((
            row.try_get("id")?,
            state_from(row.try_get("state")?)?,
        ))),
    }
}

/// Serialises a JSON-valued column. The values are plain data (maps, strings, references), for
/// which serde_json cannot fail.
fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}

#[async_trait]
impl RegistrationReads for SqliteWriteTx {
    async fn find_identical(
        &mut self,
        subject: &Subject,
        content: &SchemaContent,
    ) -> StorageResult<Option<(SchemaId, SchemaVersion)>> {
        let row = sqlx::query(concat!(
            "SELECT id, major, minor, patch, pre FROM schemas
             WHERE subject = ?1 AND checksum = ?2 AND format = ?3 AND state <> 'deleted'
             ORDER BY ",
            crate::sql::rows::latest_order!(),
            " LIMIT 1"
        ))
        .bind(subject.as_str())
        .bind(content.checksum())
        .bind(content.format().as_str())
        .fetch_optional(&mut *self.tx)
        .await?;
        match row {
            None => Ok(None),
            Some(row) => Ok(Some((row.try_get("id")?, version_of(&row)?))),
        }
    }

    async fn version_exists(
        &mut self,
        subject: &Subject,
        version: &SchemaVersion,
    ) -> StorageResult<bool> {
        Ok(id_and_state(&mut self.tx, subject, version)
            .await?
            .is_some())
    }

    async fn max_assigned(&mut self, subject: &Subject) -> StorageResult<Option<SchemaVersion>> {
        let row = sqlx::query(
            "SELECT max_major AS major, max_minor AS minor, max_patch AS patch, max_pre AS pre
             FROM subjects WHERE subject = ?1",
        )
        .bind(subject.as_str())
        .fetch_optional(&mut *self.tx)
        .await?;
        row.as_ref().map(version_of).transpose()
    }

    async fn resolve(
        &mut self,
        r: &SchemaReference,
    ) -> StorageResult<Option<(SchemaId, SchemaState)>> {
        id_and_state(&mut self.tx, &r.subject, &r.version).await
    }
}

#[async_trait]
impl WriteStatements for SqliteWriteTx {
    async fn lock_subject(&mut self, _subject: &Subject) -> StorageResult<()> {
        Ok(()) // `BEGIN IMMEDIATE` holds the database's single write lock already.
    }

    async fn lock_content(&mut self, _key: &str) -> StorageResult<()> {
        Ok(()) // Likewise: every writer of the database is serialised already.
    }

    async fn insert(&mut self, row: &InsertRow<'_>) -> StorageResult<()> {
        let new = row.new;
        let now = to_micros(row.now);
        sqlx::query(
            "INSERT INTO subjects (subject, max_major, max_minor, max_patch, max_pre, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (subject) DO UPDATE SET
                max_major = excluded.max_major, max_minor = excluded.max_minor,
                max_patch = excluded.max_patch, max_pre = excluded.max_pre",
        )
        .bind(new.subject.as_str())
        .bind(row.new_max.major())
        .bind(row.new_max.minor())
        .bind(row.new_max.patch())
        .bind(row.new_max.pre())
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        let inserted = sqlx::query(
            "INSERT INTO schemas (id, subject, major, minor, patch, pre, pre_key, format, content, checksum,
                                  size_bytes, state, description, metadata, tags, refs, created_at, updated_at,
                                  content_location, content_pending)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'active', ?12, ?13, ?14, ?15, ?16, ?16, ?17, ?18)",
        )
        .bind(row.id)
        .bind(new.subject.as_str())
        .bind(row.version.major())
        .bind(row.version.minor())
        .bind(row.version.patch())
        .bind(row.version.pre())
        .bind(row.version.pre_key())
        .bind(new.content.format().as_str())
        .bind(match row.placement {
            Placement::Object(_) => None,
            Placement::Inline | Placement::InlinePending => Some(new.content.text()),
        })
        .bind(new.content.checksum())
        .bind(to_i64(new.content.size_bytes()))
        .bind(new.description.as_deref())
        .bind(to_json(&new.metadata))
        .bind(to_json(&new.tags))
        .bind(to_json(&new.references))
        .bind(now)
        .bind(match row.placement {
            Placement::Object(key) => Some(key.as_str()),
            _ => None,
        })
        .bind(matches!(row.placement, Placement::InlinePending))
        .execute(&mut *self.tx)
        .await;
        if let Err(sqlx::Error::Database(db)) = &inserted {
            if db.is_unique_violation() {
                return Err(StorageError::VersionExists {
                    subject: new.subject.clone(),
                    version: row.version.clone(),
                });
            }
        }
        inserted?;
        for (position, dep) in row.depends_on.iter().enumerate() {
            sqlx::query(
                "INSERT INTO schema_dependencies (schema_id, depends_on_id, position) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO NOTHING",
            )
            .bind(row.id)
            .bind(*dep)
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    async fn fetch_raw(&mut self, id: SchemaId) -> StorageResult<Option<RawRecord>> {
        let row = sqlx::query(SELECT_BY_ID)
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.as_ref().map(RawRecord::decode).transpose()
    }
}

#[async_trait]
impl WriteTx for SqliteWriteTx {
    async fn state_for_update(&mut self, id: SchemaId) -> StorageResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT state FROM schemas WHERE id = ?1")
                .bind(id)
                .fetch_optional(&mut *self.tx)
                .await?,
        )
    }

    async fn update_state(
        &mut self,
        id: SchemaId,
        state: SchemaState,
        now: DateTime<Utc>,
    ) -> StorageResult<()> {
        sqlx::query("UPDATE schemas SET state = ?2, updated_at = ?3 WHERE id = ?1")
            .bind(id)
            .bind(state.as_str())
            .bind(to_micros(now))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn find_version(
        &mut self,
        subject: &Subject,
        version: &SchemaVersion,
    ) -> StorageResult<Option<RawRecord>> {
        find_version(&mut *self.tx, subject, version).await
    }

    async fn mark_version_deleted(
        &mut self,
        subject: &Subject,
        version: &SchemaVersion,
        now: DateTime<Utc>,
    ) -> StorageResult<Option<RawRecord>> {
        let row = sqlx::query(concat!(
            "UPDATE schemas SET state = 'deleted', deleted_at = coalesce(deleted_at, ?6),
                    updated_at = CASE WHEN state = 'deleted' THEN updated_at ELSE ?6 END
             WHERE subject = ?1 AND major = ?2 AND minor = ?3 AND patch = ?4 AND pre = ?5
             RETURNING ",
            record_columns!("content")
        ))
        .bind(subject.as_str())
        .bind(version.major())
        .bind(version.minor())
        .bind(version.patch())
        .bind(version.pre())
        .bind(to_micros(now))
        .fetch_optional(&mut *self.tx)
        .await?;
        row.as_ref().map(RawRecord::decode).transpose()
    }

    async fn mark_subject_deleted(
        &mut self,
        subject: &Subject,
        now: DateTime<Utc>,
    ) -> StorageResult<Vec<RawRecord>> {
        let rows = sqlx::query(concat!(
            "UPDATE schemas SET state = 'deleted', deleted_at = ?2, updated_at = ?2
             WHERE subject = ?1 AND state <> 'deleted'
             RETURNING ",
            record_columns!("content")
        ))
        .bind(subject.as_str())
        .bind(to_micros(now))
        .fetch_all(&mut *self.tx)
        .await?;
        RawRecord::decode_all(&rows)
    }

    async fn live_referrer(&mut self, id: SchemaId) -> StorageResult<Option<Referrer>> {
        Ok(sqlx::query_as(
            "SELECT s.subject, s.major, s.minor, s.patch, s.pre
             FROM schema_dependencies d JOIN schemas s ON s.id = d.schema_id
             WHERE d.depends_on_id = ?1 AND s.state <> 'deleted'
             ORDER BY s.subject, s.major, s.minor, s.patch, s.pre_key LIMIT 1",
        )
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await?)
    }

    async fn delete_row(&mut self, id: SchemaId) -> StorageResult<()> {
        sqlx::query("DELETE FROM schemas WHERE id = ?1")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn rows_pointing_to(&mut self, key: &str) -> StorageResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM schemas WHERE content_location = ?1")
            .bind(key)
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(crate::sql::rows::to_u64(n))
    }

    async fn point_to_object(&mut self, id: SchemaId, key: &str) -> StorageResult<()> {
        sqlx::query(
            "UPDATE schemas SET content = NULL, content_location = ?2, content_pending = 0
             WHERE id = ?1 AND content_pending = 1",
        )
        .bind(id)
        .bind(key)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn commit(self) -> StorageResult<()> {
        Ok(self.tx.commit().await?)
    }
}
