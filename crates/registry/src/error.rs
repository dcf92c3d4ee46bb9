//! What an operation can fail with. Each interface maps these to its own status and codes in
//! one place of its own.

use schema_registry_core::DomainError;
use schema_registry_storage::StorageError;

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A value broke a domain rule (names, versions, formats, limits).
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The request is invalid as a whole: `code` is a stable machine code.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// Storage refused or failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A write's task ended without an answer (it panicked or the runtime is shutting down).
    #[error("a write did not complete: {0}")]
    Incomplete(String),
}

impl RegistryError {
    pub(crate) fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        RegistryError::Invalid {
            code,
            message: message.into(),
        }
    }
}

pub type RegistryResult<T> = Result<T, RegistryError>;
