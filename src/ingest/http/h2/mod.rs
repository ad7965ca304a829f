//! HTTP/2 (h2c) and gRPC read from the reassembled TCP streams: one exchange per stream.
//!
//! The HTTP stage (`crate::ingest::http`) hands a connection here when its client opens
//! with the connection preface, when an `Upgrade: h2c` request is answered 101, or when
//! its bytes parse as frames although the capture began mid-connection ([`sync`]).
//!
//! Per direction, frames are read from their 9-byte headers ([`frame`]). DATA payloads
//! are counted as they stream (never copied; gRPC message prefixes are read from them,
//! [`grpc`]); other frame payloads are read in place when a segment holds them whole and
//! copied (bounded) only when they span segments. Header blocks (HEADERS or PUSH_PROMISE
//! and their CONTINUATIONs, frames of other streams may not interleave with them) are
//! joined, bounded by `max_header_bytes`, and decoded with the direction's HPACK table
//! ([`hpack`]), which survives a capture that did not see it filled. Each stream becomes
//! an exchange ([`stream`]) when both sides ended it, when it is reset, refused by a
//! GOAWAY, evicted (at most `max_h2_streams` open per connection) or closed with the
//! connection.
//!
//! A gap inside a frame of known length keeps the direction in step (a DATA payload
//! counts the lost bytes); a gap across a frame boundary loses it: the direction then
//! looks for frames again at each segment start, and its HPACK table is forgotten (the
//! gap may have held header blocks that changed it).

pub(crate) mod frame;
pub mod grpc;
pub(crate) mod hpack;
pub(crate) mod stream;
pub(crate) mod sync;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::ingest::http::{HttpConfig, Record, Sink};
use crate::model::connection::H2Connection;
use crate::model::{CloseReason, Completeness, ConnId, Direction, Endpoint, Exchange, Timestamp};
use frame::Head;
use hpack::Decoder;
use stream::{Block, Stream};

pub use grpc::{http_status_of as grpc_http_status, status_name as grpc_status_name};

const CLIENT: usize = 0;
const SERVER: usize = 1;

/// The client connection preface (RFC 9113 §3.4).
pub(crate) const PREFACE: &[u8] = crate::ingest::http::detect::H2_PREFACE;
/// Stream ids remembered after their stream ended, so that late frames (DATA in flight
/// when a stream was reset, a WINDOW_UPDATE) do not open it again.
const CLOSED_REMEMBERED: usize = 1024;
/// Bytes of a non-header frame's payload kept when it spans segments (SETTINGS, GOAWAY
/// and the others are far smaller; a larger one is skipped, counted as a frame error).
const MAX_CONTROL_PAYLOAD: usize = 16 << 10;

/// How the connection was found to carry HTTP/2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FoundBy {
    /// The client's connection preface.
    Preface,
    /// An HTTP/1.1 `Upgrade: h2c` answered 101.
    Upgrade,
    /// Frames found in a stream that began mid-connection.
    Frames,
}

impl FoundBy {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            FoundBy::Preface => "preface",
            FoundBy::Upgrade => "upgrade",
            FoundBy::Frames => "frames",
        }
    }
}

/// The frame being read on one side.
struct Cur {
    head: Head,
    /// Capture time of the segment with the frame's first byte.
    ts: Timestamp,
    /// Payload bytes read so far.
    off: u32,
    /// DATA: the pad length once read (PADDED).
    pad: Option<u8>,
    /// The stream a DATA frame counts for (`None`: no exchange for it).
    data_stream: Option<u32>,
}

/// A header block in progress (HEADERS or PUSH_PROMISE awaiting CONTINUATION).
struct OpenBlock {
    stream: u32,
    promised: Option<u32>,
    end_stream: bool,
    /// HEADERS/PUSH_PROMISE/CONTINUATION frame bytes (headers included).
    wire: u64,
    buf: Vec<u8>,
    ts: Timestamp,
    dropped: bool,
    /// Padding of the block's HEADERS or PUSH_PROMISE frame (pad length octet included).
    padding: u64,
}

struct Side {
    /// Frames are being read in step; else frames are looked for at each segment start.
    synced: bool,
    /// Preface bytes still expected before the client's first frame.
    preface_left: usize,
    head: [u8; frame::HEADER_LEN],
    head_n: usize,
    head_ts: Timestamp,
    cur: Option<Cur>,
    /// A non-DATA payload spanning segments.
    payload: Vec<u8>,
    payload_dropped: bool,
    block: Option<OpenBlock>,
    /// Decodes the header blocks this side sends.
    hpack: Decoder,
    last_ts: Option<Timestamp>,
}

impl Side {
    fn new(synced: bool, preface: bool, from_start: bool) -> Self {
        Side {
            synced,
            preface_left: if preface { PREFACE.len() } else { 0 },
            head: [0; frame::HEADER_LEN],
            head_n: 0,
            head_ts: Timestamp::default(),
            cur: None,
            payload: Vec::new(),
            payload_dropped: false,
            block: None,
            hpack: Decoder::new(from_start),
            last_ts: None,
        }
    }

    fn held_bytes(&self) -> usize {
        self.payload.capacity()
            + self.block.as_ref().map_or(0, |b| b.buf.capacity())
            + self.hpack.held_bytes()
    }
}

/// HTTP/2 state of one connection.
pub(crate) struct H2Conn {
    conn: ConnId,
    client: Endpoint,
    server: Endpoint,
    cfg: HttpConfig,
    /// The connection was seen from its start (HPACK tables begin empty).
    from_start: bool,
    sides: [Side; 2],
    streams: FxHashMap<u32, Stream>,
    closed: FxHashSet<u32>,
    closed_order: VecDeque<u32>,
    /// Lowest stream id opened by a HEADERS frame, per initiator parity (odd: client).
    first_opened: [Option<u32>; 2],
    next_index: u32,
    pub(crate) emitted: u32,
    pub(crate) stats: H2Connection,
    /// Mid-connection: the flow stage's client is this reader's server (see
    /// [`H2Conn::check_roles`]); physical direction `p` is side `p ^ swapped`.
    pub(crate) swapped: bool,
    /// A header block has shown which side is the client.
    roles_known: bool,
}

impl H2Conn {
    /// A connection whose client opened with the preface (its first bytes).
    pub(crate) fn with_preface(
        conn: ConnId,
        client: Endpoint,
        server: Endpoint,
        cfg: HttpConfig,
    ) -> Self {
        Self::new(conn, client, server, cfg, FoundBy::Preface, 0)
    }

    /// Frames found mid-connection: both sides look for frames at segment starts.
    pub(crate) fn mid_connection(
        conn: ConnId,
        client: Endpoint,
        server: Endpoint,
        cfg: HttpConfig,
    ) -> Self {
        Self::new(conn, client, server, cfg, FoundBy::Frames, 0)
    }

    /// After `Upgrade: h2c` was answered 101: the server's frames follow the 101, the
    /// client sends the preface. `upgrade` is the HTTP/1 request that asked, which stream
    /// 1 answers (RFC 9113 §3.2 of RFC 7540); `next_index` continues the connection's
    /// exchange numbering.
    pub(crate) fn upgraded(
        conn: ConnId,
        client: Endpoint,
        server: Endpoint,
        cfg: HttpConfig,
        upgrade: Option<Box<Exchange>>,
        next_index: u32,
    ) -> Self {
        let mut h = Self::new(conn, client, server, cfg, FoundBy::Upgrade, next_index);
        if let Some(ex) = upgrade {
            let mut s = Stream::new(*ex, 1);
            // The request was HTTP/1.1 and is over; the 101 was its interim response.
            s.ex.version = "HTTP/1.1";
            s.ex.status = None;
            s.request_seen = true;
            s.ended[CLIENT] = true;
            h.first_opened[1] = Some(1);
            h.streams.insert(1, s);
            h.stats.streams = 1;
        }
        h
    }

    fn new(
        conn: ConnId,
        client: Endpoint,
        server: Endpoint,
        cfg: HttpConfig,
        found_by: FoundBy,
        next_index: u32,
    ) -> Self {
        let from_start = found_by != FoundBy::Frames;
        H2Conn {
            conn,
            client,
            server,
            cfg,
            from_start,
            sides: [
                Side::new(from_start, from_start, from_start),
                Side::new(from_start, false, from_start),
            ],
            streams: FxHashMap::default(),
            closed: FxHashSet::default(),
            closed_order: VecDeque::new(),
            first_opened: [None; 2],
            next_index,
            emitted: 0,
            stats: H2Connection {
                found_by: found_by.as_str(),
                ..H2Connection::default()
            },
            swapped: false,
            roles_known: from_start,
        }
    }

    /// Bytes held in buffers and HPACK tables.
    pub(crate) fn held_bytes(&self) -> usize {
        self.sides.iter().map(Side::held_bytes).sum()
    }

    /// The stage's header memory is spent: partial header blocks are dropped and the
    /// tables forgotten (later fields naming their entries are unknown).
    pub(crate) fn shed(&mut self, sink: &mut Sink<'_>) {
        for d in [CLIENT, SERVER] {
            let s = &mut self.sides[d];
            if s.block.is_some() || !s.payload.is_empty() {
                sink.cov.header_budget_overflows += 1;
            }
            if let Some(b) = s.block.as_mut() {
                b.dropped = true;
                b.buf = Vec::new();
            }
            if !s.payload.is_empty() {
                s.payload_dropped = true;
                s.payload = Vec::new();
            }
            s.hpack.desync();
        }
    }

    /// The side (client 0, server 1) of physical direction `p`.
    fn side_of(&self, p: usize) -> usize {
        p ^ usize::from(self.swapped)
    }

    /// Bytes of one direction, in order.
    pub(crate) fn data(
        &mut self,
        dir: Direction,
        ts: Timestamp,
        bytes: &[u8],
        sink: &mut Sink<'_>,
    ) {
        let p = dir.index();
        let d = self.side_of(p);
        let mut pos = 0;
        if !self.sides[d].synced {
            if self.sides[d].preface_left == 0 && bytes.starts_with(PREFACE) && d == CLIENT {
                self.sides[d].preface_left = PREFACE.len();
                self.sides[d].synced = true;
            } else if sync::resync_point(bytes) {
                self.sides[d].synced = true;
                sink.cov.h2_resyncs += 1;
            } else {
                self.stats.unsynced_bytes += bytes.len() as u64;
                self.sides[d].last_ts = Some(ts);
                return;
            }
        }
        // Each pass consumes at least one byte, or leaves sync (which ends the loop). The
        // side is looked up on every pass: a header block may swap the roles.
        while pos < bytes.len() && self.sides[self.side_of(p)].synced {
            pos = self.step(p, ts, bytes, pos, sink);
        }
        if pos < bytes.len() {
            self.stats.unsynced_bytes += (bytes.len() - pos) as u64;
        }
        let d = self.side_of(p);
        self.sides[d].last_ts = Some(ts);
    }

    /// Reads from `pos` of physical direction `p`: the preface, a frame header, or frame
    /// payload.
    fn step(
        &mut self,
        p: usize,
        ts: Timestamp,
        bytes: &[u8],
        pos: usize,
        sink: &mut Sink<'_>,
    ) -> usize {
        let d = self.side_of(p);
        let rest = &bytes[pos..];
        let side = &mut self.sides[d];
        if side.preface_left > 0 {
            let done = PREFACE.len() - side.preface_left;
            let k = side.preface_left.min(rest.len());
            if rest[..k] != PREFACE[done..done + k] {
                self.lose_sync(d, sink);
                return pos;
            }
            side.preface_left -= k;
            return pos + k;
        }
        if side.cur.is_none() {
            if side.head_n == 0 {
                side.head_ts = ts;
            }
            let k = (frame::HEADER_LEN - side.head_n).min(rest.len());
            side.head[side.head_n..side.head_n + k].copy_from_slice(&rest[..k]);
            side.head_n += k;
            if side.head_n < frame::HEADER_LEN {
                return pos + k;
            }
            side.head_n = 0;
            let head = Head::parse(&side.head);
            let start_ts = side.head_ts;
            if side.head[5] & 0x80 != 0 && !self.from_start {
                // A reserved bit set: these bytes are not the frame header we took them for.
                self.lose_sync(d, sink);
                return pos + k;
            }
            self.begin_frame(d, head, start_ts, sink);
            return pos + k;
        }
        let (head, off) = match &side.cur {
            Some(c) => (c.head, c.off),
            None => return pos,
        };
        let left = (head.len - off) as usize;
        let k = left.min(rest.len());
        if head.kind == frame::DATA {
            self.data_piece(d, &rest[..k]);
        } else if side.payload.is_empty() && !side.payload_dropped && k == head.len as usize {
            // The whole payload is in this segment: read it in place.
            if let Some(c) = side.cur.take() {
                self.end_frame(d, c, &rest[..k], ts, sink);
            }
            return pos + k;
        } else {
            let cap = if matches!(
                head.kind,
                frame::HEADERS | frame::CONTINUATION | frame::PUSH_PROMISE
            ) {
                self.cfg.max_header_bytes
            } else {
                MAX_CONTROL_PAYLOAD
            };
            if side.payload.len() + k > cap {
                side.payload_dropped = true;
                side.payload = Vec::new();
            } else if !side.payload_dropped {
                side.payload.extend_from_slice(&rest[..k]);
            }
        }
        let side = &mut self.sides[d];
        if let Some(c) = side.cur.as_mut() {
            c.off += k as u32;
        }
        if k == left {
            if let Some(c) = side.cur.take() {
                let payload = std::mem::take(&mut side.payload);
                if head.kind == frame::DATA {
                    self.end_data(d, c, ts, sink);
                } else if std::mem::take(&mut self.sides[d].payload_dropped) {
                    self.stats.frame_errors += 1;
                    self.frame_lost(d, c.head, sink);
                } else {
                    self.end_frame(d, c, &payload, ts, sink);
                }
                // Give the allocation back: a connection holds payload memory only while
                // a frame spans segments.
                drop(payload);
            }
        }
        pos + k
    }

    /// A frame header was read.
    fn begin_frame(&mut self, d: usize, head: Head, ts: Timestamp, sink: &mut Sink<'_>) {
        self.stats.count_frame(head.kind);
        // Frames of other streams may not come between a header block's frames.
        if self.sides[d].block.is_some()
            && !(head.kind == frame::CONTINUATION
                && self.sides[d]
                    .block
                    .as_ref()
                    .is_some_and(|b| b.stream == head.stream))
        {
            self.stats.frame_errors += 1;
            self.abandon_block(d, sink);
        }
        let data_stream = if head.kind == frame::DATA {
            self.stream_for_data(d, head.stream, sink)
        } else {
            None
        };
        if let Some(id) = data_stream {
            if let Some(s) = self.streams.get_mut(&id) {
                let wire = frame::HEADER_LEN as u64 + u64::from(head.len);
                let h2 = s.h2();
                if d == CLIENT {
                    h2.req_data_frames = h2.req_data_frames.saturating_add(1);
                    s.ex.req_body_bytes += wire;
                } else {
                    h2.resp_data_frames = h2.resp_data_frames.saturating_add(1);
                    s.ex.resp_body_bytes += wire;
                    s.ex.resp_first.get_or_insert(ts);
                }
            }
        }
        let c = Cur {
            head,
            ts,
            off: 0,
            pad: None,
            data_stream,
        };
        if head.len == 0 {
            if head.kind == frame::DATA {
                self.end_data(d, c, ts, sink);
            } else {
                self.end_frame(d, c, &[], ts, sink);
            }
        } else {
            self.sides[d].cur = Some(c);
        }
    }

    /// DATA payload bytes (a piece of the current frame).
    fn data_piece(&mut self, d: usize, piece: &[u8]) {
        let Some(c) = self.sides[d].cur.as_mut() else {
            return;
        };
        let padded = c.head.flags & frame::PADDED != 0;
        let mut p = piece;
        let mut off = c.off;
        if padded && off == 0 && !p.is_empty() {
            c.pad = Some(p[0]);
            p = &p[1..];
            off = 1;
        }
        let pad = u32::from(c.pad.unwrap_or(0));
        let data_end = if padded {
            c.head.len.saturating_sub(pad).max(1)
        } else {
            c.head.len
        };
        // The part of `p` (payload offsets off..off+len) before the padding.
        let n = (data_end.saturating_sub(off) as usize).min(p.len());
        if let Some(s) = c.data_stream.and_then(|id| self.streams.get_mut(&id)) {
            s.data(d, &p[..n]);
        }
    }

    fn end_data(&mut self, d: usize, c: Cur, ts: Timestamp, sink: &mut Sink<'_>) {
        let padded = c.head.flags & frame::PADDED != 0;
        let Some(id) = c.data_stream else {
            return;
        };
        if let Some(s) = self.streams.get_mut(&id) {
            if padded {
                let pad = u64::from(c.pad.unwrap_or(0)) + 1;
                let h2 = s.h2();
                h2.padding_bytes += pad.min(u64::from(c.head.len));
            }
            if c.head.flags & frame::END_STREAM != 0 {
                self.end_stream(d, id, ts, sink);
            } else if d == CLIENT {
                s.ex.req_last = Some(ts);
            } else {
                s.ex.resp_last = Some(ts);
            }
        }
    }

    /// The stream a DATA frame of side `d` counts for, opened if the capture began after
    /// its headers (never on a connection seen from its start: DATA on an unopened
    /// stream is a protocol error there).
    fn stream_for_data(&mut self, d: usize, id: u32, sink: &mut Sink<'_>) -> Option<u32> {
        if self.streams.contains_key(&id) {
            return Some(id);
        }
        if id == 0 || self.closed.contains(&id) || self.from_start {
            self.stats.late_frames += 1;
            return None;
        }
        let parity = (id % 2) as usize;
        if self.first_opened[parity].is_some_and(|f| id > f) {
            // Opened after the capture began, by HEADERS the capture lost.
            self.stats.late_frames += 1;
            return None;
        }
        self.open(id, d, sink);
        Some(id)
    }

    /// A new stream; the oldest is given up beyond the cap.
    fn open(&mut self, id: u32, _d: usize, sink: &mut Sink<'_>) {
        if self.streams.len() >= self.cfg.max_h2_streams.max(1) {
            if let Some(&old) = self.streams.keys().min() {
                if let Some(s) = self.streams.remove(&old) {
                    self.stats.streams_evicted += 1;
                    sink.cov.h2_streams_evicted += 1;
                    self.emit(old, s, Some(Completeness::Truncated), sink);
                }
            }
        }
        let ex = Exchange::new(self.conn, self.next_index, self.client, self.server);
        self.next_index = self.next_index.saturating_add(1);
        self.streams.insert(id, Stream::new(ex, id));
        self.stats.streams = self.stats.streams.saturating_add(1);
    }

    /// A whole non-DATA frame.
    fn end_frame(&mut self, d: usize, c: Cur, payload: &[u8], ts: Timestamp, sink: &mut Sink<'_>) {
        let h = c.head;
        match h.kind {
            frame::HEADERS | frame::PUSH_PROMISE => {
                let Some((frag, padding, promised)) = strip(h, payload) else {
                    self.stats.frame_errors += 1;
                    self.frame_lost(d, h, sink);
                    return;
                };
                let wire = frame::HEADER_LEN as u64 + u64::from(h.len);
                let mut block = OpenBlock {
                    stream: h.stream,
                    promised,
                    end_stream: h.kind == frame::HEADERS && h.flags & frame::END_STREAM != 0,
                    wire,
                    buf: Vec::new(),
                    ts: c.ts,
                    dropped: false,
                    padding,
                };
                if h.flags & frame::END_HEADERS != 0 {
                    self.decode_block(d, block, frag, ts, sink);
                } else {
                    block.buf.extend_from_slice(frag);
                    self.sides[d].block = Some(block);
                }
            }
            frame::CONTINUATION => {
                let Some(mut block) = self.sides[d].block.take() else {
                    // The block's first frame was not seen: its fields changed the table.
                    self.stats.frame_errors += 1;
                    self.sides[d].hpack.desync();
                    return;
                };
                block.wire += frame::HEADER_LEN as u64 + u64::from(h.len);
                if block.buf.len() + payload.len() > self.cfg.max_header_bytes {
                    block.dropped = true;
                    block.buf = Vec::new();
                } else if !block.dropped {
                    block.buf.extend_from_slice(payload);
                }
                if h.flags & frame::END_HEADERS != 0 {
                    let buf = std::mem::take(&mut block.buf);
                    self.decode_block(d, block, &buf, ts, sink);
                } else {
                    self.sides[d].block = Some(block);
                }
            }
            frame::SETTINGS if h.flags & frame::ACK == 0 => {
                for s in payload.chunks_exact(6) {
                    let v = u32::from_be_bytes([s[2], s[3], s[4], s[5]]);
                    match u16::from_be_bytes([s[0], s[1]]) {
                        // The sender's decoder: the table of the other direction.
                        0x1 => {
                            self.stats.header_table_size[d] = Some(v);
                            self.sides[1 - d].hpack.set_settings_max(v);
                        }
                        0x5 => self.stats.max_frame_size[d] = Some(v),
                        _ => {}
                    }
                }
            }
            frame::RST_STREAM if payload.len() == 4 => {
                let code = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
                self.reset(d, h.stream, code, ts, sink);
            }
            frame::GOAWAY if payload.len() >= 8 => {
                let last =
                    u32::from_be_bytes([payload[0] & 0x7f, payload[1], payload[2], payload[3]]);
                let code = u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]);
                self.stats.goaway_error = Some(frame::error_name(code));
                self.goaway(d, last, ts, sink);
            }
            _ => {}
        }
    }

    /// A frame whose payload could not be kept (over the bounds) or read (bad padding).
    fn frame_lost(&mut self, d: usize, h: Head, sink: &mut Sink<'_>) {
        match h.kind {
            frame::HEADERS | frame::PUSH_PROMISE => {
                let block = OpenBlock {
                    stream: h.stream,
                    promised: None,
                    end_stream: h.kind == frame::HEADERS && h.flags & frame::END_STREAM != 0,
                    wire: frame::HEADER_LEN as u64 + u64::from(h.len),
                    buf: Vec::new(),
                    ts: self.sides[d].head_ts,
                    dropped: true,
                    padding: 0,
                };
                if h.flags & frame::END_HEADERS != 0 {
                    let ts = block.ts;
                    self.decode_block(d, block, &[], ts, sink);
                } else {
                    self.sides[d].block = Some(block);
                }
            }
            frame::CONTINUATION => {
                if let Some(b) = self.sides[d].block.as_mut() {
                    b.dropped = true;
                    b.buf = Vec::new();
                }
                if h.flags & frame::END_HEADERS != 0 {
                    if let Some(block) = self.sides[d].block.take() {
                        let ts = block.ts;
                        self.decode_block(d, block, &[], ts, sink);
                    }
                }
            }
            _ => {}
        }
    }

    /// A header block that did not complete (a frame of another stream came between).
    fn abandon_block(&mut self, d: usize, sink: &mut Sink<'_>) {
        if let Some(mut b) = self.sides[d].block.take() {
            b.dropped = true;
            let ts = b.ts;
            self.decode_block(d, b, &[], ts, sink);
        }
    }

    /// Decodes a whole header block of side `d` and gives it to its stream.
    fn decode_block(
        &mut self,
        d: usize,
        b: OpenBlock,
        frag: &[u8],
        ts: Timestamp,
        sink: &mut Sink<'_>,
    ) {
        let mut facts = Block::default();
        let mut lost = b.dropped;
        let mut decoded = 0;
        if b.dropped {
            sink.cov.h2_header_blocks_dropped += 1;
            self.stats.header_blocks_dropped += 1;
            self.sides[d].hpack.desync();
        } else {
            match self.sides[d].hpack.decode(frag, |f| facts.field(f)) {
                Ok(st) => decoded = st.decoded_bytes,
                Err(_) => {
                    sink.cov.h2_hpack_errors += 1;
                    self.stats.hpack_errors += 1;
                    lost = true;
                }
            }
        }
        let unknown = u64::from(facts.unknown);
        self.stats.hpack_unknown_fields += unknown;
        sink.cov.h2_hpack_unknown_fields += unknown;
        let d = self.check_roles(d, &facts, b.promised.is_some());
        // PUSH_PROMISE: the promised stream's request, sent by the server.
        let (id, side) = match b.promised {
            Some(p) => (p, CLIENT),
            None => (b.stream, d),
        };
        if id == 0 {
            self.stats.frame_errors += 1;
            return;
        }
        if !self.streams.contains_key(&id) {
            if self.closed.contains(&id) {
                self.stats.late_frames += 1;
                return;
            }
            let parity = (id % 2) as usize;
            if side == CLIENT {
                let f = &mut self.first_opened[parity];
                *f = Some(f.map_or(id, |f| f.min(id)));
            }
            self.open(id, d, sink);
        }
        if let Some(s) = self.streams.get_mut(&b.stream) {
            s.h2().padding_bytes += b.padding;
        }
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if lost {
            s.headers_lost = true;
            if side == CLIENT && !s.request_seen {
                // A request was there, though unreadable.
                s.request_seen = true;
                s.ex.req_first.get_or_insert(b.ts);
            }
        }
        s.headers(side, facts, b.wire, decoded, b.ts);
        if side == CLIENT {
            s.ex.req_last = Some(ts);
        } else {
            s.ex.resp_last = Some(ts);
        }
        if b.end_stream {
            self.end_stream(d, id, ts, sink);
        }
    }

    /// Mid-connection, the flow stage guessed the roles (from the ports, without a SYN):
    /// the first header block with `:method` or `:status` tells who the client is. When
    /// the guess was wrong and no stream has headers yet, the sides swap (`swapped`); the
    /// connection record is then written with the roles the frames showed. Returns side
    /// `d`'s role afterwards.
    fn check_roles(&mut self, d: usize, facts: &Block, promise: bool) -> usize {
        if self.roles_known || promise {
            return d;
        }
        let request = facts.method.is_some();
        let response = facts.status.is_some();
        if !(request || response) {
            return d;
        }
        self.roles_known = true;
        let wrong = (d == SERVER && request) || (d == CLIENT && response && !request);
        let settled = self
            .streams
            .values()
            .any(|s| s.request_seen || s.response_seen);
        if !wrong || self.from_start || settled {
            return d;
        }
        self.swapped = !self.swapped;
        self.sides.swap(0, 1);
        std::mem::swap(&mut self.client, &mut self.server);
        self.stats.header_table_size.swap(0, 1);
        self.stats.max_frame_size.swap(0, 1);
        for s in self.streams.values_mut() {
            s.swap_sides(self.client, self.server);
        }
        1 - d
    }

    /// END_STREAM from side `d`.
    fn end_stream(&mut self, d: usize, id: u32, ts: Timestamp, sink: &mut Sink<'_>) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        s.ended[d] = true;
        if d == CLIENT {
            s.ex.req_last = Some(ts);
        } else {
            s.ex.resp_last = Some(ts);
        }
        // A response-only stream (its request came before the capture) ends with it.
        if s.done() || (d == SERVER && !s.request_seen) {
            if let Some(s) = self.streams.remove(&id) {
                self.emit(id, s, None, sink);
            }
        }
    }

    /// RST_STREAM from side `d`.
    fn reset(&mut self, d: usize, id: u32, code: u32, ts: Timestamp, sink: &mut Sink<'_>) {
        self.stats.rst_streams_by[d] += 1;
        let Some(mut s) = self.streams.remove(&id) else {
            return;
        };
        // NO_ERROR after a whole response: the server needs no more of the request
        // (RFC 9113 §8.1), not a failure.
        let benign = code == 0 && s.ended[SERVER];
        if !benign {
            let who = if d == CLIENT {
                "rst_client"
            } else {
                "rst_server"
            };
            s.h2().error = Some(format!("{who}:{}", frame::error_name(code)));
        }
        if d == CLIENT {
            s.ex.req_last = Some(ts);
        } else {
            s.ex.resp_last.get_or_insert(ts);
        }
        self.emit(id, s, None, sink);
    }

    /// GOAWAY from side `d`: streams the other side opened above `last` were refused.
    fn goaway(&mut self, d: usize, last: u32, _ts: Timestamp, sink: &mut Sink<'_>) {
        // Streams the receiver of the GOAWAY opened: odd (client) when the server sent it.
        let parity = if d == SERVER { 1 } else { 0 };
        let mut refused: Vec<u32> = self
            .streams
            .keys()
            .copied()
            .filter(|&id| id % 2 == parity && id > last)
            .collect();
        refused.sort_unstable();
        for id in refused {
            if let Some(mut s) = self.streams.remove(&id) {
                s.h2().error = Some("goaway_refused".to_owned());
                self.stats.goaway_refused += 1;
                self.emit(id, s, None, sink);
            }
        }
    }

    fn emit(&mut self, id: u32, s: Stream, outcome: Option<Completeness>, sink: &mut Sink<'_>) {
        if self.closed.insert(id) {
            self.closed_order.push_back(id);
            if self.closed_order.len() > CLOSED_REMEMBERED {
                if let Some(old) = self.closed_order.pop_front() {
                    self.closed.remove(&old);
                }
            }
        }
        let mut ex = s.finish();
        if let Some(c) = outcome {
            if ex.completeness == Completeness::Complete || c == Completeness::Truncated {
                ex.completeness = c;
            }
        }
        sink.cov.exchanges += 1;
        sink.cov.h2_streams += 1;
        if ex.completeness != Completeness::Complete {
            sink.cov.incomplete_exchanges += 1;
        }
        if ex.h2.as_ref().is_some_and(|h| h.headers_complete) {
            self.stats.complete_header_streams += 1;
        }
        self.emitted = self.emitted.saturating_add(1);
        (sink.out)(Record::Exchange(ex));
    }

    /// Side `d` is out of step with its frames: look for them again at segment starts.
    fn lose_sync(&mut self, d: usize, sink: &mut Sink<'_>) {
        sink.cov.h2_sync_lost += 1;
        self.stats.sync_lost += 1;
        let s = &mut self.sides[d];
        s.synced = false;
        s.preface_left = 0;
        s.head_n = 0;
        s.cur = None;
        s.payload = Vec::new();
        s.payload_dropped = false;
        s.hpack.desync();
        if s.block.is_some() {
            self.abandon_block(d, sink);
        }
        for st in self.streams.values_mut() {
            if !st.ended[d] {
                st.ex.completeness = Completeness::Gap;
                if let Some(r) = st.grpc.as_deref_mut() {
                    r[d].lose(u64::MAX);
                }
            }
        }
    }

    /// `len` bytes of direction `dir` were not captured.
    pub(crate) fn gap(&mut self, dir: Direction, len: u64, sink: &mut Sink<'_>) {
        let d = self.side_of(dir.index());
        if !self.sides[d].synced {
            return;
        }
        if self.sides[d].head_n == 0 && self.sides[d].preface_left == 0 {
            if let Some(c) = self.sides[d].cur.as_mut() {
                let left = u64::from(c.head.len - c.off);
                if len < left || (len == left && c.head.kind == frame::DATA) {
                    // Inside one frame: its end is still known.
                    let head = c.head;
                    c.off += len as u32;
                    if head.kind == frame::DATA {
                        let id = c.data_stream;
                        if let Some(s) = id.and_then(|id| self.streams.get_mut(&id)) {
                            s.lose(d, len);
                        }
                        if len == left {
                            if let Some(c) = self.sides[d].cur.take() {
                                let ts = self.sides[d].last_ts.unwrap_or(c.ts);
                                self.end_data(d, c, ts, sink);
                            }
                        }
                    } else {
                        // Part of a control or header frame: its payload is lost.
                        self.sides[d].payload_dropped = true;
                        self.sides[d].payload = Vec::new();
                        if matches!(
                            head.kind,
                            frame::HEADERS | frame::CONTINUATION | frame::PUSH_PROMISE
                        ) {
                            self.sides[d].hpack.desync();
                        }
                    }
                    return;
                }
            }
        }
        self.lose_sync(d, sink);
    }

    /// Flushes every stream still open when the connection closes.
    pub(crate) fn close(&mut self, reason: CloseReason, sink: &mut Sink<'_>) {
        let clean = matches!(reason, CloseReason::Fin | CloseReason::Rst);
        let mut ids: Vec<u32> = self.streams.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            if let Some(s) = self.streams.remove(&id) {
                let outcome = if s.request_seen && s.ended[CLIENT] && !s.response_seen && clean {
                    Completeness::NoResponse
                } else {
                    Completeness::Truncated
                };
                self.emit(id, s, Some(outcome), sink);
            }
        }
    }
}

/// A HEADERS or PUSH_PROMISE payload without its padding and priority fields: (header
/// block fragment, padding bytes including the pad length octet, promised stream id).
fn strip(h: Head, p: &[u8]) -> Option<(&[u8], u64, Option<u32>)> {
    let mut start = 0usize;
    let mut end = p.len();
    let mut padding = 0u64;
    if h.flags & frame::PADDED != 0 {
        let pad = usize::from(*p.first()?);
        start = 1;
        end = end.checked_sub(pad)?;
        padding = pad as u64 + 1;
    }
    let mut promised = None;
    if h.kind == frame::HEADERS && h.flags & frame::PRIORITY_FLAG != 0 {
        start += 5;
    } else if h.kind == frame::PUSH_PROMISE {
        let b = p.get(start..start + 4)?;
        promised = Some(u32::from_be_bytes([b[0] & 0x7f, b[1], b[2], b[3]]));
        start += 4;
    }
    (start <= end).then(|| (&p[start..end], padding, promised))
}
