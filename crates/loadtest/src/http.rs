//! The HTTP side shared by seeding and the run: the pooled client, the reachability probe,
//! `/api/v1/stats` snapshots and path encoding.

use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

/// One client for everything: keep-alive connections over HTTP/1.1, at least one idle
/// connection per worker kept in the pool (so no worker pays a TCP handshake after warm-up),
/// Nagle off (requests are small and latency-bound), and a per-request timeout.
pub(crate) fn build_client(
    concurrency: usize,
    timeout: Duration,
) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(concurrency.max(1) * 2)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .timeout(timeout)
        .user_agent(concat!(
            "llm-schema-registry-loadtest/",
            env!("CARGO_PKG_VERSION")
        ))
        .build()
        .context("cannot build the HTTP client")
}

/// `target` without trailing slashes, checked to be an `http://` URL (the client is built
/// without TLS).
pub(crate) fn normalize_target(target: &str) -> anyhow::Result<String> {
    let base = target.trim().trim_end_matches('/');
    let url = reqwest::Url::parse(base).with_context(|| {
        format!("--target `{target}` is not a URL (e.g. http://127.0.0.1:8080)")
    })?;
    anyhow::ensure!(
        url.scheme() == "http" && url.host().is_some(),
        "--target `{target}` must be an http:// URL with a host (e.g. http://127.0.0.1:8080)"
    );
    Ok(base.to_string())
}

/// Checks that a registry answers at `base` (`GET /health/live`), with a message that says what
/// to do when it does not.
pub(crate) async fn probe(client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let url = format!("{base}/health/live");
    let response = client.get(&url).send().await.map_err(|e| {
        anyhow::anyhow!(
            "the schema registry at {base} is not reachable ({}). Is the server running? \
             Start it with `llm-schema-registry --listen HOST:PORT` and pass --target http://HOST:PORT",
            describe_transport_error(&e)
        )
    })?;
    let status = response.status();
    anyhow::ensure!(
        status.is_success(),
        "{url} answered {status}: is {base} an LLM Schema Registry?"
    );
    Ok(())
}

/// `GET /api/v1/stats` as JSON.
pub(crate) async fn fetch_stats(client: &reqwest::Client, base: &str) -> anyhow::Result<Value> {
    let url = format!("{base}/api/v1/stats");
    let response = client
        .get(&url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .with_context(|| format!("GET {url}: body"))?;
    anyhow::ensure!(status.is_success(), "GET {url} answered {status}: {body}");
    serde_json::from_str(&body).with_context(|| format!("GET {url}: not JSON"))
}

/// Percent-encodes one path segment (a subject name may hold `/` or non-ASCII letters).
pub(crate) fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A short, stable name for a transport failure, used as an error-count key.
pub(crate) fn transport_error_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect error"
    } else if e.is_body() || e.is_decode() {
        "body error"
    } else if e.is_request() {
        "request error"
    } else {
        "transport error"
    }
}

/// The error with its causes (reqwest's top-level message alone says little).
pub(crate) fn describe_transport_error(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_checked_and_trimmed() {
        assert_eq!(
            normalize_target("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(normalize_target("127.0.0.1:8080").is_err());
        assert!(normalize_target("ftp://host").is_err());
        assert!(normalize_target("https://host").is_err());
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(encode_segment("loadtest.00001"), "loadtest.00001");
        assert_eq!(encode_segment("tools/search v2"), "tools%2Fsearch%20v2");
    }
}
