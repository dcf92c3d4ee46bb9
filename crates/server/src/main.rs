//! The `llm-schema-registry` binary: `serve` (the default), `migrate run|info|revert`, and
//! `load-test` (runs the load generator `llm-schema-registry-load-test`; see `load_test`).

use std::process::ExitCode;

use clap::Parser;
use schema_registry_server::app::{shutdown_signal, Application};
use schema_registry_server::config::{self, Cli, Command, MigrateAction, Settings};
use schema_registry_server::lock::DataLock;
use schema_registry_server::{load_test, telemetry};
use schema_registry_storage::migrate;

/// mimalloc rather than the system allocator: a request allocates and frees many small,
/// short-lived buffers (headers, JSON, rows), and glibc's malloc/free were 12–15 % of the
/// server's CPU in the profiles in docs/PERFORMANCE.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cli = match cli.command {
        // Another program: no runtime of ours.
        Some(Command::LoadTest(args)) => return load_test::run(args),
        _ => cli,
    };
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
    let result = runtime.block_on(async move {
        match cli.command {
            None => serve(cli.serve).await,
            Some(Command::Serve(args)) => serve(*args).await,
            Some(Command::Migrate { action }) => run_migrate(action).await,
            Some(Command::LoadTest(_)) => unreachable!("handled before the runtime starts"),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: config::ServeArgs) -> anyhow::Result<()> {
    let settings = Settings::resolve(&args)?;
    telemetry::init(settings.log_format);
    let app = Application::build(settings).await?;
    app.run(shutdown_signal()).await?;
    Ok(())
}

async fn run_migrate(action: MigrateAction) -> anyhow::Result<()> {
    let args = action.database().clone();
    let file = config::load_file(&args)?;
    let (data_dir, url) = config::resolve_database(&args, &file)?;
    let sqlite_file = schema_registry_storage::sqlite_file(&url);
    // Only `run` creates the data directory; `info` and `revert` report on what is there.
    if matches!(action, MigrateAction::Run(_))
        && migrate::Dialect::from_url(&url)? == migrate::Dialect::Sqlite
    {
        std::fs::create_dir_all(&data_dir)?;
    }
    // A migration that changes the schema must not run under a server of the same database.
    let _lock = match (&action, &sqlite_file) {
        (MigrateAction::Run(_), Some(file)) => Some(DataLock::acquire(file)?),
        (MigrateAction::Revert(_), Some(file)) if file.exists() => Some(DataLock::acquire(file)?),
        _ => None,
    };
    let shown = schema_registry_storage::redact_url(&url);
    match action {
        MigrateAction::Run(_) => {
            let applied = migrate::run(&url).await?;
            if applied.is_empty() {
                println!("{shown}: already up to date");
            }
            for v in applied {
                println!("{shown}: applied migration {v}");
            }
        }
        MigrateAction::Info(_) => {
            println!("{shown}");
            for m in migrate::info(&url).await? {
                let status = if m.applied { "applied" } else { "pending" };
                println!("{:>4}  {:<8} {}", m.version, status, m.description);
            }
        }
        MigrateAction::Revert(revert) => {
            let Some(plan) = migrate::revert_plan(&url).await? else {
                println!("{shown}: nothing to revert");
                return Ok(());
            };
            println!("{shown}: {}", describe(&plan));
            if plan.rows() > 0 && !revert.yes {
                confirm(&plan)?;
            }
            match migrate::revert(&url).await? {
                Some(v) => println!("{shown}: reverted migration {v}"),
                None => println!("{shown}: nothing to revert"),
            }
        }
    }
    Ok(())
}

/// `reverting migration 2 (access log) drops table schema_access_log (12 rows)`.
fn describe(plan: &migrate::RevertPlan) -> String {
    let mut text = format!(
        "reverting migration {} ({})",
        plan.version, plan.description
    );
    if plan.tables.is_empty() {
        text.push_str(" drops no table");
    } else {
        let tables: Vec<String> = plan
            .tables
            .iter()
            .map(|t| {
                let unit = if t.rows == 1 { "row" } else { "rows" };
                format!("{} ({} {unit})", t.table, t.rows)
            })
            .collect();
        text.push_str(&format!(" drops tables {}", tables.join(", ")));
    }
    text
}

/// Asks on the terminal before rows are dropped; without a terminal, refuses (`--yes` skips
/// this).
fn confirm(plan: &migrate::RevertPlan) -> anyhow::Result<()> {
    use std::io::{BufRead, IsTerminal, Write};
    let rows = plan.rows();
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "refusing to revert migration {}: it would delete {rows} rows, and there is no \
             terminal to confirm on; rerun with --yes to revert anyway",
            plan.version
        );
    }
    print!("This deletes {rows} rows for good. Type \"yes\" to revert: ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        anyhow::bail!("not reverted: the answer was not \"yes\"");
    }
    Ok(())
}
