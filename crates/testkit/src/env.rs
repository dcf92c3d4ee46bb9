//! The shared test services, from the environment: `DATABASE_URL` (PostgreSQL) and `REDIS_URL`
//! (Redis), which `scripts/test.sh` exports. A test that needs one and finds it missing panics
//! with what to do; it never skips. [`unique_prefix`] keeps tests apart on a shared server.

/// The environment variable naming the PostgreSQL server tests use.
pub const DATABASE_URL_VAR: &str = "DATABASE_URL";

/// The PostgreSQL URL tests use. Panics with instructions when it is missing: a test that needs
/// PostgreSQL fails without one.
pub fn postgres_url() -> String {
    match std::env::var(DATABASE_URL_VAR) {
        Ok(url) if url.starts_with("postgres") => url,
        _ => panic!(
            "this test needs PostgreSQL: set {DATABASE_URL_VAR}=postgres://... or run the tests through scripts/test.sh, which starts a throwaway server"
        ),
    }
}

/// The Redis URL tests use (`REDIS_URL`). Panics with instructions when it is missing.
pub fn redis_url() -> String {
    match std::env::var("REDIS_URL") {
        Ok(url) if url.starts_with("redis") => url,
        _ => panic!(
            "this test needs Redis: set REDIS_URL=redis://... or run the tests through scripts/test.sh, which starts a throwaway server"
        ),
    }
}

/// A key prefix no other test uses, so tests can share one Redis.
pub fn unique_prefix() -> String {
    format!("sr-test-{}", uuid::Uuid::now_v7().simple())
}
