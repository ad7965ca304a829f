//! Links measured from trace calls (spans), for calls no capture showed, and the traces'
//! view added to the captured links.
//!
//! The same [`Link`] record as a capture gives, filled with what spans carry: requests,
//! rates, latency, status, body sizes (when the instrumentation records them), protocol
//! and routes. What only the wire shows (connections, handshakes, header bytes, content
//! types) stays `None` here and is written as null (see [`Evidence::CAPTURE_ONLY`]).
//! Plain Rust rather than polars: the calls are already owned rows in memory, and the
//! few figures per link are simpler to read as a fold than as a frame.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::samples::Samples;
use super::{
    sorted_counts, Bytes, BytesPerRequest, Evidence, HttpMeasures, Link, LinkKey, LinkQuality,
    LinkSet, Rate, Route, StatusMix,
};
use crate::analysis::identity::{NameSource, Naming};
use crate::analysis::join::Join;
use crate::ingest::http::route::template;
use crate::ingest::traces::{SpanCall, SpanCallKind, TraceSet};
use crate::tables::Tables;

/// Links made from trace calls.
#[derive(Clone, Debug, Default)]
pub struct TracedLinks {
    pub links: Vec<Link>,
    /// First call start to last call end over every traced call, in seconds.
    pub seconds: Option<f64>,
    /// Traced calls per link, all of them (also those a capture showed).
    pub calls_per_link: BTreeMap<LinkKey, u64>,
    /// Async calls and the most used broker per link.
    pub async_per_link: BTreeMap<LinkKey, (u64, Option<String>)>,
}

/// The figures of one group of calls (a link or one of its routes).
#[derive(Default)]
struct Acc {
    requests: u64,
    /// Server-side wait (server span), else the client span: the wire's request-last to
    /// response-first is closest to the server's own span.
    wait_ms: Samples,
    /// Client span (what the caller waited), else the server span.
    total_ms: Samples,
    seconds: BTreeMap<i64, u64>,
    status: StatusMix,
    req_body: (u64, u64),
    resp_body: (u64, u64),
    versions: BTreeMap<String, u64>,
}

impl Acc {
    fn add(&mut self, c: &SpanCall) {
        self.requests += 1;
        let span = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) if b >= a => Some((b - a) as f64 / 1e6),
            _ => None,
        };
        let server = span(c.server_start_ns, c.server_end_ns);
        let client = span(c.client_start_ns, c.client_end_ns);
        if let Some(w) = server.or(client) {
            self.wait_ms.add(w);
        }
        if let Some(t) = client.or(server) {
            self.total_ms.add(t);
        }
        if let Some(start) = c.client_start_ns.or(c.server_start_ns) {
            *self
                .seconds
                .entry((start / 1_000_000_000) as i64)
                .or_default() += 1;
        }
        let s = &mut self.status;
        // gRPC's status in HTTP's classes, as grpc-gateway maps them.
        let code = c.status_code.or(c.grpc_status.map(grpc_as_http));
        match code {
            Some(100..=199) => s.s1xx += 1,
            Some(200..=299) => s.s2xx += 1,
            Some(300..=399) => s.s3xx += 1,
            Some(400..=499) => s.s4xx += 1,
            Some(500..=599) => s.s5xx += 1,
            _ => {}
        }
        s.s429 += u64::from(code == Some(429));
        s.s503 += u64::from(code == Some(503));
        if c.error {
            *s.failed.get_or_insert(0) += 1;
            s.failed_without_status += u64::from(code.is_none());
        } else {
            s.failed.get_or_insert(0);
        }
        if let Some(b) = c.request_body_size {
            self.req_body.0 += b;
            self.req_body.1 += 1;
        }
        if let Some(b) = c.response_body_size {
            self.resp_body.0 += b;
            self.resp_body.1 += 1;
        }
        if let Some(v) = version_of(c) {
            match self.versions.get_mut(v.as_ref()) {
                Some(n) => *n += 1,
                None => {
                    self.versions.insert(v.into_owned(), 1);
                }
            }
        }
    }

    fn measures(mut self, seconds: Option<f64>) -> HttpMeasures {
        let r = self.requests;
        // Sums only over the calls whose spans recorded a size: a sum that covers some
        // calls would read as a per-request figure that is too low.
        let sum = |(total, n): (u64, u64)| (n > 0).then_some(total);
        let per = |(total, n): (u64, u64)| (n > 0).then(|| total as f64 / n as f64);
        HttpMeasures {
            requests: r,
            requests_per_s: Rate {
                mean: seconds.map(|s| r as f64 / s),
                peak: self.seconds.values().max().map(|&p| p as f64),
            },
            latency_ms: self.wait_ms.percentiles(),
            latency_total_ms: self.total_ms.percentiles(),
            bytes: Bytes {
                request_headers: None,
                request_bodies: sum(self.req_body),
                response_headers: None,
                response_bodies: sum(self.resp_body),
            },
            bytes_per_request: BytesPerRequest {
                request_headers: None,
                request_bodies: per(self.req_body),
                response_headers: None,
                response_bodies: per(self.resp_body),
            },
            header_share: None,
            json_share: None,
            request_content_types: Vec::new(),
            response_content_types: Vec::new(),
            status: self.status,
            new_connection_share: None,
            http_versions: sorted_counts(self.versions, 8),
            incomplete: 0,
            json_body_bytes: 0,
            json_identity_body_bytes: 0,
            forwarded_requests: 0,
            retries: Default::default(),
            periodic_failures: Vec::new(),
            header_replay: Default::default(),
            // Spans show no TCP segments: links.json writes these as null (CAPTURE_ONLY).
            stalled_requests: 0,
            stall_ms: Default::default(),
            slow_start_restarts: 0,
            slow_start_restarted_responses: 0,
            slow_start_restart_ms_per_request: None,
            request_stalls: Default::default(),
            response_stalls: Default::default(),
            http2: None,
        }
    }
}

/// The HTTP status grpc-gateway answers for a gRPC status code (its
/// `runtime.HTTPStatusFromCode`): OK 200, CANCELLED 499, INVALID_ARGUMENT,
/// FAILED_PRECONDITION and OUT_OF_RANGE 400, NOT_FOUND 404, ALREADY_EXISTS and ABORTED
/// 409, PERMISSION_DENIED 403, UNAUTHENTICATED 401, RESOURCE_EXHAUSTED 429,
/// UNIMPLEMENTED 501, UNAVAILABLE 503, DEADLINE_EXCEEDED 504, UNKNOWN, INTERNAL,
/// DATA_LOSS and any other 500.
pub fn grpc_as_http(code: u16) -> u16 {
    match code {
        0 => 200,
        1 => 499,
        3 | 9 | 11 => 400,
        5 => 404,
        6 | 10 => 409,
        7 => 403,
        16 => 401,
        8 => 429,
        12 => 501,
        14 => 503,
        4 => 504,
        _ => 500,
    }
}

/// `HTTP/1.1`, `HTTP/2` (as the capture writes versions), the RPC system (`gRPC`,
/// `thrift`, `apache_dubbo`, ...), else the database system of a database call.
fn version_of(c: &SpanCall) -> Option<Cow<'_, str>> {
    if let Some(rpc) = c.rpc_system.as_deref() {
        return Some(if rpc.eq_ignore_ascii_case("grpc") {
            "gRPC".into()
        } else {
            rpc.into()
        });
    }
    let Some(v) = c.protocol_version.as_deref() else {
        return c.db_system.as_deref().map(Cow::from);
    };
    Some(match v {
        "1.0" => "HTTP/1.0".into(),
        "1.1" => "HTTP/1.1".into(),
        "2" | "2.0" => "HTTP/2".into(),
        "3" | "3.0" => "HTTP/3".into(),
        other => format!("HTTP/{other}").into(),
    })
}

/// The route key of a call: `http.route` when the server recorded it, else the path
/// templated as captures template it, else (RPC, database) the span name.
pub(crate) fn route_of(c: &SpanCall) -> Option<String> {
    if let Some(r) = c.route.as_deref() {
        return Some(normalise_route(r));
    }
    if let Some(p) = c.path.as_deref() {
        return Some(template(p));
    }
    let name = c.name.as_ref();
    if name.is_empty() {
        None
    } else if name.starts_with('/') {
        Some(template(name))
    } else {
        Some(name.to_owned())
    }
}

/// A framework's route pattern in the captures' form: every parameter segment
/// (`<int:uid>` Flask, `{id}` OpenAPI/Spring, `:id` Express/Gin, `*` wildcards) becomes
/// `{id}`, so one route has one name whatever the input.
pub fn normalise_route(route: &str) -> String {
    let path = route.split(['?', '#']).next().unwrap_or("");
    path.split('/')
        .map(|seg| {
            let param = (seg.starts_with('<') && seg.ends_with('>'))
                || (seg.starts_with('{') && seg.ends_with('}'))
                || (seg.starts_with(':') && seg.len() > 1)
                || seg == "*";
            if param {
                "{id}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Measures the links of the trace calls for which `shown_by_capture` is false (a
/// capture measured those better); `calls_per_link` counts every call.
pub fn measure_traced(
    calls: &[SpanCall],
    shown_by_capture: &dyn Fn(usize) -> bool,
    top_routes: usize,
) -> TracedLinks {
    let mut b = TracedBuilder::default();
    for (i, c) in calls.iter().enumerate() {
        b.add(c, shown_by_capture(i));
    }
    b.finish(top_routes)
}

/// A link by the calls' shared names (no `String` per call).
type ArcKey = (Arc<str>, Arc<str>);
/// (method, route) of a route, shared.
type ArcRoute = (Option<Arc<str>>, Option<Arc<str>>);

/// Distinct route inputs whose route key is remembered (paths carry ids, so they are
/// bounded); past it the key is computed per call.
const MAX_ROUTE_MEMO: usize = 1 << 16;

/// `measure_traced` one call at a time, so the calls need not be held: memory grows with
/// links, routes and seconds covered, not with calls.
#[derive(Default)]
pub struct TracedBuilder {
    first: u64,
    last: u64,
    any_time: bool,
    links: FxHashMap<ArcKey, Acc>,
    routes: FxHashMap<ArcKey, FxHashMap<ArcRoute, Acc>>,
    calls_per_link: FxHashMap<ArcKey, u64>,
    async_per_link: FxHashMap<ArcKey, u64>,
    brokers: FxHashMap<ArcKey, BTreeMap<String, u64>>,
    /// `route_of` by the span text it came from (route, path or name).
    route_memo: FxHashMap<(u8, Arc<str>), Option<Arc<str>>>,
}

impl TracedBuilder {
    /// One call; `shown_by_capture` counts it without measuring it.
    pub fn add(&mut self, c: &SpanCall, shown_by_capture: bool) {
        for t in [
            c.client_start_ns,
            c.server_start_ns,
            c.client_end_ns,
            c.server_end_ns,
        ]
        .into_iter()
        .flatten()
        {
            if !self.any_time {
                (self.first, self.last, self.any_time) = (t, t, true);
            }
            self.first = self.first.min(t);
            self.last = self.last.max(t);
        }
        let key: ArcKey = (Arc::clone(&c.caller), Arc::clone(&c.callee));
        *self.calls_per_link.entry(key.clone()).or_default() += 1;
        if c.kind == SpanCallKind::Async {
            *self.async_per_link.entry(key.clone()).or_default() += 1;
            if let Some(b) = &c.broker {
                let per = self.brokers.entry(key.clone()).or_default();
                match per.get_mut(b.as_ref()) {
                    Some(n) => *n += 1,
                    None => {
                        per.insert(b.to_string(), 1);
                    }
                }
            }
        }
        if shown_by_capture {
            return;
        }
        self.links.entry(key.clone()).or_default().add(c);
        let route = self.route_key(c);
        self.routes
            .entry(key)
            .or_default()
            .entry((c.method.clone(), route))
            .or_default()
            .add(c);
    }

    /// `route_of`, remembered by its input.
    fn route_key(&mut self, c: &SpanCall) -> Option<Arc<str>> {
        let input = match (&c.route, &c.path) {
            (Some(r), _) => (0, r),
            (None, Some(p)) => (1, p),
            (None, None) => (2, &c.name),
        };
        if let Some(r) = self.route_memo.get(&(input.0, Arc::clone(input.1))) {
            return r.clone();
        }
        let r: Option<Arc<str>> = route_of(c).map(Arc::from);
        if self.route_memo.len() < MAX_ROUTE_MEMO {
            self.route_memo
                .insert((input.0, Arc::clone(input.1)), r.clone());
        }
        r
    }

    pub fn finish(self, top_routes: usize) -> TracedLinks {
        let mut out = TracedLinks {
            seconds: (self.last > self.first).then(|| (self.last - self.first) as f64 / 1e9),
            ..Default::default()
        };
        let owned = |k: &ArcKey| -> LinkKey { (k.0.to_string(), k.1.to_string()) };
        let mut brokers = self.brokers;
        out.calls_per_link = (self.calls_per_link.iter())
            .map(|(k, &n)| (owned(k), n))
            .collect();
        out.async_per_link = (self.async_per_link.iter())
            .map(|(k, &n)| {
                let broker = (brokers.remove(k))
                    .and_then(|per| sorted_counts(per, 1).pop().map(|c| c.value));
                (owned(k), (n, broker))
            })
            .collect();
        let mut routes = self.routes;
        // Sorted by link, as the links are listed.
        let mut links: Vec<(LinkKey, ArcKey, Acc)> = (self.links.into_iter())
            .map(|(k, acc)| (owned(&k), k, acc))
            .collect();
        links.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, arc_key, acc) in links {
            let mut link_routes: Vec<Route> = routes
                .remove(&arc_key)
                .unwrap_or_default()
                .into_iter()
                .map(|((method, route), acc)| Route {
                    method: method.map(|m| m.to_string()),
                    route: route.map(|r| r.to_string()),
                    http: acc.measures(out.seconds),
                })
                .collect();
            // Listed by (method, route) before the busiest are kept, as the sorted map
            // listed them: the order of equally busy routes does not depend on hashing.
            link_routes.sort_by(|a, b| (&a.method, &a.route).cmp(&(&b.method, &b.route)));
            let routes_not_listed = super::keep_busiest_routes(&mut link_routes, top_routes);
            let acc_has_method = link_routes.iter().any(|r| r.method.is_some());
            let http = acc.measures(out.seconds);
            let calls = out.calls_per_link.get(&key).copied().unwrap_or(0);
            let (async_calls, broker) = out.async_per_link.get(&key).cloned().unwrap_or_default();
            let protocol = if async_calls * 2 > calls {
                broker.clone().unwrap_or_else(|| "async".into())
            } else {
                // A client span may not record the version: an HTTP method still says HTTP.
                match http.http_versions.first() {
                    Some(v) => v.value.to_ascii_lowercase(),
                    None if acc_has_method => "http".into(),
                    None => "unknown".into(),
                }
            };
            out.links.push(Link {
                client: key.0.clone(),
                client_source: NameSource::Traces,
                server: key.1.clone(),
                server_source: NameSource::Traces,
                server_endpoints: Vec::new(),
                client_addresses: Vec::new(),
                protocol,
                connections: 0,
                tcp_handshakes: 0,
                tls_handshakes: 0,
                requests_per_connection: None,
                requests_per_connection_dist: Default::default(),
                handshake_rtt_ms: Default::default(),
                tls_versions: Vec::new(),
                tls_resumed: 0,
                tls_handshake_ms: Default::default(),
                tls_server_names: Vec::new(),
                tls_alpn_offered: Vec::new(),
                tls_estimate: None,
                resets: 0,
                retransmitted_bytes: 0,
                zero_window_events: None,
                retransmission_timeouts: None,
                rto_wait_ms: None,
                client_zero_window_ms: None,
                server_zero_window_ms: None,
                quality: LinkQuality::default(),
                http: Some(http),
                routes_not_listed,
                routes: link_routes,
                evidence: Evidence::Traces,
                traced_calls: Some(calls),
                async_share: (calls > 0).then(|| async_calls as f64 / calls as f64),
                broker,
            });
        }
        out
    }
}

/// Adds the trace files' view to the links: a captured link is `both` when some of its
/// exchanges were joined to traced calls (its `traced_calls` counts them, whatever the
/// spans call the endpoints); the calls no capture showed make links of their own
/// (`traces`), measured from the spans.
pub fn add_traces(
    set: &mut LinkSet,
    traced_set: &TraceSet,
    joined: Option<(&Join, &Tables, &Naming)>,
    top_routes: usize,
) -> polars::prelude::PolarsResult<()> {
    let matched = joined.map(|(j, _, _)| j.call_matched.as_slice());
    let shown = |i: usize| matched.is_some_and(|m| m.get(i).copied().unwrap_or(false));
    let traced = measure_traced(&traced_set.calls, &shown, top_routes);
    let mut joined_per_link: BTreeMap<LinkKey, (u64, u64)> = BTreeMap::new();
    if let Some((j, tables, naming)) = joined {
        for ((client, server), call) in j.matched_endpoints(&tables.exchanges)? {
            let key = (
                naming.client(client).name,
                naming.server(server.0, server.1).name,
            );
            let e = joined_per_link.entry(key).or_default();
            e.0 += 1;
            let c = &traced_set.calls[call as usize];
            e.1 += u64::from(c.kind == SpanCallKind::Async);
        }
    }
    add_traced(set, traced, &joined_per_link);
    Ok(())
}

/// Adds links measured from trace calls to `set`; `joined_per_link` counts, per captured
/// link, the exchanges joined to traced calls and how many of those were async.
pub fn add_traced(
    set: &mut LinkSet,
    traced: TracedLinks,
    joined_per_link: &BTreeMap<LinkKey, (u64, u64)>,
) {
    for link in &mut set.links {
        let key = (link.client.clone(), link.server.clone());
        let (n, async_calls) = joined_per_link.get(&key).copied().unwrap_or_default();
        link.traced_calls = Some(n);
        if n > 0 {
            link.evidence = Evidence::Both;
            link.async_share = Some(async_calls as f64 / n as f64);
            link.broker = traced.async_per_link.get(&key).and_then(|a| a.1.clone());
        }
    }
    for link in traced.links {
        match set
            .links
            .iter_mut()
            .find(|l| l.client == link.client && l.server == link.server)
        {
            // Calls the capture missed on a link it showed: counted, not measured twice.
            Some(l) => {
                l.evidence = Evidence::Both;
                l.traced_calls = Some(l.traced_calls.unwrap_or(0) + link.traced_calls.unwrap_or(0));
            }
            None => set.links.push(link),
        }
    }
    if set.capture_seconds.is_none() {
        set.capture_seconds = traced.seconds;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framework_route_patterns_take_the_captures_form() {
        assert_eq!(normalise_route("/users/<int:uid>"), "/users/{id}");
        assert_eq!(
            normalise_route("/orders/{orderId}/items"),
            "/orders/{id}/items"
        );
        assert_eq!(normalise_route("/a/:id/b"), "/a/{id}/b");
        assert_eq!(normalise_route("/static/*"), "/static/{id}");
        assert_eq!(normalise_route("/health"), "/health");
        assert_eq!(normalise_route("/q?token=secret"), "/q");
    }
}
