//! docs/configuration.md's table of settings says what `--help` says: one row per flag, each with
//! the flag's environment variable, config-file key and default.
//!
//! To print the table as it should be (each row's Meaning kept from the file, or taken from
//! `--help` for a new flag):
//! `PRINT_CONFIG_TABLE=1 cargo test -p llm-schema-registry-server --test config_docs -- --nocapture`

use std::collections::HashMap;
use std::path::Path;

use clap::{Arg, ArgAction, CommandFactory};
use schema_registry_server::config::{Cli, FileConfig};

const HEADER: &str = "| Flag | Environment | File key | Default | Meaning |";
const NONE: &str = "—";

/// A row of the table: its line number (from 1) and its cells.
struct Row {
    line: usize,
    cells: Vec<String>,
}

/// The cells of a Markdown table row; `\|` is a pipe inside a cell.
fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|');
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    let mut cells = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cells.last_mut().expect("one cell").push_str("\\|");
                chars.next();
            }
            '|' => cells.push(String::new()),
            c => cells.last_mut().expect("one cell").push(c),
        }
    }
    cells.into_iter().map(|c| c.trim().to_string()).collect()
}

/// The rows of the table whose header row is exactly [`HEADER`].
fn table(text: &str) -> Result<Vec<Row>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let header = lines
        .iter()
        .position(|l| l.trim_end() == HEADER)
        .ok_or_else(|| format!("no table with the header row `{HEADER}`"))?;
    let separator = lines.get(header + 1).copied().unwrap_or_default();
    let is_separator = separator.trim().starts_with('|')
        && cells(separator).len() == 5
        && cells(separator)
            .iter()
            .all(|c| !c.is_empty() && c.chars().all(|ch| ch == '-' || ch == ':'));
    if !is_separator {
        return Err(format!(
            "line {}: expected the table's separator row, found `{separator}`",
            header + 2
        ));
    }
    Ok(lines[header + 2..]
        .iter()
        .take_while(|l| l.trim_start().starts_with('|'))
        .enumerate()
        .map(|(i, l)| Row {
            line: header + 3 + i,
            cells: cells(l),
        })
        .collect())
}

/// The settings' flags: those of the default command, which `serve` has too.
fn flags() -> Vec<Arg> {
    let cmd = Cli::command();
    let settings = |cmd: &clap::Command| -> Vec<Arg> {
        cmd.get_arguments()
            .filter(|a| {
                !matches!(
                    a.get_action(),
                    ArgAction::Help
                        | ArgAction::HelpShort
                        | ArgAction::HelpLong
                        | ArgAction::Version
                )
            })
            .cloned()
            .collect()
    };
    let top = settings(&cmd);
    let serve = cmd.find_subcommand("serve").expect("a serve subcommand");
    let longs = |args: &[Arg]| -> Vec<String> {
        args.iter()
            .filter_map(|a| a.get_long())
            .map(String::from)
            .collect()
    };
    assert_eq!(
        longs(&top),
        longs(&settings(serve)),
        "`serve` takes the default command's flags"
    );
    top
}

fn code(text: &str) -> String {
    format!("`{text}`")
}

/// Flag, environment, file key and default, as the table writes them.
fn expected(arg: &Arg) -> [String; 4] {
    let long = arg.get_long().expect("every setting has a long flag");
    let env = arg
        .get_env()
        .map_or(NONE.to_string(), |e| code(&e.to_string_lossy()));
    let id = arg.get_id().as_str();
    let key = FileConfig::KEYS
        .iter()
        .find(|k| **k == id)
        .map_or(NONE.to_string(), |k| code(k));
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    let default = if defaults.is_empty() {
        NONE.to_string()
    } else {
        code(&defaults.join(", "))
    };
    [code(&format!("--{long}")), env, key, default]
}

const COLUMNS: [&str; 4] = ["Flag", "Environment", "File key", "Default"];

#[test]
fn configuration_table_matches_help() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2);
    let path = root
        .expect("the workspace root")
        .join("docs/configuration.md");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let rows = table(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let flags = flags();
    let by_flag: HashMap<String, &Arg> =
        flags.iter().map(|a| (expected(a)[0].clone(), a)).collect();

    if std::env::var_os("PRINT_CONFIG_TABLE").is_some() {
        let meanings: HashMap<&str, &str> = rows
            .iter()
            .filter(|r| r.cells.len() >= 5)
            .map(|r| (r.cells[0].as_str(), r.cells[4].as_str()))
            .collect();
        println!("{HEADER}\n|---|---|---|---|---|");
        for arg in &flags {
            let cells = expected(arg);
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            let help = help.replace('|', "\\|");
            let meaning = meanings.get(cells[0].as_str()).copied().unwrap_or(&help);
            println!("| {} | {meaning} |", cells.join(" | "));
        }
    }

    let mut problems = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for row in &rows {
        let line = row.line;
        if row.cells.len() != 5 {
            problems.push(format!(
                "line {line}: {} cells, expected 5",
                row.cells.len()
            ));
            continue;
        }
        let flag = row.cells[0].as_str();
        let Some(arg) = by_flag.get(flag) else {
            problems.push(format!(
                "line {line}: {flag} is not a flag of `llm-schema-registry --help`"
            ));
            continue;
        };
        if let Some(first) = seen.insert(flag, line) {
            problems.push(format!(
                "line {line}: a second row for {flag} (the first is line {first})"
            ));
            continue;
        }
        let want = expected(arg);
        for (column, (have, want)) in COLUMNS.iter().zip(row.cells.iter().zip(&want)).skip(1) {
            if have != want {
                problems.push(format!(
                    "line {line} ({flag}): {column} is {have}, --help says {want}"
                ));
            }
        }
    }
    for arg in &flags {
        let want = expected(arg);
        if !seen.contains_key(want[0].as_str()) {
            problems.push(format!(
                "{} has no row; expected `| {} | … |`",
                want[0],
                want.join(" | ")
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} disagrees with --help:\n  {}",
        path.display(),
        problems.join("\n  ")
    );
}
