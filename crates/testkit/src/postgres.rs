//! PostgreSQL for tests: [`TestDatabase`], a fresh database per test, cheaply, on the shared
//! server; [`PrivateCluster`], a cluster of the test's own that it may stop and start.
//!
//! The shared server is the one `DATABASE_URL` names — `scripts/test.sh` provides it, either
//! from the environment or as a throwaway cluster. Its absence is a test **failure**, never a
//! skip. The migrations are applied once to a template database (named after a hash of the
//! migrations, created under an advisory lock so parallel test processes agree), and each test
//! database is a `CREATE DATABASE ... TEMPLATE` copy, dropped when the [`TestDatabase`] drops.

use std::str::FromStr;

use schema_registry_storage::migrate;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};

use crate::env::{postgres_url, DATABASE_URL_VAR};
use crate::host::{free_port, running_as_root};
use crate::tls::TlsMaterial;

/// A throwaway database on the test PostgreSQL server.
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

fn with_database(url: &str, database: &str) -> String {
    let mut base =
        url::Url::parse(url).unwrap_or_else(|e| panic!("invalid {DATABASE_URL_VAR}: {e}"));
    base.set_path(&format!("/{database}"));
    base.to_string()
}

fn template_name() -> String {
    // FNV-1a over the migrations' checksums: a changed migration gets a new template.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for m in migrate::POSTGRES.iter() {
        for b in m.checksum.iter().chain(m.version.to_le_bytes().iter()) {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("sr_template_{hash:016x}")
}

async fn admin_connection(url: &str) -> PgConnection {
    let opts = PgConnectOptions::from_str(url)
        .unwrap_or_else(|e| panic!("invalid {DATABASE_URL_VAR}: {e}"));
    let mut last = None;
    // The server may still be starting when the first test runs.
    for _ in 0..50 {
        match opts.connect().await {
            Ok(conn) => return conn,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "cannot connect to the test PostgreSQL at {}: {last:?}",
        schema_registry_storage::redact_url(url)
    )
}

impl TestDatabase {
    /// Creates a fresh, fully migrated database.
    pub async fn create() -> Self {
        let admin_url = postgres_url();
        let mut admin = admin_connection(&admin_url).await;
        let template = template_name();
        // One process creates the template; the others wait on the lock, then find it.
        sqlx::query("SELECT pg_advisory_lock(7243001)")
            .execute(&mut admin)
            .await
            .expect("lock");
        let exists: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
                .bind(&template)
                .fetch_optional(&mut admin)
                .await
                .expect("query pg_database");
        if exists.is_none() {
            let building = format!("{template}_building");
            sqlx::query(&format!("DROP DATABASE IF EXISTS \"{building}\""))
                .execute(&mut admin)
                .await
                .expect("drop stale template");
            sqlx::query(&format!("CREATE DATABASE \"{building}\""))
                .execute(&mut admin)
                .await
                .expect("create template");
            let mut conn = admin_connection(&with_database(&admin_url, &building)).await;
            migrate::POSTGRES
                .run_direct(&mut conn)
                .await
                .expect("migrate template");
            conn.close().await.expect("close template connection");
            // Renamed only once complete: a template that exists is a migrated template.
            sqlx::query(&format!(
                "ALTER DATABASE \"{building}\" RENAME TO \"{template}\""
            ))
            .execute(&mut admin)
            .await
            .expect("publish template");
        }
        sqlx::query("SELECT pg_advisory_unlock(7243001)")
            .execute(&mut admin)
            .await
            .expect("unlock");
        let name = format!("sr_test_{}", uuid::Uuid::now_v7().simple());
        // Identifiers cannot be bound as parameters; both names are generated here, never input.
        sqlx::query(&format!(
            "CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""
        ))
        .execute(&mut admin)
        .await
        .expect("create test database");
        let _ = admin.close().await;
        let url = with_database(&admin_url, &name);
        TestDatabase {
            admin_url,
            name,
            url,
        }
    }

    /// Creates a fresh database with no migrations applied (to test the migrations themselves).
    pub async fn create_empty() -> Self {
        let admin_url = postgres_url();
        let mut admin = admin_connection(&admin_url).await;
        let name = format!("sr_test_{}", uuid::Uuid::now_v7().simple());
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .expect("create empty test database");
        let _ = admin.close().await;
        let url = with_database(&admin_url, &name);
        TestDatabase {
            admin_url,
            name,
            url,
        }
    }

    /// The URL of the same database for another user (password-less: the test server trusts
    /// local connections).
    pub fn url_as(&self, user: &str) -> String {
        let mut url =
            url::Url::parse(&self.url).unwrap_or_else(|e| panic!("invalid test URL: {e}"));
        let _ = url.set_username(user);
        let _ = url.set_password(None);
        url.to_string()
    }

    /// The test database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs outside any async context guarantee: use a private runtime on a thread.
        let done = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(opts) = PgConnectOptions::from_str(&admin_url) {
                    if let Ok(mut conn) = opts.connect().await {
                        let _ = sqlx::query(&format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        ))
                        .execute(&mut conn)
                        .await;
                        let _ = conn.close().await;
                    }
                }
            });
        });
        let _ = done.join();
    }
}

/// A PostgreSQL cluster of the test's own, which it may stop and start (the shared test server
/// must never be stopped). Built from the binaries in `PG_BIN_DIR` (`scripts/test.sh` sets it),
/// in a temporary directory removed on drop.
#[derive(Debug)]
pub struct PrivateCluster {
    bin: std::path::PathBuf,
    dir: std::path::PathBuf,
    port: u16,
    as_postgres: bool,
}

impl PrivateCluster {
    /// Creates and starts a cluster on a free loopback port.
    pub fn start() -> Self {
        let bin = std::path::PathBuf::from(std::env::var("PG_BIN_DIR").unwrap_or_else(|_| {
            panic!("this test needs PostgreSQL binaries: set PG_BIN_DIR or run the tests through scripts/test.sh")
        }));
        let dir =
            std::env::temp_dir().join(format!("sr-private-pg-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).expect("cluster dir");
        // initdb refuses to run as root: run the cluster as the postgres user when we are root.
        let as_postgres = running_as_root();
        if as_postgres {
            let status = std::process::Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .expect("chown");
            assert!(status.success(), "chown of the cluster dir failed");
        }
        let cluster = PrivateCluster {
            bin,
            dir,
            port: free_port(),
            as_postgres,
        };
        let data = cluster.dir.join("data");
        cluster.run(
            "initdb",
            &[
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
                "-D",
                &data.display().to_string(),
            ],
        );
        cluster.start_server();
        cluster
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let path = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            std::process::Command::new(&path)
        };
        let out = cmd
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the server (again) on the same port; returns once it accepts connections.
    pub fn start_server(&self) {
        let data = self.dir.join("data").display().to_string();
        let log = self.dir.join("log").display().to_string();
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100",
            self.port,
            self.dir.display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-w", "-t", "30", "-o", &opts, "start",
            ],
        );
    }

    /// Stops the server (fast shutdown: connections are terminated).
    pub fn stop_server(&self) {
        let data = self.dir.join("data").display().to_string();
        self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let data = self.dir.join("data").display().to_string();
        let path = self.bin.join("pg_ctl");
        let mut cmd = if self.as_postgres {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            std::process::Command::new(&path)
        };
        let _ = cmd
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl PrivateCluster {
    /// A cluster that also accepts TLS, with `tls`'s server certificate.
    pub fn start_tls(tls: &TlsMaterial) -> Self {
        let cluster = PrivateCluster::start();
        cluster.stop_server();
        for (from, to) in [
            (&tls.server_cert, "server.crt"),
            (&tls.server_key, "server.key"),
        ] {
            let dest = cluster.dir.join("data").join(to);
            std::fs::copy(from, &dest).expect("copy certificate");
            if cluster.as_postgres {
                let _ = std::process::Command::new("chown")
                    .args(["postgres:postgres"])
                    .arg(&dest)
                    .status();
            }
            let _ = std::process::Command::new("chmod")
                .arg("600")
                .arg(&dest)
                .status();
        }
        let conf = cluster.dir.join("data").join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).expect("postgresql.conf");
        text.push_str("\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        std::fs::write(&conf, text).expect("enable ssl");
        cluster.start_server();
        cluster
    }
}
