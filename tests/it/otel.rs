//! `--otlp-endpoint` (feature `otel`) against a real collector: rotel (`pip install
//! rotel`), which the test starts with an OTLP/HTTP receiver and forwards to a sink that
//! decodes what arrives with the OpenTelemetry protobuf definitions
//! (tests/otel/otlp_sink.py). What arrived must equal links.json.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::repo;

/// Children stopped (SIGTERM, then waited for) however the test ends.
struct Stopped(Child);
impl Drop for Stopped {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of a child this test started and has not reaped.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

/// `rotel-agent` on PATH, else the binary inside the pip package.
fn rotel_bin() -> PathBuf {
    if Command::new("rotel-agent")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return PathBuf::from("rotel-agent");
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import os, rotel; print(os.path.join(os.path.dirname(rotel.__file__), 'rotel-agent'))",
        ])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "rotel is needed by this test (`pip install rotel`; scripts/test.sh installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The sink's lines of one signal.
fn received(path: &Path, signal: &str) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["signal"] == signal)
        .map(|v| v["body"].clone())
        .collect()
}

fn attrs(point: &Value) -> BTreeMap<String, String> {
    point["attributes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            let v = &a["value"];
            let s = v["stringValue"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            (a["key"].as_str().unwrap().to_string(), s)
        })
        .collect()
}

/// Every data point of metric `name`: its labels and its JSON.
fn points<'a>(bodies: &'a [Value], name: &str) -> Vec<(BTreeMap<String, String>, &'a Value)> {
    let mut out = Vec::new();
    for body in bodies {
        for rm in body["resourceMetrics"].as_array().into_iter().flatten() {
            for sm in rm["scopeMetrics"].as_array().into_iter().flatten() {
                for m in sm["metrics"].as_array().into_iter().flatten() {
                    if m["name"] != name {
                        continue;
                    }
                    for kind in ["sum", "gauge", "histogram"] {
                        for p in m[kind]["dataPoints"].as_array().into_iter().flatten() {
                            out.push((attrs(p), p));
                        }
                    }
                }
            }
        }
    }
    out
}

#[track_caller]
fn as_u64(v: &Value) -> u64 {
    // protobuf JSON writes 64-bit integers as strings.
    match (v.as_str(), v.as_u64()) {
        (Some(s), _) => s.parse().unwrap(),
        (None, Some(n)) => n,
        _ => panic!("not an integer: {v}"),
    }
}

#[test]
fn links_reach_a_real_collector_as_servicegraph_and_linkrank_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let sink_out = dir.path().join("received.jsonl");
    let mut sink = Command::new("python3")
        .arg(repo("tests/otel/otlp_sink.py"))
        .arg(&sink_out)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs the sink");
    let mut line = String::new();
    BufReader::new(sink.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let sink = Stopped(sink);
    let sink_port: u16 = line.trim().parse().unwrap_or_else(|_| {
        panic!("the sink did not start (needs `pip install opentelemetry-proto`): {line:?}")
    });
    let (grpc, http) = (free_port(), free_port());
    let rotel = Stopped(
        Command::new(rotel_bin())
            .args(["start", "--otlp-grpc-endpoint"])
            .arg(format!("127.0.0.1:{grpc}"))
            .arg("--otlp-http-endpoint")
            .arg(format!("127.0.0.1:{http}"))
            .args(["--exporter", "otlp", "--otlp-exporter-protocol", "http"])
            .arg("--otlp-exporter-endpoint")
            .arg(format!("http://127.0.0.1:{sink_port}"))
            .stdout(Stdio::null())
            .spawn()
            .expect("rotel-agent starts"),
    );
    wait_listening(http);

    let out = dir.path().join("out");
    let st = Command::new(assert_cmd::cargo::cargo_bin("linkrank"))
        .args([
            "analyze",
            "--quiet",
            "--reproducible",
            "--timings",
            "--otlp-endpoint",
        ])
        .arg(format!("http://127.0.0.1:{http}"))
        .arg("--out")
        .arg(&out)
        .arg(repo("captures/prod.pcap"))
        .status()
        .unwrap();
    assert!(st.success());
    // rotel batches; stopping it flushes what it holds to the sink.
    drop(rotel);
    let deadline = Instant::now() + Duration::from_secs(15);
    while received(&sink_out, "metrics").is_empty() || received(&sink_out, "traces").is_empty() {
        assert!(Instant::now() < deadline, "the collector forwarded nothing");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(sink);
    let metrics = received(&sink_out, "metrics");
    let links: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("links.json")).unwrap()).unwrap();
    let links = links["links"].as_array().unwrap();

    // The servicegraph connector's metrics: one series per link with requests, the
    // request and failure counts of links.json, a duration histogram per request.
    let totals = points(&metrics, "traces_service_graph_request_total");
    let failed = points(&metrics, "traces_service_graph_request_failed_total");
    let client_h = points(&metrics, "traces_service_graph_request_client_seconds");
    let server_h = points(&metrics, "traces_service_graph_request_server_seconds");
    let with_requests: Vec<&Value> = links
        .iter()
        .filter(|l| l["requests"].as_u64().unwrap_or(0) > 0)
        .collect();
    assert!(with_requests.len() >= 5, "the demo has several HTTP links");
    assert_eq!(totals.len(), with_requests.len());
    for l in &with_requests {
        let key = |p: &BTreeMap<String, String>| {
            p["client"] == l["client"].as_str().unwrap()
                && p["server"] == l["server"].as_str().unwrap()
        };
        let requests = l["requests"].as_u64().unwrap();
        let (labels, total) = totals
            .iter()
            .find(|(a, _)| key(a))
            .unwrap_or_else(|| panic!("no request_total for {} -> {}", l["client"], l["server"]));
        assert_eq!(labels["connection_type"], "");
        assert_eq!(as_u64(&total["asInt"]), requests, "{labels:?}");
        let (_, f) = failed.iter().find(|(a, _)| key(a)).unwrap();
        assert_eq!(as_u64(&f["asInt"]), l["status"]["5xx"].as_u64().unwrap());
        // Every request seen whole has both durations.
        let complete = requests - l["incomplete"].as_u64().unwrap_or(0);
        for h in [&client_h, &server_h] {
            let (_, p) = h.iter().find(|(a, _)| key(a)).unwrap();
            let n = as_u64(&p["count"]);
            assert!(n >= complete && n <= requests, "{n} of {requests}");
        }
    }
    // linkrank's own: score and rank of every link, the target as an attribute.
    let scores = points(&metrics, "linkrank.link.score");
    let ranks = points(&metrics, "linkrank.link.rank");
    assert_eq!(scores.len(), links.len());
    for l in links {
        let key = |p: &BTreeMap<String, String>| {
            p["client"] == l["client"].as_str().unwrap()
                && p["server"] == l["server"].as_str().unwrap()
        };
        let (labels, s) = scores.iter().find(|(a, _)| key(a)).unwrap();
        assert_eq!(
            labels["linkrank.target"],
            l["recommendation"]["target"].as_str().unwrap()
        );
        assert!((s["asDouble"].as_f64().unwrap() - l["score"].as_f64().unwrap()).abs() < 1e-9);
        let (_, r) = ranks.iter().find(|(a, _)| key(a)).unwrap();
        assert_eq!(r["asDouble"].as_f64().unwrap(), l["rank"].as_f64().unwrap());
    }
    assert!(!points(&metrics, "linkrank.link.request.header.size").is_empty());

    // The run as a trace: one root span, a child per stage in the order they ran.
    let traces = received(&sink_out, "traces");
    let spans: Vec<&Value> = traces
        .iter()
        .flat_map(|t| t["resourceSpans"].as_array().into_iter().flatten())
        .flat_map(|r| r["scopeSpans"].as_array().into_iter().flatten())
        .flat_map(|s| s["spans"].as_array().into_iter().flatten())
        .collect();
    let root = spans
        .iter()
        .find(|s| s["name"] == "linkrank analyze")
        .expect("the run's span");
    let mut children: Vec<&&Value> = spans
        .iter()
        .filter(|s| s["parentSpanId"] == root["spanId"])
        .collect();
    children.sort_by_key(|s| as_u64(&s["startTimeUnixNano"]));
    let names: Vec<&str> = children
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    // The stages --timings wrote for the same run.
    let timings: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("timings.json")).unwrap()).unwrap();
    let stages: Vec<&str> = timings
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert!(stages.len() >= 6, "{stages:?}");
    assert_eq!(names, stages);
}
