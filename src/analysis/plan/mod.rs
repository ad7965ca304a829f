//! The rollout plan: quick wins first (the cheaper fixes), then waves of migrations in
//! order of gain over effort, where a link whose callee already serves the target from an
//! earlier wave costs less (the .proto, the server side or the broker exist).

use serde::Serialize;

use crate::analysis::rank::Ranked;
use crate::analysis::recommend::{Fix, Gain, Target};

/// Links per wave: small enough to canary and roll back one pair at a time.
const WAVE_SIZE: usize = 2;

/// Effort kept for a link whose callee already serves its target from an earlier wave.
const REUSED_EFFORT: f64 = 0.5;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlannedLink {
    pub client: String,
    pub server: String,
    pub target: Target,
    pub cheaper_fix: Option<Fix>,
    /// A transport fix, in words (`TCP_NODELAY on users`).
    pub transport_fix: Option<String>,
    /// Gain share over (1 + effort) when the link was placed.
    pub priority: f64,
    /// The callee already served this target from an earlier wave.
    pub reuses_earlier_wave: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Wave {
    pub number: u32,
    pub links: Vec<PlannedLink>,
    /// Sum of the links' projected gains.
    pub gain: Gain,
    pub steps: Vec<String>,
    pub risks: Vec<String>,
    pub verify: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Plan {
    /// Cheaper fixes that capture most of a link's gain: before any migration.
    pub quick_wins: Vec<PlannedLink>,
    pub waves: Vec<Wave>,
    /// Links that keep HTTP (and why, in their recommendation).
    pub kept: Vec<String>,
}

fn add(a: &mut Gain, b: &Gain) {
    a.time_saved_ms_per_s += b.time_saved_ms_per_s;
    a.bytes_saved_per_s += b.bytes_saved_per_s;
    a.cpu_saved_cores += b.cpu_saved_cores;
}

/// The plan for ranked, recommended links.
pub fn plan(links: &[Ranked]) -> Plan {
    let mut p = Plan::default();
    let proxies = crate::analysis::links::proxy_clients(links.iter().map(|r| &r.link));
    let totals = links.iter().fold(Gain::default(), |mut t, r| {
        let g = &r.assessment.recommendation.gain;
        t.time_saved_ms_per_s += g.time_saved_ms_per_s.max(0.0);
        t.bytes_saved_per_s += g.bytes_saved_per_s.max(0.0);
        t.cpu_saved_cores += g.cpu_saved_cores.max(0.0);
        t
    });
    let share = |g: &Gain| {
        let s = |x: f64, t: f64| if t > 0.0 { x.max(0.0) / t } else { 0.0 };
        (s(g.time_saved_ms_per_s, totals.time_saved_ms_per_s)
            + s(g.bytes_saved_per_s, totals.bytes_saved_per_s)
            + s(g.cpu_saved_cores, totals.cpu_saved_cores))
            / 3.0
    };
    let mut open: Vec<&Ranked> = Vec::new();
    for r in links {
        let rec = &r.assessment.recommendation;
        if let Some(fix) = rec.cheaper_fix {
            p.quick_wins.push(PlannedLink {
                client: r.link.client.clone(),
                server: r.link.server.clone(),
                target: rec.target,
                cheaper_fix: Some(fix),
                transport_fix: None,
                priority: share(&rec.gain) / (1.0 + r.score_inputs.effort),
                reuses_earlier_wave: false,
            });
        }
        for t in &rec.transport_fixes {
            p.quick_wins.push(PlannedLink {
                client: r.link.client.clone(),
                server: r.link.server.clone(),
                target: rec.target,
                cheaper_fix: None,
                transport_fix: Some(format!(
                    "{}: {:.1} ms per request",
                    t.action, t.ms_per_request
                )),
                priority: share(&t.gain) / (1.0 + r.score_inputs.effort),
                reuses_earlier_wave: false,
            });
        }
        if rec.target == Target::Keep {
            p.kept
                .push(format!("{} -> {}", r.link.client, r.link.server));
        } else {
            open.push(r);
        }
    }
    // Greedy: the best priority given what earlier waves already built.
    let mut served: Vec<(String, Target)> = Vec::new();
    let mut wave: Vec<(PlannedLink, &Ranked)> = Vec::new();
    while !open.is_empty() {
        let priority = |r: &Ranked| {
            let rec = &r.assessment.recommendation;
            let target = rec.target;
            let reuse = served
                .iter()
                .any(|(s, t)| *s == r.link.server && *t == target);
            let effort = r.score_inputs.effort * if reuse { REUSED_EFFORT } else { 1.0 };
            (share(&rec.gain) / (1.0 + effort), reuse)
        };
        let (best, _) = open
            .iter()
            .enumerate()
            .map(|(i, r)| (i, priority(r).0))
            .fold((0, f64::MIN), |a, b| if b.1 > a.1 { b } else { a });
        let r = open.remove(best);
        let (prio, reuse) = priority(r);
        let target = r.assessment.recommendation.target;
        wave.push((
            PlannedLink {
                client: r.link.client.clone(),
                server: r.link.server.clone(),
                target,
                cheaper_fix: r.assessment.recommendation.cheaper_fix,
                transport_fix: None,
                priority: prio,
                reuses_earlier_wave: reuse,
            },
            r,
        ));
        if wave.len() == WAVE_SIZE || open.is_empty() {
            for (l, _) in &wave {
                served.push((l.server.clone(), l.target));
            }
            let number = p.waves.len() as u32 + 1;
            p.waves
                .push(build_wave(number, std::mem::take(&mut wave), &proxies));
        }
    }
    p
}

fn build_wave(
    number: u32,
    members: Vec<(PlannedLink, &Ranked)>,
    proxies: &std::collections::BTreeSet<String>,
) -> Wave {
    let mut w = Wave {
        number,
        links: Vec::new(),
        gain: Gain::default(),
        steps: Vec::new(),
        risks: Vec::new(),
        verify: Vec::new(),
    };
    for (planned, r) in members {
        let l = &r.link;
        let rec = &r.assessment.recommendation;
        add(&mut w.gain, &rec.gain);
        let pair = format!("{} -> {}", l.client, l.server);
        let routes: Vec<String> = l
            .routes
            .iter()
            .map(|x| {
                format!(
                    "{} {}",
                    x.method.as_deref().unwrap_or("?"),
                    x.route.as_deref().unwrap_or("?")
                )
            })
            .collect();
        let safe: Vec<&str> = routes
            .iter()
            .filter(|r| r.starts_with("GET ") || r.starts_with("HEAD "))
            .map(String::as_str)
            .collect();
        match rec.target {
            Target::Grpc => {
                let route_text = if l.http.is_none() {
                    format!("its routes (not visible in the capture: {})", l.protocol)
                } else {
                    format!(
                        "its {} routes ({})",
                        l.routes.len() as u64 + l.routes_not_listed,
                        routes.join(", ")
                    )
                };
                w.steps.push(format!(
                    "{pair}: write one .proto for {route_text}; serve gRPC beside REST on \
                     `{}` (dual stack through grpc-gateway or Envoy's gRPC-JSON transcoder); \
                     move `{}` to one pooled gRPC channel.",
                    l.server, l.client
                ));
                if proxies.contains(&l.client) {
                    w.steps.push(format!(
                        "{pair}: `{}` relays its clients' REST (forwarding headers on the \
                         requests): put a transcoding gateway in its place or behind it (Envoy \
                         with the gRPC-JSON transcoder), so its clients keep REST while the hop \
                         to `{}` speaks gRPC.",
                        l.client, l.server
                    ));
                }
                w.steps.push(format!(
                    "{pair}: canary by service pair (a weighted route matching `{}` only), \
                     {}.",
                    l.client,
                    if safe.is_empty() {
                        "no route is free of side effects: no shadow traffic".to_owned()
                    } else {
                        format!(
                            "shadow (mirror) traffic first for the side-effect-free routes {}",
                            safe.join(", ")
                        )
                    }
                ));
            }
            Target::Broker => {
                let broker = rec
                    .broker
                    .as_ref()
                    .map_or("the broker", |b| b.kind.as_str());
                w.steps.push(format!(
                    "{pair}: publish from `{}` to {broker} through a transactional outbox; \
                     `{}` consumes with idempotency keys; run both paths side by side, \
                     compare, then cut over; alert on consumer lag.",
                    l.client, l.server
                ));
            }
            Target::Mesh => w.steps.push(format!(
                "{pair}: enrol `{}` and `{}` in the mesh; a retry policy with a budget (retry \
                 only idempotent routes), outlier detection, mTLS; `h2UpgradePolicy: UPGRADE` \
                 pools connections.",
                l.client, l.server
            )),
            Target::Keep => {}
        }
        for risk in &rec.risks {
            w.risks.push(format!("{pair}: {risk}"));
        }
        // Each check names the link's own figures today.
        let handshakes = match r.assessment.savings.handshakes_per_request {
            Some(h) => format!("new connections per request should fall from {h:.2} to below 0.05"),
            None if l.tls_handshakes > 0 => format!(
                "full TLS handshakes ({} over {} connections today) should fall to one per \
                 pooled channel",
                l.tls_handshakes, l.connections
            ),
            None => format!(
                "new connections ({} today) should fall to one per pooled channel",
                l.tcp_handshakes
            ),
        };
        let p95 = l
            .http
            .as_ref()
            .and_then(|h| h.latency_total_ms.p95)
            .map_or_else(
                || "p95 latency".to_owned(),
                |p| format!("p95 latency ({p:.1} ms today)"),
            );
        let diff = "capture the same traffic again and run `linkrank diff <before> <after> \
                    --fail-if-regressed 10`";
        w.verify.push(match rec.target {
            Target::Broker => format!(
                "{pair}: {diff}: the caller's wait on the link ({p95}) should fall to the \
                 publish time; the consumer must see as many messages as were published (no \
                 loss, duplicates absorbed)."
            ),
            Target::Mesh => format!(
                "{pair}: {diff}: the 5xx/429/503 share ({} of {} requests today) should fall, \
                 {handshakes}, and {p95} must not rise by more than the proxies' 2-3 ms.",
                l.http.as_ref().map_or(0, |h| h.status.s5xx + h.status.s429),
                l.http.as_ref().map_or(0, |h| h.requests)
            ),
            _ => format!(
                "{pair}: {diff}: {handshakes}, {p95} must not rise, and the error rate must not \
                 grow."
            ),
        });
        w.links.push(planned);
    }
    w
}
