//! Clock-offset tests with hand-built segments from two capture sources. The clock model:
//! source 0 sits beside the client, source 1 beside the server, and source 1's clock reads
//! `off` more than source 0's. A client->server packet sent at `t` passes point 0 at `t`
//! and point 1 `d` later (stamps `t` and `t + d + off`); a server->client packet sent at
//! `u` passes point 1 at `u` and point 0 `d` later (stamps `u + off` and `u + d`). So the
//! first packets give the deltas `off + d` (c2s) and `off - d` (s2c), and the expected
//! figures below are that arithmetic.

use std::net::{IpAddr, Ipv4Addr};

use super::super::{FlowConfig, FlowTable, Interest, RoleHint};
use super::*;
use crate::ingest::decode::{Segment, TcpFlags};
use crate::model::{Coverage, Endpoint, SourceId, Timestamp};

const SYN: u8 = TcpFlags::SYN;
const ACK: u8 = TcpFlags::ACK;
const US: i64 = 1_000;
const MS: i64 = 1_000_000;
const REQ: &[u8] = b"GET /items/7 HTTP/1.1\r\nHost: b\r\n\r\n";
const RESP: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";

fn ep(host: u8, port: u16) -> Endpoint {
    Endpoint::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, host)), port)
}

fn src(input: u16) -> SourceId {
    SourceId {
        input,
        interface: 0,
    }
}

fn probe(b: &[u8]) -> RoleHint {
    if b.starts_with(b"GET ") {
        RoleHint::Client
    } else if b.starts_with(b"HTTP/") {
        RoleHint::Server
    } else {
        RoleHint::Unknown
    }
}

/// One captured packet: timestamp, source, sender, receiver, seq, ack, flags, payload.
type Pkt = (
    i64,
    SourceId,
    Endpoint,
    Endpoint,
    u32,
    u32,
    u8,
    &'static [u8],
);

/// One packet as sent: at, client->server?, seq, ack, flags, payload.
type Send = (i64, bool, u32, u32, u8, &'static [u8]);

/// The four packets of one exchange on a new connection (SYN, SYN-ACK, request,
/// response) as both points stamp them. `t` is when the client sends its SYN; the
/// server answers each packet 1 ms after it reached it. `from` is the first packet
/// index source 1 holds (0 = all; 2 = it began after the handshake).
fn exchange(port: u16, t: i64, off: i64, d_c2s: i64, d_s2c: i64, from: usize) -> Vec<Pkt> {
    let (c, s) = (ep(1, port), ep(2, 8080));
    let req_len = REQ.len() as u32;
    let sends: [Send; 4] = [
        (t, true, 1000, 0, SYN, b""),
        (t + d_c2s + MS, false, 5000, 1001, SYN | ACK, b""),
        (t + 3 * MS, true, 1001, 5001, ACK, REQ),
        (t + 4 * MS + d_c2s, false, 5001, 1001 + req_len, ACK, RESP),
    ];
    let mut out = Vec::new();
    for (i, &(at, c2s, seq, ack, fl, p)) in sends.iter().enumerate() {
        let (a, b) = if c2s { (c, s) } else { (s, c) };
        let (t0, t1) = if c2s {
            (at, at + d_c2s + off)
        } else {
            (at + d_s2c, at + off)
        };
        out.push((t0, src(0), a, b, seq, ack, fl, p));
        if i >= from {
            out.push((t1, src(1), a, b, seq, ack, fl, p));
        }
    }
    out
}

/// Feeds the packets in timestamp order (as the capture merge does) and finishes.
fn run(pkts: Vec<Pkt>) -> Coverage {
    run_with(pkts, &mut |_| Interest::Keep)
}

fn run_with(
    mut pkts: Vec<Pkt>,
    out: &mut impl FnMut(crate::ingest::flow::StreamEvent<'_>) -> Interest,
) -> Coverage {
    pkts.sort_by_key(|p| (p.0, p.1.input));
    let mut t = FlowTable::new(FlowConfig::default(), probe);
    let mut cov = Coverage::default();
    for (ts, source, a, b, seq, ack, fl, p) in pkts {
        let seg = Segment {
            ts: Timestamp(ts),
            source,
            src: a,
            dst: b,
            seq,
            ack,
            flags: TcpFlags(fl),
            window: 65535,
            mss: None,
            payload: p,
            wire_len: p.len() as u32,
        };
        t.push(&seg, &mut cov, out);
    }
    t.finish(&mut cov, out);
    cov
}

#[test]
fn offset_and_delay_from_both_directions() {
    let off = 37 * MS;
    let c2s = [100, 200, 300, 400, 500];
    let s2c = [50, 60, 70, 80, 90];
    let mut pkts = Vec::new();
    for i in 0..5 {
        let t = 1_000_000 * MS + i as i64 * 10 * MS;
        pkts.extend(exchange(
            40000 + i as u16,
            t,
            off,
            c2s[i] * US,
            s2c[i] * US,
            0,
        ));
    }
    let cov = run(pkts);
    // medians: c2s off + 300 us, s2c off - 70 us
    let o = cov.clock_offsets.first().expect("one estimate");
    assert_eq!(cov.clock_offsets.len(), 1);
    assert_eq!((o.input, o.reference_input), (1, 0));
    assert_eq!(o.offset_ns, off + 115 * US);
    assert_eq!(o.delay_ns, Some(185 * US));
    // IQRs (nearest rank, n = 5: 2nd and 4th): c2s 400 - 200, s2c 80 - 60
    assert_eq!(o.spread_ns, 200 * US);
    assert_eq!((o.pairs, o.c2s_pairs, o.s2c_pairs), (10, 5, 5));
    assert_eq!((o.dropped, o.unmatched), (0, 0));
    // source 1's copies add nothing but duplicates: every one of its 20 packets
    assert_eq!(cov.capture_duplicates, 20);
    assert_eq!(cov.connections, 5);
}

#[test]
fn a_clock_behind_owns_the_directions_and_gives_a_negative_offset() {
    // Source 1 stamps 5 ms early, so its copies come first in the merge and own both
    // directions; the deltas are still t(source 1) - t(source 0).
    let off = -5 * MS;
    let mut pkts = Vec::new();
    for i in 0..3 {
        pkts.extend(exchange(
            41000 + i,
            2_000 * MS + i64::from(i) * 20 * MS,
            off,
            100 * US,
            100 * US,
            0,
        ));
    }
    let cov = run(pkts);
    let o = cov.clock_offsets.first().expect("one estimate");
    assert_eq!(o.offset_ns, off);
    assert_eq!(o.delay_ns, Some(100 * US));
    assert_eq!(o.spread_ns, 0);
    assert_eq!(
        cov.capture_duplicates, 12,
        "source 0's 12 packets are the copies now"
    );
    assert_eq!(cov.connections, 3);
}

#[test]
fn a_capture_that_began_after_the_handshake_gives_no_estimate() {
    let cov = run(exchange(42000, 3_000 * MS, 37 * MS, 100 * US, 100 * US, 2));
    assert!(cov.clock_offsets.is_empty());
    assert_eq!(cov.capture_duplicates, 2);
}

#[test]
fn one_source_gives_no_estimate() {
    let pkts = exchange(43000, 4_000 * MS, 37 * MS, 100 * US, 100 * US, 9);
    let cov = run(pkts);
    assert!(cov.clock_offsets.is_empty());
    assert_eq!(cov.capture_duplicates, 0);
}

#[test]
fn unmatched_first_copies_are_counted() {
    // Direction c2s: source 1's first copy is the request, not the SYN.
    let mut d = DirSkew::default();
    let seg = |ts, source, seq, fl: u8, p: &'static [u8]| Segment {
        ts: Timestamp(ts),
        source,
        src: ep(1, 1),
        dst: ep(2, 2),
        seq,
        ack: 0,
        flags: TcpFlags(fl),
        window: 0,
        mss: None,
        payload: p,
        wire_len: p.len() as u32,
    };
    d.on_owner(&seg(10, src(0), 1000, SYN, b""));
    d.on_owner(&seg(20, src(0), 1001, ACK, REQ));
    d.on_copy(src(0), &seg(25, src(1), 1001, ACK, REQ));
    // a later copy of the SYN (a retransmission, say) is not compared any more
    d.on_copy(src(0), &seg(30, src(1), 1000, SYN, b""));
    let mut e = SkewEstimator::default();
    e.record(&[d, DirSkew::default()], 0);
    assert!(e.estimates().is_empty());
    assert_eq!(e.pairs.get(&(src(0), src(1))).map(|p| p.unmatched), Some(1));
}

#[test]
fn deltas_beyond_the_bound_are_counted_as_dropped() {
    let mut d = DirSkew::default();
    let seg = |ts, source| Segment {
        ts: Timestamp(ts),
        source,
        src: ep(1, 1),
        dst: ep(2, 2),
        seq: 7,
        ack: 0,
        flags: TcpFlags(SYN),
        window: 0,
        mss: None,
        payload: b"",
        wire_len: 0,
    };
    d.on_owner(&seg(100, src(0)));
    d.on_copy(src(0), &seg(150, src(1)));
    let mut e = SkewEstimator::default();
    for _ in 0..MAX_DELTAS + 3 {
        e.record(&[d, DirSkew::default()], 0);
    }
    let o = e.estimates().pop().expect("an estimate");
    assert_eq!(
        (o.c2s_pairs, o.s2c_pairs, o.dropped),
        (MAX_DELTAS as u64, 0, 3)
    );
    // one way only: the offset is that median, delay unknown
    assert_eq!((o.offset_ns, o.delay_ns), (50, None));
}

#[test]
fn median_iqr_and_mid_by_hand() {
    assert_eq!(median(&[]), None);
    assert_eq!(median(&[5]), Some(5));
    assert_eq!(median(&[1, 2, 3, 10]), Some(2)); // (2 + 3) / 2, toward zero
    assert_eq!(median(&[-4, -2]), Some(-3));
    assert_eq!(iqr(&[]), 0);
    assert_eq!(iqr(&[1, 2, 3, 4, 5, 6, 7, 8]), 7 - 3); // ranks 2 and 6 (0-based)
    assert_eq!(mid(i64::MAX, i64::MAX), i64::MAX);
    assert_eq!(mid(i64::MIN, i64::MIN), i64::MIN);
}

/// When the offset is smaller than the delay between the points, each direction keeps the
/// copy that came first: here the request from source 0 and the response from source 1,
/// so the response's bytes carry source 1's clock and the exchange's latency as seen
/// from the stream times is off by the offset (`off`), while the estimate still holds.
#[test]
fn an_offset_below_the_delay_splits_the_directions_between_sources() {
    let (off, d) = (50 * US, 100 * US);
    let t = 5_000 * MS;
    let mut data = Vec::new();
    let cov = run_with(exchange(44000, t, off, d, d, 0), &mut |e| {
        if let crate::ingest::flow::EventKind::Data { dir, .. } = e.kind {
            data.push((dir, e.ts.0));
        }
        Interest::Keep
    });
    use crate::model::Direction::{ClientToServer as C2S, ServerToClient as S2C};
    // request sent at t + 3 ms: source 0 stamps it then; response sent at t + 4 ms + d:
    // source 1 stamps it + off (source 0 would have said + d)
    assert_eq!(data, vec![(C2S, t + 3 * MS), (S2C, t + 4 * MS + d + off)]);
    let o = cov.clock_offsets.first().expect("an estimate");
    assert_eq!((o.offset_ns, o.delay_ns), (off, Some(d)));
}

fn est(input: u16, reference: u16, offset_ns: i64, pairs: u64) -> ClockOffset {
    ClockOffset {
        input,
        reference_input: reference,
        offset_ns,
        pairs,
        ..ClockOffset::default()
    }
}

/// Three nodes linked by two estimates: 1 reads 37 ms ahead of 0, 2 reads 5 ms behind 1;
/// so 2 is 32 ms ahead of 0 (the shifts add along the links; the weaker link's pairs).
#[test]
fn corrections_add_up_along_the_links_to_the_reference() {
    let c = corrections(&[est(1, 0, 37 * MS, 20), est(2, 1, -5 * MS, 6)]);
    let got: Vec<(u16, i64, u64)> = c.iter().map(|k| (k.input, k.shift_ns, k.pairs)).collect();
    assert_eq!(got, vec![(1, 37 * MS, 20), (2, 32 * MS, 6)]);
    // the same link given the other way round
    let c = corrections(&[est(1, 0, 37 * MS, 20), est(1, 2, 5 * MS, 6)]);
    let got: Vec<(u16, i64)> = c.iter().map(|k| (k.input, k.shift_ns)).collect();
    assert_eq!(got, vec![(1, 37 * MS), (2, 32 * MS)]);
}

/// Below 0.1 ms nothing moves, and an estimate of fewer than 4 pairs is not followed.
#[test]
fn small_offsets_and_thin_estimates_correct_nothing() {
    assert!(corrections(&[est(1, 0, 99 * US, 50)]).is_empty());
    assert!(corrections(&[est(1, 0, 37 * MS, MIN_CORRECTION_PAIRS - 1)]).is_empty());
    assert_eq!(corrections(&[est(1, 0, -100 * US, 4)]).len(), 1);
    assert!(corrections(&[]).is_empty());
}
