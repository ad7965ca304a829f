//! Failures that come every n-th request of a route, found from each route's requests in
//! time order: what is kept per request is its start and status (12 bytes), not its row.

use super::{Grouped, Key};
use crate::analysis::links::frame::{periodic_failure, PeriodicByRoute};
use crate::analysis::links::PeriodicFailure;
use crate::tables::columns;
use polars::prelude::*;

use super::http::ROUTE_KEY;

/// One route's requests: (request start, status), in the order met.
#[derive(Clone, Default)]
pub(crate) struct Starts(Vec<(i64, Option<u32>)>);

impl Starts {
    fn new(_exact_samples: usize) -> Starts {
        Starts::default()
    }

    /// Failures of one status (5xx, 429) that come every n-th request (n >= 2), with at
    /// least 4 failures and 80% of the gaps between them exactly n.
    fn periodic(mut self) -> Vec<PeriodicFailure> {
        // Stable: requests that started at the same time stay in the order met.
        self.0.sort_by_key(|r| r.0);
        let mut by_status: std::collections::BTreeMap<u32, Vec<u64>> = Default::default();
        for (i, (_, st)) in self.0.iter().enumerate() {
            if let Some(st) = st.filter(|s| *s >= 500 || *s == 429) {
                by_status.entry(st).or_default().push(i as u64);
            }
        }
        let mut found = Vec::new();
        for (st, idx) in by_status {
            let mut gaps = std::collections::BTreeMap::new();
            for w in idx.windows(2) {
                *gaps.entry(w[1] - w[0]).or_default() += 1;
            }
            found.extend(periodic_failure(st, idx.len() as u64, &gaps));
        }
        found
    }
}

/// Routes' requests folded for their periodic failures.
pub(crate) type PeriodicFold = Grouped<4, Starts>;

impl PeriodicFold {
    /// Folds a block of rows of the link measures' exchanges frame (named, with the
    /// status as the measures count it).
    pub(crate) fn add(&mut self, ex: &DataFrame) -> PolarsResult<()> {
        let group = self.rows(ex, &ROUTE_KEY, Starts::new)?;
        let accs = self.accs();
        let status = ex.column(columns::STATUS)?.cast(&DataType::UInt32)?;
        let start = ex.column(columns::REQ_FIRST_NS)?.i64()?.clone();
        for ((&g, t), s) in group.iter().zip(start.iter()).zip(status.u32()?.iter()) {
            if let Some(t) = t {
                accs[g as usize].1 .0.push((t, s));
            }
        }
        Ok(())
    }

    /// The routes with periodic failures, keyed like the route measures.
    pub(crate) fn periodic(self) -> PeriodicByRoute {
        self.finish()
            .into_iter()
            .filter_map(|(key, starts): (Key, Starts)| {
                let found = starts.periodic();
                (!found.is_empty()).then_some((key, found))
            })
            .collect()
    }
}
