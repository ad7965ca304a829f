//! Assessment: what each measured link would gain and what to do about it.
//!
//! Takes the links as measured (`crate::analysis::links`), where their calls sit in the call trees
//! (`crate::analysis::chains`), the JSON payload samples and the cost constants, and returns one
//! [`Assessment`] per link: the savings and the what-if at the constants in force (the
//! figures the reports show) and the recommendation, decided at the pessimistic end of
//! every constant's range (S(low), docs/cost-model.md §6). Nothing here writes back into
//! a `Link`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::analysis::chains::LinkChain;
use crate::analysis::cost::{self, CostConstants, PayloadSamples, Savings, WhatIf};
use crate::analysis::links::{Link, LinkKey, LinkSet};
use crate::analysis::recommend::{self, Recommendation, Subject};

/// What one link would gain, and the decision.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Assessment {
    /// What pooled gRPC would save, at the constants in force.
    pub savings: Savings,
    /// Root latency those savings remove along the critical paths; `None` when no call of
    /// the link was placed in a call tree. `links.json` writes it inside the `chain`.
    pub what_if: Option<WhatIf>,
    /// Target, cheaper fix, gain and reasons, at the pessimistic constants.
    pub recommendation: Recommendation,
}

/// A link with its place in the call trees and its assessment.
#[derive(Clone, Debug, PartialEq)]
pub struct Assessed {
    pub link: Link,
    /// `None` when no call of the link was placed in a call tree.
    pub chain: Option<LinkChain>,
    pub assessment: Assessment,
}

/// Every link of a run, assessed.
#[derive(Clone, Debug)]
pub struct Assessments {
    pub links: Vec<Assessed>,
    /// The constants the decisions used: each savings constant the user left at its
    /// default moved to the end of its range that saves least.
    pub score_constants: CostConstants,
}

/// Assesses every link of `set`. `chains` are the per-link chains of the chain analysis
/// (a link without one has no call in a tree); `payloads` the JSON samples per link.
pub fn assess(
    set: LinkSet,
    mut chains: BTreeMap<LinkKey, LinkChain>,
    payloads: &BTreeMap<LinkKey, PayloadSamples>,
    constants: &CostConstants,
) -> Assessments {
    let seconds = set.capture_seconds;
    let chains: Vec<Option<LinkChain>> = set
        .links
        .iter()
        .map(|l| chains.remove(&(l.client.clone(), l.server.clone())))
        .collect();
    let payload = |l: &Link| payloads.get(&(l.client.clone(), l.server.clone()));
    // Savings and what-if of every link under the constants `k`.
    let project = |k: &CostConstants| -> Vec<(Savings, Option<WhatIf>)> {
        set.links
            .iter()
            .zip(&chains)
            .map(|(l, chain)| {
                let savings = cost::link_savings(l, seconds, payload(l), k);
                let what_if = chain
                    .as_ref()
                    .map(|c| cost::what_if(l, c, &savings, seconds));
                (savings, what_if)
            })
            .collect()
    };
    // The savings alone (not the decisions, which thresholds make jumpy) find each
    // constant's pessimistic end: each constant moves them one way.
    let low = constants.pessimistic_by(|k| {
        set.links.iter().fold([0.0; 3], |t, l| {
            let s = cost::link_savings(l, seconds, payload(l), k);
            [
                t[0] + s.latency_ms_per_s_saved.unwrap_or(0.0),
                t[1] + s.bytes_per_s_saved.unwrap_or(0.0),
                t[2] + s.cpu_ms_per_s_saved.unwrap_or(0.0),
            ]
        })
    });
    let at_low = project(&low);
    let subjects: Vec<Subject<'_>> = set
        .links
        .iter()
        .zip(&chains)
        .zip(&at_low)
        .map(|((link, chain), (savings, what_if))| Subject {
            link,
            chain: chain.as_ref(),
            savings,
            what_if: what_if.as_ref(),
        })
        .collect();
    let decisions = recommend::recommend(&subjects, &low, seconds);
    let at_constants = project(constants);
    let links = set
        .links
        .into_iter()
        .zip(chains)
        .zip(at_constants.into_iter().zip(decisions))
        .map(
            |((link, chain), ((savings, what_if), recommendation))| Assessed {
                link,
                chain,
                assessment: Assessment {
                    savings,
                    what_if,
                    recommendation,
                },
            },
        )
        .collect();
    Assessments {
        links,
        score_constants: low,
    }
}
