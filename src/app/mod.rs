//! Wires the stages of `linkrank analyze`: the ingest pipeline (`pipeline`) into tables,
//! then names, links, chains, assessment, ranking, plan and the reports. Holds no
//! analysis of its own; `main` turns its errors into exit codes.

pub mod config;
mod memory;
#[cfg(feature = "fleet")]
pub mod fleet;
mod pipeline;
#[cfg(feature = "otel")]
mod receive;
pub mod timings;
#[cfg(feature = "live")]
pub mod watch;

pub use config::{default_out_dir, services_beside, AnalyzeConfig, OtlpListen, WatchConfig};
pub use pipeline::{
    open_captures, run_captures, run_captures_with_keys, run_pipeline, run_pipeline_with_keys,
    run_pipeline_with_progress, PipelineConfig, Rows,
};

use std::path::PathBuf;

use anyhow::Context;

use crate::analysis::assess;
use crate::analysis::chains::{self, ChainConfig};
use crate::analysis::cost::{self, CostConstants};
use crate::analysis::identity::{self, K8sInventory, NameSources, Naming, Observed, ServicesFile};
use crate::analysis::join::{self, JoinConfig};
use crate::analysis::links;
use crate::analysis::plan;
use crate::analysis::rank::{self, Ranked};
use crate::ingest::capture::live::LiveConfig;
use crate::ingest::traces;
use crate::model::Coverage;
use crate::report::summary::{self, InputSummary, TableFigures};
use crate::report::{links_csv, links_json, markdown, LinkReport, TraceReport};
use crate::tables::{self, Tables};

/// Why `analyze` failed; `main` maps each to an exit code (see README).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// An input is missing, unreadable or not a capture/table: nothing was analysed.
    #[error(transparent)]
    Input(anyhow::Error),
    /// The analysis ran but its outputs could not be written.
    #[error(transparent)]
    Output(anyhow::Error),
}

/// What a run produced, for the caller to print or test.
pub struct RunOutcome {
    /// Row counts of the run's tables (the tables themselves are freed before the chains).
    pub figures: TableFigures,
    pub coverage: Coverage,
    pub inputs: Vec<InputSummary>,
    pub out_dir: PathBuf,
    pub naming: Naming,
    /// First to last packet (or span) of what was analysed, in seconds.
    pub capture_seconds: Option<f64>,
    /// The links, measured and assessed, best first.
    pub ranked: Vec<Ranked>,
    /// What the trace files gave (`None` without trace input).
    pub traces: Option<TraceReport>,
    /// Wall time per stage (also written to `timings.json` under `--timings`).
    pub timings: timings::StageClock,
}

/// `linkrank analyze`: read inputs, run the pipeline, write the tables, print the summary.
pub fn analyze(config: &AnalyzeConfig) -> Result<RunOutcome, RunError> {
    let mut clock = timings::StageClock::start();
    let mut capture_paths = Vec::new();
    let mut table_paths = Vec::new();
    let mut trace_paths = Vec::new();
    // By content, not by name: a capture, a trace file or an earlier run's table.
    for path in &config.inputs {
        if tables::parquet::is_parquet(path) {
            table_paths.push(path.clone());
        } else if traces::sniff(path).is_some() {
            trace_paths.push(path.clone());
        } else {
            capture_paths.push(path.clone());
        }
    }
    let name_sources = load_name_sources(config).map_err(RunError::Input)?;
    // Without a capture to join them to, the trace calls are measured as they are built
    // and not kept (memory bounded by links and the chains' sample, not by calls).
    let mut streamed =
        (capture_paths.is_empty() && table_paths.is_empty() && config.live.is_none())
            .then(|| StreamedTraces::new(chains::from_traces::chain_calls_cap(&config.traces)));
    // With --otlp-listen the trace files and the spans received are read on a thread
    // of their own while the captures are read; they are collected after.
    let receiving = match &config.otlp_listen {
        Some(listen) => Some(start_receiving(
            listen,
            config,
            std::mem::take(&mut trace_paths),
            streamed.take(),
        )?),
        None => None,
    };
    let trace_set = if trace_paths.is_empty() {
        None
    } else {
        let read = match streamed.as_mut() {
            Some(s) => traces::read_streaming(&trace_paths, config.traces.clone(), s),
            None => traces::read_with(&trace_paths, config.traces.clone()),
        };
        Some(read.map_err(|e| RunError::Input(e.into()))?)
    };
    let earlier = if table_paths.is_empty() {
        None
    } else {
        Some(tables::read_tables(&table_paths).map_err(|e| RunError::Input(e.into()))?)
    };
    clock.lap("traces and tables in");

    // A spinner on stderr, only when a person is watching it.
    let progress =
        (!config.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr())).then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar
        });
    let mut http = config.http;
    if config.reproducible {
        // Timings differ from run to run: none are taken (the constants stand in), so
        // that payloads.parquet is identical too, and no CPU is spent on them.
        http.sampler.cpu_budget = std::time::Duration::ZERO;
    }
    let pipeline = PipelineConfig {
        decode: config.decode,
        flow: config.flow,
        http,
        threads: config.threads,
    };
    let mut keys = crate::ingest::tls::keylog::KeyLog::new();
    for path in &config.keylog {
        let log = crate::ingest::tls::keylog::KeyLog::read(path)
            .map_err(|e| RunError::Input(e.into()))?;
        keys.merge(&log);
    }
    let (mut packet_inputs, builder, mut coverage) =
        read_packets(config, &capture_paths, pipeline, progress.as_ref(), &keys)?;
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let mut trace_set = trace_set;
    if let Some(r) = receiving {
        // A live capture has ended: so does the receiver; else it runs its own time.
        let (read, received_streamed, counters) = r.finish(config.live.is_none())?;
        trace_set = Some(read.map_err(|e| RunError::Input(e.into()))?);
        streamed = received_streamed;
        received_input(&mut packet_inputs, &mut coverage, counters);
    }
    let (streamed_links, streamed_chains) = match streamed {
        Some(s) if trace_set.is_some() => (Some(s.links), Some(s.chains)),
        _ => (None, None),
    };
    clock.lap("captures");
    let inputs: Vec<InputSummary> = packet_inputs
        .into_iter()
        .chain(table_paths.iter().map(|p| InputSummary {
            path: p.clone(),
            format: "parquet",
            gzipped: false,
            packets: 0,
            bytes: std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
        }))
        .chain(
            trace_set
                .iter()
                .flat_map(|t| &t.files)
                .map(|(p, format)| InputSummary {
                    path: p.clone(),
                    format: format.name(),
                    gzipped: traces::is_gzip(p),
                    packets: 0,
                    bytes: std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
                }),
        )
        .collect();
    finish_run(
        config,
        clock,
        Ingested {
            inputs,
            builder,
            coverage,
            earlier,
            trace_set,
            streamed_links,
            streamed_chains,
            name_sources,
            run_name: "linkrank analyze",
        },
    )
}

/// What the ingest gave one run, for [`finish_run`].
struct Ingested {
    inputs: Vec<InputSummary>,
    builder: Rows,
    coverage: Coverage,
    /// Tables of earlier runs given as inputs.
    earlier: Option<Tables>,
    trace_set: Option<traces::TraceSet>,
    /// A trace-only run's links and chain sample, built as the traces were read (the
    /// calls themselves are not kept).
    streamed_links: Option<links::TracedBuilder>,
    streamed_chains: Option<chains::from_traces::TraceSample>,
    name_sources: NameSources,
    /// The run's span name in the OTLP export.
    run_name: &'static str,
}

/// Everything after the ingest: the tables, names, links, chains, assessment and the
/// reports in `config.out`, then the OTLP export.
fn finish_run(
    config: &AnalyzeConfig,
    mut clock: timings::StageClock,
    run: Ingested,
) -> Result<RunOutcome, RunError> {
    let Ingested {
        inputs,
        mut builder,
        coverage,
        earlier,
        trace_set,
        streamed_links,
        streamed_chains,
        mut name_sources,
        run_name,
    } = run;
    // The parsed JSON samples stay in memory for the migration kit (never a table).
    let samples = builder.take_samples();
    let mut tables = builder
        .finish()
        .context("building the tables")
        .map_err(RunError::Output)?;
    memory::release_freed();
    if let Some(earlier) = earlier {
        tables
            .append(earlier)
            .context("merging earlier tables")
            .map_err(RunError::Output)?;
    }
    // The Parquet files are written beside the link measures, which leave a core idle.
    let table_write = tables::TableWrite::start(&tables, &config.out, config.threads > 1);
    let figures = TableFigures::of(&tables)
        .context("counting the tables")
        .map_err(RunError::Output)?;
    summary::write_quality_json(&config.out, &inputs, &coverage, &figures)
        .map_err(RunError::Output)?;
    clock.lap("tables out");

    // Spans joined to the captured exchanges name the endpoints they saw.
    let joined = match &trace_set {
        Some(t) if tables.exchanges.height() > 0 && !t.calls.is_empty() => Some(
            join::join(&tables.exchanges, &t.calls, &JoinConfig::default())
                .context("joining the captures with the traces")
                .map_err(RunError::Output)?,
        ),
        _ => None,
    };
    if let Some(j) = &joined {
        name_sources.traces = j.names.clone();
    }
    let observed = Observed::from_tables(&tables.exchanges, &tables.connections, Some(&tables.dns))
        .context("reading names from the tables")
        .map_err(RunError::Output)?;
    let naming = identity::resolve(&name_sources, &observed);
    clock.lap("join and names");
    let mut link_set = links::measure(&tables, &naming, config.routes)
        .context("measuring the links")
        .map_err(RunError::Output)?;
    if let Some(b) = streamed_links {
        links::add_traced(&mut link_set, b.finish(config.routes), &Default::default());
    } else if let Some(t) = &trace_set {
        links::add_traces(
            &mut link_set,
            t,
            joined.as_ref().map(|j| (j, &tables, &naming)),
            config.routes,
        )
        .context("adding the traced links")
        .map_err(RunError::Output)?;
    }
    memory::release_freed();
    clock.lap("link measures");
    // What the reports need from the exchanges and connections tables is read here, so
    // that the tables can be freed once the chains have their calls: the parent
    // inference is the run's largest working set and need not sit on top of them.
    let query_names = crate::report::kit::query_names(&tables.exchanges, &naming)
        .context("reading the query parameter names")
        .map_err(RunError::Output)?;
    // Payloads read back from tables written without --reproducible may carry timings.
    let mut payloads = payload_samples(&tables, &naming)
        .context("reading the payload samples")
        .map_err(RunError::Output)?;
    let exchange_durations = match &config.otlp_endpoint {
        Some(_) => links::exchange_durations(&tables, &naming)
            .context("reading the exchanges' durations")
            .map_err(RunError::Output)?,
        None => Vec::new(),
    };
    let mut chain_config = ChainConfig::default();
    chain_config.parents.threads = config.threads;
    let mut chain_set = chains::calls_from_tables(&tables, &naming)
        .context("reading the calls for the chains")
        .map_err(RunError::Output)?;
    let mut chain_check = None;
    if let (Some(t), Some(j)) = (&trace_set, &joined) {
        let by_conn = j
            .by_connection(&tables.exchanges)
            .context("joining the captures with the traces")
            .map_err(RunError::Output)?;
        let untouched = chain_set.clone();
        chains::from_traces::lay_span_ids(&mut chain_set, &t.calls, &by_conn);
        chain_check = Some(chains::check_against_spans(
            &untouched,
            &chain_set,
            &chain_config,
        ));
    }
    // The node's parent edges for the fleet; the chains below reuse them unless trace
    // calls are added to the set first.
    let mut inferred = None;
    if let Some(slice) = &config.fleet_out {
        let (inference, forest) = chains::infer(&chain_set, &chain_config);
        crate::fleet::slice::write_slice(slice, &tables, &naming, &chain_set, &inference, &forest)
            .with_context(|| format!("writing the fleet slice to {}", slice.dir.display()))
            .map_err(RunError::Output)?;
        inferred = Some((inference, forest));
    }
    drop(tables);
    table_write.wait().map_err(|e| RunError::Output(e.into()))?;
    memory::release_freed();
    let traces_added = streamed_chains.is_some() || trace_set.is_some();
    let mut trace_report = trace_set
        .as_ref()
        .map(|t| TraceReport::of(t, joined.as_ref(), chain_check));
    if let Some(sample) = streamed_chains {
        let stats = sample.append_to(&mut chain_set);
        if let Some(r) = trace_report.as_mut() {
            r.chain_sample = (stats.traces_left_out > 0).then_some(stats);
        }
    } else if let Some(t) = &trace_set {
        let matched = joined.as_ref().map(|j| j.call_matched.as_slice());
        chains::from_traces::append_trace_calls(&mut chain_set, &t.calls, &|i| {
            matched.is_some_and(|m| m.get(i).copied().unwrap_or(false))
        });
    }
    let mut chain_analysis = match inferred.filter(|_| !traces_added) {
        Some((inference, forest)) => {
            chains::analyze_inferred(&chain_set, &chain_config, &inference, &forest)
        }
        None => chains::analyze_calls(&chain_set, &chain_config),
    };
    // Parents matched across captures whose clocks disagree are not to be trusted.
    let capture_names: Vec<String> = coverage
        .clock_offsets
        .iter()
        .map(|o| summary::input_name(&inputs, o.input))
        .collect();
    chain_analysis.check_clocks(
        capture_names
            .iter()
            .map(String::as_str)
            .zip(coverage.clock_offsets.iter().map(|o| o.offset_ns)),
    );
    memory::release_freed();
    clock.lap("chains");
    let constants: CostConstants = config.cost;
    if config.reproducible {
        for p in payloads.values_mut() {
            p.timed_json_bytes = 0;
            p.timed_protobuf_bytes = 0;
        }
    }
    let capture_seconds = link_set.capture_seconds;
    let payloadless_connections_unlinked = link_set.payloadless_connections_unlinked;
    let assessed = assess::assess(link_set, chain_analysis.links, &payloads, &constants);
    let ranked = rank::rank(assessed.links, &constants);
    let plan = plan::plan(&ranked);
    clock.lap("assess, rank, plan");
    let kit = crate::report::kit::build(&crate::report::kit::KitInput {
        links: &ranked,
        plan: Some(&plan),
        naming: &naming,
        samples: &samples,
        infer_enums: config.http.sampler.infer_enums,
        all_http: config.kit_all,
        mesh_retries: assessed.score_constants.mesh_retries.round().max(0.0) as u32,
        query_names,
        source: inputs
            .iter()
            .map(|i| {
                i.path
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
            })
            .collect::<Vec<_>>()
            .join(", "),
    });
    drop(samples);
    let report = LinkReport {
        inputs: &inputs,
        coverage: &coverage,
        figures: figures.clone(),
        naming: &naming,
        name_files: config
            .services
            .iter()
            .chain(&config.k8s)
            .map(|p| p.display().to_string())
            .collect(),
        links: &ranked,
        capture_seconds,
        payloadless_connections_unlinked,
        constants: &constants,
        score_constants: Some(&assessed.score_constants),
        chains: Some(&chain_analysis.run),
        traces: trace_report.as_ref(),
        plan: Some(&plan),
        kit: Some(&kit),
    };
    links_json::write(&config.out, &report).map_err(RunError::Output)?;
    links_csv::write(&config.out, &ranked).map_err(RunError::Output)?;
    markdown::write(&config.out, &report).map_err(RunError::Output)?;
    crate::report::html::write(&config.out, &report).map_err(RunError::Output)?;
    crate::report::kit::write(&config.out, &kit).map_err(RunError::Output)?;
    clock.lap("reports");
    if config.timings {
        let text = serde_json::to_string_pretty(&clock.stages)
            .context("writing timings.json")
            .map_err(RunError::Output)?;
        std::fs::write(config.out.join("timings.json"), text + "\n")
            .context("writing timings.json")
            .map_err(RunError::Output)?;
    }
    if let Some(endpoint) = &config.otlp_endpoint {
        export_otlp(
            endpoint,
            run_name,
            &exchange_durations,
            &ranked,
            capture_seconds,
            &clock,
        )
        .map_err(RunError::Output)?;
    }
    Ok(RunOutcome {
        figures,
        coverage,
        inputs,
        out_dir: config.out.clone(),
        naming,
        capture_seconds,
        ranked,
        traces: trace_report,
        timings: clock,
    })
}

/// Runs the ingest pipeline over the capture files, or over the live interfaces; returns
/// what each input gave (a file, or an interface), the table rows and the counters.
fn read_packets(
    config: &AnalyzeConfig,
    capture_paths: &[PathBuf],
    pipeline: PipelineConfig,
    progress: Option<&indicatif::ProgressBar>,
    keys: &crate::ingest::tls::keylog::KeyLog,
) -> Result<(Vec<InputSummary>, Rows, Coverage), RunError> {
    if let Some(live) = &config.live {
        if let Some(file) = capture_paths.first() {
            return Err(RunError::Input(anyhow::anyhow!(
                "{}: a capture file cannot be analysed with --interface (trace files and \
                 tables can)",
                file.display()
            )));
        }
        return read_live(live, config.quiet, pipeline, progress, keys);
    }
    let (captures, builder, coverage) =
        run_captures_with_keys(capture_paths, pipeline, progress, keys).map_err(RunError::Input)?;
    let inputs = captures
        .files()
        .iter()
        .map(|f| InputSummary {
            path: f.path().to_path_buf(),
            format: f.format().name(),
            gzipped: f.gzipped(),
            packets: f.packets(),
            bytes: f.offset(),
        })
        .collect();
    Ok((inputs, builder, coverage))
}

#[cfg(feature = "live")]
fn read_live(
    live: &LiveConfig,
    quiet: bool,
    pipeline: PipelineConfig,
    progress: Option<&indicatif::ProgressBar>,
    keys: &crate::ingest::tls::keylog::KeyLog,
) -> Result<(Vec<InputSummary>, Rows, Coverage), RunError> {
    let mut capture = crate::ingest::capture::live::LiveCapture::open(live)
        .map_err(|e| RunError::Input(e.into()))?;
    if !quiet {
        // Also the sign, for scripts, that the capture has started.
        eprintln!(
            "capturing on {} (Ctrl-C or SIGTERM ends the capture and writes the reports)",
            live.describe()
        );
    }
    if let Some(bar) = progress {
        // Live packets may come slowly: keep the elapsed time moving.
        bar.enable_steady_tick(std::time::Duration::from_millis(250));
    }
    let (builder, coverage) = run_pipeline_with_keys(&mut capture, pipeline, progress, keys);
    Ok((live_inputs(&coverage), builder, coverage))
}

/// The OTLP receiver as one of the run's inputs, its counters into `coverage`.
fn received_input(
    inputs: &mut Vec<InputSummary>,
    coverage: &mut Coverage,
    counters: crate::model::OtlpReceiverCounters,
) {
    inputs.push(InputSummary {
        path: PathBuf::from(format!("otlp-listen {}", counters.listen)),
        format: "otlp",
        gzipped: false,
        packets: 0,
        bytes: counters.bytes_accepted,
    });
    coverage.otlp_receiver = Some(counters);
}

/// The interfaces of a live capture as the run's inputs.
#[cfg(feature = "live")]
fn live_inputs(coverage: &Coverage) -> Vec<InputSummary> {
    coverage
        .live
        .iter()
        .map(|c| InputSummary {
            path: PathBuf::from(&c.interface),
            format: "live",
            gzipped: false,
            packets: c.analysed,
            bytes: c.bytes,
        })
        .collect()
}

/// Without the `live` feature the command line refuses `--interface`; a config built
/// in code gets the same answer here.
#[cfg(not(feature = "live"))]
fn read_live(
    _live: &LiveConfig,
    _quiet: bool,
    _pipeline: PipelineConfig,
    _progress: Option<&indicatif::ProgressBar>,
    _keys: &crate::ingest::tls::keylog::KeyLog,
) -> Result<(Vec<InputSummary>, Rows, Coverage), RunError> {
    Err(RunError::Input(anyhow::anyhow!(
        "live capture needs a linkrank built with the `live` feature"
    )))
}

/// `--otlp-endpoint`: the links as metrics, the run's stages as spans.
#[cfg(feature = "otel")]
fn export_otlp(
    endpoint: &str,
    run_name: &'static str,
    exchanges: &[links::ExchangeDuration],
    ranked: &[Ranked],
    capture_seconds: Option<f64>,
    clock: &timings::StageClock,
) -> anyhow::Result<()> {
    let stages: Vec<(&'static str, f64)> = clock.stages.iter().map(|s| (s.stage, s.ms)).collect();
    crate::report::otel::export(
        endpoint,
        &crate::report::otel::RunExport {
            links: ranked,
            exchanges,
            capture_seconds,
            started: clock.started,
            stages: &stages,
            run_name,
        },
    )
}

#[cfg(not(feature = "otel"))]
fn export_otlp(
    _endpoint: &str,
    _run_name: &'static str,
    _exchanges: &[links::ExchangeDuration],
    _ranked: &[Ranked],
    _capture_seconds: Option<f64>,
    _clock: &timings::StageClock,
) -> anyhow::Result<()> {
    anyhow::bail!("--otlp-endpoint needs a linkrank built with the `otel` feature")
}

#[cfg(feature = "otel")]
type Receiving = receive::Receiving;

#[cfg(feature = "otel")]
fn start_receiving(
    listen: &OtlpListen,
    config: &AnalyzeConfig,
    trace_paths: Vec<PathBuf>,
    streamed: Option<StreamedTraces>,
) -> Result<Receiving, RunError> {
    receive::Receiving::start(
        listen,
        config.quiet,
        trace_paths,
        config.traces.clone(),
        streamed,
    )
}

/// Without the `otel` feature the command line refuses `--otlp-listen`; a config built
/// in code gets the same answer here.
#[cfg(not(feature = "otel"))]
enum Receiving {}

#[cfg(not(feature = "otel"))]
impl Receiving {
    fn finish(
        self,
        _wait: bool,
    ) -> Result<
        (
            Result<traces::TraceSet, traces::TraceError>,
            Option<StreamedTraces>,
            crate::model::OtlpReceiverCounters,
        ),
        RunError,
    > {
        match self {}
    }
}

#[cfg(not(feature = "otel"))]
fn start_receiving(
    _listen: &OtlpListen,
    _config: &AnalyzeConfig,
    _trace_paths: Vec<PathBuf>,
    _streamed: Option<StreamedTraces>,
) -> Result<Receiving, RunError> {
    Err(RunError::Input(anyhow::anyhow!(
        "--otlp-listen needs a linkrank built with the `otel` feature"
    )))
}

#[cfg(any(feature = "live", feature = "otel"))]
/// The first SIGINT or SIGTERM. signal-hook sets a flag (as the live capture's
/// handler does), looked at every 100 ms: tokio's own signal support would rebuild
/// tokio, and with it polars, with one more feature.
async fn stop_signal() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal exits at once (status 130), as for the live capture.
        let registered =
            signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&flag))
                .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&flag)));
        if registered.is_err() {
            // No handler: only --duration (or the default action of the signal) ends it.
            return std::future::pending().await;
        }
    }
    let mut poll = tokio::time::interval(std::time::Duration::from_millis(100));
    while !flag.load(Ordering::Relaxed) {
        poll.tick().await;
    }
}

/// Where streamed trace calls go: the traced links' measures, and the chains' sample of
/// whole traces.
struct StreamedTraces {
    links: links::TracedBuilder,
    chains: chains::from_traces::TraceSample,
}

impl StreamedTraces {
    fn new(chain_cap: usize) -> Self {
        StreamedTraces {
            links: links::TracedBuilder::default(),
            chains: chains::from_traces::TraceSample::new(chain_cap),
        }
    }
}

impl traces::CallSink for StreamedTraces {
    fn trace(&mut self, calls: &[traces::SpanCall]) {
        for c in calls {
            self.links.add(c, false);
        }
        self.chains.trace(calls);
    }
}

/// The JSON samples per link, from the `payloads` table.
fn payload_samples(
    tables: &Tables,
    naming: &Naming,
) -> polars::prelude::PolarsResult<std::collections::BTreeMap<links::LinkKey, cost::PayloadSamples>>
{
    if tables.payloads.height() == 0 {
        return Ok(Default::default());
    }
    cost::savings::payloads_by_link(&tables.payloads, naming)
}

/// Reads the services files and Kubernetes inventories named in `config`.
fn load_name_sources(config: &AnalyzeConfig) -> anyhow::Result<NameSources> {
    let mut sources = NameSources::default();
    for path in &config.services {
        sources.services.push(ServicesFile::load(path)?);
    }
    for path in &config.k8s {
        sources.k8s.push(K8sInventory::load(path)?);
    }
    Ok(sources)
}
