//! HTTP/2 and gRPC header figures on real captures: the HPACK dynamic table makes later
//! requests on a connection far smaller, and HTTP/2 headers are smaller than HTTP/1.1's.

use std::collections::BTreeMap;

use crate::common::{analyse, repo, strs, u64s};

/// keepalive.pcap: 7 exchanges on one connection (fixtures/README.md).
#[test]
fn keepalive_dynamic_table_shrinks_later_requests() {
    let (t, cov) = analyse(&[repo("fixtures/keepalive.pcap")]);
    let ex = &t.exchanges;
    assert_eq!(ex.height(), 7);
    assert_eq!(cov.h2_replay_dropped, 0);
    let h1 = u64s(ex, "req_header_bytes");
    let h2: Vec<u64> = u64s(ex, "req_header_bytes_h2")
        .into_iter()
        .map(Option::unwrap)
        .collect();
    let grpc: Vec<u64> = u64s(ex, "req_header_bytes_grpc")
        .into_iter()
        .map(Option::unwrap)
        .collect();
    eprintln!("h1 {h1:?}\nh2 {h2:?}\ngrpc {grpc:?}");
    // The first request carries a Bearer token, a cookie and a query token, none of which
    // are indexed (they are paid again whenever they are sent); requests 2-5 send only Host,
    // User-Agent and Accept, which the first put in the table.
    for i in 1..7 {
        assert!(h2[i] < h2[0], "request {i}: {} vs first {}", h2[i], h2[0]);
        assert!(
            h2[i] * 2 < h1[i].unwrap(),
            "request {i}: h2 {} vs h1 {:?}",
            h2[i],
            h1[i]
        );
    }
    for i in 2..6 {
        assert!(
            h2[i] * 4 < h2[0],
            "request {i}: {} vs first {}",
            h2[i],
            h2[0]
        );
    }
    // By hand (RFC 7541 Appendix B code lengths): `GET /users/42` is :method, :scheme,
    // :authority, user-agent, accept indexed (1 octet each) and :path with indexed name 4
    // without indexing (1) plus `/users/42` Huffman-coded in 50 bits (7 octets, 1 length):
    // 5 + 9 octets of HPACK and a 9-octet frame header. `/health`: 39 bits, 5 octets.
    assert_eq!(h2[2], 5 + (1 + 1 + 7) + 9);
    assert_eq!(h2[5], 5 + (1 + 1 + 5) + 9);
    let resp_h1: u64 = u64s(ex, "resp_header_bytes").into_iter().flatten().sum();
    let resp_h2: Vec<u64> = u64s(ex, "resp_header_bytes_h2")
        .into_iter()
        .map(Option::unwrap)
        .collect();
    assert!(
        resp_h2[1..].iter().all(|&b| b * 2 < resp_h2[0]),
        "{resp_h2:?}"
    );
    assert!(resp_h2.iter().sum::<u64>() * 3 < resp_h1);
    // DATA frames: one 9-octet header per body up to 16 KiB; none for HEAD and 204.
    let methods = strs(ex, "method");
    let status = u64s(ex, "status");
    let frames = u64s(ex, "resp_data_frame_bytes_h2");
    for i in 0..7 {
        let bodyless = methods[i].as_deref() == Some("HEAD") || status[i] == Some(204);
        assert_eq!(
            frames[i],
            Some(if bodyless { 0 } else { 9 }),
            "exchange {i}"
        );
    }
    let req_frames = u64s(ex, "req_data_frame_bytes_h2");
    let posts = methods
        .iter()
        .filter(|m| m.as_deref() == Some("POST"))
        .count();
    assert_eq!(req_frames.iter().flatten().sum::<u64>(), 9 * posts as u64);
}

/// The demo capture: per link (Host), HTTP/1.1 header bytes per request against
/// HTTP/2 and gRPC. Every complete exchange has figures, and per link HTTP/2 is smaller.
#[test]
fn prod_links_h2_and_grpc_header_totals() {
    let (t, cov) = analyse(&[repo("captures/prod.pcap")]);
    let ex = &t.exchanges;
    assert_eq!(cov.h2_replay_dropped, 0);
    let host = strs(ex, "host");
    let complete = strs(ex, "completeness");
    let cols = [
        "req_header_bytes",
        "resp_header_bytes",
        "req_header_bytes_h2",
        "resp_header_bytes_h2",
        "req_header_bytes_grpc",
        "resp_header_bytes_grpc",
    ];
    let vals: Vec<Vec<Option<u64>>> = cols.iter().map(|c| u64s(ex, c)).collect();
    let mut links: BTreeMap<String, (u64, [u64; 6])> = BTreeMap::new();
    for i in 0..ex.height() {
        if complete[i].as_deref() != Some("complete") {
            continue;
        }
        let key = host[i].clone().unwrap_or_default();
        let e = links.entry(key).or_default();
        e.0 += 1;
        for (k, v) in vals.iter().enumerate() {
            e.1[k] += v[i].unwrap_or_else(|| panic!("complete exchange {i} lacks {}", cols[k]));
        }
    }
    assert!(!links.is_empty());
    eprintln!(
        "link                   n  h1 req/resp   h2 req/resp   grpc req/resp (bytes per exchange)"
    );
    for (link, (n, s)) in &links {
        let per = |k: usize| s[k] as f64 / *n as f64;
        eprintln!(
            "{link:20} {n:4} {:6.1} {:6.1} {:6.1} {:6.1} {:6.1} {:6.1}",
            per(0),
            per(1),
            per(2),
            per(3),
            per(4),
            per(5)
        );
        assert!(s[2] < s[0], "{link}: h2 request headers not smaller");
        assert!(s[3] < s[1], "{link}: h2 response headers not smaller");
        // gRPC frames every message: a fully indexed request is 7 octets of HPACK, 9 of
        // HEADERS, 9 + 5 of DATA and prefix (30); a response 3 + 9, 14, and trailers of
        // 1 + 12 (the unindexed empty grpc-message) + 9 (48).
        assert!(s[4] >= 30 * n && s[5] >= 48 * n, "{link}");
    }
}

/// fixtures/grpc_vs_json.pcap: the same 150 calls once as HTTP/1.1 JSON (port 8080) and
/// once as real gRPC (grpcio, h2c, port 50051), whose HEADERS, trailers, DATA frame
/// headers and prefixes tshark measured (fixtures/expected/grpc_vs_json.json). Our gRPC
/// figures for the JSON calls must come within 10% of what gRPC really sent.
#[test]
fn grpc_prediction_matches_the_real_grpc_capture() {
    let (t, _) = analyse(&[repo("fixtures/grpc_vs_json.pcap")]);
    let ex = &t.exchanges;
    let port = u64s(ex, "server_port");
    let req = u64s(ex, "req_header_bytes_grpc");
    let resp = u64s(ex, "resp_header_bytes_grpc");
    let h1: Vec<u64> = ["req_header_bytes", "resp_header_bytes"]
        .iter()
        .map(|c| u64s(ex, c).into_iter().flatten().sum())
        .collect();
    let calls: Vec<u64> = (0..ex.height())
        .filter(|&i| port[i] == Some(8080))
        .map(|i| req[i].unwrap() + resp[i].unwrap())
        .collect();
    assert_eq!(calls.len(), 150);
    let ours: u64 = calls.iter().sum();
    let text = std::fs::read_to_string(repo("fixtures/expected/grpc_vs_json.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let methods = v["grpc_vs_json"]["grpc"]["methods"].as_object().unwrap();
    let real: u64 = methods
        .values()
        .map(|m| {
            let s = &m["summary"];
            s["header_bytes"]["sum"].as_u64().unwrap() + s["framing_bytes"]["sum"].as_u64().unwrap()
        })
        .sum();
    eprintln!(
        "gRPC framing and headers for 150 calls: ours {ours} ({:.1}/call, first {}, last {}), real {real} ({:.1}/call); HTTP/1.1 headers {}",
        ours as f64 / 150.0,
        calls[0],
        calls[149],
        real as f64 / 150.0,
        h1[0] + h1[1]
    );
    let diff = ours.abs_diff(real) as f64 / real as f64;
    assert!(
        diff <= 0.10,
        "ours {ours} vs real {real}: {:.1}% apart",
        diff * 100.0
    );
}
