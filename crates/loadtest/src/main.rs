//! `llm-schema-registry-load-test`: the load generator (see [`schema_registry_loadtest`]), also
//! what `llm-schema-registry load-test` runs.
//!
//! ```sh
//! cargo run --release --bin llm-schema-registry &                  # the server under test
//! cargo run --release -p llm-schema-registry-loadtest -- --duration 60s --concurrency 100
//! cargo run --release -p llm-schema-registry-loadtest -- --help    # every option
//! ```
//!
//! Build it with `--release`: a debug client measures itself more than the server.

use std::process::ExitCode;

/// The same allocator as the server's binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    schema_registry_loadtest::cli::main()
}
