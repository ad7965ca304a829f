//! Calls between services whatever their protocol or tracer, on real instrumented
//! services (fixtures/traced_rpc/: gRPC with the official instrumentation, Thrift with
//! kind-less manual spans, NATS producer/consumer), read from the same spans in four
//! formats (OTLP/JSON lines with base64 ids, Jaeger api_v3 and api_v2 JSON, Zipkin v1
//! JSON). Every expected figure comes from `rpc.truth.json`, which the processes logged
//! as they made the calls and fixtures/scripts/make_traced_rpc.sh checked against the
//! spans; the connector semantics are checked against an independent Python reference
//! (servicegraph_reference.py) on these files, the corpus and the traced fixture.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::*;
use assert_cmd::Command;
use linkrank::ingest::traces;
use serde_json::Value;

const FIX: &str = "fixtures/traced_rpc";

/// The span files and the format each must be read as.
const FILES: [(&str, &str); 4] = [
    ("rpc.otlp.jsonl", "otlp-json-lines"),
    ("rpc.jaeger_v3.json", "otlp-json"),
    ("rpc.jaeger_v2.json", "jaeger-trace"),
    ("rpc.zipkin_v1.json", "zipkin-v1"),
];

fn fixture(name: &str) -> PathBuf {
    repo(&format!("{FIX}/{name}"))
}

fn truth() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("rpc.truth.json")).unwrap()).unwrap()
}

/// The truth's links by (caller, callee), the caller as traces name it.
fn truth_links(t: &Value) -> BTreeMap<(String, String), &Value> {
    t["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let caller = traced_caller(&l["caller"]);
            (
                (caller.to_owned(), l["callee"].as_str().unwrap().to_owned()),
                l,
            )
        })
        .collect()
}

fn analyze(input: &Path, out: &Path) -> Value {
    Command::cargo_bin("linkrank")
        .unwrap()
        .arg("analyze")
        .arg(input)
        .arg("--out")
        .arg(out)
        .arg("--quiet")
        .assert()
        .success();
    serde_json::from_str(&std::fs::read_to_string(out.join("links.json")).unwrap()).unwrap()
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

#[test]
fn every_format_gives_the_links_counts_errors_depths_and_protocols_the_services_logged() {
    let t = truth();
    let want = truth_links(&t);
    for (file, format) in FILES {
        let dir = tempfile::tempdir().unwrap();
        let links = analyze(&fixture(file), dir.path());
        assert_eq!(links["traces"]["files"][0]["format"], format, "{file}");
        assert!(links["traces"]["errors"].as_array().unwrap().is_empty());
        let got: BTreeMap<(String, String), &Value> = links["links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let key = (
                    l["client"].as_str().unwrap().to_owned(),
                    l["server"].as_str().unwrap().to_owned(),
                );
                (key, l)
            })
            .collect();
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{file}"
        );
        for (key, w) in &want {
            let l = got[key];
            let what = format!("{file}: {key:?}");
            assert_eq!(l["requests"], w["requests"], "{what}: requests");
            assert_eq!(l["traced_calls"], w["requests"], "{what}: traced calls");
            assert_eq!(l["status"]["failed"], w["failed"], "{what}: failed");
            assert_eq!(l["chain"]["max_depth"], w["max_depth"], "{what}: depth");
            assert_eq!(l["evidence"], "traces", "{what}");
            let statuses = &w["statuses"];
            match w["protocol"].as_str().unwrap() {
                "grpc" => {
                    assert_eq!(l["protocol"], "grpc", "{what}");
                    // OK and NOT_FOUND, in HTTP's classes as grpc-gateway maps them.
                    assert_eq!(n(&l["status"]["2xx"]), n(&statuses["0"]), "{what}");
                    assert_eq!(n(&l["status"]["4xx"]), n(&statuses["5"]), "{what}");
                }
                "thrift" => assert_eq!(l["protocol"], "thrift", "{what}"),
                "nats" => {
                    // The asynchronous link is named by its broker.
                    assert_eq!(l["protocol"], "nats", "{what}");
                    assert_eq!(l["broker"], "nats", "{what}");
                    assert_eq!(l["async_share"], 1.0, "{what}");
                }
                p => panic!("{what}: protocol {p} not in the fixture"),
            }
            assert_eq!(w["async"], w["protocol"] == "nats");
        }
        // Each rule's count, from the truth's links: the instrumented gRPC pair is
        // CLIENT -> SERVER, the driver's calls are root SERVER spans, Thrift's are
        // kind-less pairs, NATS's are PRODUCER -> CONSUMER.
        let by = |p: &str| -> u64 {
            want.iter()
                .filter(|((caller, _), l)| {
                    l["protocol"] == p && (p != "grpc" || caller.as_str() != "user")
                })
                .map(|(_, l)| n(&l["requests"]))
                .sum()
        };
        let cov = &links["traces"]["coverage"];
        assert_eq!(n(&cov["calls_client_server"]), by("grpc"), "{file}");
        assert_eq!(
            n(&cov["calls_server_only"]),
            n(&t["roots"]),
            "{file}: root SERVER spans"
        );
        assert_eq!(n(&cov["calls_kindless"]), by("thrift"), "{file}");
        assert_eq!(n(&cov["calls_producer_consumer"]), by("nats"), "{file}");
        assert_eq!(n(&cov["calls_virtual"]), 0, "{file}");
        assert_eq!(n(&cov["calls_async"]), by("nats"), "{file}");
        assert_eq!(n(&cov["spans_kept"]), n(&t["spans"]), "{file}");
    }
}

/// (trace id, client span id, server span id) of a call.
type SpanPair = (u128, Option<u64>, Option<u64>);

#[test]
fn every_exchange_the_services_logged_is_a_call_with_its_own_span_ids() {
    let t = truth();
    for (file, _) in FILES {
        let set = traces::read(&[fixture(file)]).unwrap();
        let got: BTreeMap<SpanPair, (&str, &str, bool)> = set
            .calls
            .iter()
            .map(|c| {
                (
                    (c.trace_id, c.client_span_id, c.server_span_id),
                    (&*c.caller, &*c.callee, c.error),
                )
            })
            .collect();
        assert_eq!(got.len(), set.calls.len(), "{file}: one call per span pair");
        let hex = |v: &Value| v.as_str().map(|s| u64::from_str_radix(s, 16).unwrap());
        for e in t["exchanges"].as_array().unwrap() {
            let key = (
                u128::from_str_radix(e["trace_id"].as_str().unwrap(), 16).unwrap(),
                hex(&e["client_span_id"]),
                hex(&e["server_span_id"]),
            );
            let caller = traced_caller(&e["caller"]);
            let failed = e["status"] != 0;
            assert_eq!(
                got.get(&key),
                Some(&(caller, e["callee"].as_str().unwrap(), failed)),
                "{file}: exchange {}",
                e["id"]
            );
        }
        assert_eq!(set.calls.len() as u64, n(&t["exchanges_count"]), "{file}");
    }
}

#[test]
fn rpc_links_are_ranked_with_what_their_spans_show() {
    let t = truth();
    let dir = tempfile::tempdir().unwrap();
    let links = analyze(&fixture("rpc.otlp.jsonl"), dir.path());
    let link = |a: &str, b: &str| {
        links["links"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["client"] == a && l["server"] == b)
            .unwrap_or_else(|| panic!("no link {a} -> {b}"))
    };
    // Already on gRPC: nothing to migrate, whether the caller is inside or outside.
    for (a, b) in [("frontend", "catalog"), ("user", "frontend")] {
        let r = &link(a, b)["recommendation"];
        assert_eq!(r["rule"], "keep:already-grpc", "{a} -> {b}");
        assert_eq!(r["target"], "keep");
    }
    // Through NATS already.
    assert_eq!(
        link("catalog", "audit")["recommendation"]["rule"],
        "keep:already-async"
    );
    // Thrift, N+1: catalog prices each line of an item in sequence. From the truth: the
    // catalog requests that made 3 or more pricing calls, and those calls.
    let mut per_parent: BTreeMap<&str, u64> = BTreeMap::new();
    for e in t["exchanges"].as_array().unwrap() {
        if e["callee"] == "pricing" {
            *per_parent.entry(e["parent"].as_str().unwrap()).or_default() += 1;
        }
    }
    let n1: Vec<u64> = per_parent.values().copied().filter(|&k| k >= 3).collect();
    let thrift = link("catalog", "pricing");
    let got = &thrift["chain"]["n_plus_one"][0];
    assert_eq!(n(&got["parents"]), n1.len() as u64);
    assert_eq!(n(&got["calls"]), n1.iter().sum::<u64>());
    assert_eq!(got["route"], "price_server");
    // Thrift failures carry no status: they are the advice's server errors (a mesh for
    // transient errors, which a gain of nothing known keeps below the floors).
    assert_eq!(thrift["recommendation"]["rule"], "keep:below-floors");
    let why = thrift["recommendation"]["why"].to_string();
    assert!(why.contains("failed transiently"), "{why}");
    // The report says what needs a capture.
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains("A capture of this link is needed"));
    assert!(
        md.contains("| a span without a kind (or INTERNAL) under a span of another service | 96 |")
    );
}

/// `servicegraph_reference.py FILE`: {"caller -> callee": [calls, failed]}.
fn reference(file: &Path) -> BTreeMap<String, (u64, u64)> {
    let out = std::process::Command::new("python3")
        .arg(repo("tests/it/servicegraph_reference.py"))
        .arg(file)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: BTreeMap<String, (u64, u64)> = serde_json::from_slice(&out.stdout).unwrap();
    v
}

fn pairs(file: &Path) -> BTreeMap<String, (u64, u64)> {
    let set = traces::read(&[file]).unwrap();
    assert!(
        set.errors.is_empty(),
        "{}: {:?}",
        file.display(),
        set.errors
    );
    let mut m = BTreeMap::new();
    for c in &set.calls {
        let e: &mut (u64, u64) = m
            .entry(format!("{} -> {}", c.caller, c.callee))
            .or_default();
        e.0 += 1;
        e.1 += u64::from(c.error);
    }
    m
}

#[test]
fn pairs_requests_and_failures_equal_an_independent_reference() {
    let mut files: Vec<PathBuf> = ["rpc.otlp.jsonl", "rpc.jaeger_v3.json", "rpc.jaeger_v2.json"]
        .iter()
        .map(|f| fixture(f))
        .collect();
    files.push(repo("fixtures/traced/traced.otlp.jsonl"));
    if linkrank::testing::corpus::require() {
        for f in [
            "zipkin_yelp.json",
            "zipkin_messaging-kafka.json",
            "zipkin_skew.json",
            "otelproto_examples_trace.json",
            "jaeger_storage_example_trace_otlp.json",
            "jaeger_ui_01.json",
            "jaegerui_otlp2jaeger-multi-in.jsonl",
            "jaegerui_oltp2jaeger-multi-out.json",
            "jaeger_model_protojson_domain_03.json",
        ] {
            files.push(corpus(f));
        }
    }
    for f in &files {
        assert_eq!(pairs(f), reference(f), "{}", f.display());
    }
}

/// The same run captured on loopback (`rpc.pcap`) and joined with its spans: every gRPC
/// exchange of the capture is a traced call. The instrumented caller's calls join by the
/// traceparent riding in their HTTP/2 headers; the uninstrumented driver's, by endpoints
/// and time. Thrift and NATS carry no HTTP: their links come from the spans alone.
#[test]
fn a_capture_of_the_run_joins_its_grpc_calls_by_traceparent_and_by_time() {
    let t = truth();
    let links = truth_links(&t);
    let grpc: Vec<(&(String, String), &&Value)> = links
        .iter()
        .filter(|(_, l)| l["protocol"] == "grpc")
        .collect();
    let requests = |pred: &dyn Fn(&str) -> bool| -> u64 {
        grpc.iter()
            .filter(|((caller, _), _)| pred(caller))
            .map(|(_, l)| n(&l["requests"]))
            .sum()
    };
    let all = requests(&|_| true);
    // The driver is uninstrumented: traces name it `user`.
    let instrumented = requests(&|c| c != "user");
    assert!(instrumented > 0 && instrumented < all);
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("linkrank")
        .unwrap()
        .arg("analyze")
        .arg(fixture("rpc.pcap"))
        .arg(fixture("rpc.otlp.jsonl"))
        .arg("--out")
        .arg(dir.path())
        .arg("--quiet")
        .assert()
        .success();
    drop(out);
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("links.json")).unwrap())
            .unwrap();
    let join = &doc["traces"]["join"];
    assert_eq!(n(&join["exchanges"]), all, "{join}");
    assert_eq!(n(&join["matched"]), all, "{join}");
    assert_eq!(n(&join["by_traceparent"]), instrumented, "{join}");
    assert_eq!(n(&join["by_time"]), all - instrumented, "{join}");
    // The instrumented link, seen by both: its requests and its failures by grpc-status.
    let l = doc["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["client"] == "frontend" && l["server"] == "catalog")
        .unwrap();
    let want = links[&("frontend".to_owned(), "catalog".to_owned())];
    assert_eq!(l["evidence"], "both");
    assert_eq!(l["protocol"], "grpc");
    assert_eq!(l["requests"], want["requests"]);
    let failed = n(&l["status"]["4xx"]) + n(&l["status"]["5xx"]);
    assert_eq!(failed, n(&want["failed"]));
}
