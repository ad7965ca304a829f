//! Streams captures through the ingest stages: capture -> decode -> flow -> http (and
//! dns) -> table rows, with the run's counters in one `Coverage`.
//!
//! One thread reads and decodes the frames and deals each TCP segment to the shard that
//! owns its connection ([`shard`]: by 5-tuple). With one thread the shard runs inline;
//! with more, each shard runs on a thread of its own, fed batches through a bounded
//! queue (the reader waits when a shard falls behind, so memory stays bounded). Every
//! shard is swept at the same capture times and numbers its connections by the frame
//! that opened them, so the rows, once merged and renumbered
//! ([`crate::tables::Tables::from_shards`]), are the same whatever the thread count.

mod shard;

use std::path::PathBuf;
use std::sync::{mpsc, Arc};

use crate::ingest::capture::{CaptureFile, FrameSource, MergedCaptures};
use crate::ingest::decode::{DecodeConfig, Decoder, Packet, Segment};
use crate::ingest::dns::{DnsConfig, DnsStage};
use crate::ingest::flow::skew::SkewEstimator;
use crate::ingest::flow::table::SWEEP_INTERVAL_NS;
use crate::ingest::flow::FlowConfig;
use crate::ingest::http::HttpConfig;
use crate::ingest::serialization::Sampler;
use crate::ingest::tls::keylog::KeyLog;
use crate::model::{Coverage, Timestamp};
use crate::tables::{TableBuilder, Tables};
use shard::{shard_of, Shard, ShardOutput};

/// The rows of a pipeline run, before they are tables: the reader's (DNS answers, payload
/// samples) and each shard's (connections and exchanges).
pub struct Rows {
    reader: TableBuilder,
    shards: Vec<TableBuilder>,
}

impl Rows {
    pub fn exchanges(&self) -> usize {
        self.shards.iter().map(TableBuilder::exchanges).sum()
    }

    pub fn connections(&self) -> usize {
        self.shards.iter().map(TableBuilder::connections).sum()
    }

    /// The parsed JSON samples behind the payload rows (in memory only, for the kit).
    pub fn take_samples(&mut self) -> Vec<crate::ingest::serialization::KeySamples> {
        self.reader.take_samples()
    }

    /// The run's tables (see [`Tables::from_shards`]).
    pub fn finish(self) -> polars::prelude::PolarsResult<Tables> {
        // The shards are as many as the run's threads: each one's rows become tables on
        // a thread of their own.
        let shards = std::thread::scope(|scope| {
            let mut shards = self.shards.into_iter();
            let first = shards.next();
            let rest: Vec<_> = shards.map(|b| scope.spawn(move || b.finish())).collect();
            let mut tables = Vec::with_capacity(rest.len() + 1);
            tables.extend(first.map(TableBuilder::finish));
            for handle in rest {
                tables.push(
                    handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                );
            }
            tables
                .into_iter()
                .collect::<polars::prelude::PolarsResult<Vec<_>>>()
        })?;
        Tables::from_shards(self.reader.finish()?, shards)
    }
}

/// The stage settings of one pipeline run.
#[derive(Clone, Copy, Debug)]
pub struct PipelineConfig {
    pub decode: DecodeConfig,
    pub flow: FlowConfig,
    pub http: HttpConfig,
    /// Threads that run the flow and protocol stages (the reader is one more); 1 runs
    /// everything on the calling thread.
    pub threads: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            decode: DecodeConfig::default(),
            flow: FlowConfig::default(),
            http: HttpConfig::default(),
            threads: 1,
        }
    }
}

/// Streams every frame of `captures` through the stages. Faults in the inputs are
/// recorded in the returned coverage; nothing here fails.
pub fn run_pipeline<S: FrameSource + ?Sized>(
    captures: &mut S,
    config: PipelineConfig,
) -> (Rows, Coverage) {
    run_pipeline_with_progress(captures, config, None)
}

/// Packets between two progress updates: rare enough to cost nothing in the hot loop.
const PROGRESS_EVERY: u64 = 1 << 16;
/// A batch goes to its shard's thread at this many items or payload bytes.
const BATCH_ITEMS: usize = 2048;
const BATCH_BYTES: usize = 1 << 20;
/// Batches queued per shard thread: the reader runs at most this far ahead.
const QUEUE: usize = 4;

/// What the reader hands a shard, in capture order.
enum Item {
    /// A segment whose payload is `payload` in the batch's bytes.
    Segment {
        seg: Segment<'static>,
        payload: (u32, u32),
        frame: u64,
        now: Timestamp,
    },
    Sweep(Timestamp),
    /// TLS secrets met in the capture (a Decryption Secrets Block), for every shard.
    Keys(Arc<KeyLog>),
}

#[derive(Default)]
struct Batch {
    items: Vec<Item>,
    bytes: Vec<u8>,
}

impl Batch {
    fn full(&self) -> bool {
        self.items.len() >= BATCH_ITEMS || self.bytes.len() >= BATCH_BYTES
    }

    fn push_segment(&mut self, seg: &Segment<'_>, frame: u64, now: Timestamp) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(seg.payload);
        self.items.push(Item::Segment {
            seg: Segment {
                payload: &[],
                ..*seg
            },
            payload: (start as u32, self.bytes.len() as u32),
            frame,
            now,
        });
    }

    fn run(&self, shard: &mut Shard) {
        for item in &self.items {
            match *item {
                Item::Segment {
                    seg,
                    payload: (a, b),
                    frame,
                    now,
                } => {
                    let payload = self.bytes.get(a as usize..b as usize).unwrap_or_default();
                    shard.segment(&Segment { payload, ..seg }, frame, now);
                }
                Item::Sweep(now) => shard.sweep(now),
                Item::Keys(ref keys) => shard.add_keys(keys),
            }
        }
    }

    fn clear(&mut self) {
        self.items.clear();
        self.bytes.clear();
    }
}

/// A shard on its own thread: the batch being filled, the queue to the thread, and the
/// emptied batches coming back for reuse.
struct Lane {
    batch: Batch,
    to_shard: mpsc::SyncSender<Batch>,
    returned: mpsc::Receiver<Batch>,
}

impl Lane {
    fn send(&mut self) {
        if self.batch.items.is_empty() {
            return;
        }
        let fresh = self.returned.try_recv().unwrap_or_default();
        let full = std::mem::replace(&mut self.batch, fresh);
        // A shard thread only stops early by panicking; the join reports that.
        let _ = self.to_shard.send(full);
    }
}

/// Where the reader puts segments: the one shard itself, or the shards' lanes.
enum Shards {
    Inline(Box<Shard>),
    Lanes(Vec<Lane>),
}

impl Shards {
    fn segment(&mut self, seg: &Segment<'_>, frame: u64, now: Timestamp) {
        match self {
            Shards::Inline(s) => s.segment(seg, frame, now),
            Shards::Lanes(lanes) => {
                let n = lanes.len();
                if let Some(lane) = lanes.get_mut(shard_of(seg, n)) {
                    lane.batch.push_segment(seg, frame, now);
                    if lane.batch.full() {
                        lane.send();
                    }
                }
            }
        }
    }

    fn sweep(&mut self, now: Timestamp) {
        match self {
            Shards::Inline(s) => s.sweep(now),
            Shards::Lanes(lanes) => {
                for lane in lanes {
                    lane.batch.items.push(Item::Sweep(now));
                }
            }
        }
    }

    /// Secrets for every shard, before the segments that follow them.
    fn add_keys(&mut self, keys: KeyLog) {
        match self {
            Shards::Inline(s) => s.add_keys(&keys),
            Shards::Lanes(lanes) => {
                let keys = Arc::new(keys);
                for lane in lanes {
                    lane.batch.items.push(Item::Keys(Arc::clone(&keys)));
                }
            }
        }
    }
}

/// [`run_pipeline`] over any source of frames (files or live interfaces), ticking
/// `progress` (a spinner on a terminal) as packets are read.
pub fn run_pipeline_with_progress<S: FrameSource + ?Sized>(
    captures: &mut S,
    config: PipelineConfig,
    progress: Option<&indicatif::ProgressBar>,
) -> (Rows, Coverage) {
    run_pipeline_with_keys(captures, config, progress, &KeyLog::new())
}

/// [`run_pipeline_with_progress`] with TLS secrets (`--keylog`); the captures' own
/// Decryption Secrets Blocks are added as they are met.
pub fn run_pipeline_with_keys<S: FrameSource + ?Sized>(
    captures: &mut S,
    config: PipelineConfig,
    progress: Option<&indicatif::ProgressBar>,
    keys: &KeyLog,
) -> (Rows, Coverage) {
    let threads = config.threads.max(1);
    let (reader, shards) = if threads == 1 {
        let mut shards = Shards::Inline(Box::new(Shard::new(config, 1, keys)));
        let reader = read(captures, config, progress, keys, &mut shards);
        let Shards::Inline(shard) = shards else {
            unreachable!("the inline shard stays inline")
        };
        (reader, vec![shard.finish()])
    } else {
        std::thread::scope(|scope| {
            let mut lanes = Vec::with_capacity(threads);
            let mut handles = Vec::with_capacity(threads);
            for _ in 0..threads {
                let (to_shard, batches) = mpsc::sync_channel::<Batch>(QUEUE);
                let (give_back, returned) = mpsc::channel::<Batch>();
                handles.push(scope.spawn(move || {
                    let mut shard = Shard::new(config, threads, keys);
                    for mut batch in batches {
                        batch.run(&mut shard);
                        batch.clear();
                        let _ = give_back.send(batch);
                    }
                    shard.finish()
                }));
                lanes.push(Lane {
                    batch: Batch::default(),
                    to_shard,
                    returned,
                });
            }
            let mut shards = Shards::Lanes(lanes);
            let reader = read(captures, config, progress, keys, &mut shards);
            if let Shards::Lanes(lanes) = &mut shards {
                for lane in lanes.iter_mut() {
                    lane.send();
                }
            }
            // Closing the queues ends the shard threads' loops.
            drop(shards);
            let outs = handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect();
            (reader, outs)
        })
    };
    merge(reader, shards)
}

/// What the reading thread keeps: the DNS rows and the capture and decode counters.
struct Reader {
    tables: TableBuilder,
    cov: Coverage,
}

/// Reads and decodes every frame, deals the TCP segments to `shards` and sweeps them all
/// every `SWEEP_INTERVAL_NS` of capture time, as one flow table sweeps itself.
fn read<S: FrameSource + ?Sized>(
    captures: &mut S,
    config: PipelineConfig,
    progress: Option<&indicatif::ProgressBar>,
    keys: &KeyLog,
    shards: &mut Shards,
) -> Reader {
    let mut cov = Coverage::default();
    cov.tls_keylog_bad_lines += keys.bad_lines;
    let mut secrets: Vec<u8> = Vec::new();
    let mut decoder = Decoder::new(config.decode);
    // Its one bound (rows kept) is not a command-line setting: the default applies.
    let mut dns = DnsStage::new(DnsConfig::default());
    let mut tables = TableBuilder::default();
    let mut now = Timestamp(i64::MIN);
    let mut next_sweep = i64::MIN;
    while let Some(frame) = captures.next_frame_and_secrets(&mut cov, &mut secrets) {
        if !secrets.is_empty() {
            let mut block = KeyLog::new();
            block.add(&secrets);
            cov.tls_keylog_bad_lines += block.bad_lines;
            shards.add_keys(block);
            secrets.clear();
        }
        if cov.packets % PROGRESS_EVERY == 0 {
            if let Some(bar) = progress {
                bar.set_message(format!("{} packets, {} MB", cov.packets, cov.bytes >> 20));
                bar.tick();
            }
        }
        let number = cov.packets;
        match decoder.decode_packet(&frame, &mut cov) {
            Some(Packet::Tcp(segment)) => {
                now = now.max(segment.ts);
                shards.segment(&segment, number, now);
                // After the segment, so that a final ACK arriving late is still absorbed.
                if now.0 >= next_sweep {
                    next_sweep = now.0.saturating_add(SWEEP_INTERVAL_NS);
                    shards.sweep(now);
                }
            }
            Some(Packet::Udp(d)) if DnsStage::wants(&d) => {
                dns.push(&d, &mut cov, &mut |a| tables.push_dns(&a))
            }
            Some(Packet::Udp(_)) | None => {}
        }
    }
    decoder.finish(&mut cov);
    Reader { tables, cov }
}

/// The run's rows (the reader's with the measured payload samples, the shards') and
/// counters.
fn merge(reader: Reader, shards: Vec<ShardOutput>) -> (Rows, Coverage) {
    let Reader {
        mut tables,
        mut cov,
    } = reader;
    let mut sampler: Option<Box<Sampler>> = None;
    let mut skew = SkewEstimator::default();
    let mut rows = Vec::with_capacity(shards.len());
    for out in shards {
        cov.add(&out.cov);
        skew.merge(out.skew);
        match (&mut sampler, out.sampler) {
            (Some(s), Some(theirs)) => s.merge(*theirs),
            (None, theirs) => sampler = theirs,
            (Some(_), None) => {}
        }
        rows.push(out.tables);
    }
    cov.clock_offsets = skew.estimates();
    if let Some(s) = sampler {
        let (payloads, samples) = s.finish_with_samples(&mut cov);
        tables.push_payloads(payloads);
        tables.push_samples(samples);
    }
    let rows = Rows {
        reader: tables,
        shards: rows,
    };
    (rows, cov)
}

/// Opens capture files as inputs 0, 1, ... in the order given.
pub fn open_captures(paths: &[PathBuf]) -> anyhow::Result<Vec<CaptureFile>> {
    paths
        .iter()
        .enumerate()
        .map(|(i, path)| {
            let input = u16::try_from(i)
                .map_err(|_| anyhow::anyhow!("too many capture files (at most {})", u16::MAX))?;
            Ok(CaptureFile::open(path, input)?)
        })
        .collect()
}

/// Streams capture files through the stages. When several sources saw the same
/// connections and one's clock is off by `skew::MIN_CORRECTION_NS` or more, the files
/// are read a second time with every source's timestamps put on the first source's
/// clock (`Coverage::clock_corrections`): the call-chain inference compares times across
/// captures, and a request's window in one capture must enclose its calls seen in
/// another. The second pass's estimates (`clock_offsets`) are what is left.
pub fn run_captures(
    paths: &[PathBuf],
    config: PipelineConfig,
    progress: Option<&indicatif::ProgressBar>,
) -> anyhow::Result<(MergedCaptures, Rows, Coverage)> {
    run_captures_with_keys(paths, config, progress, &KeyLog::new())
}

/// [`run_captures`] with TLS secrets (`--keylog`).
pub fn run_captures_with_keys(
    paths: &[PathBuf],
    config: PipelineConfig,
    progress: Option<&indicatif::ProgressBar>,
    keys: &KeyLog,
) -> anyhow::Result<(MergedCaptures, Rows, Coverage)> {
    let mut captures = MergedCaptures::new(open_captures(paths)?);
    let (builder, coverage) = run_pipeline_with_keys(&mut captures, config, progress, keys);
    let corrections = crate::ingest::flow::skew::corrections(&coverage.clock_offsets);
    if corrections.is_empty() {
        return Ok((captures, builder, coverage));
    }
    drop(builder);
    let mut captures = MergedCaptures::new(open_captures(paths)?);
    captures.set_clock_corrections(&corrections);
    let (builder, mut coverage) = run_pipeline_with_keys(&mut captures, config, progress, keys);
    coverage.clock_corrections = corrections;
    Ok((captures, builder, coverage))
}
