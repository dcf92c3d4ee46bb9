//! HTTP API tests: the real server on a free port, a fresh database per test, every check run
//! against SQLite (with the L1 cache), PostgreSQL (L1) and PostgreSQL with Redis as L2.

mod cache;
mod endpoints;
mod helpers;
mod lifecycle;
mod metrics;
mod objects;
mod processes;

macro_rules! api_suite {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let app = crate::helpers::TestApp::spawn(crate::helpers::Backend::Sqlite).await;
                    crate::endpoints::$check(&app).await;
                }
            )*
        }
        mod postgres_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let app = crate::helpers::TestApp::spawn(crate::helpers::Backend::PostgresRedis).await;
                    crate::endpoints::$check(&app).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let app = crate::helpers::TestApp::spawn(crate::helpers::Backend::Postgres).await;
                    crate::endpoints::$check(&app).await;
                }
            )*
        }
    };
}

api_suite!(
    register_then_fetch_every_way,
    retries_are_idempotent,
    versions_bump_or_are_explicit,
    bad_input_is_rejected_and_changes_nothing,
    state_can_be_deprecated_and_restored,
    deletes_soft_then_permanent,
    search_filters,
    dependency_endpoints,
    avro_and_protobuf,
    health_and_stats,
    concurrent_writers_get_distinct_versions,
    subject_listing_pages,
);
