//! `linkrank fleet`: the nodes' slices folded by the query engine into per-link
//! aggregates, then assessed, ranked, planned and reported as `analyze` does (the same
//! `links.json`), with `fleet.json` for what the fold saw (nodes, views, partial result).

use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;

use super::RunError;
use crate::analysis::cost::CostConstants;
use crate::analysis::identity::Naming;
use crate::analysis::rank::{self, Ranked};
use crate::analysis::{assess, plan};
use crate::fleet::engine::{self, Engine, FleetFigures, FleetResult, LinkPair, QueryConfig};
use crate::model::Coverage;
use crate::report::summary::{InputSummary, TableFigures};
use crate::report::{links_csv, links_json, markdown, LinkReport};

/// Validated settings of one `fleet` run.
#[derive(Clone, Debug)]
pub struct FleetConfig {
    /// Fleet folders (each holding `table=...` folders written by `analyze --fleet-out`).
    pub inputs: Vec<PathBuf>,
    pub out: PathBuf,
    pub query: QueryConfig,
    /// Nodes that should have sent a slice: a missing one makes the result partial.
    pub expect_nodes: Vec<String>,
    pub cost: CostConstants,
    /// Routes kept per link (`--routes`, as `analyze`).
    pub routes: usize,
    pub quiet: bool,
}

/// What a fleet run produced.
pub struct FleetOutcome {
    pub result: FleetResult,
    pub ranked: Vec<Ranked>,
    pub partial: Partial,
}

/// Whether every expected node sent its slice.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Partial {
    pub partial: bool,
    pub missing_nodes: Vec<String>,
    /// Exchanges seen only from the client's side (their server's slice missing, or the
    /// server outside the fleet).
    pub without_server_view: u64,
}

#[derive(Serialize)]
struct FleetJson<'a> {
    engine: String,
    figures: &'a FleetFigures,
    partial: &'a Partial,
    link_pairs: Vec<PairJson<'a>>,
}

#[derive(Serialize)]
struct PairJson<'a> {
    parent_client: &'a str,
    parent_server: &'a str,
    client: &'a str,
    server: &'a str,
    calls: u64,
}

/// Runs the fleet query on the engine, then the assessment and the reports.
pub fn fleet(cfg: &FleetConfig) -> Result<FleetOutcome, RunError> {
    for dir in &cfg.inputs {
        if !dir.is_dir() {
            return Err(RunError::Input(anyhow::anyhow!(
                "{}: not a folder of fleet slices (analyze --fleet-out writes them)",
                dir.display()
            )));
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .map_err(RunError::Output)?;
    let result = runtime
        .block_on(async {
            let ctx = engine::session(&cfg.query.engine, cfg.query.partitions).await?;
            engine::run(&ctx, &cfg.inputs, &cfg.query).await
        })
        .map_err(RunError::Input)?;
    drop(runtime);

    let missing_nodes: Vec<String> = cfg
        .expect_nodes
        .iter()
        .filter(|n| !result.figures.nodes.contains(n))
        .cloned()
        .collect();
    let partial = Partial {
        partial: !missing_nodes.is_empty(),
        missing_nodes,
        without_server_view: result.figures.without_server_view,
    };
    let run_chains = crate::fleet::links::run_chains(
        &result,
        crate::analysis::chains::ChainConfig::default().top_root_routes,
    );
    let (set, chains) = crate::fleet::links::link_set(&result, cfg.routes)
        .context("making the fleet's links")
        .map_err(RunError::Output)?;
    let capture_seconds = set.capture_seconds;
    let payloadless = set.payloadless_connections_unlinked;
    let assessed = assess::assess(set, chains, &result.payloads, &cfg.cost);
    let ranked = rank::rank(assessed.links, &cfg.cost);
    let plan = plan::plan(&ranked);

    std::fs::create_dir_all(&cfg.out)
        .with_context(|| format!("creating {}", cfg.out.display()))
        .map_err(RunError::Output)?;
    let inputs: Vec<InputSummary> = cfg
        .inputs
        .iter()
        .map(|p| InputSummary {
            path: p.clone(),
            format: "fleet",
            gzipped: false,
            packets: 0,
            bytes: 0,
        })
        .collect();
    let coverage = Coverage::default();
    let naming = Naming::default();
    let report = LinkReport {
        inputs: &inputs,
        coverage: &coverage,
        figures: TableFigures {
            connections: result.figures.connections as usize,
            exchanges: result.figures.exchanges as usize,
            connections_by_protocol: Vec::new(),
            exchanges_by_completeness: Vec::new(),
        },
        naming: &naming,
        name_files: Vec::new(),
        links: &ranked,
        capture_seconds,
        payloadless_connections_unlinked: payloadless,
        constants: &cfg.cost,
        score_constants: Some(&assessed.score_constants),
        chains: Some(&run_chains),
        traces: None,
        plan: Some(&plan),
        kit: None,
    };
    links_json::write(&cfg.out, &report).map_err(RunError::Output)?;
    links_csv::write(&cfg.out, &ranked).map_err(RunError::Output)?;
    markdown::write(&cfg.out, &report).map_err(RunError::Output)?;
    crate::report::html::write(&cfg.out, &report).map_err(RunError::Output)?;
    let pairs = result.link_pairs.iter().map(pair_json).collect();
    let json = FleetJson {
        engine: match &cfg.query.engine {
            Engine::Local => "local".into(),
            Engine::Ballista(url) => url.clone(),
        },
        figures: &result.figures,
        partial: &partial,
        link_pairs: pairs,
    };
    let text = serde_json::to_string_pretty(&json)
        .context("writing fleet.json")
        .map_err(RunError::Output)?;
    std::fs::write(cfg.out.join("fleet.json"), text + "\n")
        .context("writing fleet.json")
        .map_err(RunError::Output)?;
    Ok(FleetOutcome {
        result,
        ranked,
        partial,
    })
}

fn pair_json(p: &LinkPair) -> PairJson<'_> {
    PairJson {
        parent_client: &p.parent.0,
        parent_server: &p.parent.1,
        client: &p.child.0,
        server: &p.child.1,
        calls: p.calls,
    }
}
