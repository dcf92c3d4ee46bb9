//! Schema migrations: one directory of plain, reversible SQL files per dialect
//! (`migrations/sqlite/`, `migrations/postgres/`), embedded into the binary and tracked in
//! sqlx's `_sqlx_migrations` table.
//!
//! Backends apply pending migrations when they open; the `migrate run|info|revert` subcommand
//! drives the same migrators by hand.

use std::str::FromStr;

use serde::Serialize;
use sqlx::migrate::{Migrate, Migrator};
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, Database, Pool};

use crate::{StorageError, StorageResult};

pub static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
pub static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// Which SQL dialect a database URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    pub fn from_url(url: &str) -> StorageResult<Self> {
        if url.starts_with("sqlite:") {
            Ok(Dialect::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Dialect::Postgres)
        } else {
            Err(StorageError::Internal(format!(
                "unsupported database URL (expected sqlite://... or postgres://...): {}",
                crate::redact_url(url)
            )))
        }
    }

    pub fn migrator(self) -> &'static Migrator {
        match self {
            Dialect::Sqlite => &SQLITE,
            Dialect::Postgres => &POSTGRES,
        }
    }
}

/// One known migration and whether the database has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationInfo {
    pub version: i64,
    pub description: String,
    pub applied: bool,
}

/// Fails with `Unavailable` unless every migration this binary knows is applied.
pub async fn check_applied<DB: Database>(migrator: &Migrator, pool: &Pool<DB>) -> StorageResult<()>
where
    DB::Connection: Migrate,
{
    let mut conn = pool.acquire().await?;
    let applied = conn
        .list_applied_migrations()
        .await
        .map_err(|e| StorageError::Unavailable(format!("cannot read the migrations table: {e}")))?;
    let expected = latest_known(migrator);
    let current = applied.iter().map(|m| m.version).max().unwrap_or(0);
    if current < expected {
        return Err(StorageError::Unavailable(format!(
            "database schema is at migration {current}; this binary needs {expected} (run `llm-schema-registry migrate run`)"
        )));
    }
    Ok(())
}

fn latest_known(migrator: &Migrator) -> i64 {
    migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .map(|m| m.version)
        .max()
        .unwrap_or(0)
}

/// Applies every pending migration. Returns the versions applied now.
pub async fn run(url: &str) -> StorageResult<Vec<i64>> {
    let before = applied_versions(url, true).await?;
    match Dialect::from_url(url)? {
        Dialect::Sqlite => {
            let mut conn = sqlite_options(url, true)?.connect().await?;
            SQLITE.run_direct(&mut conn).await?;
            conn.close().await?;
        }
        Dialect::Postgres => {
            let mut conn = PgConnectOptions::from_str(url)?.connect().await?;
            POSTGRES.run_direct(&mut conn).await?;
            conn.close().await?;
        }
    }
    let after = applied_versions(url, false).await?;
    Ok(after.into_iter().filter(|v| !before.contains(v)).collect())
}

/// Every migration this binary knows, and whether the database has applied it.
pub async fn info(url: &str) -> StorageResult<Vec<MigrationInfo>> {
    let applied = applied_versions(url, false).await?;
    let migrator = Dialect::from_url(url)?.migrator();
    Ok(migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .map(|m| MigrationInfo {
            version: m.version,
            description: m.description.to_string(),
            applied: applied.contains(&m.version),
        })
        .collect())
}

/// Reverts the most recently applied migration. Returns its version, or `None` when nothing is
/// applied.
pub async fn revert(url: &str) -> StorageResult<Option<i64>> {
    let mut applied = applied_versions(url, false).await?;
    applied.sort_unstable();
    let Some(last) = applied.pop() else {
        return Ok(None);
    };
    let target = applied.last().copied().unwrap_or(0);
    match Dialect::from_url(url)? {
        Dialect::Sqlite => {
            let mut conn = sqlite_options(url, false)?.connect().await?;
            SQLITE.undo(&mut conn, target).await?;
            conn.close().await?;
        }
        Dialect::Postgres => {
            let mut conn = PgConnectOptions::from_str(url)?.connect().await?;
            POSTGRES.undo(&mut conn, target).await?;
            conn.close().await?;
        }
    }
    Ok(Some(last))
}

async fn applied_versions(url: &str, create: bool) -> StorageResult<Vec<i64>> {
    let applied = match Dialect::from_url(url)? {
        Dialect::Sqlite => {
            let options = sqlite_options(url, create)?;
            if !create && !options.get_filename().exists() {
                // No database file yet: nothing is applied. Reporting must not create it.
                return Ok(Vec::new());
            }
            let mut conn = options.connect().await?;
            conn.ensure_migrations_table().await?;
            let applied = conn.list_applied_migrations().await?;
            conn.close().await?;
            applied
        }
        Dialect::Postgres => {
            let mut conn = PgConnectOptions::from_str(url)?.connect().await?;
            conn.ensure_migrations_table().await?;
            let applied = conn.list_applied_migrations().await?;
            conn.close().await?;
            applied
        }
    };
    Ok(applied.into_iter().map(|m| m.version).collect())
}

fn sqlite_options(url: &str, create: bool) -> StorageResult<SqliteConnectOptions> {
    Ok(SqliteConnectOptions::from_str(url)?.create_if_missing(create))
}
