//! Call rows from trace files, and span ids laid onto the rows of a capture joined to
//! them: the span trees give exact parent edges ([`super::EdgeSource::Span`]), so the
//! trees, critical paths and per-link `chain` object have the same shape whatever the
//! input.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use rustc_hash::FxHashMap;

use super::calls::{Call, CallKind, CallSet};
use crate::ingest::traces;

/// Spans have no addresses, but the tree builder tells an edge client (a root) from a
/// serving caller by address. Each service gets a stand-in address of its own, in the
/// IPv6 documentation prefix (2001:db8::/32, RFC 3849) so it can never be a real host.
fn stand_in(service: u32) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0) | Ipv6Addr::from(service as u128))
}

/// The caller of a trace's first call: an edge client even when its service also serves
/// (a batch job in a service, a producer started by a timer). The span tree says it has
/// no parent, so the tree builder must see it as a root, not as an orphan whose parent
/// was lost.
fn edge_stand_in(service: u32) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0) | Ipv6Addr::from(service as u128))
}

/// Call ids of trace calls: the span id of the server side (else the client side), so
/// ids from the traces never collide with each other.
fn span_of(c: &traces::SpanCall) -> Option<u64> {
    c.server_span_id.or(c.client_span_id)
}

fn ns(v: Option<u64>) -> Option<i64> {
    v.and_then(|v| i64::try_from(v).ok())
}

/// Appends one chain row per trace call `skip` does not exclude (those a capture already
/// shows) to `set`. The caller's wait is the client span (else the server span); the
/// callee's serving window is its server span, so the calls it makes fall inside it. A
/// call through a broker is one the caller does not wait for: its "answer" is the
/// producer span's end, and the consumer's work runs after.
pub fn append_trace_calls(
    set: &mut CallSet,
    calls: &[traces::SpanCall],
    skip: &dyn Fn(usize) -> bool,
) {
    set.calls.reserve(calls.len());
    for i in 0..calls.len() {
        if !skip(i) {
            push_call(set, calls, i, i);
        }
    }
}

/// The chain row of `calls[i]` (its `parent_call` indexes `calls`), numbered `index` among
/// all the trace calls of the run.
fn push_call(set: &mut CallSet, calls: &[traces::SpanCall], i: usize, index: usize) {
    let c = &calls[i];
    let (cs, ce) = (ns(c.client_start_ns), ns(c.client_end_ns));
    let (ss, se) = (ns(c.server_start_ns), ns(c.server_end_ns));
    let Some(req_first) = cs.or(ss) else {
        set.skipped += 1;
        return;
    };
    let client_service = set.symbols.intern(&c.caller);
    let server_service = set.symbols.intern(&c.callee);
    let parent = c.parent_call.and_then(|p| calls.get(p)).and_then(span_of);
    set.calls.push(Call {
        // Its own "connection", numbered down from the top: capture ids count up.
        conn_id: u64::MAX - index as u64,
        index: 0,
        client: SocketAddr::new(
            if c.parent_call.is_none() && &*c.caller != traces::UNKNOWN_CALLER {
                edge_stand_in(client_service)
            } else {
                stand_in(client_service)
            },
            0,
        ),
        server: SocketAddr::new(stand_in(server_service), 0),
        client_service,
        server_service,
        method: c.method.as_deref().map(|m| set.symbols.intern(m)),
        route: c
            .route
            .as_deref()
            .map(|r| {
                set.symbols
                    .intern(&crate::analysis::links::normalise_route(r))
            })
            .or_else(|| {
                c.path
                    .as_deref()
                    .map(|p| set.symbols.intern(&crate::ingest::http::route::template(p)))
            }),
        status: match c.kind {
            // Nobody waits for a message's consumer: as for a 202, the caller is
            // answered at once.
            traces::SpanCallKind::Async => Some(202),
            traces::SpanCallKind::Sync => c.status_code,
        },
        req_first: Some(req_first),
        req_last: ss.or(Some(req_first)),
        resp_first: if c.kind == traces::SpanCallKind::Async {
            ce.or(se)
        } else {
            se.or(ce)
        },
        resp_last: ce.or(se),
        trace_id: Some(c.trace_id),
        parent_span_id: parent,
        span_id: span_of(c),
        kind: CallKind::Http,
        req_body: c.request_body_size,
    });
}

/// Trace calls of a run above which the chains are read from a sample of whole traces:
/// 2/5 of the open-span bound (40,000 by default), so that one bound (`--trace-window`)
/// scales both of the trace side's memories alike.
pub fn chain_calls_cap(limits: &traces::Limits) -> usize {
    (limits.max_open_spans / 5 * 2).max(1)
}

/// What the sample of traces left out of the chains (links measure every call).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TraceSampleStats {
    pub traces_kept: u64,
    pub calls_kept: u64,
    pub traces_left_out: u64,
    pub calls_left_out: u64,
}

/// Chain rows of trace calls, fed trace by trace, in bounded memory: every trace while
/// they hold at most `cap` rows; past that, whole traces whose trace-id hash is under a
/// threshold, halved each time the rows go over `cap` again (the traces over it are
/// dropped, counted). The chains are then figures of a uniform sample of whole traces,
/// the same whatever the order or the thread count that read them: a trace is in it iff
/// its hash is under the final threshold.
pub struct TraceSample {
    rows: CallSet,
    cap: usize,
    threshold: u64,
    /// Per trace kept, in order: (hash, rows, calls, rows skipped).
    kept: Vec<(u64, usize, usize, u64)>,
    /// Trace calls seen: the run-wide index of the next one.
    seen: usize,
    stats: TraceSampleStats,
}

/// A trace id's place in the sample: its two halves mixed (splitmix64's finaliser), so
/// that ids that share bits (64-bit ids zero-extended) still spread evenly.
fn sample_hash(trace_id: u128) -> u64 {
    let mut z = (trace_id as u64) ^ ((trace_id >> 64) as u64).rotate_left(32);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl TraceSample {
    pub fn new(cap: usize) -> Self {
        TraceSample {
            rows: CallSet::default(),
            cap,
            threshold: u64::MAX,
            kept: Vec::new(),
            seen: 0,
            stats: TraceSampleStats::default(),
        }
    }

    /// The calls of one trace (`parent_call` indexes `calls`).
    pub fn trace(&mut self, calls: &[traces::SpanCall]) {
        let first = self.seen;
        self.seen += calls.len();
        let Some(c0) = calls.first() else { return };
        let h = sample_hash(c0.trace_id);
        if h > self.threshold {
            self.stats.traces_left_out += 1;
            self.stats.calls_left_out += calls.len() as u64;
            return;
        }
        let (rows, skipped) = (self.rows.calls.len(), self.rows.skipped);
        for i in 0..calls.len() {
            push_call(&mut self.rows, calls, i, first + i);
        }
        self.kept.push((
            h,
            self.rows.calls.len() - rows,
            calls.len(),
            self.rows.skipped - skipped,
        ));
        while self.rows.calls.len() > self.cap && self.threshold > 0 {
            self.threshold /= 2;
            self.drop_over_threshold();
        }
    }

    fn drop_over_threshold(&mut self) {
        let t = self.threshold;
        let mut keep_row = Vec::with_capacity(self.rows.calls.len());
        for &(h, rows, calls, skipped) in &self.kept {
            keep_row.extend(std::iter::repeat_n(h <= t, rows));
            if h > t {
                self.stats.traces_left_out += 1;
                self.stats.calls_left_out += calls as u64;
                self.rows.skipped -= skipped;
            }
        }
        let mut keep = keep_row.into_iter();
        self.rows.calls.retain(|_| keep.next().unwrap_or(false));
        self.kept.retain(|k| k.0 <= t);
    }

    /// Appends the sampled rows to `set` (their names interned in its symbols), and says
    /// what was left out.
    pub fn append_to(self, set: &mut CallSet) -> TraceSampleStats {
        let from = &self.rows.symbols;
        let mut re = |s: super::Sym| set.symbols.intern(from.get(s));
        let rows: Vec<Call> = (self.rows.calls.into_iter())
            .map(|mut c| {
                c.client_service = re(c.client_service);
                c.server_service = re(c.server_service);
                c.method = c.method.map(&mut re);
                c.route = c.route.map(&mut re);
                c
            })
            .collect();
        set.calls.extend(rows);
        set.skipped += self.rows.skipped;
        TraceSampleStats {
            traces_kept: self.kept.len() as u64,
            calls_kept: self.kept.iter().map(|k| k.2 as u64).sum(),
            ..self.stats
        }
    }
}

/// Lays the span ids of joined trace calls onto a capture's rows: a row matched to a call
/// gets the call's span id, and its parent the span id of the call's parent call, so the
/// parent inference takes the span tree's edge where both ends are in the capture and
/// infers the rest. `matched` maps (connection id, position) to the call index.
pub fn lay_span_ids(
    set: &mut CallSet,
    calls: &[traces::SpanCall],
    matched: &FxHashMap<(u64, u32), u32>,
) -> u64 {
    let mut laid = 0;
    for row in &mut set.calls {
        if row.kind != CallKind::Http {
            continue;
        }
        let Some(&ci) = matched.get(&(row.conn_id, row.index)) else {
            continue;
        };
        let Some(c) = calls.get(ci as usize) else {
            continue;
        };
        row.span_id = span_of(c);
        if let Some(p) = c.parent_call.and_then(|p| calls.get(p)).and_then(span_of) {
            row.parent_span_id = Some(p);
        }
        row.trace_id = Some(c.trace_id);
        laid += 1;
    }
    laid
}
