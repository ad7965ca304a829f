//! Fuzz harnesses: one `pub fn` per `cargo fuzz` target of `fuzz/` (see docs/fuzzing.md).
//!
//! Each runs linkrank's own code on arbitrary bytes and checks invariants with `assert!`,
//! so that a violated invariant panics and libFuzzer reports it as a crash. They live in
//! the library, not in the fuzz crate, so that `tests/it/fuzz_replay.rs` replays the
//! committed corpora (`fuzz/corpus-committed/<target>/`) with a plain `cargo test`.
//!
//! Readers that only take paths (captures, trace files) get each input as a temporary
//! file in `std::env::temp_dir()`, removed afterwards (`scripts/fuzz.sh` points `TMPDIR`
//! at a tmpfs). Inputs that encode a structure (frames, TCP segments) are documented on
//! their harness; a committed corpus depends on those layouts and on the order of
//! [`flow_dictionary`]'s entries, so both only ever grow at the end.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use etherparse::PacketBuilder;
use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
use flate2::Compression;

use crate::analysis::identity::services_file::Matcher;
use crate::analysis::identity::{
    normalise_hostname, service_of_hostname, K8sInventory, ServicesFile,
};
use crate::app::{run_pipeline, PipelineConfig};
use crate::ingest::capture::record::MAX_CAPLEN;
use crate::ingest::capture::{CaptureError, CaptureFile, Frame, LinkType, MergedCaptures};
use crate::ingest::decode::{DecodeConfig, Decoder, Packet, TcpFlags};
use crate::ingest::dns::{DnsConfig, DnsStage};
use crate::ingest::flow::tcp::seq_diff;
use crate::ingest::flow::{EventKind, FlowConfig, FlowTable, Interest, StreamEvent};
use crate::ingest::h2cost::Replay;
use crate::ingest::http::body::Chunked;
use crate::ingest::http::coding::Decoder as BodyDecoder;
use crate::ingest::http::h1::{H1Conn, Sink};
use crate::ingest::http::head::{self, Head, Parsed};
use crate::ingest::http::{detect, route, HttpConfig, HttpStage, Record};
use crate::ingest::serialization::{Sampler, SamplerConfig};
use crate::ingest::traces::{self, Limits, TraceCoverage, TraceError, TraceFormat, TraceSet};
use crate::model::{
    CloseReason, Completeness, ConnId, Connection, Coverage, Direction, Endpoint, Exchange,
    SourceId, TcpSummary, Timestamp,
};

/// One harness: runs linkrank's code on one input, panicking on a broken invariant.
pub type Harness = fn(&[u8]);

/// Every target by the name of its `fuzz/fuzz_targets/<name>.rs` and corpus directory.
pub const TARGETS: &[(&str, Harness)] = &[
    ("capture_reader", capture_reader),
    ("decode_frame", decode_frame),
    ("tcp_http_flow", tcp_http_flow),
    ("http1", http1),
    ("http2", http2),
    ("trace_otlp_json", trace_otlp_json),
    ("trace_otlp_proto", trace_otlp_proto),
    ("trace_jaeger", trace_jaeger),
    ("trace_zipkin", trace_zipkin),
    ("services_yaml", services_yaml),
    ("k8s_json", k8s_json),
];

const NS: i64 = 1_000_000_000;
/// Capture time of the first frame the structured harnesses build (2020-09-13).
const T0: i64 = 1_600_000_000 * NS;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

// ---------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------

/// A temporary file holding one input, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(bytes: &[u8]) -> TempFile {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("linkrank-fuzz-{}-{n}", std::process::id());
        let path = std::env::temp_dir().join(name);
        if let Err(e) = std::fs::write(&path, bytes) {
            panic!("fuzz harness: cannot write {}: {e}", path.display());
        }
        TempFile(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(bytes).expect("gzip into memory");
    e.finish().expect("gzip into memory")
}

fn zlib(bytes: &[u8]) -> Vec<u8> {
    let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).expect("zlib into memory");
    e.finish().expect("zlib into memory")
}

fn raw_deflate(bytes: &[u8]) -> Vec<u8> {
    let mut e = DeflateEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).expect("deflate into memory");
    e.finish().expect("deflate into memory")
}

/// FNV-1a: choices that vary with the input without consuming its bytes.
fn hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// xorshift64*: split points and event choices derived from a seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng((seed ^ 0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Up to `k` distinct cut points strictly inside `0..len`, in order.
fn cut_points(len: usize, rng: &mut Rng, k: usize) -> Vec<usize> {
    if len < 2 {
        return Vec::new();
    }
    let mut cuts: Vec<usize> = (0..k)
        .map(|_| 1 + (rng.next_u64() % (len as u64 - 1)) as usize)
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

/// `bytes` cut at `cuts` (from [`cut_points`]); no piece is empty.
fn split_at_points<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut pieces = Vec::with_capacity(cuts.len() + 1);
    let mut at = 0;
    for &c in cuts.iter().chain(std::iter::once(&bytes.len())) {
        if c > at {
            pieces.push(&bytes[at..c]);
            at = c;
        }
    }
    pieces
}

/// Lower-case hex of `len` digits, not all zero (trace and span ids).
fn is_id_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
        && s.bytes().any(|c| c != b'0')
}

fn longest_digit_run(s: &str) -> usize {
    s.as_bytes()
        .split(|c| !c.is_ascii_digit())
        .map(<[u8]>::len)
        .max()
        .unwrap_or(0)
}

/// What a route may hold (docs/engine.md, Privacy): no query, fragment, matrix
/// parameter or address, no number of four digits or more; and templating it again
/// leaves it as it is.
fn check_route(r: &str) {
    assert!(
        !r.contains(['?', '#', ';', '@']),
        "a route keeps a query, fragment, parameter or address: {r:?}"
    );
    assert!(
        longest_digit_run(r) < 4,
        "a route keeps a number of four digits or more: {r:?}"
    );
    assert_eq!(route::template(r), r, "templating a route again changes it");
}

fn has_upper(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_uppercase())
}

/// `LINKRANK_FUZZ_TRACE` set: the structured harnesses print what they build and see
/// (to read a crash input; see docs/fuzzing.md).
fn tracing() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("LINKRANK_FUZZ_TRACE").is_some())
}

// ---------------------------------------------------------------------------------------
// capture_reader
// ---------------------------------------------------------------------------------------

/// Arbitrary bytes as a capture file (pcap, pcapng, gzip) read frame by frame to the end
/// or the fault: counters, offsets and lengths agree, an ended file stays ended, the same
/// bytes gzip-compressed read the same (cut short: a prefix of the frames and a fault),
/// and two copies merged give each copy's frames in order.
pub fn capture_reader(data: &[u8]) {
    let plain = read_capture(data);
    if !data.starts_with(&GZIP_MAGIC) {
        let gz = gzip(data);
        assert_eq!(
            read_capture(&gz),
            plain,
            "the same capture gzip-compressed reads differently"
        );
        let cut = (hash(data) % gz.len() as u64) as usize;
        let part = read_capture(&gz[..cut]);
        assert!(
            part.frames.len() <= plain.frames.len()
                && part.frames[..] == plain.frames[..part.frames.len()],
            "a gzip stream cut at byte {cut} gave frames the whole stream does not"
        );
        assert!(
            matches!(part.end, CaptureEnd::Fault { .. }),
            "a gzip stream cut at byte {cut} of {} reads as complete",
            gz.len()
        );
    }
    merged_twice(data, &plain);
}

#[derive(Debug, PartialEq)]
struct FrameCopy {
    ts: i64,
    link: LinkType,
    interface: u32,
    orig_len: u32,
    data: Vec<u8>,
}

impl FrameCopy {
    fn of(f: &Frame<'_>) -> FrameCopy {
        FrameCopy {
            ts: f.ts.nanos(),
            link: f.link,
            interface: f.source.interface,
            orig_len: f.orig_len,
            data: f.data.to_vec(),
        }
    }
}

/// How a capture ended: the error without its path (which differs between copies).
#[derive(Debug, PartialEq)]
enum CaptureEnd {
    Clean,
    Fault {
        kind: &'static str,
        offset: Option<u64>,
        what: String,
    },
}

impl CaptureEnd {
    fn of(e: &CaptureError) -> CaptureEnd {
        let (kind, offset, what) = match e {
            CaptureError::Io { source, .. } => ("io", None, source.to_string()),
            CaptureError::NotACapture { magic, .. } => ("not a capture", None, magic.clone()),
            CaptureError::Truncated { offset, what, .. } => {
                ("truncated", Some(*offset), what.clone())
            }
            CaptureError::Corrupt { offset, what, .. } => ("corrupt", Some(*offset), what.clone()),
        };
        CaptureEnd::Fault { kind, offset, what }
    }
}

#[derive(Debug, PartialEq)]
struct CaptureRun {
    frames: Vec<FrameCopy>,
    end: CaptureEnd,
}

fn read_capture(bytes: &[u8]) -> CaptureRun {
    let tmp = TempFile::new(bytes);
    let mut file = match CaptureFile::open(tmp.path(), 0) {
        Ok(f) => f,
        Err(e) => {
            return CaptureRun {
                frames: Vec::new(),
                end: CaptureEnd::of(&e),
            }
        }
    };
    // Offsets are in the decompressed stream: bounded by the file only when it is plain.
    let bound = (!file.gzipped()).then_some(bytes.len() as u64);
    let mut cov = Coverage::default();
    let mut frames = Vec::new();
    let mut offset = file.offset();
    let end = loop {
        let step = file.advance(&mut cov);
        assert!(
            file.offset() >= offset,
            "the offset went back from {offset} to {}",
            file.offset()
        );
        offset = file.offset();
        if let Some(b) = bound {
            assert!(
                offset <= b,
                "offset {offset} past the end of a {b}-byte file"
            );
        }
        match step {
            Ok(true) => {
                let f = file.current();
                assert!(
                    f.data.len() as u64 <= u64::from(f.orig_len),
                    "a frame of {} bytes longer than its wire length {}",
                    f.data.len(),
                    f.orig_len
                );
                assert!(
                    f.data.len() <= MAX_CAPLEN as usize,
                    "a frame of {} bytes, over the {MAX_CAPLEN}-byte bound",
                    f.data.len()
                );
                frames.push(FrameCopy::of(&f));
                assert_eq!(file.packets(), frames.len() as u64, "packet counter");
            }
            Ok(false) => break CaptureEnd::Clean,
            Err(e) => break CaptureEnd::of(&e),
        }
    };
    if let (
        Some(b),
        CaptureEnd::Fault {
            offset: Some(at), ..
        },
    ) = (bound, &end)
    {
        assert!(*at <= b, "a fault at byte {at} of a {b}-byte file");
    }
    for _ in 0..2 {
        assert!(
            matches!(file.advance(&mut cov), Ok(false)),
            "an ended capture yields more"
        );
    }
    assert!(
        file.current().data.is_empty(),
        "an ended capture has a current frame"
    );
    assert_eq!(cov.files, 1);
    assert_eq!(cov.packets, frames.len() as u64);
    assert_eq!(
        cov.bytes,
        frames.iter().map(|f| f.data.len() as u64).sum::<u64>()
    );
    let cut = frames
        .iter()
        .filter(|f| (f.data.len() as u64) < u64::from(f.orig_len))
        .count();
    assert_eq!(cov.truncated_snaplen, cut as u64);
    CaptureRun { frames, end }
}

/// The file opened twice and merged: each input's frames are the file's, in its order.
fn merged_twice(bytes: &[u8], single: &CaptureRun) {
    let tmp = TempFile::new(bytes);
    let (Ok(a), Ok(b)) = (
        CaptureFile::open(tmp.path(), 0),
        CaptureFile::open(tmp.path(), 1),
    ) else {
        return;
    };
    let mut merged = MergedCaptures::new(vec![a, b]);
    let mut cov = Coverage::default();
    let mut per_input: [Vec<FrameCopy>; 2] = Default::default();
    while let Some(f) = merged.next_frame(&mut cov) {
        per_input[usize::from(f.source.input)].push(FrameCopy::of(&f));
    }
    assert!(
        merged.next_frame(&mut cov).is_none(),
        "merged inputs yield after their end"
    );
    for copy in &per_input {
        assert_eq!(
            copy, &single.frames,
            "a merged input's frames differ from the file's"
        );
    }
    let faults = usize::from(matches!(single.end, CaptureEnd::Fault { .. }));
    assert_eq!(
        cov.input_warnings.len(),
        2 * faults,
        "{:?}",
        cov.input_warnings
    );
    assert_eq!(cov.packets, 2 * single.frames.len() as u64);
}

// ---------------------------------------------------------------------------------------
// decode_frame
// ---------------------------------------------------------------------------------------

/// Frames through the decode stage (UDP of port 53 on to the DNS stage, as the pipeline
/// does). Input: one byte whose low nibble picks the link type (Ethernet, null, loop, raw
/// IP, IPv4, IPv6, SLL, SLL2, else unsupported) and bit 4 tiny fragment bounds; then
/// records `[step][len: u16 LE][len bytes]`, `step & 0x7f` the time since the previous
/// frame in 100 ms (127: one minute), bit 7 a frame cut by the snaplen. Checks that a
/// frame lands in exactly one coverage outcome (or is held as a fragment), payloads
/// within their wire length, tunnel depth, and that every fragment ends reassembled or
/// dropped.
pub fn decode_frame(data: &[u8]) {
    let Some((&head, mut rest)) = data.split_first() else {
        return;
    };
    let link = match head & 0x0f {
        0 => LinkType::Ethernet,
        1 => LinkType::Null,
        2 => LinkType::Loop,
        3 => LinkType::RawIp,
        4 => LinkType::Ipv4,
        5 => LinkType::Ipv6,
        6 => LinkType::LinuxSll,
        7 => LinkType::LinuxSll2,
        n => LinkType::Other(300 + u32::from(n)),
    };
    let config = if head & 0x10 != 0 {
        DecodeConfig {
            max_fragment_datagrams: 2,
            max_fragment_bytes: 3000,
            fragment_timeout_ns: NS,
        }
    } else {
        DecodeConfig::default()
    };
    let mut decoder = Decoder::new(config);
    let mut dns = DnsStage::new(DnsConfig::default());
    let mut cov = Coverage::default();
    let mut answers = 0u64;
    let mut ts = T0;
    while let [step, lo, hi, tail @ ..] = rest {
        let len = usize::from(u16::from_le_bytes([*lo, *hi])).min(tail.len());
        let (bytes, after) = tail.split_at(len);
        rest = after;
        ts += match step & 0x7f {
            0x7f => 60 * NS,
            s => i64::from(s) * NS / 10,
        };
        let frame = Frame {
            ts: Timestamp(ts),
            link,
            source: SourceId::default(),
            orig_len: len as u32 + if step & 0x80 != 0 { 64 } else { 0 },
            data: bytes,
        };
        let before = outcomes(&cov);
        let (fragments, tunnels) = (cov.ip_fragments, cov.tunnels_unwrapped);
        let got = match decoder.decode_packet(&frame, &mut cov) {
            Some(Packet::Tcp(s)) => {
                assert!(
                    s.payload.len() as u64 <= u64::from(s.wire_len),
                    "a TCP payload of {} bytes over its wire length {}",
                    s.payload.len(),
                    s.wire_len
                );
                assert_eq!(s.ts, frame.ts);
                Some(0)
            }
            Some(Packet::Udp(d)) => {
                assert_eq!(d.ts, frame.ts);
                if DnsStage::wants(&d) {
                    dns.push(&d, &mut cov, &mut |_| answers += 1);
                }
                Some(1)
            }
            None => None,
        };
        let after = outcomes(&cov);
        let moved: u64 = after.iter().zip(&before).map(|(a, b)| a - b).sum();
        match got {
            Some(i) => assert!(
                moved == 1 && after[i] == before[i] + 1,
                "a decoded packet counted as {after:?} after {before:?}"
            ),
            None => assert!(
                after[0] == before[0]
                    && (moved == 1 || (moved == 0 && cov.ip_fragments > fragments)),
                "a frame counted in no outcome or in several: {after:?} after {before:?}"
            ),
        }
        assert!(
            cov.tunnels_unwrapped - tunnels <= 4,
            "more than four tunnels unwrapped"
        );
        assert!(decoder.pending_fragment_datagrams() <= config.max_fragment_datagrams);
        assert!(
            cov.ip_fragments >= cov.ip_fragments_reassembled + cov.ip_fragments_dropped,
            "more fragments reassembled and dropped than seen"
        );
    }
    decoder.finish(&mut cov);
    assert_eq!(decoder.pending_fragment_datagrams(), 0);
    assert_eq!(
        cov.ip_fragments,
        cov.ip_fragments_reassembled + cov.ip_fragments_dropped,
        "fragments neither reassembled nor dropped"
    );
    assert_eq!(cov.dns_answers, answers);
}

/// The per-frame outcome counters of the decode stage; TCP first, UDP second.
fn outcomes(cov: &Coverage) -> [u64; 6] {
    [
        cov.tcp_segments,
        cov.non_tcp,
        cov.non_ip,
        cov.decode_errors,
        cov.tcp_malformed,
        cov.unsupported_link,
    ]
}

// ---------------------------------------------------------------------------------------
// tcp_http_flow
// ---------------------------------------------------------------------------------------

/// Bytes of one segment record of [`tcp_http_flow`].
const FLOW_RECORD: usize = 8;

/// TCP segments of up to four connections, built into Ethernet frames and run through
/// the stages as `linkrank analyze` runs them (in memory, watching every stream event
/// and record), then written as a pcapng and run through `app::run_pipeline` itself, which
/// must count the same. See [`flow_frames`] for the input layout. Checks the stream
/// event order, that bytes delivered (and retransmitted) never exceed the bytes seen,
/// that gaps and retransmissions are counted the same in events, connection rows and
/// coverage, that each exchange is reported once (indices 0..n per connection, before
/// its connection's row) with sizes within the stream's bytes, and that all state is
/// released at the end.
pub fn tcp_http_flow(data: &[u8]) {
    let (config, frames) = flow_frames(data);
    let run = run_in_memory(config, &frames);
    check_flow_run(&run, &config);
    compare_with_pipeline(&run, config, &frames);
}

struct OwnedFrame {
    ts: i64,
    interface: u32,
    orig_len: u32,
    data: Vec<u8>,
}

/// Decodes [`tcp_http_flow`]'s input. A 4-byte preamble: byte 0 bit 0 tiny flow bounds,
/// bit 1 tiny HTTP bounds, bit 2 IPv6; byte 1 two bits per connection choosing its
/// initial sequence numbers (small, 256 bytes before the 2^32 wrap, just below 2^31,
/// or from bytes 2 and 3). Then 8-byte records:
///
/// - 0: bits 0-1 the connection (3 reuses connection 0's ports), bit 2 server to client,
///   bit 3 seq + 2^31, bit 4 ack + 2^31, bit 5 seen on a second interface, bit 6 cut by
///   the snaplen (half the payload missing), bit 7 a retransmission of this direction's
///   previous segment (same seq and payload);
/// - 1: the TCP flags byte;
/// - 2-3: seq as an i16 offset from the next in-order byte of the direction (SYN: from
///   its initial sequence number);
/// - 4-5: ack as an i16 offset from the next in-order byte of the other direction;
/// - 6: time since the previous segment: 0-249 in 2 ms steps, 250-253 1-4 s, 254 one
///   millisecond back, 255 400 s;
/// - 7: payload: 0 none, 1-127 an entry of [`flow_dictionary`], 128-255 the next
///   `(b & 0x7f) * 8` input bytes.
fn flow_frames(data: &[u8]) -> (PipelineConfig, Vec<OwnedFrame>) {
    let (pre, mut rest) = data.split_at(data.len().min(4));
    let p = |i: usize| pre.get(i).copied().unwrap_or(0);
    let mut config = PipelineConfig::default();
    if p(0) & 1 != 0 {
        config.flow = FlowConfig {
            max_connections: 2,
            idle_timeout_ns: 2 * NS,
            max_ooo_bytes_per_direction: 300,
            max_ooo_bytes_total: 500,
            closed_linger_ns: NS,
        };
    }
    if p(0) & 2 != 0 {
        config.http = HttpConfig {
            max_header_bytes: 96,
            max_pending_requests: 2,
            max_decoded_body_bytes: 16,
            max_header_bytes_total: 160,
            ..HttpConfig::default()
        };
    }
    let v6 = p(0) & 4 != 0;
    let mut isn = [[0u32; 2]; 4];
    for (c, pair) in isn.iter_mut().enumerate() {
        for (d, isn) in pair.iter_mut().enumerate() {
            let (c32, d32) = (c as u32, d as u32);
            *isn = match (p(1) >> (2 * c)) & 3 {
                0 => 1000 + 7919 * c32 + 104_729 * d32,
                1 => 0xFFFF_FF00u32.wrapping_add(0x40 * d32),
                2 => 0x7FFF_FF80u32.wrapping_add(0x20 * d32),
                _ => u32::from_le_bytes([p(2), p(3), c as u8, d as u8]).wrapping_mul(0x9E37_79B1),
            };
        }
    }
    let mut next = isn;
    let mut last: [[(u32, Vec<u8>); 2]; 4] = Default::default();
    let dict = flow_dictionary();
    let mut ts = T0;
    let mut frames = Vec::new();
    while rest.len() >= FLOW_RECORD {
        let (h, tail) = rest.split_at(FLOW_RECORD);
        rest = tail;
        let c = usize::from(h[0] & 3);
        let d = usize::from((h[0] >> 2) & 1);
        let flags = h[1];
        let seq_delta = i16::from_le_bytes([h[2], h[3]]) as i32 as u32;
        let ack_delta = i16::from_le_bytes([h[4], h[5]]) as i32 as u32;
        ts += match h[6] {
            s @ 0..=249 => i64::from(s) * 2_000_000,
            s @ 250..=253 => i64::from(s - 249) * NS,
            254 => -1_000_000,
            _ => 400 * NS,
        };
        let retransmit = h[0] & 0x80 != 0;
        let payload: Vec<u8> = if retransmit {
            last[c][d].1.clone()
        } else {
            match h[7] {
                0 => Vec::new(),
                s @ 1..=0x7f => dict[usize::from(s - 1) % dict.len()].clone(),
                s => {
                    let n = (usize::from(s & 0x7f) * 8).min(rest.len());
                    let (bytes, tail) = rest.split_at(n);
                    rest = tail;
                    bytes.to_vec()
                }
            }
        };
        let syn = flags & TcpFlags::SYN != 0;
        let fin = flags & TcpFlags::FIN != 0;
        let mut seq = if retransmit {
            last[c][d].0
        } else if syn {
            isn[c][d]
        } else {
            next[c][d]
        };
        seq = seq.wrapping_add(seq_delta);
        if h[0] & 8 != 0 {
            seq = seq.wrapping_add(1 << 31);
        }
        let mut ack = next[c][1 - d].wrapping_add(ack_delta);
        if h[0] & 16 != 0 {
            ack = ack.wrapping_add(1 << 31);
        }
        let end = seq.wrapping_add(payload.len() as u32 + u32::from(syn) + u32::from(fin));
        if seq_diff(end, next[c][d]) > 0 {
            next[c][d] = end;
        }
        let frame = tcp_frame(v6, c, d, seq, ack, flags, &payload);
        let orig_len = frame.len() as u32;
        let data = if h[0] & 64 != 0 {
            frame[..frame.len() - payload.len() / 2].to_vec()
        } else {
            frame
        };
        last[c][d] = (seq, payload);
        frames.push(OwnedFrame {
            ts,
            interface: u32::from((h[0] >> 5) & 1),
            orig_len,
            data,
        });
    }
    (config, frames)
}

/// Client and server of connection `c` of [`tcp_http_flow`]: connection 1's client has
/// the lower port (roles by port go the wrong way), 2 talks to 443, 3 reuses 0's ports.
fn flow_endpoints(v6: bool, c: usize) -> (Endpoint, Endpoint) {
    let (client_port, server_port) = [(40000, 80), (5000, 8080), (40002, 443), (40000, 80)][c & 3];
    let (client, server): (IpAddr, IpAddr) = if v6 {
        (
            Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1).into(),
            Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2).into(),
        )
    } else {
        (
            Ipv4Addr::new(10, 0, 0, 1).into(),
            Ipv4Addr::new(10, 0, 0, 2).into(),
        )
    };
    (
        Endpoint::new(client, client_port),
        Endpoint::new(server, server_port),
    )
}

fn tcp_frame(
    v6: bool,
    c: usize,
    d: usize,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let (client, server) = flow_endpoints(v6, c);
    let (src, dst) = if d == 0 {
        (client, server)
    } else {
        (server, client)
    };
    let eth = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let ip = match (src.ip, dst.ip) {
        (IpAddr::V4(s), IpAddr::V4(t)) => eth.ipv4(s.octets(), t.octets(), 64),
        (s, t) => {
            let v6 = |a: IpAddr| match a {
                IpAddr::V6(a) => a.octets(),
                IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            };
            eth.ipv6(v6(s), v6(t), 64)
        }
    };
    let mut b = ip.tcp(src.port, dst.port, seq, 65535);
    if flags & TcpFlags::FIN != 0 {
        b = b.fin();
    }
    if flags & TcpFlags::SYN != 0 {
        b = b.syn();
    }
    if flags & TcpFlags::RST != 0 {
        b = b.rst();
    }
    if flags & TcpFlags::PSH != 0 {
        b = b.psh();
    }
    if flags & TcpFlags::ACK != 0 {
        b = b.ack(ack);
    }
    if flags & 0x20 != 0 {
        b = b.urg(0);
    }
    if flags & 0x40 != 0 {
        b = b.ece();
    }
    if flags & 0x80 != 0 {
        b = b.cwr();
    }
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload)
        .expect("a TCP frame of at most 1 KiB of payload");
    out
}

/// Payloads [`tcp_http_flow`] records name by index: HTTP/1 request and response heads
/// (Content-Length, chunked, 100-continue, upgrade, CONNECT, HEAD, 1.0, odd request
/// lines, trace headers, a head split in two), bodies and chunk framing, gzip JSON, a
/// TLS ClientHello and ServerHello, the HTTP/2 preface and other bytes. Append only: the
/// committed corpus refers to entries by position.
pub fn flow_dictionary() -> &'static [Vec<u8>] {
    static DICT: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    DICT.get_or_init(|| {
        let json: &[u8] = br#"{"id":1,"name":"a"}"#;
        let gz = gzip(json);
        let with = |head: String, body: &[u8]| {
            let mut v = head.into_bytes();
            v.extend_from_slice(body);
            v
        };
        let fixed: [&[u8]; 13] = [
            b"GET / HTTP/1.1\r\nHost: api.test\r\n\r\n",
            b"GET /orders/12345?token=s3cr3t HTTP/1.1\r\nHost: orders.test:8080\r\n\
traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\nAccept: */*\r\n\r\n",
            b"POST /upload HTTP/1.1\r\nHost: api.test\r\nContent-Length: 10\r\n\r\n",
            b"POST /stream HTTP/1.1\r\nHost: api.test\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"PUT /put/7 HTTP/1.1\r\nHost: api.test\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n",
            b"HEAD /h HTTP/1.1\r\nHost: h.test\r\n\r\n",
            b"GET /chat HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            b"CONNECT db.test:5432 HTTP/1.1\r\nHost: db.test:5432\r\n\r\n",
            b"GET /old HTTP/1.0\r\n\r\n",
            b"GET /HTTP/1.1\r\nHost: odd.test\r\n\r\n",
            b"OPTIONS * HTTP/1.1\r\nX-B3-TraceId: 463ac35c9f6413ad48485a3953bb6124\r\n\
X-B3-SpanId: a2fb4a1d1a96d312\r\nX-Request-Id: abc\r\n\r\n",
            b"GET /split/abcdef0123 HTTP/1.1\r\nHo",
            b"st: split.test\r\nCookie: a=b\r\n\r\n",
        ];
        let mut d: Vec<Vec<u8>> = fixed.iter().map(|s| s.to_vec()).collect();
        d.push(with(
            format!(
                "POST /api/items HTTP/1.1\r\nHost: api.test\r\nContent-Type: application/json\r\n\
Content-Length: {}\r\n\r\n",
                json.len()
            ),
            json,
        ));
        d.push(with(
            format!(
                "POST /gz HTTP/1.1\r\nHost: api.test\r\nContent-Encoding: gzip\r\n\
Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                gz.len()
            ),
            &gz,
        ));
        let responses: [&[u8]; 11] = [
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n",
            b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 200 Connection established\r\n\r\n",
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\nConnection: close\r\n\r\nerror",
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        ];
        d.extend(responses.iter().map(|s| s.to_vec()));
        d.push(with(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                json.len()
            ),
            json,
        ));
        d.push(with(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Type: application/json\r\n\
Content-Length: {}\r\n\r\n",
                gz.len()
            ),
            &gz,
        ));
        let bodies: [&[u8]; 6] = [
            b"0123456789",
            b"5\r\nhello\r\n",
            b"0\r\n\r\n",
            b"3;ext=1\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n",
            b"\r\n",
            json,
        ];
        d.extend(bodies.iter().map(|s| s.to_vec()));
        d.push(gz);
        d.push(tls_client_hello());
        d.push(tls_server_flight());
        d.push(b"\x17\x03\x03\x00\x05hello".to_vec());
        d.push(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec());
        d.push(b"SSH-2.0-OpenSSH_9.0\r\n".to_vec());
        d
    })
}

fn tls_extension(out: &mut Vec<u8>, kind: u16, body: &[u8]) {
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
}

fn tls_handshake_record(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut hs = vec![kind];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(body);
    let mut rec = vec![0x16, 3, 1];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

/// A TLS 1.3 ClientHello with SNI `api.test` and ALPN `h2,http/1.1`.
fn tls_client_hello() -> Vec<u8> {
    let sni = b"api.test";
    let mut name = vec![0u8];
    name.extend_from_slice(&(sni.len() as u16).to_be_bytes());
    name.extend_from_slice(sni);
    let mut names = (name.len() as u16).to_be_bytes().to_vec();
    names.extend_from_slice(&name);
    let mut protocols = Vec::new();
    for p in [&b"h2"[..], b"http/1.1"] {
        protocols.push(p.len() as u8);
        protocols.extend_from_slice(p);
    }
    let mut alpn = (protocols.len() as u16).to_be_bytes().to_vec();
    alpn.extend_from_slice(&protocols);
    let mut ext = Vec::new();
    tls_extension(&mut ext, 0x0000, &names);
    tls_extension(&mut ext, 0x0010, &alpn);
    tls_extension(&mut ext, 0x002b, &[4, 3, 4, 3, 3]);
    let mut body = vec![3, 3];
    body.extend_from_slice(&[0x11; 32]);
    body.push(0);
    body.extend_from_slice(&[0, 4, 0x13, 0x01, 0xc0, 0x2f, 1, 0]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    tls_handshake_record(1, &body)
}

/// A TLS 1.3 ServerHello followed by the compatibility ChangeCipherSpec.
fn tls_server_flight() -> Vec<u8> {
    let mut ext = Vec::new();
    tls_extension(&mut ext, 0x002b, &[3, 4]);
    let mut body = vec![3, 3];
    body.extend_from_slice(&[0x22; 32]);
    body.push(0);
    body.extend_from_slice(&[0x13, 0x01, 0]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut out = tls_handshake_record(2, &body);
    out.extend_from_slice(&[0x14, 3, 3, 0, 1, 1]);
    out
}

/// What the stream events of one connection added up to.
#[derive(Default)]
struct ConnLog {
    opened: Option<(Endpoint, Endpoint)>,
    summary: Option<TcpSummary>,
    data: [u64; 2],
    gaps: [u64; 2],
    gap_bytes: [u64; 2],
    ended: [bool; 2],
    /// The protocol stage asked for no more bytes (before the connection closed).
    ignored: bool,
}

struct FlowRun {
    cov: Coverage,
    http_cov: Coverage,
    logs: BTreeMap<ConnId, ConnLog>,
    records: Vec<Record>,
    /// Payload bytes (wire length) of the decoded segments per (source, destination).
    seen: BTreeMap<(Endpoint, Endpoint), u64>,
}

/// The stages as `app::run_pipeline` wires them, every stream event and record kept.
fn run_in_memory(config: PipelineConfig, frames: &[OwnedFrame]) -> FlowRun {
    let mut cov = Coverage::default();
    let mut http_cov = Coverage::default();
    let mut decoder = Decoder::new(config.decode);
    let mut flows = FlowTable::new(config.flow, detect::role_hint);
    let mut http = HttpStage::new(config.http);
    let mut logs: BTreeMap<ConnId, ConnLog> = BTreeMap::new();
    let mut records: Vec<Record> = Vec::new();
    let mut seen: BTreeMap<(Endpoint, Endpoint), u64> = BTreeMap::new();
    let mut on_event = |ev: StreamEvent<'_>| -> Interest {
        log_event(&mut logs, &ev);
        let interest = http.push(ev, &mut http_cov, &mut |r| records.push(r));
        if interest == Interest::Ignore && !matches!(ev.kind, EventKind::Closed(_)) {
            if let Some(log) = logs.get_mut(&ev.conn) {
                log.ignored = true;
            }
        }
        interest
    };
    for f in frames {
        let frame = Frame {
            ts: Timestamp(f.ts),
            link: LinkType::Ethernet,
            source: SourceId {
                input: 0,
                interface: f.interface,
            },
            orig_len: f.orig_len,
            data: &f.data,
        };
        if let Some(Packet::Tcp(seg)) = decoder.decode_packet(&frame, &mut cov) {
            if tracing() {
                eprintln!(
                    "{} if{} {} -> {} seq {} ack {} flags {:#04x} payload {}/{}",
                    frame.ts,
                    f.interface,
                    seg.src,
                    seg.dst,
                    seg.seq,
                    seg.ack,
                    seg.flags.0,
                    seg.payload.len(),
                    seg.wire_len
                );
            }
            let wire = u64::from(seg.wire_len).max(seg.payload.len() as u64);
            *seen.entry((seg.src, seg.dst)).or_default() += wire;
            flows.push(&seg, &mut cov, &mut on_event);
        }
    }
    decoder.finish(&mut cov);
    flows.finish(&mut cov, &mut on_event);
    assert!(flows.is_empty(), "connections left in the flow table");
    assert_eq!(
        flows.buffered_bytes(),
        0,
        "out-of-order bytes still counted as held"
    );
    assert_eq!(
        http.live_connections(),
        0,
        "connections left in the HTTP stage"
    );
    assert_eq!(
        http.held_header_bytes(),
        0,
        "header bytes still counted as held"
    );
    let _ = http.finish_payloads(&mut http_cov);
    FlowRun {
        cov,
        http_cov,
        logs,
        records,
        seen,
    }
}

/// The order and content rules of stream events (crate::ingest::flow::EventKind).
fn log_event(logs: &mut BTreeMap<ConnId, ConnLog>, ev: &StreamEvent<'_>) {
    if tracing() {
        match ev.kind {
            EventKind::Data {
                dir,
                bytes,
                stall_ns,
            } => {
                eprintln!(
                    "  {:?} {} Data {dir:?} {} bytes, stall {stall_ns:?}",
                    ev.conn,
                    ev.ts,
                    bytes.len()
                )
            }
            EventKind::Closed(s) => eprintln!("  {:?} {} Closed {s:?}", ev.conn, ev.ts),
            kind => eprintln!("  {:?} {} {kind:?}", ev.conn, ev.ts),
        }
    }
    let log = logs.entry(ev.conn).or_default();
    let c = ev.conn;
    assert!(log.summary.is_none(), "{c:?}: an event after Closed");
    if let EventKind::Opened { client, server } = ev.kind {
        assert!(log.opened.is_none(), "{c:?}: opened twice");
        log.opened = Some((client, server));
        return;
    }
    assert!(log.opened.is_some(), "{c:?}: an event before Opened");
    match ev.kind {
        EventKind::Opened { .. } => {}
        EventKind::Data {
            dir,
            bytes,
            stall_ns,
        } => {
            let d = dir.index();
            assert!(!bytes.is_empty(), "{c:?}: an empty Data event");
            assert!(
                stall_ns.is_none_or(|s| s >= crate::ingest::flow::tcp::STALL_MIN_NS),
                "{c:?}: a stall shorter than the threshold: {stall_ns:?}"
            );
            assert!(!log.ended[d], "{c:?}: Data after the direction's End");
            log.data[d] += bytes.len() as u64;
        }
        EventKind::Gap { dir, len } => {
            let d = dir.index();
            assert!(len > 0, "{c:?}: an empty gap");
            assert!(!log.ended[d], "{c:?}: a Gap after the direction's End");
            log.gaps[d] += 1;
            log.gap_bytes[d] += len;
        }
        EventKind::End { dir } => {
            let d = dir.index();
            assert!(!log.ended[d], "{c:?}: End twice");
            log.ended[d] = true;
        }
        EventKind::Closed(summary) => {
            assert_eq!(summary.conn, c);
            log.summary = Some(summary.clone());
        }
    }
}

fn check_flow_run(run: &FlowRun, config: &PipelineConfig) {
    let cov = &run.cov;
    let hc = &run.http_cov;
    let conns: Vec<&Connection> = run
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Connection(c) => Some(c),
            Record::Exchange(_) => None,
        })
        .collect();
    assert_eq!(
        run.logs.len() as u64,
        cov.connections,
        "connections with events"
    );
    // Every connection is closed once; a SYN nobody answered is counted, not a row.
    let mut unanswered = 0u64;
    let mut delivered: BTreeMap<(Endpoint, Endpoint), u64> = BTreeMap::new();
    let (mut gaps, mut gap_bytes, mut retransmitted, mut duplicates) = (0, 0, 0, 0);
    for (id, log) in &run.logs {
        let Some(t) = &log.summary else {
            panic!("{id:?}: never closed");
        };
        assert_eq!(log.opened, Some((t.client, t.server)), "{id:?}: endpoints");
        assert!(
            t.first_packet <= t.last_packet,
            "{id:?}: last packet before first"
        );
        unanswered += u64::from(t.unanswered_attempt());
        for (d, s) in [&t.client_to_server, &t.server_to_client]
            .into_iter()
            .enumerate()
        {
            if log.ignored {
                assert!(log.data[d] <= s.bytes && log.gaps[d] <= s.gaps);
                assert!(log.gap_bytes[d] <= s.gap_bytes);
            } else {
                assert_eq!(
                    log.data[d], s.bytes,
                    "{id:?} dir {d}: bytes in events and row"
                );
                assert_eq!(
                    (log.gaps[d], log.gap_bytes[d]),
                    (s.gaps, s.gap_bytes),
                    "{id:?} dir {d}: gaps in events and row"
                );
            }
            let pair = if d == 0 {
                (t.client, t.server)
            } else {
                (t.server, t.client)
            };
            *delivered.entry(pair).or_default() += s.bytes + s.retransmitted_bytes;
            gaps += s.gaps;
            gap_bytes += s.gap_bytes;
            retransmitted += s.retransmitted_bytes;
            duplicates += s.capture_duplicates;
        }
    }
    for (pair, n) in &delivered {
        let seen = run.seen.get(pair).copied().unwrap_or(0);
        assert!(
            *n <= seen,
            "{} -> {}: {n} bytes delivered or retransmitted, {seen} seen",
            pair.0,
            pair.1
        );
    }
    assert_eq!(
        (cov.gaps, cov.gap_bytes),
        (gaps, gap_bytes),
        "gaps in coverage and rows"
    );
    assert_eq!(cov.retransmitted_bytes, retransmitted);
    assert_eq!(cov.capture_duplicates, duplicates);
    assert_eq!(hc.unanswered_attempts, unanswered, "unanswered attempts");
    assert_eq!(
        hc.unanswered_attempts_by_server.values().sum::<u64>(),
        unanswered
    );
    assert_eq!(
        conns.len() as u64,
        cov.connections - unanswered,
        "connection rows"
    );
    for c in &conns {
        let log = &run.logs[&c.tcp.conn];
        assert_eq!(
            log.summary.as_ref(),
            Some(&c.tcp),
            "{:?}: row and Closed differ",
            c.tcp.conn
        );
        assert!(
            !c.tcp.unanswered_attempt(),
            "{:?}: an unanswered SYN as a row",
            c.tcp.conn
        );
    }

    // Exchanges: each once, before its connection's row, within the stream's bytes.
    let mut per_conn: BTreeMap<ConnId, Vec<&Exchange>> = BTreeMap::new();
    let mut closed: BTreeSet<ConnId> = BTreeSet::new();
    for r in &run.records {
        match r {
            Record::Exchange(x) => {
                assert!(
                    !closed.contains(&x.conn),
                    "{:?}: an exchange after its row",
                    x.conn
                );
                per_conn.entry(x.conn).or_default().push(x);
            }
            Record::Connection(c) => {
                assert!(closed.insert(c.tcp.conn), "{:?}: two rows", c.tcp.conn);
            }
        }
    }
    assert!(
        per_conn.keys().all(|k| closed.contains(k)),
        "an exchange of a connection without a row"
    );
    let mut total = 0u64;
    let mut incomplete = 0u64;
    for c in &conns {
        let t = &c.tcp;
        let xs = per_conn.get(&t.conn).map_or(&[][..], Vec::as_slice);
        check_exchanges(xs, t.conn, (t.client, t.server), c.exchanges, &config.http);
        let req: u64 = xs
            .iter()
            .map(|x| x.req_header_bytes + x.req_body_bytes)
            .sum();
        let resp: u64 = xs
            .iter()
            .map(|x| x.resp_header_bytes + x.resp_body_bytes)
            .sum();
        let (c2s, s2c) = (&t.client_to_server, &t.server_to_client);
        assert!(
            req <= c2s.bytes + c2s.gap_bytes && resp <= s2c.bytes + s2c.gap_bytes,
            "{:?}: exchanges count {req}/{resp} bytes of streams of {}+{} / {}+{} (bytes+gaps)",
            t.conn,
            c2s.bytes,
            c2s.gap_bytes,
            s2c.bytes,
            s2c.gap_bytes
        );
        total += xs.len() as u64;
        incomplete += xs
            .iter()
            .filter(|x| x.completeness != Completeness::Complete)
            .count() as u64;
    }
    assert_eq!(hc.exchanges, total, "exchanges counted and reported");
    assert_eq!(hc.incomplete_exchanges, incomplete);
    assert_eq!(
        hc.connections_by_protocol.values().sum::<u64>(),
        conns.len() as u64,
        "connections by protocol"
    );
}

/// One connection's exchanges: indices exactly `0..count`, its endpoints, and each
/// exchange's own rules.
fn check_exchanges(
    xs: &[&Exchange],
    conn: ConnId,
    ends: (Endpoint, Endpoint),
    count: u32,
    cfg: &HttpConfig,
) {
    assert_eq!(
        xs.len(),
        count as usize,
        "{conn:?}: exchanges reported and counted"
    );
    let indices: BTreeSet<u32> = xs.iter().map(|x| x.index).collect();
    assert!(
        indices.len() == xs.len() && indices.iter().copied().eq(0..count),
        "{conn:?}: exchange indices {indices:?} are not 0..{count} once each"
    );
    for x in xs {
        assert_eq!((x.conn, x.client, x.server), (conn, ends.0, ends.1));
        check_exchange(x, cfg);
    }
}

fn check_exchange(x: &Exchange, cfg: &HttpConfig) {
    assert!(
        x.req_body_len <= x.req_body_bytes && x.resp_body_len <= x.resp_body_bytes,
        "a body longer than its bytes on the wire: {x:?}"
    );
    for n in [x.req_body_decoded_len, x.resp_body_decoded_len]
        .into_iter()
        .flatten()
    {
        assert!(
            n <= cfg.max_decoded_body_bytes,
            "a decoded length over the bound"
        );
    }
    if let Some(r) = &x.route {
        check_route(r);
    }
    if let Some(t) = &x.trace_id {
        assert!(is_id_hex(t, 32), "trace id {t:?}");
    }
    if let Some(p) = &x.parent_span_id {
        assert!(is_id_hex(p, 16), "parent span id {p:?}");
    }
    assert!(!has_upper(&x.req_header_names) && !has_upper(&x.resp_header_names));
    if let Some(s) = x.status {
        assert!(s <= 999, "status {s}");
    }
}

/// Counters the in-memory run and `run_pipeline` must agree on, by name.
fn pipeline_counters(cov: &Coverage, http: &Coverage) -> Vec<(&'static str, u64)> {
    vec![
        ("tcp_segments", cov.tcp_segments),
        ("tcp_malformed", cov.tcp_malformed),
        ("connections", cov.connections),
        (
            "connections_without_handshake",
            cov.connections_without_handshake,
        ),
        ("one_sided_connections", cov.one_sided_connections),
        ("gaps", cov.gaps),
        ("gap_bytes", cov.gap_bytes),
        ("retransmitted_bytes", cov.retransmitted_bytes),
        ("capture_duplicates", cov.capture_duplicates),
        ("out_of_order_overflows", cov.out_of_order_overflows),
        ("evicted_idle", cov.evicted_idle),
        ("evicted_capacity", cov.evicted_capacity),
        ("flushed_at_end", cov.flushed_at_end),
        ("stray_segments", cov.stray_segments),
        ("exchanges", http.exchanges),
        ("incomplete_exchanges", http.incomplete_exchanges),
        ("malformed_http", http.malformed_http),
        ("http_resyncs", http.http_resyncs),
        ("header_budget_overflows", http.header_budget_overflows),
        ("tls_client_hellos", http.tls_client_hellos),
        ("tls_server_hellos", http.tls_server_hellos),
        ("unanswered_attempts", http.unanswered_attempts),
    ]
}

/// The same frames as a pcapng file through `app::run_pipeline`.
fn compare_with_pipeline(run: &FlowRun, config: PipelineConfig, frames: &[OwnedFrame]) {
    let tmp = TempFile::new(&pcapng(frames));
    let file = match CaptureFile::open(tmp.path(), 0) {
        Ok(f) => f,
        Err(e) => panic!("the pcapng written for the pipeline does not open: {e}"),
    };
    let mut captures = MergedCaptures::new(vec![file]);
    let (tables, cov) = run_pipeline(&mut captures, config);
    assert!(cov.input_warnings.is_empty(), "{:?}", cov.input_warnings);
    assert_eq!(cov.packets, frames.len() as u64);
    assert_eq!(
        pipeline_counters(&cov, &cov),
        pipeline_counters(&run.cov, &run.http_cov),
        "run_pipeline and the stages run in memory count differently"
    );
    let exchanges = run
        .records
        .iter()
        .filter(|r| matches!(r, Record::Exchange(_)));
    assert_eq!(tables.exchanges(), exchanges.count());
    let rows = run
        .records
        .iter()
        .filter(|r| matches!(r, Record::Connection(_)));
    assert_eq!(tables.connections(), rows.count());
}

/// A little-endian pcapng: two Ethernet interfaces with nanosecond timestamps, one
/// Enhanced Packet Block per frame.
fn pcapng(frames: &[OwnedFrame]) -> Vec<u8> {
    fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
        let len = (12 + body.len()) as u32;
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(&len.to_le_bytes());
    }
    let mut out = Vec::new();
    let mut shb = 0x1A2B_3C4Du32.to_le_bytes().to_vec();
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    block(&mut out, 0x0A0D_0D0A, &shb);
    for _ in 0..2 {
        let mut idb = 1u16.to_le_bytes().to_vec();
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&MAX_CAPLEN.to_le_bytes());
        // if_tsresol = 9 (nanoseconds), then opt_endofopt.
        idb.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
        block(&mut out, 1, &idb);
    }
    for f in frames {
        let ts = f.ts as u64;
        let mut epb = f.interface.to_le_bytes().to_vec();
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&(f.data.len() as u32).to_le_bytes());
        epb.extend_from_slice(&f.orig_len.to_le_bytes());
        epb.extend_from_slice(&f.data);
        epb.resize(epb.len().next_multiple_of(4), 0);
        block(&mut out, 6, &epb);
    }
    out
}

// ---------------------------------------------------------------------------------------
// http1
// ---------------------------------------------------------------------------------------

/// HTTP/1 parsing. Input `[control][seed]` then the bytes, which go to: the request and
/// response head parsers (strict, lenient, partial line; a complete head is complete
/// alone, and a prefix of it is never malformed), the chunked decoder and the
/// Content-Encoding decoders (control bits 4-6 pick the codings, 7 a small cap) fed whole
/// and in pieces cut at points from the seed (same outcome; the bytes encoded with the
/// codings decode to their length), route templating and `traceparent`, and one
/// connection's HTTP/1 state machine fed the pieces as either side's stream with gaps
/// between (control bit 0: tiny bounds; exchanges once each, within the bytes fed).
pub fn http1(data: &[u8]) {
    let [ctl, seed, body @ ..] = data else {
        return;
    };
    let (ctl, seed) = (*ctl, *seed);
    let mut rng = Rng::new((u64::from(seed) << 8) | u64::from(ctl) | ((body.len() as u64) << 16));
    let cuts = cut_points(body.len(), &mut rng, 1 + usize::from(seed % 8));
    let pieces = split_at_points(body, &cuts);
    heads(body, &cuts);
    chunked_framing(body, &pieces);
    content_coding(ctl, body, &pieces, &mut rng);
    text_helpers(&String::from_utf8_lossy(body));
    h1_state_machine(ctl, &pieces, &mut rng);
}

fn tiny_http() -> HttpConfig {
    HttpConfig {
        max_header_bytes: 64,
        max_pending_requests: 2,
        max_decoded_body_bytes: 16,
        max_header_bytes_total: 128,
        ..HttpConfig::default()
    }
}

fn check_head(h: &Head, len: usize) {
    assert!(
        h.len >= 1 && h.len <= len,
        "a head of {} bytes in {len}",
        h.len
    );
    assert!(h.minor <= 1, "minor version {}", h.minor);
    assert!(
        !has_upper(&h.names),
        "header names not lower-cased: {:?}",
        h.names
    );
    if let Some(ct) = &h.content_type {
        assert!(!has_upper(ct), "content type not lower-cased: {ct:?}");
    }
    if let Some(u) = &h.upgrade {
        assert!(!has_upper(u), "upgrade not lower-cased: {u:?}");
    }
    if let Some(r) = &h.route {
        check_route(r);
    }
    if let Some((t, p)) = &h.trace {
        assert!(is_id_hex(t, 32), "trace id {t:?}");
        if let Some(p) = p {
            assert!(is_id_hex(p, 16), "span id {p:?}");
        }
    }
    assert!(h.te || !h.chunked, "chunked without Transfer-Encoding");
}

fn heads(body: &[u8], cuts: &[usize]) {
    let mut replay = Replay::new();
    if let Parsed::Complete(h) = head::parse_request_costed(body, Some(&mut replay)) {
        check_head(&h, body.len());
        match head::parse_request_costed(&body[..h.len], None) {
            Parsed::Complete(again) => assert_eq!(again.len, h.len, "a request head alone"),
            _ => panic!(
                "a complete request head of {} bytes is not complete alone",
                h.len
            ),
        }
        for &k in cuts.iter().filter(|&&k| k < h.len) {
            assert!(
                !matches!(
                    head::parse_request_costed(&body[..k], None),
                    Parsed::Malformed
                ),
                "the first {k} bytes of a {}-byte request head are malformed",
                h.len
            );
        }
    }
    if let Parsed::Complete(h) = head::parse_response_costed(body, Some(&mut replay)) {
        check_head(&h, body.len());
        assert!(h.status <= 999, "status {}", h.status);
        match head::parse_response_costed(&body[..h.len], None) {
            Parsed::Complete(again) => assert_eq!(again.len, h.len, "a response head alone"),
            _ => panic!(
                "a complete response head of {} bytes is not complete alone",
                h.len
            ),
        }
        for &k in cuts.iter().filter(|&&k| k < h.len) {
            assert!(
                matches!(
                    head::parse_response_costed(&body[..k], None),
                    Parsed::Partial
                ),
                "the first {k} bytes of a {}-byte response head are not partial",
                h.len
            );
        }
    }
    if let Parsed::Complete(h) = head::lenient_request(body) {
        check_head(&h, body.len());
        assert!(h.odd_line);
    }
    let p = head::partial_request_line(body);
    assert_eq!(p.len, body.len());
    if let Some(r) = &p.route {
        check_route(r);
    }
}

/// Chunked framing over `parts`: the outcome (bytes consumed and done, or an error)
/// and the chunk data bytes passed on before it.
fn run_chunked<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> (Result<(usize, bool), ()>, u64) {
    let mut c = Chunked::default();
    let mut consumed = 0;
    let mut data = 0u64;
    for p in parts {
        let r = c.feed(p, &mut |d: &[u8]| {
            assert!(!d.is_empty(), "empty chunk data passed on");
            data += d.len() as u64;
        });
        match r {
            Ok((n, done)) => {
                assert!(n <= p.len());
                consumed += n;
                if done {
                    return (Ok((consumed, true)), data);
                }
                assert_eq!(n, p.len(), "an unfinished body left bytes unconsumed");
            }
            Err(_) => return (Err(()), data),
        }
    }
    (Ok((consumed, false)), data)
}

fn chunked_framing(body: &[u8], pieces: &[&[u8]]) {
    let whole = run_chunked(std::iter::once(body));
    let split = run_chunked(pieces.iter().copied());
    assert_eq!(whole, split, "chunked framing whole and in pieces differ");
    if let (Ok((consumed, _)), data) = whole {
        assert!(
            data <= consumed as u64,
            "more chunk data than bytes consumed"
        );
    }
}

const CODINGS: [&str; 8] = [
    "gzip",
    "deflate",
    "gzip, gzip",
    "deflate, gzip",
    "x-gzip",
    "identity, gzip",
    "br",
    "gzip,deflate",
];

/// A body decoded for a Content-Encoding list: `None` when the list is not decoded,
/// else the decoded length or an error (corrupt, cut short, over the cap).
fn decode_body<'a>(
    list: &str,
    cap: u64,
    parts: impl IntoIterator<Item = &'a [u8]>,
) -> Option<Result<u64, ()>> {
    let mut d = BodyDecoder::for_codings(list.split(','), cap)?;
    for p in parts {
        if d.feed(p).is_err() {
            return Some(Err(()));
        }
    }
    Some(d.finish().map_err(|_| ()))
}

/// `body` with the codings of `list` applied in order (`deflate` as zlib or raw).
fn encode_body(list: &str, body: &[u8], zlib_wrapped: bool) -> Option<Vec<u8>> {
    let mut out = body.to_vec();
    let mut any = false;
    for c in list.split(',').map(|c| c.trim().to_ascii_lowercase()) {
        out = match c.as_str() {
            "gzip" | "x-gzip" => gzip(&out),
            "deflate" if zlib_wrapped => zlib(&out),
            "deflate" => raw_deflate(&out),
            "identity" | "" => continue,
            _ => return None,
        };
        any = true;
    }
    any.then_some(out)
}

fn content_coding(ctl: u8, body: &[u8], pieces: &[&[u8]], rng: &mut Rng) {
    let list = CODINGS[usize::from((ctl >> 4) & 7)];
    let cap = if ctl & 0x80 != 0 { 64 } else { 1 << 20 };
    let whole = decode_body(list, cap, std::iter::once(body));
    let split = decode_body(list, cap, pieces.iter().copied());
    assert_eq!(whole, split, "{list}: decoding whole and in pieces differ");
    if let Some(encoded) = encode_body(list, body, ctl & 4 != 0) {
        let cuts = cut_points(encoded.len(), rng, 4);
        let got = decode_body(list, cap, split_at_points(&encoded, &cuts));
        let want = if body.len() as u64 <= cap {
            Ok(body.len() as u64)
        } else {
            Err(())
        };
        assert_eq!(
            got,
            Some(want),
            "{list}: {} bytes encoded do not decode back",
            body.len()
        );
    }
}

fn text_helpers(text: &str) {
    check_route(&route::template(text));
    for line in text.lines().take(16) {
        if let Some((t, p)) = crate::ingest::http::trace::traceparent(line.trim()) {
            assert!(
                is_id_hex(&t, 32) && is_id_hex(&p, 16),
                "traceparent ids {t:?} {p:?}"
            );
        }
        if let Some(h) = normalise_hostname(line) {
            assert_eq!(
                normalise_hostname(&h).as_deref(),
                Some(h.as_str()),
                "normalising twice"
            );
        }
        let _ = detect::role_hint(line.as_bytes());
    }
}

fn h1_state_machine(ctl: u8, pieces: &[&[u8]], rng: &mut Rng) {
    let cfg = if ctl & 1 != 0 {
        tiny_http()
    } else {
        HttpConfig::default()
    };
    let conn = ConnId(7);
    let (client, server) = flow_endpoints(false, 0);
    let mut h = H1Conn::new(conn, client, server, cfg);
    let mut cov = Coverage::default();
    let mut records: Vec<Record> = Vec::new();
    let mut sampler = Sampler::new(SamplerConfig::default());
    let mut fed = [0u64; 2];
    let mut lost = [0u64; 2];
    let mut ended = [false; 2];
    let mut ts = T0;
    {
        let mut out = |r: Record| records.push(r);
        let mut sink = Sink {
            cov: &mut cov,
            out: &mut out,
            sampler: Some(&mut sampler),
        };
        for piece in pieces {
            let r = rng.next_u64();
            let dir = if r & 1 == 0 {
                Direction::ClientToServer
            } else {
                Direction::ServerToClient
            };
            let d = dir.index();
            if ended[d] {
                continue;
            }
            ts += 1_000_000;
            let now = Timestamp(ts);
            if r & 0x70 == 0 {
                let len = 1 + (r >> 16) % 300;
                h.gap(dir, len, now, &mut sink);
                lost[d] += len;
            }
            if r & 0x780 == 0 {
                h.shed(now, &mut sink);
            }
            h.data(dir, now, piece, &mut sink);
            fed[d] += piece.len() as u64;
            if h.interest() == Interest::Ignore {
                break;
            }
            if r & 0xf800 == 0 {
                ended[d] = true;
                h.end(dir, now, &mut sink);
            }
        }
        let reasons = [
            CloseReason::Fin,
            CloseReason::Rst,
            CloseReason::IdleEvicted,
            CloseReason::CapacityEvicted,
            CloseReason::EndOfCapture,
        ];
        h.close(reasons[usize::from(ctl >> 1) % reasons.len()], &mut sink);
    }
    let xs: Vec<&Exchange> = records
        .iter()
        .map(|r| match r {
            Record::Exchange(x) => x,
            Record::Connection(_) => panic!("a connection row from the HTTP/1 parser"),
        })
        .collect();
    assert_eq!(cov.exchanges, xs.len() as u64);
    check_exchanges(&xs, conn, (client, server), h.emitted, &cfg);
    let req: u64 = xs
        .iter()
        .map(|x| x.req_header_bytes + x.req_body_bytes)
        .sum();
    let resp: u64 = xs
        .iter()
        .map(|x| x.resp_header_bytes + x.resp_body_bytes)
        .sum();
    assert!(
        req <= fed[0] + lost[0] && resp <= fed[1] + lost[1],
        "exchanges count {req}/{resp} bytes of {}+{} / {}+{} fed (bytes+gaps)",
        fed[0],
        lost[0],
        fed[1],
        lost[1]
    );
}

// ---------------------------------------------------------------------------------------
// trace readers
// ---------------------------------------------------------------------------------------

/// Reads `bytes` as a trace file; `None` when it is not one. Checks the set's invariants.
fn read_traces(bytes: &[u8], limits: &Limits) -> Option<TraceSet> {
    let tmp = TempFile::new(bytes);
    match traces::read_with(&[tmp.path()], limits.clone()) {
        Ok(set) => {
            check_trace_set(&set, limits);
            Some(set)
        }
        Err(TraceError::UnknownFormat { .. }) => None,
        Err(e) => panic!("a trace file could not be read: {e}"),
    }
}

fn format_of(set: &TraceSet) -> TraceFormat {
    set.files[0].1
}

fn tiny_limits() -> Limits {
    Limits {
        max_open_traces: 2,
        max_open_spans: 6,
        max_spans_per_trace: 4,
        idle_flush_ns: 1_000,
        idle_flush_spans: 3,
        max_errors_kept: 1,
        ..Limits::default()
    }
}

fn check_trace_set(set: &TraceSet, limits: &Limits) {
    let c = &set.coverage;
    assert_eq!((c.files, set.files.len()), (1, 1));
    assert_eq!(
        c.spans_kept + c.spans_missing_ids + c.spans_over_trace_cap,
        c.spans_read,
        "a span read is neither kept nor counted as dropped: {c:?}"
    );
    assert_eq!(
        set.services.values().sum::<u64>(),
        c.spans_kept,
        "spans per service"
    );
    assert!(
        set.edges.values().sum::<u64>() <= c.spans_kept,
        "more edges than spans"
    );
    assert_eq!(set.calls.len() as u64, c.calls, "calls counted and kept");
    assert!(c.calls_virtual <= c.calls && c.calls_async <= c.calls);
    assert!(c.traces <= c.spans_kept, "more traces than spans");
    assert!(c.traces_evicted + c.traces_flushed_idle <= c.traces);
    assert!(c.orphan_spans <= c.spans_kept && c.duplicate_span_ids <= c.spans_kept);
    assert!(u64::from(set.max_depth) <= c.spans_kept);
    assert!(c.spans_kept == 0 || set.max_depth >= 1, "spans of depth 0");
    assert_eq!(
        set.errors.len() as u64,
        c.errors.min(limits.max_errors_kept as u64),
        "errors kept"
    );
    assert!(c.malformed_documents <= c.documents + 1);
    for (i, call) in set.calls.iter().enumerate() {
        if let Some(p) = call.parent_call {
            assert!(
                p < set.calls.len() && p != i,
                "call {i} has parent call {p}"
            );
        }
    }
}

/// What the reading side counted (bounds of assembly do not change these).
fn read_counters(c: &TraceCoverage) -> [u64; 7] {
    [
        c.files,
        c.bytes,
        c.documents,
        c.malformed_documents,
        c.lines_too_long,
        c.spans_read,
        c.spans_missing_ids,
    ]
}

fn clean(set: &TraceSet) -> bool {
    let c = &set.coverage;
    c.errors == 0 && c.malformed_documents == 0 && c.lines_too_long == 0
}

/// Two readings of the same spans: the same calls, statistics and counters (bytes
/// apart, as the two files differ in framing).
fn assert_same_reading(a: &TraceSet, b: &TraceSet, what: &str) {
    let (mut ca, mut cb) = (a.coverage.clone(), b.coverage.clone());
    ca.bytes = 0;
    cb.bytes = 0;
    assert_eq!(ca, cb, "{what}: the coverage differs");
    assert_eq!(a.calls, b.calls, "{what}: the calls differ");
    assert_eq!(a.services, b.services, "{what}: the services differ");
    assert_eq!(a.edges, b.edges, "{what}: the edges differ");
    assert_eq!(a.max_depth, b.max_depth, "{what}: the depth differs");
}

/// Reads `data` if it is a trace file of one of `formats`; then under tiny assembly
/// bounds (the same spans read) and gzip-compressed (the same reading).
fn read_trace_input(data: &[u8], formats: &[TraceFormat]) -> Option<TraceSet> {
    let set = read_traces(data, &Limits::default())?;
    if !formats.contains(&format_of(&set)) {
        return None;
    }
    let tiny = read_traces(data, &tiny_limits()).expect("the same bytes sniff the same");
    assert_eq!(
        read_counters(&tiny.coverage),
        read_counters(&set.coverage),
        "assembly bounds changed what was read"
    );
    if !data.starts_with(&GZIP_MAGIC) {
        let zipped = read_traces(&gzip(data), &Limits::default())
            .expect("a trace file gzip-compressed is still one");
        assert_eq!(
            format_of(&zipped),
            format_of(&set),
            "gzip changed the format"
        );
        assert_eq!(
            zipped.coverage.bytes, set.coverage.bytes,
            "bytes read after gzip"
        );
        assert_same_reading(&zipped, &set, "gzip-compressed");
    }
    Some(set)
}

/// `a` read as format `fa` and `b` as `fb` (else nothing is compared), both without
/// errors: the same reading.
fn compare_framings(a: &[u8], fa: TraceFormat, b: &[u8], fb: TraceFormat, what: &str) {
    let (Some(sa), Some(sb)) = (
        read_traces(a, &Limits::default()),
        read_traces(b, &Limits::default()),
    ) else {
        return;
    };
    if format_of(&sa) == fa && format_of(&sb) == fb && clean(&sa) && clean(&sb) {
        assert_same_reading(&sa, &sb, what);
    }
}

/// OTLP/JSON trace files (a document or JSON lines). The input with its line ends made
/// spaces is one line, read by the fast parser (or the reference types when it declines);
/// with a newline after its opening brace it is a document, read by the streamed reference
/// types: both must give the same spans.
pub fn trace_otlp_json(data: &[u8]) {
    let formats = [TraceFormat::OtlpJson, TraceFormat::OtlpJsonLines];
    if read_trace_input(data, &formats).is_none() {
        return;
    }
    let line: Vec<u8> = data
        .iter()
        .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b })
        .collect();
    let Some(open) = line.iter().position(|b| !b.is_ascii_whitespace()) else {
        return;
    };
    if line[open] != b'{' {
        return;
    }
    let mut doc = line.clone();
    doc.insert(open + 1, b'\n');
    compare_framings(
        &line,
        TraceFormat::OtlpJsonLines,
        &doc,
        TraceFormat::OtlpJson,
        "one OTLP request as a JSON line and as a document",
    );
}

/// Binary OTLP trace files. A single request also read length-delimited (its varint
/// length before it) must give the same spans.
pub fn trace_otlp_proto(data: &[u8]) {
    let formats = [
        TraceFormat::OtlpProtobuf {
            length_delimited: false,
        },
        TraceFormat::OtlpProtobuf {
            length_delimited: true,
        },
    ];
    let Some(set) = read_trace_input(data, &formats) else {
        return;
    };
    if format_of(&set) == formats[0] {
        let mut framed = Vec::with_capacity(data.len() + 10);
        let mut n = data.len() as u64;
        while n >= 0x80 {
            framed.push((n as u8) | 0x80);
            n >>= 7;
        }
        framed.push(n as u8);
        framed.extend_from_slice(data);
        compare_framings(
            data,
            formats[0],
            &framed,
            formats[1],
            "one OTLP request plain and length-delimited",
        );
    }
}

/// Jaeger JSON trace files. One trace document also read as the query API's
/// `{"data": [trace]}` must give the same spans.
pub fn trace_jaeger(data: &[u8]) {
    let formats = [TraceFormat::JaegerTrace, TraceFormat::JaegerQuery];
    let Some(set) = read_trace_input(data, &formats) else {
        return;
    };
    if format_of(&set) == TraceFormat::JaegerTrace {
        let mut query = b"{\"data\":[".to_vec();
        query.extend_from_slice(data);
        query.extend_from_slice(b"]}");
        compare_framings(
            data,
            TraceFormat::JaegerTrace,
            &query,
            TraceFormat::JaegerQuery,
            "a Jaeger trace alone and in a query response",
        );
    }
}

/// Zipkin v2 JSON trace files. A list of spans also read as a list of one trace
/// (`[[...]]`) must give the same spans.
pub fn trace_zipkin(data: &[u8]) {
    if read_trace_input(data, &[TraceFormat::ZipkinV2]).is_none() {
        return;
    }
    // Only a list of spans: an element that is itself a list would become a span.
    let spans_only = serde_json::from_slice::<serde_json::Value>(data).is_ok_and(|v| {
        v.as_array()
            .is_some_and(|a| a.iter().all(|e| e.is_object()))
    });
    if !spans_only {
        return;
    }
    let mut nested = b"[".to_vec();
    nested.extend_from_slice(data);
    nested.push(b']');
    compare_framings(
        data,
        TraceFormat::ZipkinV2,
        &nested,
        TraceFormat::ZipkinV2,
        "Zipkin spans as a list and as a list of one trace",
    );
}

// ---------------------------------------------------------------------------------------
// identity
// ---------------------------------------------------------------------------------------

/// The `--services` YAML reader. A file that parses has named services whose every
/// entry matches that service, most specific match first; each matcher is normalised and
/// reads back from its text; any line of the input parsed as an entry or a hostname
/// obeys the same rules.
pub fn services_yaml(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match ServicesFile::parse(Path::new("services.yaml"), &text) {
        Ok(file) => {
            for (service, matchers) in &file.services {
                assert!(!service.is_empty(), "a service without a name");
                for m in matchers {
                    check_matcher(m);
                    let found = match m {
                        Matcher::Listener(sa) => file.match_address(sa.ip(), Some(sa.port())),
                        Matcher::Host(ip) => file.match_address(*ip, None),
                        Matcher::Network(n) => file.match_address(n.network(), None),
                        Matcher::Hostname(h) => file.match_hostname(h),
                    };
                    assert!(
                        found.iter().any(|f| f.service == service.as_str()),
                        "{service}: its entry {m:?} does not match it"
                    );
                    assert!(
                        found
                            .windows(2)
                            .all(|w| specificity(w[0].matcher) >= specificity(w[1].matcher)),
                        "matches not most specific first: {found:?}"
                    );
                }
            }
        }
        Err(e) => assert!(e.to_string().starts_with("services.yaml: "), "{e}"),
    }
    for line in text.lines().take(64) {
        if let Some(m) = Matcher::parse(line) {
            check_matcher(&m);
        }
        if let Some(h) = normalise_hostname(line) {
            assert_eq!(
                normalise_hostname(&h).as_deref(),
                Some(h.as_str()),
                "normalising twice"
            );
            let _ = service_of_hostname(&h);
        }
    }
}

/// The order `ServicesFile::match_address` promises (listener, host, longer network,
/// shorter network, hostname).
fn specificity(m: &Matcher) -> u32 {
    match m {
        Matcher::Listener(_) => 300,
        Matcher::Host(_) => 200,
        Matcher::Network(n) => 100 + u32::from(n.prefix_len()),
        Matcher::Hostname(_) => 0,
    }
}

fn check_matcher(m: &Matcher) {
    let text = match m {
        Matcher::Listener(sa) => sa.to_string(),
        Matcher::Host(ip) => ip.to_string(),
        Matcher::Network(n) => {
            assert_eq!(*n, n.trunc(), "a network with host bits");
            n.to_string()
        }
        Matcher::Hostname(h) => {
            assert_eq!(
                normalise_hostname(h).as_deref(),
                Some(h.as_str()),
                "{h:?} not normalised"
            );
            h.clone()
        }
    };
    assert_eq!(
        Matcher::parse(&text).as_ref(),
        Some(m),
        "{m:?} written as {text:?} reads back differently"
    );
}

/// The `--k8s` reader (kubectl JSON). An inventory that parses names each pod IP by
/// its pod, each other ClusterIP by its Service, each Endpoints address (never a pod's)
/// by its Service on its ports; parsing is deterministic.
pub fn k8s_json(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let path = Path::new("cluster.json");
    let inv = match K8sInventory::parse(path, &text) {
        Ok(inv) => inv,
        Err(e) => {
            assert!(e.to_string().starts_with("cluster.json: "), "{e}");
            return;
        }
    };
    for (ip, n) in &inv.pods {
        assert_eq!(inv.name_of(*ip, None), Some(n), "pod {ip}");
    }
    for (ip, n) in &inv.services {
        if !inv.pods.contains_key(ip) {
            assert_eq!(inv.name_of(*ip, None), Some(n), "service {ip}");
        }
    }
    for ((ip, port), n) in &inv.endpoints {
        assert!(
            !inv.pods.contains_key(ip),
            "Endpoints address {ip} is a pod's"
        );
        if !inv.services.contains_key(ip) {
            assert_eq!(
                inv.name_of(*ip, Some(*port)),
                Some(n),
                "endpoint {ip}:{port}"
            );
        }
    }
    let again = K8sInventory::parse(path, &text).expect("parsed once, parses again");
    assert!(
        again.pods == inv.pods
            && again.services == inv.services
            && again.endpoints == inv.endpoints,
        "two parses of the same file differ"
    );
}

// ---------------------------------------------------------------------------------------
// http2
// ---------------------------------------------------------------------------------------

/// HTTP/2 frames through the HTTP stage, and HPACK alone. Input: `[control][seed]`, then
/// frame records `[type][flags][stream][len][len bytes]` (type and stream taken modulo 12
/// and 8, so that unknown types and stream 0 occur; flags bit 7 picks the direction:
/// set for the server; flags are kept to END_STREAM, END_HEADERS, PADDED and PRIORITY),
/// each written as a real 9-byte frame header and its payload
/// (random HPACK, SETTINGS, padding...); control bit 0 starts the client with the
/// preface (else the connection is found mid-way, or not at all), bit 1 uses tiny HTTP
/// bounds, bit 2 sends an HTTP/1.1 `Upgrade: h2c` exchange first, bits 3-4 put raw input
/// bytes between frames. The streams are cut into pieces at seeded points, delivered in
/// a seeded order with gaps. Checks: every exchange is reported once with indices
/// `0..exchanges` and a stream id for HTTP/2 rows; header names are lower-case, never
/// pseudo-headers; routes obey the privacy rules (gRPC method paths aside); gRPC message
/// bytes fit in the body; the stage holds no more header memory than its bound; the
/// HPACK decoder reads the whole input as one block (from the start and mid-way) without
/// reporting more unknown fields than fields.
pub fn http2(data: &[u8]) {
    use crate::ingest::http::h2::hpack::Decoder as Hpack;
    let [ctl, seed, body @ ..] = data else {
        return;
    };
    let (ctl, seed) = (*ctl, *seed);
    for from_start in [true, false] {
        let mut d = Hpack::new(from_start);
        for block in [body, body] {
            // An index past the table is unknown even on a connection seen from its start
            // (a corrupt block there is still read as far as it goes).
            if let Ok(s) = d.decode(block, |_| {}) {
                assert!(s.unknown <= s.fields, "{s:?}");
            }
        }
    }
    crate::ingest::http::h2::frame::walk(
        body,
        crate::ingest::http::h2::frame::LARGEST_MAX_FRAME,
        64,
    );
    let mut rng = Rng::new((u64::from(seed) << 8) | u64::from(ctl));
    let mut sides: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    if ctl & 4 != 0 {
        sides[0].extend_from_slice(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n");
        sides[1].extend_from_slice(
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
        );
    }
    if ctl & 5 != 0 {
        sides[0].extend_from_slice(crate::ingest::http::detect::H2_PREFACE);
    }
    let mut rest = body;
    while let [kind, flags, stream, len, more @ ..] = rest {
        let n = usize::from(*len).min(more.len());
        let (payload, after) = more.split_at(n);
        let stream = u32::from(*stream % 8);
        let d = usize::from(*flags >> 7);
        let out = &mut sides[d];
        out.extend_from_slice(&(n as u32).to_be_bytes()[1..]);
        out.push(*kind % 12);
        out.push(*flags & 0x2d);
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
        if ctl & 0x18 == 0x18 && rng.next_u64() % 8 == 0 {
            out.extend_from_slice(&after[..after.len().min(3)]);
        }
        rest = after;
    }
    let cfg = if ctl & 2 != 0 {
        HttpConfig {
            max_header_bytes: 64,
            max_header_bytes_total: 256,
            max_h2_streams: 2,
            ..HttpConfig::default()
        }
    } else {
        HttpConfig::default()
    };
    let mut stage = HttpStage::new(cfg);
    let mut cov = Coverage::default();
    let mut records: Vec<Record> = Vec::new();
    let conn = ConnId(3);
    let (client, server) = flow_endpoints(false, 1);
    let mut ts = T0;
    let mut push = |stage: &mut HttpStage, kind: EventKind<'_>, records: &mut Vec<Record>| {
        ts += 1_000_000;
        let ev = StreamEvent {
            conn,
            ts: Timestamp(ts),
            kind,
        };
        stage.push(ev, &mut cov, &mut |r| records.push(r));
        assert!(
            stage.held_header_bytes() <= cfg.max_header_bytes_total,
            "{} header bytes held",
            stage.held_header_bytes()
        );
    };
    push(
        &mut stage,
        EventKind::Opened { client, server },
        &mut records,
    );
    let cuts: [Vec<usize>; 2] = [
        cut_points(sides[0].len(), &mut rng, 6),
        cut_points(sides[1].len(), &mut rng, 6),
    ];
    let mut pieces: [std::collections::VecDeque<&[u8]>; 2] = [
        split_at_points(&sides[0], &cuts[0]).into(),
        split_at_points(&sides[1], &cuts[1]).into(),
    ];
    // The upgrade's request and answer go first, in order, as a client would wait.
    while !pieces[0].is_empty() || !pieces[1].is_empty() {
        let r = rng.next_u64();
        let d = if pieces[1].is_empty() || (!pieces[0].is_empty() && r & 1 == 0) {
            0
        } else {
            1
        };
        let dir = [Direction::ClientToServer, Direction::ServerToClient][d];
        if r & 0x3f0 == 0 {
            push(
                &mut stage,
                EventKind::Gap {
                    dir,
                    len: 1 + (r >> 16) % 200,
                },
                &mut records,
            );
        }
        if let Some(p) = pieces[d].pop_front() {
            push(
                &mut stage,
                EventKind::Data {
                    dir,
                    bytes: p,
                    stall_ns: None,
                },
                &mut records,
            );
        }
    }
    let summary = TcpSummary {
        conn,
        client,
        server,
        first_packet: Timestamp(T0),
        last_packet: Timestamp(T0),
        syn: None,
        syn_ack: None,
        handshake_ack: None,
        handshake_seen: false,
        roles_inferred: true,
        client_to_server: Default::default(),
        server_to_client: Default::default(),
        close: CloseReason::Fin,
    };
    push(&mut stage, EventKind::Closed(&summary), &mut records);
    assert_eq!(stage.live_connections(), 0);
    let mut indices = Vec::new();
    let mut row = None;
    for r in &records {
        match r {
            Record::Exchange(e) => {
                assert!(row.is_none(), "an exchange after its connection's row");
                indices.push(e.index);
                check_h2_exchange(e);
            }
            Record::Connection(c) => row = Some(c.exchanges),
        }
    }
    indices.sort_unstable();
    let n = row.expect("the connection's row") as usize;
    assert_eq!(
        indices,
        (0..n as u32).collect::<Vec<_>>(),
        "exchange indices"
    );
}

fn check_h2_exchange(e: &Exchange) {
    for names in [&e.req_header_names, &e.resp_header_names] {
        assert!(!has_upper(names), "upper-case header names {names:?}");
        assert!(!names.contains(':'), "a pseudo-header in {names:?}");
    }
    let grpc_path = e
        .route
        .as_deref()
        .is_some_and(|r| route::grpc_method(r).is_some());
    if let Some(r) = e.route.as_deref().filter(|_| !grpc_path) {
        check_route(r);
    }
    if let Some(t) = &e.trace_id {
        assert!(is_id_hex(t, 32), "trace id {t:?}");
    }
    if let Some(h) = &e.h2 {
        assert!(h.stream_id > 0 || e.version != "HTTP/2");
        assert!(u64::from(h.req_data_frames) * 9 <= e.req_body_bytes);
        assert!(u64::from(h.resp_data_frames) * 9 <= e.resp_body_bytes);
    }
    if let (Some(g), Some(_)) = (&e.grpc, &e.h2) {
        assert!(
            g.req_message_bytes <= e.req_body_len,
            "{g:?} {}",
            e.req_body_len
        );
        assert!(
            g.resp_message_bytes <= e.resp_body_len,
            "{g:?} {}",
            e.resp_body_len
        );
    }
}
