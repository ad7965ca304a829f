//! The fleet's per-link figures made into the links `analyze` measures: the group-bys the
//! engine ran carry the same figures under the same names as `links::measure`'s, so the
//! same functions make the measures, the routes and the links; then the chain objects.
//! What the fleet does not aggregate stays at its "not measured" value (docs/fleet.md).

use std::collections::BTreeMap;

use crate::analysis::chains::link_chain::{
    busiest_first, CallsPerParent, CriticalPathShare, DepthCount, IdAgreement, NPlusOne,
};
use crate::analysis::chains::{InferenceStats, LinkChain, RunChains};
use crate::analysis::links::{
    assemble, connection_measures, http_measures, LinkKey, LinkParts, LinkSet,
};

use super::engine::{ChainAgg, FleetResult};
use super::sketch::{bucket_value, Buckets};

/// The run-level `chains` object of `links.json` from the fleet's trees (the
/// `top_root_routes` busiest root routes). What only a node's inference knows (candidates
/// weighed, ambiguous choices, bounds hit, timing checked against ids) is not in the
/// slices and stays zero; `settings` is left out, which the report reads as "not known".
pub fn run_chains(result: &FleetResult, top_root_routes: usize) -> RunChains {
    let t = &result.trees;
    let source = |s: &str| t.by_source.get(s).copied().unwrap_or(0);
    let mut routes = t.routes.clone();
    routes.truncate(top_root_routes);
    RunChains {
        reliable: true,
        unreliable_reason: None,
        calls: t.calls,
        roots: t.roots,
        orphans: t.orphans,
        inference: InferenceStats {
            calls: t.calls,
            with_parent: t.with_parent,
            by_timing: source("timing"),
            by_traceparent: source("traceparent"),
            by_span: source("span"),
            late: t.late,
            ..InferenceStats::default()
        },
        timing_vs_ids: IdAgreement::default(),
        settings: None,
        tree_depths: t
            .depths
            .iter()
            .map(|(&depth, &roots)| DepthCount { depth, roots })
            .collect(),
        top_root_routes: routes,
    }
}

/// The links (keeping the `top_routes` busiest routes of each) and their chain objects.
pub fn link_set(
    result: &FleetResult,
    top_routes: usize,
) -> anyhow::Result<(LinkSet, BTreeMap<LinkKey, LinkChain>)> {
    let capture_seconds = match (result.figures.first_ns, result.figures.last_ns) {
        (Some(f), Some(l)) if l > f => Some((l - f) as f64 / 1e9),
        _ => None,
    };
    let parts = LinkParts {
        http: http_measures(&result.http.agg, &result.http.counts, capture_seconds)?,
        routes: http_measures(&result.routes.agg, &result.routes.counts, capture_seconds)?,
        connections: connection_measures(&result.connections, &result.connection_counts)?,
        tls_estimates: result
            .tls_estimates
            .iter()
            .map(|(k, s)| (k.clone(), s.measures()))
            .collect(),
        periodic: result.periodic.clone(),
        exchange_protocols: result.exchange_protocols.clone(),
        members: result.members.clone(),
        capture_seconds,
    };
    let set = assemble(parts, top_routes);
    let chains = set
        .links
        .iter()
        .map(|l| {
            let key = (l.client.clone(), l.server.clone());
            // A link's calls: its requests, or for a link without visible HTTP (TLS
            // without keys, other protocols) its connections, one opaque call each.
            let calls = l
                .http
                .as_ref()
                .map(|h| h.requests)
                .filter(|n| *n > 0)
                .unwrap_or(l.connections);
            let agg = result.chains.get(&key).cloned().unwrap_or_default();
            (key, chain(&agg, calls))
        })
        .collect();
    Ok((set, chains))
}

fn chain(c: &ChainAgg, calls: u64) -> LinkChain {
    let w = c.with_parent as f64;
    LinkChain {
        max_depth: (c.depth_calls > 0).then(|| u32::try_from(c.depth_max).unwrap_or(u32::MAX)),
        mean_depth: (c.depth_calls > 0).then(|| c.depth_sum as f64 / c.depth_calls as f64),
        calls_per_parent: CallsPerParent {
            mean: (c.parents > 0).then(|| w / c.parents as f64),
            max: (c.parents > 0).then_some(c.max_per_parent),
        },
        parallel_share: (c.with_parent > 0).then(|| c.parallel as f64 / w),
        fire_and_forget_share: (c.with_parent > 0).then(|| c.fire_and_forget as f64 / w),
        same_payload_fanout_share: (c.with_parent > 0).then(|| c.same_payload as f64 / w),
        inferred_confidence: (c.with_parent > 0).then(|| c.confidence_sum / w),
        confirmed_by_ids_share: (c.with_parent > 0).then(|| c.by_ids as f64 / w),
        critical_path_share: CriticalPathShare {
            roots: (c.roots_through > 0).then(|| c.roots_critical as f64 / c.roots_through as f64),
            latency: (c.latency_ns > 0.0).then(|| c.critical_ns / c.latency_ns),
        },
        n_plus_one: n_plus_one(c),
        calls,
        roots_through: c.roots_through,
        critical_call_ms: weighted(&c.critical_call_ms),
        critical_child_ms: weighted(&c.critical_child_ms),
    }
}

/// The N+1 groups of a link, busiest first (as `analyze` orders them).
fn n_plus_one(c: &ChainAgg) -> Vec<NPlusOne> {
    let mut groups: Vec<NPlusOne> = c
        .n_plus_one
        .iter()
        .map(|((method, route), &(parents, calls, max))| NPlusOne {
            method: method.clone(),
            route: route.clone(),
            parents,
            calls,
            max_per_parent: max,
        })
        .collect();
    busiest_first(&mut groups);
    groups
}

/// A sketch as (value, count) pairs: each bucket's value, within the sketch's accuracy
/// of the durations it counts.
fn weighted(b: &Buckets) -> Vec<(f64, u64)> {
    b.counts
        .iter()
        .map(|&(k, n)| (bucket_value(k), n))
        .collect()
}
