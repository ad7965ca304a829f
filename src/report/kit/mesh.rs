//! `kit/mesh/<client>-<server>.yaml`: for each mesh link, an Istio VirtualService and
//! DestinationRule and the Linkerd ServiceProfile, every value from the link's measures
//! with its source figure in a comment (docs/kit.md):
//! - retries only on idempotent routes (GET, HEAD, OPTIONS, PUT, DELETE, or a route whose
//!   requests carry an `Idempotency-Key` at least 90% of the time, the rule of the
//!   advice); `attempts` is the cost model's `mesh_retries`; other routes get none;
//! - the per-try timeout is the route's measured p99 latency, rounded up to the next
//!   millisecond (a try slower than 99% of those seen is cut and, where safe, retried);
//!   the route's timeout is that times the attempts plus one;
//! - `retryOn` from the failures measured on the route (5xx, 429, no answer); with none
//!   seen, only `connect-failure,refused-stream` (the request never reached the callee);
//! - outlier detection: `consecutive5xxErrors` is the smallest k >= 2 for which k
//!   failures in a row at the link's measured transient failure share would happen by
//!   chance at most once in 1000 (share^k <= 0.001), at most 10; `interval` is the time
//!   the link takes to carry that many requests at its mean rate (1 s to 60 s);
//!   `maxEjectionPercent` 50 so that at least half of the endpoints stay.

use std::fmt::Write as _;

use super::names::snake;
use super::KitInput;
use crate::analysis::links::{HttpMeasures, Link};
use crate::analysis::recommend::Target;

/// Share of a route's requests that must carry an idempotency key for it to be retried
/// (as in the advice's rule, docs/cost-model.md).
pub const KEYED_SHARE: f64 = 0.9;
/// Chance of a healthy endpoint being ejected by k failures in a row.
pub const EJECTION_CHANCE: f64 = 0.001;
pub const MAX_CONSECUTIVE: u32 = 10;

pub fn file_name(client: &str, server: &str) -> String {
    format!(
        "mesh/{}-{}.yaml",
        super::file_stem(client),
        super::file_stem(server)
    )
}

pub fn files(input: &KitInput<'_>) -> Vec<(String, String)> {
    input
        .links
        .iter()
        .filter(|r| r.assessment.recommendation.target == Target::Mesh)
        .map(|r| {
            (
                file_name(&r.link.client, &r.link.server),
                policy(&r.link, input.mesh_retries),
            )
        })
        .collect()
}

/// Whether a mesh may retry a route (see the module docs).
pub fn retryable(method: &str, h: &HttpMeasures) -> bool {
    matches!(method, "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE")
        || (h.requests > 0 && h.retries.idempotency_keyed as f64 >= KEYED_SHARE * h.requests as f64)
}

/// Per-try timeout in ms from a p99 in ms.
pub fn per_try_ms(p99: f64) -> u64 {
    p99.ceil().max(1.0) as u64
}

/// Failures a mesh counts against an endpoint (5xx, 429, no answer).
fn failures(h: &HttpMeasures) -> u64 {
    h.status.s5xx + h.status.s429 + h.status.no_response
}

/// `consecutive5xxErrors` from a failure share.
pub fn consecutive_errors(share: f64) -> u32 {
    let mut k = 2;
    while k < MAX_CONSECUTIVE && share.powi(k as i32) > EJECTION_CHANCE {
        k += 1;
    }
    k
}

/// A route's path as an RE2 regex (`{id}` matches one segment).
pub fn path_regex(route: &str) -> String {
    let mut out = String::from("^");
    for (i, seg) in route.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if seg == "{id}" {
            out.push_str("[^/]+");
        } else {
            for c in seg.chars() {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    out.push(c);
                } else {
                    out.push('\\');
                    out.push(c);
                }
            }
        }
    }
    out.push('$');
    out
}

fn retry_on(h: &HttpMeasures) -> String {
    let mut on = Vec::new();
    if h.status.s5xx > 0 {
        on.push("5xx");
    }
    if h.status.s429 > 0 {
        on.push("429");
    }
    if h.status.no_response > 0 {
        on.push("reset");
        on.push("connect-failure");
    }
    if on.is_empty() {
        // No failure seen: only failures before the request reached the callee.
        on.extend(["connect-failure", "refused-stream"]);
    }
    on.join(",")
}

/// The three documents of one mesh link.
pub fn policy(l: &Link, retries: u32) -> String {
    let (client, server) = (&l.client, &l.server);
    let name = format!("{}-from-{}", snake(server), snake(client)).replace('_', "-");
    let mut vs = String::new();
    let mut sp = String::new();
    let _ = writeln!(
        vs,
        "# Mesh policy of {client} -> {server} (linkrank migration kit). Every value's\n\
         # source figure is in the comment beside it; links.json holds the same figures.\n\
         apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: {name}\n\
         spec:\n  hosts:\n    - {server}\n  http:"
    );
    let _ = writeln!(
        sp,
        "apiVersion: linkerd.io/v1alpha2\nkind: ServiceProfile\nmetadata:\n  # the namespace \
         is not in the capture: default\n  name: {server}.default.svc.cluster.local\n  \
         namespace: default\nspec:\n  routes:"
    );
    for r in &l.routes {
        let (Some(m), Some(route)) = (&r.method, &r.route) else {
            continue;
        };
        let h = &r.http;
        let Some(p99) = h.latency_ms.p99 else {
            continue;
        };
        let per_try = per_try_ms(p99);
        let safe = retryable(m, h);
        let attempts = if safe { retries } else { 0 };
        let regex = path_regex(route);
        let _ = writeln!(
            vs,
            "    - name: {}",
            snake(&format!("{m} {route}")).replace('_', "-")
        );
        let _ = writeln!(
            vs,
            "      match:\n        - sourceLabels:\n            app: {client}\n          \
             method:\n            exact: {m}\n          uri:\n            regex: '{regex}'"
        );
        let _ = writeln!(
            vs,
            "      route:\n        - destination:\n            host: {server}"
        );
        let _ = writeln!(
            vs,
            "      # {} requests; p99 latency {p99:.1} ms; {} failed (5xx {}, 429 {}, no answer {})",
            h.requests,
            failures(h),
            h.status.s5xx,
            h.status.s429,
            h.status.no_response
        );
        let _ = writeln!(
            vs,
            "      timeout: {}ms  # per-try timeout x (attempts + 1)",
            per_try * (u64::from(attempts) + 1)
        );
        if safe {
            let _ = writeln!(
                vs,
                "      retries:\n        attempts: {attempts}  # the cost model's mesh_retries\n        \
                 perTryTimeout: {per_try}ms  # p99 {p99:.1} ms, rounded up\n        \
                 retryOn: {}  # the failures seen on the route",
                retry_on(h)
            );
        } else {
            let _ = writeln!(
                vs,
                "      retries:\n        attempts: 0  # {m} is not idempotent and {} of {} \
                 requests carried an Idempotency-Key (under 90%): never retried",
                h.retries.idempotency_keyed, h.requests
            );
        }
        let _ = writeln!(
            sp,
            "    - name: {m} {route}\n      condition:\n        method: {m}\n        \
             pathRegex: '{}'\n      isRetryable: {safe}  # {}\n      timeout: {}ms  # \
             p99 {p99:.1} ms, rounded up",
            regex.trim_start_matches('^').trim_end_matches('$'),
            if safe {
                "idempotent (method, or Idempotency-Key on 90%+ of requests)"
            } else {
                "not idempotent: never retried"
            },
            per_try
        );
    }
    let _ = writeln!(
        sp,
        "  retryBudget:\n    retryRatio: 0.2  # Linkerd's default: retries add at most 20% \
         load\n    minRetriesPerSecond: 10\n    ttl: 10s"
    );
    let (reqs, fails, rate) = l.http.as_ref().map_or((0, 0, None), |h| {
        (h.requests, failures(h), h.requests_per_s.mean)
    });
    let share = if reqs > 0 {
        fails as f64 / reqs as f64
    } else {
        0.0
    };
    let k = consecutive_errors(share);
    let interval = rate
        .filter(|r| *r > 0.0)
        .map_or(10, |r| ((f64::from(k) / r).ceil() as u64).clamp(1, 60));
    let mut dr = String::new();
    let _ = writeln!(
        dr,
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: \
         {name}\nspec:\n  host: {server}\n  trafficPolicy:\n    connectionPool:\n      \
         http:\n        h2UpgradePolicy: UPGRADE  # pooled HTTP/2 between the sidecars\n    \
         outlierDetection:\n      # link: {fails} of {reqs} requests failed ({:.2}%), {} \
         requests/s on average\n      consecutive5xxErrors: {k}  # smallest k with \
         share^k <= {EJECTION_CHANCE}\n      interval: {interval}s  # time to carry {k} \
         requests at the mean rate\n      baseEjectionTime: 30s  # Istio's default\n      \
         maxEjectionPercent: 50  # {} endpoint(s) seen: keep at least half",
        share * 100.0,
        rate.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}")),
        l.server_endpoints.len()
    );
    format!("{vs}---\n{dr}---\n{sp}")
}
