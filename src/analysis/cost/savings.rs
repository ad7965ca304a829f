//! Per-link savings: the formulas of `docs/cost-model.md` §2 fed with measurements, the
//! constants only where nothing was measured (and then said so).

use std::collections::BTreeMap;
use std::net::IpAddr;

use polars::prelude::*;
use serde::Serialize;

use super::CostConstants;
use crate::analysis::identity::Naming;
use crate::analysis::links::{Link, LinkKey};
use crate::tables::columns;

/// Now and after, per request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct HeaderBytes {
    pub now: Option<f64>,
    pub http2: Option<f64>,
    pub grpc: Option<f64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct BodyBytes {
    pub now: Option<f64>,
    pub protobuf: Option<f64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct SerializationMicros {
    pub now: Option<f64>,
    pub protobuf: Option<f64>,
}

/// How many observations stand behind each figure, and where a constant stood in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Samples {
    /// Connections whose handshake was captured.
    pub handshakes: u64,
    /// TLS connections whose version was seen.
    pub tls_versions_seen: u64,
    /// Exchanges whose request and response headers were replayed through HPACK.
    pub header_replays: u64,
    /// JSON documents encoded as protobuf.
    pub json_documents: u64,
    /// The TLS handshake wait is the capture's measure (not round trips x RTT + crypto
    /// constants).
    pub tls_handshake_measured: bool,
    /// The header figures come from the cold-HPACK constant, not a replay.
    pub headers_from_constant: bool,
    /// The body and serialization figures come from constants, not samples.
    pub bodies_from_constant: bool,
}

/// What the link would save as pooled gRPC, per request and per second of capture.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Savings {
    /// New TCP connections per request today (null without visible requests).
    pub handshakes_per_request: Option<f64>,
    /// TLS round trips beyond TCP's per connection, averaged over all the link's
    /// connections (0 for plaintext).
    pub tls_extra_rtts: f64,
    /// The wait one TLS handshake adds beyond TCP's, in ms: the capture's median
    /// ClientHello -> first client data (TLS 1.3) or -> server Finished (TLS 1.2) where it
    /// saw handshakes, else the extra round trips x RTT + the crypto constants.
    pub tls_handshake_ms: Option<f64>,
    /// Handshakes a pooled channel per (client address, server listener) would not make.
    pub handshakes_per_s_saved: Option<f64>,
    /// Waiting per request removed: saved handshakes x ((1 + TLS RTTs) x RTT + crypto).
    pub handshake_ms_per_request_saved: Option<f64>,
    pub crypto_cpu_ms_per_s_saved: Option<f64>,
    pub header_bytes_per_request: HeaderBytes,
    pub body_bytes_per_request: BodyBytes,
    /// protobuf / JSON bytes of the sampled documents (or the constant).
    pub protobuf_ratio: Option<f64>,
    /// Serialize + parse time of the bodies per request, today and as protobuf.
    pub serialization_us_per_request: SerializationMicros,
    pub bytes_per_s_saved: Option<f64>,
    pub cpu_ms_per_s_saved: Option<f64>,
    pub latency_ms_per_request_saved: Option<f64>,
    /// Waiting removed per second of capture (Little's law: requests in flight x 1000),
    /// also for links whose requests are not visible (from their handshakes).
    pub latency_ms_per_s_saved: Option<f64>,
    pub samples: Samples,
    pub sampled_bodies: SampledBodies,
}

/// Sampled JSON documents of one link (from the `payloads` table).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PayloadSamples {
    pub documents: u64,
    pub json_bytes: u64,
    pub protobuf_bytes: u64,
    /// Byte-weighted sums of the measured costs (ns), to average per link.
    pub json_parse_ns: f64,
    pub protobuf_decode_ns: f64,
    /// JSON bytes that had a measured parse cost (and protobuf bytes a decode cost).
    pub timed_json_bytes: u64,
    pub timed_protobuf_bytes: u64,
    /// gzip sizes of all the sampled documents, as JSON and as protobuf (0 without
    /// samples).
    pub json_gzip_bytes: u64,
    pub protobuf_gzip_bytes: u64,
    /// JSON bodies seen, and bodies of other kinds (not estimated).
    pub json_bodies: u64,
    pub non_json_bodies: u64,
    /// Integers beyond 2^53 and fields that change JSON type, over the samples.
    pub unsafe_integers: u64,
    pub type_conflicts: u64,
}

/// The sampled documents behind a link's body and serialization figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct SampledBodies {
    pub documents: u64,
    pub json_bytes: u64,
    pub protobuf_bytes: u64,
    /// gzip sizes of the sampled documents (all of them), as JSON and as protobuf.
    pub json_gzip_bytes: Option<u64>,
    pub protobuf_gzip_bytes: Option<u64>,
    /// Measured in process on the samples.
    pub json_parse_ns_per_byte: Option<f64>,
    pub protobuf_decode_ns_per_byte: Option<f64>,
    /// Bodies that are not JSON (form, XML, multipart, text, binary): not estimated.
    pub non_json_bodies: u64,
    /// Their share of all bodies seen.
    pub non_json_share: Option<f64>,
    /// Integers beyond 2^53 in the samples (JavaScript clients lose them).
    pub unsafe_integers: u64,
    /// Fields whose JSON type changes across the samples (schema drift).
    pub type_conflicts: u64,
}

/// Sums the `payloads` table per link (rows whose endpoints name the link).
pub fn payloads_by_link(
    payloads: &DataFrame,
    naming: &Naming,
) -> PolarsResult<BTreeMap<LinkKey, PayloadSamples>> {
    let mut out: BTreeMap<LinkKey, PayloadSamples> = BTreeMap::new();
    let cip = payloads.column(columns::CLIENT_IP)?.str()?;
    let sip = payloads.column(columns::SERVER_IP)?.str()?;
    let sport = payloads
        .column(columns::SERVER_PORT)?
        .cast(&DataType::UInt32)?;
    let sport = sport.u32()?;
    let num = |c: &str| -> PolarsResult<Vec<Option<f64>>> {
        Ok(payloads
            .column(c)?
            .cast(&DataType::Float64)?
            .f64()?
            .iter()
            .collect())
    };
    let samples = num(columns::SAMPLES)?;
    let json = num(columns::SAMPLED_JSON_BYTES)?;
    let pb = num(columns::SAMPLED_PROTOBUF_BYTES)?;
    let parse = num(columns::JSON_PARSE_NS_PER_BYTE)?;
    let decode = num(columns::PROTOBUF_DECODE_NS_PER_BYTE)?;
    let json_gz = num(columns::SAMPLED_JSON_GZIP_BYTES)?;
    let pb_gz = num(columns::SAMPLED_PROTOBUF_GZIP_BYTES)?;
    let bodies = num(columns::BODIES)?;
    let non_json = num(columns::NON_JSON_BODIES)?;
    // Null in tables written before these columns existed.
    let opt = |c: &str| -> PolarsResult<Vec<Option<f64>>> {
        if payloads.get_column_names().iter().any(|n| n.as_str() == c) {
            num(c)
        } else {
            Ok(vec![None; payloads.height()])
        }
    };
    let unsafe_ints = opt(columns::UNSAFE_INTEGERS)?;
    let conflicts = opt(columns::TYPE_CONFLICTS)?;
    for i in 0..payloads.height() {
        let (Some(c), Some(s), Some(p)) = (cip.get(i), sip.get(i), sport.get(i)) else {
            continue;
        };
        let (Ok(c), Ok(s)) = (c.parse::<IpAddr>(), s.parse::<IpAddr>()) else {
            continue;
        };
        let key = (naming.client(c).name, naming.server(s, p as u16).name);
        let e = out.entry(key).or_default();
        let (j, b) = (json[i].unwrap_or(0.0), pb[i].unwrap_or(0.0));
        e.documents += samples[i].unwrap_or(0.0) as u64;
        e.json_bytes += j as u64;
        e.protobuf_bytes += b as u64;
        e.json_gzip_bytes += json_gz[i].unwrap_or(0.0) as u64;
        e.protobuf_gzip_bytes += pb_gz[i].unwrap_or(0.0) as u64;
        e.json_bodies += bodies[i].unwrap_or(0.0) as u64;
        e.non_json_bodies += non_json[i].unwrap_or(0.0) as u64;
        e.unsafe_integers += unsafe_ints[i].unwrap_or(0.0) as u64;
        e.type_conflicts += conflicts[i].unwrap_or(0.0) as u64;
        if let Some(ns) = parse[i] {
            e.json_parse_ns += ns * j;
            e.timed_json_bytes += j as u64;
        }
        if let Some(ns) = decode[i] {
            e.protobuf_decode_ns += ns * b;
            e.timed_protobuf_bytes += b as u64;
        }
    }
    Ok(out)
}

/// The savings of one link. `seconds` is the capture span.
pub fn link_savings(
    link: &Link,
    seconds: Option<f64>,
    payload: Option<&PayloadSamples>,
    constants: &CostConstants,
) -> Savings {
    let mut s = Savings::default();
    // Every saving is projected from what the wire shows (handshakes, header and JSON
    // bytes); spans show none of it, so a link only traces showed has none (null), and
    // ranks after the measured links until a capture shows it.
    if link.evidence == crate::analysis::links::Evidence::Traces {
        return s;
    }
    // A link that already speaks HTTP/2 or gRPC has no gRPC saving to project.
    if link.already_migrated().is_some() {
        return s;
    }
    let secs = seconds.filter(|t| *t > 0.0);
    let requests = link.http.as_ref().map_or(0, |h| h.requests);
    let per_request = |x: f64| (requests > 0).then(|| x / requests as f64);
    let per_second = |x: f64| secs.map(|t| x / t);

    // Handshakes: one pooled channel per (client address, server listener) stays.
    let channels = (link.client_addresses.len() * link.server_endpoints.len()) as f64
        * constants.pooled_channels_per_pair;
    let handshakes = link.tcp_handshakes as f64;
    let saved = (handshakes - channels).max(0.0);
    let tls_share = if link.connections > 0 {
        link.tls_handshakes as f64 / link.connections as f64
    } else {
        0.0
    };
    s.tls_extra_rtts = tls_share * tls_round_trips(link, constants);
    let rtt = link.handshake_rtt_ms.p50.unwrap_or(0.0);
    let resumed_share = if link.tls_handshakes > 0 {
        link.tls_resumed as f64 / link.tls_handshakes as f64
    } else {
        0.0
    };
    // Crypto per saved handshake, both ends: full handshakes and resumed ones.
    let crypto_ms = tls_share
        * ((1.0 - resumed_share)
            * (constants.tls_server_crypto_ms + constants.tls_client_crypto_ms)
            + resumed_share * constants.tls_resumed_crypto_ms);
    // The TLS wait per connection: measured where the capture saw handshakes (it holds
    // the round trips and both ends' crypto as they really took), else modelled.
    let modelled_tls_ms = tls_round_trips(link, constants) * rtt
        + (1.0 - resumed_share) * (constants.tls_server_crypto_ms + constants.tls_client_crypto_ms)
        + resumed_share * constants.tls_resumed_crypto_ms;
    let measured_tls_ms = link
        .tls_handshake_ms
        .p50
        .filter(|_| link.tls_handshakes > 0);
    s.samples.tls_handshake_measured = measured_tls_ms.is_some();
    let tls_ms = measured_tls_ms.unwrap_or(modelled_tls_ms);
    s.tls_handshake_ms = (link.tls_handshakes > 0).then_some(tls_ms);
    s.handshakes_per_request = per_request(handshakes);
    s.handshakes_per_s_saved = per_second(saved);
    // CPU cannot be seen on the wire: the crypto constants stay for the cores.
    s.crypto_cpu_ms_per_s_saved = per_second(saved * crypto_ms);
    let handshake_wait_ms = rtt + tls_share * tls_ms;
    s.handshake_ms_per_request_saved = per_request(saved).map(|h| h * handshake_wait_ms);
    s.latency_ms_per_s_saved = per_second(saved * handshake_wait_ms);
    s.samples.handshakes = link.tcp_handshakes;
    s.samples.tls_versions_seen = link.tls_versions.iter().map(|c| c.count).sum();

    let Some(h) = link.http.as_ref() else {
        // No visible HTTP: only the handshake saving is known.
        s.cpu_ms_per_s_saved = s.crypto_cpu_ms_per_s_saved;
        return s;
    };
    let r = h.requests.max(1) as f64;

    // Headers: the replay where it exists, else the cold-HPACK constant.
    let now_headers =
        (h.bytes.request_headers.unwrap_or(0) + h.bytes.response_headers.unwrap_or(0)) as f64 / r;
    let replay = &h.header_replay;
    let (http2, grpc) = if replay.exchanges > 0 && replay.http1_bytes > 0 {
        // Scale the replayed exchanges' ratio to all of the link's header bytes.
        let ratio = |x: u64| x as f64 / replay.http1_bytes as f64;
        (
            now_headers * ratio(replay.http2_bytes),
            now_headers * ratio(replay.grpc_bytes),
        )
    } else {
        s.samples.headers_from_constant = true;
        let h2 = now_headers * constants.hpack_cold_ratio;
        (h2, h2 + constants.grpc_framing_bytes)
    };
    s.samples.header_replays = replay.exchanges;
    s.header_bytes_per_request = HeaderBytes {
        now: Some(now_headers),
        http2: Some(http2),
        grpc: Some(grpc),
    };

    // Bodies: only JSON changes; the sampled ratio where documents were encoded.
    let bodies =
        (h.bytes.request_bodies.unwrap_or(0) + h.bytes.response_bodies.unwrap_or(0)) as f64;
    let json = h.json_body_bytes as f64;
    let sampled = payload.filter(|p| p.documents > 0 && p.json_bytes > 0);
    let ratio = match sampled {
        Some(p) => p.protobuf_bytes as f64 / p.json_bytes as f64,
        None => {
            s.samples.bodies_from_constant = true;
            constants.protobuf_size_ratio
        }
    };
    s.samples.json_documents = sampled.map_or(0, |p| p.documents);
    if let Some(p) = payload {
        let all = p.json_bodies + p.non_json_bodies;
        s.sampled_bodies = SampledBodies {
            documents: p.documents,
            json_bytes: p.json_bytes,
            protobuf_bytes: p.protobuf_bytes,
            json_gzip_bytes: (p.json_gzip_bytes > 0).then_some(p.json_gzip_bytes),
            protobuf_gzip_bytes: (p.json_gzip_bytes > 0).then_some(p.protobuf_gzip_bytes),
            json_parse_ns_per_byte: (p.timed_json_bytes > 0)
                .then(|| p.json_parse_ns / p.timed_json_bytes as f64),
            protobuf_decode_ns_per_byte: (p.timed_protobuf_bytes > 0)
                .then(|| p.protobuf_decode_ns / p.timed_protobuf_bytes as f64),
            non_json_bodies: p.non_json_bodies,
            non_json_share: (all > 0).then(|| p.non_json_bodies as f64 / all as f64),
            unsafe_integers: p.unsafe_integers,
            type_conflicts: p.type_conflicts,
        };
    }
    s.protobuf_ratio = Some(ratio);
    s.body_bytes_per_request = BodyBytes {
        now: Some(bodies / r),
        protobuf: Some((bodies - json + json * ratio) / r),
    };

    // Serialization: the sender serializes, the receiver parses. Parse and decode costs
    // are measured on the samples when there are any.
    let parse_ns = sampled
        .filter(|p| p.timed_json_bytes > 0)
        .map_or(constants.json_parse_ns_per_byte, |p| {
            p.json_parse_ns / p.timed_json_bytes as f64
        });
    let decode_ns = sampled.filter(|p| p.timed_protobuf_bytes > 0).map_or(
        constants.json_parse_ns_per_byte / constants.protobuf_speedup,
        |p| p.protobuf_decode_ns / p.timed_protobuf_bytes as f64,
    );
    let json_us = json / r * (parse_ns + constants.json_serialize_ns_per_byte) / 1e3;
    let pb_us = json * ratio / r * decode_ns * (1.0 + constants.protobuf_encode_over_decode) / 1e3;
    s.serialization_us_per_request = SerializationMicros {
        now: Some(json_us),
        protobuf: Some(pb_us),
    };

    let lambda = per_second(h.requests as f64);
    let bytes_saved_per_request = (now_headers - grpc) + (json - json * ratio) / r;
    s.bytes_per_s_saved = lambda.map(|l| l * bytes_saved_per_request);
    let ser_saved_ms = (json_us - pb_us) / 1e3;
    s.cpu_ms_per_s_saved =
        lambda.map(|l| l * ser_saved_ms + s.crypto_cpu_ms_per_s_saved.unwrap_or(0.0));
    s.latency_ms_per_request_saved =
        Some(s.handshake_ms_per_request_saved.unwrap_or(0.0) + ser_saved_ms);
    s.latency_ms_per_s_saved = lambda.map(|l| l * s.latency_ms_per_request_saved.unwrap_or(0.0));
    s
}

/// Extra round trips per TLS handshake on this link, from the versions seen (a version
/// not seen counts at the pessimistic end the constants give).
fn tls_round_trips(link: &Link, constants: &CostConstants) -> f64 {
    if link.tls_handshakes == 0 {
        return 0.0;
    }
    let seen: u64 = link.tls_versions.iter().map(|c| c.count).sum();
    let mut total = 0.0;
    let mut tls12 = 0u64;
    for c in &link.tls_versions {
        if c.value == "TLS 1.3" {
            total += c.count as f64 * constants.tls13_extra_rtts;
        } else {
            tls12 += c.count;
            total += c.count as f64 * constants.tls12_full_extra_rtts;
        }
    }
    // Resumption saves a round trip in TLS 1.2 only (1.3 takes one either way); resumed
    // connections are taken to be TLS 1.2 ones first: fewer round trips today, the end
    // that saves least.
    let resumed12 = link.tls_resumed.min(tls12) as f64;
    total -=
        resumed12 * (constants.tls12_full_extra_rtts - constants.tls12_resumed_extra_rtts).max(0.0);
    let unseen = link.tls_handshakes.saturating_sub(seen) as f64;
    total += unseen * constants.tls_unknown_extra_rtts;
    total / link.tls_handshakes as f64
}
