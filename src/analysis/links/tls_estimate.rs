//! Per link, what the TLS connections that were not decrypted show without keys: the
//! turns their records made (`crate::ingest::tls::estimate`), summed per link.

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::Serialize;

use super::frame::{f64s, strs};
use super::LinkKey;
use crate::tables::columns;

/// What cannot be estimated from TLS records, whatever the mode.
const NEVER: [&str; 4] = ["routes", "status", "headers", "bodies"];

/// Estimates for a link's TLS connections read without keys (`links.json`
/// `tls_estimate`; null when the link has none). Every figure is an estimate.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TlsEstimateMeasures {
    /// TLS connections not decrypted whose records showed request/response turns.
    pub connections: u64,
    /// `http1_turns`, `h2_rounds`, or `mixed`.
    pub mode: String,
    /// Estimated requests: the turns of the HTTP/1.1 connections (null when all are
    /// HTTP/2, whose requests cannot be told apart).
    pub requests: Option<u64>,
    /// Client bursts answered by a server burst, all connections.
    pub turns: u64,
    /// Mean over the turns of client's last record -> server's first (as `latency_ms`).
    pub latency_ms_mean: Option<f64>,
    /// Mean over the turns of client's first record -> server's last (as
    /// `latency_total_ms`).
    pub latency_total_ms_mean: Option<f64>,
    /// Plaintext bytes per turn each way.
    pub request_bytes_per_turn: Option<f64>,
    pub response_bytes_per_turn: Option<f64>,
    /// TLS handshakes (connections) per estimated request.
    pub handshakes_per_request: Option<f64>,
    /// The lowest confidence of the connections: `high`, `medium`, `low`.
    pub confidence: String,
    /// What the records cannot show for these connections.
    pub not_estimated: Vec<&'static str>,
}

/// A link's estimate columns summed over its TLS connections not decrypted: what either
/// engine (polars here, DataFusion in the fleet) adds up before [`TlsEstimateSums::measures`].
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct TlsEstimateSums {
    pub connections: u64,
    /// Connections read as HTTP/1 turns, and as HTTP/2 rounds.
    pub h1: u64,
    pub h2: u64,
    /// Estimated requests of the HTTP/1 connections.
    pub requests: u64,
    pub turns: f64,
    /// Turn-weighted sums of the connections' mean times, ns.
    pub ttfb_ns: f64,
    pub total_ns: f64,
    pub req_bytes: f64,
    pub resp_bytes: f64,
    /// The lowest confidence: 0 high, 1 medium, 2 low ([`confidence_rank`]).
    pub worst: u8,
}

/// The rank of a connection's estimate confidence: 0 high, 1 medium, 2 low (or unknown).
pub(crate) fn confidence_rank(confidence: Option<&str>) -> u8 {
    match confidence {
        Some("high") => 0,
        Some("medium") => 1,
        _ => 2,
    }
}

/// Sums the estimate columns of the connections not decrypted, per (client, server).
/// Tables written before the estimates existed have none: an empty map.
pub(super) fn per_link(cn: &DataFrame) -> PolarsResult<BTreeMap<LinkKey, TlsEstimateMeasures>> {
    let has = |c: &str| cn.get_column_names().iter().any(|n| n.as_str() == c);
    if !has(columns::TLS_EST_TURNS) {
        return Ok(BTreeMap::new());
    }
    let (client, server) = (strs(cn, columns::CLIENT)?, strs(cn, columns::SERVER)?);
    let decryption = strs(cn, columns::TLS_DECRYPTION)?;
    let mode = strs(cn, columns::TLS_EST_MODE)?;
    let conf = strs(cn, columns::TLS_EST_CONFIDENCE)?;
    let turns = f64s(cn, columns::TLS_EST_TURNS)?;
    let requests = f64s(cn, columns::TLS_EST_REQUESTS)?;
    let ttfb = f64s(cn, columns::TLS_EST_TTFB_NS)?;
    let total = f64s(cn, columns::TLS_EST_TOTAL_NS)?;
    let req_bytes = f64s(cn, columns::TLS_EST_REQ_BYTES)?;
    let resp_bytes = f64s(cn, columns::TLS_EST_RESP_BYTES)?;
    let mut sums: BTreeMap<LinkKey, TlsEstimateSums> = BTreeMap::new();
    for i in 0..cn.height() {
        let Some(n) = turns[i].filter(|&n| n > 0.0) else {
            continue;
        };
        if decryption[i].as_deref() == Some("decrypted") {
            continue;
        }
        let key = (
            client[i].clone().unwrap_or_default(),
            server[i].clone().unwrap_or_default(),
        );
        let s = sums.entry(key).or_default();
        s.connections += 1;
        if mode[i].as_deref() == Some("h2_rounds") {
            s.h2 += 1;
        } else {
            s.h1 += 1;
            s.requests += requests[i].unwrap_or(n) as u64;
        }
        s.turns += n;
        s.ttfb_ns += ttfb[i].unwrap_or(0.0) * n;
        s.total_ns += total[i].unwrap_or(0.0) * n;
        s.req_bytes += req_bytes[i].unwrap_or(0.0);
        s.resp_bytes += resp_bytes[i].unwrap_or(0.0);
        s.worst = s.worst.max(confidence_rank(conf[i].as_deref()));
    }
    Ok(sums.into_iter().map(|(k, s)| (k, s.measures())).collect())
}

impl TlsEstimateSums {
    /// The link's estimate from its sums.
    pub(crate) fn measures(&self) -> TlsEstimateMeasures {
        let s = self;
        let per_turn = |x: f64| (s.turns > 0.0).then(|| x / s.turns);
        let mut not_estimated = Vec::new();
        if s.h2 > 0 {
            // Interleaved streams: a round is not a request.
            not_estimated.push("requests (HTTP/2)");
        }
        not_estimated.extend(NEVER);
        TlsEstimateMeasures {
            connections: s.connections,
            mode: match (s.h1, s.h2) {
                (_, 0) => "http1_turns",
                (0, _) => "h2_rounds",
                _ => "mixed",
            }
            .into(),
            requests: (s.h1 > 0).then_some(s.requests),
            turns: s.turns as u64,
            latency_ms_mean: per_turn(s.ttfb_ns / 1e6),
            latency_total_ms_mean: per_turn(s.total_ns / 1e6),
            request_bytes_per_turn: per_turn(s.req_bytes),
            response_bytes_per_turn: per_turn(s.resp_bytes),
            handshakes_per_request: (s.h1 > 0 && s.requests > 0)
                .then(|| s.h1 as f64 / s.requests as f64),
            confidence: ["high", "medium", "low"][usize::from(s.worst.min(2))].into(),
            not_estimated,
        }
    }
}
