//! The load generator as a program: parse the flags ([`Cli`]), [`run`](crate::run) the load test
//! on a multi-threaded runtime, print the [`Report`](crate::Report) (a table, or JSON with
//! `--json`). Shared by the `llm-schema-registry-load-test` binary and `examples/load_test.rs`;
//! `llm-schema-registry load-test` runs the binary.

use std::process::ExitCode;

use clap::Parser;

use crate::LoadTestArgs;

/// Load test for LLM Schema Registry: drives a running server over HTTP.
#[derive(Debug, Parser)]
#[command(name = "llm-schema-registry-load-test", version)]
pub struct Cli {
    #[command(flatten)]
    pub args: LoadTestArgs,
}

/// The whole program: parses the process's arguments (`--help` and bad flags exit here, as clap
/// does), runs the load test and prints its report. Failure (status 1, the error on stderr)
/// when the load test cannot run: inconsistent options, an unreachable server, failed seeding.
pub fn main() -> ExitCode {
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
        .block_on(crate::run(cli.args))
        .and_then(|report| report.print(as_json))
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
