//! The HTTP/2 fixtures' truth files (fixtures/h2/*.truth.json, written by
//! fixtures/h2/src/truth.py from `tshark -T pdml`) still describe the committed captures:
//! a second tshark pass over each pcap, through `-T fields` this time, must give the same
//! packet count, frame counts per type, requests, gRPC messages and unknown HPACK fields.
//! This checks the fixtures, not linkrank (a capture re-recorded without its truth fails).

use crate::common::*;
use serde_json::Value;
use std::collections::BTreeMap;

/// Figures of one capture from `tshark -T fields`.
#[derive(Debug, Default, PartialEq)]
struct Fields {
    packets: u64,
    frames: BTreeMap<String, u64>,
    requests: u64,
    grpc_messages: u64,
    unknown_fields: u64,
}

const TYPES: [&str; 10] = [
    "DATA",
    "HEADERS",
    "PRIORITY",
    "RST_STREAM",
    "SETTINGS",
    "PUSH_PROMISE",
    "PING",
    "GOAWAY",
    "WINDOW_UPDATE",
    "CONTINUATION",
];

fn tshark_fields(pcap: &str, decode_as: &[String]) -> Fields {
    let mut args = vec!["-r", pcap];
    for d in decode_as {
        args.extend(["-d", d.as_str()]);
    }
    args.extend([
        "-T",
        "fields",
        "-E",
        "separator=/t",
        "-e",
        "http2.type",
        "-e",
        "grpc.message_length",
        "-e",
        "http2.header.name",
    ]);
    let out = tshark(&args);
    let mut f = Fields::default();
    for line in out.lines() {
        f.packets += 1;
        let mut cols = line.split('\t');
        let (types, grpc, names) = (
            cols.next().unwrap_or(""),
            cols.next().unwrap_or(""),
            cols.next().unwrap_or(""),
        );
        for t in types.split(',').filter(|t| !t.is_empty()) {
            let i: usize = t.parse().expect("http2.type is a number");
            let name = TYPES
                .get(i)
                .map_or(format!("TYPE_{i}"), |s| (*s).to_owned());
            *f.frames.entry(name).or_default() += 1;
        }
        f.grpc_messages += grpc.split(',').filter(|g| !g.is_empty()).count() as u64;
        for n in names.split(',') {
            match n {
                ":method" => f.requests += 1,
                "<unknown>" => f.unknown_fields += 1,
                _ => {}
            }
        }
    }
    f
}

fn from_truth(t: &Value) -> Fields {
    let tot = &t["totals"];
    let n = |k: &str| tot[k].as_u64().unwrap_or(0);
    Fields {
        packets: n("packets"),
        frames: tot["frames"]
            .as_object()
            .expect("totals.frames")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
            .collect(),
        requests: n("requests"),
        grpc_messages: n("grpc_messages"),
        unknown_fields: n("header_fields_unknown"),
    }
}

#[test]
fn every_h2_truth_file_matches_its_capture() {
    let dir = repo("fixtures/h2");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".truth.json") else {
            continue;
        };
        let truth: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let pcap = dir.join(format!("{stem}.pcap"));
        assert_eq!(
            truth["size"].as_u64(),
            Some(std::fs::metadata(&pcap).unwrap().len()),
            "{name}: size of {stem}.pcap"
        );
        let decode_as: Vec<String> = truth["decode_as"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap().to_owned())
            .collect();
        let got = tshark_fields(pcap.to_str().unwrap(), &decode_as);
        assert_eq!(
            got,
            from_truth(&truth),
            "{name}: tshark -T fields vs the truth file"
        );
        checked += 1;
    }
    // the eleven captures of make_h2.sh (the two mid-connection cuts with their uncut captures)
    assert_eq!(checked, 11, "truth files found in fixtures/h2");
}
