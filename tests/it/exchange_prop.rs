//! The whole engine is indifferent to how a real stream was segmented: the TCP segments of
//! real fixture captures, re-cut at random points, reordered within a window and partly
//! duplicated, yield exactly the exchanges of the capture as recorded (timestamps aside).

use crate::common::*;
use linkrank::ingest::capture::{CaptureFile, MergedCaptures};
use linkrank::ingest::decode::{DecodeConfig, Decoder, Segment, TcpFlags};
use linkrank::ingest::flow::{FlowConfig, FlowTable};
use linkrank::ingest::http::{detect, HttpConfig, HttpStage, Record};
use linkrank::model::{Coverage, Endpoint, Exchange, SourceId, Timestamp};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Seg {
    ts: Timestamp,
    src: Endpoint,
    dst: Endpoint,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    window: u16,
    payload: Vec<u8>,
}

impl Seg {
    fn view(&self) -> Segment<'_> {
        Segment {
            ts: self.ts,
            source: SourceId::default(),
            src: self.src,
            dst: self.dst,
            seq: self.seq,
            ack: self.ack,
            flags: self.flags,
            window: self.window,
            mss: None,
            payload: &self.payload,
            wire_len: self.payload.len() as u32,
        }
    }
    /// Sequence space this segment occupies (SYN and FIN count one each).
    fn seq_len(&self) -> u32 {
        self.payload.len() as u32 + u32::from(self.flags.syn()) + u32::from(self.flags.fin())
    }
}

fn segments_of(file: &str) -> Vec<Seg> {
    let f = CaptureFile::open(&repo(file), 0).unwrap();
    let mut caps = MergedCaptures::new(vec![f]);
    let mut dec = Decoder::new(DecodeConfig::default());
    let mut cov = Coverage::default();
    let mut out = Vec::new();
    while let Some(frame) = caps.next_frame(&mut cov) {
        if let Some(s) = dec.decode(&frame, &mut cov) {
            out.push(Seg {
                ts: s.ts,
                src: s.src,
                dst: s.dst,
                seq: s.seq,
                ack: s.ack,
                flags: s.flags,
                window: s.window,
                payload: s.payload.to_vec(),
            });
        }
    }
    out
}

/// Exchanges with the capture-time fields cleared (re-cut pieces keep their parent's time,
/// but which piece carries a message's first byte changes), and the sender stalls too:
/// they are read off the segments' timing, which reordering and duplicates change by
/// design (a duplicate restarts its sender's silence, a reordered piece ends none).
fn exchanges_of(segs: &[Seg]) -> Vec<Exchange> {
    let mut cov = Coverage::default();
    let mut flows = FlowTable::new(FlowConfig::default(), detect::role_hint);
    let mut http = HttpStage::new(HttpConfig::default());
    let mut http_cov = Coverage::default();
    let mut got = Vec::new();
    let mut sink = |r: Record| {
        if let Record::Exchange(mut x) = r {
            x.req_first = None;
            x.req_last = None;
            x.resp_first = None;
            x.resp_last = None;
            x.req_stall_ns = None;
            x.resp_stall_ns = None;
            got.push(x);
        }
    };
    for s in segs {
        flows.push(&s.view(), &mut cov, &mut |ev| {
            http.push(ev, &mut http_cov, &mut sink)
        });
    }
    flows.finish(&mut cov, &mut |ev| http.push(ev, &mut http_cov, &mut sink));
    got.sort_by_key(|x| (x.conn, x.index));
    got
}

/// Splits each data segment into pieces at the given fractions.
fn recut(segs: &[Seg], cuts: &[u8]) -> Vec<Seg> {
    let mut out = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        let c = cuts[i % cuts.len()] as usize;
        if s.payload.len() < 2 || c == 0 || s.flags.syn() {
            out.push(s.clone());
            continue;
        }
        let at = 1 + c % (s.payload.len() - 1);
        let mut a = s.clone();
        let mut b = s.clone();
        a.payload.truncate(at);
        a.flags = TcpFlags(s.flags.0 & !TcpFlags::FIN);
        b.payload.drain(..at);
        b.seq = s.seq.wrapping_add(at as u32);
        out.push(a);
        out.push(b);
    }
    out
}

/// What one sender has shown so far: (sender, contiguous end, ranges shown).
type Shown = (Endpoint, u32, Vec<(u32, u32)>);

/// Moves each segment up to `window` places later, then repairs causality: a segment that
/// acknowledges bytes of the other side not yet shown waits until they have been, as at a
/// real capture point (which sees data before its acknowledgement).
fn shuffle(segs: Vec<Seg>, moves: &[u8], dups: &[bool], window: usize) -> Vec<Seg> {
    let mut keyed: Vec<(usize, Seg)> = Vec::new();
    for (i, s) in segs.into_iter().enumerate() {
        let k = if s.flags.syn() {
            i * 16
        } else {
            i * 16 + (moves[i % moves.len()] as usize % (window + 1)) * 16 + 1
        };
        if dups[i % dups.len()] && !s.payload.is_empty() {
            keyed.push((k + 8, s.clone()));
        }
        keyed.push((k, s));
    }
    keyed.sort_by_key(|(k, _)| *k);
    // Causal repair, per direction: the highest contiguous sequence number shown so far.
    let mut next: Vec<Shown> = Vec::new();
    let mut pending: Vec<Seg> = keyed.into_iter().map(|(_, s)| s).collect();
    let mut out = Vec::new();
    while !pending.is_empty() {
        let pos = pending
            .iter()
            .position(|s| {
                if !s.flags.ack() || s.flags.syn() {
                    return true;
                }
                match next.iter().find(|(from, _, _)| *from == s.dst) {
                    Some((_, end, _)) => (s.ack.wrapping_sub(*end) as i32) <= 0,
                    None => true,
                }
            })
            .unwrap_or(0);
        let s = pending.remove(pos);
        let entry = match next.iter().position(|(from, _, _)| *from == s.src) {
            Some(i) => i,
            None => {
                next.push((s.src, s.seq, Vec::new()));
                next.len() - 1
            }
        };
        let (_, end, ranges) = &mut next[entry];
        ranges.push((s.seq, s.seq.wrapping_add(s.seq_len())));
        loop {
            let before = *end;
            for (a, b) in ranges.iter() {
                if (a.wrapping_sub(*end) as i32) <= 0 && (b.wrapping_sub(*end) as i32) > 0 {
                    *end = *b;
                }
            }
            if *end == before {
                break;
            }
        }
        out.push(s);
    }
    out
}

fn check(file: &str, cuts: &[u8], moves: &[u8], dups: &[bool]) -> Result<(), TestCaseError> {
    let segs = segments_of(file);
    let want = exchanges_of(&segs);
    prop_assert!(!want.is_empty());
    let mixed = shuffle(recut(&segs, cuts), moves, dups, 3);
    let got = exchanges_of(&mixed);
    prop_assert_eq!(got, want);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn keepalive_any_segmentation(cuts in prop::collection::vec(any::<u8>(), 1..40), moves in prop::collection::vec(any::<u8>(), 1..40), dups in prop::collection::vec(prop::bool::weighted(0.15), 1..40)) {
        check("fixtures/keepalive.pcap", &cuts, &moves, &dups)?;
    }

    #[test]
    fn chunked_any_segmentation(cuts in prop::collection::vec(any::<u8>(), 1..40), moves in prop::collection::vec(any::<u8>(), 1..40), dups in prop::collection::vec(prop::bool::weighted(0.15), 1..40)) {
        check("fixtures/chunked.pcap", &cuts, &moves, &dups)?;
    }

    #[test]
    fn pipelined_any_segmentation(cuts in prop::collection::vec(any::<u8>(), 1..40), moves in prop::collection::vec(any::<u8>(), 1..40), dups in prop::collection::vec(prop::bool::weighted(0.15), 1..40)) {
        check("fixtures/pipelined.pcap", &cuts, &moves, &dups)?;
    }

    #[test]
    fn large_body_any_segmentation(cuts in prop::collection::vec(any::<u8>(), 1..40), moves in prop::collection::vec(any::<u8>(), 1..40), dups in prop::collection::vec(prop::bool::weighted(0.15), 1..40)) {
        check("fixtures/large_body.pcap", &cuts, &moves, &dups)?;
    }

    #[test]
    fn gzip_any_segmentation(cuts in prop::collection::vec(any::<u8>(), 1..40), moves in prop::collection::vec(any::<u8>(), 1..40), dups in prop::collection::vec(prop::bool::weighted(0.15), 1..40)) {
        check("fixtures/gzip.pcap", &cuts, &moves, &dups)?;
    }
}
