//! Per-link `chain` objects and the run's chain summary, folded from the calls, their
//! parent edges and the trees.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use serde::Serialize;

use super::calls::{Call, CallSet, Sym};
use super::parents::{EdgeSource, Inference, InferenceStats, ParentConfig};
use super::tree::Forest;
use crate::analysis::links::LinkKey;

/// Share of the root requests through a link whose critical path includes it, and the
/// share of those roots' latency its calls on the critical path account for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct CriticalPathShare {
    pub roots: Option<f64>,
    pub latency: Option<f64>,
}

/// Calls of the link per parent request that made at least one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct CallsPerParent {
    pub mean: Option<f64>,
    pub max: Option<u64>,
}

/// One N+1 route of a link: the same route called `n_plus_one_min`+ times, mostly
/// sequentially, under one parent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NPlusOne {
    pub method: Option<String>,
    pub route: Option<String>,
    /// Parent requests that showed the pattern.
    pub parents: u64,
    /// Calls in those groups.
    pub calls: u64,
    pub max_per_parent: u64,
}

/// A link's N+1 groups in report order: most calls first, then by route.
pub fn busiest_first(groups: &mut [NPlusOne]) {
    groups.sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.route.cmp(&b.route)));
}

/// The `chain` object of a link in `links.json` (docs/chains.md).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LinkChain {
    /// Hops from a root caller down to and including this link (first hop out of an
    /// edge client is 1); null when none of its calls is in a rooted tree.
    pub max_depth: Option<u32>,
    pub mean_depth: Option<f64>,
    pub critical_path_share: CriticalPathShare,
    pub calls_per_parent: CallsPerParent,
    /// Of the calls with a parent: overlapping a sibling in time.
    pub parallel_share: Option<f64>,
    /// Of the calls with a parent: not waited for.
    pub fire_and_forget_share: Option<f64>,
    /// Of the calls with a parent: the parent's service sent the same payload (method and
    /// body size) to at least one other service for the same parent request: one
    /// message with several consumers.
    pub same_payload_fanout_share: Option<f64>,
    pub n_plus_one: Vec<NPlusOne>,
    /// Mean confidence of the calls' parent edges.
    pub inferred_confidence: Option<f64>,
    /// Of the calls with a parent: edges given by propagated ids (traceparent, spans).
    pub confirmed_by_ids_share: Option<f64>,
    /// Calls of the link seen.
    #[serde(skip)]
    pub calls: u64,
    /// Root requests whose tree includes the link.
    #[serde(skip)]
    pub roots_through: u64,
    /// Durations (ms) of the link's calls on a critical path, each with its number of
    /// calls (1 per call here; the fleet gives a sketch's buckets).
    #[serde(skip)]
    pub critical_call_ms: Vec<(f64, u64)>,
    /// The same for the calls that have a parent (a root cannot leave its own path).
    #[serde(skip)]
    pub critical_child_ms: Vec<(f64, u64)>,
}

/// Roots per tree depth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DepthCount {
    pub depth: u32,
    pub roots: u64,
}

/// One hop of a critical path, averaged over the roots that took that path.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Hop {
    pub depth: u32,
    pub client: String,
    pub server: String,
    pub method: Option<String>,
    pub route: Option<String>,
    /// The call as its caller saw it: first request byte to last response byte.
    pub mean_ms: Option<f64>,
    /// Time the server spent itself vs waiting on its children (serving window split).
    pub own_ms: Option<f64>,
    pub waiting_ms: Option<f64>,
}

/// The commonest critical path of a root route.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CriticalPath {
    /// Roots of the route whose critical path was exactly this one.
    pub roots: u64,
    pub hops: Vec<Hop>,
}

/// A root route: what edge clients asked for.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RootRoute {
    pub client: String,
    pub server: String,
    pub method: Option<String>,
    pub route: Option<String>,
    pub roots: u64,
    pub mean_latency_ms: Option<f64>,
    pub max_depth: u32,
    /// Distinct critical paths seen (up to the bound).
    pub critical_paths: u64,
    pub critical_path: Option<CriticalPath>,
}

/// Timing vs ids: of the calls whose parent the ids gave and timing alone could also
/// name, how many timing named the same.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct IdAgreement {
    pub checked: u64,
    pub agreed: u64,
    /// `agreed / checked`; when tied calls were left out (`left_out`), the tied calls'
    /// share in the sample stands for all of them (the two strata weighted by size).
    pub share: Option<f64>,
    /// Tied calls with ids not checked (past a bound, only stretches of the capture
    /// are).
    pub left_out: u64,
}

impl IdAgreement {
    pub fn of(s: &InferenceStats) -> IdAgreement {
        let share = if s.ids_check_left_out > 0 && s.ids_tied_checked > 0 {
            let untied = (s.ids_agreed - s.ids_tied_agreed) as f64;
            let tied_share = s.ids_tied_agreed as f64 / s.ids_tied_checked as f64;
            let tied = (s.ids_tied_checked + s.ids_check_left_out) as f64;
            Some((untied + tied_share * tied) / (s.ids_checked + s.ids_check_left_out) as f64)
        } else {
            share(s.ids_agreed, s.ids_checked)
        };
        IdAgreement {
            checked: s.ids_checked,
            agreed: s.ids_agreed,
            share,
            left_out: s.ids_check_left_out,
        }
    }
}

/// The run-level `chains` object of `links.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RunChains {
    /// False when the captures' clocks disagree beyond the inference tolerance.
    pub reliable: bool,
    pub unreliable_reason: Option<String>,
    pub calls: u64,
    pub roots: u64,
    /// Calls with no parent found whose caller serves requests (depth unknown).
    pub orphans: u64,
    pub inference: InferenceStats,
    pub timing_vs_ids: IdAgreement,
    pub settings: Option<ParentConfig>,
    pub tree_depths: Vec<DepthCount>,
    pub top_root_routes: Vec<RootRoute>,
}

/// Bound on distinct critical-path shapes kept per root route.
pub const MAX_PATHS_PER_ROUTE: usize = 256;

type LinkSyms = (Sym, Sym);
type HopKey = (u32, Sym, Sym, Option<Sym>, Option<Sym>);
type RootKey = (Sym, Sym, Option<Sym>, Option<Sym>);
/// (link, method, route) of an N+1 group.
type NPlusOneKey = (LinkSyms, Option<String>, Option<String>);

#[derive(Default)]
struct LinkAcc {
    calls: u64,
    depth_sum: u64,
    depth_n: u64,
    max_depth: Option<u32>,
    with_parent: u64,
    confidence: f64,
    by_ids: u64,
    parallel: u64,
    fire_and_forget: u64,
    same_payload: u64,
    roots_through: u64,
    roots_critical: u64,
    critical_ns: f64,
    latency_ns: f64,
    critical_call_ms: Vec<(f64, u64)>,
    critical_child_ms: Vec<(f64, u64)>,
}

#[derive(Default)]
struct PathAcc {
    roots: u64,
    /// Per hop: (sum ms, n), (sum own ms, sum waiting ms, n).
    sums: Vec<(f64, u64, f64, f64, u64)>,
}

#[derive(Default)]
struct RootAcc {
    roots: u64,
    latency_ms: f64,
    latency_n: u64,
    max_depth: u32,
    paths: FxHashMap<Vec<HopKey>, PathAcc>,
}

fn ms(ns: i64) -> f64 {
    ns as f64 / 1e6
}

fn share(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// Per call: a sibling (same parent request, same calling service) sent a request with
/// the same method and the same non-empty body size to a different service.
pub fn same_payload_fanout(calls: &[Call], inf: &Inference, n: usize) -> Vec<bool> {
    // (parent, caller, method, body bytes) -> the callees and the calls.
    type Key = (u32, Sym, Option<Sym>, u64);
    let mut groups: FxHashMap<Key, (Vec<Sym>, Vec<u32>)> = FxHashMap::default();
    for (i, c) in calls.iter().enumerate().take(n) {
        let (Some(e), Some(body)) = (inf.edges[i], c.req_body.filter(|b| *b > 0)) else {
            continue;
        };
        let g = groups
            .entry((e.parent, c.client_service, c.method, body))
            .or_default();
        if !g.0.contains(&c.server_service) {
            g.0.push(c.server_service);
        }
        g.1.push(i as u32);
    }
    let mut out = vec![false; calls.len()];
    for (callees, members) in groups.values() {
        if callees.len() >= 2 {
            for &m in members {
                out[m as usize] = true;
            }
        }
    }
    out
}

/// Folds calls, edges and trees into per-link chains and the run summary.
pub fn summarize(
    set: &CallSet,
    inf: &Inference,
    forest: &Forest,
    top_routes: usize,
) -> (BTreeMap<LinkKey, LinkChain>, RunChains) {
    let calls = &set.calls;
    let sym = |s: Sym| set.symbols.get(s).to_owned();
    let sym_opt = |s: Option<Sym>| s.map(|s| set.symbols.get(s).to_owned());
    let n = calls.len().min(inf.edges.len()).min(forest.facts.len());
    let mut links: FxHashMap<LinkSyms, LinkAcc> = FxHashMap::default();
    let mut per_parent: FxHashMap<(LinkSyms, u32), u64> = FxHashMap::default();
    let mut n1: FxHashMap<(LinkSyms, Option<Sym>, Option<Sym>, u32), u64> = FxHashMap::default();
    let same_payload = same_payload_fanout(calls, inf, n);
    for (i, (c, f)) in calls.iter().zip(&forest.facts).enumerate().take(n) {
        let key = (c.client_service, c.server_service);
        let a = links.entry(key).or_default();
        a.calls += 1;
        if f.depth > 0 {
            a.depth_sum += u64::from(f.depth);
            a.depth_n += 1;
            a.max_depth = Some(a.max_depth.map_or(f.depth, |m| m.max(f.depth)));
        }
        if let Some(e) = inf.edges[i] {
            a.with_parent += 1;
            a.confidence += e.confidence;
            a.by_ids += u64::from(e.source != EdgeSource::Timing);
            a.parallel += u64::from(f.parallel);
            a.fire_and_forget += u64::from(f.fire_and_forget);
            a.same_payload += u64::from(same_payload[i]);
            *per_parent.entry((key, e.parent)).or_default() += 1;
            if f.n_plus_one {
                *n1.entry((key, c.method, c.route, e.parent)).or_default() += 1;
            }
        }
        if f.critical {
            let d = c.duration().map_or(0.0, ms);
            a.critical_call_ms.push((d, 1));
            if inf.edges[i].is_some() {
                a.critical_child_ms.push((d, 1));
            }
        }
    }

    // Per root: which links its tree holds, which lie on its critical path.
    let mut roots: BTreeMap<RootKey, RootAcc> = BTreeMap::new();
    let mut depth_hist: BTreeMap<u32, u64> = BTreeMap::new();
    let mut in_tree: FxHashMap<LinkSyms, (bool, i64)> = FxHashMap::default();
    let mut stack = Vec::new();
    for &r in &forest.roots {
        let Some(root) = calls.get(r as usize) else {
            continue;
        };
        in_tree.clear();
        stack.clear();
        stack.push(r);
        let mut depth = 0;
        while let Some(i) = stack.pop() {
            let c = &calls[i as usize];
            let f = &forest.facts[i as usize];
            depth = depth.max(f.depth);
            let e = in_tree
                .entry((c.client_service, c.server_service))
                .or_insert((false, 0));
            if f.critical {
                e.0 = true;
                e.1 = e.1.saturating_add(c.duration().unwrap_or(0));
            }
            stack.extend_from_slice(forest.children(i));
        }
        *depth_hist.entry(depth).or_default() += 1;
        let latency = root.duration();
        for (k, (critical, ns)) in &in_tree {
            if let Some(a) = links.get_mut(k) {
                a.roots_through += 1;
                if *critical {
                    a.roots_critical += 1;
                    if let Some(l) = latency.filter(|l| *l > 0) {
                        a.critical_ns += (*ns).min(l) as f64;
                        a.latency_ns += l as f64;
                    }
                }
            }
        }
        let ra = roots
            .entry((
                root.client_service,
                root.server_service,
                root.method,
                root.route,
            ))
            .or_default();
        ra.roots += 1;
        if let Some(l) = latency {
            ra.latency_ms += ms(l);
            ra.latency_n += 1;
        }
        ra.max_depth = ra.max_depth.max(depth);
        let path = forest.critical_path(r, calls);
        let sig: Vec<HopKey> = path
            .iter()
            .map(|&i| {
                let c = &calls[i as usize];
                (
                    forest.facts[i as usize].depth,
                    c.client_service,
                    c.server_service,
                    c.method,
                    c.route,
                )
            })
            .collect();
        if ra.paths.len() >= MAX_PATHS_PER_ROUTE && !ra.paths.contains_key(&sig) {
            continue;
        }
        let pa = ra.paths.entry(sig).or_default();
        pa.roots += 1;
        pa.sums.resize(path.len(), Default::default());
        for (h, &i) in path.iter().enumerate() {
            let c = &calls[i as usize];
            let f = &forest.facts[i as usize];
            if let Some(d) = c.duration() {
                pa.sums[h].0 += ms(d);
                pa.sums[h].1 += 1;
            }
            if let (Some(o), Some(w)) = (f.own_ns, f.waiting_ns) {
                pa.sums[h].2 += ms(o);
                pa.sums[h].3 += ms(w);
                pa.sums[h].4 += 1;
            }
        }
    }

    // Per-parent counts and N+1 groups, per link.
    let mut cpp: FxHashMap<LinkSyms, (u64, u64, u64)> = FxHashMap::default();
    for ((k, _), count) in &per_parent {
        let e = cpp.entry(*k).or_default();
        e.0 += 1;
        e.1 += count;
        e.2 = e.2.max(*count);
    }
    let mut n1_routes: BTreeMap<NPlusOneKey, (u64, u64, u64)> = BTreeMap::new();
    for ((k, m, r, _), count) in &n1 {
        let e = n1_routes.entry((*k, sym_opt(*m), sym_opt(*r))).or_default();
        e.0 += 1;
        e.1 += count;
        e.2 = e.2.max(*count);
    }

    let mut out = BTreeMap::new();
    for (k, a) in links {
        let (parents, calls_sum, max) = cpp.get(&k).copied().unwrap_or_default();
        let mut n_plus_one: Vec<NPlusOne> = n1_routes
            .range((k, None, None)..)
            .take_while(|((lk, _, _), _)| *lk == k)
            .map(|((_, m, r), (p, c, mx))| NPlusOne {
                method: m.clone(),
                route: r.clone(),
                parents: *p,
                calls: *c,
                max_per_parent: *mx,
            })
            .collect();
        busiest_first(&mut n_plus_one);
        let chain = LinkChain {
            max_depth: a.max_depth,
            mean_depth: (a.depth_n > 0).then(|| a.depth_sum as f64 / a.depth_n as f64),
            critical_path_share: CriticalPathShare {
                roots: share(a.roots_critical, a.roots_through),
                latency: (a.latency_ns > 0.0).then(|| a.critical_ns / a.latency_ns),
            },
            calls_per_parent: CallsPerParent {
                mean: (parents > 0).then(|| calls_sum as f64 / parents as f64),
                max: (parents > 0).then_some(max),
            },
            parallel_share: share(a.parallel, a.with_parent),
            fire_and_forget_share: share(a.fire_and_forget, a.with_parent),
            same_payload_fanout_share: share(a.same_payload, a.with_parent),
            n_plus_one,
            inferred_confidence: (a.with_parent > 0).then(|| a.confidence / a.with_parent as f64),
            confirmed_by_ids_share: share(a.by_ids, a.with_parent),
            calls: a.calls,
            roots_through: a.roots_through,
            critical_call_ms: a.critical_call_ms,
            critical_child_ms: a.critical_child_ms,
        };
        out.insert((sym(k.0), sym(k.1)), chain);
    }

    let mut routes: Vec<RootRoute> = roots
        .into_iter()
        .map(|((c, s, m, r), ra)| {
            let critical_paths = ra.paths.len() as u64;
            let best = ra
                .paths
                .into_iter()
                .max_by(|a, b| a.1.roots.cmp(&b.1.roots).then_with(|| b.0.cmp(&a.0)));
            RootRoute {
                client: sym(c),
                server: sym(s),
                method: sym_opt(m),
                route: sym_opt(r),
                roots: ra.roots,
                mean_latency_ms: (ra.latency_n > 0).then(|| ra.latency_ms / ra.latency_n as f64),
                max_depth: ra.max_depth,
                critical_paths,
                critical_path: best.map(|(sig, pa)| CriticalPath {
                    roots: pa.roots,
                    hops: sig
                        .iter()
                        .zip(pa.sums.iter())
                        .map(|(&(d, c, s, m, r), &(sum, n, own, wait, n2))| Hop {
                            depth: d,
                            client: sym(c),
                            server: sym(s),
                            method: sym_opt(m),
                            route: sym_opt(r),
                            mean_ms: (n > 0).then(|| sum / n as f64),
                            own_ms: (n2 > 0).then(|| own / n2 as f64),
                            waiting_ms: (n2 > 0).then(|| wait / n2 as f64),
                        })
                        .collect(),
                }),
            }
        })
        .collect();
    routes.sort_by(|a, b| {
        b.roots
            .cmp(&a.roots)
            .then_with(|| a.route.cmp(&b.route))
            .then_with(|| a.method.cmp(&b.method))
    });
    routes.truncate(top_routes);
    let run = RunChains {
        reliable: true,
        unreliable_reason: None,
        calls: n as u64,
        roots: forest.roots.len() as u64,
        orphans: forest.orphans.len() as u64,
        inference: inf.stats.clone(),
        timing_vs_ids: IdAgreement::of(&inf.stats),
        settings: None,
        tree_depths: depth_hist
            .into_iter()
            .map(|(depth, roots)| DepthCount { depth, roots })
            .collect(),
        top_root_routes: routes,
    };
    (out, run)
}
