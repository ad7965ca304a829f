//! Capture: the source of frames. Reads pcap and pcapng files (gzip-compressed or not,
//! format detected from the bytes), one packet at a time, and merges several files in
//! timestamp order. Frames borrow the reader's buffer: nothing is copied here.

pub mod error;
pub mod file;
pub mod input;
pub mod linktype;
pub mod live;
pub mod merge;
pub mod position;
pub mod record;
pub mod sniff;
pub mod tsresol;

pub use error::CaptureError;
pub use file::{CaptureFile, CaptureFormat};
pub use linktype::LinkType;
pub use merge::MergedCaptures;

use crate::model::{Coverage, SourceId, Timestamp};

/// Where the pipeline takes its frames from: capture files (`MergedCaptures`) or live
/// interfaces (`live::LiveCapture`). Both count what they read into `cov`.
pub trait FrameSource {
    /// The next frame, or `None` when the source has ended.
    fn next_frame(&mut self, cov: &mut Coverage) -> Option<Frame<'_>>;

    /// [`FrameSource::next_frame`], also moving into `secrets` the TLS key log text met
    /// before the frame (pcapng Decryption Secrets Blocks); a source without any leaves
    /// it empty.
    fn next_frame_and_secrets(
        &mut self,
        cov: &mut Coverage,
        _secrets: &mut Vec<u8>,
    ) -> Option<Frame<'_>> {
        self.next_frame(cov)
    }
}

impl FrameSource for MergedCaptures {
    fn next_frame(&mut self, cov: &mut Coverage) -> Option<Frame<'_>> {
        MergedCaptures::next_frame(self, cov)
    }

    fn next_frame_and_secrets(
        &mut self,
        cov: &mut Coverage,
        secrets: &mut Vec<u8>,
    ) -> Option<Frame<'_>> {
        MergedCaptures::next_frame_and_secrets(self, cov, secrets)
    }
}

/// One captured frame, borrowed from the reader's buffer until the reader advances.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    pub ts: Timestamp,
    pub link: LinkType,
    pub source: SourceId,
    /// Length of the frame on the wire; `data.len()` is less when snaplen cut it.
    pub orig_len: u32,
    pub data: &'a [u8],
}
