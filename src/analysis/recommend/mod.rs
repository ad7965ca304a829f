//! Recommendations: per link a target (gRPC, broker, mesh or keep HTTP), the cheaper fix
//! when one captures most of the gain, the projected gain of that target, a confidence,
//! and the measured facts behind the decision in sentences; then a rollout plan in waves
//! (`crate::analysis::plan`). The rules follow the cost model's §3 (first match wins;
//! docs/cost-model.md, "Recommendations").
//!
//! Runs inside the assessment (`crate::analysis::assess`), after the savings and the what-if: it
//! reads a link's measures, its chain and those figures through a [`Subject`].

mod rules;

use std::ops::Deref;

use serde::Serialize;

use crate::analysis::chains::LinkChain;
use crate::analysis::cost::{CostConstants, Savings, WhatIf};
use crate::analysis::links::Link;

/// What to move a link to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Grpc,
    Broker,
    Mesh,
    Keep,
}

impl Target {
    pub const fn as_str(self) -> &'static str {
        match self {
            Target::Grpc => "grpc",
            Target::Broker => "broker",
            Target::Mesh => "mesh",
            Target::Keep => "keep",
        }
    }
}

/// A fix short of a migration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fix {
    KeepAlive,
    ConnectionPooling,
    Http2,
    Gzip,
}

impl Fix {
    pub const fn as_str(self) -> &'static str {
        match self {
            Fix::KeepAlive => "keep-alive",
            Fix::ConnectionPooling => "connection pooling",
            Fix::Http2 => "http2",
            Fix::Gzip => "gzip",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BrokerKind {
    Nats,
    Kafka,
    Rabbitmq,
}

impl BrokerKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            BrokerKind::Nats => "nats",
            BrokerKind::Kafka => "kafka",
            BrokerKind::Rabbitmq => "rabbitmq",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BrokerChoice {
    pub kind: BrokerKind,
    pub reason: String,
}

/// The projected gain of the recommended target, per second of capture, at the
/// pessimistic end of the cost model's ranges where the constants give one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Gain {
    /// Waiting removed, in latency-ms per second: along the critical paths for a
    /// synchronous target, the caller's whole wait for a broker (nobody waits for the
    /// consumer), weighted by the synchronous callers that wait above the link.
    pub time_saved_ms_per_s: f64,
    /// The root latency removed, in latency-ms per second: the same waiting counted once
    /// (not per waiting caller). Per request, what the floors and the report use.
    pub root_latency_ms_per_s_saved: f64,
    pub bytes_saved_per_s: f64,
    /// CPU removed, in cores (negative for a mesh: its proxies cost CPU).
    pub cpu_saved_cores: f64,
}

impl std::ops::Add for Gain {
    type Output = Gain;

    fn add(self, o: Gain) -> Gain {
        Gain {
            time_saved_ms_per_s: self.time_saved_ms_per_s + o.time_saved_ms_per_s,
            root_latency_ms_per_s_saved: self.root_latency_ms_per_s_saved
                + o.root_latency_ms_per_s_saved,
            bytes_saved_per_s: self.bytes_saved_per_s + o.bytes_saved_per_s,
            cpu_saved_cores: self.cpu_saved_cores + o.cpu_saved_cores,
        }
    }
}

/// How far the figures behind a decision can be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    High,
    Medium,
    Low,
}

/// The `recommendation` object of a link in `links.json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Recommendation {
    pub target: Target,
    /// The rule of docs/cost-model.md that decided (`keep:external`, `broker:fire-and-forget`, ...).
    pub rule: &'static str,
    /// A cheaper fix that captures most of the gain: do it first (or instead).
    pub cheaper_fix: Option<Fix>,
    /// Share of the gain the cheaper fix captures.
    pub cheaper_fix_share: Option<f64>,
    pub broker: Option<BrokerChoice>,
    pub confidence: Confidence,
    /// 0..1: the weakest of the sample-size and capture-quality factors.
    pub confidence_score: f64,
    /// The measured facts behind the decision, in sentences.
    pub why: Vec<String>,
    /// What could go wrong, as seen in the data.
    pub risks: Vec<String>,
    pub gain: Gain,
    /// Transport fixes found beside the decision (Nagle / delayed-ACK stalls, loss
    /// repaired by the retransmission timer, zero windows, slow-start restarts): each
    /// applies whatever the target, and its gain adds to the target's in the ranking.
    pub transport_fixes: Vec<TransportFix>,
}

impl Recommendation {
    /// The transport fixes' gains together.
    pub fn transport_gain(&self) -> Gain {
        self.transport_fixes
            .iter()
            .fold(Gain::default(), |a, t| a + t.gain)
    }
}

/// What a transport fix repairs (links.json writes it kebab-case).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransportFixKind {
    /// Nagle's algorithm against delayed ACKs.
    TcpNodelay,
    /// Segments resent by the retransmission timer.
    RepairLoss,
    /// Zero windows.
    ReceiveBuffer,
    /// Slow-start restarts on idle keep-alive connections.
    NoSlowStartAfterIdle,
}

impl TransportFixKind {
    /// A few letters for the terminal's advice column.
    pub const fn short(self) -> &'static str {
        match self {
            TransportFixKind::TcpNodelay => "nodelay",
            TransportFixKind::RepairLoss => "loss",
            TransportFixKind::ReceiveBuffer => "rcvbuf",
            TransportFixKind::NoSlowStartAfterIdle => "no-ssai",
        }
    }
}

/// A fix of the transport beneath HTTP, for a cost the packets measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TransportFix {
    pub kind: TransportFixKind,
    /// The service whose sockets or host the fix changes (for loss: the server end of
    /// the path to look along).
    pub service: String,
    /// What to change, in a few words.
    pub action: String,
    /// Mean ms per request the problem costs today, over all of the link's requests.
    pub ms_per_request: f64,
    pub gain: Gain,
}

/// What the rules read of one link: its measures (the `Deref` target), where it sits in
/// the call trees, and what the cost model projects for it.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    pub link: &'a Link,
    /// `None` when no call of the link was placed in a call tree.
    pub chain: Option<&'a LinkChain>,
    pub savings: &'a Savings,
    /// `None` without a chain.
    pub what_if: Option<&'a WhatIf>,
}

impl Deref for Subject<'_> {
    type Target = Link;

    fn deref(&self) -> &Link {
        self.link
    }
}

/// Decides every link of a run, in order. `capture_seconds` is the span of what was
/// analysed: it turns counts into rates and bounds the confidence.
pub fn recommend(
    subjects: &[Subject<'_>],
    constants: &CostConstants,
    capture_seconds: Option<f64>,
) -> Vec<Recommendation> {
    let fleet = rules::Fleet::of(subjects, capture_seconds);
    subjects
        .iter()
        .map(|l| rules::decide(l, &fleet, constants))
        .collect()
}
