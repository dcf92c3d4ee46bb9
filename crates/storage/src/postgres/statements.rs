//! The statements of a PostgreSQL write transaction (the locked path), and the point reads the
//! optimistic path shares with it.
//!
//! Where SQLite's single write lock serialises every writer, PostgreSQL takes finer locks: a
//! transaction-scoped advisory lock per subject (`hashtextextended(subject, 0)`) and per object
//! key (`hashtextextended(key, 1)`), and row locks where a rule reads a row it then changes
//! (`FOR UPDATE`) or relies on (`FOR SHARE`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use schema_registry_core::{
    SchemaContent, SchemaId, SchemaReference, SchemaState, SchemaVersion, Subject,
};
use sqlx::{Postgres, Row, Transaction};

use super::registration::{insert_version, Decided};
use super::{SELECT_BY_ID, SELECT_BY_VERSION};
use crate::sql::lifecycle::Referrer;
use crate::sql::register::{InsertRow, RegistrationReads, WriteStatements};
use crate::sql::rows::{latest_order, record_columns, state_from, to_u64, version_of, RawRecord};
use crate::sql::WriteTx;
use crate::{StorageError, StorageResult};

/// One open write transaction on the primary.
pub(crate) struct PgWriteTx {
    tx: Transaction<'static, Postgres>,
}

impl PgWriteTx {
    pub(super) fn new(tx: Transaction<'static, Postgres>) -> Self {
        PgWriteTx { tx }
    }
}

/// A version's row by id, on any connection.
pub(super) async fn find_id<'e, E: sqlx::PgExecutor<'e>>(
    executor: E,
    id: SchemaId,
) -> StorageResult<Option<RawRecord>> {
    let row = sqlx::query(SELECT_BY_ID)
        .bind(id)
        .fetch_optional(executor)
        .await?;
    row.as_ref().map(RawRecord::decode).transpose()
}

/// A version's row by subject and version, on any connection.
pub(super) async fn find_version<'e, E: sqlx::PgExecutor<'e>>(
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

/// The id and state of a subject's version, on any connection: what `version_exists` and
/// `resolve` ask.
pub(super) async fn id_and_state<'e, E: sqlx::PgExecutor<'e>>(
    executor: E,
    subject: &Subject,
    version: &SchemaVersion,
) -> StorageResult<Option<(SchemaId, SchemaState)>> {
    let row = sqlx::query(
        "SELECT id, state FROM schemas WHERE subject = $1 AND major = $2 AND minor = $3 AND patch = $4 AND pre = $5",
    )
    .bind(subject.as_str())
    .bind(version.major())
    .bind(version.minor())
    .bind(version.patch())
    .bind(version.pre())
    .fetch_optional(executor)
    .await?;
    match row {
        None => Ok(None),
        Some(row) => Ok(Some((
            row.try_get("id")?,
            state_from(row.try_get("state")?)?,
        ))),
    }
}

/// Takes the transaction-scoped advisory lock `hashtextextended(text, seed)`.
async fn advisory_lock(
    tx: &mut Transaction<'static, Postgres>,
    text: &str,
    seed: i64,
) -> StorageResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, $2))")
        .bind(text)
        .bind(seed)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[async_trait]
impl RegistrationReads for PgWriteTx {
    async fn find_identical(
        &mut self,
        subject: &Subject,
        content: &SchemaContent,
    ) -> StorageResult<Option<(SchemaId, SchemaVersion)>> {
        let row = sqlx::query(concat!(
            "SELECT id, major, minor, patch, pre FROM schemas
             WHERE subject = $1 AND checksum = $2 AND format = $3 AND state <> 'deleted'
             ORDER BY ",
            latest_order!(),
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
        Ok(id_and_state(&mut *self.tx, subject, version)
            .await?
            .is_some())
    }

    async fn max_assigned(&mut self, subject: &Subject) -> StorageResult<Option<SchemaVersion>> {
        let row = sqlx::query(
            "SELECT max_major AS major, max_minor AS minor, max_patch AS patch, max_pre AS pre
             FROM subjects WHERE subject = $1",
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
        id_and_state(&mut *self.tx, &r.subject, &r.version).await
    }
}

#[async_trait]
impl WriteStatements for PgWriteTx {
    async fn lock_subject(&mut self, subject: &Subject) -> StorageResult<()> {
        advisory_lock(&mut self.tx, subject.as_str(), 0).await
    }

    async fn lock_content(&mut self, key: &str) -> StorageResult<()> {
        advisory_lock(&mut self.tx, key, 1).await
    }

    async fn insert(&mut self, row: &InsertRow<'_>) -> StorageResult<()> {
        if insert_version(&mut *self.tx, row, None, Decided::OnRead).await? {
            Ok(())
        } else {
            Err(StorageError::Internal(
                "an unconditional insert wrote nothing".into(),
            ))
        }
    }

    async fn fetch_raw(&mut self, id: SchemaId) -> StorageResult<Option<RawRecord>> {
        find_id(&mut *self.tx, id).await
    }
}

#[async_trait]
impl WriteTx for PgWriteTx {
    async fn state_for_update(&mut self, id: SchemaId) -> StorageResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT state FROM schemas WHERE id = $1 FOR UPDATE")
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
        sqlx::query("UPDATE schemas SET state = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(state.as_str())
            .bind(now)
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
            "UPDATE schemas SET state = 'deleted', deleted_at = coalesce(deleted_at, $6),
                    updated_at = CASE WHEN state = 'deleted' THEN updated_at ELSE $6 END
             WHERE subject = $1 AND major = $2 AND minor = $3 AND patch = $4 AND pre = $5
             RETURNING ",
            record_columns!("content_text")
        ))
        .bind(subject.as_str())
        .bind(version.major())
        .bind(version.minor())
        .bind(version.patch())
        .bind(version.pre())
        .bind(now)
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
            "UPDATE schemas SET state = 'deleted', deleted_at = $2, updated_at = $2
             WHERE subject = $1 AND state <> 'deleted'
             RETURNING ",
            record_columns!("content_text")
        ))
        .bind(subject.as_str())
        .bind(now)
        .fetch_all(&mut *self.tx)
        .await?;
        RawRecord::decode_all(&rows)
    }

    async fn live_referrer(&mut self, id: SchemaId) -> StorageResult<Option<Referrer>> {
        Ok(sqlx::query_as(
            "SELECT s.subject, s.major, s.minor, s.patch, s.pre
             FROM schema_dependencies d JOIN schemas s ON s.id = d.schema_id
             WHERE d.depends_on_id = $1 AND s.state <> 'deleted'
             ORDER BY s.subject, s.major, s.minor, s.patch, s.pre_key LIMIT 1
             FOR SHARE OF s",
        )
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await?)
    }

    async fn delete_row(&mut self, id: SchemaId) -> StorageResult<()> {
        sqlx::query("DELETE FROM schemas WHERE id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn rows_pointing_to(&mut self, key: &str) -> StorageResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM schemas WHERE content_location = $1")
            .bind(key)
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(to_u64(n))
    }

    async fn point_to_object(&mut self, id: SchemaId, key: &str) -> StorageResult<()> {
        sqlx::query(
            "UPDATE schemas SET content_text = NULL, content = NULL, content_location = $2, content_pending = false
             WHERE id = $1 AND content_pending",
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
