//! Building and running the server: [`Application::build`] opens storage and binds the
//! listener (so tests can ask for port 0 and learn the real port), [`Application::run`] serves
//! until the shutdown future resolves, lets in-flight requests finish, then closes storage.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use schema_registry_core::Limits;
use schema_registry_storage::{CachedBackend, Storage};
use tokio::net::TcpListener;

use crate::config::Settings;
use crate::lock::DataLock;
use schema_registry_api::native::{app, AppState, Shared};
use schema_registry_registry::Registry;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create data directory {path}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Lock(#[from] crate::lock::LockError),
    #[error("cannot open storage")]
    Storage(#[from] schema_registry_storage::StorageError),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A server that is bound and ready to run.
pub struct Application {
    listener: TcpListener,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    storage: Arc<dyn Storage>,
    settings: Settings,
    /// Held until the server has stopped: one server per SQLite database.
    _lock: Option<DataLock>,
}

impl Application {
    /// Creates the data directory, locks an SQLite database against a second server, opens
    /// (and migrates) storage, binds the listener.
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        if settings.database_url.starts_with("sqlite:") {
            std::fs::create_dir_all(&settings.data_dir).map_err(|source| StartError::DataDir {
                path: settings.data_dir.display().to_string(),
                source,
            })?;
        }
        let lock = match schema_registry_storage::sqlite_file(&settings.database_url) {
            Some(file) => Some(DataLock::acquire(&file)?),
            None => None,
        };
        let database =
            schema_registry_storage::open(&settings.database_url, &settings.storage).await?;
        let storage: Arc<dyn Storage> = match &settings.cache {
            None => database,
            Some(options) => {
                let local_objects = matches!(
                    settings.storage.objects.as_ref().map(|o| &o.backend),
                    Some(schema_registry_storage::objects::ObjectBackend::Local { .. })
                );
                if local_objects && database.kind() == "postgres" {
                    tracing::warn!(
                        "PostgreSQL with a local object directory: large schemas are readable only by this server; \
                         set S3_BUCKET when several servers share the database"
                    );
                }
                if options.redis_url.is_none() && database.kind() == "postgres" {
                    tracing::warn!(
                        "PostgreSQL without REDIS_URL: the in-process cache is not invalidated by other servers; \
                         run a single server, or set REDIS_URL"
                    );
                }
                let mut options = options.clone();
                options.encodings = vec![&schema_registry_api::native::json::RECORD];
                let cached = CachedBackend::new(database, options)?;
                if settings.warm.enabled {
                    cached.warm(settings.warm.size, settings.warm.budget).await;
                }
                Arc::new(cached)
            }
        };
        let metrics = if settings.metrics {
            schema_registry_api::metrics::install()
        } else {
            None
        };
        let storage: Arc<dyn Storage> = if metrics.is_some() {
            Arc::new(crate::metrics::MeteredBackend::new(storage))
        } else {
            storage
        };
        let listener =
            TcpListener::bind(settings.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: settings.listen,
                    source,
                })?;
        tracing::info!(
            backend = storage.kind(),
            database = %schema_registry_storage::redact_url(&settings.database_url),
            "storage open"
        );
        Ok(Application {
            listener,
            storage,
            settings,
            metrics,
            _lock: lock,
        })
    }

    /// The address actually bound (the real port when 0 was asked for).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn storage(&self) -> Arc<dyn Storage> {
        self.storage.clone()
    }

    /// Serves until `shutdown` resolves. In-flight requests then get `shutdown_timeout` to
    /// finish; storage is closed last (flushing its buffers).
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let state = AppState::new(Shared {
            metrics: self.metrics.clone(),
            registry: Registry::new(self.storage.clone(), Limits::default()),
            started: Instant::now(),
            public_url: self.settings.public_url.clone(),
        });
        let app = app(state, self.settings.max_body_bytes);
        let addr = self.listener.local_addr()?;
        tracing::info!(%addr, "listening");

        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let server = crate::serve::serve(self.listener, app, self.settings.timeouts, async move {
            shutdown.await;
            tracing::info!("shutdown requested; finishing in-flight requests");
            let _ = stopping_tx.send(());
        });
        let grace = self.settings.shutdown_timeout;
        let served = tokio::select! {
            () = server => Ok(()),
            _ = async {
                let _ = stopping_rx.await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!(grace_secs = grace.as_secs(), "in-flight requests did not finish in time; stopping");
                Ok(())
            }
        };
        // Writes run on their own tasks (see the registry); give any still running a moment.
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.storage.close().await;
        tracing::info!("stopped");
        served
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
