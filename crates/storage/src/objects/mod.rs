//! The object-storage tier: schema documents larger than a threshold live in an object store
//! (S3 in production, a local directory by default) and the database row keeps only a pointer.
//!
//! - **Content-addressed keys** (`<prefix>/<sha256>`): identical content is stored once, an
//!   object never changes, and a key already present is never written again (checked first).
//! - **Integrity**: every read recomputes the SHA-256 and compares it with the row's checksum; a
//!   mismatch is [`StorageError::Corrupted`], logged and reported, never served.
//! - **Failover**: when the store cannot be reached, registration keeps the content inline in
//!   the database, flagged `content_pending`; the backends' reconciler moves it to the store
//!   when the store is back (see `reconcile` in each backend).
//! - **Buffering, not streaming**: a document is read whole before it is served, because its
//!   checksum must be verified before the first byte goes out.
//!
//! The `object_store` crate provides one API over S3-compatible servers and the local file
//! system; this module adds the registry's rules on top.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::signer::Signer;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use schema_registry_core::{SchemaContent, SchemaFormat};
use serde_json::json;

use crate::cache::breaker::Breaker;
use crate::{StorageError, StorageResult, TierHealth};

/// Where objects live.
#[derive(Debug, Clone)]
pub enum ObjectBackend {
    /// A directory (created if missing). Presigned URLs are not available.
    Local {
        root: PathBuf,
    },
    S3(S3Options),
}

/// S3 or an S3-compatible server (MinIO, s3s-fs, ...).
#[derive(Debug, Clone)]
pub struct S3Options {
    pub bucket: String,
    pub region: String,
    /// Custom endpoint (`http://127.0.0.1:9000`); `None` for AWS.
    pub endpoint: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`), which most S3-compatible servers need.
    pub path_style: bool,
    /// Allow plain `http://` endpoints.
    pub allow_http: bool,
    /// Server-side encryption: `AES256`, `aws:kms`, `aws:kms:dsse`; `None` for the bucket default.
    pub sse: Option<String>,
    /// KMS key id for `aws:kms`.
    pub sse_kms_key_id: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ObjectOptions {
    /// Content larger than this goes to the object store; 0 means never.
    pub threshold_bytes: u64,
    pub backend: ObjectBackend,
    /// Key prefix inside the bucket or directory.
    pub prefix: String,
    /// An object-store call slower than this fails (and the write falls back to inline).
    pub timeout: Duration,
    /// Longest lifetime a presigned URL may be given.
    pub max_presign: Duration,
    /// How often inline-pending content is moved to the store.
    pub reconcile_interval: Duration,
}

impl ObjectOptions {
    /// The embedded default: a directory, 1 MiB threshold.
    pub fn local(root: PathBuf) -> Self {
        ObjectOptions {
            threshold_bytes: 1024 * 1024,
            backend: ObjectBackend::Local { root },
            prefix: "schemas".into(),
            timeout: Duration::from_secs(10),
            max_presign: Duration::from_secs(3600),
            reconcile_interval: Duration::from_secs(30),
        }
    }
}

/// Counters, for metrics and health.
#[derive(Debug, Default)]
pub struct ObjectCounters {
    pub puts: AtomicU64,
    pub put_bytes: AtomicU64,
    pub gets: AtomicU64,
    pub deletes: AtomicU64,
    pub errors: AtomicU64,
    pub corrupted: AtomicU64,
}

/// The object tier, shared by a backend's writes, reads and reconciler.
#[derive(Debug)]
pub struct ObjectTier {
    store: Arc<dyn ObjectStore>,
    signer: Option<Arc<dyn Signer>>,
    kind: &'static str,
    options: ObjectOptions,
    breaker: Breaker,
    pub counters: ObjectCounters,
    /// Rows whose content waits to be moved to the store (set by the reconciler).
    pending: AtomicU64,
}

/// Counts one object-store call in `schema_registry_s3_operations_total{operation,status}`. The
/// name says s3, whatever the store: the label `backend` tells which.
fn count_op(kind: &'static str, op: &'static str, ok: bool) {
    metrics::counter!(
        "schema_registry_s3_operations_total",
        "operation" => op,
        "status" => if ok { "ok" } else { "error" },
        "backend" => kind
    )
    .increment(1);
}

fn store_error(op: &str, e: impl std::fmt::Display) -> StorageError {
    StorageError::Unavailable(format!("object store {op}: {e}"))
}

impl ObjectTier {
    pub fn new(options: ObjectOptions) -> StorageResult<Self> {
        let (store, signer, kind): (Arc<dyn ObjectStore>, Option<Arc<dyn Signer>>, &'static str) =
            match &options.backend {
                ObjectBackend::Local { root } => {
                    std::fs::create_dir_all(root).map_err(|e| {
                        StorageError::Internal(format!(
                            "cannot create object directory {}: {e}",
                            root.display()
                        ))
                    })?;
                    let fs = LocalFileSystem::new_with_prefix(root).map_err(|e| {
                        StorageError::Internal(format!("object directory {}: {e}", root.display()))
                    })?;
                    (Arc::new(fs), None, "local")
                }
                ObjectBackend::S3(s3) => {
                    let mut b = AmazonS3Builder::new()
                        .with_bucket_name(&s3.bucket)
                        .with_region(&s3.region)
                        .with_virtual_hosted_style_request(!s3.path_style)
                        .with_allow_http(s3.allow_http);
                    if let Some(endpoint) = &s3.endpoint {
                        b = b.with_endpoint(endpoint);
                    }
                    if let Some(k) = &s3.access_key_id {
                        b = b.with_access_key_id(k);
                    }
                    if let Some(k) = &s3.secret_access_key {
                        b = b.with_secret_access_key(k);
                    }
                    if let Some(t) = &s3.session_token {
                        b = b.with_token(t);
                    }
                    // A KMS key without a mode means SSE-KMS.
                    let sse = s3
                        .sse
                        .clone()
                        .or_else(|| s3.sse_kms_key_id.as_ref().map(|_| "aws:kms".to_string()));
                    if let Some(sse) = &sse {
                        let key = AmazonS3ConfigKey::from_str("aws_server_side_encryption")
                            .map_err(|e| {
                                StorageError::Internal(format!("S3 encryption setting: {e}"))
                            })?;
                        b = b.with_config(key, sse);
                    }
                    if let Some(kms) = &s3.sse_kms_key_id {
                        // The key id alone: `with_sse_kms_encryption` would also force the
                        // `aws:kms` mode over an explicit `aws:kms:dsse`.
                        let key = AmazonS3ConfigKey::from_str("aws_sse_kms_key_id")
                            .map_err(|e| StorageError::Internal(format!("S3 KMS setting: {e}")))?;
                        b = b.with_config(key, kms);
                    }
                    let s3store = Arc::new(b.build().map_err(|e| {
                        StorageError::Internal(format!("invalid S3 configuration: {e}"))
                    })?);
                    (s3store.clone(), Some(s3store), "s3")
                }
            };
        Ok(ObjectTier {
            store,
            signer,
            kind,
            breaker: Breaker::new(3, Duration::from_secs(5)),
            options,
            counters: ObjectCounters::default(),
            pending: AtomicU64::new(0),
        })
    }

    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Whether content of `size` bytes belongs in the object store.
    pub fn should_externalize(&self, size: u64) -> bool {
        self.options.threshold_bytes > 0 && size > self.options.threshold_bytes
    }

    pub fn reconcile_interval(&self) -> Duration {
        self.options.reconcile_interval
    }

    /// The content-addressed key of a checksum.
    pub fn key_for(&self, checksum: &str) -> String {
        format!("{}/{checksum}", self.options.prefix.trim_end_matches('/'))
    }

    async fn timed<T>(
        &self,
        op: &'static str,
        f: impl std::future::Future<Output = object_store::Result<T>>,
    ) -> StorageResult<T> {
        let result = tokio::time::timeout(self.options.timeout, f).await;
        let ok = matches!(
            result,
            Ok(Ok(_)) | Ok(Err(object_store::Error::NotFound { .. }))
        );
        count_op(self.kind, op, ok);
        match result {
            Ok(Ok(v)) => {
                self.breaker.success();
                Ok(v)
            }
            Ok(Err(object_store::Error::NotFound { path, .. })) => Err(StorageError::Corrupted(
                format!("object {path} is missing from the store"),
            )),
            Ok(Err(e)) => {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                self.breaker.failure();
                Err(store_error(op, e))
            }
            Err(_) => {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                self.breaker.failure();
                Err(store_error(
                    op,
                    format!("no answer within {:?}", self.options.timeout),
                ))
            }
        }
    }

    /// Stores `content` under its key unless it is there already. Returns the key.
    /// `Unavailable` when the store cannot be reached (the caller then keeps the content inline).
    pub async fn put(&self, content: &SchemaContent) -> StorageResult<String> {
        if !self.breaker.allow() {
            return Err(store_error("put", "circuit open after repeated failures"));
        }
        let key = self.key_for(content.checksum());
        if self.exists(&key).await? {
            return Ok(key);
        }
        let path = ObjectPath::from(key.as_str());
        let payload = PutPayload::from(content.text().as_bytes().to_vec());
        // A local directory can refuse to overwrite atomically; S3-compatible servers do not all
        // support conditional puts, and the HEAD above already kept us from rewriting a key.
        let mode = if self.kind == "local" {
            PutMode::Create
        } else {
            PutMode::Overwrite
        };
        let result = tokio::time::timeout(
            self.options.timeout,
            self.store.put_opts(
                &path,
                payload,
                PutOptions {
                    mode,
                    ..PutOptions::default()
                },
            ),
        )
        .await;
        let ok = matches!(
            result,
            Ok(Ok(_)) | Ok(Err(object_store::Error::AlreadyExists { .. }))
        );
        count_op(self.kind, "put", ok);
        match result {
            Ok(Ok(_)) | Ok(Err(object_store::Error::AlreadyExists { .. })) => {
                metrics::histogram!("schema_registry_s3_upload_size_bytes", "backend" => self.kind)
                    .record(content.size_bytes() as f64);
                self.breaker.success();
                self.counters.puts.fetch_add(1, Ordering::Relaxed);
                self.counters
                    .put_bytes
                    .fetch_add(content.size_bytes(), Ordering::Relaxed);
                Ok(key)
            }
            Ok(Err(e)) => {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                self.breaker.failure();
                Err(store_error("put", e))
            }
            Err(_) => {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                self.breaker.failure();
                Err(store_error("put", "timed out"))
            }
        }
    }

    /// Whether `key` exists.
    pub async fn exists(&self, key: &str) -> StorageResult<bool> {
        match self
            .timed("head", self.store.head(&ObjectPath::from(key)))
            .await
        {
            Ok(_) => Ok(true),
            Err(StorageError::Corrupted(_)) => Ok(false), // NotFound
            Err(e) => Err(e),
        }
    }

    /// Reads `key` and checks it against `checksum`.
    pub async fn get(
        &self,
        key: &str,
        format: SchemaFormat,
        checksum: &str,
    ) -> StorageResult<SchemaContent> {
        let path = ObjectPath::from(key);
        let bytes = self
            .timed("get", async { self.store.get(&path).await?.bytes().await })
            .await?;
        self.counters.gets.fetch_add(1, Ordering::Relaxed);
        let corrupted = |why: String| {
            self.counters.corrupted.fetch_add(1, Ordering::Relaxed);
            tracing::error!(key, why = %why, "object content does not match its checksum");
            StorageError::Corrupted(format!("stored content of object {key} is corrupted"))
        };
        let text =
            String::from_utf8(bytes.to_vec()).map_err(|e| corrupted(format!("not UTF-8: {e}")))?;
        let content = SchemaContent::from_canonical(format, text);
        if content.checksum() != checksum {
            return Err(corrupted(format!(
                "expected {checksum}, found {}",
                content.checksum()
            )));
        }
        Ok(content)
    }

    /// Removes `key` (a missing object is not an error).
    pub async fn delete(&self, key: &str) -> StorageResult<()> {
        match self
            .timed("delete", self.store.delete(&ObjectPath::from(key)))
            .await
        {
            Ok(()) | Err(StorageError::Corrupted(_)) => {
                self.counters.deletes.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// A time-limited GET URL for `key`, when the store can sign one (S3); `None` otherwise.
    /// `expires_in` is capped at the configured maximum.
    pub async fn presign(
        &self,
        key: &str,
        expires_in: Duration,
    ) -> StorageResult<Option<(url::Url, Duration)>> {
        let Some(signer) = &self.signer else {
            return Ok(None);
        };
        let expires_in = expires_in.min(self.options.max_presign);
        let url = signer
            .signed_url(http::Method::GET, &ObjectPath::from(key), expires_in)
            .await
            .map_err(|e| store_error("presign", e))?;
        Ok(Some((url, expires_in)))
    }

    pub fn max_presign(&self) -> Duration {
        self.options.max_presign
    }

    pub fn set_pending(&self, n: u64) {
        self.pending.store(n, Ordering::Relaxed);
    }

    pub fn health(&self) -> TierHealth {
        let pending = self.pending.load(Ordering::Relaxed);
        let status = if self.breaker.is_open() {
            "degraded"
        } else {
            "up"
        };
        TierHealth {
            name: "objects",
            status,
            detail: json!({
                "backend": self.kind,
                "threshold_bytes": self.options.threshold_bytes,
                "pending_uploads": pending,
                "puts": self.counters.puts.load(Ordering::Relaxed),
                "gets": self.counters.gets.load(Ordering::Relaxed),
                "errors": self.counters.errors.load(Ordering::Relaxed),
                "corrupted": self.counters.corrupted.load(Ordering::Relaxed),
            }),
        }
    }
}

/// The presigned URL for a version whose row holds `location` (looked up by the backend):
/// not found when the row is missing, `None` when the content is inline or the store cannot
/// sign.
pub(crate) async fn presign_location(
    tier: Option<&ObjectTier>,
    id: schema_registry_core::SchemaId,
    location: Option<Option<String>>,
    expires_in: Duration,
) -> StorageResult<Option<(url::Url, Duration)>> {
    match (location, tier) {
        (None, _) => Err(StorageError::NotFound(crate::NotFound::Schema(id))),
        (Some(Some(key)), Some(tier)) => tier.presign(&key, expires_in).await,
        _ => Ok(None),
    }
}

/// Where a new version's content is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Placement {
    /// In the row (small content, or no object tier).
    Inline,
    /// In the object store under this key; the row holds only the pointer.
    Object(String),
    /// Belongs in the object store, which could not be reached: in the row for now, flagged for
    /// the reconciler.
    InlinePending,
}

/// Decides where `content` goes and uploads it when it goes to the object store. Called before
/// the database transaction opens, so a slow store never holds database locks.
pub(crate) async fn place(
    tier: Option<&ObjectTier>,
    content: &SchemaContent,
) -> StorageResult<Placement> {
    let Some(tier) = tier.filter(|t| t.should_externalize(content.size_bytes())) else {
        return Ok(Placement::Inline);
    };
    match tier.put(content).await {
        Ok(key) => Ok(Placement::Object(key)),
        Err(StorageError::Unavailable(why)) => {
            tracing::warn!(reason = %why, "object store unavailable; keeping content inline until it is back");
            Ok(Placement::InlinePending)
        }
        Err(e) => Err(e),
    }
}

/// Inside the registration transaction, after the content lock: makes sure the object a
/// pointer is about to name still exists (a permanent delete may have removed it since the
/// upload), uploading it again if needed, or falling back to inline.
pub(crate) async fn confirm(
    tier: Option<&ObjectTier>,
    placement: Placement,
    content: &SchemaContent,
) -> StorageResult<Placement> {
    let (Placement::Object(key), Some(tier)) = (&placement, tier) else {
        return Ok(placement);
    };
    match tier.exists(key).await {
        Ok(true) => Ok(placement),
        Ok(false) => match tier.put(content).await {
            Ok(key) => Ok(Placement::Object(key)),
            Err(StorageError::Unavailable(_)) => Ok(Placement::InlinePending),
            Err(e) => Err(e),
        },
        Err(StorageError::Unavailable(_)) => Ok(Placement::InlinePending),
        Err(e) => Err(e),
    }
}
