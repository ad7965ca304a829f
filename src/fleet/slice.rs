//! One node's slice of a fleet: `analyze --fleet-out DIR --node NAME` writes its tables
//! partitioned Hive-style by node and time window (docs/fleet.md):
//!
//! ```text
//! DIR/table=exchanges/node=N/window=W/part-<run>.parquet
//! DIR/table=connections/node=N/window=W/part-<run>.parquet
//! DIR/table=call_edges/node=N/window=W/part-<run>.parquet
//! DIR/table=identity/node=N/window=W/part-<run>.parquet
//! DIR/table=payloads/node=N/window=W/part-<run>.parquet
//! ```
//!
//! `W` is the start of the window in Unix seconds; `<run>` is the first packet time of
//! the run (ns), so a slice sent again overwrites its own files instead of adding rows.
//! Needs no query engine: a node agent writes slices with the default build.

use std::collections::BTreeSet;
use std::fs::File;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use polars::prelude::*;

use crate::analysis::chains::link_chain::same_payload_fanout;
use crate::analysis::chains::{CallKind, CallSet, Forest, Inference};
use crate::analysis::identity::{NameSource, Naming};
use crate::tables::{columns, Tables};

/// Where and how one node writes its slice.
#[derive(Clone, Debug)]
pub struct SliceConfig {
    pub dir: PathBuf,
    /// The node's name (a path segment: letters, digits, `.`, `-`, `_`).
    pub node: String,
    /// The node's own addresses; empty: inferred (the address every connection has).
    pub node_ips: Vec<IpAddr>,
    /// Width of a time window, seconds.
    pub window_secs: u64,
}

/// Default window width: one hour.
pub const DEFAULT_WINDOW_SECS: u64 = 3600;

/// What a slice holds, for the summary and the tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SliceSummary {
    pub exchanges: u64,
    pub connections: u64,
    pub call_edges: u64,
    pub identity_rows: u64,
    pub payload_rows: u64,
    pub node_ips: Vec<IpAddr>,
    pub windows: BTreeSet<i64>,
    pub files: u64,
}

/// Checks a node name: it becomes a directory name.
pub fn check_node_name(node: &str) -> Result<(), String> {
    let ok = !node.is_empty()
        && node.len() <= 128
        && node != "."
        && node != ".."
        && node
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "--node {node:?}: a node name is 1-128 letters, digits, '.', '-' or '_'"
        ))
    }
}

/// Writes the node's slice: the exchanges, connections, the parent edges inferred from
/// them and the names the node gave its endpoints.
pub fn write_slice(
    cfg: &SliceConfig,
    tables: &Tables,
    naming: &Naming,
    calls: &CallSet,
    inference: &Inference,
    forest: &Forest,
) -> anyhow::Result<SliceSummary> {
    check_node_name(&cfg.node).map_err(anyhow::Error::msg)?;
    anyhow::ensure!(cfg.window_secs > 0, "the fleet window must be at least 1 s");
    let window_ns = i64::try_from(cfg.window_secs)
        .ok()
        .and_then(|s| s.checked_mul(1_000_000_000))
        .context("the fleet window is too long")?;
    let run = tables
        .connections
        .column(columns::FIRST_NS)?
        .i64()?
        .min()
        .unwrap_or(0);
    let node_ips = if cfg.node_ips.is_empty() {
        infer_node_ips(&tables.connections)?
    } else {
        cfg.node_ips.clone()
    };
    let mut summary = SliceSummary {
        exchanges: tables.exchanges.height() as u64,
        connections: tables.connections.height() as u64,
        node_ips: node_ips.clone(),
        ..Default::default()
    };
    let out = Partitions {
        dir: &cfg.dir,
        node: &cfg.node,
        run,
        window_ns,
    };
    // With the figures the link measures sum, derived here where the node's own
    // connections are (docs/fleet.md).
    let exchanges = crate::analysis::links::exchange_measures(tables, naming)?;
    out.write(
        "exchanges",
        &exchanges,
        &[columns::REQ_FIRST_NS, columns::RESP_FIRST_NS],
        &mut summary,
    )?;
    drop(exchanges);
    out.write(
        "connections",
        &tables.connections,
        &[columns::FIRST_NS],
        &mut summary,
    )?;
    let edges = edge_frame(calls, inference, forest)?;
    summary.call_edges = edges.height() as u64;
    if edges.height() > 0 {
        out.write("call_edges", &edges, &["child_start_ns"], &mut summary)?;
    }
    drop(edges);
    // The payload samples (sizes and codec costs of the JSON bodies the node sampled):
    // no times, so with the run's first window; none written when nothing was sampled.
    summary.payload_rows = tables.payloads.height() as u64;
    if tables.payloads.height() > 0 {
        out.write("payloads", &tables.payloads, &[], &mut summary)?;
    }
    let identity = identity_frame(&node_ips, tables, naming)?;
    summary.identity_rows = identity.height() as u64;
    // Identity holds no times: it goes with the run's first window.
    out.write("identity", &identity, &[], &mut summary)?;
    Ok(summary)
}

struct Partitions<'a> {
    dir: &'a Path,
    node: &'a str,
    run: i64,
    window_ns: i64,
}

impl Partitions<'_> {
    /// Writes `df` split by the window of its first non-null time column (ns); rows
    /// without a time go with the run's first window.
    fn write(
        &self,
        table: &str,
        df: &DataFrame,
        time: &[&str],
        summary: &mut SliceSummary,
    ) -> anyhow::Result<()> {
        const WINDOW: &str = "__window";
        let secs = self.window_ns / 1_000_000_000;
        let mut times: Vec<Option<i64>> = vec![None; df.height()];
        for c in time {
            let values = df.column(c)?.cast(&DataType::Int64)?;
            for (t, v) in times.iter_mut().zip(values.i64()?.iter()) {
                *t = t.or(v);
            }
        }
        // In Rust: polars' integer floor division needs a feature this build leaves out.
        let window: Vec<i64> = times
            .iter()
            .map(|t| t.unwrap_or(self.run).div_euclid(self.window_ns) * secs)
            .collect();
        let mut windows: BTreeSet<i64> = window.iter().copied().collect();
        if windows.is_empty() {
            // An empty table still gets a file: the fleet then knows the node had none.
            windows.insert(self.run.div_euclid(self.window_ns) * secs);
        }
        let mut windowed = df.clone();
        windowed.with_column(Column::new(WINDOW.into(), window))?;
        for w in windows {
            let mut part = windowed
                .clone()
                .lazy()
                .filter(col(WINDOW).eq(lit(w)))
                .collect()?
                .drop(WINDOW)?;
            let dir = self
                .dir
                .join(format!("table={table}"))
                .join(format!("node={}", self.node))
                .join(format!("window={w}"));
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let path = dir.join(format!("part-{}.parquet", self.run));
            // Written beside, then renamed: a reader never sees half a file.
            let tmp = dir.join(format!(".part-{}.parquet.tmp", self.run));
            let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
            let written = ParquetWriter::new(file)
                .with_compression(ParquetCompression::Zstd(None))
                .finish(&mut part);
            anyhow::Context::with_context(written, || format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, &path)
                .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
            summary.windows.insert(w);
            summary.files += 1;
        }
        Ok(())
    }
}

/// The node's own addresses: those at one end of every connection it captured (a
/// node's capture sees its own traffic). None when no address is in all of them.
pub fn infer_node_ips(connections: &DataFrame) -> anyhow::Result<Vec<IpAddr>> {
    let cip = connections.column(columns::CLIENT_IP)?.str()?;
    let sip = connections.column(columns::SERVER_IP)?.str()?;
    let mut common: Option<BTreeSet<&str>> = None;
    for (c, s) in cip.iter().zip(sip.iter()) {
        let here: BTreeSet<&str> = c.into_iter().chain(s).collect();
        common = Some(match common {
            None => here,
            Some(prev) => prev.intersection(&here).copied().collect(),
        });
        if common.as_ref().is_some_and(BTreeSet::is_empty) {
            break;
        }
    }
    Ok(common
        .unwrap_or_default()
        .into_iter()
        .filter_map(|ip| ip.parse().ok())
        .collect())
}

/// One row per inferred parent edge: the child call and its parent, each by connection
/// 5-tuple, position on the connection and start time (what the fleet matches on), and
/// what the parent's node saw of the child beside its siblings (all of a request's
/// children are made by its server, so its node sees them all).
fn edge_frame(calls: &CallSet, inference: &Inference, forest: &Forest) -> PolarsResult<DataFrame> {
    let mut cols = EdgeColumns::default();
    let n = calls.calls.len().min(inference.edges.len());
    let same_payload = same_payload_fanout(&calls.calls, inference, n);
    for (i, edge) in inference.edges.iter().enumerate() {
        let (Some(edge), Some(child)) = (edge, calls.calls.get(i)) else {
            continue;
        };
        let Some(parent) = calls.calls.get(edge.parent as usize) else {
            continue;
        };
        cols.push("child", child);
        cols.push("parent", parent);
        let text =
            |s: Option<crate::analysis::chains::Sym>| s.map(|s| calls.symbols.get(s).to_owned());
        cols.child_method.push(text(child.method));
        cols.child_route.push(text(child.route));
        cols.source
            .push(format!("{:?}", edge.source).to_lowercase());
        cols.confidence.push(edge.confidence);
        cols.late.push(edge.late);
        let facts = forest.facts.get(i).copied().unwrap_or_default();
        cols.parallel.push(facts.parallel);
        cols.fire_and_forget.push(facts.fire_and_forget);
        cols.same_payload
            .push(same_payload.get(i).copied().unwrap_or(false));
        cols.n_plus_one.push(facts.n_plus_one);
        cols.on_parent_path.push(facts.on_parent_path);
        let parent_facts = forest
            .facts
            .get(edge.parent as usize)
            .copied()
            .unwrap_or_default();
        cols.parent_own_ns.push(parent_facts.own_ns);
        cols.parent_waiting_ns.push(parent_facts.waiting_ns);
        cols.child_serving_ns
            .push(child.serving().map(|(a, b)| b.saturating_sub(a)));
    }
    cols.finish()
}

#[derive(Default)]
struct EdgeColumns {
    ends: [EndColumns; 2],
    source: Vec<String>,
    confidence: Vec<f64>,
    late: Vec<bool>,
    parallel: Vec<bool>,
    fire_and_forget: Vec<bool>,
    same_payload: Vec<bool>,
    /// One of an N+1 group under its parent (the same route called again and again).
    n_plus_one: Vec<bool>,
    /// On its parent's critical path (the fleet follows it up to the root).
    on_parent_path: Vec<bool>,
    /// The parent's own time and its time waiting on its calls, as its server's node
    /// (this one) saw its children: the hops of a critical path.
    parent_own_ns: Vec<Option<i64>>,
    parent_waiting_ns: Vec<Option<i64>>,
    /// Last request byte to first response byte of the child: its own time if it makes
    /// no call.
    child_serving_ns: Vec<Option<i64>>,
    /// The child's method and route template (the N+1 groups are per route).
    child_method: Vec<Option<String>>,
    child_route: Vec<Option<String>>,
}

#[derive(Default)]
struct EndColumns {
    client_ip: Vec<String>,
    client_port: Vec<u32>,
    server_ip: Vec<String>,
    server_port: Vec<u32>,
    index: Vec<u32>,
    start_ns: Vec<Option<i64>>,
    /// Start to end as the caller saw it (`Call::duration`), ns.
    duration_ns: Vec<Option<i64>>,
    opaque: Vec<bool>,
}

impl EdgeColumns {
    fn push(&mut self, end: &str, call: &crate::analysis::chains::Call) {
        let e = &mut self.ends[usize::from(end == "parent")];
        e.client_ip.push(call.client.ip().to_string());
        e.client_port.push(u32::from(call.client.port()));
        e.server_ip.push(call.server.ip().to_string());
        e.server_port.push(u32::from(call.server.port()));
        e.index.push(call.index);
        e.start_ns.push(call.start());
        e.duration_ns.push(call.duration());
        e.opaque.push(call.kind == CallKind::Opaque);
    }

    fn finish(self) -> PolarsResult<DataFrame> {
        let height = self.source.len();
        let mut columns = Vec::new();
        for (end, e) in ["child", "parent"].iter().zip(self.ends) {
            let name = |c: &str| PlSmallStr::from(format!("{end}_{c}"));
            columns.push(Column::new(name("client_ip"), e.client_ip));
            columns.push(Column::new(name("client_port"), e.client_port));
            columns.push(Column::new(name("server_ip"), e.server_ip));
            columns.push(Column::new(name("server_port"), e.server_port));
            columns.push(Column::new(name("index"), e.index));
            columns.push(Column::new(name("start_ns"), e.start_ns));
            columns.push(Column::new(name("duration_ns"), e.duration_ns));
            columns.push(Column::new(name("opaque"), e.opaque));
        }
        columns.push(Column::new("source".into(), self.source));
        columns.push(Column::new("confidence".into(), self.confidence));
        columns.push(Column::new("late".into(), self.late));
        columns.push(Column::new("parallel".into(), self.parallel));
        columns.push(Column::new("fire_and_forget".into(), self.fire_and_forget));
        columns.push(Column::new("same_payload".into(), self.same_payload));
        columns.push(Column::new("n_plus_one".into(), self.n_plus_one));
        columns.push(Column::new("on_parent_path".into(), self.on_parent_path));
        columns.push(Column::new("child_method".into(), self.child_method));
        columns.push(Column::new("child_route".into(), self.child_route));
        columns.push(Column::new("parent_own_ns".into(), self.parent_own_ns));
        columns.push(Column::new(
            "parent_waiting_ns".into(),
            self.parent_waiting_ns,
        ));
        columns.push(Column::new(
            "child_serving_ns".into(),
            self.child_serving_ns,
        ));
        DataFrame::new(height, columns)
    }
}

/// The names the node gave every endpoint of its tables (`role` `server` or `client`),
/// and its own addresses (`role` `node`). `source_rank` orders the sources as the
/// analysis does (0 wins); the fleet keeps the best-ranked name of each endpoint.
fn identity_frame(
    node_ips: &[IpAddr],
    tables: &Tables,
    naming: &Naming,
) -> PolarsResult<DataFrame> {
    let mut servers = BTreeSet::new();
    let mut clients = BTreeSet::new();
    for df in [&tables.exchanges, &tables.connections] {
        let cip = df.column(columns::CLIENT_IP)?.str()?;
        let sip = df.column(columns::SERVER_IP)?.str()?;
        let sport = df.column(columns::SERVER_PORT)?.cast(&DataType::UInt32)?;
        let sport = sport.u32()?;
        for ((c, s), p) in cip.iter().zip(sip.iter()).zip(sport.iter()) {
            if let Some(ip) = c.and_then(|c| c.parse::<IpAddr>().ok()) {
                clients.insert(ip);
            }
            if let (Some(ip), Some(port)) = (s.and_then(|s| s.parse::<IpAddr>().ok()), p) {
                if let Ok(port) = u16::try_from(port) {
                    servers.insert((ip, port));
                }
            }
        }
    }
    let mut role = Vec::new();
    let mut ip = Vec::new();
    let mut port: Vec<Option<u32>> = Vec::new();
    let mut service: Vec<Option<String>> = Vec::new();
    let mut source: Vec<Option<&'static str>> = Vec::new();
    let mut rank: Vec<Option<u32>> = Vec::new();
    for a in node_ips {
        role.push("node");
        ip.push(a.to_string());
        port.push(None);
        service.push(None);
        source.push(None);
        rank.push(None);
    }
    let mut named =
        |r: &'static str, a: IpAddr, p: Option<u16>, n: crate::analysis::identity::Named| {
            role.push(r);
            ip.push(a.to_string());
            port.push(p.map(u32::from));
            service.push(Some(n.name));
            source.push(Some(n.source.as_str()));
            rank.push(Some(source_rank(n.source)));
        };
    for (a, p) in servers {
        named("server", a, Some(p), naming.server(a, p));
    }
    for a in clients {
        named("client", a, None, naming.client(a));
    }
    DataFrame::new(
        role.len(),
        vec![
            Column::new("role".into(), role),
            Column::new("ip".into(), ip),
            Column::new("port".into(), port),
            Column::new("service".into(), service),
            Column::new("source".into(), source),
            Column::new("source_rank".into(), rank),
        ],
    )
}

/// A name source's precedence (0 wins), as `identity::resolve` applies it.
pub fn source_rank(source: NameSource) -> u32 {
    source as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_are_single_path_segments() {
        for ok in ["a", "node-1.eu_west", "10.81.0.11"] {
            assert!(check_node_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "node=1", &"x".repeat(129)] {
            assert!(check_node_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_node_address_is_the_one_every_connection_has() {
        let df = df![
            columns::CLIENT_IP => ["10.0.0.2", "10.0.0.11", "10.0.0.11"],
            columns::SERVER_IP => ["10.0.0.11", "10.0.0.12", "10.0.0.13"],
        ]
        .unwrap();
        assert_eq!(
            infer_node_ips(&df).unwrap(),
            vec!["10.0.0.11".parse::<IpAddr>().unwrap()]
        );
        let none = df![
            columns::CLIENT_IP => ["10.0.0.2", "10.0.0.3"],
            columns::SERVER_IP => ["10.0.0.11", "10.0.0.12"],
        ]
        .unwrap();
        assert!(infer_node_ips(&none).unwrap().is_empty());
    }
}
