//! How well the timing inference agrees with the span trees: the parents timing alone
//! infers for the captured calls, against the parents their span ids give.

use serde::Serialize;

use super::{infer_parents, CallSet, ChainConfig, EdgeSource};

/// Parent edges the span trees give the captured calls, checked against what timing
/// alone infers for the same calls.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct ChainCheck {
    /// Captured calls whose parent the span trees give.
    pub span_edges: u64,
    /// Of those, calls whose timing-only parent is the same call.
    pub timing_agrees: u64,
    /// Of those, calls timing gave another parent (corrected by the spans).
    pub timing_corrected: u64,
    /// Of those, calls timing gave no parent.
    pub timing_missed: u64,
    pub agreement: Option<f64>,
}

/// Compares the parents timing infers for the captured calls (`untouched`) with the
/// span trees' (`with_spans`, the same rows with span ids laid on).
pub fn check_against_spans(
    untouched: &CallSet,
    with_spans: &CallSet,
    cfg: &ChainConfig,
) -> ChainCheck {
    let timing = infer_parents(&untouched.calls, &cfg.parents);
    let spans = infer_parents(&with_spans.calls, &cfg.parents);
    let mut check = ChainCheck::default();
    for (t, s) in timing.edges.iter().zip(&spans.edges) {
        let Some(s) = s.filter(|e| e.source == EdgeSource::Span) else {
            continue;
        };
        check.span_edges += 1;
        match t {
            Some(t) if t.parent == s.parent => check.timing_agrees += 1,
            Some(_) => check.timing_corrected += 1,
            None => check.timing_missed += 1,
        }
    }
    check.agreement =
        (check.span_edges > 0).then(|| check.timing_agrees as f64 / check.span_edges as f64);
    check
}
