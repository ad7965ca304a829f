//! Errors of the trace readers and the counters of what they dropped.
//!
//! A malformed document never stops a run: the reader records a `TraceError` (file,
//! where, what), keeps what it read before, and counts the loss in `TraceCoverage`.

use std::fmt;
use std::path::PathBuf;

/// Where in a file a problem was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// 1-based line of a JSON-lines file.
    Line(u64),
    /// 1-based line and column inside a JSON document.
    LineColumn { line: u64, column: u64 },
    /// Byte offset in a (decompressed) protobuf stream.
    Byte(u64),
    /// The file as a whole.
    File,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line(l) => write!(f, "line {l}"),
            Location::LineColumn { line, column } => write!(f, "line {line} column {column}"),
            Location::Byte(b) => write!(f, "byte {b}"),
            Location::File => f.write_str("file"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("{}: cannot read: {source}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a trace file linkrank reads (OTLP JSON or protobuf, Jaeger JSON, Zipkin v2 JSON)", file.display())]
    UnknownFormat { file: PathBuf },
    #[error("{}: {at}: {what}", file.display())]
    Malformed {
        file: PathBuf,
        at: Location,
        what: String,
    },
}

impl TraceError {
    pub(crate) fn malformed(file: &std::path::Path, at: Location, what: impl Into<String>) -> Self {
        TraceError::Malformed {
            file: file.to_path_buf(),
            at,
            what: what.into(),
        }
    }

    /// A serde_json error as a message without the offending value: serde quotes the
    /// string it could not take, and that string may be an attribute value (a token, a
    /// query), which must not reach a log line.
    pub(crate) fn from_json(
        file: &std::path::Path,
        base_line: Option<u64>,
        e: &serde_json::Error,
    ) -> Self {
        let at = match base_line {
            Some(l) => Location::Line(l),
            None => Location::LineColumn {
                line: e.line() as u64,
                column: e.column() as u64,
            },
        };
        let what = match e.classify() {
            serde_json::error::Category::Eof => {
                "truncated: the JSON ends in the middle of a value".to_owned()
            }
            serde_json::error::Category::Syntax => {
                format!("JSON syntax error ({})", redact(&e.to_string()))
            }
            serde_json::error::Category::Data => {
                format!("unexpected shape ({})", redact(&e.to_string()))
            }
            serde_json::error::Category::Io => format!("read error ({})", redact(&e.to_string())),
        };
        Self::malformed(file, at, what)
    }
}

/// Drops quoted text and serde's " at line L column C" tail (the location is reported
/// separately).
fn redact(msg: &str) -> String {
    let msg = msg.split(" at line ").next().unwrap_or(msg);
    let mut out = String::with_capacity(msg.len());
    let mut quoted: Option<char> = None;
    for c in msg.chars() {
        match quoted {
            Some(q) if c == q => {
                out.push_str("...");
                out.push(c);
                quoted = None;
            }
            Some(_) => {}
            None => {
                out.push(c);
                if c == '"' || c == '`' {
                    quoted = Some(c);
                }
            }
        }
    }
    out
}

/// What the trace readers read, dropped and inferred. Every span that is read and not
/// kept in a trace is in one of the `spans_*` drop counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TraceCoverage {
    pub files: u64,
    /// Bytes read (after gzip).
    pub bytes: u64,
    /// JSON documents or lines, protobuf messages.
    pub documents: u64,
    /// Documents (or the rest of one) that could not be parsed: their spans are lost
    /// uncounted, since a broken document does not say how many it held.
    pub malformed_documents: u64,
    /// JSON lines over the line length bound, skipped.
    pub lines_too_long: u64,
    pub spans_read: u64,
    /// Spans without a valid trace id or span id (missing, wrong length, not hex).
    pub spans_missing_ids: u64,
    /// Spans dropped because their trace reached the spans-per-trace bound.
    pub spans_over_trace_cap: u64,
    /// Spans kept in a trace (spans_read minus the two drop counters above).
    pub spans_kept: u64,
    pub traces: u64,
    /// Traces flushed early because the open-trace bound was reached; their later spans,
    /// if any, start a new partial trace.
    pub traces_evicted: u64,
    /// Traces flushed because no span of theirs arrived for the idle window.
    pub traces_flushed_idle: u64,
    /// Spans whose parent id never arrived in their trace.
    pub orphan_spans: u64,
    /// Parent cycles broken (the span that closed the loop is treated as a root).
    pub cycles_broken: u64,
    /// A span id seen twice in a trace that is not a Zipkin shared CLIENT/SERVER pair.
    pub duplicate_span_ids: u64,
    /// Zipkin shared spans (one id for the CLIENT and the SERVER side).
    pub shared_spans: u64,
    /// Paired calls whose SERVER span is not inside its CLIENT span's time.
    pub clock_skew: u64,
    pub calls: u64,
    /// Calls to a peer named by a CLIENT/PRODUCER span's attributes (no SERVER span), or
    /// by a kind-less span's `peer.service` (rule `Virtual`).
    pub calls_virtual: u64,
    /// Asynchronous calls (through a broker), whatever the rule.
    pub calls_async: u64,
    /// Calls by rule (docs/traces.md, "Spans to calls"); with `calls_virtual` they add up
    /// to `calls`. A SERVER span under a CLIENT span:
    pub calls_client_server: u64,
    /// A SERVER span under a span of another kind, or with no (known) parent.
    pub calls_server_only: u64,
    /// A kind-less (or INTERNAL) span under a span of another service.
    pub calls_kindless: u64,
    /// A CONSUMER span (fed by its PRODUCER, or by the broker).
    pub calls_producer_consumer: u64,
    /// Errors found (the first ones are kept in `TraceSet::errors`).
    pub errors: u64,
}
