//! Reassembly property: a request and a response cut into random segments, reordered within
//! a window, duplicated and overlapped, with pure ACKs in between, come out byte-exact; and
//! with one segment missing from the capture (but ACKed by the peer), exactly that range is
//! reported as a gap and nothing is stitched across it.

use std::net::{IpAddr, Ipv4Addr};

use linkrank::ingest::decode::{Segment, TcpFlags};
use linkrank::ingest::flow::{EventKind, FlowConfig, FlowTable, Interest, RoleHint};
use linkrank::model::{CloseReason, Coverage, Direction, Endpoint, SourceId, Timestamp};
use proptest::prelude::*;

fn unknown(_: &[u8]) -> RoleHint {
    RoleHint::Unknown
}

/// Small deterministic generator so that proptest shrinks over one seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Clone)]
struct Pkt {
    from_client: bool,
    seq: u32,
    ack: u32,
    flags: u8,
    data: Vec<u8>,
}

/// What the stream delivered: per direction, a list of pieces (bytes or gap lengths).
#[derive(Default, Debug)]
struct Seen {
    pieces: [Vec<Result<Vec<u8>, u64>>; 2],
    ended: [bool; 2],
    close: Option<CloseReason>,
}

/// Cuts `stream` (starting at relative offset 0) into segments of 1..=max bytes.
fn cut(len: usize, max: u64, rng: &mut Rng) -> Vec<(usize, usize)> {
    let mut v = Vec::new();
    let mut at = 0;
    while at < len {
        let n = (1 + rng.below(max) as usize).min(len - at);
        v.push((at, at + n));
        at += n;
    }
    v
}

/// The segments of one direction in capture order: reordered within a window, with some
/// duplicated and some extra overlapping segments. The `drop` segment (an index into the
/// cut) is transmitted (the receiver gets it) but not captured. Each segment is followed by
/// the receiver's ACK of what it holds contiguously.
#[allow(clippy::too_many_arguments)]
fn direction(
    stream: &[u8],
    isn: u32,
    peer_next: u32,
    from_client: bool,
    rng: &mut Rng,
    drop: Option<usize>,
    extras: bool,
    out: &mut Vec<(Pkt, bool)>,
) -> usize {
    let pieces = cut(stream.len(), 600, rng);
    let drop = drop.map(|d| d.min(pieces.len() - 1));
    let mut order: Vec<(u64, (usize, usize), bool)> = pieces
        .iter()
        .enumerate()
        .map(|(i, &p)| (i as u64 * 4 + rng.below(16), p, Some(i) == drop))
        .collect();
    if extras {
        for _ in 0..rng.below(6) {
            let i = rng.below(pieces.len() as u64) as usize;
            // An exact duplicate later on.
            order.push((i as u64 * 4 + 1 + rng.below(40), pieces[i], false));
        }
        for _ in 0..rng.below(6) {
            let a = rng.below(stream.len() as u64) as usize;
            let b = (a + 1 + rng.below(900) as usize).min(stream.len());
            // An overlapping repacketisation, sent after the first piece it covers.
            let first = pieces
                .iter()
                .position(|&(s, e)| s <= a && a < e)
                .unwrap_or(0);
            order.push((first as u64 * 4 + 2 + rng.below(40), (a, b), false));
        }
    }
    order.sort_by_key(|o| o.0);
    let mut have = vec![false; stream.len()];
    let mut contiguous = 0;
    for (_, (a, b), dropped) in order {
        let pkt = Pkt {
            from_client,
            seq: isn.wrapping_add(1).wrapping_add(a as u32),
            ack: peer_next,
            flags: TcpFlags::ACK,
            data: stream[a..b].to_vec(),
        };
        out.push((pkt, !dropped));
        have[a..b].iter_mut().for_each(|h| *h = true);
        while contiguous < have.len() && have[contiguous] {
            contiguous += 1;
        }
        let ack = Pkt {
            from_client: !from_client,
            seq: peer_next,
            ack: isn.wrapping_add(1).wrapping_add(contiguous as u32),
            flags: TcpFlags::ACK,
            data: Vec::new(),
        };
        out.push((ack, true));
    }
    pieces.len()
}

fn run(
    req: &[u8],
    resp: &[u8],
    seed: u64,
    ci: u32,
    si: u32,
    drop: Option<(bool, usize)>,
) -> (Seen, Vec<(usize, usize)>) {
    let client = Endpoint::new(IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1)), 40000);
    let server = Endpoint::new(IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2)), 8080);
    let mut rng = Rng(seed | 1);
    let mut pkts: Vec<(Pkt, bool)> = vec![
        (
            Pkt {
                from_client: true,
                seq: ci,
                ack: 0,
                flags: TcpFlags::SYN,
                data: vec![],
            },
            true,
        ),
        (
            Pkt {
                from_client: false,
                seq: si,
                ack: ci.wrapping_add(1),
                flags: TcpFlags::SYN | TcpFlags::ACK,
                data: vec![],
            },
            true,
        ),
        (
            Pkt {
                from_client: true,
                seq: ci.wrapping_add(1),
                ack: si.wrapping_add(1),
                flags: TcpFlags::ACK,
                data: vec![],
            },
            true,
        ),
    ];
    let extras = drop.is_none();
    let (req_end, resp_end) = (
        ci.wrapping_add(1 + req.len() as u32),
        si.wrapping_add(1 + resp.len() as u32),
    );
    let mut cuts = Vec::new();
    // The same cut is recomputed to report the dropped range; keep a copy of the rng.
    let saved = Rng(rng.0);
    let dc = drop.filter(|d| d.0).map(|d| d.1);
    let ds = drop.filter(|d| !d.0).map(|d| d.1);
    direction(
        req,
        ci,
        si.wrapping_add(1),
        true,
        &mut rng,
        dc,
        extras,
        &mut pkts,
    );
    let saved2 = Rng(rng.0);
    direction(resp, si, req_end, false, &mut rng, ds, extras, &mut pkts);
    let fins = [
        Pkt {
            from_client: true,
            seq: req_end,
            ack: resp_end,
            flags: TcpFlags::FIN | TcpFlags::ACK,
            data: vec![],
        },
        Pkt {
            from_client: false,
            seq: resp_end,
            ack: req_end.wrapping_add(1),
            flags: TcpFlags::FIN | TcpFlags::ACK,
            data: vec![],
        },
        Pkt {
            from_client: true,
            seq: req_end.wrapping_add(1),
            ack: resp_end.wrapping_add(1),
            flags: TcpFlags::ACK,
            data: vec![],
        },
    ];
    pkts.extend(fins.into_iter().map(|p| (p, true)));
    if let Some((is_client, i)) = drop {
        let (mut r, len) = if is_client {
            (saved, req.len())
        } else {
            (saved2, resp.len())
        };
        let c = cut(len, 600, &mut r);
        cuts.push(c[i.min(c.len() - 1)]);
    }

    let mut table = FlowTable::new(FlowConfig::default(), unknown);
    let mut cov = Coverage::default();
    let mut seen = Seen::default();
    let mut sink = |e: linkrank::ingest::flow::StreamEvent<'_>| {
        match e.kind {
            EventKind::Data { dir, bytes, .. } => seen.pieces[dir.index()].push(Ok(bytes.to_vec())),
            EventKind::Gap { dir, len } => seen.pieces[dir.index()].push(Err(len)),
            EventKind::End { dir } => seen.ended[dir.index()] = true,
            EventKind::Closed(s) => seen.close = Some(s.close),
            EventKind::Opened { client: c, .. } => assert_eq!(c, client),
        }
        Interest::Keep
    };
    for (i, (p, captured)) in pkts.iter().enumerate() {
        if !captured {
            continue;
        }
        let (src, dst) = if p.from_client {
            (client, server)
        } else {
            (server, client)
        };
        let seg = Segment {
            ts: Timestamp(i as i64 * 1000),
            source: SourceId::default(),
            src,
            dst,
            seq: p.seq,
            ack: p.ack,
            flags: TcpFlags(p.flags),
            window: 1000,
            mss: None,
            payload: &p.data,
            wire_len: p.data.len() as u32,
        };
        table.push(&seg, &mut cov, &mut sink);
    }
    table.finish(&mut cov, &mut sink);
    (seen, cuts)
}

fn concat(pieces: &[Result<Vec<u8>, u64>]) -> Vec<u8> {
    pieces
        .iter()
        .filter_map(|p| p.as_ref().ok())
        .flatten()
        .copied()
        .collect()
}

fn isn() -> impl Strategy<Value = u32> {
    prop_oneof![any::<u32>(), (0u32..4000).prop_map(|d| u32::MAX - d)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn reordered_duplicated_overlapping_segments_reassemble_exactly(
        req in prop::collection::vec(any::<u8>(), 1..3000),
        resp in prop::collection::vec(any::<u8>(), 1..5000),
        seed in any::<u64>(), ci in isn(), si in isn(),
    ) {
        let (seen, _) = run(&req, &resp, seed, ci, si, None);
        let c2s = Direction::ClientToServer.index();
        let s2c = Direction::ServerToClient.index();
        prop_assert!(seen.pieces[c2s].iter().all(|p| p.is_ok()), "no gap expected");
        prop_assert!(seen.pieces[s2c].iter().all(|p| p.is_ok()), "no gap expected");
        prop_assert_eq!(concat(&seen.pieces[c2s]), req);
        prop_assert_eq!(concat(&seen.pieces[s2c]), resp);
        prop_assert!(seen.ended[c2s] && seen.ended[s2c]);
        prop_assert_eq!(seen.close, Some(CloseReason::Fin));
    }

    #[test]
    fn one_missing_segment_is_exactly_one_gap(
        req in prop::collection::vec(any::<u8>(), 1..3000),
        resp in prop::collection::vec(any::<u8>(), 1..5000),
        seed in any::<u64>(), ci in isn(), si in isn(),
        client_side in any::<bool>(), which in any::<prop::sample::Index>(),
    ) {
        // An index up to the stream length; clamped to the number of pieces of the cut.
        let len = if client_side { req.len() } else { resp.len() };
        let i = which.index(len);
        let (seen, cuts) = run(&req, &resp, seed, ci, si, Some((client_side, i)));
        let (a, b) = cuts[0];
        let d = if client_side { Direction::ClientToServer } else { Direction::ServerToClient }.index();
        let stream = if client_side { &req } else { &resp };
        let mut want_before = stream[..a].to_vec();
        let want_after = stream[b..].to_vec();
        let pieces = &seen.pieces[d];
        let gaps: Vec<_> = pieces.iter().enumerate().filter_map(|(k, p)| p.as_ref().err().map(|l| (k, *l))).collect();
        prop_assert_eq!(gaps.len(), 1, "exactly one gap: {:?}", gaps);
        let (k, glen) = gaps[0];
        prop_assert_eq!(glen, (b - a) as u64);
        prop_assert_eq!(concat(&pieces[..k]), want_before.clone());
        prop_assert_eq!(concat(&pieces[k + 1..]), want_after.clone());
        want_before.extend(want_after);
        prop_assert_eq!(concat(pieces), want_before);
        let other = 1 - d;
        prop_assert!(seen.pieces[other].iter().all(|p| p.is_ok()));
        prop_assert_eq!(concat(&seen.pieces[other]), if client_side { resp.clone() } else { req.clone() });
        prop_assert_eq!(seen.close, Some(CloseReason::Fin));
    }
}
