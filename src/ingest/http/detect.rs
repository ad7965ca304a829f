//! Recognise a stream by its first bytes: HTTP/1 request or response, TLS, HTTP/2 preface.

use crate::ingest::flow::RoleHint;

/// The HTTP/2 prior-knowledge connection preface (RFC 9113 §3.4).
pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Bytes of a side's first payload kept to classify a connection; the preface is the longest
/// pattern we need.
pub(crate) const SNIFF_LEN: usize = 24;

/// The role the first payload of one side suggests.
pub fn role_hint(first_bytes: &[u8]) -> RoleHint {
    if method_then_space(first_bytes).is_some() || is_tls_handshake(first_bytes, 1) {
        RoleHint::Client
    } else if first_bytes.starts_with(b"HTTP/1.") || is_tls_handshake(first_bytes, 2) {
        RoleHint::Server
    } else {
        RoleHint::Unknown
    }
}

/// What a side's first bytes say about the whole connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sniff {
    /// Too few bytes to tell yet.
    NeedMore,
    Http1,
    Http2,
    Tls,
    /// A TLS application-data record: the capture began after the handshake.
    TlsData,
    Other,
}

/// Classifies a connection by the client's first bytes (at most [`SNIFF_LEN`] of them).
pub(crate) fn classify_client(b: &[u8]) -> Sniff {
    match b.first() {
        None => return Sniff::NeedMore,
        Some(0x16) => return tls_record(b),
        Some(0x17) => return tls_data_record(b),
        Some(_) => {}
    }
    if b.starts_with(H2_PREFACE) {
        return Sniff::Http2;
    }
    if H2_PREFACE.starts_with(b) {
        return Sniff::NeedMore;
    }
    let tok = b.iter().take_while(|&&c| is_tchar(c)).count();
    match b.get(tok) {
        Some(b' ') if tok > 0 => Sniff::Http1,
        // A bare method line (`OPTIONS\r\n`) is a malformed request servers still answer;
        // only well-known methods, so that other line protocols (`PING\r\n`) stay other.
        Some(b'\r' | b'\n') if is_known_method(&b[..tok]) => Sniff::Http1,
        None if b.len() < SNIFF_LEN => Sniff::NeedMore,
        _ => Sniff::Other,
    }
}

/// Methods of RFC 9110, RFC 5789 (PATCH) and WebDAV (RFC 4918, RFC 3253).
const KNOWN_METHODS: &[&[u8]] = &[
    b"GET",
    b"HEAD",
    b"POST",
    b"PUT",
    b"DELETE",
    b"CONNECT",
    b"OPTIONS",
    b"TRACE",
    b"PATCH",
    b"PROPFIND",
    b"PROPPATCH",
    b"MKCOL",
    b"COPY",
    b"MOVE",
    b"LOCK",
    b"UNLOCK",
    b"SEARCH",
    b"REPORT",
    b"CHECKIN",
    b"CHECKOUT",
    b"MERGE",
    b"LABEL",
];

/// A method of [`KNOWN_METHODS`].
pub(crate) fn is_known_method(m: &[u8]) -> bool {
    KNOWN_METHODS.contains(&m)
}

/// Classifies a connection by the server's first bytes, used only while the client has sent
/// nothing (the capture began after the request).
pub(crate) fn classify_server(b: &[u8]) -> Sniff {
    const STATUS: &[u8] = b"HTTP/1.";
    match b.first() {
        None => Sniff::NeedMore,
        Some(0x16) => tls_record(b),
        Some(0x17) => tls_data_record(b),
        Some(_) if b.starts_with(STATUS) => Sniff::Http1,
        Some(_) if STATUS.starts_with(b) => Sniff::NeedMore,
        Some(_) => Sniff::Other,
    }
}

/// A TLS application-data record header: 0x17, version 3.1-3.4 (TLS 1.0 on; 1.3 writes
/// 3.3), a length a record may have.
fn tls_data_record(b: &[u8]) -> Sniff {
    match (b.get(1), b.get(2), b.get(3), b.get(4)) {
        (Some(3), Some(&minor), Some(&hi), Some(&lo))
            if (1..=4).contains(&minor)
                && usize::from(u16::from_be_bytes([hi, lo]))
                    <= crate::ingest::tls::MAX_RECORD_BODY =>
        {
            Sniff::TlsData
        }
        (Some(3), Some(&minor), _, None) if (1..=4).contains(&minor) => Sniff::NeedMore,
        (Some(3), None, _, _) | (None, _, _, _) => Sniff::NeedMore,
        _ => Sniff::Other,
    }
}

/// A TLS handshake record header: 0x16, version 3.0-3.4 (SSL 3.0 to TLS 1.3 on the wire).
fn tls_record(b: &[u8]) -> Sniff {
    match (b.get(1), b.get(2)) {
        (Some(3), Some(&minor)) if minor <= 4 => Sniff::Tls,
        (Some(3), None) | (None, _) => Sniff::NeedMore,
        _ => Sniff::Other,
    }
}

/// TLS handshake record whose first message has type `hs_type` (1 ClientHello, 2 ServerHello).
fn is_tls_handshake(b: &[u8], hs_type: u8) -> bool {
    b.len() >= 6 && b[0] == 0x16 && b[1] == 3 && b[2] <= 4 && b[5] == hs_type
}

/// Length of a leading method token when it is followed by a space.
fn method_then_space(b: &[u8]) -> Option<usize> {
    let tok = b.iter().take_while(|&&c| is_tchar(c)).count();
    (tok > 0 && b.get(tok) == Some(&b' ')).then_some(tok)
}

/// RFC 9110 token characters.
pub(crate) fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_hints() {
        assert_eq!(role_hint(b"GET / HTTP/1.1\r\n"), RoleHint::Client);
        assert_eq!(role_hint(H2_PREFACE), RoleHint::Client);
        assert_eq!(role_hint(b"HTTP/1.1 200 OK\r\n"), RoleHint::Server);
        assert_eq!(role_hint(&[0x16, 3, 1, 0, 0xc8, 1, 0, 0]), RoleHint::Client);
        assert_eq!(role_hint(&[0x16, 3, 3, 0, 0x5a, 2, 0, 0]), RoleHint::Server);
        assert_eq!(role_hint(&[0x16, 3, 5, 0, 0x5a, 1]), RoleHint::Unknown);
        assert_eq!(role_hint(b"SSH-2.0-OpenSSH"), RoleHint::Unknown);
        assert_eq!(role_hint(b""), RoleHint::Unknown);
        assert_eq!(role_hint(b"GET"), RoleHint::Unknown);
    }

    #[test]
    fn client_classification() {
        assert_eq!(classify_client(H2_PREFACE), Sniff::Http2);
        assert_eq!(classify_client(&H2_PREFACE[..10]), Sniff::NeedMore);
        assert_eq!(
            classify_client(b"PRI * HTTP/1.1\r\n\r\nxxxxxxxx"),
            Sniff::Http1
        );
        assert_eq!(classify_client(b"POST /x HTTP/1.0\r\n"), Sniff::Http1);
        assert_eq!(classify_client(b"DELE"), Sniff::NeedMore);
        assert_eq!(classify_client(&[0x16, 3]), Sniff::NeedMore);
        assert_eq!(classify_client(&[0x16, 3, 1, 2, 0]), Sniff::Tls);
        assert_eq!(classify_client(&[0x16, 4, 1]), Sniff::Other);
        assert_eq!(classify_client(b"\x00\x00\x00\x01abc"), Sniff::Other);
        assert_eq!(classify_client(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"), Sniff::Other);
        // A bare known method line is HTTP; other bare words, or a method glued to the
        // target or version (zeek's methods.pcap: tshark counts none of those), are not.
        assert_eq!(classify_client(b"OPTIONS\nHost: www.googl"), Sniff::Http1);
        assert_eq!(classify_client(b"GET\r\n"), Sniff::Http1);
        assert_eq!(classify_client(b"PING\r\n"), Sniff::Other);
        assert_eq!(classify_client(b"OPTIONSHTTP/1.1\nHost: w"), Sniff::Other);
        assert_eq!(classify_client(b"GET/ HTTP/1.1\nHost: www."), Sniff::Other);
        assert_eq!(classify_client(b"GET/HTTP/1.1\nHost: www.g"), Sniff::Other);
        assert_eq!(
            classify_client(b"\xc3\x83\xc3\x82\xc3\x83 / HTTP/1.\nHost:"),
            Sniff::Other
        );
        assert_eq!(classify_server(b"HTTP/1.1 200 OK"), Sniff::Http1);
        assert_eq!(classify_server(b"HTT"), Sniff::NeedMore);
        assert_eq!(classify_server(b"220 smtp ready"), Sniff::Other);
    }
}
