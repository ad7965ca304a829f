//! HTTP/2, h2c and gRPC read from the wire, against tshark: every capture of fixtures/h2
//! against its truth file (`NAME.truth.json`, written by fixtures/h2/src/truth.py from
//! `tshark -T pdml`), and the four HTTP/2 captures of the shared corpus against
//! fixtures/h2/corpus_truth.json (the same tshark totals; those tests skip only when the
//! corpus is absent, see `linkrank::testing::corpus`).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::common::*;
use linkrank::tables::Tables;

/// What linkrank found, in the truth files' terms.
#[derive(Debug, Default, PartialEq, serde::Serialize)]
struct Figures {
    /// HTTP/2 requests: streams whose request HEADERS carried `:method`.
    requests: u64,
    /// HTTP/2 streams with a final status.
    responses: u64,
    grpc_messages: u64,
    grpc_message_bytes: u64,
    grpc_compressed_messages: u64,
    /// Streams by `grpc-status`.
    grpc_status: BTreeMap<u64, u64>,
    /// HTTP/1.x requests (the diff's JSON capture, the requests that ask for h2c).
    http1_requests: u64,
    /// Frames by type, over the connections.
    frames: BTreeMap<String, u64>,
    header_fields_unknown: u64,
    streams_headers_complete: u64,
    /// Padding, the pad length octets excluded.
    padding_bytes: u64,
}

const FRAME_COLUMNS: [(&str, &str); 10] = [
    ("DATA", "h2_frames_data"),
    ("HEADERS", "h2_frames_headers"),
    ("PRIORITY", "h2_frames_priority"),
    ("RST_STREAM", "h2_frames_rst_stream"),
    ("SETTINGS", "h2_frames_settings"),
    ("PUSH_PROMISE", "h2_frames_push_promise"),
    ("PING", "h2_frames_ping"),
    ("GOAWAY", "h2_frames_goaway"),
    ("WINDOW_UPDATE", "h2_frames_window_update"),
    ("CONTINUATION", "h2_frames_continuation"),
];

fn ours(t: &Tables) -> Figures {
    let ex = &t.exchanges;
    let version = strs(ex, "version");
    let method = strs(ex, "method");
    let stream = u64s(ex, "stream_id");
    let status = u64s(ex, "status");
    let grpc_status = u64s(ex, "grpc_status");
    let mut f = Figures::default();
    for i in 0..ex.height() {
        let h2 = stream[i].is_some();
        let has_method = method[i].is_some();
        match version[i].as_deref() {
            Some("HTTP/2") if has_method => f.requests += 1,
            Some(v) if v.starts_with("HTTP/1") && has_method => f.http1_requests += 1,
            _ => {}
        }
        if h2 && status[i].is_some() {
            f.responses += 1;
        }
        if let Some(g) = grpc_status[i] {
            *f.grpc_status.entry(g).or_default() += 1;
        }
    }
    f.grpc_messages = sum(ex, "req_grpc_messages") + sum(ex, "resp_grpc_messages");
    f.grpc_message_bytes = sum(ex, "req_grpc_message_bytes") + sum(ex, "resp_grpc_message_bytes");
    f.grpc_compressed_messages = sum(ex, "grpc_compressed_messages");
    f.header_fields_unknown = sum(ex, "hpack_unknown_fields");
    f.padding_bytes = sum(ex, "padding_bytes");
    f.streams_headers_complete =
        bools(ex, "headers_complete").iter().filter(|b| **b).count() as u64;
    let cn = &t.connections;
    for (name, col) in FRAME_COLUMNS {
        let n = sum(cn, col);
        if n > 0 {
            f.frames.insert(name.to_owned(), n);
        }
    }
    f
}

/// The truth's figures; `padded_frames` is returned apart (linkrank counts the pad length
/// octets in `padding_bytes`, tshark does not).
fn truth_figures(totals: &Value) -> (Figures, u64) {
    let n = |k: &str| totals[k].as_u64().unwrap_or(0);
    let mut f = Figures {
        requests: n("requests"),
        responses: n("responses"),
        grpc_messages: n("grpc_messages"),
        grpc_message_bytes: n("grpc_message_bytes"),
        grpc_compressed_messages: n("grpc_compressed_messages"),
        http1_requests: n("http1_requests"),
        header_fields_unknown: n("header_fields_unknown"),
        streams_headers_complete: n("streams_headers_complete"),
        padding_bytes: n("padding_bytes"),
        ..Figures::default()
    };
    for (k, v) in totals.as_object().unwrap() {
        if let Some(code) = k.strip_prefix("grpc_status_") {
            f.grpc_status
                .insert(code.parse().unwrap(), v.as_u64().unwrap());
        }
    }
    f.frames = totals["frames"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    (f, n("padded_frames"))
}

/// Streams whose every header block tshark decoded with no unknown field, of the streams
/// that had a header block (tshark's `streams_headers_complete` also counts streams with
/// none, such as nghttp's PRIORITY-only idle streams, which are no exchange).
fn complete_header_streams(truth: &Value) -> Option<u64> {
    let conns = truth.get("connections")?.as_array()?;
    let blocks = |s: &Value, side: &str| s[side]["header_blocks"].as_u64().unwrap_or(0);
    Some(
        conns
            .iter()
            .flat_map(|c| c["streams"].as_array().into_iter().flatten())
            .filter(|s| s["headers_complete"] == Value::Bool(true))
            .filter(|s| blocks(s, "client") + blocks(s, "server") > 0)
            .count() as u64,
    )
}

fn compare(name: &str, t: &Tables, truth: &Value) -> Vec<String> {
    let totals = &truth["totals"];
    let mut got = ours(t);
    let (mut want, padded) = truth_figures(totals);
    if let Some(n) = complete_header_streams(truth) {
        want.streams_headers_complete = n;
    }
    got.padding_bytes = got.padding_bytes.saturating_sub(padded);
    // Field by field, by name.
    let (a, b) = (
        serde_json::to_value(&got).unwrap(),
        serde_json::to_value(&want).unwrap(),
    );
    a.as_object()
        .unwrap()
        .iter()
        .filter(|(k, v)| b[k.as_str()] != **v)
        .map(|(k, v)| format!("{name} {k}: linkrank {v}, tshark {}", b[k.as_str()]))
        .collect()
}

fn read_truth(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn corpus_http2_requests_and_grpc_messages_equal_tsharks() {
    if !linkrank::testing::corpus::require() {
        return;
    }
    let truth = read_truth(&repo("fixtures/h2/corpus_truth.json"));
    let files = truth["files"].as_object().unwrap();
    assert_eq!(files.len(), 4);
    let mut diffs = Vec::new();
    for (name, t) in files {
        let (tables, _) = analyse(&[corpus(name)]);
        diffs.extend(compare(name, &tables, t));
    }
    assert!(
        diffs.is_empty(),
        "differences from tshark:\n  {}",
        diffs.join("\n  ")
    );
}

#[test]
fn every_h2_fixture_matches_its_truth() {
    let dir = repo("fixtures/h2");
    let mut diffs = Vec::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".truth.json") else {
            continue;
        };
        let truth = read_truth(&path);
        let (tables, _) = analyse(&[dir.join(format!("{stem}.pcap"))]);
        diffs.extend(compare(stem, &tables, &truth));
        checked += 1;
    }
    assert_eq!(checked, 11);
    assert!(
        diffs.is_empty(),
        "differences from tshark:\n  {}",
        diffs.join("\n  ")
    );
}

/// Calls of the truth's streams by final grpc-status or HTTP status class.
fn truth_streams(truth: &Value) -> Vec<Value> {
    truth["connections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["streams"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// Links over gRPC and h2c get the measures of HTTP/1 links (connections, header and body
/// bytes per request, latency, errors: a non-OK grpc-status as the HTTP status it maps
/// to), their HTTP/2 facts, no gRPC saving and a keep.
#[test]
fn links_over_grpc_and_h2c_are_measured_and_kept() {
    let (_dir, json, _) = crate::recommend::analyse_capture("fixtures/h2/grpc_kinds.pcap");
    let truth = read_truth(&repo("fixtures/h2/grpc_kinds.truth.json"));
    let links = json["links"].as_array().unwrap();
    assert_eq!(links.len(), 2, "one server per port");
    let statuses: Vec<u64> = truth_streams(&truth)
        .iter()
        .filter_map(|s| s["grpc_status"].as_str().map(|g| g.parse().unwrap()))
        .collect();
    assert_eq!(statuses.len(), 22);
    let failed = |lo: u64, hi: u64| {
        statuses
            .iter()
            .map(|&g| u64::from(linkrank::ingest::http::h2::grpc_http_status(g as u32)))
            .filter(|s| (lo..hi).contains(s))
            .count() as u64
    };
    let sum = |key: &str| {
        links
            .iter()
            .map(|l| l["status"][key].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(sum("4xx"), failed(400, 500));
    assert_eq!(sum("5xx"), failed(500, 600));
    assert!(failed(400, 600) > 0);
    for l in links {
        assert_eq!(l["protocol"], "grpc");
        assert_eq!(l["requests"], 11);
        assert_eq!(l["connections"], 1);
        assert!(l["latency_ms"]["p50"].as_f64().is_some_and(|ms| ms > 0.0));
        assert!(l["bytes_per_request"]["request_headers"].as_f64().unwrap() > 0.0);
        let h2 = &l["http2"];
        assert_eq!(h2["streams"], 11);
        assert_eq!(h2["grpc_calls"], 11);
        let by_code: u64 = h2["grpc_status"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["count"].as_u64().unwrap())
            .sum();
        assert_eq!(by_code, 11);
        let kinds: Vec<&str> = h2["grpc_call_kinds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["value"].as_str().unwrap())
            .collect();
        for k in [
            "unary",
            "server_streaming",
            "client_streaming",
            "bidi_streaming",
        ] {
            assert!(kinds.contains(&k), "{kinds:?}");
        }
        assert_eq!(l["recommendation"]["target"], "keep");
        assert!(
            l["savings"]["bytes_per_s_saved"].is_null(),
            "{}",
            l["savings"]
        );
    }
    let (_dir, json, _) = crate::recommend::analyse_capture("fixtures/h2/h2c_prior_nginx.pcap");
    let truth = read_truth(&repo("fixtures/h2/h2c_prior_nginx.truth.json"));
    let l = &json["links"].as_array().unwrap()[0];
    assert_eq!(l["protocol"], "h2c");
    assert_eq!(l["requests"], truth["totals"]["requests"]);
    let final_status = |lo: u64, hi: u64| {
        truth_streams(&truth)
            .iter()
            .filter_map(|s| s["status"].as_str().map(|v| v.parse::<u64>().unwrap()))
            .filter(|s| (lo..hi).contains(s))
            .count() as u64
    };
    assert_eq!(l["status"]["5xx"].as_u64(), Some(final_status(500, 600)));
    assert_eq!(l["status"]["4xx"].as_u64(), Some(final_status(400, 500)));
    assert_eq!(l["connections"], truth["totals"]["connections"]);
}

/// A link that speaks gRPC or h2c inside the system (its caller serves requests too) is
/// never moved to gRPC nor given a gRPC fix at any scale: with its failures it may go to
/// a failure rule (a keep or a mesh), without them it is kept by its own rule.
#[test]
fn already_migrated_links_are_kept_by_their_rule() {
    use linkrank::analysis::recommend::Target;
    for (capture, rule) in [
        ("fixtures/h2/grpc_kinds.pcap", "keep:already-grpc"),
        ("fixtures/h2/h2c_prior_nginx.pcap", "keep:already-http2"),
    ] {
        let (_dir, _, outcome) = crate::recommend::analyse_capture(capture);
        let real = outcome.ranked[0].clone();
        let mut healthy = real.clone();
        healthy.link.server = format!("{}-healthy", real.link.server);
        if let Some(h) = healthy.link.http.as_mut() {
            h.status = Default::default();
        }
        // The same traffic, as if its caller also served a link: not external.
        let mut upstream = real.clone();
        upstream.link.client = "edge".into();
        upstream.link.server = real.link.client.clone();
        let k = crate::recommend::without_floors();
        let assessed = crate::recommend::decide_again(
            vec![real, healthy, upstream],
            &k,
            outcome.capture_seconds.map(|s| s.max(600.0)),
        );
        for a in &assessed[..2] {
            let r = &a.assessment.recommendation;
            assert_ne!(r.target, Target::Grpc, "{capture}");
            assert!(r.cheaper_fix.is_none(), "{capture}: {:?}", r.cheaper_fix);
            assert_eq!(r.gain.bytes_saved_per_s, 0.0, "{capture}");
        }
        let r = &assessed[1].assessment.recommendation;
        assert_eq!(
            (r.target, r.rule),
            (Target::Keep, rule),
            "{capture}: {:?}",
            r.why
        );
    }
}
