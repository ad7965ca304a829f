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
    for (i, c) in calls.iter().enumerate() {
        if skip(i) {
            continue;
        }
        let (cs, ce) = (ns(c.client_start_ns), ns(c.client_end_ns));
        let (ss, se) = (ns(c.server_start_ns), ns(c.server_end_ns));
        let req_first = cs.or(ss);
        if req_first.is_none() {
            set.skipped += 1;
            continue;
        }
        let client_service = set.symbols.intern(&c.caller);
        let server_service = set.symbols.intern(&c.callee);
        let parent = c.parent_call.and_then(|p| calls.get(p)).and_then(span_of);
        set.calls.push(Call {
            // Its own "connection", numbered down from the top: capture ids count up.
            conn_id: u64::MAX - i as u64,
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
            req_first,
            req_last: ss.or(req_first),
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
