//! A TLS connection in the protocol stage: its cleartext handshake read for the
//! connection's facts (`crate::ingest::tls::Handshake`), its records followed
//! (`crate::ingest::tls::Session`) and, when the key log holds its secrets, the decrypted
//! application data read by the same HTTP/1 and HTTP/2 readers as plaintext connections
//! (ALPN `h2`, or a client that opens with the HTTP/2 preface, goes to HTTP/2). Exchanges
//! read from decrypted bytes are marked `tls_decrypted`.

use super::detect::{self, Sniff};
use super::h1::H1Conn;
use super::h2::H2Conn;
use super::{HttpConfig, Record, Sink};
use crate::ingest::tls::estimate::TurnEstimator;
use crate::ingest::tls::keylog::KeyLog;
use crate::ingest::tls::session::{Out, Session, Undecrypted};
use crate::ingest::tls::{Handshake, HelloNames, Progress};
use crate::model::connection::{H2Connection, TlsEstimate, TlsHandshake};
use crate::model::{CloseReason, ConnId, Coverage, Direction, Endpoint, Timestamp};

/// The HTTP/2 client connection preface's first bytes.
const PREFACE_START: &[u8] = b"PRI * HTTP/2.0";

/// The HTTP reader of decrypted bytes, chosen at the first application data.
enum Inner {
    H1(Box<H1Conn>),
    H2(Box<H2Conn>),
    /// Neither HTTP/1 nor HTTP/2 (decrypted, not read): as a cleartext connection whose
    /// first bytes are no HTTP is `other`.
    Other,
}

pub(super) struct TlsPhase {
    conn: ConnId,
    client: Endpoint,
    server: Endpoint,
    /// The cleartext handshake reader, until it is done.
    hs: Option<Box<Handshake>>,
    session: Session,
    inner: Option<Inner>,
    /// Facts of the handshake, once its reader is done.
    pub(super) facts: Option<(HelloNames, TlsHandshake)>,
    /// Turns read off the records, for the estimates without keys.
    turns: TurnEstimator,
    turns_started: bool,
    /// Records can no longer be followed (a gap, the memory budget).
    lost: bool,
}

/// What a closed TLS connection yields.
pub(super) struct TlsOutcome {
    pub exchanges: u32,
    pub names: HelloNames,
    pub facts: TlsHandshake,
    pub decryption: &'static str,
    pub estimate: Option<Box<TlsEstimate>>,
    /// HTTP/2 counters of decrypted HTTP/2.
    pub h2: Option<Box<H2Connection>>,
}

/// Marks every exchange emitted through it as read from decrypted bytes.
fn marked<R>(sink: &mut Sink<'_>, f: impl FnOnce(&mut Sink<'_>) -> R) -> R {
    let out = &mut *sink.out;
    let mut mark = |mut r: Record| {
        if let Record::Exchange(e) = &mut r {
            e.tls_decrypted = true;
        }
        out(r)
    };
    let mut inner = Sink {
        cov: sink.cov,
        out: &mut mark,
        sampler: sink.sampler.as_deref_mut(),
    };
    f(&mut inner)
}

impl TlsPhase {
    /// Starts at the ClientHello (captured at `hello_ts`; None: the capture began after
    /// the handshake, with application data): `replay` are the bytes held while sniffing,
    /// then the current event's.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn start(
        conn: ConnId,
        client: Endpoint,
        server: Endpoint,
        hello_ts: Option<Timestamp>,
        replay: &[(Direction, Timestamp, &[u8])],
        keys: &KeyLog,
        cfg: HttpConfig,
        sink: &mut Sink<'_>,
    ) -> Box<TlsPhase> {
        let mut t = Box::new(TlsPhase {
            conn,
            client,
            server,
            hs: hello_ts.map(|ts| Box::new(Handshake::new(ts))),
            session: Session::new(!keys.is_empty(), hello_ts.unwrap_or_default()),
            inner: None,
            facts: None,
            turns: TurnEstimator::default(),
            turns_started: false,
            lost: false,
        });
        if hello_ts.is_none() {
            t.session.failed = Some(Undecrypted::NoHandshake);
        }
        for &(dir, ts, b) in replay {
            t.data(dir, ts, b, keys, cfg, sink);
        }
        t
    }

    /// Whether the phase still wants the connection's bytes: its records are followed to
    /// the end (for the estimates) unless they can no longer be.
    pub(super) fn wants_more(&self) -> bool {
        !self.lost
    }

    pub(super) fn held_bytes(&self) -> usize {
        let inner = match &self.inner {
            Some(Inner::H1(h)) => h.held_bytes(),
            Some(Inner::H2(h)) => h.held_bytes(),
            Some(Inner::Other) | None => 0,
        };
        self.hs.as_ref().map_or(0, |h| h.held_bytes()) + self.session.held_bytes() + inner
    }

    pub(super) fn data(
        &mut self,
        dir: Direction,
        ts: Timestamp,
        bytes: &[u8],
        keys: &KeyLog,
        cfg: HttpConfig,
        sink: &mut Sink<'_>,
    ) {
        if let Some(h) = &mut self.hs {
            if h.data(dir, ts, bytes) == Progress::Done {
                self.finish_handshake(sink.cov);
            }
        }
        if self.lost {
            return;
        }
        let (conn, client, server) = (self.conn, self.client, self.server);
        let inner = &mut self.inner;
        let (turns, started) = (&mut self.turns, &mut self.turns_started);
        self.session.data(dir, ts, bytes, keys, &mut |o| {
            let (dir, ts, bytes, h2) = match o {
                Out::Plain { dir, ts, bytes, h2 } => (dir, ts, bytes, h2),
                Out::Record {
                    dir,
                    ts,
                    ctype,
                    len,
                    tls13,
                    overhead,
                } => {
                    if !*started && ctype == crate::ingest::tls::APPLICATION_DATA {
                        *started = true;
                        turns.start(tls13);
                    }
                    if *started {
                        turns.record(dir, ts, ctype, len, overhead);
                    }
                    return;
                }
            };
            let r = inner.get_or_insert_with(|| {
                let client_side = dir == Direction::ClientToServer;
                let preface = client_side && bytes.starts_with(PREFACE_START);
                // The first plaintext is sniffed as a cleartext connection's first bytes
                // are; a whole record too short to tell (`ping`) is not HTTP either.
                let sniff = if client_side {
                    detect::classify_client(bytes)
                } else {
                    detect::classify_server(bytes)
                };
                match sniff {
                    _ if h2 || preface => {
                        Inner::H2(Box::new(H2Conn::with_preface(conn, client, server, cfg)))
                    }
                    Sniff::Http1 => Inner::H1(Box::new(H1Conn::new(conn, client, server, cfg))),
                    _ => Inner::Other,
                }
            });
            marked(sink, |s| match r {
                Inner::H1(h) => {
                    h.data(dir, ts, bytes, s);
                }
                Inner::H2(h) => h.data(dir, ts, bytes, s),
                Inner::Other => {}
            });
        });
    }

    fn finish_handshake(&mut self, cov: &mut Coverage) {
        if let Some(h) = self.hs.take() {
            self.facts = Some(h.finish(cov));
        }
    }

    /// Bytes of a direction were not captured.
    pub(super) fn gap(&mut self, cov: &mut Coverage) {
        if let Some(h) = &mut self.hs {
            h.gap();
            self.finish_handshake(cov);
        }
        self.session.fail(Undecrypted::Gap);
        self.lost = true;
    }

    /// The stage's memory budget is spent: the handshake reader and the decryption stop.
    pub(super) fn shed(&mut self, sink: &mut Sink<'_>) {
        if let Some(h) = &mut self.hs {
            h.abandon();
            self.finish_handshake(sink.cov);
        }
        // Also drops the buffers a session without keys holds for the hellos.
        self.session.fail(Undecrypted::Memory);
        self.lost = true;
        match &mut self.inner {
            Some(Inner::H1(h)) => marked(sink, |s| h.shed(Timestamp::default(), s)),
            Some(Inner::H2(h)) => marked(sink, |s| h.shed(s)),
            Some(Inner::Other) | None => {}
        }
    }

    pub(super) fn end(&mut self, dir: Direction, ts: Timestamp, sink: &mut Sink<'_>) {
        if let Some(Inner::H1(h)) = &mut self.inner {
            marked(sink, |s| h.end(dir, ts, s));
        }
    }

    /// Closes the connection: flushes the inner reader and counts the decryption outcome.
    /// Returns the exchanges read, the handshake's facts and how decryption went.
    pub(super) fn close(mut self, reason: CloseReason, sink: &mut Sink<'_>) -> TlsOutcome {
        self.finish_handshake(sink.cov);
        let mut h2_stats = None;
        let exchanges = match &mut self.inner {
            Some(Inner::H1(h)) => {
                marked(sink, |s| h.close(reason, s));
                h.emitted
            }
            Some(Inner::H2(h)) => {
                marked(sink, |s| h.close(reason, s));
                h2_stats = Some(Box::new(std::mem::take(&mut h.stats)));
                h.emitted
            }
            Some(Inner::Other) | None => 0,
        };
        let outcome = match self.session.failed {
            // Decryption went on to the end, or stopped after some data was read.
            _ if self.session.decrypted_records > 0 => "decrypted",
            None => "decrypted",
            Some(why) => why.as_str(),
        };
        let cov = &mut *sink.cov;
        if outcome == "decrypted" {
            cov.tls_decrypted += 1;
        } else {
            *cov.tls_undecrypted.entry(outcome).or_insert(0) += 1;
        }
        let (names, facts) = self.facts.take().unwrap_or_default();
        // HTTP/2 when selected (TLS 1.2's ServerHello, or 1.3's EncryptedExtensions when
        // decrypted); without keys a TLS 1.3 client that offered h2 may be speaking it.
        let selected = self.session.alpn.as_deref();
        let offered_h2 = names
            .alpn
            .as_deref()
            .is_some_and(|a| a.split(',').any(|p| p == "h2"));
        let tls13 = self.session.version() == 0x0304;
        let h2 = selected == Some("h2") || (selected.is_none() && tls13 && offered_h2);
        let estimate = self.turns.finish(h2, selected.is_some()).map(Box::new);
        TlsOutcome {
            exchanges,
            names,
            facts,
            decryption: outcome,
            estimate,
            h2: h2_stats,
        }
    }
}
