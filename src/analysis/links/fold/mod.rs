//! Link measures folded over blocks of rows instead of grouped over whole tables: each
//! group (a route, a link) keeps counts, sums, value counts and latency samples (exact
//! while few, a sketch past that), so the memory follows the groups, not the rows, and
//! the result is the same however the rows are cut into blocks.
//!
//! Blocks are read a column at a time against each row's group number (one typed pass
//! per column).

pub(crate) mod connections;
pub(crate) mod http;
pub(crate) mod periodic;

pub(crate) use connections::{ConnAcc, ConnFold};
pub(crate) use http::{roll_up, Groups, HttpFold};
pub(crate) use periodic::PeriodicFold;

use crate::analysis::links::samples::EXACT_SAMPLES;

use std::collections::BTreeMap;

use polars::prelude::*;
use rustc_hash::FxHashMap;

/// Group keys: (client, server), or with method and route for routes.
pub(crate) type Key = Vec<Option<String>>;

/// The group number of each row, by the values of `N` string key columns; groups are
/// numbered 0, 1, ... in the order their first row is met.
pub(crate) struct GroupIndex<const N: usize> {
    /// Per key column: value -> number (0 stands for null), and the values by number.
    ids: [FxHashMap<String, u32>; N],
    values: [Vec<String>; N],
    groups: FxHashMap<[u32; N], u32>,
    /// The keys of the groups, in their numbers' order; those not yet taken by
    /// [`GroupIndex::new_keys`] start at `taken`.
    keys: Vec<[u32; N]>,
    taken: usize,
}

impl<const N: usize> Default for GroupIndex<N> {
    fn default() -> Self {
        GroupIndex {
            ids: std::array::from_fn(|_| FxHashMap::default()),
            values: std::array::from_fn(|_| Vec::new()),
            groups: FxHashMap::default(),
            keys: Vec::new(),
            taken: 0,
        }
    }
}

impl<const N: usize> GroupIndex<N> {
    /// Each row's group number, by the string columns `key` of `df`.
    pub(crate) fn rows(&mut self, df: &DataFrame, key: &[&str; N]) -> PolarsResult<Vec<u32>> {
        let mut rows = vec![[0u32; N]; df.height()];
        for (k, name) in key.iter().enumerate() {
            let (ids, values) = (&mut self.ids[k], &mut self.values[k]);
            for (row, v) in rows.iter_mut().zip(df.column(name)?.str()?.iter()) {
                row[k] = match v {
                    None => 0,
                    Some(v) => match ids.get(v) {
                        Some(&id) => id,
                        None => {
                            values.push(v.to_owned());
                            ids.insert(v.to_owned(), values.len() as u32);
                            values.len() as u32
                        }
                    },
                };
            }
        }
        let mut group = Vec::with_capacity(rows.len());
        for row in rows {
            let next = self.keys.len() as u32;
            let g = *self.groups.entry(row).or_insert(next);
            if g == next {
                self.keys.push(row);
            }
            group.push(g);
        }
        Ok(group)
    }

    /// The keys of the groups made since the last call, in their numbers' order.
    pub(crate) fn new_keys(&mut self) -> Vec<Key> {
        let fresh = &self.keys[self.taken..];
        self.taken = self.keys.len();
        fresh
            .iter()
            .map(|row| {
                (0..N)
                    .map(|k| (row[k] > 0).then(|| self.values[k][row[k] as usize - 1].clone()))
                    .collect()
            })
            .collect()
    }
}

/// One accumulator per group of `N` key columns, each made with the bound on exact
/// samples it keeps per measure.
pub(crate) struct Grouped<const N: usize, A> {
    exact_samples: usize,
    index: GroupIndex<N>,
    accs: Vec<(Key, A)>,
}

impl<const N: usize, A> Grouped<N, A> {
    pub(crate) fn with_exact_samples(exact_samples: usize) -> Self {
        Grouped {
            exact_samples,
            index: GroupIndex::default(),
            accs: Vec::new(),
        }
    }

    /// Each row's group number by the `key` columns of `df`, the accumulators of new
    /// groups made by `new` (given the bound on exact samples).
    pub(crate) fn rows(
        &mut self,
        df: &DataFrame,
        key: &[&str; N],
        new: fn(usize) -> A,
    ) -> PolarsResult<Vec<u32>> {
        let group = self.index.rows(df, key)?;
        for key in self.index.new_keys() {
            self.accs.push((key, new(self.exact_samples)));
        }
        Ok(group)
    }

    /// The accumulators, by group number.
    pub(crate) fn accs(&mut self) -> &mut [(Key, A)] {
        &mut self.accs
    }

    /// The groups' accumulators by key.
    pub(crate) fn finish(self) -> BTreeMap<Key, A> {
        self.accs.into_iter().collect()
    }
}

impl<const N: usize, A> Default for Grouped<N, A> {
    fn default() -> Self {
        Grouped::with_exact_samples(EXACT_SAMPLES)
    }
}

/// Calls `f` on `df` a block of at most `rows` rows at a time, in order.
pub(crate) fn in_blocks(
    df: &DataFrame,
    rows: usize,
    mut f: impl FnMut(&DataFrame) -> PolarsResult<()>,
) -> PolarsResult<()> {
    let mut offset = 0;
    while offset < df.height() {
        f(&df.slice(offset as i64, rows))?;
        offset = offset.saturating_add(rows);
    }
    Ok(())
}

/// The accumulator of group `g`: a free function, so that a fold can hold the slice of
/// accumulators while it reads its block's columns.
pub(crate) fn at<A>(accs: &mut [(Key, A)], g: u32) -> &mut A {
    &mut accs[g as usize].1
}

/// Counts one more row with value `v` (allocating only for a value not seen before).
pub(crate) fn count_value(counts: &mut BTreeMap<String, u64>, v: &str) {
    match counts.get_mut(v) {
        Some(n) => *n += 1,
        None => {
            counts.insert(v.to_owned(), 1);
        }
    }
}
