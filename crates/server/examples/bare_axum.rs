//! The HTTP ceiling for `docs/PERFORMANCE.md`: a bare axum server that answers
//! `GET /api/v1/schemas/{id}` with fixed bytes — the same bytes the registry returns for one
//! real record — and does nothing else (no storage, no cache, no middleware). Whatever the
//! registry's cached get-by-id reaches is measured against this.
//!
//! ```text
//! cargo run --release -p llm-schema-registry-server --example bare_axum -- 127.0.0.1:18090 body.json
//! ```

use axum::body::Bytes;
use axum::http::header;
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let app = Router::new().route(
            "/api/v1/schemas/{id}",
            get(move || {
                let body = body.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], body) }
            }),
        );
        let listener = tokio::net::TcpListener::bind(&listen).await?;
        eprintln!("bare axum listening on {listen}");
        axum::serve(listener, app).await?;
        Ok(())
    })
}
