//! The fleet's per-link aggregates as the links `analyze` measures, for the same
//! assessment, ranking, plan and reports. Fields the fleet query does not aggregate yet
//! stay at their "not measured" value (null, or 0 for counts; docs/fleet.md lists them).

use std::collections::BTreeMap;

use crate::analysis::chains::LinkChain;
use crate::analysis::identity::NameSource;
use crate::analysis::links::{
    Bytes, BytesPerRequest, Evidence, HttpMeasures, Link, LinkKey, LinkQuality, LinkSet,
    PerConnection, Percentiles, Rate, RttPercentiles, StatusMix,
};

use super::engine::{FleetResult, LinkAgg};

/// The links and their chain objects.
pub fn link_set(result: &FleetResult) -> (LinkSet, BTreeMap<LinkKey, LinkChain>) {
    let capture_seconds = match (result.figures.first_ns, result.figures.last_ns) {
        (Some(f), Some(l)) if l > f => Some((l - f) as f64 / 1e9),
        _ => None,
    };
    let mut set = LinkSet {
        links: Vec::new(),
        capture_seconds,
        payloadless_connections_unlinked: 0,
    };
    let mut chains = BTreeMap::new();
    for ((client, server), a) in &result.links {
        if a.requests == 0 && a.connection_protocols.keys().all(|p| p == "empty") {
            set.payloadless_connections_unlinked += a.connections;
            continue;
        }
        set.links.push(link(client, server, a, capture_seconds));
        chains.insert((client.clone(), server.clone()), chain(a));
    }
    (set, chains)
}

/// The most frequent value, ties to the smallest (as `sorted_counts` orders them).
fn most(counts: &BTreeMap<String, u64>, skip: &str) -> Option<String> {
    counts
        .iter()
        .filter(|(p, _)| p.as_str() != skip)
        .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
        .map(|(p, _)| p.clone())
}

fn link(client: &str, server: &str, a: &LinkAgg, seconds: Option<f64>) -> Link {
    let http = (a.requests > 0).then(|| http(a, seconds));
    let protocol = if a.requests > 0 {
        most(&a.exchange_protocols, "").unwrap_or_else(|| "http/1.1".into())
    } else {
        most(&a.connection_protocols, "empty").unwrap_or_else(|| "empty".into())
    };
    Link {
        client: client.to_owned(),
        // The identity table's source is not carried through the aggregate yet.
        client_source: NameSource::Fallback,
        server: server.to_owned(),
        server_source: NameSource::Fallback,
        server_endpoints: Vec::new(),
        client_addresses: Vec::new(),
        protocol,
        connections: a.connections,
        tcp_handshakes: a.tcp_handshakes,
        tls_handshakes: a.tls_connections,
        requests_per_connection: None,
        requests_per_connection_dist: PerConnection::default(),
        handshake_rtt_ms: RttPercentiles::default(),
        tls_versions: Vec::new(),
        tls_resumed: 0,
        tls_handshake_ms: RttPercentiles::default(),
        tls_server_names: Vec::new(),
        tls_alpn_offered: Vec::new(),
        tls_estimate: None,
        resets: a.resets,
        retransmitted_bytes: a.retransmitted_bytes,
        zero_window_events: None,
        retransmission_timeouts: None,
        rto_wait_ms: None,
        client_zero_window_ms: None,
        server_zero_window_ms: None,
        quality: LinkQuality {
            incomplete_exchanges: a.incomplete,
            ..LinkQuality::default()
        },
        http,
        routes: Vec::new(),
        routes_not_listed: 0,
        evidence: Evidence::Capture,
        traced_calls: None,
        async_share: None,
        broker: None,
    }
}

fn http(a: &LinkAgg, seconds: Option<f64>) -> HttpMeasures {
    let n = a.requests as f64;
    let per = |b: u64| Some(b as f64 / n);
    let [qh, qb, sh, sb] = a.bytes;
    let all = qh + qb + sh + sb;
    let s = a.status;
    HttpMeasures {
        requests: a.requests,
        requests_per_s: Rate {
            mean: seconds.filter(|t| *t > 0.0).map(|t| n / t),
            peak: a.peak_per_s.map(|p| p as f64),
        },
        latency_ms: percentiles(&a.ttfb_ms),
        latency_total_ms: percentiles(&a.total_ms),
        bytes: Bytes {
            request_headers: Some(qh),
            request_bodies: Some(qb),
            response_headers: Some(sh),
            response_bodies: Some(sb),
        },
        bytes_per_request: BytesPerRequest {
            request_headers: per(qh),
            request_bodies: per(qb),
            response_headers: per(sh),
            response_bodies: per(sb),
        },
        header_share: (all > 0).then(|| (qh + sh) as f64 / all as f64),
        status: StatusMix {
            s1xx: s[0],
            s2xx: s[1],
            s3xx: s[2],
            s4xx: s[3],
            s5xx: s[4],
            s429: s[5],
            s503: s[6],
            no_response: s[7],
            ..StatusMix::default()
        },
        new_connection_share: Some(a.new_connections as f64 / n),
        incomplete: a.incomplete,
        ..HttpMeasures::default()
    }
}

fn percentiles(b: &super::sketch::Buckets) -> Percentiles {
    Percentiles {
        p50: b.quantile(0.50),
        p95: b.quantile(0.95),
        p99: b.quantile(0.99),
    }
}

fn chain(a: &LinkAgg) -> LinkChain {
    let c = &a.chain;
    let w = c.with_parent as f64;
    LinkChain {
        calls_per_parent: crate::analysis::chains::link_chain::CallsPerParent {
            mean: (c.parents > 0).then(|| w / c.parents as f64),
            max: (c.parents > 0).then_some(c.max_per_parent),
        },
        inferred_confidence: (c.with_parent > 0).then(|| c.confidence_sum / w),
        confirmed_by_ids_share: (c.with_parent > 0).then(|| c.by_ids as f64 / w),
        calls: a.requests,
        ..LinkChain::default()
    }
}
