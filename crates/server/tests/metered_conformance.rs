//! The storage conformance suite (`schema_registry_storage::conformance`) through the metrics
//! decorator, `MeteredBackend`: a decorator that only counts and times must keep every promise
//! of the stack it wraps. It runs around SQLite, and around the stack a multi-server deployment
//! uses: PostgreSQL behind the L1 cache and Redis as L2.

use std::sync::Arc;

use schema_registry_server::metrics::MeteredBackend;
use schema_registry_storage::conformance::Stack;
use schema_registry_storage::conformance_tests;
use schema_registry_storage::{
    CacheOptions, CachedBackend, PostgresBackend, PostgresOptions, SqliteBackend, SqliteOptions,
    Storage,
};
use schema_registry_testkit::{redis_url, unique_prefix, TestDatabase};

conformance_tests!(metered_sqlite, sqlite().await.wrap(metered));
conformance_tests!(
    metered_cached_postgres_redis,
    cached_postgres_redis().await.wrap(metered)
);

fn metered(inner: Arc<dyn Storage>) -> Arc<dyn Storage> {
    Arc::new(MeteredBackend::new(inner))
}

async fn sqlite() -> Stack {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("registry.db").display());
    let backend = SqliteBackend::open(&url, &SqliteOptions::default())
        .await
        .expect("open sqlite");
    Stack::new(Arc::new(backend)).keeping(dir)
}

/// PostgreSQL (a small pool: many test databases share one server) behind L1 and L2 (the test
/// Redis, under a prefix of its own).
async fn cached_postgres_redis() -> Stack {
    let db = TestDatabase::create().await;
    let pool = PostgresOptions {
        max_connections: 8,
        min_connections: 0,
        ..PostgresOptions::default()
    };
    let backend = PostgresBackend::open(db.url(), &pool)
        .await
        .expect("open postgres");
    let cache = CacheOptions {
        redis_url: Some(redis_url()),
        key_prefix: unique_prefix(),
        ..CacheOptions::default()
    };
    let cached = CachedBackend::new(Arc::new(backend), cache).expect("cache");
    Stack::new(Arc::new(cached)).keeping(db)
}
