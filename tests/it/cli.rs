//! The `linkrank` binary end to end: outputs, exit codes, messages, privacy.

use crate::common::*;
use assert_cmd::Command;
use polars::prelude::*;
use predicates::prelude::*;

fn linkrank() -> Command {
    Command::cargo_bin("linkrank").unwrap()
}

#[test]
fn analyze_writes_both_tables_and_the_quality_summary() {
    let out = tempfile::tempdir().unwrap();
    linkrank()
        .args([
            "analyze",
            repo("fixtures/keepalive.pcap").to_str().unwrap(),
            "--out",
        ])
        .arg(out.path())
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "exchanges                                    7",
        ))
        .stdout(predicate::str::contains("http/1.1     1"));
    let t = linkrank::tables::read_tables(&[
        out.path().join("exchanges.parquet"),
        out.path().join("connections.parquet"),
    ])
    .unwrap();
    assert_eq!(t.exchanges.height(), 7);
    assert_eq!(t.connections.height(), 1);
    let q: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("quality.json")).unwrap())
            .unwrap();
    assert_eq!(q["schema"], "linkrank.quality/v1");
    assert_eq!(q["capture"]["packets"], 22);
    assert_eq!(q["inputs"][0]["format"], "pcap");
}

#[test]
fn default_output_folder_is_reports_slash_stem() {
    let cwd = tempfile::tempdir().unwrap();
    linkrank()
        .current_dir(cwd.path())
        .args([
            "analyze",
            "-q",
            repo("fixtures/two_interfaces.pcapng").to_str().unwrap(),
        ])
        .assert()
        .success()
        .stdout("");
    assert!(cwd
        .path()
        .join("reports/two_interfaces/exchanges.parquet")
        .is_file());
}

#[test]
fn a_missing_file_exits_1_naming_it() {
    linkrank()
        .args(["analyze", "/nonexistent/prod.pcap"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("/nonexistent/prod.pcap")
                .and(predicate::str::contains("cannot read")),
        );
}

#[test]
fn a_file_that_is_not_a_capture_exits_1_naming_it() {
    let readme = repo("README.md");
    linkrank()
        .args(["analyze", readme.to_str().unwrap()])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("README.md")
                .and(predicate::str::contains("not a pcap or pcapng")),
        );
}

#[test]
fn bad_arguments_exit_2() {
    linkrank().args(["analyze"]).assert().code(2);
    linkrank()
        .args(["analyze", "--idle-timeout", "-1", "x.pcap"])
        .assert()
        .code(2);
}

#[test]
fn a_capture_cut_short_is_analysed_with_a_warning_and_exits_0() {
    let out = tempfile::tempdir().unwrap();
    linkrank()
        .args([
            "analyze",
            repo("fixtures/truncated.pcap").to_str().unwrap(),
            "--out",
        ])
        .arg(out.path())
        .assert()
        .success()
        .stderr(
            predicate::str::contains("truncated.pcap")
                .and(predicate::str::contains("cut short at byte")),
        )
        .stdout(predicate::str::contains(
            "exchanges                                    3",
        ));
}

#[test]
fn unwritable_output_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    linkrank()
        .args([
            "analyze",
            repo("fixtures/keepalive.pcap").to_str().unwrap(),
            "--out",
        ])
        .arg(file.join("sub"))
        .assert()
        .code(3);
}

#[test]
fn gzip_captures_are_read_transparently_whatever_their_name() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("capture.bin");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(&std::fs::read(repo("fixtures/pipelined.pcap")).unwrap())
        .unwrap();
    enc.finish().unwrap();
    let (plain, _) = analyse(&[repo("fixtures/pipelined.pcap")]);
    let (zipped, cov) = analyse(&[gz]);
    assert!(plain.exchanges.equals_missing(&zipped.exchanges));
    assert_eq!(cov.packets, 16);
}

#[test]
fn tables_of_earlier_runs_merge_as_inputs() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    for (dir, f) in [(&a, "keepalive.pcap"), (&b, "new_conn_per_request.pcap")] {
        linkrank()
            .args([
                "analyze",
                "-q",
                repo(&format!("fixtures/{f}")).to_str().unwrap(),
                "--out",
            ])
            .arg(dir.path())
            .assert()
            .success();
    }
    linkrank()
        .args(["analyze", "-q", "--out"])
        .arg(c.path())
        .arg(a.path().join("exchanges.parquet"))
        .arg(a.path().join("connections.parquet"))
        .arg(b.path().join("exchanges.parquet"))
        .arg(b.path().join("connections.parquet"))
        .assert()
        .success();
    let t = linkrank::tables::read_tables(&[
        c.path().join("exchanges.parquet"),
        c.path().join("connections.parquet"),
    ])
    .unwrap();
    assert_eq!(t.exchanges.height(), 7 + 5);
    assert_eq!(t.connections.height(), 1 + 5);
}

/// Every string cell of both tables, and everything printed, is free of the secrets the
/// fixture clients sent (fixtures/scripts: bearer tokens, cookies, `?token=` queries).
#[test]
fn no_secret_reaches_any_output() {
    let secrets = [
        "eyJhbGciOiJIUzI1NiJ9",
        "fx-cookie-7f3a",
        "fx-csrf-91b2",
        "fx-query-secret-55",
        "pl-secret-1",
        "pl-cookie-2",
        "demo-sess-8c1f02",
        "demo-csrf-47aa",
        "demo-query-secret-19",
        "ZGVtby11c2Vy",
        "Bearer",
        "session=",
        "token=",
    ];
    // Make sure the captures really carry them, or the test proves nothing.
    let mut raw = Vec::new();
    for f in [
        "keepalive.pcap",
        "pipelined.pcap",
        "gzip.pcap",
        "chunked.pcap",
    ] {
        raw.extend(std::fs::read(repo(&format!("fixtures/{f}"))).unwrap());
    }
    let raw = String::from_utf8_lossy(&raw);
    for s in [
        "fx-cookie-7f3a",
        "fx-query-secret-55",
        "pl-secret-1",
        "eyJhbGciOiJIUzI1NiJ9",
    ] {
        assert!(raw.contains(s), "fixture lost its secret {s}");
    }
    // The demo's clients send a Bearer token, a cookie and `?token=` too.
    let demo =
        String::from_utf8_lossy(&std::fs::read(repo("captures/prod.pcap")).unwrap()).into_owned();
    for s in ["Bearer", "session=", "token="] {
        assert!(demo.contains(s), "the demo lost its secret {s}");
    }
    for f in [
        "fixtures/keepalive.pcap",
        "fixtures/pipelined.pcap",
        "fixtures/gzip.pcap",
        "fixtures/chunked.pcap",
        "captures/prod.pcap",
    ] {
        let out = tempfile::tempdir().unwrap();
        let run = linkrank()
            .args(["analyze", repo(f).to_str().unwrap(), "--out"])
            .arg(out.path())
            .assert()
            .success();
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&run.get_output().stdout),
            String::from_utf8_lossy(&run.get_output().stderr)
        );
        let mut quality = String::new();
        for report in ["quality.json", "links.json", "links.csv", "report.md"] {
            quality += &std::fs::read_to_string(out.path().join(report)).unwrap();
        }
        let t = linkrank::tables::read_tables(&[
            out.path().join("exchanges.parquet"),
            out.path().join("connections.parquet"),
        ])
        .unwrap();
        let mut cells = String::new();
        for df in [&t.exchanges, &t.connections] {
            for col in df.columns() {
                if col.dtype() == &DataType::String {
                    for v in col.str().unwrap().iter().flatten() {
                        cells.push_str(v);
                        cells.push('\n');
                    }
                }
            }
        }
        for s in secrets {
            assert!(!printed.contains(s), "{f}: terminal shows {s}");
            assert!(!quality.contains(s), "{f}: a report file holds {s}");
            assert!(!cells.contains(s), "{f}: a table holds {s}");
        }
        assert!(!cells.contains('?'), "{f}: a query string survived");
        // Routes in the reports are templated and carry no query either.
        let links: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.path().join("links.json")).unwrap())
                .unwrap();
        for link in links["links"].as_array().unwrap() {
            for r in link["routes"].as_array().unwrap() {
                let route = r["route"].as_str().unwrap_or("");
                assert!(!route.contains('?'), "{f}: route {route} keeps a query");
            }
        }
    }
}

/// `--timings` prints each stage's time and writes timings.json, stages in the order they
/// run; without it no timings.json is written (the other outputs stay reproducible).
#[test]
fn timings_name_every_stage_in_order() {
    let with = tempfile::tempdir().unwrap();
    linkrank()
        .args([
            "analyze",
            "fixtures/keepalive.pcap",
            "--quiet",
            "--timings",
            "--out",
        ])
        .arg(with.path())
        .assert()
        .success()
        .stderr(predicate::str::contains("captures").and(predicate::str::contains("total")));
    let t: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(with.path().join("timings.json")).unwrap())
            .unwrap();
    let stages: Vec<&str> = t
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        [
            "traces and tables in",
            "captures",
            "tables out",
            "join and names",
            "link measures",
            "chains",
            "assess, rank, plan",
            "reports"
        ]
    );
    assert!(t
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["ms"].as_f64().unwrap() >= 0.0));
    let without = tempfile::tempdir().unwrap();
    linkrank()
        .args(["analyze", "fixtures/keepalive.pcap", "--quiet", "--out"])
        .arg(without.path())
        .assert()
        .success();
    assert!(!without.path().join("timings.json").exists());
    assert!(without.path().join("links.json").exists());
}
