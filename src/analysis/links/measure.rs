//! The per-link and per-route measures of the captured exchanges and connections: the
//! folds' figures (here) or another engine's group-bys (the fleet's DataFusion) made
//! into the same records.

use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::*;

use super::fold::{self, ConnAcc, ConnFold, HttpFold, PeriodicFold};
use super::frame;
use super::*;
use crate::analysis::identity::{NameSource, Naming};
use crate::tables::columns;
use crate::tables::Tables;

/// Every link of a run, unranked.
#[derive(Clone, Debug, Default)]
pub struct LinkSet {
    pub links: Vec<Link>,
    /// First to last packet of the analysed connections, in seconds.
    pub capture_seconds: Option<f64>,
    /// Connections that carried no payload at all (port probes, idle pool connections
    /// whose pair never exchanged anything else): not made into links of their own.
    pub payloadless_connections_unlinked: u64,
}

/// Rows folded at a time: the size of the blocks a streaming reader will hand over.
const FOLD_BLOCK_ROWS: usize = 65_536;

pub(crate) use super::fold::connections::CONN_INTS;
pub(crate) use super::fold::http::HTTP_INTS;
pub(crate) use super::fold::Key;

/// Measures every link in `tables`, keeping the `top_routes` busiest routes of each.
pub fn measure(tables: &Tables, naming: &Naming, top_routes: usize) -> PolarsResult<LinkSet> {
    let conn_names = frame::name_rows(&tables.connections, naming)?;
    let ex_names = frame::name_rows(&tables.exchanges, naming)?;
    let cn = frame::connections_frame(&tables.connections, &conn_names)?;
    let derivation = frame::Derivation::new(&tables.exchanges, &tables.connections, &ex_names)?;
    let capture_seconds = span_seconds(&tables.connections)?;

    // Folded a block of rows at a time, per route, then rolled up per link.
    // The derived frame is made and folded a block of rows at a time, never whole.
    let (mut fold, mut periodic) = (HttpFold::default(), PeriodicFold::default());
    let mut offset = 0;
    while offset < derivation.rows() {
        let block = derivation.block(offset, FOLD_BLOCK_ROWS)?;
        fold.add(&block)?;
        periodic.add(&block)?;
        offset += FOLD_BLOCK_ROWS;
    }
    drop(derivation);
    let route_groups = fold.finish();
    let link_groups = fold::roll_up(&route_groups, 2);
    let exchange_protocols = link_groups
        .iter()
        .filter(|(_, a)| !a.protocols().is_empty())
        .map(|(k, a)| (k.clone(), a.protocols().clone()))
        .collect();
    let (agg, counts) = folded_parts(link_groups);
    let http = http_measures(&agg, &counts, capture_seconds)?;
    let (agg, counts) = folded_parts(route_groups);
    let routes = http_measures(&agg, &counts, capture_seconds)?;
    let mut conn_fold = ConnFold::default();
    fold::in_blocks(&cn, FOLD_BLOCK_ROWS, |block| conn_fold.add(block))?;
    let (agg, counts) = folded_conn_parts(conn_fold.finish());
    let connections = connection_measures(&agg, &counts)?;
    let tls_estimates = super::tls_estimate::per_link(&cn)?;
    let periodic = periodic.periodic();

    // Who is behind each name, and the best source that named it.
    let mut members = Members::new();
    for names in [&conn_names, &ex_names] {
        for (client, ip, server, endpoint) in names.pairs() {
            let key = (client.name.clone(), server.name.clone());
            members.add(key, ip, endpoint, client.source, server.source);
        }
    }
    Ok(assemble(
        LinkParts {
            http,
            routes,
            connections,
            tls_estimates,
            periodic,
            exchange_protocols,
            members,
            capture_seconds,
        },
        top_routes,
    ))
}

/// The addresses behind each link's names and the best source of each name.
#[derive(Clone, Debug, Default)]
pub(crate) struct Members {
    links: BTreeMap<LinkKey, (BTreeSet<String>, BTreeSet<String>, NameSource, NameSource)>,
}

impl Members {
    pub(crate) fn new() -> Members {
        Members::default()
    }

    /// One client address and server endpoint seen on link `key`, with the sources of
    /// its two names.
    pub(crate) fn add(
        &mut self,
        key: LinkKey,
        client_ip: &str,
        server_endpoint: &str,
        client_source: NameSource,
        server_source: NameSource,
    ) {
        let e = self.links.entry(key).or_insert_with(|| {
            (
                BTreeSet::new(),
                BTreeSet::new(),
                NameSource::Fallback,
                NameSource::Fallback,
            )
        });
        if !e.0.contains(client_ip) {
            e.0.insert(client_ip.to_owned());
        }
        if !e.1.contains(server_endpoint) {
            e.1.insert(server_endpoint.to_owned());
        }
        e.2 = e.2.min(client_source);
        e.3 = e.3.min(server_source);
    }
}

/// What the aggregation gave, whichever engine ran it (the folds here, DataFusion in the
/// fleet): the links are made from these alike.
pub(crate) struct LinkParts {
    pub http: BTreeMap<Key, HttpMeasures>,
    /// Keyed (client, server, method, route).
    pub routes: BTreeMap<Key, HttpMeasures>,
    pub connections: BTreeMap<LinkKey, ConnectionMeasures>,
    pub tls_estimates: BTreeMap<LinkKey, TlsEstimateMeasures>,
    pub periodic: frame::PeriodicByRoute,
    pub exchange_protocols: BTreeMap<Key, BTreeMap<String, u64>>,
    pub members: Members,
    pub capture_seconds: Option<f64>,
}

/// The links of `parts`, keeping the `top_routes` busiest routes of each.
pub(crate) fn assemble(parts: LinkParts, top_routes: usize) -> LinkSet {
    let LinkParts {
        mut http,
        mut routes,
        connections: mut conns,
        mut tls_estimates,
        periodic,
        exchange_protocols,
        members,
        capture_seconds,
    } = parts;
    let mut set = LinkSet {
        capture_seconds,
        ..Default::default()
    };
    for (key, (clients, servers, client_source, server_source)) in members.links {
        let http_key: Key = vec![Some(key.0.clone()), Some(key.1.clone())];
        let h = http.remove(&http_key);
        let c = conns.remove(&key).unwrap_or_default();
        let has_requests = h.as_ref().is_some_and(|h| h.requests > 0);
        if !has_requests && c.protocols.keys().all(|p| p == "empty") {
            set.payloadless_connections_unlinked += c.connections;
            continue;
        }
        let spoke = exchange_protocols
            .get(&http_key)
            .map(|m| sorted_counts(m.clone(), 1));
        let protocol = match &h {
            // What most requests spoke (`h2c`, `grpc`), else their HTTP version.
            Some(h) if h.requests > 0 => spoke
                .and_then(|c| c.into_iter().next())
                .map(|c| c.value)
                .or_else(|| {
                    h.http_versions
                        .first()
                        .map(|v| v.value.to_ascii_lowercase())
                })
                .unwrap_or_else(|| "http/1.1".into()),
            _ => c
                .protocols
                .iter()
                .filter(|(p, _)| p.as_str() != "empty")
                .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
                .map(|(p, _)| p.clone())
                .unwrap_or_else(|| "empty".into()),
        };
        let mut link_routes: Vec<Route> = routes
            .iter()
            .filter(|(k, _)| k[0].as_deref() == Some(&key.0) && k[1].as_deref() == Some(&key.1))
            .map(|(k, m)| Route {
                method: k[2].clone(),
                route: k[3].clone(),
                http: HttpMeasures {
                    periodic_failures: periodic.get(k).cloned().unwrap_or_default(),
                    ..m.clone()
                },
            })
            .collect();
        let routes_not_listed = super::keep_busiest_routes(&mut link_routes, top_routes);
        let h = h.map(|mut h| {
            h.periodic_failures = link_routes
                .iter()
                .flat_map(|r| r.http.periodic_failures.iter().cloned())
                .collect();
            h
        });
        let incomplete = h.as_ref().map_or(0, |h| h.incomplete);
        set.links.push(Link {
            client: key.0.clone(),
            client_source,
            server: key.1.clone(),
            server_source,
            server_endpoints: servers.into_iter().collect(),
            client_addresses: clients.into_iter().collect(),
            protocol,
            connections: c.connections,
            tcp_handshakes: c.tcp_handshakes,
            tls_handshakes: c.tls,
            tls_versions: c.versions.clone(),
            tls_resumed: c.resumed,
            tls_handshake_ms: c.tls_ms,
            tls_server_names: c.sni.clone(),
            tls_alpn_offered: c.alpn.clone(),
            tls_estimate: tls_estimates.remove(&key),
            requests_per_connection: c.per_connection.mean,
            requests_per_connection_dist: c.per_connection,
            handshake_rtt_ms: c.handshake_rtt_ms,
            resets: c.resets,
            retransmitted_bytes: c.retransmitted_bytes,
            zero_window_events: c.zero_window_events,
            retransmission_timeouts: c.retransmission_timeouts,
            rto_wait_ms: c.rto_wait_ms,
            client_zero_window_ms: c.client_zero_window_ms,
            server_zero_window_ms: c.server_zero_window_ms,
            quality: LinkQuality {
                incomplete_exchanges: incomplete,
                ..c.quality
            },
            http: h.filter(|h| h.requests > 0),
            routes_not_listed,
            routes: link_routes,
            evidence: super::Evidence::Capture,
            traced_calls: None,
            async_share: None,
            broker: None,
        });
        routes.retain(|k, _| !(k[0].as_deref() == Some(&key.0) && k[1].as_deref() == Some(&key.1)));
    }
    set
}

/// First to last packet over all connections, in seconds.
fn span_seconds(connections: &DataFrame) -> PolarsResult<Option<f64>> {
    let first = connections.column(columns::FIRST_NS)?.i64()?.min();
    let last = connections.column(columns::LAST_NS)?.i64()?.max();
    Ok(match (first, last) {
        (Some(f), Some(l)) if l > f => Some((l - f) as f64 / 1e9),
        _ => None,
    })
}

/// The fold's groups as both engines' group-bys give their figures, for
/// [`http_measures`].
pub(crate) fn folded_parts(groups: fold::Groups) -> (Aggregates, HttpCounts) {
    let mut agg = Aggregates::named(HTTP_INTS, HTTP_FLOATS);
    let mut counts = HttpCounts::default();
    for (key, mut acc) in groups {
        let [ttfb, total, stall, req, resp] = acc.percentiles();
        let (stall_mean, slow_start_mean) = acc.means();
        let float = |name: &str| match name {
            "ttfb_p50" => ttfb.p50,
            "ttfb_p95" => ttfb.p95,
            "ttfb_p99" => ttfb.p99,
            "total_p50" => total.p50,
            "total_p95" => total.p95,
            "total_p99" => total.p99,
            "stall_mean" => stall_mean,
            "stall_p50" => stall.p50,
            "stall_p95" => stall.p95,
            "stall_p99" => stall.p99,
            "req_stall_p50" => req.p50,
            "req_stall_p95" => req.p95,
            "resp_stall_p50" => resp.p50,
            "resp_stall_p95" => resp.p95,
            "slow_start_ms" => slow_start_mean,
            _ => None,
        };
        agg.push(key.clone(), |name| acc.int(name), float);
        if let Some(peak) = acc.peak() {
            counts.peaks.insert(key.clone(), peak);
        }
        let [versions, req_types, resp_types, stream_errors, grpc_status, grpc_kinds, _] =
            acc.take_counted();
        for (into, from) in [
            (&mut counts.versions, versions),
            (&mut counts.req_types, req_types),
            (&mut counts.resp_types, resp_types),
            (&mut counts.stream_errors, stream_errors),
            (&mut counts.grpc_status, grpc_status),
            (&mut counts.grpc_kinds, grpc_kinds),
        ] {
            if !from.is_empty() {
                into.insert(key.clone(), from);
            }
        }
    }
    (agg, counts)
}

/// The float figures of the HTTP group-by (means and quantiles; null when none).
pub(crate) const HTTP_FLOATS: &[&str] = &[
    "ttfb_p50",
    "ttfb_p95",
    "ttfb_p99",
    "total_p50",
    "total_p95",
    "total_p99",
    "stall_mean",
    "stall_p50",
    "stall_p95",
    "stall_p99",
    "req_stall_p50",
    "req_stall_p95",
    "resp_stall_p50",
    "resp_stall_p95",
    "slow_start_ms",
];

/// Requests per value within each group.
pub(crate) type CountsByKey = BTreeMap<Key, BTreeMap<String, u64>>;

/// The HTTP group-by's figures that are not one value per group.
#[derive(Clone, Debug, Default)]
pub(crate) struct HttpCounts {
    /// Requests in the group's busiest second.
    pub peaks: BTreeMap<Key, u64>,
    pub versions: CountsByKey,
    pub req_types: CountsByKey,
    pub resp_types: CountsByKey,
    pub stream_errors: CountsByKey,
    pub grpc_status: CountsByKey,
    pub grpc_kinds: CountsByKey,
}

/// One row per group of a group-by: its keys, and its figures by name. Both engines'
/// results are read into this, so that one function makes the measures of either.
#[derive(Clone, Debug, Default)]
pub(crate) struct Aggregates {
    pub keys: Vec<Key>,
    pub ints: BTreeMap<String, Vec<u64>>,
    pub floats: BTreeMap<String, Vec<Option<f64>>>,
}

impl Aggregates {
    /// No groups yet, with figures of these names.
    pub(crate) fn named(ints: &[&str], floats: &[&str]) -> Aggregates {
        Aggregates {
            keys: Vec::new(),
            ints: ints.iter().map(|n| ((*n).to_owned(), Vec::new())).collect(),
            floats: floats
                .iter()
                .map(|n| ((*n).to_owned(), Vec::new()))
                .collect(),
        }
    }

    /// Appends a group: its key, and each of its figures by name.
    pub(crate) fn push(
        &mut self,
        key: Key,
        int: impl Fn(&str) -> u64,
        float: impl Fn(&str) -> Option<f64>,
    ) {
        for (name, v) in &mut self.ints {
            v.push(int(name));
        }
        for (name, v) in &mut self.floats {
            v.push(float(name));
        }
        self.keys.push(key);
    }

    fn int(&self, name: &str) -> PolarsResult<Vec<u64>> {
        self.ints
            .get(name)
            .cloned()
            .ok_or_else(|| PolarsError::ColumnNotFound(name.to_owned().into()))
    }

    fn float(&self, name: &str) -> PolarsResult<Vec<Option<f64>>> {
        self.floats
            .get(name)
            .cloned()
            .ok_or_else(|| PolarsError::ColumnNotFound(name.to_owned().into()))
    }
}

/// The HTTP measures of each group of `agg`.
pub(crate) fn http_measures(
    agg: &Aggregates,
    counts: &HttpCounts,
    capture_seconds: Option<f64>,
) -> PolarsResult<BTreeMap<Key, HttpMeasures>> {
    let HttpCounts {
        peaks,
        versions,
        req_types,
        resp_types,
        stream_errors,
        grpc_status,
        grpc_kinds,
    } = counts;
    let group_keys = agg.keys.clone();
    let n = |c: &str| agg.int(c);
    let f = |c: &str| agg.float(c);
    let (requests, s1, s2, s3, s4, s5) = (
        n("requests")?,
        n("s1xx")?,
        n("s2xx")?,
        n("s3xx")?,
        n("s4xx")?,
        n("s5xx")?,
    );
    let (s429, s503, none) = (n("s429")?, n("s503")?, n("no_response")?);
    let ttfb = [f("ttfb_p50")?, f("ttfb_p95")?, f("ttfb_p99")?];
    let total = [f("total_p50")?, f("total_p95")?, f("total_p99")?];
    let bytes = [
        n("req_headers")?,
        n("req_bodies")?,
        n("resp_headers")?,
        n("resp_bodies")?,
    ];
    let (json, new_conn, incomplete) = (n("json")?, n("new_conn")?, n("incomplete")?);
    let json_body_bytes = n("json_body_bytes")?;
    let json_identity_body_bytes = n("json_identity_body_bytes")?;
    let forwarded = n("forwarded")?;
    let retry = [
        n("idempotency_keyed")?,
        n("retry_after")?,
        n("retried")?,
        n("recovered")?,
    ];
    let replay = [
        n("replayed")?,
        n("replay_h1")?,
        n("replay_h2")?,
        n("replay_grpc")?,
    ];
    let stalled = n("stalled")?;
    let (slow_starts, slow_start_ms) = (n("slow_starts")?, f("slow_start_ms")?);
    let slow_start_responses = n("slow_start_responses")?;
    let (h2_streams, h2_complete, grpc_calls) =
        (n("h2_streams")?, n("h2_complete")?, n("grpc_calls")?);
    let stall = [
        f("stall_mean")?,
        f("stall_p50")?,
        f("stall_p95")?,
        f("stall_p99")?,
    ];
    let side = |prefix: &str| -> PolarsResult<_> {
        Ok((
            n(&format!("{prefix}_stalled"))?,
            f(&format!("{prefix}_stall_p50"))?,
            f(&format!("{prefix}_stall_p95"))?,
        ))
    };
    let (req_stalls, resp_stalls) = (side("req")?, side("resp")?);
    let side_at = |s: &(Vec<u64>, Vec<Option<f64>>, Vec<Option<f64>>), i: usize| SideStalls {
        stalled: s.0[i],
        p50_ms: s.1[i],
        p95_ms: s.2[i],
    };

    let mut out = BTreeMap::new();
    for (i, key) in group_keys.into_iter().enumerate() {
        let r = requests[i];
        let per = |total: u64| (r > 0).then(|| total as f64 / r as f64);
        let all_bytes: u64 = bytes.iter().map(|b| b[i]).sum();
        let header_bytes = bytes[0][i] + bytes[2][i];
        let m = HttpMeasures {
            requests: r,
            requests_per_s: Rate {
                mean: capture_seconds.map(|s| r as f64 / s),
                peak: peaks.get(&key).map(|p| *p as f64),
            },
            latency_ms: Percentiles {
                p50: ttfb[0][i],
                p95: ttfb[1][i],
                p99: ttfb[2][i],
            },
            latency_total_ms: Percentiles {
                p50: total[0][i],
                p95: total[1][i],
                p99: total[2][i],
            },
            bytes: Bytes {
                request_headers: Some(bytes[0][i]),
                request_bodies: Some(bytes[1][i]),
                response_headers: Some(bytes[2][i]),
                response_bodies: Some(bytes[3][i]),
            },
            bytes_per_request: BytesPerRequest {
                request_headers: per(bytes[0][i]),
                request_bodies: per(bytes[1][i]),
                response_headers: per(bytes[2][i]),
                response_bodies: per(bytes[3][i]),
            },
            header_share: (all_bytes > 0).then(|| header_bytes as f64 / all_bytes as f64),
            json_share: per(json[i]),
            request_content_types: counts_for(req_types, &key),
            response_content_types: counts_for(resp_types, &key),
            status: StatusMix {
                s1xx: s1[i],
                s2xx: s2[i],
                s3xx: s3[i],
                s4xx: s4[i],
                s5xx: s5[i],
                s429: s429[i],
                s503: s503[i],
                no_response: none[i],
                // Spans only: a capture shows statuses, not failed spans.
                failed: None,
                failed_without_status: 0,
            },
            new_connection_share: per(new_conn[i]),
            http_versions: counts_for(versions, &key),
            incomplete: incomplete[i],
            json_body_bytes: json_body_bytes[i],
            json_identity_body_bytes: json_identity_body_bytes[i],
            forwarded_requests: forwarded[i],
            periodic_failures: Vec::new(),
            retries: Retries {
                idempotency_keyed: retry[0][i],
                retry_after_responses: retry[1][i],
                failures_retried: retry[2][i],
                failures_recovered: retry[3][i],
            },
            header_replay: HeaderReplay {
                exchanges: replay[0][i],
                http1_bytes: replay[1][i],
                http2_bytes: replay[2][i],
                grpc_bytes: replay[3][i],
            },
            stalled_requests: stalled[i],
            slow_start_restarts: slow_starts[i],
            slow_start_restarted_responses: slow_start_responses[i],
            slow_start_restart_ms_per_request: slow_start_ms[i].filter(|_| slow_starts[i] > 0),
            stall_ms: PerRequestMs {
                mean: stall[0][i],
                p50: stall[1][i],
                p95: stall[2][i],
                p99: stall[3][i],
            },
            request_stalls: side_at(&req_stalls, i),
            response_stalls: side_at(&resp_stalls, i),
            http2: (h2_streams[i] > 0 || grpc_calls[i] > 0).then(|| Http2Measures {
                streams: h2_streams[i],
                complete_headers: h2_complete[i],
                stream_errors: counts_for(stream_errors, &key),
                grpc_calls: grpc_calls[i],
                grpc_status: counts_for(grpc_status, &key),
                grpc_call_kinds: counts_for(grpc_kinds, &key),
            }),
        };
        out.insert(key, m);
    }
    Ok(out)
}

fn counts_for(map: &BTreeMap<Key, BTreeMap<String, u64>>, key: &Key) -> Vec<Count> {
    map.get(key)
        .map(|m| sorted_counts(m.clone(), 5))
        .unwrap_or_default()
}

/// Connection facts of one link.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub(crate) struct ConnectionMeasures {
    connections: u64,
    tcp_handshakes: u64,
    tls: u64,
    resets: u64,
    retransmitted_bytes: u64,
    zero_window_events: Option<u64>,
    retransmission_timeouts: Option<u64>,
    rto_wait_ms: Option<f64>,
    client_zero_window_ms: Option<f64>,
    server_zero_window_ms: Option<f64>,
    handshake_rtt_ms: RttPercentiles,
    per_connection: PerConnection,
    quality: LinkQuality,
    protocols: BTreeMap<String, u64>,
    sni: Vec<Count>,
    alpn: Vec<Count>,
    versions: Vec<Count>,
    resumed: u64,
    tls_ms: RttPercentiles,
}

/// The connection fold's links as both engines' group-bys give their figures, for
/// [`connection_measures`].
pub(crate) fn folded_conn_parts(links: BTreeMap<Key, ConnAcc>) -> (Aggregates, ConnCounts) {
    let mut agg = Aggregates::named(CONN_INTS, CONN_FLOATS);
    let mut counts = ConnCounts::default();
    for (key, mut acc) in links {
        let (rtt, tls_ms) = acc.handshake_percentiles();
        let (mean, per_connection, max) = acc.requests_per_connection();
        let float = |name: &str| match name {
            "rto_wait_ms" => Some(acc.ms("rto_wait_ns")),
            "client_zero_window_ms" => Some(acc.ms("client_zero_window_ns")),
            "server_zero_window_ms" => Some(acc.ms("server_zero_window_ns")),
            "rtt_p50" => rtt.p50,
            "rtt_p95" => rtt.p95,
            "rpc_mean" => mean,
            "rpc_p50" => per_connection.p50,
            "rpc_p95" => per_connection.p95,
            "rpc_max" => max,
            _ => None,
        };
        agg.push(key.clone(), |name| acc.int(name), float);
        counts.resumed.insert(key.clone(), acc.int("resumed"));
        counts.tls_ms.insert(key.clone(), tls_ms);
        let [protocols, sni, versions, alpn] = acc.take_counted();
        for (into, from) in [
            (&mut counts.protocols, protocols),
            (&mut counts.sni, sni),
            (&mut counts.versions, versions),
            (&mut counts.alpn, alpn),
        ] {
            if !from.is_empty() {
                into.insert(key.clone(), from);
            }
        }
    }
    (agg, counts)
}

/// The float figures of the connections group-by.
pub(crate) const CONN_FLOATS: &[&str] = &[
    "rto_wait_ms",
    "client_zero_window_ms",
    "server_zero_window_ms",
    "rtt_p50",
    "rtt_p95",
    "rpc_mean",
    "rpc_p50",
    "rpc_p95",
    "rpc_max",
];

/// The connections group-by's figures that are not one value per link.
#[derive(Clone, Debug, Default)]
pub(crate) struct ConnCounts {
    pub protocols: CountsByKey,
    pub sni: CountsByKey,
    pub versions: CountsByKey,
    pub alpn: CountsByKey,
    pub resumed: BTreeMap<Key, u64>,
    pub tls_ms: BTreeMap<Key, RttPercentiles>,
}

/// The connection measures of each link of `agg`.
pub(crate) fn connection_measures(
    agg: &Aggregates,
    counts: &ConnCounts,
) -> PolarsResult<BTreeMap<LinkKey, ConnectionMeasures>> {
    let ConnCounts {
        protocols,
        sni,
        versions,
        alpn,
        resumed: resumed_counts,
        tls_ms,
    } = counts;
    let keys = agg.keys.clone();
    let n = |c: &str| agg.int(c);
    let f = |c: &str| agg.float(c);
    let (connections, hs, tls, resets, retrans) = (
        n("connections")?,
        n("tcp_handshakes")?,
        n("tls")?,
        n("resets")?,
        n("retransmitted")?,
    );
    let (gaps, gap_bytes, one_sided, no_hs, single) = (
        n("with_gaps")?,
        n("gap_bytes")?,
        n(columns::ONE_SIDED)?,
        n("no_handshake")?,
        n("single")?,
    );
    let known = |sum: &str, count: &str| -> PolarsResult<Vec<Option<u64>>> {
        Ok(n(sum)?
            .into_iter()
            .zip(n(count)?)
            .map(|(s, k)| (k > 0).then_some(s))
            .collect())
    };
    let zero_windows = known("zero_windows", "zero_windows_known")?;
    let timeouts = known("timeouts", "timeouts_known")?;
    let known_ms = |sum: &str, count: &str| -> PolarsResult<Vec<Option<f64>>> {
        Ok(f(sum)?
            .into_iter()
            .zip(n(count)?)
            .map(|(s, k)| (k > 0).then(|| s.unwrap_or(0.0)))
            .collect())
    };
    let rto_wait = known_ms("rto_wait_ms", "rto_wait_known")?;
    let client_zero_window = known_ms("client_zero_window_ms", "zero_window_known")?;
    let server_zero_window = known_ms("server_zero_window_ms", "zero_window_known")?;
    let (rtt50, rtt95) = (f("rtt_p50")?, f("rtt_p95")?);
    let (mean, p50, p95, max) = (f("rpc_mean")?, f("rpc_p50")?, f("rpc_p95")?, f("rpc_max")?);
    let mut out = BTreeMap::new();
    for (i, key) in keys.into_iter().enumerate() {
        let link = (
            key[0].clone().unwrap_or_default(),
            key[1].clone().unwrap_or_default(),
        );
        out.insert(
            link,
            ConnectionMeasures {
                connections: connections[i],
                tcp_handshakes: hs[i],
                tls: tls[i],
                resets: resets[i],
                retransmitted_bytes: retrans[i],
                zero_window_events: zero_windows[i],
                retransmission_timeouts: timeouts[i],
                rto_wait_ms: rto_wait[i],
                client_zero_window_ms: client_zero_window[i],
                server_zero_window_ms: server_zero_window[i],
                handshake_rtt_ms: RttPercentiles {
                    p50: rtt50[i],
                    p95: rtt95[i],
                },
                per_connection: PerConnection {
                    mean: mean[i],
                    p50: p50[i],
                    p95: p95[i],
                    max: max[i].map(|m| m as u64),
                    single_request_connections: single[i],
                },
                quality: LinkQuality {
                    connections_with_gaps: gaps[i],
                    gap_bytes: gap_bytes[i],
                    one_sided_connections: one_sided[i],
                    no_handshake_seen: no_hs[i],
                    incomplete_exchanges: 0,
                },
                protocols: protocols.get(&key).cloned().unwrap_or_default(),
                sni: counts_for(sni, &key),
                versions: counts_for(versions, &key),
                resumed: resumed_counts.get(&key).copied().unwrap_or(0),
                tls_ms: tls_ms.get(&key).copied().unwrap_or_default(),
                alpn: counts_for(alpn, &key),
            },
        );
    }
    Ok(out)
}

/// One captured exchange's link and durations (for the OTLP histograms).
#[derive(Clone, Debug, PartialEq)]
pub struct ExchangeDuration {
    pub link: LinkKey,
    /// Request first byte -> response last byte, seconds: the whole call as the client
    /// sees it at the capture point.
    pub client_s: Option<f64>,
    /// Request last byte -> response first byte, seconds: the server's handling.
    pub server_s: Option<f64>,
}

/// The durations of every exchange of `tables`, named as `measure` names its links.
pub fn exchange_durations(tables: &Tables, naming: &Naming) -> PolarsResult<Vec<ExchangeDuration>> {
    let ex = &tables.exchanges;
    let names = frame::name_rows(ex, naming)?;
    let t = |c: &str| ex.column(c).and_then(|c| c.i64().cloned());
    let (req_first, req_last) = (t(columns::REQ_FIRST_NS)?, t(columns::REQ_LAST_NS)?);
    let (resp_first, resp_last) = (t(columns::RESP_FIRST_NS)?, t(columns::RESP_LAST_NS)?);
    // In ms first, as the link measures' `total_ms` and `ttfb_ms`, then in seconds.
    let seconds = |a: Option<i64>, b: Option<i64>| Some((a? - b?) as f64 / 1e6 / 1e3);
    Ok((0..ex.height())
        .map(|i| ExchangeDuration {
            link: (names.client(i).name.clone(), names.server(i).name.clone()),
            client_s: seconds(resp_last.get(i), req_first.get(i)),
            server_s: seconds(resp_first.get(i), req_last.get(i)),
        })
        .collect())
}
