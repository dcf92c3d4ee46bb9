//! The statements of a PostgreSQL write transaction (the locked path) that are PostgreSQL's
//! alone; the rest, and the point reads the optimistic path shares with it, come from
//! `sql::shared`, over the SQL text in `queries`.
//!
//! Where SQLite's single write lock serialises every writer, PostgreSQL takes finer locks: a
//! transaction-scoped advisory lock per subject (`hashtextextended(subject, 0)`) and per object
//! key (`hashtextextended(key, 1)`), and row locks where a rule reads a row it then changes
//! (`FOR UPDATE`) or relies on (`FOR SHARE`).

use async_trait::async_trait;
use schema_registry_core::Subject;
use sqlx::{Postgres, Transaction};

use super::registration::{insert_version, Decided};
use super::{queries, PostgresDb};
use crate::sql::register::{InsertRow, WriteStatements};
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

crate::sql::shared::dialect_statements! {
    driver: Postgres,
    db: PostgresDb,
    tx: PgWriteTx,
    queries: queries,
    reader: reader,
    writer: pool,
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
}
