//! Header blocks: httparse on a borrowed buffer -> the owned facts an exchange keeps.
//!
//! Privacy: only allowlisted values leave this module (Host, the Content-Type media type,
//! Content-Encoding, the Upgrade token, traceparent ids); every other header by name only.

use super::trace::TraceHeaders;
use super::{detect, route};
use crate::ingest::h2cost::{self, HeadCost, Replay};

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
    /// The query's parameter names (`route::query_names`), never its values.
    pub query_names: Option<String>,
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
    /// Trace id (32 hex digits) and the caller's span id (16 hex), from W3C `traceparent`,
    /// else B3 (`b3`, or `X-B3-TraceId` with `X-B3-SpanId`), else `X-Request-Id` (a trace
    /// id only: the same id on a request and the calls made for it).
    pub trace: Option<(String, Option<String>)>,
    /// httparse rejected the request line; [`lenient_request`] read it (counted malformed).
    pub odd_line: bool,
    /// Sizes of this block as HTTP/2 and gRPC, from the connection's HPACK replay while
    /// the values were in hand; None without a replay or for a lenient request line.
    pub cost: Option<HeadCost>,
    /// The `grpc-*` headers (gRPC-Web), when any came.
    pub grpc: Option<Box<super::grpc_web::GrpcHead>>,
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

#[cfg(test)]
pub(crate) fn parse_request(buf: &[u8]) -> Parsed {
    parse_request_costed(buf, None)
}

/// A request head; a complete one is also replayed through `replay` (see `h2cost`).
pub(crate) fn parse_request_costed(buf: &[u8], replay: Option<&mut Replay>) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match config().parse_request(&mut req, buf) {
        Ok(httparse::Status::Complete(len)) => {
            let mut h = Head {
                len,
                minor: req.version.unwrap_or(1),
                method: req.method.map(str::to_owned),
                route: req.path.map(route::template),
                query_names: req.path.and_then(route::query_names),
                ..Head::default()
            };
            if fill(&mut h, req.headers).is_err() {
                return Parsed::Malformed;
            }
            if let (Some(r), Some(method), Some(target)) = (replay, req.method, req.path) {
                h.cost = r.request(&h2cost::Request {
                    method,
                    target,
                    route: h.route.as_deref(),
                    headers: req.headers,
                });
            }
            Parsed::Complete(h)
        }
        // httparse stops at the first byte it rejects: what it has seen so far is acceptable.
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(_) => match first_line(buf) {
            // The line is fine, a header is not.
            Some(line) if !line_rejected(line) => Parsed::Malformed,
            _ => lenient_request(buf),
        },
    }
}

/// The first line of `buf` without its line end, once it is complete.
fn first_line(buf: &[u8]) -> Option<&[u8]> {
    let nl = memchr::memchr(b'\n', buf)?;
    let line = &buf[..nl];
    Some(line.strip_suffix(b"\r").unwrap_or(line))
}

/// Whether httparse rejects `line` as a request line on its own (an empty header block after
/// it), as opposed to rejecting a header further on.
fn line_rejected(line: &[u8]) -> bool {
    // Copied to add the block end; only on the malformed path, bounded by the header cap.
    let mut b = Vec::with_capacity(line.len() + 4);
    b.extend_from_slice(line);
    b.extend_from_slice(b"\r\n\r\n");
    let mut req = httparse::Request::new(&mut []);
    config().parse_request(&mut req, &b).is_err()
}

/// Longest method token the lenient reader accepts (tshark's longest is 16 bytes).
const MAX_METHOD: usize = 32;

/// Method tokens as tshark recognises them: an upper-case letter, then upper-case letters,
/// digits, `-` and `_` (`CCM_POST`, `VERSION-CONTROL`, `M-SEARCH`).
fn is_odd_method(m: &[u8]) -> bool {
    m.first().is_some_and(u8::is_ascii_uppercase)
        && m.len() <= MAX_METHOD
        && m.iter()
            .all(|&c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'-' || c == b'_')
}

/// Visible bytes (and non-ASCII ones, as httparse allows in a target).
fn is_target_byte(c: u8) -> bool {
    c > b' ' && c != 0x7f
}

/// A request line httparse rejects but a server still answered, as seen in the wild
/// (zeek's methods.pcap): `METHOD SP target? (SP version)?`, where a missing space before
/// the version (`GET /HTTP/1.1`) and a missing target (`OPTIONS HTTP/1.1`, `OPTIONS`) are
/// accepted too. Without a version and with no header line after it, the request ends at its
/// line (HTTP/0.9 style); otherwise its header block runs to the blank line.
///
/// Hand-written: httparse has no lenient request-line mode, and no crate reads these forms.
pub(crate) fn lenient_request(buf: &[u8]) -> Parsed {
    let Some(line) = first_line(buf) else {
        // httparse rejects a line's CR before its LF has come (`GET /\r`), and a version or
        // target it cannot read before the line is whole (`GET /a HTTP/x`, which the
        // lenient grammar may still read as `/a HTTP/x...` once ` HTTP/1.1` follows): wait
        // for the line end whenever the bytes so far could still become a lenient line, so
        // that a head cut anywhere reads as the whole head does.
        let line = buf.strip_suffix(b"\r").unwrap_or(buf);
        return if lenient_line(line).is_some() || lenient_prefix(line) {
            Parsed::Partial
        } else {
            Parsed::Malformed
        };
    };
    let Some((mut h, versioned)) = odd_head(line, buf) else {
        return Parsed::Malformed;
    };
    let rest = buf.get(h.len..).unwrap_or_default();
    if !versioned {
        if rest.is_empty() {
            return Parsed::Complete(h);
        }
        // An empty header block belongs to this request.
        for end in [&b"\r\n"[..], b"\n"] {
            if rest.starts_with(end) {
                h.len += end.len();
                return Parsed::Complete(h);
            }
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::parse_headers(rest, &mut headers) {
        Ok(httparse::Status::Complete((n, hs))) => {
            h.len += n;
            if fill(&mut h, hs).is_err() {
                return Parsed::Malformed;
            }
            Parsed::Complete(h)
        }
        Ok(httparse::Status::Partial) => Parsed::Partial,
        // No header block follows a version-less line: the request was the line alone.
        Err(_) if !versioned => Parsed::Complete(h),
        Err(_) => Parsed::Malformed,
    }
}

/// The head of a lenient request `line` (the first line of `buf`) up to its line end, and
/// whether a version was written (then a header block follows).
fn odd_head(line: &[u8], buf: &[u8]) -> Option<(Head, bool)> {
    let rl = lenient_line(line)?;
    // `first_line` found the '\n' right after the line or after its '\r'.
    let len = line.len() + 1 + usize::from(buf.get(line.len()) == Some(&b'\r'));
    let h = Head {
        len,
        minor: rl.minor,
        method: Some(String::from_utf8_lossy(rl.method).into_owned()),
        route: rl
            .target
            .map(|t| route::template(&String::from_utf8_lossy(t))),
        query_names: rl
            .target
            .and_then(|t| route::query_names(&String::from_utf8_lossy(t))),
        odd_line: true,
        ..Head::default()
    };
    Some((h, rl.versioned))
}

/// What a lenient request line holds.
struct OddLine<'a> {
    method: &'a [u8],
    target: Option<&'a [u8]>,
    /// A version was written (however oddly); a header block follows.
    versioned: bool,
    minor: u8,
}

/// Whether an unfinished request line could still become one [`lenient_line`] accepts:
/// a method, then nothing but target bytes in the parts it reads.
fn lenient_prefix(line: &[u8]) -> bool {
    let mut parts = line.split(|&c| c == b' ').filter(|p| !p.is_empty());
    let Some(method) = parts.next() else {
        return false;
    };
    line.starts_with(method)
        && is_odd_method(method)
        && parts.take(8).all(|p| p.iter().all(|&c| is_target_byte(c)))
}

fn lenient_line(line: &[u8]) -> Option<OddLine<'_>> {
    let mut parts = line.split(|&c| c == b' ').filter(|p| !p.is_empty());
    let method = parts.next()?;
    // The method starts the line, and nothing but spaces separates the parts.
    if !line.starts_with(method) || !is_odd_method(method) {
        return None;
    }
    let rest: Vec<&[u8]> = parts.take(8).collect();
    if !rest.iter().all(|p| p.iter().all(|&c| is_target_byte(c))) {
        return None;
    }
    let is_version = |p: &[u8]| p.starts_with(b"HTTP/");
    // Other line protocols also start with an upper-case word (`STAT 2071 4547\n`): a target
    // must look like one, and a bare word must be a well-known method.
    let (target, version) = match rest.as_slice() {
        [] if detect::is_known_method(method) => (None, None),
        [] => return None,
        [v] if is_version(v) => (None, Some(*v)),
        // `GET /HTTP/1.1`: the space before the version is missing.
        [t] => match glued_version(t) {
            Some(i) => (Some(&t[..i]), Some(&t[i..])),
            None => (Some(*t), None),
        },
        [t, .., v] if is_version(v) => (Some(*t), Some(*v)),
        _ => return None,
    };
    if target.is_some_and(|t| !is_routable(t)) {
        return None;
    }
    Some(OddLine {
        method,
        target,
        versioned: version.is_some(),
        // No version or an unreadable one: 1.0 is the nearest one a record can hold.
        minor: u8::from(version == Some(b"HTTP/1.1")),
    })
}

/// Where a version glued to the end of a target starts (`/HTTP/1.1` -> 1).
fn glued_version(t: &[u8]) -> Option<usize> {
    [&b"HTTP/1.1"[..], b"HTTP/1.0"].iter().find_map(|v| {
        let i = t.len().checked_sub(v.len())?;
        (i > 0 && t.ends_with(v) && t[i - 1] == b'/').then_some(i)
    })
}

/// Origin form, `*`, or absolute form: a target a route can be made of.
fn is_routable(t: &[u8]) -> bool {
    t.starts_with(b"/")
        || t == b"*"
        || t.windows(3).position(|w| w == b"://").is_some_and(|i| {
            i > 0
                && t[..i]
                    .iter()
                    .all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(c))
        })
}

#[cfg(test)]
pub(crate) fn parse_response(buf: &[u8]) -> Parsed {
    parse_response_costed(buf, None)
}

/// A response head; a complete one is also replayed through `replay` (see `h2cost`).
pub(crate) fn parse_response_costed(buf: &[u8], replay: Option<&mut Replay>) -> Parsed {
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
            if let Some(r) = replay {
                h.cost = r.response(&h2cost::Response {
                    status: h.status,
                    reason: resp.reason.unwrap_or(""),
                    headers: resp.headers,
                });
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
    if config().parse_request(&mut req, buf).is_err() {
        if let Some((h, _)) = first_line(buf).and_then(|l| odd_head(l, buf)) {
            return Head {
                len: buf.len(),
                ..h
            };
        }
    }
    Head {
        len: buf.len(),
        minor: req.version.unwrap_or(1),
        method: req.method.map(str::to_owned),
        route: req.path.map(route::template),
        query_names: req.path.and_then(route::query_names),
        ..Head::default()
    }
}

struct BadHeader;

fn fill(h: &mut Head, headers: &[httparse::Header<'_>]) -> Result<(), BadHeader> {
    h.names.reserve(headers.len() * 12);
    let mut ids = TraceHeaders::default();
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
        } else if name.len() > 5 && name.as_bytes()[..5].eq_ignore_ascii_case(b"grpc-") {
            super::grpc_web::head_field(&mut h.grpc, name, value);
        } else {
            ids.offer(name, value);
        }
    }
    h.trace = ids.finish();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::http::trace::traceparent;

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
        let p = p.unwrap();
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
    fn b3_and_request_ids_stand_in_for_traceparent_in_that_order() {
        let ids = |headers: &str| {
            let raw = format!("GET / HTTP/1.1\r\nHost: a\r\n{headers}\r\n");
            req(raw.as_bytes()).trace
        };
        // B3 single header: 64-bit trace ids are zero-extended.
        assert_eq!(
            ids("b3: 80f198ee56343ba8-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90\r\n"),
            Some((
                "000000000000000080f198ee56343ba8".into(),
                Some("e457b5a2e4d86bd1".into())
            ))
        );
        // Multi-header B3 needs both ids, in any order.
        assert_eq!(
            ids("X-B3-SpanId: e457b5a2e4d86bd1\r\nX-B3-TraceId: 463ac35c9f6413ad48485a3953bb6124\r\n"),
            Some((
                "463ac35c9f6413ad48485a3953bb6124".into(),
                Some("e457b5a2e4d86bd1".into())
            ))
        );
        assert_eq!(
            ids("X-B3-TraceId: 463ac35c9f6413ad48485a3953bb6124\r\n"),
            None
        );
        assert_eq!(ids("b3: 1\r\n"), None);
        // traceparent wins over B3, B3 over X-Request-Id.
        let both = "X-Request-Id: 7f0c1d2e-aaaa-bbbb-cccc-0123456789ab\r\nb3: 80f198ee56343ba8-e457b5a2e4d86bd1\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n";
        assert_eq!(ids(both).unwrap().0, "4bf92f3577b34da6a3ce929d0e0e4736");
        // A UUID request id is its own trace id; anything else is hashed, never kept.
        assert_eq!(
            ids("X-Request-Id: 7F0C1D2E-AAAA-BBBB-CCCC-0123456789AB\r\n"),
            Some(("7f0c1d2eaaaabbbbcccc0123456789ab".into(), None))
        );
        let (t, p) = ids("X-Request-Id: req-42-secretish\r\n").unwrap();
        assert_eq!((t.len(), p), (32, None));
        assert!(!t.contains("req"));
        assert_eq!(ids("X-Request-Id: req-42-secretish\r\n").unwrap().0, t);
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

    /// The request of `b` read by the lenient fallback: (method, route, minor, len).
    fn odd(b: &[u8]) -> (String, Option<String>, u8, usize) {
        match parse_request(b) {
            Parsed::Complete(h) => {
                assert!(
                    h.odd_line,
                    "{:?} went through httparse",
                    String::from_utf8_lossy(b)
                );
                (h.method.unwrap_or_default(), h.route, h.minor, h.len)
            }
            _ => panic!("{:?} not complete", String::from_utf8_lossy(b)),
        }
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_owned())
    }

    // The request lines of zeek's testing/btest/Traces/http/methods.pcap that tshark counts
    // and httparse rejects (LF line ends, as sent there), plus CRLF and HTTP/0.9 forms.
    #[test]
    fn every_prefix_of_a_leniently_read_head_waits_for_more() {
        // httparse rejects the line at `HTTP/c`; the lenient reader takes the last
        // ` HTTP/1.1` as the version once the line is whole.
        let b = b"GET /a HTTP/c.internal:8071?GET /b HTTP/1.1\r\nHost: a\r\n\r\n";
        assert!(matches!(parse_request_costed(b, None), Parsed::Complete(h) if h.len == b.len()));
        for k in 1..b.len() {
            assert!(
                matches!(parse_request_costed(&b[..k], None), Parsed::Partial),
                "prefix of {k} bytes"
            );
        }
    }

    #[test]
    fn lenient_request_line_forms() {
        let b = b"OPTIONS HTTP/1.1\nHost: www.google.com\n\n";
        assert_eq!(odd(b), ("OPTIONS".into(), None, 1, b.len()));
        let b = b"OPTIONS\nHost: www.google.com\n\n";
        assert_eq!(odd(b), ("OPTIONS".into(), None, 0, b.len()));
        let b = b"GET / HTTP/1.\nHost: www.google.com\n\n";
        assert_eq!(odd(b), ("GET".into(), some("/"), 0, b.len()));
        let b = b"CCM_POST /HTTP/1.1\nHost: www.google.com\n\n";
        assert_eq!(odd(b), ("CCM_POST".into(), some("/"), 1, b.len()));
        let b = b"DELETE /a/HTTP/1.0\r\nHost: x\r\n\r\n";
        assert_eq!(odd(b), ("DELETE".into(), some("/a/"), 0, b.len()));
        // HTTP/0.9: no version, the request is its line; what follows is the next message.
        assert_eq!(odd(b"GET /\r\n"), ("GET".into(), some("/"), 0, 7));
        assert_eq!(
            odd(b"GET /x/42\nGET / HTTP/1.1\r\n"),
            ("GET".into(), some("/x/{id}"), 0, 10)
        );
        // ... an empty header block after it belongs to it.
        assert_eq!(odd(b"OPTIONS\r\n\r\n"), ("OPTIONS".into(), None, 0, 11));
        // Absolute form and `*` keep a route; the query and the authority never do.
        let b = b"GET http://u:pw@h/orders/7?k=secret HTTP/9.9\r\n\r\n";
        assert_eq!(odd(b), ("GET".into(), some("/orders/{id}"), 0, b.len()));
        let b = b"OPTIONS * HTTP/2\r\n\r\n";
        assert_eq!(odd(b), ("OPTIONS".into(), some("*"), 0, b.len()));
    }

    #[test]
    fn lenient_request_keeps_allowlisted_headers_only() {
        let b = b"PUT /HTTP/1.1\r\nHost: svc\r\nContent-Length: 4\r\nCookie: s3cr3t\r\n\r\nbody";
        let Parsed::Complete(h) = parse_request(b) else {
            panic!()
        };
        assert!(h.odd_line);
        assert_eq!(h.len, b.len() - 4);
        assert_eq!(h.host.as_deref(), Some("svc"));
        assert_eq!(h.content_length, Some(4));
        assert_eq!(h.names, "host,content-length,cookie");
        assert!(!format!("{h:?}").contains("s3cr3t"));
    }

    #[test]
    fn lenient_request_waits_for_its_header_block() {
        // A version (or a header line) after the line: the block must end first.
        assert!(matches!(
            parse_request(b"GET /HTTP/1.1\r\n"),
            Parsed::Partial
        ));
        assert!(matches!(
            parse_request(b"OPTIONS\r\nHost: a\r\n"),
            Parsed::Partial
        ));
        // An unfinished line is httparse's Partial as long as it accepts it.
        assert!(matches!(parse_request(b"GET /"), Parsed::Partial));
        assert!(matches!(parse_request(b"GET /\r"), Parsed::Partial));
        assert!(matches!(parse_request(b"GET/\r"), Parsed::Malformed));
        // A version-less line followed by what is no header: the line alone.
        assert_eq!(
            odd(b"GET /\r\n\x01\x02\r\n"),
            ("GET".into(), some("/"), 0, 7)
        );
    }

    #[test]
    fn lenient_reader_rejects_what_tshark_does_not_count() {
        for b in [
            // zeek's methods.pcap: a method glued to the target or version, or not ASCII.
            &b"OPTIONSHTTP/1.1\nHost: www.google.com\n\n"[..],
            b"GET/ HTTP/1.1\nHost: www.google.com\n\n",
            b"GET/HTTP/1.1\nHost: www.google.com\n\n",
            b"\xc3\x83\xc3\x82\xc3\x83 / HTTP/1.\nHost: www.google.com\n\n",
            b"\xc3\x83\xc3\x82\xc3\x83/HTTP/1.1\nHost: www.google.com\n\n",
            // Other line protocols and junk.
            b"STAT 20712282 4547426\n",
            b"PING\r\n",
            b"get\r\n",
            b" GET / HTTP/1.1\r\n\r\n",
            b"GET /a\x01 HTTP/1.1\r\n\r\n",
            b"GET /a b c\r\n\r\n",
            b"GET / HTTP/1.1 \x01\r\n\r\n",
        ] {
            assert!(
                matches!(parse_request(b), Parsed::Malformed),
                "{:?}",
                String::from_utf8_lossy(b)
            );
        }
        // A sound request line with a bad header is not read leniently.
        assert!(matches!(
            parse_request(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
            Parsed::Malformed
        ));
    }

    #[test]
    fn partial_odd_line_keeps_method_and_route() {
        let p = partial_request_line(b"PATCH /v/77/HTTP/1.1\nHost: a\n");
        assert_eq!(p.method.as_deref(), Some("PATCH"));
        assert_eq!(p.route.as_deref(), Some("/v/{id}/"));
        assert!(p.odd_line);
        let p = partial_request_line(b"OPTIONS\nHo");
        assert_eq!((p.method.as_deref(), p.route), (Some("OPTIONS"), None));
    }
}
