//! `links.csv`: one row per ranked link, flat columns, for spreadsheets.

use std::path::Path;

use anyhow::Context;
use polars::prelude::*;

use crate::analysis::rank::Ranked;

/// The flat table (also what tests read back).
pub fn frame(links: &[Ranked]) -> PolarsResult<DataFrame> {
    let s = |f: &dyn Fn(&Ranked) -> String| links.iter().map(f).collect::<Vec<String>>();
    let u = |f: &dyn Fn(&Ranked) -> Option<u64>| links.iter().map(f).collect::<Vec<Option<u64>>>();
    let f = |f: &dyn Fn(&Ranked) -> Option<f64>| links.iter().map(f).collect::<Vec<Option<f64>>>();
    let h = |r: &Ranked| r.link.http.clone();
    let e = |r: &Ranked| r.link.tls_estimate.clone();
    let columns = vec![
        Column::new("rank".into(), u(&|r| Some(r.rank.into()))),
        Column::new("client".into(), s(&|r| r.link.client.clone())),
        Column::new("server".into(), s(&|r| r.link.server.clone())),
        Column::new(
            "client_source".into(),
            s(&|r| r.link.client_source.as_str().into()),
        ),
        Column::new(
            "server_source".into(),
            s(&|r| r.link.server_source.as_str().into()),
        ),
        Column::new("protocol".into(), s(&|r| r.link.protocol.clone())),
        Column::new("requests".into(), u(&|r| h(r).map(|h| h.requests))),
        Column::new(
            "requests_per_s_mean".into(),
            f(&|r| h(r).and_then(|h| h.requests_per_s.mean)),
        ),
        Column::new(
            "requests_per_s_peak".into(),
            f(&|r| h(r).and_then(|h| h.requests_per_s.peak)),
        ),
        Column::new("connections".into(), u(&|r| Some(r.link.connections))),
        Column::new("tcp_handshakes".into(), u(&|r| Some(r.link.tcp_handshakes))),
        Column::new("tls_handshakes".into(), u(&|r| Some(r.link.tls_handshakes))),
        Column::new(
            "requests_per_connection".into(),
            f(&|r| r.link.requests_per_connection),
        ),
        Column::new(
            "new_connection_share".into(),
            f(&|r| h(r).and_then(|h| h.new_connection_share)),
        ),
        Column::new(
            "handshake_rtt_p50_ms".into(),
            f(&|r| r.link.handshake_rtt_ms.p50),
        ),
        Column::new(
            "handshake_rtt_p95_ms".into(),
            f(&|r| r.link.handshake_rtt_ms.p95),
        ),
        Column::new(
            "latency_p50_ms".into(),
            f(&|r| h(r).and_then(|h| h.latency_ms.p50)),
        ),
        Column::new(
            "latency_p95_ms".into(),
            f(&|r| h(r).and_then(|h| h.latency_ms.p95)),
        ),
        Column::new(
            "latency_p99_ms".into(),
            f(&|r| h(r).and_then(|h| h.latency_ms.p99)),
        ),
        Column::new(
            "latency_total_p50_ms".into(),
            f(&|r| h(r).and_then(|h| h.latency_total_ms.p50)),
        ),
        Column::new(
            "latency_total_p95_ms".into(),
            f(&|r| h(r).and_then(|h| h.latency_total_ms.p95)),
        ),
        Column::new(
            "latency_total_p99_ms".into(),
            f(&|r| h(r).and_then(|h| h.latency_total_ms.p99)),
        ),
        Column::new(
            "request_header_bytes".into(),
            u(&|r| h(r).and_then(|h| h.bytes.request_headers)),
        ),
        Column::new(
            "request_body_bytes".into(),
            u(&|r| h(r).and_then(|h| h.bytes.request_bodies)),
        ),
        Column::new(
            "response_header_bytes".into(),
            u(&|r| h(r).and_then(|h| h.bytes.response_headers)),
        ),
        Column::new(
            "response_body_bytes".into(),
            u(&|r| h(r).and_then(|h| h.bytes.response_bodies)),
        ),
        Column::new(
            "header_share".into(),
            f(&|r| h(r).and_then(|h| h.header_share)),
        ),
        Column::new("json_share".into(), f(&|r| h(r).and_then(|h| h.json_share))),
        Column::new("status_2xx".into(), u(&|r| h(r).map(|h| h.status.s2xx))),
        Column::new("status_3xx".into(), u(&|r| h(r).map(|h| h.status.s3xx))),
        Column::new("status_4xx".into(), u(&|r| h(r).map(|h| h.status.s4xx))),
        Column::new("status_5xx".into(), u(&|r| h(r).map(|h| h.status.s5xx))),
        Column::new("status_429".into(), u(&|r| h(r).map(|h| h.status.s429))),
        Column::new("status_503".into(), u(&|r| h(r).map(|h| h.status.s503))),
        Column::new(
            "no_response".into(),
            u(&|r| h(r).map(|h| h.status.no_response)),
        ),
        Column::new("resets".into(), u(&|r| Some(r.link.resets))),
        Column::new(
            "retransmitted_bytes".into(),
            u(&|r| Some(r.link.retransmitted_bytes)),
        ),
        Column::new(
            "connections_with_gaps".into(),
            u(&|r| Some(r.link.quality.connections_with_gaps)),
        ),
        Column::new(
            "one_sided_connections".into(),
            u(&|r| Some(r.link.quality.one_sided_connections)),
        ),
        Column::new(
            "no_handshake_seen".into(),
            u(&|r| Some(r.link.quality.no_handshake_seen)),
        ),
        Column::new(
            "incomplete_exchanges".into(),
            u(&|r| Some(r.link.quality.incomplete_exchanges)),
        ),
        Column::new(
            "routes".into(),
            u(&|r| Some(r.link.routes.len() as u64 + r.link.routes_not_listed)),
        ),
        Column::new("score".into(), f(&|r| Some(r.score))),
        Column::new(
            "time_saved_ms_per_s".into(),
            f(&|r| Some(r.score_inputs.time_saved_ms_per_s)),
        ),
        Column::new(
            "bytes_saved_per_s".into(),
            f(&|r| Some(r.score_inputs.bytes_saved_per_s)),
        ),
        Column::new(
            "cpu_saved_cores".into(),
            f(&|r| Some(r.score_inputs.cpu_saved_cores)),
        ),
        Column::new("effort".into(), f(&|r| Some(r.score_inputs.effort))),
        // Estimates from TLS records read without keys (null on other links).
        Column::new(
            "tls_est_requests".into(),
            u(&|r| e(r).and_then(|e| e.requests)),
        ),
        Column::new(
            "tls_est_latency_ms".into(),
            f(&|r| e(r).and_then(|e| e.latency_ms_mean)),
        ),
        Column::new(
            "tls_est_latency_total_ms".into(),
            f(&|r| e(r).and_then(|e| e.latency_total_ms_mean)),
        ),
        Column::new(
            "tls_est_confidence".into(),
            links
                .iter()
                .map(|r| e(r).map(|e| e.confidence.clone()))
                .collect::<Vec<Option<String>>>(),
        ),
    ];
    DataFrame::new(links.len(), columns)
}

pub fn write(dir: &Path, links: &[Ranked]) -> anyhow::Result<()> {
    let path = dir.join("links.csv");
    let mut df = frame(links)?;
    let mut file = std::fs::File::create(&path)
        .with_context(|| format!("{}: cannot write", path.display()))?;
    CsvWriter::new(&mut file)
        .include_header(true)
        .finish(&mut df)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("{}: cannot write", path.display()))
}
