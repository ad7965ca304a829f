//! Several capture files merged into one stream in timestamp order (captures of one
//! incident taken on several nodes). Within one file, packets keep file order.

use super::{CaptureFile, Frame};
use crate::model::{Coverage, Timestamp};

pub struct MergedCaptures {
    files: Vec<CaptureFile>,
    /// Timestamp of each file's current packet; `None` once the file has ended.
    heads: Vec<Option<Timestamp>>,
    /// The file whose packet was returned last; it advances on the next call.
    last: Option<usize>,
    started: bool,
}

impl MergedCaptures {
    pub fn new(files: Vec<CaptureFile>) -> Self {
        let heads = vec![None; files.len()];
        MergedCaptures {
            files,
            heads,
            last: None,
            started: false,
        }
    }

    pub fn files(&self) -> &[CaptureFile] {
        &self.files
    }

    /// The next frame of all files, earliest timestamp first. A file's fault is recorded
    /// in `cov.input_warnings` (and on stderr by the caller) and that file then ends;
    /// the others go on.
    pub fn next_frame(&mut self, cov: &mut Coverage) -> Option<Frame<'_>> {
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
        let (i, _) = best?;
        self.last = Some(i);
        self.files.get(i).map(CaptureFile::current)
    }

    /// Advances file `i` and records its new head (or its end, with any fault as a warning).
    fn step(&mut self, i: usize, cov: &mut Coverage) {
        let (Some(file), Some(head)) = (self.files.get_mut(i), self.heads.get_mut(i)) else {
            return;
        };
        *head = match file.advance(cov) {
            Ok(true) => Some(file.current().ts),
            Ok(false) => None,
            Err(e) => {
                cov.input_warnings.push(e.to_string());
                None
            }
        };
    }
}
