//! Test support for LLM Schema Registry's integration tests and benchmarks: the shared services
//! they run against, and private ones a test may stop.
//!
//! # Modules
//! - [`env`](mod@env): the shared services' URLs from the environment (`DATABASE_URL`,
//!   `REDIS_URL`), the panics that say how to provide them, and [`unique_prefix`] to keep tests
//!   apart on them.
//! - [`postgres`]: [`TestDatabase`], a fresh migrated database per test, copied from a template
//!   migrated once; [`PrivateCluster`], a PostgreSQL cluster of the test's own (optionally
//!   with TLS).
//! - [`redis`]: [`PrivateRedis`], a Redis server of the test's own (password, TLS).
//! - [`s3`]: object-tier options for the test S3-compatible server ([`s3_test_options`],
//!   [`s3_options_for`]) and [`PrivateS3`], an `s3s-fs` server of the test's own.
//! - [`tls`]: [`TlsMaterial`], a throwaway certificate authority and server certificate.
//! - `host` (private): free loopback ports, whether this process runs as root.
//!
//! The services come from `scripts/test.sh`, which provides PostgreSQL, Redis and an
//! S3-compatible server (from the environment, or throwaway instances) and exports where they
//! are. A service that is missing is a test **failure**, never a skip. The shared services must
//! never be stopped; a test that kills a server starts a private one.
//!
//! Used as a dev-dependency only: by the storage crate's integration tests and benchmarks (not
//! its `#[cfg(test)]` unit tests, which would see a second copy of the storage crate) and by the
//! server's tests.

pub mod env;
mod host;
pub mod postgres;
pub mod redis;
pub mod s3;
pub mod tls;

pub use env::{postgres_url, redis_url, unique_prefix, DATABASE_URL_VAR};
pub use postgres::{PrivateCluster, TestDatabase};
pub use redis::PrivateRedis;
pub use s3::{s3_options_for, s3_test_options, PrivateS3};
pub use tls::TlsMaterial;
