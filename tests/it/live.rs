//! Live capture (`analyze --interface`, feature `live`) against real traffic: a real
//! HTTP server and curl in two network namespaces (tests/live/http_netns.sh). The live
//! analysis must give the same exchanges and connections as tcpdump's file of the same
//! traffic analysed by linkrank, and the same as its own `--write` pcapng.
//!
//! Namespaces and capture need root. Without it the tests log a skip, unless
//! `LINKRANK_REQUIRE_LIVE=1` (set by .ci/run, which runs as root) makes that a failure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use polars::prelude::*;

use crate::common::{repo, strs, u64s};

const REQUIRE_VAR: &str = "LINKRANK_REQUIRE_LIVE";

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `true` to run a test that needs root; otherwise logs the skip (or fails, see above).
pub(crate) fn require_root() -> bool {
    if is_root() {
        return true;
    }
    let name = std::thread::current()
        .name()
        .unwrap_or("a live test")
        .to_owned();
    if std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1") {
        panic!(
            "{name} needs root (network namespaces, capture), and {REQUIRE_VAR}=1 says it must run"
        );
    }
    eprintln!("skipped {name}: needs root (network namespaces, capture)");
    false
}

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("linkrank")
}

/// Runs tests/live/http_netns.sh once for every test of this module; its output folder.
fn netns_run() -> &'static Path {
    static RUN: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, out) = RUN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        let status = Command::new("bash")
            .arg(repo("tests/live/http_netns.sh"))
            .arg(bin())
            .arg(&out)
            .status()
            .expect("bash runs the netns script");
        assert!(
            status.success(),
            "tests/live/http_netns.sh failed: {status}"
        );
        (dir, out)
    });
    out
}

fn analyze_file(capture: &Path, out: &Path) {
    let st = Command::new(bin())
        .args(["analyze", "--quiet", "--reproducible", "--out"])
        .arg(out)
        .arg(capture)
        .status()
        .unwrap();
    assert!(st.success(), "analyze {} failed", capture.display());
}

fn parquet(path: &Path) -> DataFrame {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ParquetReader::new(file).finish().unwrap()
}

/// Two captures' stamps of one received packet may differ by microseconds: with no
/// socket asking for a shared stamp, the kernel stamps the packet for each packet
/// socket as it delivers it. Times (`*_ns` columns) agree within this.
const STAMP_TOLERANCE_NS: i64 = 100_000;

/// The columns in which two tables of the same schema differ, with both values of the
/// first differing row (for the failure message). Times within `STAMP_TOLERANCE_NS`.
fn differences(a: &DataFrame, b: &DataFrame) -> Vec<String> {
    if a.height() != b.height() || a.get_column_names() != b.get_column_names() {
        return vec![format!("shapes {:?} and {:?}", a.shape(), b.shape())];
    }
    a.get_column_names()
        .into_iter()
        .filter_map(|name| {
            let (x, y) = (a.column(name).ok()?, b.column(name).ok()?);
            let differ = |i: usize| match (x.get(i).ok()?, y.get(i).ok()?) {
                (AnyValue::Int64(p), AnyValue::Int64(q)) if name.ends_with("_ns") => {
                    Some((p - q).abs() > STAMP_TOLERANCE_NS)
                }
                (p, q) => Some(p != q),
            };
            let row = (0..x.len()).find(|&i| differ(i).unwrap_or(true))?;
            Some(format!(
                "{} row {row}: {:?} vs {:?}",
                x.name(),
                x.get(row).ok(),
                y.get(row).ok()
            ))
        })
        .collect()
}

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// (status, route) per request curl made, in order.
fn sent(run: &Path) -> Vec<(u64, String)> {
    std::fs::read_to_string(run.join("sent.tsv"))
        .unwrap()
        .lines()
        .map(|l| {
            let (code, path) = l.split_once('\t').unwrap();
            (code.parse().unwrap(), path.to_string())
        })
        .collect()
}

#[test]
fn live_exchanges_equal_tcpdumps_file_of_the_same_traffic() {
    if !require_root() {
        return;
    }
    let run = netns_run();
    let from_file = run.join("file");
    analyze_file(&run.join("tcpdump.pcap"), &from_file);
    let live = parquet(&run.join("live/exchanges.parquet"));
    let file = parquet(&from_file.join("exchanges.parquet"));
    // What curl did: ten GETs, two of them to missing files.
    let sent = sent(run);
    assert_eq!(sent.len(), 10);
    assert_eq!(live.height(), sent.len(), "{live}");
    let statuses: Vec<u64> = u64s(&live, "status").into_iter().flatten().collect();
    assert_eq!(
        statuses,
        sent.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
        "status per request, in order"
    );
    assert_eq!(
        strs(&live, "route")
            .into_iter()
            .flatten()
            .collect::<Vec<_>>(),
        sent.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>()
    );
    // Every column, timestamps included (both read the kernel's nanosecond stamps).
    assert_eq!(differences(&live, &file), Vec::<String>::new());
    let live_conns = parquet(&run.join("live/connections.parquet"));
    let file_conns = parquet(&from_file.join("connections.parquet"));
    assert_eq!(live_conns.height(), 10, "one connection per request");
    assert_eq!(differences(&live_conns, &file_conns), Vec::<String>::new());
    // The ranked links agree too (their counts; latencies differ by the stamps').
    let links = |dir: &Path| -> Vec<String> {
        json(&dir.join("links.json"))["links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let keys = ["client", "server", "protocol", "requests", "connections"];
                let mut v: Vec<String> = keys.iter().map(|k| l[k].to_string()).collect();
                v.extend([l["status"].to_string(), l["bytes"].to_string()]);
                v.join(" ")
            })
            .collect()
    };
    let live_links = links(&run.join("live"));
    assert_eq!(live_links.len(), 1, "{live_links:?}");
    assert_eq!(live_links, links(&from_file));
}

#[test]
fn the_written_pcapng_holds_what_was_analysed() {
    if !require_root() {
        return;
    }
    let run = netns_run();
    let quality = json(&run.join("live/quality.json"));
    let counters = &quality["capture"]["live"][0];
    assert_eq!(counters["interface"], "veth-c");
    let analysed = counters["analysed"].as_u64().unwrap();
    assert_eq!(counters["written"].as_u64().unwrap(), analysed);
    assert_eq!(counters["write_skipped"], 0);
    assert_eq!(quality["capture"]["packets"].as_u64().unwrap(), analysed);
    // libpcap counted what it passed; nothing was lost on a quiet veth.
    assert!(
        counters["received"].as_u64().unwrap() >= analysed,
        "{counters}"
    );
    assert_eq!(counters["dropped"], 0, "{counters}");
    // tcpdump's file has the same packets (it started before and stopped after).
    let tshark_count = |p: &Path| {
        crate::common::tshark(&["-r", &p.display().to_string(), "-Y", "tcp"])
            .lines()
            .count()
    };
    let written = run.join("written.pcapng");
    assert_eq!(
        tshark_count(&written),
        tshark_count(&run.join("tcpdump.pcap")),
        "TCP packets in the written pcapng and in tcpdump's file"
    );
    let again = run.join("again");
    analyze_file(&written, &again);
    let (again, live) = (
        parquet(&again.join("exchanges.parquet")),
        parquet(&run.join("live/exchanges.parquet")),
    );
    assert_eq!(differences(&again, &live), Vec::<String>::new());
    // The report and the terminal summary show libpcap's counters.
    let md = std::fs::read_to_string(run.join("live/report.md")).unwrap();
    assert!(md.contains("Live capture (libpcap counters)"), "{md}");
    let stdout = std::fs::read_to_string(run.join("live.stdout")).unwrap();
    assert!(stdout.contains("live capture (libpcap)"), "{stdout}");
    assert!(!stdout.contains("were dropped"), "{stdout}");
}

#[test]
fn packets_and_duration_end_a_live_run_by_themselves() {
    if !require_root() {
        return;
    }
    let run = netns_run();
    let q = json(&run.join("packets/quality.json"));
    assert_eq!(q["capture"]["packets"], 25, "{q}");
    assert_eq!(q["capture"]["live"][0]["analysed"], 25);
    // The ten requests were sent in full: more than 25 packets arrived.
    let sent2 = std::fs::read_to_string(run.join("sent2.tsv")).unwrap();
    assert_eq!(sent2.lines().filter(|l| *l == "200").count(), 10);
    let q = json(&run.join("duration/quality.json"));
    assert_eq!(q["capture"]["live"][0]["interface"], "veth-c");
    assert!(run.join("duration/links.json").is_file());
}

/// Without CAP_NET_RAW: a clear message and exit code 1. As root the capability is
/// dropped with setpriv (util-linux); otherwise the test user has none already.
#[test]
fn without_cap_net_raw_a_clear_message_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = if is_root() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ])
        .arg(bin());
        c
    } else {
        Command::new(bin())
    };
    let out = cmd
        .args(["analyze", "--interface", "lo", "--duration", "1", "--out"])
        .arg(dir.path().join("r"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("not permitted") && stderr.contains("CAP_NET_RAW"),
        "{stderr}"
    );
}

#[test]
fn a_missing_interface_and_a_bad_filter_are_input_errors() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .args(["analyze", "--interface", "nosuchif0", "--out"])
        .arg(dir.path().join("a"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("nosuchif0"), "{stderr}");
    let out = Command::new(bin())
        .args(["analyze", "--interface", "lo", "--bpf", "tcp port", "--out"])
        .arg(dir.path().join("b"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("bad --bpf filter"), "{stderr}");
}

/// `watch` in windows of 2 s over 7 s: every window's reports are in place, and the
/// requests of all windows add up to what curl sent. A request cut by a window's end
/// has its request in one window and its response in the next: it is counted where
/// its method is, once.
#[test]
fn watch_windows_add_up_to_the_requests_sent() {
    if !require_root() {
        return;
    }
    let run = netns_run();
    let sent = std::fs::read_to_string(run.join("sent3.tsv")).unwrap();
    let sent: Vec<&str> = sent.lines().collect();
    assert_eq!(sent.len(), 9, "three bursts of three requests");
    let windows_dir = run.join("watch/windows");
    let mut windows: Vec<PathBuf> = std::fs::read_dir(&windows_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    windows.sort();
    assert!(
        windows
            .iter()
            .all(|w| !w.display().to_string().ends_with(".partial")),
        "{windows:?}"
    );
    // 7 s in windows of 2 s: three whole windows and the last second.
    assert!((3..=5).contains(&windows.len()), "{windows:?}");
    let mut requests = 0;
    let mut with_requests = 0;
    for w in &windows {
        for f in [
            "links.json",
            "report.md",
            "quality.json",
            "exchanges.parquet",
        ] {
            assert!(w.join(f).is_file(), "{}/{f}", w.display());
        }
        let ex = parquet(&w.join("exchanges.parquet"));
        let n = strs(&ex, "method").into_iter().flatten().count();
        with_requests += usize::from(n > 0);
        requests += n;
    }
    assert_eq!(requests, sent.len());
    assert!(with_requests >= 3, "the bursts fell in three windows");
    // Memory stays bounded over the run: the resident set (sampled every 0.1 s) never
    // passes 1 GiB, and the last window's is within 64 MiB of the first's.
    let rss: Vec<u64> = std::fs::read_to_string(run.join("watch_rss.txt"))
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    assert!(!rss.is_empty());
    let peak_kb = rss.iter().copied().max().unwrap();
    assert!(peak_kb < 1 << 20, "peak RSS {peak_kb} kB");
    let (first, last) = (rss[rss.len().min(20) - 1], rss[rss.len() - 1]);
    assert!(
        last < first + (64 << 10),
        "RSS {first} kB after 2 s, {last} kB at the end"
    );
    // links.json beside the windows is the last window's.
    let last = windows.last().unwrap();
    assert_eq!(
        std::fs::read(run.join("watch/links.json")).unwrap(),
        std::fs::read(last.join("links.json")).unwrap()
    );
}
