//! The edge: what every request passes through exactly once, around the whole router — its
//! request id, the catch for a panicking handler, the refusal of a body whose declared length
//! is over the limit, and the one log line of a failed request.
//!
//! # Why one hand-written layer around the router
//! `Router::layer` does not wrap the router: it wraps *each route* in a boxed service of its
//! own, and axum clones a route's box on every call. A layer added that way therefore
//! deep-clones everything beneath it on every request (an allocation per boxed level, plus the
//! handler's state), and each further layer repeats that for the whole chain below it. With the
//! five outer layers this server used to stack that way (request id set and propagate, trace,
//! panic catch, body limit), a cached read paid for dozens of allocations and reference-count
//! updates before reaching its handler. [`EdgeLayer`] and the body limit now wrap the finished
//! router once (see `native::app`), so a request pays for them once.
//!
//! # Failed requests are logged here, with their request id
//! A 5xx response is logged at this layer — error for 500, warn for 503 — with the request id,
//! method, path, status and the cause. The cause travels from [`crate::error::ApiError`] to
//! here in a response extension ([`InternalCause`]) and never reaches the client. Every request
//! is also logged at debug level (`RUST_LOG=schema_registry::http=debug`).

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::future::CatchUnwind;
use futures::FutureExt;
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::error::ApiError;

/// The request id header, read from the request and always set on the response.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest caller-chosen request id echoed back; a longer (or non-ASCII) one is replaced
/// by a fresh id rather than copied into every log line.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The cause of a 5xx response, for the log line written here. A response extension: it
/// never becomes part of the body or the headers.
#[derive(Clone, Debug)]
pub struct InternalCause(pub String);

/// Wraps the whole router in an [`Edge`].
#[derive(Clone, Debug)]
pub struct EdgeLayer {
    max_body_bytes: u64,
}

impl EdgeLayer {
    pub fn new() -> Self {
        EdgeLayer {
            max_body_bytes: u64::MAX,
        }
    }

    /// A request whose `Content-Length` declares more than `limit` bytes is answered 413
    /// `payload_too_large` at once, before a byte of its body is read, and its connection is
    /// closed. (A body without a declared length is cut by the body limit as it is read.)
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = u64::try_from(limit).unwrap_or(u64::MAX);
        self
    }
}

impl Default for EdgeLayer {
    fn default() -> Self {
        EdgeLayer::new()
    }
}

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge {
            inner,
            max_body_bytes: self.max_body_bytes,
        }
    }
}

/// See the module documentation.
#[derive(Clone, Debug)]
pub struct Edge<S> {
    inner: S,
    max_body_bytes: u64,
}

impl<S> Service<Request> for Edge<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = EdgeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let id = match req.headers().get(REQUEST_ID) {
            Some(given) if acceptable_id(given) => given.clone(),
            _ => {
                let fresh = fresh_request_id();
                req.headers_mut().insert(REQUEST_ID, fresh.clone());
                fresh
            }
        };
        let seen = Seen {
            id,
            method: req.method().clone(),
            uri: req.uri().clone(),
            started: Instant::now(),
        };
        if declared_length(&req).is_some_and(|n| n > self.max_body_bytes) {
            return EdgeFuture {
                state: State::Refused {
                    response: Some(too_large()),
                },
                seen: Some(seen),
            };
        }
        // A handler's code runs inside the future, but a service may also panic in `call`.
        let state = match std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(req))) {
            Ok(future) => State::Running {
                future: AssertUnwindSafe(future).catch_unwind(),
            },
            Err(panic) => State::Panicked {
                message: Some(panic_message(&*panic)),
            },
        };
        EdgeFuture {
            state,
            seen: Some(seen),
        }
    }
}

/// What the edge keeps of a request until its response: enough to label the response and the
/// log line.
#[derive(Debug)]
struct Seen {
    id: HeaderValue,
    method: Method,
    uri: Uri,
    started: Instant,
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Running { #[pin] future: CatchUnwind<AssertUnwindSafe<F>> },
        Panicked { message: Option<String> },
        Refused { response: Option<Response> },
    }
}

pin_project! {
    /// The response future of [`Edge`].
    pub struct EdgeFuture<F> {
        #[pin]
        state: State<F>,
        seen: Option<Seen>,
    }
}

impl<F> Future for EdgeFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = match this.state.project() {
            StateProj::Running { future } => match future.poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(Ok(response))) => response,
                Poll::Ready(Ok(Err(never))) => match never {},
                Poll::Ready(Err(panic)) => panicked(panic_message(&*panic)),
            },
            StateProj::Panicked { message } => panicked(message.take().unwrap_or_default()),
            StateProj::Refused { response } => response.take().unwrap_or_else(too_large),
        };
        Poll::Ready(Ok(match this.seen.take() {
            Some(seen) => finish(response, seen),
            None => response,
        }))
    }
}

/// The request's `Content-Length`, when it has a valid one.
fn declared_length(req: &Request) -> Option<u64> {
    let value = req.headers().get(axum::http::header::CONTENT_LENGTH)?;
    value.to_str().ok()?.trim().parse().ok()
}

/// 413 for a declared length over the limit. The body stays unread on the connection, which
/// therefore cannot carry another request: `Connection: close` says so.
fn too_large() -> Response {
    let mut response = ApiError::payload_too_large().into_response();
    response.headers_mut().insert(
        axum::http::header::CONNECTION,
        HeaderValue::from_static("close"),
    );
    response
}

fn panicked(message: String) -> Response {
    ApiError::internal(format!("handler panicked: {message}")).into_response()
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".to_string()
    }
}

/// Labels the response with its request id and logs it (always at debug, and at warn or error
/// when it failed).
fn finish(mut response: Response, seen: Seen) -> Response {
    let status = response.status();
    if status.is_server_error() {
        let cause = response
            .extensions_mut()
            .remove::<InternalCause>()
            .map_or_else(String::new, |c| c.0);
        let request_id = seen.id.to_str().unwrap_or("");
        let latency_us = seen.started.elapsed().as_micros();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(target: "schema_registry::http", request_id, method = %seen.method,
                path = seen.uri.path(), status = status.as_u16(), latency_us, cause, "request failed");
        } else {
            tracing::error!(target: "schema_registry::http", request_id, method = %seen.method,
                path = seen.uri.path(), status = status.as_u16(), latency_us, cause, "request failed");
        }
    } else {
        tracing::debug!(target: "schema_registry::http", request_id = seen.id.to_str().unwrap_or(""),
            method = %seen.method, path = seen.uri.path(), status = status.as_u16(),
            latency_us = seen.started.elapsed().as_micros(), "request");
    }
    response.headers_mut().insert(REQUEST_ID, seen.id);
    response
}

/// A caller's id is kept when it is short visible ASCII (a header value already excludes
/// control characters other than tab).
fn acceptable_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID_LEN
        && bytes.iter().all(|b| b.is_ascii_graphic())
}

/// Request ids for requests that arrive without a usable `x-request-id`, written as a UUID: a
/// random 64-bit prefix drawn when the process starts (its first request), then a counter.
/// Unique within the process by the counter, and across restarts and servers by the prefix (two
/// processes collide only if they draw the same 64 random bits).
///
/// Why not a UUIDv7 per request: the clock read, the generator's lock and the random bits cost
/// about 470 user-space instructions per request (callgrind, docs/PERFORMANCE.md), 2 % of a
/// cached read; the counter costs one relaxed atomic add. Encoded into a stack buffer: the only
/// allocation is the header value's own.
fn fresh_request_id() -> HeaderValue {
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let text = uuid::Uuid::from_u64_pair(prefix, n)
        .hyphenated()
        .encode_lower(&mut text);
    // A hyphenated UUID is always a valid header value.
    HeaderValue::from_bytes(text.as_bytes()).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    fn request(id: Option<&str>) -> Request {
        let mut builder = Request::builder().uri("/api/v1/anything");
        if let Some(id) = id {
            builder = builder.header(REQUEST_ID, id);
        }
        builder.body(Body::empty()).expect("request")
    }

    async fn body_text(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    fn request_id(response: &Response) -> String {
        response
            .headers()
            .get(REQUEST_ID)
            .expect("x-request-id")
            .to_str()
            .expect("ascii")
            .to_string()
    }

    #[tokio::test]
    async fn a_panic_in_the_future_is_answered_as_an_internal_error_with_a_request_id() {
        let service = EdgeLayer::new().layer(tower::service_fn(|_: Request| async {
            if true {
                panic!("the handler's own secret detail");
            }
            Ok::<Response, Infallible>(StatusCode::OK.into_response())
        }));
        let response = service.oneshot(request(None)).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(uuid::Uuid::parse_str(&request_id(&response)).is_ok());
        assert!(response.extensions().get::<InternalCause>().is_none());
        let body = body_text(response).await;
        assert!(body.contains("\"internal_error\""), "{body}");
        assert!(
            !body.contains("secret"),
            "the cause must not reach the client: {body}"
        );
    }

    #[tokio::test]
    async fn a_panic_in_call_is_answered_as_an_internal_error() {
        let service = EdgeLayer::new().layer(tower::service_fn(
            |_: Request| -> std::future::Ready<Result<Response, Infallible>> {
                panic!("panicked before making a future")
            },
        ));
        let response = service
            .oneshot(request(Some("mine")))
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(request_id(&response), "mine");
    }

    #[tokio::test]
    async fn an_internal_cause_is_taken_off_the_response() {
        let service = EdgeLayer::new().layer(tower::service_fn(|_: Request| async {
            Ok::<Response, Infallible>(
                ApiError::internal("disk on fire at /var/lib/x").into_response(),
            )
        }));
        let response = service.oneshot(request(None)).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(response.extensions().get::<InternalCause>().is_none());
        let body = body_text(response).await;
        assert!(!body.contains("disk on fire"), "{body}");
    }

    #[tokio::test]
    async fn the_handler_sees_the_request_id_it_is_answered_with() {
        let service = EdgeLayer::new().layer(tower::service_fn(|req: Request| async move {
            let seen = req.headers().get(REQUEST_ID).cloned();
            let mut response = StatusCode::OK.into_response();
            if let Some(seen) = seen {
                response.headers_mut().insert("x-seen", seen);
            }
            Ok::<Response, Infallible>(response)
        }));
        let response = service
            .clone()
            .oneshot(request(None))
            .await
            .expect("infallible");
        let id = request_id(&response);
        assert_eq!(response.headers().get("x-seen").expect("seen"), id.as_str());

        let response = service
            .oneshot(request(Some("caller-7")))
            .await
            .expect("infallible");
        assert_eq!(request_id(&response), "caller-7");
        assert_eq!(response.headers().get("x-seen").expect("seen"), "caller-7");
    }

    #[tokio::test]
    async fn unusable_caller_ids_are_replaced() {
        let service = EdgeLayer::new().layer(tower::service_fn(|_: Request| async {
            Ok::<Response, Infallible>(StatusCode::OK.into_response())
        }));
        let too_long = "x".repeat(MAX_REQUEST_ID_LEN + 1);
        let longest = "y".repeat(MAX_REQUEST_ID_LEN);
        for (given, kept) in [
            (too_long.as_str(), false),
            ("has space", false),
            (longest.as_str(), true),
        ] {
            let response = service
                .clone()
                .oneshot(request(Some(given)))
                .await
                .expect("infallible");
            let answered = request_id(&response);
            assert_eq!(answered == given, kept, "{given:?} → {answered:?}");
            if !kept {
                assert!(uuid::Uuid::parse_str(&answered).is_ok(), "{answered}");
            }
        }
    }

    #[test]
    fn fresh_ids_are_distinct_uuids_that_share_the_process_prefix() {
        let fresh: Vec<uuid::Uuid> = (0..1000)
            .map(|_| {
                let id = fresh_request_id().to_str().expect("ascii").to_string();
                let parsed = uuid::Uuid::parse_str(&id).expect("a UUID");
                assert_eq!(id, parsed.hyphenated().to_string(), "lowercase, hyphenated");
                parsed
            })
            .collect();
        let prefix = fresh[0].as_u64_pair().0;
        assert!(fresh.iter().all(|id| id.as_u64_pair().0 == prefix));
        let mut distinct = fresh.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), fresh.len(), "distinct");
    }
}
