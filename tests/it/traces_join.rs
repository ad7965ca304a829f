//! Trace files as input, alone and joined with a capture, on the traced fixture
//! (fixtures/traced/): real services instrumented with the OpenTelemetry SDK exported
//! their spans while tcpdump recorded the same exchanges. Every expected figure comes
//! from `traced.truth.json`, which the services and the driver logged as they made the
//! calls and which fixtures/scripts/make_traced.sh checked against the exported spans and tshark.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::*;
use assert_cmd::Command;
use serde_json::Value;

const FIX: &str = "fixtures/traced";

fn truth() -> Value {
    let path = repo(&format!("{FIX}/traced.truth.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `linkrank analyze <inputs> <extra> --out <tmp>` from the repository root; links.json.
fn analyze(inputs: &[&Path], extra: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    Command::cargo_bin("linkrank")
        .unwrap()
        .current_dir(repo(""))
        .arg("analyze")
        .args(inputs)
        .args(extra)
        .arg("--out")
        .arg(dir.path())
        .assert()
        .success();
    serde_json::from_str(&std::fs::read_to_string(dir.path().join("links.json")).unwrap()).unwrap()
}

fn fixture(name: &str) -> std::path::PathBuf {
    repo(&format!("{FIX}/{name}"))
}

/// Per link (client, server): (requests, 2xx, 4xx, chain max depth).
type PerLink = BTreeMap<(String, String), (u64, u64, u64, Option<u64>)>;

/// The truth's links. The driver sends no traceparent and exports no span, so traces
/// name it `user` (an untraced caller), and so does names.yaml.
fn truth_links(t: &Value) -> PerLink {
    t["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let caller = traced_caller(&l["caller"]);
            let statuses = l["statuses"].as_object().unwrap();
            let bucket = |first: char| -> u64 {
                statuses
                    .iter()
                    .filter(|(code, _)| code.starts_with(first))
                    .map(|(_, n)| n.as_u64().unwrap())
                    .sum()
            };
            (
                (caller.to_owned(), l["callee"].as_str().unwrap().to_owned()),
                (
                    l["requests"].as_u64().unwrap(),
                    bucket('2'),
                    bucket('4'),
                    l["max_depth"].as_u64(),
                ),
            )
        })
        .collect()
}

fn report_links(links: &Value) -> PerLink {
    links["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                (
                    l["client"].as_str().unwrap().to_owned(),
                    l["server"].as_str().unwrap().to_owned(),
                ),
                (
                    l["requests"].as_u64().unwrap(),
                    l["status"]["2xx"].as_u64().unwrap(),
                    l["status"]["4xx"].as_u64().unwrap(),
                    l["chain"]["max_depth"].as_u64(),
                ),
            )
        })
        .collect()
}

fn link<'a>(links: &'a Value, client: &str, server: &str) -> &'a Value {
    links["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["client"] == client && l["server"] == server)
        .unwrap_or_else(|| panic!("no link {client} -> {server}"))
}

/// Exchanges of the truth whose request carried a traceparent: every call made by an
/// instrumented service (the driver's roots carry none).
fn with_traceparent(t: &Value) -> u64 {
    t["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| !e["client_span_id"].is_null())
        .count() as u64
}

#[test]
fn traces_alone_give_the_truths_links_request_counts_and_depths() {
    let t = truth();
    let want = truth_links(&t);
    for (file, format) in [
        ("traced.otlp.jsonl", "otlp-json-lines"),
        ("traced.otlp.pb", "otlp-protobuf-delimited"),
    ] {
        let links = analyze(&[&fixture(file)], &[]);
        assert_eq!(report_links(&links), want, "{file}");
        let tr = &links["traces"];
        assert_eq!(tr["files"][0]["format"], format, "{file}");
        assert_eq!(tr["spans"], t["spans"], "{file}");
        assert_eq!(tr["calls"], t["exchanges_count"], "{file}");
        assert_eq!(tr["errors"].as_array().unwrap().len(), 0, "{file}");
        assert!(tr["join"].is_null(), "{file}: no capture, no join");
        for l in links["links"].as_array().unwrap() {
            let name = format!("{file}: {} -> {}", l["client"], l["server"]);
            assert_eq!(l["evidence"], "traces", "{name}");
            // spans cannot show header bytes, connections or handshakes: null, not 0
            for k in [
                "request_headers",
                "response_headers",
                "request_bodies",
                "response_bodies",
            ] {
                assert!(
                    l["bytes"][k].is_null(),
                    "{name}: bytes.{k} = {}",
                    l["bytes"][k]
                );
            }
            assert!(l["connections"].is_null(), "{name}");
            assert!(l["tcp_handshakes"].is_null(), "{name}");
            assert!(l["handshake_rtt_ms"].is_null(), "{name}");
            assert_eq!(l["traced_calls"], l["requests"], "{name}");
        }
        // inventory exported no span: its callers' CLIENT spans name it (virtual peer)
        let inv = link(&links, "orders", "inventory");
        assert_eq!(inv["server_source"], "traces", "{file}");
    }
}

#[test]
fn capture_alone_and_traces_alone_count_the_same_requests_per_link() {
    let t = truth();
    let names = fixture("names.yaml");
    let names = names.to_str().unwrap();
    let captured = analyze(&[&fixture("traced.pcap")], &["--services", names]);
    let traced = analyze(&[&fixture("traced.otlp.jsonl")], &[]);
    let want = truth_links(&t);
    assert_eq!(report_links(&captured), want, "capture with names.yaml");
    assert_eq!(report_links(&traced), want, "traces");
    for l in captured["links"].as_array().unwrap() {
        assert_eq!(l["evidence"], "capture");
        assert!(l["bytes"]["request_headers"].as_u64().unwrap() > 0);
    }
    assert!(
        captured["traces"].is_null(),
        "no trace input: traces is null"
    );
}

#[test]
fn capture_and_traces_join_by_traceparent_and_name_links_by_service_name() {
    let t = truth();
    let links = analyze(
        &[&fixture("traced.pcap"), &fixture("traced.otlp.jsonl")],
        &["--no-auto-services"],
    );
    let join = &links["traces"]["join"];
    let exchanges = t["exchanges_count"].as_u64().unwrap();
    let tp = with_traceparent(&t);
    assert_eq!(join["exchanges"], exchanges);
    assert_eq!(
        join["calls"], exchanges,
        "every traced call is an HTTP exchange"
    );
    assert_eq!(join["matched"], exchanges);
    assert_eq!(
        join["by_traceparent"], tp,
        "every exchange with a traceparent"
    );
    // the roots carry none: their only way in is the time window
    assert_eq!(join["by_time"], exchanges - tp);
    assert_eq!(join["exchange_coverage"], 1.0);
    assert_eq!(join["call_coverage"], 1.0);
    assert_eq!(
        join["offset_pairs"], tp,
        "the offset comes from the traceparent pairs"
    );
    let offset = join["clock_offset_ms"].as_f64().unwrap();
    assert!(offset.abs() < 1.0, "one kernel clock: offset {offset} ms");

    // No services file: the instrumented endpoints are named by their spans'
    // service.name, 5 servers and the 3 of them that call others.
    let ex = t["exchanges"].as_array().unwrap();
    let uninstrumented: Vec<&str> = t["not_instrumented"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let mut named: Vec<String> = ex
        .iter()
        .filter(|e| !uninstrumented.contains(&e["callee"].as_str().unwrap()))
        .map(|e| format!("server {}", e["callee"].as_str().unwrap()))
        .chain(
            ex.iter()
                .filter(|e| e["caller"] != "driver")
                .map(|e| format!("client {}", e["caller"].as_str().unwrap())),
        )
        .collect();
    named.sort();
    named.dedup();
    assert_eq!(join["named_endpoints"], named.len() as u64, "{named:?}");

    let want = truth_links(&t);
    for ((caller, callee), (requests, ..)) in &want {
        if caller == "user" {
            continue; // the driver: no span names its address (see below)
        }
        let l = link(&links, caller, callee);
        let name = format!("{caller} -> {callee}");
        assert_eq!(l["requests"].as_u64(), Some(*requests), "{name}");
        assert_eq!(l["traced_calls"].as_u64(), Some(*requests), "{name}");
        assert_eq!(l["evidence"], "both", "{name}");
        assert_eq!(l["client_source"], "traces", "{name}");
        if !uninstrumented.contains(&callee.as_str()) {
            assert_eq!(l["server_source"], "traces", "{name}");
        }
        // the capture still measures what spans cannot
        assert!(
            l["bytes"]["request_headers"].as_u64().unwrap() > 0,
            "{name}"
        );
    }
    // the driver's link: its server is named by the gateway's spans, its client only
    // by its address
    let driver_ip = ex
        .iter()
        .find(|e| e["caller"] == "driver")
        .and_then(|e| e["id"].as_str())
        .and_then(|id| id.split(':').next())
        .unwrap();
    let root = link(&links, driver_ip, "gateway");
    let roots = want[&("user".into(), "gateway".into())].0;
    assert_eq!(root["requests"].as_u64(), Some(roots));
    assert_eq!(root["server_source"], "traces");
    // the spans call it `user`, the capture its address: still the same calls
    assert_eq!(root["evidence"], "both");
    assert_eq!(root["traced_calls"].as_u64(), Some(roots));

    // With names.yaml (the driver's address is `user`, as traces call it) every link
    // is on both sides and carries all its traced calls.
    let names = fixture("names.yaml");
    let named_run = analyze(
        &[&fixture("traced.pcap"), &fixture("traced.otlp.pb")],
        &["--services", names.to_str().unwrap()],
    );
    assert_eq!(report_links(&named_run), want);
    for l in named_run["links"].as_array().unwrap() {
        assert_eq!(l["evidence"], "both", "{} -> {}", l["client"], l["server"]);
        assert_eq!(
            l["traced_calls"], l["requests"],
            "{} -> {}",
            l["client"], l["server"]
        );
    }
}

#[test]
fn skewed_trace_clocks_give_the_offset_they_were_shifted_by() {
    let t = truth();
    let want_ms = t["trace_clock_offset_ns"].as_f64().unwrap() / 1e6;
    let links = analyze(
        &[
            &fixture("traced.pcap"),
            &fixture("traced_skewed.otlp.jsonl"),
        ],
        &["--no-auto-services"],
    );
    let join = &links["traces"]["join"];
    let offset = join["clock_offset_ms"].as_f64().unwrap();
    assert!(
        (offset - want_ms).abs() < 1.0,
        "offset {offset} ms, shifted by {want_ms} ms"
    );
    // the ids join whatever the clocks say, and the time rule still finds the roots
    assert_eq!(join["by_traceparent"], with_traceparent(&t));
    assert_eq!(join["matched"], t["exchanges_count"]);
}

#[test]
fn a_trace_file_cut_mid_line_keeps_the_spans_before_the_cut() {
    let text = std::fs::read_to_string(fixture("traced.otlp.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let keep = lines.len() / 2;
    let cut_line = lines[keep];
    let mut cut = lines[..keep].join("\n");
    cut.push('\n');
    cut.push_str(&cut_line[..cut_line.len() / 2]);
    // the spans in the whole lines, counted by parsing them here
    let before: u64 = lines[..keep]
        .iter()
        .map(|l| {
            let doc: Value = serde_json::from_str(l).unwrap();
            doc["resourceSpans"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|rs| rs["scopeSpans"].as_array().unwrap())
                .map(|ss| ss["spans"].as_array().unwrap().len() as u64)
                .sum::<u64>()
        })
        .sum();
    assert!(before > 0);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.otlp.jsonl");
    std::fs::write(&path, cut).unwrap();

    let links = analyze(&[&path], &[]);
    let tr = &links["traces"];
    assert_eq!(tr["spans"].as_u64(), Some(before));
    let errors = tr["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let msg = errors[0].as_str().unwrap();
    assert!(msg.contains(path.to_str().unwrap()), "{msg}");
    assert!(msg.contains(&format!("line {}", keep + 1)), "{msg}");
    assert!(!links["links"].as_array().unwrap().is_empty());
}

/// Per non-root link of the truth: (calls, fire-and-forget calls, N+1 groups), an N+1
/// group being a parent that made `N_PLUS_ONE_MIN`+ calls of one route on the link.
fn truth_chains(t: &Value) -> BTreeMap<(String, String), (u64, u64, Vec<u64>)> {
    let mut per_parent: BTreeMap<(String, String, String, String), u64> = BTreeMap::new();
    let mut out: BTreeMap<(String, String), (u64, u64, Vec<u64>)> = BTreeMap::new();
    for e in t["exchanges"].as_array().unwrap() {
        let Some(parent) = e["parent"].as_str() else {
            continue;
        };
        let key = (
            e["caller"].as_str().unwrap().to_owned(),
            e["callee"].as_str().unwrap().to_owned(),
        );
        let l = out.entry(key.clone()).or_default();
        l.0 += 1;
        l.1 += u64::from(e["fire_and_forget"].as_bool().unwrap());
        let route = format!("{} {}", e["method"], e["route"]);
        *per_parent
            .entry((key.0, key.1, route, parent.to_owned()))
            .or_default() += 1;
    }
    for ((caller, callee, ..), n) in per_parent {
        if n >= N_PLUS_ONE_MIN {
            out.get_mut(&(caller, callee)).unwrap().2.push(n);
        }
    }
    out
}

/// src/analysis/chains/tree.rs `TreeConfig::n_plus_one_min` (docs/chains.md).
const N_PLUS_ONE_MIN: u64 = 3;

/// The chain figures of every non-root link against the truth: every parent edge from
/// ids, the fire-and-forget share, the N+1 groups (orders' per-user lookups).
fn assert_chains(links: &Value, t: &Value, what: &str) {
    for ((caller, callee), (calls, ff, groups)) in truth_chains(t) {
        let l = link(links, &caller, &callee);
        let c = &l["chain"];
        let name = format!("{what}: {caller} -> {callee}");
        assert_eq!(c["confirmed_by_ids_share"], 1.0, "{name}");
        let share = c["fire_and_forget_share"].as_f64().unwrap();
        assert!(
            (share - ff as f64 / calls as f64).abs() < 1e-9,
            "{name}: {share} vs {ff}/{calls}"
        );
        let n1 = c["n_plus_one"].as_array().unwrap();
        let (parents, sum): (u64, u64) = n1
            .iter()
            .map(|g| (g["parents"].as_u64().unwrap(), g["calls"].as_u64().unwrap()))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        assert_eq!(parents, groups.len() as u64, "{name}: N+1 parents");
        assert_eq!(sum, groups.iter().sum::<u64>(), "{name}: N+1 calls");
        let max = n1.iter().filter_map(|g| g["max_per_parent"].as_u64()).max();
        assert_eq!(
            max,
            groups.iter().max().copied(),
            "{name}: N+1 max per parent"
        );
    }
}

#[test]
fn chains_from_spans_alone_match_the_truth() {
    let t = truth();
    let links = analyze(&[&fixture("traced.otlp.jsonl")], &[]);
    assert_chains(&links, &t, "traces");
    // Every parent edge comes from the span ids, and is counted as such.
    let with_parent = t["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| !x["parent"].is_null())
        .count() as u64;
    let inference = &links["chains"]["inference"];
    assert_eq!(inference["by_span"].as_u64(), Some(with_parent));
    assert_eq!(inference["by_timing"].as_u64(), Some(0));
    // the span trees confirm one edge per exchange that has a parent
    assert!(
        links["traces"]["chain_check"].is_null(),
        "nothing to check without a capture"
    );
}

#[test]
fn chains_from_capture_and_traces_match_the_truth() {
    let t = truth();
    let links = analyze(
        &[&fixture("traced.pcap"), &fixture("traced.otlp.jsonl")],
        &["--no-auto-services"],
    );
    assert_chains(&links, &t, "capture + traces");
}

#[test]
fn span_trees_check_every_parent_edge_of_the_capture() {
    let t = truth();
    let links = analyze(
        &[&fixture("traced.pcap"), &fixture("traced.otlp.jsonl")],
        &["--no-auto-services"],
    );
    let check = &links["traces"]["chain_check"];
    let with_parent = t["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| !e["parent"].is_null())
        .count() as u64;
    assert_eq!(check["span_edges"], with_parent);
    let sum: u64 = ["timing_agrees", "timing_corrected", "timing_missed"]
        .iter()
        .map(|k| check[k].as_u64().unwrap())
        .sum();
    assert_eq!(sum, with_parent, "{check}");
}

/// The exchanges table's ids, `client_ip:client_port>server_ip:server_port#index`.
fn exchange_ids(ex: &polars::prelude::DataFrame) -> Vec<String> {
    let (cip, sip) = (strs(ex, "client_ip"), strs(ex, "server_ip"));
    let (cport, sport, index) = (
        u64s(ex, "client_port"),
        u64s(ex, "server_port"),
        u64s(ex, "index"),
    );
    (0..ex.height())
        .map(|i| {
            format!(
                "{}:{}>{}:{}#{}",
                cip[i].as_deref().unwrap_or("?"),
                cport[i].unwrap_or(0),
                sip[i].as_deref().unwrap_or("?"),
                sport[i].unwrap_or(0),
                index[i].unwrap_or(0)
            )
        })
        .collect()
}

/// Joins traced.pcap with traced.otlp.jsonl through the library and checks each match
/// against the truth: per rule (`traceparent`, `time`), (right, wrong, wrong ids).
fn join_against_truth(t: &Value) -> BTreeMap<&'static str, (u64, u64, Vec<String>)> {
    use linkrank::analysis::join::{join, JoinConfig, MatchRule};
    let by_id: BTreeMap<&str, &Value> = t["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["id"].as_str().unwrap(), e))
        .collect();
    let (tables, _) = analyse(&[fixture("traced.pcap")]);
    let set = linkrank::ingest::traces::read(&[fixture("traced.otlp.jsonl")]).unwrap();
    let j = join(&tables.exchanges, &set.calls, &JoinConfig::default()).unwrap();
    let span = |v: &Value| v.as_str().map(|s| u64::from_str_radix(s, 16).unwrap());
    let mut tally: BTreeMap<&'static str, (u64, u64, Vec<String>)> = BTreeMap::new();
    for (id, m) in exchange_ids(&tables.exchanges).iter().zip(&j.exchange_call) {
        let e = by_id
            .get(id.as_str())
            .unwrap_or_else(|| panic!("{id} not in the truth"));
        let Some((call, rule)) = m else {
            panic!("{id} not matched");
        };
        let c = &set.calls[*call as usize];
        // the exchange's own spans: its SERVER span, or (inventory exported none) its
        // CLIENT span
        let right = match span(&e["server_span_id"]) {
            Some(s) => c.server_span_id == Some(s),
            None => c.client_span_id == span(&e["client_span_id"]),
        };
        let n = tally
            .entry(match rule {
                MatchRule::Traceparent => "traceparent",
                MatchRule::Time => "time",
            })
            .or_default();
        if right {
            n.0 += 1;
        } else {
            n.1 += 1;
            n.2.push(id.clone());
        }
    }
    tally
}

#[test]
fn every_traceparent_match_is_the_exchanges_own_span() {
    let t = truth();
    let tally = join_against_truth(&t);
    let (right, wrong, ids) = &tally["traceparent"];
    assert_eq!(
        (*right, *wrong),
        (with_traceparent(&t), 0),
        "wrong: {ids:?}"
    );
}

#[test]
fn every_time_match_is_the_exchanges_own_span() {
    let t = truth();
    let tally = join_against_truth(&t);
    let (right, wrong, ids) = &tally["time"];
    assert_eq!(
        (*right, *wrong),
        (t["roots"].as_u64().unwrap(), 0),
        "wrong: {ids:?}"
    );
}
