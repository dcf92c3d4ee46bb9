//! [`PrivateRedis`]: a Redis server of the test's own, which it may kill and restart (the shared
//! one, `REDIS_URL`, must never stop), with a password or speaking only TLS.

use crate::host::free_port;
use crate::tls::TlsMaterial;

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
