//! The call-chain fixtures (fixtures/chains/, made by fixtures/scripts/make_chains.sh): linkrank's exchanges
//! table must name exactly the exchanges of each truth file, which the services and the
//! driver logged themselves as they made and served the calls (and which the script
//! checked against tshark): the same ids (`client_ip:client_port>server_ip:server_port#
//! index`), methods, routes and statuses, and in the `_tp` captures the traceparent ids.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::common::*;
use serde_json::Value;

/// What one exchange must look like: method, route, status, trace id, traceparent span.
type Row = (
    Option<String>,
    Option<String>,
    Option<u64>,
    Option<String>,
    Option<String>,
);

fn truth(name: &str) -> Value {
    let path = repo(&format!("fixtures/chains/{name}.truth.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn s(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

fn truth_rows(t: &Value) -> BTreeMap<String, Row> {
    t["exchanges"]
        .as_array()
        .expect("exchanges")
        .iter()
        .map(|e| {
            let row = (
                s(&e["method"]),
                s(&e["route"]),
                e["status"].as_u64(),
                s(&e["trace_id"]),
                s(&e["span_id"]),
            );
            (e["id"].as_str().expect("id").to_owned(), row)
        })
        .collect()
}

/// linkrank's exchanges by id, and how many there were (a duplicated id would shrink the map).
fn linkrank_rows(paths: &[PathBuf]) -> (BTreeMap<String, Row>, usize, linkrank::model::Coverage) {
    let (t, cov) = analyse(paths);
    let x = &t.exchanges;
    let ids = strs(x, "client_ip")
        .into_iter()
        .zip(u64s(x, "client_port"))
        .zip(strs(x, "server_ip").into_iter().zip(u64s(x, "server_port")))
        .zip(u64s(x, "index"))
        .map(|(((ci, cp), (si, sp)), i)| {
            format!(
                "{}:{}>{}:{}#{}",
                ci.unwrap(),
                cp.unwrap(),
                si.unwrap(),
                sp.unwrap(),
                i.unwrap()
            )
        });
    let rows: Vec<(String, Row)> = ids
        .zip(
            strs(x, "method")
                .into_iter()
                .zip(strs(x, "route"))
                .zip(u64s(x, "status"))
                .zip(
                    strs(x, "trace_id")
                        .into_iter()
                        .zip(strs(x, "parent_span_id")),
                ),
        )
        .map(|(id, (((m, r), st), (tr, sp)))| (id, (m, r, st, tr, sp)))
        .collect();
    let n = rows.len();
    let incomplete = strs(x, "completeness")
        .into_iter()
        .filter(|c| c.as_deref() != Some("complete"))
        .count();
    assert_eq!(incomplete, 0, "every exchange of a fixture is complete");
    (rows.into_iter().collect(), n, cov)
}

fn check(name: &str, files: &[&str]) -> linkrank::model::Coverage {
    let t = truth(name);
    let want = truth_rows(&t);
    let paths: Vec<PathBuf> = files
        .iter()
        .map(|f| repo(&format!("fixtures/chains/{f}")))
        .collect();
    let (got, n, cov) = linkrank_rows(&paths);
    assert_eq!(n, want.len(), "{name}: number of exchanges");
    let only_truth: Vec<_> = want
        .keys()
        .filter(|k| !got.contains_key(*k))
        .take(5)
        .collect();
    let only_ours: Vec<_> = got
        .keys()
        .filter(|k| !want.contains_key(*k))
        .take(5)
        .collect();
    assert!(
        only_truth.is_empty() && only_ours.is_empty(),
        "{name}: ids only in the truth file {only_truth:?}, only in linkrank's {only_ours:?}"
    );
    for (id, w) in &want {
        assert_eq!(got.get(id), Some(w), "{name}: exchange {id}");
    }
    // traceparent ids exactly in the _tp captures, none elsewhere
    let tp = t["traceparent"].as_bool().unwrap();
    let with_ids = got.values().filter(|r| r.3.is_some()).count();
    assert_eq!(
        with_ids,
        if tp { n } else { 0 },
        "{name}: exchanges with a trace id"
    );
    cov
}

#[test]
fn chain4_exchanges_equal_the_truth() {
    check("chain4", &["chain4.pcap"]);
    check("chain4_tp", &["chain4_tp.pcap"]);
}

#[test]
fn fanout_exchanges_equal_the_truth() {
    check("fanout", &["fanout.pcap"]);
    check("fanout_tp", &["fanout_tp.pcap"]);
}

#[test]
fn nplus1_exchanges_equal_the_truth() {
    check("nplus1", &["nplus1.pcap"]);
    check("nplus1_tp", &["nplus1_tp.pcap"]);
}

#[test]
fn fire_and_forget_exchanges_equal_the_truth() {
    check("fire_and_forget", &["fire_and_forget.pcap"]);
    check("fire_and_forget_tp", &["fire_and_forget_tp.pcap"]);
}

#[test]
fn concurrent_exchanges_equal_the_truth() {
    check("concurrent", &["concurrent.pcap"]);
    check("concurrent_tp", &["concurrent_tp.pcap"]);
}

/// The two captures of multinode share the a <-> b connections; node B's copy is 37 ms
/// late (editcap), so every direction keeps node A's copy and each of node B's a <-> b
/// segments is counted once as a capture duplicate, never as a new exchange.
#[test]
fn multinode_exchanges_equal_the_truth_and_b_only_adds_duplicates() {
    let cov = check("multinode", &["multinode_a.pcap", "multinode_b.pcap"]);
    let b = repo("fixtures/chains/multinode_b.pcap");
    let shared = tshark(&[
        "-n",
        "-r",
        b.to_str().unwrap(),
        "-Y",
        "ip.addr==10.81.0.11 && ip.addr==10.81.0.12 && tcp",
        "-T",
        "fields",
        "-e",
        "frame.number",
    ])
    .lines()
    .count() as u64;
    assert!(
        shared > 100,
        "node B saw the a <-> b traffic ({shared} segments)"
    );
    assert_eq!(
        cov.capture_duplicates, shared,
        "duplicates = B's a <-> b segments"
    );
}

/// The clock offset of multinode_b.pcap against multinode_a.pcap, estimated from the
/// a <-> b connections both captured, recovers the 37 ms editcap added (the truth file's
/// clock_offset_ns) within 2 ms. Both captures are of one kernel clock, so the delay
/// between the two bridge ports is microseconds.
#[test]
fn multinode_clock_offset_recovers_the_editcap_shift() {
    let t = truth("multinode");
    let applied = t["clock_offset_ns"]["multinode_b.pcap"].as_i64().unwrap();
    assert_eq!(applied, 37_000_000);
    let (_, cov) = analyse_one_pass(&[
        repo("fixtures/chains/multinode_a.pcap"),
        repo("fixtures/chains/multinode_b.pcap"),
    ]);
    assert_eq!(cov.clock_offsets.len(), 1, "{:?}", cov.clock_offsets);
    let o = &cov.clock_offsets[0];
    assert_eq!((o.input, o.reference_input), (1, 0));
    assert!(
        (o.offset_ns - applied).abs() <= 2_000_000,
        "offset {} ns, applied {applied} ns",
        o.offset_ns
    );
    // every a <-> b connection starts inside both captures: both its directions pair
    let ab_conns = t["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["seen_in"].as_array().is_some_and(|s| s.len() == 2))
        .map(|e| {
            e["id"]
                .as_str()
                .unwrap()
                .split('#')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect::<std::collections::BTreeSet<_>>()
        .len() as u64;
    assert!(ab_conns > 0);
    assert_eq!((o.c2s_pairs, o.s2c_pairs), (ab_conns, ab_conns));
    assert_eq!(o.unmatched, 0);
    assert!(o.delay_ns.is_some_and(|d| d.abs() < 1_000_000));
    assert!(
        cov.clock_corrections.is_empty(),
        "one pass corrects nothing"
    );
}

/// With the offset known, the captures are read again on one clock: B's timestamps
/// move back by the estimate, and the estimate from the corrected times is what the
/// bridge ports really differ by (microseconds, the same pairs). The exchanges stay the
/// truth's (the time shift changes no byte and no pairing).
#[test]
fn multinode_clocks_are_corrected_in_a_second_pass() {
    let files = [
        repo("fixtures/chains/multinode_a.pcap"),
        repo("fixtures/chains/multinode_b.pcap"),
    ];
    let (_, raw) = analyse_one_pass(&files);
    let (tables, cov) = analyse(&files);
    assert_eq!(
        cov.clock_corrections.len(),
        1,
        "{:?}",
        cov.clock_corrections
    );
    let k = &cov.clock_corrections[0];
    assert_eq!((k.input, k.interface), (1, 0));
    assert_eq!(k.shift_ns, raw.clock_offsets[0].offset_ns);
    assert!((k.shift_ns - 37_000_000).abs() <= 2_000_000, "{k:?}");
    let left = &cov.clock_offsets[0];
    assert!(left.offset_ns.abs() < 100_000, "{left:?}");
    assert_eq!(left.pairs, raw.clock_offsets[0].pairs);
    assert_eq!(cov.exchanges, raw.exchanges);
    assert_eq!(cov.capture_duplicates, raw.capture_duplicates);
    // A b -> c request (seen by B only) now starts inside the a -> b request b was
    // serving (seen by A first): before the correction it started 37 ms later.
    let t = truth("multinode");
    let ids: Vec<&str> = t["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["route"] == "/deep")
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert!(!ids.is_empty());
    let (raw_tables, _) = analyse_one_pass(&files);
    let start = |tb: &linkrank::tables::Tables, id: &str| -> i64 {
        let ex = &tb.exchanges;
        let key: Vec<String> = (0..ex.height())
            .map(|i| {
                format!(
                    "{}:{}>{}:{}#{}",
                    strs(ex, "client_ip")[i].clone().unwrap(),
                    u64s(ex, "client_port")[i].unwrap(),
                    strs(ex, "server_ip")[i].clone().unwrap(),
                    u64s(ex, "server_port")[i].unwrap(),
                    u64s(ex, "index")[i].unwrap()
                )
            })
            .collect();
        let i = key.iter().position(|k| k == id).unwrap();
        i64s(ex, "req_first_ns")[i].unwrap()
    };
    for id in ids.iter().take(5) {
        let moved = start(&raw_tables, id) - start(&tables, id);
        assert_eq!(moved, k.shift_ns, "{id}");
    }
}

/// The estimate reaches quality.json (`capture.clock_offsets`); one capture has none.
#[test]
fn quality_json_carries_the_clock_offsets() {
    use assert_cmd::Command;
    let quality = |files: &[&str]| -> Value {
        let dir = tempfile::tempdir().unwrap();
        Command::cargo_bin("linkrank")
            .unwrap()
            .current_dir(repo(""))
            .arg("analyze")
            .args(files)
            .arg("--out")
            .arg(dir.path())
            .assert()
            .success();
        let q = std::fs::read_to_string(dir.path().join("quality.json")).unwrap();
        serde_json::from_str(&q).unwrap()
    };
    let two = quality(&[
        "fixtures/chains/multinode_a.pcap",
        "fixtures/chains/multinode_b.pcap",
    ]);
    let fixes = two["capture"]["clock_corrections"]
        .as_array()
        .expect("clock_corrections");
    assert_eq!(fixes.len(), 1);
    let ns = fixes[0]["shift_ns"].as_i64().unwrap();
    assert!((ns - 37_000_000).abs() <= 2_000_000, "{ns}");
    let offs = two["capture"]["clock_offsets"]
        .as_array()
        .expect("clock_offsets");
    assert_eq!(offs.len(), 1);
    let left = offs[0]["offset_ns"].as_i64().unwrap();
    assert!(left.abs() < 100_000, "{left}");
    let one = quality(&["fixtures/chains/multinode_a.pcap"]);
    assert!(one["capture"].get("clock_offsets").is_none());
    assert!(one["capture"].get("clock_corrections").is_none());
}
