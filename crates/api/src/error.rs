//! The one place that maps errors to HTTP for the native API. Every error response has the same shape:
//! `{"error": {"code": "<machine_code>", "message": "<human text>"}}`.
//!
//! Client errors carry their own message. Internal errors are sent as a generic message; their
//! cause rides in a response extension to the edge (`crate::edge`), which logs it once, beside
//! the request id, method and path. Database errors, file paths and SQL never reach a client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use schema_registry_core::DomainError;
use schema_registry_registry::RegistryError;
use schema_registry_storage::{NotFound, StorageError};
use serde_json::json;

/// An error on its way to becoming an HTTP response.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Why a 5xx happened, for the log (see `crate::edge`); never sent to the client.
    pub cause: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            cause: None,
        }
    }

    /// 422 with a specific code: the request is well-formed HTTP but its content is invalid.
    /// 413 `payload_too_large`: the body is (or declares itself) larger than the limit.
    pub fn payload_too_large() -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body exceeds the configured maximum size",
        )
    }

    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    /// A bug or an unexpected failure: the cause is logged at the edge, the client gets a
    /// generic message.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "an internal error occurred; it has been logged",
        )
        .caused_by(cause)
    }

    /// Attaches the cause that the edge logs with this response.
    pub fn caused_by(mut self, cause: impl std::fmt::Display) -> Self {
        self.cause = Some(cause.to_string());
        self
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        ApiError::invalid(e.code(), e.to_string())
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound(nf) => {
                let code = match nf {
                    NotFound::Schema(_) => "schema_not_found",
                    NotFound::Subject(_) => "subject_not_found",
                    NotFound::Version { .. } => "version_not_found",
                };
                ApiError::not_found(code, nf.to_string())
            }
            StorageError::VersionExists { .. } => {
                ApiError::new(StatusCode::CONFLICT, "version_exists", e.to_string())
            }
            StorageError::Conflict { reason, message } => {
                ApiError::new(StatusCode::CONFLICT, reason.code(), message)
            }
            StorageError::Invalid(domain) => domain.into(),
            StorageError::Unavailable(cause) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "the storage backend is unavailable; retry later",
            )
            .caused_by(format_args!("storage unavailable: {cause}")),
            StorageError::Corrupted(cause) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "content_corrupted",
                "the stored content of this schema failed its integrity check; it has been logged",
            )
            .caused_by(format_args!(
                "stored content failed its integrity check: {cause}"
            )),
            StorageError::Internal(cause) => ApiError::internal(cause),
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Domain(domain) => domain.into(),
            RegistryError::Invalid { code, message } => ApiError::invalid(code, message),
            RegistryError::Storage(storage) => storage.into(),
            RegistryError::Incomplete(cause) => ApiError::internal(cause),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": {"code": self.code, "message": self.message}}));
        let mut response = (self.status, body).into_response();
        if let Some(cause) = self.cause {
            response
                .extensions_mut()
                .insert(crate::edge::InternalCause(cause));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
