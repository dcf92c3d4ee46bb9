//! S3 for tests: object-tier options for the shared S3-compatible server that `scripts/test.sh`
//! provides ([`s3_test_options`]) or any other ([`s3_options_for`]), and [`PrivateS3`], an
//! `s3s-fs` server of the test's own that it may stop and start.

use schema_registry_storage::objects::{ObjectBackend, ObjectOptions, S3Options};

use crate::host::free_port;

/// Object-tier options for the test S3-compatible server (`scripts/test.sh` provides it and
/// exports `S3_ENDPOINT`, `S3_BUCKET_FOR_TESTS` and credentials), under a prefix of the
/// caller's, with `threshold_bytes`.
pub fn s3_test_options(prefix: &str, threshold_bytes: u64) -> ObjectOptions {
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
) -> ObjectOptions {
    let var = |name: &str| std::env::var(name).ok();
    ObjectOptions {
        threshold_bytes,
        backend: ObjectBackend::S3(S3Options {
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
