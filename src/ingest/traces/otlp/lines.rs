//! OTLP/JSON lines: one `ExportTraceServiceRequest` per line, read on one thread or, with
//! `Limits::threads` over 1, parsed on worker threads while the calling thread assembles.
//!
//! ```text
//! reader thread: lines -> batches --> workers: fast path (else reference) per line
//!   --> calling thread: batches put back in file order -> Ingest (assembly, calls)
//! ```
//! Only the parsing moves: every line's outcome is applied to the `Ingest` in file order,
//! with the coverage and the errors the one-thread reading gives, so the spans, the
//! traces and their calls are the same whatever the thread count. Each worker interns
//! into its own `SharedStrings` (names are compared by content, never by pointer).

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use super::convert::{convert, SpanSink};
use super::{fast, reference};
use crate::ingest::traces::assemble::Ingest;
use crate::ingest::traces::error::{Location, TraceError};
use crate::ingest::traces::shared_strings::SharedStrings;
use crate::ingest::traces::span::Span;

/// What the line reader met next.
enum Event {
    /// A line (its newline included) of `got` bytes, numbered from 1.
    Line(u64),
    /// A line over the bound, skipped: its number and bytes.
    TooLong(u64, u64),
    End,
}

/// Splits a stream into lines, skipping (not holding) those over `max` bytes.
struct LineReader<R> {
    r: R,
    max: usize,
    n: u64,
}

impl<R: BufRead> LineReader<R> {
    /// The next line into `line` (cleared first).
    fn next(&mut self, line: &mut Vec<u8>) -> std::io::Result<Event> {
        line.clear();
        self.next_appended(line)
    }

    /// The next line appended to `buf` (a batch's bytes: no copy through a line buffer).
    /// A line over the bound leaves `buf` as it was.
    fn next_appended(&mut self, buf: &mut Vec<u8>) -> std::io::Result<Event> {
        let start = buf.len();
        self.n += 1;
        let got = read_line(&mut self.r, buf, self.max)?;
        if got == 0 {
            return Ok(Event::End);
        }
        if got > self.max && buf.last() != Some(&b'\n') {
            // Over the bound: skip to the end of this line.
            let mut skipped = got as u64;
            loop {
                let b = self.r.fill_buf()?;
                if b.is_empty() {
                    break;
                }
                let (used, done) = match memchr::memchr(b'\n', b) {
                    Some(i) => (i + 1, true),
                    None => (b.len(), false),
                };
                self.r.consume(used);
                skipped += used as u64;
                if done {
                    break;
                }
            }
            // Give the bound's worth of buffer back rather than keep it for short lines.
            buf.truncate(start);
            buf.shrink_to(start.max(BATCH_BYTES + (64 << 10)));
            return Ok(Event::TooLong(self.n, skipped));
        }
        Ok(Event::Line(self.n))
    }
}

/// `take(max + 1).read_until(b'\n')` appending to `line`, with the memchr crate's
/// search, which is faster than std's on these long lines (it showed in profiles).
fn read_line(r: &mut impl BufRead, line: &mut Vec<u8>, max: usize) -> std::io::Result<usize> {
    let mut got = 0;
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        // `got <= max` here: up to `max + 1` bytes in all, as `take(max + 1)` allowed.
        let room = (max - got).saturating_add(1);
        let avail = &buf[..buf.len().min(room)];
        if avail.is_empty() {
            return Ok(got);
        }
        let (used, done) = match memchr::memchr(b'\n', avail) {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        line.extend_from_slice(&avail[..used]);
        r.consume(used);
        got += used;
        if done || got > max {
            return Ok(got);
        }
    }
}

/// A line's reading, before it is applied to the `Ingest`.
enum Outcome {
    /// Whitespace only.
    Blank,
    /// The fast path read it: its spans end at this index of the batch's spans, after
    /// this many spans without valid ids.
    Fast { spans_end: usize, missing: u64 },
    /// The fast path turned it down: the reference's reading (which words any error).
    Reference(Box<serde_json::Result<ExportTraceServiceRequest>>),
}

/// One line's part of a batch.
struct LineOutcome {
    n: u64,
    bytes: u64,
    outcome: Outcome,
}

/// Reads one line: the fast path into `spans` (through `sink`), else the reference.
fn parse_line(n: u64, line: &[u8], fast: &mut fast::Parsed, sink: &mut Collect) -> LineOutcome {
    let bytes = line.len() as u64;
    let outcome = if line.iter().all(u8::is_ascii_whitespace) {
        Outcome::Blank
    } else if fast.parse(line, &mut sink.names) {
        let before = sink.missing;
        fast.drain_into(sink);
        Outcome::Fast {
            spans_end: sink.spans.len(),
            missing: sink.missing - before,
        }
    } else {
        Outcome::Reference(Box::new(reference::request(line)))
    };
    LineOutcome { n, bytes, outcome }
}

/// The spans a worker parsed, with its interner.
#[derive(Default)]
struct Collect {
    names: SharedStrings,
    spans: Vec<Span>,
    missing: u64,
}

impl SpanSink for Collect {
    fn names(&mut self) -> &mut SharedStrings {
        &mut self.names
    }
    fn push(&mut self, span: Option<Span>) {
        match span {
            Some(s) => self.spans.push(s),
            None => self.missing += 1,
        }
    }
}

/// Applies one line's outcome to `ing`, as the one-thread reading does; `spans` yields
/// the batch's spans in order.
fn apply(
    o: LineOutcome,
    spans: &mut impl Iterator<Item = Span>,
    at: &mut usize,
    file: &Path,
    ing: &mut Ingest,
) {
    ing.coverage().bytes += o.bytes;
    match o.outcome {
        Outcome::Blank => {}
        Outcome::Fast { spans_end, missing } => {
            ing.coverage().documents += 1;
            spans
                .by_ref()
                .take(spans_end - *at)
                .for_each(|s| ing.span(s));
            *at = spans_end;
            (0..missing).for_each(|_| ing.missing_ids());
        }
        Outcome::Reference(req) => {
            ing.coverage().documents += 1;
            match *req {
                Ok(req) => req
                    .resource_spans
                    .into_iter()
                    .for_each(|rs| convert(rs, ing)),
                Err(e) => {
                    ing.coverage().malformed_documents += 1;
                    ing.error(TraceError::from_json(file, Some(o.n), &e));
                }
            }
        }
    }
}

/// A line over the bound: counted and reported.
fn too_long(n: u64, bytes: u64, file: &Path, ing: &mut Ingest) {
    let max = ing.limits.max_line_bytes;
    ing.coverage().bytes += bytes;
    ing.coverage().lines_too_long += 1;
    ing.error(TraceError::malformed(
        file,
        Location::Line(n),
        format!("line longer than {max} bytes, skipped"),
    ));
}

/// One request per line. A line longer than the bound is skipped (counted), so a file
/// without newlines cannot make the reader hold it whole.
pub(crate) fn read_lines(
    r: impl BufRead + Send,
    file: &Path,
    ing: &mut Ingest,
) -> std::io::Result<()> {
    let mut lines = LineReader {
        r,
        max: ing.limits.max_line_bytes,
        n: 0,
    };
    if ing.limits.threads > 1 {
        return read_parallel(lines, ing.limits.threads - 1, file, ing);
    }
    let mut line = Vec::new();
    let mut fast = fast::Parsed::default();
    loop {
        match lines.next(&mut line)? {
            Event::End => return Ok(()),
            Event::TooLong(n, bytes) => too_long(n, bytes, file, ing),
            Event::Line(n) => {
                let bytes = line.len() as u64;
                if line.iter().all(u8::is_ascii_whitespace) {
                    ing.coverage().bytes += bytes;
                } else if fast.parse(&line, ing.names()) {
                    ing.coverage().bytes += bytes;
                    ing.coverage().documents += 1;
                    fast.drain_into(ing);
                } else {
                    let o = LineOutcome {
                        n,
                        bytes,
                        outcome: Outcome::Reference(Box::new(reference::request(&line))),
                    };
                    apply(o, &mut std::iter::empty(), &mut 0, file, ing);
                }
            }
        }
    }
}

/// Bytes of lines per batch handed to a worker (one line may make it larger); small in
/// the unit tests, so that their files take many batches.
const BATCH_BYTES: usize = if cfg!(test) { 4 << 10 } else { 1 << 20 };
/// Batches queued per worker, each way: enough to keep the workers busy while the
/// calling thread assembles, few enough to bound what is in flight (a few MB a worker).
const QUEUED_PER_WORKER: usize = 2;

/// Lines read, to be parsed: their bytes end to end.
struct Batch {
    seq: u64,
    buf: Vec<u8>,
    /// (line number, end in `buf`); a too-long line has no bytes here.
    lines: Vec<(u64, usize)>,
    /// Lines over the bound, with their numbers and bytes, before the line at that index
    /// of `lines`.
    too_long: Vec<(usize, u64, u64)>,
    /// The read stopped on this error after these lines.
    error: Option<std::io::Error>,
}

/// A batch parsed.
struct Parsed {
    seq: u64,
    outcomes: Vec<LineOutcome>,
    too_long: Vec<(usize, u64, u64)>,
    spans: Vec<Span>,
    error: Option<std::io::Error>,
}

/// Parses a batch's lines: the fast path into the batch's spans, else the reference.
fn parse_batch(b: Batch, fast: &mut fast::Parsed, sink: &mut Collect) -> Parsed {
    sink.spans = Vec::new();
    sink.missing = 0;
    let mut start = 0;
    let outcomes = (b.lines.iter())
        .map(|&(n, end)| {
            let o = parse_line(n, &b.buf[start..end], fast, sink);
            start = end;
            o
        })
        .collect();
    Parsed {
        seq: b.seq,
        outcomes,
        too_long: b.too_long,
        spans: std::mem::take(&mut sink.spans),
        error: b.error,
    }
}

/// The reader thread fills batches, `workers` threads parse them, and the calling thread
/// applies them in file order; whenever the next batch in order is not parsed yet, the
/// calling thread parses a waiting batch itself. So with two threads both cores parse,
/// and the calling thread's own work (assembly, calls, measures) takes its share without
/// a third busy thread switching with the other two.
fn read_parallel<R: BufRead + Send>(
    mut lines: LineReader<R>,
    workers: usize,
    file: &Path,
    ing: &mut Ingest,
) -> std::io::Result<()> {
    let (to_work, work) = crossbeam_channel::bounded::<Batch>(workers * QUEUED_PER_WORKER);
    let (to_main, done) = crossbeam_channel::bounded::<Parsed>(workers * QUEUED_PER_WORKER);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            for seq in 0.. {
                let mut b = Batch {
                    seq,
                    buf: Vec::with_capacity(BATCH_BYTES + (64 << 10)),
                    lines: Vec::new(),
                    too_long: Vec::new(),
                    error: None,
                };
                let mut end = false;
                while b.buf.len() < BATCH_BYTES {
                    match lines.next_appended(&mut b.buf) {
                        Ok(Event::Line(n)) => b.lines.push((n, b.buf.len())),
                        Ok(Event::TooLong(n, bytes)) => b.too_long.push((b.lines.len(), n, bytes)),
                        Ok(Event::End) => {
                            end = true;
                            break;
                        }
                        Err(e) => {
                            b.error = Some(e);
                            end = true;
                            break;
                        }
                    }
                }
                // The calling thread stopped taking batches: nothing more to do.
                if to_work.send(b).is_err() || end {
                    return;
                }
            }
        });
        for _ in 0..workers {
            let (work, to_main) = (work.clone(), to_main.clone());
            scope.spawn(move || {
                let mut fast = fast::Parsed::default();
                let mut sink = Collect::default();
                for b in work {
                    if to_main.send(parse_batch(b, &mut fast, &mut sink)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(to_main);
        // The calling thread's own parser, for the batches it takes while it waits.
        let mut fast = fast::Parsed::default();
        let mut sink = Collect::default();
        let mut reading = true;
        let mut parsing = true;
        // Batches back in file order.
        let mut pending: BTreeMap<u64, Parsed> = BTreeMap::new();
        let mut next = 0u64;
        let mut result = Ok(());
        'batches: loop {
            while let Some(p) = pending.remove(&next) {
                next += 1;
                let mut spans = p.spans.into_iter();
                let mut too_long_it = p.too_long.into_iter().peekable();
                let mut at = 0;
                for (i, o) in p.outcomes.into_iter().enumerate() {
                    while let Some((_, n, bytes)) = too_long_it.next_if(|t| t.0 <= i) {
                        too_long(n, bytes, file, ing);
                    }
                    apply(o, &mut spans, &mut at, file, ing);
                }
                for (_, n, bytes) in too_long_it {
                    too_long(n, bytes, file, ing);
                }
                if let Some(e) = p.error {
                    result = Err(e);
                    break 'batches;
                }
            }
            if !parsing {
                break;
            }
            // A parsed batch if one is there, else a batch to parse here.
            let parsed = if reading {
                crossbeam_channel::select_biased! {
                    recv(done) -> p => p.ok(),
                    recv(work) -> b => match b {
                        Ok(b) => Some(parse_batch(b, &mut fast, &mut sink)),
                        Err(_) => {
                            reading = false;
                            continue;
                        }
                    },
                }
            } else {
                done.recv().ok()
            };
            match parsed {
                Some(p) => {
                    pending.insert(p.seq, p);
                }
                // Every worker has ended: what is pending is the rest of the file.
                None => parsing = false,
            }
        }
        // Dropping the receivers ends the workers and the reader (their sends fail).
        drop((done, work));
        result
    })
}
