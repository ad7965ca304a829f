//! One direction of a TCP connection: in-order delivery, a bounded out-of-order buffer,
//! retransmission and overlap trimming, sequence wrap-around, gap detection.
//!
//! It also reads two transport pathologies off the segment times, at no cost beyond a few
//! integers per direction:
//! - a *sender stall*: the sender had bytes in flight, sent nothing for at least
//!   [`STALL_MIN_NS`], and sent its next new bytes, in a segment shorter than
//!   full-sized, within [`STALL_RESUME_NS`] of a pure ACK (no payload) that covered
//!   everything it had sent. That is Nagle's algorithm holding a small segment until the
//!   peer's delayed ACK comes; an application that is slow to write the rest resumes at
//!   its own pace, not right after an ACK, and a sender answering the peer's data (an
//!   ACK riding on it) is the protocol's turn, not a stall. Nagle never holds a
//!   full-sized segment: one that resumes right after an ACK waited for the congestion
//!   or receive window (a slow-start round, a slow reader), which other measures price.
//!   The stall is handed on with the bytes that ended it ([`HalfSink::data`]), for the
//!   protocol stage to charge to the message being sent.
//! - a *retransmission timeout*: a segment repeating bytes already sent, after its sender
//!   was silent for at least [`RTO_SILENCE_NS`] (counted in [`DirStats`]).
//!
//! A segment that repeats bytes (it restarts its sender's silence), fills or follows a
//! hole, or arrives ahead of one ends no stall. A hole the capture never filled forgets
//! when the sender last sent (its missing bytes left at some unseen time), so neither a
//! stall nor a timeout is claimed across it.
//!
//! Hand-written rather than taken from a crate: the reassemblers on crates.io (smoltcp's
//! `Assembler`, ...) track ranges for a live stack and neither keep per-segment capture
//! times nor report the holes a passive capture never fills, which is the point here.

use std::collections::VecDeque;

use crate::model::{Coverage, DirStats, Timestamp};

/// `a - b` in sequence space: positive when `a` is after `b` (RFC 793 modulo-2^32 compare).
#[inline]
pub fn seq_diff(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

/// Segments buffered per direction at most, whatever their size (bounds bookkeeping of
/// ignored connections, whose bytes are not copied).
pub const MAX_OOO_SEGMENTS: usize = 4096;

/// ACKs further than this beyond the expected sequence are nonsense (or another
/// connection's) and never declare a gap.
const MAX_ACK_JUMP: i32 = 1 << 30;

/// The shortest pause inside a sender's data that counts as a stall. Nagle's algorithm
/// waiting for a delayed ACK holds a segment about 40 ms on Linux (up to 200 ms
/// elsewhere); pauses under 10 ms are scheduling noise and cost little.
pub const STALL_MIN_NS: i64 = 10_000_000;

/// How soon after the releasing ACK (as the capture saw it) a stalled sender's next bytes
/// come: the ACK's way from the capture point to the sender, the sender's wake-up and its
/// segment's way back. A sender resuming later was waiting for something else.
pub const STALL_RESUME_NS: i64 = 2_000_000;

/// The shortest silence of a sender after which a retransmission is the retransmission
/// timer's: Linux's minimum RTO is 200 ms. A fast retransmit (three duplicate ACKs) or a
/// tail-loss probe follows the sender's last segment by a few round trips, far less on
/// the networks between services.
pub const RTO_SILENCE_NS: i64 = 200_000_000;

/// Receives what one direction's reassembly produces.
pub trait HalfSink {
    /// In-order bytes of the segment captured at `ts`; `stall_ns` when that segment ended a
    /// sender stall that long (see the module docs).
    fn data(&mut self, ts: Timestamp, bytes: &[u8], stall_ns: Option<i64>);
    fn gap(&mut self, ts: Timestamp, len: u64);
    fn end(&mut self, ts: Timestamp);
    /// True once the consumer does not want the bytes: nothing is copied any more.
    fn ignoring(&self) -> bool;
}

/// Out-of-order buffer limits, shared by every direction of a flow table.
#[derive(Clone, Debug)]
pub struct OooBudget {
    pub per_direction: usize,
    pub total: usize,
    /// Bytes buffered now, all directions together.
    pub used: usize,
}

impl OooBudget {
    pub fn new(per_direction: usize, total: usize) -> Self {
        OooBudget {
            per_direction,
            total,
            used: 0,
        }
    }
}

/// A segment that arrived ahead of a hole.
#[derive(Debug)]
struct OooSeg {
    seq: u32,
    /// Sequence space it covers (payload length on the wire).
    wire: u32,
    /// Bytes the capture holds of it (`<= wire`; the rest is a snaplen gap).
    captured: u32,
    ts: Timestamp,
    /// The captured bytes, or empty when the connection is ignored (not copied).
    data: Vec<u8>,
}

/// Reassembly state of one direction.
#[derive(Debug, Default)]
pub struct HalfStream {
    started: bool,
    next: u32,
    isn: Option<u32>,
    fin: Option<u32>,
    fin_acked: bool,
    /// Highest ACK the peer sent for this direction.
    peer_ack: Option<u32>,
    /// Furthest sequence number this direction is known to have sent: the end of its
    /// furthest segment, or `next` when the peer acknowledged bytes the capture missed.
    sent_high: u32,
    /// Capture time of this direction's last segment with payload (new or repeated);
    /// `None` before the first one and after a hole (bytes were sent then, unseen).
    last_payload: Option<Timestamp>,
    /// When the peer's ACK last moved up to everything this direction had sent.
    caught_up: Option<Timestamp>,
    /// The largest segment this direction may send: the MSS its peer's SYN advertised.
    send_mss: Option<u16>,
    /// The largest segment this direction sent so far.
    largest_segment: u32,
    /// When this direction's receive window went to zero, while it stays there.
    zero_window_since: Option<Timestamp>,
    ended: bool,
    ooo: VecDeque<OooSeg>,
    ooo_bytes: usize,
    pub stats: DirStats,
}

impl HalfStream {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn started(&self) -> bool {
        self.started
    }
    /// Next expected sequence number (meaningful once started).
    pub fn next_seq(&self) -> u32 {
        self.next
    }
    pub fn isn(&self) -> Option<u32> {
        self.isn
    }
    /// FIN reached in order (or the direction was aborted).
    pub fn ended(&self) -> bool {
        self.ended
    }
    /// The FIN was reached and the peer acknowledged it.
    pub fn fin_acked(&self) -> bool {
        self.ended && self.fin_acked
    }
    pub fn buffered_bytes(&self) -> usize {
        self.ooo_bytes
    }

    /// The MSS the peer's SYN advertised: the largest segment this direction may send.
    pub fn set_send_mss(&mut self, mss: u16) {
        self.send_mss = Some(mss);
    }

    /// A full-sized segment, which Nagle's algorithm never holds back: within the 40 bytes
    /// TCP options may take of the MSS, or (without a SYN seen) as large as the largest
    /// this direction sent, when that was at least the 536 bytes every host accepts.
    fn full_sized(&self, wire: u32) -> bool {
        match self.send_mss {
            Some(mss) => wire + 40 >= u32::from(mss),
            None => self.largest_segment >= 536 && wire >= self.largest_segment,
        }
    }

    /// The receive window this direction advertised at `ts` (SYN and FIN segments are
    /// not counted: a SYN's window is not yet scaled, a closing side's no longer matters).
    pub fn on_window(&mut self, window: u16, ts: Timestamp) {
        if window == 0 {
            self.stats.zero_windows += 1;
            self.zero_window_since.get_or_insert(ts);
        } else if let Some(since) = self.zero_window_since.take() {
            self.stats.zero_window_ns += ts.0.saturating_sub(since.0).max(0) as u64;
        }
    }

    /// Closes a zero window still open when the connection ends at `last`.
    pub fn end_zero_window(&mut self, last: Timestamp) {
        self.on_window(1, last);
    }

    /// A SYN: the stream starts after `isn`. Returns false for a retransmitted SYN.
    pub fn on_syn(&mut self, isn: u32) -> bool {
        if self.isn == Some(isn) {
            return false;
        }
        self.isn = Some(isn);
        if !self.started || self.stats.bytes == 0 {
            self.started = true;
            self.next = isn.wrapping_add(1);
            self.sent_high = self.next;
        }
        true
    }

    /// Without a handshake the first segment seen sets the start of the stream.
    #[inline]
    pub fn ensure_started(&mut self, seq: u32) {
        if !self.started {
            self.started = true;
            self.next = seq;
            self.sent_high = seq;
        }
    }

    /// Furthest sequence number the sender is known to have reached.
    #[inline]
    fn reach(&self) -> u32 {
        if seq_diff(self.next, self.sent_high) > 0 {
            self.next
        } else {
            self.sent_high
        }
    }

    /// Reads the stall or the retransmission timeout a segment of `wire` bytes at `seq`,
    /// captured at `ts`, shows (see the module docs), and notes it as the sender's last.
    /// Returns the stall it ends, if any.
    #[inline]
    fn on_sent(&mut self, seq: u32, wire: u32, ts: Timestamp) -> Option<i64> {
        let reach = self.reach();
        let full = self.full_sized(wire);
        self.largest_segment = self.largest_segment.max(wire);
        // Saturating: capture times are whatever the file says.
        let silence = self.last_payload.map(|p| ts.0.saturating_sub(p.0));
        self.last_payload = Some(ts);
        let ahead = seq_diff(seq, reach);
        if ahead < 0 {
            // Bytes already sent. Repeating just the one byte before `reach` is a
            // keep-alive, or the data that follows a one-byte zero-window probe once the
            // window opens: not the retransmission timer.
            let one_byte = ahead == -1;
            if let Some(s) = silence.filter(|s| !one_byte && *s >= RTO_SILENCE_NS) {
                self.stats.retransmission_timeouts += 1;
                self.stats.rto_wait_ns += s as u64;
            }
            let end = seq.wrapping_add(wire);
            if seq_diff(end, reach) > 0 && seq_diff(end, self.next) <= MAX_ACK_JUMP {
                self.sent_high = end;
            }
            return None;
        }
        if seq_diff(seq.wrapping_add(wire), self.next) <= MAX_ACK_JUMP {
            self.sent_high = seq.wrapping_add(wire);
        }
        // New bytes right where the sender left off, nothing missing before them; a
        // full-sized segment waited for the window (congestion or receive), not for Nagle.
        if ahead != 0 || seq != self.next || self.ended || full {
            return None;
        }
        let silence = silence.filter(|&s| s >= STALL_MIN_NS)?;
        let released = self.caught_up.map(|a| ts.0.saturating_sub(a.0))?;
        (0..=STALL_RESUME_NS).contains(&released).then_some(silence)
    }

    /// Payload of one segment: `payload` is what was captured of `wire` bytes at `seq`.
    #[allow(clippy::too_many_arguments)]
    pub fn on_segment(
        &mut self,
        seq: u32,
        payload: &[u8],
        wire: u32,
        ts: Timestamp,
        budget: &mut OooBudget,
        cov: &mut Coverage,
        sink: &mut impl HalfSink,
    ) {
        self.ensure_started(seq);
        let mut wire = wire.max(u32::try_from(payload.len()).unwrap_or(u32::MAX));
        let mut payload = payload;
        if let Some(f) = self.fin {
            // Nothing exists past the FIN; clamp what claims to.
            let room = seq_diff(f, seq);
            if room <= 0 {
                wire = 0;
            } else if wire > room as u32 {
                wire = room as u32;
            }
            payload = payload.get(..wire as usize).unwrap_or(payload);
        }
        if wire == 0 {
            return;
        }
        let stall = self.on_sent(seq, wire, ts);
        let captured = payload.len() as u32;
        if self.ended || seq_diff(seq, self.next) <= 0 {
            if self.ended && seq_diff(seq.wrapping_add(wire), self.next) > 0 {
                return; // bytes after the end of the stream: junk
            }
            self.accept(seq, wire, captured, payload, ts, stall, sink);
            self.drain(ts, budget, sink);
        } else {
            self.buffer(seq, wire, payload, ts, budget, cov, sink);
        }
    }

    /// The FIN of this direction sits at `fin_seq`.
    pub fn on_fin(
        &mut self,
        fin_seq: u32,
        ts: Timestamp,
        budget: &mut OooBudget,
        sink: &mut impl HalfSink,
    ) {
        self.ensure_started(fin_seq);
        self.stats.fin = true;
        if self.fin.is_none() && !self.ended {
            self.fin = Some(fin_seq);
        }
        self.update_fin_acked();
        self.check_fin(ts, budget, sink);
    }

    /// The peer acknowledged everything before `ack`: bytes we never saw there are a gap.
    /// `pure`: the ACK carried no payload, so it can be what released a stalled sender (an
    /// ACK riding on the peer's data may be the answer the sender was waiting for).
    pub fn on_peer_ack(
        &mut self,
        ack: u32,
        pure: bool,
        ts: Timestamp,
        budget: &mut OooBudget,
        sink: &mut impl HalfSink,
    ) {
        if !self.started {
            return;
        }
        match self.peer_ack {
            Some(p) if seq_diff(ack, p) <= 0 => return,
            _ => self.peer_ack = Some(ack),
        }
        if pure && seq_diff(ack, self.reach()) >= 0 {
            self.caught_up = Some(ts);
        }
        self.update_fin_acked();
        let jump = seq_diff(ack, self.next);
        if self.ended || jump <= 0 || jump > MAX_ACK_JUMP {
            return;
        }
        // Each pass moves `next` forward, takes a segment out of the buffer or ends the
        // stream (`upto` is ahead of `next` unless it is a buffered segment or the FIN that
        // `drain` then consumes); a pass that did none of these stops the loop.
        while !self.ended && seq_diff(ack, self.next) > 0 {
            let before = (self.next, self.ooo.len());
            let mut upto = ack;
            if let Some(front) = self.ooo.front() {
                if seq_diff(front.seq, upto) < 0 {
                    upto = front.seq;
                }
            }
            if let Some(f) = self.fin {
                if seq_diff(f, upto) < 0 {
                    upto = f;
                }
            }
            self.skip_to(upto, ts, sink);
            self.drain(ts, budget, sink);
            if !self.ended && (self.next, self.ooo.len()) == before {
                debug_assert!(false, "on_peer_ack made no progress");
                break;
            }
        }
    }

    /// Whether the peer's ACK is the one completing a handshake this direction's SYN began.
    pub fn acks_syn(&self, ack: u32) -> bool {
        self.isn.is_some_and(|isn| ack == isn.wrapping_add(1))
    }

    /// The connection closes: holes before buffered bytes and before a seen FIN become gaps,
    /// everything buffered is delivered, and the FIN (if any) is reached.
    pub fn close(&mut self, ts: Timestamp, budget: &mut OooBudget, sink: &mut impl HalfSink) {
        if !self.started {
            return;
        }
        self.drain(ts, budget, sink);
        // Each pass takes the front segment out of the buffer, so the loop ends after at
        // most as many passes as segments were buffered, whatever their sequence numbers.
        while !self.ended {
            let Some(seg) = self.pop_buffered(budget) else {
                break;
            };
            self.skip_to(seg.seq, ts, sink);
            self.accept_buffered(seg, sink);
            self.drain(ts, budget, sink);
        }
        if !self.ended {
            if let Some(f) = self.fin {
                // The FIN is beyond a hole nobody filled: the hole is a gap, then the end.
                self.skip_to(f, ts, sink);
                self.check_fin(ts, budget, sink);
            }
        }
        self.release(budget);
    }

    /// RST: flush like `close`, and the direction ends whether or not its FIN came.
    pub fn abort(&mut self, ts: Timestamp, budget: &mut OooBudget, sink: &mut impl HalfSink) {
        self.close(ts, budget, sink);
        if !self.ended {
            self.ended = true;
            sink.end(ts);
        }
    }

    /// Gives the buffer's bytes back to the shared budget.
    pub fn release(&mut self, budget: &mut OooBudget) {
        budget.used = budget.used.saturating_sub(self.ooo_bytes);
        self.ooo_bytes = 0;
        self.ooo.clear();
    }

    fn update_fin_acked(&mut self) {
        if let (Some(f), Some(a)) = (self.fin, self.peer_ack) {
            if seq_diff(a, f.wrapping_add(1)) >= 0 {
                self.fin_acked = true;
            }
        }
    }

    /// Bytes at `seq` that start at or before `next`: trims what was already delivered.
    /// `stall_ns` goes with the bytes (the segment ended a sender stall).
    #[allow(clippy::too_many_arguments)]
    fn accept(
        &mut self,
        seq: u32,
        wire: u32,
        captured: u32,
        bytes: &[u8],
        ts: Timestamp,
        stall_ns: Option<i64>,
        sink: &mut impl HalfSink,
    ) {
        let end = seq.wrapping_add(wire);
        if self.ended || seq_diff(end, self.next) <= 0 {
            self.stats.retransmitted_segments += 1;
            self.stats.retransmitted_bytes += u64::from(wire);
            return;
        }
        let k = self.next.wrapping_sub(seq); // already delivered, < wire
        if k > 0 {
            self.stats.retransmitted_segments += 1;
            self.stats.retransmitted_bytes += u64::from(k);
        }
        if captured > k {
            self.stats.bytes += u64::from(captured - k);
            if !sink.ignoring() {
                if let Some(b) = bytes.get(k as usize..) {
                    if !b.is_empty() {
                        sink.data(ts, b, stall_ns);
                    }
                }
            }
        }
        let have = captured.max(k);
        self.next = end;
        if wire > have {
            // Snaplen cut the frame: the rest of it is a gap.
            self.count_gap(u64::from(wire - have), ts, sink);
        }
    }

    /// Delivers buffered segments now in order, then checks for the FIN.
    fn drain(&mut self, ts: Timestamp, budget: &mut OooBudget, sink: &mut impl HalfSink) {
        while let Some(front) = self.ooo.front() {
            if seq_diff(front.seq, self.next) > 0 {
                break;
            }
            let Some(seg) = self.pop_buffered(budget) else {
                break;
            };
            self.accept_buffered(seg, sink);
        }
        self.check_fin(ts, budget, sink);
    }

    /// Takes the front segment out of the out-of-order buffer, releasing its bytes.
    fn pop_buffered(&mut self, budget: &mut OooBudget) -> Option<OooSeg> {
        let seg = self.ooo.pop_front()?;
        self.ooo_bytes -= seg.data.len();
        budget.used = budget.used.saturating_sub(seg.data.len());
        Some(seg)
    }

    /// Delivers a segment that waited in the buffer: it ended no stall (it followed a hole).
    fn accept_buffered(&mut self, seg: OooSeg, sink: &mut impl HalfSink) {
        self.accept(
            seg.seq,
            seg.wire,
            seg.captured,
            &seg.data,
            seg.ts,
            None,
            sink,
        );
    }

    fn check_fin(&mut self, ts: Timestamp, budget: &mut OooBudget, sink: &mut impl HalfSink) {
        if let Some(f) = self.fin {
            // "Reached" is "not ahead of next", the same test `skip_to` and `on_segment`
            // use, so a FIN exactly 2^31 away is reached rather than neither ahead nor behind.
            if !self.ended && seq_diff(f, self.next) <= 0 {
                self.ended = true;
                if seq_diff(f.wrapping_add(1), self.next) > 0 {
                    self.next = f.wrapping_add(1);
                }
                self.release(budget);
                sink.end(ts);
            }
        }
    }

    /// Declares `[next, upto)` a gap and resumes the stream at `upto`.
    fn skip_to(&mut self, upto: u32, ts: Timestamp, sink: &mut impl HalfSink) {
        let len = seq_diff(upto, self.next);
        if len > 0 {
            self.next = upto;
            // The missing bytes were sent at some unseen time.
            self.last_payload = None;
            self.count_gap(len as u64, ts, sink);
        }
    }

    fn count_gap(&mut self, len: u64, ts: Timestamp, sink: &mut impl HalfSink) {
        self.stats.gaps += 1;
        self.stats.gap_bytes += len;
        sink.gap(ts, len);
    }

    #[allow(clippy::too_many_arguments)]
    fn buffer(
        &mut self,
        seq: u32,
        wire: u32,
        payload: &[u8],
        ts: Timestamp,
        budget: &mut OooBudget,
        cov: &mut Coverage,
        sink: &mut impl HalfSink,
    ) {
        let copy = !sink.ignoring();
        let cost = if copy { payload.len() } else { 0 };
        // Sorted by distance from `next`; everything buffered is strictly ahead of it.
        let rel = seq.wrapping_sub(self.next);
        let pos = self
            .ooo
            .partition_point(|s| s.seq.wrapping_sub(self.next) < rel);
        if let Some(same) = self.ooo.get(pos) {
            if same.seq == seq && same.wire >= wire {
                self.stats.retransmitted_segments += 1;
                self.stats.retransmitted_bytes += u64::from(wire);
                return;
            }
        }
        if self.over(cost, budget) {
            cov.out_of_order_overflows += 1;
            // Give up on the holes, oldest first, until the segment fits or is in order.
            loop {
                let Some(upto) = self.ooo.front().map(|s| s.seq) else {
                    self.skip_to(seq, ts, sink);
                    self.accept(seq, wire, payload.len() as u32, payload, ts, None, sink);
                    self.drain(ts, budget, sink);
                    return;
                };
                self.skip_to(upto, ts, sink);
                self.drain(ts, budget, sink);
                if self.ended {
                    return;
                }
                if seq_diff(seq, self.next) <= 0 {
                    self.accept(seq, wire, payload.len() as u32, payload, ts, None, sink);
                    self.drain(ts, budget, sink);
                    return;
                }
                if !self.over(cost, budget) {
                    break;
                }
            }
        }
        let rel = seq.wrapping_sub(self.next);
        let pos = self
            .ooo
            .partition_point(|s| s.seq.wrapping_sub(self.next) < rel);
        self.ooo.insert(
            pos,
            OooSeg {
                seq,
                wire,
                captured: payload.len() as u32,
                ts,
                data: if copy { payload.to_vec() } else { Vec::new() },
            },
        );
        self.ooo_bytes += cost;
        budget.used += cost;
        self.stats.out_of_order_segments += 1;
    }

    fn over(&self, cost: usize, budget: &OooBudget) -> bool {
        self.ooo.len() >= MAX_OOO_SEGMENTS
            || self.ooo_bytes + cost > budget.per_direction
            || budget.used + cost > budget.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Ev {
        Data(i64, Vec<u8>),
        Gap(u64),
        End,
    }

    #[derive(Default)]
    struct Rec {
        evs: Vec<Ev>,
        ignore: bool,
    }

    impl HalfSink for Rec {
        fn data(&mut self, ts: Timestamp, bytes: &[u8], _stall_ns: Option<i64>) {
            self.evs.push(Ev::Data(ts.0, bytes.to_vec()));
        }
        fn gap(&mut self, _ts: Timestamp, len: u64) {
            self.evs.push(Ev::Gap(len));
        }
        fn end(&mut self, _ts: Timestamp) {
            self.evs.push(Ev::End);
        }
        fn ignoring(&self) -> bool {
            self.ignore
        }
    }

    fn setup() -> (HalfStream, OooBudget, Coverage, Rec) {
        (
            HalfStream::new(),
            OooBudget::new(1 << 16, 1 << 20),
            Coverage::default(),
            Rec::default(),
        )
    }

    #[test]
    fn seq_diff_wraps() {
        assert_eq!(seq_diff(5, u32::MAX - 4), 10);
        assert_eq!(seq_diff(u32::MAX - 4, 5), -10);
        assert_eq!(seq_diff(7, 7), 0);
    }

    #[test]
    fn out_of_order_buffered_keeps_each_segments_time() {
        let (mut h, mut b, mut c, mut r) = setup();
        h.ensure_started(100);
        h.on_segment(105, b"world", 5, Timestamp(2), &mut b, &mut c, &mut r);
        assert!(r.evs.is_empty());
        assert_eq!(h.buffered_bytes(), 5);
        assert_eq!(b.used, 5);
        h.on_segment(100, b"hello", 5, Timestamp(3), &mut b, &mut c, &mut r);
        assert_eq!(
            r.evs,
            vec![
                Ev::Data(3, b"hello".to_vec()),
                Ev::Data(2, b"world".to_vec())
            ]
        );
        assert_eq!(h.stats.out_of_order_segments, 1);
        assert_eq!(h.stats.bytes, 10);
        assert_eq!(b.used, 0);
    }

    #[test]
    fn duplicate_of_buffered_segment_is_a_retransmission() {
        let (mut h, mut b, mut c, mut r) = setup();
        h.ensure_started(0);
        h.on_segment(10, b"abc", 3, Timestamp(1), &mut b, &mut c, &mut r);
        h.on_segment(10, b"abc", 3, Timestamp(1), &mut b, &mut c, &mut r);
        assert_eq!(h.stats.retransmitted_segments, 1);
        assert_eq!(h.buffered_bytes(), 3);
    }

    #[test]
    fn ignored_stream_copies_nothing_but_tracks_holes() {
        let (mut h, mut b, mut c, mut r) = setup();
        r.ignore = true;
        h.ensure_started(0);
        h.on_segment(10, b"0123456789", 10, Timestamp(1), &mut b, &mut c, &mut r);
        assert_eq!(b.used, 0);
        h.on_peer_ack(20, true, Timestamp(2), &mut b, &mut r);
        assert_eq!(r.evs, vec![Ev::Gap(10)]);
        assert_eq!(h.stats.bytes, 10);
        assert_eq!(h.next_seq(), 20);
    }

    #[test]
    fn overflow_declares_the_first_hole() {
        let (mut h, _, mut c, mut r) = setup();
        let mut b = OooBudget::new(8, 1 << 20);
        h.ensure_started(0);
        h.on_segment(10, b"aaaaa", 5, Timestamp(1), &mut b, &mut c, &mut r);
        h.on_segment(20, b"bbbbb", 5, Timestamp(2), &mut b, &mut c, &mut r);
        assert_eq!(c.out_of_order_overflows, 1);
        // The hole before the first buffered segment is given up; the new one then fits.
        assert_eq!(r.evs, vec![Ev::Gap(10), Ev::Data(1, b"aaaaa".to_vec())]);
        assert_eq!(h.next_seq(), 15);
        assert_eq!(b.used, 5);
        h.on_segment(40, b"cccccccccc", 10, Timestamp(3), &mut b, &mut c, &mut r);
        // Too big for the cap even alone: every hole goes, it is delivered directly.
        assert_eq!(c.out_of_order_overflows, 2);
        assert_eq!(
            &r.evs[2..],
            &[
                Ev::Gap(5),
                Ev::Data(2, b"bbbbb".to_vec()),
                Ev::Gap(15),
                Ev::Data(3, b"cccccccccc".to_vec())
            ]
        );
        assert_eq!(b.used, 0);
    }

    #[test]
    fn fin_exactly_half_the_sequence_space_away_ends_on_close() {
        let (mut h, mut b, _, mut r) = setup();
        h.ensure_started(0);
        h.on_fin(1 << 31, Timestamp(1), &mut b, &mut r);
        // 2^31 away is "not ahead": the FIN counts as reached, once.
        assert_eq!(r.evs, vec![Ev::End]);
        h.close(Timestamp(2), &mut b, &mut r);
        assert_eq!(r.evs, vec![Ev::End]);
    }

    #[test]
    fn ack_beyond_a_fin_half_the_space_away_terminates() {
        let (mut h, mut b, mut c, mut r) = setup();
        h.ensure_started(100);
        h.on_segment(110, b"x", 1, Timestamp(1), &mut b, &mut c, &mut r);
        h.on_peer_ack(200, true, Timestamp(2), &mut b, &mut r);
        h.on_fin(100u32.wrapping_add(1 << 31), Timestamp(3), &mut b, &mut r);
        h.on_peer_ack(300, true, Timestamp(4), &mut b, &mut r);
        h.close(Timestamp(5), &mut b, &mut r);
        assert!(h.ended());
        assert_eq!(b.used, 0);
        assert_eq!(r.evs.iter().filter(|e| **e == Ev::End).count(), 1);
    }

    #[test]
    fn fin_before_next_ends_without_moving_next_back() {
        let (mut h, mut b, mut c, mut r) = setup();
        h.ensure_started(0);
        h.on_segment(0, b"0123456789", 10, Timestamp(1), &mut b, &mut c, &mut r);
        h.on_fin(4, Timestamp(2), &mut b, &mut r);
        assert!(h.ended());
        assert_eq!(h.next_seq(), 10);
        // Bytes after the end are junk, not data.
        h.on_segment(10, b"zz", 2, Timestamp(3), &mut b, &mut c, &mut r);
        assert_eq!(h.stats.bytes, 10);
    }

    #[test]
    fn close_delivers_segments_left_behind_next_by_a_new_syn() {
        let (mut h, mut b, mut c, mut r) = setup();
        h.ensure_started(1000);
        h.on_segment(1010, b"aa", 2, Timestamp(1), &mut b, &mut c, &mut r);
        h.on_segment(1020, b"bb", 2, Timestamp(2), &mut b, &mut c, &mut r);
        // A SYN with a new ISN before any byte was delivered moves `next` far away, so the
        // buffer's order no longer follows it.
        assert!(h.on_syn(7));
        h.on_fin(9, Timestamp(3), &mut b, &mut r);
        h.close(Timestamp(4), &mut b, &mut r);
        assert!(h.ended());
        assert_eq!(h.buffered_bytes(), 0);
        assert_eq!(b.used, 0);
    }

    #[test]
    fn zero_length_segments_change_nothing() {
        let (mut h, mut b, mut c, mut r) = setup();
        h.ensure_started(0);
        for seq in [0, 5, u32::MAX, 1 << 31] {
            h.on_segment(seq, b"", 0, Timestamp(1), &mut b, &mut c, &mut r);
        }
        assert!(r.evs.is_empty());
        assert_eq!(h.buffered_bytes(), 0);
        assert_eq!(h.next_seq(), 0);
    }

    #[test]
    fn garbage_sequence_numbers_always_terminate_and_return_the_budget() {
        // Deterministic pseudo-random walk over the operations with sequence numbers drawn
        // near the edges of the space (0, 2^31, 2^32 - 1) and near `next`.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..200 {
            let (mut h, _, mut c, mut r) = setup();
            let mut b = OooBudget::new(64, 256);
            let base = rnd() as u32;
            h.ensure_started(base);
            for t in 0..64 {
                let v = rnd();
                let off = match v % 4 {
                    0 => (v >> 8) as u32 % 64,
                    1 => (1u32 << 31)
                        .wrapping_add((v >> 8) as u32 % 3)
                        .wrapping_sub(1),
                    2 => u32::MAX - (v >> 8) as u32 % 64,
                    _ => (v >> 8) as u32,
                };
                let seq = base.wrapping_add(off);
                match (v >> 40) % 5 {
                    0 | 1 => {
                        let n = ((v >> 48) % 40) as usize;
                        h.on_segment(
                            seq,
                            &[b'x'; 40][..n],
                            n as u32,
                            Timestamp(t),
                            &mut b,
                            &mut c,
                            &mut r,
                        );
                    }
                    2 => h.on_fin(seq, Timestamp(t), &mut b, &mut r),
                    3 => h.on_peer_ack(seq, v & 1 == 0, Timestamp(t), &mut b, &mut r),
                    _ => {
                        h.on_syn(seq);
                    }
                }
                assert_eq!(b.used, h.buffered_bytes());
            }
            h.close(Timestamp(99), &mut b, &mut r);
            assert_eq!(b.used, 0);
            assert!(r.evs.iter().filter(|e| **e == Ev::End).count() <= 1);
        }
    }
}
