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
use std::time::Instant;

use anyhow::Context;

use super::{finish_run, live_inputs, load_name_sources, timings, Ingested, WatchConfig};
use super::{run_pipeline, PipelineConfig, RunError};
use crate::ingest::capture::live::LiveCapture;

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

/// Runs windows until the capture ends (a signal, or `--duration`); returns them.
pub fn watch(config: &WatchConfig) -> Result<Vec<WindowSummary>, RunError> {
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
    let mut capture = LiveCapture::open(live).map_err(|e| RunError::Input(e.into()))?;
    let quiet = config.analyze.quiet;
    if !quiet {
        eprintln!(
            "capturing on {} in windows of {} s (Ctrl-C or SIGTERM ends the capture)",
            live.interfaces.join(", "),
            config.window.as_secs_f64()
        );
    }
    let pipeline = PipelineConfig {
        decode: config.analyze.decode,
        flow: config.analyze.flow,
        http: config.analyze.http,
        threads: config.analyze.threads,
    };
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut kept: VecDeque<PathBuf> = VecDeque::new();
    let mut done = Vec::new();
    for index in 0u64.. {
        let mut clock = timings::StageClock::start();
        let started = Instant::now();
        let (builder, coverage) =
            run_pipeline(&mut capture.window(started + config.window), pipeline);
        clock.lap("captures");
        let seconds = started.elapsed().as_secs_f64();
        let partial = windows_dir.join(format!(".{index:06}.partial"));
        // A partial folder of a killed run is left over: start it afresh.
        let _ = std::fs::remove_dir_all(&partial);
        let mut window_config = config.analyze.clone();
        window_config.out = partial.clone();
        let packets = coverage.packets;
        let dropped = coverage.live_dropped();
        let outcome = finish_run(
            &window_config,
            clock,
            Ingested {
                inputs: live_inputs(&coverage),
                builder,
                coverage,
                earlier: None,
                trace_set: None,
                streamed_links: None,
                streamed_chains: None,
                name_sources: name_sources.clone(),
                run_name: "linkrank watch window",
            },
        )?;
        let dir = windows_dir.join(format!("{index:06}"));
        publish(&partial, &dir, out).map_err(RunError::Output)?;
        kept.push_back(dir.clone());
        while kept.len() > config.history {
            if let Some(old) = kept.pop_front() {
                let _ = std::fs::remove_dir_all(old);
            }
        }
        let summary = WindowSummary {
            index,
            packets,
            dropped,
            links: outcome.ranked.len(),
            seconds,
            dir,
        };
        if !quiet {
            progress(&summary, terminal);
        }
        done.push(summary);
        if capture.ended() {
            break;
        }
    }
    if !quiet && terminal {
        eprintln!();
    }
    Ok(done)
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
