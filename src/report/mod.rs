//! Report: what a run prints and writes for people and for scripts.
//!
//! `summary` is the capture-quality account (terminal and `quality.json`); the link
//! reports are `links.json` (the stable contract), `links.csv`, `report.md` and the
//! ranked table on the terminal, all rendered from one [`LinkReport`].

pub mod html;
pub mod kit;
pub mod links_csv;
pub mod links_json;
pub mod markdown;
#[cfg(feature = "otel")]
pub mod otel;
pub mod summary;
pub mod terminal;
pub mod traces;

use crate::analysis::cost::CostConstants;
use crate::analysis::identity::Naming;
use crate::analysis::rank::Ranked;
use crate::model::Coverage;
use summary::{InputSummary, TableFigures};
pub use traces::TraceReport;

/// Everything the link reports show.
pub struct LinkReport<'a> {
    pub inputs: &'a [InputSummary],
    pub coverage: &'a Coverage,
    pub figures: TableFigures,
    pub naming: &'a Naming,
    /// Files the names came from (services files, k8s inventories).
    pub name_files: Vec<String>,
    pub links: &'a [Ranked],
    pub capture_seconds: Option<f64>,
    pub payloadless_connections_unlinked: u64,
    pub constants: &'a CostConstants,
    /// The constants the decisions and the score used: each savings constant the user left
    /// at its default moved to the end of its range that saves least.
    pub score_constants: Option<&'a CostConstants>,
    /// The run's call-chain summary (`None` when chains were not analysed).
    pub chains: Option<&'a crate::analysis::chains::RunChains>,
    /// What the trace files gave (`None` without trace input).
    pub traces: Option<&'a TraceReport>,
    /// The rollout plan (`None` when not computed).
    pub plan: Option<&'a crate::analysis::plan::Plan>,
    /// The migration kit written beside the reports (`None` when not built).
    pub kit: Option<&'a kit::Kit>,
}

/// Under this many seconds a capture is called short (report and terminal).
pub(crate) const SHORT_CAPTURE_S: f64 = 60.0;

/// `12.3`, or `-` for a value that could not be measured.
pub(crate) fn fmt_opt(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.decimals$}"),
        _ => "-".into(),
    }
}

/// A share as a percentage, `-` when unknown.
pub(crate) fn fmt_pct(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{:.0}%", v * 100.0),
        _ => "-".into(),
    }
}
