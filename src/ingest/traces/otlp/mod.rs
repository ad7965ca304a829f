//! OTLP readers: JSON lines, one JSON document (streamed over `resourceSpans`), and
//! protobuf (streamed over the `resource_spans` field), all into `opentelemetry-proto`
//! types, then into `Span`s.
//!
//! opentelemetry-proto's serde reads the canonical OTLP/JSON of the spec: hex ids (either
//! case), 64-bit integers as strings, integer enums, `{}` status, lowerCamelCase keys
//! (checked on the spec's example and Jaeger's fixtures in the tests). It does not read
//! enum names as strings (`"kind": "SPAN_KIND_SERVER"`), which the spec does not allow.

mod convert;
mod fast;
mod lines;
mod reference;

use std::io::{BufRead, Read};
use std::path::Path;

use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use prost::Message;
use serde::de::DeserializeSeed;

use super::assemble::Ingest;
use super::error::{Location, TraceError};
use super::stream::{json_documents, KeyedArray};
pub(crate) use convert::convert;
pub(crate) use lines::read_lines;
#[cfg(feature = "otel")]
pub(crate) use reference::request as json_request;

/// JSON documents, streamed: each `resourceSpans` element is converted as soon as it is
/// parsed, so a truncated file still yields the elements before the cut. Documents may
/// follow one another (pretty-printed requests appended to one file).
pub(crate) fn read_document(r: impl BufRead, file: &Path, ing: &mut Ingest) -> std::io::Result<()> {
    json_documents(r, file, ing, "no resourceSpans array", |de, ing| {
        let mut each = |rs: reference::Element| convert(rs.0, ing);
        KeyedArray::new(&["resourceSpans", "resource_spans"], &mut each)
            .within(&["result"])
            .deserialize(de)
    })
}

/// Binary OTLP. Without `length_delimited`, the file is one `ExportTraceServiceRequest`,
/// read entry by entry: the request is only a repeated field 1, so each `ResourceSpans`
/// can be decoded alone and memory holds one of them. With it, each request is prefixed
/// by its varint length (prost `encode_length_delimited`, what a proxy or a recorder
/// writing several requests to one file uses); the entries inside are read the same way.
pub(crate) fn read_protobuf(
    r: impl BufRead,
    file: &Path,
    length_delimited: bool,
    ing: &mut Ingest,
) -> std::io::Result<()> {
    let mut pb = PbReader {
        r,
        off: 0,
        buf: Vec::new(),
    };
    let res = if length_delimited {
        loop {
            let at = pb.off;
            match pb.varint()? {
                None => break Ok(()),
                Some(len) => {
                    ing.coverage().documents += 1;
                    if let Err(e) = read_entries(&mut pb, file, Some(len), ing)? {
                        break Err((at, e));
                    }
                }
            }
        }
    } else {
        ing.coverage().documents += 1;
        read_entries(&mut pb, file, None, ing)?.map_err(|e| (0, e))
    };
    ing.coverage().bytes += pb.off;
    if let Err((_, e)) = res {
        ing.coverage().malformed_documents += 1;
        ing.error(e);
    }
    Ok(())
}

/// Reads `resource_spans` entries until `budget` bytes (or EOF when `None`).
fn read_entries<R: BufRead>(
    pb: &mut PbReader<R>,
    file: &Path,
    budget: Option<u64>,
    ing: &mut Ingest,
) -> std::io::Result<Result<(), TraceError>> {
    let start = pb.off;
    let max = ing.limits.max_message_bytes as u64;
    let bad = |at: u64, what: &str| Ok(Err(TraceError::malformed(file, Location::Byte(at), what)));
    loop {
        if budget.is_some_and(|b| pb.off - start >= b) {
            return Ok(Ok(()));
        }
        let at = pb.off;
        let Some(tag) = pb.varint()? else {
            return if budget.is_some() {
                bad(at, "truncated: message ends early")
            } else {
                Ok(Ok(()))
            };
        };
        let (field, wire) = (tag >> 3, tag & 7);
        let len = match wire {
            0 => {
                // A varint field the request does not define: skip it.
                if pb.varint()?.is_none() {
                    return bad(at, "truncated varint");
                }
                continue;
            }
            2 => match pb.varint()? {
                Some(l) => l,
                None => return bad(at, "truncated length"),
            },
            _ => {
                return bad(
                    at,
                    "not an OTLP ExportTraceServiceRequest (unexpected wire type)",
                )
            }
        };
        if len > max {
            return bad(
                at,
                &format!("entry of {len} bytes over the {max}-byte bound"),
            );
        }
        if !pb.fill(len as usize)? {
            return bad(at, "truncated: entry ends early");
        }
        if field != 1 {
            continue;
        }
        match ResourceSpans::decode(pb.buf.as_slice()) {
            Ok(rs) => convert(rs, ing),
            Err(_) => return bad(at, "ResourceSpans does not decode"),
        }
    }
}

struct PbReader<R> {
    r: R,
    off: u64,
    buf: Vec<u8>,
}

impl<R: BufRead> PbReader<R> {
    fn byte(&mut self) -> std::io::Result<Option<u8>> {
        let b = self.r.fill_buf()?.first().copied();
        if b.is_some() {
            self.r.consume(1);
            self.off += 1;
        }
        Ok(b)
    }

    /// `None` at EOF or in the middle of a varint (the caller reports where).
    fn varint(&mut self) -> std::io::Result<Option<u64>> {
        let mut v = 0u64;
        for i in 0..10 {
            let Some(b) = self.byte()? else {
                return Ok(None);
            };
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    /// Reads exactly `n` bytes into `buf`; false if the stream ends first.
    fn fill(&mut self, n: usize) -> std::io::Result<bool> {
        self.buf.clear();
        let got = (&mut self.r).take(n as u64).read_to_end(&mut self.buf)?;
        self.off += got as u64;
        Ok(got == n)
    }
}
