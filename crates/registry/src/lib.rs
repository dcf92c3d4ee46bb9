//! The service layer of LLM Schema Registry: the one place a request becomes an operation.
//!
//! Every interface — the native HTTP API now, the Confluent-compatible API and the MCP server
//! next — translates its wire format into calls on [`Registry`] and maps [`RegistryError`] to
//! its own error codes. What a registration means (which fields are parsed in which order,
//! which limits apply), which states a client may set, which writes must run to completion
//! whatever the client does, and what a search may ask are decided here once, so no interface
//! rebuilds the sequence parse → check → store. Authorization and tenant scoping will live
//! here too, for the same reason.
//!
//! # Layout
//! - [`registry`]: [`Registry`], one method per operation.
//! - [`registration`]: [`Registration`], a registration request in plain values, and how it
//!   becomes a validated `NewSchema`.
//! - [`error`]: [`RegistryError`], what an operation can fail with.
//!
//! **Invariant:** this crate knows no wire format and no transport: no HTTP, no JSON shapes of
//! any API. It takes domain values and returns domain values.

pub mod error;
pub mod registration;
pub mod registry;

pub use error::{RegistryError, RegistryResult};
pub use registration::{Registration, RegistrationReference};
pub use registry::{PointRead, Registry};
