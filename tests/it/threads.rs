//! The reports do not depend on the thread count: `analyze --reproducible` writes the
//! same files, byte for byte, with `--threads 1` and with several threads (connections
//! shared among the threads by 5-tuple, their rows merged and renumbered).

use std::path::Path;

use assert_cmd::Command;

use crate::common::repo;

/// Every file `analyze --reproducible --threads N INPUTS` writes, by name.
fn outputs(inputs: &[&str], threads: u16) -> Vec<(String, Vec<u8>)> {
    let out = tempfile::tempdir().unwrap();
    let mut cmd = Command::cargo_bin("linkrank").unwrap();
    cmd.args(["analyze", "--quiet", "--reproducible", "--threads"])
        .arg(threads.to_string())
        .arg("--out")
        .arg(out.path());
    for i in inputs {
        cmd.arg(repo(i));
    }
    cmd.assert().success();
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| (name(&p), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    files
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

fn same_at_1_and_n(inputs: &[&str]) {
    let one = outputs(inputs, 1);
    assert!(one.iter().any(|(n, _)| n == "links.json"));
    for n in [2, 5] {
        let many = outputs(inputs, n);
        let names = |v: &[(String, Vec<u8>)]| v.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(&one),
            names(&many),
            "{inputs:?}: files at {n} threads"
        );
        for ((file, a), (_, b)) in one.iter().zip(&many) {
            assert!(
                a == b,
                "{inputs:?}: {file} differs between 1 and {n} threads"
            );
        }
    }
}

/// The demo: many services and connections, TLS, keep-alive and per-request
/// connections, JSON samples (whose bottom-k sample merges exactly).
#[test]
fn demo_reports_are_identical_at_any_thread_count() {
    same_at_1_and_n(&["captures/prod.pcap"]);
}

/// Two nodes' captures of the same connections, one clock 37 ms off: every copy of a
/// connection reaches the same thread, and the clock offsets merge.
#[test]
fn two_node_captures_are_identical_at_any_thread_count() {
    same_at_1_and_n(&[
        "fixtures/chains/multinode_a.pcap",
        "fixtures/chains/multinode_b.pcap",
    ]);
}

/// HTTP/2 and gRPC streams, and a capture joined with its traces.
#[test]
fn h2_and_traced_runs_are_identical_at_any_thread_count() {
    same_at_1_and_n(&["fixtures/h2/grpc_kinds.pcap"]);
    same_at_1_and_n(&[
        "fixtures/traced_rpc/rpc.pcap",
        "fixtures/traced_rpc/rpc.otlp.jsonl",
    ]);
}
