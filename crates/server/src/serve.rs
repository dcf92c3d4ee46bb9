//! Serving the API's service on a listener: the accept loop, HTTP/1.1 connections (hyper's), the
//! timeouts that keep a slow or silent client from holding a connection (and its descriptor)
//! for ever, and graceful shutdown.
//!
//! # Timeouts
//! Each connection is in one phase at a time, and the phase decides how long the server waits
//! for the client to send more:
//! - **head**: from the connection's accept, or the first byte of a further request, until its
//!   head (request line and headers) is complete: [`Timeouts::header`];
//! - **body**: from the complete head until the body is read (or dropped unread):
//!   [`Timeouts::body`];
//! - **busy**: the handler runs and the response is written: no read deadline (the client has
//!   nothing to send);
//! - **idle**: between the end of a response and the first byte of the next request on a
//!   keep-alive connection: [`Timeouts::idle`].
//!
//! A read that would wait past the phase's deadline fails with `TimedOut`, and hyper closes the
//! connection. The phase lives in one `Conn` per connection, moved on by the service (head →
//! body or busy), the request body (body → busy) and the response body (busy → idle, when hyper
//! drops it). The cost per request is a few relaxed atomic stores and one timer reset, on the
//! read that finds the socket empty.
//!
//! # Closing with an unread body
//! A request answered before its body was read (a declared length over the limit, say) leaves
//! the rest of the body on its way. Closing the socket with it unread would make the kernel
//! answer with a reset, and a client still sending would see a broken pipe instead of the
//! answer. So such a connection lingers: after the answer it shuts down its writing side, then
//! reads and discards what the client still sends, for at most `LINGER`, before it closes.
//!
//! # Accept errors
//! When the process runs out of descriptors (`EMFILE`), `accept` fails until a connection
//! closes. The loop then backs off briefly and retries, logging once per run of failures (and
//! once when it accepts again), not once per error; the timeouts are what free descriptors.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, Sleep};
use tower::Service;

use schema_registry_api::native::App;

/// How long the server waits for a client to send more; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From the accept (or the first byte of a further request) to the end of its headers.
    pub header: Duration,
    /// From the end of the headers to the end of the body.
    pub body: Duration,
    /// Between requests on a keep-alive connection.
    pub idle: Duration,
}

/// The longest a connection closing with an unread body discards what the client still sends.
const LINGER: Duration = Duration::from_secs(2);

/// How long the accept loop waits after a failed `accept` before it tries again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting, lets every open
/// connection finish its request in flight (idle ones close at once) and returns when all have
/// closed.
pub async fn serve(
    listener: TcpListener,
    app: App,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let (closing_tx, closing_rx) = watch::channel(false);
    // Every connection holds a sender; `recv` answers `None` once the last has closed.
    let (open_tx, mut open_rx) = mpsc::channel::<()>(1);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut failures: u64 = 0;
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                if failures > 0 {
                    tracing::info!(failures, "accepting connections again");
                    failures = 0;
                }
                let (app, closing, open) = (app.clone(), closing_rx.clone(), open_tx.clone());
                tokio::spawn(async move {
                    connection(stream, app, timeouts, closing).await;
                    drop(open);
                });
            }
            // The client gave up before we accepted it: nothing to do about it.
            Err(e) if per_connection(&e) => {}
            Err(e) => {
                if failures == 0 {
                    tracing::warn!(error = %e, backoff_ms = ACCEPT_BACKOFF.as_millis() as u64,
                        "cannot accept connections; retrying until it succeeds (logged once)");
                }
                failures += 1;
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                }
            }
        }
    }
    drop(listener);
    let _ = closing_tx.send(true);
    drop(open_tx);
    let _ = open_rx.recv().await;
}

/// An `accept` error that concerns one connection only, not the listener.
fn per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// Serves one connection until it closes, or finishes its request in flight once `closing`
/// turns true.
async fn connection(
    stream: TcpStream,
    app: App,
    timeouts: Timeouts,
    mut closing: watch::Receiver<bool>,
) {
    let conn = Arc::new(Conn::new(timeouts));
    let io = TokioIo::new(TimedIo {
        inner: stream,
        conn: conn.clone(),
        sleep: None,
        draining_until: None,
    });
    let service = ConnService { app, conn };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.header_read_timeout(None);
    let served = builder.serve_connection(io, service);
    let mut served = std::pin::pin!(served);
    let result = tokio::select! {
        result = served.as_mut() => result,
        () = closed(&mut closing) => {
            served.as_mut().graceful_shutdown();
            served.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(target: "schema_registry::http", error = %e, "connection closed");
    }
}

/// Resolves once `closing` turns true (or its sender is gone).
async fn closed(closing: &mut watch::Receiver<bool>) {
    while !*closing.borrow_and_update() {
        if closing.changed().await.is_err() {
            return;
        }
    }
}

/// The phases of a connection (see the module documentation).
const HEAD: u8 = 0;
const BODY: u8 = 1;
const BUSY: u8 = 2;
const IDLE: u8 = 3;

/// A connection's phase and when it began, shared by its I/O, its service and its bodies.
#[derive(Debug)]
struct Conn {
    timeouts: Timeouts,
    /// When the connection was accepted; `since` counts from here.
    epoch: Instant,
    phase: AtomicU8,
    /// Nanoseconds from `epoch` to the start of the phase.
    since: AtomicU64,
    /// A request body was dropped before its end: close by lingering (see the module docs).
    unread_body: AtomicBool,
}

impl Conn {
    fn new(timeouts: Timeouts) -> Conn {
        Conn {
            timeouts,
            epoch: Instant::now(),
            phase: AtomicU8::new(HEAD),
            since: AtomicU64::new(0),
            unread_body: AtomicBool::new(false),
        }
    }

    fn enter(&self, phase: u8) {
        let since = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.since.store(since, Ordering::Relaxed);
        self.phase.store(phase, Ordering::Relaxed);
    }

    /// Leaves `from` for `to`; no change in any other phase.
    fn leave(&self, from: u8, to: u8) {
        if self.phase.load(Ordering::Relaxed) == from {
            self.enter(to);
        }
    }

    /// How long the client may take to send more in the current phase, counted from when it
    /// began; `None` while the server is the one at work.
    fn deadline(&self) -> Option<Instant> {
        let limit = match self.phase.load(Ordering::Relaxed) {
            HEAD => self.timeouts.header,
            BODY => self.timeouts.body,
            IDLE => self.timeouts.idle,
            _ => return None,
        };
        let since = Duration::from_nanos(self.since.load(Ordering::Relaxed));
        Some(self.epoch + since + limit)
    }
}

/// The socket, with the connection's read deadline.
struct TimedIo {
    inner: TcpStream,
    conn: Arc<Conn>,
    /// The timer of the last deadline waited for, kept to be reset rather than reallocated.
    sleep: Option<Pin<Box<Sleep>>>,
    /// Set once the writing side is shut down on a connection that lingers.
    draining_until: Option<Instant>,
}

impl TimedIo {
    /// `Ready` once `deadline` has passed; otherwise registers for it.
    fn poll_deadline(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<()> {
        let sleep = match &mut self.sleep {
            Some(sleep) => {
                if sleep.deadline() != deadline {
                    sleep.as_mut().reset(deadline);
                }
                sleep
            }
            None => self
                .sleep
                .insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        sleep.as_mut().poll(cx)
    }

    /// Discards what the client still sends until it closes, fails, or `until` passes.
    fn poll_drain(&mut self, cx: &mut Context<'_>, until: Instant) -> Poll<()> {
        let mut scratch = [0u8; 8192];
        loop {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.inner).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => continue,
                Poll::Ready(_) => return Poll::Ready(()),
                Poll::Pending => return self.poll_deadline(cx, until),
            }
        }
    }
}

impl AsyncRead for TimedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    // The first byte of a further request: its head must follow in time.
                    this.conn.leave(IDLE, HEAD);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let Some(deadline) = this.conn.deadline() else {
                    return Poll::Pending;
                };
                match this.poll_deadline(cx, deadline) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client sent nothing within its timeout",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl AsyncWrite for TimedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.conn.unread_body.load(Ordering::Relaxed) {
            return Pin::new(&mut this.inner).poll_shutdown(cx);
        }
        let until = match this.draining_until {
            Some(until) => until,
            None => {
                std::task::ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
                *this.draining_until.insert(Instant::now() + LINGER)
            }
        };
        this.poll_drain(cx, until).map(Ok)
    }
}

/// The API's service for one connection: moves the phase on as requests and responses pass.
struct ConnService {
    app: App,
    conn: Arc<Conn>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for ConnService {
    type Response = hyper::Response<ResponseBody>;
    type Error = std::convert::Infallible;
    type Future = ResponseFuture<<App as Service<Request>>::Future>;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        self.conn.unread_body.store(false, Ordering::Relaxed);
        if req.body().is_end_stream() {
            self.conn.enter(BUSY);
        } else {
            self.conn.enter(BODY);
        }
        let conn = self.conn.clone();
        let req = req.map(|inner| {
            Body::new(RequestBody {
                inner,
                conn: conn.clone(),
            })
        });
        ResponseFuture {
            inner: self.app.clone().call(req),
            conn: Some(conn),
        }
    }
}

pin_project! {
    /// The app's response future, its body wrapped in a [`ResponseBody`].
    struct ResponseFuture<F> {
        #[pin]
        inner: F,
        conn: Option<Arc<Conn>>,
    }
}

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response, std::convert::Infallible>>,
{
    type Output = Result<hyper::Response<ResponseBody>, std::convert::Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = match this.inner.poll(cx) {
            Poll::Ready(Ok(response)) => response,
            Poll::Ready(Err(never)) => match never {},
            Poll::Pending => return Poll::Pending,
        };
        let conn = this.conn.take();
        Poll::Ready(Ok(response.map(|inner| ResponseBody { inner, conn })))
    }
}

pin_project! {
    /// A request's body; the connection leaves the body phase when it ends or is dropped.
    struct RequestBody {
        #[pin]
        inner: Incoming,
        conn: Arc<Conn>,
    }

    impl PinnedDrop for RequestBody {
        fn drop(this: Pin<&mut Self>) {
            if this.conn.phase.load(Ordering::Relaxed) == BODY {
                this.conn.unread_body.store(true, Ordering::Relaxed);
                this.conn.enter(BUSY);
            }
        }
    }
}

impl HttpBody for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.project();
        let frame = this.inner.poll_frame(cx);
        if matches!(frame, Poll::Ready(None | Some(Err(_)))) {
            this.conn.leave(BODY, BUSY);
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project! {
    /// A response's body; when hyper drops it (written, or abandoned), the connection is idle.
    struct ResponseBody {
        #[pin]
        inner: Body,
        conn: Option<Arc<Conn>>,
    }

    impl PinnedDrop for ResponseBody {
        fn drop(this: Pin<&mut Self>) {
            if let Some(conn) = this.conn.as_ref() {
                conn.enter(IDLE);
            }
        }
    }
}

impl HttpBody for ResponseBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
