//! Test support (feature `test-support`): a fresh PostgreSQL database per test, cheaply.
//!
//! The PostgreSQL server is the one `DATABASE_URL` names — `scripts/test.sh` provides it, either
//! from the environment or as a throwaway cluster. Its absence is a test **failure**, never a
//! skip. The migrations are applied once to a template database (named after a hash of the
//! migrations, created under an advisory lock so parallel test processes agree), and each test
//! database is a `CREATE DATABASE ... TEMPLATE` copy, dropped when the [`TestDatabase`] drops.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};

use crate::migrate;

/// The environment variable naming the PostgreSQL server tests use.
pub const DATABASE_URL_VAR: &str = "DATABASE_URL";

/// A throwaway database on the test PostgreSQL server.
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

/// The PostgreSQL URL tests use. Panics with instructions when it is missing: a test that needs
/// PostgreSQL fails without one.
pub fn postgres_url() -> String {
    match std::env::var(DATABASE_URL_VAR) {
        Ok(url) if url.starts_with("postgres") => url,
        _ => panic!(
            "this test needs PostgreSQL: set {DATABASE_URL_VAR}=postgres://... or run the tests through scripts/test.sh, which starts a throwaway server"
        ),
    }
}

/// The Redis URL tests use (`REDIS_URL`). Panics with instructions when it is missing.
pub fn redis_url() -> String {
    match std::env::var("REDIS_URL") {
        Ok(url) if url.starts_with("redis") => url,
        _ => panic!(
            "this test needs Redis: set REDIS_URL=redis://... or run the tests through scripts/test.sh, which starts a throwaway server"
        ),
    }
}

/// A key prefix no other test uses, so tests can share one Redis.
pub fn unique_prefix() -> String {
    format!("sr-test-{}", uuid::Uuid::now_v7().simple())
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
        crate::redact_url(url)
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

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
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

/// A Redis server of the test's own, which it may kill and restart on the same port. Uses the
/// `redis-server` named by `REDIS_SERVER_BIN` (`scripts/test.sh` sets it) or found on `PATH`.
#[derive(Debug)]
pub struct PrivateRedis {
    port: u16,
    password: Option<String>,
    child: Option<std::process::Child>,
    dir: std::path::PathBuf,
}

impl PrivateRedis {
    pub fn start(password: Option<&str>) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "sr-private-redis-{}",
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let mut redis = PrivateRedis {
            port: free_port(),
            password: password.map(str::to_string),
            child: None,
            dir,
        };
        redis.restart();
        redis
    }

    /// Starts the server (again), waiting until it accepts connections.
    pub fn restart(&mut self) {
        let bin = std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".into());
        let mut cmd = std::process::Command::new(&bin);
        cmd.args([
            "--bind",
            "127.0.0.1",
            "--port",
            &self.port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(&self.dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
        if let Some(p) = &self.password {
            cmd.args(["--requirepass", p]);
        }
        self.child = Some(cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "this test needs redis-server ({bin}): {e}; run the tests through scripts/test.sh"
            )
        }));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// SIGKILL: the server vanishes mid-conversation.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn url(&self) -> String {
        match &self.password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// The URL with no password, or a wrong one.
    pub fn url_with_password(&self, password: Option<&str>) -> String {
        match password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Object-tier options for the test S3-compatible server (`scripts/test.sh` provides it and
/// exports `S3_ENDPOINT`, `S3_BUCKET_FOR_TESTS` and credentials), under a prefix of the
/// caller's, with `threshold_bytes`.
pub fn s3_test_options(prefix: &str, threshold_bytes: u64) -> crate::objects::ObjectOptions {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("this test needs an S3-compatible server: {name} is not set; run the tests through scripts/test.sh")
        })
    };
    s3_options_for(
        &var("S3_ENDPOINT"),
        &var("S3_BUCKET_FOR_TESTS"),
        prefix,
        threshold_bytes,
    )
}

/// Object-tier options for an S3-compatible server at `endpoint` (credentials from the test
/// environment).
pub fn s3_options_for(
    endpoint: &str,
    bucket: &str,
    prefix: &str,
    threshold_bytes: u64,
) -> crate::objects::ObjectOptions {
    let var = |name: &str| std::env::var(name).ok();
    crate::objects::ObjectOptions {
        threshold_bytes,
        backend: crate::objects::ObjectBackend::S3(crate::objects::S3Options {
            bucket: bucket.to_string(),
            region: var("S3_REGION").unwrap_or_else(|| "us-east-1".into()),
            endpoint: Some(endpoint.to_string()),
            path_style: true,
            allow_http: true,
            sse: None,
            sse_kms_key_id: None,
            access_key_id: var("AWS_ACCESS_KEY_ID"),
            secret_access_key: var("AWS_SECRET_ACCESS_KEY"),
            session_token: None,
        }),
        prefix: prefix.to_string(),
        timeout: std::time::Duration::from_secs(2),
        max_presign: std::time::Duration::from_secs(3600),
        reconcile_interval: std::time::Duration::from_secs(3600),
    }
}

/// An S3-compatible server (`s3s-fs`, from `S3S_FS_BIN`) of the test's own, which it may stop
/// and start again on the same port and directory.
#[derive(Debug)]
pub struct PrivateS3 {
    port: u16,
    root: std::path::PathBuf,
    child: Option<std::process::Child>,
}

impl PrivateS3 {
    pub const BUCKET: &'static str = "private-bucket";

    pub fn start() -> Self {
        let root =
            std::env::temp_dir().join(format!("sr-private-s3-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(root.join(Self::BUCKET)).expect("s3 root");
        let mut s3 = PrivateS3 {
            port: free_port(),
            root,
            child: None,
        };
        s3.restart();
        s3
    }

    pub fn restart(&mut self) {
        let bin = std::env::var("S3S_FS_BIN").unwrap_or_else(|_| "s3s-fs".into());
        let key = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "test-access-key".into());
        let secret =
            std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| "test-secret-key".into());
        let child = std::process::Command::new(&bin)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--access-key",
                &key,
                "--secret-key",
                &secret,
            ])
            .arg(&self.root)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("this test needs s3s-fs ({bin}): {e}; run the tests through scripts/test.sh")
            });
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "s3s-fs did not start");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The directory holding the bucket's files.
    pub fn bucket_dir(&self) -> std::path::PathBuf {
        self.root.join(Self::BUCKET)
    }
}

impl Drop for PrivateS3 {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A throwaway certificate authority and a server certificate it signed, valid for
/// `127.0.0.1` and `localhost`, made with the `openssl` command (PEM files in a temp dir).
#[derive(Debug)]
pub struct TlsMaterial {
    pub dir: std::path::PathBuf,
    pub ca_cert: std::path::PathBuf,
    pub server_cert: std::path::PathBuf,
    pub server_key: std::path::PathBuf,
}

impl TlsMaterial {
    pub fn generate() -> Self {
        let dir = std::env::temp_dir().join(format!("sr-tls-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).expect("tls dir");
        let path = |name: &str| dir.join(name);
        let ext = path("san.ext");
        std::fs::write(
            &ext,
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
        )
        .expect("write ext");
        let openssl = |args: &[&str]| {
            let out = std::process::Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .unwrap_or_else(|e| panic!("this test needs the openssl command: {e}"));
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=test-ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "server.crt",
            "-extfile",
            "san.ext",
        ]);
        TlsMaterial {
            ca_cert: path("ca.crt"),
            server_cert: path("server.crt"),
            server_key: path("server.key"),
            dir,
        }
    }
}

impl Drop for TlsMaterial {
    fn drop(&mut self) {
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

impl PrivateRedis {
    /// A Redis that speaks only TLS, with `tls`'s server certificate (clients need no
    /// certificate of their own). Its URL is `rediss://127.0.0.1:PORT`.
    pub fn start_tls(tls: &TlsMaterial) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "sr-private-redis-{}",
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let port = free_port();
        let bin = std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".into());
        let child = std::process::Command::new(&bin)
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
                "--tls-auth-clients",
                "no",
            ])
            .arg("--tls-cert-file")
            .arg(&tls.server_cert)
            .arg("--tls-key-file")
            .arg(&tls.server_key)
            .arg("--tls-ca-cert-file")
            .arg(&tls.ca_cert)
            .arg("--dir")
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("this test needs redis-server ({bin}): {e}"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server (TLS) did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        PrivateRedis {
            port,
            password: None,
            child: Some(child),
            dir,
        }
    }

    /// The `rediss://` URL of a TLS server.
    pub fn tls_url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.port)
    }
}
