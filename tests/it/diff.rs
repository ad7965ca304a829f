//! `linkrank diff` on the real before/after pair of the demo (captures/before_after/):
//! the same load, gateway -> inventory moved from a new connection per request to an
//! nginx keep-alive pool. The expected figures are tshark's (captures/before_after/
//! README.md), not linkrank's.

use std::path::{Path, PathBuf};

use crate::common::repo;
use assert_cmd::Command;
use serde_json::Value;

fn capture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("captures/before_after")
        .join(name)
}

fn linkrank() -> Command {
    Command::cargo_bin("linkrank").unwrap()
}

/// Per link (client, server, tshark requests, SYNs before, SYNs after):
/// `tshark -r F -Y http.request -T fields -e ip.src -e ip.dst -e tcp.dstport` and
/// `-Y 'tcp.flags.syn==1 && tcp.flags.ack==0'`, counted per IP pair, names from
/// before.services.yaml. Requests are equal in both files (the load generator is seeded).
const TSHARK: &[(&str, &str, u64, u64, u64)] = &[
    ("client", "gateway", 320, 38, 38),
    ("gateway", "orders", 223, 5, 5),
    ("gateway", "inventory", 44, 44, 2),
    ("gateway", "users", 32, 2, 2),
    ("orders", "inventory", 187, 10, 7),
    ("orders", "payments", 109, 109, 109),
    ("orders", "users", 233, 4, 4),
    ("orders", "notifications", 61, 61, 61),
    ("payments", "users", 61, 61, 61),
];

fn run_diff(before: &Path, after: &Path, extra: &[&str]) -> (i32, Value) {
    let out = tempfile::tempdir().unwrap();
    let assert = linkrank()
        .arg("diff")
        .arg(before)
        .arg(after)
        .arg("--out")
        .arg(out.path())
        .args(extra)
        .assert();
    let code = assert.get_output().status.code().unwrap();
    let text = std::fs::read_to_string(out.path().join("diff.json")).unwrap();
    assert!(out.path().join("diff.md").is_file());
    (code, serde_json::from_str(&text).unwrap())
}

fn link<'a>(d: &'a Value, client: &str, server: &str) -> &'a Value {
    d["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["client"] == client && l["server"] == server)
        .unwrap_or_else(|| panic!("no link {client} -> {server}"))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn the_pooled_link_pays_fewer_handshakes_and_the_others_do_not_change() {
    let (code, d) = run_diff(&capture("before.pcap"), &capture("after.pcap"), &[]);
    assert_eq!(code, 0);
    assert_eq!(d["schema"], "linkrank.diff/v1");
    assert_eq!(d["before"]["kind"], "analysed");
    for &(client, server, requests, syn_before, syn_after) in TSHARK {
        let l = link(&d, client, server);
        assert_eq!(l["presence"], "both", "{client} -> {server}");
        let hs = &l["handshakes_per_request"];
        let (b, a) = (f(&hs["before"]), f(&hs["after"]));
        assert!(
            (b - syn_before as f64 / requests as f64).abs() < 1e-9,
            "{client} -> {server} before {b}"
        );
        assert!(
            (a - syn_after as f64 / requests as f64).abs() < 1e-9,
            "{client} -> {server} after {a}"
        );
        if (client, server) != ("gateway", "inventory") {
            // Unchanged within 0.02 new connections per request (the orders -> inventory
            // pool grows with parallel fan-out, by timing: 10 vs 7 of 187).
            assert!((a - b).abs() <= 0.02, "{client} -> {server}: {b} -> {a}");
        }
        // The test saw every request, on both sides.
        let t = &l["latency_test"];
        assert_eq!(t["n_before"], requests, "{client} -> {server}");
        assert_eq!(t["n_after"], requests, "{client} -> {server}");
        assert_eq!(f(&l["requests"]["before"]), requests as f64);
        // Its effect is the change of the median, links.json's p50.
        assert!((f(&t["median_before_ms"]) - f(&l["latency_ms"]["p50"]["before"])).abs() < 1e-6);
    }
    let gi = link(&d, "gateway", "inventory");
    // 44 SYNs for 44 requests -> 2 SYNs for 44 requests.
    assert_eq!(f(&gi["handshakes_per_request"]["before"]), 1.0);
    assert!((f(&gi["handshakes_per_request"]["after"]) - 2.0 / 44.0).abs() < 1e-9);
    assert_eq!(f(&gi["tcp_handshakes"]["before"]), 44.0);
    assert_eq!(f(&gi["tcp_handshakes"]["after"]), 2.0);
    // nginx's default upstream speaks HTTP/1.0; the pool needs proxy_http_version 1.1.
    assert_eq!(gi["protocol"]["before"], "http/1.0");
    assert_eq!(gi["protocol"]["after"], "http/1.1");
    assert_eq!(gi["protocol"]["changed"], true);
    let changed: Vec<&Value> = d["links"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["protocol"]["changed"] == true)
        .collect();
    assert_eq!(changed.len(), 1, "only the pooled link changed protocol");
    // The TLS link shows no HTTP, but its connections: one per POST /charges attempt, 66.
    let fraud = link(&d, "payments", "fraud");
    assert_eq!(f(&fraud["tcp_handshakes"]["before"]), 66.0);
    assert!(fraud["latency_test"].is_null());
}

#[test]
fn fail_if_regressed_fails_only_when_the_improvement_is_reversed() {
    let (before, after) = (capture("before.pcap"), capture("after.pcap"));
    let (code, d) = run_diff(&before, &after, &["--fail-if-regressed", "10"]);
    assert_eq!(code, 0, "regressed: {}", d["regressed"]);
    assert_eq!(d["regressed"].as_array().unwrap().len(), 0);
    // Swapped, the pooled link's p95 drop (7.4 -> 5.1 ms, p < 0.001) becomes a rise
    // of more than 10 %.
    let (code, d) = run_diff(&after, &before, &["--fail-if-regressed", "10"]);
    assert_eq!(code, 4);
    let gi = link(&d, "gateway", "inventory");
    assert!(f(&gi["latency_ms"]["p95"]["change_pct"]) > 10.0);
    assert!(f(&gi["latency_test"]["p_value"]) < 0.05);
    assert!(d["regressed"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r == "gateway -> inventory"));
    // The same pair without the flag: a report, not a failure.
    assert_eq!(run_diff(&after, &before, &[]).0, 0);
}

#[test]
fn a_report_folder_diffed_with_itself_shows_no_change() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("before");
    linkrank()
        .args(["analyze", "--quiet", "--out"])
        .arg(&report)
        .arg(capture("before.pcap"))
        .assert()
        .success();
    let (code, d) = run_diff(&report, &report, &["--fail-if-regressed", "0"]);
    assert_eq!(code, 0);
    assert_eq!(d["before"]["kind"], "report");
    let links = d["links"].as_array().unwrap();
    assert_eq!(links.len(), 10);
    for l in links {
        assert_eq!(l["presence"], "both");
        assert_eq!(l["protocol"]["changed"], false);
        for m in [
            "requests",
            "bytes_per_request",
            "handshakes_per_request",
            "tcp_handshakes",
        ] {
            if !l[m]["change"].is_null() {
                assert_eq!(f(&l[m]["change"]), 0.0, "{m}");
            }
        }
        if !l["latency_test"].is_null() {
            assert_eq!(f(&l["latency_test"]["p_value"]), 1.0);
            assert_eq!(l["latency_test"]["significant"], false);
            assert_eq!(f(&l["latency_ms"]["p95"]["change"]), 0.0);
        }
    }
    // A report folder against the capture it came from: the same handshake figures.
    let (_, mixed) = run_diff(&report, &capture("before.pcap"), &[]);
    let gi = link(&mixed, "gateway", "inventory");
    assert_eq!(f(&gi["handshakes_per_request"]["change"]), 0.0);
    assert_eq!(f(&gi["latency_test"]["p_value"]), 1.0);
}

#[test]
fn bad_inputs_and_arguments_have_their_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let before = capture("before.pcap");
    let out = dir.path().join("o");
    // A missing file, then a folder that is not a report: input errors.
    for bad in [dir.path().join("missing.pcap"), dir.path().to_path_buf()] {
        let assert = linkrank()
            .arg("diff")
            .arg(&bad)
            .arg(&before)
            .arg("--out")
            .arg(&out)
            .assert();
        assert.code(1);
    }
    assert!(!out.join("diff.json").exists());
    linkrank()
        .args(["diff", "--fail-if-regressed=-5"])
        .arg(&before)
        .arg(&before)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("non-negative"));
}

/// A real migration (fixtures/h2: the same client and service, HTTP/1.1 + JSON before,
/// grpcio after): the diff shows the protocol change, the bytes and connections per
/// request on each side as tshark counts them, and checks the before analysis's gRPC
/// projection against the bytes the gRPC capture measured.
#[test]
fn a_migration_to_grpc_is_measured_and_its_projection_checked() {
    let before = repo("fixtures/h2/diff_before_json.pcap");
    let after = repo("fixtures/h2/diff_after_grpc.pcap");
    let truth = |name: &str| -> Value {
        serde_json::from_str(
            &std::fs::read_to_string(repo(&format!("fixtures/h2/{name}.truth.json"))).unwrap(),
        )
        .unwrap()
    };
    let (tb, ta) = (truth("diff_before_json"), truth("diff_after_grpc"));
    let (code, d) = run_diff(&before, &after, &[]);
    assert_eq!(code, 0);
    let l = link(&d, "client", "orders");
    assert_eq!(l["protocol"]["before"], "http/1.1");
    assert_eq!(l["protocol"]["after"], "grpc");
    assert_eq!(l["requests"]["before"].as_f64(), Some(75.0));
    assert_eq!(l["requests"]["after"].as_f64(), Some(75.0));
    // Before: every TCP payload byte is HTTP/1.1. After: header blocks and DATA, each
    // frame with its 9-byte header (SETTINGS, WINDOW_UPDATE and PING are the
    // connection's, not a request's).
    let n = |v: &Value| v.as_f64().unwrap();
    let payload = &tb["connections"][0]["tcp_payload_bytes"];
    let before_bytes = (n(&payload["client"]) + n(&payload["server"])) / 75.0;
    let t = &ta["totals"];
    let frames = |k: &str| t["frames"][k].as_f64().unwrap_or(0.0);
    let headers =
        (n(&t["header_block_bytes"]) + 9.0 * (frames("HEADERS") + frames("CONTINUATION"))) / 75.0;
    let bodies = (n(&t["data_bytes"]) + 9.0 * frames("DATA")) / 75.0;
    let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
    assert!(close(n(&l["bytes_per_request"]["before"]), before_bytes));
    assert!(close(n(&l["bytes_per_request"]["after"]), headers + bodies));
    assert!(close(n(&l["handshakes_per_request"]["before"]), 1.0 / 75.0));
    assert!(close(n(&l["handshakes_per_request"]["after"]), 1.0 / 75.0));
    assert!(l["latency_test"]["n_after"].as_u64() == Some(75));
    // The projection against the measure: within a quarter on each part, the total
    // within 15% (docs/cost-model.md gives the figures).
    let p = &l["grpc_prediction"];
    assert!(close(n(&p["header_bytes_per_request"]["after"]), headers));
    assert!(close(n(&p["body_bytes_per_request"]["after"]), bodies));
    for (part, bound) in [
        ("header_bytes_per_request", 40.0),
        ("body_bytes_per_request", 25.0),
        ("bytes_per_request", 15.0),
    ] {
        let err = n(&p[part]["change_pct"]);
        assert!(err.abs() < bound, "{part}: {err:.1}% off the projection");
    }
}
