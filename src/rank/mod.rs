//! Ranking: the one place that turns link measures into a score and an order.
//!
//! This is the *first* score: the savings formulas of the cost model
//! (`docs/ranking.md`, after `../shared/cost-model.md` §2) fed only with what the links
//! measure today, each constant at the pessimistic end of its range and the fallbacks the
//! model gives where a measurement (HPACK replay, protobuf sizes, TLS versions, critical
//! paths) does not exist yet. Replacing it means replacing [`rank`].

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::links::{Link, LinkSet};

/// Constants of the first score; every one is documented with its source in
/// `docs/ranking.md`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct FirstScoreConstants {
    /// Extra round trips of a TLS handshake beyond TCP's (TLS 1.3 / resumed 1.2: 1; the
    /// pessimistic end, since the version is not parsed yet).
    pub tls_extra_rtts: f64,
    /// HTTP/2 header bytes as a share of HTTP/1.1's on a cold connection (fallback for an
    /// HPACK replay; 0.4-0.8, pessimistic 0.8).
    pub hpack_ratio: f64,
    /// gRPC framing per unary call, bytes.
    pub grpc_framing_bytes: f64,
    /// Protobuf size / JSON size (no samples: 0.45).
    pub protobuf_ratio: f64,
    /// serde_json serialize and deserialize cost, ns per byte (low ends).
    pub json_ser_ns_per_byte: f64,
    pub json_de_ns_per_byte: f64,
    /// Protobuf speed-up over JSON (k = 2 is conservative).
    pub protobuf_speedup: f64,
    /// Server and client crypto per full TLS handshake, ms (ECDSA P-256 server; client
    /// low end).
    pub tls_server_ms: f64,
    pub tls_client_ms: f64,
    /// Effort added when the link faces callers outside the captured system.
    pub external_effort: f64,
}

impl Default for FirstScoreConstants {
    fn default() -> Self {
        FirstScoreConstants {
            tls_extra_rtts: 1.0,
            hpack_ratio: 0.8,
            grpc_framing_bytes: 60.0,
            protobuf_ratio: 0.45,
            json_ser_ns_per_byte: 2.4,
            json_de_ns_per_byte: 3.3,
            protobuf_speedup: 2.0,
            tls_server_ms: 0.14,
            tls_client_ms: 0.15,
            external_effort: 5.0,
        }
    }
}

/// The savings behind a score, per second of capture, next to the rank in every output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct ScoreInputs {
    /// Handshake waiting removed by a pooled channel: latency-ms per second (Little's law:
    /// requests in flight x 1000).
    pub time_saved_ms_per_s: f64,
    /// Header bytes HTTP/2 + gRPC framing would not send, plus JSON bytes protobuf would
    /// not send.
    pub bytes_saved_per_s: f64,
    /// TLS handshake crypto and JSON (de)serialization CPU removed, in cores.
    pub cpu_saved_cores: f64,
    /// Distinct routes + callers of the server + [external] x 5.
    pub effort: f64,
    /// The caller is outside the captured system (it serves no captured request).
    pub external: bool,
}

/// A link with its place in the ranking.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Ranked {
    pub rank: u32,
    pub score: f64,
    pub score_inputs: ScoreInputs,
    #[serde(flatten)]
    pub link: Link,
}

/// Scores and orders the links, best first (ties by client, then server name).
pub fn rank(set: &LinkSet, k: &FirstScoreConstants) -> Vec<Ranked> {
    let servers: BTreeSet<&str> = set.links.iter().map(|l| l.server.as_str()).collect();
    let mut callers: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for l in &set.links {
        callers.entry(&l.server).or_default().insert(&l.client);
    }
    let inputs: Vec<ScoreInputs> = set
        .links
        .iter()
        .map(|l| {
            let external = !servers.contains(l.client.as_str());
            let routes = (l.routes.len() as u64 + l.routes_not_listed) as f64;
            let n_callers = callers.get(l.server.as_str()).map_or(1, |c| c.len()) as f64;
            let mut s = savings(l, set.capture_seconds, k);
            s.effort = routes + n_callers + if external { k.external_effort } else { 0.0 };
            s.external = external;
            s
        })
        .collect();
    let total = |f: fn(&ScoreInputs) -> f64| inputs.iter().map(f).sum::<f64>();
    let (ts, tb, tc) = (
        total(|s| s.time_saved_ms_per_s),
        total(|s| s.bytes_saved_per_s),
        total(|s| s.cpu_saved_cores),
    );
    let share = |x: f64, t: f64| if t > 0.0 { x / t } else { 0.0 };
    let mut ranked: Vec<Ranked> = set
        .links
        .iter()
        .zip(inputs)
        .map(|(l, s)| {
            let normalised = (share(s.time_saved_ms_per_s, ts)
                + share(s.bytes_saved_per_s, tb)
                + share(s.cpu_saved_cores, tc))
                / 3.0;
            Ranked {
                rank: 0,
                score: normalised / (1.0 + s.effort),
                score_inputs: s,
                link: l.clone(),
            }
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.link.client.cmp(&b.link.client))
            .then_with(|| a.link.server.cmp(&b.link.server))
    });
    for (i, r) in ranked.iter_mut().enumerate() {
        r.rank = i as u32 + 1;
    }
    ranked
}

/// The three savings of one link, per second of capture.
fn savings(l: &Link, capture_seconds: Option<f64>, k: &FirstScoreConstants) -> ScoreInputs {
    let Some(secs) = capture_seconds.filter(|s| *s > 0.0) else {
        return ScoreInputs::default();
    };
    let tls = l.tls_handshakes > 0;
    let rtt_ms = l.handshake_rtt_ms.p50.unwrap_or(0.0);
    let round_trips = 1.0 + if tls { k.tls_extra_rtts } else { 0.0 };
    // New connections per second: each paid a handshake that a pooled channel would not.
    let handshakes_per_s = l.tcp_handshakes as f64 / secs;
    let time_saved_ms_per_s = handshakes_per_s * round_trips * rtt_ms;
    let crypto_cores = if tls {
        l.tls_handshakes as f64 / secs * (k.tls_server_ms + k.tls_client_ms) / 1e3
    } else {
        0.0
    };
    let (bytes_saved_per_s, json_cores) = match &l.http {
        Some(h) => {
            let lambda = h.requests as f64 / secs;
            let headers =
                h.bytes.request_headers.unwrap_or(0) + h.bytes.response_headers.unwrap_or(0);
            let per_request_headers = headers as f64 / h.requests.max(1) as f64;
            let header_saved =
                (per_request_headers * (1.0 - k.hpack_ratio) - k.grpc_framing_bytes).max(0.0);
            let bodies = h.bytes.request_bodies.unwrap_or(0) + h.bytes.response_bodies.unwrap_or(0);
            // Only JSON bodies change size; the share of requests with JSON stands in for
            // the share of body bytes.
            let json_bytes_per_s = bodies as f64 / secs * h.json_share.unwrap_or(0.0);
            let body_saved = json_bytes_per_s * (1.0 - k.protobuf_ratio);
            let json_cores = json_bytes_per_s
                * (k.json_ser_ns_per_byte + k.json_de_ns_per_byte)
                * (1.0 - 1.0 / k.protobuf_speedup)
                / 1e9;
            (lambda * header_saved + body_saved, json_cores)
        }
        None => (0.0, 0.0),
    };
    ScoreInputs {
        time_saved_ms_per_s,
        bytes_saved_per_s,
        cpu_saved_cores: crypto_cores + json_cores,
        effort: 0.0,
        external: false,
    }
}
