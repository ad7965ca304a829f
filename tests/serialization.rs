//! The `payloads` table on the demo capture (JSON everywhere): bounded samples, protobuf
//! smaller than JSON, and no body value in any output file.

mod common;

use assert_cmd::Command;
use common::*;

#[test]
fn demo_payloads_are_bounded_smaller_as_protobuf_and_hold_no_body_value() {
    let pcap = repo("captures/prod.pcap");
    let raw = String::from_utf8_lossy(&std::fs::read(&pcap).unwrap()).into_owned();
    // Values the demo's services put in bodies (captures/demo/services.py): names, emails,
    // product names. Checked present in the capture, so their absence below means something.
    let secrets = [
        "@example.com",
        "Lovelace",
        "Espresso beans 1kg",
        "Pour-over kettle",
    ];
    for s in secrets {
        assert!(raw.contains(s), "the demo lost the body value {s}");
    }
    let out = tempfile::tempdir().unwrap();
    Command::cargo_bin("linkrank")
        .unwrap()
        .args(["analyze", pcap.to_str().unwrap(), "--out"])
        .arg(out.path())
        .assert()
        .success();
    let t = linkrank::tables::read_tables(&[out.path().join("payloads.parquet")]).unwrap();
    let p = &t.payloads;
    assert!(p.height() > 0, "the demo has JSON bodies");
    let u = |c: &str| -> Vec<u64> {
        p.column(c)
            .unwrap()
            .u64()
            .unwrap()
            .into_no_null_iter()
            .collect()
    };
    let (bodies, samples, dropped) = (u("bodies"), u("samples"), u("dropped"));
    let (json, pb) = (u("sampled_json_bytes"), u("sampled_protobuf_bytes"));
    let mut measured = 0;
    for i in 0..p.height() {
        assert!(samples[i] <= 32, "row {i}: {} samples", samples[i]);
        assert_eq!(bodies[i], samples[i] + dropped[i], "row {i}");
        if samples[i] > 0 {
            measured += 1;
            assert!(
                pb[i] < json[i],
                "row {i}: protobuf {} >= json {}",
                pb[i],
                json[i]
            );
        }
    }
    assert!(measured >= 5, "only {measured} keys measured");
    let parse = p.column("json_parse_ns_per_byte").unwrap().f64().unwrap();
    assert!(parse.iter().flatten().any(|x| x > 0.0));
    // No body value in any file written.
    for entry in std::fs::read_dir(out.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for s in secrets {
            assert!(
                !text.contains(s),
                "{} holds the body value {s}",
                path.display()
            );
        }
    }
    // Parquet pages are compressed: check the decoded string columns too.
    for name in ["method", "route", "non_json_kinds"] {
        let col = p.column(name).unwrap().str().unwrap();
        for v in col.iter().flatten() {
            for s in secrets {
                assert!(!v.contains(s), "{name} holds {s}");
            }
        }
    }
}
