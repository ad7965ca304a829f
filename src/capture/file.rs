//! One capture file: pcap (µs or ns, either byte order) or pcapng (several interfaces,
//! each with its own link type and resolution), plain or gzip-compressed, detected from
//! the bytes. Streams through a fixed buffer (pcap-parser's next/consume/refill loop).

use std::path::{Path, PathBuf};

use super::{CaptureError, Frame};
use crate::model::Coverage;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureFormat {
    Pcap { nanos: bool, big_endian: bool },
    PcapNg,
}

impl CaptureFormat {
    pub const fn name(self) -> &'static str {
        match self {
            CaptureFormat::Pcap { .. } => "pcap",
            CaptureFormat::PcapNg => "pcapng",
        }
    }
}

pub struct CaptureFile {
    path: PathBuf,
    // implementation state: reader, buffer, interfaces, offsets
}

impl CaptureFile {
    /// Opens and sniffs a capture. `input` is this file's index among the run's inputs
    /// (it becomes `SourceId::input` on every frame).
    pub fn open(path: &Path, input: u16) -> Result<CaptureFile, CaptureError> {
        let _ = (path, input);
        todo!("capture::file::open")
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn format(&self) -> CaptureFormat {
        todo!()
    }

    /// Whether the file was gzip-compressed.
    pub fn gzipped(&self) -> bool {
        todo!()
    }

    /// Moves to the next packet, consuming the current one. `Ok(false)` at the end of the
    /// input. A fault (truncation, corrupt block) is returned once as `Err` naming the byte
    /// offset; after it the file reports end of input. Non-packet blocks are handled here.
    pub fn advance(&mut self, cov: &mut Coverage) -> Result<bool, CaptureError> {
        let _ = cov;
        todo!()
    }

    /// The packet `advance` moved to. Only valid after `advance` returned `Ok(true)`.
    pub fn current(&self) -> Frame<'_> {
        todo!()
    }

    /// Packets returned so far.
    pub fn packets(&self) -> u64 {
        todo!()
    }

    /// Bytes of the (decompressed) capture consumed so far.
    pub fn offset(&self) -> u64 {
        todo!()
    }
}
