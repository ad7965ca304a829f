//! Joint refinement of the timing edges. The per-call rules choose one call at a time,
//! in time order, and cannot take back a choice that a later call shows to be wrong.
//! This pass re-assigns the calls the rules could only tell apart by timing fit (several
//! enclosing candidates whose route plausibly makes such calls) so that every parent's
//! whole child set fits the rhythm its handler shows elsewhere. The rhythm is learned per
//! (parent route, child route) from the assignment itself; per such pair a parent's calls
//! form a sequence:
//!
//! - `first`: from the parent's last request byte, or the latest answer of a call of
//!   another route before it (the handler's previous step), to the first call;
//! - `between`: one call's answer to the next call (sequential pairs), or `spread`: first
//!   to last start (pairs whose calls overlap: an executor or threads);
//! - `end`: the last answer to the parent's answer, or to the next call of another route;
//! - the number of calls (histogram, `COUNT_WEIGHT` x -ln of its share).
//!
//! A gap costs its squared z-score against the pair's median and MAD scale, linear beyond
//! `HUBER`, at most `OUTLIER` (a stalled thread). A sequential pair's call that starts
//! while its previous one is still waiting costs `BUSY`; consecutive calls on one
//! keep-alive connection earn `POOL`. The squared cost is convex, so of two look-alike
//! requests the one that arrived first takes the call that started first (handlers
//! progress in order under contention), where the greedy gap favours the latest arrival.
//!
//! A child of a route the parent's route never calls costs as much as a count never seen
//! plus an outlier gap.
//!
//! The search is a bounded descent: move one call, swap two calls of one route, swap the
//! tails (every call from a given start on) of two parents, or re-partition two parents'
//! calls of a sequential route (`splits`), keeping the best improving move per call; the
//! models are re-learned between rounds (`MODELS`). A call is only re-weighed when every
//! candidate's route has `MIN_SAMPLE` requests (whether or not they make such calls: a
//! well-known route that rarely makes them speaks against one more); parents with more than
//! `MAX_KIDS` children are left alone and their calls count in `skipped`, as do the calls
//! not visited once the budget of cost evaluations is spent. The descent runs per
//! component of calls that share candidates (`components`), on several threads.

use rustc_hash::FxHashMap;

use super::{route_key, Edge, RouteKey};
use crate::analysis::chains::calls::Call;

/// A call the per-call rules could not tell apart from other candidates, and those
/// candidates (its current parent among them).
pub(super) struct Ambiguous {
    pub call: u32,
    pub cands: Vec<u32>,
}

/// What the refinement did.
#[derive(Default)]
pub(super) struct Refined {
    /// Calls whose parent changed.
    pub moved: u64,
    /// Ambiguous calls left as the rules chose (parent over `MAX_KIDS`, budget spent).
    pub skipped: u64,
}

/// A gap this many scale units off the median costs linearly beyond (Huber).
const HUBER: f64 = 3.0;
/// Most a gap can cost: one further off than ~3.5 scale units is an outlier (a stalled
/// thread, a handler waiting on another route's calls) whatever its size.
const OUTLIER: f64 = 12.0;
/// Smallest gap scale (ms): capture timestamps are µs-exact, handlers are not.
const SCALE_FLOOR_MS: f64 = 0.05;
/// Cost of a sequential route's call that starts while its previous one is waiting.
const BUSY: f64 = 20.0;
/// Bonus for consecutive calls of a sequential parent on one keep-alive connection.
const POOL: f64 = 2.0;
/// A route fans out when at least this share of its parents with children have two or
/// more, and at least half of those overlap.
const FAN_SHARE: f64 = 0.25;
/// Weight of the call count against the gaps: a count off the route's usual is worth as
/// much as a few outlier gaps (one /charges request making three fraud checks).
const COUNT_WEIGHT: f64 = 3.0;
/// Children counts above this share one histogram bucket.
const COUNT_BUCKETS: usize = 12;
/// Parents with more children than this are not re-assigned (cost grows with k^2).
const MAX_KIDS: usize = 64;
/// A call is re-weighed only when every candidate's route has this many requests: a
/// thinner model fits its own few samples and would overrule the rules.
const MIN_SAMPLE: u32 = 8;
/// Descent rounds per model, and model re-learnings.
const ROUNDS: usize = 30;
const MODELS: usize = 3;
/// Child-steps of cost evaluation allowed in one refinement: a base plus a share per tied
/// call (the fixtures and the demo use about 500 per call; a pathological call can use
/// 64 candidates x 129 moves x 65 steps).
const BUDGET_BASE: u64 = 10_000_000;
const BUDGET_PER_CALL: u64 = 2_000;

/// (median, scale) of a gap in ms; `None` when never seen.
type Fit = Option<(f64, f64)>;

fn gap_cost(fit: Fit, ms: f64) -> f64 {
    let Some((m, s)) = fit else {
        return 0.0;
    };
    let z = (ms - m).abs() / s;
    let v = if z < HUBER {
        z * z
    } else {
        2.0 * HUBER * z - HUBER * HUBER
    };
    v.min(OUTLIER)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Gap {
    First = 0,
    Between = 1,
    End = 2,
    Spread = 3,
}

/// How a parent route calls one child route.
#[derive(Default)]
struct PairModel {
    /// Its calls overlap one another (an executor, threads): read as one group (first
    /// start, spread of the starts, last answer), no busy cost, no pool bonus.
    fans_out: bool,
    gaps: [Fit; 4],
    counts: [u32; COUNT_BUCKETS],
    parents: u32,
    /// Parents with at least one such call: the model's sample.
    with_kids: u32,
    /// `count_cost` per bucket, computed once the counts are final.
    count_costs: [f64; COUNT_BUCKETS],
}

impl PairModel {
    /// -ln of the share of parents with `k` such calls (smoothed).
    fn count_cost(&self, k: usize) -> f64 {
        self.count_costs[k.min(COUNT_BUCKETS - 1)]
    }

    fn set_count_costs(&mut self) {
        for (cost, &n) in self.count_costs.iter_mut().zip(&self.counts) {
            let p = (f64::from(n) + 0.5) / (f64::from(self.parents) + 0.5 * COUNT_BUCKETS as f64);
            *cost = -p.ln();
        }
    }
}

/// A parent route's child routes.
#[derive(Default)]
struct RouteModel {
    children: Vec<(RouteKey, PairModel)>,
    /// Requests of the route (candidates included): a route seen this often and rarely
    /// making some call is itself evidence against giving it one.
    parents: u32,
}

/// One child as the cost sees it.
#[derive(Clone, Copy)]
struct ChildCall {
    route: RouteKey,
    start: i64,
    end: i64,
    conn: u64,
}

/// The calls of one child route under one parent, read against the parent's timeline.
#[derive(Default)]
struct Sequence {
    gaps: Vec<(Gap, f64)>,
    /// Calls that started while the previous one was waiting (sequential reading), and
    /// consecutive calls on one keep-alive connection.
    overlaps: u32,
    same_conn: u32,
    calls: usize,
}

/// Each parent's weighed children.
type Kids = FxHashMap<u32, Vec<u32>>;

/// The ambiguous calls' positions in the list, by call index (`NOT_MOVABLE` for the
/// others): a dense table, as it is read for every call of every move weighed.
struct Movable(Vec<u32>);

const NOT_MOVABLE: u32 = u32::MAX;

impl Movable {
    fn new(calls: usize, amb: &[Ambiguous]) -> Self {
        let mut v = vec![NOT_MOVABLE; calls];
        for (i, a) in amb.iter().enumerate() {
            if let Some(slot) = v.get_mut(a.call as usize) {
                *slot = i as u32;
            }
        }
        Movable(v)
    }

    /// The call's position among the ambiguous calls, if it is one.
    fn get(&self, call: u32) -> Option<usize> {
        match self.0.get(call as usize) {
            Some(&j) if j != NOT_MOVABLE => Some(j as usize),
            _ => None,
        }
    }
}

type Models = FxHashMap<RouteKey, RouteModel>;

/// What one worker weighs with: the run's calls, models and tables (shared, read-only)
/// and its own scratch and count of work.
struct State<'a> {
    calls: &'a [Call],
    /// The ambiguous calls by call index: their candidates.
    movable: &'a Movable,
    models: &'a Models,
    /// Every call as a child, read once (`None` without both ends).
    as_child: &'a [Option<ChildCall>],
    scratch: Vec<ChildCall>,
    /// Scratch for [`State::cost`].
    seq: Sequence,
    spent: u64,
}

fn ms(ns: i64) -> f64 {
    ns as f64 / 1e6
}

/// Median and MAD-based scale (ms) of `v` (sorted in place).
fn robust(v: &mut [f64]) -> Fit {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable_by(f64::total_cmp);
    let m = v[v.len() / 2];
    let mut d: Vec<f64> = v.iter().map(|x| (x - m).abs()).collect();
    d.sort_unstable_by(f64::total_cmp);
    Some((m, (d[d.len() / 2] * 1.4826).max(SCALE_FLOOR_MS)))
}

/// [`State::sequence`] over `kids` (time-ordered) of the parent call `r`: one pass over
/// the route's calls, one over the others'.
fn sequence(r: &Call, kids: &[ChildCall], route: RouteKey, fans_out: bool, out: &mut Sequence) {
    out.gaps.clear();
    out.overlaps = 0;
    out.same_conn = 0;
    out.calls = 0;
    let (Some(a), Some(b)) = (r.req_last, r.resp_first) else {
        return;
    };
    let mut first: Option<&ChildCall> = None;
    let mut last_end = i64::MIN;
    let mut last_start = i64::MIN;
    let mut busy_until = 0;
    let mut prev_conn = 0;
    // Between-gaps and overlaps need the sequence's first call only; the first gap
    // (which needs `open`) is put in front once the others' pass is done.
    for k in kids.iter().filter(|k| k.route == route) {
        out.calls += 1;
        last_end = last_end.max(k.end);
        last_start = last_start.max(k.start);
        let Some(_) = first else {
            first = Some(k);
            busy_until = k.end;
            prev_conn = k.conn;
            continue;
        };
        if fans_out {
            continue;
        }
        if k.start < busy_until {
            out.overlaps += 1;
            busy_until = busy_until.max(k.end);
            continue;
        }
        out.gaps
            .push((Gap::Between, ms(k.start.saturating_sub(busy_until))));
        out.same_conn += u32::from(k.conn == prev_conn);
        busy_until = k.end;
        prev_conn = k.conn;
    }
    let Some(first) = first else {
        return;
    };
    let (mut open, mut close) = (a, b);
    for k in kids.iter().filter(|k| k.route != route) {
        if k.end <= first.start {
            open = open.max(k.end);
        }
        if k.start >= last_end {
            close = close.min(k.start);
        }
    }
    out.gaps
        .insert(0, (Gap::First, ms(first.start.saturating_sub(open))));
    if fans_out {
        out.gaps
            .push((Gap::Spread, ms(last_start.saturating_sub(first.start))));
    }
    out.gaps
        .push((Gap::End, ms(close.saturating_sub(last_end))));
}

/// A call as the cost reads it as a child; `None` without both ends.
fn as_child(c: &Call) -> Option<ChildCall> {
    Some(ChildCall {
        route: route_key(c),
        start: c.start()?,
        end: c.end()?,
        conn: c.conn_id,
    })
}

/// The children `kids` as the cost reads them, time-ordered, into `out`.
fn load_into(as_child: &[Option<ChildCall>], kids: &[u32], out: &mut Vec<ChildCall>) {
    out.clear();
    out.extend(kids.iter().filter_map(|&k| as_child[k as usize]));
    out.sort_unstable_by_key(|k| (k.start, k.end));
}

impl State<'_> {
    /// Loads `kids` of `p` into `scratch`, time-ordered.
    fn load(&mut self, kids: &[u32]) {
        load_into(self.as_child, kids, &mut self.scratch);
        self.spent += self.scratch.len() as u64 + 1;
    }

    /// `p`'s route calls `child` one call after the other (its pair model does not fan
    /// out).
    fn sequential(&self, p: u32, child: RouteKey) -> bool {
        self.models
            .get(&route_key(&self.calls[p as usize]))
            .and_then(|m| m.children.iter().find(|(k, _)| *k == child))
            .is_some_and(|(_, m)| !m.fans_out)
    }

    /// Every candidate's route is known well enough to weigh the call: it has
    /// `MIN_SAMPLE` requests. Those that make such calls teach the pair's rhythm; if few
    /// do, the count model speaks against one more (a /fan-b call given to an /orders
    /// request next to the /fan request that lacks it). A route's requests with such
    /// calls are among its requests, so this also covers "`MIN_SAMPLE` with calls".
    fn learned(&self, a: &Ambiguous) -> bool {
        a.cands.iter().all(|&p| {
            self.models
                .get(&route_key(&self.calls[p as usize]))
                .is_some_and(|m| m.parents >= MIN_SAMPLE)
        })
    }

    /// The cost of `p` with children `kids` (module doc).
    fn cost(&mut self, p: u32, kids: &[u32]) -> f64 {
        let key = route_key(&self.calls[p as usize]);
        if !self.models.contains_key(&key) {
            return 0.0;
        }
        self.load(kids);
        let State {
            calls,
            models,
            scratch,
            seq,
            ..
        } = self;
        let Some(model) = models.get(&key) else {
            return 0.0;
        };
        let parent = &calls[p as usize];
        let mut c = 0.0;
        // A child of a route this parent's route never calls (in the current
        // assignment): as unlikely as a count never seen, and its gaps unknown.
        let unseen = scratch
            .iter()
            .filter(|k| !model.children.iter().any(|(r, _)| *r == k.route))
            .count();
        if unseen > 0 {
            let p = 0.5 / (f64::from(model.parents) + 0.5 * COUNT_BUCKETS as f64);
            c += unseen as f64 * (COUNT_WEIGHT * -p.ln() + OUTLIER);
        }
        for (route, m) in &model.children {
            sequence(parent, scratch, *route, m.fans_out, seq);
            c += COUNT_WEIGHT * m.count_cost(seq.calls);
            c += BUSY * f64::from(seq.overlaps) - POOL * f64::from(seq.same_conn);
            c += seq
                .gaps
                .iter()
                .map(|&(g, v)| gap_cost(m.gaps[g as usize], v))
                .sum::<f64>();
        }
        c
    }

    /// The models from the current assignment: every parent that has children or is a
    /// candidate of an ambiguous call, by route; per route the child routes it calls.
    fn learn(&mut self, kids: &Kids, amb: &[Ambiguous]) -> Models {
        let mut models = Models::default();
        let mut parents: Vec<u32> = kids.keys().copied().collect();
        parents.extend(amb.iter().flat_map(|a| a.cands.iter().copied()));
        parents.sort_unstable();
        parents.dedup();
        let mut by_route: FxHashMap<RouteKey, Vec<u32>> = FxHashMap::default();
        for &p in &parents {
            by_route
                .entry(route_key(&self.calls[p as usize]))
                .or_default()
                .push(p);
        }
        let mut routes: Vec<(RouteKey, Vec<u32>)> = by_route.into_iter().collect();
        routes.sort_unstable_by_key(|(k, _)| *k);
        let mut seq = Sequence::default();
        let none: Vec<u32> = Vec::new();
        // Every parent's children of the route, loaded once: (parent, range in `loaded`).
        let mut loaded: Vec<ChildCall> = Vec::new();
        let mut ranges: Vec<(u32, std::ops::Range<usize>)> = Vec::new();
        for (key, ps) in routes {
            let mut children: Vec<RouteKey> = ps
                .iter()
                .flat_map(|p| kids.get(p).map_or(&[][..], |v| &v[..]))
                .map(|&k| route_key(&self.calls[k as usize]))
                .collect();
            children.sort_unstable();
            children.dedup();
            let mut m = RouteModel {
                parents: ps.len() as u32,
                ..RouteModel::default()
            };
            loaded.clear();
            ranges.clear();
            for &p in &ps {
                load_into(
                    self.as_child,
                    kids.get(&p).unwrap_or(&none),
                    &mut self.scratch,
                );
                let from = loaded.len();
                loaded.extend_from_slice(&self.scratch);
                ranges.push((p, from..loaded.len()));
                // The work is charged as if each child route's two passes loaded the
                // parent's children anew (the budget's unit).
                self.spent += 2 * children.len() as u64 * (self.scratch.len() as u64 + 1);
            }
            for child in children {
                let mut pm = PairModel::default();
                // [all parents, parents whose calls of the route the rules fixed alone]:
                // with calls, with several, with overlapping ones.
                let mut tally = [[0u32; 3]; 2];
                for (p, range) in &ranges {
                    let r = &self.calls[*p as usize];
                    sequence(r, &loaded[range.clone()], child, false, &mut seq);
                    pm.counts[seq.calls.min(COUNT_BUCKETS - 1)] += 1;
                    pm.parents += 1;
                    pm.with_kids += u32::from(seq.calls > 0);
                    let fixed = kids.get(p).unwrap_or(&none).iter().all(|k| {
                        self.movable.get(*k).is_none()
                            || route_key(&self.calls[*k as usize]) != child
                    });
                    for (i, t) in tally.iter_mut().enumerate() {
                        if i == 1 && !fixed {
                            continue;
                        }
                        t[0] += u32::from(seq.calls > 0);
                        t[1] += u32::from(seq.calls >= 2);
                        t[2] += u32::from(seq.calls >= 2 && seq.overlaps > 0);
                    }
                }
                // Whether a route fans out is read from the parents the rules fixed
                // alone when there are enough (an assignment's errors overlap too).
                let [with, several, overlapping] = if tally[1][1] >= MIN_SAMPLE {
                    tally[1]
                } else {
                    tally[0]
                };
                pm.fans_out = several > 0
                    && f64::from(several) >= FAN_SHARE * f64::from(with.max(1))
                    && 2 * overlapping >= several;
                let mut samples: [Vec<f64>; 4] = Default::default();
                for (p, range) in &ranges {
                    let r = &self.calls[*p as usize];
                    sequence(r, &loaded[range.clone()], child, pm.fans_out, &mut seq);
                    for &(g, v) in &seq.gaps {
                        samples[g as usize].push(v);
                    }
                }
                for (slot, v) in pm.gaps.iter_mut().zip(samples.iter_mut()) {
                    *slot = robust(v);
                }
                pm.set_count_costs();
                m.children.push((child, pm));
            }
            models.insert(key, m);
        }
        models
    }
}

/// The moves that give `c` (a child of `p0`) or its calls to `q`, as (calls `p0`
/// gives, calls `q` gives): `c` alone; `c` for a call of its route; `p0`'s tail from
/// `c` on for a tail of `q`; every sequential re-split of the two (`splits`). Only calls
/// whose candidates include the receiving parent move.
fn moves(
    st: &State<'_>,
    amb: &[Ambiguous],
    c: u32,
    (p0, k0): (u32, &[u32]),
    (q, kq): (u32, &[u32]),
) -> Vec<(Vec<u32>, Vec<u32>)> {
    let calls = st.calls;
    let can_go = |k: u32, to: u32| {
        st.movable
            .get(k)
            .is_some_and(|j| amb[j].cands.contains(&to))
    };
    let start_of = |k: u32| calls[k as usize].start().unwrap_or(i64::MIN);
    let ck = route_key(&calls[c as usize]);
    let start = start_of(c);
    let mut out = vec![(vec![c], Vec::new())];
    let tail0: Vec<u32> = k0
        .iter()
        .copied()
        .filter(|&k| start_of(k) >= start)
        .collect();
    let tail0_ok = tail0.iter().all(|&k| can_go(k, q));
    for &c2 in kq {
        if !can_go(c2, p0) {
            continue;
        }
        if route_key(&calls[c2 as usize]) == ck {
            out.push((vec![c], vec![c2]));
        }
        if !tail0_ok {
            continue;
        }
        let s2 = start_of(c2);
        let tail_q: Vec<u32> = kq.iter().copied().filter(|&k| start_of(k) >= s2).collect();
        if tail_q.iter().all(|&k| can_go(k, p0)) {
            out.push((tail0.clone(), tail_q));
        }
    }
    if st.sequential(p0, ck) && st.sequential(q, ck) {
        out.extend(splits(calls, ck, (p0, k0), (q, kq), &can_go));
    }
    out
}

/// Calls of one route two parents can share at most this many for `splits`.
const SPLIT_MAX_CALLS: usize = 24;
/// Partitions `splits` proposes per parent pair at most.
const SPLIT_MAX_LEAVES: usize = 256;

/// Every way to share two parents' calls of `route` between them so that neither makes
/// a call before its previous one was answered (the route is sequential under both):
/// as (calls `a` gives, calls `b` gives), the current split left out. The moves of one
/// or two calls and the tail swaps cannot take two loops apart whose calls were traded
/// over a whole stretch (three parents tangled, each step alone worse); this proposes
/// the whole re-partition of the pair at once. A depth-first walk in time order, cut at
/// `SPLIT_MAX_LEAVES`.
fn splits(
    calls: &[Call],
    route: RouteKey,
    (a, ka): (u32, &[u32]),
    (b, kb): (u32, &[u32]),
    movable: &dyn Fn(u32, u32) -> bool,
) -> Vec<(Vec<u32>, Vec<u32>)> {
    // (start, end, call, may go to a, may go to b, now with a)
    let mut items: Vec<(i64, i64, u32, bool, bool, bool)> = Vec::new();
    for (&k, with_a) in ka
        .iter()
        .map(|k| (k, true))
        .chain(kb.iter().map(|k| (k, false)))
    {
        let c = &calls[k as usize];
        if route_key(c) != route {
            continue;
        }
        let (Some(s), Some(e)) = (c.start(), c.end()) else {
            return Vec::new();
        };
        let to_a = with_a || movable(k, a);
        let to_b = !with_a || movable(k, b);
        items.push((s, e, k, to_a, to_b, with_a));
    }
    if items.len() > SPLIT_MAX_CALLS || !items.iter().any(|it| it.3 && it.4) {
        return Vec::new();
    }
    items.sort_unstable_by_key(|it| (it.0, it.1, it.2));
    let mut out = Vec::new();
    // (index, a busy until, b busy until)
    let mut side = vec![false; items.len()];
    let mut stack = vec![(0usize, i64::MIN, i64::MIN, false, false)];
    while let Some((i, busy_a, busy_b, chosen, to_a)) = stack.pop() {
        let (i, busy_a, busy_b) = if chosen {
            side[i] = to_a;
            let e = items[i].1;
            if to_a {
                (i + 1, e, busy_b)
            } else {
                (i + 1, busy_a, e)
            }
        } else {
            (i, busy_a, busy_b)
        };
        if i == items.len() {
            let give: Vec<u32> = items
                .iter()
                .zip(&side)
                .filter(|(it, &to_a)| it.5 && !to_a)
                .map(|(it, _)| it.2)
                .collect();
            let take: Vec<u32> = items
                .iter()
                .zip(&side)
                .filter(|(it, &to_a)| !it.5 && to_a)
                .map(|(it, _)| it.2)
                .collect();
            if !give.is_empty() || !take.is_empty() {
                out.push((give, take));
                if out.len() >= SPLIT_MAX_LEAVES {
                    break;
                }
            }
            continue;
        }
        let (s, _, _, to_a, to_b, _) = items[i];
        if to_b && s >= busy_b {
            stack.push((i, busy_a, busy_b, true, false));
        }
        if to_a && s >= busy_a {
            stack.push((i, busy_a, busy_b, true, true));
        }
    }
    out
}

/// `v` without the calls in `gives`, then the calls in `takes`, into `out`.
fn trade(v: &[u32], gives: &[u32], takes: &[u32], out: &mut Vec<u32>) {
    out.clear();
    out.extend(v.iter().copied().filter(|k| !gives.contains(k)));
    out.extend_from_slice(takes);
}

/// Ambiguous calls that share no candidate cannot affect each other's moves (a move
/// only trades children between two candidates of one call), so the descent runs per
/// such component; the models, learned from every parent, are what joins them.
struct Component {
    /// Positions in the ambiguous list, in its order.
    calls: Vec<usize>,
    /// Every candidate of those calls.
    parents: Vec<u32>,
    /// When each parent's child set last changed (this component's move count).
    changed: FxHashMap<u32, u64>,
    stamp: u64,
    /// Cost evaluations spent, and allowed: the run's budget shared by calls.
    spent: u64,
    budget: u64,
    /// Out of budget: left as it stands for the later models.
    done: bool,
}

/// The components of the ambiguous calls (union-find over their candidates), largest
/// first.
fn components(amb: &[Ambiguous], budget_total: u64) -> Vec<Component> {
    let mut id: FxHashMap<u32, usize> = FxHashMap::default();
    for a in amb {
        for &p in &a.cands {
            let n = id.len();
            id.entry(p).or_insert(n);
        }
    }
    let mut up: Vec<usize> = (0..id.len()).collect();
    fn root(up: &mut [usize], mut x: usize) -> usize {
        while up[x] != x {
            up[x] = up[up[x]];
            x = up[x];
        }
        x
    }
    for a in amb {
        let mut cands = a.cands.iter().map(|p| id[p]);
        let Some(first) = cands.next() else { continue };
        for other in cands {
            let (r1, r2) = (root(&mut up, first), root(&mut up, other));
            if r1 != r2 {
                up[r2.max(r1)] = r1.min(r2);
            }
        }
    }
    let mut by_root: FxHashMap<usize, usize> = FxHashMap::default();
    let mut out: Vec<Component> = Vec::new();
    for (i, a) in amb.iter().enumerate() {
        let Some(first) = a.cands.first() else {
            continue;
        };
        let r = root(&mut up, id[first]);
        let k = *by_root.entry(r).or_insert_with(|| {
            out.push(Component {
                calls: Vec::new(),
                parents: Vec::new(),
                changed: FxHashMap::default(),
                stamp: 0,
                spent: 0,
                budget: 0,
                done: false,
            });
            out.len() - 1
        });
        out[k].calls.push(i);
        out[k].parents.extend_from_slice(&a.cands);
    }
    let total = amb.len().max(1) as u64;
    for c in &mut out {
        c.parents.sort_unstable();
        c.parents.dedup();
        c.budget = budget_total.saturating_mul(c.calls.len() as u64) / total;
    }
    out.sort_by_key(|c| std::cmp::Reverse(c.calls.len()));
    out
}

/// The read-only inputs of a descent.
struct Descent<'a> {
    calls: &'a [Call],
    amb: &'a [Ambiguous],
    movable: &'a Movable,
    models: &'a Models,
    as_child: &'a [Option<ChildCall>],
    learned: &'a [bool],
}

/// One model's descent over one component: rounds of the best improving move per call
/// until none improves (module doc). `kids` holds the component's parents' children;
/// `cur` the current parent of every ambiguous call, of which only this component's
/// are read or written. Returns the calls skipped once the budget was spent.
fn descend(d: &Descent<'_>, comp: &mut Component, kids: &mut Kids, cur: &mut [Option<u32>]) -> u64 {
    let mut st = State {
        calls: d.calls,
        movable: d.movable,
        models: d.models,
        as_child: d.as_child,
        scratch: Vec::new(),
        seq: Sequence::default(),
        spent: comp.spent,
    };
    let amb = d.amb;
    let empty: Vec<u32> = Vec::new();
    let too_many = |kids: &Kids, p: u32| kids.get(&p).is_some_and(|k| k.len() > MAX_KIDS);
    // A call is re-weighed only when one of its candidates' child sets changed since it
    // was last weighed (same models): its moves depend on nothing else.
    let mut weighed = vec![None::<u64>; comp.calls.len()];
    // A move's two new child sets, rebuilt in place for every move weighed.
    let (mut n0, mut nq) = (Vec::new(), Vec::new());
    let mut cost: FxHashMap<u32, f64> = FxHashMap::default();
    for &i in &comp.calls {
        for &q in &amb[i].cands {
            if let std::collections::hash_map::Entry::Vacant(slot) = cost.entry(q) {
                slot.insert(st.cost(q, kids.get(&q).unwrap_or(&empty)));
            }
        }
    }
    let mut skipped = 0;
    'rounds: for _ in 0..ROUNDS {
        let mut improved = false;
        for (pos, &i) in comp.calls.iter().enumerate() {
            if st.spent > comp.budget {
                skipped += (comp.calls.len() - pos) as u64;
                comp.done = true;
                break 'rounds;
            }
            let a = &amb[i];
            let c = a.call;
            let Some(p0) = cur[i] else { continue };
            if !d.learned[i] {
                continue;
            }
            if too_many(kids, p0) {
                continue;
            }
            let last_change = a
                .cands
                .iter()
                .map(|q| comp.changed.get(q).copied().unwrap_or(0))
                .max()
                .unwrap_or(0);
            if weighed[pos].is_some_and(|w| w >= last_change) {
                continue;
            }
            weighed[pos] = Some(comp.stamp);
            let k0 = kids.get(&p0).unwrap_or(&empty);
            let c0 = cost.get(&p0).copied().unwrap_or(0.0);
            // (delta, new parent, children p0 gives, children q gives)
            let mut best: Option<(f64, u32, Vec<u32>, Vec<u32>)> = None;
            for &q in &a.cands {
                if q == p0 || too_many(kids, q) {
                    continue;
                }
                let kq = kids.get(&q).unwrap_or(&empty);
                let cq = cost.get(&q).copied().unwrap_or(0.0);
                for (give, take) in moves(&st, amb, c, (p0, k0), (q, kq)) {
                    trade(k0, &give, &take, &mut n0);
                    trade(kq, &take, &give, &mut nq);
                    let delta = st.cost(p0, &n0) + st.cost(q, &nq) - c0 - cq;
                    if delta < best.as_ref().map_or(-1e-9, |b| b.0) {
                        best = Some((delta, q, give, take));
                    }
                }
            }
            let Some((_, q, give, take)) = best else {
                continue;
            };
            let kq = kids.get(&q).unwrap_or(&empty);
            trade(k0, &give, &take, &mut n0);
            trade(kq, &take, &give, &mut nq);
            let v0 = st.cost(p0, &n0);
            let vq = st.cost(q, &nq);
            cost.insert(p0, v0);
            cost.insert(q, vq);
            kids.insert(p0, n0.clone());
            kids.insert(q, nq.clone());
            for &k in &give {
                if let Some(j) = st.movable.get(k) {
                    cur[j] = Some(q);
                }
            }
            for &k in &take {
                if let Some(j) = st.movable.get(k) {
                    cur[j] = Some(p0);
                }
            }
            comp.stamp += 1;
            comp.changed.insert(p0, comp.stamp);
            comp.changed.insert(q, comp.stamp);
            improved = true;
        }
        if !improved {
            break;
        }
    }
    comp.spent = st.spent;
    skipped
}

/// A share of the current parents, written back by one worker: (position in the
/// ambiguous list, parent).
type ParentsOf = Vec<(usize, Option<u32>)>;

/// Runs one model's descent over every component not yet out of budget, on `threads`
/// workers (components dealt largest first to the least loaded worker; each worker
/// takes its components' child sets out of `kids` and puts them back). The result does
/// not depend on the number of workers.
fn descend_all(
    d: &Descent<'_>,
    comps: &mut [Component],
    kids: &mut Kids,
    cur: &mut [Option<u32>],
    threads: usize,
) -> u64 {
    let workers = threads.clamp(1, comps.len().max(1));
    let mut shares: Vec<Vec<(&mut Component, Kids)>> = (0..workers).map(|_| Vec::new()).collect();
    let mut load = vec![0usize; workers];
    for comp in comps.iter_mut().filter(|c| !c.done) {
        let own: Kids = comp
            .parents
            .iter()
            .filter_map(|p| kids.remove(p).map(|v| (*p, v)))
            .collect();
        let w = (0..workers).min_by_key(|&w| (load[w], w)).unwrap_or(0);
        load[w] += comp.calls.len();
        shares[w].push((comp, own));
    }
    let run = |share: &mut Vec<(&mut Component, Kids)>, cur: &mut [Option<u32>]| {
        let mut skipped = 0;
        let mut written: ParentsOf = Vec::new();
        for (comp, own) in share.iter_mut() {
            skipped += descend(d, comp, own, cur);
            written.extend(comp.calls.iter().map(|&i| (i, cur[i])));
        }
        (skipped, written)
    };
    let results: Vec<(u64, ParentsOf)> = if workers == 1 {
        shares.iter_mut().map(|s| run(s, cur)).collect()
    } else {
        // Each worker moves calls of its own components only; it works on its own copy
        // of the current parents and hands back the ones it owns.
        std::thread::scope(|scope| {
            let handles: Vec<_> = shares
                .iter_mut()
                .map(|share| {
                    let mut mine = cur.to_vec();
                    let run = &run;
                    scope.spawn(move || run(share, &mut mine))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    };
    let mut skipped = 0;
    for (s, written) in results {
        skipped += s;
        for (i, p) in written {
            cur[i] = p;
        }
    }
    for share in shares {
        for (_, own) in share {
            kids.extend(own);
        }
    }
    skipped
}

/// Re-assigns the ambiguous calls' parents (`edges[call].parent`) jointly; `fixed`
/// children (every other edge that is not late) stay where they are but count in their
/// parents' fit. Sets each ambiguous call's confidence to its parent's share of the
/// likelihood exp(-cost/2) among its candidates. `threads` workers share the descent.
pub(super) fn refine(
    calls: &[Call],
    edges: &mut [Option<Edge>],
    amb: &[Ambiguous],
    tolerance_ns: i64,
    threads: usize,
) -> Refined {
    let mut out = Refined::default();
    if amb.is_empty() {
        return out;
    }
    let mut kids: Kids = FxHashMap::default();
    let movable = Movable::new(calls.len(), amb);
    let as_child: Vec<Option<ChildCall>> = calls.iter().map(as_child).collect();
    let no_models = Models::default();
    for (i, e) in edges.iter().enumerate() {
        if let Some(e) = e.filter(|e| !e.late) {
            // A child the parent did not wait for is not part of its rhythm.
            let p = &calls[e.parent as usize];
            let enclosed = match (calls[i].end(), p.resp_first) {
                (Some(end), Some(b)) => end <= b.saturating_add(tolerance_ns),
                _ => false,
            };
            if enclosed {
                kids.entry(e.parent).or_default().push(i as u32);
            }
        }
    }
    // Current parent per ambiguous call (kept beside `kids` for speed).
    let mut cur: Vec<Option<u32>> = amb
        .iter()
        .map(|a| edges[a.call as usize].map(|e| e.parent))
        .collect();
    let too_many = |kids: &Kids, p: u32| kids.get(&p).is_some_and(|k| k.len() > MAX_KIDS);
    for (i, a) in amb.iter().enumerate() {
        // Not among its parent's weighed children (not enclosed): left alone.
        if cur[i].is_some_and(|p| !kids.get(&p).is_some_and(|v| v.contains(&a.call))) {
            cur[i] = None;
        }
    }
    let empty: Vec<u32> = Vec::new();
    let budget = BUDGET_BASE.saturating_add(BUDGET_PER_CALL.saturating_mul(amb.len() as u64));
    let mut comps = components(amb, budget);
    let mut spent = 0u64;
    let mut models = Models::default();
    for _ in 0..MODELS {
        if comps.iter().all(|c| c.done) {
            break;
        }
        let mut learner = State {
            calls,
            movable: &movable,
            models: &no_models,
            as_child: &as_child,
            scratch: Vec::new(),
            seq: Sequence::default(),
            spent: 0,
        };
        models = learner.learn(&kids, amb);
        spent += learner.spent;
        let learner = State {
            models: &models,
            ..learner
        };
        let learned: Vec<bool> = amb.iter().map(|a| learner.learned(a)).collect();
        let d = Descent {
            calls,
            amb,
            movable: &movable,
            models: &models,
            as_child: &as_child,
            learned: &learned,
        };
        out.skipped += descend_all(&d, &mut comps, &mut kids, &mut cur, threads);
    }
    spent += comps.iter().map(|c| c.spent).sum::<u64>();
    let mut st = State {
        calls,
        movable: &movable,
        models: &models,
        as_child: &as_child,
        scratch: Vec::new(),
        seq: Sequence::default(),
        spent,
    };
    let (mut n0, mut nq) = (Vec::new(), Vec::new());
    // Confidence: the parent's share of exp(-cost/2) against the best move that gives
    // the call to each other candidate (alone, swapped, with its tail, in a re-split):
    // two loops that could have traded their tails share the likelihood, where moving
    // the call alone would look impossible.
    for (i, a) in amb.iter().enumerate() {
        let Some(p) = cur[i] else { continue };
        let Some(e) = edges[a.call as usize].as_mut() else {
            continue;
        };
        if !st.learned(a) {
            continue;
        }
        if too_many(&kids, p) {
            out.skipped += 1;
            continue;
        }
        let k0 = kids.get(&p).unwrap_or(&empty);
        let c0 = st.cost(p, k0);
        let mut others = 0.0;
        for &q in &a.cands {
            if q == p || too_many(&kids, q) {
                continue;
            }
            let kq = kids.get(&q).unwrap_or(&empty);
            let cq = st.cost(q, kq);
            let mut d_min = f64::INFINITY;
            let mut options = moves(&st, amb, a.call, (p, k0), (q, kq));
            // Past twice the search budget, only the call moved alone (as the search
            // was cut, its answer is the rules' and the weight a rough one).
            if st.spent > budget.saturating_mul(2) {
                options.truncate(1);
            }
            for (give, take) in options {
                if !give.contains(&a.call) {
                    continue;
                }
                trade(k0, &give, &take, &mut n0);
                trade(kq, &take, &give, &mut nq);
                d_min = d_min.min(st.cost(p, &n0) + st.cost(q, &nq) - c0 - cq);
            }
            others += (-(d_min / 2.0).max(-50.0)).exp();
        }
        out.moved += u64::from(e.parent != p);
        e.parent = p;
        e.confidence = 1.0 / (1.0 + others);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::chains::calls::CallKind;
    use crate::analysis::chains::parents::EdgeSource;

    /// A call on connection `conn` from A (10.0.0.2) to B, or from the edge to A when
    /// `to_a`; times in ms.
    fn call(conn: u64, to_a: bool, t: [f64; 4]) -> Call {
        let (client, server) = if to_a {
            ("10.0.0.1:5000", "10.0.0.2:80")
        } else {
            ("10.0.0.2:4000", "10.0.0.3:80")
        };
        let ns = |v: f64| Some((v * 1e6) as i64);
        Call {
            conn_id: conn,
            index: 0,
            client: client.parse().unwrap(),
            server: server.parse().unwrap(),
            client_service: u32::from(!to_a),
            server_service: u32::from(to_a) + 1,
            method: Some(0),
            route: Some(u32::from(to_a)),
            status: Some(200),
            req_first: ns(t[0]),
            req_last: ns(t[1]),
            resp_first: ns(t[2]),
            resp_last: ns(t[3]),
            trace_id: None,
            parent_span_id: None,
            span_id: None,
            kind: CallKind::Http,
            req_body: None,
        }
    }

    fn edge(parent: usize) -> Option<Edge> {
        Some(Edge {
            parent: parent as u32,
            source: EdgeSource::Timing,
            confidence: 1.0,
            late: false,
        })
    }

    /// Two loops whose calls overlap pairwise: x1 with y1, x2 with y2. Each parent takes
    /// one of each overlapping pair, so 4 splits are valid and 3 differ from the current
    /// one; a call only one parent may take stays there (then 1 differs).
    #[test]
    fn splits_keep_each_parent_sequential() {
        let a = call(1, true, [0.0, 1.0, 9.0, 10.0]);
        let b = call(2, true, [0.5, 1.5, 9.5, 10.5]);
        let kid = |conn, s: f64| call(conn, false, [s, s + 0.1, s + 0.9, s + 1.0]);
        let calls = vec![a, b, kid(10, 2.0), kid(11, 2.5), kid(10, 4.0), kid(11, 4.2)];
        let route = route_key(&calls[2]);
        let (ka, kb) = (vec![2u32, 4], vec![3u32, 5]);
        let mut got = splits(&calls, route, (0, &ka), (1, &kb), &|_, _| true);
        for (g, t) in &mut got {
            g.sort_unstable();
            t.sort_unstable();
        }
        got.sort();
        let want: Vec<(Vec<u32>, Vec<u32>)> = vec![
            (vec![2], vec![3]),
            (vec![2, 4], vec![3, 5]),
            (vec![4], vec![5]),
        ];
        assert_eq!(got, want);
        // x2 may not go to b: only the split of the first pair remains.
        let got = splits(&calls, route, (0, &ka), (1, &kb), &|k, to| {
            !(k == 4 && to == 1)
        });
        assert_eq!(got.len(), 1);
        assert_eq!(got[0], (vec![2], vec![3]));
    }

    /// Ten requests with one call each (the learned rhythm), a request P with 65 calls
    /// and a request Q; one tied call between P and Q, now with P. P is over `MAX_KIDS`:
    /// the call keeps its parent and counts as skipped; the others are untouched.
    #[test]
    fn a_parent_over_the_children_bound_is_left_alone_and_counted() {
        let mut calls = Vec::new();
        let mut edges = Vec::new();
        for k in 0..10u64 {
            let t0 = 1000.0 * k as f64 + 5000.0;
            calls.push(call(k, true, [t0, t0 + 1.0, t0 + 10.0, t0 + 11.0]));
            edges.push(None);
            calls.push(call(
                100 + k,
                false,
                [t0 + 2.0, t0 + 2.1, t0 + 8.9, t0 + 9.0],
            ));
            edges.push(edge(calls.len() - 2));
        }
        let p = calls.len();
        calls.push(call(50, true, [0.0, 1.0, 400.0, 401.0]));
        edges.push(None);
        for i in 0..65u64 {
            let s = 2.0 + 4.0 * i as f64;
            calls.push(call(200 + i, false, [s, s + 0.1, s + 2.9, s + 3.0]));
            edges.push(edge(p));
        }
        let q = calls.len();
        calls.push(call(51, true, [300.0, 301.0, 390.0, 391.0]));
        edges.push(None);
        let c = calls.len();
        calls.push(call(300, false, [350.0, 350.1, 359.9, 360.0]));
        edges.push(edge(p));
        let before = edges.clone();
        let amb = [Ambiguous {
            call: c as u32,
            cands: vec![p as u32, q as u32],
        }];
        for threads in [1, 2] {
            let mut edges = before.clone();
            let done = refine(&calls, &mut edges, &amb, 1_000_000, threads);
            assert_eq!((done.moved, done.skipped), (0, 1));
            assert_eq!(edges, before);
        }
    }

    /// Calls that share a candidate, directly or through another call, are one
    /// component; the budget is shared by calls; the largest component comes first.
    #[test]
    fn calls_sharing_candidates_form_one_component() {
        let amb = |call: u32, cands: &[u32]| Ambiguous {
            call,
            cands: cands.to_vec(),
        };
        let list = [
            amb(10, &[1, 2]),
            amb(11, &[5, 6]),
            amb(12, &[2, 3]),
            amb(13, &[7]),
            amb(14, &[3, 4]),
        ];
        let comps = components(&list, 1000);
        let got: Vec<(Vec<usize>, Vec<u32>, u64)> = comps
            .iter()
            .map(|c| (c.calls.clone(), c.parents.clone(), c.budget))
            .collect();
        assert_eq!(
            got,
            vec![
                (vec![0, 2, 4], vec![1, 2, 3, 4], 600),
                (vec![1], vec![5, 6], 200),
                (vec![3], vec![7], 200),
            ]
        );
    }
}
