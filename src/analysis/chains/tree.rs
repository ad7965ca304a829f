//! Call trees from parent edges: depth, siblings (sequential or parallel), N+1 groups,
//! fire-and-forget calls, own time vs waiting, and the critical path of each root.
//!
//! The critical path follows CRISP (Zhang et al., ATC '22): start at the moment a call
//! began to answer, take the last-finishing child that finished before it, continue from
//! that child's start, and recurse into each chosen child.

use std::cmp::Reverse;
use std::net::IpAddr;

use rustc_hash::{FxHashMap, FxHashSet};

use super::calls::{Call, CallKind, Sym};
use super::parents::Edge;

/// Tree-shape settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TreeConfig {
    /// The same child route this many times under one parent, mostly one after the
    /// other, is an N+1 pattern.
    pub n_plus_one_min: usize,
    /// Slack when comparing a child's end with its parent's answer.
    pub tolerance_ns: i64,
}

impl Default for TreeConfig {
    fn default() -> Self {
        TreeConfig {
            n_plus_one_min: 3,
            tolerance_ns: 1_000_000,
        }
    }
}

/// What the tree says about one call.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CallFacts {
    /// Hops from the edge client: a root is 1, its children 2. 0 under an orphan
    /// (a call whose caller serves requests but no parent was found): depth unknown.
    pub depth: u32,
    /// The top of the call's tree (a root or an orphan).
    pub top: u32,
    /// On its root's critical path.
    pub critical: bool,
    /// On its parent's critical path: what the parent waited for last, and so on back to
    /// the parent's start (known from the parent's node alone; a call is on its root's
    /// path when it and every ancestor below the root are on their parents').
    pub on_parent_path: bool,
    /// Overlaps a sibling in time.
    pub parallel: bool,
    /// The parent did not wait for it (answered first, started it after answering, or it
    /// answered 202/204).
    pub fire_and_forget: bool,
    /// One of an N+1 group.
    pub n_plus_one: bool,
    /// Serving window minus the time covered by children (ns); None without a window.
    pub own_ns: Option<i64>,
    /// Serving window time covered by at least one child (ns).
    pub waiting_ns: Option<i64>,
}

/// Trees over a call list.
#[derive(Clone, Debug, Default)]
pub struct Forest {
    pub facts: Vec<CallFacts>,
    /// Children of call `i`: `child_list[child_offsets[i]..child_offsets[i + 1]]`, by
    /// start time.
    pub child_offsets: Vec<u32>,
    pub child_list: Vec<u32>,
    /// Calls with no parent whose caller serves nothing: edge clients' requests.
    pub roots: Vec<u32>,
    /// Calls with no parent whose caller does serve requests.
    pub orphans: Vec<u32>,
}

impl Forest {
    pub fn children(&self, i: u32) -> &[u32] {
        let (a, b) = (
            self.child_offsets.get(i as usize).copied().unwrap_or(0) as usize,
            self.child_offsets.get(i as usize + 1).copied().unwrap_or(0) as usize,
        );
        self.child_list.get(a..b).unwrap_or(&[])
    }

    /// Largest depth in the tree under `top` (iterative).
    pub fn tree_depth(&self, top: u32) -> u32 {
        let mut best = 0;
        let mut stack = vec![top];
        while let Some(i) = stack.pop() {
            best = best.max(self.facts.get(i as usize).map_or(0, |f| f.depth));
            stack.extend_from_slice(self.children(i));
        }
        best
    }

    /// The critical path of `top` in time order.
    pub fn critical_path(&self, top: u32, calls: &[Call]) -> Vec<u32> {
        let mut path = Vec::new();
        let mut stack = vec![top];
        while let Some(i) = stack.pop() {
            if self.facts.get(i as usize).is_some_and(|f| f.critical) {
                path.push(i);
                stack.extend_from_slice(self.children(i));
            }
        }
        path.sort_by_key(|&i| (calls[i as usize].start().unwrap_or(i64::MAX), i));
        path
    }
}

/// (server service, method, route) of a child, for N+1 grouping.
type ChildRoute = (Sym, Option<Sym>, Option<Sym>);

/// Builds the trees. Edges must point from a later call to an earlier one (as
/// `infer_parents` guarantees) or be acyclic.
pub fn build(calls: &[Call], edges: &[Option<Edge>], cfg: &TreeConfig) -> Forest {
    let n = calls.len().min(edges.len());
    let mut forest = Forest {
        facts: vec![CallFacts::default(); n],
        ..Default::default()
    };
    // Children in CSR form.
    let mut counts = vec![0u32; n + 1];
    for e in edges[..n].iter().flatten() {
        if (e.parent as usize) < n {
            counts[e.parent as usize + 1] += 1;
        }
    }
    for i in 0..n {
        counts[i + 1] += counts[i];
    }
    let mut fill = counts.clone();
    let mut list = vec![0u32; counts[n] as usize];
    for (i, e) in edges[..n].iter().enumerate() {
        if let Some(e) = e {
            if let Some(slot) = fill.get_mut(e.parent as usize) {
                if let Some(x) = list.get_mut(*slot as usize) {
                    *x = i as u32;
                }
                *slot += 1;
            }
        }
    }
    for p in 0..n {
        let (a, b) = (counts[p] as usize, counts[p + 1] as usize);
        list[a..b].sort_by_key(|&c| (calls[c as usize].start().unwrap_or(i64::MAX), c));
    }
    forest.child_offsets = counts;
    forest.child_list = list;

    let serving: FxHashSet<IpAddr> = calls[..n]
        .iter()
        .filter(|c| c.kind == CallKind::Http && c.req_last.is_some())
        .map(|c| c.server.ip())
        .collect();
    for (i, c) in calls[..n].iter().enumerate() {
        if edges[i].is_none() {
            if serving.contains(&c.client.ip()) {
                forest.orphans.push(i as u32);
            } else {
                forest.roots.push(i as u32);
            }
        }
    }

    // Depth and top, top-down.
    let mut stack: Vec<(u32, u32, u32)> = Vec::new();
    for &r in &forest.roots {
        stack.push((r, r, 1));
    }
    for &o in &forest.orphans {
        stack.push((o, o, 0));
    }
    while let Some((i, top, depth)) = stack.pop() {
        forest.facts[i as usize].depth = depth;
        forest.facts[i as usize].top = top;
        let d = if depth == 0 {
            0
        } else {
            depth.saturating_add(1)
        };
        for &c in forest.children(i) {
            stack.push((c, top, d));
        }
    }

    for p in 0..n as u32 {
        sibling_facts(calls, edges, &mut forest, p, cfg);
    }
    let mut kids = Vec::new();
    let mut on_path = Vec::new();
    for p in 0..n as u32 {
        path_children(calls, &forest, p, &mut kids, &mut on_path);
        for &c in &on_path {
            forest.facts[c as usize].on_parent_path = true;
        }
    }
    for r in forest.roots.clone() {
        mark_critical(&mut forest, r);
    }
    forest
}

/// Parallel, fire-and-forget, N+1 for the children of `p`; own vs waiting for `p`.
fn sibling_facts(
    calls: &[Call],
    edges: &[Option<Edge>],
    forest: &mut Forest,
    p: u32,
    cfg: &TreeConfig,
) {
    let kids: Vec<u32> = forest.children(p).to_vec();
    if kids.is_empty() {
        if let Some((a, b)) = calls[p as usize].serving() {
            forest.facts[p as usize].own_ns = Some(b.saturating_sub(a));
            forest.facts[p as usize].waiting_ns = Some(0);
        }
        return;
    }
    let parent = &calls[p as usize];
    // Parallel: a child overlaps an earlier one (max end so far) or the next one.
    let mut max_end = i64::MIN;
    for (k, &c) in kids.iter().enumerate() {
        let call = &calls[c as usize];
        let (Some(s), e) = (call.start(), call.end().unwrap_or(i64::MAX)) else {
            continue;
        };
        let next_start = kids
            .get(k + 1)
            .and_then(|&n| calls[n as usize].start())
            .unwrap_or(i64::MAX);
        if s < max_end || e > next_start {
            forest.facts[c as usize].parallel = true;
        }
        max_end = max_end.max(e);
    }
    // Fire-and-forget.
    for &c in &kids {
        let call = &calls[c as usize];
        let answered = match call.kind {
            // An opaque call's last packet may be a closing ACK: compare with the end of
            // the parent's answer.
            CallKind::Opaque => parent.resp_last,
            CallKind::Http => parent.resp_first,
        };
        let after = match (call.end(), answered) {
            (Some(e), Some(a)) => e > a.saturating_add(cfg.tolerance_ns),
            _ => false,
        };
        let late = edges[c as usize].is_some_and(|e| e.late);
        let accepted = matches!(call.status, Some(202 | 204));
        forest.facts[c as usize].fire_and_forget = after || late || accepted;
    }
    // N+1: the same child route at least n times, mostly one after the other.
    let mut groups: FxHashMap<ChildRoute, (usize, usize)> = FxHashMap::default();
    for &c in &kids {
        let call = &calls[c as usize];
        if call.route.is_none() {
            continue;
        }
        let g = groups
            .entry((call.server_service, call.method, call.route))
            .or_default();
        g.0 += 1;
        g.1 += usize::from(forest.facts[c as usize].parallel);
    }
    for &c in &kids {
        let call = &calls[c as usize];
        if let Some(&(count, parallel)) =
            groups.get(&(call.server_service, call.method, call.route))
        {
            if call.route.is_some() && count >= cfg.n_plus_one_min && parallel * 2 < count {
                forest.facts[c as usize].n_plus_one = true;
            }
        }
    }
    // Own vs waiting: the union of the children's intervals inside the serving window.
    if let Some((a, b)) = parent.serving() {
        let mut waiting = 0i64;
        let mut cur: Option<(i64, i64)> = None;
        for &c in &kids {
            let call = &calls[c as usize];
            let (Some(s), Some(e)) = (call.start(), call.end()) else {
                continue;
            };
            let (s, e) = (s.clamp(a, b), e.clamp(a, b));
            if e <= s {
                continue;
            }
            cur = match cur {
                Some((cs, ce)) if s <= ce => Some((cs, ce.max(e))),
                Some((cs, ce)) => {
                    waiting = waiting.saturating_add(ce.saturating_sub(cs));
                    Some((s, e))
                }
                None => Some((s, e)),
            };
        }
        if let Some((cs, ce)) = cur {
            waiting = waiting.saturating_add(ce.saturating_sub(cs));
        }
        forest.facts[p as usize].waiting_ns = Some(waiting);
        forest.facts[p as usize].own_ns = Some(b.saturating_sub(a).saturating_sub(waiting).max(0));
    }
}

/// CRISP step at `p`: its children on its critical path, into `out`. From the moment
/// `p` answered, back in time: the child that ended last before that moment, then the
/// one that ended last before that child started, and so on.
fn path_children(calls: &[Call], forest: &Forest, p: u32, kids: &mut Vec<u32>, out: &mut Vec<u32>) {
    out.clear();
    let call = &calls[p as usize];
    let Some(mut t) = call.resp_first.or(call.end()) else {
        return;
    };
    kids.clear();
    kids.extend_from_slice(forest.children(p));
    kids.sort_by_key(|&c| (Reverse(calls[c as usize].end().unwrap_or(i64::MIN)), c));
    for &c in kids.iter() {
        let ch = &calls[c as usize];
        let (Some(s), Some(e)) = (ch.start(), ch.end()) else {
            continue;
        };
        if e <= t {
            out.push(c);
            t = s;
        }
    }
}

/// Marks the calls on `root`'s critical path: the root, and down from it the calls on
/// their parents' paths.
fn mark_critical(forest: &mut Forest, root: u32) {
    let mut stack = vec![root];
    while let Some(i) = stack.pop() {
        if forest.facts[i as usize].critical {
            continue;
        }
        forest.facts[i as usize].critical = true;
        for k in 0..forest.children(i).len() {
            let c = forest.children(i)[k];
            if forest.facts[c as usize].on_parent_path {
                stack.push(c);
            }
        }
    }
}
