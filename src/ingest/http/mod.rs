//! Protocol: byte streams -> HTTP exchanges and connection records. HTTP/1.x is read here;
//! HTTP/2 (the preface, an `Upgrade: h2c`, or frames found in a connection whose first
//! bytes were none of the known ones) is handed to `crate::ingest::http::h2`. TLS goes to
//! `tls` (this folder): its cleartext handshake is read by `crate::ingest::tls`, its
//! records are decrypted with a key log and read as HTTP, or followed for estimates.

pub(crate) mod body;
pub(crate) mod coding;
pub mod detect;
pub mod h1;
pub(crate) mod grpc_web;
pub mod h2;
pub(crate) mod head;
pub mod route;
pub(crate) mod tls;
pub(crate) mod trace;

#[cfg(test)]
pub(crate) mod tests;

use rustc_hash::FxHashMap;

use crate::ingest::flow::{EventKind, Interest, StreamEvent};
use crate::ingest::serialization::{KeySamples, PayloadRow, Sampler};
use crate::ingest::tls::keylog::KeyLog;
use crate::model::connection::TlsHandshake;
use crate::model::coverage::MAX_UNANSWERED_SERVERS;
use crate::model::{
    CloseReason, ConnId, Connection, Coverage, Direction, Endpoint, Exchange, L7Protocol,
    TcpSummary, Timestamp,
};
use detect::{Sniff, SNIFF_LEN};
use h1::H1Conn;
use h2::sync::{Probe, Verdict};
use h2::H2Conn;

/// Where emitted records and counters go.
pub(crate) struct Sink<'a> {
    pub cov: &'a mut Coverage,
    pub out: &'a mut dyn FnMut(Record),
    /// Where finished bodies go to be sampled (`None`: bodies are not sampled).
    pub sampler: Option<&'a mut Sampler>,
}

/// Owned output of the protocol stage.
// Moved once into the tables stage; boxing exchanges would add an allocation per record.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    Exchange(Exchange),
    Connection(Connection),
}

#[derive(Clone, Copy, Debug)]
pub struct HttpConfig {
    /// Largest header block accepted (bytes); larger is malformed.
    pub max_header_bytes: usize,
    /// Requests waiting for a response on one connection (pipelining depth).
    pub max_pending_requests: usize,
    /// Decoded body bytes counted per body before decoding stops (bomb guard).
    pub max_decoded_body_bytes: u64,
    /// Header-block bytes buffered across all connections; past it the connection that
    /// grew the total drops its partial header blocks (counted) so memory stays bounded.
    pub max_header_bytes_total: usize,
    /// Bounds and rules of the JSON body sampler (serialization cost).
    pub sampler: crate::ingest::serialization::SamplerConfig,
    /// HTTP/2 streams open at once on one connection; beyond it the lowest-numbered is
    /// given up (emitted as truncated, counted).
    pub max_h2_streams: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_header_bytes: 64 << 10,
            max_pending_requests: 64,
            max_decoded_body_bytes: 256 << 20,
            max_header_bytes_total: 32 << 20,
            sampler: crate::ingest::serialization::SamplerConfig::default(),
            max_h2_streams: 1000,
        }
    }
}

/// The first bytes of each side, kept until they say what the connection carries.
struct SniffBuf {
    buf: [[u8; SNIFF_LEN]; 2],
    len: [usize; 2],
    first_ts: [Timestamp; 2],
}

enum Phase {
    Sniff(Box<SniffBuf>),
    Http(Box<H1Conn>),
    /// TLS: the cleartext handshake of both sides and, with keys, the decrypted records.
    Tls(Box<tls::TlsPhase>),
    /// HTTP/2 frames.
    H2(Box<H2Phase>),
    /// First bytes that were none of the above, held while they may yet read as HTTP/2
    /// frames (a capture that began mid-connection).
    H2Probe(Box<Probe>),
    /// Not parsed any further (TLS, HTTP/2, other), or nothing at all seen.
    Ignored(L7Protocol),
}

/// An HTTP/2 connection, and what HTTP/1 read on it before an `Upgrade: h2c`.
struct H2Phase {
    h2: H2Conn,
    /// (version, upgraded_to, exchanges, malformed) of the HTTP/1 part.
    before: Option<(L7Protocol, Option<String>, u32, u32)>,
}

struct ConnState {
    client: Endpoint,
    server: Endpoint,
    phase: Phase,
}

pub struct HttpStage {
    config: HttpConfig,
    conns: FxHashMap<ConnId, ConnState>,
    /// Bytes held in header buffers across all connections.
    held: usize,
    /// JSON bodies kept for the serialization measures (`crate::ingest::serialization`).
    sampler: Option<Box<Sampler>>,
    /// TLS secrets (`--keylog`, and Decryption Secrets Blocks met in the captures).
    keys: KeyLog,
}

impl HttpStage {
    pub fn new(config: HttpConfig) -> Self {
        HttpStage {
            config,
            conns: FxHashMap::default(),
            held: 0,
            sampler: Some(Box::new(Sampler::new(config.sampler))),
            keys: KeyLog::new(),
        }
    }

    /// Adds TLS secrets; connections whose ServerHello comes later can be decrypted.
    pub fn add_keys(&mut self, keys: &KeyLog) {
        self.keys.merge(keys);
    }

    /// Adds the text of a key log (a Decryption Secrets Block's payload).
    pub fn add_keylog_text(&mut self, text: &[u8]) {
        self.keys.add(text);
    }

    /// Measures the sampled JSON bodies (one row per key) and adds the sampler's counters
    /// to `cov`; call once, at the end of the run.
    pub fn finish_payloads(&mut self, cov: &mut Coverage) -> Vec<PayloadRow> {
        self.finish_payloads_with_samples(cov).0
    }

    /// [`HttpStage::finish_payloads`], with each key's parsed documents (in memory only,
    /// for the migration kit).
    pub fn finish_payloads_with_samples(
        &mut self,
        cov: &mut Coverage,
    ) -> (Vec<PayloadRow>, Vec<KeySamples>) {
        self.sampler
            .take()
            .map_or_else(Default::default, |s| s.finish_with_samples(cov))
    }

    /// The JSON sample, unmeasured: several stages' samples (one per thread) are merged
    /// ([`Sampler::merge`]) and then measured once ([`Sampler::finish`]).
    pub fn take_sampler(&mut self) -> Option<Box<Sampler>> {
        self.sampler.take()
    }

    /// Connections currently tracked.
    pub fn live_connections(&self) -> usize {
        self.conns.len()
    }

    /// Bytes held in header buffers across all connections.
    pub fn held_header_bytes(&self) -> usize {
        self.held
    }

    /// Consumes one stream event; emits exchanges as they complete and the connection
    /// record on `Closed`.
    pub fn push(
        &mut self,
        ev: StreamEvent<'_>,
        cov: &mut Coverage,
        out: &mut impl FnMut(Record),
    ) -> Interest {
        // Taken out while the event is handled, so that `dispatch` may borrow `self`.
        let mut sampler = self.sampler.take();
        let mut sink = Sink {
            cov,
            out,
            sampler: sampler.as_deref_mut(),
        };
        let held = |conns: &FxHashMap<ConnId, ConnState>| {
            conns.get(&ev.conn).map_or(0, ConnState::held_bytes)
        };
        let before = held(&self.conns);
        let mut interest = self.dispatch(ev, &mut sink);
        let mut after = held(&self.conns);
        if self.held - before + after > self.config.max_header_bytes_total {
            if let Some(st) = self.conns.get_mut(&ev.conn) {
                match &mut st.phase {
                    Phase::Http(h) => h.shed(ev.ts, &mut sink),
                    Phase::Tls(t) => {
                        t.shed(&mut sink);
                        interest = Interest::Ignore;
                    }
                    Phase::H2(h) => h.h2.shed(&mut sink),
                    Phase::H2Probe(_) => interest = st.ignore(L7Protocol::Other),
                    _ => {}
                }
            }
            after = held(&self.conns);
        }
        self.held = self.held - before + after;
        self.sampler = sampler;
        interest
    }

    fn dispatch(&mut self, ev: StreamEvent<'_>, sink: &mut Sink<'_>) -> Interest {
        let cfg = self.config;
        match ev.kind {
            EventKind::Opened { client, server } => {
                let sniff = SniffBuf {
                    buf: [[0; SNIFF_LEN]; 2],
                    len: [0; 2],
                    first_ts: [ev.ts; 2],
                };
                let st = ConnState {
                    client,
                    server,
                    phase: Phase::Sniff(Box::new(sniff)),
                };
                self.conns.insert(ev.conn, st);
                Interest::Keep
            }
            EventKind::Data {
                dir,
                bytes,
                stall_ns,
            } => match self.conns.get_mut(&ev.conn) {
                Some(st) => {
                    let keys = &self.keys;
                    st.data(ev.conn, dir, ev.ts, bytes, stall_ns, cfg, keys, sink)
                }
                None => Interest::Keep,
            },
            EventKind::Gap { dir, len } => {
                if let Some(st) = self.conns.get_mut(&ev.conn) {
                    if let Phase::Sniff(_) = st.phase {
                        // The first bytes are lost: assume HTTP/1 and resynchronise.
                        st.start_http(ev.conn, cfg, sink);
                    }
                    match &mut st.phase {
                        Phase::Http(h) => {
                            h.gap(dir, len, ev.ts, sink);
                            h.interest()
                        }
                        // The rest of the handshake and records cannot be followed.
                        Phase::Tls(t) => {
                            t.gap(sink.cov);
                            Interest::Ignore
                        }
                        Phase::H2(h) => {
                            h.h2.gap(dir, len, sink);
                            Interest::Keep
                        }
                        Phase::H2Probe(p) => {
                            p.gap(dir);
                            Interest::Keep
                        }
                        Phase::Sniff(_) => Interest::Keep,
                        Phase::Ignored(_) => Interest::Ignore,
                    }
                } else {
                    Interest::Keep
                }
            }
            EventKind::End { dir } => match self.conns.get_mut(&ev.conn) {
                Some(st) => match &mut st.phase {
                    Phase::Http(h) => {
                        h.end(dir, ev.ts, sink);
                        Interest::Keep
                    }
                    Phase::Tls(t) => {
                        t.end(dir, ev.ts, sink);
                        Interest::Keep
                    }
                    Phase::Sniff(_) | Phase::H2(_) | Phase::H2Probe(_) => Interest::Keep,
                    Phase::Ignored(_) => Interest::Ignore,
                },
                None => Interest::Keep,
            },
            EventKind::Closed(summary) => {
                if summary.unanswered_attempt() {
                    self.conns.remove(&ev.conn);
                    count_unanswered(sink.cov, summary);
                    return Interest::Ignore;
                }
                let record = match self.conns.remove(&ev.conn) {
                    Some(st) => st.close(summary, sink),
                    None => unknown_connection(summary),
                };
                *sink
                    .cov
                    .connections_by_protocol
                    .entry(record.protocol.as_str())
                    .or_insert(0) += 1;
                (sink.out)(Record::Connection(record));
                Interest::Ignore
            }
        }
    }
}

/// An unanswered connection attempt, counted instead of tabled (see `Coverage`).
fn count_unanswered(cov: &mut Coverage, summary: &TcpSummary) {
    cov.unanswered_attempts += 1;
    let server = summary.server.to_string();
    let by = &mut cov.unanswered_attempts_by_server;
    let key = if by.contains_key(&server) || by.len() < MAX_UNANSWERED_SERVERS {
        server
    } else {
        "other".to_owned()
    };
    *by.entry(key).or_insert(0) += 1;
}

/// A connection closed without `Opened` (should not happen): still reported.
fn unknown_connection(summary: &TcpSummary) -> Connection {
    let bytes = summary.client_to_server.bytes + summary.server_to_client.bytes;
    Connection {
        tcp: summary.clone(),
        protocol: if bytes == 0 {
            L7Protocol::Empty
        } else {
            L7Protocol::Other
        },
        upgraded_to: None,
        exchanges: 0,
        malformed_messages: 0,
        tls_sni: None,
        tls_alpn: None,
        tls_handshake: TlsHandshake::default(),
        tls_decryption: None,
        tls_estimate: None,
        h2: None,
    }
}

fn verdict(sb: &SniffBuf) -> Sniff {
    let client = detect::classify_client(&sb.buf[0][..sb.len[0]]);
    match client {
        Sniff::NeedMore if sb.len[1] > 0 => detect::classify_server(&sb.buf[1][..sb.len[1]]),
        v => v,
    }
}

impl ConnState {
    fn held_bytes(&self) -> usize {
        match &self.phase {
            Phase::Http(h) => h.held_bytes(),
            Phase::Tls(t) => t.held_bytes(),
            Phase::H2(h) => h.h2.held_bytes(),
            Phase::H2Probe(p) => p.held_bytes(),
            _ => 0,
        }
    }

    /// `stall_ns`: the segment carrying `bytes` ended a sender stall (see `EventKind::Data`).
    #[allow(clippy::too_many_arguments)]
    fn data(
        &mut self,
        conn: ConnId,
        dir: Direction,
        ts: Timestamp,
        bytes: &[u8],
        stall_ns: Option<i64>,
        cfg: HttpConfig,
        keys: &KeyLog,
        sink: &mut Sink<'_>,
    ) -> Interest {
        let sb = match &mut self.phase {
            Phase::Http(h) => {
                if let Some(ns) = stall_ns {
                    h.stall(dir, ns);
                }
                let i = h.data(dir, ts, bytes, sink);
                return self.after_http(i, conn, cfg, dir, ts, bytes, sink);
            }
            Phase::Tls(t) => {
                t.data(dir, ts, bytes, keys, cfg, sink);
                return tls_interest(t);
            }
            Phase::H2(h) => {
                h.h2.data(dir, ts, bytes, sink);
                return Interest::Keep;
            }
            Phase::H2Probe(p) => {
                let v = p.push(dir, ts, bytes);
                return self.probed(v, conn, cfg, sink);
            }
            Phase::Ignored(_) => return Interest::Ignore,
            Phase::Sniff(sb) => sb,
        };
        if bytes.is_empty() {
            return Interest::Keep;
        }
        let d = dir.index();
        let prev = sb.len[d];
        if prev == 0 {
            sb.first_ts[d] = ts;
        }
        let k = (SNIFF_LEN - prev).min(bytes.len());
        sb.buf[d][prev..prev + k].copy_from_slice(&bytes[..k]);
        sb.len[d] += k;
        let sniff = verdict(sb);
        match sniff {
            Sniff::NeedMore => Interest::Keep,
            Sniff::Http1 => {
                // Replay this side's earlier bytes, then deliver the current event whole.
                sb.len[d] = prev;
                self.start_http(conn, cfg, sink);
                match &mut self.phase {
                    Phase::Http(h) => {
                        if let Some(ns) = stall_ns {
                            h.stall(dir, ns);
                        }
                        let i = h.data(dir, ts, bytes, sink);
                        self.after_http(i, conn, cfg, dir, ts, bytes, sink)
                    }
                    _ => Interest::Ignore,
                }
            }
            Sniff::Http2 => {
                sb.len[d] = prev;
                let mut h2 = H2Conn::with_preface(conn, self.client, self.server, cfg);
                for (dir, ts, b) in sniffed(sb) {
                    h2.data(dir, ts, b, sink);
                }
                h2.data(dir, ts, bytes, sink);
                self.phase = Phase::H2(Box::new(H2Phase { h2, before: None }));
                Interest::Keep
            }
            // The client's first bytes are a handshake record: read the handshake from
            // them (the sniffed prefixes, then this event's bytes); or application data
            // first: the capture began after the handshake (no keys can be found without
            // the client random, but the records give the estimates).
            Sniff::Tls | Sniff::TlsData if sb.len[0] > 0 || sniff == Sniff::TlsData => {
                sb.len[d] = prev;
                let hello = (sniff == Sniff::Tls).then_some(sb.first_ts[0]);
                let mut replay = sniffed(sb);
                if hello.is_some() {
                    // The client's held bytes first (the ClientHello), then the server's.
                    replay.sort_by_key(|(side, _, _)| side.index());
                }
                replay.push((dir, ts, bytes));
                let t = tls::TlsPhase::start(
                    conn,
                    self.client,
                    self.server,
                    hello,
                    &replay,
                    keys,
                    cfg,
                    sink,
                );
                let i = tls_interest(&t);
                self.phase = Phase::Tls(t);
                i
            }
            // Known only by the server's bytes: the ClientHello was not captured.
            Sniff::Tls | Sniff::TlsData => self.ignore(L7Protocol::Tls),
            // Not a known opening: may be HTTP/2 frames mid-connection.
            Sniff::Other => {
                sb.len[d] = prev;
                let mut p = Box::<Probe>::default();
                let mut v = Verdict::More;
                let held = sniffed(sb);
                for (dir, ts, b) in held.into_iter().chain([(dir, ts, bytes)]) {
                    let now = p.push(dir, ts, b);
                    if v == Verdict::More {
                        v = now;
                    }
                }
                self.phase = Phase::H2Probe(p);
                self.probed(v, conn, cfg, sink)
            }
        }
    }

    /// After HTTP/1 bytes: an `Upgrade: h2c` answered 101 hands the connection, and the
    /// bytes after the 101, to the HTTP/2 reader.
    #[allow(clippy::too_many_arguments)]
    fn after_http(
        &mut self,
        interest: Interest,
        conn: ConnId,
        cfg: HttpConfig,
        dir: Direction,
        ts: Timestamp,
        bytes: &[u8],
        sink: &mut Sink<'_>,
    ) -> Interest {
        let Phase::Http(h) = &mut self.phase else {
            return interest;
        };
        if h.upgraded_to.as_deref() != Some("h2c") {
            return interest;
        }
        let rest = h.switched_at.take().unwrap_or(bytes.len());
        let request = h.h2c_request.take();
        let next = h.next_index();
        h.close(CloseReason::Fin, sink);
        let p = match h.version {
            Some("HTTP/1.0") => L7Protocol::Http10,
            _ => L7Protocol::Http11,
        };
        let before = (p, h.upgraded_to.take(), h.emitted, h.malformed);
        let mut h2 = H2Conn::upgraded(conn, self.client, self.server, cfg, request, next);
        if let Some(b) = bytes.get(rest..).filter(|b| !b.is_empty()) {
            h2.data(dir, ts, b, sink);
        }
        self.phase = Phase::H2(Box::new(H2Phase {
            h2,
            before: Some(before),
        }));
        Interest::Keep
    }

    /// Acts on the probe's verdict: HTTP/2 replays the held segments into the reader.
    fn probed(
        &mut self,
        v: Verdict,
        conn: ConnId,
        cfg: HttpConfig,
        sink: &mut Sink<'_>,
    ) -> Interest {
        let Phase::H2Probe(p) = &self.phase else {
            return Interest::Keep;
        };
        let mut h2 = match v {
            Verdict::More => return Interest::Keep,
            Verdict::NotHttp2 => return self.ignore(L7Protocol::Other),
            Verdict::Http2 => H2Conn::mid_connection(conn, self.client, self.server, cfg),
            Verdict::Preface => H2Conn::with_preface(conn, self.client, self.server, cfg),
        };
        // With the preface, the server's frames before it are from the start too.
        for (dir, ts, b) in p.segments() {
            h2.data(dir, ts, b, sink);
        }
        self.phase = Phase::H2(Box::new(H2Phase { h2, before: None }));
        Interest::Keep
    }

    fn ignore(&mut self, p: L7Protocol) -> Interest {
        self.phase = Phase::Ignored(p);
        Interest::Ignore
    }

    /// Switches to HTTP/1 parsing, replaying the bytes held while sniffing in time order.
    fn start_http(&mut self, conn: ConnId, cfg: HttpConfig, sink: &mut Sink<'_>) {
        let mut h = Box::new(H1Conn::new(conn, self.client, self.server, cfg));
        if let Phase::Sniff(sb) = &self.phase {
            for (dir, ts, b) in sniffed(sb) {
                h.data(dir, ts, b, sink);
            }
        }
        self.phase = Phase::Http(h);
    }

    fn close(self, summary: &TcpSummary, sink: &mut Sink<'_>) -> Connection {
        let mut tls = None;
        let mut tls_decryption = None;
        let mut tls_estimate = None;
        let mut h2_stats = None;
        let mut swapped = false;
        let (protocol, upgraded_to, exchanges, malformed_messages) = match self.phase {
            Phase::Sniff(sb) => {
                let p = if sb.len == [0, 0] {
                    L7Protocol::Empty
                } else {
                    L7Protocol::Other
                };
                (p, None, 0, 0)
            }
            Phase::Ignored(p) => {
                if p == L7Protocol::Tls {
                    // The ClientHello was not captured: nothing to decrypt with.
                    tls_decryption =
                        Some(crate::ingest::tls::session::Undecrypted::NoHandshake.as_str());
                    *sink.cov.tls_undecrypted.entry("no_handshake").or_insert(0) += 1;
                }
                (p, None, 0, 0)
            }
            Phase::H2Probe(_) => (L7Protocol::Other, None, 0, 0),
            Phase::H2(h) => {
                let H2Phase { mut h2, before } = *h;
                h2.close(summary.close, sink);
                swapped = h2.swapped;
                let (p, up, n, bad) = before.unwrap_or((L7Protocol::Http2, None, 0, 0));
                h2_stats = Some(Box::new(h2.stats));
                (p, up, n.saturating_add(h2.emitted), bad)
            }
            Phase::Tls(t) => {
                let o = t.close(summary.close, sink);
                tls = Some((o.names, o.facts));
                tls_decryption = Some(o.decryption);
                tls_estimate = o.estimate;
                h2_stats = o.h2;
                (L7Protocol::Tls, None, o.exchanges, 0)
            }
            Phase::Http(mut h) => {
                h.close(summary.close, sink);
                let p = match h.version {
                    Some("HTTP/1.0") => L7Protocol::Http10,
                    Some(_) => L7Protocol::Http11,
                    None => L7Protocol::Other,
                };
                (p, h.upgraded_to.take(), h.emitted, h.malformed)
            }
        };
        let (names, tls_handshake) = tls.unwrap_or_default();
        Connection {
            // The HTTP/2 frames showed the flow stage's guess of the roles wrong.
            tcp: if swapped {
                summary.reversed()
            } else {
                summary.clone()
            },
            protocol,
            upgraded_to,
            exchanges,
            malformed_messages,
            tls_sni: names.sni,
            tls_alpn: names.alpn,
            tls_handshake,
            tls_decryption,
            tls_estimate,
            h2: h2_stats,
        }
    }
}

/// Keep a TLS connection's bytes while its handshake or records are still read.
fn tls_interest(t: &tls::TlsPhase) -> Interest {
    if t.wants_more() {
        Interest::Keep
    } else {
        Interest::Ignore
    }
}

/// The bytes held while sniffing, both sides, in time order.
fn sniffed(sb: &SniffBuf) -> Vec<(Direction, Timestamp, &[u8])> {
    let mut order = [Direction::ClientToServer, Direction::ServerToClient];
    if sb.first_ts[1] < sb.first_ts[0] {
        order.reverse();
    }
    order
        .into_iter()
        .filter(|dir| sb.len[dir.index()] > 0)
        .map(|dir| {
            let d = dir.index();
            (dir, sb.first_ts[d], &sb.buf[d][..sb.len[d]])
        })
        .collect()
}
