//! Configuration: the one module that reads flags, the environment and the config file.
//!
//! Precedence, highest first: command-line flag → environment variable → TOML config file →
//! built-in default. Every setting has all four; `--help` lists each flag with its variable and
//! default. The storage crate never reads any of this: it receives plain option structs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

use schema_registry_storage::objects::{ObjectBackend, ObjectOptions, S3Options};
use schema_registry_storage::postgres::MaintenanceOptions;
use schema_registry_storage::{CacheOptions, PostgresOptions, SqliteOptions, StorageOptions};

/// Built-in defaults, in one place (the `--help` texts repeat them).
pub mod defaults {
    pub const LISTEN: &str = "127.0.0.1:8080";
    pub const DATA_DIR: &str = "./data";
    pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
    pub const SHUTDOWN_TIMEOUT_SECS: u64 = 30;
    pub const DB_MAX_CONNECTIONS: u32 = 50;
    pub const DB_MIN_CONNECTIONS: u32 = 10;
    pub const DB_ACQUIRE_TIMEOUT_SECS: u64 = 3;
    pub const DB_IDLE_TIMEOUT_SECS: u64 = 600;
    pub const DB_MAX_LIFETIME_SECS: u64 = 1800;
    pub const ACCESS_FLUSH_SECS: u64 = 10;
    pub const VIEW_REFRESH_SECS: u64 = 60;
    pub const SQLITE_READERS: u32 = 8;
    pub const CACHE_L1_MAX_ENTRIES: u64 = 1_000_000;
    pub const CACHE_L1_MAX_BYTES: u64 = 256 * 1024 * 1024;
    pub const CACHE_L1_TTL_SECS: u64 = 3600;
    pub const CACHE_L1_TTI_SECS: u64 = 1800;
    pub const CACHE_L2_TTL_SECS: u64 = 3600;
    pub const CACHE_L2_TIMEOUT_MS: u64 = 250;
    pub const CACHE_KEY_PREFIX: &str = "schema-registry";
    pub const CACHE_BREAKER_THRESHOLD: u32 = 3;
    pub const CACHE_BREAKER_COOLDOWN_SECS: u64 = 5;
    pub const CACHE_DEGRADED_MAX_AGE_SECS: u64 = 5;
    pub const CACHE_WARM_SIZE: u32 = 100;
    pub const CACHE_WARM_BUDGET_MS: u64 = 2000;
    pub const OBJECT_THRESHOLD_BYTES: u64 = 1024 * 1024;
    pub const S3_REGION: &str = "us-east-1";
    pub const OBJECT_PREFIX: &str = "schemas";
    pub const OBJECT_TIMEOUT_MS: u64 = 10_000;
    pub const OBJECT_RECONCILE_SECS: u64 = 30;
    pub const CONTENT_URL_MAX_EXPIRY_SECS: u64 = 3600;
}

/// LLM Schema Registry: stores, versions and serves the schemas of prompts, structured outputs,
/// tool calls and events.
///
/// With no subcommand it serves the HTTP API. With no configuration at all it runs on the
/// embedded SQLite backend in ./data, with no external service.
#[derive(Debug, Parser)]
#[command(name = "llm-schema-registry", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default).
    Serve(Box<ServeArgs>),
    /// Drive a running server with a configurable load and report throughput and latency.
    ///
    /// Runs llm-schema-registry-load-test from this binary's directory with every argument.
    LoadTest(crate::load_test::LoadTestArgs),
    /// Apply, inspect or revert database migrations.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum MigrateAction {
    /// Apply every pending migration.
    Run(DatabaseArgs),
    /// List the migrations this binary knows and whether each is applied.
    Info(DatabaseArgs),
    /// Revert the most recently applied migration.
    Revert(DatabaseArgs),
}

impl MigrateAction {
    /// The database the action applies to.
    pub fn database(&self) -> &DatabaseArgs {
        match self {
            MigrateAction::Run(d) | MigrateAction::Info(d) | MigrateAction::Revert(d) => d,
        }
    }
}

/// Where the data lives. Shared by `serve` and `migrate`.
// These doc comments are the plain-text `--help`, not Markdown: `<data-dir>` and
// `[:PASSWORD@]` are meant literally.
#[allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]
#[derive(Debug, Clone, Default, Args)]
pub struct DatabaseArgs {
    /// TOML configuration file; its keys are the long flag names with `_` for `-`.
    #[arg(long, env = "SCHEMA_REGISTRY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory for the embedded SQLite database; created if missing. [default: ./data]
    #[arg(long, env = "SCHEMA_REGISTRY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite://PATH (embedded) or postgres://USER:PASS@HOST:PORT/DB (production;
    /// add ?sslmode=require|verify-full for TLS). [default: sqlite://<data-dir>/registry.db]
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
}

// These doc comments are the plain-text `--help`, not Markdown: `<data-dir>` and
// `[:PASSWORD@]` are meant literally.
#[allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Address to listen on. [default: 127.0.0.1:8080]
    #[arg(long, env = "SCHEMA_REGISTRY_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Largest accepted request body, in bytes; larger requests get 413. [default: 16777216]
    #[arg(long, env = "SCHEMA_REGISTRY_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Seconds to let in-flight requests finish after SIGINT/SIGTERM. [default: 30]
    #[arg(long, env = "SCHEMA_REGISTRY_SHUTDOWN_TIMEOUT_SECS")]
    pub shutdown_timeout_secs: Option<u64>,
    /// Log format: `text` (human) or `json` (one object per line). Filter with RUST_LOG.
    /// [default: text]
    #[arg(long, env = "SCHEMA_REGISTRY_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// PostgreSQL URL for reads (a replica, or a role granted schema_registry_reader).
    /// [default: reads use --database-url]
    #[arg(long, env = "DATABASE_READ_URL")]
    pub database_read_url: Option<String>,
    /// PostgreSQL pool: most connections. [default: 50]
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS")]
    pub database_max_connections: Option<u32>,
    /// PostgreSQL pool: connections kept open when idle. [default: 10]
    #[arg(long, env = "DATABASE_MIN_CONNECTIONS")]
    pub database_min_connections: Option<u32>,
    /// PostgreSQL pool: seconds to wait for a free connection before answering 503. [default: 3]
    #[arg(long, env = "DATABASE_ACQUIRE_TIMEOUT_SECS")]
    pub database_acquire_timeout_secs: Option<u64>,
    /// PostgreSQL pool: seconds before an idle connection above the minimum is closed.
    /// [default: 600]
    #[arg(long, env = "DATABASE_IDLE_TIMEOUT_SECS")]
    pub database_idle_timeout_secs: Option<u64>,
    /// PostgreSQL pool: seconds before a connection is recycled. [default: 1800]
    #[arg(long, env = "DATABASE_MAX_LIFETIME_SECS")]
    pub database_max_lifetime_secs: Option<u64>,
    /// Seconds between batched writes of read counters to schema_access_log (the popular-schema
    /// list used for cache warming).
    /// [default: 10]
    #[arg(long, env = "SCHEMA_REGISTRY_ACCESS_LOG_FLUSH_SECS")]
    pub access_log_flush_secs: Option<u64>,
    /// PostgreSQL: seconds between refreshes of the materialized views. [default: 60]
    #[arg(long, env = "SCHEMA_REGISTRY_VIEW_REFRESH_SECS")]
    pub view_refresh_secs: Option<u64>,
    /// Record Prometheus metrics and serve them at /metrics. [default: true]
    #[arg(long, env = "SCHEMA_REGISTRY_METRICS")]
    pub metrics: Option<bool>,
    /// Apply pending migrations at start (`false` when the server's database role may not
    /// change the schema; run `migrate run` as the owner instead). [default: true]
    #[arg(long, env = "SCHEMA_REGISTRY_MIGRATE_ON_START")]
    pub migrate_on_start: Option<bool>,
    /// Redis URL for the shared L2 cache and cross-server invalidation:
    /// redis://[:PASSWORD@]HOST:PORT[/DB], or rediss://... for TLS. Without it the server runs
    /// with the in-process L1 cache only (exact for a single server). [default: none]
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,
    /// PEM file of the CA that signed the Redis server's certificate, for rediss:// with a private
    /// CA. [default: the system's trusted roots]
    #[arg(long, env = "REDIS_CA_CERT")]
    pub redis_ca_cert: Option<PathBuf>,
    /// L1 (in-process) cache: most entries; 0 disables the cache. The byte budget normally
    /// binds first; 10000 restores the storage report's sizing. [default: 1000000]
    #[arg(long, env = "SCHEMA_REGISTRY_CACHE_L1_MAX_ENTRIES")]
    pub cache_l1_max_entries: Option<u64>,
    /// L1 cache: most bytes held (content, its JSON encoding and about 1 KiB of bookkeeping
    /// per entry). [default: 268435456]
    #[arg(long, env = "SCHEMA_REGISTRY_CACHE_L1_MAX_BYTES")]
    pub cache_l1_max_bytes: Option<u64>,
    /// L1 cache: seconds an entry lives. [default: 3600]
    #[arg(long, env = "SCHEMA_REGISTRY_CACHE_L1_TTL_SECS")]
    pub cache_l1_ttl_secs: Option<u64>,
    /// L1 cache: seconds an unread entry lives. [default: 1800]
    #[arg(long, env = "SCHEMA_REGISTRY_CACHE_L1_TTI_SECS")]
    pub cache_l1_tti_secs: Option<u64>,
    /// L2 (Redis) cache: seconds an entry lives. [default: 3600]
    #[arg(long, env = "SCHEMA_REGISTRY_CACHE_L2_TTL_SECS")]
    pub cache_l2_ttl_secs: Option<u64>,
    /// L2 cache: milliseconds a Redis call may take before it counts as a failure. [default: 250]
    #[arg(long, env = "SCHEMA_REGISTRY_CACHE_L2_TIMEOUT_MS")]
    pub cache_l2_timeout_ms: Option<u64>,
    /// L2 cache: prefix of every Redis key and of the invalidation channel. [default: schema-registry]
    #[arg(long, env = "SCHEMA_REGISTRY_CACHE_KEY_PREFIX")]
    pub cache_key_prefix: Option<String>,
    /// L2 cache: consecutive Redis failures that open the circuit breaker. [default: 3]
    #[arg(long, env = "SCHEMA_REGISTRY_CACHE_BREAKER_THRESHOLD")]
    pub cache_breaker_threshold: Option<u32>,
    /// L2 cache: seconds the breaker stays open before Redis is tried again. [default: 5]
    #[arg(long, env = "SCHEMA_REGISTRY_CACHE_BREAKER_COOLDOWN_SECS")]
    pub cache_breaker_cooldown_secs: Option<u64>,
    /// While Redis (and so cross-server invalidation) is unreachable, L1 entries older than this
    /// many seconds are not served. [default: 5]
    #[arg(long, env = "SCHEMA_REGISTRY_CACHE_DEGRADED_MAX_AGE_SECS")]
    pub cache_degraded_max_age_secs: Option<u64>,
    /// Load the most read schemas into the cache at start. [default: true]
    #[arg(long, env = "SCHEMA_REGISTRY_CACHE_WARM_ON_STARTUP")]
    pub cache_warm_on_startup: Option<bool>,
    /// How many of the most read schemas warming loads. [default: 100]
    #[arg(long, env = "SCHEMA_REGISTRY_CACHE_WARM_SIZE")]
    pub cache_warm_size: Option<u32>,
    /// Milliseconds warming may delay readiness. [default: 2000]
    #[arg(long, env = "SCHEMA_REGISTRY_CACHE_WARM_BUDGET_MS")]
    pub cache_warm_budget_ms: Option<u64>,
    /// Object tier: content larger than this many bytes is stored in object storage (S3, or the
    /// object directory) and the row keeps a pointer; 0 keeps everything in the database.
    /// [default: 1048576]
    #[arg(long, env = "OBJECT_THRESHOLD_BYTES")]
    pub object_threshold_bytes: Option<u64>,
    /// Object tier without S3: the directory for large content. [default: <data-dir>/objects]
    #[arg(long, env = "SCHEMA_REGISTRY_OBJECT_DIR")]
    pub object_dir: Option<PathBuf>,
    /// S3 bucket for large content; setting it selects S3 instead of the object directory.
    #[arg(long, env = "S3_BUCKET")]
    pub s3_bucket: Option<String>,
    /// S3 region. [default: us-east-1]
    #[arg(long, env = "S3_REGION")]
    pub s3_region: Option<String>,
    /// S3 endpoint, for S3-compatible servers (MinIO, s3s-fs): http://HOST:PORT. [default: AWS]
    #[arg(long, env = "S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// S3 path-style requests (ENDPOINT/BUCKET/KEY), which most S3-compatible servers need.
    /// [default: false]
    #[arg(long, env = "S3_PATH_STYLE")]
    pub s3_path_style: Option<bool>,
    /// Allow a plain http:// S3 endpoint. [default: false]
    #[arg(long, env = "S3_ALLOW_HTTP")]
    pub s3_allow_http: Option<bool>,
    /// Key prefix of stored objects (S3 and the object directory). [default: schemas]
    #[arg(long, env = "S3_PREFIX")]
    pub s3_prefix: Option<String>,
    /// S3 server-side encryption: AES256, aws:kms or aws:kms:dsse. [default: the bucket's]
    #[arg(long, env = "S3_SSE")]
    pub s3_sse: Option<String>,
    /// KMS key id for S3_SSE=aws:kms. [default: none]
    #[arg(long, env = "S3_SSE_KMS_KEY_ID")]
    pub s3_sse_kms_key_id: Option<String>,
    /// S3 access key id. [default: none]
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    pub aws_access_key_id: Option<String>,
    /// S3 secret access key. [default: none]
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub aws_secret_access_key: Option<String>,
    /// S3 session token (temporary credentials). [default: none]
    #[arg(long, env = "AWS_SESSION_TOKEN", hide_env_values = true)]
    pub aws_session_token: Option<String>,
    /// Object tier: milliseconds an object-store call may take before the write falls back to
    /// keeping content inline. [default: 10000]
    #[arg(long, env = "SCHEMA_REGISTRY_OBJECT_TIMEOUT_MS")]
    pub object_timeout_ms: Option<u64>,
    /// Object tier: seconds between moves of inline-kept content to the store after an outage.
    /// [default: 30]
    #[arg(long, env = "SCHEMA_REGISTRY_OBJECT_RECONCILE_SECS")]
    pub object_reconcile_secs: Option<u64>,
    /// Longest lifetime of a presigned content URL, in seconds. [default: 3600]
    #[arg(long, env = "SCHEMA_REGISTRY_CONTENT_URL_MAX_EXPIRY_SECS")]
    pub content_url_max_expiry_secs: Option<u64>,
    /// SQLite: read-only connections. [default: 8]
    #[arg(long, env = "SCHEMA_REGISTRY_SQLITE_READERS")]
    pub sqlite_readers: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The config file: every key optional, unknown keys rejected (a typo must not pass silently).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub listen: Option<SocketAddr>,
    pub max_body_bytes: Option<usize>,
    pub shutdown_timeout_secs: Option<u64>,
    pub log_format: Option<LogFormat>,
    pub database_read_url: Option<String>,
    pub database_max_connections: Option<u32>,
    pub database_min_connections: Option<u32>,
    pub database_acquire_timeout_secs: Option<u64>,
    pub database_idle_timeout_secs: Option<u64>,
    pub database_max_lifetime_secs: Option<u64>,
    pub access_log_flush_secs: Option<u64>,
    pub view_refresh_secs: Option<u64>,
    pub sqlite_readers: Option<u32>,
    pub migrate_on_start: Option<bool>,
    pub metrics: Option<bool>,
    pub redis_url: Option<String>,
    pub redis_ca_cert: Option<PathBuf>,
    pub cache_l1_max_entries: Option<u64>,
    pub cache_l1_max_bytes: Option<u64>,
    pub cache_l1_ttl_secs: Option<u64>,
    pub cache_l1_tti_secs: Option<u64>,
    pub cache_l2_ttl_secs: Option<u64>,
    pub cache_l2_timeout_ms: Option<u64>,
    pub cache_key_prefix: Option<String>,
    pub cache_breaker_threshold: Option<u32>,
    pub cache_breaker_cooldown_secs: Option<u64>,
    pub cache_degraded_max_age_secs: Option<u64>,
    pub cache_warm_on_startup: Option<bool>,
    pub cache_warm_size: Option<u32>,
    pub cache_warm_budget_ms: Option<u64>,
    pub object_threshold_bytes: Option<u64>,
    pub object_dir: Option<PathBuf>,
    pub s3_bucket: Option<String>,
    pub s3_region: Option<String>,
    pub s3_endpoint: Option<String>,
    pub s3_path_style: Option<bool>,
    pub s3_allow_http: Option<bool>,
    pub s3_prefix: Option<String>,
    pub s3_sse: Option<String>,
    pub s3_sse_kms_key_id: Option<String>,
    pub aws_access_key_id: Option<String>,
    pub aws_secret_access_key: Option<String>,
    pub aws_session_token: Option<String>,
    pub object_timeout_ms: Option<u64>,
    pub object_reconcile_secs: Option<u64>,
    pub content_url_max_expiry_secs: Option<u64>,
}

/// Why the configuration could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("invalid setting {name}: {message}")]
    Invalid { name: &'static str, message: String },
}

/// The resolved settings the server runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub max_body_bytes: usize,
    pub shutdown_timeout: Duration,
    pub log_format: LogFormat,
    pub storage: StorageOptions,
    /// Record and serve Prometheus metrics.
    pub metrics: bool,
    /// `None`: no cache at all (`cache_l1_max_entries = 0`).
    pub cache: Option<CacheOptions>,
    pub warm: WarmSettings,
}

/// Cache warming at start.
#[derive(Debug, Clone, Copy)]
pub struct WarmSettings {
    pub enabled: bool,
    pub size: u32,
    pub budget: Duration,
}

fn read_file(path: Option<&Path>) -> Result<FileConfig, ConfigError> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

/// The data directory and database URL, resolved the same way for `serve` and `migrate`.
pub fn resolve_database(
    args: &DatabaseArgs,
    file: &FileConfig,
) -> Result<(PathBuf, String), ConfigError> {
    let data_dir = args
        .data_dir
        .clone()
        .or_else(|| file.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from(defaults::DATA_DIR));
    let database_url = args
        .database_url
        .clone()
        .or_else(|| file.database_url.clone())
        .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("registry.db").display()));
    if database_url.trim().is_empty() {
        return Err(ConfigError::Invalid {
            name: "database_url",
            message: "must not be empty".into(),
        });
    }
    Ok((data_dir, database_url))
}

/// Reads the config file `args` names, if any.
pub fn load_file(args: &DatabaseArgs) -> Result<FileConfig, ConfigError> {
    read_file(args.config.as_deref())
}

impl Settings {
    /// Resolves every setting from flags/environment (`args`, parsed by clap) and the file.
    pub fn resolve(args: &ServeArgs) -> Result<Settings, ConfigError> {
        let file = load_file(&args.database)?;
        let (data_dir, database_url) = resolve_database(&args.database, &file)?;
        macro_rules! pick {
            ($field:ident, $default:expr) => {
                args.$field
                    .clone()
                    .or(file.$field.clone())
                    .unwrap_or($default)
            };
        }
        let secs = |name: &'static str, n: u64| -> Result<Duration, ConfigError> {
            if n == 0 {
                return Err(ConfigError::Invalid {
                    name,
                    message: "must be at least 1 second".into(),
                });
            }
            Ok(Duration::from_secs(n))
        };
        let max_body_bytes = pick!(max_body_bytes, defaults::MAX_BODY_BYTES);
        if max_body_bytes < 1024 {
            return Err(ConfigError::Invalid {
                name: "max_body_bytes",
                message: format!("{max_body_bytes} is too small; use at least 1024"),
            });
        }
        let max_connections = pick!(database_max_connections, defaults::DB_MAX_CONNECTIONS);
        let min_connections = pick!(database_min_connections, defaults::DB_MIN_CONNECTIONS);
        if max_connections == 0 || min_connections > max_connections {
            return Err(ConfigError::Invalid {
                name: "database_max_connections",
                message: format!(
                    "need min ({min_connections}) <= max ({max_connections}) and max >= 1"
                ),
            });
        }
        let postgres = PostgresOptions {
            max_connections,
            min_connections,
            acquire_timeout: secs(
                "database_acquire_timeout_secs",
                pick!(
                    database_acquire_timeout_secs,
                    defaults::DB_ACQUIRE_TIMEOUT_SECS
                ),
            )?,
            idle_timeout: secs(
                "database_idle_timeout_secs",
                pick!(database_idle_timeout_secs, defaults::DB_IDLE_TIMEOUT_SECS),
            )?,
            max_lifetime: secs(
                "database_max_lifetime_secs",
                pick!(database_max_lifetime_secs, defaults::DB_MAX_LIFETIME_SECS),
            )?,
            read_url: args
                .database_read_url
                .clone()
                .or(file.database_read_url.clone()),
            run_migrations: pick!(migrate_on_start, true),
            maintenance: MaintenanceOptions {
                access_flush_interval: secs(
                    "access_log_flush_secs",
                    pick!(access_log_flush_secs, defaults::ACCESS_FLUSH_SECS),
                )?,
                view_refresh_interval: secs(
                    "view_refresh_secs",
                    pick!(view_refresh_secs, defaults::VIEW_REFRESH_SECS),
                )?,
            },
        };
        let sqlite = SqliteOptions {
            readers: pick!(sqlite_readers, defaults::SQLITE_READERS).max(1),
            access_flush_interval: postgres.maintenance.access_flush_interval,
            ..SqliteOptions::default()
        };
        let millis = |name: &'static str, n: u64| -> Result<Duration, ConfigError> {
            if n == 0 {
                return Err(ConfigError::Invalid {
                    name,
                    message: "must be at least 1 millisecond".into(),
                });
            }
            Ok(Duration::from_millis(n))
        };
        let l1_entries = pick!(cache_l1_max_entries, defaults::CACHE_L1_MAX_ENTRIES);
        let cache = if l1_entries == 0 {
            None
        } else {
            Some(CacheOptions {
                l1_max_entries: l1_entries,
                l1_max_bytes: pick!(cache_l1_max_bytes, defaults::CACHE_L1_MAX_BYTES).max(1),
                l1_ttl: secs(
                    "cache_l1_ttl_secs",
                    pick!(cache_l1_ttl_secs, defaults::CACHE_L1_TTL_SECS),
                )?,
                l1_tti: secs(
                    "cache_l1_tti_secs",
                    pick!(cache_l1_tti_secs, defaults::CACHE_L1_TTI_SECS),
                )?,
                redis_url: args
                    .redis_url
                    .clone()
                    .or(file.redis_url.clone())
                    .filter(|u| !u.is_empty()),
                redis_ca_cert: args.redis_ca_cert.clone().or(file.redis_ca_cert.clone()),
                l2_ttl: secs(
                    "cache_l2_ttl_secs",
                    pick!(cache_l2_ttl_secs, defaults::CACHE_L2_TTL_SECS),
                )?,
                l2_timeout: millis(
                    "cache_l2_timeout_ms",
                    pick!(cache_l2_timeout_ms, defaults::CACHE_L2_TIMEOUT_MS),
                )?,
                key_prefix: pick!(cache_key_prefix, defaults::CACHE_KEY_PREFIX.to_string()),
                breaker_threshold: pick!(
                    cache_breaker_threshold,
                    defaults::CACHE_BREAKER_THRESHOLD
                )
                .max(1),
                breaker_cooldown: secs(
                    "cache_breaker_cooldown_secs",
                    pick!(
                        cache_breaker_cooldown_secs,
                        defaults::CACHE_BREAKER_COOLDOWN_SECS
                    ),
                )?,
                degraded_max_age: secs(
                    "cache_degraded_max_age_secs",
                    pick!(
                        cache_degraded_max_age_secs,
                        defaults::CACHE_DEGRADED_MAX_AGE_SECS
                    ),
                )?,
            })
        };
        let warm = WarmSettings {
            enabled: pick!(cache_warm_on_startup, true),
            size: pick!(cache_warm_size, defaults::CACHE_WARM_SIZE),
            budget: millis(
                "cache_warm_budget_ms",
                pick!(cache_warm_budget_ms, defaults::CACHE_WARM_BUDGET_MS),
            )?,
        };
        let objects = {
            let threshold = pick!(object_threshold_bytes, defaults::OBJECT_THRESHOLD_BYTES);
            let prefix = pick!(s3_prefix, defaults::OBJECT_PREFIX.to_string());
            let backend = match args
                .s3_bucket
                .clone()
                .or(file.s3_bucket.clone())
                .filter(|b| !b.is_empty())
            {
                Some(bucket) => ObjectBackend::S3(S3Options {
                    bucket,
                    region: pick!(s3_region, defaults::S3_REGION.to_string()),
                    endpoint: args.s3_endpoint.clone().or(file.s3_endpoint.clone()),
                    path_style: pick!(s3_path_style, false),
                    allow_http: pick!(s3_allow_http, false),
                    sse: args.s3_sse.clone().or(file.s3_sse.clone()),
                    sse_kms_key_id: args
                        .s3_sse_kms_key_id
                        .clone()
                        .or(file.s3_sse_kms_key_id.clone()),
                    access_key_id: args
                        .aws_access_key_id
                        .clone()
                        .or(file.aws_access_key_id.clone()),
                    secret_access_key: args
                        .aws_secret_access_key
                        .clone()
                        .or(file.aws_secret_access_key.clone()),
                    session_token: args
                        .aws_session_token
                        .clone()
                        .or(file.aws_session_token.clone()),
                }),
                None => ObjectBackend::Local {
                    root: args
                        .object_dir
                        .clone()
                        .or(file.object_dir.clone())
                        .unwrap_or_else(|| data_dir.join("objects")),
                },
            };
            ObjectOptions {
                threshold_bytes: threshold,
                backend,
                prefix,
                timeout: millis(
                    "object_timeout_ms",
                    pick!(object_timeout_ms, defaults::OBJECT_TIMEOUT_MS),
                )?,
                max_presign: secs(
                    "content_url_max_expiry_secs",
                    pick!(
                        content_url_max_expiry_secs,
                        defaults::CONTENT_URL_MAX_EXPIRY_SECS
                    ),
                )?,
                reconcile_interval: secs(
                    "object_reconcile_secs",
                    pick!(object_reconcile_secs, defaults::OBJECT_RECONCILE_SECS),
                )?,
            }
        };
        Ok(Settings {
            metrics: pick!(metrics, true),
            cache,
            warm,
            listen: pick!(
                listen,
                defaults::LISTEN.parse().map_err(|_| ConfigError::Invalid {
                    name: "listen",
                    message: "bad built-in default".into()
                })?
            ),
            data_dir,
            database_url,
            max_body_bytes,
            shutdown_timeout: secs(
                "shutdown_timeout_secs",
                pick!(shutdown_timeout_secs, defaults::SHUTDOWN_TIMEOUT_SECS),
            )?,
            log_format: pick!(log_format, LogFormat::Text),
            storage: StorageOptions {
                sqlite,
                postgres,
                objects: Some(objects),
            },
        })
    }

    /// Settings for tests and embedding: everything default but the given database and data dir,
    /// listening on an OS-assigned port.
    pub fn for_database(
        data_dir: PathBuf,
        database_url: Option<String>,
    ) -> Result<Settings, ConfigError> {
        let args = ServeArgs {
            database: DatabaseArgs {
                config: None,
                data_dir: Some(data_dir),
                database_url,
            },
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            ..ServeArgs::default()
        };
        Settings::resolve(&args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_with_no_configuration() {
        let s = Settings::resolve(&ServeArgs::default()).expect("defaults");
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.data_dir, PathBuf::from("./data"));
        assert_eq!(s.database_url, "sqlite://./data/registry.db");
        assert_eq!(s.max_body_bytes, 16 * 1024 * 1024);
        assert_eq!(s.storage.postgres.max_connections, 50);
        assert_eq!(s.storage.postgres.min_connections, 10);
        assert_eq!(s.storage.postgres.acquire_timeout, Duration::from_secs(3));
        assert_eq!(s.storage.postgres.idle_timeout, Duration::from_secs(600));
        assert_eq!(s.storage.postgres.max_lifetime, Duration::from_secs(1800));
        // The server's cache defaults are the storage crate's (one source of truth for docs):
        // L1 bounded by its 256 MiB budget, the entry count only a backstop.
        let cache = s.cache.expect("the cache is on by default");
        let lib = CacheOptions::default();
        assert_eq!(cache.l1_max_entries, lib.l1_max_entries);
        assert_eq!(cache.l1_max_bytes, lib.l1_max_bytes);
        assert_eq!((cache.l1_ttl, cache.l1_tti), (lib.l1_ttl, lib.l1_tti));
        assert_eq!(
            (cache.l1_max_entries, cache.l1_max_bytes),
            (1_000_000, 256 << 20)
        );
    }

    #[test]
    fn flags_beat_file_and_file_beats_defaults() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\ndata_dir = \"/srv/reg\"\nmax_body_bytes = 2048\n",
        )
        .expect("write");
        let mut args = ServeArgs::default();
        args.database.config = Some(path.clone());
        args.max_body_bytes = Some(4096);
        let s = Settings::resolve(&args).expect("resolve");
        assert_eq!(s.listen.to_string(), "127.0.0.1:9000", "from the file");
        assert_eq!(s.max_body_bytes, 4096, "the flag wins");
        assert_eq!(
            s.database_url, "sqlite:///srv/reg/registry.db",
            "derived from the file's data_dir"
        );
    }

    #[test]
    fn bad_files_and_values_are_reported() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "lisen = \"typo\"\n").expect("write");
        let mut args = ServeArgs::default();
        args.database.config = Some(path);
        assert!(matches!(
            Settings::resolve(&args),
            Err(ConfigError::Parse { .. })
        ));
        let args = ServeArgs {
            database_min_connections: Some(60),
            ..ServeArgs::default()
        };
        assert!(matches!(
            Settings::resolve(&args),
            Err(ConfigError::Invalid { .. })
        ));
        let args = ServeArgs {
            shutdown_timeout_secs: Some(0),
            ..ServeArgs::default()
        };
        assert!(matches!(
            Settings::resolve(&args),
            Err(ConfigError::Invalid { .. })
        ));
    }

    #[test]
    fn cli_parses_subcommands() {
        let cli = Cli::try_parse_from([
            "llm-schema-registry",
            "migrate",
            "info",
            "--database-url",
            "sqlite://x.db",
        ])
        .expect("parse");
        assert!(matches!(
            cli.command,
            Some(Command::Migrate {
                action: MigrateAction::Info(_),
            })
        ));
        let cli =
            Cli::try_parse_from(["llm-schema-registry", "--listen", "0.0.0.0:1"]).expect("parse");
        assert!(cli.command.is_none());
        assert!(Cli::try_parse_from(["llm-schema-registry", "--listen", "nope"]).is_err());
    }
}
