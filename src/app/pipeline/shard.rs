//! One share of a capture's TCP connections, chosen by 5-tuple: its flow table, protocol
//! stage and table rows. A capture is read once and its segments are dealt to the shards;
//! each shard can run on its own thread, and together they give what one would.

use std::hash::{Hash, Hasher};

use crate::ingest::decode::Segment;
use crate::ingest::flow::skew::SkewEstimator;
use crate::ingest::flow::table::FlowKey;
use crate::ingest::flow::{FlowConfig, FlowTable, Interest, StreamEvent};
use crate::ingest::http::{detect, HttpConfig, HttpStage};
use crate::ingest::serialization::Sampler;
use crate::ingest::tls::keylog::KeyLog;
use crate::model::{Coverage, Timestamp};
use crate::tables::TableBuilder;

use super::PipelineConfig;

/// The shard (of `shards`) that owns a segment's connection: both directions, and every
/// capture source's copy, of one 5-tuple go to the same one.
pub(super) fn shard_of(seg: &Segment<'_>, shards: usize) -> usize {
    if shards <= 1 {
        return 0;
    }
    let (key, _) = FlowKey::of(seg.src, seg.dst);
    let mut h = rustc_hash::FxHasher::default();
    key.hash(&mut h);
    // The high bits of FxHash mix best.
    ((h.finish() >> 32) % shards as u64) as usize
}

/// A shard's stage settings: the memory bounds shared by all connections are split
/// evenly, so that the shards together hold what one pipeline would.
fn share(config: PipelineConfig, shards: usize) -> (FlowConfig, HttpConfig) {
    let n = shards.max(1);
    let mut flow = config.flow;
    flow.max_connections = (flow.max_connections / n).max(1);
    flow.max_ooo_bytes_total = (flow.max_ooo_bytes_total / n).max(1);
    let mut http = config.http;
    http.max_header_bytes_total = (http.max_header_bytes_total / n).max(1);
    http.sampler.max_total_bytes = (http.sampler.max_total_bytes / n).max(1);
    (flow, http)
}

pub(super) struct Shard {
    flows: FlowTable,
    http: HttpStage,
    tables: TableBuilder,
    /// The flow stage's counters.
    cov: Coverage,
    /// The protocol stage's: the flow stage holds `cov` while it calls the protocol
    /// stage, which therefore counts apart.
    http_cov: Coverage,
}

/// Where the flow table's events go: the protocol stage.
type StageSink<'a> = &'a mut dyn FnMut(StreamEvent<'_>) -> Interest;

/// What a shard leaves when the capture ends.
pub(super) struct ShardOutput {
    pub tables: TableBuilder,
    pub cov: Coverage,
    pub sampler: Option<Box<Sampler>>,
    pub skew: SkewEstimator,
}

impl Shard {
    pub fn new(config: PipelineConfig, shards: usize, keys: &KeyLog) -> Self {
        let (flow, http) = share(config, shards);
        let mut stage = HttpStage::new(http);
        stage.add_keys(keys);
        Shard {
            flows: FlowTable::new(flow, detect::role_hint),
            http: stage,
            tables: TableBuilder::default(),
            cov: Coverage::default(),
            http_cov: Coverage::default(),
        }
    }

    /// One segment of this shard's connections; `frame` numbers it in the capture and
    /// `now` is the capture's latest time so far (see [`FlowTable::push_shared`]).
    pub fn segment(&mut self, seg: &Segment<'_>, frame: u64, now: Timestamp) {
        self.drive(|flows, cov, mut out| flows.push_shared(seg, frame, now, cov, &mut out));
    }

    /// TLS secrets met in the capture: for the connections they open from now on.
    pub fn add_keys(&mut self, keys: &KeyLog) {
        self.http.add_keys(keys);
    }

    /// The flow table's periodic sweep, at the same capture times in every shard.
    pub fn sweep(&mut self, now: Timestamp) {
        self.drive(|flows, cov, mut out| flows.sweep_at(now, cov, &mut out));
    }

    /// Runs one flow-table call with the protocol stage (and its table rows) behind it.
    fn drive(&mut self, call: impl FnOnce(&mut FlowTable, &mut Coverage, StageSink<'_>)) {
        let Shard {
            flows,
            http,
            tables,
            cov,
            http_cov,
        } = self;
        call(flows, cov, &mut |ev| {
            http.push(ev, http_cov, &mut |r| tables.push(r))
        });
    }

    /// Closes the connections still open and hands over the shard's rows and counters.
    pub fn finish(self) -> ShardOutput {
        let Shard {
            flows,
            mut http,
            mut tables,
            mut cov,
            mut http_cov,
        } = self;
        let skew = flows.finish_shared(&mut cov, &mut |ev| {
            http.push(ev, &mut http_cov, &mut |r| tables.push(r))
        });
        cov.add(&http_cov);
        ShardOutput {
            tables,
            cov,
            sampler: http.take_sampler(),
            skew,
        }
    }
}
