//! Call chains: which request each call was made for, the call trees that follow, and
//! where each link sits on its roots' critical paths (docs/chains.md).
//!
//! `calls` turns the exchanges (and connections without visible HTTP) into owned
//! [`Call`] rows; `parents` infers each call's parent (span ids, W3C traceparent, else
//! timing); `tree` builds the trees and their critical paths; `link_chain` folds them into
//! the per-link `chain` object and the run summary. What a link's savings would remove
//! along those critical paths is the cost side's (`cost::whatif`).

pub mod calls;
pub mod from_traces;
pub mod link_chain;
pub mod parents;
pub mod span_check;
pub mod tree;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use crate::analysis::links::LinkKey;

pub use calls::{calls_from_tables, exchange_id, Call, CallKind, CallSet, Sym, Symbols};
pub use link_chain::{LinkChain, RunChains};
pub use parents::{infer_parents, Edge, EdgeSource, Inference, InferenceStats, ParentConfig};
pub use span_check::{check_against_spans, ChainCheck};
pub use tree::{build as build_forest, CallFacts, Forest, TreeConfig};

/// Settings of a chain analysis.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChainConfig {
    pub parents: ParentConfig,
    pub tree: TreeConfig,
    /// Root routes listed in the run summary.
    pub top_root_routes: usize,
}

impl Default for ChainConfig {
    fn default() -> Self {
        ChainConfig {
            parents: ParentConfig::default(),
            tree: TreeConfig::default(),
            top_root_routes: 5,
        }
    }
}

/// Per-link chains (by client and server service) and the run summary.
#[derive(Clone, Debug, Default)]
pub struct ChainAnalysis {
    pub links: BTreeMap<LinkKey, LinkChain>,
    pub run: RunChains,
}

impl ChainAnalysis {
    /// Marks every chain figure unreliable when a capture's clock offset exceeds the
    /// inference tolerance: parents are then matched across skewed clocks.
    /// `offsets` are (capture, estimated offset to the first capture in ns).
    pub fn check_clocks<'a>(&mut self, offsets: impl IntoIterator<Item = (&'a str, i64)>) {
        let tol = self.run.settings.map_or(0, |s| s.tolerance_ns);
        let worst = offsets
            .into_iter()
            .filter(|(_, o)| o.unsigned_abs() > tol.unsigned_abs())
            .max_by_key(|(_, o)| o.unsigned_abs());
        if let Some((capture, offset)) = worst {
            self.run.reliable = false;
            self.run.unreliable_reason = Some(format!(
                "the clock of capture {capture} is {:.1} ms off the first capture's, beyond \
                 the {:.1} ms tolerance of the parent inference",
                offset as f64 / 1e6,
                tol as f64 / 1e6
            ));
        }
    }
}

/// Infers parents and builds the trees of `set`.
pub fn infer(set: &CallSet, cfg: &ChainConfig) -> (Inference, Forest) {
    let inf = infer_parents(&set.calls, &cfg.parents);
    let forest = build_forest(&set.calls, &inf.edges, &cfg.tree);
    (inf, forest)
}

/// The chain analysis of a run's calls.
pub fn analyze_calls(set: &CallSet, cfg: &ChainConfig) -> ChainAnalysis {
    let (inf, forest) = infer(set, cfg);
    analyze_inferred(set, cfg, &inf, &forest)
}

/// The chain analysis of calls whose parents and trees [`infer`] already gave.
pub fn analyze_inferred(
    set: &CallSet,
    cfg: &ChainConfig,
    inf: &Inference,
    forest: &Forest,
) -> ChainAnalysis {
    let (links, mut run) = link_chain::summarize(set, inf, forest, cfg.top_root_routes);
    run.settings = Some(cfg.parents);
    ChainAnalysis { links, run }
}
