//! L2: Redis, shared by every server.
//!
//! - **Reads** are one `MGET` of the value and its epoch (a pipeline of two keys, one round trip).
//! - **Fills** run a Lua compare-and-set: the value is stored only if the epoch still equals what
//!   the reader saw before it went to the database (see `keys.rs`).
//! - **Invalidation** is one pipeline: bump the epochs, delete the keys, publish the invalidation
//!   on the channel every server subscribes to (their L1s drop the same keys). If Redis cannot be
//!   reached, the invalidation is kept and replayed before L2 is used again, so a value this
//!   server made stale is never served from Redis afterwards.
//! - **Failures** (errors or `timeout`) feed a [`Breaker`]; while it is open L2 is skipped.
//!
//! The connection is a `redis` `ConnectionManager`, created lazily (the server starts while
//! Redis is down) and reconnecting by itself. `redis://:password@host` authenticates,
//! `rediss://` uses TLS (rustls).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use schema_registry_core::SchemaRecord;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use uuid::Uuid;

use super::breaker::Breaker;
use super::codec;
use super::keys::{CacheKey, EpochKey, Invalidation};
use super::l1::L1;
use crate::{StorageError, StorageResult};

/// Most invalidations kept while Redis is unreachable; beyond that every key of this registry
/// (the prefix) is removed when Redis is back.
const MAX_PENDING: usize = 10_000;

#[derive(Debug, Clone)]
pub struct L2Options {
    /// `redis://[:password@]host:port[/db]` or `rediss://...` (TLS).
    pub url: String,
    pub ttl: Duration,
    /// A Redis call slower than this counts as a failure and the request goes on without it.
    pub timeout: Duration,
    /// Namespace of every key and of the invalidation channel.
    pub prefix: String,
    /// PEM file of the CA that signed the Redis server's certificate (`rediss://` with a private
    /// CA); `None` trusts the system's roots.
    pub ca_cert: Option<std::path::PathBuf>,
    pub breaker_threshold: u32,
    pub breaker_cooldown: Duration,
}

/// The message published on the invalidation channel.
#[derive(Debug, Serialize, Deserialize)]
struct Message {
    origin: Uuid,
    #[serde(flatten)]
    invalidation: Invalidation,
}

const FILL_SCRIPT: &str = r"
local current = redis.call('GET', KEYS[2])
if current == false then current = '' end
if current == ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
  return 1
end
return 0";

pub struct L2 {
    conn: ConnectionManager,
    client: redis::Client,
    options: L2Options,
    node: Uuid,
    breaker: Breaker,
    fill: redis::Script,
    errors: AtomicU64,
    /// Invalidations not yet delivered to Redis. A `std` mutex: never held across an `.await`.
    pending: Mutex<Vec<Invalidation>>,
    overflowed: AtomicBool,
    subscribed: AtomicBool,
    stop: Notify,
}

impl std::fmt::Debug for L2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("L2")
            .field("prefix", &self.options.prefix)
            .field("node", &self.node)
            .finish()
    }
}

/// A value read from L2, with the epoch to fill under on a miss.
pub struct Lookup {
    pub record: Option<SchemaRecord>,
    pub epoch: String,
}

fn unavailable(e: impl std::fmt::Display) -> StorageError {
    StorageError::Unavailable(format!("redis: {e}"))
}

impl L2 {
    /// Prepares the connection (lazily: nothing is sent until the first call).
    pub fn new(options: L2Options) -> StorageResult<Self> {
        let invalid = |e: &dyn std::fmt::Display| {
            StorageError::Internal(format!(
                "invalid REDIS_URL {}: {e}",
                crate::redact_url(&options.url)
            ))
        };
        let client = match &options.ca_cert {
            None => redis::Client::open(options.url.as_str()).map_err(|e| invalid(&e))?,
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    StorageError::Internal(format!(
                        "cannot read Redis CA certificate {}: {e}",
                        path.display()
                    ))
                })?;
                let certs = redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                };
                redis::Client::build_with_tls(options.url.as_str(), certs)
                    .map_err(|e| invalid(&e))?
            }
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.timeout.max(Duration::from_millis(200))))
            .set_response_timeout(Some(options.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let conn =
            ConnectionManager::new_lazy_with_config(client.clone(), config).map_err(unavailable)?;
        Ok(L2 {
            conn,
            client,
            breaker: Breaker::new(options.breaker_threshold, options.breaker_cooldown),
            options,
            node: Uuid::now_v7(),
            fill: redis::Script::new(FILL_SCRIPT),
            errors: AtomicU64::new(0),
            pending: Mutex::new(Vec::new()),
            overflowed: AtomicBool::new(false),
            subscribed: AtomicBool::new(false),
            stop: Notify::new(),
        })
    }

    fn channel(&self) -> String {
        format!("{}:v1:invalidate", self.options.prefix)
    }

    /// Runs one Redis call under the timeout and the breaker.
    async fn call<T>(
        &self,
        f: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> StorageResult<T> {
        match tokio::time::timeout(self.options.timeout, f).await {
            Ok(Ok(v)) => {
                self.breaker.success();
                Ok(v)
            }
            Ok(Err(e)) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                self.breaker.failure();
                Err(unavailable(e))
            }
            Err(_) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                self.breaker.failure();
                Err(unavailable(format!(
                    "no answer within {:?}",
                    self.options.timeout
                )))
            }
        }
    }

    fn has_pending(&self) -> bool {
        self.overflowed.load(Ordering::Acquire)
            || self.pending.lock().map(|p| !p.is_empty()).unwrap_or(true)
    }

    /// Whether L2 may be used now: the breaker is closed (or this call is its probe) and every
    /// invalidation this server owes Redis has been delivered.
    pub async fn ready(&self) -> bool {
        if !self.breaker.allow() {
            return false;
        }
        if self.has_pending() {
            return self.replay().await;
        }
        true
    }

    /// Probes Redis when the breaker is open and delivers owed invalidations, so the tier comes
    /// back by itself even when no request arrives. Run once a second by the subscriber task.
    async fn heal(&self) {
        if !(self.breaker.is_open() || self.has_pending()) || !self.breaker.allow() {
            return;
        }
        if self.has_pending() {
            self.replay().await;
        } else {
            let mut conn = self.conn.clone();
            let _ = self
                .call(redis::cmd("PING").query_async::<String>(&mut conn))
                .await;
        }
    }

    pub async fn get(&self, key: &CacheKey) -> StorageResult<Lookup> {
        let mut conn = self.conn.clone();
        let keys = [
            key.redis_key(&self.options.prefix),
            key.epoch().redis_key(&self.options.prefix),
        ];
        let (value, epoch): (Option<Vec<u8>>, Option<String>) = self
            .call(redis::cmd("MGET").arg(&keys[..]).query_async(&mut conn))
            .await?;
        let record = match value {
            Some(bytes) => codec::decode(&bytes).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "unreadable L2 entry ignored");
                None
            }),
            None => None,
        };
        Ok(Lookup {
            record,
            epoch: epoch.unwrap_or_default(),
        })
    }

    /// Stores `record` under `key` if the key's epoch is still `epoch`.
    pub async fn fill(
        &self,
        key: &CacheKey,
        record: &SchemaRecord,
        epoch: &str,
    ) -> StorageResult<()> {
        let bytes = codec::encode(record)?;
        let mut conn = self.conn.clone();
        let ttl_ms = u64::try_from(self.options.ttl.as_millis()).unwrap_or(u64::MAX);
        let mut invocation = self.fill.key(key.redis_key(&self.options.prefix));
        invocation
            .key(key.epoch().redis_key(&self.options.prefix))
            .arg(bytes)
            .arg(epoch)
            .arg(ttl_ms);
        let _: i64 = self.call(invocation.invoke_async(&mut conn)).await?;
        Ok(())
    }

    /// Delivers an invalidation (epochs, deletes, publish) or keeps it for replay.
    pub async fn invalidate(&self, invalidation: Invalidation) {
        if invalidation.is_empty() {
            return;
        }
        let delivered = self.breaker.allow() && self.send(&invalidation).await.is_ok();
        if !delivered {
            let mut pending = match self.pending.lock() {
                Ok(p) => p,
                Err(_) => return,
            };
            if pending.len() >= MAX_PENDING {
                pending.clear();
                self.overflowed.store(true, Ordering::Release);
            } else if !self.overflowed.load(Ordering::Acquire) {
                pending.push(invalidation);
            }
        }
    }

    async fn send(&self, invalidation: &Invalidation) -> StorageResult<()> {
        let prefix = &self.options.prefix;
        let epoch_ttl_ms =
            u64::try_from(self.options.ttl.as_millis().saturating_mul(2)).unwrap_or(u64::MAX);
        let message = serde_json::to_vec(&Message {
            origin: self.node,
            invalidation: invalidation.clone(),
        })
        .map_err(|e| StorageError::Internal(format!("encode invalidation: {e}")))?;
        let mut pipe = redis::pipe();
        for e in &invalidation.epochs {
            let k = e.redis_key(prefix);
            pipe.cmd("INCR").arg(&k).ignore();
            pipe.cmd("PEXPIRE").arg(&k).arg(epoch_ttl_ms).ignore();
        }
        if !invalidation.keys.is_empty() {
            let keys: Vec<String> = invalidation
                .keys
                .iter()
                .map(|k| k.redis_key(prefix))
                .collect();
            pipe.cmd("DEL").arg(keys).ignore();
        }
        pipe.cmd("PUBLISH")
            .arg(self.channel())
            .arg(message)
            .ignore();
        let mut conn = self.conn.clone();
        self.call(pipe.query_async::<()>(&mut conn)).await
    }

    /// Delivers what is pending. True when nothing is left.
    async fn replay(&self) -> bool {
        if self.overflowed.load(Ordering::Acquire) {
            if self.remove_all_keys().await.is_err() {
                return false;
            }
            self.overflowed.store(false, Ordering::Release);
        }
        loop {
            let next = match self.pending.lock() {
                Ok(p) => p.first().cloned().map(|inv| (inv, p.len())),
                Err(_) => return false,
            };
            let Some((invalidation, _)) = next else {
                return true;
            };
            if self.send(&invalidation).await.is_err() {
                return false;
            }
            if let Ok(mut p) = self.pending.lock() {
                if p.first() == Some(&invalidation) {
                    p.remove(0);
                }
            }
        }
    }

    /// Removes every key of this registry's prefix (after too many lost invalidations).
    async fn remove_all_keys(&self) -> StorageResult<()> {
        let mut conn = self.conn.clone();
        let pattern = format!("{}:v1:*", self.options.prefix);
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = self
                .call(
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(&mut conn),
                )
                .await?;
            if !keys.is_empty() {
                let _: i64 = self
                    .call(redis::cmd("UNLINK").arg(keys).query_async(&mut conn))
                    .await?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    /// Keeps a subscription to the invalidation channel, applying other servers' invalidations
    /// to `l1`. Each time the subscription is (re)established, `l1` is cleared: messages sent
    /// while this server was not listening are lost, and a cleared cache is the only safe answer.
    pub async fn subscribe_loop(self: Arc<Self>, l1: Arc<L1>) {
        let channel = self.channel();
        loop {
            let connected =
                tokio::time::timeout(self.options.timeout.max(Duration::from_secs(1)), async {
                    let mut pubsub = self.client.get_async_pubsub().await?;
                    pubsub.subscribe(&channel).await?;
                    Ok::<_, redis::RedisError>(pubsub)
                })
                .await;
            match connected {
                Ok(Ok(mut pubsub)) => {
                    l1.clear();
                    self.subscribed.store(true, Ordering::Release);
                    tracing::info!(channel = %channel, "subscribed to cache invalidations");
                    let mut messages = pubsub.on_message();
                    let mut healing = tokio::time::interval(Duration::from_secs(1));
                    loop {
                        tokio::select! {
                            msg = messages.next() => match msg {
                                Some(msg) => self.apply(&l1, msg.get_payload_bytes()).await,
                                None => break,
                            },
                            _ = healing.tick() => self.heal().await,
                            _ = self.stop.notified() => {
                                self.subscribed.store(false, Ordering::Release);
                                return;
                            }
                        }
                    }
                    self.subscribed.store(false, Ordering::Release);
                    tracing::warn!("cache invalidation subscription lost; reconnecting");
                }
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "cannot subscribe to cache invalidations")
                }
                Err(_) => tracing::debug!("subscribing to cache invalidations timed out"),
            }
            self.heal().await;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = self.stop.notified() => return,
            }
        }
    }

    async fn apply(&self, l1: &L1, payload: &[u8]) {
        match serde_json::from_slice::<Message>(payload) {
            Ok(m) if m.origin == self.node => {}
            Ok(m) => {
                l1.invalidate(&m.invalidation.keys, &m.invalidation.epochs)
                    .await
            }
            Err(e) => tracing::warn!(error = %e, "unreadable invalidation message ignored"),
        }
    }

    pub fn stop(&self) {
        self.stop.notify_waiters();
    }

    pub fn is_subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Acquire)
    }

    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// `up`, or `degraded` when Redis is failing, invalidations are owed, or the invalidation
    /// subscription is down.
    pub fn state(&self) -> &'static str {
        if self.breaker.is_open() || self.has_pending() || !self.is_subscribed() {
            "degraded"
        } else {
            "up"
        }
    }

    /// Pipelined fills for warming: one round trip for many records.
    pub async fn fill_many(
        &self,
        entries: &[(CacheKey, SchemaRecord, String)],
    ) -> StorageResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let ttl_ms = u64::try_from(self.options.ttl.as_millis()).unwrap_or(u64::MAX);
        let mut pipe = redis::pipe();
        for (key, record, epoch) in entries {
            let bytes = codec::encode(record)?;
            pipe.cmd("EVAL")
                .arg(FILL_SCRIPT)
                .arg(2)
                .arg(key.redis_key(&self.options.prefix))
                .arg(key.epoch().redis_key(&self.options.prefix))
                .arg(bytes)
                .arg(epoch)
                .arg(ttl_ms)
                .ignore();
        }
        let mut conn = self.conn.clone();
        self.call(pipe.query_async::<()>(&mut conn)).await
    }

    /// Stores newly created versions under their id and their (subject, version) key, in one
    /// pipeline. Both fills are guarded by the **id's** epoch being absent: an id is fresh, and
    /// every write that can change what either key holds (a state change, a delete) bumps that
    /// epoch, so a version touched since its creation is never stored. Registrations of other
    /// versions bump only the subject's epoch, and do not change these two keys' values.
    pub async fn fill_new(&self, records: &[&SchemaRecord]) -> StorageResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        let prefix = &self.options.prefix;
        let ttl_ms = u64::try_from(self.options.ttl.as_millis()).unwrap_or(u64::MAX);
        let mut pipe = redis::pipe();
        for record in records {
            let bytes = codec::encode(record)?;
            let guard = EpochKey::Id(record.id).redis_key(prefix);
            let keys = [
                CacheKey::Id(record.id),
                CacheKey::Version(record.subject.clone(), record.version.clone()),
            ];
            for key in keys {
                pipe.cmd("EVAL")
                    .arg(FILL_SCRIPT)
                    .arg(2)
                    .arg(key.redis_key(prefix))
                    .arg(&guard)
                    .arg(&bytes)
                    .arg("")
                    .arg(ttl_ms)
                    .ignore();
            }
        }
        let mut conn = self.conn.clone();
        self.call(pipe.query_async::<()>(&mut conn)).await
    }

    /// The epochs of many keys in one `MGET` (warming reads them before the database).
    pub async fn epochs(&self, keys: &[CacheKey]) -> StorageResult<Vec<String>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<String> = keys
            .iter()
            .map(|k| k.epoch().redis_key(&self.options.prefix))
            .collect();
        let mut conn = self.conn.clone();
        let values: Vec<Option<String>> = self
            .call(redis::cmd("MGET").arg(names).query_async(&mut conn))
            .await?;
        Ok(values.into_iter().map(Option::unwrap_or_default).collect())
    }
}
