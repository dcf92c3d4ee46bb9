//! The `load-test` subcommand: runs the load generator, the `llm-schema-registry-load-test`
//! binary (crate `llm-schema-registry-loadtest`), found in the directory of the running
//! executable, with every argument after `load-test` passed through unchanged (`--help`
//! included); its exit status is the subcommand's. The server holds none of the load
//! generator's code or dependencies.
//!
//! When that binary is not there, the subcommand fails with status [`NOT_RUN`] and says how to
//! build it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The load generator's binary, looked for next to the running executable.
pub const BINARY: &str = "llm-schema-registry-load-test";

/// The exit status when the load generator could not be started (absent, or not executable).
pub const NOT_RUN: u8 = 2;

/// Everything after `load-test`, untouched: the load generator parses it.
#[derive(Debug, Clone, clap::Args)]
#[command(disable_help_flag = true)]
pub struct LoadTestArgs {
    /// The load generator's flags (`llm-schema-registry load-test --help` lists them).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "FLAGS"
    )]
    pub args: Vec<OsString>,
}

/// Runs the load generator with `args` and returns its exit status. Unix: the process becomes
/// the load generator (`exec`), so its output, signals (Ctrl-C ends the run with a report) and
/// exit status are the generator's own.
pub fn run(args: LoadTestArgs) -> ExitCode {
    let path = match sibling() {
        Ok(path) => path,
        Err(e) => {
            eprintln!("error: cannot find the directory of this executable: {e}");
            return ExitCode::from(NOT_RUN);
        }
    };
    if !path.is_file() {
        eprintln!("{}", absent_message(&path));
        return ExitCode::from(NOT_RUN);
    }
    let mut command = Command::new(&path);
    command.args(&args.args);
    match start(command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!(
                "error: cannot run the load generator {}: {e}",
                path.display()
            );
            ExitCode::from(NOT_RUN)
        }
    }
}

/// `BINARY` in the running executable's directory.
fn sibling() -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    Ok(dir.join(format!("{BINARY}{}", std::env::consts::EXE_SUFFIX)))
}

/// What to say when `path` does not exist.
fn absent_message(path: &Path) -> String {
    format!(
        "error: `llm-schema-registry load-test` runs the load generator {}, which is not there.\n\
         Build it beside this binary with `cargo build -p llm-schema-registry-loadtest` \
         (`cargo build --release -p llm-schema-registry-loadtest` for a release build), \
         or run it directly: `cargo run --release -p llm-schema-registry-loadtest -- <flags>`.",
        path.display()
    )
}

#[cfg(unix)]
fn start(mut command: Command) -> std::io::Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    // Returns only when the exec failed.
    Err(command.exec())
}

#[cfg(not(unix))]
fn start(mut command: Command) -> std::io::Result<ExitCode> {
    let status = command.status()?;
    Ok(match status.code() {
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}
