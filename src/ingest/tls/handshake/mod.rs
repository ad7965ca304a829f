//! The cleartext TLS handshake of both directions: version, cipher suite, selected ALPN,
//! resumption, certificate bytes, and when and after how many bytes the handshake ended.
//!
//! Memory stays bounded: records are followed by their 5-byte headers and skipped, not
//! buffered; of the handshake messages only the two hellos are kept whole (each at most
//! [`MAX_HELLO_BYTES`]), the others are known by their 4-byte headers. A side is read in
//! clear until its first ChangeCipherSpec or application-data record; after that only
//! record boundaries are followed, to time the handshake's end (rules on [`Handshake`]).

use tls_parser::{
    parse_tls_message_handshake, parse_tls_server_hello_extensions, TlsCipherSuite, TlsExtension,
    TlsExtensionType, TlsMessage, TlsMessageHandshake,
};

use super::{
    client_hello, fill_header, message_header, record_header, HelloError, HelloNames, ALERT,
    APPLICATION_DATA, CHANGE_CIPHER_SPEC, HANDSHAKE, HRR_RANDOM, MAX_HELLO_BYTES,
};
use crate::model::connection::TlsHandshake;
use crate::model::{Coverage, Direction, Timestamp};

// Handshake message types (RFC 8446 §4, RFC 5246 §7.4).
const CLIENT_HELLO: u8 = 1;
const SERVER_HELLO: u8 = 2;
const CERTIFICATE: u8 = 11;
const SERVER_HELLO_DONE: u8 = 14;
/// Records per side followed after it went encrypted while waiting for the handshake's
/// end; past it the end is left unknown rather than following a long connection.
const MAX_RECORDS_AFTER_CLEAR: u32 = 64;

/// Whether the handshake reader still wants bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    More,
    Done,
}

/// What one side's bytes yielded, in stream order.
enum Event<'a> {
    /// A record starts at stream offset `at`, carrying `len` body bytes.
    Record { ctype: u8, at: u64, len: usize },
    /// A whole handshake message; `body` only for the hellos (others are not kept).
    Message { ty: u8, len: usize, body: &'a [u8] },
}

/// Splits one direction's stream into records and, while in clear, handshake messages.
#[derive(Debug, Default)]
struct Side {
    /// Stream bytes consumed so far.
    offset: u64,
    hdr: [u8; 5],
    hdr_len: usize,
    /// Content type and body bytes still to come of the current record.
    rec_type: u8,
    rec_left: usize,
    /// A ChangeCipherSpec or application-data record went by: later bodies are opaque.
    encrypted: bool,
    records_after_clear: u32,
    msg_hdr: [u8; 4],
    msg_hdr_len: usize,
    msg_left: usize,
    /// A hello's header and body (the only messages kept whole).
    msg: Vec<u8>,
    keep_msg: bool,
}

impl Side {
    /// Consumes `bytes`, calling `ev` for each record start and finished message. For a
    /// ChangeCipherSpec, `ev` answers whether the records after it are encrypted (not
    /// after a TLS 1.3 HelloRetryRequest, where it is a compatibility dummy).
    fn feed(
        &mut self,
        mut bytes: &[u8],
        ev: &mut impl FnMut(Event<'_>) -> bool,
    ) -> Result<(), HelloError> {
        while !bytes.is_empty() {
            if self.rec_left == 0 && self.hdr_len < 5 {
                if !fill_header(&mut self.hdr, &mut self.hdr_len, &mut bytes) {
                    break;
                }
                let (ctype, len) = record_header(self.hdr).ok_or(HelloError::Malformed)?;
                let at = self.offset;
                self.offset += 5;
                self.rec_type = ctype;
                self.rec_left = len;
                if self.encrypted {
                    self.records_after_clear += 1;
                }
                let opaque = ev(Event::Record { ctype, at, len });
                if (ctype == CHANGE_CIPHER_SPEC && opaque) || ctype == APPLICATION_DATA {
                    self.encrypted = true;
                }
                if len == 0 {
                    self.hdr_len = 0;
                }
                continue;
            }
            let k = self.rec_left.min(bytes.len());
            let (body, rest) = bytes.split_at(k);
            bytes = rest;
            self.offset += k as u64;
            self.rec_left -= k;
            if self.rec_left == 0 {
                self.hdr_len = 0;
            }
            if self.rec_type == HANDSHAKE && !self.encrypted {
                self.messages(body, ev)?;
            }
        }
        Ok(())
    }

    /// Handshake-record body bytes -> handshake messages (which may span records).
    fn messages(
        &mut self,
        mut body: &[u8],
        ev: &mut impl FnMut(Event<'_>) -> bool,
    ) -> Result<(), HelloError> {
        while !body.is_empty() {
            if self.msg_left == 0 && self.msg_hdr_len < 4 {
                if !fill_header(&mut self.msg_hdr, &mut self.msg_hdr_len, &mut body) {
                    break;
                }
                let (ty, len) = message_header(self.msg_hdr);
                self.keep_msg = ty == CLIENT_HELLO || ty == SERVER_HELLO;
                if self.keep_msg {
                    if len + 4 > MAX_HELLO_BYTES {
                        return Err(HelloError::TooLarge);
                    }
                    self.msg.clear();
                    self.msg.extend_from_slice(&self.msg_hdr);
                }
                self.msg_left = len;
                if len > 0 {
                    continue;
                }
            } else {
                let k = self.msg_left.min(body.len());
                if self.keep_msg {
                    self.msg.extend_from_slice(&body[..k]);
                }
                body = &body[k..];
                self.msg_left -= k;
                if self.msg_left > 0 {
                    break;
                }
            }
            let (ty, len) = message_header(self.msg_hdr);
            self.msg_hdr_len = 0;
            ev(Event::Message {
                ty,
                len,
                body: &self.msg,
            });
            self.msg = Vec::new();
        }
        Ok(())
    }
}

/// Reads a TLS connection's handshake, both directions, from the ClientHello on.
///
/// The handshake's end (for `handshake_ns` and `handshake_bytes`):
/// - TLS 1.2 (and older): the server's Finished, i.e. the first server record after the
///   server's ChangeCipherSpec; its bytes count.
/// - TLS 1.3: the client's first application-data record after its Finished. The client's
///   Finished travels as an application-data record too; it is taken to be the client's
///   first such record that starts after the server has sent an application-data record
///   (its encrypted flight), and the end is the client's next one. Its bytes do not
///   count. (0-RTT early data would shift this by one record; not handled.)
#[derive(Debug)]
pub struct Handshake {
    sides: [Side; 2],
    facts: Facts,
}

#[derive(Debug, Default)]
struct Facts {
    hello_ts: Timestamp,
    /// The ClientHello: read, failed, or pending.
    names: Option<HelloNames>,
    hello_failed: bool,
    client_session_id: Vec<u8>,
    /// The server spoke before the ClientHello was whole: not a handshake to follow.
    server_first: bool,
    server_hello: bool,
    /// TLS version number chosen by the server.
    version: Option<u16>,
    out: TlsHandshake,
    cert_bytes: u64,
    /// Server handshake messages between its ServerHello and its ChangeCipherSpec that
    /// belong to a full handshake (Certificate, ServerHelloDone).
    server_full_flight: bool,
    server_ccs: bool,
    server_sent_app_data: bool,
    client_finished: bool,
    ended: bool,
    /// Reading stopped on bytes that could not be read (after the ClientHello).
    failed: bool,
}

impl Handshake {
    /// `start`: capture time of the ClientHello's first byte.
    pub fn new(start: Timestamp) -> Self {
        Handshake {
            sides: [Side::default(), Side::default()],
            facts: Facts {
                hello_ts: start,
                ..Facts::default()
            },
        }
    }

    /// The next in-order bytes of one direction, carried by a segment captured at `ts`.
    pub fn data(&mut self, dir: Direction, ts: Timestamp, bytes: &[u8]) -> Progress {
        if self.done() {
            return Progress::Done;
        }
        let d = dir.index();
        if dir == Direction::ServerToClient && self.facts.names.is_none() {
            self.facts.server_first = true;
        }
        let other = self.sides[1 - d].offset;
        let facts = &mut self.facts;
        let res = self.sides[d].feed(bytes, &mut |e| facts.on(dir, ts, other, e));
        if res.is_err() {
            if self.facts.names.is_none() && dir == Direction::ClientToServer {
                self.facts.hello_failed = true;
            } else {
                self.facts.failed = true;
            }
        }
        if self.done() {
            Progress::Done
        } else {
            Progress::More
        }
    }

    /// Bytes of a direction were not captured: the rest cannot be read.
    pub fn gap(&mut self) -> Progress {
        if !self.done() {
            if self.facts.names.is_none() {
                // The rest of the ClientHello is lost (server gaps before it: same end).
                self.facts.hello_failed = true;
            } else {
                self.facts.failed = true;
            }
        }
        Progress::Done
    }

    /// Gives up (the caller's memory budget): counted like a failure.
    pub fn abandon(&mut self) {
        self.gap();
    }

    /// Bytes held in hello buffers.
    pub fn held_bytes(&self) -> usize {
        self.sides[0].msg.len() + self.sides[1].msg.len()
    }

    /// The ClientHello has been read.
    pub fn hello_read(&self) -> bool {
        self.facts.names.is_some()
    }

    /// Nothing more to read: the handshake ended, failed, or can no longer be followed.
    pub fn done(&self) -> bool {
        let f = &self.facts;
        let followed_too_far = self
            .sides
            .iter()
            .any(|s| s.records_after_clear > MAX_RECORDS_AFTER_CLEAR);
        f.hello_failed
            || f.failed
            || f.ended
            || (f.names.is_some() && f.server_first)
            || followed_too_far
    }

    /// Ends reading: counts into `cov` and returns the ClientHello's names and the facts.
    pub fn finish(self, cov: &mut Coverage) -> (HelloNames, TlsHandshake) {
        let mut f = self.facts;
        let Some(names) = f.names else {
            cov.tls_client_hello_unparsed += 1;
            return (HelloNames::default(), TlsHandshake::default());
        };
        cov.tls_client_hellos += 1;
        if f.server_hello {
            cov.tls_server_hellos += 1;
            if f.version.is_some_and(|v| v < 0x0304) {
                f.out.cert_bytes = Some(f.cert_bytes);
                // Not resumed by session id: a full flight says new session, a
                // ChangeCipherSpec without one an abbreviated (ticket) handshake.
                if f.out.resumed.is_none() && (f.server_full_flight || f.server_ccs) {
                    f.out.resumed = Some(!f.server_full_flight);
                }
            }
        }
        if f.out.resumed == Some(true) {
            cov.tls_handshakes_resumed += 1;
        }
        if f.failed || (f.server_first && !f.server_hello) {
            cov.tls_handshake_unparsed += 1;
        }
        (names, f.out)
    }
}

impl Facts {
    /// Acts on one event; the answer matters for ChangeCipherSpec records only (see
    /// [`Side::feed`]).
    fn on(&mut self, dir: Direction, ts: Timestamp, other_offset: u64, e: Event<'_>) -> bool {
        match (dir, e) {
            (_, Event::Message { ty, len, body: _ }) if ty == CERTIFICATE => {
                self.cert_bytes += len as u64;
                if dir == Direction::ServerToClient {
                    self.server_full_flight = true;
                }
            }
            (Direction::ServerToClient, Event::Message { ty, .. }) if ty == SERVER_HELLO_DONE => {
                self.server_full_flight = true;
            }
            (Direction::ClientToServer, Event::Message { ty, body, .. })
                if ty == CLIENT_HELLO && self.names.is_none() =>
            {
                match client_hello(body) {
                    Ok((names, extra)) => {
                        self.names = Some(names);
                        self.client_session_id = extra.session_id;
                        self.out.ticket_offered = Some(extra.ticket_offered);
                    }
                    Err(_) => self.hello_failed = true,
                }
            }
            (Direction::ClientToServer, Event::Message { .. }) if self.names.is_none() => {
                self.hello_failed = true;
            }
            (Direction::ServerToClient, Event::Message { ty, body, .. })
                if ty == SERVER_HELLO && !self.server_hello =>
            {
                if !self.server_hello_read(body) {
                    self.failed = true;
                }
            }
            (_, Event::Message { .. }) => {}
            (Direction::ClientToServer, Event::Record { ctype, at, len: _ }) => {
                if self.names.is_none() && ctype != HANDSHAKE {
                    self.hello_failed = true;
                } else if ctype == APPLICATION_DATA && self.version == Some(0x0304) {
                    if !self.client_finished {
                        self.client_finished = self.server_sent_app_data;
                    } else if !self.ended {
                        self.end(ts, at + other_offset);
                    }
                }
            }
            (Direction::ServerToClient, Event::Record { ctype, at, len }) => {
                if ctype == CHANGE_CIPHER_SPEC && !self.server_hello {
                    // Before the real ServerHello (after a HelloRetryRequest): a dummy.
                    return false;
                }
                if ctype == APPLICATION_DATA {
                    self.server_sent_app_data = true;
                }
                if self.server_ccs
                    && !self.ended
                    && self.version.is_some_and(|v| v < 0x0304)
                    && ctype != ALERT
                {
                    self.end(ts, at + 5 + len as u64 + other_offset);
                }
                if ctype == CHANGE_CIPHER_SPEC {
                    self.server_ccs = true;
                }
            }
        }
        true
    }

    fn end(&mut self, ts: Timestamp, bytes: u64) {
        self.ended = true;
        self.out.handshake_ns = Some(ts.since(self.hello_ts));
        self.out.handshake_bytes = Some(bytes);
    }

    /// Reads a ServerHello (header included); false when it does not parse.
    fn server_hello_read(&mut self, msg: &[u8]) -> bool {
        let sh = match parse_tls_message_handshake(msg) {
            Ok((_, TlsMessage::Handshake(TlsMessageHandshake::ServerHello(sh)))) => sh,
            _ => return false,
        };
        if sh.random == HRR_RANDOM {
            // A HelloRetryRequest: the real ServerHello follows the client's second hello.
            return true;
        }
        self.server_hello = true;
        let exts = sh
            .ext
            .and_then(|e| parse_tls_server_hello_extensions(e).ok())
            .map(|(_, v)| v)
            .unwrap_or_default();
        let mut version = sh.version.0;
        let mut psk = false;
        let mut alpn = None;
        for e in &exts {
            match e {
                TlsExtension::SupportedVersions(v) => {
                    if let Some(x) = v.first() {
                        version = x.0;
                    }
                }
                TlsExtension::PreSharedKey(_) => psk = true,
                TlsExtension::Unknown(t, _) if *t == TlsExtensionType::PreSharedKey => psk = true,
                TlsExtension::ALPN(p) => alpn = p.first().map(|p| String::from_utf8_lossy(p)),
                _ => {}
            }
        }
        self.version = Some(version);
        self.out.version = Some(version_name(version));
        let id = sh.cipher.0;
        self.out.cipher = Some(
            TlsCipherSuite::from_id(id)
                .map_or_else(|| format!("0x{id:04x}"), |c| c.name.to_string()),
        );
        if version >= 0x0304 {
            self.out.resumed = Some(psk);
        } else {
            self.out.alpn_selected = alpn.map(|a| a.into_owned());
            let sid = sh.session_id.unwrap_or_default();
            if !sid.is_empty() && sid == self.client_session_id.as_slice() {
                self.out.resumed = Some(true);
            }
        }
        true
    }
}

fn version_name(v: u16) -> String {
    match v {
        0x0304 => "TLS 1.3".into(),
        0x0303 => "TLS 1.2".into(),
        0x0302 => "TLS 1.1".into(),
        0x0301 => "TLS 1.0".into(),
        0x0300 => "SSL 3.0".into(),
        _ => format!("0x{v:04x}"),
    }
}

/// Starts reading a handshake from what the sniffing stage held: each side's first
/// bytes (`len[d]` of `buf[d]`, first seen at `first_ts[d]`), of which the current event's
/// side `dir` had `prev` before this event's `bytes` (captured at `ts`) arrived.
pub fn start<const N: usize>(
    buf: &[[u8; N]; 2],
    len: [usize; 2],
    first_ts: [Timestamp; 2],
    dir: Direction,
    prev: usize,
    ts: Timestamp,
    bytes: &[u8],
) -> Box<Handshake> {
    let mut h = Box::new(Handshake::new(first_ts[0]));
    let d = dir.index();
    for side in [Direction::ClientToServer, Direction::ServerToClient] {
        let s = side.index();
        let held = if s == d { prev } else { len[s] };
        if let Some(b) = buf[s].get(..held).filter(|b| !b.is_empty()) {
            h.data(side, first_ts[s], b);
        }
    }
    h.data(dir, ts, bytes);
    h
}

#[cfg(test)]
mod tests;
