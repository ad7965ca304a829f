//! Bounded trace assembly: spans arrive in file order, are grouped by trace id, and a
//! trace is turned into calls when it is flushed: at the end, when idle, or evicted when
//! the open-trace or open-span bound is reached (counted; its later spans start a new,
//! partial trace).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::calls::{build_trace, Scratch};
use super::error::{TraceCoverage, TraceError};
use super::shared_strings::SharedStrings;
use super::span::{Span, TraceId};
use super::{CallSink, TraceSet};

/// Bounds of the readers and the assembler.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Traces open at once; over it, the least recently extended quarter is flushed.
    pub max_open_traces: usize,
    /// Spans held in open traces at once, all traces together.
    pub max_open_spans: usize,
    /// Spans kept per trace; later ones are dropped and counted.
    pub max_spans_per_trace: usize,
    /// A trace is flushed once the newest span end seen in the input is this far past
    /// the trace's own newest span end...
    pub idle_flush_ns: u64,
    /// ...or once this many spans were read since its last one: exporters send a
    /// trace's spans within a few batches, and files written by trace (Jaeger, Zipkin)
    /// never come back to one.
    pub idle_flush_spans: u64,
    /// Longest JSON line read (OTLP JSON lines).
    pub max_line_bytes: usize,
    /// Largest protobuf `ResourceSpans` entry read.
    pub max_message_bytes: usize,
    /// Errors kept in `TraceSet::errors` (all are counted).
    pub max_errors_kept: usize,
    /// Threads reading: over 1, OTLP JSON lines are parsed on `threads - 1` workers
    /// while the calling thread assembles (the result is the same).
    pub threads: usize,
}

/// Threads a run uses by default (`analyze --threads` sets them): every core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_open_traces: 200_000,
            // About 450 bytes a span held (its record, its trace's share of the map and
            // vectors, its path): the open spans stay near 45 MB, so that a trace-only
            // run stays under 200 MB whatever its size (bench/analyze_spans.sh).
            max_open_spans: 100_000,
            max_spans_per_trace: 100_000,
            idle_flush_ns: 60 * 1_000_000_000,
            idle_flush_spans: 200_000,
            // Collector batches are a few MB a line; the line is held while parsed.
            max_line_bytes: 64 << 20,
            max_message_bytes: 64 << 20,
            max_errors_kept: 100,
            threads: default_threads(),
        }
    }
}

struct OpenTrace {
    spans: Vec<Span>,
    first_tick: u64,
    last_tick: u64,
    max_end_ns: u64,
}

/// How often (in spans) idle traces are looked for.
const SWEEP_EVERY: u64 = 1 << 16;
/// The sink every reader pushes spans into.
pub(crate) struct Ingest<'s> {
    pub limits: Limits,
    open: FxHashMap<TraceId, OpenTrace>,
    open_spans: usize,
    tick: u64,
    watermark_ns: u64,
    names: SharedStrings,
    scratch: Scratch,
    pub set: TraceSet,
    file: PathBuf,
    /// Where each trace's calls go as it is built; `None` keeps them in `set.calls`.
    sink: Option<&'s mut dyn CallSink>,
}

impl<'s> Ingest<'s> {
    pub fn new(limits: Limits, sink: Option<&'s mut dyn CallSink>) -> Self {
        Ingest {
            limits,
            open: FxHashMap::default(),
            open_spans: 0,
            tick: 0,
            watermark_ns: 0,
            names: SharedStrings::default(),
            scratch: Scratch::default(),
            set: TraceSet::default(),
            file: PathBuf::new(),
            sink,
        }
    }

    pub fn coverage(&mut self) -> &mut TraceCoverage {
        &mut self.set.coverage
    }

    pub fn start_file(&mut self, f: &Path) {
        self.file = f.to_path_buf();
        self.set.coverage.files += 1;
    }

    /// Spans from somewhere else than a file (the OTLP receiver): `f` names it in errors.
    #[cfg(feature = "otel")]
    pub fn start_received(&mut self, f: &Path) {
        self.file = f.to_path_buf();
    }

    pub fn error(&mut self, e: TraceError) {
        self.set.coverage.errors += 1;
        if self.set.errors.len() < self.limits.max_errors_kept {
            self.set.errors.push(e);
        }
    }

    /// The shared name of a service.
    pub fn service(&mut self, name: &str) -> Arc<str> {
        self.names.get(name)
    }

    /// The interner of every repeated string (names, attribute values).
    pub fn names(&mut self) -> &mut SharedStrings {
        &mut self.names
    }

    pub fn missing_ids(&mut self) {
        self.set.coverage.spans_read += 1;
        self.set.coverage.spans_missing_ids += 1;
    }

    pub fn span(&mut self, s: Span) {
        self.set.coverage.spans_read += 1;
        self.tick += 1;
        self.watermark_ns = self.watermark_ns.max(s.end_ns);
        let tick = self.tick;
        let t = self.open.entry(s.trace_id).or_insert_with(|| OpenTrace {
            spans: Vec::new(),
            first_tick: tick,
            last_tick: tick,
            max_end_ns: 0,
        });
        if t.spans.len() >= self.limits.max_spans_per_trace {
            self.set.coverage.spans_over_trace_cap += 1;
            return;
        }
        t.last_tick = tick;
        t.max_end_ns = t.max_end_ns.max(s.end_ns);
        t.spans.push(s);
        self.open_spans += 1;
        if self.open.len() > self.limits.max_open_traces
            || self.open_spans > self.limits.max_open_spans
        {
            self.evict();
        }
        if tick % SWEEP_EVERY == 0 {
            self.sweep_idle();
        }
    }

    /// Flushes the least recently extended quarter of the open traces.
    fn evict(&mut self) {
        let mut ages: Vec<(u64, TraceId)> =
            self.open.iter().map(|(id, t)| (t.last_tick, *id)).collect();
        let k = (ages.len() / 4).max(1);
        if k < ages.len() {
            ages.select_nth_unstable(k);
        }
        ages.truncate(k);
        self.set.coverage.traces_evicted += ages.len() as u64;
        self.flush(ages.into_iter().map(|(_, id)| id).collect());
    }

    fn sweep_idle(&mut self) {
        let end_limit = self.watermark_ns.saturating_sub(self.limits.idle_flush_ns);
        let tick_limit = self.tick.saturating_sub(self.limits.idle_flush_spans);
        let idle: Vec<TraceId> = self
            .open
            .iter()
            .filter(|(_, t)| t.max_end_ns < end_limit || t.last_tick < tick_limit)
            .map(|(id, _)| *id)
            .collect();
        self.set.coverage.traces_flushed_idle += idle.len() as u64;
        self.flush(idle);
    }

    /// Builds the given traces, in the order they were opened (deterministic output).
    fn flush(&mut self, ids: Vec<TraceId>) {
        let mut traces: Vec<OpenTrace> = ids.iter().filter_map(|id| self.open.remove(id)).collect();
        traces.sort_unstable_by_key(|t| t.first_tick);
        for t in traces {
            self.open_spans -= t.spans.len();
            build_trace(t.spans, &mut self.set, &mut self.names, &mut self.scratch);
            if let Some(sink) = self.sink.as_deref_mut() {
                // Streamed: `set.calls` holds this trace's calls alone, so their
                // `parent_call` indexes are the trace's own.
                sink.trace(&self.set.calls);
                self.set.calls.clear();
            }
        }
    }

    pub fn finish(mut self) -> TraceSet {
        let ids: Vec<TraceId> = self.open.keys().copied().collect();
        self.flush(ids);
        self.set
    }
}
