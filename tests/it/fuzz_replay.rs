//! Replays the committed fuzz corpora (`fuzz/corpus-committed/<target>/`) through the
//! library's fuzz harnesses (`linkrank::testing::fuzz`), so that every input the fuzzers
//! kept, and every crash turned into a regression input, is checked by a plain
//! `cargo test` on stable. See docs/fuzzing.md.

use std::path::{Path, PathBuf};

use linkrank::testing::fuzz::TARGETS;

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus-committed")
        .join(target)
}

/// The files of a target's corpus, in name order.
fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = corpus_dir(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: no committed corpus: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str) {
    let (_, harness) = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .unwrap_or_else(|| panic!("no harness named {target}"));
    let files = inputs(target);
    assert!(
        !files.is_empty(),
        "{}: the committed corpus is empty",
        corpus_dir(target).display()
    );
    for path in &files {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // Name the input before the harness can panic on it.
        let result = std::panic::catch_unwind(|| harness(&data));
        if let Err(panic) = result {
            eprintln!("{target}: {} fails", path.display());
            std::panic::resume_unwind(panic);
        }
    }
}

#[test]
fn every_target_has_a_test_here() {
    let listed = [
        "capture_reader",
        "decode_frame",
        "tcp_http_flow",
        "http1",
        "http2",
        "trace_otlp_json",
        "trace_otlp_proto",
        "trace_jaeger",
        "trace_zipkin",
        "services_yaml",
        "k8s_json",
    ];
    let names: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names, listed,
        "a harness without a replay test, or the reverse"
    );
    for name in names {
        let bin = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/fuzz_targets")
            .join(format!("{name}.rs"));
        assert!(bin.is_file(), "{}: no fuzz target", bin.display());
    }
}

#[test]
fn capture_reader() {
    replay("capture_reader");
}

#[test]
fn decode_frame() {
    replay("decode_frame");
}

#[test]
fn tcp_http_flow() {
    replay("tcp_http_flow");
}

#[test]
fn http1() {
    replay("http1");
}

#[test]
fn http2() {
    replay("http2");
}

#[test]
fn trace_otlp_json() {
    replay("trace_otlp_json");
}

#[test]
fn trace_otlp_proto() {
    replay("trace_otlp_proto");
}

#[test]
fn trace_jaeger() {
    replay("trace_jaeger");
}

#[test]
fn trace_zipkin() {
    replay("trace_zipkin");
}

#[test]
fn services_yaml() {
    replay("services_yaml");
}

#[test]
fn k8s_json() {
    replay("k8s_json");
}

/// The reproducers of every finding (`fuzz/regressions/<target>/`, named after what they
/// broke): each was fixed and must stay fixed. At least one per finding is kept here.
#[test]
fn regressions_stay_fixed() {
    let mut replayed = 0;
    let mut failing = Vec::new();
    for (target, harness) in TARGETS {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/regressions")
            .join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for path in files {
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            replayed += 1;
            if std::panic::catch_unwind(|| harness(&data)).is_err() {
                failing.push(path.display().to_string());
            }
        }
    }
    assert!(
        replayed >= 5,
        "the regression inputs are missing: {replayed} found"
    );
    assert!(failing.is_empty(), "failing again:\n{}", failing.join("\n"));
}
