//! Golden outputs (insta snapshots under tests/it/snapshots/): the terminal summary and the
//! exchanges table of real fixtures, so any change in what linkrank reports shows up in
//! review as a diff. The figures in them were checked against tshark by tests/it/fixtures.rs.

use crate::common::*;
use linkrank::report::summary::{self, InputSummary};

/// The exchanges table as text, capture times left out (they are absolute).
fn exchanges_text(file: &str) -> String {
    let (t, _) = analyse(&[repo(file)]);
    let x = t.exchanges.drop_many([
        "req_first_ns",
        "req_last_ns",
        "resp_first_ns",
        "resp_last_ns",
    ]);
    let mut out = String::new();
    let names: Vec<String> = x.get_column_names().iter().map(|s| s.to_string()).collect();
    for row in 0..x.height() {
        out.push_str(&format!("--- exchange {row}\n"));
        for name in &names {
            let v = x.column(name).unwrap().get(row).unwrap();
            out.push_str(&format!("{name}: {v}\n"));
        }
    }
    out
}

fn summary_text(file: &str) -> String {
    let (t, cov) = analyse(&[repo(file)]);
    let inputs = [InputSummary {
        path: file.into(),
        format: "pcap",
        gzipped: false,
        packets: cov.packets,
        bytes: cov.bytes,
    }];
    // The repository's path differs between machines; the snapshot names it <repo>.
    let figures = summary::TableFigures::of(&t).unwrap();
    summary::render(&inputs, &cov, &figures, std::path::Path::new("OUT"))
        .replace(env!("CARGO_MANIFEST_DIR"), "<repo>")
}

#[test]
fn keepalive_exchanges() {
    insta::assert_snapshot!(exchanges_text("fixtures/keepalive.pcap"));
}

#[test]
fn expect_100_exchanges() {
    insta::assert_snapshot!(exchanges_text("fixtures/expect_100.pcap"));
}

#[test]
fn lost_segment_exchanges() {
    insta::assert_snapshot!(exchanges_text("fixtures/lost_segment.pcap"));
}

#[test]
fn midstream_summary() {
    insta::assert_snapshot!(summary_text("fixtures/midstream.pcap"));
}

#[test]
fn truncated_summary() {
    insta::assert_snapshot!(summary_text("fixtures/truncated.pcap"));
}

/// `links.json` and `report.md` of `linkrank analyze <args>` run from the repository root
/// (so input paths are the same relative paths on every machine).
fn link_reports(args: &[&str]) -> (String, String) {
    let out = tempfile::tempdir().unwrap();
    assert_cmd::Command::cargo_bin("linkrank")
        .unwrap()
        .current_dir(repo(""))
        .arg("analyze")
        .args(args)
        .arg("--out")
        .arg(out.path())
        .arg("--quiet")
        .arg("--reproducible")
        .assert()
        .success();
    let read = |f: &str| std::fs::read_to_string(out.path().join(f)).unwrap();
    (read("links.json"), read("report.md"))
}

#[test]
fn demo_links_json_and_report() {
    let (json, md) = link_reports(&["captures/prod.pcap"]);
    insta::assert_snapshot!("demo_links_json", json);
    insta::assert_snapshot!("demo_report_md", md);
}

#[test]
fn keepalive_links_json_and_report() {
    let (json, md) = link_reports(&["fixtures/keepalive.pcap"]);
    insta::assert_snapshot!("keepalive_links_json", json);
    insta::assert_snapshot!("keepalive_report_md", md);
}

#[test]
fn tls_sni_links_json() {
    let (json, _) = link_reports(&["fixtures/tls_sni.pcap"]);
    insta::assert_snapshot!("tls_sni_links_json", json);
}
