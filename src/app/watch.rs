//! `linkrank watch`: a live capture cut into windows. Each window is analysed as
//! `analyze --interface` analyses a capture (its own flow table: a connection open
//! across a boundary is cut there) and its reports are written atomically:
//!
//! - `DIR/windows/NNNNNN/`: every report of window N, written in
//!   `DIR/windows/.NNNNNN.partial/` and then renamed; the last `history` windows are
//!   kept, older ones deleted;
//! - `DIR/links.json`: the latest window's, replaced by a rename.
//!
//! Memory stays flat: nothing but the bounded queue and counters outlives a window.

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use tokio::sync::mpsc;

use super::{finish_run, live_inputs, load_name_sources, timings, Ingested, WatchConfig};
use super::{run_pipeline, PipelineConfig, Rows, RunError};
use crate::ingest::capture::live::LiveCapture;
use crate::ingest::traces::TraceSet;
use crate::model::{Coverage, OtlpReceiverCounters};

/// What one window gave, for the progress line and the caller.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowSummary {
    pub index: u64,
    pub packets: u64,
    pub dropped: u64,
    pub links: usize,
    pub seconds: f64,
    pub dir: PathBuf,
}

/// One window as the capture thread hands it over.
struct Captured {
    index: u64,
    builder: Rows,
    coverage: Coverage,
    seconds: f64,
    /// The capture ended with this window.
    ended: bool,
}

/// One window's spans received over OTLP, and the receiver's counters.
type Received = (TraceSet, OtlpReceiverCounters);

/// Runs windows until the capture ends (a signal, or `--duration`); returns them.
///
/// A tokio runtime drives the window timer, the signals, the OTLP receiver
/// (`--otlp-listen`) and the report writes; the capture and its pipeline run on a
/// thread of their own (libpcap blocks), and hand each window over a bounded channel.
pub fn watch(config: &WatchConfig) -> Result<Vec<WindowSummary>, RunError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("linkrank-rt")
        .enable_all()
        .build()
        .map_err(|e| RunError::Input(anyhow::anyhow!("cannot start the runtime: {e}")))?;
    runtime.block_on(run(config))
}

async fn run(config: &WatchConfig) -> Result<Vec<WindowSummary>, RunError> {
    let live = config
        .analyze
        .live
        .as_ref()
        .ok_or_else(|| RunError::Input(anyhow::anyhow!("watch needs --interface")))?;
    let out = &config.analyze.out;
    let windows_dir = out.join("windows");
    std::fs::create_dir_all(&windows_dir)
        .with_context(|| format!("{}: cannot create", windows_dir.display()))
        .map_err(RunError::Output)?;
    let name_sources = load_name_sources(&config.analyze).map_err(RunError::Input)?;
    let receiver = start_receiver(config).await?;
    let mut capture = LiveCapture::open(live).map_err(|e| RunError::Input(e.into()))?;
    let quiet = config.analyze.quiet;
    if !quiet {
        eprintln!(
            "capturing on {} in windows of {} s (Ctrl-C or SIGTERM ends the capture)",
            live.describe(),
            config.window.as_secs_f64()
        );
    }
    let pipeline = PipelineConfig {
        decode: config.analyze.decode,
        flow: config.analyze.flow,
        http: config.analyze.http,
        threads: config.analyze.threads,
    };
    // The windows the timer has closed: window N ends once this passes N.
    let cut = Arc::new(AtomicU64::new(0));
    let stop = capture.stop_flag();
    let (captured_tx, mut captured_rx) = mpsc::channel::<Captured>(2);
    let capture_cut = Arc::clone(&cut);
    let capture_thread = std::thread::Builder::new()
        .name("linkrank-capture".into())
        .spawn(move || {
            for index in 0u64.. {
                let started = Instant::now();
                let (builder, coverage) =
                    run_pipeline(&mut capture.window(&capture_cut, index), pipeline);
                let ended = capture.ended();
                let window = Captured {
                    index,
                    builder,
                    coverage,
                    seconds: started.elapsed().as_secs_f64(),
                    ended,
                };
                if captured_tx.blocking_send(window).is_err() || ended {
                    break;
                }
            }
        })
        .map_err(|e| RunError::Input(anyhow::anyhow!("cannot start a thread: {e}")))?;

    // The report writer: one window after the other, off the runtime's workers.
    let (windows_tx, mut windows_rx) = mpsc::channel::<(Captured, Option<Received>)>(2);
    let writer_config = config.clone();
    let writer = tokio::spawn(async move {
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let mut kept: VecDeque<PathBuf> = VecDeque::new();
        let mut done = Vec::new();
        while let Some((window, received)) = windows_rx.recv().await {
            let (config, names) = (writer_config.clone(), name_sources.clone());
            let summary =
                tokio::task::spawn_blocking(move || write_window(&config, names, window, received))
                    .await
                    .map_err(|e| {
                        RunError::Output(anyhow::anyhow!("writing a window failed: {e}"))
                    })??;
            kept.push_back(summary.dir.clone());
            while kept.len() > writer_config.history {
                if let Some(old) = kept.pop_front() {
                    let _ = std::fs::remove_dir_all(old);
                }
            }
            if !writer_config.analyze.quiet {
                progress(&summary, terminal);
            }
            done.push(summary);
        }
        if !writer_config.analyze.quiet && terminal {
            eprintln!();
        }
        Ok::<_, RunError>(done)
    });

    let mut receiver = receiver;
    let start = tokio::time::Instant::now();
    let mut ticks = tokio::time::interval_at(start + config.window, config.window);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let signal = super::stop_signal();
    tokio::pin!(signal);
    let mut signalled = false;
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                cut.fetch_add(1, Ordering::AcqRel);
                if let Some(r) = receiver.as_ref() {
                    r.cut();
                }
            }
            _ = &mut signal, if !signalled => {
                // The capture thread sees the flag, ends the capture and hands over
                // the last window.
                signalled = true;
                stop.store(true, Ordering::Relaxed);
            }
            window = captured_rx.recv() => {
                let Some(window) = window else { break };
                let ended = window.ended;
                let received = match receiver.as_mut() {
                    Some(r) => {
                        if ended {
                            r.stop().await;
                        }
                        Some(r.next().await?)
                    }
                    None => None,
                };
                if windows_tx.send((window, received)).await.is_err() || ended {
                    break;
                }
            }
        }
    }
    drop(windows_tx);
    // Stops the capture if the writer failed first.
    stop.store(true, Ordering::Relaxed);
    drop(captured_rx);
    let done = writer
        .await
        .map_err(|e| RunError::Output(anyhow::anyhow!("the report writer failed: {e}")))?;
    let _ = capture_thread.join();
    done
}

/// Analyses one window and publishes its reports.
fn write_window(
    config: &WatchConfig,
    name_sources: crate::analysis::identity::NameSources,
    window: Captured,
    received: Option<Received>,
) -> Result<WindowSummary, RunError> {
    let Captured {
        index,
        builder,
        mut coverage,
        seconds,
        ..
    } = window;
    let mut clock = timings::StageClock::start();
    clock.lap("captures");
    let windows_dir = config.analyze.out.join("windows");
    let partial = windows_dir.join(format!(".{index:06}.partial"));
    // A partial folder of a killed run is left over: start it afresh.
    let _ = std::fs::remove_dir_all(&partial);
    let mut window_config = config.analyze.clone();
    window_config.out = partial.clone();
    let packets = coverage.packets;
    let dropped = coverage.live_dropped();
    let mut inputs = live_inputs(&coverage);
    let trace_set = received.map(|(set, counters)| {
        super::received_input(&mut inputs, &mut coverage, counters);
        set
    });
    let outcome = finish_run(
        &window_config,
        clock,
        Ingested {
            inputs,
            builder,
            coverage,
            earlier: None,
            trace_set,
            streamed_links: None,
            streamed_chains: None,
            name_sources,
            run_name: "linkrank watch window",
        },
    )?;
    let dir = windows_dir.join(format!("{index:06}"));
    publish(&partial, &dir, &config.analyze.out).map_err(RunError::Output)?;
    Ok(WindowSummary {
        index,
        packets,
        dropped,
        links: outcome.ranked.len(),
        seconds,
        dir,
    })
}

/// The OTLP receiver of `--otlp-listen`, and the thread that reads what it receives
/// window by window.
#[cfg(feature = "otel")]
struct Receiver {
    listener: Option<crate::ingest::traces::listen::Listener>,
    cut: crate::ingest::traces::receive::QueueSender,
    sets: mpsc::Receiver<Received>,
}

#[cfg(feature = "otel")]
async fn start_receiver(config: &WatchConfig) -> Result<Option<Receiver>, RunError> {
    use crate::ingest::traces::receive::{read_received, ReceivedEnd};
    let Some(listen) = &config.analyze.otlp_listen else {
        return Ok(None);
    };
    let (listener, cut, queue) = super::receive::bind(listen, config.analyze.quiet).await?;
    let (sets_tx, sets) = mpsc::channel::<Received>(2);
    let limits = config.analyze.traces.clone();
    std::thread::Builder::new()
        .name("linkrank-otlp-read".into())
        .spawn(move || {
            // Without files to open, reading cannot fail.
            while let Ok((set, end)) = read_received::<&Path>(&[], limits.clone(), None, &queue) {
                let counters = queue.take_counters();
                if sets_tx.blocking_send((set, counters)).is_err() || end == ReceivedEnd::Closed {
                    break;
                }
            }
        })
        .map_err(|e| RunError::Input(anyhow::anyhow!("cannot start a thread: {e}")))?;
    Ok(Some(Receiver {
        listener: Some(listener),
        cut,
        sets,
    }))
}

#[cfg(feature = "otel")]
impl Receiver {
    /// Ends the current window's spans.
    fn cut(&self) {
        self.cut.cut();
    }

    /// Stops receiving (the last window) and ends its spans.
    async fn stop(&mut self) {
        if let Some(l) = self.listener.take() {
            l.stop().await;
        }
        self.cut.cut();
    }

    /// The spans of the next window (each cut ends one).
    async fn next(&mut self) -> Result<Received, RunError> {
        self.sets
            .recv()
            .await
            .ok_or_else(|| RunError::Input(anyhow::anyhow!("the OTLP reading thread ended early")))
    }
}

/// Without the `otel` feature there is no receiver (the command line refuses
/// `--otlp-listen`).
#[cfg(not(feature = "otel"))]
enum Receiver {}

#[cfg(not(feature = "otel"))]
async fn start_receiver(config: &WatchConfig) -> Result<Option<Receiver>, RunError> {
    match config.analyze.otlp_listen {
        Some(_) => Err(RunError::Input(anyhow::anyhow!(
            "--otlp-listen needs a linkrank built with the `otel` feature"
        ))),
        None => Ok(None),
    }
}

#[cfg(not(feature = "otel"))]
impl Receiver {
    fn cut(&self) {
        match *self {}
    }
    async fn stop(&mut self) {
        match *self {}
    }
    async fn next(&mut self) -> Result<Received, RunError> {
        match *self {}
    }
}

/// Renames the window's folder into place, then replaces `out/links.json` with its
/// links.json (copied aside, renamed over): a reader sees the old file or the new one.
fn publish(partial: &Path, dir: &Path, out: &Path) -> anyhow::Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::rename(partial, dir)
        .with_context(|| format!("{}: cannot rename to {}", partial.display(), dir.display()))?;
    let aside = out.join(".links.json.partial");
    std::fs::copy(dir.join("links.json"), &aside)
        .with_context(|| format!("{}: cannot write", aside.display()))?;
    std::fs::rename(&aside, out.join("links.json"))
        .with_context(|| format!("{}: cannot replace links.json", out.display()))
}

/// One line per window; on a terminal the line is rewritten in place.
fn progress(w: &WindowSummary, terminal: bool) {
    let rate = if w.seconds > 0.0 {
        w.packets as f64 / w.seconds
    } else {
        0.0
    };
    let line = format!(
        "windows done {}, {} packets ({:.0}/s), {} dropped, {} links",
        w.index + 1,
        w.packets,
        rate,
        w.dropped,
        w.links
    );
    let mut err = std::io::stderr().lock();
    if terminal {
        let _ = write!(err, "\r\x1b[2K{line}");
    } else {
        let _ = writeln!(err, "{line}");
    }
    let _ = err.flush();
}
