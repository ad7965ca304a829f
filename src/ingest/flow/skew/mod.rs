//! Clock offsets between capture sources (files, or interfaces of one file) that saw the
//! same connections.
//!
//! A direction of a connection belongs to the source its first packet came from (the flow
//! table's first-source rule); the copy of that same packet in another source gives one
//! delta `t(hi) - t(lo)` for the source pair `lo < hi`. A packet that passes `lo`'s
//! capture point before `hi`'s gives `offset + delay`, one going the other way
//! `offset - delay`; taking the client->server deltas as one way and the server->client
//! ones as the other, the delay cancels as in NTP:
//! `offset = (median(c2s) + median(s2c)) / 2`, `delay = (median(c2s) - median(s2c)) / 2`.
//! This holds while each pair of capture points sees its clients on one side (the usual
//! case: one node's callers, another node's servers); medians keep a few retransmitted
//! or reordered first packets from moving the estimate.
//!
//! Only the first copy of a direction in another source is compared, and only with the
//! owner's first packet (same sequence, acknowledgment, flags and length): a capture that
//! began after the connection did holds no copy of it, and comparing later packets would
//! need a history per direction. Deltas are bounded per source pair and direction; the
//! rest are counted as dropped.

use rustc_hash::FxHashMap;

use crate::ingest::decode::Segment;
use crate::model::{ClockCorrection, ClockOffset, SourceId, Timestamp};

/// Deltas kept per source pair and direction (more only narrow the median further).
pub const MAX_DELTAS: usize = 4096;
/// Source pairs tracked; further pairs are counted in `dropped_pairs`.
pub const MAX_PAIRS: usize = 256;
/// A source whose clock is this far off its reference gets its timestamps corrected:
/// 0.1 ms is a tenth of the call-chain tolerance, and well above the spread of the
/// estimate between two capture points of one network (tens of µs).
pub const MIN_CORRECTION_NS: i64 = 100_000;
/// Deltas an estimate needs before timestamps are moved by it.
pub const MIN_CORRECTION_PAIRS: u64 = 4;

/// What identifies one packet among its capture copies (timestamps aside).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PacketKey {
    seq: u32,
    ack: u32,
    flags: u8,
    len: u32,
}

impl PacketKey {
    fn of(seg: &Segment<'_>) -> Self {
        let len = seg
            .wire_len
            .max(u32::try_from(seg.payload.len()).unwrap_or(u32::MAX));
        PacketKey {
            seq: seg.seq,
            ack: seg.ack,
            flags: seg.flags.0,
            len,
        }
    }
}

/// One direction of one connection: its owner's first packet, and what its first copy
/// from another source said.
#[derive(Clone, Copy, Debug, Default)]
pub struct DirSkew {
    first: Option<(Timestamp, PacketKey)>,
    copy: CopyState,
}

#[derive(Clone, Copy, Debug, Default)]
enum CopyState {
    #[default]
    None,
    /// `t(hi) - t(lo)` of the first packet, `lo < hi`.
    Matched {
        lo: SourceId,
        hi: SourceId,
        delta: i64,
    },
    /// The first copy was another packet (that source began later, or lost the first).
    Unmatched { lo: SourceId, hi: SourceId },
}

fn order(a: SourceId, b: SourceId) -> (SourceId, SourceId) {
    if (a.input, a.interface) <= (b.input, b.interface) {
        (a, b)
    } else {
        (b, a)
    }
}

impl DirSkew {
    /// A packet of the owning source.
    #[inline]
    pub fn on_owner(&mut self, seg: &Segment<'_>) {
        if self.first.is_none() {
            self.first = Some((seg.ts, PacketKey::of(seg)));
        }
    }

    /// A copy from another source than `owner`.
    #[inline]
    pub fn on_copy(&mut self, owner: SourceId, seg: &Segment<'_>) {
        if !matches!(self.copy, CopyState::None) {
            return;
        }
        let Some((t_owner, key)) = self.first else {
            return;
        };
        let (lo, hi) = order(owner, seg.source);
        self.copy = if key == PacketKey::of(seg) {
            let (t_lo, t_hi) = if lo == owner {
                (t_owner, seg.ts)
            } else {
                (seg.ts, t_owner)
            };
            CopyState::Matched {
                lo,
                hi,
                delta: t_hi.0.saturating_sub(t_lo.0),
            }
        } else {
            CopyState::Unmatched { lo, hi }
        };
    }
}

#[derive(Default)]
struct PairDeltas {
    /// Indexed 0 = client->server, 1 = server->client.
    deltas: [Vec<i64>; 2],
    dropped: u64,
    unmatched: u64,
}

/// Collects the deltas of closed connections; [`SkewEstimator::estimates`] gives the
/// offsets.
#[derive(Default)]
pub struct SkewEstimator {
    pairs: FxHashMap<(SourceId, SourceId), PairDeltas>,
    dropped_pairs: u64,
}

impl SkewEstimator {
    /// Takes a closed connection's two directions; `client_side` is the index in `dirs`
    /// of the client's direction.
    pub fn record(&mut self, dirs: &[DirSkew; 2], client_side: usize) {
        for (side, d) in dirs.iter().enumerate() {
            let c2s = usize::from(side != client_side);
            let (lo, hi, delta) = match d.copy {
                CopyState::None => continue,
                CopyState::Matched { lo, hi, delta } => (lo, hi, Some(delta)),
                CopyState::Unmatched { lo, hi } => (lo, hi, None),
            };
            if !self.pairs.contains_key(&(lo, hi)) && self.pairs.len() >= MAX_PAIRS {
                self.dropped_pairs += 1;
                continue;
            }
            let p = self.pairs.entry((lo, hi)).or_default();
            match (delta, p.deltas.get_mut(c2s)) {
                (None, _) => p.unmatched += 1,
                (Some(x), Some(v)) if v.len() < MAX_DELTAS => v.push(x),
                _ => p.dropped += 1,
            }
        }
    }

    /// Adds the deltas another estimator collected from other connections (a capture
    /// read by several flow tables). The estimates sort the deltas, so the order of the
    /// merges does not matter while the bounds are not reached.
    pub fn merge(&mut self, other: SkewEstimator) {
        self.dropped_pairs += other.dropped_pairs;
        let mut pairs: Vec<_> = other.pairs.into_iter().collect();
        pairs.sort_by_key(|(k, _)| (k.0.input, k.0.interface, k.1.input, k.1.interface));
        for (key, theirs) in pairs {
            if !self.pairs.contains_key(&key) && self.pairs.len() >= MAX_PAIRS {
                self.dropped_pairs += 1;
                continue;
            }
            let p = self.pairs.entry(key).or_default();
            p.dropped += theirs.dropped;
            p.unmatched += theirs.unmatched;
            for (mine, d) in p.deltas.iter_mut().zip(theirs.deltas) {
                let room = MAX_DELTAS.saturating_sub(mine.len());
                p.dropped += d.len().saturating_sub(room) as u64;
                mine.extend(d.into_iter().take(room));
            }
        }
    }

    /// Source pairs that were not tracked (over [`MAX_PAIRS`]).
    pub fn dropped_pairs(&self) -> u64 {
        self.dropped_pairs
    }

    /// One estimate per source pair that had a matched copy, ordered by source.
    pub fn estimates(&self) -> Vec<ClockOffset> {
        let mut out: Vec<ClockOffset> = self
            .pairs
            .iter()
            .filter_map(|(&(lo, hi), p)| estimate(lo, hi, p))
            .collect();
        out.sort_by_key(|o| {
            (
                o.input,
                o.interface,
                o.reference_input,
                o.reference_interface,
            )
        });
        out
    }
}

fn estimate(lo: SourceId, hi: SourceId, p: &PairDeltas) -> Option<ClockOffset> {
    let mut c2s = p.deltas[0].clone();
    let mut s2c = p.deltas[1].clone();
    c2s.sort_unstable();
    s2c.sort_unstable();
    let (offset_ns, delay_ns) = match (median(&c2s), median(&s2c)) {
        (Some(c), Some(s)) => (mid(c, s), Some(mid(c, -s))),
        // One way only: the offset still holds the delay between the capture points.
        (Some(m), None) | (None, Some(m)) => (m, None),
        (None, None) => return None,
    };
    Some(ClockOffset {
        input: hi.input,
        interface: hi.interface,
        reference_input: lo.input,
        reference_interface: lo.interface,
        offset_ns,
        delay_ns,
        spread_ns: iqr(&c2s).max(iqr(&s2c)),
        pairs: (c2s.len() + s2c.len()) as u64,
        c2s_pairs: c2s.len() as u64,
        s2c_pairs: s2c.len() as u64,
        dropped: p.dropped,
        unmatched: p.unmatched,
    })
}

/// The shift per capture source that puts every source on its reference's clock: per
/// group of sources linked by estimates, the lowest source is the reference (shift 0)
/// and each other source's shift is the sum of the offsets along the links to it.
/// Only estimates of at least [`MIN_CORRECTION_PAIRS`] deltas are followed, and nothing
/// is returned unless some shift reaches [`MIN_CORRECTION_NS`].
pub fn corrections(estimates: &[ClockOffset]) -> Vec<ClockCorrection> {
    let usable: Vec<&ClockOffset> = estimates
        .iter()
        .filter(|o| o.pairs >= MIN_CORRECTION_PAIRS)
        .collect();
    let src = |input, interface| SourceId { input, interface };
    let mut sources: Vec<SourceId> = usable
        .iter()
        .flat_map(|o| {
            [
                src(o.input, o.interface),
                src(o.reference_input, o.reference_interface),
            ]
        })
        .collect();
    sources.sort_by_key(|s| (s.input, s.interface));
    sources.dedup();
    // (shift, pairs) per source once reached.
    let mut shift: FxHashMap<SourceId, (i64, u64)> = FxHashMap::default();
    for &root in &sources {
        if shift.contains_key(&root) {
            continue;
        }
        shift.insert(root, (0, u64::MAX));
        let mut todo = vec![root];
        while let Some(at) = todo.pop() {
            let (base, pairs) = shift[&at];
            for o in &usable {
                let (this, reference) = (
                    src(o.input, o.interface),
                    src(o.reference_input, o.reference_interface),
                );
                // t(this) = t(reference) + offset
                let next = if reference == at {
                    (this, base.saturating_add(o.offset_ns))
                } else if this == at {
                    (reference, base.saturating_sub(o.offset_ns))
                } else {
                    continue;
                };
                if let std::collections::hash_map::Entry::Vacant(e) = shift.entry(next.0) {
                    e.insert((next.1, pairs.min(o.pairs)));
                    todo.push(next.0);
                }
            }
        }
    }
    let mut out: Vec<ClockCorrection> = shift
        .into_iter()
        .filter(|(_, (s, _))| *s != 0)
        .map(|(s, (shift_ns, pairs))| ClockCorrection {
            input: s.input,
            interface: s.interface,
            shift_ns,
            pairs,
        })
        .collect();
    if out.iter().all(|c| c.shift_ns.abs() < MIN_CORRECTION_NS) {
        return Vec::new();
    }
    out.sort_by_key(|c| (c.input, c.interface));
    out
}

/// `(a + b) / 2` without overflow.
fn mid(a: i64, b: i64) -> i64 {
    let m = (i128::from(a) + i128::from(b)) / 2;
    i64::try_from(m).unwrap_or(if m < 0 { i64::MIN } else { i64::MAX })
}

/// Median of sorted values (mean of the two middle ones for an even count).
fn median(sorted: &[i64]) -> Option<i64> {
    let n = sorted.len();
    let hi = *sorted.get(n / 2)?;
    if n % 2 == 1 {
        return Some(hi);
    }
    Some(mid(*sorted.get(n / 2 - 1)?, hi))
}

/// Interquartile range of sorted values (nearest-rank quartiles); 0 when empty.
fn iqr(sorted: &[i64]) -> i64 {
    let n = sorted.len();
    match (sorted.get(n / 4), sorted.get((3 * n) / 4)) {
        (Some(q1), Some(q3)) if n > 0 => q3.saturating_sub(*q1),
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
