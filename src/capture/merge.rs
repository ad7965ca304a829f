//! Several capture files merged into one stream in timestamp order (captures of one
//! incident taken on several nodes). Within one file, packets keep file order.

use super::{CaptureFile, Frame};
use crate::model::Coverage;

pub struct MergedCaptures {
    files: Vec<CaptureFile>,
}

impl MergedCaptures {
    pub fn new(files: Vec<CaptureFile>) -> Self {
        MergedCaptures { files }
    }

    pub fn files(&self) -> &[CaptureFile] {
        &self.files
    }

    /// The next frame of all files, earliest timestamp first. A file's fault is recorded
    /// in `cov.input_warnings` (and on stderr by the caller) and that file then ends;
    /// the others go on.
    pub fn next_frame(&mut self, cov: &mut Coverage) -> Option<Frame<'_>> {
        let _ = cov;
        todo!()
    }
}
