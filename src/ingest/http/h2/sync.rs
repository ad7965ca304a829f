//! Finding HTTP/2 in a stream that did not begin with the preface: the capture started
//! mid-connection, or a gap lost the frame boundaries.
//!
//! Frames are looked for only at segment starts (where senders that write whole frames
//! put them, and where a gap leaves us): from there the bytes must read as plausible frame
//! headers laid end to end (`frame::walk`: known type, its flags, its stream id rule, the
//! reserved bit clear, a length within the default SETTINGS_MAX_FRAME_SIZE). Nine random
//! bytes pass that test about once in a million; two or three in a row, joined by their
//! lengths, do not happen by chance.
//!
//! [`Probe`] holds the first bytes of a connection whose first bytes were not HTTP/1, TLS
//! or the preface (bounded, per side) and says when they are HTTP/2. It runs only on such
//! connections: never on one already read as HTTP/1 or TLS.

use super::frame::{self, DEFAULT_MAX_FRAME, LARGEST_MAX_FRAME};
use crate::model::{Direction, Timestamp};

/// Bytes held per side while probing.
pub(crate) const PROBE_BYTES: usize = 64 << 10;
/// Segments per side after which a connection that showed no frames is given up.
const PROBE_SEGMENTS: usize = 32;
/// Frames in a row that make a connection HTTP/2 (two suffice when they end exactly with
/// the bytes seen: a segment of whole frames).
const PROBE_FRAMES: usize = 3;

/// Whether a segment of a connection already known to carry HTTP/2 starts with frames:
/// two in a row, or one that ends exactly with the segment.
pub(crate) fn resync_point(b: &[u8]) -> bool {
    let (n, exact) = frame::walk(b, LARGEST_MAX_FRAME, 2);
    n >= 2 || (n == 1 && exact)
}

/// One side's segments while probing.
#[derive(Default)]
struct ProbeSide {
    buf: Vec<u8>,
    /// Start offset in `buf` and capture time of each segment.
    starts: Vec<(usize, Timestamp)>,
    full: bool,
}

/// The first bytes of both sides of a connection being probed for HTTP/2.
#[derive(Default)]
pub(crate) struct Probe {
    sides: [ProbeSide; 2],
}

/// What the probe says after a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    More,
    /// Frames found mid-connection.
    Http2,
    /// The client's bytes are the connection preface (its server spoke first).
    Preface,
    NotHttp2,
}

impl Probe {
    pub(crate) fn held_bytes(&self) -> usize {
        self.sides.iter().map(|s| s.buf.capacity()).sum()
    }

    /// Adds one segment's bytes.
    pub(crate) fn push(&mut self, dir: Direction, ts: Timestamp, bytes: &[u8]) -> Verdict {
        let s = &mut self.sides[dir.index()];
        if s.full || bytes.is_empty() {
            return self.verdict_when_full();
        }
        if s.buf.len() + bytes.len() > PROBE_BYTES || s.starts.len() >= PROBE_SEGMENTS {
            s.full = true;
            return self.verdict_when_full();
        }
        s.starts.push((s.buf.len(), ts));
        s.buf.extend_from_slice(bytes);
        if dir == Direction::ClientToServer && s.buf.starts_with(super::PREFACE) {
            return Verdict::Preface;
        }
        if self.frames_in(dir.index()) {
            Verdict::Http2
        } else {
            Verdict::More
        }
    }

    /// A gap: bytes on either side of it cannot be read as one run.
    pub(crate) fn gap(&mut self, dir: Direction) {
        let s = &mut self.sides[dir.index()];
        s.buf = Vec::new();
        s.starts.clear();
    }

    /// A side that showed its bound of bytes or segments without frames at any segment
    /// start is not HTTP/2, and so neither is the connection.
    fn verdict_when_full(&self) -> Verdict {
        if self.sides.iter().any(|s| s.full) {
            Verdict::NotHttp2
        } else {
            Verdict::More
        }
    }

    /// Frames start at one of side `d`'s segment starts.
    fn frames_in(&self, d: usize) -> bool {
        let s = &self.sides[d];
        s.starts.iter().any(|&(at, _)| {
            let b = &s.buf[at..];
            let (n, exact) = frame::walk(b, DEFAULT_MAX_FRAME, PROBE_FRAMES);
            n >= PROBE_FRAMES || (n == 2 && exact)
        })
    }

    /// The segments held, both sides, in capture order (ties: client first), to replay.
    pub(crate) fn segments(&self) -> Vec<(Direction, Timestamp, &[u8])> {
        let mut out = Vec::new();
        for (d, dir) in [Direction::ClientToServer, Direction::ServerToClient]
            .into_iter()
            .enumerate()
        {
            let s = &self.sides[d];
            for (i, &(at, ts)) in s.starts.iter().enumerate() {
                let end = s.starts.get(i + 1).map_or(s.buf.len(), |n| n.0);
                out.push((dir, ts, &s.buf[at..end]));
            }
        }
        out.sort_by_key(|(dir, ts, _)| (*ts, dir.index()));
        out
    }
}
