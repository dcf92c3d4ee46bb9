//! HTTP API tests: the real server on a free port, a fresh database per test.
//!
//! Behaviour that depends on the storage backend (what registration, reads, listing, search,
//! state changes, deletes, dependencies, statistics and concurrent writers return) runs on SQLite
//! and on PostgreSQL, each with the L1 cache, stamped out by `on_both_backends!`. HTTP behaviour
//! that does not (framing, headers, content types, input validation, fallbacks, request ids)
//! runs once, on SQLite. `smoke.rs` walks the main flow once on PostgreSQL with Redis as L2; the
//! storage crate's conformance suite (`crates/storage/tests/backends.rs`) runs every storage
//! promise on each stack, cached ones included.

/// One `#[tokio::test]` per check and backend, as `<module>::{sqlite,postgres}::<check>`: each
/// calls the module's `async fn check(&TestApp)` with an app of its own.
macro_rules! on_both_backends {
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
mod http;
mod lifecycle;
mod listing;
mod metrics;
mod objects;
mod openapi;
mod processes;
mod reads;
mod registration;
mod search;
mod smoke;
mod states;
mod timeouts;
