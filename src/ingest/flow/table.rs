//! The flow table: one entry per live TCP connection, keyed by its 5-tuple.
//!
//! Connections live in a slab threaded on an intrusive LRU list (most recent at the head),
//! so that touching, idle eviction and capacity eviction are O(1) per connection and the
//! in-order path allocates nothing.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use super::skew::{DirSkew, SkewEstimator};
use super::tcp::{HalfSink, HalfStream, OooBudget};
use super::{EventKind, FlowConfig, Interest, RoleHint, RoleProbe, StreamEvent};
use crate::ingest::decode::Segment;
use crate::model::{
    CloseReason, ConnId, Coverage, Direction, Endpoint, SourceId, TcpSummary, Timestamp,
};

/// Idle and linger checks run at most this often (capture time).
pub(crate) const SWEEP_INTERVAL_NS: i64 = 1_000_000_000;
/// After both FINs, how long to wait for the final ACK before closing anyway.
const FIN_LINGER_NS: i64 = 1_000_000_000;
const NIL: u32 = u32::MAX;

/// The 5-tuple in canonical order (protocol is always TCP): `lo <= hi`, so both
/// directions of a connection find the same entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub lo: Endpoint,
    pub hi: Endpoint,
}

impl FlowKey {
    /// The key of a segment and the side (0 = `lo`, 1 = `hi`) that sent it.
    #[inline]
    pub fn of(src: Endpoint, dst: Endpoint) -> (FlowKey, usize) {
        if src <= dst {
            (FlowKey { lo: src, hi: dst }, 0)
        } else {
            (FlowKey { lo: dst, hi: src }, 1)
        }
    }
}

struct Conn {
    id: ConnId,
    key: FlowKey,
    /// Indexed by side (0 = `key.lo`).
    half: [HalfStream; 2],
    source: [Option<SourceId>; 2],
    /// Per side: the first packet and its first copy from another source (clock offsets).
    skew: [DirSkew; 2],
    /// Side of the client, once decided.
    client: Option<usize>,
    roles_inferred: bool,
    ignore: bool,
    first_packet: Timestamp,
    last_packet: Timestamp,
    syn: Option<Timestamp>,
    syn_ack: Option<Timestamp>,
    handshake_ack: Option<Timestamp>,
    /// Already in the table's list of connections waiting for their final ACK.
    lingering: bool,
}

impl Conn {
    fn new(id: ConnId, key: FlowKey, ts: Timestamp) -> Self {
        Conn {
            id,
            key,
            half: [HalfStream::new(), HalfStream::new()],
            source: [None, None],
            skew: [DirSkew::default(); 2],
            client: None,
            roles_inferred: false,
            ignore: false,
            first_packet: ts,
            last_packet: ts,
            syn: None,
            syn_ack: None,
            handshake_ack: None,
            lingering: false,
        }
    }

    fn endpoint(&self, side: usize) -> Endpoint {
        if side == 0 {
            self.key.lo
        } else {
            self.key.hi
        }
    }

    fn dir_of(&self, side: usize) -> Direction {
        if self.client == Some(side) {
            Direction::ClientToServer
        } else {
            Direction::ServerToClient
        }
    }

    fn any_fin(&self) -> bool {
        self.half[0].stats.fin || self.half[1].stats.fin
    }

    fn both_ended(&self) -> bool {
        self.half[0].ended() && self.half[1].ended()
    }
}

/// Adapts the consumer callback to one direction of one connection.
struct Out<'o, F> {
    out: &'o mut F,
    conn: ConnId,
    dir: Direction,
    ignore: &'o mut bool,
}

impl<F: FnMut(StreamEvent<'_>) -> Interest> Out<'_, F> {
    #[inline]
    fn emit(&mut self, ts: Timestamp, kind: EventKind<'_>) {
        if (self.out)(StreamEvent {
            conn: self.conn,
            ts,
            kind,
        }) == Interest::Ignore
        {
            *self.ignore = true;
        }
    }
}

impl<F: FnMut(StreamEvent<'_>) -> Interest> HalfSink for Out<'_, F> {
    #[inline]
    fn data(&mut self, ts: Timestamp, bytes: &[u8], stall_ns: Option<i64>) {
        if !*self.ignore {
            self.emit(
                ts,
                EventKind::Data {
                    dir: self.dir,
                    bytes,
                    stall_ns,
                },
            );
        }
    }
    fn gap(&mut self, ts: Timestamp, len: u64) {
        // An ignored connection's consumer wants no stream events; the gap is still counted.
        if !*self.ignore {
            self.emit(ts, EventKind::Gap { dir: self.dir, len });
        }
    }
    fn end(&mut self, ts: Timestamp) {
        self.emit(ts, EventKind::End { dir: self.dir });
    }
    #[inline]
    fn ignoring(&self) -> bool {
        *self.ignore
    }
}

/// Which side is the client when nothing better is known: a port below 1024 facing one
/// above is the server; otherwise the lower port is.
fn client_by_ports(key: &FlowKey) -> usize {
    let (p0, p1) = (key.lo.port, key.hi.port);
    let server = if (p0 < 1024) != (p1 < 1024) {
        if p0 < 1024 {
            0
        } else {
            1
        }
    } else if p0 < p1 {
        0
    } else {
        1 // (equal ports: `lo` is the client)
    };
    1 - server
}

/// Decides roles (if not yet) and emits `Opened`. `first` is the side and payload that
/// arrived first, for the probe.
fn ensure_roles<F>(conn: &mut Conn, first: Option<(usize, &[u8])>, probe: RoleProbe, out: &mut F)
where
    F: FnMut(StreamEvent<'_>) -> Interest,
{
    if conn.client.is_some() {
        return;
    }
    let client = match first {
        Some((side, bytes)) => match probe(bytes) {
            RoleHint::Client => side,
            RoleHint::Server => 1 - side,
            RoleHint::Unknown => client_by_ports(&conn.key),
        },
        None => client_by_ports(&conn.key),
    };
    conn.roles_inferred = true;
    set_roles(conn, client, out);
}

fn set_roles<F>(conn: &mut Conn, client: usize, out: &mut F)
where
    F: FnMut(StreamEvent<'_>) -> Interest,
{
    conn.client = Some(client);
    let ev = StreamEvent {
        conn: conn.id,
        ts: conn.first_packet,
        kind: EventKind::Opened {
            client: conn.endpoint(client),
            server: conn.endpoint(1 - client),
        },
    };
    if out(ev) == Interest::Ignore {
        conn.ignore = true;
    }
}

/// Splits the borrow of a connection into one direction's stream and its sink.
macro_rules! half_and_sink {
    ($conn:expr, $side:expr, $out:expr) => {{
        let dir = $conn.dir_of($side);
        let id = $conn.id;
        let Conn { half, ignore, .. } = &mut *$conn;
        (
            &mut half[$side],
            Out {
                out: $out,
                conn: id,
                dir,
                ignore,
            },
        )
    }};
}

/// Applies one segment to its connection; returns a close reason when it ends it.
fn process<F>(
    conn: &mut Conn,
    side: usize,
    seg: &Segment<'_>,
    probe: RoleProbe,
    budget: &mut OooBudget,
    cov: &mut Coverage,
    out: &mut F,
) -> Option<CloseReason>
where
    F: FnMut(StreamEvent<'_>) -> Interest,
{
    // Capture copies: a direction belongs to the source its first packet came from.
    match conn.source[side] {
        None => conn.source[side] = Some(seg.source),
        Some(s) if s != seg.source => {
            conn.half[side].stats.capture_duplicates += 1;
            conn.skew[side].on_copy(s, seg);
            return None;
        }
        Some(_) => {}
    }
    conn.skew[side].on_owner(seg);
    let ts = seg.ts;
    if ts > conn.last_packet {
        conn.last_packet = ts;
    }
    conn.half[side].stats.packets += 1;
    let peer = 1 - side;
    let flags = seg.flags;

    if flags.rst() {
        conn.half[side].stats.rst = true;
        return Some(CloseReason::Rst);
    }
    // Wireshark's "zero window": none of SYN, FIN, RST set (a SYN's window is not yet
    // scaled, a closing side's window no longer matters).
    if !flags.syn() && !flags.fin() {
        conn.half[side].on_window(seg.window, ts);
    }
    if let Some(mss) = seg.mss.filter(|_| flags.syn()) {
        conn.half[side].stats.mss = Some(mss);
        conn.half[peer].set_send_mss(mss);
    }

    let mut data_seq = seg.seq;
    if flags.syn() {
        data_seq = seg.seq.wrapping_add(1);
        if flags.ack() {
            if conn.client.is_none() {
                set_roles(conn, peer, out);
            }
            if conn.syn_ack.is_none() {
                conn.syn_ack = Some(ts);
            }
        } else {
            if conn.client.is_none() {
                set_roles(conn, side, out);
            }
            if conn.syn.is_none() {
                conn.syn = Some(ts);
            }
        }
        if !conn.half[side].on_syn(seg.seq) {
            conn.half[side].stats.retransmitted_segments += 1;
        }
    } else {
        conn.half[side].ensure_started(seg.seq);
    }

    if flags.ack() {
        if !flags.syn()
            && conn.handshake_ack.is_none()
            && conn.syn_ack.is_some()
            && conn.client == Some(side)
            && conn.half[peer].acks_syn(seg.ack)
        {
            conn.handshake_ack = Some(ts);
        }
        let ph = &conn.half[peer];
        if conn.client.is_none() && ph.started() && super::tcp::seq_diff(seg.ack, ph.next_seq()) > 0
        {
            // A gap is about to be reported: roles are needed first.
            ensure_roles(conn, None, probe, out);
        }
        let pure = seg.payload.is_empty() && seg.wire_len == 0;
        let (h, mut sink) = half_and_sink!(conn, peer, out);
        h.on_peer_ack(seg.ack, pure, ts, budget, &mut sink);
    }

    if !seg.payload.is_empty() || seg.wire_len > 0 {
        ensure_roles(conn, Some((side, seg.payload)), probe, out);
        let (h, mut sink) = half_and_sink!(conn, side, out);
        h.on_segment(
            data_seq,
            seg.payload,
            seg.wire_len,
            ts,
            budget,
            cov,
            &mut sink,
        );
    }

    if flags.fin() {
        ensure_roles(conn, None, probe, out);
        let wire = seg
            .wire_len
            .max(u32::try_from(seg.payload.len()).unwrap_or(u32::MAX));
        let (h, mut sink) = half_and_sink!(conn, side, out);
        h.on_fin(data_seq.wrapping_add(wire), ts, budget, &mut sink);
    }

    if conn.half[0].fin_acked() && conn.half[1].fin_acked() {
        return Some(CloseReason::Fin);
    }
    None
}

/// Flushes a connection and emits its last events; updates the coverage counters.
fn close_conn<F>(
    conn: &mut Conn,
    reason: CloseReason,
    ts: Timestamp,
    probe: RoleProbe,
    budget: &mut OooBudget,
    cov: &mut Coverage,
    out: &mut F,
) where
    F: FnMut(StreamEvent<'_>) -> Interest,
{
    ensure_roles(conn, None, probe, out);
    let client = conn.client.unwrap_or(0);
    for side in [client, 1 - client] {
        let (h, mut sink) = half_and_sink!(conn, side, out);
        if reason == CloseReason::Rst {
            h.abort(ts, budget, &mut sink);
        } else {
            h.close(ts, budget, &mut sink);
        }
    }
    for h in &mut conn.half {
        h.end_zero_window(conn.last_packet);
    }
    let c2s = conn.half[client].stats;
    let s2c = conn.half[1 - client].stats;
    let summary = TcpSummary {
        conn: conn.id,
        client: conn.endpoint(client),
        server: conn.endpoint(1 - client),
        first_packet: conn.first_packet,
        last_packet: conn.last_packet,
        syn: conn.syn,
        syn_ack: conn.syn_ack,
        handshake_ack: conn.handshake_ack,
        handshake_seen: conn.syn.is_some()
            && conn.syn_ack.is_some()
            && conn.handshake_ack.is_some(),
        roles_inferred: conn.roles_inferred,
        client_to_server: c2s,
        server_to_client: s2c,
        close: reason,
    };
    if summary.roles_inferred {
        cov.connections_without_handshake += 1;
    }
    if summary.one_sided() {
        cov.one_sided_connections += 1;
    }
    for s in [&c2s, &s2c] {
        cov.gaps += s.gaps;
        cov.gap_bytes += s.gap_bytes;
        cov.retransmitted_bytes += s.retransmitted_bytes;
        cov.capture_duplicates += s.capture_duplicates;
    }
    match reason {
        CloseReason::IdleEvicted => cov.evicted_idle += 1,
        CloseReason::CapacityEvicted => cov.evicted_capacity += 1,
        CloseReason::EndOfCapture => cov.flushed_at_end += 1,
        CloseReason::Fin | CloseReason::Rst => {}
    }
    let end_ts = if ts > conn.last_packet {
        ts
    } else {
        conn.last_packet
    };
    let _ = out(StreamEvent {
        conn: conn.id,
        ts: end_ts,
        kind: EventKind::Closed(&summary),
    });
}

struct Slot {
    conn: Option<Conn>,
    prev: u32,
    next: u32,
}

pub struct FlowTable {
    config: FlowConfig,
    probe: RoleProbe,
    map: FxHashMap<FlowKey, u32>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Most recently active connection.
    head: u32,
    /// Least recently active connection.
    tail: u32,
    next_id: u64,
    budget: OooBudget,
    /// Latest capture time seen.
    now: Timestamp,
    next_sweep: i64,
    /// Connections with both FINs done, waiting for their final ACK: (slot, id).
    lingering: Vec<(u32, ConnId)>,
    /// Recently closed tuples (FIN/RST) and when they closed; bounded by `closed_order`.
    closed: FxHashMap<FlowKey, Timestamp>,
    closed_order: VecDeque<(FlowKey, Timestamp)>,
    /// Deltas between capture sources, from closed connections.
    skew: SkewEstimator,
}

impl FlowTable {
    pub fn new(config: FlowConfig, probe: RoleProbe) -> Self {
        FlowTable {
            config,
            probe,
            map: FxHashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            next_id: 0,
            budget: OooBudget::new(
                config.max_ooo_bytes_per_direction,
                config.max_ooo_bytes_total,
            ),
            now: Timestamp(i64::MIN),
            next_sweep: i64::MIN,
            lingering: Vec::new(),
            closed: FxHashMap::default(),
            closed_order: VecDeque::new(),
            skew: SkewEstimator::default(),
        }
    }

    /// Live connections.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Out-of-order bytes buffered now, all connections together.
    pub fn buffered_bytes(&self) -> usize {
        self.budget.used
    }

    /// Feeds one segment; events go to `out` in stream order. The table keeps its own
    /// clock (the latest time seen), sweeps by it, and numbers connections 0, 1, ...
    pub fn push(
        &mut self,
        seg: &Segment<'_>,
        cov: &mut Coverage,
        out: &mut impl FnMut(StreamEvent<'_>) -> Interest,
    ) {
        if seg.ts > self.now {
            self.now = seg.ts;
        }
        self.apply(seg, None, cov, out);
        // After the segment, so that a final ACK arriving late is still absorbed.
        if self.now.0 >= self.next_sweep {
            self.sweep(cov, out);
        }
    }

    /// Feeds one segment of a capture whose connections are shared among several tables
    /// (by 5-tuple): `now` is the latest time of the whole capture so far, `frame` the
    /// segment's number in it, which becomes the id of a connection the segment opens.
    /// The caller sweeps every table at the same points ([`FlowTable::sweep_at`]), so
    /// each connection goes through exactly what one table would have done with it.
    pub fn push_shared(
        &mut self,
        seg: &Segment<'_>,
        frame: u64,
        now: Timestamp,
        cov: &mut Coverage,
        out: &mut impl FnMut(StreamEvent<'_>) -> Interest,
    ) {
        self.now = now;
        self.apply(seg, Some(frame), cov, out);
    }

    /// The sweep [`FlowTable::push`] runs every `SWEEP_INTERVAL_NS` of capture time, at
    /// `now`, for tables fed by [`FlowTable::push_shared`].
    pub fn sweep_at(
        &mut self,
        now: Timestamp,
        cov: &mut Coverage,
        out: &mut impl FnMut(StreamEvent<'_>) -> Interest,
    ) {
        self.now = now;
        self.sweep(cov, out);
    }

    fn apply(
        &mut self,
        seg: &Segment<'_>,
        frame: Option<u64>,
        cov: &mut Coverage,
        out: &mut impl FnMut(StreamEvent<'_>) -> Interest,
    ) {
        let (key, side) = FlowKey::of(seg.src, seg.dst);
        let pure_syn = seg.flags.syn() && !seg.flags.ack();
        let slot = match self.map.get(&key) {
            Some(&slot) => {
                if pure_syn && self.is_new_connection(slot, side, seg.seq) {
                    // Port reuse on a connection whose end the capture did not show.
                    let reason = match self.conn(slot) {
                        Some(c) if c.any_fin() => CloseReason::Fin,
                        _ => CloseReason::IdleEvicted,
                    };
                    self.close_slot(slot, reason, cov, out);
                    self.open(key, seg.ts, frame, cov, out)
                } else {
                    slot
                }
            }
            None => {
                if self.closed.contains_key(&key) {
                    if !pure_syn {
                        cov.stray_segments += 1;
                        return;
                    }
                    self.closed.remove(&key);
                } else if seg.flags.rst() {
                    // A lone RST for a connection never seen opens nothing.
                    cov.stray_segments += 1;
                    return;
                }
                self.open(key, seg.ts, frame, cov, out)
            }
        };
        self.touch(slot);
        let (probe, budget) = (self.probe, &mut self.budget);
        let Some(conn) = self
            .slots
            .get_mut(slot as usize)
            .and_then(|s| s.conn.as_mut())
        else {
            return;
        };
        match process(conn, side, seg, probe, budget, cov, out) {
            Some(reason) => self.close_slot(slot, reason, cov, out),
            None => {
                if !conn.lingering && conn.both_ended() {
                    conn.lingering = true;
                    self.lingering.push((slot, conn.id));
                }
            }
        }
    }

    /// Closes every connection still open (reason `EndOfCapture`), flushing buffered bytes,
    /// and sets the clock offsets.
    pub fn finish(
        &mut self,
        cov: &mut Coverage,
        out: &mut impl FnMut(StreamEvent<'_>) -> Interest,
    ) {
        self.close_all(cov, out);
        cov.clock_offsets = self.skew.estimates();
    }

    /// [`FlowTable::finish`] for a table that shares the capture with others: the clock
    /// deltas are returned, to be merged with theirs before the offsets are estimated.
    pub fn finish_shared(
        mut self,
        cov: &mut Coverage,
        out: &mut impl FnMut(StreamEvent<'_>) -> Interest,
    ) -> SkewEstimator {
        self.close_all(cov, out);
        self.skew
    }

    fn close_all(&mut self, cov: &mut Coverage, out: &mut impl FnMut(StreamEvent<'_>) -> Interest) {
        let mut live: Vec<(ConnId, u32)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.conn.as_ref().map(|c| (c.id, i as u32)))
            .collect();
        live.sort_unstable();
        for (_, slot) in live {
            let reason = match self.conn(slot) {
                Some(c) if c.both_ended() => CloseReason::Fin,
                _ => CloseReason::EndOfCapture,
            };
            self.close_slot(slot, reason, cov, out);
        }
        self.lingering.clear();
        self.closed.clear();
        self.closed_order.clear();
    }

    fn conn(&self, slot: u32) -> Option<&Conn> {
        self.slots.get(slot as usize).and_then(|s| s.conn.as_ref())
    }

    /// A SYN on a live tuple starts a new connection unless it repeats the SYN we have.
    fn is_new_connection(&self, slot: u32, side: usize, seq: u32) -> bool {
        let Some(c) = self.conn(slot) else {
            return false;
        };
        match c.half[side].isn() {
            Some(isn) => isn != seq,
            // No SYN yet from this side: new if the tuple already carried a conversation.
            // (A SYN-ACK seen before its SYN, with no data yet, is the same handshake.)
            None => {
                let fresh = c.half[1 - side].isn().is_some()
                    && c.half[0].stats.bytes + c.half[1].stats.bytes == 0;
                !fresh
            }
        }
    }

    fn open(
        &mut self,
        key: FlowKey,
        ts: Timestamp,
        frame: Option<u64>,
        cov: &mut Coverage,
        out: &mut impl FnMut(StreamEvent<'_>) -> Interest,
    ) -> u32 {
        let cap = self.config.max_connections.max(1);
        while self.map.len() >= cap && self.tail != NIL {
            self.close_slot(self.tail, CloseReason::CapacityEvicted, cov, out);
        }
        let conn = Conn::new(ConnId(frame.unwrap_or(self.next_id)), key, ts);
        self.next_id += 1;
        cov.connections += 1;
        let slot = match self.free.pop() {
            Some(i) => {
                if let Some(s) = self.slots.get_mut(i as usize) {
                    s.conn = Some(conn);
                }
                i
            }
            None => {
                self.slots.push(Slot {
                    conn: Some(conn),
                    prev: NIL,
                    next: NIL,
                });
                (self.slots.len() - 1) as u32
            }
        };
        self.map.insert(key, slot);
        self.link_front(slot);
        slot
    }

    fn close_slot(
        &mut self,
        slot: u32,
        reason: CloseReason,
        cov: &mut Coverage,
        out: &mut impl FnMut(StreamEvent<'_>) -> Interest,
    ) {
        let Some(mut conn) = self
            .slots
            .get_mut(slot as usize)
            .and_then(|s| s.conn.take())
        else {
            return;
        };
        self.unlink(slot);
        self.free.push(slot);
        self.map.remove(&conn.key);
        let ts = self.now;
        close_conn(
            &mut conn,
            reason,
            ts,
            self.probe,
            &mut self.budget,
            cov,
            out,
        );
        self.skew.record(&conn.skew, conn.client.unwrap_or(0));
        if matches!(reason, CloseReason::Fin | CloseReason::Rst) && self.config.closed_linger_ns > 0
        {
            self.remember_closed(conn.key, ts);
        }
    }

    fn remember_closed(&mut self, key: FlowKey, ts: Timestamp) {
        let cap = self.config.max_connections.max(1);
        while self.closed_order.len() >= cap {
            self.forget_oldest_closed();
        }
        self.closed.insert(key, ts);
        self.closed_order.push_back((key, ts));
    }

    fn forget_oldest_closed(&mut self) {
        if let Some((key, ts)) = self.closed_order.pop_front() {
            // A later close of the same tuple replaced this entry's time: keep that one.
            if self.closed.get(&key) == Some(&ts) {
                self.closed.remove(&key);
            }
        }
    }

    /// Idle eviction, FIN linger expiry, forgetting old closed tuples.
    fn sweep(&mut self, cov: &mut Coverage, out: &mut impl FnMut(StreamEvent<'_>) -> Interest) {
        let now = self.now.0;
        self.next_sweep = now.saturating_add(SWEEP_INTERVAL_NS);
        while let Some((_, t)) = self.closed_order.front() {
            if now.saturating_sub(t.0) < self.config.closed_linger_ns {
                break;
            }
            self.forget_oldest_closed();
        }
        let mut i = 0;
        while i < self.lingering.len() {
            let (slot, id) = self.lingering[i];
            match self.conn(slot) {
                Some(c) if c.id == id => {
                    if now.saturating_sub(c.last_packet.0) >= FIN_LINGER_NS {
                        self.lingering.swap_remove(i);
                        self.close_slot(slot, CloseReason::Fin, cov, out);
                    } else {
                        i += 1;
                    }
                }
                _ => {
                    self.lingering.swap_remove(i);
                }
            }
        }
        while self.tail != NIL {
            let tail = self.tail;
            let Some(c) = self.conn(tail) else { break };
            if now.saturating_sub(c.last_packet.0) <= self.config.idle_timeout_ns {
                break;
            }
            // FIN from one side and then silence is a finished connection.
            let reason = if c.any_fin() {
                CloseReason::Fin
            } else {
                CloseReason::IdleEvicted
            };
            self.close_slot(tail, reason, cov, out);
        }
    }

    fn link_front(&mut self, slot: u32) {
        let old_head = self.head;
        if let Some(s) = self.slots.get_mut(slot as usize) {
            s.prev = NIL;
            s.next = old_head;
        }
        if let Some(h) = self.slots.get_mut(old_head as usize) {
            h.prev = slot;
        }
        self.head = slot;
        if self.tail == NIL {
            self.tail = slot;
        }
    }

    fn unlink(&mut self, slot: u32) {
        let Some(s) = self.slots.get(slot as usize) else {
            return;
        };
        let (prev, next) = (s.prev, s.next);
        match self.slots.get_mut(prev as usize) {
            Some(p) => p.next = next,
            None => self.head = next,
        }
        match self.slots.get_mut(next as usize) {
            Some(n) => n.prev = prev,
            None => self.tail = prev,
        }
        if let Some(s) = self.slots.get_mut(slot as usize) {
            s.prev = NIL;
            s.next = NIL;
        }
    }

    #[inline]
    fn touch(&mut self, slot: u32) {
        if self.head != slot {
            self.unlink(slot);
            self.link_front(slot);
        }
    }
}
