//! Parent inference: which request was a service serving when it made each call.
//!
//! A request `r` served by address B is a candidate parent of a call `c` made from B when
//! `c` started inside `r`'s serving window (`r.req_last - tol ..= r.resp_first + tol`), or
//! shortly after `r` answered (a late candidate: background work). Edges come from three
//! sources, best first: span ids (a trace reader, exact), W3C `traceparent` on the wire
//! (same trace id, exact up to retries inside one trace) and timing. Among timing
//! candidates the rule is, in order (docs/chains.md has every constant and why):
//! 1. enclosing: the call's answer arrived before the candidate answered; a call nobody
//!    encloses goes to a late candidate before a request in progress;
//! 2. route affinity: calls of the child's route per request of the candidate's route,
//!    learned by expectation-maximisation over all calls, per ms of window; candidates
//!    under 0.2 of the best drop out;
//! 3. same pool: the previous call on this keep-alive connection, answered just before,
//!    went to this candidate;
//! 4. tightest fit: affinity / (ms since the candidate's last event), cut when it already
//!    made its usual number of such calls or is waiting on an earlier call;
//! 5. the tightest window, then the lower row (determinism).
//!
//! Then look-alike requests (same route, overlapping) swap whole child sets when that fits
//! both windows better, and the joint refinement (`refine`) re-assigns every call the
//! rules could only tell apart by fit so that each parent's whole child set fits its
//! route's rhythm.
//!
//! The sweep is time-ordered: windows are opened in order of their start, kept in a
//! bounded list per server address and dropped lazily once closed, so the work grows
//! with calls x concurrently open windows, not calls squared.

use std::cmp::Reverse;
use std::net::IpAddr;

use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use super::calls::{Call, Sym};

mod refine;
use refine::Ambiguous;

/// Where a parent edge came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeSource {
    /// Inferred from wire times (and route affinity).
    Timing,
    /// Same W3C trace id on the request being served and on the call.
    Traceparent,
    /// The call's parent span id names the parent's span (trace input).
    Span,
}

/// The parent of one call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Edge {
    /// Index of the parent in the call list.
    pub parent: u32,
    pub source: EdgeSource,
    /// 1 for a single candidate; 1/k when k candidates were equally good on the rules
    /// that weigh evidence (enclosing, affinity); halved for a late edge.
    pub confidence: f64,
    /// The call started after the parent had begun to answer (background work).
    pub late: bool,
}

/// Bounds and tolerances of the inference.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ParentConfig {
    /// Slack around a serving window, for capture-point and clock jitter.
    pub tolerance_ns: i64,
    /// A call that starts this soon after a request was answered, with no other
    /// candidate, is taken as that request's background (fire-and-forget) work.
    pub late_grace_ns: i64,
    /// Open windows kept per server address; more are dropped and counted.
    pub max_open_per_ip: usize,
    /// Candidates weighed per call; more are dropped and counted.
    pub max_candidates: usize,
    /// A request never answered in the capture keeps its window open this long.
    pub max_window_ns: i64,
    /// Candidates kept per (server address, trace id).
    pub max_same_trace: usize,
    /// Tied calls the check of timing against ids refines at most; past it, stretches
    /// of the capture (see `sample_check`).
    pub check_refine_max: usize,
    /// At 2 or more, the timing-only check against the ids (when there are ids) is
    /// refined on a second thread beside the inference; the results do not change, so it
    /// is not reported with the settings.
    #[serde(skip)]
    pub threads: usize,
}

impl Default for ParentConfig {
    fn default() -> Self {
        ParentConfig {
            tolerance_ns: 1_000_000,
            late_grace_ns: 10_000_000,
            max_open_per_ip: 4096,
            max_candidates: 64,
            max_window_ns: 60_000_000_000,
            max_same_trace: 64,
            check_refine_max: 20_000,
            threads: 1,
        }
    }
}

/// Counters of one inference run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct InferenceStats {
    pub calls: u64,
    pub with_parent: u64,
    pub by_timing: u64,
    pub by_traceparent: u64,
    pub by_span: u64,
    /// Timing edges chosen among several candidates.
    pub ambiguous: u64,
    /// Edges to a request that had already begun to answer.
    pub late: u64,
    /// Windows not kept (per-address bound) and candidates not weighed (per-call bound).
    pub windows_dropped: u64,
    pub candidates_dropped: u64,
    /// Calls whose parent the ids gave and timing could also name: checked, agreed.
    pub ids_checked: u64,
    pub ids_agreed: u64,
    /// Of those, the calls timing alone found tied (refined before the check).
    pub ids_tied_checked: u64,
    pub ids_tied_agreed: u64,
    /// Tied calls with ids left out of that check (past `check_refine_max` tied calls,
    /// only stretches of the capture are refined and checked): not in `ids_checked`.
    pub ids_check_left_out: u64,
    /// Calls left out of the affinity learning (bound on collected candidates).
    pub affinity_skipped: u64,
    /// Child sets swapped between two look-alike requests (`swap_twins`).
    pub swapped: u64,
    /// Timing edges re-assigned by the joint refinement (`refine.rs`), and ambiguous
    /// calls it left as the rules chose (parent over its children bound, budget spent).
    pub refined: u64,
    pub refine_skipped: u64,
}

/// Parent edge per call (same order as the calls) and the counters.
#[derive(Clone, Debug, Default)]
pub struct Inference {
    pub edges: Vec<Option<Edge>>,
    pub stats: InferenceStats,
}

/// (server service, method, route): what affinity is learned between.
type RouteKey = (Sym, Option<Sym>, Option<Sym>);

fn route_key(c: &Call) -> RouteKey {
    (c.server_service, c.method, c.route)
}

struct Window {
    call: u32,
    ip: IpAddr,
    open: i64,
    close: i64,
}

/// The time-ordered sweep over serving windows.
struct Sweep<'a> {
    windows: &'a [Window],
    next: usize,
    open: FxHashMap<IpAddr, OpenWindows>,
    /// Addresses some call is made from: only their windows are kept.
    callers: &'a FxHashSet<IpAddr>,
}

/// The windows open on one address, and the earliest time one of them expires (its
/// close plus the late grace). Pruning runs only once that time has passed, so nested
/// windows that never expire cost nothing per step, and every pruning pass removes at
/// least one window.
struct OpenWindows {
    ids: Vec<u32>,
    expires: i64,
}

impl Default for OpenWindows {
    fn default() -> Self {
        OpenWindows {
            ids: Vec::new(),
            expires: i64::MAX,
        }
    }
}

impl OpenWindows {
    fn push(&mut self, k: u32, windows: &[Window], cfg: &ParentConfig) {
        let expiry = windows[k as usize].close.saturating_add(cfg.late_grace_ns);
        self.expires = self.expires.min(expiry);
        self.ids.push(k);
    }

    /// Drops the windows expired at `t`.
    fn prune(&mut self, t: i64, windows: &[Window], cfg: &ParentConfig) {
        if self.expires >= t {
            return;
        }
        let mut expires = i64::MAX;
        self.ids.retain(|&k| {
            let expiry = windows[k as usize].close.saturating_add(cfg.late_grace_ns);
            let keep = expiry >= t;
            if keep {
                expires = expires.min(expiry);
            }
            keep
        });
        self.expires = expires;
    }
}

impl Sweep<'_> {
    /// Opens every window starting at or before `t`.
    fn advance(&mut self, t: i64, cfg: &ParentConfig, stats: &mut InferenceStats) {
        while let Some(w) = self.windows.get(self.next) {
            if w.open > t {
                break;
            }
            self.next += 1;
            if !self.callers.contains(&w.ip) {
                continue;
            }
            let list = self.open.entry(w.ip).or_default();
            if list.ids.len() >= cfg.max_open_per_ip {
                list.prune(t, self.windows, cfg);
            }
            if list.ids.len() >= cfg.max_open_per_ip {
                stats.windows_dropped += 1;
                continue;
            }
            list.push((self.next - 1) as u32, self.windows, cfg);
        }
    }

    /// Windows of `ip` open at `t` (primary) and those closed within the grace (late).
    fn candidates(
        &mut self,
        ip: IpAddr,
        t: i64,
        cfg: &ParentConfig,
        primary: &mut Vec<u32>,
        late: &mut Vec<u32>,
    ) {
        primary.clear();
        late.clear();
        let windows = self.windows;
        if let Some(list) = self.open.get_mut(&ip) {
            list.prune(t, windows, cfg);
            for &k in list.ids.iter() {
                let w = &windows[k as usize];
                if w.close >= t {
                    primary.push(w.call);
                } else {
                    late.push(w.call);
                }
            }
        }
    }
}

/// A request is never the parent of a call to the same listener (the next request on
/// its own connection, or any call on one host where every address is the same): a
/// service calling itself is rare, and on loopback every request would otherwise be a
/// candidate parent of every other.
fn same_listener(r: &Call, c: &Call) -> bool {
    r.conn_id == c.conn_id || r.server == c.server
}

/// (start, row): a parent always sorts before its child, so edges never form a cycle.
fn order_key(c: &Call, i: u32) -> (i64, u32) {
    (c.start().unwrap_or(i64::MAX), i)
}

/// Infers the parent of every call.
pub fn infer_parents(calls: &[Call], cfg: &ParentConfig) -> Inference {
    let n = calls.len().min(u32::MAX as usize);
    let calls = &calls[..n];
    let mut inf = Inference {
        edges: vec![None; n],
        stats: InferenceStats {
            calls: n as u64,
            ..Default::default()
        },
    };
    span_edges(calls, &mut inf);

    let mut order: Vec<u32> = (0..n as u32)
        .filter(|&i| calls[i as usize].start().is_some())
        .collect();
    order.sort_unstable_by_key(|&i| order_key(&calls[i as usize], i));
    let callers: FxHashSet<IpAddr> = calls.iter().map(|c| c.client.ip()).collect();
    let mut windows: Vec<Window> = Vec::new();
    let mut same_trace: FxHashMap<(IpAddr, u128), Vec<u32>> = FxHashMap::default();
    for (i, c) in calls.iter().enumerate() {
        let Some((open, close)) = serving_window(c, cfg) else {
            continue;
        };
        if !callers.contains(&c.server.ip()) {
            continue;
        }
        windows.push(Window {
            call: i as u32,
            ip: c.server.ip(),
            open: open.saturating_sub(cfg.tolerance_ns),
            close: close.saturating_add(cfg.tolerance_ns),
        });
        if let Some(t) = c.trace_id {
            let v = same_trace.entry((c.server.ip(), t)).or_default();
            if v.len() < cfg.max_same_trace {
                v.push(i as u32);
            } else {
                inf.stats.candidates_dropped += 1;
            }
        }
    }
    windows.sort_unstable_by_key(|w| (w.open, w.call));
    // Window index by call, to read a candidate's window.
    let mut window_of: FxHashMap<u32, u32> = FxHashMap::default();
    for (k, w) in windows.iter().enumerate() {
        window_of.insert(w.call, k as u32);
    }
    let ctx = Ctx {
        calls,
        windows: &windows,
        window_of: &window_of,
        cfg,
    };

    // Pass 1: every call's candidates, for the route affinity (with the ids' filter, and
    // without it for the check of timing against ids).
    let traced = calls.iter().any(|c| c.trace_id.is_some());
    let mut with_ids = Collect::default();
    let mut timing_only = Collect::default();
    let mut scratch = InferenceStats::default();
    let (mut primary, mut late, mut untraced) = (Vec::new(), Vec::new(), Vec::new());
    let mut sweep = Sweep {
        windows: &windows,
        next: 0,
        open: FxHashMap::default(),
        callers: &callers,
    };
    for &ci in &order {
        let c = &calls[ci as usize];
        let Some(t) = c.start() else { continue };
        sweep.advance(t, cfg, &mut scratch);
        // A call whose span ids name its parent teaches the affinity that parent alone:
        // exact evidence, and no sweep over the windows open around it (a deep trace
        // keeps thousands open).
        if let Some(e) = inf.edges[ci as usize] {
            with_ids.push(&ctx, ci, &[e.parent]);
            continue;
        }
        sweep.candidates(c.client.ip(), t, cfg, &mut primary, &mut late);
        primary.extend_from_slice(&late);
        if traced {
            untraced.clone_from(&primary);
            ctx.filter(ci, &mut untraced, &mut scratch, false);
            timing_only.push(&ctx, ci, &untraced);
        }
        ctx.filter(ci, &mut primary, &mut scratch, true);
        let ids = ctx.id_candidates(ci, &same_trace);
        with_ids.push(&ctx, ci, if ids.is_empty() { &primary } else { &ids });
    }
    inf.stats.affinity_skipped = with_ids.skipped + timing_only.skipped;
    // Requests per route among the windows: the rates' denominators.
    let mut requests: FxHashMap<RouteKey, u64> = FxHashMap::default();
    for w in &windows {
        *requests
            .entry(route_key(&calls[w.call as usize]))
            .or_default() += 1;
    }
    // Without trace ids there is no check, and timing's model is the model.
    let affinity = with_ids.learn(&requests);
    let timing_affinity = traced.then(|| timing_only.learn(&requests));
    // The candidates collected (up to `MAX_COLLECTED` entries each) are learned: free
    // them before pass 2 and the refinement allocate theirs.
    drop((with_ids, timing_only));

    // Pass 2: choose.
    let mut sweep = Sweep {
        windows: &windows,
        next: 0,
        open: FxHashMap::default(),
        callers: &callers,
    };
    let mut last_on_conn: FxHashMap<u64, u32> = FxHashMap::default();
    let mut sibling_parent: FxHashMap<(IpAddr, u128, u64), u32> = FxHashMap::default();
    let rules = &affinity;
    let timing_rules = timing_affinity.as_ref().unwrap_or(&affinity);
    // What each parent has done so far (children started and answered), for the gap.
    let mut progress: FxHashMap<u32, Progress> = FxHashMap::default();
    // The same, as timing alone would have it (for the check of timing against ids).
    let mut shadow: FxHashMap<u32, Progress> = FxHashMap::default();
    let mut all = Vec::new();
    // Calls the rules could not tell apart, for the joint refinement; and the same as
    // timing alone would have them, with timing's parent for every call.
    let mut ambiguous: Vec<Ambiguous> = Vec::new();
    let mut shadow_ambiguous: Vec<Ambiguous> = Vec::new();
    let mut shadow_edges: Vec<Option<Edge>> = vec![None; n];
    // (call, parent the ids gave) for the calls timing was checked on.
    let mut checked: Vec<(u32, u32)> = Vec::new();
    for &ci in &order {
        let c = &calls[ci as usize];
        let Some(t) = c.start() else { continue };
        sweep.advance(t, cfg, &mut inf.stats);
        if inf.edges[ci as usize].is_some() {
            continue;
        }
        sweep.candidates(c.client.ip(), t, cfg, &mut primary, &mut late);
        untraced.clone_from(&primary);
        untraced.extend_from_slice(&late);
        ctx.filter(ci, &mut untraced, &mut scratch, false);
        ctx.filter(ci, &mut primary, &mut inf.stats, true);
        ctx.filter(ci, &mut late, &mut inf.stats, true);
        all.clone_from(&primary);
        all.extend_from_slice(&late);
        // The previous call on this connection, if it was answered just before this one
        // started: a handler reusing its pooled connection for its next call.
        let pool = last_on_conn
            .get(&c.conn_id)
            .filter(|&&prev| {
                calls[prev as usize]
                    .end()
                    .is_some_and(|e| e >= t.saturating_sub(POOL_REUSE_NS))
            })
            .and_then(|&prev| inf.edges[prev as usize])
            .map(|e| e.parent);
        let ids = ctx.id_candidates(ci, &same_trace);
        let mut timing_choice = None;
        let edge = if !ids.is_empty() {
            let sibling = match (c.trace_id, c.parent_span_id) {
                (Some(t), Some(p)) => sibling_parent.get(&(c.client.ip(), t, p)).copied(),
                _ => None,
            };
            let choice = match sibling.filter(|s| ids.contains(s)) {
                Some(s) => Some((s, 1.0)),
                None => ctx
                    .choose(ci, &ids, rules, pool, &progress)
                    .map(|ch| (ch.parent, if ids.len() == 1 { 1.0 } else { ch.confidence })),
            };
            // Would timing alone (no ids, affinity learned without ids) have named the
            // same parent?
            if let (Some((parent, _)), Some(tc)) = (
                choice,
                ctx.choose(ci, &untraced, timing_rules, pool, &shadow),
            ) {
                checked.push((ci, parent));
                timing_choice = Some(tc.parent);
                shadow_edges[ci as usize] = Some(Edge {
                    parent: tc.parent,
                    source: EdgeSource::Timing,
                    confidence: tc.confidence,
                    late: tc.late,
                });
                if tc.tied.len() > 1 {
                    shadow_ambiguous.push(Ambiguous {
                        call: ci,
                        cands: tc.tied,
                    });
                }
            }
            if let (Some(t), Some(p), Some((parent, _))) = (c.trace_id, c.parent_span_id, choice) {
                sibling_parent.insert((c.client.ip(), t, p), parent);
            }
            choice.map(|(parent, confidence)| Edge {
                parent,
                source: EdgeSource::Traceparent,
                confidence,
                late: !ctx.in_window(parent, t),
            })
        } else {
            if all.len() > 1 {
                inf.stats.ambiguous += 1;
            }
            ctx.choose(ci, &all, rules, pool, &progress).map(|ch| {
                if ch.tied.len() > 1 {
                    ambiguous.push(Ambiguous {
                        call: ci,
                        cands: ch.tied.clone(),
                    });
                    shadow_ambiguous.push(Ambiguous {
                        call: ci,
                        cands: ch.tied,
                    });
                }
                Edge {
                    parent: ch.parent,
                    source: EdgeSource::Timing,
                    confidence: if ch.late {
                        ch.confidence / 2.0
                    } else {
                        ch.confidence
                    },
                    late: ch.late,
                }
            })
        };
        if timing_choice.is_none() {
            shadow_edges[ci as usize] = edge;
        }
        if let Some(e) = edge {
            progress.entry(e.parent).or_default().record(c);
            let shadow_parent = timing_choice.unwrap_or(e.parent);
            shadow.entry(shadow_parent).or_default().record(c);
        }
        if let Some(e) = edge {
            inf.edges[ci as usize] = Some(e);
            match e.source {
                EdgeSource::Timing => inf.stats.by_timing += 1,
                EdgeSource::Traceparent => inf.stats.by_traceparent += 1,
                EdgeSource::Span => inf.stats.by_span += 1,
            }
            if e.late {
                inf.stats.late += 1;
            }
        }
        last_on_conn.insert(c.conn_id, ci);
    }
    inf.stats.swapped = swap_twins(calls, &windows, &mut inf.edges);
    let left_out = sample_check(&mut shadow_ambiguous, cfg.check_refine_max);
    let before = checked.len();
    checked.retain(|(c, _)| left_out.binary_search(c).is_err());
    inf.stats.ids_checked = checked.len() as u64;
    inf.stats.ids_check_left_out = (before - checked.len()) as u64;
    // With ids to check against, timing alone is refined the same way beside the real
    // inference: the two share nothing but the calls, so they run on two threads.
    let shadow = (!checked.is_empty()).then_some(&mut shadow_edges);
    let check = |edges: &mut Vec<Option<Edge>>| {
        swap_twins(calls, &windows, edges);
        refine::refine(
            calls,
            edges,
            &shadow_ambiguous,
            cfg.tolerance_ns,
            cfg.threads,
        );
    };
    let done = std::thread::scope(|scope| {
        let (here, beside) = match shadow {
            Some(edges) if cfg.threads >= 2 => (None, Some(scope.spawn(|| check(edges)))),
            other => (other, None),
        };
        let done = refine::refine(
            calls,
            &mut inf.edges,
            &ambiguous,
            cfg.tolerance_ns,
            cfg.threads,
        );
        if let Some(edges) = here {
            check(edges);
        }
        if let Some(h) = beside {
            h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        }
        done
    });
    inf.stats.refined = done.moved;
    inf.stats.refine_skipped = done.skipped;
    if !checked.is_empty() {
        let mut tied: Vec<u32> = shadow_ambiguous.iter().map(|a| a.call).collect();
        tied.sort_unstable();
        for &(c, p) in &checked {
            let agreed = shadow_edges[c as usize].is_some_and(|e| e.parent == p);
            let is_tied = tied.binary_search(&c).is_ok();
            inf.stats.ids_agreed += u64::from(agreed);
            inf.stats.ids_tied_checked += u64::from(is_tied);
            inf.stats.ids_tied_agreed += u64::from(is_tied && agreed);
        }
    }
    inf.stats.with_parent = inf.edges.iter().filter(|e| e.is_some()).count() as u64;
    inf
}

/// Stretches of time the check's sample is made of, spread over the capture.
const CHECK_STRETCHES: usize = 16;

/// Past `max` tied calls (`ParentConfig::check_refine_max`), keeps in `amb` (in start
/// order) `max` of them, in `CHECK_STRETCHES` stretches of consecutive tied calls spread
/// evenly over the capture, and returns the calls left out, sorted. Those with ids are
/// left out of the check; the untied calls are all checked. (Tied calls without ids are
/// in `amb` too, as the context timing alone would refine.)
///
/// The check is a figure about the capture, not an edge of the trees, and on captures
/// where every call carries ids its tied calls (eight times the real inference's on the
/// realistic benchmark) made it the largest part of the chains stage. Whole stretches
/// of time, not scattered calls: a tied call's refinement weighs the children its
/// candidates already have, so a call refined among calls left as first chosen would be
/// checked in a context the full refinement never gives it (a scattered sample read 1.7
/// points low on the realistic benchmark).
fn sample_check(amb: &mut Vec<Ambiguous>, max: usize) -> Vec<u32> {
    let n = amb.len();
    if n <= max {
        return Vec::new();
    }
    // Stretch k holds `max * (k + 1) / S - max * k / S` calls (`max` in all), and the
    // calls left out are shared evenly around the stretches: half a share before the
    // first, a share between two, half after the last. So each stretch sits in the
    // middle of the k-th of S equal parts, and none overlaps the next.
    let s = CHECK_STRETCHES;
    let stretches: Vec<(usize, usize)> = (0..s)
        .map(|k| {
            let start = max * k / s + (n - max) * (2 * k + 1) / (2 * s);
            (start, start + max * (k + 1) / s - max * k / s)
        })
        .collect();
    let mut left_out = Vec::new();
    let mut i = 0;
    amb.retain(|a| {
        let keep = stretches.iter().any(|&(s, e)| (s..e).contains(&i));
        i += 1;
        if !keep {
            left_out.push(a.call);
        }
        keep
    });
    left_out.sort_unstable();
    left_out
}

/// How well a request's window fits a set of children: ms from its last request byte to
/// the first child's start plus ms from the last child's answer to its own answer; `None`
/// when a child falls outside the window or does not sort after the request (a window
/// can open before its request's first byte when the capture's clock steps back, and a
/// parent sorting after its child could close a loop).
fn fit(r: &Call, w: &Window, kids: &[u32], calls: &[Call]) -> Option<f64> {
    let mut first = i64::MAX;
    let mut last = i64::MIN;
    let parent_key = order_key(r, w.call);
    for &k in kids {
        let c = &calls[k as usize];
        let (s, e) = (c.start()?, c.end()?);
        if s < w.open || e > w.close || order_key(c, k) <= parent_key {
            return None;
        }
        first = first.min(s);
        last = last.max(e);
    }
    let (a, b) = (r.req_last?, r.resp_first?);
    let ms = |v: i64| v.max(0) as f64 / 1e6;
    Some(ms(first.saturating_sub(a)) + ms(b.saturating_sub(last)))
}

/// Two requests of the same route that overlap in time at the same address look alike to
/// the per-call rules, which may give each the other's children. Whole child sets are
/// swapped between such twins when the swap fits both windows better (a handler calls
/// soon after its request arrives and answers soon after its last call returns).
/// Timing edges only; returns the number of swaps.
fn swap_twins(calls: &[Call], windows: &[Window], edges: &mut [Option<Edge>]) -> u64 {
    let mut kids: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
    for (i, e) in edges.iter().enumerate() {
        if let Some(e) = e.filter(|e| e.source == EdgeSource::Timing && !e.late) {
            kids.entry(e.parent).or_default().push(i as u32);
        }
    }
    // Windows (already in start order) grouped by address and route.
    let mut groups: FxHashMap<(IpAddr, RouteKey), Vec<usize>> = FxHashMap::default();
    for (k, w) in windows.iter().enumerate() {
        if kids.contains_key(&w.call) {
            groups
                .entry((w.ip, route_key(&calls[w.call as usize])))
                .or_default()
                .push(k);
        }
    }
    let mut swaps = 0;
    let empty = Vec::new();
    for list in groups.values() {
        for pair in list.windows(2) {
            let (wa, wb) = (&windows[pair[0]], &windows[pair[1]]);
            if wb.open > wa.close {
                continue;
            }
            let (ra, rb) = (&calls[wa.call as usize], &calls[wb.call as usize]);
            let ka = kids.get(&wa.call).unwrap_or(&empty);
            let kb = kids.get(&wb.call).unwrap_or(&empty);
            let now = fit(ra, wa, ka, calls).zip(fit(rb, wb, kb, calls));
            let swapped = fit(ra, wa, kb, calls).zip(fit(rb, wb, ka, calls));
            if let (Some((a, b)), Some((c, d))) = (now, swapped) {
                if c + d + SWAP_MARGIN_MS < a + b {
                    let (ka, kb) = (ka.clone(), kb.clone());
                    for &k in &ka {
                        if let Some(e) = edges[k as usize].as_mut() {
                            e.parent = wb.call;
                        }
                    }
                    for &k in &kb {
                        if let Some(e) = edges[k as usize].as_mut() {
                            e.parent = wa.call;
                        }
                    }
                    kids.insert(wa.call, kb);
                    kids.insert(wb.call, ka);
                    swaps += 1;
                }
            }
        }
    }
    swaps
}

/// A swap must improve the fit by this much (ms).
const SWAP_MARGIN_MS: f64 = 0.5;

/// The serving window of a request; one never answered stays open `max_window_ns`.
fn serving_window(c: &Call, cfg: &ParentConfig) -> Option<(i64, i64)> {
    if let Some(w) = c.serving() {
        return Some(w);
    }
    match (c.kind, c.req_last, c.resp_first) {
        (super::calls::CallKind::Http, Some(a), None) => Some((
            a,
            // A last answer byte before the last request byte is a clock step, not an
            // answer: such a window stays open as if unanswered.
            c.resp_last
                .filter(|&b| b >= a)
                .unwrap_or(a.saturating_add(cfg.max_window_ns)),
        )),
        _ => None,
    }
}

/// Exact edges from span ids: the parent is the call whose span the child names.
/// A chain of such edges that loops back is cut (bad trace data).
fn span_edges(calls: &[Call], inf: &mut Inference) {
    let by_span: FxHashMap<u64, u32> = calls
        .iter()
        .enumerate()
        .filter_map(|(i, c)| Some((c.span_id?, i as u32)))
        .collect();
    if by_span.is_empty() {
        return;
    }
    for (i, c) in calls.iter().enumerate() {
        if c.span_id.is_none() {
            continue;
        }
        let Some(&p) = c.parent_span_id.and_then(|s| by_span.get(&s)) else {
            continue;
        };
        if p as usize == i {
            continue;
        }
        inf.edges[i] = Some(Edge {
            parent: p,
            source: EdgeSource::Span,
            confidence: 1.0,
            late: false,
        });
    }
    // Break parent loops in one pass (a chain of n spans costs n steps, not n^2): walk
    // up from each call not yet seen, marking the path; meeting the path again is a
    // loop, cut at the edge of its lowest-numbered call. Every call is walked once.
    const NEW: u8 = 0;
    const ON_PATH: u8 = 1;
    const DONE: u8 = 2;
    let mut state = vec![NEW; calls.len()];
    let mut path: Vec<u32> = Vec::new();
    for start in 0..calls.len() {
        if state[start] != NEW {
            continue;
        }
        path.clear();
        let mut cur = Some(start as u32);
        while let Some(c) = cur {
            match state[c as usize] {
                NEW => {
                    state[c as usize] = ON_PATH;
                    path.push(c);
                    cur = inf.edges[c as usize].map(|e| e.parent);
                }
                ON_PATH => {
                    let at = path.iter().position(|&p| p == c).unwrap_or(0);
                    if let Some(&cut) = path[at..].iter().min() {
                        inf.edges[cut as usize] = None;
                    }
                    break;
                }
                _ => break,
            }
        }
        for &c in &path {
            state[c as usize] = DONE;
        }
    }
    // Span edges never reach the assignment loop (it skips calls with an edge): count
    // them here.
    inf.stats.by_span = inf
        .edges
        .iter()
        .flatten()
        .filter(|e| e.source == EdgeSource::Span)
        .count() as u64;
}

/// Route pairs with a candidate edge, bounded: what the affinity is learned from.
const MAX_COLLECTED: usize = 8 << 20;
/// Marks a collected candidate whose window encloses the call.
const ENCLOSES: u32 = 1 << 31;
/// Rounds of expectation-maximisation.
const EM_ROUNDS: usize = 12;

/// Every call's candidates by route, for the affinity.
#[derive(Default)]
struct Collect {
    routes: FxHashMap<RouteKey, u32>,
    child: Vec<u32>,
    offsets: Vec<u32>,
    /// Candidate route (| `ENCLOSES`) and its window length in ms.
    arena: Vec<(u32, f32)>,
    /// Calls left out once the bound was reached.
    skipped: u64,
}

impl Collect {
    fn id(&mut self, k: RouteKey) -> u32 {
        let n = self.routes.len() as u32;
        *self.routes.entry(k).or_insert(n & !ENCLOSES)
    }

    fn push(&mut self, ctx: &Ctx<'_>, child: u32, cands: &[u32]) {
        if cands.is_empty() {
            return;
        }
        if self.arena.len() + cands.len() > MAX_COLLECTED {
            self.skipped += 1;
            return;
        }
        let c = &ctx.calls[child as usize];
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        let ck = self.id(route_key(c));
        self.child.push(ck);
        for &p in cands {
            let rk = self.id(route_key(&ctx.calls[p as usize]));
            let encloses = c.end().is_none_or(|e| e <= ctx.close(p));
            self.arena.push((
                rk | if encloses { ENCLOSES } else { 0 },
                ctx.span_ms(p) as f32,
            ));
        }
        self.offsets.push(self.arena.len() as u32);
    }

    /// Calls of each child route a request of each parent route makes, by
    /// expectation-maximisation: each request of route R makes calls of route C at the
    /// rate rate(R, C) / its window length; a call is explained by its candidates (the
    /// enclosing ones when there are any) in proportion to that rate, and rate(R, C) is the
    /// calls so explained per request of R. A call with one candidate counts whole.
    fn learn(&self, requests: &FxHashMap<RouteKey, u64>) -> Affinity {
        let mut per_route = vec![0.0f64; self.routes.len()];
        for (k, &id) in &self.routes {
            if let Some(slot) = per_route.get_mut(id as usize) {
                *slot = requests.get(k).copied().unwrap_or(0) as f64;
            }
        }
        let mut aff = Affinity {
            routes: self.routes.clone(),
            rates: FxHashMap::default(),
            uniform: true,
        };
        let mut ws: Vec<f64> = Vec::new();
        for _ in 0..EM_ROUNDS {
            let mut counts: FxHashMap<(u32, u32), f64> = FxHashMap::default();
            for (k, &c) in self.child.iter().enumerate() {
                let (a, b) = (self.offsets[k] as usize, self.offsets[k + 1] as usize);
                let Some(cands) = self.arena.get(a..b) else {
                    continue;
                };
                let any = cands.iter().any(|x| x.0 & ENCLOSES != 0);
                let chosen = cands.iter().filter(|x| !any || x.0 & ENCLOSES != 0);
                ws.clear();
                ws.extend(
                    chosen.clone().map(|x| {
                        aff.rate_ids(x.0 & !ENCLOSES, c) / (f64::from(x.1) + SPAN_FLOOR_MS)
                    }),
                );
                let sum: f64 = ws.iter().sum();
                if sum <= 0.0 {
                    continue;
                }
                for (x, w) in chosen.zip(ws.iter()) {
                    *counts.entry((x.0 & !ENCLOSES, c)).or_default() += w / sum;
                }
            }
            for ((p, _), n) in counts.iter_mut() {
                let requests = per_route.get(*p as usize).copied().unwrap_or(0.0);
                *n /= requests.max(1.0);
            }
            aff.rates = counts;
            aff.uniform = false;
        }
        aff
    }
}

/// Window lengths below this (ms) count as equal when weighing candidates.
const SPAN_FLOOR_MS: f64 = 0.1;

/// Route affinity: calls of a child route per request of a parent route.
struct Affinity {
    routes: FxHashMap<RouteKey, u32>,
    rates: FxHashMap<(u32, u32), f64>,
    /// Nothing learned yet: every pair weighs the same.
    uniform: bool,
}

impl Affinity {
    fn rate_ids(&self, parent: u32, child: u32) -> f64 {
        if self.uniform {
            return 1.0;
        }
        // A small floor keeps a pair never seen possible when nothing else is.
        self.rates
            .get(&(parent, child))
            .copied()
            .unwrap_or(0.0)
            .max(RATE_FLOOR)
    }

    fn weight(&self, parent: RouteKey, child: RouteKey) -> f64 {
        match (self.routes.get(&parent), self.routes.get(&child)) {
            (Some(&p), Some(&c)) => self.rate_ids(p, c),
            _ => RATE_FLOOR,
        }
    }
}

/// Rate given to a route pair never seen.
const RATE_FLOOR: f64 = 1e-3;

/// A candidate whose route affinity is below this share of the best candidate's is
/// not weighed against it.
const PLAUSIBLE: f64 = 0.2;

/// Gaps below this (0.1 ms) count as equal when weighing candidates.
const GAP_FLOOR_NS: f64 = 100_000.0;

/// Children recorded per parent for the gap (the latest ends are kept).
const PROGRESS_ENDS: usize = 32;

/// A parent's children so far: when the last one started and when they were answered.
#[derive(Default)]
struct Progress {
    last_start: i64,
    /// (start, end) of the latest children.
    ends: Vec<(i64, i64)>,
    /// Calls made per child route (the first few routes).
    made: Vec<(RouteKey, u32)>,
}

/// Child routes counted per parent.
const PROGRESS_ROUTES: usize = 16;

/// Weight left to a request that already made its route's usual number of such calls.
const OVER_QUOTA: f64 = 0.05;

/// A call on a connection whose previous call was answered at most this long before
/// counts as the same handler's next call (the pool rule).
const POOL_REUSE_NS: i64 = 1_500_000;

/// Siblings started within this of each other count as parallel (see `Progress::busy`).
const BUSY_AFTER_NS: i64 = 300_000;

/// Weight left to a request waiting on an earlier call.
const BUSY: f64 = 0.05;

impl Progress {
    fn made(&self, route: RouteKey) -> u32 {
        self.made
            .iter()
            .find(|(r, _)| *r == route)
            .map_or(0, |(_, n)| *n)
    }

    fn record(&mut self, child: &Call) {
        let route = route_key(child);
        if let Some((_, n)) = self.made.iter_mut().find(|(r, _)| *r == route) {
            *n += 1;
        } else if self.made.len() < PROGRESS_ROUTES {
            self.made.push((route, 1));
        }
        if let Some(s) = child.start() {
            self.last_start = self.last_start.max(s);
        }
        if let (Some(s), Some(e)) = (child.start(), child.end()) {
            if self.ends.len() >= PROGRESS_ENDS {
                if let Some((k, _)) = self.ends.iter().enumerate().min_by_key(|(_, v)| v.1) {
                    self.ends.swap_remove(k);
                }
            }
            self.ends.push((s, e));
        }
    }

    /// Waiting at `t` on a child it started more than `BUSY_AFTER_NS` before: a handler
    /// that calls one thing at a time cannot be making another call (parallel siblings
    /// start together, within that time).
    fn busy(&self, t: i64) -> bool {
        self.ends
            .iter()
            .any(|&(s, e)| s < t.saturating_sub(BUSY_AFTER_NS) && e > t)
    }

    /// The parent's latest event at or before `t`: a child started or answered.
    fn last_event(&self, t: i64) -> i64 {
        let end = self.ends.iter().map(|v| v.1).filter(|e| *e <= t).max();
        let start = if self.last_start <= t {
            self.last_start
        } else {
            i64::MIN
        };
        end.unwrap_or(i64::MIN).max(start)
    }
}

/// A chosen parent.
struct Choice {
    parent: u32,
    confidence: f64,
    late: bool,
    /// The candidates of the parent's class when that class is enclosing and plausible:
    /// what only the timing fit told apart (the joint refinement re-weighs them).
    tied: Vec<u32>,
}

struct Ctx<'a> {
    calls: &'a [Call],
    windows: &'a [Window],
    window_of: &'a FxHashMap<u32, u32>,
    cfg: &'a ParentConfig,
}

impl Ctx<'_> {
    fn window(&self, call: u32) -> Option<&Window> {
        self.window_of
            .get(&call)
            .and_then(|&k| self.windows.get(k as usize))
    }

    fn close(&self, call: u32) -> i64 {
        self.window(call).map_or(i64::MIN, |w| w.close)
    }

    /// Length of a candidate's window in ms.
    fn span_ms(&self, call: u32) -> f64 {
        self.window(call)
            .map_or(0.0, |w| w.close.saturating_sub(w.open) as f64 / 1e6)
    }

    fn in_window(&self, call: u32, t: i64) -> bool {
        self.window(call)
            .is_some_and(|w| w.open <= t && t <= w.close)
    }

    /// Drops candidates that cannot be the parent (itself, later in order, another trace)
    /// and those over the per-call bound.
    fn filter(&self, child: u32, cands: &mut Vec<u32>, stats: &mut InferenceStats, ids: bool) {
        let c = &self.calls[child as usize];
        let key = order_key(c, child);
        cands.retain(|&p| {
            let r = &self.calls[p as usize];
            let other_trace =
                ids && matches!((r.trace_id, c.trace_id), (Some(a), Some(b)) if a != b);
            p != child && order_key(r, p) < key && !other_trace && !same_listener(r, c)
        });
        if cands.len() > self.cfg.max_candidates {
            // Keep the most recently opened: the oldest windows are the least likely. A
            // selection, then a sort of the kept few: thousands of open windows cost a
            // linear pass per call, not a sort.
            let key = |&p: &u32| (Reverse(self.window(p).map_or(i64::MIN, |w| w.open)), p);
            let keep = self.cfg.max_candidates;
            cands.select_nth_unstable_by_key(keep, key);
            stats.candidates_dropped += (cands.len() - keep) as u64;
            cands.truncate(keep);
            cands.sort_unstable_by_key(key);
        }
    }

    /// Requests served from the child's address carrying the child's trace id.
    fn id_candidates(
        &self,
        child: u32,
        same_trace: &FxHashMap<(IpAddr, u128), Vec<u32>>,
    ) -> Vec<u32> {
        let c = &self.calls[child as usize];
        let Some(t) = c.trace_id else {
            return Vec::new();
        };
        let key = order_key(c, child);
        same_trace
            .get(&(c.client.ip(), t))
            .map(|v| {
                v.iter()
                    .copied()
                    .filter(|&p| {
                        let r = &self.calls[p as usize];
                        p != child && order_key(r, p) < key && !same_listener(r, c)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The best candidate by the rules (module doc), with its confidence: its share of
    /// the likelihood (affinity / gap) among the candidates of its class.
    fn choose(
        &self,
        child: u32,
        cands: &[u32],
        rules: &Affinity,
        pool: Option<u32>,
        progress: &FxHashMap<u32, Progress>,
    ) -> Option<Choice> {
        let c = &self.calls[child as usize];
        let ck = route_key(c);
        let t = c.start().unwrap_or(0);
        let facts = |p: u32| {
            let r = &self.calls[p as usize];
            let close = self.close(p);
            let late = close < t;
            let encloses = c.end().is_none_or(|e| e <= close);
            let last = if late {
                r.resp_first.unwrap_or(close)
            } else {
                r.req_last.unwrap_or(i64::MIN)
            };
            let last = progress.get(&p).map_or(last, |g| g.last_event(t).max(last));
            let gap = t.saturating_sub(last).max(0);
            let rate = rules.weight(route_key(r), ck);
            // A request that already made as many calls of this route as its route
            // makes on average is an unlikely caller of one more.
            let made = progress.get(&p).map_or(0, |g| g.made(ck));
            let quota = if f64::from(made) >= rate.round().max(1.0) {
                OVER_QUOTA
            } else {
                1.0
            };
            let busy = if progress.get(&p).is_some_and(|g| g.busy(t)) {
                BUSY
            } else {
                1.0
            };
            let affinity = rate * quota * busy / (self.span_ms(p) + SPAN_FLOOR_MS);
            (encloses, !encloses && late, affinity, gap)
        };
        // Affinity first: candidates far less likely by route than the best one drop out.
        let top = cands.iter().map(|&p| facts(p).2).fold(0.0f64, f64::max);
        let facts = |p: u32| {
            let (encloses, late, affinity, gap) = facts(p);
            let plausible = affinity >= top * PLAUSIBLE;
            let likelihood = affinity / (gap as f64 + GAP_FLOOR_NS);
            ((encloses, late, plausible), likelihood)
        };
        let span = |p: u32| {
            self.window(p)
                .map_or(i64::MAX, |w| w.close.saturating_sub(w.open))
        };
        let best = cands.iter().copied().max_by(|&a, &b| {
            let (fa, fb) = (facts(a), facts(b));
            fa.0.cmp(&fb.0)
                .then((pool == Some(a)).cmp(&(pool == Some(b))))
                .then(fa.1.total_cmp(&fb.1))
                .then(span(b).cmp(&span(a)))
                .then(b.cmp(&a))
        })?;
        let (class, lb) = facts(best);
        let total: f64 = cands
            .iter()
            .map(|&p| facts(p))
            .filter(|f| f.0 == class)
            .map(|f| f.1)
            .sum();
        // For the joint refinement: the enclosing candidates whose route plausibly makes
        // such calls (by rate alone: the quota and busy cuts lean on earlier choices,
        // which the refinement re-weighs).
        let tied = if class.0 && !class.1 {
            let rate = |p: u32| rules.weight(route_key(&self.calls[p as usize]), ck);
            let enclosing =
                |p: &u32| c.end().is_none_or(|e| e <= self.close(*p)) && self.close(*p) >= t;
            let top = cands
                .iter()
                .filter(|p| enclosing(p))
                .map(|&p| rate(p))
                .fold(0.0f64, f64::max);
            let tied: Vec<u32> = cands
                .iter()
                .copied()
                .filter(|p| enclosing(p) && rate(*p) >= top * PLAUSIBLE)
                .collect();
            // A best that is not among them won on facts other than the rate (the
            // pool rule: an /orders loop's connection reused for a /fan-b call): the
            // refinement weighs it against them.
            let mut tied = tied;
            if !tied.is_empty() && !tied.contains(&best) && enclosing(&best) {
                tied.push(best);
            }
            if tied.contains(&best) {
                tied
            } else {
                Vec::new()
            }
        } else {
            Vec::new()
        };
        Some(Choice {
            parent: best,
            confidence: if total > 0.0 { lb / total } else { 1.0 },
            late: self.close(best) < t,
            tied,
        })
    }
}

#[cfg(test)]
mod check_sample_tests {
    use super::*;

    fn tied(n: usize) -> Vec<Ambiguous> {
        (0..n as u32)
            .map(|call| Ambiguous {
                call,
                cands: vec![],
            })
            .collect()
    }

    #[test]
    fn under_the_bound_every_tied_call_is_checked() {
        let max = ParentConfig::default().check_refine_max;
        let mut amb = tied(max);
        assert!(sample_check(&mut amb, max).is_empty());
        assert_eq!(amb.len(), max);
    }

    #[test]
    fn past_the_bound_stretches_spread_over_the_capture_are_kept() {
        let max = ParentConfig::default().check_refine_max;
        let n = 10 * max + 7;
        let mut amb = tied(n);
        let left_out = sample_check(&mut amb, max);
        assert_eq!(amb.len(), max);
        assert_eq!(amb.len() + left_out.len(), n);
        assert!(left_out.windows(2).all(|w| w[0] < w[1]));
        // Consecutive calls, in CHECK_STRETCHES runs, one in each equal part of the capture.
        let kept: Vec<u32> = amb.iter().map(|a| a.call).collect();
        let runs = 1 + kept.windows(2).filter(|w| w[1] != w[0] + 1).count();
        assert_eq!(runs, CHECK_STRETCHES);
        let part = n / CHECK_STRETCHES;
        for k in 0..CHECK_STRETCHES {
            let inside = kept
                .iter()
                .filter(|&&c| (k * part..(k + 1) * part).contains(&(c as usize)))
                .count();
            assert_eq!(inside, max / CHECK_STRETCHES, "part {k}");
        }
    }

    #[test]
    fn a_bound_that_does_not_divide_evenly_still_keeps_exactly_that_many() {
        for (n, max) in [(100, 37), (1000, 5), (50, 49), (17, 16)] {
            let mut amb = tied(n);
            let left_out = sample_check(&mut amb, max);
            assert_eq!(amb.len(), max, "{n} {max}");
            assert_eq!(left_out.len(), n - max, "{n} {max}");
        }
    }
}
