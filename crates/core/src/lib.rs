//! Domain types of LLM Schema Registry. This crate does no I/O: it parses, validates and
//! canonicalises, and every other crate trusts the values it hands out.
//!
//! # Layout
//! - [`subject`]: the [`Subject`] name rule, enforced in exactly one place.
//! - [`version`]: [`SchemaVersion`] (semantic versions, their SQL-sortable precedence key, bumps).
//! - [`format`](mod@format): [`SchemaFormat`] (`json_schema`, `avro`, `protobuf`).
//! - [`state`]: [`SchemaState`] (`active`, `deprecated`, `deleted`) and which transitions are legal.
//! - [`content`]: [`SchemaContent`], a schema document checked for syntax, in canonical form, with
//!   its SHA-256 checksum.
//! - [`record`]: [`SchemaRecord`] (a stored version) and [`NewSchema`] (a registration request,
//!   already validated).
//! - [`error`]: [`DomainError`], every way an input can be invalid, each with a machine code.

pub mod content;
pub mod error;
pub mod format;
pub mod record;
pub mod state;
pub mod subject;
pub mod version;

pub use content::SchemaContent;
pub use error::DomainError;
pub use format::SchemaFormat;
pub use record::{
    Limits, NewSchema, SchemaId, SchemaRecord, SchemaReference, SchemaSummary, VersionRequest,
};
pub use state::SchemaState;
pub use subject::Subject;
pub use version::{Bump, SchemaVersion};
