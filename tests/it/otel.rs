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

/// `linkrank analyze --otlp-listen 127.0.0.1:0` (plus `args`), started; the address it
/// listens on, read from its stderr.
struct Receiving {
    child: Option<Child>,
    addr: String,
    out: tempfile::TempDir,
}

impl Receiving {
    fn start(command: &str, args: &[&str]) -> Receiving {
        Receiving::start_in(&[], command, args)
    }

    /// Run through `prefix` (e.g. `ip netns exec NS`, which execs: the pid is linkrank's).
    fn start_in(prefix: &[&str], command: &str, args: &[&str]) -> Receiving {
        let out = tempfile::tempdir().unwrap();
        let bin = env!("CARGO_BIN_EXE_linkrank");
        let (program, rest) = match prefix.split_first() {
            Some((p, rest)) => (*p, rest),
            None => (bin, &[][..]),
        };
        let mut cmd = Command::new(program);
        if !prefix.is_empty() {
            cmd.args(rest).arg(bin);
        }
        let mut child = cmd
            .args([command, "--otlp-listen", "127.0.0.1:0", "--out"])
            .arg(out.path())
            .args(args)
            .stderr(Stdio::piped())
            .spawn()
            .expect("linkrank runs");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut addr = None;
        let mut seen = String::new();
        for _ in 0..50 {
            let mut line = String::new();
            if stderr.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            seen.push_str(&line);
            if let Some(rest) = line.strip_prefix("listening for OTLP traces on ") {
                addr = rest.split_whitespace().next().map(str::to_string);
                break;
            }
        }
        // The rest of stderr is drained so that the child never blocks on it.
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        let addr = addr.unwrap_or_else(|| panic!("linkrank did not listen: {seen}"));
        Receiving {
            child: Some(child),
            addr,
            out,
        }
    }

    /// SIGTERM, then the exit status must be success; the reports' folder.
    fn stop(mut self) -> tempfile::TempDir {
        let mut child = self.child.take().unwrap();
        // SAFETY: kill(2) on the pid of a child this test started and has not reaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = child.wait().unwrap();
        assert!(status.success(), "linkrank exited with {status}");
        std::mem::replace(&mut self.out, tempfile::tempdir().unwrap())
    }
}

impl Drop for Receiving {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// tests/otel/send_spans.py with `args`; its JSON output.
fn send_spans(args: &[&str]) -> Value {
    let out = Command::new("python3")
        .arg(repo("tests/otel/send_spans.py"))
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "send_spans.py {args:?} failed (needs `pip install opentelemetry-sdk \
         opentelemetry-exporter-otlp-proto-grpc opentelemetry-exporter-otlp-proto-http`; \
         scripts/test.sh installs them): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The requests per `client -> server` in links.json.
fn link_calls(links: &Value) -> BTreeMap<String, u64> {
    let name = |l: &Value, side: &str| l[side].as_str().unwrap().to_string();
    let mut calls = BTreeMap::new();
    for l in links["links"].as_array().unwrap() {
        let key = format!("{} -> {}", name(l, "client"), name(l, "server"));
        calls.insert(key, l["requests"].as_u64().unwrap_or(0));
    }
    calls
}

/// The Python SDK's exporters send a four-service trace set over OTLP/gRPC, over
/// OTLP/HTTP (protobuf, gzip) and as OTLP/JSON: the links are the calls the script made.
#[test]
fn spans_received_over_grpc_http_and_json_give_the_links_the_sdk_sent() {
    for protocol in ["grpc", "http", "json"] {
        let run = Receiving::start("analyze", &[]);
        let sent = send_spans(&["send", protocol, &run.addr, "12"]);
        let out = run.stop();
        let want: BTreeMap<String, u64> = sent["calls"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
            .collect();
        assert_eq!(want.len(), 4, "{sent}");
        let got = link_calls(&read_json(&out.path().join("links.json")));
        assert_eq!(got, want, "over {protocol}");
        let quality = read_json(&out.path().join("quality.json"));
        let receiver = &quality["capture"]["otlp_receiver"];
        assert_eq!(receiver["spans_accepted"], sent["spans"], "over {protocol}");
        assert_eq!(receiver["spans_rejected"], 0);
        assert_eq!(receiver["bad_requests"], 0);
        let requests = receiver["grpc_requests"].as_u64().unwrap()
            + receiver["http_requests"].as_u64().unwrap();
        assert_eq!(requests, 4, "one request per service over {protocol}");
    }
}

/// With a trace file given too, the file is read and the spans received join it: each
/// link's calls are the file's alone (another run) plus what the script sent.
#[test]
fn spans_received_add_to_a_trace_files_calls() {
    let file = repo("fixtures/traced/traced.otlp.jsonl");
    let file = file.to_str().unwrap();
    let alone = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_linkrank"))
        .args(["analyze", "-q", file, "--out"])
        .arg(alone.path())
        .status()
        .unwrap();
    assert!(status.success());
    let mut want = link_calls(&read_json(&alone.path().join("links.json")));
    let run = Receiving::start("analyze", &[file]);
    let sent = send_spans(&["send", "grpc", &run.addr, "3"]);
    let out = run.stop();
    for (link, n) in sent["calls"].as_object().unwrap() {
        *want.entry(link.clone()).or_default() += n.as_u64().unwrap();
    }
    assert!(
        want.contains_key("orders -> payments"),
        "the file and the script share a link"
    );
    assert_eq!(link_calls(&read_json(&out.path().join("links.json"))), want);
}

/// Malformed bodies get OTLP's error (gRPC INVALID_ARGUMENT, HTTP 400 with a
/// google.rpc.Status) and the receiver goes on; a request over the queue bound gets a
/// partial success counting the spans refused, counted in quality.json too.
#[test]
fn bad_requests_get_the_otlp_error_and_a_full_queue_a_partial_success() {
    let queue = 10;
    let run = Receiving::start("analyze", &["--otlp-queue-spans", &queue.to_string()]);
    let seen = send_spans(&["probe", &run.addr, &queue.to_string()]);
    let out = run.stop();
    assert_eq!(seen["grpc_bad"], "INVALID_ARGUMENT", "{seen}");
    assert_eq!(seen["http_bad_protobuf"], serde_json::json!([400, 3, true]));
    assert_eq!(seen["http_bad_json"], serde_json::json!([400, 3, true]));
    assert_eq!(seen["partial_rejected"], seen["expected_rejected"]);
    assert_eq!(seen["partial_rejected"], queue);
    assert_eq!(seen["partial_message"], true);
    assert_eq!(seen["good_after"], serde_json::json!([200, 0]));
    let quality = read_json(&out.path().join("quality.json"));
    let receiver = &quality["capture"]["otlp_receiver"];
    assert_eq!(receiver["bad_requests"], 3);
    assert_eq!(receiver["spans_rejected"], seen["expected_rejected"]);
    assert_eq!(receiver["spans_accepted"], seen["expected_accepted"]);
    assert_eq!(receiver["queue_spans"], queue);
}

/// Deletes a network namespace however the test ends.
#[cfg(feature = "live")]
struct Netns(String);

#[cfg(feature = "live")]
impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// `watch --otlp-listen` for 60 s on the loopback of a namespace of its own, in windows of
/// 20 s: three bursts of spans from the Python SDK (one per window) land in the windows
/// they were sent in, with the calls the script counted, and the peak resident set
/// (VmHWM, read from /proc while it runs) stays under 512 MiB.
#[cfg(feature = "live")]
#[test]
fn watch_receives_spans_per_window_for_60_s_within_an_rss_bound() {
    if !crate::live::require_root() {
        return;
    }
    let ns = Netns(format!("lrotlp{}", std::process::id()));
    let ip = |args: &[&str]| {
        let ok = Command::new("ip").args(args).status().unwrap().success();
        assert!(ok, "ip {args:?}");
    };
    ip(&["netns", "add", &ns.0]);
    ip(&["-n", &ns.0, "link", "set", "lo", "up"]);
    let prefix = ["ip", "netns", "exec", ns.0.as_str()];
    let mut run = Receiving::start_in(
        &prefix,
        "watch",
        // Only the datagrams below are captured: no HTTP exchange there for the spans
        // to be joined to, so each window's links are its spans' calls alone.
        &[
            "--interface",
            "lo",
            "--bpf",
            "udp",
            "--window",
            "20",
            "--duration",
            "60",
        ],
    );
    // Packets for the capture: a datagram to the discard port every 0.5 s (at most 150).
    let ticker = Stopped(
        Command::new("ip")
            .args(["netns", "exec", &ns.0, "python3", "-c"])
            .arg(
                "import socket, time\n\
                 s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
                 for _ in range(150):\n    s.sendto(b'x', ('127.0.0.1', 9)); time.sleep(0.5)",
            )
            .spawn()
            .unwrap(),
    );
    let pid = run.child.as_ref().unwrap().id();
    let hwm = || linkrank::app::timings::peak_rss(pid).map(|b| b / 1024);
    let started = Instant::now();
    let mut sent = Vec::new();
    let mut peak_kb = 0;
    for at in [5, 25, 45] {
        while started.elapsed() < Duration::from_secs(at) {
            peak_kb = peak_kb.max(hwm().unwrap_or(0));
            std::thread::sleep(Duration::from_millis(500));
        }
        let out = Command::new("ip")
            .args(["netns", "exec", &ns.0, "python3"])
            .arg(repo("tests/otel/send_spans.py"))
            .args(["send", "grpc", &run.addr, "12"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        sent.push(serde_json::from_slice::<Value>(&out.stdout).unwrap());
    }
    // Until it ends by itself (--duration), its high-water mark read while it lives.
    let mut child = run.child.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "watch did not end after --duration"
        );
        peak_kb = peak_kb.max(hwm().unwrap_or(0));
        std::thread::sleep(Duration::from_millis(500));
    }
    let status = child.wait().unwrap();
    drop(ticker);
    assert!(status.success(), "watch exited with {status}");
    assert!(peak_kb > 0, "VmHWM was read");
    eprintln!("watch --otlp-listen over 60 s: peak RSS (VmHWM) {peak_kb} kB");
    assert!(peak_kb < 512 << 10, "peak RSS {peak_kb} kB");
    let windows_dir = run.out.path().join("windows");
    let mut windows: Vec<PathBuf> = std::fs::read_dir(&windows_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    windows.sort();
    assert!((3..=4).contains(&windows.len()), "{windows:?}");
    let mut with_spans = Vec::new();
    for w in &windows {
        let quality = read_json(&w.join("quality.json"));
        let accepted = quality["capture"]["otlp_receiver"]["spans_accepted"]
            .as_u64()
            .unwrap();
        if accepted > 0 {
            with_spans.push((w.clone(), accepted));
        }
    }
    assert_eq!(with_spans.len(), 3, "one burst per window: {with_spans:?}");
    for ((w, accepted), sent) in with_spans.iter().zip(&sent) {
        assert_eq!(Some(*accepted), sent["spans"].as_u64(), "{}", w.display());
        let got = link_calls(&read_json(&w.join("links.json")));
        for (link, n) in sent["calls"].as_object().unwrap() {
            assert_eq!(
                got.get(link),
                n.as_u64().as_ref(),
                "{link} in {}",
                w.display()
            );
        }
    }
}
