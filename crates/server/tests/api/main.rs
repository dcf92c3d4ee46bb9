//! HTTP API tests: the real server on a free port, a fresh database per test. Each topic module
//! stamps out its checks with `on_every_backend!`: SQLite (with the L1 cache), PostgreSQL (L1) and
//! PostgreSQL with Redis as L2.

/// One `#[tokio::test]` per check and backend, as `<module>::<backend>::<check>`: each calls the
/// module's `async fn check(&TestApp)` with an app of its own.
macro_rules! on_every_backend {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let app = crate::helpers::TestApp::spawn(crate::helpers::Backend::Sqlite).await;
                    super::$check(&app).await;
                }
            )*
        }
        mod postgres_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let app = crate::helpers::TestApp::spawn(crate::helpers::Backend::PostgresRedis).await;
                    super::$check(&app).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let app = crate::helpers::TestApp::spawn(crate::helpers::Backend::Postgres).await;
                    super::$check(&app).await;
                }
            )*
        }
    };
}

mod cache;
mod deletes;
mod dependencies;
mod errors;
mod health;
mod helpers;
mod lifecycle;
mod listing;
mod metrics;
mod objects;
mod processes;
mod reads;
mod registration;
mod search;
mod states;
