//! The HTTP interfaces of LLM Schema Registry.
//!
//! # Layout
//! - [`native`]: the native API under `/api/v1` (and the health routes): the router, one
//!   handler module per resource, and the records' JSON encoding.
//! - [`edge`]: what every request passes through once: request id, panic catch, the log line
//!   of a failed request.
//! - [`error`]: [`error::ApiError`], the one mapping from registry errors to status codes and
//!   the `{"error": {"code", "message"}}` body.
//! - [`extract`]: request extractors whose rejections use the API's error format.
//! - [`metrics`]: the Prometheus exposition (`/metrics`), the per-route HTTP series, and the
//!   per-operation series the server's storage decorator records into.
//!
//! **Invariant:** handlers only translate HTTP: they parse paths, queries and bodies, call one
//! [`schema_registry_registry::Registry`] operation, and shape the answer. What an operation
//! means is the registry's.

pub mod edge;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod native;
