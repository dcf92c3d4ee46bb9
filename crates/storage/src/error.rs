//! One error vocabulary for every backend. Backends translate their native errors (sqlx,
//! Redis, object storage) into these variants, so callers — the HTTP layer, the cache
//! wrapper — never match on a driver's error type.

use schema_registry_core::{DomainError, SchemaId, SchemaVersion, Subject};
use thiserror::Error;

pub type StorageResult<T> = Result<T, StorageError>;

/// What a storage operation can fail with.
#[derive(Debug, Error)]
pub enum StorageError {
    /// The thing asked for does not exist.
    #[error("{0}")]
    NotFound(NotFound),
    /// The version exists already with different content.
    #[error("version {version} of subject {subject} already exists with different content")]
    VersionExists {
        subject: Subject,
        version: SchemaVersion,
    },
    /// The operation is refused by the current state of the data.
    #[error("{message}")]
    Conflict {
        reason: ConflictReason,
        message: String,
    },
    /// The request is invalid (a domain rule, or a reference that does not resolve).
    #[error(transparent)]
    Invalid(#[from] DomainError),
    /// The backend cannot be reached or is overloaded; retrying later may succeed.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Stored content does not match its checksum (or is missing from the object store). Logged
    /// and reported to the client as `content_corrupted`; never served.
    #[error("{0}")]
    Corrupted(String),
    /// A bug or corrupted data. Logged in full, never shown to clients.
    #[error("internal storage error: {0}")]
    Internal(String),
}

/// Which thing was not found.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NotFound {
    #[error("schema {0} not found")]
    Schema(SchemaId),
    #[error("subject {0} not found")]
    Subject(Subject),
    #[error("version {version} of subject {subject} not found")]
    Version {
        subject: Subject,
        version: SchemaVersion,
    },
}

/// Why a request conflicts with what is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictReason {
    /// Hard delete asked for a version that has not been soft-deleted first.
    NotSoftDeleted,
    /// Hard delete asked for a version that another live schema references.
    Referenced,
    /// A state change asked of a deleted version.
    Deleted,
}

impl ConflictReason {
    pub fn code(self) -> &'static str {
        match self {
            ConflictReason::NotSoftDeleted => "not_soft_deleted",
            ConflictReason::Referenced => "schema_referenced",
            ConflictReason::Deleted => "schema_deleted",
        }
    }
}

impl StorageError {
    /// `version` of `subject` does not exist.
    pub fn version_not_found(
        subject: &schema_registry_core::Subject,
        version: &schema_registry_core::SchemaVersion,
    ) -> Self {
        StorageError::NotFound(NotFound::Version {
            subject: subject.clone(),
            version: version.clone(),
        })
    }

    pub fn conflict(reason: ConflictReason, message: impl Into<String>) -> Self {
        StorageError::Conflict {
            reason,
            message: message.into(),
        }
    }

    /// A short, stable name of the variant, for metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            StorageError::NotFound(_) => "not_found",
            StorageError::VersionExists { .. } => "version_exists",
            StorageError::Conflict { .. } => "conflict",
            StorageError::Invalid(_) => "invalid",
            StorageError::Unavailable(_) => "unavailable",
            StorageError::Corrupted(_) => "corrupted",
            StorageError::Internal(_) => "internal",
        }
    }

    /// Whether retrying the same operation later may succeed.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StorageError::Unavailable(_))
    }
}

/// PostgreSQL's SQLSTATE for a database that does not exist.
const INVALID_CATALOG_NAME: &str = "3D000";

/// What is wrong, and how to fix it, for PostgreSQL's `database "x" does not exist`.
fn missing_database(message: &str) -> String {
    let name = message.split('"').nth(1).filter(|n| !n.is_empty());
    match name {
        Some(name) => format!(
            "database \"{name}\" does not exist on the server; create it (createdb {name}, or \
             CREATE DATABASE \"{name}\"), or fix the database name in the URL"
        ),
        None => format!(
            "{message}; create the database (createdb NAME, or CREATE DATABASE NAME), or fix \
             the database name in the URL"
        ),
    }
}

impl From<sqlx::Error> for StorageError {
    /// Connection-level failures become `Unavailable` (the server answers 503 and recovers when
    /// the database is back); everything else is `Internal`. Constraint violations that mean a
    /// client error are translated by the backend at the call site, where the meaning is known.
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StorageError::Unavailable(e.to_string()),
            sqlx::Error::Database(db) if db.code().as_deref() == Some(INVALID_CATALOG_NAME) => {
                StorageError::Unavailable(missing_database(db.message()))
            }
            sqlx::Error::Database(db) => {
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                // PostgreSQL: class 08 connection exception, 57P01..03 admin shutdown / crash
                // shutdown / cannot connect now, 53 insufficient resources.
                // SQLite: 5 SQLITE_BUSY, 6 SQLITE_LOCKED (the busy timeout ran out).
                if code.starts_with("08")
                    || code.starts_with("57P")
                    || code.starts_with("53")
                    || code == "5"
                    || code == "6"
                {
                    StorageError::Unavailable(e.to_string())
                } else {
                    StorageError::Internal(e.to_string())
                }
            }
            _ => StorageError::Internal(e.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StorageError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        match e {
            sqlx::migrate::MigrateError::Execute(inner) => StorageError::from(inner),
            other => StorageError::Internal(format!("migration failed: {other}")),
        }
    }
}
