//! Several capture files merged into one stream in timestamp order (captures of one
//! incident taken on several nodes). Within one file, packets keep file order.

use super::{CaptureFile, Frame};
use crate::model::{ClockCorrection, Coverage, SourceId, Timestamp};

pub struct MergedCaptures {
    files: Vec<CaptureFile>,
    /// Timestamp of each file's current packet; `None` once the file has ended.
    heads: Vec<Option<Timestamp>>,
    /// The file whose packet was returned last; it advances on the next call.
    last: Option<usize>,
    started: bool,
    /// Clock corrections per source (a handful: a linear scan is cheapest).
    shifts: Vec<(SourceId, i64)>,
}

impl MergedCaptures {
    pub fn new(files: Vec<CaptureFile>) -> Self {
        let heads = vec![None; files.len()];
        super::position::set_files(files.iter().map(|f| f.path().to_path_buf()).collect());
        MergedCaptures {
            files,
            heads,
            last: None,
            started: false,
            shifts: Vec::new(),
        }
    }

    /// Reads every timestamp of a corrected source as `t - shift_ns`, so that sources
    /// whose clocks disagree merge in true time order (call before the first frame).
    pub fn set_clock_corrections(&mut self, corrections: &[ClockCorrection]) {
        self.shifts = corrections
            .iter()
            .map(|c| {
                let source = SourceId {
                    input: c.input,
                    interface: c.interface,
                };
                (source, c.shift_ns)
            })
            .collect();
    }

    fn corrected<'a>(shifts: &[(SourceId, i64)], mut frame: Frame<'a>) -> Frame<'a> {
        if let Some((_, shift)) = shifts.iter().find(|(s, _)| *s == frame.source) {
            frame.ts = Timestamp(frame.ts.0.saturating_sub(*shift));
        }
        frame
    }

    pub fn files(&self) -> &[CaptureFile] {
        &self.files
    }

    /// The next frame of all files, earliest timestamp first. A file's fault is recorded
    /// in `cov.input_warnings` (and on stderr by the caller) and that file then ends;
    /// the others go on.
    pub fn next_frame(&mut self, cov: &mut Coverage) -> Option<Frame<'_>> {
        self.next_frame_and_secrets(cov, &mut Vec::new())
    }

    /// [`Self::next_frame`], also moving into `secrets` the TLS key log text of the
    /// Decryption Secrets Blocks read before the frame returned (so that the secrets are
    /// known before the packets they open).
    pub fn next_frame_and_secrets(
        &mut self,
        cov: &mut Coverage,
        secrets: &mut Vec<u8>,
    ) -> Option<Frame<'_>> {
        if !self.started {
            self.started = true;
            for i in 0..self.files.len() {
                self.step(i, cov);
            }
        } else if let Some(i) = self.last.take() {
            self.step(i, cov);
        }
        // A linear scan: a run merges a handful of files, and it allocates nothing.
        // Strict `<` keeps ties in input order.
        let mut best: Option<(usize, Timestamp)> = None;
        for (i, head) in self.heads.iter().enumerate() {
            if let Some(ts) = *head {
                if best.is_none_or(|(_, b)| ts < b) {
                    best = Some((i, ts));
                }
            }
        }
        let Some((i, _)) = best else {
            super::position::clear();
            return None;
        };
        self.last = Some(i);
        for f in &mut self.files {
            f.take_secrets(secrets);
        }
        let shifts = &self.shifts;
        self.files.get(i).map(|f| {
            super::position::at(i, f.packets(), f.offset());
            Self::corrected(shifts, f.current())
        })
    }

    /// Advances file `i` and records its new head (or its end, with any fault as a warning).
    fn step(&mut self, i: usize, cov: &mut Coverage) {
        let (Some(file), Some(head)) = (self.files.get_mut(i), self.heads.get_mut(i)) else {
            return;
        };
        *head = match file.advance(cov) {
            Ok(true) => Some(Self::corrected(&self.shifts, file.current()).ts),
            Ok(false) => None,
            Err(e) => {
                cov.input_warnings.push(e.to_string());
                None
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn corpus(name: &str) -> PathBuf {
        crate::testing::corpus::path(name)
    }

    /// Merges the named files; returns (input, ts) per frame and the coverage.
    fn merge(names: &[&str]) -> (Vec<(u16, i64)>, Coverage) {
        let files = names
            .iter()
            .enumerate()
            .map(|(i, n)| CaptureFile::open(&corpus(n), i as u16).unwrap())
            .collect();
        let mut m = MergedCaptures::new(files);
        let mut cov = Coverage::default();
        let mut out = Vec::new();
        while let Some(f) = m.next_frame(&mut cov) {
            out.push((f.source.input, f.ts.nanos()));
        }
        assert!(m.next_frame(&mut cov).is_none(), "stays ended");
        (out, cov)
    }

    fn non_decreasing(v: &[(u16, i64)]) -> bool {
        v.windows(2).all(|w| w[0].1 <= w[1].1)
    }

    #[test]
    fn two_files_in_time_order() {
        if !crate::testing::corpus::require() {
            return;
        }
        // tshark | wc -l: zeek_http_get_nosyn.pcap 11 (2013), wireshark_http.cap.pcap 43 (2004)
        let (out, cov) = merge(&["zeek_http_get_nosyn.pcap", "wireshark_http.cap.pcap"]);
        assert_eq!(out.len(), 11 + 43);
        assert!(non_decreasing(&out));
        assert_eq!(out.iter().filter(|(i, _)| *i == 0).count(), 11);
        // The 2004 capture comes first although it is the second input.
        assert!(out[..43].iter().all(|(i, _)| *i == 1));
        assert_eq!((cov.files, cov.packets), (2, 54));
        assert!(cov.input_warnings.is_empty());
    }

    #[test]
    fn same_capture_twice_interleaves_with_ties_in_input_order() {
        if !crate::testing::corpus::require() {
            return;
        }
        let (out, _) = merge(&["arkime_bigendian.pcap", "arkime_bigendian.pcap"]);
        // tshark: 1335958313.152630000 and 1335958317.529201000
        let (a, b) = (1_335_958_313_152_630_000, 1_335_958_317_529_201_000);
        assert_eq!(out, vec![(0, a), (1, a), (0, b), (1, b)]);
    }

    #[test]
    fn a_faulty_file_ends_alone_with_a_warning() {
        if !crate::testing::corpus::require() {
            return;
        }
        // pfe_corrupted.pcap: 27 packets then a corrupt record (capinfos); the other file goes on.
        let (out, cov) = merge(&["pfe_corrupted.pcap", "zeek_pcapng-multi-interface.pcapng"]);
        assert_eq!(out.len(), 27 + 6);
        // All of the 2025 capture precedes the 2026 one. (Its packet 22 has timestamp 0,
        // per tshark; a file's own order is kept, so the whole stream is not monotonic.)
        assert!(out[..27].iter().all(|(i, _)| *i == 0));
        assert!(non_decreasing(&out[27..]));
        assert_eq!(cov.input_warnings.len(), 1);
        let w = &cov.input_warnings[0];
        assert!(
            w.contains("pfe_corrupted.pcap") && w.contains("corrupt"),
            "{w}"
        );
    }

    /// The second copy's clock put 4.5 s back: both its packets (b - 4.5 s < a) now come
    /// before the first copy's, each moved by exactly the shift.
    #[test]
    fn a_corrected_source_merges_by_its_corrected_time() {
        if !crate::testing::corpus::require() {
            return;
        }
        let files = (0..2)
            .map(|i| CaptureFile::open(&corpus("arkime_bigendian.pcap"), i).unwrap())
            .collect();
        let mut m = MergedCaptures::new(files);
        let shift = 4_500_000_000;
        m.set_clock_corrections(&[ClockCorrection {
            input: 1,
            interface: 0,
            shift_ns: shift,
            pairs: 10,
        }]);
        let mut cov = Coverage::default();
        let mut out = Vec::new();
        while let Some(f) = m.next_frame(&mut cov) {
            out.push((f.source.input, f.ts.nanos()));
        }
        let (a, b) = (1_335_958_313_152_630_000, 1_335_958_317_529_201_000);
        assert_eq!(out, vec![(1, a - shift), (1, b - shift), (0, a), (0, b)]);
    }

    #[test]
    fn no_files() {
        let mut m = MergedCaptures::new(Vec::new());
        assert!(m.next_frame(&mut Coverage::default()).is_none());
    }
}
