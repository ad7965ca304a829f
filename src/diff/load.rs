//! One side of a diff: a report folder written by `linkrank analyze`, or captures and
//! trace files analysed on the fly into a scratch folder.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::Context;
use polars::prelude::{DataFrame, ParquetReader, PolarsResult, SerReader};
use serde_json::Value;

use crate::app::{AnalyzeConfig, RunError};
use crate::tables::columns;

/// A link as one side's `links.json` describes it, plus its per-exchange latencies.
#[derive(Clone, Debug, Default)]
pub struct SideLink {
    pub client: String,
    pub server: String,
    pub protocol: Option<String>,
    pub async_share: Option<f64>,
    pub requests: Option<u64>,
    pub tcp_handshakes: Option<u64>,
    pub status_5xx: Option<u64>,
    /// p50, p95, p99 of request last byte -> response first byte, ms (links.json).
    pub latency_ms: [Option<f64>; 3],
    /// Request and response header and body bytes per request; `None` when a part is
    /// unknown (HTTP not visible, or a link seen only in traces).
    pub bytes_per_request: Option<f64>,
    /// Request and response header bytes per request, and body bytes per request.
    pub header_bytes_per_request: Option<f64>,
    pub body_bytes_per_request: Option<f64>,
    /// What the analysis projected for the link on gRPC (links.json `savings`): header
    /// bytes per request (HPACK plus gRPC framing) and protobuf body bytes per request.
    pub projected_grpc_header_bytes: Option<f64>,
    pub projected_protobuf_body_bytes: Option<f64>,
    /// The same latency per exchange, ms, from exchanges.parquet.
    pub latencies: Vec<f64>,
}

/// One side: where it came from and its links, in links.json's (rank) order.
#[derive(Debug)]
pub struct Side {
    /// The path as given on the command line.
    pub source: PathBuf,
    /// True when the input was a capture or trace file analysed on the fly.
    pub analysed: bool,
    pub links: Vec<SideLink>,
}

/// Does `path` hold a report written by `linkrank analyze`?
pub fn is_report_folder(path: &Path) -> bool {
    path.is_dir() && path.join("links.json").is_file()
}

/// A scratch folder that removes itself.
pub struct Scratch(pub PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Reads a report folder, or analyses `path` (a capture or trace file) with
/// `linkrank analyze`'s defaults into a scratch folder first. Input problems are
/// `Err(Input)`, as for `analyze`.
pub fn load(path: &Path, label: &str) -> Result<Side, RunError> {
    if is_report_folder(path) {
        return read_folder(path, path).map_err(RunError::Input);
    }
    if path.is_dir() {
        return Err(RunError::Input(anyhow::anyhow!(
            "{}: a folder without links.json (not a `linkrank analyze` report)",
            path.display()
        )));
    }
    if !path.is_file() {
        return Err(RunError::Input(anyhow::anyhow!(
            "{}: no such file or folder",
            path.display()
        )));
    }
    let scratch =
        Scratch(std::env::temp_dir().join(format!("linkrank-diff-{}-{label}", std::process::id())));
    // `linkrank analyze FILE`'s own defaults (and a services file beside the capture), so
    // a capture diffed on the fly is measured exactly as a report of it would be.
    let mut config = AnalyzeConfig::for_inputs(vec![path.to_path_buf()]);
    config.out = scratch.0.clone();
    config.quiet = true;
    config.reproducible = true;
    crate::app::analyze(&config)?;
    let mut side = read_folder(&scratch.0, path).map_err(RunError::Output)?;
    side.analysed = true;
    Ok(side)
}

/// links.json and exchanges.parquet of a report folder.
pub fn read_folder(dir: &Path, source: &Path) -> anyhow::Result<Side> {
    let links_path = dir.join("links.json");
    let text = std::fs::read_to_string(&links_path)
        .with_context(|| format!("{}: cannot read", links_path.display()))?;
    let doc: Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not JSON", links_path.display()))?;
    let schema = doc.get("schema").and_then(Value::as_str).unwrap_or("");
    if schema != crate::report::links_json::SCHEMA {
        anyhow::bail!(
            "{}: schema {schema:?}, expected {}",
            links_path.display(),
            crate::report::links_json::SCHEMA
        );
    }
    let empty = Vec::new();
    let json_links = doc.get("links").and_then(Value::as_array).unwrap_or(&empty);
    let mut links: Vec<SideLink> = json_links.iter().map(side_link).collect();
    // (client IP, server ip:port) -> link, as links.json lists them.
    let mut owner: HashMap<(String, String), usize> = HashMap::new();
    for (i, l) in json_links.iter().enumerate() {
        for c in strings(l.get("client_addresses")) {
            for s in strings(l.get("server_endpoints")) {
                owner.insert((c.to_owned(), s.to_owned()), i);
            }
        }
    }
    let ex_path = dir.join("exchanges.parquet");
    let file =
        File::open(&ex_path).with_context(|| format!("{}: cannot open", ex_path.display()))?;
    let df = ParquetReader::new(file)
        .finish()
        .with_context(|| format!("{}: not a Parquet table", ex_path.display()))?;
    add_latencies(&df, &owner, &mut links)
        .with_context(|| format!("{}: reading the latencies", ex_path.display()))?;
    Ok(Side {
        source: source.to_path_buf(),
        analysed: false,
        links,
    })
}

/// Every exchange's latency (response first byte - request last byte) goes to the link
/// its endpoints belong to; exchanges without both times are left out, as in links.json.
fn add_latencies(
    df: &DataFrame,
    owner: &HashMap<(String, String), usize>,
    links: &mut [SideLink],
) -> PolarsResult<()> {
    let cip = df.column(columns::CLIENT_IP)?.str()?;
    let sip = df.column(columns::SERVER_IP)?.str()?;
    let sport = df.column(columns::SERVER_PORT)?.u32()?;
    let req_last = df.column(columns::REQ_LAST_NS)?.i64()?;
    let resp_first = df.column(columns::RESP_FIRST_NS)?.i64()?;
    let mut endpoints: HashMap<(&str, u32), String> = HashMap::new();
    for ((((c, s), p), rl), rf) in cip
        .iter()
        .zip(sip.iter())
        .zip(sport.iter())
        .zip(req_last.iter())
        .zip(resp_first.iter())
    {
        let (Some(rl), Some(rf)) = (rl, rf) else {
            continue;
        };
        let (c, s, p) = (c.unwrap_or(""), s.unwrap_or(""), p.unwrap_or(0));
        // The same spelling as links.json's server_endpoints (src/analysis/links/frame.rs).
        let endpoint = endpoints
            .entry((s, p))
            .or_insert_with(|| match (s.parse::<std::net::IpAddr>(), u16::try_from(p)) {
                (Ok(ip), Ok(port)) => std::net::SocketAddr::new(ip, port).to_string(),
                _ => format!("{s}:{p}"),
            })
            .clone();
        if let Some(link) = owner
            .get(&(c.to_owned(), endpoint))
            .and_then(|&i| links.get_mut(i))
        {
            link.latencies.push(rf.saturating_sub(rl) as f64 / 1e6);
        }
    }
    Ok(())
}

fn side_link(l: &Value) -> SideLink {
    let u = |k: &str| l.get(k).and_then(Value::as_u64);
    let f = |v: Option<&Value>| v.and_then(Value::as_f64);
    let s = |k: &str| l.get(k).and_then(Value::as_str).map(str::to_owned);
    let lat = l.get("latency_ms");
    let pct = |k: &str| f(lat.and_then(|v| v.get(k)));
    let bpr = l.get("bytes_per_request");
    let parts: Option<Vec<f64>> = [
        "request_headers",
        "request_bodies",
        "response_headers",
        "response_bodies",
    ]
    .iter()
    .map(|k| f(bpr.and_then(|v| v.get(*k))))
    .collect();
    let pair = |a: usize, b: usize| parts.as_ref().map(|p| p[a] + p[b]);
    let savings = l.get("savings");
    let projected =
        |group: &str, k: &str| f(savings.and_then(|v| v.get(group)).and_then(|v| v.get(k)));
    SideLink {
        header_bytes_per_request: pair(0, 2),
        body_bytes_per_request: pair(1, 3),
        projected_grpc_header_bytes: projected("header_bytes_per_request", "grpc"),
        projected_protobuf_body_bytes: projected("body_bytes_per_request", "protobuf"),
        client: s("client").unwrap_or_default(),
        server: s("server").unwrap_or_default(),
        protocol: s(columns::PROTOCOL),
        async_share: f(l.get("async_share")),
        requests: u("requests"),
        tcp_handshakes: u("tcp_handshakes"),
        status_5xx: l
            .get("status")
            .and_then(|v| v.get("5xx"))
            .and_then(Value::as_u64),
        latency_ms: [pct("p50"), pct("p95"), pct("p99")],
        bytes_per_request: parts.as_ref().map(|p| p.iter().sum()),
        latencies: Vec::new(),
    }
}

fn strings(v: Option<&Value>) -> impl Iterator<Item = &str> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}
