//! The `payloads` table on the demo capture (JSON everywhere): bounded samples, protobuf
//! smaller than JSON, and no body value in any output file.

use crate::common::*;
use assert_cmd::Command;

/// A non-null u64 column of a table.
fn u64s(df: &polars::prelude::DataFrame, c: &str) -> Vec<u64> {
    df.column(c)
        .unwrap()
        .u64()
        .unwrap()
        .into_no_null_iter()
        .collect()
}

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
    let u = |c: &str| u64s(p, c);
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

/// fixtures/grpc_vs_json.pcap carries the same 150 documents over an HTTP/1.1 JSON API and
/// over real gRPC, whose .proto (fixtures/grpc/orders.proto) numbers fields by the inference
/// rule but uses `string` where the enum rule would pick `enum`. With enums off and every
/// document sampled, linkrank's protobuf sizes equal the real encoding byte for byte: the
/// expected sums are grpcio's `SerializeToString()` lengths (fixtures/grpc/docs.py), which
/// equal the gRPC message lengths tshark measured on the wire.
#[test]
fn protobuf_sizes_equal_the_real_grpc_encoding() {
    let out = tempfile::tempdir().unwrap();
    Command::cargo_bin("linkrank")
        .unwrap()
        .arg("analyze")
        .arg(repo("fixtures/grpc_vs_json.pcap"))
        .args([
            "--no-enums",
            "--samples-per-route",
            "64",
            "--quiet",
            "--out",
        ])
        .arg(out.path())
        .assert()
        .success();
    let t = linkrank::tables::read_tables(&[out.path().join("payloads.parquet")]).unwrap();
    let p = &t.payloads;
    let text = std::fs::read_to_string(repo("fixtures/expected/grpc_vs_json.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let g = &v["grpc_vs_json"];
    let sum = |method: &str, field: &str| -> u64 {
        g["documents"][method]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d[field].as_u64().unwrap_or(0))
            .sum()
    };
    let wire = |method: &str, field: &str| -> u64 {
        g["grpc"]["methods"][method]["summary"][field]["sum"]
            .as_u64()
            .unwrap()
    };
    let col = |c: &str| -> Vec<String> {
        p.column(c)
            .unwrap()
            .cast(&polars::prelude::DataType::String)
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|s| s.unwrap_or_default().to_owned())
            .collect()
    };
    let (port, method, route, dir) = (
        col("server_port"),
        col("method"),
        col("route"),
        col("direction"),
    );
    let u = |c: &str| u64s(p, c);
    let (bodies, samples, json, pb) = (
        u("bodies"),
        u("samples"),
        u("sampled_json_bytes"),
        u("sampled_protobuf_bytes"),
    );
    let row = |m: &str, r: &str, d: &str| -> usize {
        (0..p.height())
            .find(|&i| port[i] == "8080" && method[i] == m && route[i] == r && dir[i] == d)
            .unwrap_or_else(|| panic!("no payload row for {m} {r} {d}"))
    };
    // (method, route, direction, gRPC method, docs.py protobuf field, tshark wire field,
    // docs.py JSON field)
    let cases = [
        (
            "GET",
            "/orders/{id}",
            "response",
            "GetOrder",
            "response_protobuf_bytes",
            "response_message_length",
            "response_json_bytes",
        ),
        (
            "POST",
            "/orders",
            "request",
            "CreateOrder",
            "request_protobuf_bytes",
            "request_message_length",
            "request_json_bytes",
        ),
        (
            "POST",
            "/orders",
            "response",
            "CreateOrder",
            "response_protobuf_bytes",
            "response_message_length",
            "response_json_bytes",
        ),
        (
            "GET",
            "/orders",
            "response",
            "ListOrders",
            "response_protobuf_bytes",
            "response_message_length",
            "response_json_bytes",
        ),
    ];
    for (m, r, d, grpc, doc_field, wire_field, json_field) in cases {
        let i = row(m, r, d);
        assert_eq!(
            (bodies[i], samples[i]),
            (50, 50),
            "{m} {r} {d}: all sampled"
        );
        assert_eq!(json[i], sum(grpc, json_field), "{m} {r} {d}: JSON bytes");
        let expected = sum(grpc, doc_field);
        assert_eq!(expected, wire(grpc, wire_field), "{grpc}: docs.py vs wire");
        assert_eq!(pb[i], expected, "{m} {r} {d}: protobuf bytes vs {grpc}");
    }
}
