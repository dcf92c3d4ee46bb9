//! Configuration: the one module that reads flags, the environment and the config file.
//!
//! Precedence, highest first: command-line flag → environment variable → TOML config file →
//! built-in default. Every setting is declared once, in one of the sections below, and that one
//! declaration is its flag, its environment variable, its key in the config file and its default:
//! `--help` lists each flag with its variable and default. The storage crate never reads any of
//! this: it receives plain option structs, and where it has a default of its own, the setting's
//! default is that one.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Parser, Subcommand};
use serde::Deserialize;

use schema_registry_storage::objects::{ObjectBackend, ObjectOptions, S3Options};
use schema_registry_storage::postgres::MaintenanceOptions;
use schema_registry_storage::{CacheOptions, PostgresOptions, SqliteOptions, StorageOptions};

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
    ///
    /// Says what it removes (the migration, the tables it drops and their rows). When those
    /// tables hold rows it asks for confirmation on a terminal, and otherwise refuses without
    /// --yes.
    Revert(RevertArgs),
}

/// `migrate revert`'s flags.
#[derive(Debug, Clone, Default, Args)]
pub struct RevertArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Revert even when it drops tables that hold rows, without asking.
    #[arg(long)]
    pub yes: bool,
}

impl MigrateAction {
    /// The database the action applies to.
    pub fn database(&self) -> &DatabaseArgs {
        match self {
            MigrateAction::Run(d) | MigrateAction::Info(d) => d,
            MigrateAction::Revert(r) => &r.database,
        }
    }
}

/// Declares the settings, each once, in sections:
///
/// ```text
/// /// What the section is.
/// section: SectionArgs -> Resolved {   // `section`: its field in `FileConfig`
///     /// Help text (`--help` shows it).
///     #[arg(long, env = "VARIABLE")]
///     name: Type = default,       // `= default` where there is one
/// }
/// ```
///
/// A setting's name is its key in the config file; its `#[arg]` is clap's, for the flag and its
/// environment variable; `= default` is the value `--help` shows (through its `Display`) and the
/// one `resolve` applies. Each section becomes
/// - `SectionArgs`, every setting as an `Option`. clap parses it from flags and the environment (a
///   value clap would fill in from the declared default stays `None`, so that the config file
///   still beats it), and the config file fills it too;
/// - `Resolved`, the same settings after `SectionArgs::resolve` applied the defaults: `Type` where
///   there is a default, `Option<Type>` where there is none.
///
/// All together they make [`FileConfig`], the config file by section, read from the flat file
/// through one struct of every key that serde derives (so its errors name the key or value at
/// fault, where `#[serde(flatten)]` would lose both).
macro_rules! settings {
    (@resolved $ty:ty) => { Option<$ty> };
    (@resolved $ty:ty, $default:expr) => { $ty };
    (@default $value:expr) => { $value };
    (@default $value:expr, $default:expr) => { $value.unwrap_or_else(|| $default) };
    (
        $(
            $(#[$meta:meta])*
            $section:ident: $args:ident -> $resolved:ident {
                $(
                    $(#[$attr:meta])*
                    $field:ident: $ty:ty $(= $default:expr)?,
                )*
            }
        )*
    ) => {
        $(
            $(#[$meta])*
            #[derive(Debug, Clone, Default, PartialEq)]
            pub struct $args {
                $(pub $field: Option<$ty>,)*
            }

            #[derive(Debug, Clone)]
            struct $resolved {
                $($field: settings!(@resolved $ty $(, $default)?),)*
            }

            impl $args {
                /// These settings, each one that is unset here taken from `lower`.
                pub fn or(self, lower: Self) -> Self {
                    $args { $($field: self.$field.or(lower.$field),)* }
                }

                fn resolve(self) -> $resolved {
                    $resolved { $($field: settings!(@default self.$field $(, $default)?),)* }
                }
            }

            // The flags are those of a twin that clap derives; `$args` keeps only the values
            // that were given (on the command line or in the environment).
            const _: () = {
                // The doc comments are the plain-text `--help`, not Markdown: `<data-dir>` and
                // `[:PASSWORD@]` are meant literally.
                #[allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]
                #[derive(clap::Args)]
                #[group(skip)]
                struct Flags {
                    $(
                        $(#[$attr])*
                        $(#[arg(default_value = {
                            static TEXT: OnceLock<String> = OnceLock::new();
                            TEXT.get_or_init(|| {
                                let value: $ty = $default;
                                value.to_string()
                            })
                            .as_str()
                        })])?
                        $field: Option<$ty>,
                    )*
                }

                impl clap::FromArgMatches for $args {
                    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
                        let flags = <Flags as clap::FromArgMatches>::from_arg_matches(matches)?;
                        Ok($args { $($field: given(matches, stringify!($field), flags.$field),)* })
                    }

                    fn update_from_arg_matches(
                        &mut self,
                        matches: &ArgMatches,
                    ) -> Result<(), clap::Error> {
                        let given = Self::from_arg_matches(matches)?;
                        *self = given.or(std::mem::take(self));
                        Ok(())
                    }
                }

                impl clap::Args for $args {
                    fn augment_args(cmd: clap::Command) -> clap::Command {
                        <Flags as clap::Args>::augment_args(cmd)
                    }

                    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
                        <Flags as clap::Args>::augment_args_for_update(cmd)
                    }
                }
            };
        )*

        /// The config file's settings, by section (see [`load_file`]).
        #[derive(Debug, Clone, Default, PartialEq, Deserialize)]
        #[serde(from = "FlatFile")]
        pub struct FileConfig {
            $(pub $section: $args,)*
        }

        impl FileConfig {
            /// The file's keys, in declaration order: every setting's but `--config`'s, each the
            /// name of the field that declares it (which is also the id of its flag in clap).
            pub const KEYS: &'static [&'static str] = &[$($(stringify!($field),)*)*];
        }

        /// The config file as written: flat, one key per setting, every key optional, unknown
        /// keys rejected (a typo must not pass silently).
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct FlatFile {
            $($($field: Option<$ty>,)*)*
        }

        impl From<FlatFile> for FileConfig {
            fn from(flat: FlatFile) -> Self {
                FileConfig { $($section: $args { $($field: flat.$field,)* },)* }
            }
        }
    };
}

/// `value`, unless clap filled it in from the flag's declared default: then `None`, so that the
/// config file may still set it (`resolve` applies the default last).
fn given<T>(matches: &ArgMatches, id: &str, value: Option<T>) -> Option<T> {
    value.filter(|_| matches.value_source(id) != Some(ValueSource::DefaultValue))
}

/// The directory of the embedded database and of the default object directory, when none is
/// given. (Not a `settings!` default: a path has no `Display` for `--help` to show.)
const DATA_DIR: &str = "./data";

/// Where the data lives, and the config file. Shared by `serve` and `migrate`.
#[derive(Debug, Clone, Default, Args)]
pub struct DatabaseArgs {
    /// TOML configuration file; its keys are the long flag names with `_` for `-`.
    #[arg(long, env = "SCHEMA_REGISTRY_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub location: LocationArgs,
}

settings! {
    /// Where the data lives.
    location: LocationArgs -> Location {
        /// Directory for the embedded SQLite database; created if missing.
        #[arg(long, env = "SCHEMA_REGISTRY_DATA_DIR", default_value = DATA_DIR)]
        data_dir: PathBuf,
        /// Database URL: sqlite://PATH (embedded) or postgres://USER:PASS@HOST:PORT/DB (production;
        /// add ?sslmode=require|verify-full for TLS). [default: sqlite://<data-dir>/registry.db]
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
    }

    /// The HTTP listener.
    server: ServerArgs -> Server {
        /// Address to listen on.
        #[arg(long, env = "SCHEMA_REGISTRY_LISTEN")]
        listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8080)),
        /// Largest accepted request body, in bytes; larger requests get 413.
        #[arg(long, env = "SCHEMA_REGISTRY_MAX_BODY_BYTES")]
        max_body_bytes: usize = 16 * 1024 * 1024,
        /// Seconds to let in-flight requests finish after SIGINT/SIGTERM.
        #[arg(long, env = "SCHEMA_REGISTRY_SHUTDOWN_TIMEOUT_SECS")]
        shutdown_timeout_secs: u64 = 30,
        /// Seconds a client has to send a request's headers, from its connection (or the first
        /// byte of a further request); a slower one is disconnected.
        #[arg(long, env = "SCHEMA_REGISTRY_HEADER_READ_TIMEOUT_SECS")]
        header_read_timeout_secs: u64 = 10,
        /// Seconds a client has to send a request's body, from the end of its headers; a slower
        /// one is disconnected.
        #[arg(long, env = "SCHEMA_REGISTRY_BODY_READ_TIMEOUT_SECS")]
        body_read_timeout_secs: u64 = 30,
        /// Seconds a keep-alive connection may stay idle between requests before it is closed.
        #[arg(long, env = "SCHEMA_REGISTRY_IDLE_TIMEOUT_SECS")]
        idle_timeout_secs: u64 = 60,
        /// Log format: `text` (human) or `json` (one object per line). Filter with RUST_LOG.
        #[arg(long, env = "SCHEMA_REGISTRY_LOG_FORMAT")]
        log_format: LogFormat = LogFormat::Text,
        /// Public base URL of this registry (http:// or https://, no query or fragment), e.g.
        /// https://registry.example.com: the URLs the API hands out start with it. Without it they
        /// are built from the request's Host and X-Forwarded-Proto, which must then be valid.
        /// [default: none]
        #[arg(long, env = "SCHEMA_REGISTRY_PUBLIC_URL")]
        public_url: String,
    }

    /// How the server uses its database: PostgreSQL's pools and maintenance, SQLite's readers,
    /// migrations at start.
    backend: BackendArgs -> Backend {
        /// PostgreSQL URL for reads (a replica, or a role granted schema_registry_reader).
        /// [default: reads use --database-url]
        #[arg(long, env = "DATABASE_READ_URL")]
        database_read_url: String,
        /// PostgreSQL pool: most connections.
        #[arg(long, env = "DATABASE_MAX_CONNECTIONS")]
        database_max_connections: u32 = PostgresOptions::default().max_connections,
        /// PostgreSQL pool: connections kept open when idle.
        #[arg(long, env = "DATABASE_MIN_CONNECTIONS")]
        database_min_connections: u32 = PostgresOptions::default().min_connections,
        /// PostgreSQL pool: seconds to wait for a free connection before answering 503.
        #[arg(long, env = "DATABASE_ACQUIRE_TIMEOUT_SECS")]
        database_acquire_timeout_secs: u64 = PostgresOptions::default().acquire_timeout.as_secs(),
        /// PostgreSQL pool: seconds before an idle connection above the minimum is closed.
        #[arg(long, env = "DATABASE_IDLE_TIMEOUT_SECS")]
        database_idle_timeout_secs: u64 = PostgresOptions::default().idle_timeout.as_secs(),
        /// PostgreSQL pool: seconds before a connection is recycled.
        #[arg(long, env = "DATABASE_MAX_LIFETIME_SECS")]
        database_max_lifetime_secs: u64 = PostgresOptions::default().max_lifetime.as_secs(),
        /// Seconds between batched writes of read counters to schema_access_log (the
        /// popular-schema list used for cache warming).
        #[arg(long, env = "SCHEMA_REGISTRY_ACCESS_LOG_FLUSH_SECS")]
        access_log_flush_secs: u64 =
            MaintenanceOptions::default().access_flush_interval.as_secs(),
        /// PostgreSQL: seconds between refreshes of the materialized views.
        #[arg(long, env = "SCHEMA_REGISTRY_VIEW_REFRESH_SECS")]
        view_refresh_secs: u64 = MaintenanceOptions::default().view_refresh_interval.as_secs(),
        /// SQLite: read-only connections.
        #[arg(long, env = "SCHEMA_REGISTRY_SQLITE_READERS")]
        sqlite_readers: u32 = SqliteOptions::default().readers,
        /// Apply pending migrations at start (`false` when the server's database role may not
        /// change the schema; run `migrate run` as the owner instead).
        #[arg(long, env = "SCHEMA_REGISTRY_MIGRATE_ON_START")]
        migrate_on_start: bool = PostgresOptions::default().run_migrations,
    }

    /// Prometheus metrics.
    metrics: MetricsArgs -> Metrics {
        /// Record Prometheus metrics and serve them at /metrics.
        #[arg(long, env = "SCHEMA_REGISTRY_METRICS")]
        metrics: bool = true,
    }

    /// The cache: L1 in the process, L2 in Redis.
    cache: CacheArgs -> Cache {
        /// Redis URL for the shared L2 cache and cross-server invalidation:
        /// redis://[:PASSWORD@]HOST:PORT[/DB], or rediss://... for TLS. Without it the server runs
        /// with the in-process L1 cache only (exact for a single server). [default: none]
        #[arg(long, env = "REDIS_URL")]
        redis_url: String,
        /// PEM file of the CA that signed the Redis server's certificate, for rediss:// with a
        /// private CA. [default: the system's trusted roots]
        #[arg(long, env = "REDIS_CA_CERT")]
        redis_ca_cert: PathBuf,
        /// L1 (in-process) cache: most entries; 0 disables the cache. The byte budget normally
        /// binds first; 10000 sizes L1 by count alone.
        #[arg(long, env = "SCHEMA_REGISTRY_CACHE_L1_MAX_ENTRIES")]
        cache_l1_max_entries: u64 = CacheOptions::default().l1_max_entries,
        /// L1 cache: most bytes held (content, its JSON encoding and about 1 KiB of bookkeeping
        /// per entry).
        #[arg(long, env = "SCHEMA_REGISTRY_CACHE_L1_MAX_BYTES")]
        cache_l1_max_bytes: u64 = CacheOptions::default().l1_max_bytes,
        /// L1 cache: seconds an entry lives.
        #[arg(long, env = "SCHEMA_REGISTRY_CACHE_L1_TTL_SECS")]
        cache_l1_ttl_secs: u64 = CacheOptions::default().l1_ttl.as_secs(),
        /// L1 cache: seconds an unread entry lives.
        #[arg(long, env = "SCHEMA_REGISTRY_CACHE_L1_TTI_SECS")]
        cache_l1_tti_secs: u64 = CacheOptions::default().l1_tti.as_secs(),
        /// L2 (Redis) cache: seconds an entry lives.
        #[arg(long, env = "SCHEMA_REGISTRY_CACHE_L2_TTL_SECS")]
        cache_l2_ttl_secs: u64 = CacheOptions::default().l2_ttl.as_secs(),
        /// L2 cache: milliseconds a Redis call may take before it counts as a failure.
        #[arg(long, env = "SCHEMA_REGISTRY_CACHE_L2_TIMEOUT_MS")]
        cache_l2_timeout_ms: u64 = as_millis(CacheOptions::default().l2_timeout),
        /// L2 cache: prefix of every Redis key and of the invalidation channel.
        #[arg(long, env = "SCHEMA_REGISTRY_CACHE_KEY_PREFIX")]
        cache_key_prefix: String = CacheOptions::default().key_prefix,
        /// L2 cache: consecutive Redis failures that open the circuit breaker.
        #[arg(long, env = "SCHEMA_REGISTRY_CACHE_BREAKER_THRESHOLD")]
        cache_breaker_threshold: u32 = CacheOptions::default().breaker_threshold,
        /// L2 cache: seconds the breaker stays open before Redis is tried again.
        #[arg(long, env = "SCHEMA_REGISTRY_CACHE_BREAKER_COOLDOWN_SECS")]
        cache_breaker_cooldown_secs: u64 = CacheOptions::default().breaker_cooldown.as_secs(),
        /// While Redis (and so cross-server invalidation) is unreachable, L1 entries older than
        /// this many seconds are not served.
        #[arg(long, env = "SCHEMA_REGISTRY_CACHE_DEGRADED_MAX_AGE_SECS")]
        cache_degraded_max_age_secs: u64 = CacheOptions::default().degraded_max_age.as_secs(),
    }

    /// Cache warming at start.
    warm: WarmArgs -> Warm {
        /// Load the most read schemas into the cache at start.
        #[arg(long, env = "SCHEMA_REGISTRY_CACHE_WARM_ON_STARTUP")]
        cache_warm_on_startup: bool = true,
        /// How many of the most read schemas warming loads.
        #[arg(long, env = "SCHEMA_REGISTRY_CACHE_WARM_SIZE")]
        cache_warm_size: u32 = 100,
        /// Milliseconds warming may delay readiness.
        #[arg(long, env = "SCHEMA_REGISTRY_CACHE_WARM_BUDGET_MS")]
        cache_warm_budget_ms: u64 = 2000,
    }

    /// The object tier for large content: S3, or a directory.
    objects: ObjectArgs -> Objects {
        /// Object tier: content larger than this many bytes is stored in object storage (S3, or
        /// the object directory) and the row keeps a pointer; 0 keeps everything in the database.
        #[arg(long, env = "OBJECT_THRESHOLD_BYTES")]
        object_threshold_bytes: u64 = object_defaults().threshold_bytes,
        /// Object tier without S3: the directory for large content. [default: <data-dir>/objects]
        #[arg(long, env = "SCHEMA_REGISTRY_OBJECT_DIR")]
        object_dir: PathBuf,
        /// S3 bucket for large content; setting it selects S3 instead of the object directory.
        #[arg(long, env = "S3_BUCKET")]
        s3_bucket: String,
        /// S3 region.
        #[arg(long, env = "S3_REGION")]
        s3_region: String = "us-east-1".to_string(),
        /// S3 endpoint, for S3-compatible servers (MinIO, s3s-fs): http://HOST:PORT. [default: AWS]
        #[arg(long, env = "S3_ENDPOINT")]
        s3_endpoint: String,
        /// S3 path-style requests (ENDPOINT/BUCKET/KEY), which most S3-compatible servers need.
        #[arg(long, env = "S3_PATH_STYLE")]
        s3_path_style: bool = false,
        /// Allow a plain http:// S3 endpoint.
        #[arg(long, env = "S3_ALLOW_HTTP")]
        s3_allow_http: bool = false,
        /// Key prefix of stored objects (S3 and the object directory).
        #[arg(long, env = "S3_PREFIX")]
        s3_prefix: String = object_defaults().prefix,
        /// S3 server-side encryption: AES256, aws:kms or aws:kms:dsse. [default: the bucket's]
        #[arg(long, env = "S3_SSE")]
        s3_sse: String,
        /// KMS key id for S3_SSE=aws:kms. [default: none]
        #[arg(long, env = "S3_SSE_KMS_KEY_ID")]
        s3_sse_kms_key_id: String,
        /// S3 access key id. [default: none]
        #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
        aws_access_key_id: String,
        /// S3 secret access key. [default: none]
        #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
        aws_secret_access_key: String,
        /// S3 session token (temporary credentials). [default: none]
        #[arg(long, env = "AWS_SESSION_TOKEN", hide_env_values = true)]
        aws_session_token: String,
        /// Object tier: milliseconds an object-store call may take before the write falls back
        /// to keeping content inline.
        #[arg(long, env = "SCHEMA_REGISTRY_OBJECT_TIMEOUT_MS")]
        object_timeout_ms: u64 = as_millis(object_defaults().timeout),
        /// Object tier: seconds between moves of inline-kept content to the store after an
        /// outage.
        #[arg(long, env = "SCHEMA_REGISTRY_OBJECT_RECONCILE_SECS")]
        object_reconcile_secs: u64 = object_defaults().reconcile_interval.as_secs(),
        /// Longest lifetime of a presigned content URL, in seconds.
        #[arg(long, env = "SCHEMA_REGISTRY_CONTENT_URL_MAX_EXPIRY_SECS")]
        content_url_max_expiry_secs: u64 = object_defaults().max_presign.as_secs(),
    }
}

/// The storage crate's object-tier defaults (the directory is `resolve`'s to choose).
fn object_defaults() -> ObjectOptions {
    ObjectOptions::local(PathBuf::new())
}

/// A storage default in milliseconds, the unit of its setting.
fn as_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `serve`'s flags: every setting. The config file takes the same settings but `--config`
/// ([`FileConfig`]).
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub backend: BackendArgs,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub warm: WarmArgs,
    #[command(flatten)]
    pub objects: ObjectArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The name clap parses (`text`, `json`), which is how `--help` shows the default.
impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = clap::ValueEnum::to_possible_value(self).ok_or(fmt::Error)?;
        f.write_str(value.get_name())
    }
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
    /// How long a client may take to send its headers, its body, or its next request.
    pub timeouts: crate::serve::Timeouts,
    pub log_format: LogFormat,
    /// The public base URL, checked, without a trailing `/`.
    pub public_url: Option<String>,
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
    let location = args.location.clone().or(file.location.clone()).resolve();
    let data_dir = location.data_dir.unwrap_or_else(|| PathBuf::from(DATA_DIR));
    let database_url = location
        .database_url
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

fn secs(name: &'static str, n: u64) -> Result<Duration, ConfigError> {
    if n == 0 {
        return Err(ConfigError::Invalid {
            name,
            message: "must be at least 1 second".into(),
        });
    }
    Ok(Duration::from_secs(n))
}

fn millis(name: &'static str, n: u64) -> Result<Duration, ConfigError> {
    if n == 0 {
        return Err(ConfigError::Invalid {
            name,
            message: "must be at least 1 millisecond".into(),
        });
    }
    Ok(Duration::from_millis(n))
}

/// Checks `--public-url`: an absolute http or https URL with a host, no credentials, query or
/// fragment. Returns it without a trailing `/`, ready for a path to follow.
fn public_url(raw: &str) -> Result<String, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        name: "public_url",
        message,
    };
    let url = url::Url::parse(raw).map_err(|e| invalid(format!("{raw:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!(
            "{raw:?} must start with http:// or https://"
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid(format!("{raw:?} has no host")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(format!("{raw:?} must not hold credentials")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(format!(
            "{raw:?} must not have a query or a fragment"
        )));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

impl Settings {
    /// Resolves every setting from flags/environment (`args`, parsed by clap) and the file.
    pub fn resolve(args: &ServeArgs) -> Result<Settings, ConfigError> {
        let file = load_file(&args.database)?;
        let (data_dir, database_url) = resolve_database(&args.database, &file)?;
        let server = args.server.clone().or(file.server).resolve();
        let backend = args.backend.clone().or(file.backend).resolve();
        let metrics = args.metrics.clone().or(file.metrics).resolve();
        let cache = args.cache.clone().or(file.cache).resolve();
        let warm = args.warm.clone().or(file.warm).resolve();
        let objects = args.objects.clone().or(file.objects).resolve();

        let max_body_bytes = server.max_body_bytes;
        if max_body_bytes < 1024 {
            return Err(ConfigError::Invalid {
                name: "max_body_bytes",
                message: format!("{max_body_bytes} is too small; use at least 1024"),
            });
        }
        let max_connections = backend.database_max_connections;
        let min_connections = backend.database_min_connections;
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
                backend.database_acquire_timeout_secs,
            )?,
            idle_timeout: secs(
                "database_idle_timeout_secs",
                backend.database_idle_timeout_secs,
            )?,
            max_lifetime: secs(
                "database_max_lifetime_secs",
                backend.database_max_lifetime_secs,
            )?,
            read_url: backend.database_read_url,
            run_migrations: backend.migrate_on_start,
            maintenance: MaintenanceOptions {
                access_flush_interval: secs(
                    "access_log_flush_secs",
                    backend.access_log_flush_secs,
                )?,
                view_refresh_interval: secs("view_refresh_secs", backend.view_refresh_secs)?,
            },
        };
        let sqlite = SqliteOptions {
            readers: backend.sqlite_readers.max(1),
            access_flush_interval: postgres.maintenance.access_flush_interval,
            ..SqliteOptions::default()
        };
        let cache = if cache.cache_l1_max_entries == 0 {
            None
        } else {
            Some(CacheOptions {
                l1_max_entries: cache.cache_l1_max_entries,
                l1_max_bytes: cache.cache_l1_max_bytes.max(1),
                l1_ttl: secs("cache_l1_ttl_secs", cache.cache_l1_ttl_secs)?,
                l1_tti: secs("cache_l1_tti_secs", cache.cache_l1_tti_secs)?,
                redis_url: cache.redis_url.filter(|u| !u.is_empty()),
                redis_ca_cert: cache.redis_ca_cert,
                l2_ttl: secs("cache_l2_ttl_secs", cache.cache_l2_ttl_secs)?,
                l2_timeout: millis("cache_l2_timeout_ms", cache.cache_l2_timeout_ms)?,
                key_prefix: cache.cache_key_prefix,
                breaker_threshold: cache.cache_breaker_threshold.max(1),
                breaker_cooldown: secs(
                    "cache_breaker_cooldown_secs",
                    cache.cache_breaker_cooldown_secs,
                )?,
                degraded_max_age: secs(
                    "cache_degraded_max_age_secs",
                    cache.cache_degraded_max_age_secs,
                )?,
                // Not a setting: `Application::build` adds the encodings of the interfaces it
                // serves.
                encodings: Vec::new(),
            })
        };
        let warm = WarmSettings {
            enabled: warm.cache_warm_on_startup,
            size: warm.cache_warm_size,
            budget: millis("cache_warm_budget_ms", warm.cache_warm_budget_ms)?,
        };
        let object_backend = match objects.s3_bucket.filter(|b| !b.is_empty()) {
            Some(bucket) => ObjectBackend::S3(S3Options {
                bucket,
                region: objects.s3_region,
                endpoint: objects.s3_endpoint,
                path_style: objects.s3_path_style,
                allow_http: objects.s3_allow_http,
                sse: objects.s3_sse,
                sse_kms_key_id: objects.s3_sse_kms_key_id,
                access_key_id: objects.aws_access_key_id,
                secret_access_key: objects.aws_secret_access_key,
                session_token: objects.aws_session_token,
            }),
            None => ObjectBackend::Local {
                root: objects
                    .object_dir
                    .unwrap_or_else(|| data_dir.join("objects")),
            },
        };
        let objects = ObjectOptions {
            threshold_bytes: objects.object_threshold_bytes,
            backend: object_backend,
            prefix: objects.s3_prefix,
            timeout: millis("object_timeout_ms", objects.object_timeout_ms)?,
            max_presign: secs(
                "content_url_max_expiry_secs",
                objects.content_url_max_expiry_secs,
            )?,
            reconcile_interval: secs("object_reconcile_secs", objects.object_reconcile_secs)?,
        };
        Ok(Settings {
            metrics: metrics.metrics,
            cache,
            warm,
            listen: server.listen,
            data_dir,
            database_url,
            max_body_bytes,
            shutdown_timeout: secs("shutdown_timeout_secs", server.shutdown_timeout_secs)?,
            timeouts: crate::serve::Timeouts {
                header: secs("header_read_timeout_secs", server.header_read_timeout_secs)?,
                body: secs("body_read_timeout_secs", server.body_read_timeout_secs)?,
                idle: secs("idle_timeout_secs", server.idle_timeout_secs)?,
            },
            log_format: server.log_format,
            public_url: server.public_url.as_deref().map(public_url).transpose()?,
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
                location: LocationArgs {
                    data_dir: Some(data_dir),
                    database_url,
                },
            },
            server: ServerArgs {
                listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
                ..ServerArgs::default()
            },
            ..ServeArgs::default()
        };
        Settings::resolve(&args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn write_config(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).expect("write");
        (dir, path)
    }

    fn with_config(path: &Path) -> ServeArgs {
        let mut args = ServeArgs::default();
        args.database.config = Some(path.to_path_buf());
        args
    }

    #[test]
    fn defaults_apply_with_no_configuration() {
        let s = Settings::resolve(&ServeArgs::default()).expect("defaults");
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.data_dir, PathBuf::from("./data"));
        assert_eq!(s.database_url, "sqlite://./data/registry.db");
        assert_eq!(s.max_body_bytes, 16 * 1024 * 1024);
        assert_eq!(s.shutdown_timeout, Duration::from_secs(30));
        assert_eq!(s.log_format, LogFormat::Text);
        assert!(s.metrics);
        let pg = &s.storage.postgres;
        assert_eq!((pg.max_connections, pg.min_connections), (50, 10));
        assert_eq!(pg.acquire_timeout, Duration::from_secs(3));
        assert_eq!(pg.idle_timeout, Duration::from_secs(600));
        assert_eq!(pg.max_lifetime, Duration::from_secs(1800));
        assert_eq!(pg.read_url, None);
        assert!(pg.run_migrations);
        assert_eq!(
            pg.maintenance.access_flush_interval,
            Duration::from_secs(10)
        );
        assert_eq!(
            pg.maintenance.view_refresh_interval,
            Duration::from_secs(60)
        );
        let sqlite = &s.storage.sqlite;
        assert_eq!(sqlite.readers, 8);
        assert_eq!(sqlite.access_flush_interval, Duration::from_secs(10));
        assert_eq!(sqlite.busy_timeout, SqliteOptions::default().busy_timeout);
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
        assert_eq!(
            (cache.l1_ttl, cache.l1_tti),
            (Duration::from_secs(3600), Duration::from_secs(1800))
        );
        assert_eq!((cache.redis_url, cache.redis_ca_cert), (None, None));
        assert_eq!(cache.l2_ttl, Duration::from_secs(3600));
        assert_eq!(cache.l2_timeout, Duration::from_millis(250));
        assert_eq!(cache.key_prefix, "schema-registry");
        assert_eq!(cache.breaker_threshold, 3);
        assert_eq!(cache.breaker_cooldown, Duration::from_secs(5));
        assert_eq!(cache.degraded_max_age, Duration::from_secs(5));
        assert!(s.warm.enabled);
        assert_eq!(
            (s.warm.size, s.warm.budget),
            (100, Duration::from_millis(2000))
        );
        let objects = s.storage.objects.expect("the object tier is on by default");
        assert_eq!(objects.threshold_bytes, 1024 * 1024);
        assert!(
            matches!(&objects.backend, ObjectBackend::Local { root } if root == Path::new("./data/objects")),
            "{:?}",
            objects.backend
        );
        assert_eq!(objects.prefix, "schemas");
        assert_eq!(objects.timeout, Duration::from_millis(10_000));
        assert_eq!(objects.max_presign, Duration::from_secs(3600));
        assert_eq!(objects.reconcile_interval, Duration::from_secs(30));
    }

    #[test]
    fn flags_beat_file_and_file_beats_defaults() {
        let (_dir, path) = write_config(
            "listen = \"127.0.0.1:9000\"\ndata_dir = \"/srv/reg\"\nmax_body_bytes = 2048\n\
             sqlite_readers = 3\ns3_bucket = \"b\"\n",
        );
        let mut args = with_config(&path);
        args.server.max_body_bytes = Some(4096);
        let s = Settings::resolve(&args).expect("resolve");
        assert_eq!(s.listen.to_string(), "127.0.0.1:9000", "from the file");
        assert_eq!(s.max_body_bytes, 4096, "the flag wins");
        assert_eq!(
            s.database_url, "sqlite:///srv/reg/registry.db",
            "derived from the file's data_dir"
        );
        let objects = s.storage.objects.expect("objects");
        assert!(
            matches!(&objects.backend, ObjectBackend::S3(s3) if s3.bucket == "b" && s3.region == "us-east-1"),
            "the file's bucket, the default region: {:?}",
            objects.backend
        );

        // The same through clap: a flag's declared default (which --help shows) is not a value,
        // so a setting absent from the command line still comes from the file.
        let config = path.to_str().expect("utf-8 path");
        let cli = Cli::try_parse_from([
            "llm-schema-registry",
            "--config",
            config,
            "--max-body-bytes",
            "4096",
        ])
        .expect("parse");
        assert_eq!(cli.serve.server.listen, None, "clap's default is dropped");
        let s = Settings::resolve(&cli.serve).expect("resolve");
        assert_eq!(s.listen.to_string(), "127.0.0.1:9000", "from the file");
        assert_eq!(s.max_body_bytes, 4096, "the flag wins");
        assert_eq!(s.storage.sqlite.readers, 3, "from the file");
        assert_eq!(s.shutdown_timeout, Duration::from_secs(30), "the default");
        // A flag given with the default's value is given: it beats the file.
        let cli = Cli::try_parse_from([
            "llm-schema-registry",
            "serve",
            "--config",
            config,
            "--listen",
            "127.0.0.1:8080",
        ])
        .expect("parse");
        let Some(Command::Serve(args)) = cli.command else {
            panic!("serve: {:?}", cli.command)
        };
        let s = Settings::resolve(&args).expect("resolve");
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.max_body_bytes, 2048, "from the file");
    }

    /// The unknown-key message lists every key in this order (that of the settings' declarations).
    const EXPECTED_KEYS: &str = "`data_dir`, `database_url`, `listen`, `max_body_bytes`, \
        `shutdown_timeout_secs`, `header_read_timeout_secs`, `body_read_timeout_secs`, `idle_timeout_secs`, `log_format`, `public_url`, `database_read_url`, `database_max_connections`, \
        `database_min_connections`, `database_acquire_timeout_secs`, `database_idle_timeout_secs`, \
        `database_max_lifetime_secs`, `access_log_flush_secs`, `view_refresh_secs`, \
        `sqlite_readers`, `migrate_on_start`, `metrics`, `redis_url`, `redis_ca_cert`, \
        `cache_l1_max_entries`, `cache_l1_max_bytes`, `cache_l1_ttl_secs`, `cache_l1_tti_secs`, \
        `cache_l2_ttl_secs`, `cache_l2_timeout_ms`, `cache_key_prefix`, `cache_breaker_threshold`, \
        `cache_breaker_cooldown_secs`, `cache_degraded_max_age_secs`, `cache_warm_on_startup`, \
        `cache_warm_size`, `cache_warm_budget_ms`, `object_threshold_bytes`, `object_dir`, \
        `s3_bucket`, `s3_region`, `s3_endpoint`, `s3_path_style`, `s3_allow_http`, `s3_prefix`, \
        `s3_sse`, `s3_sse_kms_key_id`, `aws_access_key_id`, `aws_secret_access_key`, \
        `aws_session_token`, `object_timeout_ms`, `object_reconcile_secs`, \
        `content_url_max_expiry_secs`";

    /// The error `resolve` gives for a config file of `text`, with its source.
    fn file_error(text: &str) -> (String, String) {
        let (_dir, path) = write_config(text);
        let err = Settings::resolve(&with_config(&path)).expect_err(text);
        let ConfigError::Parse { path: at, source } = &err else {
            panic!("{text}: {err:?}");
        };
        assert_eq!(at, &path);
        let shown = err
            .to_string()
            .replace(path.to_str().expect("utf-8"), "PATH");
        (shown, source.to_string())
    }

    fn invalid(args: &ServeArgs) -> String {
        match Settings::resolve(args) {
            Err(e @ ConfigError::Invalid { .. }) => e.to_string(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_files_and_values_are_reported() {
        assert_eq!(
            file_error("lisen = \"typo\"\n"),
            (
                "invalid config file PATH".to_string(),
                format!(
                    "TOML parse error at line 1, column 1\n  |\n1 | lisen = \"typo\"\n  | ^^^^^\n\
                     unknown field `lisen`, expected one of {EXPECTED_KEYS}\n"
                )
            )
        );
        // `--config` is a flag, not a key; the file is flat, so a table is an unknown key.
        let (_, source) = file_error("config = \"other.toml\"\n");
        assert!(source.contains("unknown field `config`, expected one of `data_dir`,"));
        let (_, source) = file_error("[server]\nlisten = \"127.0.0.1:1\"\n");
        assert!(source.contains("1 | [server]\n  |  ^^^^^^\nunknown field `server`,"));
        // A bad value is reported at the value.
        assert_eq!(
            file_error("data_dir = \"/d\"\nlisten = \"nope\"\n").1,
            "TOML parse error at line 2, column 10\n  |\n2 | listen = \"nope\"\n  |          ^^^^^^\n\
             invalid socket address syntax\n"
        );
        assert_eq!(
            file_error("max_body_bytes = \"x\"\n").1,
            "TOML parse error at line 1, column 18\n  |\n1 | max_body_bytes = \"x\"\n  |                  ^^^\n\
             invalid type: string \"x\", expected usize\n"
        );
        assert_eq!(
            file_error("log_format = \"xml\"\n").1,
            "TOML parse error at line 1, column 14\n  |\n1 | log_format = \"xml\"\n  |              ^^^^^\n\
             unknown variant `xml`, expected `text` or `json`\n"
        );

        let mut args = ServeArgs::default();
        args.database.config = Some(PathBuf::from("/nonexistent/c.toml"));
        assert!(matches!(
            Settings::resolve(&args),
            Err(ConfigError::Read { ref path, .. }) if path == Path::new("/nonexistent/c.toml")
        ));

        let mut args = ServeArgs::default();
        args.backend.database_min_connections = Some(60);
        assert_eq!(
            invalid(&args),
            "invalid setting database_max_connections: need min (60) <= max (50) and max >= 1"
        );
        let mut args = ServeArgs::default();
        args.server.shutdown_timeout_secs = Some(0);
        assert_eq!(
            invalid(&args),
            "invalid setting shutdown_timeout_secs: must be at least 1 second"
        );
        let mut args = ServeArgs::default();
        args.warm.cache_warm_budget_ms = Some(0);
        assert_eq!(
            invalid(&args),
            "invalid setting cache_warm_budget_ms: must be at least 1 millisecond"
        );
        let mut args = ServeArgs::default();
        args.server.max_body_bytes = Some(1023);
        assert_eq!(
            invalid(&args),
            "invalid setting max_body_bytes: 1023 is too small; use at least 1024"
        );
        let mut args = ServeArgs::default();
        args.database.location.database_url = Some(" ".into());
        assert_eq!(
            invalid(&args),
            "invalid setting database_url: must not be empty"
        );
        for (raw, why) in [
            (
                "registry.example.com",
                "is not a URL: relative URL without a base",
            ),
            (
                "ftp://registry.example.com",
                "must start with http:// or https://",
            ),
            (
                "https://registry.example.com/?x=1",
                "must not have a query or a fragment",
            ),
            (
                "https://registry.example.com#top",
                "must not have a query or a fragment",
            ),
            (
                "https://registry.example.com?",
                "must not have a query or a fragment",
            ),
            (
                "https://user:pw@registry.example.com",
                "must not hold credentials",
            ),
        ] {
            let mut args = ServeArgs::default();
            args.server.public_url = Some(raw.into());
            assert_eq!(
                invalid(&args),
                format!("invalid setting public_url: {raw:?} {why}")
            );
        }
        // With the cache off, its durations are not checked.
        let mut args = ServeArgs::default();
        args.cache.cache_l1_max_entries = Some(0);
        args.cache.cache_l1_ttl_secs = Some(0);
        let s = Settings::resolve(&args).expect("cache off");
        assert!(s.cache.is_none());
    }

    /// The public URL is kept as given but for a trailing `/`, ready for a path.
    #[test]
    fn the_public_url_is_checked_and_trimmed() {
        assert_eq!(
            Settings::resolve(&ServeArgs::default())
                .expect("defaults")
                .public_url,
            None
        );
        for (raw, kept) in [
            (
                "https://registry.example.com",
                "https://registry.example.com",
            ),
            (
                "https://registry.example.com/",
                "https://registry.example.com",
            ),
            ("http://10.0.0.1:8080", "http://10.0.0.1:8080"),
            (
                "https://example.com/registry/",
                "https://example.com/registry",
            ),
            ("http://[::1]:8080", "http://[::1]:8080"),
        ] {
            let mut args = ServeArgs::default();
            args.server.public_url = Some(raw.into());
            let s = Settings::resolve(&args).expect(raw);
            assert_eq!(s.public_url.as_deref(), Some(kept), "{raw}");
        }
    }

    #[test]
    fn every_key_of_the_file_is_read() {
        // One line per key, with a value of the key's type.
        let text: String = FileConfig::KEYS
            .iter()
            .map(|key| {
                let value = match *key {
                    "listen" => "\"127.0.0.1:1\"",
                    "log_format" => "\"json\"",
                    k if k.ends_with("_url") || k.ends_with("_dir") || k.ends_with("_cert") => {
                        "\"x\""
                    }
                    k if k.starts_with("s3_")
                        && !k.ends_with("_style")
                        && !k.ends_with("_http") =>
                    {
                        "\"x\""
                    }
                    k if k.starts_with("aws_") || k == "cache_key_prefix" => "\"x\"",
                    "metrics"
                    | "migrate_on_start"
                    | "cache_warm_on_startup"
                    | "s3_path_style"
                    | "s3_allow_http" => "true",
                    _ => "7",
                };
                format!("{key} = {value}\n")
            })
            .collect();
        let (_dir, path) = write_config(&text);
        let file = load_file(&with_config(&path).database).expect(&text);
        let shown = format!("{file:?}");
        assert!(!shown.contains("None"), "a key was not read: {shown}");
    }

    #[test]
    fn file_keys_are_the_flags_but_config() {
        let cmd = Cli::command();
        let flags: Vec<&str> = cmd
            .get_arguments()
            .map(|a| a.get_id().as_str())
            .filter(|id| *id != "config")
            .collect();
        assert_eq!(flags, FileConfig::KEYS, "in the same order");
        // What --config's help promises: the keys are the long flag names with `_` for `-`.
        for arg in cmd.get_arguments() {
            let long = arg.get_long().expect("every setting has a long flag");
            assert_eq!(long, arg.get_id().as_str().replace('_', "-"));
        }
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
        let Some(Command::Migrate {
            action: MigrateAction::Info(database),
        }) = cli.command
        else {
            panic!("{:?}", cli.command)
        };
        assert_eq!(
            database.location.database_url.as_deref(),
            Some("sqlite://x.db")
        );
        let cli =
            Cli::try_parse_from(["llm-schema-registry", "--listen", "0.0.0.0:1"]).expect("parse");
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.server.listen, Some(SocketAddr::from(([0; 4], 1))));
        assert!(Cli::try_parse_from(["llm-schema-registry", "--listen", "nope"]).is_err());
    }
}
