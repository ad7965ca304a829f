//! The trace side at scale: a trace-only `analyze` holds no call and no span beyond its
//! bounds, so its peak RSS does not grow with the span count; and its reports are the
//! same whatever the thread count.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::robustness::run_measured_with;

/// An OTLP/JSON-lines file of `spans` spans from the bench generator.
fn bench_spans(dir: &Path, spans: usize) -> PathBuf {
    let out = dir.join(format!("spans-{spans}.otlp.jsonl"));
    let gen = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/make_spans.py");
    let ok = Command::new("python3")
        .arg(gen)
        .arg(&out)
        .arg(spans.to_string())
        .status()
        .unwrap();
    assert!(ok.success(), "make_spans.py failed");
    out
}

/// Open spans held at most: a few of the generator's traces pass it.
const WINDOW: &str = "20000";

#[test]
fn peak_rss_of_a_trace_run_is_flat_in_the_span_count() {
    let dir = tempfile::tempdir().unwrap();
    let small = bench_spans(dir.path(), 60_000);
    let large = bench_spans(dir.path(), 240_000);
    let limit = Duration::from_secs(300);
    let options = ["--trace-window", WINDOW];
    let a = run_measured_with(&[&small], &options, limit);
    let b = run_measured_with(&[&large], &options, limit);
    for (what, r) in [("1x", &a), ("4x", &b)] {
        eprintln!("{what}: exit {:?}, peak RSS {} MB", r.code, r.max_rss_mb);
        assert_eq!(r.code, Some(0), "{what}: {}", r.stderr);
    }
    let spans = |r: &crate::robustness::Run| r.links["traces"]["spans"].as_u64().unwrap();
    // The generator writes whole batches of 512 spans.
    assert!(
        spans(&b) * 10 >= spans(&a) * 39,
        "{} vs {}",
        spans(&b),
        spans(&a)
    );
    // Both past the chains' sample bound: the chains read a sample of the same size.
    let sample = |r: &crate::robustness::Run| r.links["traces"]["chain_sample"].clone();
    assert!(
        sample(&a)["traces_left_out"].as_u64().unwrap() > 0,
        "{}",
        sample(&a)
    );
    assert!(
        sample(&b)["traces_left_out"].as_u64().unwrap() > 0,
        "{}",
        sample(&b)
    );
    // Keeping the calls (about 400 bytes each, 0.6 a span) would add some 50 MB for the
    // 180,000 more spans, and holding the spans more again.
    assert!(
        b.max_rss_mb <= a.max_rss_mb + a.max_rss_mb / 5 + 4,
        "peak RSS grew with the input: {} MB at 1x, {} MB at 4x",
        a.max_rss_mb,
        b.max_rss_mb
    );
}

/// Every file of a report folder, by name.
fn folder(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn trace_reports_are_byte_identical_across_runs_and_thread_counts() {
    let dir = tempfile::tempdir().unwrap();
    let spans = bench_spans(dir.path(), 30_000);
    let run = |threads: &str, out: &str| {
        let out = dir.path().join(out);
        let ok = Command::new(env!("CARGO_BIN_EXE_linkrank"))
            .args(["analyze", "--quiet", "--reproducible", "--no-auto-services"])
            // The chains read a sample of the traces at this bound: it is the same too.
            .args(["--trace-window", WINDOW])
            .arg(&spans)
            .arg("--out")
            .arg(&out)
            .args(["--threads", threads])
            .status()
            .unwrap();
        assert!(ok.success());
        folder(&out)
    };
    let first = run("1", "t1");
    let names: Vec<&str> = first.iter().map(|f| f.0.as_str()).collect();
    assert!(
        names.contains(&"links.json") && names.contains(&"report.md"),
        "{names:?}"
    );
    let links: serde_json::Value =
        serde_json::from_slice(&first.iter().find(|f| f.0 == "links.json").unwrap().1).unwrap();
    assert!(
        links["traces"]["chain_sample"]["traces_left_out"]
            .as_u64()
            .unwrap()
            > 0,
        "{}",
        links["traces"]
    );
    for (threads, out) in [("1", "t1-again"), ("2", "t2"), ("5", "t5")] {
        let other = run(threads, out);
        assert_eq!(other.len(), first.len(), "{threads} threads: other files");
        for (a, b) in first.iter().zip(&other) {
            assert_eq!(a.0, b.0);
            assert!(a.1 == b.1, "{} differs at {threads} threads", a.0);
        }
    }
}
