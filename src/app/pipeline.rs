//! Streams captures through the ingest stages: capture -> decode -> flow -> http (and
//! dns) -> table rows, with the run's counters in one `Coverage`.

use std::path::PathBuf;

use crate::ingest::capture::{CaptureFile, FrameSource, MergedCaptures};
use crate::ingest::decode::{DecodeConfig, Decoder, Packet};
use crate::ingest::dns::{DnsConfig, DnsStage};
use crate::ingest::flow::{FlowConfig, FlowTable};
use crate::ingest::http::{detect, HttpConfig, HttpStage};
use crate::model::Coverage;
use crate::tables::TableBuilder;

/// The stage settings of one pipeline run.
#[derive(Clone, Copy, Debug, Default)]
pub struct PipelineConfig {
    pub decode: DecodeConfig,
    pub flow: FlowConfig,
    pub http: HttpConfig,
}

/// Streams every frame of `captures` through the stages. Faults in the inputs are
/// recorded in the returned coverage; nothing here fails.
pub fn run_pipeline<S: FrameSource + ?Sized>(
    captures: &mut S,
    config: PipelineConfig,
) -> (TableBuilder, Coverage) {
    run_pipeline_with_progress(captures, config, None)
}

/// Packets between two progress updates: rare enough to cost nothing in the hot loop.
const PROGRESS_EVERY: u64 = 1 << 16;

/// [`run_pipeline`] over any source of frames (files or live interfaces), ticking
/// `progress` (a spinner on a terminal) as packets are read.
pub fn run_pipeline_with_progress<S: FrameSource + ?Sized>(
    captures: &mut S,
    config: PipelineConfig,
    progress: Option<&indicatif::ProgressBar>,
) -> (TableBuilder, Coverage) {
    let mut cov = Coverage::default();
    let mut decoder = Decoder::new(config.decode);
    let mut flows = FlowTable::new(config.flow, detect::role_hint);
    let mut http = HttpStage::new(config.http);
    // Its one bound (rows kept) is not a command-line setting: the default applies.
    let mut dns = DnsStage::new(DnsConfig::default());
    let mut tables = TableBuilder::default();
    // The flow stage holds `cov` while it calls the HTTP stage, so the HTTP stage counts
    // into its own coverage, merged once at the end.
    let mut http_cov = Coverage::default();
    while let Some(frame) = captures.next_frame(&mut cov) {
        if cov.packets % PROGRESS_EVERY == 0 {
            if let Some(bar) = progress {
                bar.set_message(format!("{} packets, {} MB", cov.packets, cov.bytes >> 20));
                bar.tick();
            }
        }
        match decoder.decode_packet(&frame, &mut cov) {
            Some(Packet::Tcp(segment)) => flows.push(&segment, &mut cov, &mut |ev| {
                http.push(ev, &mut http_cov, &mut |r| tables.push(&r))
            }),
            Some(Packet::Udp(d)) if DnsStage::wants(&d) => {
                dns.push(&d, &mut cov, &mut |a| tables.push_dns(&a))
            }
            Some(Packet::Udp(_)) | None => {}
        }
    }
    decoder.finish(&mut cov);
    flows.finish(&mut cov, &mut |ev| {
        http.push(ev, &mut http_cov, &mut |r| tables.push(&r))
    });
    merge_http_counters(&mut cov, &http_cov);
    tables.push_payloads(http.finish_payloads(&mut cov));
    (tables, cov)
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
) -> anyhow::Result<(MergedCaptures, TableBuilder, Coverage)> {
    let mut captures = MergedCaptures::new(open_captures(paths)?);
    let (builder, coverage) = run_pipeline_with_progress(&mut captures, config, progress);
    let corrections = crate::ingest::flow::skew::corrections(&coverage.clock_offsets);
    if corrections.is_empty() {
        return Ok((captures, builder, coverage));
    }
    drop(builder);
    let mut captures = MergedCaptures::new(open_captures(paths)?);
    captures.set_clock_corrections(&corrections);
    let (builder, mut coverage) = run_pipeline_with_progress(&mut captures, config, progress);
    coverage.clock_corrections = corrections;
    Ok((captures, builder, coverage))
}

/// Adds the protocol stage's counters (kept apart while the flow stage holds `cov`).
fn merge_http_counters(cov: &mut Coverage, http: &Coverage) {
    for (k, v) in &http.connections_by_protocol {
        *cov.connections_by_protocol.entry(k).or_default() += v;
    }
    cov.unanswered_attempts += http.unanswered_attempts;
    for (k, v) in &http.unanswered_attempts_by_server {
        *cov.unanswered_attempts_by_server
            .entry(k.clone())
            .or_default() += v;
    }
    cov.exchanges += http.exchanges;
    cov.incomplete_exchanges += http.incomplete_exchanges;
    cov.malformed_http += http.malformed_http;
    cov.http_resyncs += http.http_resyncs;
    cov.header_budget_overflows += http.header_budget_overflows;
    cov.h2_replay_dropped += http.h2_replay_dropped;
    cov.h2_streams += http.h2_streams;
    cov.h2_streams_evicted += http.h2_streams_evicted;
    cov.h2_hpack_unknown_fields += http.h2_hpack_unknown_fields;
    cov.h2_hpack_errors += http.h2_hpack_errors;
    cov.h2_header_blocks_dropped += http.h2_header_blocks_dropped;
    cov.h2_sync_lost += http.h2_sync_lost;
    cov.h2_resyncs += http.h2_resyncs;
    cov.tls_client_hellos += http.tls_client_hellos;
    cov.tls_client_hello_unparsed += http.tls_client_hello_unparsed;
    cov.tls_server_hellos += http.tls_server_hellos;
    cov.tls_handshakes_resumed += http.tls_handshakes_resumed;
    cov.tls_handshake_unparsed += http.tls_handshake_unparsed;
}
