//! Opening a backend from a database URL: the one place that maps a URL scheme to an
//! implementation, so the server never names a backend type.

use std::sync::Arc;

use crate::migrate::Dialect;
use crate::objects::{ObjectOptions, ObjectTier};
use crate::{
    PostgresBackend, PostgresOptions, SqliteBackend, SqliteOptions, Storage, StorageResult,
};

/// Options for every backend; each uses its own part.
#[derive(Debug, Clone, Default)]
pub struct StorageOptions {
    pub sqlite: SqliteOptions,
    pub postgres: PostgresOptions,
    /// The object tier for large content; `None` keeps all content in the database.
    pub objects: Option<ObjectOptions>,
}

/// The database file a `sqlite:` URL names; `None` for any other URL (and for an in-memory
/// database). The server locks a file beside it so that one process at a time serves it.
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    use std::str::FromStr;
    if Dialect::from_url(url).ok()? != Dialect::Sqlite {
        return None;
    }
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    let path = options.get_filename();
    (!path.as_os_str().is_empty() && path != std::path::Path::new(":memory:"))
        .then(|| path.to_path_buf())
}

/// Opens the backend `url` names (`sqlite://...` or `postgres://...`), applying migrations.
pub async fn open(url: &str, options: &StorageOptions) -> StorageResult<Arc<dyn Storage>> {
    let objects = match &options.objects {
        Some(o) => Some(Arc::new(ObjectTier::new(o.clone())?)),
        None => None,
    };
    Ok(match Dialect::from_url(url)? {
        Dialect::Sqlite => {
            Arc::new(SqliteBackend::open_with_objects(url, &options.sqlite, objects).await?)
        }
        Dialect::Postgres => {
            Arc::new(PostgresBackend::open_with_objects(url, &options.postgres, objects).await?)
        }
    })
}
