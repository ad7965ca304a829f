//! The queue between the OTLP receiver (`listen`) and the trace assembler: requests
//! received over OTLP/gRPC or OTLP/HTTP, already decoded, wait here until the reading
//! thread converts them exactly as the file readers' `ResourceSpans` are converted.
//!
//! The queue is bounded in spans (not requests: one request may hold one span or
//! thousands). A request is taken resource by resource while the bound allows; the
//! resources that do not fit are refused and counted, and the receiver answers with an
//! `ExportTracePartialSuccess` naming how many spans it rejected.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use opentelemetry_proto::tonic::trace::v1::ResourceSpans;

use super::assemble::{Ingest, Limits};
use super::{read_file, sniff, CallSink, TraceError, TraceSet};
use crate::model::OtlpReceiverCounters;

/// What travels from the receiver to the reading thread.
pub enum Received {
    /// The resources of one request that fitted in the queue.
    Spans(Batch),
    /// The end of a `watch` window: the spans queued before it belong to that window.
    Cut,
}

/// Resources queued; their spans leave the queue's count when the batch is dropped
/// (after conversion).
pub struct Batch {
    resources: Vec<ResourceSpans>,
    spans: u64,
    shared: Arc<Shared>,
}

impl Drop for Batch {
    fn drop(&mut self) {
        self.shared.queued.fetch_sub(self.spans, Ordering::AcqRel);
    }
}

/// The counters, as atomics shared by the receiver's tasks and the reading thread.
#[derive(Default)]
struct Counters {
    grpc_requests: AtomicU64,
    http_requests: AtomicU64,
    bad_requests: AtomicU64,
    spans_accepted: AtomicU64,
    bytes_accepted: AtomicU64,
    spans_rejected: AtomicU64,
}

struct Shared {
    /// Spans in the queue now.
    queued: AtomicU64,
    capacity: u64,
    listen: String,
    counters: Counters,
}

/// The receiver's end: offers requests to the queue.
#[derive(Clone)]
pub struct QueueSender {
    tx: Sender<Received>,
    shared: Arc<Shared>,
}

/// The reading thread's end.
pub struct QueueReceiver {
    rx: Receiver<Received>,
    shared: Arc<Shared>,
}

/// Which protocol a request came over (counted apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Grpc,
    Http,
}

/// A queue of at most `capacity` spans for the receiver listening on `listen`.
pub fn queue(capacity: u64, listen: String) -> (QueueSender, QueueReceiver) {
    // Unbounded in messages: the span count bounds it (a `Cut` must never wait).
    let (tx, rx) = crossbeam_channel::unbounded();
    let shared = Arc::new(Shared {
        queued: AtomicU64::new(0),
        capacity,
        listen,
        counters: Counters::default(),
    });
    (
        QueueSender {
            tx,
            shared: Arc::clone(&shared),
        },
        QueueReceiver { rx, shared },
    )
}

fn spans_of(rs: &ResourceSpans) -> u64 {
    rs.scope_spans.iter().map(|s| s.spans.len() as u64).sum()
}

impl QueueSender {
    /// Queues the resources that fit; returns the spans rejected (0: all taken).
    /// `bytes` is the request's encoded size.
    pub fn offer(&self, resources: Vec<ResourceSpans>, bytes: u64, protocol: Protocol) -> u64 {
        let c = &self.shared.counters;
        match protocol {
            Protocol::Grpc => &c.grpc_requests,
            Protocol::Http => &c.http_requests,
        }
        .fetch_add(1, Ordering::Relaxed);
        let mut taken = Vec::with_capacity(resources.len());
        let (mut accepted, mut rejected) = (0u64, 0u64);
        for rs in resources {
            let n = spans_of(&rs);
            let room = self
                .shared
                .queued
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                    (q + n <= self.shared.capacity).then_some(q + n)
                })
                .is_ok();
            if room {
                accepted += n;
                taken.push(rs);
            } else {
                rejected += n;
            }
        }
        c.spans_rejected.fetch_add(rejected, Ordering::Relaxed);
        if taken.is_empty() {
            return rejected;
        }
        let batch = Batch {
            resources: taken,
            spans: accepted,
            shared: Arc::clone(&self.shared),
        };
        if self.tx.send(Received::Spans(batch)).is_err() {
            // The reading thread is gone (the run is ending): nothing was taken. The
            // batch was dropped with the error, which gave its spans back.
            c.spans_rejected.fetch_add(accepted, Ordering::Relaxed);
            return rejected + accepted;
        }
        c.spans_accepted.fetch_add(accepted, Ordering::Relaxed);
        c.bytes_accepted.fetch_add(bytes, Ordering::Relaxed);
        rejected
    }

    /// Counts a request refused as malformed.
    pub fn bad_request(&self) {
        self.shared
            .counters
            .bad_requests
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Ends the current `watch` window.
    pub fn cut(&self) {
        let _ = self.tx.send(Received::Cut);
    }
}

impl QueueReceiver {
    /// The counters since the last call (since the start the first time).
    pub fn take_counters(&self) -> OtlpReceiverCounters {
        let c = &self.shared.counters;
        let take = |a: &AtomicU64| a.swap(0, Ordering::Relaxed);
        OtlpReceiverCounters {
            listen: self.shared.listen.clone(),
            grpc_requests: take(&c.grpc_requests),
            http_requests: take(&c.http_requests),
            bad_requests: take(&c.bad_requests),
            spans_accepted: take(&c.spans_accepted),
            bytes_accepted: take(&c.bytes_accepted),
            spans_rejected: take(&c.spans_rejected),
            queue_spans: self.shared.capacity,
        }
    }
}

/// How a `read_received` ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceivedEnd {
    /// A `Cut`: the receiver goes on, the next window reads on.
    Cut,
    /// Every sender is gone: nothing more will come.
    Closed,
}

/// Reads the trace files (as `read_with` / `read_streaming` do), then the requests
/// received, until a `Cut` or the end of the queue; every span goes through the same
/// conversion and assembly as a file's.
pub fn read_received<P: AsRef<Path>>(
    paths: &[P],
    limits: Limits,
    sink: Option<&mut dyn CallSink>,
    queue: &QueueReceiver,
) -> Result<(TraceSet, ReceivedEnd), TraceError> {
    let mut ing = Ingest::new(limits, sink);
    for p in paths {
        let path = p.as_ref();
        let format = sniff(path).ok_or_else(|| TraceError::UnknownFormat {
            file: path.to_path_buf(),
        })?;
        read_file(&mut ing, path, format)?;
    }
    // Errors in received spans name the receiver where a file's name would be.
    ing.start_received(Path::new(&format!("otlp-listen {}", queue.shared.listen)));
    let end = loop {
        match queue.rx.recv() {
            Ok(Received::Spans(mut batch)) => {
                ing.coverage().documents += 1;
                for rs in std::mem::take(&mut batch.resources) {
                    super::otlp::convert(rs, &mut ing);
                }
                // Dropping the batch now gives its spans' room back to the queue.
            }
            Ok(Received::Cut) => break ReceivedEnd::Cut,
            Err(_) => break ReceivedEnd::Closed,
        }
    };
    Ok((ing.finish(), end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::trace::v1::{ScopeSpans, Span};

    fn resource(spans: usize) -> ResourceSpans {
        ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span::default(); spans],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn the_bound_refuses_whole_resources_and_frees_room_once_read() {
        let (tx, rx) = queue(10, "test".into());
        // 8 fit, the next 8 do not, the 2 after them do.
        let rejected = tx.offer(
            vec![resource(8), resource(8), resource(2)],
            100,
            Protocol::Http,
        );
        assert_eq!(rejected, 8);
        assert_eq!(tx.offer(vec![resource(1)], 10, Protocol::Grpc), 1);
        let c = rx.take_counters();
        assert_eq!(
            (
                c.spans_accepted,
                c.spans_rejected,
                c.http_requests,
                c.grpc_requests
            ),
            (10, 9, 1, 1)
        );
        // Reading the queue gives the room back.
        tx.cut();
        let (set, end) = read_received::<&Path>(&[], Limits::default(), None, &rx).unwrap();
        assert_eq!(end, ReceivedEnd::Cut);
        // Spans without ids are counted, not kept.
        assert_eq!(set.coverage.spans_missing_ids, 10);
        assert_eq!(tx.offer(vec![resource(10)], 10, Protocol::Grpc), 0);
        drop(tx);
        let (_, end) = read_received::<&Path>(&[], Limits::default(), None, &rx).unwrap();
        assert_eq!(end, ReceivedEnd::Closed);
        assert_eq!(rx.take_counters().spans_accepted, 10);
    }
}
