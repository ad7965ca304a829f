//! TLS: the names a client's ClientHello announces in clear (SNI and the offered ALPN
//! protocols), a name source for telling which service a TLS connection talks to, and
//! (in [`handshake`]) what the rest of the cleartext handshake shows of both directions.
//!
//! The ClientHello may be cut into several TCP segments and, rarely, several TLS records;
//! [`HelloBuffer`] keeps the client's first bytes (at most [`MAX_HELLO_BYTES`]) until the
//! whole handshake message is there. Records and the message are parsed with tls-parser.

pub mod cipher;
pub mod estimate;
pub mod handshake;
pub mod keylog;
pub mod session;
#[cfg(test)]
pub(crate) mod tests;

pub use handshake::{Handshake, Progress};

use std::borrow::Cow;

use tls_parser::{
    parse_tls_client_hello_extensions, parse_tls_message_handshake, parse_tls_raw_record, SNIType,
    TlsExtension, TlsMessage, TlsMessageHandshake, TlsRecordType,
};

/// Client bytes kept while waiting for a whole ClientHello. Real ones are 200 B to 2 KiB
/// (post-quantum key shares included); beyond this the hello is counted as unparsed.
pub const MAX_HELLO_BYTES: usize = 16 << 10;

/// Handshake message type of a ClientHello (RFC 8446 §4).
const CLIENT_HELLO: u8 = 1;
// Record content types (RFC 8446 §5.1).
pub(crate) const CHANGE_CIPHER_SPEC: u8 = 20;
pub(crate) const ALERT: u8 = 21;
pub(crate) const HANDSHAKE: u8 = 22;
pub(crate) const APPLICATION_DATA: u8 = 23;
/// Largest record body a sender may use (2^14 plus the TLS 1.2 expansion allowance).
pub(crate) const MAX_RECORD_BODY: usize = (1 << 14) + 2048;
/// A ServerHello whose random is this is a HelloRetryRequest (RFC 8446 §4.1.3).
pub(crate) const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// Fills the fixed-size header `hdr`, of which `have` bytes are in, from the front of
/// `bytes` (advanced past what it took); true once the header is whole.
pub(crate) fn fill_header<const N: usize>(
    hdr: &mut [u8; N],
    have: &mut usize,
    bytes: &mut &[u8],
) -> bool {
    let k = (N - *have).min(bytes.len());
    hdr[*have..*have + k].copy_from_slice(&bytes[..k]);
    *have += k;
    *bytes = &bytes[k..];
    *have == N
}

/// A record header's content type and body length; None when it cannot be a TLS record
/// (unknown type, major version not 3, body over [`MAX_RECORD_BODY`]).
pub(crate) fn record_header(hdr: [u8; 5]) -> Option<(u8, usize)> {
    let [ctype, major, _, hi, lo] = hdr;
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    ((CHANGE_CIPHER_SPEC..=APPLICATION_DATA).contains(&ctype)
        && major == 3
        && len <= MAX_RECORD_BODY)
        .then_some((ctype, len))
}

/// A handshake message header's type and body length.
pub(crate) fn message_header(hdr: [u8; 4]) -> (u8, usize) {
    let [ty, a, b, c] = hdr;
    (
        ty,
        usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c),
    )
}

/// What a ClientHello names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HelloNames {
    /// The `server_name` extension's host name, ASCII lower-cased.
    pub sni: Option<String>,
    /// The offered ALPN protocols, comma-separated in offered order (`h2,http/1.1`).
    pub alpn: Option<String>,
}

/// Why a client's first bytes gave no names.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HelloError {
    #[error("not a TLS handshake record")]
    NotHandshake,
    #[error("the first handshake message is not a ClientHello")]
    NotClientHello,
    #[error("ClientHello larger than {MAX_HELLO_BYTES} bytes")]
    TooLarge,
    #[error("malformed TLS record or ClientHello")]
    Malformed,
}

/// The outcome of reading a client's first bytes so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hello {
    /// The ClientHello is not complete yet.
    NeedMore,
    Parsed(HelloNames),
    Failed(HelloError),
}

/// Parses the ClientHello at the start of a client's byte stream.
pub fn parse_client_hello(stream: &[u8]) -> Hello {
    match handshake_message(stream) {
        Ok(Some(msg)) => names(&msg),
        Ok(None) if stream.len() >= MAX_HELLO_BYTES => Hello::Failed(HelloError::TooLarge),
        Ok(None) => Hello::NeedMore,
        Err(e) => Hello::Failed(e),
    }
}

/// The first handshake message, joined from the records that carry it (borrowed when
/// one record holds it whole, the common case). Ok(None): more bytes are needed.
fn handshake_message(stream: &[u8]) -> Result<Option<Cow<'_, [u8]>>, HelloError> {
    let mut rest = stream;
    let mut joined: Vec<u8> = Vec::new();
    loop {
        let rec = match parse_tls_raw_record(rest) {
            Ok((r, rec)) => {
                rest = r;
                rec
            }
            Err(tls_parser::Err::Incomplete(_)) => return Ok(None),
            Err(_) => return Err(HelloError::Malformed),
        };
        if rec.hdr.record_type != TlsRecordType::Handshake {
            return Err(HelloError::NotHandshake);
        }
        let have: &[u8] = if joined.is_empty() {
            rec.data
        } else {
            joined.extend_from_slice(rec.data);
            &joined
        };
        if let Some(&t) = have.first() {
            if t != CLIENT_HELLO {
                return Err(HelloError::NotClientHello);
            }
        }
        if let Some(len) = have.get(1..4) {
            let need =
                4 + (usize::from(len[0]) << 16 | usize::from(len[1]) << 8 | usize::from(len[2]));
            if need > MAX_HELLO_BYTES {
                return Err(HelloError::TooLarge);
            }
            if have.len() >= need {
                return Ok(Some(if joined.is_empty() {
                    Cow::Borrowed(&rec.data[..need])
                } else {
                    joined.truncate(need);
                    Cow::Owned(joined)
                }));
            }
        }
        if joined.is_empty() {
            joined.extend_from_slice(rec.data);
        }
    }
}

fn names(msg: &[u8]) -> Hello {
    match client_hello(msg) {
        Ok((names, _)) => Hello::Parsed(names),
        Err(e) => Hello::Failed(e),
    }
}

/// What else a ClientHello tells the handshake reader.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct HelloExtra {
    /// The legacy session id (TLS 1.2 resumption by id echoes it).
    pub session_id: Vec<u8>,
    /// A non-empty session_ticket extension or a pre_shared_key extension.
    pub ticket_offered: bool,
}

/// Parses a whole ClientHello message (handshake header included).
pub(crate) fn client_hello(msg: &[u8]) -> Result<(HelloNames, HelloExtra), HelloError> {
    let hello = match parse_tls_message_handshake(msg) {
        Ok((_, TlsMessage::Handshake(TlsMessageHandshake::ClientHello(h)))) => h,
        Ok(_) => return Err(HelloError::NotClientHello),
        Err(_) => return Err(HelloError::Malformed),
    };
    let mut out = HelloNames::default();
    let mut extra = HelloExtra {
        session_id: hello.session_id.unwrap_or_default().to_vec(),
        ticket_offered: false,
    };
    let Some(ext) = hello.ext else {
        return Ok((out, extra));
    };
    // Extensions after one that does not parse are lost; those before it are kept.
    let exts = parse_tls_client_hello_extensions(ext).map_or_else(|_| Vec::new(), |(_, v)| v);
    for e in exts {
        match e {
            TlsExtension::SNI(list) if out.sni.is_none() => {
                out.sni = list
                    .iter()
                    .find(|(t, _)| *t == SNIType::HostName)
                    .map(|(_, name)| lower(name));
            }
            TlsExtension::ALPN(protos) if out.alpn.is_none() && !protos.is_empty() => {
                let list: Vec<Cow<'_, str>> =
                    protos.iter().map(|p| String::from_utf8_lossy(p)).collect();
                out.alpn = Some(list.join(","));
            }
            TlsExtension::SessionTicket(t) if !t.is_empty() => extra.ticket_offered = true,
            TlsExtension::PreSharedKey(_) => extra.ticket_offered = true,
            _ => {}
        }
    }
    Ok((out, extra))
}

fn lower(name: &[u8]) -> String {
    let mut s = String::from_utf8_lossy(name).into_owned();
    s.make_ascii_lowercase();
    s
}

/// A client's first bytes, kept (within [`MAX_HELLO_BYTES`]) until they hold a whole
/// ClientHello. Created only for connections recognised as TLS.
#[derive(Debug, Default)]
pub struct HelloBuffer {
    buf: Vec<u8>,
}

impl HelloBuffer {
    pub fn new() -> Self {
        HelloBuffer::default()
    }

    /// Adds the client's next in-order bytes. Bytes that hold a whole ClientHello are
    /// parsed in place; only a hello cut across segments is copied.
    pub fn push(&mut self, bytes: &[u8]) -> Hello {
        if self.buf.is_empty() {
            let got = parse_client_hello(bytes);
            if got == Hello::NeedMore {
                self.buf
                    .extend_from_slice(&bytes[..bytes.len().min(MAX_HELLO_BYTES)]);
            }
            return got;
        }
        let room = MAX_HELLO_BYTES.saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
        let got = parse_client_hello(&self.buf);
        if got != Hello::NeedMore {
            self.buf = Vec::new();
        }
        got
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}
