//! Runs the conformance suite (`suite/`) against every backend: one named test per check per
//! backend, so a failure names both. The cache wrapper runs the same suite: over SQLite with L1
//! only, and over PostgreSQL with L1 and a real Redis as L2; and so does the object tier: a
//! local directory under SQLite, the S3-compatible test server under PostgreSQL.

mod suite;

use std::sync::Arc;

use schema_registry_storage::objects::{ObjectOptions, ObjectTier};
use schema_registry_storage::{
    CacheOptions, CachedBackend, PostgresBackend, PostgresOptions, SqliteBackend, SqliteOptions,
    Storage,
};
use schema_registry_testkit::{redis_url, s3_test_options, unique_prefix, TestDatabase};

/// A backend and what must outlive it.
struct Fixture {
    backend: Arc<dyn Storage>,
    _guard: Box<dyn std::any::Any + Send>,
}

async fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("registry.db").display());
    let backend = SqliteBackend::open(&url, &SqliteOptions::default())
        .await
        .expect("open sqlite");
    Fixture {
        backend: Arc::new(backend),
        _guard: Box::new(dir),
    }
}

/// Small pools: many test databases share one server.
pub fn test_pg_options() -> PostgresOptions {
    PostgresOptions {
        max_connections: 8,
        min_connections: 0,
        ..PostgresOptions::default()
    }
}

async fn postgres() -> Fixture {
    let db = TestDatabase::create().await;
    let backend = PostgresBackend::open(db.url(), &test_pg_options())
        .await
        .expect("open postgres");
    Fixture {
        backend: Arc::new(backend),
        _guard: Box::new(db),
    }
}

/// SQLite with an object tier in a local directory and a tiny threshold, so almost every
/// document is stored as an object.
async fn sqlite_objects_local() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("registry.db").display());
    let mut options = ObjectOptions::local(dir.path().join("objects"));
    options.threshold_bytes = 40;
    let tier = Arc::new(ObjectTier::new(options).expect("tier"));
    let backend = SqliteBackend::open_with_objects(&url, &SqliteOptions::default(), Some(tier))
        .await
        .expect("open");
    Fixture {
        backend: Arc::new(backend),
        _guard: Box::new(dir),
    }
}

/// PostgreSQL with the test S3 server as the object tier, tiny threshold.
async fn postgres_objects_s3() -> Fixture {
    let db = TestDatabase::create().await;
    let tier = Arc::new(ObjectTier::new(s3_test_options(&unique_prefix(), 40)).expect("tier"));
    let backend = PostgresBackend::open_with_objects(db.url(), &test_pg_options(), Some(tier))
        .await
        .expect("open");
    Fixture {
        backend: Arc::new(backend),
        _guard: Box::new(db),
    }
}

/// SQLite behind the L1 cache (no Redis).
async fn cached_sqlite() -> Fixture {
    let f = sqlite().await;
    let options = CacheOptions {
        encodings: vec![&schema_registry_api::native::json::RECORD],
        ..CacheOptions::default()
    };
    let cached = CachedBackend::new(f.backend, options).expect("cache");
    Fixture {
        backend: Arc::new(cached),
        _guard: f._guard,
    }
}

/// PostgreSQL behind L1 and L2 (the test Redis, under a prefix of its own).
async fn cached_postgres_redis() -> Fixture {
    let f = postgres().await;
    let options = CacheOptions {
        redis_url: Some(redis_url()),
        key_prefix: unique_prefix(),
        encodings: vec![&schema_registry_api::native::json::RECORD],
        ..CacheOptions::default()
    };
    let cached = CachedBackend::new(f.backend, options).expect("cache");
    Fixture {
        backend: Arc::new(cached),
        _guard: f._guard,
    }
}

macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod sqlite_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let f = super::sqlite().await;
                    super::suite::$check(f.backend.clone()).await;
                }
            )*
        }
        mod postgres_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let f = super::postgres().await;
                    super::suite::$check(f.backend.clone()).await;
                }
            )*
        }
        mod sqlite_objects_local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let f = super::sqlite_objects_local().await;
                    super::suite::$check(f.backend.clone()).await;
                }
            )*
        }
        mod postgres_objects_s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let f = super::postgres_objects_s3().await;
                    super::suite::$check(f.backend.clone()).await;
                }
            )*
        }
        mod cached_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let f = super::cached_sqlite().await;
                    super::suite::$check(f.backend.clone()).await;
                }
            )*
        }
        mod cached_postgres_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let f = super::cached_postgres_redis().await;
                    super::suite::$check(f.backend.clone()).await;
                }
            )*
        }
    };
}

conformance!(
    register_then_read_back,
    unknown_things_are_not_found,
    registration_is_idempotent,
    versions_are_bumped_from_the_highest_ever_assigned,
    versions_are_never_handed_out_twice,
    explicit_version_conflicts_leave_data_unchanged,
    latest_prefers_releases_and_skips_deleted,
    versions_list_in_semver_order,
    subjects_are_listed_with_prefix_and_pages,
    search_filters_and_ranks,
    state_changes,
    encoded_reads_match_and_follow_writes,
    soft_delete_hides_but_keeps,
    delete_subject_deletes_every_version,
    hard_delete_rules,
    references_and_dependency_walks,
    batch_registration_is_atomic,
    concurrent_registrations_never_collide,
    concurrent_identical_registrations_create_one,
    statistics_count_everything,
    other_formats_round_trip,
    hostile_strings_are_data,
    health_is_ok,
    popular_lists_the_most_read_first,
);
