//! `LiveCapture`: libpcap handles on one or more interfaces, read by one thread each,
//! as a `FrameSource`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::writer::{PcapngWriter, WriterInterface};
use super::{is_permission_error, LiveConfig, LiveError};
use crate::ingest::capture::{Frame, FrameSource, LinkType};
use crate::model::{Coverage, LiveCounters, SourceId, Timestamp};

/// Packets queued between the reader threads and the pipeline. A bound in packets, so
/// with GSO frames of up to 64 KiB the queue holds at most 256 MiB; when it is full the
/// readers wait and the kernel buffer takes the excess (or drops it, counted).
const QUEUE_PACKETS: usize = 4096;
/// How long a reader blocks in libpcap, and the pipeline on the queue, before they look
/// at the stop conditions again.
const POLL: Duration = Duration::from_millis(100);
/// The kernel buffer per interface (libpcap's default is 2 MiB, a few milliseconds of a
/// busy link).
const KERNEL_BUFFER_BYTES: i32 = 32 << 20;

/// Set by SIGINT or SIGTERM: every live capture of the process stops, flushes and lets
/// the run write its reports. A second signal exits at once (status 130).
static SIGNALLED: AtomicBool = AtomicBool::new(false);
static HANDLER: OnceLock<Result<(), String>> = OnceLock::new();

fn install_signal_handler() -> Result<(), String> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use signal_hook::flag;
    HANDLER
        .get_or_init(|| {
            for signal in [SIGINT, SIGTERM] {
                // The exit first: it acts only once the flag is already set.
                flag::register_conditional_shutdown(signal, 130, &SIGNALLED)
                    .and_then(|_| flag::register(signal, &SIGNALLED))
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        })
        .clone()
}

/// Whether SIGINT or SIGTERM has been received.
pub fn signalled() -> bool {
    SIGNALLED.load(Ordering::Relaxed)
}

struct LivePacket {
    interface: u32,
    ts_ns: i64,
    orig_len: u32,
    data: Vec<u8>,
}

enum Msg {
    Packet(LivePacket),
    Failed { interface: u32, error: String },
}

/// libpcap's counters of one handle: received, dropped, dropped by the interface. The
/// reader refreshes them while it runs, so that a window of `watch` can report them.
#[derive(Default)]
struct PcapStats([AtomicU64; 3]);

impl PcapStats {
    fn store(&self, s: &pcap::Stat) {
        for (slot, v) in self.0.iter().zip([s.received, s.dropped, s.if_dropped]) {
            slot.store(u64::from(v), Ordering::Relaxed);
        }
    }

    fn load(&self) -> [u64; 3] {
        self.0.each_ref().map(|a| a.load(Ordering::Relaxed))
    }
}

/// Packets between two refreshes of a reader's libpcap counters.
const STATS_EVERY: u64 = 4096;

pub struct LiveCapture {
    rx: Option<Receiver<Msg>>,
    threads: Vec<JoinHandle<()>>,
    /// Wakes a reader blocked in libpcap: on an interface that carries nothing, libpcap's
    /// read does not come back at its timeout, so the stop flag alone would not end it.
    breakers: Vec<pcap::BreakLoop>,
    /// libpcap's counters per interface, refreshed by the readers.
    pcap_stats: Arc<Vec<PcapStats>>,
    /// The counters at the start of the current window (`watch`); zero for `analyze`.
    base: Vec<LiveCounters>,
    stop: Arc<AtomicBool>,
    links: Vec<LinkType>,
    deadline: Option<Instant>,
    max_packets: Option<u64>,
    current: Option<LivePacket>,
    counters: Vec<LiveCounters>,
    writer: Option<PcapngWriter>,
    analysed: u64,
    stopping: bool,
    ended: bool,
    warnings: Vec<String>,
}

fn open_error(interface: &str, e: pcap::Error) -> LiveError {
    let detail = e.to_string();
    if is_permission_error(&detail) {
        LiveError::Permission {
            interface: interface.to_string(),
            detail,
        }
    } else {
        LiveError::Open {
            interface: interface.to_string(),
            detail,
        }
    }
}

impl LiveCapture {
    /// Opens every interface (all or none: the first failure is returned), sets the
    /// filter, creates the `--write` file and starts the readers.
    pub fn open(config: &LiveConfig) -> Result<LiveCapture, LiveError> {
        let mut caps = Vec::with_capacity(config.interfaces.len());
        for name in &config.interfaces {
            let mut cap = pcap::Capture::from_device(name.as_str())
                .map_err(|e| open_error(name, e))?
                .promisc(false)
                .snaplen(i32::try_from(config.snaplen).unwrap_or(i32::MAX))
                .timeout(POLL.as_millis() as i32)
                .immediate_mode(true)
                .buffer_size(KERNEL_BUFFER_BYTES)
                // Linux delivers nanoseconds; the frames' timestamps are in nanoseconds.
                .precision(pcap::Precision::Nano)
                .open()
                .map_err(|e| open_error(name, e))?;
            if let Some(filter) = &config.bpf {
                cap.filter(filter, true).map_err(|e| LiveError::Filter {
                    interface: name.clone(),
                    filter: filter.clone(),
                    detail: e.to_string(),
                })?;
            }
            caps.push(cap);
        }
        let links: Vec<i32> = caps.iter().map(|c| c.get_datalink().0).collect();
        let writer = match &config.write {
            Some(path) => {
                let ifaces: Vec<WriterInterface<'_>> = config
                    .interfaces
                    .iter()
                    .zip(&links)
                    .map(|(name, &linktype)| WriterInterface {
                        name,
                        linktype,
                        snaplen: config.snaplen,
                    })
                    .collect();
                Some(
                    PcapngWriter::create(path, &ifaces, config.write_max_bytes).map_err(
                        |source| LiveError::Write {
                            path: path.clone(),
                            source,
                        },
                    )?,
                )
            }
            None => None,
        };
        let mut capture = LiveCapture::start(caps, &links, config, writer);
        if let Err(e) = install_signal_handler() {
            capture.warnings.push(format!(
                "no SIGINT/SIGTERM handler ({e}): stop with --duration or --packets"
            ));
        }
        Ok(capture)
    }

    /// Starts a reader per handle (`caps` in the order of `config.interfaces`). Live
    /// handles in use; a saved file (`Capture<Offline>`) in the tests, where the
    /// reader ends at the end of the file.
    fn start<T: pcap::Activated + Send + 'static>(
        caps: Vec<pcap::Capture<T>>,
        links: &[i32],
        config: &LiveConfig,
        writer: Option<PcapngWriter>,
    ) -> LiveCapture {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::sync_channel(QUEUE_PACKETS);
        let pcap_stats: Arc<Vec<PcapStats>> =
            Arc::new(caps.iter().map(|_| PcapStats::default()).collect());
        let mut caps = caps;
        let breakers = caps.iter_mut().map(|c| c.breakloop_handle()).collect();
        let threads = caps
            .into_iter()
            .enumerate()
            .map(|(i, cap)| {
                let (tx, stop, stats) = (tx.clone(), Arc::clone(&stop), Arc::clone(&pcap_stats));
                std::thread::spawn(move || read_loop(cap, i as u32, &tx, &stop, &stats[i]))
            })
            .collect();
        let counters: Vec<LiveCounters> = config
            .interfaces
            .iter()
            .map(|name| LiveCounters {
                interface: name.clone(),
                ..LiveCounters::default()
            })
            .collect();
        LiveCapture {
            rx: Some(rx),
            threads,
            breakers,
            pcap_stats,
            base: counters.clone(),
            stop,
            links: links
                .iter()
                .map(|&l| LinkType::from_linktype(l as u32))
                .collect(),
            deadline: config.duration.map(|d| Instant::now() + d),
            max_packets: config.packets,
            current: None,
            counters,
            writer,
            analysed: 0,
            stopping: false,
            ended: false,
            warnings: Vec::new(),
        }
    }

    /// A flag that stops the capture when set (as a signal or the duration would).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// The counters so far (libpcap's are filled in at the end).
    pub fn counters(&self) -> &[LiveCounters] {
        &self.counters
    }

    fn limit_reached(&self) -> bool {
        self.max_packets.is_some_and(|n| self.analysed >= n)
    }

    fn should_stop(&self) -> bool {
        self.limit_reached()
            || self.deadline.is_some_and(|d| Instant::now() >= d)
            || self.stop.load(Ordering::Relaxed)
            || signalled()
    }

    /// Tells the readers to stop; what they queued before is still delivered (unless
    /// the packet limit was reached), then the queue ends.
    fn begin_stop(&mut self) {
        self.stopping = true;
        self.stop.store(true, Ordering::Relaxed);
        self.break_readers();
    }

    /// Makes a reader blocked in libpcap return (its next read returns at once after).
    fn break_readers(&self) {
        for b in &self.breakers {
            b.breakloop();
        }
    }

    /// Joins the readers and records every counter and warning into `cov`.
    fn end(&mut self, cov: &mut Coverage) {
        self.ended = true;
        self.rx = None;
        for t in std::mem::take(&mut self.threads) {
            let _ = t.join();
        }
        if let Some(w) = self.writer.take() {
            let path = w.path().display().to_string();
            if let Err(e) = w.finish() {
                self.warnings
                    .push(format!("{path}: cannot finish the pcapng: {e}"));
            }
        }
        self.close_window(cov);
    }

    /// Whether the capture has ended (a stop condition, a signal, or every reader failed).
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Records into `cov` the counters since the window began (since the start for
    /// `analyze`) and the warnings, and begins the next window.
    fn close_window(&mut self, cov: &mut Coverage) {
        for (c, stats) in self.counters.iter_mut().zip(self.pcap_stats.iter()) {
            [c.received, c.dropped, c.if_dropped] = stats.load();
        }
        cov.live = self
            .counters
            .iter()
            .zip(&self.base)
            .map(|(now, base)| LiveCounters {
                interface: now.interface.clone(),
                received: now.received.saturating_sub(base.received),
                dropped: now.dropped.saturating_sub(base.dropped),
                if_dropped: now.if_dropped.saturating_sub(base.if_dropped),
                analysed: now.analysed - base.analysed,
                bytes: now.bytes - base.bytes,
                not_analysed: now.not_analysed - base.not_analysed,
                written: now.written - base.written,
                write_skipped: now.write_skipped - base.write_skipped,
            })
            .collect();
        self.base = self.counters.clone();
        cov.input_warnings.append(&mut self.warnings);
    }

    /// The frames of window `index` of `watch`, until `cut` (the windows its timer has
    /// opened) passes `index`, or the end of the capture. The capture goes on after it.
    pub fn window<'a>(&'a mut self, cut: &'a AtomicU64, index: u64) -> LiveWindow<'a> {
        LiveWindow {
            capture: self,
            cut,
            index,
        }
    }

    /// The next frame; `None` at the end of the capture, or (leaving the capture
    /// running) once `until` says the window is over.
    fn next_until(
        &mut self,
        cov: &mut Coverage,
        until: Option<&dyn Fn() -> bool>,
    ) -> Option<Frame<'_>> {
        self.current = None;
        if self.ended {
            return None;
        }
        loop {
            if !self.stopping && self.should_stop() {
                self.begin_stop();
            }
            if !self.stopping && until.is_some_and(|over| over()) {
                self.close_window(cov);
                return None;
            }
            let msg = match self.rx.as_ref()?.recv_timeout(POLL) {
                Ok(msg) => msg,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => {
                    self.end(cov);
                    return None;
                }
            };
            match msg {
                Msg::Packet(p) if self.limit_reached() => {
                    if let Some(c) = self.counters.get_mut(p.interface as usize) {
                        c.not_analysed += 1;
                    }
                }
                Msg::Packet(p) => {
                    self.take(p, cov);
                    break;
                }
                Msg::Failed { interface, error } => {
                    let name = self
                        .counters
                        .get(interface as usize)
                        .map_or("?", |c| c.interface.as_str());
                    self.warnings
                        .push(format!("capture on {name} stopped: {error}"));
                }
            }
        }
        let p = self.current.as_ref()?;
        Some(Frame {
            ts: Timestamp(p.ts_ns),
            link: self
                .links
                .get(p.interface as usize)
                .copied()
                .unwrap_or(LinkType::Other(u32::MAX)),
            source: SourceId {
                input: 0,
                interface: p.interface,
            },
            orig_len: p.orig_len,
            data: &p.data,
        })
    }

    /// Counts the packet into `cov` and the interface, and writes it to the pcapng.
    fn take(&mut self, p: LivePacket, cov: &mut Coverage) {
        self.analysed += 1;
        cov.packets += 1;
        cov.bytes += p.data.len() as u64;
        if (p.data.len() as u64) < u64::from(p.orig_len) {
            cov.truncated_snaplen += 1;
        }
        let counter = self.counters.get_mut(p.interface as usize);
        if let Some(c) = counter {
            c.analysed += 1;
            c.bytes += p.data.len() as u64;
            if let Some(w) = self.writer.as_mut() {
                match w.write(p.interface, p.ts_ns, p.orig_len, &p.data) {
                    Ok(true) => c.written += 1,
                    Ok(false) => c.write_skipped += 1,
                    Err(e) => {
                        self.warnings
                            .push(format!("{}: writing stopped: {e}", w.path().display()));
                        self.writer = None;
                    }
                }
            }
        }
        self.current = Some(p);
    }
}

impl FrameSource for LiveCapture {
    fn next_frame(&mut self, cov: &mut Coverage) -> Option<Frame<'_>> {
        self.next_until(cov, None)
    }
}

/// One window of a live capture (`LiveCapture::window`).
pub struct LiveWindow<'a> {
    capture: &'a mut LiveCapture,
    cut: &'a AtomicU64,
    index: u64,
}

impl FrameSource for LiveWindow<'_> {
    fn next_frame(&mut self, cov: &mut Coverage) -> Option<Frame<'_>> {
        let (cut, index) = (self.cut, self.index);
        self.capture
            .next_until(cov, Some(&|| cut.load(Ordering::Acquire) > index))
    }
}

impl Drop for LiveCapture {
    /// Stops and joins the readers if the pipeline did not read to the end.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.break_readers();
        self.rx = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// One interface's reader: packets into the queue until told to stop, the queue is
/// dropped, or libpcap fails; libpcap's counters into `stats` now and then and at the end.
fn read_loop<T: pcap::Activated + ?Sized>(
    mut cap: pcap::Capture<T>,
    interface: u32,
    tx: &SyncSender<Msg>,
    stop: &AtomicBool,
    stats: &PcapStats,
) {
    let mut read = 0u64;
    while !stop.load(Ordering::Relaxed) && !signalled() {
        read += 1;
        if read % STATS_EVERY == 0 {
            if let Ok(s) = cap.stats() {
                stats.store(&s);
            }
        }
        match cap.next_packet() {
            Ok(p) => {
                let ts = p.header.ts;
                // With nanosecond precision `tv_usec` holds nanoseconds.
                // time_t and suseconds_t are i64 here, i32 on 32-bit targets.
                #[allow(clippy::useless_conversion)]
                let ts_ns = i64::from(ts.tv_sec)
                    .saturating_mul(1_000_000_000)
                    .saturating_add(i64::from(ts.tv_usec));
                let packet = LivePacket {
                    interface,
                    ts_ns,
                    orig_len: p.header.len,
                    data: p.data.to_vec(),
                };
                if tx.send(Msg::Packet(packet)).is_err() {
                    break;
                }
            }
            Err(pcap::Error::TimeoutExpired) => {
                if let Ok(s) = cap.stats() {
                    stats.store(&s);
                }
            }
            Err(pcap::Error::NoMorePackets) => break,
            Err(e) => {
                let _ = tx.send(Msg::Failed {
                    interface,
                    error: e.to_string(),
                });
                break;
            }
        }
    }
    // Saved files (the tests' replays) have no counters.
    if let Ok(s) = cap.stats() {
        stats.store(&s);
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::app::{open_captures, run_pipeline, PipelineConfig};
    use crate::ingest::capture::MergedCaptures;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(name)
    }

    /// A saved capture read by libpcap through the live path (reader thread, queue,
    /// `FrameSource`), as `analyze --interface` reads an interface.
    fn replay(path: &Path, config: &LiveConfig, writer: Option<PcapngWriter>) -> LiveCapture {
        // Nanoseconds, as live handles are opened: the reader reads `tv_usec` as ns.
        let cap = pcap::Capture::from_file_with_precision(path, pcap::Precision::Nano).unwrap();
        let link = cap.get_datalink().0;
        LiveCapture::start(vec![cap], &[link], config, writer)
    }

    /// The pipeline gives the same tables from the live path as from the file reader.
    #[test]
    fn frames_from_the_live_path_give_the_files_tables() {
        let path = fixture("keepalive.pcap");
        let config = LiveConfig::new(vec!["replay".into()]);
        let dir = tempfile::tempdir().unwrap();
        let written = dir.path().join("w.pcapng");
        let writer = PcapngWriter::create(
            &written,
            &[WriterInterface {
                name: "replay",
                linktype: 1,
                snaplen: config.snaplen,
            }],
            config.write_max_bytes,
        )
        .unwrap();
        let (live, live_cov) = run_pipeline(
            &mut replay(&path, &config, Some(writer)),
            PipelineConfig::default(),
        );
        let (file, file_cov) = run_pipeline(
            &mut MergedCaptures::new(open_captures(std::slice::from_ref(&path)).unwrap()),
            PipelineConfig::default(),
        );
        let (live, file) = (live.finish().unwrap(), file.finish().unwrap());
        assert!(file.exchanges.height() > 0);
        assert!(live.exchanges.equals_missing(&file.exchanges));
        assert!(live.connections.equals_missing(&file.connections));
        assert_eq!(live_cov.packets, file_cov.packets);
        let c = &live_cov.live[0];
        assert_eq!(
            (c.analysed, c.written, c.not_analysed),
            (file_cov.packets, file_cov.packets, 0)
        );
        // The written pcapng reads back to the same tables.
        let (again, _) = run_pipeline(
            &mut MergedCaptures::new(open_captures(&[written]).unwrap()),
            PipelineConfig::default(),
        );
        assert!(again
            .finish()
            .unwrap()
            .exchanges
            .equals_missing(&file.exchanges));
    }

    #[test]
    fn the_packet_limit_ends_the_run() {
        let path = fixture("keepalive.pcap");
        let config = LiveConfig {
            packets: Some(5),
            ..LiveConfig::new(vec!["replay".into()])
        };
        let (_, cov) = run_pipeline(&mut replay(&path, &config, None), PipelineConfig::default());
        assert_eq!(cov.packets, 5);
        assert_eq!(cov.live[0].analysed, 5);
    }
}
