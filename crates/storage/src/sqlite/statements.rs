//! The statements of a SQLite write transaction that are SQLite's alone; the rest come from
//! `sql::shared`, over the SQL text in `queries`.
//!
//! Every write transaction starts with `BEGIN IMMEDIATE` and so holds the database's single
//! write lock from its first statement: the subject and content locks the rules ask for, and
//! the row locks PostgreSQL takes, are already held.

use async_trait::async_trait;
use schema_registry_core::Subject;
use sqlx::{Sqlite, Transaction};

use super::{queries, SqliteDb};
use crate::sql::register::{InsertRow, WriteStatements};
use crate::sql::rows::to_micros;
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

crate::sql::shared::dialect_statements! {
    driver: Sqlite,
    db: SqliteDb,
    tx: SqliteWriteTx,
    queries: queries,
    reader: reader,
    writer: writer,
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
        let insert = sqlx::query(
            "INSERT INTO schemas (id, subject, major, minor, patch, pre, pre_key, format, content, checksum,
                                  size_bytes, state, description, metadata, tags, refs, created_at, updated_at,
                                  content_location, content_pending)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'active', ?12, ?13, ?14, ?15, ?16, ?16, ?17, ?18)",
        );
        let inserted = crate::sql::shared::bind_version_row!(insert, row, queries)
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
}
