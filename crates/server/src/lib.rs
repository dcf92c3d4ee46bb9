//! The composition root of LLM Schema Registry: configuration, the storage stack, and the
//! `llm-schema-registry` binary.
//!
//! # Layout
//! - [`config`]: flags → environment → config file → defaults, resolved into [`config::Settings`].
//!   The only module that reads configuration.
//! - [`app`]: [`app::Application`]: build (open storage, wrap it in the cache and the metrics
//!   decorator, bind) then serve the HTTP interfaces of `schema_registry_api` until shutdown.
//! - [`lock`]: [`lock::DataLock`], one server (or migration) at a time per SQLite database.
//! - [`metrics`]: [`metrics::MeteredBackend`], the storage decorator that times every operation.
//! - [`serve`]: the accept loop and HTTP/1.1 connections, with the header, body and idle
//!   timeouts that bound how long a slow client holds a connection.
//! - [`telemetry`]: structured logging.
//! - [`load_test`]: the `load-test` subcommand, which runs the load generator binary
//!   `llm-schema-registry-load-test` (crate `llm-schema-registry-loadtest`) found beside this one.
//!
//! **Invariant:** only this crate reads configuration and the environment; it never writes SQL
//! and serves no route of its own.

pub mod app;
pub mod config;
pub mod load_test;
pub mod lock;
pub mod metrics;
pub mod serve;
pub mod telemetry;
