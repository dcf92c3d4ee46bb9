//! Process-level behaviour: restarts, shutdown, the binary's command line.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_data_directory_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let data_dir = dir.path().join("data");
    let mut app = TestApp::start(data_dir.clone(), None, |_| {}).await;
    let a = app
        .created(
            "persist",
            json!({"schema": {"v": 1}, "tags": ["t"], "metadata": {"k": "v"}}),
        )
        .await;
    let b = app
        .created(
            "persist",
            json!({"schema": {"v": 2}, "references": [{"subject": "persist", "version": "1.0.0"}]}),
        )
        .await;
    app.delete("/api/v1/subjects/persist/versions/1.1.0").await;
    let stats = app.data_stats().await;
    app.stop().await;
    assert!(data_dir.join("registry.db").exists());

    let again = TestApp::start(data_dir, None, |_| {}).await;
    assert_eq!(again.data_stats().await, stats);
    let (status, rec) = again
        .get_json(&format!(
            "/api/v1/schemas/{}",
            a["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!((status, &rec), (StatusCode::OK, &a));
    let (_, rec_b) = again
        .get_json(&format!(
            "/api/v1/schemas/{}",
            b["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(rec_b["state"], "deleted");
    let next = again.created("persist", json!({"schema": {"v": 3}})).await;
    assert_eq!(next["version"], "1.2.0", "the version counter survived too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_lets_in_flight_requests_finish() {
    let mut app = TestApp::spawn(Backend::Sqlite).await;
    // Start a burst of writes, then ask the server to stop while they are in flight.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let client = app.client.clone();
        let url = app.url("/api/v1/subjects/inflight/versions");
        tasks.push(tokio::spawn(async move {
            client
                .post(&url)
                .json(&json!({"schema": {"i": i}}))
                .send()
                .await
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let data_dir = app.data_dir.clone();
    app.stop().await;
    let mut acknowledged = 0u64;
    for t in tasks {
        if let Ok(resp) = t.await.expect("task") {
            if resp.status() == StatusCode::CREATED {
                acknowledged += 1;
            }
        }
    }
    // Every acknowledged write is in the database after restart.
    let again = TestApp::start(data_dir, None, |_| {}).await;
    let stats = again.stats().await;
    assert!(
        stats["schemas"].as_u64().expect("n") >= acknowledged,
        "{stats} vs {acknowledged} acknowledged"
    );
}

fn binary() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_llm-schema-registry"))
}

#[test]
fn help_documents_every_option_with_its_default() {
    let out = binary().arg("--help").output().expect("run --help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--listen",
        "[default: 127.0.0.1:8080]",
        "--data-dir",
        "[default: ./data]",
        "--database-url",
        "DATABASE_URL",
        "--max-body-bytes",
        "[default: 16777216]",
        "migrate",
        "--config",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
    let out = binary()
        .args(["migrate", "--help"])
        .output()
        .expect("run migrate --help");
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in ["run", "info", "revert"] {
        assert!(help.contains(needle), "migrate --help lacks {needle}");
    }
}

#[test]
fn migrate_subcommand_runs_reports_and_reverts_on_sqlite() {
    let dir = tempfile::tempdir().expect("tmp");
    let url = format!("sqlite://{}/reg.db", dir.path().display());
    let run = |args: &[&str]| {
        let out = binary()
            .args(args)
            .args(["--database-url", &url])
            .env_remove("DATABASE_URL")
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert!(run(&["migrate", "info"]).contains("pending"));
    let applied = run(&["migrate", "run"]);
    assert!(
        applied.contains("applied migration 1") && applied.contains("applied migration 2"),
        "{applied}"
    );
    assert!(run(&["migrate", "run"]).contains("already up to date"));
    assert!(!run(&["migrate", "info"]).contains("pending"));
    assert!(run(&["migrate", "revert"]).contains("reverted migration 2"));
    assert!(run(&["migrate", "revert"]).contains("reverted migration 1"));
    assert!(run(&["migrate", "revert"]).contains("nothing to revert"));
    assert!(!run(&["migrate", "info"]).contains(" applied "));
}

#[test]
fn bad_configuration_fails_fast_with_a_message() {
    let out = binary()
        .args(["--listen", "not-an-address"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen"));
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "listn = 1\n").expect("write");
    let out = binary()
        .args(["--config", cfg.to_str().expect("path")])
        .env_remove("DATABASE_URL")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid config file"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `load-test` runs the `llm-schema-registry-load-test` beside the binary with every argument
/// and exits with its status; without it, status 2 and how to build it. Checked on a hard link
/// to the binary in a directory of its own, with a stand-in script for the load generator.
#[cfg(unix)]
#[test]
fn load_test_runs_the_sibling_binary_or_says_how_to_get_it() {
    // Under the target directory: on the binary's file system, so a hard link works. Links and a
    // script written by a child process, never a file this (multi-threaded) process has open
    // for writing, which a concurrent fork could keep open and make unexecutable (ETXTBSY).
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tmp");
    let link = dir.path().join("llm-schema-registry");
    std::fs::hard_link(env!("CARGO_BIN_EXE_llm-schema-registry"), &link).expect("link the binary");
    let run = |args: &[&str]| {
        std::process::Command::new(&link)
            .arg("load-test")
            .args(args)
            .output()
            .expect("run load-test")
    };

    let out = run(&["--duration", "1s"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("llm-schema-registry-load-test")
            && stderr.contains("cargo build -p llm-schema-registry-loadtest")
            && stderr.contains("cargo run --release -p llm-schema-registry-loadtest --"),
        "{stderr}"
    );

    let sibling = dir.path().join("llm-schema-registry-load-test");
    let script = "#!/bin/sh\nfor a in \"$@\"; do printf '<%s>' \"$a\"; done\nexit 7\n";
    let written = std::process::Command::new("sh")
        .args([
            "-c",
            "printf '%s' \"$1\" >\"$2\" && chmod 755 \"$2\"",
            "sh",
            script,
        ])
        .arg(&sibling)
        .status()
        .expect("write the stand-in");
    assert!(written.success());
    let out = run(&[
        "--help",
        "--target",
        "http://h:1",
        "--mix",
        "a=1 b",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "<--help><--target><http://h:1><--mix><a=1 b><--json>"
    );
}

/// `migrate info` creates nothing; `migrate revert` says what it removes, and refuses without
/// a terminal to drop tables that hold rows unless given `--yes`, leaving the data intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_revert_refuses_to_drop_rows_without_yes() {
    let dir = tempfile::tempdir().expect("tmp");
    let data_dir = dir.path().join("data");
    let migrate = |args: &[&str]| {
        binary()
            .arg("migrate")
            .args(args)
            .arg("--data-dir")
            .arg(&data_dir)
            .env_remove("DATABASE_URL")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run migrate")
    };
    let info = migrate(&["info"]);
    assert!(info.status.success(), "{info:?}");
    assert!(
        !data_dir.exists(),
        "migrate info created the data directory"
    );

    let url = format!("sqlite://{}/registry.db", data_dir.display());
    let mut server = crate::helpers::ServerProcess::spawn(&url, &data_dir).await;
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/subjects/kept/versions", server.address))
        .json(&json!({"schema": {"type": "object"}}))
        .send()
        .await
        .expect("register");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let id = resp.json::<serde_json::Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    server.kill_hard();

    // Reverting goes on while it drops no rows, and stops at the first migration that would.
    let mut refused = None;
    for _ in 0..3 {
        let out = migrate(&["revert"]);
        if !out.status.success() {
            refused = Some(out);
            break;
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("reverted migration"), "{stdout}");
    }
    let out = refused.expect("a revert that drops rows is refused");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        stdout.contains("reverting migration 1")
            && stdout.contains("schemas (1 row)")
            && stdout.contains("subjects (1 row)"),
        "{stdout}"
    );
    assert!(stderr.contains("--yes"), "{stderr}");

    // The data is intact: a server (which re-applies what was reverted) still has the schema.
    let again = crate::helpers::ServerProcess::spawn(&url, &data_dir).await;
    let resp = reqwest::get(format!("{}/api/v1/schemas/{id}", again.address))
        .await
        .expect("get");
    assert_eq!(resp.status(), StatusCode::OK);
    drop(again);

    // With --yes it goes through.
    for _ in 0..3 {
        let out = migrate(&["revert", "--yes"]);
        assert!(out.status.success(), "{out:?}");
    }
    let out = migrate(&["revert"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to revert"));
}

/// A PostgreSQL URL naming a database the server does not have: `serve` and `migrate run` exit
/// non-zero saying which database is missing and how to create it, not "internal storage error".
#[test]
fn a_missing_postgres_database_is_reported_with_how_to_create_it() {
    let name = format!("sr_missing_{}", uuid::Uuid::now_v7().simple());
    let mut url = url::Url::parse(&schema_registry_testkit::postgres_url()).expect("url");
    url.set_path(&format!("/{name}"));
    let dir = tempfile::tempdir().expect("tmp");
    for args in [
        &["serve", "--listen", "127.0.0.1:0"][..],
        &["migrate", "run"][..],
    ] {
        let out = binary()
            .args(args)
            .args(["--database-url", url.as_str()])
            .arg("--data-dir")
            .arg(dir.path())
            .env_remove("REDIS_URL")
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "database \"{name}\" does not exist on the server; create it (createdb {name}"
            )) && !stderr.contains("internal storage error"),
            "{args:?}: {stderr}"
        );
    }
}
