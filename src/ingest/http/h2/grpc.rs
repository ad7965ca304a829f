//! gRPC on HTTP/2 DATA (and gRPC-Web on HTTP/1.1 bodies): length-prefixed messages,
//! `grpc-timeout`, the status codes, the call kind.
//!
//! A message is a 1-byte flag (bit 0: compressed; gRPC-Web bit 7: a trailers frame), a
//! 4-byte big-endian length and that many bytes (gRPC over HTTP/2 protocol spec,
//! "Length-Prefixed-Message"). Message bytes are counted, never kept; only a gRPC-Web
//! trailers frame is read (bounded) for its `grpc-status`.

use crate::model::GrpcExchange;

/// Bytes of a gRPC-Web trailers frame kept to read `grpc-status` from it.
const MAX_WEB_TRAILERS: usize = 1024;

enum State {
    /// Reading the 5-byte prefix; `n` bytes of it so far.
    Prefix { buf: [u8; 5], n: usize },
    /// Inside a message (or gRPC-Web trailers frame) with `rem` bytes to go; `len` and
    /// `compressed` are counted when it ends (as tshark counts a message once whole).
    Body {
        rem: u32,
        len: u32,
        compressed: bool,
        trailers: bool,
    },
    /// A gap cut a prefix: message boundaries are lost for the rest of this direction.
    Lost,
}

/// The messages of one direction of one call.
pub(crate) struct MessageReader {
    state: State,
    /// gRPC-Web: a prefix flag with bit 7 opens a trailers frame.
    web: bool,
    pub messages: u32,
    pub bytes: u64,
    pub compressed: u32,
    /// The bytes of a gRPC-Web trailers frame (at most `MAX_WEB_TRAILERS`).
    web_trailers: Option<Vec<u8>>,
    /// A gap fell inside this direction's messages.
    pub lost: bool,
}

impl MessageReader {
    pub(crate) fn new(web: bool) -> Self {
        MessageReader {
            state: State::Prefix { buf: [0; 5], n: 0 },
            web,
            messages: 0,
            bytes: 0,
            compressed: 0,
            web_trailers: None,
            lost: false,
        }
    }

    /// Message bytes of this direction, in order.
    pub(crate) fn feed(&mut self, mut b: &[u8]) {
        // Each pass consumes at least one byte or ends.
        while !b.is_empty() {
            match &mut self.state {
                State::Lost => return,
                State::Prefix { buf, n } => {
                    let k = (5 - *n).min(b.len());
                    buf[*n..*n + k].copy_from_slice(&b[..k]);
                    *n += k;
                    b = &b[k..];
                    if *n == 5 {
                        let flag = buf[0];
                        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
                        let trailers = self.web && flag & 0x80 != 0;
                        if trailers {
                            self.web_trailers = Some(Vec::new());
                        }
                        self.state = State::Body {
                            rem: len,
                            len,
                            compressed: flag & 1 != 0,
                            trailers,
                        };
                        self.message_end();
                    }
                }
                State::Body { rem, trailers, .. } => {
                    let k = (*rem as usize).min(b.len());
                    if *trailers {
                        if let Some(t) = &mut self.web_trailers {
                            let room = MAX_WEB_TRAILERS.saturating_sub(t.len()).min(k);
                            t.extend_from_slice(&b[..room]);
                        }
                    }
                    *rem -= k as u32;
                    b = &b[k..];
                    self.message_end();
                }
            }
        }
    }

    /// A message (or trailers frame) whose bytes have all come is counted, and the next
    /// prefix is awaited.
    fn message_end(&mut self) {
        if let State::Body {
            rem: 0,
            len,
            compressed,
            trailers,
        } = self.state
        {
            if !trailers {
                self.messages = self.messages.saturating_add(1);
                self.bytes = self.bytes.saturating_add(u64::from(len));
                self.compressed = self.compressed.saturating_add(u32::from(compressed));
            }
            self.state = State::Prefix { buf: [0; 5], n: 0 };
        }
    }

    /// `n` bytes of this direction were not captured: a message they fall inside still
    /// counts; one whose prefix they cut loses the boundaries for good.
    pub(crate) fn lose(&mut self, n: u64) {
        self.lost = true;
        match &mut self.state {
            State::Body { rem, .. } if n <= u64::from(*rem) => {
                *rem -= n as u32;
                self.message_end();
            }
            _ => self.state = State::Lost,
        }
    }

    /// `grpc-status` and whether a non-empty `grpc-message` was in a gRPC-Web trailers
    /// frame (`name: value` lines).
    pub(crate) fn web_status(&self) -> (Option<u32>, bool) {
        let Some(t) = &self.web_trailers else {
            return (None, false);
        };
        let (mut status, mut message) = (None, false);
        for line in t.split(|&c| c == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(colon) = line.iter().position(|&c| c == b':') else {
                continue;
            };
            let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
            if name.eq_ignore_ascii_case(b"grpc-status") {
                status = parse_status(value);
            } else if name.eq_ignore_ascii_case(b"grpc-message") {
                message |= !value.is_empty();
            }
        }
        (status, message)
    }
}

/// A `grpc-status` value: 1 to 3 digits.
pub(crate) fn parse_status(v: &[u8]) -> Option<u32> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 3 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// `grpc-timeout`: 1 to 8 digits and a unit (H, M, S, m, u, n), as nanoseconds.
pub(crate) fn parse_timeout(v: &[u8]) -> Option<i64> {
    let v = v.trim_ascii();
    let (&unit, digits) = v.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: i64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    let ns_per = match unit {
        b'H' => 3_600_000_000_000,
        b'M' => 60_000_000_000,
        b'S' => 1_000_000_000,
        b'm' => 1_000_000,
        b'u' => 1_000,
        b'n' => 1,
        _ => return None,
    };
    // 99999999H is past i64 nanoseconds: such a deadline is as good as none.
    Some(n.saturating_mul(ns_per))
}

/// A `grpc-encoding` token: lower-cased, kept only when it looks like a coding name
/// (letters, digits, `-`, `_`, `.`, at most 32), so no free text reaches a table.
pub(crate) fn encoding_token(v: &[u8]) -> Option<String> {
    let v = v.trim_ascii();
    let ok = !v.is_empty()
        && v.len() <= 32
        && v.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    ok.then(|| String::from_utf8_lossy(v).to_ascii_lowercase())
}

/// The content types of gRPC over HTTP/2 (`application/grpc`, `application/grpc+proto`,
/// ...): `Some(false)`; of gRPC-Web (`application/grpc-web`, `+proto`, `+json`, and the
/// base64 `-text` forms): `Some(true)`; else `None`.
pub(crate) fn content_kind(media_type: &str) -> Option<bool> {
    let t = media_type.trim();
    let web = |rest: &str| rest.is_empty() || rest.starts_with('+');
    if let Some(rest) = t.strip_prefix("application/grpc-web-text") {
        web(rest).then_some(true)
    } else if let Some(rest) = t.strip_prefix("application/grpc-web") {
        web(rest).then_some(true)
    } else if let Some(rest) = t.strip_prefix("application/grpc") {
        web(rest).then_some(false)
    } else {
        None
    }
}

/// The call kind from the messages each side sent: at most one each way is unary (a
/// bidirectional call that sent one each way looks the same on the wire).
pub(crate) fn call_kind(g: &GrpcExchange) -> &'static str {
    match (g.req_messages > 1, g.resp_messages > 1) {
        (false, false) => "unary",
        (false, true) => "server_streaming",
        (true, false) => "client_streaming",
        (true, true) => "bidi_streaming",
    }
}

/// gRPC status codes by name (grpc/doc/statuscodes.md).
pub fn status_name(code: u32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN_CODE",
    }
}

/// The HTTP status a gRPC status stands for, as grpc-gateway maps them
/// (`runtime.HTTPStatusFromCode`): how the link measures count a failed call.
pub fn http_status_of(code: u32) -> u32 {
    match code {
        0 => 200,
        1 => 499,
        3 | 9 | 11 => 400,
        4 => 504,
        5 => 404,
        6 | 10 => 409,
        7 => 403,
        8 => 429,
        12 => 501,
        14 => 503,
        16 => 401,
        _ => 500,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(flag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![flag];
        v.extend_from_slice(&(body.len() as u32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn a_message_counts_once_whole() {
        let mut r = MessageReader::new(false);
        let m = msg(1, &[9; 40]);
        r.feed(&m[..30]);
        assert_eq!((r.messages, r.bytes, r.compressed), (0, 0, 0));
        r.feed(&m[30..]);
        assert_eq!((r.messages, r.bytes, r.compressed), (1, 40, 1));
    }

    #[test]
    fn messages_are_counted_across_any_split() {
        let mut all = msg(0, b"hello");
        all.extend(msg(1, &[7; 300]));
        all.extend(msg(0, b""));
        for cut in 0..all.len() {
            let mut r = MessageReader::new(false);
            r.feed(&all[..cut]);
            r.feed(&all[cut..]);
            assert_eq!(
                (r.messages, r.bytes, r.compressed),
                (3, 305, 1),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn a_gap_inside_a_message_keeps_the_count_and_one_across_a_prefix_loses_it() {
        let mut r = MessageReader::new(false);
        r.feed(&msg(0, &[1; 100])[..20]);
        r.lose(85);
        r.feed(&msg(0, b"x"));
        assert_eq!(r.messages, 2);
        r.lose(200);
        r.feed(&msg(0, b"y"));
        assert_eq!(r.messages, 2, "boundaries lost");
        assert!(r.lost);
    }

    #[test]
    fn grpc_web_trailers_frame_gives_the_status() {
        let mut r = MessageReader::new(true);
        r.feed(&msg(0, b"abc"));
        r.feed(&msg(0x80, b"grpc-status: 5\r\ngrpc-message: not found\r\n"));
        assert_eq!(r.messages, 1);
        assert_eq!(r.web_status(), (Some(5), true));
        let mut r = MessageReader::new(true);
        r.feed(&msg(0x80, b"grpc-status:0\r\ngrpc-message:\r\n"));
        assert_eq!(r.web_status(), (Some(0), false));
        assert_eq!(r.messages, 0);
    }

    #[test]
    fn header_values() {
        assert_eq!(parse_timeout(b"100m"), Some(100_000_000));
        assert_eq!(parse_timeout(b"2S"), Some(2_000_000_000));
        assert_eq!(parse_timeout(b"99999999H"), Some(i64::MAX));
        assert_eq!(parse_timeout(b"2H"), Some(7_200_000_000_000));
        assert_eq!(parse_timeout(b"123456789n"), None, "9 digits");
        assert_eq!(parse_timeout(b"m"), None);
        assert_eq!(parse_timeout(b"10x"), None);
        assert_eq!(parse_status(b"14"), Some(14));
        assert_eq!(parse_status(b"1a"), None);
        assert_eq!(encoding_token(b" GZIP "), Some("gzip".into()));
        assert_eq!(encoding_token(b"gzip, x"), None);
        assert_eq!(content_kind("application/grpc"), Some(false));
        assert_eq!(content_kind("application/grpc+proto"), Some(false));
        assert_eq!(content_kind("application/grpc-web+json"), Some(true));
        assert_eq!(content_kind("application/grpc-web-text"), Some(true));
        assert_eq!(content_kind("application/grpcx"), None);
        assert_eq!(content_kind("application/json"), None);
        assert_eq!(http_status_of(14), 503);
        assert_eq!(http_status_of(0), 200);
        assert_eq!(status_name(4), "DEADLINE_EXCEEDED");
    }
}
