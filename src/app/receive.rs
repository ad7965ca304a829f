//! `analyze --otlp-listen`: the OTLP receiver on a tokio runtime of its own, and the
//! thread that reads the trace files and then the spans received into one `TraceSet`
//! (`traces::receive::read_received`), while the captures are read.

use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Instant;

use super::{stop_signal, OtlpListen, RunError, StreamedTraces};
use crate::ingest::traces::listen::{self, Listener};
use crate::ingest::traces::receive::{self, QueueReceiver, QueueSender};
use crate::ingest::traces::{CallSink, Limits, TraceError, TraceSet};
use crate::model::OtlpReceiverCounters;

type Read = (
    Result<TraceSet, TraceError>,
    Option<StreamedTraces>,
    OtlpReceiverCounters,
);

/// A receiver running, and the thread reading what it receives.
pub(super) struct Receiving {
    runtime: tokio::runtime::Runtime,
    listener: Listener,
    /// Ends the reading after the receiver stopped (a connection that outlives the
    /// stop may still hold a sender).
    end: QueueSender,
    reader: JoinHandle<Read>,
    until: Option<Instant>,
}

/// The runtime of the receiver: two workers are plenty for decoding requests.
pub(super) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("linkrank-rt")
        .enable_all()
        .build()
}

/// Binds the receiver; fails (an input error) when the address cannot be bound.
pub(super) async fn bind(
    config: &OtlpListen,
    quiet: bool,
) -> Result<(Listener, QueueSender, QueueReceiver), RunError> {
    let (tx, rx) = receive::queue(config.queue_spans, config.addr.to_string());
    let listener = listen::listen(config.addr, tx.clone())
        .await
        .map_err(|e| RunError::Input(anyhow::anyhow!("--otlp-listen {}: {e}", config.addr)))?;
    if !quiet {
        // Also the sign, for scripts, that spans can be sent.
        eprintln!(
            "listening for OTLP traces on {} (gRPC, and HTTP POST /v1/traces)",
            listener.local_addr
        );
    }
    Ok((listener, tx, rx))
}

impl Receiving {
    /// Starts the receiver and the reading thread: the trace files first, then the
    /// spans received, into `streamed` when given (a trace-only run).
    pub(super) fn start(
        config: &OtlpListen,
        quiet: bool,
        paths: Vec<PathBuf>,
        limits: Limits,
        streamed: Option<StreamedTraces>,
    ) -> Result<Receiving, RunError> {
        let runtime = runtime()
            .map_err(|e| RunError::Input(anyhow::anyhow!("cannot start the runtime: {e}")))?;
        let (listener, end, queue) = runtime.block_on(bind(config, quiet))?;
        let reader = std::thread::Builder::new()
            .name("linkrank-otlp-read".into())
            .spawn(move || {
                let mut streamed = streamed;
                let sink = streamed.as_mut().map(|s| s as &mut dyn CallSink);
                let read = receive::read_received(&paths, limits, sink, &queue).map(|(set, _)| set);
                (read, streamed, queue.take_counters())
            })
            .map_err(|e| RunError::Input(anyhow::anyhow!("cannot start a thread: {e}")))?;
        Ok(Receiving {
            runtime,
            listener,
            end,
            reader,
            until: config.duration.map(|d| Instant::now() + d),
        })
    }

    /// Without a live capture: waits for `--duration` or SIGINT/SIGTERM. Then stops the
    /// receiver and returns what was read.
    pub(super) fn finish(self, wait: bool) -> Result<Read, RunError> {
        let Receiving {
            runtime,
            listener,
            end,
            reader,
            until,
        } = self;
        runtime.block_on(async move {
            if wait {
                let deadline = async {
                    match until {
                        Some(t) => tokio::time::sleep_until(t.into()).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = deadline => {}
                    _ = stop_signal() => {}
                }
            }
            listener.stop().await;
        });
        end.cut();
        drop(end);
        reader
            .join()
            .map_err(|_| RunError::Input(anyhow::anyhow!("the trace reading thread failed")))
    }
}
