//! One assembled trace to calls: the span tree (parents resolved, Zipkin shared spans
//! split, cycles broken), its statistics, and the calls between services.
//!
//! Pairing follows the Collector's servicegraph connector, Jaeger's dependencies job and
//! Zipkin's dependency linker (each rule is a [`CallRule`], counted in `TraceCoverage`):
//! a SERVER span whose parent is a CLIENT span makes one call from the client's service
//! to the server's; a SERVER span without a parent is called by `user`. A span without a
//! kind (or INTERNAL) whose parent is in another service is a call from that service, as
//! C++ and older Jaeger clients, and hand-made spans, record RPCs. A CLIENT span no
//! SERVER span answers calls a virtual peer named by its attributes. PRODUCER ->
//! CONSUMER (parent or span link) is an asynchronous call through a broker.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::shared_strings::SharedStrings;
use super::span::{strip_query, HttpAttrs, PeerAttrs, Span, SpanId, SpanKind, SpanStatus, TraceId};
use super::TraceSet;

/// Caller of a root SERVER span.
pub const USER: &str = "user";
/// Caller of a SERVER span whose parent never arrived (or was cut out of a cycle).
pub const UNKNOWN_CALLER: &str = "unknown-caller";
/// Callee of a CLIENT span with no SERVER child and no peer attribute.
pub const UNKNOWN_PEER: &str = "unknown-peer";

/// Which rule made a call (docs/traces.md, "Spans to calls").
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum CallRule {
    /// A SERVER span under a CLIENT span.
    ClientServer,
    /// A SERVER span under a span of another kind (caller: its service), or with no
    /// parent (`user`) or a parent that never arrived (`unknown-caller`).
    ServerOnly,
    /// A span without a kind (or INTERNAL) under a span of another service.
    KindlessPair,
    /// A CLIENT or PRODUCER span nobody answered (or a kind-less span naming its
    /// `peer.service` whose children all stay in its service): a virtual callee.
    Virtual,
    /// A CONSUMER span: fed by its PRODUCER (parent or span link), else by the broker.
    ProducerConsumer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum SpanCallKind {
    /// Request/response (HTTP, gRPC, database...): the caller waits.
    Sync,
    /// PRODUCER -> CONSUMER through a broker: the caller does not wait.
    Async,
}

/// One call on a link `caller -> callee`, seen from the client span, the server span,
/// or both.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SpanCall {
    pub trace_id: TraceId,
    /// CLIENT (or PRODUCER) span; `None` when the caller is `user`, unknown, or did not
    /// record a client span.
    pub client_span_id: Option<SpanId>,
    /// SERVER (or CONSUMER) span; `None` for a virtual callee.
    pub server_span_id: Option<SpanId>,
    /// The parent id the SERVER span names: the span id the request's traceparent
    /// carried, even when the caller exported no span (what a capture join needs).
    pub server_parent_span_id: Option<SpanId>,
    /// The caller's TCP port as the SERVER span recorded it (`client.port`,
    /// `network.peer.port`, `net.peer.port`).
    pub client_port: Option<u16>,
    pub caller: Arc<str>,
    pub callee: Arc<str>,
    pub kind: SpanCallKind,
    /// The callee is named by the client span's attributes (`peer.service`,
    /// `server.address`, ...), not by a span of its own.
    pub virtual_callee: bool,
    /// The broker of an async call (`messaging.system`, the peer of the producer).
    pub broker: Option<Arc<str>>,
    /// Span name (the server's if there is one).
    pub name: Arc<str>,
    pub method: Option<Arc<str>>,
    pub route: Option<Arc<str>>,
    /// Path without query string.
    pub path: Option<Arc<str>>,
    pub status_code: Option<u16>,
    /// A span of the call has ERROR status, or the status code is 5xx.
    pub error: bool,
    pub client_start_ns: Option<u64>,
    pub client_end_ns: Option<u64>,
    pub server_start_ns: Option<u64>,
    pub server_end_ns: Option<u64>,
    pub request_body_size: Option<u64>,
    pub response_body_size: Option<u64>,
    pub protocol_version: Option<Arc<str>>,
    pub rpc_system: Option<Arc<str>>,
    /// `rpc.grpc.status_code`, the server's if it recorded one.
    pub grpc_status: Option<u16>,
    /// `db.system` of the client or server span (a database call).
    pub db_system: Option<Arc<str>>,
    /// `messaging.destination.name` of the producer or consumer (topic, queue, subject).
    pub destination: Option<Arc<str>>,
    pub rule: CallRule,
    /// Server midpoint minus client midpoint when the server span is not inside the
    /// client span (clocks disagree); 0 otherwise.
    pub skew_ns: i64,
    /// Index in `TraceSet::calls` of the call whose SERVER (or CONSUMER) span is the
    /// nearest such ancestor of this call's client span: the call this one is made for.
    pub parent_call: Option<usize>,
}

#[derive(Default)]
struct Tree {
    parent: Vec<Option<usize>>,
    depth: Vec<u32>,
    /// Span id -> index (the SERVER half for a shared id).
    by_id: FxHashMap<SpanId, usize>,
}

/// Buffers of `build_trace`, kept from trace to trace so a trace costs no allocation
/// for them (they hold at most `Limits::max_spans_per_trace` entries each).
#[derive(Default)]
pub(crate) struct Scratch {
    tree: Tree,
    shared_client: Vec<Option<usize>>,
    state: Vec<u8>,
    path: Vec<usize>,
    server_call: Vec<Option<usize>>,
    answered: Vec<bool>,
    walks: Vec<Option<usize>>,
}

/// `v` cleared and filled with `n` copies of `x`, its allocation kept.
fn reset<T: Clone>(v: &mut Vec<T>, n: usize, x: T) {
    v.clear();
    v.resize(n, x);
}

/// Resolves parents: span id -> index, with Zipkin shared spans (a CLIENT and a SERVER
/// with one id) split so the SERVER half is the CLIENT half's child and the id names the
/// SERVER half (the side that continues the trace). The result is `sc.tree`.
fn resolve(spans: &[Span], set: &mut TraceSet, sc: &mut Scratch) {
    let n = spans.len();
    let Scratch {
        tree,
        shared_client,
        state,
        path,
        ..
    } = sc;
    let by_id = &mut tree.by_id;
    if by_id.capacity() > 4 * n.max(64) {
        // After a large trace: clearing (and probing) its big table would cost more
        // than a fresh small one.
        *by_id = FxHashMap::with_capacity_and_hasher(n, Default::default());
    } else {
        by_id.clear();
        by_id.reserve(n);
    }
    reset(shared_client, n, None);
    for (i, s) in spans.iter().enumerate() {
        match by_id.get(&s.span_id).copied() {
            None => {
                by_id.insert(s.span_id, i);
            }
            Some(j) => match (spans[j].kind, s.kind) {
                (SpanKind::Client, SpanKind::Server) if shared_client[i].is_none() => {
                    shared_client[i] = Some(j);
                    by_id.insert(s.span_id, i);
                    set.coverage.shared_spans += 1;
                }
                (SpanKind::Server, SpanKind::Client) if shared_client[j].is_none() => {
                    shared_client[j] = Some(i);
                    set.coverage.shared_spans += 1;
                }
                _ => set.coverage.duplicate_span_ids += 1,
            },
        }
    }
    let parent = &mut tree.parent;
    parent.clear();
    parent.extend((0..n).map(|i| {
        if let Some(c) = shared_client[i] {
            return Some(c);
        }
        let p = spans[i].parent_span_id?;
        match by_id.get(&p) {
            Some(&j) => Some(j),
            None => {
                set.coverage.orphan_spans += 1;
                None
            }
        }
    }));
    // Depths, walking up iteratively; a walk that meets itself is a cycle, cut at the
    // span that closed it.
    const UNSEEN: u8 = 0;
    const ON_PATH: u8 = 1;
    const DONE: u8 = 2;
    reset(state, n, UNSEEN);
    let depth = &mut tree.depth;
    reset(depth, n, 0);
    path.clear();
    for i in 0..n {
        if state[i] == DONE {
            continue;
        }
        let mut cur = i;
        loop {
            state[cur] = ON_PATH;
            path.push(cur);
            match parent[cur] {
                Some(p) if state[p] == UNSEEN => cur = p,
                Some(p) if state[p] == ON_PATH => {
                    parent[cur] = None;
                    set.coverage.cycles_broken += 1;
                    break;
                }
                _ => break,
            }
        }
        while let Some(c) = path.pop() {
            depth[c] = parent[c].map_or(1, |p| depth[p].saturating_add(1));
            state[c] = DONE;
        }
    }
}

/// Builds one trace: statistics into `set`, calls appended to `set.calls`.
pub(crate) fn build_trace(
    mut spans: Vec<Span>,
    set: &mut TraceSet,
    names: &mut SharedStrings,
    sc: &mut Scratch,
) {
    if spans.is_empty() {
        return;
    }
    set.coverage.traces += 1;
    set.coverage.spans_kept += spans.len() as u64;
    resolve(&spans, set, sc);
    let Scratch {
        tree,
        server_call,
        answered,
        walks,
        ..
    } = sc;
    // Counted per trace first: a trace has a handful of services, so a short scan (a
    // pointer test for interned names) beats a sorted-map lookup by string per span.
    let mut services = Tally::default();
    let mut edges = Tally::default();
    for (i, s) in spans.iter().enumerate() {
        services.add((&s.service, &s.service), &mut set.services, |k| {
            Arc::clone(k.0)
        });
        set.max_depth = set.max_depth.max(tree.depth[i]);
        if let Some(p) = tree.parent[i] {
            let ps = &spans[p].service;
            if ps != &s.service {
                edges.add((ps, &s.service), &mut set.edges, |k| {
                    (Arc::clone(k.0), Arc::clone(k.1))
                });
            }
        }
    }
    services.spill(&mut set.services, |k| Arc::clone(k.0));
    edges.spill(&mut set.edges, |k| (Arc::clone(k.0), Arc::clone(k.1)));
    let base = set.calls.len();
    let n = spans.len();
    // Call index of the spans that are the server side (SERVER, CONSUMER) of a call.
    reset(server_call, n, None);
    reset(answered, n, false);
    // The calls go straight into `set.calls` (a `SpanCall` is large: moved once); the span
    // each one walks up from to find its parent call is kept beside them.
    walks.clear();
    let trace_id = spans[0].trace_id;

    // Span links resolve within the trace only: the assembler holds one trace at a time.
    let by_id = &tree.by_id;
    for i in 0..n {
        let parent = tree.parent[i];
        // A kind-less span under a span of another service is the serving side of a call.
        let kindless_call = spans[i].kind == SpanKind::Internal
            && parent.is_some_and(|p| spans[p].service != spans[i].service);
        let own = match spans[i].kind {
            SpanKind::Server | SpanKind::Consumer => Texts::take(&mut spans[i].http),
            SpanKind::Internal if kindless_call => Texts::take(&mut spans[i].http),
            _ => continue,
        };
        let s = &spans[i];
        let (mut c, walk) = match s.kind {
            SpanKind::Server => {
                let (caller, client) = match parent {
                    Some(p) if spans[p].kind == SpanKind::Client => {
                        (Arc::clone(&spans[p].service), Some(p))
                    }
                    Some(p) => (Arc::clone(&spans[p].service), None),
                    None if s.parent_span_id.is_none() => (names.get(USER), None),
                    None => (names.get(UNKNOWN_CALLER), None),
                };
                // The parent answered: a kind-less parent naming `peer.service` is no
                // virtual call when its callee's SERVER span is here.
                if let Some(p) = parent {
                    answered[p] = true;
                }
                let rule = if client.is_some() {
                    CallRule::ClientServer
                } else {
                    CallRule::ServerOnly
                };
                let views = (client.map(|c| &spans[c]), Some(s));
                let c = pair(trace_id, views, own, caller, SpanCallKind::Sync, set, names);
                (CallRule::with(c, rule), client.or(parent))
            }
            SpanKind::Consumer => {
                let producer = parent
                    .filter(|&p| spans[p].kind == SpanKind::Producer)
                    .or_else(|| {
                        s.links
                            .iter()
                            .filter(|l| l.trace_id == trace_id)
                            .filter_map(|l| by_id.get(&l.span_id).copied())
                            .find(|&p| spans[p].kind == SpanKind::Producer)
                    });
                let caller = match (producer, parent) {
                    (Some(p), _) | (None, Some(p)) => Arc::clone(&spans[p].service),
                    (None, None) => {
                        let broker = s.peer.broker_name(names);
                        shared_or(broker.as_ref(), UNKNOWN_CALLER, names)
                    }
                };
                if let Some(p) = producer.or(parent) {
                    answered[p] = true;
                }
                let views = (producer.map(|p| &spans[p]), Some(s));
                let mut c = pair(
                    trace_id,
                    views,
                    own,
                    caller,
                    SpanCallKind::Async,
                    set,
                    names,
                );
                c.broker = match producer {
                    Some(p) => spans[p].peer.broker_name(names),
                    None => None,
                }
                .or_else(|| s.peer.broker_name(names));
                (
                    CallRule::with(c, CallRule::ProducerConsumer),
                    producer.or(parent),
                )
            }
            _ => {
                // Kind-less: the caller's span is the client view when it is the caller's
                // own work (a kind-less or CLIENT span), not when it is the caller
                // serving or consuming (its whole window) or sending a message.
                let Some(p) = parent else { continue };
                let caller_kind = spans[p].kind;
                answered[p] = true;
                let client = matches!(caller_kind, SpanKind::Internal | SpanKind::Client)
                    .then_some(&spans[p]);
                let kind = if caller_kind == SpanKind::Producer {
                    SpanCallKind::Async
                } else {
                    SpanCallKind::Sync
                };
                let caller = Arc::clone(&spans[p].service);
                let mut c = pair(trace_id, (client, Some(s)), own, caller, kind, set, names);
                if kind == SpanCallKind::Async {
                    c.broker = spans[p].peer.broker_name(names);
                }
                (CallRule::with(c, CallRule::KindlessPair), Some(p))
            }
        };
        c.parent_call = None;
        server_call[i] = Some(set.calls.len());
        set.calls.push(c);
        walks.push(walk);
    }
    // CLIENT and PRODUCER spans nobody answered, and kind-less spans that name their
    // `peer.service` (Zipkin's linker takes those as client spans): virtual peers.
    for i in 0..n {
        let kind = match spans[i].kind {
            SpanKind::Client => SpanCallKind::Sync,
            SpanKind::Producer => SpanCallKind::Async,
            SpanKind::Internal if spans[i].peer.peer_service.is_some() => SpanCallKind::Sync,
            _ => continue,
        };
        if answered[i] {
            continue;
        }
        let own = Texts::take(&mut spans[i].http);
        let s = &spans[i];
        let callee = if kind == SpanCallKind::Async {
            s.peer.broker_name(names)
        } else {
            s.peer.node_name(names)
        };
        let caller = Arc::clone(&s.service);
        let mut c = pair(trace_id, (Some(s), None), own, caller, kind, set, names);
        c.callee = shared_or(callee.as_ref(), UNKNOWN_PEER, names);
        c.virtual_callee = true;
        if kind == SpanCallKind::Async {
            c.broker = callee;
        }
        set.calls.push(CallRule::with(c, CallRule::Virtual));
        walks.push(Some(i));
    }
    for (k, &walk) in walks.iter().enumerate() {
        let me = base + k;
        let parent_call = ancestor_call(walk, &tree.parent, server_call, me);
        let c = &mut set.calls[me];
        c.parent_call = parent_call;
        let cov = &mut set.coverage;
        cov.calls += 1;
        if c.kind == SpanCallKind::Async {
            cov.calls_async += 1;
        }
        *match c.rule {
            CallRule::ClientServer => &mut cov.calls_client_server,
            CallRule::ServerOnly => &mut cov.calls_server_only,
            CallRule::KindlessPair => &mut cov.calls_kindless,
            CallRule::Virtual => &mut cov.calls_virtual,
            CallRule::ProducerConsumer => &mut cov.calls_producer_consumer,
        } += 1;
    }
}

impl CallRule {
    /// `c` made by this rule.
    fn with(mut c: SpanCall, rule: CallRule) -> SpanCall {
        c.rule = rule;
        c
    }
}

/// A span's shared text, else the shared copy of `default`.
fn shared_or(v: Option<&Arc<str>>, default: &str, names: &mut SharedStrings) -> Arc<str> {
    v.map_or_else(|| names.get(default), Arc::clone)
}

/// Counts of one trace by a pair of names (a service is its own pair), before they go
/// to a `TraceSet` map. Spilled at `Tally::CAP` entries, so a trace of many services
/// costs no more than a map lookup per span.
#[derive(Default)]
struct Tally<'a>(Vec<(NamePair<'a>, u64)>);

type NamePair<'a> = (&'a Arc<str>, &'a Arc<str>);

impl<'a> Tally<'a> {
    const CAP: usize = 32;

    fn add<K: Ord>(
        &mut self,
        key: NamePair<'a>,
        map: &mut BTreeMap<K, u64>,
        owned: impl Fn((&Arc<str>, &Arc<str>)) -> K,
    ) {
        // `==` on `Arc<str>` tests the pointer before the text.
        if let Some(e) = self.0.iter_mut().find(|e| e.0 == key) {
            e.1 += 1;
            return;
        }
        if self.0.len() >= Self::CAP {
            self.spill(map, &owned);
        }
        self.0.push((key, 1));
    }

    fn spill<K: Ord>(
        &mut self,
        map: &mut BTreeMap<K, u64>,
        owned: impl Fn((&Arc<str>, &Arc<str>)) -> K,
    ) {
        for (k, n) in self.0.drain(..) {
            *map.entry(owned(k)).or_default() += n;
        }
    }
}

/// Nearest ancestor (from `start` up, `start` included) that is the server side of a call
/// other than `me`. Bounded by the number of spans (cycles were cut in `resolve`).
fn ancestor_call(
    start: Option<usize>,
    parent: &[Option<usize>],
    server_call: &[Option<usize>],
    me: usize,
) -> Option<usize> {
    let mut cur = start;
    for _ in 0..parent.len() {
        let a = cur?;
        if let Some(k) = server_call[a].filter(|&k| k != me) {
            return Some(k);
        }
        cur = parent[a];
    }
    None
}

/// The texts of a call, moved out of the one span of it that no other call reads (its
/// server side, or a client nobody answered): no reference count changes for them.
struct Texts {
    method: Option<Arc<str>>,
    route: Option<Arc<str>>,
    path: Option<Arc<str>>,
    protocol_version: Option<Arc<str>>,
    rpc_system: Option<Arc<str>>,
}

impl Texts {
    fn take(h: &mut HttpAttrs) -> Texts {
        Texts {
            method: h.method.take(),
            route: h.route.take(),
            path: h.path.take(),
            protocol_version: h.protocol_version.take(),
            rpc_system: h.rpc_system.take(),
        }
    }
}

/// A call from a client view, a server view, or both (`views`); `own` are the texts of
/// the server span, else of the client span.
fn pair(
    trace_id: TraceId,
    (client, server): (Option<&Span>, Option<&Span>),
    own: Texts,
    caller: Arc<str>,
    kind: SpanCallKind,
    set: &mut TraceSet,
    names: &mut SharedStrings,
) -> SpanCall {
    // The server's view first (it knows its route), then the client's. The texts are
    // the spans' shared copies (interned when read), so a call allocates none.
    let other = server.and(client);
    let pick = |v: Option<Arc<str>>, f: fn(&HttpAttrs) -> Option<&Arc<str>>| {
        v.or_else(|| other.and_then(|s| f(&s.http)).cloned())
    };
    // Old instrumentations name spans after the full URL: the query goes.
    let name = match server.or(client) {
        None => names.get(""),
        Some(s) => match strip_query(&s.name) {
            n if n.len() == s.name.len() => Arc::clone(&s.name),
            n => names.get(n),
        },
    };
    let pick_n =
        |f: &dyn Fn(&Span) -> Option<u64>| server.and_then(f).or_else(|| client.and_then(f));
    let status_code = server
        .and_then(|s| s.http.status_code)
        .or_else(|| client.and_then(|s| s.http.status_code));
    let grpc_status = server
        .and_then(|s| s.http.grpc_status)
        .or_else(|| client.and_then(|s| s.http.grpc_status));
    let peer = |f: &dyn Fn(&PeerAttrs) -> Option<&Arc<str>>| {
        server
            .and_then(|s| f(&s.peer))
            .or_else(|| client.and_then(|s| f(&s.peer)))
            .cloned()
    };
    let failed = [client, server]
        .into_iter()
        .flatten()
        .any(|s| s.status == SpanStatus::Error);
    let method = pick(own.method, |h| h.method.as_ref());
    let path = pick(own.path, |h| h.path.as_ref());
    let destination = peer(&|p| p.messaging_destination.as_ref());
    // A call that is not HTTP (RPC, messaging, a kind-less pair) is routed by its
    // destination, else its span name (`shop.Catalog/GetItem` for gRPC): the route the
    // chains count N+1 calls and fan-out by.
    let route = pick(own.route, |h| h.route.as_ref()).or_else(|| {
        (method.is_none() && path.is_none() && !name.is_empty())
            .then(|| destination.clone().unwrap_or_else(|| Arc::clone(&name)))
    });
    let mut skew_ns = 0i64;
    // A consumer runs after its producer ended: that is no clock skew.
    if let (Some(c), Some(s), SpanCallKind::Sync) = (client, server, kind) {
        if s.start_ns < c.start_ns || s.end_ns > c.end_ns {
            set.coverage.clock_skew += 1;
            let mid = |x: &Span| (i128::from(x.start_ns) + i128::from(x.end_ns)) / 2;
            skew_ns = i64::try_from(mid(s) - mid(c)).unwrap_or(i64::MAX);
        }
    }
    SpanCall {
        trace_id,
        client_span_id: client.map(|s| s.span_id),
        server_span_id: server.map(|s| s.span_id),
        server_parent_span_id: server.and_then(|s| s.parent_span_id),
        client_port: server.and_then(|s| s.peer.client_port.or(s.peer.peer_port)),
        caller,
        callee: server
            .or(client)
            .map_or_else(|| Arc::from(UNKNOWN_PEER), |s| Arc::clone(&s.service)),
        kind,
        virtual_callee: false,
        broker: None,
        name,
        method,
        route,
        path,
        status_code,
        error: failed
            || status_code.is_some_and(|c| c >= 500)
            || grpc_status.is_some_and(|g| g != 0),
        client_start_ns: client.map(|s| s.start_ns),
        client_end_ns: client.map(|s| s.end_ns),
        server_start_ns: server.map(|s| s.start_ns),
        server_end_ns: server.map(|s| s.end_ns),
        request_body_size: pick_n(&|s| s.http.request_body_size),
        response_body_size: pick_n(&|s| s.http.response_body_size),
        protocol_version: pick(own.protocol_version, |h| h.protocol_version.as_ref()),
        rpc_system: pick(own.rpc_system, |h| h.rpc_system.as_ref()),
        grpc_status,
        db_system: peer(&|p| p.db_system.as_ref()),
        destination,
        rule: CallRule::ServerOnly,
        skew_ns,
        parent_call: None,
    }
}
