//! Header blocks: httparse on a borrowed buffer -> the owned facts an exchange keeps.
//!
//! Privacy: only allowlisted values leave this module (Host, the Content-Type media type,
//! Content-Encoding, the Upgrade token, traceparent ids); every other header by name only.

use super::route;

/// Headers accepted in one block; more is treated as malformed.
const MAX_HEADERS: usize = 128;

/// What a request or status line and its headers tell us.
#[derive(Clone, Debug, Default)]
pub(crate) struct Head {
    /// Request/status line, headers and the final empty line.
    pub len: usize,
    /// Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    pub method: Option<String>,
    pub route: Option<String>,
    pub status: u16,
    pub names: String,
    pub host: Option<String>,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_length: Option<u64>,
    /// A Transfer-Encoding header was present.
    pub te: bool,
    /// ... and its last coding is chunked.
    pub chunked: bool,
    pub conn_close: bool,
    pub conn_keep_alive: bool,
    pub upgrade: Option<String>,
    pub expect_continue: bool,
    pub trace: Option<(String, String)>,
}

impl Head {
    pub(crate) fn version(&self) -> &'static str {
        if self.minor == 0 {
            "HTTP/1.0"
        } else {
            "HTTP/1.1"
        }
    }
}

// Returned once per message and consumed at once: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Parsed {
    Complete(Head),
    Partial,
    Malformed,
}

fn config() -> httparse::ParserConfig {
    let mut c = httparse::ParserConfig::default();
    // Be as lenient as real servers and clients are: we observe, we do not enforce.
    c.allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .allow_multiple_spaces_in_request_line_delimiters(true)
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .ignore_invalid_headers_in_requests(true)
        .ignore_invalid_headers_in_responses(true);
    c
}

pub(crate) fn parse_request(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match config().parse_request(&mut req, buf) {
        Ok(httparse::Status::Complete(len)) => {
            let mut h = Head {
                len,
                minor: req.version.unwrap_or(1),
                method: req.method.map(str::to_owned),
                route: req.path.map(route::template),
                ..Head::default()
            };
            if fill(&mut h, req.headers).is_err() {
                return Parsed::Malformed;
            }
            Parsed::Complete(h)
        }
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(_) => Parsed::Malformed,
    }
}

pub(crate) fn parse_response(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    match config().parse_response(&mut resp, buf) {
        Ok(httparse::Status::Complete(len)) => {
            let mut h = Head {
                len,
                minor: resp.version.unwrap_or(1),
                status: resp.code.unwrap_or(0),
                ..Head::default()
            };
            if fill(&mut h, resp.headers).is_err() {
                return Parsed::Malformed;
            }
            Parsed::Complete(h)
        }
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(_) => Parsed::Malformed,
    }
}

/// Method, route and version of a request whose header block never completed (gap or end of
/// capture), as far as the request line got.
pub(crate) fn partial_request_line(buf: &[u8]) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let _ = config().parse_request(&mut req, buf);
    Head {
        len: buf.len(),
        minor: req.version.unwrap_or(1),
        method: req.method.map(str::to_owned),
        route: req.path.map(route::template),
        ..Head::default()
    }
}

struct BadHeader;

fn fill(h: &mut Head, headers: &[httparse::Header<'_>]) -> Result<(), BadHeader> {
    h.names.reserve(headers.len() * 12);
    for hd in headers {
        if !h.names.is_empty() {
            h.names.push(',');
        }
        for c in hd.name.chars() {
            h.names.push(c.to_ascii_lowercase());
        }
        let name = hd.name;
        let value = String::from_utf8_lossy(hd.value);
        let value = value.trim();
        if name.eq_ignore_ascii_case("host") {
            h.host.get_or_insert_with(|| value.to_owned());
        } else if name.eq_ignore_ascii_case("content-type") {
            let media = value.split(';').next().unwrap_or("").trim();
            h.content_type
                .get_or_insert_with(|| media.to_ascii_lowercase());
        } else if name.eq_ignore_ascii_case("content-encoding") {
            join(&mut h.content_encoding, value);
        } else if name.eq_ignore_ascii_case("content-length") {
            for v in value.split(',') {
                let n = parse_len(v.trim()).ok_or(BadHeader)?;
                if h.content_length.is_some_and(|old| old != n) {
                    return Err(BadHeader);
                }
                h.content_length = Some(n);
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            h.te = true;
            // Later headers append codings: only the last one seen decides.
            if let Some(last) = value.rsplit(',').map(str::trim).find(|t| !t.is_empty()) {
                h.chunked = last.eq_ignore_ascii_case("chunked");
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for t in value.split(',').map(str::trim) {
                if t.eq_ignore_ascii_case("close") {
                    h.conn_close = true;
                } else if t.eq_ignore_ascii_case("keep-alive") {
                    h.conn_keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("upgrade") {
            let first = value.split(',').next().unwrap_or("").trim();
            // Keep the protocol name only (`websocket`, `h2c`), not a version suffix.
            let token = first.split('/').next().unwrap_or("").trim();
            if !token.is_empty() {
                h.upgrade.get_or_insert_with(|| token.to_ascii_lowercase());
            }
        } else if name.eq_ignore_ascii_case("expect") {
            h.expect_continue |= value.eq_ignore_ascii_case("100-continue");
        } else if name.eq_ignore_ascii_case("traceparent") && h.trace.is_none() {
            h.trace = traceparent(value);
        }
    }
    Ok(())
}

fn join(slot: &mut Option<String>, value: &str) {
    match slot {
        Some(s) => {
            s.push_str(", ");
            s.push_str(value);
        }
        None => *slot = Some(value.to_owned()),
    }
}

fn parse_len(v: &str) -> Option<u64> {
    if v.is_empty() || !v.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// W3C Trace Context `traceparent`: `version-traceid-parentid-flags`, lower-case hex.
/// Version ff is invalid; all-zero ids are invalid; later versions may append `-fields`.
pub(crate) fn traceparent(v: &str) -> Option<(String, String)> {
    let b = v.as_bytes();
    let lower_hex = |s: &[u8]| s.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    if b.len() < 55 || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
        return None;
    }
    let (ver, trace, parent, flags) = (&b[..2], &b[3..35], &b[36..52], &b[53..55]);
    if !(lower_hex(ver) && lower_hex(trace) && lower_hex(parent) && lower_hex(flags)) {
        return None;
    }
    if ver == b"ff" || (ver == b"00" && b.len() != 55) || (b.len() > 55 && b[55] != b'-') {
        return None;
    }
    let zero = |s: &[u8]| s.iter().all(|&c| c == b'0');
    if zero(trace) || zero(parent) {
        return None;
    }
    Some((v[3..35].to_owned(), v[36..52].to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(b: &[u8]) -> Head {
        match parse_request(b) {
            Parsed::Complete(h) => h,
            _ => panic!("not complete"),
        }
    }

    #[test]
    fn request_facts() {
        let b = b"POST /api/users/42?session=s3cr3t HTTP/1.1\r\nHost: svc.local:8080\r\n\
Content-Type: application/json; charset=utf-8\r\nContent-Length: 12\r\nX-Custom: v\r\n\
Content-Encoding: gzip\r\nCookie: id=abc\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\nbody";
        let h = req(b);
        assert_eq!(h.len, b.len() - 4);
        assert_eq!(h.method.as_deref(), Some("POST"));
        assert_eq!(h.route.as_deref(), Some("/api/users/{id}"));
        assert_eq!(h.host.as_deref(), Some("svc.local:8080"));
        assert_eq!(h.content_type.as_deref(), Some("application/json"));
        assert_eq!(h.content_encoding.as_deref(), Some("gzip"));
        assert_eq!(h.content_length, Some(12));
        assert_eq!(
            h.names,
            "host,content-type,content-length,x-custom,content-encoding,cookie,traceparent"
        );
        let (t, p) = h.trace.unwrap();
        assert_eq!(t, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(p, "00f067aa0ba902b7");
        assert_eq!(h.minor, 1);
    }

    #[test]
    fn conflicting_lengths_are_malformed() {
        assert!(matches!(
            parse_request(b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Parsed::Malformed
        ));
        assert_eq!(
            req(b"GET / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\n").content_length,
            Some(3)
        );
        assert!(matches!(
            parse_request(b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
            Parsed::Malformed
        ));
    }

    #[test]
    fn traceparent_validation() {
        let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert!(traceparent(ok).is_some());
        assert!(traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_none());
        assert!(traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01").is_none());
        assert!(traceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01").is_none());
        assert!(traceparent("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").is_none());
        assert!(traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x").is_none());
        assert!(traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x").is_some());
        assert!(traceparent("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01").is_none());
        assert!(traceparent("").is_none());
    }

    #[test]
    fn response_and_partial_line() {
        let Parsed::Complete(h) = parse_response(
            b"HTTP/1.0 101 Switching\r\nUpgrade: WebSocket\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        ) else {
            panic!()
        };
        assert_eq!((h.status, h.minor), (101, 0));
        assert_eq!(h.upgrade.as_deref(), Some("websocket"));
        assert!(h.te && h.chunked);
        assert!(matches!(
            parse_response(b"HTTP/1.1 200 OK\r\nA: b\r\n"),
            Parsed::Partial
        ));
        let p = partial_request_line(b"DELETE /x/12345?k=v HTTP/1.0\r\nHost: a\r\n");
        assert_eq!(p.method.as_deref(), Some("DELETE"));
        assert_eq!(p.route.as_deref(), Some("/x/{id}"));
        assert_eq!(p.minor, 0);
    }
}
