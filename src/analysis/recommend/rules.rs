//! The decision rules of docs/cost-model.md ("Recommendations"), first match wins, and the
//! gain of each target.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    BrokerChoice, BrokerKind, Confidence, Fix, Gain, Recommendation, Subject, Target, TransportFix,
    TransportFixKind,
};
use crate::analysis::cost::{units, CostConstants};
use crate::analysis::links::Evidence;

/// What the rules need from the whole run.
pub(super) struct Fleet {
    /// Services that serve some link: a caller outside this set is external.
    servers: BTreeSet<String>,
    /// Fleet totals of the gRPC gain, to normalise a link's gain (cost model §2.7).
    totals: Gain,
    /// First to last packet of the run, in seconds.
    capture_seconds: Option<f64>,
    /// Client services that are proxies (`links::proxy_clients`).
    proxies: BTreeSet<String>,
}

impl Fleet {
    pub(super) fn of(links: &[Subject<'_>], capture_seconds: Option<f64>) -> Fleet {
        let servers = links.iter().map(|l| l.server.clone()).collect();
        let mut totals = Gain::default();
        for l in links {
            let g = grpc_gain(l);
            totals.time_saved_ms_per_s += g.time_saved_ms_per_s.max(0.0);
            totals.bytes_saved_per_s += g.bytes_saved_per_s.max(0.0);
            totals.cpu_saved_cores += g.cpu_saved_cores.max(0.0);
        }
        Fleet {
            servers,
            totals,
            capture_seconds,
            proxies: crate::analysis::links::proxy_clients(links.iter().map(|l| l.link)),
        }
    }

    /// The gain as the mean of its shares of the fleet totals (cost model §2.7).
    pub(super) fn share(&self, g: &Gain) -> f64 {
        let s = |x: f64, t: f64| if t > 0.0 { x.max(0.0) / t } else { 0.0 };
        (s(g.time_saved_ms_per_s, self.totals.time_saved_ms_per_s)
            + s(g.bytes_saved_per_s, self.totals.bytes_saved_per_s)
            + s(g.cpu_saved_cores, self.totals.cpu_saved_cores))
            / 3.0
    }
}

/// Synchronous callers that wait while the link's call runs: the root caller and every
/// hop above it (mean depth), at least 1.
fn waiters(l: &Subject<'_>) -> f64 {
    l.chain.and_then(|c| c.mean_depth).unwrap_or(1.0).max(1.0)
}

fn rate(l: &Subject<'_>) -> Option<f64> {
    l.http.as_ref().and_then(|h| h.requests_per_s.mean)
}

/// gRPC on a pooled HTTP/2 channel: the link's savings, the time term along the critical
/// paths (the chain's what-if) weighted by the callers that wait above it.
pub(super) fn grpc_gain(l: &Subject<'_>) -> Gain {
    // A link on HTTP/2 or gRPC already has nothing to gain from it.
    if l.already_migrated().is_some() {
        return Gain::default();
    }
    let s = l.savings;
    let time = l
        .what_if
        .and_then(|w| w.root_latency_ms_per_s_saved)
        .or(s.latency_ms_per_s_saved)
        .unwrap_or(0.0);
    Gain {
        time_saved_ms_per_s: time.max(0.0) * waiters(l),
        root_latency_ms_per_s_saved: time.max(0.0),
        bytes_saved_per_s: s.bytes_per_s_saved.unwrap_or(0.0).max(0.0),
        cpu_saved_cores: s.cpu_ms_per_s_saved.unwrap_or(0.0).max(0.0) / 1e3,
    }
}

/// The handshakes alone (keep-alive or pooling): their waiting and crypto CPU.
fn handshake_gain(l: &Subject<'_>) -> Gain {
    let s = l.savings;
    let per_s = match (s.handshake_ms_per_request_saved, rate(l)) {
        (Some(ms), Some(r)) => ms * r,
        // No visible HTTP (TLS): the link's latency saving is all handshakes.
        _ if l.http.is_none() => s.latency_ms_per_s_saved.unwrap_or(0.0),
        _ => 0.0,
    };
    let share_on_path = l
        .chain
        .and_then(|c| c.critical_path_share.roots)
        .unwrap_or(1.0);
    Gain {
        time_saved_ms_per_s: per_s.max(0.0) * share_on_path * waiters(l),
        root_latency_ms_per_s_saved: per_s.max(0.0) * share_on_path,
        bytes_saved_per_s: 0.0,
        cpu_saved_cores: s.crypto_cpu_ms_per_s_saved.unwrap_or(0.0).max(0.0) / 1e3,
    }
}

/// HTTP/2 alone (h2c or TLS ALPN): the header bytes HPACK removes.
fn http2_gain(l: &Subject<'_>) -> Gain {
    let s = l.savings;
    let h = &s.header_bytes_per_request;
    let bytes = match (h.now, h.http2, rate(l)) {
        (Some(now), Some(h2), Some(r)) => (now - h2).max(0.0) * r,
        _ => 0.0,
    };
    Gain {
        bytes_saved_per_s: bytes,
        ..Default::default()
    }
}

/// gzip alone on the JSON bodies that travel uncompressed: the gzip ratio of the sampled
/// documents (all of them, compressed on the wire or not) applied to the JSON body bytes
/// sent without a content coding. Bodies already compressed gain nothing more. The CPU to
/// compress and decompress them counts against it, at the pessimistic (high) end of
/// `gzip_ns_per_byte`'s range.
fn gzip_gain(l: &Subject<'_>, constants: &CostConstants) -> Option<Gain> {
    let b = &l.savings.sampled_bodies;
    let (json, gz) = (b.json_bytes, b.json_gzip_bytes?);
    if json == 0 {
        return None;
    }
    let h = l.http.as_ref()?;
    let per_s = h.json_identity_body_bytes as f64 * (1.0 - gz as f64 / json as f64).max(0.0);
    let secs = match (h.requests_per_s.mean, h.requests) {
        (Some(r), n) if r > 0.0 => n as f64 / r,
        _ => return None,
    };
    let ns = at_least_high_end("gzip_ns_per_byte", constants.gzip_ns_per_byte);
    Some(Gain {
        bytes_saved_per_s: (per_s / secs).max(0.0),
        cpu_saved_cores: -(h.json_identity_body_bytes as f64 / secs) * ns / 1e9,
        ..Default::default()
    })
}

/// `value`, raised to the high end of the constant's published range: for a cost that no
/// saving depends on, the pessimistic search cannot find its end, so the gains take it here.
fn at_least_high_end(name: &str, value: f64) -> f64 {
    crate::analysis::cost::DEFINITIONS
        .iter()
        .find(|d| d.name == name)
        .map_or(value, |d| d.high.max(value))
}

/// A broker: the caller stops waiting (its whole wait minus the publish), at the
/// pessimistic publish time, where the call is on its roots' critical paths.
fn broker_gain(l: &Subject<'_>, constants: &CostConstants, kind: BrokerKind) -> Gain {
    let w = l
        .http
        .as_ref()
        .and_then(|h| h.latency_total_ms.p50)
        .unwrap_or(0.0);
    // NATS core publishes in the constant's time; a durable broker's publish waits for
    // its acknowledgement: the range's pessimistic end.
    let publish = match kind {
        BrokerKind::Nats => constants.broker_publish_ms,
        BrokerKind::Kafka | BrokerKind::Rabbitmq => {
            at_least_high_end("broker_publish_ms", constants.broker_publish_ms)
        }
    };
    // Waiting removed counts only where someone waits: the share of the root requests
    // through the link whose critical path holds it (all of them without a chain).
    let on_path = l
        .chain
        .and_then(|c| c.critical_path_share.roots)
        .unwrap_or(1.0);
    let saved = rate(l).unwrap_or(0.0) * (w - publish).max(0.0) * on_path;
    Gain {
        time_saved_ms_per_s: saved,
        root_latency_ms_per_s_saved: saved,
        ..Default::default()
    }
}

/// A mesh: sidecars pool and reuse connections (the handshake gain) and retry transient
/// failures, at the cost of two proxies per hop.
fn mesh_gain(l: &Subject<'_>, constants: &CostConstants) -> Gain {
    let mut g = handshake_gain(l);
    g.cpu_saved_cores -= mesh_proxy_cores(l, constants);
    g
}

/// CPU of the two proxies a meshed hop adds, in cores, at the pessimistic (high) end of
/// the constant's range: the savings' pessimistic search never moves it (no saving
/// depends on it). The one figure the gain and the reasons both give.
fn mesh_proxy_cores(l: &Subject<'_>, constants: &CostConstants) -> f64 {
    let per_krps = at_least_high_end(
        "mesh_proxy_cores_per_krps",
        constants.mesh_proxy_cores_per_krps,
    );
    2.0 * rate(l).unwrap_or(0.0) / 1000.0 * per_krps
}

/// The gain of one cheaper fix alone.
fn fix_gain(l: &Subject<'_>, fix: Fix, constants: &CostConstants) -> Gain {
    match fix {
        Fix::KeepAlive | Fix::ConnectionPooling => handshake_gain(l),
        Fix::Http2 => http2_gain(l),
        Fix::Gzip => gzip_gain(l, constants).unwrap_or_default(),
    }
}

/// Whether a gain matters in absolute terms: it passes at least one of the floors (cores,
/// Mbit/s, ms per request on the critical path). Below all of them the advice is keep,
/// whatever the gain's share of the fleet.
fn material(g: &Gain, per_s: Option<f64>, constants: &CostConstants) -> bool {
    let ms_per_request = per_s
        .filter(|r| *r > 0.0)
        .map_or(0.0, |r| g.root_latency_ms_per_s_saved / r);
    g.cpu_saved_cores >= constants.floor_cores
        || g.bytes_saved_per_s * 8.0 / 1e6 >= constants.floor_mbit_per_s
        || ms_per_request >= constants.floor_ms_per_request
}

/// A gain in absolute units, for the reasons: `0.0015 cores, 0.06 Mbit/s, 0.41 ms per
/// request`.
fn gain_text(g: &Gain, per_s: Option<f64>) -> String {
    let ms = per_s.filter(|r| *r > 0.0).map_or_else(
        || "-".to_owned(),
        |r| format!("{:.2}", g.root_latency_ms_per_s_saved / r),
    );
    format!(
        "{}, {} and {ms} ms per request",
        units::cores(g.cpu_saved_cores),
        units::bit_rate(g.bytes_saved_per_s)
    )
}

/// What `a` adds beyond `b`, dimension by dimension: a cost in `b` (a negative part, such
/// as gzip's CPU) is not something `a` saves.
fn minus(a: Gain, b: Gain) -> Gain {
    let beyond = |x: f64, y: f64| (x - y.max(0.0)).max(0.0);
    Gain {
        time_saved_ms_per_s: beyond(a.time_saved_ms_per_s, b.time_saved_ms_per_s),
        root_latency_ms_per_s_saved: beyond(
            a.root_latency_ms_per_s_saved,
            b.root_latency_ms_per_s_saved,
        ),
        bytes_saved_per_s: beyond(a.bytes_saved_per_s, b.bytes_saved_per_s),
        cpu_saved_cores: beyond(a.cpu_saved_cores, b.cpu_saved_cores),
    }
}

/// The transport problems the packets priced, each as a fix with its cost removed: the
/// link's mean cost per request, at its rate, on the share of calls on a critical path
/// (all of them without a chain), counted per waiting caller for the ranking's time term
/// as gRPC's is. Unpriced problems (tables that predate the measure, no requests) give
/// none. Each comes with the sentence that explains it.
fn transport_fixes(l: &Subject<'_>, per_s: Option<f64>) -> Vec<(TransportFix, String)> {
    let Some(rate) = per_s.filter(|r| *r > 0.0) else {
        return Vec::new();
    };
    let requests = l.http.as_ref().map_or(l.connections, |h| h.requests).max(1) as f64;
    let on_path = l
        .chain
        .and_then(|c| c.critical_path_share.roots)
        .unwrap_or(1.0);
    let fix = |kind: TransportFixKind, service: &str, action: String, ms: f64| {
        let root = ms * rate * on_path;
        TransportFix {
            kind,
            service: service.to_owned(),
            action,
            ms_per_request: ms,
            gain: Gain {
                time_saved_ms_per_s: root * waiters(l),
                root_latency_ms_per_s_saved: root,
                ..Default::default()
            },
        }
    };
    let mut out = Vec::new();
    if let Some(h) = l.http.as_ref() {
        if let Some(ms) = h.stall_ms.mean.filter(|m| *m > 0.0) {
            // The stalling side is the one whose messages stalled more.
            let service = if h.response_stalls.stalled >= h.request_stalls.stalled {
                &l.server
            } else {
                &l.client
            };
            let t = fix(
                TransportFixKind::TcpNodelay,
                service,
                format!("TCP_NODELAY on {service} (or one write per message)"),
                ms,
            );
            let why = format!(
                "Nagle's algorithm against delayed ACKs stalls this link: {} of its {} \
                 requests had a message held until the peer's ACK, {} per request on \
                 average. Set TCP_NODELAY on `{service}`'s sockets (or write each message \
                 in one call): {}.",
                h.stalled_requests,
                h.requests,
                units::millis(ms),
                gain_text(&t.gain, per_s)
            );
            out.push((t, why));
        }
        if let Some(ms) = h.slow_start_restart_ms_per_request.filter(|m| *m > 0.0) {
            let service = if h.slow_start_restarted_responses * 2 >= h.slow_start_restarts {
                &l.server
            } else {
                &l.client
            };
            let t = fix(
                TransportFixKind::NoSlowStartAfterIdle,
                service,
                format!("net.ipv4.tcp_slow_start_after_idle=0 on {service}'s hosts"),
                ms,
            );
            let why = format!(
                "{} messages were sent on a keep-alive connection idle for over 200 ms and \
                 were larger than the restarted congestion window, so they took extra round \
                 trips: {} per request. Set `net.ipv4.tcp_slow_start_after_idle=0` on \
                 `{service}`'s hosts (or keep the connection warm): {}.",
                h.slow_start_restarts,
                units::millis(ms),
                gain_text(&t.gain, per_s)
            );
            out.push((t, why));
        }
    }
    if let Some(ms) = l.rto_wait_ms.filter(|m| *m > 0.0) {
        let n = l.retransmission_timeouts.unwrap_or(0);
        let t = fix(
            TransportFixKind::RepairLoss,
            &l.server,
            format!("find the loss between {} and {}", l.client, l.server),
            ms / requests,
        );
        let why = format!(
            "{n} segments were resent by the retransmission timer (a loss fast retransmit \
             did not repair), after {} of silence in all: {} per request. Look for loss on \
             the path (interface drops, full queues, a policer) before any protocol \
             change: {}.",
            units::millis(ms),
            units::millis(ms / requests),
            gain_text(&t.gain, per_s)
        );
        out.push((t, why));
    }
    for (ms, receiver, sender) in [
        (l.client_zero_window_ms, &l.client, &l.server),
        (l.server_zero_window_ms, &l.server, &l.client),
    ] {
        let Some(ms) = ms.filter(|m| *m > 0.0) else {
            continue;
        };
        let t = fix(
            TransportFixKind::ReceiveBuffer,
            receiver,
            format!("a larger receive buffer on {receiver} (or read faster)"),
            ms / requests,
        );
        let why = format!(
            "`{receiver}` kept its receive window at zero for {} in all, and `{sender}` \
             could send nothing meanwhile: {} per request. Raise `{receiver}`'s socket \
             receive buffer or read its socket sooner; a protocol change does not help: {}.",
            units::millis(ms),
            units::millis(ms / requests),
            gain_text(&t.gain, per_s)
        );
        out.push((t, why));
    }
    out
}

/// Where the client is a proxy, connection reuse is the proxy's setting, not code.
fn proxy_pooling_hint(l: &Subject<'_>, fleet: &Fleet, fix: Fix) -> Option<String> {
    (matches!(fix, Fix::KeepAlive | Fix::ConnectionPooling) && fleet.proxies.contains(&l.client))
        .then(|| {
            format!(
                "`{}` is a proxy: reuse is its upstream setting (nginx: `keepalive N` in the \
             upstream block with `proxy_http_version 1.1` and `proxy_set_header Connection \
             \"\"`; HAProxy: `http-reuse`; Envoy pools by default).",
                l.client
            )
        })
}

/// Failures that come every n-th request: a deterministic fault, which neither retries nor
/// outlier detection help (the same instance fails the same way on its schedule).
fn periodic_note(l: &Subject<'_>) -> Option<String> {
    let h = l.http.as_ref()?;
    let parts: Vec<String> = h
        .periodic_failures
        .iter()
        .map(|p| {
            format!(
                "{} every {} request ({} of them, {} of the {} gaps exact)",
                p.status,
                ordinal(p.every),
                p.failures,
                p.regular_gaps,
                p.failures.saturating_sub(1)
            )
        })
        .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "The failures are deterministic, not transient: {}. That is a fault in `{}` \
             on a schedule; outlier detection cannot help and retries only repeat it: fix \
             it in the callee.",
            parts.join("; "),
            l.server
        )
    })
}

/// `2nd`, `17th`, `23rd`, `111th`.
fn ordinal(n: u64) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// What the answers' `Retry-After` headers ask of any retry.
fn retry_after_note(retries: &crate::analysis::links::Retries) -> Option<String> {
    (retries.retry_after_responses > 0).then(|| {
        format!(
            "{} of its answers carry Retry-After: any retry must wait that long, never sooner.",
            retries.retry_after_responses
        )
    })
}

/// Failures (5xx, 429, no answer) on the link's listed routes that a retry could repeat
/// with effects: the method is not idempotent (RFC 9110 §9.2.2: POST, PATCH, unknown) and
/// under 90% of the route's requests carry an idempotency key. With those routes; `None`
/// when there are none.
fn non_idempotent_failures(l: &Subject<'_>) -> Option<(u64, String)> {
    let mut n = 0;
    let mut names = Vec::new();
    for r in &l.routes {
        let idempotent = matches!(
            r.method.as_deref(),
            Some("GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "TRACE")
        );
        let keyed = r.http.requests > 0
            && r.http.retries.idempotency_keyed as f64 >= 0.9 * r.http.requests as f64;
        let s = &r.http.status;
        let failed = s.s5xx + s.s429 + s.no_response;
        if !idempotent && !keyed && failed > 0 {
            n += failed;
            names.push(format!(
                "{} {}",
                r.method.as_deref().unwrap_or("?"),
                r.route.as_deref().unwrap_or("?")
            ));
        }
    }
    (n > 0).then(|| (n, names.join(", ")))
}

struct Facts {
    requests: u64,
    rate: Option<f64>,
    peak: Option<f64>,
    errors: u64,
    overload: u64,
    transient_share: Option<f64>,
    fire_and_forget: Option<f64>,
    on_critical_path: Option<f64>,
    external: bool,
    header_bytes: Option<f64>,
    body_bytes: Option<f64>,
    json_share: Option<f64>,
}

impl Facts {
    fn of(l: &Subject<'_>, fleet: &Fleet) -> Facts {
        let h = l.http.as_ref();
        let requests = h.map_or(0, |h| h.requests);
        let status = h.map(|h| h.status).unwrap_or_default();
        // A failed span with no status (a Thrift exception) counts as a server error.
        let errors = status.s5xx + status.no_response + status.failed_without_status;
        let overload = status.s429 + status.s503;
        let transient =
            status.s5xx + status.s429 + status.no_response + status.failed_without_status;
        let bytes = h.map(|h| h.bytes_per_request);
        Facts {
            requests,
            rate: h.and_then(|h| h.requests_per_s.mean),
            peak: h.and_then(|h| h.requests_per_s.peak),
            errors,
            overload,
            transient_share: (requests > 0).then(|| transient as f64 / requests as f64),
            fire_and_forget: l.chain.and_then(|c| c.fire_and_forget_share),
            on_critical_path: l.chain.and_then(|c| c.critical_path_share.roots),
            external: !fleet.servers.contains(&l.client),
            header_bytes: bytes.and_then(|b| Some(b.request_headers? + b.response_headers?)),
            body_bytes: bytes.and_then(|b| Some(b.request_bodies? + b.response_bodies?)),
            json_share: h.and_then(|h| h.json_share),
        }
    }
}

fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

/// Decides one link.
pub(super) fn decide(l: &Subject<'_>, fleet: &Fleet, constants: &CostConstants) -> Recommendation {
    let f = Facts::of(l, fleet);
    let grpc = grpc_gain(l);
    let grpc_share = fleet.share(&grpc);
    let mut why = Vec::new();
    let mut rec = |target, rule, gain| Recommendation {
        target,
        rule,
        cheaper_fix: None,
        cheaper_fix_share: None,
        broker: None,
        confidence: Confidence::Low,
        confidence_score: 0.0,
        why: Vec::new(),
        risks: Vec::new(),
        gain,
        transport_fixes: Vec::new(),
    };
    // A broker target: its gain and the broker chosen, with why that one.
    let broker =
        |rec: &mut dyn FnMut(Target, &'static str, Gain) -> Recommendation, rule, kind, reason| {
            let mut x = rec(Target::Broker, rule, broker_gain(l, constants, kind));
            x.broker = Some(BrokerChoice { kind, reason });
            x
        };
    let rate_text = f.rate.map_or_else(
        || "an unknown rate".to_owned(),
        |r| format!("{r:.1} requests/s"),
    );

    let mut r = if l.async_share.is_some_and(|a| a >= 0.5) {
        why.push(format!(
            "{} of its traced calls already go through {} (producer/consumer spans).",
            pct(l.async_share.unwrap_or(0.0)),
            l.broker.as_deref().unwrap_or("a broker")
        ));
        rec(Target::Keep, "keep:already-async", Gain::default())
    } else if f.external && l.already_migrated().is_none() {
        why.push(format!(
            "The caller `{}` serves no request in the captured system: a browser, a partner or \
             a load generator, which would need gRPC-Web or a gateway.",
            l.client
        ));
        rec(Target::Keep, "keep:external", Gain::default())
    } else if l.already_migrated().is_none()
        && f.json_share.is_some_and(|j| j < 0.2)
        && f.body_bytes.zip(f.header_bytes).is_some_and(|(b, h)| b > h)
    {
        why.push(format!(
            "Only {} of its requests carry JSON and bodies outweigh headers: the bodies are \
             binary or another format protobuf would not shrink.",
            pct(f.json_share.unwrap_or(0.0))
        ));
        rec(Target::Keep, "keep:not-json", Gain::default())
    } else if let Some(ff) = f
        .fire_and_forget
        .filter(|ff| *ff >= constants.fire_and_forget_share)
    {
        why.push(format!(
            "{} of its calls are fire-and-forget: the caller answered its own request before \
             this one returned (or the callee answered 202/204 and did the work later), so \
             nobody waits for the answer.",
            pct(ff)
        ));
        broker(
            &mut rec,
            "broker:fire-and-forget",
            BrokerKind::Nats,
            format!(
                "ephemeral notifications at {rate_text}: NATS core publishes in about 0.1 ms; \
                 take JetStream or Kafka instead if a message must survive a consumer restart"
            ),
        )
    } else if let Some(fo) = l
        .chain
        .and_then(|c| c.same_payload_fanout_share)
        .filter(|s| *s >= constants.same_payload_share)
    {
        why.push(format!(
            "For {} of its calls, `{}` sent the same payload (method and body size) to this \
             and at least one other service while serving one request: one message with \
             several consumers.",
            pct(fo),
            l.client
        ));
        broker(
            &mut rec,
            "broker:same-payload-fan-out",
            BrokerKind::Kafka,
            format!(
                "one payload to several services at {rate_text}: a topic with a consumer group \
                 per service, durable and replayable (NATS subjects also fit when messages \
                 may be lost)"
            ),
        )
    } else if let (Some(mean), Some(peak)) = (f.rate, f.peak) {
        if mean > 0.0 && peak / mean >= constants.burst_ratio && f.overload > 0 {
            why.push(format!(
                "Its load is spiky (peak {peak:.0}/s against a mean of {mean:.1}/s, x{:.1}) and \
                 the callee turned {} requests away with 429 or 503: a queue would absorb the \
                 bursts.",
                peak / mean,
                f.overload
            ));
            let (kind, reason) = if peak >= 1000.0 {
                (
                    BrokerKind::Kafka,
                    format!(
                        "bursts of {peak:.0}/s need durable buffering and replay: Kafka (or \
                         NATS JetStream)"
                    ),
                )
            } else {
                (
                    BrokerKind::Rabbitmq,
                    format!(
                        "moderate rates ({peak:.0}/s at peak) with acknowledgements and \
                         back-pressure: RabbitMQ"
                    ),
                )
            };
            broker(&mut rec, "broker:bursty-overload", kind, reason)
        } else {
            sync_rules(
                l, &f, fleet, constants, grpc, grpc_share, &mut why, &mut rec,
            )
        }
    } else {
        sync_rules(
            l, &f, fleet, constants, grpc, grpc_share, &mut why, &mut rec,
        )
    };

    // The cheaper fix: one mechanism that captures part of the gRPC gain. A migration is
    // advised only for what it adds beyond it, and not at all when the fix captures
    // nearly all of it.
    let per_s = l.requests_or_connections_per_s(fleet.capture_seconds);
    if matches!(r.target, Target::Grpc | Target::Mesh | Target::Keep) && grpc_share > 0.0 {
        let fix_gain = |fix| fix_gain(l, fix, constants);
        let pooling = if f.requests > 0 && l.requests_per_connection.is_some_and(|r| r < 1.5) {
            Fix::KeepAlive
        } else {
            Fix::ConnectionPooling
        };
        let best = [pooling, Fix::Http2, Fix::Gzip]
            .into_iter()
            .map(|fix| (fix, fleet.share(&fix_gain(fix)) / grpc_share))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .filter(|(_, share)| *share > 0.0);
        if let Some((fix, share)) = best {
            let g = fix_gain(fix);
            let share = share.min(1.0);
            if !material(&g, per_s, constants) {
                if share >= constants.cheaper_fix_share {
                    why.push(format!(
                        "{} alone would capture {} of what gRPC would save here, but that is \
                         {}: below every floor, not worth the change.",
                        fix.as_str(),
                        pct(share),
                        gain_text(&g, per_s)
                    ));
                }
            } else if share >= constants.cheaper_fix_share || r.target == Target::Keep {
                r.cheaper_fix = Some(fix);
                r.cheaper_fix_share = Some(share);
                why.push(format!(
                    "{} alone captures {} of what gRPC would save here ({}): do it instead \
                     of a migration.",
                    fix.as_str(),
                    pct(share),
                    gain_text(&g, per_s)
                ));
                if let Some(how) = proxy_pooling_hint(l, fleet, fix) {
                    why.push(how);
                }
                if r.target == Target::Grpc {
                    r.target = Target::Keep;
                    r.rule = "keep:cheaper-fix";
                    // The reason that decided goes first.
                    if let Some(last) = why.pop() {
                        why.insert(0, last);
                    }
                }
                if r.target == Target::Keep {
                    r.gain = g;
                }
            } else if r.target == Target::Grpc {
                // The fix first; the migration is worth only what it adds beyond it.
                r.cheaper_fix = Some(fix);
                r.cheaper_fix_share = Some(share);
                r.gain = minus(r.gain, g);
                why.push(format!(
                    "{} alone captures {} of what gRPC would save ({}): do it first; gRPC \
                     adds {} beyond it.",
                    fix.as_str(),
                    pct(share),
                    gain_text(&g, per_s),
                    gain_text(&r.gain, per_s)
                ));
            }
        }
    }
    // Absolute floors: a migration whose gain passes none of them is not advised,
    // whatever its share of the fleet.
    if matches!(r.target, Target::Grpc | Target::Broker | Target::Mesh)
        && !material(&r.gain, per_s, constants)
    {
        why.push(format!(
            "A {} migration would gain {}: below every floor ({} cores, {} Mbit/s, {} ms \
             per request on the critical path): keep HTTP.",
            r.target.as_str(),
            gain_text(&r.gain, per_s),
            constants.floor_cores,
            constants.floor_mbit_per_s,
            constants.floor_ms_per_request
        ));
        if let Some(last) = why.pop() {
            why.insert(0, last);
        }
        r.target = Target::Keep;
        r.rule = "keep:below-floors";
        r.broker = None;
        r.gain = r
            .cheaper_fix
            .map_or_else(Gain::default, |fix| fix_gain(l, fix, constants));
    }
    // The transport's own problems: fixes below the protocol, whatever the target. A
    // fix below the floors is still told, as a fact, after the decision's reasons.
    let mut told = 0;
    for (t, sentence) in transport_fixes(l, per_s) {
        if material(&t.gain, per_s, constants) {
            why.insert(told, sentence);
            told += 1;
            r.transport_fixes.push(t);
        } else {
            why.push(format!(
                "{sentence} Below the floors: not advised on its own."
            ));
        }
    }
    // N+1: the same route called over and over, in sequence, for one parent request.
    if let Some(n) = l
        .chain
        .and_then(|c| c.n_plus_one.iter().max_by_key(|n| n.calls))
        .filter(|n| n.parents > 0)
    {
        let per_call = l
            .http
            .as_ref()
            .and_then(|h| h.latency_total_ms.p50)
            .unwrap_or(0.0);
        let extra = (n.calls - n.parents.min(n.calls)) as f64 / n.parents as f64;
        why.push(format!(
            "N+1: `{}` calls {} {} {:.1} times per parent request ({} calls under {} \
             parents, up to {} in one), one after the other. One batched call per parent \
             would save about {:.1} sequential calls, {} of waiting per parent at today's \
             {} per call.",
            l.client,
            n.method.as_deref().unwrap_or("?"),
            n.route.as_deref().unwrap_or("?"),
            n.calls as f64 / n.parents as f64,
            n.calls,
            n.parents,
            n.max_per_parent,
            extra,
            units::millis(extra * per_call),
            units::millis(per_call)
        ));
    }
    // Too little seen to extrapolate from: nothing is advised, whatever the rules found.
    let seen = if l.http.is_some() {
        f.requests
    } else {
        l.connections
    };
    let short = fleet
        .capture_seconds
        .is_none_or(|t| t < constants.evidence_min_seconds);
    if (short || (seen as f64) < constants.evidence_min_requests)
        && (r.target != Target::Keep || r.cheaper_fix.is_some() || !r.transport_fixes.is_empty())
    {
        why.insert(
            0,
            format!(
                "Only {seen} {} over {} were seen: too little to extrapolate a rate from \
                 (at least {:.0} and {:.0} s are needed). Nothing is advised; recapture at \
                 least 5 minutes of representative traffic.",
                if l.http.is_some() {
                    "requests"
                } else {
                    "connections"
                },
                fleet
                    .capture_seconds
                    .map_or_else(|| "an unknown span".to_owned(), units::duration),
                constants.evidence_min_requests,
                constants.evidence_min_seconds
            ),
        );
        r.target = Target::Keep;
        r.rule = "keep:too-little-evidence";
        r.cheaper_fix = None;
        r.cheaper_fix_share = None;
        r.transport_fixes.clear();
        r.broker = None;
        r.gain = Gain::default();
    }
    r.risks = risks(l, &f, r.target);
    let (score, level) = confidence(l, &f, r.target, fleet.capture_seconds);
    r.confidence_score = score;
    r.confidence = level;
    r.why = why;
    r
}

/// Rules 3 (mesh), 4 (gRPC) and 5 (keep, tuned) for a synchronous link.
#[allow(clippy::too_many_arguments)]
fn sync_rules(
    l: &Subject<'_>,
    f: &Facts,
    fleet: &Fleet,
    constants: &CostConstants,
    grpc: Gain,
    grpc_share: f64,
    why: &mut Vec<String>,
    rec: &mut dyn FnMut(Target, &'static str, Gain) -> Recommendation,
) -> Recommendation {
    let hs_per_req = l.savings.handshakes_per_request;
    if let Some(e) = f
        .transient_share
        .filter(|e| *e >= constants.transient_error_share)
    {
        let failures = f.errors + l.http.as_ref().map_or(0, |h| h.status.s429);
        let periodic = periodic_note(l);
        let retries = l.http.as_ref().map(|h| h.retries).unwrap_or_default();
        let unsafe_routes = non_idempotent_failures(l);
        let keyed = retries.idempotency_keyed > 0;
        if failures > 0 && retries.failures_retried * 2 >= failures {
            why.push(format!(
                "{} of its requests failed transiently, but the caller already retries: {} of \
                 the {} failures were sent again ({} then succeeded). A mesh retry on top \
                 would multiply the attempts; keep the client's retry (with its budget) \
                 instead.",
                pct(e),
                retries.failures_retried,
                failures,
                retries.failures_recovered
            ));
            why.extend(retry_after_note(&retries));
            why.extend(periodic.clone());
            return rec(Target::Keep, "keep:client-retries", Gain::default());
        }
        if let Some((n, routes)) = unsafe_routes.filter(|(n, _)| *n * 2 >= failures) {
            why.push(format!(
                "{} of its requests failed transiently, but {n} of the {failures} failures \
                 are on routes that are not idempotent ({routes}) and carry no idempotency \
                 key: a mesh must not retry them. Fix the callee's failures, or add an \
                 Idempotency-Key first.",
                pct(e)
            ));
            why.extend(retry_after_note(&retries));
            why.extend(periodic.clone());
            return rec(
                Target::Keep,
                "keep:non-idempotent-failures",
                Gain::default(),
            );
        }
        why.extend(retry_after_note(&retries));
        if let Some(p) = periodic {
            // A schedule of failures is not what retries and outlier detection are for.
            why.push(p);
            return rec(Target::Keep, "keep:deterministic-failures", Gain::default());
        }
        let mesh = mesh_gain(l, constants);
        let r = constants.mesh_retries.round().max(0.0) as i32;
        let avoided = f.rate.unwrap_or(0.0) * e * (1.0 - e.powi(r));
        why.push(format!(
            "{} of its requests failed transiently ({} errors or no answer, {} turned away \
             with 429/503): a mesh's retries ({} per failure, on idempotent{} routes only) \
             and outlier detection would avoid about {avoided:.2} failures/s, at {} for \
             two proxies per hop.",
            pct(e),
            f.errors,
            f.overload,
            r,
            if keyed { " or idempotency-keyed" } else { "" },
            units::cores(mesh_proxy_cores(l, constants))
        ));
        if let Some(h) = hs_per_req.filter(|h| *h > 0.1) {
            why.push(format!(
                "It opens {h:.2} new connections per request; sidecars would pool them."
            ));
        }
        return rec(Target::Mesh, "mesh:transient-errors", mesh);
    }
    if let Some(rule) = l.already_migrated() {
        why.push(format!(
            "It already speaks {} (its spans' rpc.system, or what the wire showed): {}. No \
             gRPC saving is projected for it.",
            l.protocol,
            match l.protocol.as_str() {
                "grpc" => "HPACK headers and protobuf bodies on multiplexed HTTP/2",
                "grpc-web" => "protobuf bodies, through a gRPC-Web proxy",
                _ => "HPACK headers on multiplexed connections",
            }
        ));
        return rec(Target::Keep, rule, Gain::default());
    }
    if grpc_share < constants.min_gain_share && l.evidence != Evidence::Traces {
        why.push(format!(
            "gRPC would save it {} of the fleet's projected gain, below the {} threshold \
             (min_gain_share): not worth a migration.",
            pct(grpc_share),
            pct(constants.min_gain_share)
        ));
        return rec(Target::Keep, "keep:low-gain", Gain::default());
    }
    let synchronous = f.on_critical_path.is_none_or(|cp| cp > 0.0);
    let now_bytes = f.header_bytes.unwrap_or(0.0) + f.body_bytes.unwrap_or(0.0);
    let byte_share = match (
        l.savings.header_bytes_per_request.grpc,
        l.savings.body_bytes_per_request.protobuf,
    ) {
        (Some(hg), Some(bp)) if now_bytes > 0.0 => Some((now_bytes - hg - bp) / now_bytes),
        _ => None,
    };
    if synchronous {
        if let Some(h) = hs_per_req.filter(|h| *h > 0.1) {
            why.push(format!(
                "It opens {h:.2} new TCP connections per request; one pooled HTTP/2 channel \
                 would replace them."
            ));
        } else if l.http.is_none() && l.tcp_handshakes > 0 {
            why.push(format!(
                "Its traffic is opaque ({}) and it made {} full handshakes over {} \
                 connections: one pooled channel would replace them.",
                l.protocol, l.tcp_handshakes, l.connections
            ));
        }
        if let Some(b) = byte_share {
            why.push(format!(
                "gRPC would send {} fewer bytes ({:.0} B of headers and {:.0} B of bodies per \
                 request today).",
                pct(b.max(0.0)),
                f.header_bytes.unwrap_or(0.0),
                f.body_bytes.unwrap_or(0.0)
            ));
        }
        if let Some(cp) = f.on_critical_path {
            why.push(format!(
                "Its callers wait for it: it is on the critical path of {} of the root \
                 requests through it (mean depth {:.1}).",
                pct(cp),
                waiters(l)
            ));
        }
        let big_bytes = byte_share.is_some_and(|b| b >= constants.grpc_min_byte_share);
        let handshakes =
            hs_per_req.is_some_and(|h| h > 0.1) || (l.http.is_none() && l.tcp_handshakes > 0);
        if big_bytes || handshakes || grpc_share >= constants.min_gain_share {
            why.push(format!(
                "Projected gain: {:.2} latency-ms/s along the critical paths, {:.0} B/s and \
                 {:.5} cores ({} of the fleet's).",
                grpc.time_saved_ms_per_s,
                grpc.bytes_saved_per_s,
                grpc.cpu_saved_cores,
                pct(grpc_share)
            ));
            if fleet.proxies.contains(&l.client) {
                let evidence = match l.http.as_ref().filter(|_| l.forwards()) {
                    Some(h) => format!(
                        "{} of its {} requests here carry forwarding headers",
                        h.forwarded_requests, h.requests
                    ),
                    None => "its requests on other links carry forwarding headers".to_owned(),
                };
                why.push(format!(
                    "`{}` is a proxy ({evidence}: X-Forwarded-For, Forwarded, Via). It relays \
                     REST from its own clients, so gRPC on this link needs a gateway that \
                     transcodes REST to gRPC (Envoy's gRPC-JSON transcoder, grpc-gateway); \
                     nginx does not, and the effort counts the proxy tier's change.",
                    l.client
                ));
            }
            let _ = fleet;
            return rec(Target::Grpc, "grpc:sync-internal", grpc);
        }
    }
    why.push("No rule for a migration matched: keep HTTP and tune it.".to_owned());
    rec(Target::Keep, "keep:tune", Gain::default())
}

/// Risks of the target the data shows.
fn risks(l: &Subject<'_>, f: &Facts, target: Target) -> Vec<String> {
    let mut out = Vec::new();
    let depth = l.chain.and_then(|c| c.max_depth).unwrap_or(0);
    if depth >= 3 && (f.errors + f.overload) > 0 && target != Target::Broker {
        out.push(format!(
            "Retry amplification: the link sits {depth} hops deep and fails sometimes; \
             retries at every layer can multiply load up to (r+1)^{depth}. Set retry budgets."
        ));
    }
    if let Some(p99) = l.http.as_ref().and_then(|h| h.latency_total_ms.p99) {
        if p99 > 10_000.0 {
            out.push(format!(
                "Some requests take over 10 s (p99 {:.0} s): long polling or streaming; use \
                 gRPC server streaming for those routes.",
                p99 / 1e3
            ));
        }
    }
    if let Some(b) = l
        .http
        .as_ref()
        .and_then(|h| h.bytes_per_request.response_bodies)
    {
        if b > 1_048_576.0 {
            out.push(format!(
                "Responses average {:.1} MiB, near gRPC's 4 MiB default message limit.",
                b / 1_048_576.0
            ));
        }
    }
    if let Some(s) = l.savings.sampled_bodies.non_json_share {
        if s > 0.2 && target == Target::Grpc {
            out.push(format!(
                "{} of the sampled bodies are not JSON: they need `bytes` fields or stay on HTTP.",
                pct(s)
            ));
        }
    }
    let b = &l.savings.sampled_bodies;
    if matches!(target, Target::Grpc | Target::Broker) {
        if b.unsafe_integers > 0 {
            out.push(format!(
                "{} integer values in the {} sampled documents exceed 2^53: JavaScript clients \
                 already lose them, and proto3's JSON mapping (a transcoding gateway) writes \
                 int64 as strings, so clients that read them as numbers break.",
                b.unsafe_integers, b.documents
            ));
        }
        if b.type_conflicts > 0 {
            out.push(format!(
                "Schema drift: {} fields change JSON type across the {} sampled documents; \
                 the .proto must settle each (a oneof, a wrapper, or a fix upstream).",
                b.type_conflicts, b.documents
            ));
        }
    }
    let callers_routes = l.routes.len() as u64 + l.routes_not_listed;
    if target == Target::Grpc && callers_routes > 0 {
        out.push(
            "The proto3 JSON mapping changes the JSON a transcoding gateway serves (int64 as \
             strings, enum names, omitted defaults, lowerCamelCase): check clients that read \
             large ids as numbers."
                .to_owned(),
        );
    }
    match target {
        Target::Broker => out.push(
            "Brokers deliver duplicates and order only within a partition: consumers must be \
             idempotent; watch consumer lag, a backlog is silent."
                .to_owned(),
        ),
        Target::Mesh => out.push(
            "Two proxies per hop add CPU and about 2-3 ms at p90; budget retries so they do \
             not amplify along the chain."
                .to_owned(),
        ),
        Target::Grpc => out.push(
            "L4 load balancers pin HTTP/2 connections (use L7 or client-side balancing); gRPC \
             errors travel as HTTP 200 with grpc-status in trailers, so status dashboards \
             need updating."
                .to_owned(),
        ),
        Target::Keep => {}
    }
    out
}

/// The weakest of: sample size, how long the capture lasted, capture quality, chain
/// inference (when the rule relied on it), body samples (for gRPC), whether the requests
/// were visible (for a migration) and whether the wire was seen at all.
fn confidence(
    l: &Subject<'_>,
    f: &Facts,
    target: Target,
    seconds: Option<f64>,
) -> (f64, Confidence) {
    let n = if l.http.is_some() {
        f.requests
    } else {
        l.connections
    };
    let mut factors: BTreeMap<&str, f64> = BTreeMap::new();
    factors.insert(
        "samples",
        match n {
            100.. => 1.0,
            30..=99 => 0.7,
            _ => 0.4,
        },
    );
    // Rates and gains are extrapolated from the capture: a few seconds of traffic say
    // little about a service's hour.
    factors.insert(
        "duration",
        match seconds {
            Some(t) if t >= 300.0 => 1.0,
            Some(t) if t >= 60.0 => 0.8,
            Some(t) if t >= 10.0 => 0.6,
            _ => 0.4,
        },
    );
    // A migration decided on a link whose requests nobody saw (TLS without keys) rests
    // on its handshakes alone.
    if target != Target::Keep && l.http.is_none() && l.evidence != Evidence::Traces {
        factors.insert("visibility", 0.5);
    }
    let bad = l.quality.connections_with_gaps + l.quality.one_sided_connections;
    let quality = if l.connections > 0 {
        1.0 - 2.0 * bad as f64 / l.connections as f64
    } else {
        1.0
    };
    factors.insert("capture", quality.clamp(0.0, 1.0));
    if target != Target::Keep {
        if let Some(c) = l.chain.and_then(|c| c.inferred_confidence) {
            factors.insert("chains", c);
        }
    }
    if target == Target::Grpc && l.savings.samples.bodies_from_constant && l.http.is_some() {
        factors.insert("bodies", 0.7);
    }
    if l.evidence == Evidence::Traces {
        factors.insert("wire", 0.4);
    }
    let score = factors.values().copied().fold(1.0, f64::min);
    let level = if score >= 0.8 {
        Confidence::High
    } else if score >= 0.5 {
        Confidence::Medium
    } else {
        Confidence::Low
    };
    (score, level)
}
