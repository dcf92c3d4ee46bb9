//! Opening a backend from a database URL: the one place that maps a URL scheme to an
//! implementation, so the server never names a backend type.

use std::sync::Arc;

use crate::migrate::Dialect;
use crate::{
    PostgresBackend, PostgresOptions, SqliteBackend, SqliteOptions, StorageBackend, StorageResult,
};

/// Options for every backend; each uses its own part.
#[derive(Debug, Clone, Default)]
pub struct StorageOptions {
    pub sqlite: SqliteOptions,
    pub postgres: PostgresOptions,
}

/// Opens the backend `url` names (`sqlite://...` or `postgres://...`), applying migrations.
pub async fn open(url: &str, options: &StorageOptions) -> StorageResult<Arc<dyn StorageBackend>> {
    Ok(match Dialect::from_url(url)? {
        Dialect::Sqlite => Arc::new(SqliteBackend::open(url, &options.sqlite).await?),
        Dialect::Postgres => Arc::new(PostgresBackend::open(url, &options.postgres).await?),
    })
}
