//! Trace files as input: OTLP (JSON, JSON lines, protobuf; gzip too), Jaeger JSON and
//! Zipkin v2 JSON, detected from content, read as streams into owned `Span`s, assembled
//! per trace under bounds, and turned into `SpanCall`s between services.
//!
//! ```text
//! file --sniff--> TraceFormat --reader (otlp | jaeger | zipkin)--> Span
//!      --assemble (bounded map of open traces)--> trace --calls--> SpanCall, tree statistics
//! ```
//! See docs/traces.md for the formats, the pairing rules and the bounds.

mod assemble;
mod calls;
mod error;
mod ids;
mod jaeger;
#[cfg(feature = "otel")]
pub mod listen;
mod otlp;
#[cfg(feature = "otel")]
pub mod receive;
mod shared_strings;
mod sniff;
mod span;
mod stream;
#[cfg(test)]
mod tests;
mod zipkin;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use assemble::{default_threads, Limits};
pub use calls::{CallRule, SpanCall, SpanCallKind, UNKNOWN_CALLER, UNKNOWN_PEER, USER};
pub use error::{Location, TraceCoverage, TraceError};
pub use sniff::{is_gzip, sniff, sniff_bytes, TraceFormat};
pub use span::{
    strip_query, HttpAttrs, PeerAttrs, Span, SpanId, SpanKind, SpanLink, SpanStatus, TraceId,
};

/// Everything read from trace files.
#[derive(Debug, Default)]
pub struct TraceSet {
    /// Calls, trace by trace; `SpanCall::parent_call` indexes this vector. Empty when
    /// read by `read_streaming`.
    pub calls: Vec<SpanCall>,
    /// Spans kept per `service.name`.
    pub services: BTreeMap<Arc<str>, u64>,
    /// Parent -> child span pairs whose services differ, counted per (parent, child)
    /// service pair (the MANIFEST's "cross-service edges").
    pub edges: BTreeMap<(Arc<str>, Arc<str>), u64>,
    /// Deepest span of any trace (a root is depth 1).
    pub max_depth: u32,
    /// Each file read and the format detected.
    pub files: Vec<(PathBuf, TraceFormat)>,
    pub coverage: TraceCoverage,
    /// The first `Limits::max_errors_kept` problems (all are counted in coverage).
    pub errors: Vec<TraceError>,
}

/// Reads trace files with the default bounds. A file that is not a trace file, or that
/// cannot be opened, is an error; malformed content is not: it goes to
/// `TraceSet::errors` and the spans read before it are kept.
pub fn read<P: AsRef<Path>>(paths: &[P]) -> Result<TraceSet, TraceError> {
    read_with(paths, Limits::default())
}

pub fn read_with<P: AsRef<Path>>(paths: &[P], limits: Limits) -> Result<TraceSet, TraceError> {
    read_into(paths, limits, None)
}

/// What takes the calls of each trace as it is built, instead of `TraceSet::calls`.
pub trait CallSink {
    /// The calls of one trace, in the order `TraceSet::calls` would hold them;
    /// `SpanCall::parent_call` indexes `calls`.
    fn trace(&mut self, calls: &[SpanCall]);
}

/// `read_with`, the calls handed to `sink` trace by trace (bounded memory: none are kept,
/// `TraceSet::calls` stays empty and `coverage.calls` counts them).
pub fn read_streaming<P: AsRef<Path>>(
    paths: &[P],
    limits: Limits,
    sink: &mut dyn CallSink,
) -> Result<TraceSet, TraceError> {
    read_into(paths, limits, Some(sink))
}

fn read_into<P: AsRef<Path>>(
    paths: &[P],
    limits: Limits,
    sink: Option<&mut dyn CallSink>,
) -> Result<TraceSet, TraceError> {
    let mut ing = assemble::Ingest::new(limits, sink);
    for p in paths {
        let path = p.as_ref();
        let format = sniff(path).ok_or_else(|| match std::fs::metadata(path) {
            Err(source) => TraceError::Io {
                file: path.to_path_buf(),
                source,
            },
            Ok(_) => TraceError::UnknownFormat {
                file: path.to_path_buf(),
            },
        })?;
        read_file(&mut ing, path, format)?;
    }
    Ok(ing.finish())
}

fn read_file(
    ing: &mut assemble::Ingest,
    path: &Path,
    format: TraceFormat,
) -> Result<(), TraceError> {
    let io = |source| TraceError::Io {
        file: path.to_path_buf(),
        source,
    };
    ing.start_file(path);
    ing.set.files.push((path.to_path_buf(), format));
    let r = sniff::open(path).map_err(io)?;
    let res = match format {
        TraceFormat::OtlpJson => otlp::read_document(r, path, ing),
        TraceFormat::OtlpJsonLines => otlp::read_lines(r, path, ing),
        TraceFormat::OtlpProtobuf { length_delimited } => {
            otlp::read_protobuf(r, path, length_delimited, ing)
        }
        TraceFormat::JaegerQuery => {
            jaeger::read_query(r, path, ing);
            Ok(())
        }
        TraceFormat::JaegerTrace => jaeger::read_trace(r, path, ing),
        TraceFormat::ZipkinV2 | TraceFormat::ZipkinV1 => {
            zipkin::read(r, path, ing);
            Ok(())
        }
    };
    // A read error mid-file (a gzip stream cut short, a disk error) ends this file but
    // keeps what was read: the same treatment as a truncated document.
    if let Err(e) = res {
        ing.coverage().malformed_documents += 1;
        ing.error(TraceError::malformed(
            path,
            Location::File,
            format!("read stopped: {e}"),
        ));
    }
    Ok(())
}
