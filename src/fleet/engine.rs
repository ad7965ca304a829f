//! The fleet's cross-node work as DataFusion SQL, run embedded or on a Ballista cluster:
//! the client-side and server-side views of one exchange (or connection) folded into one
//! row, endpoints named from the nodes' identity tables, and per-link aggregates (counts,
//! bytes, status classes, latency sketches, the call edges' figures). Only those
//! aggregates come back (rows per link, per link and latency bucket, per link pair).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use datafusion::arrow::array::{Array, ArrayRef, Float64Array, Int64Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::SessionContext;

use super::sketch::{bucket_sql, Buckets};

/// The fleet's tables, as `analyze --fleet-out` writes them.
pub const TABLES: [&str; 4] = ["exchanges", "connections", "call_edges", "identity"];

/// Where the query runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Engine {
    /// DataFusion in this process.
    Local,
    /// A Ballista scheduler, `df://HOST:PORT`.
    Ballista(String),
}

impl std::str::FromStr for Engine {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "local" {
            Ok(Engine::Local)
        } else if let Some(rest) = s.strip_prefix("df://") {
            let ok = rest
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
            if ok {
                Ok(Engine::Ballista(s.to_owned()))
            } else {
                Err(format!("--engine {s}: expected df://HOST:PORT"))
            }
        } else {
            Err(format!("--engine {s}: expected `local` or df://HOST:PORT"))
        }
    }
}

/// Settings of the fleet query.
#[derive(Clone, Debug)]
pub struct QueryConfig {
    pub engine: Engine,
    /// Two views of one exchange or connection match when their times are this close
    /// (clock skew between nodes plus the network between them).
    pub tolerance_ns: i64,
}

/// Per-link aggregates of the fleet.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LinkAgg {
    pub requests: u64,
    pub status: [u64; 8],
    pub bytes: [u64; 4],
    pub incomplete: u64,
    pub new_connections: u64,
    pub peak_per_s: Option<u64>,
    pub ttfb_ms: Buckets,
    pub total_ms: Buckets,
    pub connections: u64,
    pub tcp_handshakes: u64,
    pub tls_connections: u64,
    pub resets: u64,
    pub retransmitted_bytes: u64,
    /// Requests per exchange protocol (`http/1.1`, `h2c`, ...), connections per
    /// connection protocol (`tls`, `empty`, ...).
    pub exchange_protocols: BTreeMap<String, u64>,
    pub connection_protocols: BTreeMap<String, u64>,
    pub chain: ChainAgg,
}

/// The parent edges of a link's calls, as the callers' nodes inferred them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChainAgg {
    pub with_parent: u64,
    pub confidence_sum: f64,
    pub by_ids: u64,
    /// Parent requests that made at least one call of the link.
    pub parents: u64,
    pub max_per_parent: u64,
}

/// Calls of a link (child) made while serving a call of another link (parent).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LinkPair {
    pub parent: (String, String),
    pub child: (String, String),
    pub calls: u64,
}

/// What the fleet query returned, and what it folded.
#[derive(Clone, Debug, Default)]
pub struct FleetResult {
    pub links: BTreeMap<(String, String), LinkAgg>,
    pub link_pairs: Vec<LinkPair>,
    pub figures: FleetFigures,
}

/// Counts of the fold, for the report and the checks.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct FleetFigures {
    pub nodes: Vec<String>,
    pub windows: u64,
    /// Exchange rows in the slices, and after folding the two views of each exchange.
    pub exchange_rows: u64,
    pub exchanges: u64,
    /// Exchanges seen by their server's node (the view kept when both are present).
    pub server_views: u64,
    /// Exchanges seen only by a node that is not their server's (its slice missing, or
    /// the server outside the fleet).
    pub without_server_view: u64,
    pub connection_rows: u64,
    pub connections: u64,
    pub call_edge_rows: u64,
    /// Edges kept: those inferred on the caller's node, which sees the parent's window.
    pub call_edges: u64,
    /// First and last packet of the fleet's connections, ns.
    pub first_ns: Option<i64>,
    pub last_ns: Option<i64>,
    /// Rows the query read per second of its wall time.
    pub rows_per_s: Option<f64>,
    pub query_ms: f64,
}

/// Opens a session on the engine.
pub async fn session(engine: &Engine) -> anyhow::Result<SessionContext> {
    match engine {
        Engine::Local => Ok(SessionContext::new()),
        Engine::Ballista(url) => {
            use ballista::prelude::SessionContextExt;
            SessionContext::remote(url)
                .await
                .with_context(|| format!("connecting to the Ballista scheduler at {url}"))
        }
    }
}

/// Registers each of [`TABLES`] over the `table=NAME` folders of `dirs`, with `node` and
/// `window` as partition columns. Returns the tables found (a fleet without call edges
/// has no `call_edges`).
pub async fn register(ctx: &SessionContext, dirs: &[PathBuf]) -> anyhow::Result<Vec<&'static str>> {
    let mut found = Vec::new();
    for table in TABLES {
        let mut urls = Vec::new();
        for dir in dirs {
            let path = dir.join(format!("table={table}"));
            if path.is_dir() {
                let abs = std::fs::canonicalize(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let url = ListingTableUrl::parse(format!("{}/", abs.display()))
                    .with_context(|| format!("{}: not a usable path", abs.display()))?;
                urls.push(url);
            }
        }
        if urls.is_empty() {
            continue;
        }
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(vec![
                ("node".to_owned(), DataType::Utf8),
                ("window".to_owned(), DataType::Utf8),
            ]);
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .infer_schema(&ctx.state())
            .await
            .with_context(|| format!("reading the schema of the {table} slices"))?;
        let provider = ListingTable::try_new(config)?;
        ctx.register_table(table, Arc::new(provider))?;
        found.push(table);
    }
    anyhow::ensure!(
        found.contains(&"exchanges")
            && found.contains(&"connections")
            && found.contains(&"identity"),
        "no fleet slices (table=exchanges, table=connections, table=identity) under {}",
        dirs.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(found)
}

/// `MAX(c) AS c` for each column: rows folded as one view of one exchange are equal, so
/// any of them gives the values. (Aggregates rather than `ROW_NUMBER() = 1`: a hash
/// aggregate needs no sort, and Ballista 55's executors trip a debug assertion when they
/// rebuild the sort of a window after a shuffle.)
fn any_of(columns: &[&str]) -> String {
    columns
        .iter()
        .map(|c| format!("MAX({c}) AS {c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The columns of a connection's 5-tuple.
const TUPLE: &str = "client_ip, client_port, server_ip, server_port";

/// The views every query below builds on.
fn views(tol: i64, with_edges: bool) -> String {
    let key = |a: &str, b: &str| {
        format!(
            "{a}.client_ip = {b}.client_ip AND {a}.client_port = {b}.client_port \
             AND {a}.server_ip = {b}.server_ip AND {a}.server_port = {b}.server_port"
        )
    };
    let child = "child_client_ip, child_client_port, child_server_ip, child_server_port, \
                 child_index, child_start_ns";
    let edges = if with_edges {
        format!(
            ", edges AS (
  SELECT {child}, {parent} FROM call_edges e
  JOIN node_ips n ON n.node = e.node AND n.ip = e.child_client_ip
  GROUP BY {child})",
            parent = any_of(&[
                "parent_client_ip",
                "parent_client_port",
                "parent_server_ip",
                "parent_server_port",
                "parent_index",
                "parent_start_ns",
                "source",
                "confidence",
            ])
        )
    } else {
        String::new()
    };
    let ex_cols = any_of(&[
        "status",
        "req_header_bytes",
        "req_body_bytes",
        "resp_header_bytes",
        "resp_body_bytes",
        "completeness",
        "req_first_ns",
        "req_last_ns",
        "resp_first_ns",
        "resp_last_ns",
        "exchange_protocol",
        "version",
    ]);
    let cn_cols = any_of(&[
        "last_ns",
        "syn_ns",
        "protocol",
        "close",
        "c2s_retransmitted_bytes",
        "s2c_retransmitted_bytes",
    ]);
    format!(
        "WITH node_ips AS (SELECT DISTINCT node, ip FROM identity WHERE role = 'node'),
ex AS (
  SELECT e.*, COALESCE(e.req_first_ns, e.resp_first_ns, 0) AS t,
    CASE WHEN s.ip IS NOT NULL THEN 0 ELSE 1 END AS side
  FROM exchanges e
  LEFT JOIN node_ips s ON s.node = e.node AND s.ip = e.server_ip),
exv AS (
  SELECT {TUPLE}, \"index\", t, side, {ex_cols} FROM ex
  GROUP BY {TUPLE}, \"index\", t, side),
srv AS (SELECT * FROM exv WHERE side = 0),
dex AS (
  SELECT * FROM srv
  UNION ALL
  SELECT * FROM exv o WHERE o.side = 1 AND NOT EXISTS (
    SELECT 1 FROM srv s WHERE {ek} AND s.\"index\" = o.\"index\" AND abs(s.t - o.t) <= {tol})),
cn AS (
  SELECT c.*, CASE WHEN s.ip IS NOT NULL THEN 0 ELSE 1 END AS side
  FROM connections c
  LEFT JOIN node_ips s ON s.node = c.node AND s.ip = c.server_ip),
cnv AS (
  SELECT {TUPLE}, first_ns, side, {cn_cols} FROM cn GROUP BY {TUPLE}, first_ns, side),
csrv AS (SELECT * FROM cnv WHERE side = 0),
dcn AS (
  SELECT * FROM csrv
  UNION ALL
  SELECT * FROM cnv o WHERE o.side = 1 AND NOT EXISTS (
    SELECT 1 FROM csrv s WHERE {ck} AND abs(s.first_ns - o.first_ns) <= {tol})),
named_ids AS (
  SELECT i.role, i.ip, i.port, i.service,
    CAST(i.source_rank AS BIGINT) + CASE WHEN n.ip IS NOT NULL THEN 0 ELSE 1000 END AS pref
  FROM identity i LEFT JOIN node_ips n ON n.node = i.node AND n.ip = i.ip
  WHERE i.role <> 'node'),
srv_best AS (SELECT ip, port, MIN(pref) AS pref FROM named_ids WHERE role = 'server' GROUP BY ip, port),
srv_names AS (
  SELECT i.ip, i.port, MIN(i.service) AS service FROM named_ids i
  JOIN srv_best b ON b.ip = i.ip AND b.port = i.port AND b.pref = i.pref
  WHERE i.role = 'server' GROUP BY i.ip, i.port),
cli_best AS (SELECT ip, MIN(pref) AS pref FROM named_ids WHERE role = 'client' GROUP BY ip),
cli_names AS (
  SELECT i.ip, MIN(i.service) AS service FROM named_ids i
  JOIN cli_best b ON b.ip = i.ip AND b.pref = i.pref
  WHERE i.role = 'client' GROUP BY i.ip){edges}",
        ek = key("s", "o"),
        ck = key("s", "o"),
    )
}

/// `client` and `server` names of the rows of `rel` (a view with the 5-tuple columns,
/// prefixed by `p`).
fn names(rel: &str, p: &str) -> String {
    format!(
        "SELECT r.*, COALESCE(cn.service, r.{p}client_ip) AS client,
    COALESCE(sn.service, r.{p}server_ip || ':' || CAST(r.{p}server_port AS VARCHAR)) AS server
  FROM {rel} r
  LEFT JOIN cli_names cn ON cn.ip = r.{p}client_ip
  LEFT JOIN srv_names sn ON sn.ip = r.{p}server_ip AND sn.port = r.{p}server_port"
    )
}

/// Runs the fleet query over the slices in `dirs`.
pub async fn run(
    ctx: &SessionContext,
    dirs: &[PathBuf],
    cfg: &QueryConfig,
) -> anyhow::Result<FleetResult> {
    let started = std::time::Instant::now();
    let found = register(ctx, dirs).await?;
    let with_edges = found.contains(&"call_edges");
    let head = views(cfg.tolerance_ns, with_edges);
    let mut out = FleetResult::default();

    let ex_named = names("dex", "");
    let http = sql(
        ctx,
        &format!(
            "{head}, nx AS ({ex_named})
SELECT client, server, COUNT(*) AS requests,
  SUM(CASE WHEN status >= 100 AND status < 200 THEN 1 ELSE 0 END) AS s1xx,
  SUM(CASE WHEN status >= 200 AND status < 300 THEN 1 ELSE 0 END) AS s2xx,
  SUM(CASE WHEN status >= 300 AND status < 400 THEN 1 ELSE 0 END) AS s3xx,
  SUM(CASE WHEN status >= 400 AND status < 500 THEN 1 ELSE 0 END) AS s4xx,
  SUM(CASE WHEN status >= 500 AND status < 600 THEN 1 ELSE 0 END) AS s5xx,
  SUM(CASE WHEN status = 429 THEN 1 ELSE 0 END) AS s429,
  SUM(CASE WHEN status = 503 THEN 1 ELSE 0 END) AS s503,
  SUM(CASE WHEN status IS NULL THEN 1 ELSE 0 END) AS no_response,
  SUM(req_header_bytes) AS req_headers, SUM(req_body_bytes) AS req_bodies,
  SUM(resp_header_bytes) AS resp_headers, SUM(resp_body_bytes) AS resp_bodies,
  SUM(CASE WHEN completeness <> 'complete' THEN 1 ELSE 0 END) AS incomplete,
  SUM(CASE WHEN side = 0 THEN 1 ELSE 0 END) AS server_views
FROM nx GROUP BY client, server"
        ),
    )
    .await?;
    for b in &http {
        let (c, s) = (strings(b, "client")?, strings(b, "server")?);
        let cols: Vec<Vec<Option<i64>>> = [
            "requests",
            "s1xx",
            "s2xx",
            "s3xx",
            "s4xx",
            "s5xx",
            "s429",
            "s503",
            "no_response",
            "req_headers",
            "req_bodies",
            "resp_headers",
            "resp_bodies",
            "incomplete",
            "server_views",
        ]
        .iter()
        .map(|n| ints(b, n))
        .collect::<anyhow::Result<_>>()?;
        let v = |k: usize, i: usize| cols[k][i].unwrap_or(0).max(0) as u64;
        for i in 0..b.num_rows() {
            let link = out.links.entry(key(&c, &s, i)).or_default();
            link.requests = v(0, i);
            for (k, s) in link.status.iter_mut().enumerate() {
                *s = v(1 + k, i);
            }
            for (k, b) in link.bytes.iter_mut().enumerate() {
                *b = v(9 + k, i);
            }
            link.incomplete = v(13, i);
            out.figures.exchanges += v(0, i);
            out.figures.server_views += v(14, i);
        }
    }
    out.figures.without_server_view = out.figures.exchanges - out.figures.server_views;

    // New connections: the first exchange of a connection whose SYN was seen.
    let new_conn = sql(
        ctx,
        &format!(
            "{head}, nx AS ({ex_named})
SELECT nx.client, nx.server, COUNT(*) AS n FROM nx
JOIN dcn c ON c.client_ip = nx.client_ip AND c.client_port = nx.client_port
  AND c.server_ip = nx.server_ip AND c.server_port = nx.server_port
  AND nx.t >= c.first_ns - {tol} AND nx.t <= c.last_ns + {tol}
WHERE nx.\"index\" = 0 AND c.syn_ns IS NOT NULL
GROUP BY nx.client, nx.server",
            tol = cfg.tolerance_ns
        ),
    )
    .await?;
    for b in &new_conn {
        let (c, s, n) = (strings(b, "client")?, strings(b, "server")?, ints(b, "n")?);
        for (i, n) in n.iter().enumerate() {
            out.links.entry(key(&c, &s, i)).or_default().new_connections = n.unwrap_or(0) as u64;
        }
    }

    let peaks = sql(
        ctx,
        &format!(
            "{head}, nx AS ({ex_named})
SELECT client, server, MAX(n) AS peak FROM (
  SELECT client, server, COUNT(*) AS n FROM nx WHERE req_first_ns IS NOT NULL
  GROUP BY client, server, req_first_ns / 1000000000) p
GROUP BY client, server"
        ),
    )
    .await?;
    for b in &peaks {
        let (c, s, n) = (
            strings(b, "client")?,
            strings(b, "server")?,
            ints(b, "peak")?,
        );
        for (i, n) in n.iter().enumerate() {
            out.links.entry(key(&c, &s, i)).or_default().peak_per_s = n.map(|v| v as u64);
        }
    }

    // Latency sketches: counts per logarithmic bucket (see `sketch`).
    let ttfb = bucket_sql("(CAST(resp_first_ns - req_last_ns AS DOUBLE) / 1e6)");
    let total = bucket_sql("(CAST(resp_last_ns - req_first_ns AS DOUBLE) / 1e6)");
    let sketches = sql(
        ctx,
        &format!(
            "{head}, nx AS ({ex_named}),
b AS (SELECT client, server, {ttfb} AS ttfb, {total} AS total FROM nx)
SELECT client, server, 'ttfb' AS measure, ttfb AS bucket, COUNT(*) AS n FROM b
  WHERE ttfb IS NOT NULL GROUP BY client, server, ttfb
UNION ALL
SELECT client, server, 'total' AS measure, total AS bucket, COUNT(*) AS n FROM b
  WHERE total IS NOT NULL GROUP BY client, server, total"
        ),
    )
    .await?;
    for b in &sketches {
        let (c, s, m) = (
            strings(b, "client")?,
            strings(b, "server")?,
            strings(b, "measure")?,
        );
        let (k, n) = (ints(b, "bucket")?, ints(b, "n")?);
        for i in 0..b.num_rows() {
            let link = out.links.entry(key(&c, &s, i)).or_default();
            let sketch = if m[i].as_deref() == Some("ttfb") {
                &mut link.ttfb_ms
            } else {
                &mut link.total_ms
            };
            if let (Some(k), Some(n)) = (k[i], n[i]) {
                sketch.add(k, n.max(0) as u64);
            }
        }
    }

    let cn_named = names("dcn", "");
    let conns = sql(
        ctx,
        &format!(
            "{head}, nc AS ({cn_named})
SELECT client, server, COUNT(*) AS connections,
  SUM(CASE WHEN syn_ns IS NOT NULL THEN 1 ELSE 0 END) AS handshakes,
  SUM(CASE WHEN protocol = 'tls' THEN 1 ELSE 0 END) AS tls,
  SUM(CASE WHEN close = 'rst' THEN 1 ELSE 0 END) AS resets,
  SUM(c2s_retransmitted_bytes + s2c_retransmitted_bytes) AS retransmitted,
  MIN(first_ns) AS first_ns, MAX(last_ns) AS last_ns
FROM nc GROUP BY client, server"
        ),
    )
    .await?;
    for b in &conns {
        let (c, s) = (strings(b, "client")?, strings(b, "server")?);
        let cols: Vec<Vec<Option<i64>>> = [
            "connections",
            "handshakes",
            "tls",
            "resets",
            "retransmitted",
            "first_ns",
            "last_ns",
        ]
        .iter()
        .map(|n| ints(b, n))
        .collect::<anyhow::Result<_>>()?;
        for i in 0..b.num_rows() {
            let at = |k: usize| cols[k].get(i).copied().flatten();
            let v = |k: usize| at(k).unwrap_or(0).max(0) as u64;
            let link = out.links.entry(key(&c, &s, i)).or_default();
            link.connections = v(0);
            link.tcp_handshakes = v(1);
            link.tls_connections = v(2);
            link.resets = v(3);
            link.retransmitted_bytes = v(4);
            out.figures.connections += v(0);
            let f = &mut out.figures;
            f.first_ns = opt_min(f.first_ns, at(5));
            f.last_ns = opt_max(f.last_ns, at(6));
        }
    }

    let protocols = sql(
        ctx,
        &format!(
            "{head}, nx AS ({ex_named}), nc AS ({cn_named})
SELECT client, server, 'exchange' AS kind, COALESCE(exchange_protocol, lower(version)) AS p,
  COUNT(*) AS n FROM nx GROUP BY client, server, COALESCE(exchange_protocol, lower(version))
UNION ALL
SELECT client, server, 'connection' AS kind, protocol AS p, COUNT(*) AS n FROM nc
  GROUP BY client, server, protocol"
        ),
    )
    .await?;
    for b in &protocols {
        let (c, s) = (strings(b, "client")?, strings(b, "server")?);
        let (kind, p, n) = (strings(b, "kind")?, strings(b, "p")?, ints(b, "n")?);
        for i in 0..b.num_rows() {
            let link = out.links.entry(key(&c, &s, i)).or_default();
            let map = if kind[i].as_deref() == Some("exchange") {
                &mut link.exchange_protocols
            } else {
                &mut link.connection_protocols
            };
            if let Some(p) = p[i].clone() {
                *map.entry(p).or_default() += n[i].unwrap_or(0).max(0) as u64;
            }
        }
    }

    if with_edges {
        chain_aggregates(ctx, &head, &mut out).await?;
    }

    let counts = sql(
        ctx,
        &format!(
            "SELECT (SELECT COUNT(*) FROM exchanges) AS ex, (SELECT COUNT(*) FROM connections) AS cn,
  {edges} AS ed, (SELECT COUNT(DISTINCT node || '/' || \"window\") FROM exchanges) AS windows",
            edges = if with_edges { "(SELECT COUNT(*) FROM call_edges)" } else { "0" }
        ),
    )
    .await?;
    for b in &counts {
        out.figures.exchange_rows = ints(b, "ex")?[0].unwrap_or(0) as u64;
        out.figures.connection_rows = ints(b, "cn")?[0].unwrap_or(0) as u64;
        out.figures.call_edge_rows = ints(b, "ed")?[0].unwrap_or(0) as u64;
        out.figures.windows = ints(b, "windows")?[0].unwrap_or(0) as u64;
    }
    let nodes = sql(ctx, "SELECT DISTINCT node FROM identity").await?;
    for b in &nodes {
        out.figures
            .nodes
            .extend(strings(b, "node")?.into_iter().flatten());
    }
    out.figures.nodes.sort();
    let secs = started.elapsed().as_secs_f64();
    out.figures.query_ms = secs * 1e3;
    let rows = out.figures.exchange_rows + out.figures.connection_rows + out.figures.call_edge_rows;
    out.figures.rows_per_s = (secs > 0.0).then(|| rows as f64 / secs);
    Ok(out)
}

/// Per link: calls with a parent, their confidence and id-confirmed edges, parents; per
/// (parent link, child link): calls.
async fn chain_aggregates(
    ctx: &SessionContext,
    head: &str,
    out: &mut FleetResult,
) -> anyhow::Result<()> {
    let child = names("edges", "child_");
    // The parent's names: its own 5-tuple through the same name tables.
    let pairs = sql(
        ctx,
        &format!(
            "{head}, ce AS ({child}),
pe AS (SELECT ce.*, COALESCE(pc.service, ce.parent_client_ip) AS parent_client,
    COALESCE(ps.service, ce.parent_server_ip || ':' || CAST(ce.parent_server_port AS VARCHAR)) AS parent_server
  FROM ce
  LEFT JOIN cli_names pc ON pc.ip = ce.parent_client_ip
  LEFT JOIN srv_names ps ON ps.ip = ce.parent_server_ip AND ps.port = ce.parent_server_port),
per_parent AS (
  SELECT client, server, parent_client, parent_server, COUNT(*) AS calls,
    SUM(confidence) AS confidence, SUM(CASE WHEN source <> 'timing' THEN 1 ELSE 0 END) AS by_ids
  FROM pe GROUP BY client, server, parent_client, parent_server, parent_client_ip,
    parent_client_port, parent_server_ip, parent_server_port, parent_index, parent_start_ns)
SELECT client, server, parent_client, parent_server, COUNT(*) AS parents,
  SUM(calls) AS calls, MAX(calls) AS max_calls, SUM(confidence) AS confidence,
  SUM(by_ids) AS by_ids
FROM per_parent GROUP BY client, server, parent_client, parent_server"
        ),
    )
    .await?;
    for b in &pairs {
        let (c, s) = (strings(b, "client")?, strings(b, "server")?);
        let (pc, ps) = (strings(b, "parent_client")?, strings(b, "parent_server")?);
        let (parents, calls, max) = (
            ints(b, "parents")?,
            ints(b, "calls")?,
            ints(b, "max_calls")?,
        );
        let by_ids = ints(b, "by_ids")?;
        let conf = floats(b, "confidence")?;
        for i in 0..b.num_rows() {
            let n = |v: &[Option<i64>]| v[i].unwrap_or(0).max(0) as u64;
            let link = out.links.entry(key(&c, &s, i)).or_default();
            let ch = &mut link.chain;
            ch.with_parent += n(&calls);
            ch.confidence_sum += conf[i].unwrap_or(0.0);
            ch.by_ids += n(&by_ids);
            ch.parents += n(&parents);
            ch.max_per_parent = ch.max_per_parent.max(n(&max));
            out.figures.call_edges += n(&calls);
            out.link_pairs.push(LinkPair {
                parent: key(&pc, &ps, i),
                child: key(&c, &s, i),
                calls: n(&calls),
            });
        }
    }
    out.link_pairs.sort();
    Ok(())
}

fn key(c: &[Option<String>], s: &[Option<String>], i: usize) -> (String, String) {
    (
        c[i].clone().unwrap_or_default(),
        s[i].clone().unwrap_or_default(),
    )
}

fn opt_min(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn opt_max(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

async fn sql(ctx: &SessionContext, query: &str) -> anyhow::Result<Vec<RecordBatch>> {
    let df = ctx
        .sql(query)
        .await
        .with_context(|| format!("planning the fleet query\n{query}"))?;
    df.collect()
        .await
        .with_context(|| format!("running the fleet query\n{query}"))
}

fn column(b: &RecordBatch, name: &str, to: &DataType) -> anyhow::Result<ArrayRef> {
    let c = b
        .column_by_name(name)
        .with_context(|| format!("the fleet query returned no column {name}"))?;
    Ok(cast(c, to)?)
}

fn strings(b: &RecordBatch, name: &str) -> anyhow::Result<Vec<Option<String>>> {
    let c = column(b, name, &DataType::Utf8)?;
    let a = c
        .as_any()
        .downcast_ref::<StringArray>()
        .context("a string column")?;
    Ok((0..a.len())
        .map(|i| (!a.is_null(i)).then(|| a.value(i).to_owned()))
        .collect())
}

fn ints(b: &RecordBatch, name: &str) -> anyhow::Result<Vec<Option<i64>>> {
    let c = column(b, name, &DataType::Int64)?;
    let a = c
        .as_any()
        .downcast_ref::<Int64Array>()
        .context("an integer column")?;
    Ok((0..a.len())
        .map(|i| (!a.is_null(i)).then(|| a.value(i)))
        .collect())
}

fn floats(b: &RecordBatch, name: &str) -> anyhow::Result<Vec<Option<f64>>> {
    let c = column(b, name, &DataType::Float64)?;
    let a = c
        .as_any()
        .downcast_ref::<Float64Array>()
        .context("a float column")?;
    Ok((0..a.len())
        .map(|i| (!a.is_null(i)).then(|| a.value(i)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_parse() {
        assert_eq!("local".parse::<Engine>(), Ok(Engine::Local));
        assert_eq!(
            "df://10.0.0.5:50050".parse::<Engine>(),
            Ok(Engine::Ballista("df://10.0.0.5:50050".into()))
        );
        for bad in [
            "df://host",
            "df://:50050",
            "df://h:99999",
            "spark://h:1",
            "",
        ] {
            assert!(bad.parse::<Engine>().is_err(), "{bad}");
        }
    }
}
