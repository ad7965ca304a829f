//! Wires the stages: capture -> decode -> flow -> http -> tables, then writes the outputs.
//! The only place that turns errors into what the user sees (with `main`).

use std::path::PathBuf;

use anyhow::Context;

use crate::capture::{CaptureFile, MergedCaptures};
use crate::cli::AnalyzeConfig;
use crate::decode::{DecodeConfig, Decoder};
use crate::flow::{FlowConfig, FlowTable};
use crate::http::{detect, HttpConfig, HttpStage};
use crate::model::Coverage;
use crate::report::summary::{self, InputSummary};
use crate::tables::{self, TableBuilder, Tables};

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
    pub tables: Tables,
    pub coverage: Coverage,
    pub inputs: Vec<InputSummary>,
    pub out_dir: PathBuf,
}

/// The stage settings of one pipeline run.
#[derive(Clone, Copy, Debug, Default)]
pub struct PipelineConfig {
    pub decode: DecodeConfig,
    pub flow: FlowConfig,
    pub http: HttpConfig,
}

/// Streams every frame of `captures` through the stages. Faults in the inputs are
/// recorded in the returned coverage; nothing here fails.
pub fn run_pipeline(
    captures: &mut MergedCaptures,
    config: PipelineConfig,
) -> (TableBuilder, Coverage) {
    run_pipeline_with_progress(captures, config, None)
}

/// Packets between two progress updates: rare enough to cost nothing in the hot loop.
const PROGRESS_EVERY: u64 = 1 << 16;

/// [`run_pipeline`], ticking `progress` (a spinner on a terminal) as packets are read.
pub fn run_pipeline_with_progress(
    captures: &mut MergedCaptures,
    config: PipelineConfig,
    progress: Option<&indicatif::ProgressBar>,
) -> (TableBuilder, Coverage) {
    let mut cov = Coverage::default();
    let mut decoder = Decoder::new(config.decode);
    let mut flows = FlowTable::new(config.flow, detect::role_hint);
    let mut http = HttpStage::new(config.http);
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
        let Some(segment) = decoder.decode(&frame, &mut cov) else {
            continue;
        };
        flows.push(&segment, &mut cov, &mut |ev| {
            http.push(ev, &mut http_cov, &mut |r| tables.push(&r))
        });
    }
    decoder.finish(&mut cov);
    flows.finish(&mut cov, &mut |ev| {
        http.push(ev, &mut http_cov, &mut |r| tables.push(&r))
    });
    merge_http_counters(&mut cov, &http_cov);
    (tables, cov)
}

/// Adds the protocol stage's counters (kept apart while the flow stage holds `cov`).
fn merge_http_counters(cov: &mut Coverage, http: &Coverage) {
    for (k, v) in &http.connections_by_protocol {
        *cov.connections_by_protocol.entry(k).or_default() += v;
    }
    cov.exchanges += http.exchanges;
    cov.incomplete_exchanges += http.incomplete_exchanges;
    cov.malformed_http += http.malformed_http;
    cov.http_resyncs += http.http_resyncs;
    cov.header_budget_overflows += http.header_budget_overflows;
}

/// `linkrank analyze`: read inputs, run the pipeline, write the tables, print the summary.
pub fn analyze(config: &AnalyzeConfig) -> Result<RunOutcome, RunError> {
    let mut capture_paths = Vec::new();
    let mut table_paths = Vec::new();
    for path in &config.inputs {
        if tables::parquet::is_parquet(path) {
            table_paths.push(path.clone());
        } else {
            capture_paths.push(path.clone());
        }
    }
    let mut files = Vec::new();
    for (i, path) in capture_paths.iter().enumerate() {
        let input = u16::try_from(i).map_err(|_| {
            RunError::Input(anyhow::anyhow!(
                "too many capture files (at most {})",
                u16::MAX
            ))
        })?;
        files.push(CaptureFile::open(path, input).map_err(|e| RunError::Input(e.into()))?);
    }
    let earlier = if table_paths.is_empty() {
        None
    } else {
        Some(tables::read_tables(&table_paths).map_err(|e| RunError::Input(e.into()))?)
    };

    let mut captures = MergedCaptures::new(files);
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
    let (builder, coverage) = run_pipeline_with_progress(
        &mut captures,
        PipelineConfig {
            decode: config.decode,
            flow: config.flow,
            http: config.http,
        },
        progress.as_ref(),
    );
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let inputs: Vec<InputSummary> = captures
        .files()
        .iter()
        .map(|f| InputSummary {
            path: f.path().to_path_buf(),
            format: f.format().name(),
            gzipped: f.gzipped(),
            packets: f.packets(),
            bytes: f.offset(),
        })
        .chain(table_paths.iter().map(|p| InputSummary {
            path: p.clone(),
            format: "parquet",
            gzipped: false,
            packets: 0,
            bytes: std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
        }))
        .collect();

    let mut tables = builder
        .finish()
        .context("building the tables")
        .map_err(RunError::Output)?;
    if let Some(earlier) = earlier {
        tables
            .append(earlier)
            .context("merging earlier tables")
            .map_err(RunError::Output)?;
    }
    tables::write_tables(&tables, &config.out).map_err(|e| RunError::Output(e.into()))?;
    summary::write_quality_json(&config.out, &inputs, &coverage, &tables)
        .map_err(RunError::Output)?;
    Ok(RunOutcome {
        tables,
        coverage,
        inputs,
        out_dir: config.out.clone(),
    })
}
