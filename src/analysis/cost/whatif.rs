//! What-if per link: the root latency its per-request savings would remove along the
//! critical paths it sits on (from the chain analysis), and what making it asynchronous
//! would do.

use serde::Serialize;

use super::Savings;
use crate::analysis::chains::LinkChain;
use crate::analysis::links::Link;

/// If the link's calls left the critical path (published to a broker instead).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct IfAsync {
    /// Root latency removed per second of capture: each critical-path call's duration
    /// minus the publish time (calls with a parent: a root request cannot leave its own
    /// path).
    pub root_latency_ms_per_s_saved: Option<f64>,
    /// Requests per second the callee no longer takes at its peak (peak - mean rate): a
    /// queue drains the burst at the mean rate.
    pub callee_peak_requests_per_s_removed: Option<f64>,
    /// 1 - mean/peak: share of the callee's peak capacity freed.
    pub callee_peak_share_freed: Option<f64>,
}

/// The link's what-if figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct WhatIf {
    /// The link's own waiting removed per call (its `savings`, spread over its calls).
    pub latency_ms_per_call_saved: Option<f64>,
    /// Root latency removed per second of capture: that saving for every call of the
    /// link on a critical path (at most the call's own duration). The ranking's time term.
    pub root_latency_ms_per_s_saved: Option<f64>,
    /// The same per root request through the link.
    pub root_latency_ms_per_root_saved: Option<f64>,
    pub if_async: IfAsync,
}

/// Publish time of a broker call that replaces a synchronous one (NATS core, cost
/// model §2.5).
pub const PUBLISH_MS: f64 = 0.1;

/// The what-if of a link whose calls the chain analysis placed, from its savings.
pub fn what_if(
    link: &Link,
    chain: &LinkChain,
    savings: &Savings,
    capture_seconds: Option<f64>,
) -> WhatIf {
    let t = capture_seconds.filter(|t| *t > 0.0);
    let per_call = match (savings.latency_ms_per_s_saved, t) {
        (Some(s), Some(t)) if chain.calls > 0 => Some((s * t / chain.calls as f64).max(0.0)),
        _ => None,
    };
    let mut w = WhatIf {
        latency_ms_per_call_saved: per_call,
        ..Default::default()
    };
    // Calls in no rooted tree: the critical-path weight is unknown (the ranking then
    // keeps the link's own latency).
    let rooted = chain.max_depth.is_some();
    if let (Some(p), Some(t), true) = (per_call, t, rooted) {
        // fold from +0.0: an empty f64 sum is -0.0.
        let saved = chain
            .critical_call_ms
            .iter()
            .fold(0.0, |acc, (d, n)| acc + p.min(*d) * *n as f64);
        w.root_latency_ms_per_s_saved = Some(saved / t);
        w.root_latency_ms_per_root_saved =
            (chain.roots_through > 0).then(|| saved / chain.roots_through as f64);
    }
    if let (Some(t), true) = (t, rooted) {
        let saved = chain.critical_child_ms.iter().fold(0.0, |acc, (d, n)| {
            acc + (d - PUBLISH_MS).max(0.0) * *n as f64
        });
        w.if_async.root_latency_ms_per_s_saved = Some(saved / t);
    }
    if let Some(h) = &link.http {
        if let (Some(mean), Some(peak)) = (h.requests_per_s.mean, h.requests_per_s.peak) {
            if peak > 0.0 {
                w.if_async.callee_peak_requests_per_s_removed = Some((peak - mean).max(0.0));
                w.if_async.callee_peak_share_freed = Some((1.0 - mean / peak).clamp(0.0, 1.0));
            }
        }
    }
    w
}
