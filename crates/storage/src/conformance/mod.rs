//! The storage conformance suite (feature `test-support`): the contract of
//! [`StorageBackend`](crate::StorageBackend) and [`Operations`](crate::Operations) as executable
//! checks, written once and run against every stack — each backend, each wrapper (the cache, the
//! object tier, the server's metrics decorator) and the combinations a deployment uses.
//!
//! Each check is a plain `pub async fn` over `Arc<dyn Storage>` that asserts one promise of the
//! contract on a fresh, empty stack (its name says which), and panics when the stack breaks it.
//! The suite builds no stack itself and knows no test services: the test passes the stack in, the
//! suite checks it.
//!
//! # Running the suite against a stack
//!
//! A test crate enables the feature on its dev-dependency (and needs `tokio` with the `macros`
//! and `rt-multi-thread` features, as the generated tests are `#[tokio::test]`s):
//!
//! ```toml
//! [dev-dependencies]
//! schema-registry-storage = { workspace = true, features = ["test-support"] }
//! ```
//!
//! Then, per stack, an `async fn` that builds a fresh one as a [`Stack`] (with whatever must
//! outlive it: a temporary directory, a throwaway database), and one
//! [`conformance_tests!`](crate::conformance_tests) call:
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use schema_registry_storage::conformance::Stack;
//! use schema_registry_storage::{CacheOptions, CachedBackend, SqliteBackend, SqliteOptions};
//!
//! async fn sqlite() -> Stack {
//!     let dir = tempfile::tempdir().expect("temp dir");
//!     let url = format!("sqlite://{}", dir.path().join("registry.db").display());
//!     let backend = SqliteBackend::open(&url, &SqliteOptions::default())
//!         .await
//!         .expect("open sqlite");
//!     Stack::new(Arc::new(backend)).keeping(dir)
//! }
//!
//! // One test per check: `sqlite_backend::register_then_read_back`, …
//! schema_registry_storage::conformance_tests!(sqlite_backend, sqlite().await);
//!
//! // A wrapper runs the same suite around the stack it wraps.
//! schema_registry_storage::conformance_tests!(
//!     cached_sqlite,
//!     sqlite().await.wrap(|inner| {
//!         Arc::new(CachedBackend::new(inner, CacheOptions::default()).expect("cache"))
//!     })
//! );
//! # fn main() {}
//! ```
//!
//! The storage crate's own stacks are in `crates/storage/tests/backends.rs`; the server runs the
//! suite through its metrics decorator in `crates/server/tests/metered_conformance.rs`.
//!
//! # Adding a check
//!
//! Write it in `checks.rs` as a `pub async fn name(b: Arc<dyn Storage>)` and add `name` to the
//! list in [`conformance_tests!`](crate::conformance_tests); every stack then runs it. A unit
//! test fails when a check is missing from the list.

use std::sync::Arc;

use crate::Storage;

mod checks;

pub use checks::*;

/// A stack under test, and what must outlive it (a temporary directory, a throwaway database):
/// what the expression given to [`conformance_tests!`](crate::conformance_tests) evaluates to.
pub struct Stack {
    // Declared first, so dropped first: the stack goes before what it lives on.
    storage: Arc<dyn Storage>,
    kept: Vec<Box<dyn Send>>,
}

impl Stack {
    /// A stack that needs nothing else kept alive.
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Stack {
            storage,
            kept: Vec::new(),
        }
    }

    /// Keeps `value` alive as long as the stack; it is dropped after the stack.
    pub fn keeping(mut self, value: impl Send + 'static) -> Self {
        self.kept.push(Box::new(value));
        self
    }

    /// The stack inside a wrapper: `wrap` gets this stack and returns the wrapper around it.
    /// What was kept stays kept.
    pub fn wrap(self, wrap: impl FnOnce(Arc<dyn Storage>) -> Arc<dyn Storage>) -> Self {
        Stack {
            storage: wrap(self.storage),
            kept: self.kept,
        }
    }

    /// The stack under test (a new handle to it).
    pub fn storage(&self) -> Arc<dyn Storage> {
        Arc::clone(&self.storage)
    }
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("storage", &self.storage)
            .field("kept", &self.kept.len())
            .finish()
    }
}

/// Runs the conformance suite against one stack: `conformance_tests!(name, stack)` defines a
/// module `name` with one test per check of [`conformance`](crate::conformance), named after the
/// check (`name::register_then_read_back`, …).
///
/// `stack` is an expression of type [`Stack`](crate::conformance::Stack) (it may `.await`),
/// evaluated afresh in each test, and must give a new, empty stack each time (checks count what
/// is stored); the check then runs over it, and the stack and what it keeps are dropped when the
/// test ends. The expression is evaluated inside the generated module, which imports everything
/// of the module the macro is called in (`use super::*`), so it can call the file's own
/// constructors by name.
///
/// Each test is a `#[tokio::test]` on a multi-threaded runtime with two workers (the concurrency
/// checks need real parallelism), so the calling crate needs `tokio` with the `macros` and
/// `rt-multi-thread` features. See the [module documentation](crate::conformance) for an
/// example.
#[macro_export]
macro_rules! conformance_tests {
    ($name:ident, $stack:expr $(,)?) => {
        $crate::conformance_tests!(@tests $name, $stack;
            // Every check of `conformance/checks.rs`, once (a unit test holds this list to it).
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
    };
    (@tests $name:ident, $stack:expr; $($check:ident),+ $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let stack: $crate::conformance::Stack = $stack;
                    $crate::conformance::$check(stack.storage()).await;
                }
            )+
        }
    };
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// The `pub async fn`s of `checks.rs` are exactly the checks `conformance_tests!` lists.
    #[test]
    fn the_macro_runs_every_check() {
        let defined: BTreeSet<&str> = include_str!("checks.rs")
            .lines()
            .filter_map(|line| line.strip_prefix("pub async fn "))
            .filter_map(|rest| rest.split('(').next())
            .collect();
        let source = include_str!("mod.rs");
        let start = source
            .find("(@tests $name, $stack;")
            .expect("the list's start");
        let list = &source[start..];
        let list = &list[list.find(';').expect("`;`") + 1..list.find(");").expect("`);`")];
        let listed: Vec<&str> = list
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with("//"))
            .map(|line| line.trim_end_matches(','))
            .collect();
        assert!(!defined.is_empty(), "no checks found in checks.rs");
        let listed_once: BTreeSet<&str> = listed.iter().copied().collect();
        assert_eq!(
            listed_once, defined,
            "`conformance_tests!` must list exactly the checks of checks.rs"
        );
        assert_eq!(listed.len(), listed_once.len(), "a check is listed twice");
    }
}
