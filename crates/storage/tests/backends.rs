//! Runs the conformance suite (`schema_registry_storage::conformance`) against every backend:
//! one named test per check per backend, so a failure names both. The cache wrapper runs the same
//! suite: over SQLite with L1 only, and over PostgreSQL with L1 and a real Redis as L2; and so
//! does the object tier: a local directory under SQLite, the S3-compatible test server under
//! PostgreSQL.

use std::sync::Arc;

use schema_registry_storage::conformance::Stack;
use schema_registry_storage::conformance_tests;
use schema_registry_storage::objects::{ObjectOptions, ObjectTier};
use schema_registry_storage::{
    CacheOptions, CachedBackend, PostgresBackend, PostgresOptions, SqliteBackend, SqliteOptions,
};
use schema_registry_testkit::{redis_url, s3_test_options, unique_prefix, TestDatabase};

conformance_tests!(sqlite_backend, sqlite().await);
conformance_tests!(postgres_backend, postgres().await);
conformance_tests!(sqlite_objects_local, sqlite_objects_local().await);
conformance_tests!(postgres_objects_s3, postgres_objects_s3().await);
conformance_tests!(cached_sqlite, cached_sqlite().await);
conformance_tests!(cached_postgres_redis, cached_postgres_redis().await);

async fn sqlite() -> Stack {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("registry.db").display());
    let backend = SqliteBackend::open(&url, &SqliteOptions::default())
        .await
        .expect("open sqlite");
    Stack::new(Arc::new(backend)).keeping(dir)
}

/// Small pools: many test databases share one server.
pub fn test_pg_options() -> PostgresOptions {
    PostgresOptions {
        max_connections: 8,
        min_connections: 0,
        ..PostgresOptions::default()
    }
}

async fn postgres() -> Stack {
    let db = TestDatabase::create().await;
    let backend = PostgresBackend::open(db.url(), &test_pg_options())
        .await
        .expect("open postgres");
    Stack::new(Arc::new(backend)).keeping(db)
}

/// SQLite with an object tier in a local directory and a tiny threshold, so almost every
/// document is stored as an object.
async fn sqlite_objects_local() -> Stack {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("registry.db").display());
    let mut options = ObjectOptions::local(dir.path().join("objects"));
    options.threshold_bytes = 40;
    let tier = Arc::new(ObjectTier::new(options).expect("tier"));
    let backend = SqliteBackend::open_with_objects(&url, &SqliteOptions::default(), Some(tier))
        .await
        .expect("open");
    Stack::new(Arc::new(backend)).keeping(dir)
}

/// PostgreSQL with the test S3 server as the object tier, tiny threshold.
async fn postgres_objects_s3() -> Stack {
    let db = TestDatabase::create().await;
    let tier = Arc::new(ObjectTier::new(s3_test_options(&unique_prefix(), 40)).expect("tier"));
    let backend = PostgresBackend::open_with_objects(db.url(), &test_pg_options(), Some(tier))
        .await
        .expect("open");
    Stack::new(Arc::new(backend)).keeping(db)
}

/// SQLite behind the L1 cache (no Redis).
async fn cached_sqlite() -> Stack {
    let options = CacheOptions {
        encodings: vec![&schema_registry_api::native::json::RECORD],
        ..CacheOptions::default()
    };
    sqlite()
        .await
        .wrap(|inner| Arc::new(CachedBackend::new(inner, options).expect("cache")))
}

/// PostgreSQL behind L1 and L2 (the test Redis, under a prefix of its own).
async fn cached_postgres_redis() -> Stack {
    let options = CacheOptions {
        redis_url: Some(redis_url()),
        key_prefix: unique_prefix(),
        encodings: vec![&schema_registry_api::native::json::RECORD],
        ..CacheOptions::default()
    };
    postgres()
        .await
        .wrap(|inner| Arc::new(CachedBackend::new(inner, options).expect("cache")))
}
