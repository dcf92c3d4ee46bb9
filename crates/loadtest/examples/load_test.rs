//! Load test against a running registry: seeds a data set through the API, then drives it with
//! concurrent workers and prints latency percentiles, throughput, errors, the server's cache hit
//! rate and the client's own CPU use. The same program as the `llm-schema-registry-load-test`
//! binary (`schema_registry_loadtest::cli`).
//!
//! ```sh
//! cargo run --release --bin llm-schema-registry &          # the server under test
//! cargo run --release --example load_test -- --duration 60s --concurrency 100 --operations 1000000
//! cargo run --release --example load_test -- --help        # every option
//! ```
//!
//! Build it with `--release`: a debug client measures itself more than the server.

use std::process::ExitCode;

/// The same allocator as `llm-schema-registry-load-test`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    schema_registry_loadtest::cli::main()
}
