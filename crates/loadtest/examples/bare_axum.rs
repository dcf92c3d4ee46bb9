//! The HTTP ceiling for `docs/PERFORMANCE.md`: a bare axum server that answers
//! `GET /api/v1/schemas/{id}` with fixed bytes — the same body **and the same headers** the
//! registry returns for one real record — and does nothing else (no storage, no cache, no
//! middleware). Whatever the registry's cached get-by-id reaches is measured against this.
//!
//! ```text
//! curl -s -D headers.txt -o body.json http://127.0.0.1:8080/api/v1/schemas/<id>
//! cargo run --release -p llm-schema-registry-loadtest --example bare_axum -- 127.0.0.1:18090 body.json headers.txt
//! ```
//!
//! The optional header file is what `curl -D` writes. Every header in it except `date`,
//! `content-length` (hyper writes those itself), the connection-level ones and
//! `content-encoding` is sent with its value as captured, so both
//! servers put the same bytes on the wire: the registry's `etag` and `x-request-id` are part
//! of what a cached read costs to send, and a ceiling without them would flatter the gap.

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use axum::routing::get;
use axum::Router;

/// The same allocator as the registry's binary, so that the ceiling compares code, not
/// allocators.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:18090".to_string());
    let body = match args.next() {
        Some(path) => Bytes::from(std::fs::read(&path)?),
        None => Bytes::from_static(b"{\"id\":\"bare\"}"),
    };
    let headers = match args.next() {
        Some(path) => captured_headers(&std::fs::read_to_string(&path)?)?,
        None => HeaderMap::from_iter([(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )]),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let app = Router::new().route(
            "/api/v1/schemas/{id}",
            get(move || {
                let (headers, body) = (headers.clone(), body.clone());
                async move { (headers, body) }
            }),
        );
        let listener = tokio::net::TcpListener::bind(&listen).await?;
        eprintln!("bare axum listening on {listen}");
        axum::serve(listener, app).await?;
        Ok(())
    })
}

/// The headers of a `curl -D` dump, without the status line, `date`, `content-length`, the
/// connection-level headers and `content-encoding`.
fn captured_headers(dump: &str) -> anyhow::Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    for line in dump.lines().skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = HeaderName::from_bytes(name.trim().as_bytes())?;
        // hyper frames the body and dates the response itself; the connection-level headers
        // and an encoding would describe a different exchange than this plain body.
        if [
            header::DATE,
            header::CONTENT_LENGTH,
            header::TRANSFER_ENCODING,
            header::CONNECTION,
            header::CONTENT_ENCODING,
        ]
        .contains(&name)
            || name.as_str() == "keep-alive"
        {
            continue;
        }
        headers.append(name, HeaderValue::from_str(value.trim())?);
    }
    Ok(headers)
}
