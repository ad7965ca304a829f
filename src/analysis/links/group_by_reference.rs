//! The link measures as polars group-bys over whole frames: the reference the folds
//! (`fold`) are checked against, figure by figure, on real captures.

use std::collections::BTreeMap;

use polars::prelude::*;

use super::frame::{f64s, periodic_failure, strs, PeriodicByRoute};
use super::measure::*;
use super::*;
use crate::tables::columns;

impl Aggregates {
    /// The `keys`, `ints` and `floats` columns of a polars group-by.
    pub(crate) fn from_frame(
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

/// Requests, rates, latency, bytes, content types, status and versions per group, as
/// one polars group-by over a whole frame: the reference the fold is checked against.
pub(crate) fn aggregate_http(
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

fn read_keys(df: &DataFrame, keys: &[&str]) -> PolarsResult<Vec<Key>> {
    let cols: Vec<Vec<Option<String>>> = keys
        .iter()
        .map(|k| strs(df, k))
        .collect::<PolarsResult<_>>()?;
    Ok((0..df.height())
        .map(|i| cols.iter().map(|c| c[i].clone()).collect())
        .collect())
}

/// The connection measures per link as one polars group-by over a whole frame: the
/// reference the fold is checked against.
pub(crate) fn aggregate_connections(
    cn: &DataFrame,
) -> PolarsResult<BTreeMap<LinkKey, ConnectionMeasures>> {
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

/// A column as `u64`s (nulls as 0: counts and sums).
pub(crate) fn u64s(df: &DataFrame, name: &str) -> PolarsResult<Vec<u64>> {
    let c = df.column(name)?.cast(&DataType::UInt64)?;
    Ok(c.u64()?.iter().map(|v| v.unwrap_or(0)).collect())
}

/// Failures of one status on a route that come every n-th request (n >= 2), with at least
/// 4 failures and 80% of the gaps between them exactly n, keyed like the route measures
/// (client, server, method, route). Over the named exchanges frame, in request order.
pub(crate) fn periodic_failures(ex: &DataFrame) -> PolarsResult<PeriodicByRoute> {
    let s = |c: &str| ex.column(c).and_then(|c| c.str().cloned());
    let (client, server, method, route) = (
        s(columns::CLIENT)?,
        s(columns::SERVER)?,
        s(columns::METHOD)?,
        s(columns::ROUTE)?,
    );
    let status = ex.column(columns::STATUS)?.u32()?.clone();
    let start = ex.column(columns::REQ_FIRST_NS)?.i64()?.clone();
    // (request start, status) of every exchange, per route.
    type Starts = Vec<(i64, Option<u32>)>;
    let mut rows: BTreeMap<Vec<Option<String>>, Starts> = BTreeMap::new();
    for i in 0..ex.height() {
        let Some(t) = start.get(i) else { continue };
        let key = vec![
            client.get(i).map(str::to_owned),
            server.get(i).map(str::to_owned),
            method.get(i).map(str::to_owned),
            route.get(i).map(str::to_owned),
        ];
        rows.entry(key).or_default().push((t, status.get(i)));
    }
    let mut out = BTreeMap::new();
    for (key, mut v) in rows {
        v.sort_by_key(|r| r.0);
        let mut by_status: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
        for (i, (_, st)) in v.iter().enumerate() {
            if let Some(st) = st.filter(|s| *s >= 500 || *s == 429) {
                by_status.entry(st).or_default().push(i as u64);
            }
        }
        let mut found = Vec::new();
        for (st, idx) in by_status {
            let mut gaps: BTreeMap<u64, u64> = BTreeMap::new();
            for w in idx.windows(2) {
                *gaps.entry(w[1] - w[0]).or_default() += 1;
            }
            found.extend(periodic_failure(st, idx.len() as u64, &gaps));
        }
        if !found.is_empty() {
            out.insert(key, found);
        }
    }
    Ok(out)
}
