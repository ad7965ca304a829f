//! `--write`: a pcapng of the packets a live run analysed, for later re-analysis or
//! `diff`. Blocks are serialized by pcap-parser (`ToVec`); the file stops growing at its
//! size bound and the packets left out are counted.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use pcap_parser::pcapng::{EnhancedPacketBlock, InterfaceDescriptionBlock, SectionHeaderBlock};
use pcap_parser::{Linktype, OptionCode, PcapNGOption, ToVec};

/// One interface of the file: its name, libpcap link type and snaplen.
pub struct WriterInterface<'a> {
    pub name: &'a str,
    pub linktype: i32,
    pub snaplen: u32,
}

pub struct PcapngWriter {
    path: PathBuf,
    out: BufWriter<File>,
    written_bytes: u64,
    max_bytes: u64,
}

/// pcap-parser's serialization error (cookie-factory's, not re-exported) as an I/O error.
fn gen_error<E: std::fmt::Debug>(e: E) -> io::Error {
    io::Error::other(format!("pcapng serialization: {e:?}"))
}

impl PcapngWriter {
    /// Creates `path` with a section header and one interface description per interface
    /// (interface ids in the order given); timestamps are in nanoseconds.
    pub fn create(
        path: &Path,
        interfaces: &[WriterInterface<'_>],
        max_bytes: u64,
    ) -> io::Result<PcapngWriter> {
        let mut out = BufWriter::new(File::create(path)?);
        let mut shb = SectionHeaderBlock {
            block_type: 0,
            block_len1: 0,
            bom: 0,
            major_version: 1,
            minor_version: 0,
            section_len: -1,
            options: vec![PcapNGOption {
                code: OptionCode::ShbUserAppl,
                len: 8,
                value: Cow::Borrowed(b"linkrank"),
            }],
            block_len2: 0,
        };
        let mut header = shb.to_vec().map_err(gen_error)?;
        for iface in interfaces {
            let mut idb = InterfaceDescriptionBlock {
                block_type: 0,
                block_len1: 0,
                linktype: Linktype(iface.linktype),
                reserved: 0,
                snaplen: iface.snaplen,
                options: vec![PcapNGOption {
                    code: OptionCode::IfName,
                    // `fix` sets the block lengths, not the options'.
                    len: u16::try_from(iface.name.len()).unwrap_or(u16::MAX),
                    value: Cow::Borrowed(iface.name.as_bytes()),
                }],
                block_len2: 0,
                if_tsresol: 9,
                if_tsoffset: 0,
            };
            header.extend(idb.to_vec().map_err(gen_error)?);
        }
        out.write_all(&header)?;
        Ok(PcapngWriter {
            path: path.to_path_buf(),
            out,
            written_bytes: header.len() as u64,
            max_bytes,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one packet; `Ok(false)` when it would take the file past its bound (the
    /// packet is left out, later smaller ones may still fit).
    pub fn write(
        &mut self,
        interface: u32,
        ts_ns: i64,
        orig_len: u32,
        data: &[u8],
    ) -> io::Result<bool> {
        // Block: 32 bytes of fields and lengths, the data padded to 4 bytes, no options.
        let block_len = 32 + data.len().next_multiple_of(4) as u64;
        if self.written_bytes + block_len > self.max_bytes {
            return Ok(false);
        }
        let ts = ts_ns.max(0) as u64;
        let mut epb = EnhancedPacketBlock {
            block_type: 0,
            block_len1: 0,
            if_id: interface,
            ts_high: (ts >> 32) as u32,
            ts_low: ts as u32,
            caplen: data.len() as u32,
            origlen: orig_len,
            data,
            options: Vec::new(),
            block_len2: 0,
        };
        let bytes = epb.to_vec().map_err(gen_error)?;
        self.out.write_all(&bytes)?;
        self.written_bytes += bytes.len() as u64;
        Ok(true)
    }

    pub fn finish(mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out
            .into_inner()
            .map_err(|e| e.into_error())?
            .sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::capture::CaptureFile;
    use crate::model::Coverage;

    /// What is written reads back through linkrank's own file reader with the same
    /// timestamps, lengths and bytes, and the size bound holds.
    #[test]
    fn written_packets_read_back_and_the_bound_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.pcapng");
        let ifaces = [
            WriterInterface {
                name: "veth0",
                linktype: 1,
                snaplen: 65535,
            },
            WriterInterface {
                name: "lo",
                linktype: 1,
                snaplen: 65535,
            },
        ];
        let mut w = PcapngWriter::create(&path, &ifaces, 400).unwrap();
        let a: Vec<u8> = (0u8..61).collect();
        assert!(w.write(0, 1_700_000_000_123_456_789, 61, &a).unwrap());
        assert!(w
            .write(1, 1_700_000_001_000_000_001, 1500, &a[..10])
            .unwrap());
        // 200 bytes of data cannot fit in what is left of 400 bytes.
        assert!(!w
            .write(0, 1_700_000_002_000_000_000, 200, &[7; 200])
            .unwrap());
        w.finish().unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() <= 400);

        let mut f = CaptureFile::open(&path, 0).unwrap();
        let mut cov = Coverage::default();
        assert!(f.advance(&mut cov).unwrap());
        let p = f.current();
        assert_eq!(
            (p.ts.nanos(), p.orig_len, p.data, p.source.interface),
            (1_700_000_000_123_456_789, 61, &a[..], 0)
        );
        assert!(f.advance(&mut cov).unwrap());
        let p = f.current();
        assert_eq!(
            (p.ts.nanos(), p.orig_len, p.data, p.source.interface),
            (1_700_000_001_000_000_001, 1500, &a[..10], 1)
        );
        assert!(!f.advance(&mut cov).unwrap());
        assert_eq!(cov.truncated_snaplen, 1);
    }
}
