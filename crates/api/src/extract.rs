//! Request extractors whose rejections speak the API's error format. axum's own extractors
//! answer in plain text; these wrap them and map each rejection to a status and code.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// `axum::Json` with API errors: malformed JSON 422 `invalid_json`, wrong shape 422
/// `invalid_body`, wrong content type 415, too large 413.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let text = rejection.body_text();
    match rejection {
        JsonRejection::JsonSyntaxError(_) => ApiError::invalid("invalid_json", text),
        JsonRejection::JsonDataError(_) => ApiError::invalid("invalid_body", text),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected a request body with Content-Type: application/json",
        ),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large(),
        other => ApiError::new(other.status(), "invalid_body", other.body_text()),
    }
}

/// The route's path segments, percent-decoded. A `%` that does not start an escape of two hex
/// digits (`%`, `%zz`, `a%2`), or invalid UTF-8 after decoding, is 422 `invalid_path`: axum's
/// decoder would keep a broken escape as literal text, and a subject name would hold it.
#[derive(Debug, Clone)]
pub struct Segments<T>(pub T);

/// Whether every `%` in `raw` starts an escape of two hex digits.
///
/// Checked on the whole raw path, without allocating: a route's literal parts cannot hold a `%`
/// (the router matches them byte for byte), so a broken escape can only sit in a segment.
fn escapes_are_well_formed(raw: &[u8]) -> bool {
    let mut i = 0;
    while let Some(at) = raw[i..].iter().position(|&b| b == b'%') {
        let start = i + at;
        match raw.get(start + 1..start + 3) {
            Some([a, b]) if a.is_ascii_hexdigit() && b.is_ascii_hexdigit() => i = start + 3,
            _ => return false,
        }
    }
    true
}

impl<S, T> FromRequestParts<S> for Segments<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if !escapes_are_well_formed(parts.uri.path().as_bytes()) {
            return Err(ApiError::invalid(
                "invalid_path",
                "a path segment holds a broken percent escape: `%` must be followed by two hex \
                 digits (write a literal `%` as `%25`)",
            ));
        }
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Segments(value)),
            Err(rejection) => Err(path_rejection(rejection)),
        }
    }
}

fn path_rejection(rejection: PathRejection) -> ApiError {
    ApiError::invalid("invalid_path", rejection.body_text())
}

/// The query string as ordered key/value pairs (keys may repeat, as `tag=a&tag=b`).
#[derive(Debug, Clone, Default)]
pub struct QueryPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let pairs: Vec<(String, String)> = parts
            .uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        // PostgreSQL cannot take NUL in text; refuse it here, for every backend alike.
        if let Some((k, _)) = pairs
            .iter()
            .find(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            return Err(ApiError::invalid(
                "invalid_query",
                format!("query parameter {k:?} contains a NUL character"),
            ));
        }
        Ok(QueryPairs(pairs))
    }
}

impl QueryPairs {
    /// Fails with 422 `invalid_query` on a parameter not in `known` (`prefix.` entries match
    /// any key starting with the prefix): a typo must not be silently ignored.
    pub fn reject_unknown(&self, known: &[&str]) -> Result<(), ApiError> {
        for (k, _) in &self.0 {
            let ok = known.iter().any(|n| {
                if let Some(prefix) = n.strip_suffix('*') {
                    k.starts_with(prefix) && k.len() > prefix.len()
                } else {
                    k == n
                }
            });
            if !ok {
                return Err(ApiError::invalid(
                    "invalid_query",
                    format!("unknown query parameter {k:?}; known: {}", known.join(", ")),
                ));
            }
        }
        Ok(())
    }

    /// The last value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, in order.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Parses `key` with `parse`, mapping failure to 422 `invalid_query`.
    pub fn parse<T, E: std::fmt::Display>(
        &self,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<Option<T>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(raw) => parse(raw).map(Some).map_err(|e| {
                ApiError::invalid(
                    "invalid_query",
                    format!("query parameter {key}={raw:?}: {e}"),
                )
            }),
        }
    }

    /// A boolean flag: `true`/`false` (also `1`/`0`); absent is `false`.
    pub fn flag(&self, key: &str) -> Result<bool, ApiError> {
        Ok(self
            .parse(key, |v| match v {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err("expected true or false"),
            })?
            .unwrap_or(false))
    }
}

#[cfg(test)]
mod tests {
    use super::escapes_are_well_formed;

    #[test]
    fn percent_escapes_need_two_hex_digits() {
        for ok in [
            "",
            "a",
            "a%2Fb",
            "a%2fb",
            "%25",
            "%41%42",
            "/api/v1/subjects/x",
        ] {
            assert!(escapes_are_well_formed(ok.as_bytes()), "{ok:?}");
        }
        for bad in ["%", "%zz", "a%2", "a%2g", "%%41", "ok%", "%4", "a%g1b"] {
            assert!(!escapes_are_well_formed(bad.as_bytes()), "{bad:?}");
        }
    }
}
