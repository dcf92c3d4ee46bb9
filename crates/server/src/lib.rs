//! The HTTP server of LLM Schema Registry.
//!
//! # Layout
//! - [`config`]: flags → environment → config file → defaults, resolved into [`config::Settings`].
//!   The only module that reads configuration.
//! - [`app`]: [`app::Application`]: build (open storage, bind) then run until shutdown.
//! - [`routes`]: the axum router and handlers, one module per resource.
//! - [`edge`]: what every request passes through once: request id, panic catch, the log line
//!   of a failed request.
//! - [`error`]: [`error::ApiError`], the one mapping from errors to status codes and JSON.
//! - [`extract`]: request extractors whose rejections use the API's error format.
//! - [`metrics`]: Prometheus metrics (`/metrics`), the storage decorator that records them.
//! - [`telemetry`]: structured logging.
//! - [`load_test`]: the `load-test` subcommand, which runs the load generator binary
//!   `llm-schema-registry-load-test` (crate `llm-schema-registry-loadtest`) found beside this one.
//!
//! **Invariant:** only this crate knows HTTP and configuration; it never writes SQL.

pub mod app;
pub mod config;
pub mod edge;
pub mod error;
pub mod extract;
pub mod load_test;
pub mod metrics;
pub mod routes;
pub mod telemetry;
