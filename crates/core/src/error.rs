//! Every way a client's input can be invalid. Each variant has a stable machine-readable code
//! ([`DomainError::code`]) that the HTTP layer sends as `error.code`; the `Display` text is the
//! human message.

use thiserror::Error;

/// An input that breaks a domain rule. Always the client's fault: the server maps it to a 4xx.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    #[error("invalid subject: {0}")]
    InvalidSubject(String),
    #[error("invalid version: {0}")]
    InvalidVersion(String),
    #[error("invalid schema: {0}")]
    InvalidSchema(String),
    #[error("invalid format: {0}")]
    InvalidFormat(String),
    #[error("invalid state: {0}")]
    InvalidState(String),
    #[error("invalid metadata: {0}")]
    InvalidMetadata(String),
    #[error("invalid tag: {0}")]
    InvalidTag(String),
    #[error("invalid description: {0}")]
    InvalidDescription(String),
    #[error("invalid reference: {0}")]
    InvalidReference(String),
    #[error("unknown reference: {0}")]
    UnknownReference(String),
}

impl DomainError {
    /// The machine-readable code clients switch on. Stable: never rename one.
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::InvalidSubject(_) => "invalid_subject",
            DomainError::InvalidVersion(_) => "invalid_version",
            DomainError::InvalidSchema(_) => "invalid_schema",
            DomainError::InvalidFormat(_) => "invalid_format",
            DomainError::InvalidState(_) => "invalid_state",
            DomainError::InvalidMetadata(_) => "invalid_metadata",
            DomainError::InvalidTag(_) => "invalid_tag",
            DomainError::InvalidDescription(_) => "invalid_description",
            DomainError::InvalidReference(_) => "invalid_reference",
            DomainError::UnknownReference(_) => "unknown_reference",
        }
    }
}
