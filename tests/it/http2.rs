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
