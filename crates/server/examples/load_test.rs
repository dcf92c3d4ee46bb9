//! Load test against a running registry: seeds a data set through the API, then drives it with
//! concurrent workers and prints latency percentiles, throughput, errors, the server's cache hit
//! rate and the client's own CPU use.
//!
//! ```sh
//! cargo run --release --bin llm-schema-registry &          # the server under test
//! cargo run --release --example load_test -- --duration 60s --concurrency 100 --operations 1000000
//! cargo run --release --example load_test -- --help        # every option
//! ```
//!
//! Build it with `--release`: a debug client measures itself more than the server.

use std::process::ExitCode;

use clap::Parser;
use schema_registry_server::loadtest::{self, LoadTestArgs};

/// Load test for LLM Schema Registry: drives a running server over HTTP.
#[derive(Parser)]
#[command(name = "load_test", version)]
struct Cli {
    #[command(flatten)]
    args: LoadTestArgs,
}

/// The same allocator as `llm-schema-registry load-test`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let as_json = cli.args.json;
    match runtime
        .block_on(loadtest::run(cli.args))
        .and_then(|report| report.print(as_json))
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
