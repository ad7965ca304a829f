//! `analyze --fleet-out` per node and `linkrank fleet` over the slices (feature `fleet`):
//! a real capture split into the slices each service host's own capture would hold
//! (tshark, `ip.addr == HOST`), analysed node by node, folded by DataFusion (embedded,
//! and on a Ballista scheduler with two executors started as processes), must give what
//! `analyze` gives over the whole capture: per-link counts and bytes exact, the call
//! edges' per-link figures equal, latency quantiles within the sketch's 1%.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use polars::prelude::*;
use serde_json::Value;

use crate::common::repo;

/// A capture and its service hosts: one node each.
struct Scenario {
    capture: &'static str,
    nodes: &'static [(&'static str, &'static str)],
    /// Given to every `analyze` (the whole capture's and each node's).
    args: &'static [&'static str],
}

/// The concurrent call-chain fixture: client 10.81.0.2 calls service a, which calls b, c
/// and d (fixtures/chains/README.md): chains, fan-out, N+1 groups, critical paths.
const CHAINS: Scenario = Scenario {
    capture: "fixtures/chains/concurrent.pcap",
    nodes: &[
        ("a", "10.81.0.11"),
        ("b", "10.81.0.12"),
        ("c", "10.81.0.13"),
        ("d", "10.81.0.14"),
    ],
    args: &[],
};
const CAPTURE: &str = CHAINS.capture;

/// The demo shop (captures/README.md): seven services, TLS to fraud without keys (TLS
/// estimates), payments failing every 17th and 23rd charge (periodic failures), new and
/// pooled connections, retries.
const DEMO: Scenario = Scenario {
    capture: "captures/prod.pcap",
    nodes: &[
        ("gateway", "10.77.0.10"),
        ("orders", "10.77.0.11"),
        ("inventory", "10.77.0.12"),
        ("payments", "10.77.0.13"),
        ("users", "10.77.0.14"),
        ("notifications", "10.77.0.15"),
        ("fraud", "10.77.0.16"),
    ],
    args: &["--services", "captures/prod.services.yaml"],
};
/// TLS 1.2 to a Python server, no keys given (fixtures/tls/README.md): every call is an
/// opaque connection without a parent, so no node infers a call edge, and each call is a
/// root of depth 1.
const TLS_NO_KEYS: Scenario = Scenario {
    capture: "fixtures/tls/tls12.pcap",
    nodes: &[("host", "127.0.0.1")],
    args: &[],
};
/// The sketch's relative accuracy (src/fleet/sketch.rs).
const ALPHA: f64 = 0.01;

/// The binary under test; `LINKRANK_FLEET_BIN` points the scale figures at a release
/// build.
fn linkrank_bin() -> PathBuf {
    std::env::var_os("LINKRANK_FLEET_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| assert_cmd::cargo::cargo_bin("linkrank"))
}

fn linkrank() -> Command {
    Command::new(linkrank_bin())
}

/// The whole capture analysed, and each node's slice analysed into its own fleet folder.
struct Fleet {
    dir: tempfile::TempDir,
    whole: PathBuf,
    slices: Vec<PathBuf>,
    nodes: &'static [(&'static str, &'static str)],
}

impl Fleet {
    fn run(&self, inputs: &[PathBuf], out: &Path, engine: &str) -> (Value, Value) {
        run_fleet(inputs, out, engine, self.nodes)
    }

    fn slice_dirs(&self, skip: Option<&str>) -> Vec<PathBuf> {
        self.nodes
            .iter()
            .zip(&self.slices)
            .filter(|((n, _), _)| Some(*n) != skip)
            .map(|(_, p)| p.clone())
            .collect()
    }
}

fn build_fleet() -> Fleet {
    build_fleet_with_clocks(&CHAINS, &[0.0; 4])
}

/// As [`build_fleet`], each node's capture clock moved by `offsets` seconds (editcap -t),
/// as unsynchronised nodes would stamp their packets.
fn build_fleet_with_clocks(scenario: &Scenario, offsets: &[f64]) -> Fleet {
    let dir = tempfile::tempdir().unwrap();
    let capture = repo(scenario.capture);
    let whole = dir.path().join("whole");
    linkrank()
        .current_dir(repo("."))
        .arg("analyze")
        .arg(&capture)
        .arg("--out")
        .arg(&whole)
        .args(["--quiet", "--reproducible"])
        .args(scenario.args)
        .assert()
        .success();
    let mut slices = Vec::new();
    let offsets = offsets.iter().chain(std::iter::repeat(&0.0));
    for ((node, ip), offset) in scenario.nodes.iter().zip(offsets) {
        let pcap = dir.path().join(format!("{node}.pcap"));
        let out = Process::new("tshark")
            .arg("-r")
            .arg(&capture)
            .args(["-Y", &format!("ip.addr == {ip}"), "-F", "pcap", "-w"])
            .arg(&pcap)
            .output()
            .expect("tshark runs");
        assert!(
            out.status.success(),
            "tshark: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if *offset != 0.0 {
            let moved = dir.path().join(format!("{node}-moved.pcap"));
            let out = Process::new("editcap")
                .args(["-t", &offset.to_string()])
                .arg(&pcap)
                .arg(&moved)
                .output()
                .expect("editcap runs");
            assert!(out.status.success(), "editcap: {out:?}");
            std::fs::rename(&moved, &pcap).unwrap();
        }
        let fleet_dir = dir.path().join(format!("fleet-{node}"));
        linkrank()
            .current_dir(repo("."))
            .arg("analyze")
            .arg(&pcap)
            .arg("--out")
            .arg(dir.path().join(format!("report-{node}")))
            .arg("--fleet-out")
            .arg(&fleet_dir)
            .args(["--node", node, "--quiet", "--reproducible"])
            .args(scenario.args)
            .assert()
            .success();
        slices.push(fleet_dir);
    }
    Fleet {
        dir,
        whole,
        slices,
        nodes: scenario.nodes,
    }
}

fn run_fleet(
    inputs: &[PathBuf],
    out: &Path,
    engine: &str,
    nodes: &[(&str, &str)],
) -> (Value, Value) {
    let mut cmd = linkrank();
    // The staged views go to a folder of the test's, which must be left empty.
    let stage = out.with_extension("stage");
    std::fs::create_dir_all(&stage).unwrap();
    cmd.arg("fleet").args(inputs).arg("--out").arg(out);
    cmd.arg("--stage").arg(&stage);
    cmd.args(["--engine", engine, "--quiet"]);
    if engine.starts_with("df://") {
        // Ballista's default of 16 tasks per stage is for big data; the fixtures are
        // small (the scale figures may set more).
        let partitions =
            std::env::var("LINKRANK_FLEET_PARTITIONS").unwrap_or_else(|_| "4".to_owned());
        cmd.args(["--partitions", &partitions]);
    }
    for (n, _) in nodes {
        cmd.args(["--expect-node", n]);
    }
    // Bounded: the fixtures' folds take seconds, embedded and on Ballista (whose dev
    // build runs the query engine unoptimised); a stalled job must fail, not hang the
    // suite. The scale figures may allow more.
    let default_bound = 300;
    let bound = std::env::var("LINKRANK_FLEET_TIMEOUT_S")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_bound);
    cmd.timeout(Duration::from_secs(bound)).assert().success();
    let left: Vec<_> = std::fs::read_dir(&stage).unwrap().collect();
    assert!(left.is_empty(), "staged views left behind: {left:?}");
    (
        read_json(&out.join("links.json")),
        read_json(&out.join("fleet.json")),
    )
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The links of a links.json by (client, server).
fn links(doc: &Value) -> BTreeMap<(String, String), Value> {
    doc["links"]
        .as_array()
        .expect("links array")
        .iter()
        .map(|l| {
            let key = (
                l["client"].as_str().unwrap().to_owned(),
                l["server"].as_str().unwrap().to_owned(),
            );
            (key, l.clone())
        })
        .collect()
}

/// Each link's raw latencies (ms), from the whole run's exchanges table, by the
/// addresses links.json lists behind its names.
fn latencies(whole: &Path, link: &Value, from: &str, to: &str) -> Vec<f64> {
    let file = std::fs::File::open(whole.join("exchanges.parquet")).unwrap();
    let df = ParquetReader::new(file).finish().unwrap();
    let clients: Vec<String> = link["client_addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let servers: Vec<String> = link["server_endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let cip = df.column("client_ip").unwrap().str().unwrap().clone();
    let sip = df.column("server_ip").unwrap().str().unwrap().clone();
    let sport = df.column("server_port").unwrap().u32().unwrap().clone();
    let a = df.column(from).unwrap().i64().unwrap().clone();
    let b = df.column(to).unwrap().i64().unwrap().clone();
    let mut v: Vec<f64> = (0..df.height())
        .filter(|&i| {
            clients.contains(&cip.get(i).unwrap().to_owned())
                && servers.contains(&format!(
                    "{}:{}",
                    sip.get(i).unwrap(),
                    sport.get(i).unwrap()
                ))
        })
        .filter_map(|i| Some((a.get(i)? - b.get(i)?) as f64 / 1e6))
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Fleet links equal the whole capture's: counts, bytes, statuses and connections exact;
/// the quantiles within the sketch's accuracy of the value of their rank (and bracketing
/// analyze's interpolated value); the chain figures equal.
fn assert_same_links(fleet: &Value, whole_doc: &Value, whole: &Path) {
    assert_same_links_but(fleet, whole_doc, whole, &[]);
}

/// The run-level call trees: counts and tree depths exact; the busiest root routes with
/// their roots, deepest tree and distinct critical paths exact, their latency and each
/// hop of the commonest critical path (mean, own and waiting time) within 1e-9. Of the
/// inference, what the edges carry (how each parent was found); the rest stays with the
/// nodes.
fn assert_same_trees(fleet: &Value, whole_doc: &Value) {
    let (f, w) = (&fleet["chains"], &whole_doc["chains"]);
    for k in ["calls", "roots", "orphans", "tree_depths"] {
        assert_eq!(f[k], w[k], "chains.{k}");
    }
    for k in [
        "calls",
        "with_parent",
        "by_timing",
        "by_traceparent",
        "by_span",
        "late",
    ] {
        assert_eq!(f["inference"][k], w["inference"][k], "chains.inference.{k}");
    }
    let (fr, wr) = (
        f["top_root_routes"].as_array().unwrap(),
        w["top_root_routes"].as_array().unwrap(),
    );
    assert!(!wr.is_empty(), "no root route to compare");
    assert_eq!(fr.len(), wr.len(), "top_root_routes");
    for (a, b) in fr.iter().zip(wr) {
        let at = format!("root route {} {}", b["method"], b["route"]);
        for k in [
            "client",
            "server",
            "method",
            "route",
            "roots",
            "max_depth",
            "critical_paths",
        ] {
            assert_eq!(a[k], b[k], "{at}: {k}");
        }
        assert_close(&a["mean_latency_ms"], &b["mean_latency_ms"], &at);
        let (pa, pb) = (&a["critical_path"], &b["critical_path"]);
        assert_eq!(pa["roots"], pb["roots"], "{at}: critical_path.roots");
        let (ha, hb) = (
            pa["hops"].as_array().unwrap(),
            pb["hops"].as_array().unwrap(),
        );
        assert_eq!(ha.len(), hb.len(), "{at}: hops");
        for (x, y) in ha.iter().zip(hb) {
            for k in ["depth", "client", "server", "method", "route"] {
                assert_eq!(x[k], y[k], "{at}: hop {k}");
            }
            for k in ["mean_ms", "own_ms", "waiting_ms"] {
                assert_close(&x[k], &y[k], &format!("{at}: hop {k}"));
            }
        }
    }
}

/// [`assert_same_links`] without the fields named in `skip`.
fn assert_same_links_but(fleet: &Value, whole_doc: &Value, whole: &Path, skip: &[&str]) {
    assert_same_trees(fleet, whole_doc);
    let (f, w) = (links(fleet), links(whole_doc));
    assert_eq!(
        f.keys().collect::<Vec<_>>(),
        w.keys().collect::<Vec<_>>(),
        "the same links"
    );
    assert!(!w.is_empty(), "no link to compare");
    for (key, wl) in &w {
        let fl = &f[key];
        for field in [
            "requests",
            "connections",
            "tcp_handshakes",
            "resets",
            "retransmitted_bytes",
            "protocol",
            "incomplete",
            "status",
            "bytes",
            "requests_per_s",
            "new_connection_share",
            // The figures each node derives per exchange and the fleet sums.
            "json_share",
            "json_body_bytes",
            "json_identity_body_bytes",
            "request_content_types",
            "response_content_types",
            "http_versions",
            "header_replay",
            "retries",
            "forwarded_requests",
            "stalled_requests",
            "slow_start_restarts",
            // Who is behind the names.
            "client_source",
            "server_source",
            "server_endpoints",
            "client_addresses",
            // Connection figures.
            "tls_handshakes",
            "tls_versions",
            "tls_server_names",
            "requests_per_connection",
            "zero_window_events",
            "retransmission_timeouts",
            "quality",
        ] {
            if skip.contains(&field) {
                continue;
            }
            assert_eq!(fl[field], wl[field], "{key:?} {field}");
        }
        // Stalls: counted exactly; their quantiles from the sketch, within its 1% of the
        // value of the rank, where analyze interpolates between it and the next: with
        // a few dozen stalls per link those two can be 5% apart.
        for field in ["request_stalls", "response_stalls"] {
            assert_eq!(
                fl[field]["stalled"], wl[field]["stalled"],
                "{key:?} {field}.stalled"
            );
            for q in ["p50_ms", "p95_ms"] {
                match (fl[field][q].as_f64(), wl[field][q].as_f64()) {
                    (Some(a), Some(b)) => assert!(
                        (a - b).abs() <= 0.10 * b.abs() + 1e-6,
                        "{key:?} {field}.{q}: fleet {a}, analyze {b}"
                    ),
                    (a, b) => assert_eq!(a, b, "{key:?} {field}.{q}"),
                }
            }
        }
        for field in ["mean", "max", "single_request_connections"] {
            assert_eq!(
                fl["requests_per_connection_dist"][field],
                wl["requests_per_connection_dist"][field],
                "{key:?} requests_per_connection_dist.{field}"
            );
        }
        // Measured where analyze measured it (a sketch's value, not analyze's
        // interpolation).
        for q in ["p50", "p95"] {
            assert_eq!(
                fl["handshake_rtt_ms"][q].is_null(),
                wl["handshake_rtt_ms"][q].is_null(),
                "{key:?} handshake_rtt_ms.{q}"
            );
        }
        // The serialization savings are projected from the same payload samples (where
        // no node sampled up to its cap).
        for field in ["sampled_bodies", "protobuf_ratio"] {
            if !skip.contains(&field) {
                assert_eq!(
                    fl["savings"][field], wl["savings"][field],
                    "{key:?} savings.{field}"
                );
            }
        }
        // Routes: the same routes, each with the same counts and bytes.
        let routes = |l: &Value| -> Vec<(Value, Value, Value, Value, Value)> {
            l["routes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r["method"].clone(),
                        r["route"].clone(),
                        r["requests"].clone(),
                        r["status"].clone(),
                        r["bytes"].clone(),
                    )
                })
                .collect()
        };
        assert_eq!(routes(fl), routes(wl), "{key:?} routes");
        assert_eq!(fl["routes_not_listed"], wl["routes_not_listed"], "{key:?}");
        // (A link without visible HTTP, TLS without keys, has no request latency.)
        let timed: &[(&str, &str, &str)] = if wl["requests"].is_null() {
            &[]
        } else {
            &[
                ("latency_ms", "resp_first_ns", "req_last_ns"),
                ("latency_total_ms", "resp_last_ns", "req_first_ns"),
            ]
        };
        for &(measure, from, to) in timed {
            let raw = latencies(whole, wl, from, to);
            assert_eq!(
                raw.len() as u64,
                wl["requests"].as_u64().unwrap(),
                "{key:?}"
            );
            for q in ["p50", "p95", "p99"] {
                let qv = match q {
                    "p50" => 0.50,
                    "p95" => 0.95,
                    _ => 0.99,
                };
                let rank = (qv * (raw.len() - 1) as f64).floor() as usize;
                let exact = raw[rank];
                let got = fl[measure][q].as_f64().unwrap();
                assert!(
                    (got - exact).abs() <= ALPHA * exact.abs() + 1e-9,
                    "{key:?} {measure} {q}: fleet {got}, value of rank {rank} {exact}"
                );
                let next = raw[(rank + 1).min(raw.len() - 1)];
                let analyzed = wl[measure][q].as_f64().unwrap();
                assert!(
                    analyzed >= exact - 1e-9 && analyzed <= next + 1e-9,
                    "{key:?} {measure} {q}: analyze {analyzed} outside [{exact}, {next}]"
                );
            }
        }
        // Depths come from trees assembled across the nodes' edges.
        for field in [
            "calls_per_parent",
            "confirmed_by_ids_share",
            "max_depth",
            "mean_depth",
            "parallel_share",
            "fire_and_forget_share",
            "same_payload_fanout_share",
        ] {
            assert_eq!(
                fl["chain"][field], wl["chain"][field],
                "{key:?} chain.{field}"
            );
        }
        // N+1 groups, and critical paths followed up to their roots across nodes.
        assert_eq!(
            fl["chain"]["n_plus_one"], wl["chain"]["n_plus_one"],
            "{key:?} chain.n_plus_one"
        );
        assert_eq!(
            fl["chain"]["critical_path_share"]["roots"],
            wl["chain"]["critical_path_share"]["roots"],
            "{key:?} chain.critical_path_share.roots"
        );
        assert_close(
            &fl["chain"]["critical_path_share"]["latency"],
            &wl["chain"]["critical_path_share"]["latency"],
            &format!("{key:?} chain.critical_path_share.latency"),
        );
        // From the sketch of the critical calls' durations: within its accuracy. The saving
        // per call they spread over the critical calls comes from the link's savings,
        // which take the handshake RTT's p50 from a sketch too: compared per unit of it.
        let what_if = |l: &Value, path: &[&str]| {
            path.iter()
                .fold(&l["chain"]["what_if"], |v, k| &v[*k])
                .as_f64()
        };
        let saved = |l: &Value| l["savings"]["latency_ms_per_s_saved"].as_f64();
        // (Each depends on the capture's span, which nodes whose clocks disagree
        // stretch.)
        let mut checks: Vec<(&[&str], bool)> = Vec::new();
        if !skip.contains(&"requests_per_s") {
            checks.push((&["root_latency_ms_per_root_saved"], true));
            checks.push((&["root_latency_ms_per_s_saved"], true));
            checks.push((&["if_async", "root_latency_ms_per_s_saved"], false));
        }
        for (path, per_saving) in checks {
            let unit = |l: &Value| {
                let v = what_if(l, path)?;
                if per_saving {
                    saved(l).filter(|s| *s > 0.0).map(|s| v / s)
                } else {
                    Some(v)
                }
            };
            match (unit(fl), unit(wl)) {
                (Some(a), Some(b)) => assert!(
                    (a - b).abs() <= ALPHA * b.abs() + 1e-9,
                    "{key:?} what_if.{path:?}: fleet {a}, analyze {b}"
                ),
                (a, b) => assert_eq!(a, b, "{key:?} what_if.{path:?}"),
            }
        }
        // Sums over whole connections and over each route's requests in order.
        assert_close(
            &fl["tls_estimate"],
            &wl["tls_estimate"],
            &format!("{key:?} tls_estimate"),
        );
        assert_eq!(
            fl["periodic_failures"], wl["periodic_failures"],
            "{key:?} periodic_failures"
        );
        let (fc, wc) = (
            &fl["chain"]["inferred_confidence"],
            &wl["chain"]["inferred_confidence"],
        );
        match (fc.as_f64(), wc.as_f64()) {
            (Some(a), Some(b)) => assert!((a - b).abs() < 1e-9, "{key:?} confidence {a} {b}"),
            _ => assert_eq!(fc, wc, "{key:?} chain.inferred_confidence"),
        }
    }
}

/// Exchanges in the whole capture, by tshark: the fleet must count each once.
fn tshark_requests() -> u64 {
    let out = crate::common::tshark(&[
        "-r",
        repo(CAPTURE).to_str().unwrap(),
        "-Y",
        "http.request",
        "-T",
        "fields",
        "-e",
        "frame.number",
    ]);
    out.lines().filter(|l| !l.trim().is_empty()).count() as u64
}

#[test]
fn embedded_fleet_over_node_slices_equals_analyze_over_the_whole() {
    let fleet = build_fleet();
    let whole_doc = read_json(&fleet.whole.join("links.json"));
    let out = fleet.dir.path().join("fleet-local");
    let (doc, figures) = fleet.run(&fleet.slice_dirs(None), &out, "local");
    assert_same_links(&doc, &whole_doc, &fleet.whole);

    // A node's own report is the same with and without the slice (the chains reuse
    // the parent inference the slice was written from).
    let plain = fleet.dir.path().join("report-a-plain");
    linkrank()
        .arg("analyze")
        .arg(fleet.dir.path().join("a.pcap"))
        .arg("--out")
        .arg(&plain)
        .args(["--quiet", "--reproducible"])
        .assert()
        .success();
    assert_eq!(
        read_json(&plain.join("links.json")),
        read_json(&fleet.dir.path().join("report-a").join("links.json")),
        "node a's links with and without --fleet-out"
    );

    let f = &figures["figures"];
    let exchanges = f["exchanges"].as_u64().unwrap();
    assert_eq!(exchanges, tshark_requests(), "each exchange once");
    // a's calls to b, c and d are in two slices each: folded, not double counted.
    assert!(f["exchange_rows"].as_u64().unwrap() > exchanges, "{f}");
    assert_eq!(f["without_server_view"], 0, "{f}");
    assert_eq!(figures["partial"]["partial"], false);
    assert_eq!(f["nodes"], serde_json::json!(["a", "b", "c", "d"]));

    // A slice sent again (the same run's files written again, and a copy of a part
    // file beside it) adds nothing.
    let b_ex = fleet.slices[1].join("table=exchanges/node=b");
    let window = std::fs::read_dir(&b_ex)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let part = std::fs::read_dir(&window)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .unwrap();
    std::fs::copy(&part, window.join("part-resent.parquet")).unwrap();
    let (again, again_figures) = fleet.run(
        &fleet.slice_dirs(None),
        &fleet.dir.path().join("again"),
        "local",
    );
    // (Floats within 1e-9: partial sums arrive in any order.)
    assert_close(
        &Value::Array(links(&again).into_values().collect()),
        &Value::Array(links(&doc).into_values().collect()),
        "links after a re-sent slice",
    );
    assert_eq!(again_figures["figures"]["exchanges"], exchanges);
    assert!(
        again_figures["figures"]["exchange_rows"].as_u64() > f["exchange_rows"].as_u64(),
        "the copy was read"
    );

    // A node's slice missing: a partial result, flagged, with the calls into d seen only
    // from a's side.
    let (partial_doc, partial) = fleet.run(
        &fleet.slice_dirs(Some("d")),
        &fleet.dir.path().join("partial"),
        "local",
    );
    assert_eq!(partial["partial"]["partial"], true);
    assert_eq!(
        partial["partial"]["missing_nodes"],
        serde_json::json!(["d"])
    );
    let only_client_side = partial["partial"]["without_server_view"].as_u64().unwrap();
    let whole_links = links(&whole_doc);
    let into_d: u64 = whole_links
        .iter()
        .filter(|(_, l)| {
            l["server_endpoints"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e.as_str().unwrap().starts_with("10.81.0.14:"))
        })
        .map(|(_, l)| l["requests"].as_u64().unwrap())
        .sum();
    assert!(into_d > 0);
    assert_eq!(only_client_side, into_d);
    assert_eq!(
        partial["figures"]["exchanges"].as_u64().unwrap(),
        exchanges,
        "every exchange of the fleet has a's or d's view"
    );
    assert!(!links(&partial_doc).is_empty());
}

/// Nodes whose clocks are milliseconds apart (within `--tolerance`): each exchange still
/// folds to one, and every figure but the rates (the fleet's first-to-last span is
/// taken across the nodes' clocks) equals analyze's over the whole capture.
#[test]
fn nodes_with_clocks_apart_fold_to_the_same_links() {
    let fleet = build_fleet_with_clocks(&CHAINS, &[0.0, 0.007, -0.004, 0.012]);
    let whole_doc = read_json(&fleet.whole.join("links.json"));
    let out = fleet.dir.path().join("fleet-skewed");
    let (doc, figures) = fleet.run(&fleet.slice_dirs(None), &out, "local");
    assert_same_links_but(&doc, &whole_doc, &fleet.whole, &["requests_per_s"]);
    let f = &figures["figures"];
    assert_eq!(f["exchanges"].as_u64().unwrap(), tshark_requests());
    assert_eq!(f["without_server_view"], 0, "{f}");
    assert_eq!(f["depth_unknown"], 0, "{f}");
}

/// The demo shop split over its seven service hosts: the fleet's links equal analyze's
/// over the whole capture, TLS estimates (payments -> fraud, no keys) and periodic
/// failures (orders -> payments) included.
#[test]
fn demo_shop_split_by_service_host_equals_analyze() {
    let fleet = build_fleet_with_clocks(&DEMO, &[]);
    let whole_doc = read_json(&fleet.whole.join("links.json"));
    let out = fleet.dir.path().join("fleet-demo");
    let (doc, figures) = fleet.run(&fleet.slice_dirs(None), &out, "local");
    // Each node samples up to 256 bodies per link, and the gateway's node sees other
    // bodies first than the whole capture: the samples differ, their ratio hardly.
    let samples = ["sampled_bodies", "protobuf_ratio"];
    assert_same_links_but(&doc, &whole_doc, &fleet.whole, &samples);
    for (key, wl) in links(&whole_doc) {
        let fl = &links(&doc)[&key];
        let (f, w) = (
            fl["savings"]["protobuf_ratio"].as_f64(),
            wl["savings"]["protobuf_ratio"].as_f64(),
        );
        match (f, w) {
            (Some(f), Some(w)) => assert!((f - w).abs() <= 0.05 * w, "{key:?} {f} {w}"),
            _ => assert_eq!(f, w, "{key:?} protobuf_ratio"),
        }
    }
    let l = links(&doc);
    let fraud = &l[&("payments".to_owned(), "fraud".to_owned())];
    assert!(
        fraud["tls_estimate"]["connections"].as_u64().unwrap() > 0,
        "{}",
        fraud["tls_estimate"]
    );
    let payments = &l[&("orders".to_owned(), "payments".to_owned())];
    assert!(
        !payments["periodic_failures"].as_array().unwrap().is_empty(),
        "{}",
        payments["periodic_failures"]
    );
    assert_eq!(figures["figures"]["without_server_view"], 0);
}

/// Calls no node could read (TLS without keys) and no call edge at all: the fleet still
/// makes every call a root of depth 1 and measures the critical paths, as `analyze` does.
#[test]
fn opaque_calls_without_edges_are_roots() {
    let fleet = build_fleet_with_clocks(&TLS_NO_KEYS, &[]);
    let whole_doc = read_json(&fleet.whole.join("links.json"));
    let out = fleet.dir.path().join("fleet-tls");
    let (doc, figures) = fleet.run(&fleet.slice_dirs(None), &out, "local");
    assert_opaque_roots(&doc, &whole_doc, &fleet, &figures);
}

fn assert_opaque_roots(doc: &Value, whole_doc: &Value, fleet: &Fleet, figures: &Value) {
    assert_same_links(doc, whole_doc, &fleet.whole);
    let l = links(doc);
    assert_eq!(l.len(), 1, "{:?}", l.keys());
    let chain = &l.values().next().unwrap()["chain"];
    assert_eq!(chain["max_depth"], 1, "{chain}");
    assert_eq!(chain["mean_depth"].as_f64(), Some(1.0), "{chain}");
    // Each call is its own root, alone on its path.
    assert_eq!(
        chain["critical_path_share"]["roots"].as_f64(),
        Some(1.0),
        "{chain}"
    );
    assert_eq!(figures["figures"]["call_edges"], 0, "{figures}");
    assert_eq!(figures["figures"]["depth_unknown"], 0, "{figures}");
}

/// A free TCP port on the loopback (bound, then released for the child to take).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the cluster's processes when the test ends, passed or not.
struct Cluster(Vec<Child>);

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn(args: &[String], log: &Path) -> Child {
    let bin = linkrank_bin();
    let log = std::fs::File::create(log).unwrap();
    Process::new(bin)
        .args(args)
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("linkrank starts")
}

fn wait_for_port(port: u16, deadline: Instant) {
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A Ballista scheduler and `executors` executors started as processes on the loopback,
/// logging (and working) under `logs`; also the scheduler's port.
fn start_cluster(logs: &Path, executors: usize) -> (Cluster, u16) {
    let scheduler = free_port();
    let s = |v: &str| v.to_owned();
    let mut cluster = Cluster(vec![spawn(
        &[s("fleet-scheduler"), s("--port"), scheduler.to_string()],
        &logs.join("scheduler.log"),
    )]);
    let deadline = Instant::now() + Duration::from_secs(60);
    wait_for_port(scheduler, deadline);
    for i in 0..executors {
        let (flight, grpc) = (free_port(), free_port());
        let work = logs.join(format!("executor-{i}"));
        std::fs::create_dir_all(&work).unwrap();
        cluster.0.push(spawn(
            &[
                s("fleet-executor"),
                s("--port"),
                flight.to_string(),
                s("--grpc-port"),
                grpc.to_string(),
                s("--scheduler"),
                format!("127.0.0.1:{scheduler}"),
                s("--work-dir"),
                work.display().to_string(),
            ],
            &logs.join(format!("executor-{i}.log")),
        ));
        wait_for_port(flight, deadline);
    }
    (cluster, scheduler)
}

#[test]
fn ballista_cluster_gives_the_embedded_result() {
    let fleet = build_fleet();
    let whole_doc = read_json(&fleet.whole.join("links.json"));
    let (cluster, scheduler) = start_cluster(fleet.dir.path(), 2);
    let out = fleet.dir.path().join("fleet-ballista");
    let (doc, figures) = fleet.run(
        &fleet.slice_dirs(None),
        &out,
        &format!("df://127.0.0.1:{scheduler}"),
    );
    assert_same_links(&doc, &whole_doc, &fleet.whole);
    let (local, local_figures) = fleet.run(
        &fleet.slice_dirs(None),
        &fleet.dir.path().join("local"),
        "local",
    );
    assert_close(
        &Value::Array(links(&doc).into_values().collect()),
        &Value::Array(links(&local).into_values().collect()),
        "links",
    );
    for k in [
        "exchanges",
        "exchange_rows",
        "connections",
        "call_edges",
        "nodes",
    ] {
        assert_eq!(figures["figures"][k], local_figures["figures"][k], "{k}");
    }
    // The same cluster without any call edge, the calls opaque.
    let tls = build_fleet_with_clocks(&TLS_NO_KEYS, &[]);
    let tls_whole = read_json(&tls.whole.join("links.json"));
    let (doc, figures) = tls.run(
        &tls.slice_dirs(None),
        &tls.dir.path().join("fleet-tls-ballista"),
        &format!("df://127.0.0.1:{scheduler}"),
    );
    assert_opaque_roots(&doc, &tls_whole, &tls, &figures);
    drop(cluster);
}

/// Scale figures for docs/fleet.md (run by hand: `cargo test --features fleet --test it
/// -- --ignored fleet::scale_figures --nocapture`, `LINKRANK_FLEET_COPIES` copies;
/// `LINKRANK_FLEET_BIN` a release binary, `LINKRANK_FLEET_TIMEOUT_S` the bound per fold,
/// `LINKRANK_FLEET_PARTITIONS` Ballista's tasks per stage):
/// the node slices copied with every time shifted by a whole number of capture lengths
/// (each copy is new traffic that both nodes saw), folded embedded and on Ballista with
/// one and with two executors; the results must agree.
#[test]
#[ignore]
fn scale_figures() {
    let copies: i64 = std::env::var("LINKRANK_FLEET_COPIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let fleet = build_fleet();
    let big = fleet.dir.path().join("big");
    let shift: i64 = 10_000_000_000; // longer than the 2 s capture
    let times: [(&str, &[&str]); 3] = [
        (
            "exchanges",
            &[
                "req_first_ns",
                "req_last_ns",
                "resp_first_ns",
                "resp_last_ns",
            ],
        ),
        (
            "connections",
            &["first_ns", "last_ns", "syn_ns", "syn_ack_ns", "ack_ns"],
        ),
        ("call_edges", &["child_start_ns", "parent_start_ns"]),
    ];
    let mut parquet_bytes = 0u64;
    let mut exchange_rows_per_node = BTreeMap::new();
    for slice in &fleet.slices {
        for entry in walk(slice) {
            let rel = entry.strip_prefix(slice).unwrap().to_owned();
            let table = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy()
                .into_owned();
            let dest = big.join(&rel);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            let cols = times
                .iter()
                .find(|(t, _)| table == format!("table={t}"))
                .map(|(_, c)| *c);
            let Some(cols) = cols else {
                std::fs::copy(&entry, &dest).unwrap();
                continue;
            };
            let df = ParquetReader::new(std::fs::File::open(&entry).unwrap())
                .finish()
                .unwrap();
            if table == "table=exchanges" {
                let node = rel
                    .components()
                    .nth(1)
                    .unwrap()
                    .as_os_str()
                    .to_string_lossy()
                    .into_owned();
                *exchange_rows_per_node.entry(node).or_insert(0u64) += df.height() as u64;
            }
            for k in 0..copies {
                let shifted: Vec<Expr> = cols
                    .iter()
                    .map(|c| (col(*c) + lit(k * shift)).alias(*c))
                    .collect();
                let mut out = df.clone().lazy().with_columns(shifted).collect().unwrap();
                let path = dest.with_file_name(format!("part-copy{k}.parquet"));
                ParquetWriter::new(std::fs::File::create(&path).unwrap())
                    .with_compression(ParquetCompression::Zstd(None))
                    .finish(&mut out)
                    .unwrap();
                parquet_bytes += std::fs::metadata(&path).unwrap().len();
            }
        }
    }
    let whole = read_json(&fleet.whole.join("links.json"));
    let seconds = whole["capture"]["seconds"]
        .as_f64()
        .or_else(|| whole["capture_seconds"].as_f64());
    let started = Instant::now();
    let (local, local_f) = fleet.run(
        std::slice::from_ref(&big),
        &fleet.dir.path().join("big-local"),
        "local",
    );
    let local_s = started.elapsed().as_secs_f64();
    println!("copies {copies}; parquet bytes {parquet_bytes}; exchange rows per node (one copy) {exchange_rows_per_node:?}; capture seconds {seconds:?}");
    println!("local: {local_s:.2} s wall, figures {}", local_f["figures"]);
    for executors in [1, 2] {
        let logs = fleet.dir.path().join(format!("logs{executors}"));
        std::fs::create_dir_all(&logs).unwrap();
        let (cluster, scheduler) = start_cluster(&logs, executors);
        let started = Instant::now();
        let (doc, f) = fleet.run(
            std::slice::from_ref(&big),
            &fleet.dir.path().join(format!("big-{executors}")),
            &format!("df://127.0.0.1:{scheduler}"),
        );
        let wall = started.elapsed().as_secs_f64();
        println!(
            "ballista, {executors} executor(s): {wall:.2} s wall, figures {}",
            f["figures"]
        );
        assert_close(
            &Value::Array(links(&doc).into_values().collect()),
            &Value::Array(links(&local).into_values().collect()),
            "links",
        );
        assert_close(&doc["chains"], &local["chains"], "chains");
        drop(cluster);
    }
}

/// Equal JSON, floats to 1e-9 relative: sums of floats (edge confidences) added in
/// another order by another executor differ in the last bits.
fn assert_close(a: &Value, b: &Value, path: &str) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(
                x.keys().collect::<Vec<_>>(),
                y.keys().collect::<Vec<_>>(),
                "{path}"
            );
            for (k, v) in x {
                assert_close(v, &y[k], &format!("{path}.{k}"));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{path}");
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                assert_close(v, w, &format!("{path}[{i}]"));
            }
        }
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(
                (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
                "{path}: {x} vs {y}"
            );
        }
        _ => assert_eq!(a, b, "{path}"),
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "parquet") {
            out.push(p);
        }
    }
    out
}
