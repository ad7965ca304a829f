//! HTTP/1.0 and 1.1 message framing and request/response pairing (httparse).
//!
//! One [`H1Conn`] per connection, one [`Side`] per direction. Header blocks are parsed in
//! place from the borrowed `Data` slice; only a block that spans events is copied into the
//! side's buffer (capped). Bodies are counted, never copied.
//!
//! Pairing: requests wait in a FIFO (`slots`) and responses answer its front in order
//! (pipelining). After the server direction loses sync (gap or malformed response) and finds
//! the next status line at time T, the pending requests are re-checked: the front request is
//! dropped as `Gap` (its response was lost) while the next pending request began at or before
//! T *and* after the last server byte seen before the loss — a client sent that next request
//! while the server's bytes were missing, which (unless it was already pipelining) means it had
//! the previous response. A response that starts before the first byte of the front request
//! cannot answer it and is kept as a response without request.

use std::collections::VecDeque;
use std::mem;

use memchr::memchr;

use super::body::Chunked;
use super::coding::Decoder;
use super::grpc_web;
use super::head::{self, Head, Parsed};
pub(crate) use super::Sink;
use super::{HttpConfig, Record};
use crate::ingest::flow::Interest;
use crate::ingest::h2cost::{self, Replay};
use crate::ingest::http::h2::grpc::MessageReader;
use crate::ingest::serialization::{self, BodyKind, BodyRank, Capture, Offer, SampleKey};
use crate::model::{
    CloseReason, Completeness, ConnId, Coverage, Direction, Endpoint, Exchange, Timestamp,
};

const CLIENT: usize = 0;
const SERVER: usize = 1;

struct Slot {
    ex: Exchange,
    req_done: bool,
    resp_done: bool,
    /// Some response bytes (an interim or the final head) arrived.
    resp_started: bool,
    head: bool,
    connect: bool,
    /// CONNECT or Upgrade: the client waits for the answer before sending more.
    wants_switch: bool,
    upgrade_req: Option<String>,
}

enum ParseState {
    /// Expecting the start of a message.
    Idle,
    /// A header block spans events; its start is in `Side::buf`.
    Headers,
    Body(BodyState),
    /// Sync lost: scanning for the start of a message.
    Resync,
    /// Client sent CONNECT/Upgrade and waits for the answer.
    Wait,
    /// Nothing more to parse in this direction.
    Off,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Front,
    Orphan,
}

enum Framing {
    Length(u64),
    Chunked(Chunked),
    Close,
}

struct BodyState {
    framing: Framing,
    target: Target,
    wire: u64,
    len: u64,
    dec: Option<Decoder>,
    dec_failed: bool,
    gap: bool,
    /// A JSON body is being kept for the serialization sampler (in `sample`, or in the
    /// decoder when the body is content-encoded).
    json: bool,
    /// The sampler admitted this JSON body (it counted it when it started).
    admitted: bool,
    sample: Option<Box<Capture>>,
    /// gRPC-Web: the body's messages are counted.
    grpc: Option<Box<MessageReader>>,
}

impl BodyState {
    fn new(framing: Framing, target: Target, dec: Option<Decoder>) -> Self {
        BodyState {
            framing,
            target,
            wire: 0,
            len: 0,
            dec,
            dec_failed: false,
            gap: false,
            json: false,
            admitted: false,
            sample: None,
            grpc: None,
        }
    }

    /// Keeps this body's decoded bytes when it is JSON in a coding we can undo (see
    /// [`wants_sample`]), a sampler is listening and it admits the body.
    /// `key` is the body's sample key, given (built) only when the body is such JSON.
    fn sampled(mut self, key: Option<(SampleKey, BodyRank)>, sink: &mut Sink<'_>) -> Self {
        let (Some(sampler), Some((key, rank))) = (sink.sampler.as_deref_mut(), key) else {
            return self;
        };
        self.json = true;
        let Some(capture) = sampler.admit(key, rank) else {
            // Counted; the reservoir does not keep it, so its bytes are not copied.
            return self;
        };
        self.admitted = true;
        match &mut self.dec {
            Some(d) => d.keep(capture),
            None => self.sample = Some(capture),
        }
        self
    }

    /// What the sampler is told about this finished admitted body (after
    /// [`BodyState::decoded`]).
    fn offer(&mut self, cut: bool) -> Offer {
        let kept = match &mut self.dec {
            Some(d) => d.take_kept(),
            None => self.sample.take(),
        };
        match kept {
            Some(c) if !(cut || self.gap || self.dec_failed) => Offer::Json(c),
            _ => Offer::AdmittedLost,
        }
    }

    // Saturating: after a gap (`lose`) the counts may already be near `u64::MAX`.
    fn feed(&mut self, b: &[u8]) -> Result<(usize, bool), super::body::ChunkError> {
        match &mut self.framing {
            Framing::Length(rem) => {
                let k = usize::try_from(*rem).unwrap_or(usize::MAX).min(b.len());
                self.wire = self.wire.saturating_add(k as u64);
                self.len = self.len.saturating_add(k as u64);
                decode(
                    &mut self.dec,
                    &mut self.dec_failed,
                    &mut self.sample,
                    &b[..k],
                );
                if let Some(g) = &mut self.grpc {
                    g.feed(&b[..k]);
                }
                *rem -= k as u64;
                Ok((k, *rem == 0))
            }
            Framing::Close => {
                self.wire = self.wire.saturating_add(b.len() as u64);
                self.len = self.len.saturating_add(b.len() as u64);
                decode(&mut self.dec, &mut self.dec_failed, &mut self.sample, b);
                if let Some(g) = &mut self.grpc {
                    g.feed(b);
                }
                Ok((b.len(), false))
            }
            Framing::Chunked(c) => {
                let (dec, failed, len) = (&mut self.dec, &mut self.dec_failed, &mut self.len);
                let sample = &mut self.sample;
                let grpc = &mut self.grpc;
                let r = c.feed(b, &mut |d: &[u8]| {
                    *len = len.saturating_add(d.len() as u64);
                    decode(dec, failed, sample, d);
                    if let Some(g) = grpc {
                        g.feed(d);
                    }
                });
                let n = match r {
                    Ok((n, _)) => n,
                    Err(e) => e.consumed,
                };
                self.wire = self.wire.saturating_add(n as u64);
                r
            }
        }
    }

    /// Lost bytes make the decoded length unknowable.
    fn lose(&mut self, len: u64) {
        // Saturating: a gap length comes from sequence arithmetic we do not control.
        self.wire = self.wire.saturating_add(len);
        self.len = self.len.saturating_add(len);
        self.gap = true;
        self.dec = None;
        self.dec_failed = true;
        self.sample = None;
        if let Some(g) = &mut self.grpc {
            g.lose(len);
        }
    }

    fn decoded(&mut self) -> Option<u64> {
        if self.dec_failed {
            return None;
        }
        self.dec.as_mut()?.finish().ok()
    }
}

fn decode(
    dec: &mut Option<Decoder>,
    failed: &mut bool,
    sample: &mut Option<Box<Capture>>,
    d: &[u8],
) {
    if let Some(s) = sample {
        s.push(d);
    }
    if let Some(x) = dec {
        if x.feed(d).is_err() {
            *dec = None;
            *failed = true;
        }
    }
}

/// Whether the body of `ex` in direction `d` should be kept for sampling: JSON, and either
/// not content-encoded or in a coding `dec` undoes.
fn wants_sample(ex: &Exchange, d: usize, dec: Option<&Decoder>) -> bool {
    let (ct, ce) = if d == CLIENT {
        (&ex.req_content_type, &ex.req_content_encoding)
    } else {
        (&ex.resp_content_type, &ex.resp_content_encoding)
    };
    let identity = |ce: &String| {
        ce.split(',')
            .all(|c| c.trim().is_empty() || c.trim().eq_ignore_ascii_case("identity"))
    };
    serialization::is_json(ct.as_deref()) && (dec.is_some() || ce.as_ref().is_none_or(identity))
}

/// Hands a finished message's body (or its absence) to the sampler: JSON bodies as kept,
/// other bodies counted by kind; a message without body nor Content-Type is no payload.
fn offer_body(
    sink: &mut Sink<'_>,
    ex: &Exchange,
    d: usize,
    body: Option<&mut BodyState>,
    outcome: Option<Completeness>,
) {
    let Some(sampler) = sink.sampler.as_deref_mut() else {
        return;
    };
    let (ct, dir) = if d == CLIENT {
        (&ex.req_content_type, Direction::ClientToServer)
    } else {
        (&ex.resp_content_type, Direction::ServerToClient)
    };
    let len = body.as_ref().map_or(0, |b| b.len);
    let Some(kind) = BodyKind::of(ct.as_deref(), len) else {
        return;
    };
    let cut = matches!(outcome, Some(Completeness::Gap | Completeness::Truncated));
    let offer = match body {
        // Counted as JSON when it started (admitted or not), but empty after all.
        Some(b) if b.json && kind != BodyKind::Json => Offer::AdmittedNotJson(kind),
        Some(b) if b.admitted => b.offer(cut),
        // JSON the reservoir counted at its start and chose not to keep.
        Some(b) if b.json && kind == BodyKind::Json => return,
        // JSON in a coding we do not undo (br): not measurable.
        Some(_) if kind == BodyKind::Json => Offer::JsonLost,
        _ => Offer::Other(kind),
    };
    sampler.offer(SampleKey::of(ex, dir), offer);
}

struct Side {
    st: ParseState,
    /// Start of a header block that spans events (at most `max_header_bytes`).
    buf: Vec<u8>,
    /// Timestamp of the first byte of the message in progress.
    first: Timestamp,
    last_ts: Option<Timestamp>,
    /// Server: last data seen before sync was lost (pairing rule).
    lost_from: Option<Timestamp>,
    /// Server: the next head follows a resync.
    resynced: bool,
    /// Client: bytes arrived while waiting for an upgrade answer.
    wait_dropped: bool,
    /// The first line of the header block in `buf` is complete.
    line_seen: bool,
    /// The longest sender stall inside the message in progress, until the message is
    /// finished and the stall written to its exchange.
    stall_ns: Option<i64>,
}

impl Side {
    fn new() -> Self {
        Side {
            st: ParseState::Idle,
            buf: Vec::new(),
            first: Timestamp::default(),
            last_ts: None,
            lost_from: None,
            resynced: false,
            wait_dropped: false,
            line_seen: false,
            stall_ns: None,
        }
    }
}

/// HTTP/1 state of one connection.
pub(crate) struct H1Conn {
    conn: ConnId,
    client: Endpoint,
    server: Endpoint,
    cfg: HttpConfig,
    sides: [Side; 2],
    slots: VecDeque<Slot>,
    /// A response with no request to answer, in progress.
    orphan: Option<Box<Exchange>>,
    next_index: u32,
    pub(crate) emitted: u32,
    pub(crate) malformed: u32,
    pub(crate) upgraded_to: Option<String>,
    /// Version of the first request parsed (of the first response if no request was).
    pub(crate) version: Option<&'static str>,
    client_gap_seen: bool,
    /// HPACK state for the HTTP/2 and gRPC sizes; None once shed for memory.
    replay: Option<Box<Replay>>,
    /// After an `Upgrade: h2c` answered 101: where in the last `data` bytes HTTP/2 began,
    /// and the request that asked (stream 1 carries its response).
    pub(crate) switched_at: Option<usize>,
    pub(crate) h2c_request: Option<Box<Exchange>>,
}

impl Drop for H1Conn {
    fn drop(&mut self) {
        if let Some(replay) = self.replay.take() {
            replay.recycle();
        }
    }
}

impl H1Conn {
    pub(crate) fn new(conn: ConnId, client: Endpoint, server: Endpoint, cfg: HttpConfig) -> Self {
        H1Conn {
            conn,
            client,
            server,
            cfg,
            sides: [Side::new(), Side::new()],
            slots: VecDeque::new(),
            orphan: None,
            next_index: 0,
            emitted: 0,
            malformed: 0,
            upgraded_to: None,
            version: None,
            client_gap_seen: false,
            replay: Some(Replay::fresh()),
            switched_at: None,
            h2c_request: None,
        }
    }

    /// The index the connection's next exchange takes.
    pub(crate) fn next_index(&self) -> u32 {
        self.next_index
    }

    /// Bytes this connection holds in header buffers (capacity, what memory it costs).
    pub(crate) fn held_bytes(&self) -> usize {
        let replay = self.replay.as_ref().map_or(0, |r| r.held_bytes());
        self.sides.iter().map(|s| s.buf.capacity()).sum::<usize>() + replay
    }

    /// Drops header blocks in progress because the stage's budget for them is spent: each
    /// becomes a malformed message and its side resynchronises at the next message start.
    pub(crate) fn shed(&mut self, ts: Timestamp, sink: &mut Sink<'_>) {
        if self.replay.take().is_some() {
            sink.cov.h2_replay_dropped += 1;
        }
        for d in [CLIENT, SERVER] {
            if !self.sides[d].buf.is_empty() {
                sink.cov.header_budget_overflows += 1;
                self.malformed(d, ts, sink);
            }
            release(&mut self.sides[d].buf);
        }
    }

    pub(crate) fn interest(&self) -> Interest {
        if self.upgraded_to.is_some() {
            Interest::Ignore
        } else {
            Interest::Keep
        }
    }

    /// The next `data` of `dir` starts with bytes that ended a sender stall of `ns` (see
    /// `crate::ingest::flow::tcp`). It is charged to the message in progress on that side;
    /// a pause between two messages is the application's (think time, waiting for the
    /// response), not the transport's, and is not counted. Nor is the pause of a client
    /// that sent `Expect: 100-continue` before the first byte of its body: it waits for
    /// the server's answer by design.
    pub(crate) fn stall(&mut self, dir: Direction, ns: i64) {
        let d = dir.index();
        let s = &self.sides[d];
        let counted = match &s.st {
            ParseState::Headers => true,
            ParseState::Body(b) => {
                let awaiting_continue = d == CLIENT
                    && b.wire == 0
                    && self.slots.back().is_some_and(|x| x.ex.expect_continue);
                !awaiting_continue
            }
            _ => false,
        };
        if counted {
            let s = &mut self.sides[d];
            s.stall_ns = s.stall_ns.max(Some(ns));
        }
    }

    pub(crate) fn data(
        &mut self,
        dir: Direction,
        ts: Timestamp,
        bytes: &[u8],
        sink: &mut Sink<'_>,
    ) -> Interest {
        let d = dir.index();
        let mut pos = 0;
        let switched = self.upgraded_to.is_some();
        while pos < bytes.len() && self.upgraded_to.is_none() {
            pos = match self.sides[d].st {
                ParseState::Idle => self.start(d, ts, bytes, pos, sink),
                ParseState::Headers => self.more_headers(d, ts, bytes, pos, sink),
                ParseState::Body(_) => self.body(d, ts, bytes, pos, sink),
                ParseState::Resync => self.resync(d, bytes, pos),
                ParseState::Wait => {
                    self.sides[d].wait_dropped = true;
                    bytes.len()
                }
                ParseState::Off => bytes.len(),
            };
        }
        if !switched && self.upgraded_to.is_some() {
            self.switched_at = Some(pos.min(bytes.len()));
        }
        self.sides[d].last_ts = Some(ts);
        self.interest()
    }

    /// A new message begins at `pos` (possibly after blank lines).
    fn start(
        &mut self,
        d: usize,
        ts: Timestamp,
        bytes: &[u8],
        pos: usize,
        sink: &mut Sink<'_>,
    ) -> usize {
        // RFC 9112 §2.2: ignore empty lines before a message.
        let blank = bytes[pos..]
            .iter()
            .take_while(|&&c| c == b'\r' || c == b'\n')
            .count();
        let pos = pos + blank;
        let Some(rest) = bytes.get(pos..).filter(|r| !r.is_empty()) else {
            return bytes.len();
        };
        let parsed = parse_head(d, rest, self.replay.as_deref_mut());
        match parsed {
            Parsed::Complete(h) => {
                self.sides[d].first = ts;
                let n = h.len;
                self.on_head(d, h, ts, sink);
                pos + n
            }
            Parsed::Partial if rest.len() <= self.cfg.max_header_bytes => {
                let s = &mut self.sides[d];
                release(&mut s.buf);
                s.buf.extend_from_slice(rest);
                s.first = ts;
                s.st = ParseState::Headers;
                s.line_seen = memchr(b'\n', rest).is_some();
                bytes.len()
            }
            Parsed::Partial | Parsed::Malformed => {
                self.sides[d].first = ts;
                self.malformed(d, ts, sink);
                // Never re-find the same bad start.
                pos + 1
            }
        }
    }

    /// Continues a header block held in the side's buffer.
    fn more_headers(
        &mut self,
        d: usize,
        ts: Timestamp,
        bytes: &[u8],
        pos: usize,
        sink: &mut Sink<'_>,
    ) -> usize {
        let rest = &bytes[pos..];
        let s = &mut self.sides[d];
        let end = header_end(&s.buf, rest);
        let take = end.unwrap_or(rest.len());
        if s.buf.len() + take > self.cfg.max_header_bytes {
            release(&mut s.buf);
            self.malformed(d, ts, sink);
            return pos + take;
        }
        s.buf.extend_from_slice(&rest[..take]);
        if end.is_none() {
            // A request line httparse rejects may be a whole request (HTTP/0.9 style, no
            // header block): look once, when that line completes.
            let line_done = !s.line_seen && memchr(b'\n', &rest[..take]).is_some();
            s.line_seen |= line_done;
            if !(line_done && d == CLIENT) {
                return bytes.len();
            }
        }
        let parsed = parse_head(d, &s.buf, self.replay.as_deref_mut());
        match parsed {
            Parsed::Complete(h) => {
                let extra = s.buf.len() - h.len.min(s.buf.len());
                release(&mut s.buf);
                s.st = ParseState::Idle;
                if extra > take {
                    self.malformed(d, ts, sink);
                    return pos + take;
                }
                self.on_head(d, h, ts, sink);
                pos + take - extra
            }
            // httparse wants more although a blank line was seen (obs-fold): keep reading.
            Parsed::Partial => pos + take,
            Parsed::Malformed => {
                release(&mut s.buf);
                self.malformed(d, ts, sink);
                pos + take
            }
        }
    }

    fn body(
        &mut self,
        d: usize,
        ts: Timestamp,
        bytes: &[u8],
        pos: usize,
        sink: &mut Sink<'_>,
    ) -> usize {
        let ParseState::Body(b) = &mut self.sides[d].st else {
            return bytes.len();
        };
        match b.feed(&bytes[pos..]) {
            Ok((used, done)) => {
                if done {
                    self.finish_body(d, ts, None, sink);
                }
                pos + used
            }
            Err(e) => {
                // Broken chunk framing: the message ends at the bad byte, unframed; what
                // came before it was this body's, and is not searched for a new message.
                self.finish_body(d, ts, Some(Completeness::Truncated), sink);
                self.malformed(d, ts, sink);
                pos + e.consumed
            }
        }
    }

    fn finish_body(
        &mut self,
        d: usize,
        ts: Timestamp,
        outcome: Option<Completeness>,
        sink: &mut Sink<'_>,
    ) {
        if let ParseState::Body(b) = mem::replace(&mut self.sides[d].st, ParseState::Idle) {
            if d == CLIENT {
                self.finish_request(ts, Some(b), outcome, sink);
            } else {
                let t = b.target;
                self.finish_response(ts, t, Some(b), outcome, sink);
            }
        }
    }

    /// Scans for the next message start at a line start; bytes before it are skipped. Bytes
    /// are never joined across events (nor across the gap).
    fn resync(&mut self, d: usize, bytes: &[u8], pos: usize) -> usize {
        let mut p = pos;
        // A Data event's first byte counts as a line start: segment boundaries often are
        // message boundaries, and a gap leaves us at one.
        let mut at_line_start = p == 0 || bytes[p - 1] == b'\n';
        while p < bytes.len() {
            if at_line_start && looks_like_start(d, &bytes[p..]) {
                let s = &mut self.sides[d];
                s.st = ParseState::Idle;
                s.resynced = d == SERVER;
                return p;
            }
            match memchr(b'\n', &bytes[p..]) {
                Some(k) => {
                    p += k + 1;
                    at_line_start = true;
                }
                None => return bytes.len(),
            }
        }
        bytes.len()
    }

    /// Sync is lost in direction `d`; `lost_from` is the last time this side was in sync.
    fn enter_resync(&mut self, d: usize, lost_from: Option<Timestamp>, cov: &mut Coverage) {
        let s = &mut self.sides[d];
        if matches!(s.st, ParseState::Resync) {
            return;
        }
        s.st = ParseState::Resync;
        // A stall in a message that was not followed to its end belongs to no exchange.
        s.stall_ns = None;
        release(&mut s.buf);
        if !s.resynced {
            s.lost_from = lost_from;
        }
        cov.http_resyncs += 1;
    }

    fn malformed(&mut self, d: usize, ts: Timestamp, sink: &mut Sink<'_>) {
        sink.cov.malformed_http += 1;
        self.malformed = self.malformed.saturating_add(1);
        if d == SERVER {
            // A response was there, even if unreadable: it answers the front request.
            if let Some(slot) = self.slots.front_mut().filter(|s| !s.resp_done) {
                slot.resp_done = true;
                slot.ex.completeness = Completeness::Gap;
                h2cost::add_response(&mut slot.ex, None);
                slot.ex.resp_first.get_or_insert(self.sides[SERVER].first);
                slot.ex.resp_last = Some(ts);
                self.emit_ready(sink);
            }
        }
        self.enter_resync(d, Some(ts), sink.cov);
    }

    /// A request line httparse rejected but the lenient reader took: kept as an exchange
    /// (the server answered it, the link paid for it), yet counted as malformed.
    fn odd_request(&mut self, cov: &mut Coverage) {
        cov.malformed_http += 1;
        self.malformed = self.malformed.saturating_add(1);
    }

    fn on_head(&mut self, d: usize, h: Head, ts: Timestamp, sink: &mut Sink<'_>) {
        if d == CLIENT {
            self.on_request(h, ts, sink);
        } else {
            self.on_response(h, ts, sink);
        }
    }

    fn new_exchange(&mut self) -> Exchange {
        let ex = Exchange::new(self.conn, self.next_index, self.client, self.server);
        self.next_index = self.next_index.saturating_add(1);
        ex
    }

    fn on_request(&mut self, h: Head, ts: Timestamp, sink: &mut Sink<'_>) {
        let framing = if h.te {
            if !h.chunked {
                // RFC 9112 §6.3: a request whose last coding is not chunked cannot be framed.
                self.malformed(CLIENT, ts, sink);
                return;
            }
            Some(Framing::Chunked(Chunked::default()))
        } else {
            h.content_length.filter(|&n| n > 0).map(Framing::Length)
        };
        if h.odd_line {
            self.odd_request(sink.cov);
        }
        self.version.get_or_insert(h.version());
        // Pipelining cap: the oldest request still unanswered is given up on.
        let pending = self.slots.iter().filter(|s| !s.resp_done).count();
        if pending >= self.cfg.max_pending_requests.max(1) {
            if let Some(i) = self
                .slots
                .iter()
                .position(|s| !s.resp_started && s.req_done)
            {
                if let Some(mut slot) = self.slots.remove(i) {
                    slot.ex.completeness = Completeness::NoResponse;
                    self.emit(slot.ex, sink);
                }
            }
        }
        let mut ex = self.new_exchange();
        ex.version = h.version();
        ex.req_first = Some(self.sides[CLIENT].first);
        ex.req_last = Some(ts);
        ex.req_header_bytes = h.len as u64;
        h2cost::set_request(&mut ex, h.cost);
        ex.req_header_names = h.names;
        ex.req_content_type = h.content_type;
        ex.host = h.host;
        if let Some((t, p)) = h.trace {
            ex.trace_id = Some(t);
            ex.parent_span_id = p;
        }
        ex.expect_continue = h.expect_continue;
        ex.chunked_request = h.te && h.chunked;
        let method = h.method.unwrap_or_default();
        let head = method.eq_ignore_ascii_case("HEAD");
        let connect = method.eq_ignore_ascii_case("CONNECT");
        ex.method = Some(method);
        ex.route = h.route;
        ex.query_names = h.query_names;
        let dec = framing.as_ref().and_then(|_| {
            let ce = h.content_encoding.as_deref()?;
            Decoder::for_codings(ce.split(','), self.cfg.max_decoded_body_bytes)
        });
        ex.req_content_encoding = h.content_encoding;
        let grpc = grpc_web::request(&mut ex, h.grpc.as_deref());
        self.slots.push_back(Slot {
            ex,
            req_done: false,
            resp_done: false,
            resp_started: false,
            head,
            connect,
            wants_switch: connect || h.upgrade.is_some(),
            upgrade_req: h.upgrade,
        });
        let json = self
            .slots
            .back()
            .is_some_and(|s| wants_sample(&s.ex, CLIENT, dec.as_ref()));
        match framing {
            Some(f) => {
                let key = self.slots.back().filter(|_| json).map(|s| {
                    let dir = Direction::ClientToServer;
                    (SampleKey::of(&s.ex, dir), BodyRank::of(&s.ex, dir))
                });
                let mut b = BodyState::new(f, Target::Front, dec).sampled(key, sink);
                b.grpc = grpc;
                self.sides[CLIENT].st = ParseState::Body(b);
            }
            None => self.finish_request(ts, None, None, sink),
        }
    }

    fn finish_request(
        &mut self,
        ts: Timestamp,
        mut body: Option<BodyState>,
        outcome: Option<Completeness>,
        sink: &mut Sink<'_>,
    ) {
        let stall = self.sides[CLIENT].stall_ns.take();
        let Some(slot) = self.slots.back_mut() else {
            return;
        };
        slot.ex.req_stall_ns = slot.ex.req_stall_ns.max(stall);
        if let Some(b) = body.as_mut() {
            if let Some(g) = &b.grpc {
                grpc_web::body_done(&mut slot.ex, true, g);
            }
            slot.ex.req_body_bytes = b.wire;
            slot.ex.req_body_len = b.len;
            slot.ex.req_body_decoded_len = b.decoded();
            if b.gap {
                slot.ex.completeness = Completeness::Gap;
            }
        }
        if let Some(c) = outcome {
            slot.ex.completeness = c;
        }
        offer_body(sink, &slot.ex, CLIENT, body.as_mut(), outcome);
        slot.ex.req_last = Some(ts);
        slot.req_done = true;
        if matches!(self.sides[CLIENT].st, ParseState::Idle) && slot.wants_switch && !slot.resp_done
        {
            self.sides[CLIENT].st = ParseState::Wait;
            self.sides[CLIENT].wait_dropped = false;
        }
        self.emit_ready(sink);
    }

    /// The request a response starting at `start` answers: the front of the FIFO, unless
    /// that request began after the response did.
    fn target(&self, start: Timestamp) -> Target {
        match self.slots.front() {
            Some(s) if !s.resp_done && s.ex.req_first.is_none_or(|f| f <= start) => Target::Front,
            _ => Target::Orphan,
        }
    }

    /// See the module docs: after a server resync, drop requests whose responses were lost.
    fn drop_lost_responses(&mut self, start: Timestamp, sink: &mut Sink<'_>) {
        let lost_from = self.sides[SERVER].lost_from.take();
        while self.slots.len() >= 2 {
            let (a, b) = (&self.slots[0], &self.slots[1]);
            if a.resp_done || a.resp_started || !a.req_done {
                break;
            }
            let Some(next_first) = b.ex.req_first else {
                break;
            };
            let sent_while_dark = lost_from.is_none_or(|l| next_first > l);
            if !(next_first <= start && sent_while_dark) {
                break;
            }
            if let Some(mut slot) = self.slots.pop_front() {
                slot.ex.completeness = Completeness::Gap;
                self.emit(slot.ex, sink);
            }
        }
    }

    fn exchange_mut(&mut self, t: Target) -> &mut Exchange {
        match t {
            Target::Front => match self.slots.front_mut() {
                Some(s) => &mut s.ex,
                None => unreachable_orphan(&mut self.orphan),
            },
            Target::Orphan => unreachable_orphan(&mut self.orphan),
        }
    }

    fn new_orphan(&mut self, minor_version: &'static str) {
        if self.orphan.is_none() {
            let mut ex = self.new_exchange();
            ex.version = minor_version;
            ex.completeness = if self.client_gap_seen {
                Completeness::Gap
            } else {
                Completeness::ResponseOnly
            };
            self.orphan = Some(Box::new(ex));
        }
    }

    fn on_response(&mut self, h: Head, ts: Timestamp, sink: &mut Sink<'_>) {
        let cap = self.cfg.max_decoded_body_bytes;
        let start = self.sides[SERVER].first;
        if mem::take(&mut self.sides[SERVER].resynced) {
            self.drop_lost_responses(start, sink);
        }
        self.version.get_or_insert(h.version());
        let target = if self.orphan.is_some() {
            Target::Orphan
        } else {
            self.target(start)
        };
        if target == Target::Orphan {
            self.new_orphan(h.version());
        }
        let (head, connect, upgrade_req) = match (target, self.slots.front_mut()) {
            (Target::Front, Some(s)) => {
                s.resp_started = true;
                (s.head, s.connect, s.upgrade_req.clone())
            }
            _ => (false, false, None),
        };
        let status = h.status;
        let ex = self.exchange_mut(target);
        ex.resp_header_bytes += h.len as u64;
        h2cost::add_response(ex, h.cost);
        ex.resp_first.get_or_insert(start);
        ex.resp_last = Some(ts);
        if (100..200).contains(&status) && status != 101 {
            ex.interim_responses = ex.interim_responses.saturating_add(1);
            self.sides[SERVER].st = ParseState::Idle;
            return;
        }
        ex.status = Some(status);
        ex.resp_header_names = h.names;
        ex.resp_content_type = h.content_type;
        ex.chunked_response = h.te && h.chunked;
        let switch = if status == 101 {
            Some(
                h.upgrade
                    .or(upgrade_req)
                    .unwrap_or_else(|| "unknown".to_owned()),
            )
        } else if connect && (200..300).contains(&status) {
            Some("tunnel".to_owned())
        } else {
            None
        };
        if let Some(proto) = switch {
            ex.upgrade = Some(proto.clone());
            ex.resp_content_encoding = h.content_encoding;
            let h2c = proto == "h2c" && status == 101 && target == Target::Front;
            self.upgraded_to = Some(proto);
            if h2c {
                // The response comes on HTTP/2 stream 1: the exchange goes on there, with
                // the 101 as an interim response.
                if let Some(mut slot) = self.slots.pop_front() {
                    let stall = self.sides[SERVER].stall_ns.take();
                    slot.ex.resp_stall_ns = slot.ex.resp_stall_ns.max(stall);
                    slot.ex.status = None;
                    slot.ex.resp_first = None;
                    slot.ex.interim_responses = slot.ex.interim_responses.saturating_add(1);
                    h2cost::finish(&mut slot.ex);
                    self.h2c_request = Some(Box::new(slot.ex));
                }
                self.sides[CLIENT].st = ParseState::Off;
                self.sides[SERVER].st = ParseState::Off;
                return;
            }
            self.finish_response(ts, target, None, None, sink);
            // The request side is over too: later bytes are another protocol.
            if let Some(s) = self.slots.front_mut().filter(|s| s.resp_done) {
                s.req_done = true;
            }
            self.emit_ready(sink);
            self.sides[CLIENT].st = ParseState::Off;
            self.sides[SERVER].st = ParseState::Off;
            return;
        }
        let no_body = head || status == 204 || status == 304 || (100..200).contains(&status);
        let framing = if no_body {
            None
        } else if h.te {
            // RFC 9112 §6.3: a response whose last coding is not chunked runs to the close.
            Some(if h.chunked {
                Framing::Chunked(Chunked::default())
            } else {
                Framing::Close
            })
        } else {
            match h.content_length {
                Some(0) => None,
                Some(n) => Some(Framing::Length(n)),
                // RFC 9112 §6.3 rule 8: no length means the body runs to the close, whatever
                // the version or Connection header say.
                None => Some(Framing::Close),
            }
        };
        ex.close_delimited = matches!(framing, Some(Framing::Close));
        let dec = framing.as_ref().and_then(|_| {
            let ce = h.content_encoding.as_deref()?;
            Decoder::for_codings(ce.split(','), cap)
        });
        ex.resp_content_encoding = h.content_encoding;
        let grpc = grpc_web::response(ex, h.grpc.as_deref());
        let json = wants_sample(self.exchange_mut(target), SERVER, dec.as_ref());
        match framing {
            Some(f) => {
                let key = json.then(|| {
                    let (ex, dir) = (self.exchange_mut(target), Direction::ServerToClient);
                    (SampleKey::of(ex, dir), BodyRank::of(ex, dir))
                });
                let mut b = BodyState::new(f, target, dec).sampled(key, sink);
                b.grpc = grpc;
                self.sides[SERVER].st = ParseState::Body(b);
            }
            None => self.finish_response(ts, target, None, None, sink),
        }
    }

    fn finish_response(
        &mut self,
        ts: Timestamp,
        target: Target,
        mut body: Option<BodyState>,
        outcome: Option<Completeness>,
        sink: &mut Sink<'_>,
    ) {
        let stall = self.sides[SERVER].stall_ns.take();
        let ex = self.exchange_mut(target);
        ex.resp_stall_ns = ex.resp_stall_ns.max(stall);
        if let Some(b) = body.as_mut() {
            if let Some(g) = &b.grpc {
                grpc_web::body_done(ex, false, g);
            }
            ex.resp_body_bytes = b.wire;
            ex.resp_body_len = b.len;
            ex.resp_body_decoded_len = b.decoded();
            if b.gap {
                ex.completeness = Completeness::Gap;
            }
        }
        if let Some(c) = outcome {
            ex.completeness = c;
        }
        offer_body(sink, ex, SERVER, body.as_mut(), outcome);
        ex.resp_last = Some(ts);
        if matches!(
            self.sides[SERVER].st,
            ParseState::Body(_) | ParseState::Headers
        ) {
            self.sides[SERVER].st = ParseState::Idle;
        }
        match target {
            Target::Orphan => {
                if let Some(ex) = self.orphan.take() {
                    self.emit(*ex, sink);
                }
            }
            Target::Front => {
                let only_one = self.slots.len() == 1;
                let Some(slot) = self.slots.front_mut() else {
                    return;
                };
                slot.resp_done = true;
                let client = &mut self.sides[CLIENT];
                // RFC 9110 §10.1.1: a final answer to `Expect: 100-continue` before any body
                // byte lets the client skip the body.
                if !slot.req_done && slot.ex.expect_continue && only_one {
                    if let ParseState::Body(b) = &client.st {
                        if b.wire == 0 {
                            client.st = ParseState::Idle;
                            slot.req_done = true;
                        }
                    }
                }
                if slot.wants_switch && matches!(client.st, ParseState::Wait) {
                    // Upgrade declined: back to HTTP, unless bytes came meanwhile.
                    if mem::take(&mut client.wait_dropped) {
                        client.st = ParseState::Idle;
                        self.enter_resync(CLIENT, None, sink.cov);
                    } else {
                        client.st = ParseState::Idle;
                    }
                }
                self.emit_ready(sink);
            }
        }
    }

    fn emit_ready(&mut self, sink: &mut Sink<'_>) {
        while self
            .slots
            .front()
            .is_some_and(|s| s.req_done && s.resp_done)
        {
            if let Some(slot) = self.slots.pop_front() {
                self.emit(slot.ex, sink);
            }
        }
    }

    fn emit(&mut self, mut ex: Exchange, sink: &mut Sink<'_>) {
        h2cost::finish(&mut ex);
        sink.cov.exchanges += 1;
        if ex.completeness != Completeness::Complete {
            sink.cov.incomplete_exchanges += 1;
        }
        self.emitted = self.emitted.saturating_add(1);
        (sink.out)(Record::Exchange(ex));
    }

    pub(crate) fn gap(&mut self, dir: Direction, len: u64, ts: Timestamp, sink: &mut Sink<'_>) {
        let d = dir.index();
        if d == CLIENT {
            self.client_gap_seen = true;
        }
        let lost_from = self.sides[d].last_ts;
        match mem::replace(&mut self.sides[d].st, ParseState::Idle) {
            ParseState::Off => self.sides[d].st = ParseState::Off,
            ParseState::Body(mut b) => {
                let absorbed = match &mut b.framing {
                    Framing::Length(rem) if len <= *rem => {
                        *rem -= len;
                        true
                    }
                    Framing::Close => true,
                    Framing::Chunked(c) => c.skip_data(len),
                    Framing::Length(_) => false,
                };
                if absorbed {
                    b.lose(len);
                    let done = matches!(b.framing, Framing::Length(0));
                    self.sides[d].st = ParseState::Body(b);
                    if done {
                        self.finish_body(d, ts, None, sink);
                    }
                    return;
                }
                // The gap runs past this body's end: count what the framing promised.
                let promised = match b.framing {
                    Framing::Length(rem) => rem,
                    _ => 0,
                };
                b.lose(promised);
                self.sides[d].st = ParseState::Body(b);
                self.finish_body(d, ts, Some(Completeness::Gap), sink);
                self.enter_resync(d, lost_from, sink.cov);
            }
            ParseState::Headers => {
                self.partial_head(d, ts, Completeness::Gap, sink);
                self.enter_resync(d, lost_from, sink.cov);
            }
            ParseState::Idle | ParseState::Wait | ParseState::Resync => {
                self.enter_resync(d, lost_from, sink.cov);
            }
        }
    }

    /// A header block that never completed (gap or end): kept as an exchange with what the
    /// first line told, so that byte counts and pairing stay right.
    fn partial_head(
        &mut self,
        d: usize,
        ts: Timestamp,
        outcome: Completeness,
        sink: &mut Sink<'_>,
    ) {
        let buf = mem::take(&mut self.sides[d].buf);
        let first = self.sides[d].first;
        if d == CLIENT {
            let h = head::partial_request_line(&buf);
            if h.odd_line {
                self.odd_request(sink.cov);
            }
            if h.method.is_some() {
                self.version.get_or_insert(h.version());
            }
            let mut ex = self.new_exchange();
            ex.version = h.version();
            ex.method = h.method;
            ex.route = h.route;
            ex.query_names = h.query_names;
            ex.req_first = Some(first);
            ex.req_last = Some(ts);
            ex.req_header_bytes = buf.len() as u64;
            ex.req_stall_ns = self.sides[CLIENT].stall_ns.take();
            ex.completeness = outcome;
            self.slots.push_back(Slot {
                ex,
                req_done: true,
                resp_done: false,
                resp_started: false,
                head: false,
                connect: false,
                wants_switch: false,
                upgrade_req: None,
            });
        } else {
            let target = if self.orphan.is_some() {
                Target::Orphan
            } else {
                self.target(first)
            };
            if target == Target::Orphan {
                self.new_orphan("HTTP/1.1");
            }
            if let Some(s) = self.slots.front_mut().filter(|_| target == Target::Front) {
                s.resp_started = true;
            }
            let ex = self.exchange_mut(target);
            ex.resp_header_bytes += buf.len() as u64;
            h2cost::add_response(ex, None);
            ex.resp_first.get_or_insert(first);
            self.finish_response(ts, target, None, Some(outcome), sink);
        }
        // Give the allocation back for the next spill.
        self.sides[d].buf = buf;
        release(&mut self.sides[d].buf);
    }

    pub(crate) fn end(&mut self, dir: Direction, ts: Timestamp, sink: &mut Sink<'_>) {
        let d = dir.index();
        if d == SERVER {
            if let ParseState::Body(BodyState {
                framing: Framing::Close,
                ..
            }) = self.sides[d].st
            {
                let last = self.sides[d].last_ts.unwrap_or(ts);
                self.finish_body(d, last, None, sink);
            }
        }
    }

    /// Flushes everything still open when the connection closes.
    pub(crate) fn close(&mut self, reason: CloseReason, sink: &mut Sink<'_>) {
        let clean = matches!(reason, CloseReason::Fin | CloseReason::Rst);
        for d in [CLIENT, SERVER] {
            let last = self.sides[d].last_ts.unwrap_or_default();
            match self.sides[d].st {
                ParseState::Headers => self.partial_head(d, last, Completeness::Truncated, sink),
                ParseState::Body(BodyState {
                    framing: Framing::Close,
                    ..
                }) if clean => self.finish_body(d, last, None, sink),
                ParseState::Body(_) => {
                    self.finish_body(d, last, Some(Completeness::Truncated), sink)
                }
                _ => {}
            }
            self.sides[d].st = ParseState::Off;
        }
        while let Some(mut slot) = self.slots.pop_front() {
            let cut = slot.ex.completeness == Completeness::Truncated;
            if !(cut || slot.req_done && slot.resp_done) {
                slot.ex.completeness = if slot.resp_started || !slot.req_done || !clean {
                    Completeness::Truncated
                } else {
                    Completeness::NoResponse
                };
            }
            self.emit(slot.ex, sink);
        }
        if let Some(mut ex) = self.orphan.take() {
            ex.completeness = Completeness::Truncated;
            self.emit(*ex, sink);
        }
    }
}

/// The orphan is created before any path that reads it; a missing one means a logic error,
/// which must not panic on input: fall back to a throwaway exchange.
fn unreachable_orphan(orphan: &mut Option<Box<Exchange>>) -> &mut Exchange {
    orphan.get_or_insert_with(|| {
        Box::new(Exchange::new(
            ConnId::default(),
            0,
            Endpoint::new(std::net::Ipv4Addr::UNSPECIFIED.into(), 0),
            Endpoint::new(std::net::Ipv4Addr::UNSPECIFIED.into(), 0),
        ))
    })
}

/// A request head from the client side, a response head from the server side.
fn parse_head(d: usize, buf: &[u8], replay: Option<&mut Replay>) -> Parsed {
    if d == CLIENT {
        head::parse_request_costed(buf, replay)
    } else {
        head::parse_response_costed(buf, replay)
    }
}

/// Empties a header buffer and gives its memory back: a connection holds header memory
/// only while a header block that spans segments is in progress (the common case, a
/// block inside one segment, never allocates), so idle connections cost nothing here.
fn release(buf: &mut Vec<u8>) {
    *buf = Vec::new();
}

/// Index just past the blank line ending a header block whose start is in `prev`.
fn header_end(prev: &[u8], new: &[u8]) -> Option<usize> {
    let before = |i: usize, back: usize| -> Option<u8> {
        if back <= i {
            new.get(i - back).copied()
        } else {
            prev.len()
                .checked_sub(back - i)
                .and_then(|j| prev.get(j).copied())
        }
    };
    memchr::memchr_iter(b'\n', new).find_map(|i| match before(i, 1) {
        Some(b'\n') => Some(i + 1),
        Some(b'\r') if before(i, 2) == Some(b'\n') => Some(i + 1),
        _ => None,
    })
}

/// Whether `b` (at a line start) looks like the start of a message of side `d`.
fn looks_like_start(d: usize, b: &[u8]) -> bool {
    if d == SERVER {
        return b.len() >= 12
            && b.starts_with(b"HTTP/1.")
            && matches!(b[7], b'0' | b'1')
            && b[8] == b' '
            && b[9..12].iter().all(u8::is_ascii_digit)
            && b.get(12).is_none_or(|&c| matches!(c, b' ' | b'\r' | b'\n'));
    }
    let m = b
        .iter()
        .take(21)
        .take_while(|&&c| c.is_ascii_uppercase() || c == b'-' || c == b'_');
    let m = m.count();
    if !(3..=20).contains(&m) || b.get(m) != Some(&b' ') {
        return false;
    }
    match b.get(m + 1) {
        None => return false,
        Some(b' ' | b'\r' | b'\n') => return false,
        Some(_) => {}
    }
    let window = &b[..b.len().min(8192)];
    match memchr(b'\n', window) {
        Some(e) => {
            let line = window[..e].strip_suffix(b"\r").unwrap_or(&window[..e]);
            line.ends_with(b" HTTP/1.1") || line.ends_with(b" HTTP/1.0")
        }
        None => true,
    }
}
