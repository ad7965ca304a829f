//! Flow-table tests with hand-built segments. Expected values come from the TCP sequence
//! arithmetic of each scenario (RFC 793: SYN and FIN take one sequence number each).

use std::net::{IpAddr, Ipv4Addr};

use super::{EventKind, FlowConfig, FlowTable, Interest, RoleHint, StreamEvent};
use crate::ingest::decode::{Segment, TcpFlags};
use crate::model::{
    CloseReason, ConnId, Coverage, Direction, Endpoint, SourceId, TcpSummary, Timestamp,
};

const C2S: Direction = Direction::ClientToServer;
const S2C: Direction = Direction::ServerToClient;
const SYN: u8 = TcpFlags::SYN;
const ACK: u8 = TcpFlags::ACK;
const FIN: u8 = TcpFlags::FIN;
const RST: u8 = TcpFlags::RST;
const SEC: i64 = 1_000_000_000;

fn ep(host: u8, port: u16) -> Endpoint {
    Endpoint::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, host)), port)
}

fn probe(b: &[u8]) -> RoleHint {
    if b.starts_with(b"GET ") || b.starts_with(b"POST ") {
        RoleHint::Client
    } else if b.starts_with(b"HTTP/") {
        RoleHint::Server
    } else {
        RoleHint::Unknown
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Ev {
    Opened(u64, Endpoint, Endpoint),
    Data(u64, Direction, i64, Vec<u8>),
    Gap(u64, Direction, u64),
    End(u64, Direction),
    Closed(u64, Box<TcpSummary>),
}

struct Rig {
    t: FlowTable,
    cov: Coverage,
    evs: Vec<Ev>,
    ignore: bool,
    source: SourceId,
    /// Receive window the next segments advertise.
    window: u16,
    /// Sender stalls the Data events reported: (direction, capture time, stall).
    stalls: Vec<(Direction, i64, i64)>,
}

impl Rig {
    fn new() -> Self {
        Self::with(FlowConfig::default())
    }
    fn with(cfg: FlowConfig) -> Self {
        Rig {
            t: FlowTable::new(cfg, probe),
            cov: Coverage::default(),
            evs: Vec::new(),
            ignore: false,
            source: SourceId::default(),
            window: 65535,
            stalls: Vec::new(),
        }
    }
    /// Feeds a segment of `wire` bytes of which `payload` was captured.
    #[allow(clippy::too_many_arguments)]
    fn seg_w(
        &mut self,
        ts: i64,
        src: Endpoint,
        dst: Endpoint,
        seq: u32,
        ack: u32,
        flags: u8,
        payload: &[u8],
        wire: u32,
    ) {
        let s = Segment {
            ts: Timestamp(ts),
            source: self.source,
            src,
            dst,
            seq,
            ack,
            flags: TcpFlags(flags),
            window: self.window,
            mss: None,
            payload,
            wire_len: wire,
        };
        let (evs, stalls, ignore) = (&mut self.evs, &mut self.stalls, self.ignore);
        self.t.push(&s, &mut self.cov, &mut |e: StreamEvent<'_>| {
            if let EventKind::Data {
                dir,
                stall_ns: Some(ns),
                ..
            } = e.kind
            {
                stalls.push((dir, e.ts.0, ns));
            }
            evs.push(own(&e));
            if ignore {
                Interest::Ignore
            } else {
                Interest::Keep
            }
        });
    }
    #[allow(clippy::too_many_arguments)]
    fn seg(
        &mut self,
        ts: i64,
        src: Endpoint,
        dst: Endpoint,
        seq: u32,
        ack: u32,
        flags: u8,
        payload: &[u8],
    ) {
        self.seg_w(ts, src, dst, seq, ack, flags, payload, payload.len() as u32);
    }
    fn finish(&mut self) {
        let evs = &mut self.evs;
        self.t.finish(&mut self.cov, &mut |e: StreamEvent<'_>| {
            evs.push(own(&e));
            Interest::Keep
        });
    }
    fn data(&self, dir: Direction) -> Vec<u8> {
        let mut v = Vec::new();
        for e in &self.evs {
            if let Ev::Data(_, d, _, b) = e {
                if *d == dir {
                    v.extend_from_slice(b);
                }
            }
        }
        v
    }
    fn gaps(&self) -> Vec<(Direction, u64)> {
        self.evs
            .iter()
            .filter_map(|e| {
                if let Ev::Gap(_, d, l) = e {
                    Some((*d, *l))
                } else {
                    None
                }
            })
            .collect()
    }
    fn closed(&self) -> Vec<TcpSummary> {
        self.evs
            .iter()
            .filter_map(|e| {
                if let Ev::Closed(_, s) = e {
                    Some((**s).clone())
                } else {
                    None
                }
            })
            .collect()
    }
}

fn own(e: &StreamEvent<'_>) -> Ev {
    let c = e.conn.0;
    match e.kind {
        EventKind::Opened { client, server } => Ev::Opened(c, client, server),
        EventKind::Data { dir, bytes, .. } => Ev::Data(c, dir, e.ts.0, bytes.to_vec()),
        EventKind::Gap { dir, len } => Ev::Gap(c, dir, len),
        EventKind::End { dir } => Ev::End(c, dir),
        EventKind::Closed(s) => Ev::Closed(c, Box::new(s.clone())),
    }
}

const REQ: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"; // 27 bytes
const RESP: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"; // 38 bytes

/// SYN (client ISN `ci`), SYN-ACK (server ISN `si`), ACK at t = 1, 2, 3 s.
fn handshake(r: &mut Rig, c: Endpoint, s: Endpoint, ci: u32, si: u32) {
    r.seg(SEC, c, s, ci, 0, SYN, b"");
    r.seg(2 * SEC, s, c, si, ci.wrapping_add(1), SYN | ACK, b"");
    r.seg(
        3 * SEC,
        c,
        s,
        ci.wrapping_add(1),
        si.wrapping_add(1),
        ACK,
        b"",
    );
}

#[test]
fn handshake_and_data_both_ways() {
    let (c, s) = (ep(1, 40000), ep(2, 80));
    let mut r = Rig::new();
    handshake(&mut r, c, s, 1000, 5000);
    r.seg(4 * SEC, c, s, 1001, 5001, ACK, REQ);
    r.seg(5 * SEC, s, c, 5001, 1028, ACK, RESP);
    r.seg(6 * SEC, c, s, 1028, 5039, FIN | ACK, b"");
    r.seg(7 * SEC, s, c, 5039, 1029, FIN | ACK, b"");
    assert!(r.closed().is_empty(), "final ACK not yet seen");
    r.seg(8 * SEC, c, s, 1029, 5040, ACK, b"");
    assert_eq!(
        r.evs[..5],
        [
            Ev::Opened(0, c, s),
            Ev::Data(0, C2S, 4 * SEC, REQ.to_vec()),
            Ev::Data(0, S2C, 5 * SEC, RESP.to_vec()),
            Ev::End(0, C2S),
            Ev::End(0, S2C),
        ]
    );
    let sum = r.closed();
    assert_eq!(sum.len(), 1, "closed on the final ACK, before finish()");
    let t = &sum[0];
    assert_eq!((t.client, t.server, t.close), (c, s, CloseReason::Fin));
    assert_eq!(
        (t.syn, t.syn_ack, t.handshake_ack),
        (
            Some(Timestamp(SEC)),
            Some(Timestamp(2 * SEC)),
            Some(Timestamp(3 * SEC))
        )
    );
    assert!(t.handshake_seen && !t.roles_inferred);
    assert_eq!(t.server_rtt_ns(), Some(SEC));
    assert_eq!(
        (t.client_to_server.packets, t.client_to_server.bytes),
        (5, 27)
    );
    assert_eq!(
        (t.server_to_client.packets, t.server_to_client.bytes),
        (3, 38)
    );
    assert!(t.client_to_server.fin && t.server_to_client.fin);
    assert_eq!(
        (t.first_packet, t.last_packet),
        (Timestamp(SEC), Timestamp(8 * SEC))
    );
    r.finish();
    assert_eq!(r.closed().len(), 1);
    assert_eq!(
        (
            r.cov.connections,
            r.cov.connections_without_handshake,
            r.cov.flushed_at_end
        ),
        (1, 0, 0)
    );
}

#[test]
fn syn_ack_seen_first_makes_its_receiver_the_client() {
    let (c, s) = (ep(1, 80), ep(2, 40000)); // ports alone would say the opposite
    let mut r = Rig::new();
    r.seg(SEC, s, c, 7000, 101, SYN | ACK, b"");
    r.seg(SEC + 1, c, s, 100, 0, SYN, b"");
    r.finish();
    assert_eq!(r.evs[0], Ev::Opened(0, c, s));
    assert_eq!(r.closed().len(), 1, "the late SYN is the same handshake");
}

#[test]
fn mid_connection_role_from_probe() {
    // The response is seen first; ports (443 vs 50000) would pick the wrong server.
    let (c, s) = (ep(1, 443), ep(2, 50000));
    let mut r = Rig::new();
    r.seg(SEC, s, c, 9000, 3000, ACK, RESP);
    r.seg(2 * SEC, c, s, 3000, 9038, ACK, REQ);
    r.finish();
    assert_eq!(r.evs[0], Ev::Opened(0, c, s));
    assert_eq!(r.data(S2C), RESP);
    assert_eq!(r.data(C2S), REQ);
    let t = &r.closed()[0];
    assert!(t.roles_inferred && !t.handshake_seen);
    assert_eq!(t.close, CloseReason::EndOfCapture);
    assert_eq!(
        (r.cov.connections_without_handshake, r.cov.flushed_at_end),
        (1, 1)
    );
}

#[test]
fn mid_connection_role_from_ports() {
    let mut r = Rig::new();
    // Unknown bytes from the well-known port: it is the server.
    r.seg(SEC, ep(2, 80), ep(1, 51000), 1, 1, ACK, b"\x00\x01");
    // Both ephemeral: the lower port is the server.
    r.seg(SEC, ep(3, 9000), ep(4, 30000), 1, 1, ACK, b"\x00\x01");
    assert_eq!(r.evs[0], Ev::Opened(0, ep(1, 51000), ep(2, 80)));
    assert_eq!(r.evs[1], Ev::Data(0, S2C, SEC, vec![0, 1]));
    assert_eq!(r.evs[2], Ev::Opened(1, ep(4, 30000), ep(3, 9000)));
    assert_eq!(r.evs[3], Ev::Data(1, S2C, SEC, vec![0, 1]));
}

#[test]
fn out_of_order_delivered_in_order_with_own_times() {
    let (c, s) = (ep(1, 40000), ep(2, 80));
    let mut r = Rig::new();
    handshake(&mut r, c, s, 1000, 5000);
    r.seg(6, c, s, 1011, 5001, ACK, b"cccc");
    r.seg(5, c, s, 1006, 5001, ACK, b"bbbbb");
    assert_eq!(r.data(C2S), b"");
    r.seg(4, c, s, 1001, 5001, ACK, b"GET /");
    let d: Vec<_> = r
        .evs
        .iter()
        .filter(|e| matches!(e, Ev::Data(..)))
        .cloned()
        .collect();
    assert_eq!(
        d,
        [
            Ev::Data(0, C2S, 4, b"GET /".to_vec()),
            Ev::Data(0, C2S, 5, b"bbbbb".to_vec()),
            Ev::Data(0, C2S, 6, b"cccc".to_vec())
        ]
    );
    r.finish();
    assert_eq!(r.closed()[0].client_to_server.out_of_order_segments, 2);
    assert!(r.gaps().is_empty());
}

#[test]
fn retransmission_delivered_once() {
    let (c, s) = (ep(1, 40000), ep(2, 80));
    let mut r = Rig::new();
    handshake(&mut r, c, s, 1000, 5000);
    r.seg(4 * SEC, c, s, 1001, 5001, ACK, REQ);
    r.seg(5 * SEC, c, s, 1001, 5001, ACK, REQ);
    r.finish();
    assert_eq!(r.data(C2S), REQ);
    let t = &r.closed()[0];
    assert_eq!(
        (
            t.client_to_server.retransmitted_segments,
            t.client_to_server.retransmitted_bytes
        ),
        (1, 27)
    );
    assert_eq!(t.client_to_server.bytes, 27);
    assert_eq!(r.cov.retransmitted_bytes, 27);
}

#[test]
fn overlap_delivers_only_the_new_tail() {
    let (c, s) = (ep(1, 40000), ep(2, 80));
    let mut r = Rig::new();
    handshake(&mut r, c, s, 1000, 5000);
    r.seg(4, c, s, 1001, 5001, ACK, b"GET /abcd");
    r.seg(5, c, s, 1006, 5001, ACK, b"abcdefgh"); // 4 old bytes, 4 new
    r.finish();
    assert_eq!(r.data(C2S), b"GET /abcdefgh");
    assert_eq!(r.evs[2], Ev::Data(0, C2S, 5, b"efgh".to_vec()));
    assert_eq!(r.closed()[0].client_to_server.retransmitted_bytes, 4);
}

#[test]
fn sequence_wrap_around() {
    let (c, s) = (ep(1, 40000), ep(2, 80));
    let mut r = Rig::new();
    let ci = u32::MAX - 5; // data starts at MAX-4: 5 bytes before the wrap
    handshake(&mut r, c, s, ci, u32::MAX);
    r.seg(5, c, s, 3, 0, ACK, b"world!"); // after the wrap, out of order
    r.seg(4, c, s, u32::MAX - 4, 0, ACK, b"GET /hello"); // covers MAX-4 ..= 4: overlaps "wo"
    r.seg(6, s, c, 0, 9, ACK, RESP); // server ISN MAX: its data starts at 0
    r.finish();
    assert_eq!(r.data(C2S), b"GET /hellorld!");
    assert_eq!(r.data(S2C), RESP);
    assert!(r.gaps().is_empty());
    assert!(r.closed()[0].handshake_seen);
}

#[test]
fn lost_segment_detected_by_ack_then_resumes() {
    let (c, s) = (ep(1, 40000), ep(2, 80));
    let mut r = Rig::new();
    handshake(&mut r, c, s, 1000, 5000);
    r.seg(4 * SEC, c, s, 1001, 5001, ACK, &[b'a'; 100]);
    // [1101, 1201) never captured.
    r.seg(5 * SEC, c, s, 1201, 5001, ACK, &[b'c'; 100]);
    assert!(r.gaps().is_empty(), "a hole alone may still be reordering");
    r.seg(6 * SEC, s, c, 5001, 1301, ACK, b""); // server got everything
    assert_eq!(r.gaps(), [(C2S, 100)]);
    r.seg(7 * SEC, c, s, 1301, 5001, ACK, &[b'd'; 10]);
    let mut want = vec![b'a'; 100];
    want.extend([b'c'; 100]);
    want.extend([b'd'; 10]);
    assert_eq!(r.data(C2S), want);
    // The gap sits between 'a' and 'c': nothing stitched across it.
    let pos = r.evs.iter().position(|e| matches!(e, Ev::Gap(..))).unwrap();
    assert_eq!(r.evs[pos - 1], Ev::Data(0, C2S, 4 * SEC, vec![b'a'; 100]));
    assert_eq!(r.evs[pos + 1], Ev::Data(0, C2S, 5 * SEC, vec![b'c'; 100]));
    r.finish();
    let t = &r.closed()[0];
    assert_eq!(
        (
            t.client_to_server.gaps,
            t.client_to_server.gap_bytes,
            t.client_to_server.bytes
        ),
        (1, 100, 210)
    );
    assert_eq!((r.cov.gaps, r.cov.gap_bytes), (1, 100));
}

#[test]
fn lost_last_segment_before_fin_acked_by_peer() {
    let (c, s) = (ep(1, 40000), ep(2, 80));
    let mut r = Rig::new();
    handshake(&mut r, c, s, 1000, 5000);
    r.seg(4, c, s, 1001, 5001, ACK, &[b'a'; 50]);
    // [1051, 1081) missed; FIN at 1081.
    r.seg(5, c, s, 1081, 5001, FIN | ACK, b"");
    assert!(!r.evs.iter().any(|e| matches!(e, Ev::End(..))));
    r.seg(6, s, c, 5001, 1082, ACK, b"");
    assert_eq!(r.gaps(), [(C2S, 30)]);
    assert_eq!(*r.evs.last().unwrap(), Ev::End(0, C2S));
}

#[test]
fn lost_segment_then_fin_one_sided_flushed_at_end() {
    let (c, s) = (ep(1, 40000), ep(2, 80));
    let mut r = Rig::new();
    r.seg(1, c, s, 1000, 0, SYN, b"");
    r.seg(2, c, s, 1001, 1, ACK, b"GET /a");
    r.seg(3, c, s, 1017, 1, ACK, b"tail"); // [1007, 1017) missed
    r.seg(4, c, s, 1021, 1, FIN | ACK, b"");
    r.finish();
    assert_eq!(r.gaps(), [(C2S, 10)]);
    assert_eq!(r.data(C2S), b"GET /atail");
    let n = r.evs.len();
    assert_eq!(r.evs[n - 2], Ev::End(0, C2S));
    let t = &r.closed()[0];
    assert!(t.one_sided());
    assert_eq!(r.cov.one_sided_connections, 1);
}

#[test]
fn snaplen_truncation_is_a_gap() {
    let (c, s) = (ep(1, 40000), ep(2, 80));
    let mut r = Rig::new();
    handshake(&mut r, c, s, 1000, 5000);
    r.seg_w(4, c, s, 1001, 5001, ACK, b"GET /xxxx", 1000);
    r.seg(5, c, s, 2001, 5001, ACK, b"next");
    assert_eq!(r.data(C2S), b"GET /xxxxnext");
    assert_eq!(r.gaps(), [(C2S, 991)]);
    assert_eq!(r.evs[1], Ev::Data(0, C2S, 4, b"GET /xxxx".to_vec()));
    assert_eq!(r.evs[2], Ev::Gap(0, C2S, 991));
}

#[test]
fn rst_ends_both_and_later_packets_are_stray() {
    let (c, s) = (ep(1, 40000), ep(2, 80));
    let mut r = Rig::new();
    handshake(&mut r, c, s, 1000, 5000);
    r.seg(4, c, s, 1001, 5001, ACK, REQ);
    r.seg(5, s, c, 5001, 1028, RST | ACK, b"");
    let n = r.evs.len();
    assert_eq!(r.evs[n - 3..n - 1], [Ev::End(0, C2S), Ev::End(0, S2C)]);
    let t = &r.closed()[0];
    assert_eq!(t.close, CloseReason::Rst);
    assert!(t.server_to_client.rst && !t.client_to_server.rst);
    r.seg(6, c, s, 1028, 5001, ACK, b""); // late ACK
    assert_eq!(r.cov.stray_segments, 1);
    r.finish();
    assert_eq!(r.closed().len(), 1);
    assert_eq!(r.cov.connections, 1);
}

#[test]
fn idle_connection_evicted() {
    let cfg = FlowConfig {
        idle_timeout_ns: 10 * SEC,
        ..FlowConfig::default()
    };
    let mut r = Rig::with(cfg);
    r.seg(
        SEC,
        ep(1, 40000),
        ep(2, 80),
        1,
        1,
        ACK,
        b"GET / HTTP/1.1\r\n",
    );
    r.seg(
        5 * SEC,
        ep(3, 40000),
        ep(2, 80),
        1,
        1,
        ACK,
        b"GET / HTTP/1.1\r\n",
    );
    r.seg(10 * SEC, ep(3, 40000), ep(2, 80), 17, 1, ACK, b"x");
    assert!(r.closed().is_empty(), "conn 0 idle 9 s at t=10: kept");
    r.seg(12 * SEC, ep(3, 40000), ep(2, 80), 18, 1, ACK, b"y");
    // t=12: conn 0 idle 11 s > 10 s, conn 1 active 2 s ago.
    let c = r.closed();
    assert_eq!(c.len(), 1);
    assert_eq!(
        (c[0].conn, c[0].close),
        (ConnId(0), CloseReason::IdleEvicted)
    );
    assert_eq!(r.cov.evicted_idle, 1);
}

#[test]
fn capacity_evicts_least_recently_active() {
    let cfg = FlowConfig {
        max_connections: 2,
        ..FlowConfig::default()
    };
    let mut r = Rig::with(cfg);
    r.seg(1, ep(1, 40000), ep(9, 80), 1, 1, ACK, b"GET ");
    r.seg(2, ep(2, 40000), ep(9, 80), 1, 1, ACK, b"GET ");
    r.seg(3, ep(1, 40000), ep(9, 80), 5, 1, ACK, b"/"); // conn 0 active again
    r.seg(4, ep(3, 40000), ep(9, 80), 1, 1, ACK, b"GET ");
    let c = r.closed();
    assert_eq!(c.len(), 1);
    assert_eq!(
        (c[0].conn, c[0].close),
        (ConnId(1), CloseReason::CapacityEvicted)
    );
    assert_eq!(r.cov.evicted_capacity, 1);
    assert_eq!(r.t.len(), 2);
}

#[test]
fn duplicate_from_another_source_ignored() {
    let (c, s) = (ep(1, 40000), ep(2, 80));
    let mut r = Rig::new();
    let other = SourceId {
        input: 1,
        interface: 0,
    };
    type P<'a> = (Endpoint, Endpoint, u32, u32, u8, &'a [u8]);
    let pkts: [P<'_>; 4] = [
        (c, s, 1000, 0, SYN, b""),
        (s, c, 5000, 1001, SYN | ACK, b""),
        (c, s, 1001, 5001, ACK, REQ),
        (s, c, 5001, 1028, ACK, RESP),
    ];
    for (i, (a, b, seq, ack, f, p)) in pkts.iter().enumerate() {
        r.source = SourceId::default();
        r.seg(i as i64 * 10, *a, *b, *seq, *ack, *f, p);
        r.source = other;
        r.seg(i as i64 * 10 + 1, *a, *b, *seq, *ack, *f, p);
    }
    r.finish();
    assert_eq!(r.data(C2S), REQ);
    assert_eq!(r.data(S2C), RESP);
    let t = &r.closed()[0];
    assert_eq!(
        (
            t.client_to_server.capture_duplicates,
            t.server_to_client.capture_duplicates
        ),
        (2, 2)
    );
    assert_eq!(
        (
            t.client_to_server.retransmitted_segments,
            t.client_to_server.packets
        ),
        (0, 2)
    );
    assert_eq!(r.cov.capture_duplicates, 4);
}

#[test]
fn port_reuse_after_close_opens_new_connection() {
    let (c, s) = (ep(1, 40000), ep(2, 80));
    let mut r = Rig::new();
    handshake(&mut r, c, s, 1000, 5000);
    r.seg(4 * SEC, c, s, 1001, 5001, FIN | ACK, b"");
    r.seg(5 * SEC, s, c, 5001, 1002, FIN | ACK, b"");
    r.seg(6 * SEC, c, s, 1002, 5002, ACK, b"");
    assert_eq!(r.closed().len(), 1);
    r.seg(6 * SEC + 1, s, c, 5001, 1002, FIN | ACK, b""); // retransmitted FIN
    assert_eq!(r.cov.stray_segments, 1);
    r.seg(7 * SEC, c, s, 77, 0, SYN, b"");
    r.finish();
    let cl = r.closed();
    assert_eq!(cl.len(), 2);
    assert_eq!(
        (cl[1].conn, cl[1].syn),
        (ConnId(1), Some(Timestamp(7 * SEC)))
    );
    assert!(r.evs.contains(&Ev::Opened(1, c, s)));
    assert_eq!(r.cov.connections, 2);
}

#[test]
fn new_syn_on_live_tuple_starts_new_connection() {
    let (c, s) = (ep(1, 40000), ep(2, 80));
    let mut r = Rig::new();
    handshake(&mut r, c, s, 1000, 5000);
    r.seg(4 * SEC, c, s, 1000, 0, SYN, b""); // retransmitted SYN: same connection
    assert!(r.closed().is_empty());
    r.seg(5 * SEC, c, s, 90000, 0, SYN, b""); // new ISN: the tuple was reused
    assert_eq!(r.closed().len(), 1);
    r.finish();
    assert_eq!(r.cov.connections, 2);
}

#[test]
fn ooo_cap_overflow_declares_gap() {
    let cfg = FlowConfig {
        max_ooo_bytes_per_direction: 100,
        ..FlowConfig::default()
    };
    let mut r = Rig::with(cfg);
    let (c, s) = (ep(1, 40000), ep(2, 80));
    handshake(&mut r, c, s, 1000, 5000);
    r.seg(4, c, s, 1001, 5001, ACK, b"GET ");
    // [1005, 1010) missing; then 60 + 60 bytes ahead of it: the second overflows 100.
    r.seg(5, c, s, 1010, 5001, ACK, &[b'x'; 60]);
    assert_eq!(r.t.buffered_bytes(), 60);
    r.seg(6, c, s, 1070, 5001, ACK, &[b'y'; 60]);
    assert_eq!(r.cov.out_of_order_overflows, 1);
    assert_eq!(r.gaps(), [(C2S, 5)]);
    let mut want = b"GET ".to_vec();
    want.extend([b'x'; 60]);
    want.extend([b'y'; 60]);
    assert_eq!(r.data(C2S), want);
    assert_eq!(r.t.buffered_bytes(), 0);
}

#[test]
fn ignored_connection_gets_no_data_and_buffers_nothing() {
    let (c, s) = (ep(1, 40000), ep(2, 80));
    let mut r = Rig::new();
    r.ignore = true;
    handshake(&mut r, c, s, 1000, 5000);
    r.seg(4, c, s, 1010, 5001, ACK, &[b'z'; 40]); // ahead of a hole
    assert_eq!(r.t.buffered_bytes(), 0);
    r.seg(5, c, s, 1001, 5001, ACK, b"GET /abc");
    r.seg(6, c, s, 1050, 5001, FIN | ACK, b"");
    r.seg(7, s, c, 5001, 1051, FIN | ACK, b"");
    r.seg(8, c, s, 1051, 5002, ACK, b"");
    assert!(!r
        .evs
        .iter()
        .any(|e| matches!(e, Ev::Data(..) | Ev::Gap(..))));
    assert!(r.evs.contains(&Ev::End(0, C2S)) && r.evs.contains(&Ev::End(0, S2C)));
    let t = &r.closed()[0];
    assert_eq!(t.close, CloseReason::Fin);
    // "GET /abc" is [1001, 1009), the 40 bytes [1010, 1050): [1009, 1010) was never seen
    // and the peer's ACK of the FIN (1051) declares it.
    assert_eq!(
        (t.client_to_server.bytes, t.client_to_server.gap_bytes),
        (48, 1)
    );
}

// ---- transport pathologies ----------------------------------------------------------------

const MS: i64 = 1_000_000;
const US: i64 = 1_000;
const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"; // 38 bytes

/// Handshake, a request at `T0` (client 1001..1028) that the server ACKs at once, and the
/// response head (server 5001..5039) at `T0 + 1 ms`: the server now has 38 bytes in flight.
const T0: i64 = 4 * SEC;
fn head_in_flight(r: &mut Rig, c: Endpoint, s: Endpoint) {
    handshake(r, c, s, 1000, 5000);
    r.seg(T0, c, s, 1001, 5001, ACK, REQ);
    r.seg(T0 + 100 * US, s, c, 5001, 1028, ACK, b"");
    r.seg(T0 + MS, s, c, 5001, 1028, ACK, HEAD);
}

/// The demo's users service: the body waits for the client's delayed ACK of the head and
/// follows it at once. The stall (head to body) goes with the body's bytes.
#[test]
fn body_held_until_a_delayed_ack_is_a_stall() {
    let (c, s) = (ep(1, 40000), ep(2, 80));
    let mut r = Rig::new();
    head_in_flight(&mut r, c, s);
    r.seg(T0 + 41 * MS, c, s, 1028, 5039, ACK, b"");
    r.seg(T0 + 41 * MS + 50 * US, s, c, 5039, 1028, ACK, b"hello");
    assert_eq!(
        r.stalls,
        vec![(S2C, T0 + 41 * MS + 50 * US, 40 * MS + 50 * US)]
    );
    assert_eq!(r.data(S2C), [HEAD, b"hello"].concat());
}

/// An application slow to write the rest: the client ACKed the head at once, the body
/// comes 20 ms later on its own schedule. Not a stall.
#[test]
fn slow_writer_after_a_prompt_ack_is_not_a_stall() {
    let (c, s) = (ep(1, 40000), ep(2, 80));
    let mut r = Rig::new();
    head_in_flight(&mut r, c, s);
    r.seg(T0 + MS + 40 * US, c, s, 1028, 5039, ACK, b"");
    r.seg(T0 + 21 * MS, s, c, 5039, 1028, ACK, b"hello");
    assert_eq!(r.stalls, vec![]);
}

/// The body comes 3 ms after the ACK: later than a released sender would send it.
#[test]
fn resuming_long_after_the_ack_is_not_a_stall() {
    let (c, s) = (ep(1, 40000), ep(2, 80));
    let mut r = Rig::new();
    head_in_flight(&mut r, c, s);
    r.seg(T0 + 41 * MS, c, s, 1028, 5039, ACK, b"");
    r.seg(T0 + 44 * MS, s, c, 5039, 1028, ACK, b"hello");
    assert_eq!(r.stalls, vec![]);
}

/// An ACK riding on the peer's data may be the answer the sender waited for (a
/// `100 Continue`, the next request): it releases no stall.
#[test]
fn ack_carried_by_data_releases_no_stall() {
    let (c, s) = (ep(1, 40000), ep(2, 80));
    let mut r = Rig::new();
    head_in_flight(&mut r, c, s);
    r.seg(T0 + 41 * MS, c, s, 1028, 5039, ACK, b"more");
    r.seg(T0 + 41 * MS + 50 * US, s, c, 5039, 1032, ACK, b"hello");
    assert_eq!(r.stalls, vec![]);
}

/// The ACK covers the head but not the 10 bytes sent after it: the sender was not waiting
/// for that ACK to send what it had (Nagle waits for everything to be acknowledged).
#[test]
fn ack_of_part_of_the_data_in_flight_releases_no_stall() {
    let (c, s) = (ep(1, 40000), ep(2, 80));
    let mut r = Rig::new();
    head_in_flight(&mut r, c, s);
    r.seg(T0 + MS + 500 * US, s, c, 5039, 1028, ACK, b"0123456789");
    r.seg(T0 + 41 * MS, c, s, 1028, 5039, ACK, b"");
    r.seg(T0 + 41 * MS + 50 * US, s, c, 5049, 1028, ACK, b"hello");
    assert_eq!(r.stalls, vec![]);
}

/// A retransmission is a segment sent: the silence restarts from it (here 6 ms, under the
/// threshold). The retransmission itself never ends a stall.
#[test]
fn a_retransmission_restarts_the_silence_and_ends_no_stall() {
    let (c, s) = (ep(1, 40000), ep(2, 80));
    let mut r = Rig::new();
    head_in_flight(&mut r, c, s);
    r.seg(T0 + 35 * MS, s, c, 5001, 1028, ACK, HEAD);
    r.seg(T0 + 41 * MS, c, s, 1028, 5039, ACK, b"");
    r.seg(T0 + 41 * MS + 50 * US, s, c, 5001, 1028, ACK, HEAD);
    r.seg(T0 + 41 * MS + 60 * US, s, c, 5039, 1028, ACK, b"hello");
    assert_eq!(r.stalls, vec![]);
    r.finish();
    let t = &r.closed()[0];
    assert_eq!(t.server_to_client.retransmitted_segments, 2);
    assert_eq!(t.server_to_client.retransmission_timeouts, 0);
}

/// Bytes the capture missed were sent at some unseen time: the segment after the hole
/// ends no stall, even right after the ACK that declared the hole.
#[test]
fn no_stall_across_a_gap() {
    let (c, s) = (ep(1, 40000), ep(2, 80));
    let mut r = Rig::new();
    head_in_flight(&mut r, c, s);
    // [5039, 5044) never captured; the client's ACK of it declares the gap.
    r.seg(T0 + 41 * MS, c, s, 1028, 5044, ACK, b"");
    r.seg(T0 + 41 * MS + 50 * US, s, c, 5044, 1028, ACK, b"hello");
    assert_eq!(r.gaps(), vec![(S2C, 5)]);
    assert_eq!(r.stalls, vec![]);
}

/// A segment arriving ahead of a hole is not "right where the sender left off".
#[test]
fn no_stall_ahead_of_a_hole() {
    let (c, s) = (ep(1, 40000), ep(2, 80));
    let mut r = Rig::new();
    head_in_flight(&mut r, c, s);
    r.seg(T0 + 41 * MS, c, s, 1028, 5039, ACK, b"");
    r.seg(T0 + 41 * MS + 50 * US, s, c, 5041, 1028, ACK, b"llo");
    r.seg(T0 + 41 * MS + 60 * US, s, c, 5039, 1028, ACK, b"he");
    assert_eq!(r.data(S2C), [HEAD, b"hello"].concat());
    assert_eq!(r.stalls, vec![]);
}

/// Retransmissions after 200 ms of the sender's silence are the retransmission timer's
/// (each backoff counts); one 50 ms after the original is not; keep-alives (zero bytes,
/// or one byte just before the sender's furthest byte) are no retransmissions at all.
#[test]
fn retransmission_timeouts_follow_a_silence_of_200_ms() {
    let (c, s) = (ep(1, 40000), ep(2, 80));
    let mut r = Rig::new();
    handshake(&mut r, c, s, 1000, 5000);
    r.seg(T0, c, s, 1001, 5001, ACK, REQ);
    r.seg(T0 + 50 * MS, c, s, 1001, 5001, ACK, REQ); // quick: not the timer
    r.seg(T0 + 260 * MS, c, s, 1001, 5001, ACK, REQ); // 210 ms of silence
    r.seg(T0 + 680 * MS, c, s, 1001, 5001, ACK, REQ); // backed off, 420 ms
    r.seg(T0 + 700 * MS, s, c, 5001, 1028, ACK, RESP);
    r.seg(T0 + 10 * SEC, c, s, 1027, 5039, ACK, b"x"); // keep-alive with one byte
    r.seg(T0 + 20 * SEC, c, s, 1027, 5039, ACK, b""); // keep-alive without
    r.seg(T0 + 30 * SEC, s, c, 5001, 1028, ACK, RESP); // the server's, after 29.3 s
    r.finish();
    let t = &r.closed()[0];
    assert_eq!(t.client_to_server.retransmission_timeouts, 2);
    assert_eq!(t.server_to_client.retransmission_timeouts, 1);
    assert_eq!(t.client_to_server.retransmitted_segments, 4);
}

/// Zero windows are counted per sender, as Wireshark does: not on SYN, FIN or RST.
#[test]
fn zero_windows_are_counted_per_direction() {
    let (c, s) = (ep(1, 40000), ep(2, 80));
    let mut r = Rig::new();
    r.window = 0;
    handshake(&mut r, c, s, 1000, 5000); // SYN and SYN-ACK not counted, the ACK is
    r.window = 65535;
    r.seg(T0, c, s, 1001, 5001, ACK, REQ);
    r.window = 0;
    r.seg(T0 + MS, s, c, 5001, 1028, ACK, b"");
    r.seg(T0 + 2 * MS, s, c, 5001, 1028, ACK, b"");
    r.seg(T0 + 3 * MS, s, c, 5001, 1028, FIN | ACK, b"");
    r.seg(T0 + 4 * MS, c, s, 1028, 5002, RST | ACK, b"");
    let t = &r.closed()[0];
    assert_eq!(t.client_to_server.zero_windows, 1);
    assert_eq!(t.server_to_client.zero_windows, 2);
}
