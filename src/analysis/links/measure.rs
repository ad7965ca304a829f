//! The per-link and per-route group-bys.

use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::*;

use super::frame::{self, f64s, strs, u64s};
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

/// Group keys: (client, server), or with method and route for routes.
pub(crate) type Key = Vec<Option<String>>;

/// Measures every link in `tables`, keeping the `top_routes` busiest routes of each.
pub fn measure(tables: &Tables, naming: &Naming, top_routes: usize) -> PolarsResult<LinkSet> {
    let conn_names = frame::name_rows(&tables.connections, naming)?;
    let ex_names = frame::name_rows(&tables.exchanges, naming)?;
    let cn = frame::connections_frame(&tables.connections, &conn_names)?;
    let ex = frame::exchanges_frame(&tables.exchanges, &tables.connections, &ex_names)?;
    let capture_seconds = span_seconds(&tables.connections)?;

    let link_keys = [columns::CLIENT, columns::SERVER];
    let route_keys = [
        columns::CLIENT,
        columns::SERVER,
        columns::METHOD,
        columns::ROUTE,
    ];
    let http = aggregate_http(&ex, &link_keys, capture_seconds)?;
    let routes = aggregate_http(&ex, &route_keys, capture_seconds)?;
    let connections = aggregate_connections(&cn)?;
    let tls_estimates = super::tls_estimate::per_link(&cn)?;
    let periodic = frame::periodic_failures(&ex)?;
    let exchange_protocols = value_counts(&ex, &link_keys, columns::EXCHANGE_PROTOCOL)?;

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

/// What the group-bys gave, whichever engine ran them (polars here, DataFusion in the
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

fn count_where(e: Expr, name: &str) -> Expr {
    e.cast(DataType::UInt64).sum().alias(name)
}

/// A sum of nanoseconds, in ms.
fn ms_sum(e: Expr) -> Expr {
    e.sum().cast(DataType::Float64) / lit(1e6)
}

fn quantile(column: &str, q: f64, name: &str) -> Expr {
    col(column)
        .quantile(lit(q), QuantileMethod::Linear)
        .alias(name)
}

/// Requests, rates, latency, bytes, content types, status and versions per group.
fn aggregate_http(
    ex: &DataFrame,
    keys: &[&str],
    capture_seconds: Option<f64>,
) -> PolarsResult<BTreeMap<Key, HttpMeasures>> {
    let by: Vec<Expr> = keys.iter().map(|k| col(*k)).collect();
    let status = || col(columns::STATUS);
    let class = |lo: u32, hi: u32, name: &str| {
        count_where(status().gt_eq(lit(lo)).and(status().lt(lit(hi))), name)
    };
    let agg = ex
        .clone()
        .lazy()
        .group_by(by.clone())
        .agg([
            len().cast(DataType::UInt64).alias("requests"),
            class(100, 200, "s1xx"),
            class(200, 300, "s2xx"),
            class(300, 400, "s3xx"),
            class(400, 500, "s4xx"),
            class(500, 600, "s5xx"),
            count_where(status().eq(lit(429u32)), "s429"),
            count_where(status().eq(lit(503u32)), "s503"),
            count_where(status().is_null(), "no_response"),
            quantile(columns::TTFB_MS, 0.50, "ttfb_p50"),
            quantile(columns::TTFB_MS, 0.95, "ttfb_p95"),
            quantile(columns::TTFB_MS, 0.99, "ttfb_p99"),
            quantile(columns::TOTAL_MS, 0.50, "total_p50"),
            quantile(columns::TOTAL_MS, 0.95, "total_p95"),
            quantile(columns::TOTAL_MS, 0.99, "total_p99"),
            col(columns::REQ_HEADER_BYTES).sum().alias("req_headers"),
            col(columns::REQ_BODY_BYTES).sum().alias("req_bodies"),
            col(columns::RESP_HEADER_BYTES).sum().alias("resp_headers"),
            col(columns::RESP_BODY_BYTES).sum().alias("resp_bodies"),
            count_where(col(columns::JSON), "json"),
            count_where(col(columns::NEW_CONN), "new_conn"),
            count_where(col(columns::INCOMPLETE), "incomplete"),
            count_where(col(columns::IDEMPOTENCY_KEYED), "idempotency_keyed"),
            count_where(col(columns::RETRY_AFTER), "retry_after"),
            count_where(col(columns::FORWARDED), "forwarded"),
            count_where(col(columns::RETRIED_FAILURE), "retried"),
            count_where(col(columns::RECOVERED_FAILURE), "recovered"),
            col(columns::JSON_BODY_BYTES)
                .sum()
                .alias(columns::JSON_BODY_BYTES),
            col(columns::JSON_IDENTITY_BODY_BYTES)
                .sum()
                .alias(columns::JSON_IDENTITY_BODY_BYTES),
            count_where(
                col(columns::REPLAY_GRPC_HEADER_BYTES).is_not_null(),
                "replayed",
            ),
            col(columns::REPLAY_H1_HEADER_BYTES)
                .sum()
                .alias("replay_h1"),
            col(columns::REPLAY_H2_HEADER_BYTES)
                .sum()
                .alias("replay_h2"),
            col(columns::REPLAY_GRPC_HEADER_BYTES)
                .sum()
                .alias("replay_grpc"),
            count_where(col(columns::STALL_MS).gt(lit(0.0)), "stalled"),
            col(columns::STALL_MS).mean().alias("stall_mean"),
            quantile(columns::STALL_MS, 0.50, "stall_p50"),
            quantile(columns::STALL_MS, 0.95, "stall_p95"),
            quantile(columns::STALL_MS, 0.99, "stall_p99"),
            count_where(col(columns::STREAM_ID).is_not_null(), "h2_streams"),
            count_where(
                col(columns::HEADERS_COMPLETE).fill_null(lit(false)),
                "h2_complete",
            ),
            count_where(col(columns::GRPC_CALL_KIND).is_not_null(), "grpc_calls"),
            count_where(col(columns::REQ_STALL_MS).is_not_null(), "req_stalled"),
            quantile(columns::REQ_STALL_MS, 0.50, "req_stall_p50"),
            quantile(columns::REQ_STALL_MS, 0.95, "req_stall_p95"),
            count_where(col(columns::RESP_STALL_MS).is_not_null(), "resp_stalled"),
            quantile(columns::RESP_STALL_MS, 0.50, "resp_stall_p50"),
            quantile(columns::RESP_STALL_MS, 0.95, "resp_stall_p95"),
            count_where(col(columns::SLOW_START_MS).is_not_null(), "slow_starts"),
            count_where(col(columns::SLOW_START_RESPONSE), "slow_start_responses"),
            (col(columns::SLOW_START_MS).fill_null(lit(0.0)).sum() / len().cast(DataType::Float64))
                .alias("slow_start_ms"),
        ])
        .collect()?;
    let peaks = {
        let mut by_second = by.clone();
        by_second.push(col(columns::SECOND));
        let per_second = ex
            .clone()
            .lazy()
            .filter(col(columns::SECOND).is_not_null())
            .group_by(by_second)
            .agg([len().alias("n")]);
        let peak = per_second
            .group_by(by.clone())
            .agg([col("n").max().alias("peak")])
            .collect()?;
        let keys_of = read_keys(&peak, keys)?;
        let values = u64s(&peak, "peak")?;
        keys_of
            .into_iter()
            .zip(values)
            .collect::<BTreeMap<Key, u64>>()
    };
    let counts = HttpCounts {
        peaks,
        versions: value_counts(ex, keys, columns::VERSION)?,
        req_types: value_counts(ex, keys, columns::REQ_CONTENT_TYPE)?,
        resp_types: value_counts(ex, keys, columns::RESP_CONTENT_TYPE)?,
        stream_errors: value_counts(ex, keys, columns::STREAM_ERROR)?,
        grpc_status: value_counts(ex, keys, columns::GRPC_STATUS_NAME)?,
        grpc_kinds: value_counts(ex, keys, columns::GRPC_CALL_KIND)?,
    };
    let agg = Aggregates::from_frame(&agg, keys, HTTP_INTS, HTTP_FLOATS)?;
    http_measures(&agg, &counts, capture_seconds)
}

/// The integer figures of the HTTP group-by (counts and sums; null read as 0), by the
/// names both engines give them.
pub(crate) const HTTP_INTS: &[&str] = &[
    "requests",
    "s1xx",
    "s2xx",
    "s3xx",
    "s4xx",
    "s5xx",
    "s429",
    "s503",
    "no_response",
    "req_headers",
    "req_bodies",
    "resp_headers",
    "resp_bodies",
    "json",
    "new_conn",
    "incomplete",
    "idempotency_keyed",
    "retry_after",
    "forwarded",
    "retried",
    "recovered",
    columns::JSON_BODY_BYTES,
    columns::JSON_IDENTITY_BODY_BYTES,
    "replayed",
    "replay_h1",
    "replay_h2",
    "replay_grpc",
    "stalled",
    "h2_streams",
    "h2_complete",
    "grpc_calls",
    "req_stalled",
    "resp_stalled",
    "slow_starts",
    "slow_start_responses",
];

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
    /// The `keys`, `ints` and `floats` columns of a polars group-by.
    fn from_frame(
        df: &DataFrame,
        keys: &[&str],
        ints: &[&str],
        floats: &[&str],
    ) -> PolarsResult<Aggregates> {
        Ok(Aggregates {
            keys: read_keys(df, keys)?,
            ints: ints
                .iter()
                .map(|c| Ok(((*c).to_owned(), u64s(df, c)?)))
                .collect::<PolarsResult<_>>()?,
            floats: floats
                .iter()
                .map(|c| Ok(((*c).to_owned(), f64s(df, c)?)))
                .collect::<PolarsResult<_>>()?,
        })
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

/// Requests per value of `column` within each group (nulls skipped).
fn value_counts(
    ex: &DataFrame,
    keys: &[&str],
    column: &str,
) -> PolarsResult<BTreeMap<Key, BTreeMap<String, u64>>> {
    let mut by: Vec<Expr> = keys.iter().map(|k| col(*k)).collect();
    by.push(col(column));
    let df = ex
        .clone()
        .lazy()
        .filter(col(column).is_not_null())
        .group_by(by)
        .agg([len().alias("n")])
        .collect()?;
    let group_keys = read_keys(&df, keys)?;
    let values = strs(&df, column)?;
    let n = u64s(&df, "n")?;
    let mut out: BTreeMap<Key, BTreeMap<String, u64>> = BTreeMap::new();
    for ((k, v), n) in group_keys.into_iter().zip(values).zip(n) {
        if let Some(v) = v {
            *out.entry(k).or_default().entry(v).or_default() += n;
        }
    }
    Ok(out)
}

fn counts_for(map: &BTreeMap<Key, BTreeMap<String, u64>>, key: &Key) -> Vec<Count> {
    map.get(key)
        .map(|m| sorted_counts(m.clone(), 5))
        .unwrap_or_default()
}

fn read_keys(df: &DataFrame, keys: &[&str]) -> PolarsResult<Vec<Key>> {
    let cols: Vec<Vec<Option<String>>> = keys
        .iter()
        .map(|k| strs(df, k))
        .collect::<PolarsResult<_>>()?;
    Ok((0..df.height())
        .map(|i| cols.iter().map(|c| c[i].clone()).collect())
        .collect())
}

/// Connection facts of one link.
#[derive(Clone, Debug, Default)]
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

fn aggregate_connections(cn: &DataFrame) -> PolarsResult<BTreeMap<LinkKey, ConnectionMeasures>> {
    let by = [col(columns::CLIENT), col(columns::SERVER)];
    let rtt_ms = || col(columns::HANDSHAKE_RTT_NS).cast(DataType::Float64) / lit(1e6);
    let zero_windows = || col(columns::C2S_ZERO_WINDOWS) + col(columns::S2C_ZERO_WINDOWS);
    let timeouts =
        || col(columns::C2S_RETRANSMISSION_TIMEOUTS) + col(columns::S2C_RETRANSMISSION_TIMEOUTS);
    // Requests per connection counts only connections that carried HTTP.
    let carried = || col(columns::EXCHANGES).filter(col(columns::EXCHANGES).gt(lit(0u32)));
    let agg = cn
        .clone()
        .lazy()
        .group_by(by)
        .agg([
            len().cast(DataType::UInt64).alias("connections"),
            count_where(col(columns::SYN_NS).is_not_null(), "tcp_handshakes"),
            count_where(col(columns::PROTOCOL).eq(lit("tls")), "tls"),
            count_where(col(columns::CLOSE).eq(lit("rst")), "resets"),
            (col(columns::C2S_RETRANSMITTED_BYTES) + col(columns::S2C_RETRANSMITTED_BYTES))
                .sum()
                .alias("retransmitted"),
            // Null only in tables written before these were counted: a link whose
            // connections all lack them has them unknown, not 0.
            zero_windows().sum().alias("zero_windows"),
            zero_windows().count().alias("zero_windows_known"),
            timeouts().sum().alias("timeouts"),
            timeouts().count().alias("timeouts_known"),
            ms_sum(col(columns::C2S_RTO_WAIT_NS) + col(columns::S2C_RTO_WAIT_NS))
                .alias("rto_wait_ms"),
            (col(columns::C2S_RTO_WAIT_NS) + col(columns::S2C_RTO_WAIT_NS))
                .count()
                .alias("rto_wait_known"),
            ms_sum(col(columns::C2S_ZERO_WINDOW_NS)).alias("client_zero_window_ms"),
            ms_sum(col(columns::S2C_ZERO_WINDOW_NS)).alias("server_zero_window_ms"),
            col(columns::C2S_ZERO_WINDOW_NS)
                .count()
                .alias("zero_window_known"),
            count_where(
                (col(columns::C2S_GAPS) + col(columns::S2C_GAPS)).gt(lit(0u64)),
                "with_gaps",
            ),
            (col(columns::C2S_GAP_BYTES) + col(columns::S2C_GAP_BYTES))
                .sum()
                .alias("gap_bytes"),
            count_where(col(columns::ONE_SIDED), columns::ONE_SIDED),
            count_where(col(columns::HANDSHAKE_SEEN).not(), "no_handshake"),
            rtt_ms()
                .quantile(lit(0.5), QuantileMethod::Linear)
                .alias("rtt_p50"),
            rtt_ms()
                .quantile(lit(0.95), QuantileMethod::Linear)
                .alias("rtt_p95"),
            carried().cast(DataType::Float64).mean().alias("rpc_mean"),
            carried()
                .quantile(lit(0.5), QuantileMethod::Linear)
                .alias("rpc_p50"),
            carried()
                .quantile(lit(0.95), QuantileMethod::Linear)
                .alias("rpc_p95"),
            carried().max().alias("rpc_max"),
            count_where(col(columns::EXCHANGES).eq(lit(1u32)), "single"),
        ])
        .collect()?;
    let protocols = value_counts(cn, &[columns::CLIENT, columns::SERVER], columns::PROTOCOL)?;
    // Tables written before the TLS columns existed simply have no TLS names.
    let has = |c: &str| cn.get_column_names().iter().any(|n| n.as_str() == c);
    let sni = if has(columns::TLS_SNI) {
        value_counts(cn, &[columns::CLIENT, columns::SERVER], columns::TLS_SNI)?
    } else {
        BTreeMap::new()
    };
    let versions = if has(columns::TLS_VERSION) {
        value_counts(
            cn,
            &[columns::CLIENT, columns::SERVER],
            columns::TLS_VERSION,
        )?
    } else {
        BTreeMap::new()
    };
    let resumed_counts = if has(columns::TLS_RESUMED) {
        let df = cn
            .clone()
            .lazy()
            .group_by([col(columns::CLIENT), col(columns::SERVER)])
            .agg([count_where(
                col(columns::TLS_RESUMED).fill_null(lit(false)),
                "resumed",
            )])
            .collect()?;
        read_keys(&df, &[columns::CLIENT, columns::SERVER])?
            .into_iter()
            .zip(u64s(&df, "resumed")?)
            .collect::<BTreeMap<Key, u64>>()
    } else {
        BTreeMap::new()
    };
    let tls_ms = if has(columns::TLS_HANDSHAKE_NS) {
        let ms = || col(columns::TLS_HANDSHAKE_NS).cast(DataType::Float64) / lit(1e6);
        let df = cn
            .clone()
            .lazy()
            .group_by([col(columns::CLIENT), col(columns::SERVER)])
            .agg([
                ms().quantile(lit(0.5), QuantileMethod::Linear).alias("p50"),
                ms().quantile(lit(0.95), QuantileMethod::Linear)
                    .alias("p95"),
            ])
            .collect()?;
        let (p50, p95) = (f64s(&df, "p50")?, f64s(&df, "p95")?);
        read_keys(&df, &[columns::CLIENT, columns::SERVER])?
            .into_iter()
            .enumerate()
            .map(|(i, k)| {
                (
                    k,
                    RttPercentiles {
                        p50: p50[i],
                        p95: p95[i],
                    },
                )
            })
            .collect::<BTreeMap<Key, RttPercentiles>>()
    } else {
        BTreeMap::new()
    };
    let alpn = if has(columns::TLS_ALPN) {
        value_counts(cn, &[columns::CLIENT, columns::SERVER], columns::TLS_ALPN)?
    } else {
        BTreeMap::new()
    };
    let counts = ConnCounts {
        protocols,
        sni,
        versions,
        alpn,
        resumed: resumed_counts,
        tls_ms,
    };
    let agg = Aggregates::from_frame(
        &agg,
        &[columns::CLIENT, columns::SERVER],
        CONN_INTS,
        CONN_FLOATS,
    )?;
    connection_measures(&agg, &counts)
}

/// The integer figures of the connections group-by.
pub(crate) const CONN_INTS: &[&str] = &[
    "connections",
    "tcp_handshakes",
    "tls",
    "resets",
    "retransmitted",
    "zero_windows",
    "zero_windows_known",
    "timeouts",
    "timeouts_known",
    "rto_wait_known",
    "zero_window_known",
    "with_gaps",
    "gap_bytes",
    columns::ONE_SIDED,
    "no_handshake",
    "single",
];

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
    let ex_names = frame::name_rows(&tables.exchanges, naming)?;
    let ex = frame::exchanges_frame(&tables.exchanges, &tables.connections, &ex_names)?;
    let clients = strs(&ex, columns::CLIENT)?;
    let servers = strs(&ex, columns::SERVER)?;
    let total = f64s(&ex, columns::TOTAL_MS)?;
    let ttfb = f64s(&ex, columns::TTFB_MS)?;
    Ok(clients
        .into_iter()
        .zip(servers)
        .zip(total.into_iter().zip(ttfb))
        .map(|((c, s), (t, f))| ExchangeDuration {
            link: (c.unwrap_or_default(), s.unwrap_or_default()),
            client_s: t.map(|ms| ms / 1e3),
            server_s: f.map(|ms| ms / 1e3),
        })
        .collect())
}
