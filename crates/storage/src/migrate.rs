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

/// What reverting the most recent migration would remove: the migration, and each table its
/// down script drops that exists, with its rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RevertPlan {
    pub version: i64,
    pub description: String,
    pub tables: Vec<TableRows>,
}

/// A table and how many rows it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableRows {
    pub table: String,
    pub rows: u64,
}

impl RevertPlan {
    /// Rows in the tables the revert drops, all together.
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
}

/// What [`revert`] would do now; `None` when nothing is applied. Reads only.
pub async fn revert_plan(url: &str) -> StorageResult<Option<RevertPlan>> {
    let Some(&last) = applied_versions(url, false).await?.iter().max() else {
        return Ok(None);
    };
    let dialect = Dialect::from_url(url)?;
    let migrator = dialect.migrator();
    let description = migrator
        .iter()
        .find(|m| m.version == last && m.migration_type.is_up_migration())
        .map(|m| m.description.to_string())
        .unwrap_or_default();
    let names = migrator
        .iter()
        .find(|m| m.version == last && m.migration_type.is_down_migration())
        .map(|m| dropped_tables(&m.sql))
        .unwrap_or_default();
    let mut tables = Vec::new();
    for table in names {
        // The names come from this binary's own migrations, never from input.
        let count = format!("SELECT COUNT(*) FROM \"{table}\"");
        let rows: Result<i64, sqlx::Error> = match dialect {
            Dialect::Sqlite => {
                let mut conn = sqlite_options(url, false)?.connect().await?;
                let rows = sqlx::query_scalar(&count).fetch_one(&mut conn).await;
                conn.close().await?;
                rows
            }
            Dialect::Postgres => {
                let mut conn = PgConnectOptions::from_str(url)?.connect().await?;
                let rows = sqlx::query_scalar(&count).fetch_one(&mut conn).await;
                conn.close().await?;
                rows
            }
        };
        // A table that is not there (already gone, or never made) holds nothing to lose.
        if let Ok(rows) = rows {
            tables.push(TableRows {
                table,
                rows: u64::try_from(rows).unwrap_or(0),
            });
        }
    }
    Ok(Some(RevertPlan {
        version: last,
        description,
        tables,
    }))
}

/// The tables a script drops (`DROP TABLE [IF EXISTS] name`), in order.
fn dropped_tables(sql: &str) -> Vec<String> {
    let code: String = sql
        .lines()
        .map(|line| line.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    code.split(';')
        .filter_map(|statement| {
            let words: Vec<&str> = statement.split_whitespace().collect();
            let upper: Vec<String> = words.iter().take(4).map(|w| w.to_uppercase()).collect();
            let name = match upper.iter().map(String::as_str).collect::<Vec<_>>()[..] {
                ["DROP", "TABLE", "IF", "EXISTS", ..] => words.get(4),
                ["DROP", "TABLE", ..] => words.get(2),
                _ => None,
            }?;
            Some(name.trim_matches('"').to_string())
        })
        .collect()
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_dropped_tables_are_read_from_a_down_script() {
        let sql = "-- drop it all\nDROP MATERIALIZED VIEW IF EXISTS v;\nDROP TABLE IF EXISTS a;\n\
                   drop table \"b\" ;\nALTER TABLE c DROP COLUMN d;\nDROP INDEX IF EXISTS e;";
        assert_eq!(super::dropped_tables(sql), ["a", "b"]);
    }
}
