//! Storage for LLM Schema Registry: the [`StorageBackend`] trait and its implementations.
//!
//! # Layout
//! - [`backend`]: the traits ([`StorageBackend`], the data operations; [`Operations`], the
//!   operational ones; [`Storage`], both), their query and result types. Start here.
//! - [`error`]: [`StorageError`], the one error vocabulary every backend translates into.
//! - [`encoded`]: [`EncodedRecord`], a record with the wire encodings of the interfaces, made
//!   once; [`Encoding`], how an interface names its shape without storage knowing it.
//! - [`cache`]: the multi-tier cache (L1 in-process, L2 Redis) as a wrapper around any backend.
//! - [`sqlite`]: the embedded default backend (one file, no external service).
//! - [`postgres`]: the production backend.
//! - [`objects`]: the object-storage tier for large content (S3, or a local directory).
//! - [`migrate`]: the embedded SQL migrations of both dialects and the `migrate` operations.
//! - [`open`](mod@open): picks and opens a backend from a database URL.
//! - [`sql`]: what both SQL backends share — [`SqlBackend`], the storage traits written once over
//!   the statements each dialect supplies, with the rules (registration, state changes,
//!   deletes, reconciliation) and row decoding.
//! - `conformance` (feature `test-support`): the conformance suite, the contract as checks, and
//!   `conformance_tests!`, which runs them all against a stack (a backend, a wrapper around one).
//!
//! **Invariant:** only this crate knows SQL. It never reads the environment or configuration
//! files: callers pass plain option structs.

pub mod backend;
mod background;
pub mod cache;
#[cfg(feature = "test-support")]
pub mod conformance;
pub mod encoded;
pub mod error;
pub mod migrate;
pub mod objects;
pub mod open;
pub mod postgres;
pub mod sql;
pub mod sqlite;

pub use backend::{
    CacheStats, Operations, Page, PointRead, Registered, SearchQuery, Storage, StorageBackend,
    StorageStats, SubjectQuery, SubjectSummary, TierHealth, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE,
};
pub use cache::{CacheOptions, CachedBackend};
pub use encoded::{EncodedRecord, Encoding};
pub use error::{ConflictReason, NotFound, StorageError, StorageResult};
pub use open::{open, sqlite_file, StorageOptions};
pub use postgres::{PostgresBackend, PostgresOptions};
pub use sql::SqlBackend;
pub use sqlite::{SqliteBackend, SqliteOptions};

/// A database URL with its password replaced by `***`, safe to log.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(super::redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            super::redact_url("sqlite://data/registry.db"),
            "sqlite://data/registry.db"
        );
    }
}
