//! The origin of the URLs the API hands out (`content-url`): the configured public URL when
//! there is one, otherwise the request's own `Host` and `X-Forwarded-Proto`, but only when they
//! are what those headers may hold. A client must not be able to make the API answer a URL of
//! its choosing (`Host: evil.example/phish?x=`), nor a broken one (an empty `Host`).

use std::net::{Ipv4Addr, Ipv6Addr};

use axum::http::{header, HeaderMap, StatusCode};

use crate::error::{ApiError, ApiResult};

/// The origin to put before an API path (`https://registry.example.com`), or `None` when the
/// request names none (an HTTP/1.0 request without `Host`): the path alone is then the URL.
///
/// `public_url` is the configured public base URL, checked by the server at start (http or
/// https, no query or fragment) and kept without a trailing `/`; when set, the request's headers
/// are not consulted at all.
pub fn origin(public_url: Option<&str>, headers: &HeaderMap) -> ApiResult<Option<String>> {
    if let Some(base) = public_url {
        return Ok(Some(base.to_string()));
    }
    let Some(host) = headers.get(header::HOST) else {
        return Ok(None);
    };
    let host = host
        .to_str()
        .ok()
        .filter(|h| is_authority(h))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_host",
                "the Host header must be host[:port]: a DNS name, an IPv4 address or a bracketed IPv6 address",
            )
        })?;
    let scheme = match headers.get("x-forwarded-proto") {
        None => "http",
        Some(proto) => match proto.to_str().map(str::to_ascii_lowercase).as_deref() {
            Ok("http") => "http",
            Ok("https") => "https",
            _ => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_forwarded_proto",
                    "the X-Forwarded-Proto header must be http or https",
                ))
            }
        },
    };
    Ok(Some(format!("{scheme}://{}", host.to_ascii_lowercase())))
}

/// `host[:port]`: a DNS name, an IPv4 address or a bracketed IPv6 address, then optionally `:`
/// and a port of 1 to 5 digits that fits in 16 bits.
pub fn is_authority(value: &str) -> bool {
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let Some((address, after)) = rest.split_once(']') else {
            return false;
        };
        if address.parse::<Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return false,
            },
        }
    } else {
        match value.rsplit_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(value), None),
        }
    };
    if let Some(port) = port {
        if port.is_empty()
            || port.len() > 5
            || !port.bytes().all(|b| b.is_ascii_digit())
            || port.parse::<u16>().is_err()
        {
            return false;
        }
    }
    match host {
        None => true,
        Some(host) => host.parse::<Ipv4Addr>().is_ok() || is_dns_name(host),
    }
}

/// A DNS name: labels of 1 to 63 letters, digits and hyphens, not starting or ending with a
/// hyphen, joined by dots, 253 characters at most (one trailing dot allowed).
fn is_dns_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_bytes(value).expect("header value"));
        }
        map
    }

    #[test]
    fn accepts_hosts_that_are_host_and_port() {
        for ok in [
            "localhost",
            "localhost:8080",
            "registry.example.com",
            "registry.example.com.",
            "Registry.Example.COM:443",
            "a-b.c1",
            "xn--nxasmq6b.example",
            "127.0.0.1",
            "10.0.0.1:65535",
            "[::1]",
            "[::1]:8080",
            "[2001:db8::1]:1",
        ] {
            assert!(is_authority(ok), "{ok:?}");
        }
    }

    #[test]
    fn refuses_anything_else() {
        for bad in [
            "",
            ":",
            ":80",
            "evil.example/phish?x=",
            "evil.example/",
            "evil.example?x",
            "evil.example#x",
            "user@evil.example",
            "evil example",
            "evil.example:",
            "evil.example:http",
            "evil.example:65536",
            "evil.example:123456",
            "evil.example:80:80",
            "-evil.example",
            "evil-.example",
            "evil..example",
            ".",
            "évil.example",
            "evil_example",
            "::1",
            "[::1",
            "[::1]x",
            "[::1]:",
            "[not-v6]:80",
            &"a".repeat(64),
            &format!("{}.com", "a.".repeat(130)),
        ] {
            assert!(!is_authority(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_origin_comes_from_the_public_url_or_a_valid_host() {
        let h = headers(&[
            ("host", b"evil.example/phish?x="),
            ("x-forwarded-proto", b"gopher"),
        ]);
        assert_eq!(
            origin(Some("https://registry.example.com"), &h).expect("configured"),
            Some("https://registry.example.com".to_string())
        );
        assert_eq!(origin(None, &HeaderMap::new()).expect("no host"), None);
        let h = headers(&[("host", b"Registry.example:8080")]);
        assert_eq!(
            origin(None, &h).expect("host"),
            Some("http://registry.example:8080".to_string())
        );
        for proto in [&b"https"[..], b"HTTPS", b"http"] {
            let h = headers(&[("host", b"r.example"), ("x-forwarded-proto", proto)]);
            let scheme = String::from_utf8_lossy(proto).to_ascii_lowercase();
            assert_eq!(
                origin(None, &h).expect("proto"),
                Some(format!("{scheme}://r.example"))
            );
        }
    }

    #[test]
    fn a_bad_host_or_forwarded_proto_is_a_400() {
        for host in [&b"evil.example/phish?x="[..], b"", b"\xffhost", b"a b"] {
            let err = origin(None, &headers(&[("host", host)])).expect_err("bad host");
            assert_eq!(
                (err.status, err.code),
                (StatusCode::BAD_REQUEST, "invalid_host")
            );
        }
        for proto in [&b"gopher"[..], b"", b"https, http", b"javascript"] {
            let h = headers(&[("host", b"r.example"), ("x-forwarded-proto", proto)]);
            let err = origin(None, &h).expect_err("bad proto");
            assert_eq!(
                (err.status, err.code),
                (StatusCode::BAD_REQUEST, "invalid_forwarded_proto")
            );
        }
    }
}
