//! One capture file: pcap (µs or ns, either byte order) or pcapng (several interfaces,
//! each with its own link type and resolution), plain or gzip-compressed, detected from
//! the bytes. Streams through a fixed buffer (pcap-parser's next/consume/refill loop).

use std::fs::File;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use pcap_parser::pcapng::{Block, OptionCode};
use pcap_parser::traits::{PcapNGPacketBlock, PcapReaderIterator};
use pcap_parser::{LegacyPcapReader, PcapBlockOwned, PcapError, PcapNGReader};

use super::input::{FillRead, ReadFault};
use super::record::{self, MAX_BLOCK, MAX_CAPLEN};
use super::sniff::{hex_prefix, sniff, Sniffed};
use super::tsresol::TsClock;
use super::{CaptureError, Frame, LinkType};
use crate::model::{Coverage, SourceId, Timestamp};

/// Read buffer to start with; one record must fit, so it grows (up to `MAX_BLOCK`) for a
/// larger legal one.
const BUF_SIZE: usize = 1 << 20;
/// Interfaces per section; more is a corrupt file, not a capture (bounds memory).
const MAX_INTERFACES: usize = 1 << 16;

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

/// A pcapng interface as its IDB described it.
#[derive(Clone, Copy, Debug)]
struct Interface {
    link: LinkType,
    clock: TsClock,
    snaplen: u32,
}

/// The packet `advance` moved to; its bytes are re-sliced from the reader's buffer by
/// offset, which stays valid until the next `consume`.
#[derive(Clone, Copy, Debug, Default)]
struct Current {
    ts: Timestamp,
    link: Option<LinkType>,
    interface: u32,
    orig_len: u32,
    start: usize,
    len: usize,
}

/// What one parsed block means, as owned values (the block borrows the reader).
enum Step {
    Packet(Current),
    PcapHeader(LinkType),
    Section {
        big_endian: bool,
    },
    Interface(Interface),
    /// A Decryption Secrets Block holding a TLS key log (its text, unpadded).
    Secrets(Vec<u8>),
    Skip,
    Eof,
    Fault(String),
}

pub struct CaptureFile {
    path: PathBuf,
    input: u16,
    format: CaptureFormat,
    gzipped: bool,
    reader: Box<dyn PcapReaderIterator + Send>,
    /// Read error that ended the stream early (a cut gzip stream, an I/O error).
    fault: ReadFault,
    capacity: usize,
    /// Byte order of the pcap file or of the current pcapng section.
    big_endian: bool,
    /// pcap: the file header has not been returned by the reader yet.
    awaiting_pcap_header: bool,
    pcap_link: LinkType,
    interfaces: Vec<Interface>,
    /// Interfaces of earlier sections: frames number interfaces across the whole file, so
    /// that two sections (two captures `cat`-ed together) never share a `SourceId`.
    iface_base: u32,
    cur: Current,
    has_current: bool,
    /// Length of the current record, consumed on the next `advance`.
    pending: usize,
    offset: u64,
    packets: u64,
    last_ts: Timestamp,
    counted: bool,
    done: bool,
    /// Key log text of Decryption Secrets Blocks read and not yet taken.
    secrets: Vec<u8>,
    /// Key log bytes read from this file so far (bounded by [`MAX_SECRETS_BYTES`]).
    secrets_total: usize,
}

/// Key log bytes kept from one file's Decryption Secrets Blocks; beyond it a block is
/// counted as dropped (a key log line is about 180 bytes: some 90,000 sessions).
pub const MAX_SECRETS_BYTES: usize = 16 << 20;
/// Secrets type of a TLS key log in a Decryption Secrets Block ("TLSK").
const SECRETS_TLS_KEY_LOG: u32 = 0x544c_534b;

impl CaptureFile {
    /// Opens and sniffs a capture. `input` is this file's index among the run's inputs
    /// (it becomes `SourceId::input` on every frame).
    pub fn open(path: &Path, input: u16) -> Result<CaptureFile, CaptureError> {
        let io_err = |source: io::Error| CaptureError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_err)?;
        let fault: ReadFault = ReadFault::default();
        let mut stream = FillRead::new(Box::new(file), fault.clone());
        let gzipped = sniff(stream.peek_head().map_err(io_err)?) == Sniffed::Gzip;
        if gzipped {
            // The raw head is replayed into the decoder; the decompressed head is sniffed.
            let decoder = MultiGzDecoder::new(stream);
            stream = FillRead::new(Box::new(decoder), fault.clone());
        }
        let head = stream.peek_head().map_err(io_err)?.to_vec();
        let sniffed = sniff(&head);
        let not_a_capture = || CaptureError::NotACapture {
            path: path.to_path_buf(),
            magic: hex_prefix(&head),
        };
        let header_fault = |e: PcapError<&[u8]>| match e {
            PcapError::Incomplete(_) | PcapError::UnexpectedEof | PcapError::Eof => {
                CaptureError::Truncated {
                    path: path.to_path_buf(),
                    offset: 0,
                    what: "file ends inside the file header".to_string(),
                }
            }
            other => CaptureError::Corrupt {
                path: path.to_path_buf(),
                offset: 0,
                what: format!("bad file header: {}", describe(&other)),
            },
        };
        let (format, big_endian, capacity, reader): (_, _, _, Box<dyn PcapReaderIterator + Send>) =
            match sniffed {
                Sniffed::Pcap { nanos, big_endian } => {
                    let r = LegacyPcapReader::new(BUF_SIZE, stream).map_err(header_fault)?;
                    (
                        CaptureFormat::Pcap { nanos, big_endian },
                        big_endian,
                        BUF_SIZE,
                        Box::new(r),
                    )
                }
                Sniffed::PcapNg { big_endian } => {
                    // The reader parses the whole SHB from its first fill: size it to fit.
                    let capacity = match record::pcapng_block_len(&head, big_endian) {
                        Ok(Some(len)) => BUF_SIZE.max(len),
                        Ok(None) => BUF_SIZE,
                        Err(what) => {
                            return Err(CaptureError::Corrupt {
                                path: path.to_path_buf(),
                                offset: 0,
                                what,
                            })
                        }
                    };
                    let r = PcapNGReader::new(capacity, stream).map_err(header_fault)?;
                    (CaptureFormat::PcapNg, big_endian, capacity, Box::new(r))
                }
                Sniffed::Gzip | Sniffed::Unknown => return Err(not_a_capture()),
            };
        Ok(CaptureFile {
            path: path.to_path_buf(),
            input,
            format,
            gzipped,
            reader,
            fault,
            capacity,
            big_endian,
            awaiting_pcap_header: matches!(format, CaptureFormat::Pcap { .. }),
            pcap_link: LinkType::Other(u32::MAX),
            interfaces: Vec::new(),
            iface_base: 0,
            cur: Current::default(),
            has_current: false,
            pending: 0,
            offset: 0,
            packets: 0,
            last_ts: Timestamp::default(),
            counted: false,
            done: false,
            secrets: Vec::new(),
            secrets_total: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn format(&self) -> CaptureFormat {
        self.format
    }

    /// Whether the file was gzip-compressed.
    pub fn gzipped(&self) -> bool {
        self.gzipped
    }

    /// Moves to the next packet, consuming the current one. `Ok(false)` at the end of the
    /// input. A fault (truncation, corrupt block) is returned once as `Err` naming the byte
    /// offset; after it the file reports end of input. Non-packet blocks are handled here.
    pub fn advance(&mut self, cov: &mut Coverage) -> Result<bool, CaptureError> {
        if !self.counted {
            self.counted = true;
            cov.files += 1;
        }
        self.has_current = false;
        if self.done {
            return Ok(false);
        }
        let pending = std::mem::take(&mut self.pending);
        self.consume(pending);
        loop {
            if !self.awaiting_pcap_header {
                let data = self.reader.data();
                let declared = match self.format {
                    CaptureFormat::Pcap { .. } => record::pcap_record_len(data, self.big_endian),
                    CaptureFormat::PcapNg => record::pcapng_block_len(data, self.big_endian),
                };
                match declared {
                    Err(what) => return Err(self.corrupt(what)),
                    Ok(Some(len)) if len <= data.len() => {}
                    Ok(need) => {
                        self.fill(need)?;
                        if self.done {
                            return Ok(false);
                        }
                        continue;
                    }
                }
            }
            let (len, step) = self.read_block();
            match step {
                Step::Packet(cur) => {
                    self.pending = len;
                    self.cur = cur;
                    self.has_current = true;
                    self.last_ts = cur.ts;
                    self.packets += 1;
                    cov.packets += 1;
                    cov.bytes += cur.len as u64;
                    if (cur.len as u64) < u64::from(cur.orig_len) {
                        cov.truncated_snaplen += 1;
                    }
                    return Ok(true);
                }
                Step::PcapHeader(link) => {
                    self.pcap_link = link;
                    self.awaiting_pcap_header = false;
                }
                Step::Section { big_endian } => {
                    self.big_endian = big_endian;
                    self.iface_base = self.iface_base.saturating_add(self.interfaces.len() as u32);
                    self.interfaces.clear();
                }
                Step::Interface(iface) => {
                    if self.interfaces.len() >= MAX_INTERFACES {
                        return Err(self.corrupt(format!("more than {MAX_INTERFACES} interfaces")));
                    }
                    self.interfaces.push(iface);
                }
                Step::Secrets(text) => {
                    if self.secrets_total + text.len() <= MAX_SECRETS_BYTES {
                        self.secrets_total += text.len();
                        self.secrets.extend_from_slice(&text);
                        self.secrets.push(b'\n');
                        cov.tls_secrets_blocks += 1;
                    } else {
                        cov.tls_secrets_blocks_dropped += 1;
                    }
                }
                Step::Skip => {}
                Step::Eof => {
                    self.end_of_stream(None)?;
                    return Ok(false);
                }
                Step::Fault(what) => return Err(self.corrupt(what)),
            }
            self.consume(len);
        }
    }

    /// Moves the key log text of the Decryption Secrets Blocks read so far into `into`.
    pub fn take_secrets(&mut self, into: &mut Vec<u8>) {
        if !self.secrets.is_empty() {
            into.append(&mut self.secrets);
        }
    }

    /// The packet `advance` moved to. Only valid after `advance` returned `Ok(true)`
    /// (otherwise an empty frame).
    pub fn current(&self) -> Frame<'_> {
        let data = if self.has_current {
            self.reader
                .data()
                .get(self.cur.start..)
                .and_then(|d| d.get(..self.cur.len))
                .unwrap_or(&[])
        } else {
            &[]
        };
        Frame {
            ts: self.cur.ts,
            link: self.cur.link.unwrap_or(self.pcap_link),
            source: SourceId {
                input: self.input,
                interface: self.iface_base.saturating_add(self.cur.interface),
            },
            orig_len: self.cur.orig_len,
            data,
        }
    }

    /// Packets returned so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Bytes of the (decompressed) capture consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn consume(&mut self, len: usize) {
        if len > 0 {
            self.reader.consume(len);
            self.offset += len as u64;
        }
    }

    /// Gets more bytes for a record of `need` bytes (unknown while its header is short):
    /// grows the buffer if the record cannot fit, else refills. At end of input, ends the
    /// file: cleanly if nothing is left over, else as a truncation.
    fn fill(&mut self, need: Option<usize>) -> Result<(), CaptureError> {
        let have = self.reader.data().len();
        if self.reader.reader_exhausted() {
            let cut = (have > 0).then(|| {
                let kind = match self.format {
                    CaptureFormat::Pcap { .. } => "record",
                    CaptureFormat::PcapNg => "block",
                };
                match need {
                    Some(n) => format!("file ends {have} bytes into a {n}-byte {kind}"),
                    None => format!("file ends {have} bytes into a {kind} header"),
                }
            });
            return self.end_of_stream(cut);
        }
        if let Some(n) = need {
            if n > self.capacity {
                // Legal but larger than the buffer: grow, bounded by the record checks.
                let cap = n.next_power_of_two().clamp(n, MAX_BLOCK.max(n));
                self.reader.grow(cap);
                self.capacity = cap;
            }
        }
        if self.reader.refill().is_err() {
            // FillRead never fails (it keeps the error and ends the stream); be safe anyway.
            return Err(self.fail(CaptureError::Io {
                path: self.path.clone(),
                source: io::Error::other("read failed"),
            }));
        }
        if self.reader.data().len() == have && !self.reader.reader_exhausted() {
            // No progress and no end: the buffer cannot take more. Never loop on it.
            return Err(self.corrupt("record does not fit the read buffer".to_string()));
        }
        Ok(())
    }

    /// Ends the file. `cut` describes leftover bytes of an incomplete record. A read error
    /// that stopped the stream takes precedence: a gzip stream cut short is a truncation,
    /// anything else an I/O error.
    fn end_of_stream(&mut self, cut: Option<String>) -> Result<(), CaptureError> {
        self.done = true;
        let path = self.path.clone();
        let offset = self.offset;
        match (self.fault.get(), cut) {
            (Some(e), cut) if e.kind() == io::ErrorKind::UnexpectedEof => {
                let what = match cut {
                    Some(c) => format!("{c} (compressed stream ends early)"),
                    None => "compressed stream ends early".to_string(),
                };
                Err(CaptureError::Truncated { path, offset, what })
            }
            (Some(e), _) => Err(CaptureError::Io {
                path,
                source: io::Error::new(e.kind(), e.to_string()),
            }),
            (None, Some(what)) => Err(CaptureError::Truncated { path, offset, what }),
            (None, None) => Ok(()),
        }
    }

    fn corrupt(&mut self, what: String) -> CaptureError {
        let e = CaptureError::Corrupt {
            path: self.path.clone(),
            offset: self.offset,
            what,
        };
        self.fail(e)
    }

    fn fail(&mut self, e: CaptureError) -> CaptureError {
        self.done = true;
        self.has_current = false;
        e
    }

    /// Parses the complete record at the start of the buffer. pcap-parser is called only
    /// on a complete record, and a panic inside it becomes a corrupt record.
    fn read_block(&mut self) -> (usize, Step) {
        let base = self.reader.data().as_ptr() as usize;
        let avail = self.reader.data().len();
        let ctx = Ctx {
            interfaces: &self.interfaces,
            nanos: matches!(self.format, CaptureFormat::Pcap { nanos: true, .. }),
            big_endian: self.big_endian,
            last_ts: self.last_ts,
        };
        let reader = &mut self.reader;
        let res = catch_unwind(AssertUnwindSafe(|| match reader.next() {
            Ok((len, block)) => {
                let step = classify(&ctx, block);
                // Packet bytes must lie inside this record, in the buffer.
                match step {
                    Step::Packet(mut cur) => {
                        let rebased = cur.start.checked_sub(base);
                        cur.start = rebased.unwrap_or(usize::MAX);
                        if rebased
                            .and_then(|s| s.checked_add(cur.len))
                            .is_some_and(|end| end <= len.min(avail))
                        {
                            (len, Step::Packet(cur))
                        } else {
                            (0, Step::Fault("packet data outside its record".to_string()))
                        }
                    }
                    other => (len, other),
                }
            }
            Err(PcapError::Eof) => (0, Step::Eof),
            // The whole declared record is in the buffer, so "incomplete" means its fields
            // claim more than its length.
            Err(
                e @ (PcapError::Incomplete(_)
                | PcapError::UnexpectedEof
                | PcapError::BufferTooSmall),
            ) => (
                0,
                Step::Fault(format!(
                    "fields overrun the declared length ({})",
                    describe(&e)
                )),
            ),
            Err(e) => (0, Step::Fault(describe(&e))),
        }));
        match res {
            Ok((len, step)) if len > 0 || matches!(step, Step::Eof | Step::Fault(_)) => (len, step),
            // A parser that consumes nothing would loop forever.
            Ok(_) => (0, Step::Fault("parser made no progress".to_string())),
            Err(_) => (0, Step::Fault("parser failed on this record".to_string())),
        }
    }
}

/// Read-only state `classify` needs.
struct Ctx<'a> {
    interfaces: &'a [Interface],
    nanos: bool,
    big_endian: bool,
    last_ts: Timestamp,
}

/// Turns a parsed block into an owned `Step`. Packet offsets are still absolute addresses
/// here (`start` is the data pointer); the caller rebases them.
fn classify(ctx: &Ctx<'_>, block: PcapBlockOwned<'_>) -> Step {
    match block {
        PcapBlockOwned::LegacyHeader(h) => {
            // The upper 16 bits of the field carry FCS flags (libpcap's LT_LINKTYPE).
            Step::PcapHeader(LinkType::from_linktype(h.network.0 as u32 & 0xffff))
        }
        PcapBlockOwned::Legacy(b) => {
            let frac = i64::from(b.ts_usec) * if ctx.nanos { 1 } else { 1_000 };
            let ts = Timestamp::from_nanos(i64::from(b.ts_sec) * 1_000_000_000 + frac);
            packet(ts, None, 0, b.origlen, b.data)
        }
        PcapBlockOwned::NG(block) => classify_ng(ctx, block),
    }
}

fn classify_ng(ctx: &Ctx<'_>, block: Block<'_>) -> Step {
    match block {
        Block::SectionHeader(shb) => Step::Section {
            big_endian: shb.big_endian(),
        },
        Block::InterfaceDescription(idb) => {
            let mut clock = (6u8, 0i64);
            for opt in &idb.options {
                let value = opt.as_bytes().unwrap_or(&[]);
                match opt.code {
                    OptionCode::IfTsresol => {
                        if let Some(&r) = value.first() {
                            clock.0 = r;
                        }
                    }
                    OptionCode::IfTsoffset => {
                        if let Some(b) = value.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
                            clock.1 = if ctx.big_endian {
                                i64::from_be_bytes(b)
                            } else {
                                i64::from_le_bytes(b)
                            };
                        }
                    }
                    _ => {}
                }
            }
            Step::Interface(Interface {
                link: LinkType::from_linktype(u32::from(idb.linktype.0 as u16)),
                clock: TsClock::new(clock.0, clock.1),
                snaplen: idb.snaplen,
            })
        }
        Block::EnhancedPacket(epb) => {
            let Some(iface) = ctx.interfaces.get(epb.if_id as usize) else {
                return no_interface(epb.if_id, ctx.interfaces.len());
            };
            if epb.caplen > MAX_CAPLEN {
                return Step::Fault(format!(
                    "block claims a {}-byte packet, more than the {MAX_CAPLEN}-byte maximum",
                    epb.caplen
                ));
            }
            if epb.caplen as usize > epb.data.len() {
                return Step::Fault(format!(
                    "packet of {} bytes larger than its block",
                    epb.caplen
                ));
            }
            let ts = iface
                .clock
                .to_timestamp((u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low));
            packet(
                ts,
                Some(iface.link),
                epb.if_id,
                epb.origlen,
                epb.packet_data(),
            )
        }
        Block::SimplePacket(spb) => {
            let Some(iface) = ctx.interfaces.first() else {
                return no_interface(0, 0);
            };
            // Captured length = min(original, snaplen); the rest of the body is padding.
            let mut data = spb.packet_data();
            if iface.snaplen > 0 {
                data = data.get(..iface.snaplen as usize).unwrap_or(data);
            }
            // An SPB carries no timestamp: keep the file's last one so the merge order holds.
            packet(ctx.last_ts, Some(iface.link), 0, spb.origlen, data)
        }
        Block::Unknown(ub) => {
            // pcap-parser reads the type little-endian for every section.
            let block_type = if ctx.big_endian {
                ub.block_type.swap_bytes()
            } else {
                ub.block_type
            };
            if block_type != record::OBSOLETE_PACKET_BLOCK {
                return Step::Skip;
            }
            let p = match record::obsolete_packet(ub.data, ctx.big_endian) {
                Ok(p) => p,
                Err(what) => return Step::Fault(what),
            };
            let Some(iface) = ctx.interfaces.get(usize::from(p.if_id)) else {
                return no_interface(u32::from(p.if_id), ctx.interfaces.len());
            };
            let data = ub
                .data
                .get(p.data_at..p.data_at + p.caplen as usize)
                .unwrap_or(&[]);
            packet(
                iface.clock.to_timestamp(p.ts_units),
                Some(iface.link),
                u32::from(p.if_id),
                p.origlen,
                data,
            )
        }
        Block::DecryptionSecrets(dsb) if dsb.secrets_type.0 == SECRETS_TLS_KEY_LOG => dsb
            .data
            .get(..dsb.secrets_len as usize)
            .map_or(Step::Skip, |d| Step::Secrets(d.to_vec())),
        // Name resolution, statistics, other secrets, custom, process info, journal.
        _ => Step::Skip,
    }
}

fn no_interface(id: u32, count: usize) -> Step {
    Step::Fault(format!(
        "packet for interface {id}, but {count} interface(s) described"
    ))
}

/// A packet step; `start` holds the data's address until `read_block` rebases it.
fn packet(
    ts: Timestamp,
    link: Option<LinkType>,
    interface: u32,
    origlen: u32,
    data: &[u8],
) -> Step {
    Step::Packet(Current {
        ts,
        link,
        interface,
        // Keep `data.len() <= orig_len` for the stages below, whatever the file claims.
        orig_len: origlen.max(data.len() as u32),
        start: data.as_ptr() as usize,
        len: data.len(),
    })
}

/// A parser error without the input bytes pcap-parser's Display would print (they may be
/// packet content).
fn describe(e: &PcapError<&[u8]>) -> String {
    match e {
        PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
            format!("unparseable record ({kind:?})")
        }
        PcapError::Eof => "end of file".to_string(),
        PcapError::BufferTooSmall => "record larger than the read buffer".to_string(),
        PcapError::UnexpectedEof | PcapError::Incomplete(_) => "record incomplete".to_string(),
        PcapError::ReadError => "read error".to_string(),
        PcapError::HeaderNotRecognized => "header not recognized".to_string(),
    }
}

#[cfg(test)]
mod tests;
