//! IPv4 fragment reassembly, bounded in datagrams, bytes and capture time.
//!
//! Written by hand rather than with etherparse's `IpDefragPool` because that pool has no
//! byte/datagram caps, no capture-time expiry and no drop accounting, all of which the
//! coverage counters need. Overlapping fragments: the bytes that arrived first win
//! (only the uncovered gaps of a later fragment are copied).
//!
//! Counters are in fragments, so that `ip_fragments = reassembled + dropped + pending`.

use std::net::IpAddr;

use rustc_hash::FxHashMap;

use super::DecodeConfig;
use crate::model::Coverage;

/// Largest IPv4 payload: 65535 minus the smallest header.
const MAX_DATAGRAM: usize = 65535 - 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FragKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u32,
    pub proto: u8,
}

/// One fragment as read from its IP header.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fragment<'a> {
    pub key: FragKey,
    /// Byte offset of `data` in the datagram's payload.
    pub offset: usize,
    pub more: bool,
    pub data: &'a [u8],
    pub ts: i64,
}

struct Pending {
    first_ts: i64,
    buf: Vec<u8>,
    /// Covered byte ranges `[start, end)`, sorted and disjoint.
    covered: Vec<(usize, usize)>,
    /// Payload length, known once the last fragment (MF = 0) arrived.
    total: Option<usize>,
    fragments: u64,
}

impl Pending {
    fn complete(&self) -> Option<usize> {
        let total = self.total?;
        (self.covered.as_slice() == [(0, total)]).then_some(total)
    }

    /// Copies the parts of `[start, start + data.len())` not yet covered, then merges.
    fn insert(&mut self, start: usize, data: &[u8]) {
        let end = start + data.len();
        if self.buf.len() < end {
            self.buf.resize(end, 0);
        }
        let mut pos = start;
        for &(s, e) in &self.covered {
            if e <= pos {
                continue;
            }
            if s >= end {
                break;
            }
            if s > pos {
                self.buf[pos..s].copy_from_slice(&data[pos - start..s - start]);
            }
            pos = pos.max(e);
            if pos >= end {
                break;
            }
        }
        if pos < end {
            self.buf[pos..end].copy_from_slice(&data[pos - start..]);
        }
        // Merge [start, end) into the sorted range list.
        let mut merged = (start, end);
        self.covered.retain(|&(s, e)| {
            if e < merged.0 || s > merged.1 {
                true
            } else {
                merged = (merged.0.min(s), merged.1.max(e));
                false
            }
        });
        let at = self.covered.partition_point(|&(s, _)| s < merged.0);
        self.covered.insert(at, merged);
    }
}

pub(crate) struct Defrag {
    max_datagrams: usize,
    max_bytes: usize,
    timeout_ns: i64,
    pending: FxHashMap<FragKey, Pending>,
    held_bytes: usize,
    oldest_ts: i64,
    /// The last reassembled datagram's payload; returned borrowed.
    out: Vec<u8>,
}

impl Defrag {
    pub fn new(config: &DecodeConfig) -> Self {
        Defrag {
            max_datagrams: config.max_fragment_datagrams,
            max_bytes: config.max_fragment_bytes,
            timeout_ns: config.fragment_timeout_ns,
            pending: FxHashMap::default(),
            held_bytes: 0,
            oldest_ts: i64::MAX,
            out: Vec::new(),
        }
    }

    /// Datagrams waiting for fragments.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Drops the datagrams older than the timeout at capture time `now`.
    pub fn expire(&mut self, now: i64, cov: &mut Coverage) {
        if self.pending.is_empty() || now.saturating_sub(self.oldest_ts) <= self.timeout_ns {
            return;
        }
        let timeout = self.timeout_ns;
        let mut oldest = i64::MAX;
        let mut freed = 0;
        self.pending.retain(|_, p| {
            if now.saturating_sub(p.first_ts) > timeout {
                cov.ip_fragments_dropped += p.fragments;
                freed += p.buf.len();
                false
            } else {
                oldest = oldest.min(p.first_ts);
                true
            }
        });
        self.held_bytes -= freed;
        self.oldest_ts = oldest;
    }

    /// Drops every incomplete datagram (end of input).
    pub fn clear(&mut self, cov: &mut Coverage) {
        for p in self.pending.values() {
            cov.ip_fragments_dropped += p.fragments;
        }
        self.pending.clear();
        self.held_bytes = 0;
        self.oldest_ts = i64::MAX;
    }

    fn remove(&mut self, key: &FragKey) -> Option<Pending> {
        let p = self.pending.remove(key)?;
        self.held_bytes -= p.buf.len();
        Some(p)
    }

    /// Adds one fragment (already counted in `cov.ip_fragments`). Returns the datagram's
    /// payload once every byte of it has arrived.
    pub fn push<'a>(&'a mut self, frag: Fragment<'_>, cov: &mut Coverage) -> Option<&'a [u8]> {
        let end = frag.offset + frag.data.len();
        let key = frag.key;
        if end > MAX_DATAGRAM || (!frag.more && frag.data.is_empty() && frag.offset == 0) {
            cov.ip_fragments_dropped += 1;
            return None;
        }
        let existing = self.pending.get(&key);
        let grow = end.saturating_sub(existing.map_or(0, |p| p.buf.len()));
        if existing.is_none() && self.pending.len() >= self.max_datagrams {
            cov.ip_fragments_dropped += 1;
            return None;
        }
        if self.held_bytes + grow > self.max_bytes {
            // Over the byte bound: this datagram can no longer complete, drop all of it.
            cov.ip_fragments_dropped += 1 + self.remove(&key).map_or(0, |p| p.fragments);
            return None;
        }
        // A fragment that contradicts the known length (data past the end, or an end
        // before data already held) makes the datagram unusable.
        let inconsistent = existing.is_some_and(|p| match p.total {
            Some(t) => end > t || (!frag.more && end != t),
            None => !frag.more && end < p.buf.len(),
        });
        if inconsistent {
            cov.ip_fragments_dropped += 1 + self.remove(&key).map_or(0, |p| p.fragments);
            return None;
        }
        let p = self.pending.entry(key).or_insert_with(|| Pending {
            first_ts: frag.ts,
            buf: Vec::new(),
            covered: Vec::new(),
            total: None,
            fragments: 0,
        });
        self.oldest_ts = self.oldest_ts.min(p.first_ts);
        p.fragments += 1;
        p.insert(frag.offset, frag.data);
        if !frag.more {
            p.total = Some(end);
        }
        self.held_bytes += grow;
        let total = p.complete()?;
        let done = self.remove(&key)?;
        cov.ip_fragments_reassembled += done.fragments;
        self.out = done.buf;
        self.out.truncate(total);
        Some(&self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key(id: u32) -> FragKey {
        FragKey {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            id,
            proto: 6,
        }
    }

    fn frag(id: u32, offset: usize, more: bool, data: &[u8], ts: i64) -> Fragment<'_> {
        Fragment {
            key: key(id),
            offset,
            more,
            data,
            ts,
        }
    }

    fn defrag(max_datagrams: usize, max_bytes: usize) -> Defrag {
        Defrag::new(&DecodeConfig {
            max_fragment_datagrams: max_datagrams,
            max_fragment_bytes: max_bytes,
            fragment_timeout_ns: 1_000,
        })
    }

    #[test]
    fn in_order_and_out_of_order() {
        let data: Vec<u8> = (0..24u8).collect();
        let mut cov = Coverage::default();
        let mut d = defrag(8, 1 << 20);
        assert!(d.push(frag(1, 0, true, &data[..8], 0), &mut cov).is_none());
        assert!(d
            .push(frag(1, 8, true, &data[8..16], 0), &mut cov)
            .is_none());
        assert_eq!(
            d.push(frag(1, 16, false, &data[16..], 0), &mut cov),
            Some(&data[..])
        );
        // Reverse order.
        assert!(d
            .push(frag(2, 16, false, &data[16..], 0), &mut cov)
            .is_none());
        assert!(d
            .push(frag(2, 8, true, &data[8..16], 0), &mut cov)
            .is_none());
        assert_eq!(
            d.push(frag(2, 0, true, &data[..8], 0), &mut cov),
            Some(&data[..])
        );
        assert_eq!(cov.ip_fragments_reassembled, 6);
        assert_eq!(d.pending(), 0);
        assert_eq!(d.held_bytes, 0);
    }

    #[test]
    fn overlap_first_wins() {
        let mut cov = Coverage::default();
        let mut d = defrag(8, 1 << 20);
        assert!(d.push(frag(1, 8, true, &[1; 8], 0), &mut cov).is_none());
        // Covers 0..16: only 0..8 is new; the 8..16 bytes already held must stay 1s.
        assert!(d.push(frag(1, 0, true, &[2; 16], 0), &mut cov).is_none());
        let out = d
            .push(frag(1, 16, false, &[3; 8], 0), &mut cov)
            .unwrap()
            .to_vec();
        let mut want = vec![2u8; 8];
        want.extend([1; 8]);
        want.extend([3; 8]);
        assert_eq!(out, want);
    }

    #[test]
    fn expired_fragments_are_dropped() {
        let mut cov = Coverage::default();
        let mut d = defrag(8, 1 << 20);
        assert!(d.push(frag(1, 0, true, &[0; 8], 0), &mut cov).is_none());
        assert!(d.push(frag(1, 8, true, &[0; 8], 500), &mut cov).is_none());
        d.expire(900, &mut cov); // 900 ns after the first fragment: still within 1000
        assert_eq!(d.pending(), 1);
        d.expire(1_001, &mut cov);
        assert_eq!(d.pending(), 0);
        assert_eq!(cov.ip_fragments_dropped, 2);
        // The late last fragment now starts a new datagram that cannot complete.
        assert!(d
            .push(frag(1, 16, false, &[0; 8], 1_002), &mut cov)
            .is_none());
        d.clear(&mut cov);
        assert_eq!(cov.ip_fragments_dropped, 3);
    }

    #[test]
    fn over_the_bounds() {
        let mut cov = Coverage::default();
        let mut d = defrag(1, 32);
        assert!(d.push(frag(1, 0, true, &[0; 8], 0), &mut cov).is_none());
        // A second datagram is over the datagram bound.
        assert!(d.push(frag(2, 0, true, &[0; 8], 0), &mut cov).is_none());
        assert_eq!(cov.ip_fragments_dropped, 1);
        // Growing datagram 1 to 40 bytes is over the 32-byte bound: all of it goes.
        assert!(d.push(frag(1, 32, true, &[0; 8], 0), &mut cov).is_none());
        assert_eq!(cov.ip_fragments_dropped, 3);
        assert_eq!(d.pending(), 0);
        assert_eq!(d.held_bytes, 0);
        // Past the largest IPv4 datagram.
        assert!(d
            .push(frag(3, 65528, false, &[0; 8], 0), &mut cov)
            .is_none());
        assert_eq!(cov.ip_fragments_dropped, 4);
    }

    #[test]
    fn inconsistent_last_fragment_drops_datagram() {
        let mut cov = Coverage::default();
        let mut d = defrag(8, 1 << 20);
        assert!(d.push(frag(1, 0, true, &[0; 16], 0), &mut cov).is_none());
        // Says the datagram ends at 8 while 16 bytes are held.
        assert!(d.push(frag(1, 0, false, &[0; 8], 0), &mut cov).is_none());
        assert_eq!(cov.ip_fragments_dropped, 2);
        assert_eq!(d.pending(), 0);
    }
}
