//! The fleet's cross-node work as DataFusion SQL, run embedded or on a Ballista cluster:
//! the client-side and server-side views of one exchange (or connection) folded into one
//! row, endpoints named from the nodes' identity tables, and per-link aggregates (counts,
//! bytes, status classes, latency sketches, the call edges' figures). Only those
//! aggregates come back (rows per link, per link and latency bucket, per link pair).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
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
use crate::analysis::cost::PayloadSamples;
use crate::analysis::identity::NameSource;
use crate::analysis::links::{
    self, Aggregates, ConnCounts, CountsByKey, HttpCounts, Key, LinkKey, Members, RttPercentiles,
    TlsEstimateSums,
};
use crate::tables::columns;

/// The fleet's tables, as `analyze --fleet-out` writes them.
pub const TABLES: [&str; 5] = [
    "exchanges",
    "connections",
    "call_edges",
    "identity",
    "payloads",
];

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
    /// DataFusion's `target_partitions` (None: the engine's default).
    pub partitions: Option<usize>,
    /// The folder under which the folded views are staged (None: the system's temporary
    /// folder).
    pub stage: Option<PathBuf>,
}

/// A route by method and template.
pub type MethodRoute = (Option<String>, Option<String>);

/// The parent edges of a link's calls, as the callers' nodes inferred them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChainAgg {
    pub with_parent: u64,
    pub confidence_sum: f64,
    pub by_ids: u64,
    /// Parent requests that made at least one call of the link.
    pub parents: u64,
    pub max_per_parent: u64,
    /// Of the calls with a parent: overlapping a sibling, not waited for, sent with the
    /// same payload to other services for the same parent (as the parent's node saw its
    /// children).
    pub parallel: u64,
    pub fire_and_forget: u64,
    pub same_payload: u64,
    /// Calls of the link whose depth the fleet's trees gave, their sum and maximum
    /// (hops from a root caller down to and including the link).
    pub depth_calls: u64,
    pub depth_sum: u64,
    pub depth_max: u64,
    /// Root requests whose tree holds a call of the link, and those whose critical path
    /// holds one.
    pub roots_through: u64,
    pub roots_critical: u64,
    /// Over the roots whose path holds the link: the time its calls on the path took (at
    /// most the root's latency), and the roots' latency, ns.
    pub critical_ns: f64,
    pub latency_ns: f64,
    /// Durations (ms) of the link's calls on a critical path, as sketch buckets; and of
    /// those that have a parent.
    pub critical_call_ms: Buckets,
    pub critical_child_ms: Buckets,
    /// N+1 groups per (method, route) of the link: parents, calls, most under one parent.
    pub n_plus_one: BTreeMap<MethodRoute, (u64, u64, u64)>,
}

/// Calls of a link (child) made while serving a call of another link (parent).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LinkPair {
    pub parent: (String, String),
    pub child: (String, String),
    pub calls: u64,
}

/// The figures of one HTTP group-by (per link, or per route) as the engine returned
/// them: one value per group, and the value counts.
#[derive(Clone, Debug, Default)]
pub struct HttpGroups {
    pub(crate) agg: Aggregates,
    pub(crate) counts: HttpCounts,
}

/// What the fleet query returned, and what it folded.
#[derive(Clone, Debug, Default)]
pub struct FleetResult {
    /// Per (client, server).
    pub http: HttpGroups,
    /// Per (client, server, method, route).
    pub routes: HttpGroups,
    pub(crate) connections: Aggregates,
    pub(crate) connection_counts: ConnCounts,
    /// Failures that recur every n-th request, per route.
    pub(crate) periodic: links::PeriodicByRoute,
    /// The sums behind each link's TLS estimates.
    pub(crate) tls_estimates: BTreeMap<LinkKey, TlsEstimateSums>,
    /// Requests per exchange protocol (`http/1.1`, `h2c`, ...) of each link.
    pub(crate) exchange_protocols: CountsByKey,
    /// The addresses behind each link's names, and the names' sources.
    pub(crate) members: Members,
    /// The sampled JSON bodies' sizes and codec costs per link (the serialization
    /// savings are projected from them, as `analyze` projects them).
    pub payloads: BTreeMap<(String, String), PayloadSamples>,
    pub chains: BTreeMap<(String, String), ChainAgg>,
    /// The run's call trees, as `analyze`'s run-level `chains` summary.
    pub trees: Trees,
    pub link_pairs: Vec<LinkPair>,
    pub figures: FleetFigures,
    /// The views' time tolerance, ns (`QueryConfig::tolerance_ns`).
    pub tolerance_ns: i64,
}

/// The fleet's call trees as a whole.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trees {
    /// Calls (exchanges, and opaque connections), those with a parent edge, roots
    /// (no parent, the client serves nothing) and orphans (no parent, the client serves).
    pub calls: u64,
    pub with_parent: u64,
    pub roots: u64,
    pub orphans: u64,
    /// Edges by how the parent was found (`timing`, `traceparent`, `span`), and those to
    /// a parent that had already begun to answer.
    pub by_source: BTreeMap<String, u64>,
    pub late: u64,
    /// Roots per tree depth.
    pub depths: BTreeMap<u32, u64>,
    /// Per root route (client, server, method, route): its roots, their latency and
    /// deepest tree, and its commonest critical path; busiest first, as `analyze` lists
    /// them (all of them: the caller keeps the top ones).
    pub routes: Vec<crate::analysis::chains::link_chain::RootRoute>,
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
    /// Calls whose tree depth is unknown: orphans (no parent found, and the caller serves
    /// requests), calls under one, and calls more than `MAX_TREE_DEPTH` hops deep.
    pub depth_unknown: u64,
    pub last_ns: Option<i64>,
    /// Rows the query read per second of its wall time.
    pub rows_per_s: Option<f64>,
    pub query_ms: f64,
    /// Each statement's wall time.
    pub statements: Vec<StatementTime>,
}

/// Opens a session on the engine, each stage split into `partitions` tasks when given.
pub async fn session(engine: &Engine, partitions: Option<usize>) -> anyhow::Result<SessionContext> {
    let ctx = match engine {
        Engine::Local => SessionContext::new(),
        Engine::Ballista(url) => {
            use ballista::prelude::SessionContextExt;
            let ctx = SessionContext::remote(url)
                .await
                .with_context(|| format!("connecting to the Ballista scheduler at {url}"))?;
            // Ballista 55's adaptive planner drops the stages an empty input makes
            // useless but cannot cancel them, and the job then never finishes (a fleet
            // without call edges, a join side with no rows). The static planner runs
            // every stage.
            run_sql(&ctx, "SET ballista.planner.adaptive.enabled = false").await?;
            ctx
        }
    };
    if let Some(n) = partitions {
        // A session setting: Ballista sends it with every job.
        run_sql(
            &ctx,
            &format!("SET datafusion.execution.target_partitions = {n}"),
        )
        .await?;
    }
    Ok(ctx)
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

/// `MAX("c") AS "c"` for each column: rows folded as one view of one exchange are equal,
/// so any of them gives the values. (Aggregates rather than `ROW_NUMBER() = 1`: a hash
/// aggregate needs no sort, and Ballista 55's executors trip a debug assertion when they
/// rebuild the sort of a window after a shuffle.)
fn any_of(columns: &[&str]) -> String {
    columns
        .iter()
        .map(|c| format!("MAX({q}) AS {q}", q = quoted(c)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A column name as SQL, quoted (`second`, `index` and others are SQL words).
fn quoted(c: &str) -> String {
    format!("\"{c}\"")
}

/// The columns of a connection's 5-tuple.
const TUPLE: &str = "client_ip, client_port, server_ip, server_port";

/// The exchange columns the queries read besides the 5-tuple, position and time: the
/// table's own, and the figures the node derived per exchange
/// ([`links::DERIVED_EXCHANGE_COLUMNS`]).
fn exchange_columns() -> Vec<&'static str> {
    let own = [
        columns::STATUS,
        links::MEASURED_STATUS,
        columns::REQ_HEADER_BYTES,
        columns::REQ_BODY_BYTES,
        columns::RESP_HEADER_BYTES,
        columns::RESP_BODY_BYTES,
        columns::COMPLETENESS,
        columns::REQ_FIRST_NS,
        columns::REQ_LAST_NS,
        columns::RESP_FIRST_NS,
        columns::RESP_LAST_NS,
        columns::EXCHANGE_PROTOCOL,
        columns::VERSION,
        columns::METHOD,
        columns::ROUTE,
        columns::REQ_CONTENT_TYPE,
        columns::RESP_CONTENT_TYPE,
        columns::STREAM_ERROR,
        columns::STREAM_ID,
        columns::HEADERS_COMPLETE,
        columns::GRPC_CALL_KIND,
    ];
    own.into_iter()
        .chain(links::DERIVED_EXCHANGE_COLUMNS.iter().copied())
        .collect()
}

/// The connection columns the queries read besides the 5-tuple and first packet.
const CONNECTION_COLUMNS: &[&str] = &[
    columns::LAST_NS,
    columns::SYN_NS,
    columns::PROTOCOL,
    columns::CLOSE,
    columns::C2S_RETRANSMITTED_BYTES,
    columns::S2C_RETRANSMITTED_BYTES,
    columns::C2S_ZERO_WINDOWS,
    columns::S2C_ZERO_WINDOWS,
    columns::C2S_RETRANSMISSION_TIMEOUTS,
    columns::S2C_RETRANSMISSION_TIMEOUTS,
    columns::C2S_RTO_WAIT_NS,
    columns::S2C_RTO_WAIT_NS,
    columns::C2S_ZERO_WINDOW_NS,
    columns::S2C_ZERO_WINDOW_NS,
    columns::C2S_GAPS,
    columns::S2C_GAPS,
    columns::C2S_GAP_BYTES,
    columns::S2C_GAP_BYTES,
    columns::ONE_SIDED,
    columns::HANDSHAKE_SEEN,
    columns::HANDSHAKE_RTT_NS,
    columns::EXCHANGES,
    columns::TLS_SNI,
    columns::TLS_VERSION,
    columns::TLS_RESUMED,
    columns::TLS_HANDSHAKE_NS,
    columns::TLS_ALPN,
    columns::TLS_DECRYPTION,
    columns::TLS_EST_MODE,
    columns::TLS_EST_TURNS,
    columns::TLS_EST_REQUESTS,
    columns::TLS_EST_TTFB_NS,
    columns::TLS_EST_TOTAL_NS,
    columns::TLS_EST_REQ_BYTES,
    columns::TLS_EST_RESP_BYTES,
    columns::TLS_EST_CONFIDENCE,
];

/// A server endpoint as `analyze` writes it (`ip:port`, `[v6]:port`).
fn endpoint_sql(ip: &str, port: &str) -> String {
    format!(
        "(CASE WHEN strpos({ip}, ':') > 0 THEN '[' || {ip} || ']' ELSE {ip} END \
         || ':' || CAST({port} AS VARCHAR))"
    )
}

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
                "parallel",
                "fire_and_forget",
                "same_payload",
                "n_plus_one",
                "on_parent_path",
                "child_method",
                "child_route",
                "child_duration_ns",
                "parent_duration_ns",
                "late",
                "parent_own_ns",
                "parent_waiting_ns",
                "child_serving_ns",
            ])
        )
    } else {
        // No node inferred an edge: an empty relation of the same columns, so that the
        // trees still run (every call a root or an orphan).
        let end = |p: &str| {
            format!(
                "client_ip AS {p}_client_ip, client_port AS {p}_client_port, \
                 server_ip AS {p}_server_ip, server_port AS {p}_server_port, \
                 \"index\" AS {p}_index, t AS {p}_start_ns"
            )
        };
        let typed = |cols: &[&str], ty: &str| {
            cols.iter()
                .map(|c| format!("CAST(NULL AS {ty}) AS {c}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            ", edges AS (SELECT {child}, {parent}, {text}, {number}, {flags}, {ns} FROM dex WHERE false)",
            child = end("child"),
            parent = end("parent"),
            text = typed(&["source", "child_method", "child_route"], "VARCHAR"),
            number = typed(&["confidence"], "DOUBLE"),
            flags = typed(
                &[
                    "late",
                    "parallel",
                    "fire_and_forget",
                    "same_payload",
                    "n_plus_one",
                    "on_parent_path"
                ],
                "BOOLEAN"
            ),
            ns = typed(
                &[
                    "child_duration_ns",
                    "parent_duration_ns",
                    "parent_own_ns",
                    "parent_waiting_ns",
                    "child_serving_ns"
                ],
                "BIGINT"
            ),
        )
    };
    let ex_cols = any_of(&exchange_columns());
    let cn_cols = any_of(CONNECTION_COLUMNS);
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
  SELECT i.ip, i.port, MIN(i.service) AS service, MIN(b.pref) % 1000 AS rank FROM named_ids i
  JOIN srv_best b ON b.ip = i.ip AND b.port = i.port AND b.pref = i.pref
  WHERE i.role = 'server' GROUP BY i.ip, i.port),
cli_best AS (SELECT ip, MIN(pref) AS pref FROM named_ids WHERE role = 'client' GROUP BY ip),
cli_names AS (
  SELECT i.ip, MIN(i.service) AS service, MIN(b.pref) % 1000 AS rank FROM named_ids i
  JOIN cli_best b ON b.ip = i.ip AND b.pref = i.pref
  WHERE i.role = 'client' GROUP BY i.ip){edges}",
        ek = key("s", "o"),
        ck = key("s", "o"),
    )
}

/// The views the statements read, each folded once: written as Parquet under `dir` and
/// registered as a table of its name. (DataFusion inlines a `WITH` view wherever a
/// statement names it, so each statement would otherwise fold the nodes' views again.)
/// `nx` and `nc` are the folded, named exchanges and connections; `edges` the folded call
/// edges; `node_ips`, `cli_names` and `srv_names` the nodes' addresses and the names.
async fn stage(ctx: &Statements<'_>, head: &str, dir: &Path) -> anyhow::Result<()> {
    let staged = [
        ("node_ips", "SELECT * FROM node_ips".to_owned()),
        ("cli_names", "SELECT * FROM cli_names".to_owned()),
        ("srv_names", "SELECT * FROM srv_names".to_owned()),
        ("nx", names("dex", "")),
        ("nc", names("dcn", "")),
        ("edges", "SELECT * FROM edges".to_owned()),
    ];
    for (name, def) in staged {
        stage_one(ctx, name, &format!("{head}\n{def}"), dir).await?;
    }
    Ok(())
}

/// Writes `query`'s rows under `dir/name` and registers them as the table `name`.
async fn stage_one(
    ctx: &Statements<'_>,
    name: &str,
    query: &str,
    dir: &Path,
) -> anyhow::Result<()> {
    // The schema from the plan, not from the files: a view may have no rows.
    let schema = ctx
        .ctx
        .sql(query)
        .await
        .with_context(|| format!("planning the fleet's {name} view\n{query}"))?
        .schema()
        .as_arrow()
        .clone();
    let path = dir.join(name);
    std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
    let target = format!("{}/", path.display()).replace('\'', "''");
    sql(
        ctx,
        &format!("stage {name}"),
        &format!("COPY ({query}) TO '{target}' STORED AS PARQUET"),
    )
    .await?;
    write_empty_if_none(&path, &schema)?;
    let url = ListingTableUrl::parse(format!("{}/", path.display()))
        .with_context(|| format!("{}: not a usable path", path.display()))?;
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(Arc::new(schema));
    ctx.ctx
        .register_table(name, Arc::new(ListingTable::try_new(config)?))?;
    Ok(())
}

/// A view without rows is written as no file at all. The staged table then gets one
/// file of no rows: a table without files is planned as an empty relation, and Ballista
/// 55's scheduler and executors then disagree on the plan's shape and the job never
/// finishes.
fn write_empty_if_none(
    dir: &Path,
    schema: &datafusion::arrow::datatypes::Schema,
) -> anyhow::Result<()> {
    let any = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(Result::ok)
        .any(|e| e.path().extension().is_some_and(|x| x == "parquet"));
    if any {
        return Ok(());
    }
    let path = dir.join("empty.parquet");
    let file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    datafusion::parquet::arrow::ArrowWriter::try_new(file, Arc::new(schema.clone()), None)
        .and_then(|w| w.close().map(|_| ()))
        .with_context(|| format!("writing {}", path.display()))
}

/// A fresh folder for the staged views, deleted when dropped (also when the query fails).
struct StageDir(PathBuf);

impl StageDir {
    fn create(base: Option<&Path>) -> anyhow::Result<StageDir> {
        let base = base.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = base.join(format!("linkrank-fleet-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let dir =
            std::fs::canonicalize(&dir).with_context(|| format!("reading {}", dir.display()))?;
        Ok(StageDir(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for StageDir {
    fn drop(&mut self) {
        // Best effort: a folder left behind holds only derived data.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `client` and `server` names of the rows of `rel` (a view with the 5-tuple columns,
/// prefixed by `p`), and the rank of each name's source (`client_rank`, `server_rank`).
fn names(rel: &str, p: &str) -> String {
    let fallback = NameSource::Fallback as u32;
    format!(
        "SELECT r.*, COALESCE(cn.service, r.{p}client_ip) AS client,
    COALESCE(sn.service, {endpoint}) AS server,
    COALESCE(cn.rank, {fallback}) AS client_rank, COALESCE(sn.rank, {fallback}) AS server_rank
  FROM {rel} r
  LEFT JOIN cli_names cn ON cn.ip = r.{p}client_ip
  LEFT JOIN srv_names sn ON sn.ip = r.{p}server_ip AND sn.port = r.{p}server_port",
        endpoint = endpoint_sql(&format!("r.{p}server_ip"), &format!("r.{p}server_port")),
    )
}

/// The group keys of the link measures, and of the route measures.
const LINK_KEYS: &[&str] = &["client", "server"];
const ROUTE_KEYS: &[&str] = &["client", "server", columns::METHOD, columns::ROUTE];

/// `SUM(CASE WHEN cond THEN 1 ELSE 0 END)`: rows where `cond` holds (null: no).
fn count_where(cond: &str) -> String {
    format!("SUM(CASE WHEN {cond} THEN 1 ELSE 0 END)")
}

/// Runs the fleet query over the slices in `dirs`.
pub async fn run(
    session: &SessionContext,
    dirs: &[PathBuf],
    cfg: &QueryConfig,
) -> anyhow::Result<FleetResult> {
    let started = std::time::Instant::now();
    let found = register(session, dirs).await?;
    let statements = Statements {
        ctx: session,
        timings: Default::default(),
    };
    let ctx = &statements;
    let with_edges = found.contains(&"call_edges");
    let stage_dir = StageDir::create(cfg.stage.as_deref())?;
    stage(ctx, &views(cfg.tolerance_ns, with_edges), stage_dir.path()).await?;
    stage_one(
        ctx,
        "calls",
        &calls_view(cfg.tolerance_ns),
        stage_dir.path(),
    )
    .await?;
    let mut out = FleetResult {
        tolerance_ns: cfg.tolerance_ns,
        ..FleetResult::default()
    };

    // The route group-bys add up to the link ones (sums, sketch buckets, value counts):
    // only the busiest second needs its own statement per level.
    let route_sums = route_sums(ctx).await?;
    let link_sums = route_sums.roll_up(LINK_KEYS.len());
    out.exchange_protocols = link_sums
        .counts
        .get(columns::EXCHANGE_PROTOCOL)
        .cloned()
        .unwrap_or_default();
    out.routes = route_sums.finish(peaks(ctx, ROUTE_KEYS).await?);
    out.http = link_sums.finish(peaks(ctx, LINK_KEYS).await?);
    out.periodic = periodic(ctx).await?;
    let link_ints = &out.http.agg.ints;
    out.figures.exchanges = link_ints.get("requests").map_or(0, |v| v.iter().sum());
    out.figures.server_views = link_ints.get("server_views").map_or(0, |v| v.iter().sum());
    out.figures.without_server_view = out.figures.exchanges - out.figures.server_views;

    let (mut connections, counts, tls_estimates) = connection_groups(ctx).await?;
    out.tls_estimates = tls_estimates;
    // The fleet's first and last packet, over the links' own.
    let mut take = |n: &str| connections.ints.remove(n).unwrap_or_default();
    let (first, last) = (take("first_ns"), take("last_ns"));
    let ns = |v: u64| i64::try_from(v).ok();
    // (A null reads as 0: not a time.)
    out.figures.first_ns = first.into_iter().filter(|v| *v > 0).min().and_then(ns);
    out.figures.last_ns = last.into_iter().filter(|v| *v > 0).max().and_then(ns);
    out.figures.connections = connections
        .ints
        .get("connections")
        .map_or(0, |v| v.iter().sum());
    out.connections = connections;
    out.connection_counts = counts;
    out.members = members(ctx).await?;

    if found.contains(&"payloads") {
        out.payloads = payloads(ctx).await?;
    }
    if with_edges {
        chain_aggregates(ctx, &mut out).await?;
        n_plus_one(ctx, &mut out).await?;
    }
    depths(ctx, &mut out).await?;
    out.trees = trees(ctx).await?;

    let counts = sql(
        ctx, "row counts",
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
    let nodes = sql(ctx, "nodes", "SELECT DISTINCT node FROM identity").await?;
    for b in &nodes {
        out.figures
            .nodes
            .extend(strings(b, "node")?.into_iter().flatten());
    }
    out.figures.nodes.sort();
    let secs = started.elapsed().as_secs_f64();
    out.figures.query_ms = secs * 1e3;
    out.figures.statements = statements.timings.into_inner().unwrap_or_default();
    let rows = out.figures.exchange_rows + out.figures.connection_rows + out.figures.call_edge_rows;
    out.figures.rows_per_s = (secs > 0.0).then(|| rows as f64 / secs);
    Ok(out)
}

/// The route-level HTTP figures as the engine returned them: sums and counts, sketch
/// buckets and value counts, which add up from routes to links; [`HttpSums::finish`]
/// makes the means and quantiles.
#[derive(Clone, Debug, Default)]
struct HttpSums {
    agg: Aggregates,
    sketches: BTreeMap<(String, Key), Buckets>,
    counts: BTreeMap<String, CountsByKey>,
}

/// The sketched HTTP measures (ms) and the quantiles `links::measure` gives of each.
const HTTP_SKETCHES: [(&str, &str, &[u32]); 5] = [
    ("ttfb", columns::TTFB_MS, &[50, 95, 99]),
    ("total", columns::TOTAL_MS, &[50, 95, 99]),
    ("stall", columns::STALL_MS, &[50, 95, 99]),
    ("req_stall", columns::REQ_STALL_MS, &[50, 95]),
    ("resp_stall", columns::RESP_STALL_MS, &[50, 95]),
];

/// The HTTP group-by of `links::measure` per route, over the folded, named exchanges
/// (`nx` in `with`): the same figures under the same names, then the sketches and the
/// value counts in one more statement.
async fn route_sums(ctx: &Statements<'_>) -> anyhow::Result<HttpSums> {
    let keys = ROUTE_KEYS;
    let by = keys
        .iter()
        .map(|k| quoted(k))
        .collect::<Vec<_>>()
        .join(", ");
    let status = quoted(links::MEASURED_STATUS);
    let class = |lo: u32, hi: u32| count_where(&format!("{status} >= {lo} AND {status} < {hi}"));
    let flag = |c: &str| count_where(&quoted(c));
    let present = |c: &str| count_where(&format!("{} IS NOT NULL", quoted(c)));
    let sum = |c: &str| format!("SUM({})", quoted(c));
    let figures = [
        ("requests", "COUNT(*)".to_owned()),
        ("s1xx", class(100, 200)),
        ("s2xx", class(200, 300)),
        ("s3xx", class(300, 400)),
        ("s4xx", class(400, 500)),
        ("s5xx", class(500, 600)),
        ("s429", count_where(&format!("{status} = 429"))),
        ("s503", count_where(&format!("{status} = 503"))),
        ("no_response", count_where(&format!("{status} IS NULL"))),
        ("req_headers", sum(columns::REQ_HEADER_BYTES)),
        ("req_bodies", sum(columns::REQ_BODY_BYTES)),
        ("resp_headers", sum(columns::RESP_HEADER_BYTES)),
        ("resp_bodies", sum(columns::RESP_BODY_BYTES)),
        ("json", flag(columns::JSON)),
        ("new_conn", flag(columns::NEW_CONN)),
        ("incomplete", flag(columns::INCOMPLETE)),
        ("idempotency_keyed", flag(columns::IDEMPOTENCY_KEYED)),
        ("retry_after", flag(columns::RETRY_AFTER)),
        ("forwarded", flag(columns::FORWARDED)),
        ("retried", flag(columns::RETRIED_FAILURE)),
        ("recovered", flag(columns::RECOVERED_FAILURE)),
        (columns::JSON_BODY_BYTES, sum(columns::JSON_BODY_BYTES)),
        (
            columns::JSON_IDENTITY_BODY_BYTES,
            sum(columns::JSON_IDENTITY_BODY_BYTES),
        ),
        ("replayed", present(columns::REPLAY_GRPC_HEADER_BYTES)),
        ("replay_h1", sum(columns::REPLAY_H1_HEADER_BYTES)),
        ("replay_h2", sum(columns::REPLAY_H2_HEADER_BYTES)),
        ("replay_grpc", sum(columns::REPLAY_GRPC_HEADER_BYTES)),
        (
            "stalled",
            count_where(&format!("{} > 0", quoted(columns::STALL_MS))),
        ),
        ("h2_streams", present(columns::STREAM_ID)),
        (
            "h2_complete",
            count_where(&format!(
                "COALESCE({}, false)",
                quoted(columns::HEADERS_COMPLETE)
            )),
        ),
        ("grpc_calls", present(columns::GRPC_CALL_KIND)),
        ("req_stalled", present(columns::REQ_STALL_MS)),
        ("resp_stalled", present(columns::RESP_STALL_MS)),
        ("slow_starts", present(columns::SLOW_START_MS)),
        ("slow_start_responses", flag(columns::SLOW_START_RESPONSE)),
        ("server_views", count_where("side = 0")),
        (STALL_N, format!("COUNT({})", quoted(columns::STALL_MS))),
        (
            STALL_SUM,
            format!("SUM(CAST({} AS DOUBLE))", quoted(columns::STALL_MS)),
        ),
        (
            SLOW_START_SUM,
            format!(
                "SUM(CAST(COALESCE({}, 0) AS DOUBLE))",
                quoted(columns::SLOW_START_MS)
            ),
        ),
    ];
    let select = figures
        .iter()
        .map(|(name, e)| format!("{e} AS {}", quoted(name)))
        .collect::<Vec<_>>()
        .join(",\n  ");
    let batches = sql(
        ctx,
        "route figures",
        &format!("SELECT {by},\n  {select}\nFROM nx GROUP BY {by}"),
    )
    .await?;
    let mut ints_read: Vec<&str> = links::HTTP_INTS.to_vec();
    ints_read.extend(["server_views", STALL_N]);
    let agg = aggregates(&batches, keys, &ints_read, &[STALL_SUM, SLOW_START_SUM])?;
    let ms = |c: &str| format!("CAST({} AS DOUBLE)", quoted(c));
    let sketched: Vec<(&str, String)> = HTTP_SKETCHES.iter().map(|(n, c, _)| (*n, ms(c))).collect();
    let counted: Vec<(&str, String)> = links::HTTP_COUNTED
        .iter()
        .map(|c| (*c, quoted(c)))
        .collect();
    let (sketches, counts) = sketches_and_counts(
        ctx,
        "route sketches and values",
        "nx",
        keys,
        &sketched,
        &counted,
    )
    .await?;
    Ok(HttpSums {
        agg,
        sketches,
        counts,
    })
}

/// Names of the sums the means are made from.
const STALL_N: &str = "stall_n";
const STALL_SUM: &str = "stall_sum";
const SLOW_START_SUM: &str = "slow_start_sum";

impl HttpSums {
    /// The same figures per group of the first `n` keys (routes -> links). The rows are
    /// added in key order, so that float sums do not depend on the order the engine
    /// returned them in.
    fn roll_up(&self, n: usize) -> HttpSums {
        let short = |k: &Key| k.iter().take(n).cloned().collect::<Key>();
        let mut out = HttpSums::default();
        let mut order: Vec<usize> = (0..self.agg.keys.len()).collect();
        order.sort_by(|a, b| self.agg.keys[*a].cmp(&self.agg.keys[*b]));
        let mut at: BTreeMap<Key, usize> = BTreeMap::new();
        // Per row in key order: (row, group).
        let rows: Vec<(usize, usize)> = order
            .iter()
            .map(|&r| {
                let k = short(&self.agg.keys[r]);
                let next = at.len();
                (r, *at.entry(k).or_insert(next))
            })
            .collect();
        out.agg.keys = vec![Key::new(); at.len()];
        for (k, &i) in &at {
            out.agg.keys[i] = k.clone();
        }
        for (name, v) in &self.agg.ints {
            let mut sums = vec![0u64; at.len()];
            for &(r, g) in &rows {
                sums[g] += v.get(r).copied().unwrap_or(0);
            }
            out.agg.ints.insert(name.clone(), sums);
        }
        for (name, v) in &self.agg.floats {
            let mut sums: Vec<Option<f64>> = vec![None; at.len()];
            for &(r, g) in &rows {
                if let Some(x) = v.get(r).copied().flatten() {
                    sums[g] = Some(sums[g].unwrap_or(0.0) + x);
                }
            }
            out.agg.floats.insert(name.clone(), sums);
        }
        for ((measure, k), b) in &self.sketches {
            let e = out.sketches.entry((measure.clone(), short(k))).or_default();
            e.counts.extend_from_slice(&b.counts);
        }
        for (column, by_key) in &self.counts {
            let c = out.counts.entry(column.clone()).or_default();
            for (k, values) in by_key {
                let e = c.entry(short(k)).or_default();
                for (v, n) in values {
                    *e.entry(v.clone()).or_default() += n;
                }
            }
        }
        out
    }

    /// The groups' figures as `links::http_measures` reads them: the means from their
    /// sums, the quantiles from the sketches, with each group's busiest second.
    fn finish(self, peaks: BTreeMap<Key, u64>) -> HttpGroups {
        let HttpSums {
            mut agg,
            sketches,
            mut counts,
        } = self;
        let stall_n = agg.ints.remove(STALL_N).unwrap_or_default();
        let stall_sum = agg.floats.remove(STALL_SUM).unwrap_or_default();
        let slow_sum = agg.floats.remove(SLOW_START_SUM).unwrap_or_default();
        let requests = agg.ints.get("requests").cloned().unwrap_or_default();
        let mean = |sum: &[Option<f64>], n: &[u64]| -> Vec<Option<f64>> {
            (0..agg.keys.len())
                .map(|i| {
                    let n = n.get(i).copied().unwrap_or(0);
                    (n > 0).then(|| sum.get(i).copied().flatten().unwrap_or(0.0) / n as f64)
                })
                .collect()
        };
        let stall_mean = mean(&stall_sum, &stall_n);
        let slow_start_ms = mean(&slow_sum, &requests);
        agg.floats.insert("stall_mean".into(), stall_mean);
        agg.floats.insert("slow_start_ms".into(), slow_start_ms);
        for (measure, _, qs) in HTTP_SKETCHES {
            add_quantiles(&mut agg, &sketches, measure, qs);
        }
        let mut take = |c: &str| counts.remove(c).unwrap_or_default();
        let counts = HttpCounts {
            peaks,
            versions: take(columns::VERSION),
            req_types: take(columns::REQ_CONTENT_TYPE),
            resp_types: take(columns::RESP_CONTENT_TYPE),
            stream_errors: take(columns::STREAM_ERROR),
            grpc_status: take(columns::GRPC_STATUS_NAME),
            grpc_kinds: take(columns::GRPC_CALL_KIND),
        };
        HttpGroups { agg, counts }
    }
}

/// Requests in each group's busiest second (by `keys`): not a sum of the routes'.
async fn peaks(ctx: &Statements<'_>, keys: &[&str]) -> anyhow::Result<BTreeMap<Key, u64>> {
    let by = keys
        .iter()
        .map(|k| quoted(k))
        .collect::<Vec<_>>()
        .join(", ");
    let query = format!(
        "SELECT {by}, MAX(n) AS peak FROM (
  SELECT {by}, COUNT(*) AS n FROM nx WHERE {second} IS NOT NULL GROUP BY {by}, {second}) p
GROUP BY {by}",
        second = quoted(columns::SECOND)
    );
    let mut peaks = BTreeMap::new();
    let name = if keys.len() == LINK_KEYS.len() {
        "link peaks"
    } else {
        "route peaks"
    };
    for b in &sql(ctx, name, &query).await? {
        let k = keys_of(b, keys)?;
        for (key, p) in k.into_iter().zip(ints(b, "peak")?) {
            if let Some(p) = p {
                peaks.insert(key, p.max(0) as u64);
            }
        }
    }
    Ok(peaks)
}

/// Periodic failures per route (`links::periodic_failure`): each route's requests
/// numbered in time order, then per failure status the gaps between consecutive
/// failures counted. Only those counts come back (a row per route, status and gap).
async fn periodic(ctx: &Statements<'_>) -> anyhow::Result<links::PeriodicByRoute> {
    let (status, start) = (quoted(columns::STATUS), quoted(columns::REQ_FIRST_NS));
    let route = format!(
        "client, server, {}, {}",
        quoted(columns::METHOD),
        quoted(columns::ROUTE)
    );
    let query = format!(
        "WITH numbered AS (
  SELECT {route}, {status} AS status,
    ROW_NUMBER() OVER (PARTITION BY {route} ORDER BY {start}, client_ip, client_port, \"index\") AS i
  FROM nx WHERE {start} IS NOT NULL),
failures AS (SELECT * FROM numbered WHERE status >= 500 OR status = 429),
gaps AS (
  SELECT {route}, status, i - LAG(i) OVER (PARTITION BY {route}, status ORDER BY i) AS gap
  FROM failures)
SELECT {route}, CAST(status AS BIGINT) AS status, gap, COUNT(*) AS n FROM gaps
GROUP BY {route}, status, gap"
    );
    // Per route and status: failures, and the gap counts.
    type Gaps = (u64, BTreeMap<u64, u64>);
    let mut found: BTreeMap<(Key, u32), Gaps> = BTreeMap::new();
    for b in &sql(ctx, "periodic failures", &query).await? {
        let keys = keys_of(b, ROUTE_KEYS)?;
        let (st, gap, n) = (ints(b, "status")?, ints(b, "gap")?, ints(b, "n")?);
        for (i, key) in keys.into_iter().enumerate() {
            let (Some(st), Some(n)) = (st[i], n[i]) else {
                continue;
            };
            let n = n.max(0) as u64;
            let e = found
                .entry((key, u32::try_from(st).unwrap_or(u32::MAX)))
                .or_default();
            e.0 += n;
            // The first failure has no gap before it.
            if let Some(g) = gap[i] {
                *e.1.entry(g.max(0) as u64).or_default() += n;
            }
        }
    }
    let mut out = links::PeriodicByRoute::new();
    for ((key, st), (failures, gaps)) in found {
        if let Some(p) = links::periodic_failure(st, failures, &gaps) {
            out.entry(key).or_default().push(p);
        }
    }
    Ok(out)
}

/// The connections group-by of `links::measure` per link, over the folded, named
/// connections (`nc` in `with`).
async fn connection_groups(
    ctx: &Statements<'_>,
) -> anyhow::Result<(Aggregates, ConnCounts, BTreeMap<LinkKey, TlsEstimateSums>)> {
    let by = "client, server";
    let q = quoted;
    let both = |a: &str, b: &str| format!("({} + {})", q(a), q(b));
    let zero_windows = both(columns::C2S_ZERO_WINDOWS, columns::S2C_ZERO_WINDOWS);
    let timeouts = both(
        columns::C2S_RETRANSMISSION_TIMEOUTS,
        columns::S2C_RETRANSMISSION_TIMEOUTS,
    );
    let rto_wait = both(columns::C2S_RTO_WAIT_NS, columns::S2C_RTO_WAIT_NS);
    let ms_sum = |e: &str| format!("CAST(SUM({e}) AS DOUBLE) / 1e6");
    let carried = format!(
        "CASE WHEN {ex} > 0 THEN {ex} END",
        ex = q(columns::EXCHANGES)
    );
    let turns = format!("CAST({} AS DOUBLE)", q(columns::TLS_EST_TURNS));
    let estimated = format!(
        "({turns} > 0 AND COALESCE({}, '') <> 'decrypted')",
        q(columns::TLS_DECRYPTION)
    );
    let h2 = format!("COALESCE({}, '') = 'h2_rounds'", q(columns::TLS_EST_MODE));
    let est_sum = |e: &str| format!("SUM(CASE WHEN {estimated} THEN {e} END)");
    let figures = [
        ("connections", "COUNT(*)".to_owned()),
        (
            "tcp_handshakes",
            count_where(&format!("{} IS NOT NULL", q(columns::SYN_NS))),
        ),
        (
            "tls",
            count_where(&format!("{} = 'tls'", q(columns::PROTOCOL))),
        ),
        (
            "resets",
            count_where(&format!("{} = 'rst'", q(columns::CLOSE))),
        ),
        (
            "retransmitted",
            format!(
                "SUM({})",
                both(
                    columns::C2S_RETRANSMITTED_BYTES,
                    columns::S2C_RETRANSMITTED_BYTES
                )
            ),
        ),
        ("zero_windows", format!("SUM({zero_windows})")),
        ("zero_windows_known", format!("COUNT({zero_windows})")),
        ("timeouts", format!("SUM({timeouts})")),
        ("timeouts_known", format!("COUNT({timeouts})")),
        ("rto_wait_ms", ms_sum(&rto_wait)),
        ("rto_wait_known", format!("COUNT({rto_wait})")),
        (
            "client_zero_window_ms",
            ms_sum(&q(columns::C2S_ZERO_WINDOW_NS)),
        ),
        (
            "server_zero_window_ms",
            ms_sum(&q(columns::S2C_ZERO_WINDOW_NS)),
        ),
        (
            "zero_window_known",
            format!("COUNT({})", q(columns::C2S_ZERO_WINDOW_NS)),
        ),
        (
            "with_gaps",
            count_where(&format!(
                "{} > 0",
                both(columns::C2S_GAPS, columns::S2C_GAPS)
            )),
        ),
        (
            "gap_bytes",
            format!(
                "SUM({})",
                both(columns::C2S_GAP_BYTES, columns::S2C_GAP_BYTES)
            ),
        ),
        (columns::ONE_SIDED, count_where(&q(columns::ONE_SIDED))),
        (
            "no_handshake",
            count_where(&format!("NOT {}", q(columns::HANDSHAKE_SEEN))),
        ),
        ("rpc_mean", format!("AVG(CAST({carried} AS DOUBLE))")),
        ("rpc_max", format!("CAST(MAX({carried}) AS DOUBLE)")),
        (
            "single",
            count_where(&format!("{} = 1", q(columns::EXCHANGES))),
        ),
        (
            "resumed",
            count_where(&format!("COALESCE({}, false)", q(columns::TLS_RESUMED))),
        ),
        ("first_ns", "MIN(first_ns)".to_owned()),
        ("last_ns", format!("MAX({})", q(columns::LAST_NS))),
        // The TLS estimates: sums over the connections not decrypted whose records showed
        // turns, as `links::tls_estimate` adds them.
        (TLS_EST_CONNECTIONS, count_where(&estimated)),
        (
            TLS_EST_H2,
            count_where(&format!("{estimated} AND {h2}")),
        ),
        (
            TLS_EST_REQUESTS,
            format!(
                "SUM(CASE WHEN {estimated} AND NOT {h2} THEN CAST(COALESCE({}, {}) AS BIGINT) END)",
                q(columns::TLS_EST_REQUESTS),
                q(columns::TLS_EST_TURNS)
            ),
        ),
        (
            TLS_EST_WORST,
            format!(
                "MAX(CASE WHEN {estimated} THEN CASE {} WHEN 'high' THEN 0 WHEN 'medium' THEN 1 ELSE 2 END END)",
                q(columns::TLS_EST_CONFIDENCE)
            ),
        ),
        (TLS_EST_TURNS, est_sum(&turns)),
        (
            TLS_EST_TTFB,
            est_sum(&format!("COALESCE(CAST({} AS DOUBLE), 0) * {turns}", q(columns::TLS_EST_TTFB_NS))),
        ),
        (
            TLS_EST_TOTAL,
            est_sum(&format!("COALESCE(CAST({} AS DOUBLE), 0) * {turns}", q(columns::TLS_EST_TOTAL_NS))),
        ),
        (
            TLS_EST_REQ_BYTES,
            est_sum(&format!("COALESCE(CAST({} AS DOUBLE), 0)", q(columns::TLS_EST_REQ_BYTES))),
        ),
        (
            TLS_EST_RESP_BYTES,
            est_sum(&format!("COALESCE(CAST({} AS DOUBLE), 0)", q(columns::TLS_EST_RESP_BYTES))),
        ),
    ];
    let select = figures
        .iter()
        .map(|(name, e)| format!("{e} AS {}", q(name)))
        .collect::<Vec<_>>()
        .join(",\n  ");
    let batches = sql(
        ctx,
        "connection figures",
        &format!("SELECT {by},\n  {select}\nFROM nc GROUP BY {by}"),
    )
    .await?;
    let mut ints_read: Vec<&str> = links::CONN_INTS.to_vec();
    ints_read.extend([
        "resumed",
        TLS_EST_CONNECTIONS,
        TLS_EST_H2,
        TLS_EST_REQUESTS,
        TLS_EST_WORST,
        "first_ns",
        "last_ns",
    ]);
    let floats_read = [
        "rto_wait_ms",
        "client_zero_window_ms",
        "server_zero_window_ms",
        "rpc_mean",
        "rpc_max",
        TLS_EST_TURNS,
        TLS_EST_TTFB,
        TLS_EST_TOTAL,
        TLS_EST_REQ_BYTES,
        TLS_EST_RESP_BYTES,
    ];
    let mut agg = aggregates(&batches, LINK_KEYS, &ints_read, &floats_read)?;
    let tls_estimates = tls_estimate_sums(&mut agg);
    let ns_ms = |c: &str| format!("CAST({} AS DOUBLE) / 1e6", q(c));
    let counted: Vec<(&str, String)> = [
        columns::PROTOCOL,
        columns::TLS_SNI,
        columns::TLS_VERSION,
        columns::TLS_ALPN,
    ]
    .iter()
    .map(|c| (*c, q(c)))
    .collect();
    let (sketches, mut counts) = sketches_and_counts(
        ctx,
        "connection sketches and values",
        "nc",
        LINK_KEYS,
        &[
            ("rtt", ns_ms(columns::HANDSHAKE_RTT_NS)),
            ("rpc", format!("CAST({carried} AS DOUBLE)")),
            ("tls", ns_ms(columns::TLS_HANDSHAKE_NS)),
        ],
        &counted,
    )
    .await?;
    add_quantiles(&mut agg, &sketches, "rtt", &[50, 95]);
    add_quantiles(&mut agg, &sketches, "rpc", &[50, 95]);
    let mut tls_ms = BTreeMap::new();
    for key in &agg.keys {
        if let Some(b) = sketches.get(&("tls".to_owned(), key.clone())) {
            tls_ms.insert(
                key.clone(),
                RttPercentiles {
                    p50: b.quantile(0.50),
                    p95: b.quantile(0.95),
                },
            );
        }
    }
    let resumed = agg
        .keys
        .iter()
        .cloned()
        .zip(agg.ints.remove("resumed").unwrap_or_default())
        .collect();
    let mut take = |c: &str| counts.remove(c).unwrap_or_default();
    let counts = ConnCounts {
        protocols: take(columns::PROTOCOL),
        sni: take(columns::TLS_SNI),
        versions: take(columns::TLS_VERSION),
        alpn: take(columns::TLS_ALPN),
        resumed,
        tls_ms,
    };
    Ok((agg, counts, tls_estimates))
}

/// Names of the TLS estimate sums in the connection group-by.
const TLS_EST_CONNECTIONS: &str = "tls_est_connections";
const TLS_EST_H2: &str = "tls_est_h2";
const TLS_EST_REQUESTS: &str = "tls_est_requests";
const TLS_EST_WORST: &str = "tls_est_worst";
const TLS_EST_TURNS: &str = "tls_est_turns";
const TLS_EST_TTFB: &str = "tls_est_ttfb_ns";
const TLS_EST_TOTAL: &str = "tls_est_total_ns";
const TLS_EST_REQ_BYTES: &str = "tls_est_req_bytes";
const TLS_EST_RESP_BYTES: &str = "tls_est_resp_bytes";

/// Takes the TLS estimate sums out of the connection group-by: per link that has
/// estimated connections.
fn tls_estimate_sums(agg: &mut Aggregates) -> BTreeMap<LinkKey, TlsEstimateSums> {
    let mut int = |n: &str| agg.ints.remove(n).unwrap_or_default();
    let (conns, h2, requests, worst) = (
        int(TLS_EST_CONNECTIONS),
        int(TLS_EST_H2),
        int(TLS_EST_REQUESTS),
        int(TLS_EST_WORST),
    );
    let mut float = |n: &str| agg.floats.remove(n).unwrap_or_default();
    let (turns, ttfb, total) = (
        float(TLS_EST_TURNS),
        float(TLS_EST_TTFB),
        float(TLS_EST_TOTAL),
    );
    let (req, resp) = (float(TLS_EST_REQ_BYTES), float(TLS_EST_RESP_BYTES));
    let f = |v: &[Option<f64>], i: usize| v.get(i).copied().flatten().unwrap_or(0.0);
    let mut out = BTreeMap::new();
    for (i, key) in agg.keys.iter().enumerate() {
        let n = conns.get(i).copied().unwrap_or(0);
        if n == 0 {
            continue;
        }
        let h2 = h2.get(i).copied().unwrap_or(0);
        out.insert(
            (
                key[0].clone().unwrap_or_default(),
                key[1].clone().unwrap_or_default(),
            ),
            TlsEstimateSums {
                connections: n,
                h1: n - h2.min(n),
                h2,
                requests: requests.get(i).copied().unwrap_or(0),
                turns: f(&turns, i),
                ttfb_ns: f(&ttfb, i),
                total_ns: f(&total, i),
                req_bytes: f(&req, i),
                resp_bytes: f(&resp, i),
                worst: u8::try_from(worst.get(i).copied().unwrap_or(2)).unwrap_or(2),
            },
        );
    }
    out
}

/// Each link's client addresses and server endpoints, and the best source of its names.
async fn members(ctx: &Statements<'_>) -> anyhow::Result<Members> {
    let cols = "client, server, client_ip, server_ip, server_port, client_rank, server_rank";
    let query = format!(
        "SELECT client, server, client_ip, {endpoint} AS endpoint,
  MIN(client_rank) AS client_rank, MIN(server_rank) AS server_rank
FROM (SELECT {cols} FROM nx UNION ALL SELECT {cols} FROM nc) m
GROUP BY client, server, client_ip, server_ip, server_port",
        endpoint = endpoint_sql("server_ip", "server_port"),
    );
    let mut out = Members::new();
    for b in &sql(ctx, "members", &query).await? {
        let (c, s) = (strings(b, "client")?, strings(b, "server")?);
        let (ip, ep) = (strings(b, "client_ip")?, strings(b, "endpoint")?);
        let (cr, sr) = (ints(b, "client_rank")?, ints(b, "server_rank")?);
        for i in 0..b.num_rows() {
            out.add(
                key(&c, &s, i),
                ip[i].as_deref().unwrap_or(""),
                ep[i].as_deref().unwrap_or(""),
                source_of_rank(cr[i]),
                source_of_rank(sr[i]),
            );
        }
    }
    Ok(out)
}

/// The name source of a `source_rank` (its place in `NameSource`'s order).
fn source_of_rank(rank: Option<i64>) -> NameSource {
    const ALL: [NameSource; 8] = [
        NameSource::ServicesFile,
        NameSource::Traces,
        NameSource::K8s,
        NameSource::Dns,
        NameSource::Host,
        NameSource::Sni,
        NameSource::Listener,
        NameSource::Fallback,
    ];
    rank.and_then(|r| usize::try_from(r).ok())
        .and_then(|r| ALL.get(r).copied())
        .unwrap_or(NameSource::Fallback)
}

/// The group keys of a result's rows.
fn keys_of(b: &RecordBatch, keys: &[&str]) -> anyhow::Result<Vec<Key>> {
    let cols = keys
        .iter()
        .map(|k| strings(b, k))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((0..b.num_rows())
        .map(|i| cols.iter().map(|c| c[i].clone()).collect())
        .collect())
}

/// A group-by's rows read as [`Aggregates`]: counts and sums as integers (null as 0),
/// `floats` as they are.
fn aggregates(
    batches: &[RecordBatch],
    keys: &[&str],
    int_names: &[&str],
    float_names: &[&str],
) -> anyhow::Result<Aggregates> {
    let mut agg = Aggregates::default();
    for b in batches {
        agg.keys.extend(keys_of(b, keys)?);
        for n in int_names {
            let v = ints(b, n)?;
            agg.ints
                .entry((*n).to_owned())
                .or_default()
                .extend(v.into_iter().map(|v| v.unwrap_or(0).max(0) as u64));
        }
        for n in float_names {
            let v = floats(b, n)?;
            agg.floats.entry((*n).to_owned()).or_default().extend(v);
        }
    }
    // A result without rows still names every figure.
    for n in int_names {
        agg.ints.entry((*n).to_owned()).or_default();
    }
    for n in float_names {
        agg.floats.entry((*n).to_owned()).or_default();
    }
    Ok(agg)
}

/// Sketches of `sketched` measures (`(name, expression in ms)`) and value counts of
/// `counted` columns, per group of `keys`, in one statement: one scan and one group-by
/// for all, each row repeated once per measure (a cross join with their names) rather
/// than a UNION ALL of one plan per measure, which folds the views again in each branch
/// (and stalled Ballista 55's scheduler). Rows where an expression is null are left out,
/// as a quantile or a value count leaves out nulls.
async fn sketches_and_counts(
    ctx: &Statements<'_>,
    name: &str,
    rel: &str,
    keys: &[&str],
    sketched: &[(&str, String)],
    counted: &[(&str, String)],
) -> anyhow::Result<(
    BTreeMap<(String, Key), Buckets>,
    BTreeMap<String, CountsByKey>,
)> {
    let by = keys
        .iter()
        .map(|k| quoted(k))
        .collect::<Vec<_>>()
        .join(", ");
    let as_text: Vec<(&str, String)> = sketched
        .iter()
        .map(|(n, e)| {
            (
                *n,
                format!("CAST({} AS VARCHAR)", bucket_sql(&format!("({e})"))),
            )
        })
        .chain(
            counted
                .iter()
                .map(|(n, e)| (*n, format!("CAST({e} AS VARCHAR)"))),
        )
        .collect();
    let (names, cases) = unpivot(&as_text);
    let query = format!(
        "SELECT {by}, measure, value, COUNT(*) AS n FROM (
  SELECT {by}, m.measure, {cases} AS value FROM {rel} CROSS JOIN (VALUES {names}) AS m(measure)) v
WHERE value IS NOT NULL GROUP BY {by}, measure, value"
    );
    let mut sketches: BTreeMap<(String, Key), Buckets> = BTreeMap::new();
    let mut counts: BTreeMap<String, CountsByKey> = BTreeMap::new();
    for b in &sql(ctx, name, &query).await? {
        let k = keys_of(b, keys)?;
        let (m, value, n) = (strings(b, "measure")?, strings(b, "value")?, ints(b, "n")?);
        for (i, key) in k.into_iter().enumerate() {
            let (Some(m), Some(v)) = (m[i].clone(), value[i].clone()) else {
                continue;
            };
            let n = n[i].unwrap_or(0).max(0) as u64;
            if sketched.iter().any(|(s, _)| *s == m) {
                let bucket: i64 = v
                    .parse()
                    .with_context(|| format!("sketch bucket {v:?} of {m}"))?;
                sketches.entry((m, key)).or_default().add(bucket, n);
            } else {
                *counts
                    .entry(m)
                    .or_default()
                    .entry(key)
                    .or_default()
                    .entry(v)
                    .or_default() += n;
            }
        }
    }
    Ok((sketches, counts))
}

/// `('a'), ('b')` for a VALUES list of the names of `exprs`, and `CASE m.measure WHEN 'a'
/// THEN expr_a ... END`, the expression of the row's name.
fn unpivot(exprs: &[(&str, String)]) -> (String, String) {
    let names = exprs
        .iter()
        .map(|(n, _)| format!("('{n}')"))
        .collect::<Vec<_>>()
        .join(", ");
    let cases = exprs
        .iter()
        .map(|(n, e)| format!("WHEN '{n}' THEN {e}"))
        .collect::<Vec<_>>()
        .join(" ");
    (names, format!("CASE m.measure {cases} END"))
}

/// `{measure}_p{q}` for each of `qs`, per group of `agg`, from its sketch (null when the
/// group has no value).
fn add_quantiles(
    agg: &mut Aggregates,
    sketches: &BTreeMap<(String, Key), Buckets>,
    measure: &str,
    qs: &[u32],
) {
    for q in qs {
        let values = agg
            .keys
            .iter()
            .map(|k| {
                sketches
                    .get(&(measure.to_owned(), k.clone()))
                    .and_then(|b| b.quantile(f64::from(*q) / 100.0))
            })
            .collect();
        agg.floats.insert(format!("{measure}_p{q}"), values);
    }
}

/// Per link: calls with a parent, their confidence and id-confirmed edges, parents; per
/// (parent link, child link): calls.
async fn chain_aggregates(ctx: &Statements<'_>, out: &mut FleetResult) -> anyhow::Result<()> {
    let child = names("edges", "child_");
    // The parent's names: its own 5-tuple through the same name tables.
    let pairs = sql(
        ctx,
        "call edges",
        &format!(
            "WITH ce AS ({child}),
pe AS (SELECT ce.*, COALESCE(pc.service, ce.parent_client_ip) AS parent_client,
    COALESCE(ps.service, {parent_endpoint}) AS parent_server
  FROM ce
  LEFT JOIN cli_names pc ON pc.ip = ce.parent_client_ip
  LEFT JOIN srv_names ps ON ps.ip = ce.parent_server_ip AND ps.port = ce.parent_server_port),
per_parent AS (
  SELECT client, server, parent_client, parent_server, COUNT(*) AS calls,
    SUM(confidence) AS confidence, SUM(CASE WHEN source <> 'timing' THEN 1 ELSE 0 END) AS by_ids,
    {parallel} AS parallel, {ff} AS fire_and_forget, {same} AS same_payload
  FROM pe GROUP BY client, server, parent_client, parent_server, parent_client_ip,
    parent_client_port, parent_server_ip, parent_server_port, parent_index, parent_start_ns)
SELECT client, server, parent_client, parent_server, COUNT(*) AS parents,
  SUM(calls) AS calls, MAX(calls) AS max_calls, SUM(confidence) AS confidence,
  SUM(by_ids) AS by_ids, SUM(parallel) AS parallel, SUM(fire_and_forget) AS fire_and_forget,
  SUM(same_payload) AS same_payload
FROM per_parent GROUP BY client, server, parent_client, parent_server",
            parallel = count_where("parallel"),
            ff = count_where("fire_and_forget"),
            same = count_where("same_payload"),
            parent_endpoint = endpoint_sql("ce.parent_server_ip", "ce.parent_server_port"),
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
        let (parallel, fire_and_forget) = (ints(b, "parallel")?, ints(b, "fire_and_forget")?);
        let same_payload = ints(b, "same_payload")?;
        let conf = floats(b, "confidence")?;
        for i in 0..b.num_rows() {
            let n = |v: &[Option<i64>]| v[i].unwrap_or(0).max(0) as u64;
            let ch = out.chains.entry(key(&c, &s, i)).or_default();
            ch.with_parent += n(&calls);
            ch.confidence_sum += conf[i].unwrap_or(0.0);
            ch.by_ids += n(&by_ids);
            ch.parallel += n(&parallel);
            ch.fire_and_forget += n(&fire_and_forget);
            ch.same_payload += n(&same_payload);
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

/// N+1 groups per (link, method, route): the calls the parent's node marked as one of a
/// group (the same route called again and again under one parent, mostly in turn),
/// counted per parent, then per route.
async fn n_plus_one(ctx: &Statements<'_>, out: &mut FleetResult) -> anyhow::Result<()> {
    let child = names("edges", "child_");
    let query = format!(
        "WITH ce AS ({child}),
g AS (
  SELECT client, server, child_method, child_route, COUNT(*) AS calls FROM ce WHERE n_plus_one
  GROUP BY client, server, child_method, child_route, parent_client_ip, parent_client_port,
    parent_server_ip, parent_server_port, parent_index, parent_start_ns)
SELECT client, server, child_method, child_route, COUNT(*) AS parents, SUM(calls) AS calls,
  MAX(calls) AS max_calls
FROM g GROUP BY client, server, child_method, child_route"
    );
    for b in &sql(ctx, "n+1 groups", &query).await? {
        let (c, s) = (strings(b, "client")?, strings(b, "server")?);
        let (m, r) = (strings(b, "child_method")?, strings(b, "child_route")?);
        let (parents, calls, max) = (
            ints(b, "parents")?,
            ints(b, "calls")?,
            ints(b, "max_calls")?,
        );
        for i in 0..b.num_rows() {
            let n = |v: &[Option<i64>]| v[i].unwrap_or(0).max(0) as u64;
            out.chains
                .entry(key(&c, &s, i))
                .or_default()
                .n_plus_one
                .insert(
                    (m[i].clone(), r[i].clone()),
                    (n(&parents), n(&calls), n(&max)),
                );
        }
    }
    Ok(())
}

/// The payload samples per link: each sampling node's sums added, from the server's node
/// when the fleet has the server's address (the same bodies sampled on both sides of a
/// call would count twice), else from the clients' nodes. The sums are what
/// `cost::savings::payloads_by_link` makes of one capture's payloads table.
async fn payloads(
    ctx: &Statements<'_>,
) -> anyhow::Result<BTreeMap<(String, String), PayloadSamples>> {
    let q = quoted;
    let sum = |c: &str| format!("CAST(SUM({}) AS DOUBLE)", q(c));
    let timed = |cost: &str, bytes: &str| {
        format!(
            "CAST(SUM(CASE WHEN {c} IS NOT NULL THEN {b} END) AS DOUBLE)",
            c = q(cost),
            b = q(bytes)
        )
    };
    let weighted = |cost: &str, bytes: &str| {
        format!(
            "SUM(CAST({} AS DOUBLE) * CAST({} AS DOUBLE))",
            q(cost),
            q(bytes)
        )
    };
    let query = format!(
        "WITH owned AS (SELECT DISTINCT ip FROM node_ips),
pv AS (
  SELECT p.*, CASE WHEN s.ip IS NOT NULL THEN 0 ELSE 1 END AS side FROM payloads p
  LEFT JOIN node_ips s ON s.node = p.node AND s.ip = p.server_ip),
dpl AS (
  SELECT * FROM pv WHERE side = 0 OR NOT EXISTS (SELECT 1 FROM owned o WHERE o.ip = pv.server_ip)),
np AS ({named})
SELECT client, server, {documents} AS documents, {json} AS json_bytes, {pb} AS protobuf_bytes,
  {json_gz} AS json_gzip_bytes, {pb_gz} AS protobuf_gzip_bytes, {bodies} AS json_bodies,
  {non_json} AS non_json_bodies, {unsafe_ints} AS unsafe_integers, {conflicts} AS type_conflicts,
  {parse} AS json_parse_ns, {timed_json} AS timed_json_bytes,
  {decode} AS protobuf_decode_ns, {timed_pb} AS timed_protobuf_bytes
FROM np GROUP BY client, server",
        named = names("dpl", ""),
        documents = sum(columns::SAMPLES),
        json = sum(columns::SAMPLED_JSON_BYTES),
        pb = sum(columns::SAMPLED_PROTOBUF_BYTES),
        json_gz = sum(columns::SAMPLED_JSON_GZIP_BYTES),
        pb_gz = sum(columns::SAMPLED_PROTOBUF_GZIP_BYTES),
        bodies = sum(columns::BODIES),
        non_json = sum(columns::NON_JSON_BODIES),
        unsafe_ints = sum(columns::UNSAFE_INTEGERS),
        conflicts = sum(columns::TYPE_CONFLICTS),
        parse = weighted(columns::JSON_PARSE_NS_PER_BYTE, columns::SAMPLED_JSON_BYTES),
        timed_json = timed(columns::JSON_PARSE_NS_PER_BYTE, columns::SAMPLED_JSON_BYTES),
        decode = weighted(
            columns::PROTOBUF_DECODE_NS_PER_BYTE,
            columns::SAMPLED_PROTOBUF_BYTES
        ),
        timed_pb = timed(
            columns::PROTOBUF_DECODE_NS_PER_BYTE,
            columns::SAMPLED_PROTOBUF_BYTES
        ),
    );
    let mut out = BTreeMap::new();
    for b in &sql(ctx, "payload samples", &query).await? {
        let (c, s) = (strings(b, "client")?, strings(b, "server")?);
        let f = |name: &str| floats(b, name);
        let (documents, json, pb) = (f("documents")?, f("json_bytes")?, f("protobuf_bytes")?);
        let (json_gz, pb_gz) = (f("json_gzip_bytes")?, f("protobuf_gzip_bytes")?);
        let (bodies, non_json) = (f("json_bodies")?, f("non_json_bodies")?);
        let (unsafe_ints, conflicts) = (f("unsafe_integers")?, f("type_conflicts")?);
        let (parse, timed_json) = (f("json_parse_ns")?, f("timed_json_bytes")?);
        let (decode, timed_pb) = (f("protobuf_decode_ns")?, f("timed_protobuf_bytes")?);
        for i in 0..b.num_rows() {
            let n = |v: &[Option<f64>]| v[i].unwrap_or(0.0).max(0.0) as u64;
            out.insert(
                key(&c, &s, i),
                PayloadSamples {
                    documents: n(&documents),
                    json_bytes: n(&json),
                    protobuf_bytes: n(&pb),
                    json_parse_ns: parse[i].unwrap_or(0.0),
                    protobuf_decode_ns: decode[i].unwrap_or(0.0),
                    timed_json_bytes: n(&timed_json),
                    timed_protobuf_bytes: n(&timed_pb),
                    json_gzip_bytes: n(&json_gz),
                    protobuf_gzip_bytes: n(&pb_gz),
                    json_bodies: n(&bodies),
                    non_json_bodies: n(&non_json),
                    unsafe_integers: n(&unsafe_ints),
                    type_conflicts: n(&conflicts),
                },
            );
        }
    }
    Ok(out)
}

/// Ancestors followed up a call's parent edges: a chain deeper than this is counted in
/// `depth_unknown` instead of guessed. Each level is one more join in the plan (and in
/// the protobuf plan Ballista ships, hence the `fleet` feature's lifted prost recursion
/// limit).
pub const MAX_TREE_DEPTH: usize = 8;

/// A connection that carries payload but no exchange the nodes could read (TLS without
/// keys, another protocol): one opaque call, as `analyze` counts it.
const OPAQUE_CONNECTION: &str =
    "COALESCE(exchanges, 0) = 0 AND protocol IS NOT NULL AND protocol <> 'empty'";

/// Every call with its place in the trees, assembled across nodes (staged as `calls`): a
/// call's parent edge came from the node of the call's client, its parent's edge from
/// the node of the parent's client, and so on up; the ancestors are followed with a join
/// per level (bounded, so that the plan runs as plain hash joins on any engine). As in
/// `analyze`, a call without a parent is a root (depth 1) when its client serves no
/// request, else an orphan whose tree has no known depth (`known` null). Per call: its
/// link, method and route, depth, whether it is on its root's critical path, its root
/// (5-tuple, position, start), and its own time and time waiting on its calls (from the
/// node that saw its children, else its request-to-response window).
fn calls_view(tol: i64) -> String {
    let up = |a: &str, b: &str| {
        format!(
            "{b}.child_client_ip = {a}.parent_client_ip AND {b}.child_client_port = {a}.parent_client_port \
             AND {b}.child_server_ip = {a}.parent_server_ip AND {b}.child_server_port = {a}.parent_server_port \
             AND {b}.child_index = {a}.parent_index AND abs({b}.child_start_ns - {a}.parent_start_ns) <= {tol}"
        )
    };
    let levels = MAX_TREE_DEPTH;
    let joins = (2..=levels)
        .map(|k| {
            format!(
                "LEFT JOIN edges e{k} ON {}",
                up(&format!("e{}", k - 1), &format!("e{k}"))
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let hops = (2..=levels)
        .map(|k| format!("CASE WHEN e{k}.child_index IS NULL THEN 0 ELSE 1 END"))
        .collect::<Vec<_>>()
        .join(" + ");
    let top = (1..=levels)
        .rev()
        .map(|k| format!("e{k}.parent_client_ip"))
        .collect::<Vec<_>>()
        .join(", ");
    // The top of a call's chain: the parent of the highest edge found.
    let root = |col: &str| {
        let arms = (1..=levels)
            .rev()
            .map(|k| format!("WHEN e{k}.child_index IS NOT NULL THEN e{k}.parent_{col}"))
            .collect::<Vec<_>>()
            .join(" ");
        format!("CASE {arms} END AS root_{col}")
    };
    let root_cols = [
        "client_ip",
        "client_port",
        "server_ip",
        "server_port",
        "index",
        "start_ns",
        "duration_ns",
    ]
    .map(root)
    .join(",\n    ");
    // On the root's critical path: on its parent's, and each ancestor on its parent's.
    let on_path = (1..=levels)
        .map(|k| match k {
            1 => "e1.on_parent_path".to_owned(),
            _ => format!("COALESCE(e{k}.on_parent_path, true)"),
        })
        .collect::<Vec<_>>()
        .join(" AND ");
    // A call's place in its root's tree: its ancestors' starts from the top down, then
    // its own, each as 20 digits. Siblings' starts come from one node (their parent's
    // server's), so this orders a path as the calls started even when node clocks
    // disagree; a call's ancestors sort before it.
    let path_key = (1..=levels)
        .rev()
        .map(|k| format!("lpad(CAST(e{k}.child_start_ns AS VARCHAR), 20, '0')"))
        .collect::<Vec<_>>()
        .join(", ");
    let child_named = names("dd", "child_");
    format!(
        "WITH serving AS (SELECT DISTINCT server_ip AS ip FROM nx WHERE req_last_ns IS NOT NULL),
d AS (
  SELECT e1.child_client_ip, e1.child_client_port, e1.child_server_ip, e1.child_server_port,
    e1.child_index, e1.child_start_ns, e1.child_method, e1.child_route, e1.child_serving_ns,
    e1.child_duration_ns AS dur, 2 + {hops} AS depth, COALESCE({top}) AS top_client,
    e{levels}.child_index IS NOT NULL AS too_deep, {on_path} AS critical,
    concat({path_key}) AS path_key,
    {root_cols}
  FROM edges e1
  {joins}),
dd AS (
  SELECT d.*, CASE WHEN too_deep OR s.ip IS NOT NULL THEN NULL ELSE depth END AS known
  FROM d LEFT JOIN serving s ON s.ip = d.top_client),
edge_depths AS ({child_named}),
own_calls AS (
  SELECT client_ip, client_port, server_ip, server_port, \"index\", t,
    COALESCE(req_first_ns, req_last_ns) AS start_ns, client, server, method, route,
    CASE WHEN COALESCE(resp_last_ns, resp_first_ns) >= COALESCE(req_first_ns, req_last_ns)
      THEN COALESCE(resp_last_ns, resp_first_ns) - COALESCE(req_first_ns, req_last_ns) END AS dur,
    CASE WHEN resp_first_ns >= req_last_ns THEN resp_first_ns - req_last_ns END AS serving_ns
  FROM nx
  UNION ALL
  SELECT client_ip, client_port, server_ip, server_port, CAST(0 AS INT UNSIGNED),
    COALESCE(syn_ns, first_ns), COALESCE(syn_ns, first_ns), client, server,
    CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR),
    CASE WHEN last_ns >= COALESCE(syn_ns, first_ns) THEN last_ns - COALESCE(syn_ns, first_ns) END,
    CAST(NULL AS BIGINT)
  FROM nc WHERE {opaque}),
parentless AS (
  SELECT r.*, s.ip IS NULL AS is_root FROM own_calls r
  LEFT JOIN serving s ON s.ip = r.client_ip
  WHERE NOT EXISTS (SELECT 1 FROM edges e WHERE e.child_client_ip = r.client_ip
      AND e.child_client_port = r.client_port AND e.child_server_ip = r.server_ip
      AND e.child_server_port = r.server_port AND e.child_index = r.\"index\"
      AND abs(e.child_start_ns - r.t) <= {tol})),
placed AS (
  SELECT client, server, child_method AS method, child_route AS route, known, critical, dur,
    1 AS has_parent, child_client_ip AS c_ip, child_client_port AS c_port,
    child_server_ip AS s_ip, child_server_port AS s_port, child_index AS idx,
    child_start_ns AS start_ns, child_serving_ns AS serving_ns, path_key, root_client_ip,
    root_client_port, root_server_ip, root_server_port, root_index, root_start_ns,
    root_duration_ns AS root_ns
  FROM edge_depths
  UNION ALL
  SELECT client, server, method, route, CASE WHEN is_root THEN 1 END, is_root, dur, 0,
    client_ip, client_port, server_ip, server_port, \"index\", start_ns, serving_ns, '',
    client_ip AS r_cip, client_port AS r_cport, server_ip AS r_sip, server_port AS r_sport,
    \"index\" AS r_idx, start_ns AS r_start, dur AS r_dur
  FROM parentless),
parent_facts AS (
  SELECT parent_client_ip, parent_client_port, parent_server_ip, parent_server_port,
    parent_index, parent_start_ns, MAX(parent_own_ns) AS own_ns,
    MAX(parent_waiting_ns) AS waiting_ns
  FROM edges GROUP BY parent_client_ip, parent_client_port, parent_server_ip,
    parent_server_port, parent_index, parent_start_ns)
SELECT c.*,
  CASE WHEN f.parent_index IS NOT NULL THEN f.own_ns ELSE c.serving_ns END AS own_ns,
  CASE WHEN f.parent_index IS NOT NULL THEN f.waiting_ns
    WHEN c.serving_ns IS NOT NULL THEN 0 END AS waiting_ns
FROM placed c LEFT JOIN parent_facts f ON f.parent_client_ip = c.c_ip
  AND f.parent_client_port = c.c_port AND f.parent_server_ip = c.s_ip
  AND f.parent_server_port = c.s_port AND f.parent_index = c.idx
  AND abs(f.parent_start_ns - c.start_ns) <= {tol}",
        opaque = OPAQUE_CONNECTION,
    )
}

/// Tree depth per link, and whether it lies on its roots' critical paths, from the
/// staged `calls`.
async fn depths(ctx: &Statements<'_>, out: &mut FleetResult) -> anyhow::Result<()> {
    let query = format!(
        "WITH per_kind AS (
  SELECT k.kind, client, server,
    CASE WHEN k.kind = 'tree' THEN root_client_ip END AS rc_ip,
    CASE WHEN k.kind = 'tree' THEN root_client_port END AS rc_port,
    CASE WHEN k.kind = 'tree' THEN root_server_ip END AS rs_ip,
    CASE WHEN k.kind = 'tree' THEN root_server_port END AS rs_port,
    CASE WHEN k.kind = 'tree' THEN root_index END AS r_index,
    CASE WHEN k.kind = 'tree' THEN root_start_ns END AS r_start,
    CASE WHEN k.kind IN ('call', 'child') THEN {bucket} END AS bucket,
    known, critical, dur, root_ns
  FROM calls CROSS JOIN (VALUES ('depth'), ('tree'), ('call'), ('child')) AS k(kind)
  WHERE k.kind = 'depth'
    OR (k.kind = 'tree' AND known IS NOT NULL)
    OR (k.kind = 'call' AND known IS NOT NULL AND critical)
    OR (k.kind = 'child' AND known IS NOT NULL AND critical AND has_parent = 1)),
grouped AS (
  SELECT kind, client, server, bucket, COUNT(*) AS n, COUNT(known) AS n_known,
    SUM(known) AS total, MAX(known) AS deepest,
    SUM(CASE WHEN known IS NULL THEN 1 ELSE 0 END) AS unknown,
    MAX(CASE WHEN critical THEN 1 ELSE 0 END) AS critical,
    SUM(CASE WHEN critical THEN COALESCE(dur, 0) ELSE 0 END) AS critical_ns,
    MAX(root_ns) AS root_ns
  FROM per_kind
  GROUP BY kind, client, server, rc_ip, rc_port, rs_ip, rs_port, r_index, r_start, bucket)",
        bucket = bucket_sql("CAST(COALESCE(dur, 0) AS DOUBLE) / 1e6"),
    );
    // One pass over the calls, each once per kind of figure: per link the depths
    // (`depth`), per (root, link) whether the link is on the root's critical path and
    // the time its calls there took (`tree`, as `analyze` folds each tree: the root's
    // own link included), and per link the critical calls' durations as sketch buckets
    // (`call`; `child` for those with a parent).
    let stats = format!(
        "{query}
SELECT kind, client, server, bucket, COUNT(*) AS groups, SUM(n) AS n, SUM(n_known) AS n_known,
  SUM(total) AS total, MAX(deepest) AS deepest, SUM(unknown) AS unknown,
  SUM(critical) AS critical,
  CAST(SUM(CASE WHEN critical = 1 AND root_ns > 0 THEN LEAST(critical_ns, root_ns) END) AS DOUBLE)
    AS critical_ns,
  CAST(SUM(CASE WHEN critical = 1 AND root_ns > 0 THEN root_ns END) AS DOUBLE) AS latency_ns
FROM grouped GROUP BY kind, client, server, bucket"
    );
    for b in &sql(ctx, "tree depths and critical paths", &stats).await? {
        let (kind, c, s) = (
            strings(b, "kind")?,
            strings(b, "client")?,
            strings(b, "server")?,
        );
        let (bucket, n, n_known) = (ints(b, "bucket")?, ints(b, "n")?, ints(b, "n_known")?);
        let groups = ints(b, "groups")?;
        let (total, deepest, unknown) =
            (ints(b, "total")?, ints(b, "deepest")?, ints(b, "unknown")?);
        let critical = ints(b, "critical")?;
        let (critical_ns, latency_ns) = (floats(b, "critical_ns")?, floats(b, "latency_ns")?);
        for i in 0..b.num_rows() {
            let v = |x: &[Option<i64>]| x[i].unwrap_or(0).max(0) as u64;
            let ch = out.chains.entry(key(&c, &s, i)).or_default();
            match kind[i].as_deref() {
                Some("depth") => {
                    ch.depth_calls += v(&n_known);
                    ch.depth_sum += v(&total);
                    ch.depth_max = ch.depth_max.max(v(&deepest));
                    out.figures.depth_unknown += v(&unknown);
                }
                Some("tree") => {
                    // One grouped row per (root, link): the roots through the link.
                    ch.roots_through += v(&groups);
                    ch.roots_critical += v(&critical);
                    ch.critical_ns += critical_ns[i].unwrap_or(0.0);
                    ch.latency_ns += latency_ns[i].unwrap_or(0.0);
                }
                Some("call") => {
                    if let Some(k) = bucket[i] {
                        ch.critical_call_ms.add(k, v(&n));
                    }
                }
                Some("child") => {
                    if let Some(k) = bucket[i] {
                        ch.critical_child_ms.add(k, v(&n));
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// The columns of `calls` that name a call's root (its 5-tuple, position and start).
const ROOT_KEY: [&str; 6] = [
    "root_client_ip",
    "root_client_port",
    "root_server_ip",
    "root_server_port",
    "root_index",
    "root_start_ns",
];

/// A root route as one text key (client, server, method, route; a missing method or
/// route as \u{1d}), so that routes without one still join.
fn root_route_key(p: &str) -> String {
    format!(
        "{p}client || chr(31) || {p}server || chr(31) || COALESCE({p}method, chr(29)) \
         || chr(31) || COALESCE({p}route, chr(29))"
    )
}

/// The run's trees from the staged `calls`: counts, roots per tree depth, and per root
/// route its roots, latency and deepest tree (one statement); then the commonest critical
/// path of each root route, hop by hop (another). A root's critical path is its calls on
/// the path in start order, as `Forest::critical_path` lists them (`path_key`: parents
/// before children, siblings by start); paths are compared as the text of their hops
/// (depth, link, method, route), the smallest winning a tie.
async fn trees(ctx: &Statements<'_>) -> anyhow::Result<Trees> {
    use crate::analysis::chains::link_chain::{CriticalPath, Hop, RootRoute, MAX_PATHS_PER_ROUTE};
    let mut out = Trees::default();
    let counts = sql(
        ctx,
        "tree counts",
        "SELECT COUNT(*) AS calls, SUM(has_parent) AS with_parent,
  SUM(CASE WHEN has_parent = 0 AND known IS NOT NULL THEN 1 ELSE 0 END) AS roots,
  SUM(CASE WHEN has_parent = 0 AND known IS NULL THEN 1 ELSE 0 END) AS orphans
FROM calls",
    )
    .await?;
    for b in &counts {
        let v = |n: &str| -> anyhow::Result<u64> { Ok(ints(b, n)?[0].unwrap_or(0).max(0) as u64) };
        (out.calls, out.with_parent, out.roots, out.orphans) =
            (v("calls")?, v("with_parent")?, v("roots")?, v("orphans")?);
    }
    for b in &sql(
        ctx,
        "edge sources",
        "SELECT source, COUNT(*) AS n, SUM(CASE WHEN late THEN 1 ELSE 0 END) AS late
FROM edges GROUP BY source",
    )
    .await?
    {
        let (source, n, late) = (strings(b, "source")?, ints(b, "n")?, ints(b, "late")?);
        for i in 0..b.num_rows() {
            if let Some(s) = &source[i] {
                *out.by_source.entry(s.clone()).or_default() += n[i].unwrap_or(0).max(0) as u64;
            }
            out.late += late[i].unwrap_or(0).max(0) as u64;
        }
    }

    let roots = "rt AS (
  SELECT root_client_ip, root_client_port, root_server_ip, root_server_port, root_index,
    root_start_ns, client AS r_client, server AS r_server, method AS r_method,
    route AS r_route, dur AS r_dur
  FROM calls WHERE has_parent = 0 AND known IS NOT NULL)";
    let same_root = |a: &str, b: &str| ROOT_KEY.map(|k| format!("{a}.{k} = {b}.{k}")).join(" AND ");
    let root_cols = |p: &str| ROOT_KEY.map(|k| format!("{p}.{k}")).join(", ");
    let per_route = format!(
        "WITH {roots},
per_root AS (
  SELECT rt.r_client, rt.r_server, rt.r_method, rt.r_route, MAX(rt.r_dur) AS r_dur,
    MAX(c.known) AS depth
  FROM calls c JOIN rt ON {on}
  WHERE c.known IS NOT NULL
  GROUP BY {keys}, rt.r_client, rt.r_server, rt.r_method, rt.r_route)
SELECT r_client, r_server, r_method, r_route, {rk} AS rk, depth, COUNT(*) AS roots,
  CAST(SUM(r_dur) AS DOUBLE) AS latency_ns, COUNT(r_dur) AS latency_n
FROM per_root GROUP BY r_client, r_server, r_method, r_route, depth",
        on = same_root("c", "rt"),
        keys = root_cols("rt"),
        rk = root_route_key("r_"),
    );
    let mut routes: BTreeMap<String, (RootRoute, f64, u64)> = BTreeMap::new();
    for b in &sql(ctx, "root routes", &per_route).await? {
        let (c, s) = (strings(b, "r_client")?, strings(b, "r_server")?);
        let (m, r, rk) = (
            strings(b, "r_method")?,
            strings(b, "r_route")?,
            strings(b, "rk")?,
        );
        let (depth, n) = (ints(b, "depth")?, ints(b, "roots")?);
        let (lat, lat_n) = (floats(b, "latency_ns")?, ints(b, "latency_n")?);
        for i in 0..b.num_rows() {
            let d = u32::try_from(depth[i].unwrap_or(0).max(0)).unwrap_or(u32::MAX);
            let roots = n[i].unwrap_or(0).max(0) as u64;
            *out.depths.entry(d).or_default() += roots;
            let e = routes
                .entry(rk[i].clone().unwrap_or_default())
                .or_insert_with(|| {
                    (
                        RootRoute {
                            client: c[i].clone().unwrap_or_default(),
                            server: s[i].clone().unwrap_or_default(),
                            method: m[i].clone(),
                            route: r[i].clone(),
                            roots: 0,
                            mean_latency_ms: None,
                            max_depth: 0,
                            critical_paths: 0,
                            critical_path: None,
                        },
                        0.0,
                        0,
                    )
                });
            e.0.roots += roots;
            e.0.max_depth = e.0.max_depth.max(d);
            e.1 += lat[i].unwrap_or(0.0);
            e.2 += lat_n[i].unwrap_or(0).max(0) as u64;
        }
    }

    let hop = "CAST(depth AS VARCHAR) || chr(31) || client || chr(31) || server || chr(31) \
               || COALESCE(method, chr(29)) || chr(31) || COALESCE(route, chr(29))";
    let paths = format!(
        "WITH {roots},
path AS (
  SELECT c.known AS depth, c.client, c.server, c.method, c.route, c.dur, c.own_ns,
    c.waiting_ns, {keys}, {rk} AS rk,
    ROW_NUMBER() OVER (PARTITION BY {keys}
      ORDER BY c.path_key, c.c_ip, c.c_port, c.idx) AS pos
  FROM calls c JOIN rt ON {on}
  WHERE c.critical AND c.known IS NOT NULL),
sigs AS (
  SELECT {plain_keys}, MAX(rk) AS rk, string_agg({hop}, chr(30) ORDER BY pos) AS sig
  FROM path GROUP BY {plain_keys}),
sig_roots AS (SELECT rk, sig, COUNT(*) AS roots FROM sigs GROUP BY rk, sig),
ranked AS (
  SELECT rk, sig, roots, ROW_NUMBER() OVER (PARTITION BY rk ORDER BY roots DESC, sig) AS rank,
    COUNT(*) OVER (PARTITION BY rk) AS paths
  FROM sig_roots),
top AS (
  SELECT s.*, k.roots AS path_roots, k.paths FROM ranked k
  JOIN sigs s ON s.rk = k.rk AND s.sig = k.sig WHERE k.rank = 1)
SELECT t.rk, MAX(t.path_roots) AS path_roots, MAX(t.paths) AS paths, p.pos, p.depth,
  p.client, p.server, p.method, p.route,
  CAST(SUM(p.dur) AS DOUBLE) AS dur_ns, COUNT(p.dur) AS dur_n,
  CAST(SUM(CASE WHEN p.waiting_ns IS NOT NULL THEN p.own_ns END) AS DOUBLE) AS own_ns,
  CAST(SUM(CASE WHEN p.own_ns IS NOT NULL THEN p.waiting_ns END) AS DOUBLE) AS waiting_ns,
  COUNT(CASE WHEN p.own_ns IS NOT NULL AND p.waiting_ns IS NOT NULL THEN 1 END) AS own_n
FROM top t JOIN path p ON {same_path}
GROUP BY t.rk, p.pos, p.depth, p.client, p.server, p.method, p.route",
        keys = root_cols("rt"),
        plain_keys = ROOT_KEY.join(", "),
        on = same_root("c", "rt"),
        same_path = same_root("p", "t"),
        rk = root_route_key("rt.r_"),
    );
    // Per root route: its path's roots, the distinct paths, and the hops by position.
    let mut hops: BTreeMap<String, (u64, u64, BTreeMap<i64, Hop>)> = BTreeMap::new();
    for b in &sql(ctx, "critical paths", &paths).await? {
        let rk = strings(b, "rk")?;
        let (path_roots, n_paths, pos) =
            (ints(b, "path_roots")?, ints(b, "paths")?, ints(b, "pos")?);
        let depth = ints(b, "depth")?;
        let (c, s) = (strings(b, "client")?, strings(b, "server")?);
        let (m, r) = (strings(b, "method")?, strings(b, "route")?);
        let (dur, dur_n) = (floats(b, "dur_ns")?, ints(b, "dur_n")?);
        let (own, wait, own_n) = (
            floats(b, "own_ns")?,
            floats(b, "waiting_ns")?,
            ints(b, "own_n")?,
        );
        for i in 0..b.num_rows() {
            let e = hops.entry(rk[i].clone().unwrap_or_default()).or_default();
            e.0 = path_roots[i].unwrap_or(0).max(0) as u64;
            e.1 = n_paths[i].unwrap_or(0).max(0) as u64;
            let mean = |sum: Option<f64>, n: Option<i64>| {
                n.filter(|n| *n > 0)
                    .map(|n| sum.unwrap_or(0.0) / n as f64 / 1e6)
            };
            e.2.insert(
                pos[i].unwrap_or(0),
                Hop {
                    depth: u32::try_from(depth[i].unwrap_or(0).max(0)).unwrap_or(u32::MAX),
                    client: c[i].clone().unwrap_or_default(),
                    server: s[i].clone().unwrap_or_default(),
                    method: m[i].clone(),
                    route: r[i].clone(),
                    mean_ms: mean(dur[i], dur_n[i]),
                    own_ms: mean(own[i], own_n[i]),
                    waiting_ms: mean(wait[i], own_n[i]),
                },
            );
        }
    }
    for (rk, (mut route, lat, lat_n)) in routes {
        route.mean_latency_ms = (lat_n > 0).then(|| lat / lat_n as f64 / 1e6);
        if let Some((path_roots, n_paths, by_pos)) = hops.remove(&rk) {
            // `analyze` stops counting distinct paths at its bound.
            route.critical_paths = n_paths.min(MAX_PATHS_PER_ROUTE as u64);
            route.critical_path = Some(CriticalPath {
                roots: path_roots,
                hops: by_pos.into_values().collect(),
            });
        }
        out.routes.push(route);
    }
    out.routes.sort_by(|a, b| {
        b.roots
            .cmp(&a.roots)
            .then_with(|| a.route.cmp(&b.route))
            .then_with(|| a.method.cmp(&b.method))
    });
    Ok(out)
}

fn key(c: &[Option<String>], s: &[Option<String>], i: usize) -> (String, String) {
    (
        c[i].clone().unwrap_or_default(),
        s[i].clone().unwrap_or_default(),
    )
}

/// The session the statements run on, and the time each took.
struct Statements<'a> {
    ctx: &'a SessionContext,
    timings: std::sync::Mutex<Vec<StatementTime>>,
}

/// One statement's wall time (`fleet.json` `figures.statements`).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct StatementTime {
    pub name: String,
    pub ms: f64,
}

async fn sql(ctx: &Statements<'_>, name: &str, query: &str) -> anyhow::Result<Vec<RecordBatch>> {
    let started = std::time::Instant::now();
    let batches = run_sql(ctx.ctx, query).await?;
    if let Ok(mut t) = ctx.timings.lock() {
        t.push(StatementTime {
            name: name.to_owned(),
            ms: started.elapsed().as_secs_f64() * 1e3,
        });
    }
    Ok(batches)
}

async fn run_sql(ctx: &SessionContext, query: &str) -> anyhow::Result<Vec<RecordBatch>> {
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
