//! What the trace files gave a run: the files and their formats, spans and calls, the
//! problems met while reading them, the join with the captures and how well the timing
//! inference agrees with the span trees. Part of `links.json` (`traces`) and `report.md`.

use serde::Serialize;

use crate::analysis::chains::from_traces::TraceSampleStats;
use crate::analysis::chains::ChainCheck;
use crate::analysis::join::{Join, JoinStats};
use crate::ingest::traces::{TraceCoverage, TraceSet};

/// Problems listed by message; all are counted in the coverage.
const ERRORS_LISTED: usize = 20;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TraceFile {
    pub path: String,
    pub format: &'static str,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TraceReport {
    pub files: Vec<TraceFile>,
    /// Spans kept (read, with ids, within the bounds).
    pub spans: u64,
    /// Calls between services the spans make.
    pub calls: u64,
    pub services: usize,
    /// Deepest span of any trace (a root is 1).
    pub max_span_depth: u32,
    pub coverage: TraceCoverage,
    /// The first problems met, each with its file and line or byte offset.
    pub errors: Vec<String>,
    /// Null unless captures were given too.
    pub join: Option<JoinStats>,
    pub chain_check: Option<ChainCheck>,
    /// Present when the chains were read from a sample of whole traces (more trace
    /// calls than `chain_calls_cap`): what the sample kept and left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain_sample: Option<TraceSampleStats>,
}

impl TraceReport {
    pub fn of(
        set: &TraceSet,
        joined: Option<&Join>,
        chain_check: Option<ChainCheck>,
    ) -> TraceReport {
        TraceReport {
            files: set
                .files
                .iter()
                .map(|(p, f)| TraceFile {
                    path: p.display().to_string(),
                    format: f.name(),
                })
                .collect(),
            spans: set.coverage.spans_kept,
            calls: set.coverage.calls,
            services: set.services.len(),
            max_span_depth: set.max_depth,
            coverage: set.coverage.clone(),
            errors: set
                .errors
                .iter()
                .take(ERRORS_LISTED)
                .map(ToString::to_string)
                .collect(),
            join: joined.map(|j| j.stats.clone()),
            chain_check,
            chain_sample: None,
        }
    }

    /// A few lines for the terminal: what was read, what was lost, the join.
    pub fn render_terminal(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let c = &self.coverage;
        let _ = writeln!(
            s,
            "traces: {} files, {} spans in {} traces, {} services, {} calls",
            self.files.len(),
            self.spans,
            c.traces,
            self.services,
            self.calls
        );
        let lost = c.malformed_documents
            + c.spans_missing_ids
            + c.spans_over_trace_cap
            + c.traces_evicted
            + c.orphan_spans;
        if lost > 0 || !self.errors.is_empty() {
            let _ = writeln!(
                s,
                "  problems: {} malformed documents, {} spans without ids, {} over bounds, {} traces evicted, {} orphan spans (report.md lists them)",
                c.malformed_documents,
                c.spans_missing_ids,
                c.spans_over_trace_cap,
                c.traces_evicted,
                c.orphan_spans
            );
        }
        if let Some(k) = &self.chain_sample {
            let _ = writeln!(
                s,
                "  chains: a sample of {} of {} traces (bounded by --trace-window)",
                k.traces_kept,
                k.traces_kept + k.traces_left_out
            );
        }
        if let Some(j) = &self.join {
            let _ = writeln!(
                s,
                "  joined: {} of {} exchanges ({} by traceparent, {} by time); clock offset {} ms over {} pairs",
                j.matched,
                j.exchanges,
                j.by_traceparent,
                j.by_time,
                j.clock_offset_ms.map_or("-".into(), |o| format!("{o:.3}")),
                j.offset_pairs
            );
        }
        s
    }
}
