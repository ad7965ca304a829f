//! Errors of the capture layer. Each names the file and, where it applies, the byte offset.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a pcap or pcapng capture (first bytes {magic})")]
    NotACapture { path: PathBuf, magic: String },
    /// The file ends inside a block: the writer was stopped mid-write.
    #[error("{path}: capture cut short at byte {offset}: {what}")]
    Truncated {
        path: PathBuf,
        offset: u64,
        what: String,
    },
    /// A block or record whose fields are impossible (lengths that lie, bad magic).
    #[error("{path}: corrupt capture at byte {offset}: {what}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        what: String,
    },
}
