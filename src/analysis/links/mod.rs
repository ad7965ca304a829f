//! Links: one row per (client service, server service), measured from the exchanges and
//! connections tables.
//!
//! `measure` names both tables' endpoints (see `identity`), folds their rows a block at
//! a time into figures per link and per route (`fold`), and returns owned [`Link`]
//! records; `add_traces` adds what the trace files
//! show (calls per link, links no capture showed). A `Link` holds measures only: what
//! they would gain is the assessment's (`crate::analysis::assess`).

mod fold;
mod frame;
#[cfg(test)]
mod group_by_reference;
pub use tls_estimate::TlsEstimateMeasures;
mod measure;
mod samples;
mod tls_estimate;
mod traced;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::analysis::identity::NameSource;

pub use frame::{exchange_measures, DERIVED_EXCHANGE_COLUMNS, MEASURED_STATUS};
pub use measure::{exchange_durations, measure, ExchangeDuration, LinkSet};
// The measures made from group-bys another engine ran (the fleet's DataFusion).
#[cfg(feature = "fleet")]
pub(crate) use fold::http::COUNTED as HTTP_COUNTED;
#[cfg(feature = "fleet")]
pub(crate) use frame::{periodic_failure, PeriodicByRoute};
#[cfg(feature = "fleet")]
pub(crate) use measure::{
    assemble, connection_measures, http_measures, Aggregates, ConnCounts, CountsByKey, HttpCounts,
    Key, LinkParts, Members, CONN_INTS, HTTP_INTS,
};
#[cfg(feature = "fleet")]
pub(crate) use tls_estimate::TlsEstimateSums;
pub use traced::{
    add_traced, add_traces, measure_traced, normalise_route, TracedBuilder, TracedLinks,
};

/// p50 / p95 / p99 of a duration, in milliseconds; `None` where nothing was measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

/// p50 / p95 of the TCP handshake round trip, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct RttPercentiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
}

/// A per-request cost in milliseconds: mean, p50, p95 and p99 over every request of the
/// group (requests that paid nothing count as 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct PerRequestMs {
    pub mean: Option<f64>,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

/// The messages of one side that stalled: their sender wrote part of the message, then
/// waited for the peer's ACK before sending the rest (Nagle's algorithm against a delayed
/// ACK; `req_stall_ns` in docs/tables.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct SideStalls {
    /// Messages that stalled.
    pub stalled: u64,
    /// Their (longest) stall, ms; `None` when none stalled.
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
}

/// Requests per second: over the whole capture, and in the busiest 1 s bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Rate {
    pub mean: Option<f64>,
    pub peak: Option<f64>,
}

/// Header and body bytes on the wire. `None` when the HTTP was not visible (TLS).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Bytes {
    pub request_headers: Option<u64>,
    pub request_bodies: Option<u64>,
    pub response_headers: Option<u64>,
    pub response_bodies: Option<u64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct BytesPerRequest {
    pub request_headers: Option<f64>,
    pub request_bodies: Option<f64>,
    pub response_headers: Option<f64>,
    pub response_bodies: Option<f64>,
}

/// Final status codes by class, with the codes that signal overload called out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StatusMix {
    #[serde(rename = "1xx")]
    pub s1xx: u64,
    #[serde(rename = "2xx")]
    pub s2xx: u64,
    #[serde(rename = "3xx")]
    pub s3xx: u64,
    #[serde(rename = "4xx")]
    pub s4xx: u64,
    #[serde(rename = "5xx")]
    pub s5xx: u64,
    #[serde(rename = "429")]
    pub s429: u64,
    #[serde(rename = "503")]
    pub s503: u64,
    /// Requests whose response the capture never showed.
    pub no_response: u64,
    /// Trace files only (absent from links.json otherwise): calls a span marked failed
    /// (ERROR status, an `error` tag, a 5xx, a gRPC status other than OK), the
    /// servicegraph connector's `failed` count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<u64>,
    /// Of those, the calls that carry neither an HTTP status nor a gRPC status (a Thrift
    /// exception, a failed span of another RPC): the advice counts them as server errors,
    /// as it counts 5xx.
    #[serde(skip)]
    pub failed_without_status: u64,
}

/// A value and how many requests (or, for TLS names, connections) carried it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Count {
    pub value: String,
    pub count: u64,
}

/// What the HTTP exchanges of a link (or of one route on it) show.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HttpMeasures {
    pub requests: u64,
    pub requests_per_s: Rate,
    /// Request last byte -> response first byte: the wait the caller sees.
    pub latency_ms: Percentiles,
    /// Request first byte -> response last byte: the whole exchange.
    pub latency_total_ms: Percentiles,
    pub bytes: Bytes,
    pub bytes_per_request: BytesPerRequest,
    /// Header bytes / all HTTP bytes (headers and bodies, both directions).
    pub header_share: Option<f64>,
    /// Requests whose request or response body is JSON (`application/json`, `+json`).
    pub json_share: Option<f64>,
    pub request_content_types: Vec<Count>,
    pub response_content_types: Vec<Count>,
    pub status: StatusMix,
    /// Share of requests that were the first on a connection whose handshake was seen:
    /// they paid a new TCP handshake.
    pub new_connection_share: Option<f64>,
    pub http_versions: Vec<Count>,
    /// Exchanges not seen whole (gap, no response, truncated, response only).
    pub incomplete: u64,
    /// Body bytes (both directions) whose media type is JSON.
    pub json_body_bytes: u64,
    /// The part of those sent without a content coding (what gzip could still shrink).
    pub json_identity_body_bytes: u64,
    /// Requests that carried forwarding headers (`X-Forwarded-For`, `X-Real-IP`,
    /// `Forwarded`, `Via`): the client forwards them for its own clients, as a proxy.
    pub forwarded_requests: u64,
    /// What the client already does about failures.
    pub retries: Retries,
    /// Failures that recur every n-th request of a route (for a link: its listed routes').
    pub periodic_failures: Vec<PeriodicFailure>,
    /// The HTTP/2 and gRPC header replay over the exchanges whose header blocks were both
    /// seen whole.
    pub header_replay: HeaderReplay,
    /// Requests whose request or response stalled (see [`SideStalls`]).
    pub stalled_requests: u64,
    /// Time lost to stalls per request (the request's and the response's added), over
    /// all requests: the mean is what the stalls cost each request.
    pub stall_ms: PerRequestMs,
    /// Messages sent after their sender idled past the minimum RTO, too large for the
    /// restarted congestion window, whose sending took the extra round trips (see
    /// `frame::slow_start_restarts`).
    pub slow_start_restarts: u64,
    /// Of those, exchanges whose response restarted (the server was the idle sender).
    pub slow_start_restarted_responses: u64,
    /// What those restarts cost, in ms per request over all requests (their extra round
    /// trips, capped by each message's measured sending time).
    pub slow_start_restart_ms_per_request: Option<f64>,
    /// Stalls of the requests: the client's writes held until the server's ACK.
    pub request_stalls: SideStalls,
    /// Stalls of the responses: the server's writes held until the client's ACK.
    pub response_stalls: SideStalls,
    /// HTTP/2 and gRPC facts; `None` where no request went over HTTP/2 or gRPC.
    pub http2: Option<Http2Measures>,
}

/// What the HTTP/2 streams and gRPC calls of a link (or route) show.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Http2Measures {
    /// Requests that were HTTP/2 streams.
    pub streams: u64,
    /// Of those, the ones whose header blocks were all decoded with every field known (a
    /// capture that began mid-connection may name HPACK entries it never saw).
    pub complete_headers: u64,
    /// Streams reset before they ended (`rst_client:CANCEL`, `rst_server:...`) or refused
    /// by a GOAWAY (`goaway_refused`), most first.
    pub stream_errors: Vec<Count>,
    /// gRPC calls (over HTTP/2 or gRPC-Web).
    pub grpc_calls: u64,
    /// Their `grpc-status` by name (`OK`, `UNAVAILABLE`, ...), most first; a call that
    /// failed counts in `status` as the HTTP status its code maps to (UNAVAILABLE 503,
    /// RESOURCE_EXHAUSTED 429, INTERNAL 500, ...).
    pub grpc_status: Vec<Count>,
    /// `unary`, `server_streaming`, `client_streaming`, `bidi_streaming`, most first.
    pub grpc_call_kinds: Vec<Count>,
}

/// Failures of one status that recur at a fixed interval of a route's requests: a
/// deterministic fault in the callee (every n-th call), not a transient one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PeriodicFailure {
    pub status: u16,
    /// The failures came every `every`-th request of the route, in time order.
    pub every: u64,
    /// Failures of that status on the route, and how many of the gaps between them
    /// were exactly `every`.
    pub failures: u64,
    pub regular_gaps: u64,
}

/// Retries seen on the wire: the client's own, and what the requests and answers say
/// about retrying.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Retries {
    /// Requests that carried an idempotency key header (`Idempotency-Key`).
    pub idempotency_keyed: u64,
    /// Responses that carried `Retry-After`.
    pub retry_after_responses: u64,
    /// Failures (5xx, 429, no answer) the client sent again: the same method, route and
    /// request body length from the same address within 2 s.
    pub failures_retried: u64,
    /// Of those, failures whose retry succeeded.
    pub failures_recovered: u64,
}

/// Header bytes of the replayed exchanges: as sent (HTTP/1.x), as HTTP/2 (HPACK with a
/// 4096-byte table per connection direction) and as gRPC (HPACK plus gRPC framing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HeaderReplay {
    pub exchanges: u64,
    pub http1_bytes: u64,
    pub http2_bytes: u64,
    pub grpc_bytes: u64,
}

/// How requests spread over connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct PerConnection {
    pub mean: Option<f64>,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub max: Option<u64>,
    /// Connections that carried exactly one request.
    pub single_request_connections: u64,
}

/// Capture quality of the link's connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LinkQuality {
    pub connections_with_gaps: u64,
    pub gap_bytes: u64,
    pub one_sided_connections: u64,
    pub no_handshake_seen: u64,
    pub incomplete_exchanges: u64,
}

/// One route of a link.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Route {
    pub method: Option<String>,
    pub route: Option<String>,
    #[serde(flatten)]
    pub http: HttpMeasures,
}

/// One service pair.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Link {
    pub client: String,
    pub client_source: NameSource,
    pub server: String,
    pub server_source: NameSource,
    /// Server `ip:port` listeners behind the name.
    pub server_endpoints: Vec<String>,
    /// Client addresses behind the name.
    pub client_addresses: Vec<String>,
    /// The HTTP version most requests used (`http/1.1`); else what the connections
    /// carried (`tls`, `http2`, `other`).
    pub protocol: String,
    pub connections: u64,
    /// Connections whose SYN was captured.
    pub tcp_handshakes: u64,
    /// Connections that carried TLS.
    pub tls_handshakes: u64,
    /// Mean requests per connection that carried HTTP.
    pub requests_per_connection: Option<f64>,
    pub requests_per_connection_dist: PerConnection,
    pub handshake_rtt_ms: RttPercentiles,
    /// Negotiated TLS versions (`TLS 1.3`, ...), in connections, most first.
    pub tls_versions: Vec<Count>,
    /// TLS connections that resumed a session.
    pub tls_resumed: u64,
    /// TLS handshake time (ClientHello -> first client data for 1.3, -> server Finished
    /// for 1.2), where the handshake was seen.
    pub tls_handshake_ms: RttPercentiles,
    /// TLS server names (SNI) the link's connections asked for, most first.
    pub tls_server_names: Vec<Count>,
    /// ALPN lists the clients offered (`h2,http/1.1`), most first.
    pub tls_alpn_offered: Vec<Count>,
    /// Estimates from the records of the TLS connections that were not decrypted
    /// (requests, latency and bytes per turn); None when there are none.
    pub tls_estimate: Option<TlsEstimateMeasures>,
    /// Connections closed by a reset.
    pub resets: u64,
    pub retransmitted_bytes: u64,
    /// Segments advertising a zero receive window, both directions: a receiver that could
    /// take no more. `None` when the connections were read from tables that predate it.
    pub zero_window_events: Option<u64>,
    /// Segments sent again by the retransmission timer (after 200 ms of their sender's
    /// silence), both directions; `None` as above.
    pub retransmission_timeouts: Option<u64>,
    /// The senders' silence before those retransmissions, summed over the link's
    /// connections: the time the retransmission timer cost; `None` as above.
    pub rto_wait_ms: Option<f64>,
    /// How long the client kept its receive window at zero, summed over the link's
    /// connections: the time the server could send nothing; `None` as above.
    pub client_zero_window_ms: Option<f64>,
    /// How long the server kept its receive window at zero: the client's wait.
    pub server_zero_window_ms: Option<f64>,
    pub quality: LinkQuality,
    /// `None` for a link whose HTTP is not visible; `links.json` writes its fields at the
    /// link's top level, as nulls when absent.
    pub http: Option<HttpMeasures>,
    /// The busiest routes, most requests first.
    pub routes: Vec<Route>,
    /// Routes beyond those listed.
    pub routes_not_listed: u64,
    /// Which inputs showed the link.
    pub evidence: Evidence,
    /// Calls of the link in the trace files; `None` without trace input.
    pub traced_calls: Option<u64>,
    /// Share of the traced calls that went through a broker (PRODUCER -> CONSUMER
    /// spans): that part of the link is already asynchronous.
    pub async_share: Option<f64>,
    /// The broker those calls used (`messaging.system` or the producer's peer).
    pub broker: Option<String>,
}

impl Link {
    /// Requests per second, or connections per second where the requests are not
    /// visible (TLS): the rate a per-request figure is taken over.
    pub fn requests_or_connections_per_s(&self, capture_seconds: Option<f64>) -> Option<f64> {
        self.http
            .as_ref()
            .and_then(|h| h.requests_per_s.mean)
            .or_else(|| {
                capture_seconds
                    .filter(|t| *t > 0.0)
                    .map(|t| self.connections as f64 / t)
            })
    }

    /// The link already speaks HTTP/2 or gRPC: the rule that keeps it
    /// (`keep:already-grpc`, `keep:already-http2`), and no gRPC saving is projected.
    pub fn already_migrated(&self) -> Option<&'static str> {
        match self.protocol.as_str() {
            "grpc" | "grpc-web" => Some("keep:already-grpc"),
            "h2c" | "h2" | "http2" | "http/2" => Some("keep:already-http2"),
            _ => None,
        }
    }

    /// Half or more of the link's requests carry forwarding headers.
    pub fn forwards(&self) -> bool {
        self.http
            .as_ref()
            .is_some_and(|h| h.requests > 0 && h.forwarded_requests * 2 >= h.requests)
    }
}

/// Client services that are proxies (gateways relaying their own clients' requests): at
/// least one of their links carries forwarding headers on half or more of its requests.
/// A proxy is one piece of software, so it counts on all of its links, also those where
/// it adds no forwarding header; a change of protocol or of connection reuse on any of
/// them is the proxy's configuration.
pub fn proxy_clients<'a>(links: impl IntoIterator<Item = &'a Link>) -> BTreeSet<String> {
    links
        .into_iter()
        .filter(|l| l.forwards())
        .map(|l| l.client.clone())
        .collect()
}

/// Which inputs showed a link. Spans show no connections, handshakes or header bytes:
/// a traces-only link has those as null in `links.json`, never 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Evidence {
    #[default]
    Capture,
    Traces,
    Both,
}

impl Evidence {
    /// The fields of a link (and of its HTTP measures) only a capture can show.
    pub const CAPTURE_ONLY: &'static [&'static str] = &[
        "server_endpoints",
        "client_addresses",
        "connections",
        "tcp_handshakes",
        "tls_handshakes",
        "requests_per_connection",
        "requests_per_connection_dist",
        "handshake_rtt_ms",
        "tls_versions",
        "tls_resumed",
        "tls_handshake_ms",
        "tls_server_names",
        "tls_alpn_offered",
        "tls_estimate",
        "resets",
        "retransmitted_bytes",
        "zero_window_events",
        "retransmission_timeouts",
        "rto_wait_ms",
        "client_zero_window_ms",
        "server_zero_window_ms",
        "slow_start_restarts",
        "slow_start_restarted_responses",
        "slow_start_restart_ms_per_request",
        "quality",
        "header_share",
        "json_share",
        "request_content_types",
        "response_content_types",
        "new_connection_share",
        "json_body_bytes",
        "json_identity_body_bytes",
        "forwarded_requests",
        "retries",
        "periodic_failures",
        "header_replay",
        "stalled_requests",
        "stall_ms",
        "request_stalls",
        "response_stalls",
        "http2",
    ];
}

/// Key of a link: (client service, server service).
pub type LinkKey = (String, String);

/// Keeps the `top` busiest routes (ties by route, then method) and returns how many were
/// left out.
pub(crate) fn keep_busiest_routes(routes: &mut Vec<Route>, top: usize) -> u64 {
    routes.sort_by(|a, b| {
        b.http
            .requests
            .cmp(&a.http.requests)
            .then_with(|| a.route.cmp(&b.route))
            .then_with(|| a.method.cmp(&b.method))
    });
    let total = routes.len();
    routes.truncate(top);
    (total - routes.len()) as u64
}

/// Sorted counts, largest first, ties by value.
pub(crate) fn sorted_counts(map: BTreeMap<String, u64>, keep: usize) -> Vec<Count> {
    let mut v: Vec<Count> = map
        .into_iter()
        .map(|(value, count)| Count { value, count })
        .collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    v.truncate(keep);
    v
}
