//! One TLS connection's records, both directions: split by their 5-byte headers, the
//! hellos read for the randoms, the suite and the version, and, when the key log holds the
//! connection's secrets, every protected record decrypted in stream order. Application
//! data comes out as plaintext for the HTTP readers; every record (decrypted or not) is
//! reported by its header for the estimates made without keys.
//!
//! Memory: per direction one record body (at most `MAX_RECORD_BODY` bytes) while
//! decrypting, and one handshake message being joined, kept only for the few types read
//! (hellos, EncryptedExtensions, KeyUpdate) and at most [`MAX_HELLO_BYTES`]; other
//! messages are skipped by their lengths.

use tls_parser::{
    parse_tls_message_handshake, parse_tls_server_hello_extensions, TlsExtension, TlsMessage,
    TlsMessageHandshake,
};

use super::cipher::{self, RecordKeys};
use super::keylog::{KeyLog, Secret};
use super::{
    fill_header, message_header, record_header, APPLICATION_DATA, CHANGE_CIPHER_SPEC, HANDSHAKE,
    HRR_RANDOM, MAX_HELLO_BYTES,
};
use crate::model::{Direction, Timestamp};

const CLIENT_HELLO: u8 = 1;
const SERVER_HELLO: u8 = 2;
const ENCRYPTED_EXTENSIONS: u8 = 8;
const FINISHED: u8 = 20;
const KEY_UPDATE: u8 = 24;
const EXT_ALPN: u16 = 16;

/// Why a TLS connection's application data was not decrypted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Undecrypted {
    /// The key log has no (or not all the needed) secrets for its client random.
    NoKey,
    /// A suite not supported (CBC, CCM, export, ...), or a version before TLS 1.2.
    UnsupportedSuite,
    /// The hellos were not seen: the capture began mid-connection, or they did not parse.
    NoHandshake,
    /// A record did not authenticate with the derived keys (wrong secret, 0-RTT data).
    AuthFailed,
    /// Bytes of the connection were not captured: records cannot be followed past it.
    Gap,
    /// A malformed record header.
    Malformed,
    /// The HTTP stage's memory budget was spent.
    Memory,
}

impl Undecrypted {
    pub const fn as_str(self) -> &'static str {
        match self {
            Undecrypted::NoKey => "no_key",
            Undecrypted::UnsupportedSuite => "unsupported_suite",
            Undecrypted::NoHandshake => "no_handshake",
            Undecrypted::AuthFailed => "auth_failed",
            Undecrypted::Gap => "gap",
            Undecrypted::Malformed => "malformed",
            Undecrypted::Memory => "memory",
        }
    }
}

/// What the record stream yields, in stream order per direction.
pub enum Out<'a> {
    /// A record header (outer content type, body length), at the capture time of the
    /// segment that carried its first byte.
    Record {
        dir: Direction,
        ts: Timestamp,
        ctype: u8,
        len: usize,
        /// The ServerHello chose TLS 1.3.
        tls13: bool,
        /// Bytes of each protected record that are the suite's own (tag, nonce, type).
        overhead: usize,
    },
    /// Decrypted application data, at the capture time of the segment that completed
    /// its record.
    Plain {
        dir: Direction,
        ts: Timestamp,
        bytes: &'a [u8],
        /// The selected ALPN protocol is `h2`.
        h2: bool,
    },
}

/// Splits one direction into records, keeping the body only when asked to.
#[derive(Debug, Default)]
struct RecordReader {
    hdr: [u8; 5],
    hdr_len: usize,
    left: usize,
    keep: bool,
    body: Vec<u8>,
}

/// Joins handshake messages from record bodies.
#[derive(Debug, Default)]
struct MessageReader {
    hdr: [u8; 4],
    hdr_len: usize,
    left: usize,
    keep: bool,
    body: Vec<u8>,
}

impl MessageReader {
    /// Feeds handshake bytes; calls `f(type, body)` for each whole message (body empty
    /// for messages not kept). Err when a kept message is over the bound.
    fn feed(&mut self, mut b: &[u8], f: &mut impl FnMut(u8, &[u8])) -> Result<(), ()> {
        while !b.is_empty() {
            if self.left == 0 && self.hdr_len < 4 {
                if !fill_header(&mut self.hdr, &mut self.hdr_len, &mut b) {
                    return Ok(());
                }
                let (ty, len) = message_header(self.hdr);
                self.left = len;
                self.keep = matches!(
                    ty,
                    CLIENT_HELLO | SERVER_HELLO | ENCRYPTED_EXTENSIONS | KEY_UPDATE
                );
                if self.keep && self.left + 4 > MAX_HELLO_BYTES {
                    return Err(());
                }
                self.body.clear();
                if self.keep {
                    self.body.extend_from_slice(&self.hdr);
                }
            } else {
                let k = self.left.min(b.len());
                if self.keep {
                    self.body.extend_from_slice(&b[..k]);
                }
                b = &b[k..];
                self.left -= k;
            }
            if self.left == 0 && self.hdr_len == 4 {
                self.hdr_len = 0;
                f(self.hdr[0], &self.body);
                self.body = Vec::new();
            }
        }
        Ok(())
    }
}

/// Per-connection decryption state.
#[derive(Debug)]
pub struct Session {
    readers: [RecordReader; 2],
    messages: [MessageReader; 2],
    /// Capture time of the first byte of the record being read, per direction.
    first_ts: [Timestamp; 2],
    client_random: Option<[u8; 32]>,
    server_random: Option<[u8; 32]>,
    version: u16,
    suite: Option<cipher::Suite>,
    /// Keys in force per direction (after ChangeCipherSpec in 1.2, ServerHello in 1.3).
    keys: [Option<RecordKeys>; 2],
    /// Keys taking over at the next ChangeCipherSpec (1.2) or Finished (1.3).
    next: [Option<RecordKeys>; 2],
    /// Direction is protected (1.2: after its ChangeCipherSpec; 1.3: after ServerHello).
    protected: [bool; 2],
    /// The selected ALPN protocol (ServerHello in 1.2, EncryptedExtensions in 1.3).
    pub alpn: Option<String>,
    /// Why decryption stopped (or never started); None while it goes on.
    pub failed: Option<Undecrypted>,
    /// The ServerHello was read (or can no longer be): clear handshake records are no
    /// longer kept when not decrypting.
    hello_read: bool,
    /// Bytes of a protected record that are the suite's own, once the suite is known.
    overhead: usize,
    /// Application-data records decrypted.
    pub decrypted_records: u64,
}

impl Session {
    /// `want_keys`: the key log is not empty, so protected records are kept and decrypted
    /// (the hellos are read either way). `start`: capture time of the first byte.
    pub fn new(want_keys: bool, start: Timestamp) -> Session {
        Session {
            readers: Default::default(),
            messages: Default::default(),
            first_ts: [start; 2],
            client_random: None,
            server_random: None,
            version: 0,
            suite: None,
            keys: [None, None],
            next: [None, None],
            protected: [false; 2],
            alpn: None,
            failed: (!want_keys).then_some(Undecrypted::NoKey),
            hello_read: false,
            overhead: 0,
            decrypted_records: 0,
        }
    }

    /// The version the ServerHello chose (0 before it was read).
    pub fn version(&self) -> u16 {
        self.version
    }

    /// Whether application data has been (or may yet be) decrypted.
    pub fn decrypting(&self) -> bool {
        self.failed.is_none()
    }

    /// Bytes held (record bodies and joined handshake messages).
    pub fn held_bytes(&self) -> usize {
        self.readers
            .iter()
            .map(|r| r.body.capacity())
            .sum::<usize>()
            + self
                .messages
                .iter()
                .map(|m| m.body.capacity())
                .sum::<usize>()
    }

    /// Stops decrypting (if it had not stopped already) for `why`.
    pub fn fail(&mut self, why: Undecrypted) {
        if self.failed.is_none() {
            self.failed = Some(why);
        }
        self.keys = [None, None];
        self.next = [None, None];
        self.release();
    }

    fn release(&mut self) {
        for r in &mut self.readers {
            r.body = Vec::new();
        }
        for m in &mut self.messages {
            m.body = Vec::new();
        }
    }

    /// The next in-order bytes of one direction, captured at `ts`.
    pub fn data(
        &mut self,
        dir: Direction,
        ts: Timestamp,
        mut bytes: &[u8],
        keys: &KeyLog,
        out: &mut impl FnMut(Out<'_>),
    ) {
        let d = dir.index();
        while !bytes.is_empty() {
            let r = &mut self.readers[d];
            if r.left == 0 && r.hdr_len < 5 {
                if r.hdr_len == 0 {
                    self.first_ts[d] = ts;
                }
                if !fill_header(&mut r.hdr, &mut r.hdr_len, &mut bytes) {
                    return;
                }
                let Some((ctype, len)) = record_header(r.hdr) else {
                    // Records can no longer be followed: nothing more from this side.
                    r.hdr_len = 0;
                    r.left = usize::MAX;
                    self.fail(Undecrypted::Malformed);
                    return;
                };
                out(Out::Record {
                    dir,
                    ts: self.first_ts[d],
                    ctype,
                    len,
                    tls13: self.version == 0x0304,
                    overhead: self.overhead,
                });
                let clear_hello = ctype == HANDSHAKE && !self.protected[d] && !self.hello_read;
                let r = &mut self.readers[d];
                r.left = len;
                // The hellos are read even without keys (version, suite, ALPN for the
                // estimates); protected records only while decrypting.
                r.keep = clear_hello
                    || (self.failed.is_none()
                        && (ctype == HANDSHAKE
                            || (self.protected[d] && ctype != CHANGE_CIPHER_SPEC)));
                r.body.clear();
                if len == 0 {
                    r.hdr_len = 0;
                    self.record(dir, ts, keys, out);
                }
                continue;
            }
            if r.left == usize::MAX {
                return;
            }
            let k = r.left.min(bytes.len());
            if r.keep {
                r.body.extend_from_slice(&bytes[..k]);
            }
            bytes = &bytes[k..];
            r.left -= k;
            if r.left == 0 {
                r.hdr_len = 0;
                self.record(dir, ts, keys, out);
            }
        }
    }

    /// A whole record of direction `dir` (header in the reader, body kept if wanted).
    fn record(
        &mut self,
        dir: Direction,
        ts: Timestamp,
        keys: &KeyLog,
        out: &mut impl FnMut(Out<'_>),
    ) {
        let d = dir.index();
        let hdr = self.readers[d].hdr;
        let ctype = hdr[0];
        if self.failed.is_some() {
            if ctype == HANDSHAKE && !self.protected[d] && !self.hello_read {
                let body = std::mem::take(&mut self.readers[d].body);
                self.handshake(dir, &body, keys);
                self.readers[d].body = body;
            }
            if self.hello_read {
                // Nothing more is kept: give the hello buffers back.
                self.release();
            }
            return;
        }
        if ctype == CHANGE_CIPHER_SPEC {
            // TLS 1.2: the sender's next records use the keys armed at ServerHello.
            // TLS 1.3: a compatibility dummy, never protected.
            if self.version != 0x0304 && self.server_random.is_some() {
                self.protected[d] = true;
                self.keys[d] = self.next[d].take();
                if self.keys[d].is_none() {
                    self.fail(Undecrypted::NoKey);
                }
            }
            return;
        }
        if !self.protected[d] {
            if ctype == HANDSHAKE {
                let body = std::mem::take(&mut self.readers[d].body);
                self.handshake(dir, &body, keys);
                self.readers[d].body = body;
            } else if ctype == APPLICATION_DATA {
                // Protected data before the hellos were read.
                self.fail(Undecrypted::NoHandshake);
            }
            return;
        }
        let Some(k) = self.keys[d].as_mut() else {
            self.fail(Undecrypted::NoKey);
            return;
        };
        let mut body = std::mem::take(&mut self.readers[d].body);
        let inner = match k.open(hdr, &mut body) {
            Ok(t) => t,
            Err(_) => {
                self.fail(Undecrypted::AuthFailed);
                return;
            }
        };
        match inner {
            APPLICATION_DATA => {
                self.decrypted_records += 1;
                if !body.is_empty() {
                    out(Out::Plain {
                        dir,
                        ts,
                        bytes: &body,
                        h2: self.alpn.as_deref() == Some("h2"),
                    });
                }
            }
            HANDSHAKE => self.handshake(dir, &body, keys),
            // Alerts (close_notify) and anything else: nothing for HTTP.
            _ => {}
        }
        body.clear();
        self.readers[d].body = body;
    }

    /// Handshake bytes of `dir` (clear, or decrypted).
    fn handshake(&mut self, dir: Direction, body: &[u8], keys: &KeyLog) {
        let d = dir.index();
        let mut msgs: Vec<(u8, Vec<u8>)> = Vec::new();
        let mut m = std::mem::take(&mut self.messages[d]);
        let res = m.feed(body, &mut |ty, b| msgs.push((ty, b.to_vec())));
        self.messages[d] = m;
        if res.is_err() {
            self.fail(Undecrypted::Memory);
            self.hello_read = true;
            return;
        }
        for (ty, b) in msgs {
            self.message(dir, ty, &b, keys);
        }
    }

    fn message(&mut self, dir: Direction, ty: u8, msg: &[u8], keys: &KeyLog) {
        let d = dir.index();
        match (dir, ty) {
            (Direction::ClientToServer, CLIENT_HELLO) => {
                if let Some(r) = msg.get(6..38) {
                    let mut cr = [0u8; 32];
                    cr.copy_from_slice(r);
                    self.client_random = Some(cr);
                }
            }
            (Direction::ServerToClient, SERVER_HELLO) => self.server_hello(msg, keys),
            (_, ENCRYPTED_EXTENSIONS) => self.alpn = self.alpn.take().or_else(|| ee_alpn(msg)),
            (_, FINISHED) if self.version == 0x0304 => {
                // The sender's application traffic keys follow its Finished.
                self.keys[d] = self.next[d].take();
                if self.keys[d].is_none() {
                    self.fail(Undecrypted::NoKey);
                }
            }
            (_, KEY_UPDATE) if self.version == 0x0304 => {
                self.keys[d] = self.keys[d].as_ref().and_then(RecordKeys::update);
                if self.keys[d].is_none() {
                    self.fail(Undecrypted::NoKey);
                }
            }
            _ => {}
        }
    }

    fn server_hello(&mut self, msg: &[u8], keys: &KeyLog) {
        let sh = match parse_tls_message_handshake(msg) {
            Ok((_, TlsMessage::Handshake(TlsMessageHandshake::ServerHello(sh)))) => sh,
            _ => {
                self.fail(Undecrypted::NoHandshake);
                return;
            }
        };
        if sh.random == HRR_RANDOM {
            // The real ServerHello follows the client's second hello (same random).
            return;
        }
        let mut version = sh.version.0;
        let exts = sh
            .ext
            .and_then(|e| parse_tls_server_hello_extensions(e).ok())
            .map(|(_, v)| v)
            .unwrap_or_default();
        for e in &exts {
            match e {
                TlsExtension::SupportedVersions(v) => {
                    if let Some(x) = v.first() {
                        version = x.0;
                    }
                }
                TlsExtension::ALPN(p) => {
                    self.alpn = p.first().map(|p| String::from_utf8_lossy(p).into_owned())
                }
                _ => {}
            }
        }
        let mut sr = [0u8; 32];
        sr.copy_from_slice(sh.random);
        self.server_random = Some(sr);
        self.version = version;
        self.hello_read = true;
        let suite = cipher::suite(version, sh.cipher.0);
        self.overhead = match suite.map(|s| s.aead) {
            _ if version == 0x0304 => cipher::TAG_LEN + 1,
            Some(cipher::Aead::ChaCha20Poly1305) => cipher::TAG_LEN,
            Some(_) => cipher::TAG_LEN + 8,
            // CBC and others: a MAC, an IV and padding of unknown length.
            None => 0,
        };
        if self.failed.is_some() {
            return;
        }
        let Some(cr) = self.client_random else {
            self.fail(Undecrypted::NoHandshake);
            return;
        };
        let Some(suite) = suite else {
            self.fail(Undecrypted::UnsupportedSuite);
            return;
        };
        self.suite = Some(suite);
        let Some(s) = keys.get(&cr) else {
            self.fail(Undecrypted::NoKey);
            return;
        };
        let c = Direction::ClientToServer.index();
        let sv = Direction::ServerToClient.index();
        if version == 0x0304 {
            let k = |x: Option<Secret>| x.and_then(|x| RecordKeys::tls13(suite, x));
            let (ch, sh, ca, sa) = (
                k(s.client_handshake),
                k(s.server_handshake),
                k(s.client_traffic),
                k(s.server_traffic),
            );
            if ch.is_none() || sh.is_none() || ca.is_none() || sa.is_none() {
                self.fail(Undecrypted::NoKey);
                return;
            }
            self.keys = [ch, sh];
            self.next = [ca, sa];
            self.protected = [true, true];
        } else {
            let Some(master) = s.master else {
                self.fail(Undecrypted::NoKey);
                return;
            };
            let (ck, sk) = RecordKeys::tls12(suite, &master, &cr, &sr);
            self.next[c] = Some(ck);
            self.next[sv] = Some(sk);
        }
    }
}

/// The first protocol of an EncryptedExtensions message's ALPN extension.
fn ee_alpn(msg: &[u8]) -> Option<String> {
    let total = usize::from(u16::from_be_bytes([*msg.get(4)?, *msg.get(5)?]));
    let mut exts = msg.get(6..6 + total)?;
    while exts.len() >= 4 {
        let ty = u16::from_be_bytes([exts[0], exts[1]]);
        let len = usize::from(u16::from_be_bytes([exts[2], exts[3]]));
        let data = exts.get(4..4 + len)?;
        if ty == EXT_ALPN {
            let n = usize::from(*data.get(2)?);
            return data
                .get(3..3 + n)
                .map(|p| String::from_utf8_lossy(p).into_owned());
        }
        exts = &exts[4 + len..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypted_extensions_alpn() {
        // type 8, length 11, extensions length 9: ALPN (16), len 5, list len 3, "h2".
        let msg = [8, 0, 0, 11, 0, 9, 0, 16, 0, 5, 0, 3, 2, b'h', b'2'];
        assert_eq!(ee_alpn(&msg).as_deref(), Some("h2"));
        assert_eq!(ee_alpn(&msg[..14]), None, "cut short");
        assert_eq!(ee_alpn(&[8, 0, 0, 2, 0, 0]), None);
        assert_eq!(ee_alpn(&[8, 0]), None);
    }

    #[test]
    fn messages_split_across_records_and_unkept_bodies_are_skipped() {
        let mut m = MessageReader::default();
        let mut got: Vec<(u8, usize)> = Vec::new();
        // A Certificate (11) of 3 bytes, then a KeyUpdate (24) of 1 byte, cut anywhere.
        let bytes = [11, 0, 0, 3, 1, 2, 3, 24, 0, 0, 1, 0];
        for chunk in bytes.chunks(5) {
            m.feed(chunk, &mut |t, b| got.push((t, b.len()))).unwrap();
        }
        assert_eq!(got, vec![(11, 0), (24, 5)]);
        assert!(m.body.is_empty());
    }

    #[test]
    fn without_keys_only_headers_are_followed() {
        let mut s = Session::new(false, Timestamp::from_nanos(0));
        let mut recs = Vec::new();
        let keys = KeyLog::new();
        let bytes = [23, 3, 3, 0, 2, 9, 9, 23, 3, 3, 0, 1, 7];
        for chunk in bytes.chunks(3) {
            s.data(
                Direction::ClientToServer,
                Timestamp::from_nanos(1),
                chunk,
                &keys,
                &mut |o| {
                    if let Out::Record { len, .. } = o {
                        recs.push(len)
                    }
                },
            );
        }
        assert_eq!(recs, vec![2, 1]);
        assert_eq!(s.held_bytes(), 0);
        assert_eq!(s.failed, Some(Undecrypted::NoKey));
    }
}
