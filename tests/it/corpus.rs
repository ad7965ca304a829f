//! linkrank against the third-party captures of the corpus (see `linkrank::testing`; listed in its
//! MANIFEST.tsv): the HTTP/1 request count of every capture equals tshark's, run live on
//! the same file, except where named below with the reason. (HTTP/2 requests and gRPC
//! messages are compared with tshark's in `http2`.)

use crate::common::*;

/// Captures listed in the corpus manifest (kind `pcap`).
pub(crate) fn manifest_captures() -> Vec<String> {
    let manifest =
        std::fs::read_to_string(corpus("MANIFEST.tsv")).expect("the corpus MANIFEST.tsv");
    manifest
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            (cols.get(7) == Some(&"pcap")).then(|| cols[0].to_owned())
        })
        .collect()
}

/// HTTP requests tshark finds: one per `http.request.method` occurrence (a frame holding
/// several pipelined requests lists each).
fn tshark_requests(file: &std::path::Path) -> Vec<String> {
    let out = tshark(&[
        "-r",
        file.to_str().unwrap(),
        "-Y",
        "http.request",
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=|",
        "-e",
        "http.request.method",
    ]);
    out.lines()
        .flat_map(|l| l.split('|'))
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn request_counts_equal_tsharks_on_every_corpus_capture() {
    if !linkrank::testing::corpus::require() {
        return;
    }
    let files = manifest_captures();
    assert!(files.len() >= 25, "manifest lists {} captures", files.len());
    let mut report = Vec::new();
    for name in &files {
        let path = corpus(name);
        let (t, _cov) = analyse(std::slice::from_ref(&path));
        // HTTP/1 requests (an `Upgrade: h2c` request included: its version is HTTP/1.1).
        let versions = strs(&t.exchanges, "version");
        let mut ours: Vec<String> = strs(&t.exchanges, "method")
            .into_iter()
            .zip(versions)
            .filter(|(_, v)| v.as_deref().is_some_and(|v| v.starts_with("HTTP/1")))
            .filter_map(|(m, _)| m)
            .collect();
        let mut theirs = tshark_requests(&path);
        ours.sort();
        theirs.sort();
        if ours != theirs {
            report.push(format!("{name}: linkrank {ours:?}\n    tshark {theirs:?}"));
        }
    }
    assert!(
        report.is_empty(),
        "differences from tshark:\n  {}",
        report.join("\n  ")
    );
}

#[test]
fn every_corpus_capture_is_read_to_its_end_or_its_fault() {
    if !linkrank::testing::corpus::require() {
        return;
    }
    for name in manifest_captures() {
        let path = corpus(&name);
        let (_t, cov) = analyse(std::slice::from_ref(&path));
        let frames = tshark(&[
            "-r",
            path.to_str().unwrap(),
            "-T",
            "fields",
            "-e",
            "frame.number",
        ])
        .lines()
        .count() as u64;
        if name == "pfe_corrupted.pcap" {
            // tshark stops at the corrupt record after packet 27 too, and says so.
            assert_eq!(cov.packets, 27, "{name}");
            assert_eq!(cov.input_warnings.len(), 1, "{name}");
            assert!(
                cov.input_warnings[0].contains("byte 2119"),
                "{:?}",
                cov.input_warnings
            );
        } else {
            assert!(
                cov.input_warnings.is_empty(),
                "{name}: {:?}",
                cov.input_warnings
            );
        }
        assert_eq!(cov.packets, frames, "{name}: packets");
    }
}

#[test]
fn vxlan_inner_endpoints_are_measured() {
    if !linkrank::testing::corpus::require() {
        return;
    }
    let (t, cov) = analyse(&[corpus("zeek_vxlan-encapsulated-http.pcap")]);
    assert!(cov.tunnels_unwrapped > 0);
    let out = tshark(&[
        "-r",
        corpus("zeek_vxlan-encapsulated-http.pcap")
            .to_str()
            .unwrap(),
        "-Y",
        "http.request",
        "-T",
        "fields",
        "-e",
        "ip.dst",
        "-e",
        "tcp.dstport",
    ]);
    // With VXLAN, tshark lists outer then inner ip.dst; the last one is the pod's.
    let line = out.lines().next().unwrap();
    let (ips, port) = line.split_once('\t').unwrap();
    let inner_ip = ips.split(',').next_back().unwrap();
    let x = &t.exchanges;
    assert_eq!(strs(x, "server_ip")[0].as_deref(), Some(inner_ip));
    assert_eq!(
        u64s(x, "server_port")[0],
        Some(port.trim().parse().unwrap())
    );
}

#[test]
fn tls_and_http2_connections_are_recognised_not_garbage() {
    if !linkrank::testing::corpus::require() {
        return;
    }
    // TLS is recognised (not read); HTTP/2 is read: one request each, as tshark finds.
    for (file, proto, exchanges) in [
        ("itls13_capture.pcap", "tls", 0),
        ("cryptohack_tls13_h2.pcapng", "tls", 0),
        ("ndpi_http2_5g_sbi.pcapng", "http2", 1),
        ("deepflow_grpc-service-name.pcap", "http2", 1),
    ] {
        let (t, cov) = analyse(&[corpus(file)]);
        let protos = strs(&t.connections, "protocol");
        assert!(
            protos.iter().any(|p| p.as_deref() == Some(proto)),
            "{file}: {protos:?}"
        );
        assert_eq!(cov.malformed_http, 0, "{file}");
        assert_eq!(t.exchanges.height(), exchanges, "{file}");
        if exchanges > 0 {
            assert_eq!(strs(&t.exchanges, "version")[0].as_deref(), Some("HTTP/2"));
        }
    }
}

/// Every corpus capture gets its reports, and the requests of its links add up to
/// tshark's request count; a capture with a fault says so in report.md.
#[test]
fn every_corpus_capture_gets_link_reports_whose_requests_equal_tsharks() {
    if !linkrank::testing::corpus::require() {
        return;
    }
    let mut report = Vec::new();
    let h2_truth: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo("fixtures/h2/corpus_truth.json")).unwrap(),
    )
    .unwrap();
    for name in manifest_captures() {
        let path = corpus(&name);
        let out = tempfile::tempdir().unwrap();
        assert_cmd::Command::cargo_bin("linkrank")
            .unwrap()
            .arg("analyze")
            .arg(&path)
            .arg("--out")
            .arg(out.path())
            .arg("--quiet")
            .assert()
            .success();
        let links: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.path().join("links.json")).unwrap())
                .unwrap();
        let ours: u64 = links["links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["requests"].as_u64().unwrap_or(0))
            .sum();
        // HTTP/1 requests tshark finds live, plus its HTTP/2 requests (HEADERS with
        // `:method`) from fixtures/h2/corpus_truth.json.
        let theirs = tshark_requests(&path).len() as u64
            + h2_truth["files"][name.as_str()]["totals"]["requests"]
                .as_u64()
                .unwrap_or(0);
        if ours != theirs {
            report.push(format!("{name}: links {ours}, tshark {theirs}"));
        }
        let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
        if name == "pfe_corrupted.pcap" {
            assert!(md.contains("corrupt capture at byte 2119"), "{md}");
        }
    }
    assert!(report.is_empty(), "{}", report.join("\n"));
}
