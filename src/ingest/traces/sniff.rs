//! Trace format detection from the first bytes of a file (after gzip), never its name.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

/// How many (decompressed) bytes detection looks at.
const SNIFF_BYTES: usize = 64 * 1024;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum TraceFormat {
    /// One OTLP/JSON `ExportTraceServiceRequest` (or `TracesData`) document.
    OtlpJson,
    /// One OTLP/JSON request per line (the Collector's file exporter).
    OtlpJsonLines,
    /// Binary OTLP: one `ExportTraceServiceRequest` per file, or several, each prefixed
    /// by its varint length (prost `encode_length_delimited`).
    OtlpProtobuf { length_delimited: bool },
    /// Jaeger query API / UI download `{"data": [trace, ...]}`.
    JaegerQuery,
    /// One Jaeger trace `{"traceID", "spans", "processes"}` (UI single-trace JSON), or
    /// Jaeger's model protojson `{"spans": [...]}` with each span's process inline.
    JaegerTrace,
    /// Zipkin v2 JSON: a list of spans, or a list of traces (lists of spans).
    ZipkinV2,
    /// Zipkin v1 JSON (annotations with endpoints, binary annotations), the same lists.
    ZipkinV1,
}

impl TraceFormat {
    /// The name inputs are listed under in the reports.
    pub const fn name(self) -> &'static str {
        match self {
            TraceFormat::OtlpJson => "otlp-json",
            TraceFormat::OtlpJsonLines => "otlp-json-lines",
            TraceFormat::OtlpProtobuf {
                length_delimited: false,
            } => "otlp-protobuf",
            TraceFormat::OtlpProtobuf {
                length_delimited: true,
            } => "otlp-protobuf-delimited",
            TraceFormat::JaegerQuery => "jaeger-query",
            TraceFormat::JaegerTrace => "jaeger-trace",
            TraceFormat::ZipkinV2 => "zipkin-v2",
            TraceFormat::ZipkinV1 => "zipkin-v1",
        }
    }
}

/// Whether a file starts with the gzip magic (read through a decoder).
pub fn is_gzip(path: &Path) -> bool {
    let mut magic = [0u8; 2];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| magic == GZIP_MAGIC)
}

/// Opens a file for reading, through a gzip decoder when it starts with the gzip magic.
pub fn open(path: &Path) -> io::Result<Box<dyn BufRead + Send>> {
    let mut f = BufReader::with_capacity(256 * 1024, File::open(path)?);
    let gz = f.fill_buf()?.starts_with(&GZIP_MAGIC);
    Ok(if gz {
        Box::new(BufReader::with_capacity(
            256 * 1024,
            flate2::bufread::MultiGzDecoder::new(f),
        ))
    } else {
        Box::new(f)
    })
}

/// Detects the trace format of a file from its content, or `None` if it is not a trace
/// file linkrank reads (captures, unreadable files).
pub fn sniff(path: &Path) -> Option<TraceFormat> {
    let r = open(path).ok()?;
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    // A gzip stream cut short still gives its first bytes; detection uses what it got.
    let _ = r.take(SNIFF_BYTES as u64).read_to_end(&mut head);
    match sniff_bytes(&head)? {
        TraceFormat::OtlpJson | TraceFormat::OtlpJsonLines => Some(otlp_json_framing(path)),
        f => Some(f),
    }
}

/// How far the first OTLP/JSON line is followed to tell lines from one document.
const LINE_SCAN_BYTES: u64 = 16 << 20;

/// JSON lines when the first value closes before the first newline (the Collector's file
/// exporter writes batches of hundreds of KB per line, beyond the sniffed head); one
/// document (streamed, and several in a row are read too) when a newline comes first
/// (pretty-printed) or the first value is longer than the scan.
fn otlp_json_framing(path: &Path) -> TraceFormat {
    let Ok(mut r) = open(path) else {
        return TraceFormat::OtlpJson;
    };
    let mut scan = ValueScan::default();
    let mut seen = 0u64;
    while seen < LINE_SCAN_BYTES {
        let buf = match r.fill_buf() {
            Ok(b) if !b.is_empty() => b,
            _ => break,
        };
        if let Some(f) = scan.framing(buf) {
            return f;
        }
        let n = buf.len();
        seen += n as u64;
        r.consume(n);
    }
    TraceFormat::OtlpJson
}

/// Follows JSON nesting byte by byte (strings and escapes honoured).
#[derive(Default)]
struct ValueScan {
    started: bool,
    depth: usize,
    in_str: bool,
    esc: bool,
}

impl ValueScan {
    /// Lines if the first value closes before a newline, a document if a newline comes
    /// first, `None` if `bytes` ended before either.
    fn framing(&mut self, bytes: &[u8]) -> Option<TraceFormat> {
        for &b in bytes {
            if b == b'\n' && self.started {
                return Some(TraceFormat::OtlpJson);
            }
            if self.push(b) {
                return Some(TraceFormat::OtlpJsonLines);
            }
        }
        None
    }

    /// True when `b` closes the first value.
    fn push(&mut self, b: u8) -> bool {
        if self.in_str {
            match (self.esc, b) {
                (true, _) => self.esc = false,
                (false, b'\\') => self.esc = true,
                (false, b'"') => self.in_str = false,
                _ => {}
            }
            return false;
        }
        match b {
            b'"' => self.in_str = true,
            b'{' | b'[' => {
                self.started = true;
                self.depth += 1;
            }
            b'}' | b']' if self.started => {
                self.depth = self.depth.saturating_sub(1);
                return self.depth == 0;
            }
            _ => {}
        }
        false
    }
}

/// Detection on the first bytes of a (decompressed) file.
pub fn sniff_bytes(head: &[u8]) -> Option<TraceFormat> {
    let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = text.iter().position(|b| !b.is_ascii_whitespace());
    match start.map(|i| (i, text[i])) {
        Some((i, b'{')) => sniff_object(&text[i..]),
        Some((i, b'[')) => {
            let t = &text[i..];
            if !(contains(t, b"\"traceId\"") && contains(t, b"\"id\"")) {
                return None;
            }
            let v1 = contains(t, b"\"binaryAnnotations\"")
                || (contains(t, b"\"endpoint\"") && !contains(t, b"\"localEndpoint\""));
            Some(if v1 {
                TraceFormat::ZipkinV1
            } else {
                TraceFormat::ZipkinV2
            })
        }
        _ => sniff_protobuf(head),
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

fn sniff_object(t: &[u8]) -> Option<TraceFormat> {
    if contains(t, b"\"resourceSpans\"") || contains(t, b"\"resource_spans\"") {
        // Lines if the first value closes before the first newline.
        return Some(
            ValueScan::default()
                .framing(t)
                .unwrap_or(TraceFormat::OtlpJson),
        );
    }
    if contains(t, b"\"data\"") && (contains(t, b"\"traceID\"") || contains(t, b"\"spans\"")) {
        // `data` first; a single trace may also have "spans" but then no "data" key at
        // the top. Checked by order: `{"data":` opens the query API shape.
        let after_brace = t[1..].iter().position(|b| !b.is_ascii_whitespace())?;
        if t[1 + after_brace..].starts_with(b"\"data\"") {
            return Some(TraceFormat::JaegerQuery);
        }
    }
    if contains(t, b"\"spans\"") && (contains(t, b"\"traceID\"") || contains(t, b"\"traceId\"")) {
        return Some(TraceFormat::JaegerTrace);
    }
    if contains(t, b"\"data\"") && contains(t, b"\"traceID\"") {
        return Some(TraceFormat::JaegerQuery);
    }
    None
}

/// Reads a protobuf varint from the front of `b`: (value, bytes used).
pub(crate) fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &x) in b.iter().take(10).enumerate() {
        v |= u64::from(x & 0x7f) << (7 * i);
        if x & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Binary OTLP. An `ExportTraceServiceRequest` is a run of field 1 (`resource_spans`,
/// tag byte 0x0A) entries; a length-delimited stream puts a varint length before each
/// request. The first `ResourceSpans` must decode when it fits in the sniffed bytes,
/// which keeps captures (pcapng also starts with 0x0A) out.
fn sniff_protobuf(head: &[u8]) -> Option<TraceFormat> {
    use prost::Message;
    const CAPTURE_MAGICS: [[u8; 4]; 5] = [
        [0x0a, 0x0d, 0x0d, 0x0a],
        [0xd4, 0xc3, 0xb2, 0xa1],
        [0xa1, 0xb2, 0xc3, 0xd4],
        [0x4d, 0x3c, 0xb2, 0xa1],
        [0xa1, 0xb2, 0x3c, 0x4d],
    ];
    if head.len() < 4 || CAPTURE_MAGICS.iter().any(|m| head.starts_with(m)) {
        return None;
    }
    // Does a ResourceSpans entry (tag, len, body) start at `at` and decode?
    let entry_ok = |at: usize| -> bool {
        if head.get(at) != Some(&0x0a) {
            return false;
        }
        let Some((len, n)) = head.get(at + 1..).and_then(varint) else {
            return false;
        };
        let body = at + 1 + n;
        match usize::try_from(len)
            .ok()
            .and_then(|l| head.get(body..body.checked_add(l)?))
        {
            Some(b) => ResourceSpansProbe::decode(b).is_ok_and(|r| !r.scope_spans.is_empty()),
            // Longer than the sniffed bytes: plausible, cannot check further.
            None => head.len() == SNIFF_BYTES,
        }
    };
    if entry_ok(0) {
        return Some(TraceFormat::OtlpProtobuf {
            length_delimited: false,
        });
    }
    let (_, n) = varint(head)?;
    entry_ok(n).then_some(TraceFormat::OtlpProtobuf {
        length_delimited: true,
    })
}

type ResourceSpansProbe = opentelemetry_proto::tonic::trace::v1::ResourceSpans;
