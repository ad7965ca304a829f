//! Live capture: frames read from network interfaces with libpcap (feature `live`),
//! handed to the pipeline through the same `FrameSource` seam as capture files.
//!
//! One thread per interface reads packets (libpcap blocks) and sends owned copies over a
//! bounded channel; the pipeline thread takes them in arrival order. When the pipeline
//! falls behind the channel fills, the reader threads block and the kernel buffer
//! overflows: those losses are libpcap's `dropped` counter, reported per interface.

use std::path::PathBuf;
use std::time::Duration;

#[cfg(feature = "live")]
mod source;
#[cfg(feature = "live")]
mod writer;

#[cfg(feature = "live")]
pub use source::{LiveCapture, LiveWindow};
#[cfg(feature = "live")]
pub use writer::PcapngWriter;

/// Default bytes kept of each packet: all of any frame on a usual interface.
pub const DEFAULT_SNAPLEN: u32 = 262_144;
/// Default size bound of the `--write` pcapng.
pub const DEFAULT_WRITE_MAX_BYTES: u64 = 1 << 30;

/// The settings of one live capture (`analyze --interface`).
#[derive(Clone, Debug, PartialEq)]
pub struct LiveConfig {
    pub interfaces: Vec<String>,
    /// Stop after this long (wall clock); `None`: until the packet limit or a signal.
    pub duration: Option<Duration>,
    /// Stop after this many packets analysed (across interfaces).
    pub packets: Option<u64>,
    /// A libpcap filter expression applied on every interface.
    pub bpf: Option<String>,
    pub snaplen: u32,
    /// A pcapng of every packet analysed, up to `write_max_bytes`.
    pub write: Option<PathBuf>,
    pub write_max_bytes: u64,
}

impl LiveConfig {
    pub fn new(interfaces: Vec<String>) -> LiveConfig {
        LiveConfig {
            interfaces,
            duration: None,
            packets: None,
            bpf: None,
            snaplen: DEFAULT_SNAPLEN,
            write: None,
            write_max_bytes: DEFAULT_WRITE_MAX_BYTES,
        }
    }

    /// What is captured, as the terminal says it: the interfaces and the filter in use.
    pub fn describe(&self) -> String {
        let interfaces = self.interfaces.join(", ");
        match &self.bpf {
            Some(f) => format!("{interfaces}, filter {f:?}"),
            None => interfaces,
        }
    }
}

/// Why a live capture could not start.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(
        "capturing on {interface} is not permitted: it needs CAP_NET_RAW (run as root, or \
         `setcap cap_net_raw,cap_net_admin=eip` on the linkrank binary) ({detail})"
    )]
    Permission { interface: String, detail: String },
    #[error("cannot capture on {interface}: {detail}")]
    Open { interface: String, detail: String },
    #[error("bad --bpf filter {filter:?} on {interface}: {detail}")]
    Filter {
        interface: String,
        filter: String,
        detail: String,
    },
    #[error("{path}: cannot write the pcapng: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Whether a libpcap error text is a refused permission (`pcap_activate` returns
/// PCAP_ERROR_PERM_DENIED, whose message libpcap words in a few ways).
pub fn is_permission_error(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("permission") || t.contains("not permitted")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_errors_are_told_apart() {
        // libpcap 1.10's texts for PCAP_ERROR_PERM_DENIED and for a missing device.
        assert!(is_permission_error(
            "eth0: You don't have permission to perform this capture on that device \
             (socket: Operation not permitted)"
        ));
        assert!(!is_permission_error(
            "nosuch0: No such device exists (No such device exists)"
        ));
        let e = LiveError::Permission {
            interface: "eth0".into(),
            detail: "x".into(),
        };
        assert!(e.to_string().contains("CAP_NET_RAW"), "{e}");
    }
}
