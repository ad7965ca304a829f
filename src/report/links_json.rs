//! `links.json`, schema `linkrank.links/v1`: a stable contract. Fields may be added;
//! renaming or dropping one needs a new schema version.

use std::path::Path;

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;

use super::summary::{InputSummary, TableFigures};
use super::LinkReport;
use crate::analysis::cost::CostConstants;
use crate::analysis::identity::{Conflict, NameSource};
use crate::analysis::links::{Evidence, HttpMeasures};
use crate::model::Coverage;

pub const SCHEMA: &str = "linkrank.links/v1";

#[derive(Serialize)]
struct Identity<'a> {
    files: &'a [String],
    /// Endpoints named by each source.
    sources: std::collections::BTreeMap<NameSource, u64>,
    conflicts: &'a [Conflict],
}

#[derive(Serialize)]
struct Scoring<'a> {
    name: &'static str,
    constants: &'a CostConstants,
    /// The pessimistic constants the recommendations and the score used.
    score_constants: Option<&'a CostConstants>,
}

#[derive(Serialize)]
struct File<'a> {
    schema: &'static str,
    generator: String,
    inputs: &'a [InputSummary],
    capture_quality: &'a Coverage,
    tables: &'a TableFigures,
    capture_seconds: Option<f64>,
    payloadless_connections_unlinked: u64,
    identity: Identity<'a>,
    scoring: Scoring<'a>,
    /// Call-chain summary of the run (null when not analysed).
    chains: Option<&'a crate::analysis::chains::RunChains>,
    /// Trace files, the join with the captures (null without trace input).
    traces: Option<&'a super::TraceReport>,
    /// Quick wins and waves of migrations (docs/cost-model.md, "Recommendations").
    plan: Option<&'a crate::analysis::plan::Plan>,
    /// The migration kit written beside the reports (null when none was written).
    kit: Option<super::kit::KitSummary>,
    links: Vec<Value>,
}

/// The document, as a JSON value.
pub fn document(report: &LinkReport<'_>) -> anyhow::Result<Value> {
    // The HTTP measures sit at the link's top level; a link without visible HTTP (TLS)
    // has every one of them as null, so readers always find the same keys.
    let http_keys: Vec<String> = match serde_json::to_value(HttpMeasures::default())? {
        Value::Object(m) => m.keys().cloned().collect(),
        _ => Vec::new(),
    };
    let mut links = Vec::with_capacity(report.links.len());
    for ranked in report.links {
        let Value::Object(mut obj) = serde_json::to_value(ranked)? else {
            anyhow::bail!("a link did not serialise to an object");
        };
        // The what-if belongs to the chain it was projected along.
        let what_if = obj.remove("what_if");
        if let (Some(w), Some(Value::Object(chain))) = (what_if, obj.get_mut("chain")) {
            chain.insert("what_if".to_owned(), w);
        }
        match obj.remove("http") {
            Some(Value::Object(m)) => obj.extend(m),
            _ => {
                for k in &http_keys {
                    obj.insert(k.clone(), Value::Null);
                }
            }
        }
        // Spans show no connections, handshakes or header bytes: unknown, not zero.
        if ranked.link.evidence == Evidence::Traces {
            for k in Evidence::CAPTURE_ONLY {
                obj.insert((*k).to_owned(), Value::Null);
            }
            for k in ["request_headers", "response_headers"] {
                for group in ["bytes", "bytes_per_request"] {
                    if let Some(Value::Object(m)) = obj.get_mut(group) {
                        m.insert(k.to_owned(), Value::Null);
                    }
                }
            }
        }
        links.push(Value::Object(obj));
    }
    let file = File {
        schema: SCHEMA,
        generator: format!("linkrank {}", env!("CARGO_PKG_VERSION")),
        inputs: report.inputs,
        capture_quality: report.coverage,
        tables: &report.figures,
        capture_seconds: report.capture_seconds,
        payloadless_connections_unlinked: report.payloadless_connections_unlinked,
        identity: Identity {
            files: &report.name_files,
            sources: report.naming.source_counts(),
            conflicts: &report.naming.conflicts,
        },
        scoring: Scoring {
            name: "recommended-gain-share/v2",
            constants: report.constants,
            score_constants: report.score_constants,
        },
        chains: report.chains,
        traces: report.traces,
        plan: report.plan,
        kit: report.kit.and_then(super::kit::Kit::summary),
        links,
    };
    Ok(serde_json::to_value(file)?)
}

pub fn write(dir: &Path, report: &LinkReport<'_>) -> anyhow::Result<()> {
    let path = dir.join("links.json");
    let text = serde_json::to_string_pretty(&document(report)?)? + "\n";
    std::fs::write(&path, text).with_context(|| format!("{}: cannot write", path.display()))
}
