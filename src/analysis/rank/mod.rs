//! Ranking: the one place that turns link measures into a score and an order.
//!
//! The score follows the cost model's §2.7 (`docs/ranking.md`): each link's measured
//! savings (latency, bytes, CPU per second of capture; `crate::analysis::cost`) as shares of the
//! fleet's totals, averaged, over 1 + effort. Replacing the ranking means replacing
//! [`rank`].

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::analysis::assess::{Assessed, Assessment};
use crate::analysis::chains::LinkChain;
use crate::analysis::cost::CostConstants;
use crate::analysis::links::Link;

/// The savings behind a score, per second of capture, next to the rank in every output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct ScoreInputs {
    /// Root latency removed along critical paths: latency-ms per second (Little's law:
    /// requests in flight x 1000); the link's own waiting where it has no chain.
    pub time_saved_ms_per_s: f64,
    /// Header, framing and JSON bytes gRPC would not send.
    pub bytes_saved_per_s: f64,
    /// Handshake crypto and (de)serialization CPU removed, in cores.
    pub cpu_saved_cores: f64,
    /// Distinct routes + callers of the server + [external caller or proxy caller] x
    /// `external_effort`.
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
    /// Where the link sits in the call trees (docs/chains.md); `None` when no call of the
    /// link was placed in a tree.
    pub chain: Option<LinkChain>,
    #[serde(flatten)]
    pub assessment: Assessment,
}

/// Scores and orders the assessed links, best first (ties by client, then server name).
pub fn rank(links: Vec<Assessed>, constants: &CostConstants) -> Vec<Ranked> {
    let servers: BTreeSet<&str> = links.iter().map(|a| a.link.server.as_str()).collect();
    let mut callers: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for a in &links {
        callers
            .entry(&a.link.server)
            .or_default()
            .insert(&a.link.client);
    }
    let proxies = crate::analysis::links::proxy_clients(links.iter().map(|a| &a.link));
    let inputs: Vec<ScoreInputs> = links
        .iter()
        .map(|a| {
            let l = &a.link;
            let external = !servers.contains(l.client.as_str());
            // A proxy caller (a gateway relaying its clients' REST) must change tier too.
            let proxy = proxies.contains(&l.client);
            let routes = (l.routes.len() as u64 + l.routes_not_listed) as f64;
            let n_callers = callers.get(l.server.as_str()).map_or(1, |c| c.len()) as f64;
            // The gain of the recommended target (a kept link gains only what its
            // cheaper fix would).
            // ... plus the transport fixes', which apply whatever the target.
            let rec = &a.assessment.recommendation;
            let g = &rec.gain;
            let t = rec.transport_gain();
            let (time, bytes, cpu) = (
                g.time_saved_ms_per_s + t.time_saved_ms_per_s,
                g.bytes_saved_per_s + t.bytes_saved_per_s,
                g.cpu_saved_cores + t.cpu_saved_cores,
            );
            ScoreInputs {
                time_saved_ms_per_s: time.max(0.0),
                bytes_saved_per_s: bytes.max(0.0),
                cpu_saved_cores: cpu.max(0.0),
                effort: routes
                    + n_callers
                    + if external || proxy {
                        constants.external_effort
                    } else {
                        0.0
                    },
                external,
            }
        })
        .collect();
    let total = |f: fn(&ScoreInputs) -> f64| inputs.iter().map(f).sum::<f64>();
    let (ts, tb, tc) = (
        total(|s| s.time_saved_ms_per_s),
        total(|s| s.bytes_saved_per_s),
        total(|s| s.cpu_saved_cores),
    );
    let share = |x: f64, t: f64| if t > 0.0 { x / t } else { 0.0 };
    let mut ranked: Vec<Ranked> = links
        .into_iter()
        .zip(inputs)
        .map(|(a, s)| {
            let normalised = (share(s.time_saved_ms_per_s, ts)
                + share(s.bytes_saved_per_s, tb)
                + share(s.cpu_saved_cores, tc))
                / 3.0;
            Ranked {
                rank: 0,
                score: normalised / (1.0 + s.effort),
                score_inputs: s,
                link: a.link,
                chain: a.chain,
                assessment: a.assessment,
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
