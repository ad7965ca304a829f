//! Captures and traces of the same period, joined: each HTTP exchange of the capture to
//! the trace call it is, so spans can name the captured endpoints (`service.name`),
//! confirm the call trees, and the two clocks can be compared.
//!
//! Two rules, in order:
//! 1. **traceparent**: the exchange's W3C `traceparent` carries the trace id and the
//!    caller's span id, which is the call's CLIENT span id, or (when the caller exported
//!    no span) the parent id its SERVER span names. Exact.
//! 2. **endpoints and time**: for an exchange without a usable traceparent, the unmatched
//!    synchronous call whose span (moved by the clock offset) lies nearest the exchange's
//!    wire window, with the same method and status where both are known, and with the
//!    service names the endpoints already got from rule 1 where they have one. Each
//!    exchange looks at a bounded number of candidates (cut-offs are counted).
//!
//! The clock offset is the median of (span midpoint - wire midpoint) over the pairs of
//! rule 1 (or of a first time-only pass when there are none): positive when the trace
//! clocks run ahead of the capture's.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::IpAddr;

use polars::prelude::*;
use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::analysis::identity::{Tally, TraceNames};
use crate::ingest::traces::{SpanCall, SpanCallKind, USER};
use crate::model::ids::{parse_span_id, parse_trace_id};
use crate::tables::columns;

/// Bounds and windows of the join.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JoinConfig {
    /// How far (ns) a span may lie outside an exchange's wire window, once the clock
    /// offset is applied, and still be matched by time.
    pub window_ns: i64,
    /// Candidates examined per exchange by the time rule.
    pub max_candidates: usize,
    /// Window of the first pass that estimates the offset when no traceparent matched.
    pub search_ns: i64,
}

impl Default for JoinConfig {
    fn default() -> Self {
        JoinConfig {
            window_ns: 5_000_000,
            max_candidates: 64,
            search_ns: 1_000_000_000,
        }
    }
}

/// How a match was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchRule {
    Traceparent,
    Time,
}

/// The join's figures, for `links.json` and the report.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct JoinStats {
    /// HTTP exchanges in the capture (with a request seen).
    pub exchanges: u64,
    /// Synchronous trace calls that a capture could show.
    pub calls: u64,
    pub matched: u64,
    pub by_traceparent: u64,
    pub by_time: u64,
    /// Exchanges whose traceparent names a span no trace file holds.
    pub traceparent_unknown: u64,
    /// Share of the exchanges matched to a call.
    pub exchange_coverage: Option<f64>,
    /// Share of the synchronous calls matched to an exchange.
    pub call_coverage: Option<f64>,
    /// Trace clock minus capture clock, median over the matched pairs, in ms.
    pub clock_offset_ms: Option<f64>,
    /// Pairs the offset is the median of.
    pub offset_pairs: u64,
    /// Spread of the offset: the 5th and 95th percentile, in ms.
    pub clock_offset_p5_p95_ms: Option<(f64, f64)>,
    /// Server endpoints and client addresses the spans gave a service name.
    pub named_endpoints: u64,
    /// Time-rule scans cut at `max_candidates`.
    pub candidates_cut: u64,
}

/// The join's result.
#[derive(Clone, Debug, Default)]
pub struct Join {
    /// Per exchange row: the matched call index in `TraceSet::calls`, and the rule.
    pub exchange_call: Vec<Option<(u32, MatchRule)>>,
    /// Per call: matched to an exchange.
    pub call_matched: Vec<bool>,
    /// The names the matched spans give the endpoints.
    pub names: TraceNames,
    pub stats: JoinStats,
}

impl Join {
    /// Exchange rows by (connection id, position on it) -> call, for the stages that
    /// hold exchanges by connection (the chains).
    pub fn by_connection(&self, exchanges: &DataFrame) -> PolarsResult<FxHashMap<(u64, u32), u32>> {
        let conn = exchanges.column(columns::CONN_ID)?.u64()?;
        let index = exchanges.column(columns::INDEX)?.u32()?;
        let mut out = FxHashMap::default();
        for (row, m) in self.exchange_call.iter().enumerate() {
            if let (Some((call, _)), Some(c), Some(i)) = (m, conn.get(row), index.get(row)) {
                out.insert((c, i), *call);
            }
        }
        Ok(out)
    }
}

/// (client address, server listener) of an exchange.
pub type Endpoints = (IpAddr, (IpAddr, u16));

impl Join {
    /// (client address, server endpoint) and matched call of every joined exchange.
    pub fn matched_endpoints(&self, exchanges: &DataFrame) -> PolarsResult<Vec<(Endpoints, u32)>> {
        let rows = read_rows(exchanges)?;
        Ok(rows
            .iter()
            .zip(&self.exchange_call)
            .filter_map(|(r, m)| Some(((r.client?, r.server?), m.as_ref()?.0)))
            .collect())
    }
}

/// What the join reads of one exchange row.
struct Row {
    client: Option<IpAddr>,
    client_port: Option<u16>,
    server: Option<(IpAddr, u16)>,
    method: Option<String>,
    status: Option<u16>,
    start: Option<i64>,
    end: Option<i64>,
    trace: Option<(u128, u64)>,
}

fn read_rows(ex: &DataFrame) -> PolarsResult<Vec<Row>> {
    let s = |n: &str| ex.column(n).and_then(|c| c.str().cloned());
    let (cip, sip, method) = (
        s(columns::CLIENT_IP)?,
        s(columns::SERVER_IP)?,
        s(columns::METHOD)?,
    );
    let (trace, parent) = (s(columns::TRACE_ID)?, s(columns::PARENT_SPAN_ID)?);
    let sport = ex.column(columns::SERVER_PORT)?.u32()?.clone();
    let cport = ex.column(columns::CLIENT_PORT)?.u32()?.clone();
    let status = ex.column(columns::STATUS)?.u32()?.clone();
    let t = |n: &str| ex.column(n).and_then(|c| c.i64().cloned());
    let (rf, rl, sf, sl) = (
        t(columns::REQ_FIRST_NS)?,
        t(columns::REQ_LAST_NS)?,
        t(columns::RESP_FIRST_NS)?,
        t(columns::RESP_LAST_NS)?,
    );
    Ok((0..ex.height())
        .map(|i| {
            let server = sip
                .get(i)
                .and_then(|a| a.parse().ok())
                .zip(sport.get(i).and_then(|p| u16::try_from(p).ok()));
            Row {
                client: cip.get(i).and_then(|a| a.parse().ok()),
                client_port: cport.get(i).and_then(|p| u16::try_from(p).ok()),
                server,
                method: method.get(i).map(str::to_owned),
                status: status.get(i).and_then(|v| u16::try_from(v).ok()),
                start: rf.get(i).or(rl.get(i)),
                end: sl.get(i).or(sf.get(i)),
                trace: trace
                    .get(i)
                    .and_then(parse_trace_id)
                    .zip(parent.get(i).and_then(parse_span_id)),
            }
        })
        .collect())
}

/// The span window of a call (server view if any: it is what the wire brackets; else
/// the client view), in ns.
fn span_window(c: &SpanCall) -> Option<(i64, i64)> {
    let pick = |a: Option<u64>, b: Option<u64>| {
        let (a, b) = (i64::try_from(a?).ok()?, i64::try_from(b?).ok()?);
        (b >= a).then_some((a, b))
    };
    pick(c.server_start_ns, c.server_end_ns).or_else(|| pick(c.client_start_ns, c.client_end_ns))
}

fn midpoint((a, b): (i64, i64)) -> i64 {
    a + (b - a) / 2
}

/// Calls a capture of HTTP between services could show.
fn joinable(c: &SpanCall) -> bool {
    c.kind == SpanCallKind::Sync && span_window(c).is_some()
}

/// Joins the exchanges table with the trace calls.
pub fn join(exchanges: &DataFrame, calls: &[SpanCall], cfg: &JoinConfig) -> PolarsResult<Join> {
    let rows = read_rows(exchanges)?;
    let mut j = Join {
        exchange_call: vec![None; rows.len()],
        call_matched: vec![false; calls.len()],
        ..Default::default()
    };
    j.stats.exchanges = rows.iter().filter(|r| r.start.is_some()).count() as u64;
    j.stats.calls = calls.iter().filter(|c| joinable(c)).count() as u64;

    // Rule 1: traceparent.
    let mut by_client: FxHashMap<(u128, u64), u32> = FxHashMap::default();
    let mut by_server_parent: FxHashMap<(u128, u64), u32> = FxHashMap::default();
    for (i, c) in calls.iter().enumerate() {
        if !joinable(c) {
            continue;
        }
        if let Some(s) = c.client_span_id {
            by_client.insert((c.trace_id, s), i as u32);
        }
        if let Some(p) = c.server_parent_span_id {
            by_server_parent.entry((c.trace_id, p)).or_insert(i as u32);
        }
    }
    let mut offsets: Vec<i64> = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        let Some(key) = row.trace else { continue };
        let Some(&ci) = by_client.get(&key).or_else(|| by_server_parent.get(&key)) else {
            j.stats.traceparent_unknown += 1;
            continue;
        };
        if j.call_matched[ci as usize] {
            continue;
        }
        j.call_matched[ci as usize] = true;
        j.exchange_call[r] = Some((ci, MatchRule::Traceparent));
        j.stats.by_traceparent += 1;
        if let (Some(w), Some(s), Some(e)) = (span_window(&calls[ci as usize]), row.start, row.end)
        {
            offsets.push(midpoint(w) - midpoint((s, e.max(s))));
        }
    }
    let names_so_far = endpoint_names(&rows, calls, &j.exchange_call);

    // Rule 2: endpoints and time, with the offset from rule 1, or estimated by a first
    // wide pass when rule 1 matched nothing.
    let mut order: Vec<u32> = (0..calls.len() as u32)
        .filter(|&i| !j.call_matched[i as usize] && joinable(&calls[i as usize]))
        .collect();
    order.sort_by_key(|&i| span_window(&calls[i as usize]).map(|w| w.0));
    let offset = match median(&mut offsets) {
        Some(o) => o,
        None => {
            let mut trial = j.clone();
            let mut trial_offsets = Vec::new();
            let mut scratch = JoinStats::default();
            time_pass(
                &rows,
                calls,
                &order,
                &names_so_far,
                0,
                cfg.search_ns,
                cfg.max_candidates,
                &mut trial,
                &mut trial_offsets,
                &mut scratch,
            );
            median(&mut trial_offsets).unwrap_or(0)
        }
    };
    let mut time_offsets = Vec::new();
    let mut stats = std::mem::take(&mut j.stats);
    time_pass(
        &rows,
        calls,
        &order,
        &names_so_far,
        offset,
        cfg.window_ns,
        cfg.max_candidates,
        &mut j,
        &mut time_offsets,
        &mut stats,
    );
    j.stats = stats;
    if offsets.is_empty() {
        offsets = time_offsets;
    }
    j.stats.offset_pairs = offsets.len() as u64;
    j.stats.clock_offset_ms = median(&mut offsets).map(|o| o as f64 / 1e6);
    j.stats.clock_offset_p5_p95_ms = spread(&offsets);
    j.stats.matched = j.stats.by_traceparent + j.stats.by_time;
    let share = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
    j.stats.exchange_coverage = share(j.stats.matched, j.stats.exchanges);
    j.stats.call_coverage = share(j.stats.matched, j.stats.calls);
    j.names = endpoint_names(&rows, calls, &j.exchange_call);
    j.stats.named_endpoints = (j.names.servers.len() + j.names.clients.len()) as u64;
    Ok(j)
}

/// Rule 2 over every unmatched exchange, in time order; appends (span - wire) midpoint
/// differences of its matches to `offsets`.
#[allow(clippy::too_many_arguments)]
fn time_pass(
    rows: &[Row],
    calls: &[SpanCall],
    order: &[u32],
    names: &TraceNames,
    offset: i64,
    window: i64,
    max_candidates: usize,
    j: &mut Join,
    offsets: &mut Vec<i64>,
    stats: &mut JoinStats,
) {
    // SpanCall windows on the capture's clock, sorted by start.
    let starts: Vec<(i64, u32)> = order
        .iter()
        .filter_map(|&i| Some((span_window(&calls[i as usize])?.0 - offset, i)))
        .collect();
    let mut taken = j.call_matched.clone();
    let mut exchange_order: Vec<usize> = (0..rows.len())
        .filter(|&r| j.exchange_call[r].is_none() && rows[r].start.is_some())
        .collect();
    exchange_order.sort_by_key(|&r| rows[r].start);
    for r in exchange_order {
        let row = &rows[r];
        let (Some(s), Some(e)) = (row.start, row.end.or(row.start)) else {
            continue;
        };
        let e = e.max(s);
        let from = starts.partition_point(|&(t, _)| t < s.saturating_sub(window));
        let mut best: Option<(i64, u32)> = None;
        for (seen, &(t, ci)) in starts[from..].iter().enumerate() {
            if t > e.saturating_add(window) {
                break;
            }
            if seen == max_candidates {
                stats.candidates_cut += 1;
                break;
            }
            let c = &calls[ci as usize];
            if taken[ci as usize] || !compatible(row, c, names) {
                continue;
            }
            let Some(w) = span_window(c) else { continue };
            let (a, b) = (w.0 - offset, w.1 - offset);
            // The span must lie in the wire window, give or take `window`.
            if a < s.saturating_sub(window) || b > e.saturating_add(window) {
                continue;
            }
            let d = (midpoint((a, b)) - midpoint((s, e))).abs();
            if best.is_none_or(|(bd, _)| d < bd) {
                best = Some((d, ci));
            }
        }
        if let Some((_, ci)) = best {
            taken[ci as usize] = true;
            j.call_matched[ci as usize] = true;
            j.exchange_call[r] = Some((ci, MatchRule::Time));
            stats.by_time += 1;
            if let Some(w) = span_window(&calls[ci as usize]) {
                offsets.push(midpoint(w) - midpoint((s, e)));
            }
        }
    }
}

/// Same method and status where both are known; the service names rule 1 already gave
/// the endpoints, where it gave one.
fn compatible(row: &Row, c: &SpanCall, names: &TraceNames) -> bool {
    // The server span's record of the caller's port names the TCP connection.
    if let (Some(a), Some(b)) = (row.client_port, c.client_port) {
        if a != b {
            return false;
        }
    }
    if let (Some(a), Some(b)) = (&row.method, &c.method) {
        if !a.eq_ignore_ascii_case(b) {
            return false;
        }
    }
    if let (Some(a), Some(b)) = (row.status, c.status_code) {
        if a != b {
            return false;
        }
    }
    let first = |t: Option<&Tally>| t.and_then(|t| t.names().next().map(str::to_owned));
    if let Some(server) = row.server {
        if let Some(n) = first(names.servers.get(&server)) {
            if !c.virtual_callee && *c.callee != *n {
                return false;
            }
        }
    }
    if let Some(client) = row.client {
        if let Some(n) = first(names.clients.get(&client)) {
            if is_service(&c.caller) && *c.caller != *n {
                return false;
            }
        }
    }
    true
}

/// A caller or callee that is a service of the traces, not a stand-in name.
fn is_service(name: &str) -> bool {
    !matches!(
        name,
        USER | crate::ingest::traces::UNKNOWN_CALLER | crate::ingest::traces::UNKNOWN_PEER
    )
}

/// Votes of the matched calls: server endpoint -> callee, client address -> caller.
/// A virtual callee (named by the client's attributes) does not vote: its name is an
/// address or a guess, not the server's own `service.name`.
fn endpoint_names(
    rows: &[Row],
    calls: &[SpanCall],
    matched: &[Option<(u32, MatchRule)>],
) -> TraceNames {
    let mut servers: BTreeMap<(IpAddr, u16), BTreeMap<String, u64>> = BTreeMap::new();
    let mut clients: BTreeMap<IpAddr, BTreeMap<String, u64>> = BTreeMap::new();
    for (row, m) in rows.iter().zip(matched) {
        let Some((ci, _)) = m else { continue };
        let c = &calls[*ci as usize];
        if let Some(s) = row.server {
            if !c.virtual_callee && is_service(&c.callee) {
                *servers
                    .entry(s)
                    .or_default()
                    .entry(c.callee.to_string())
                    .or_default() += 1;
            }
        }
        if let Some(ip) = row.client {
            if is_service(&c.caller) {
                *clients
                    .entry(ip)
                    .or_default()
                    .entry(c.caller.to_string())
                    .or_default() += 1;
            }
        }
    }
    TraceNames {
        servers: servers
            .into_iter()
            .map(|(k, v)| (k, Tally::from_counts(v)))
            .collect(),
        clients: clients
            .into_iter()
            .map(|(k, v)| (k, Tally::from_counts(v)))
            .collect(),
    }
}

fn median(v: &mut [i64]) -> Option<i64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    Some(v[v.len() / 2])
}

fn spread(v: &[i64]) -> Option<(f64, f64)> {
    let mut s = v.to_vec();
    s.sort_unstable();
    let at = |q: f64| s.get(((s.len() - 1) as f64 * q).round() as usize).copied();
    if s.is_empty() {
        return None;
    }
    Some((at(0.05)? as f64 / 1e6, at(0.95)? as f64 / 1e6))
}
