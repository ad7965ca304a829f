//! Unit tests of the trace readers: formats built here (protobuf, gzip), malformed and
//! truncated inputs, bounds, privacy of paths and error messages, pairing rules.

use std::io::Write;
use std::path::PathBuf;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use super::span::{url_host, url_path};
use super::*;

fn corpus(name: &str) -> PathBuf {
    crate::testing::corpus::path(name)
}

fn temp_with(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(bytes).unwrap();
    f.flush().unwrap();
    f
}

fn read_bytes(bytes: &[u8]) -> TraceSet {
    let f = temp_with(bytes);
    read(&[f.path()]).unwrap()
}

fn read_limited(bytes: &[u8], limits: Limits) -> TraceSet {
    let f = temp_with(bytes);
    read_with(&[f.path()], limits).unwrap()
}

fn otlp_request(file: &str) -> ExportTraceServiceRequest {
    serde_json::from_slice(&std::fs::read(corpus(file)).unwrap()).unwrap()
}

/// One OTLP/JSON line with the given spans (JSON objects) in service `svc`.
fn otlp_line(svc: &str, spans: &[String]) -> String {
    format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{svc}"}}}}]}},"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
        spans.join(",")
    )
}

fn span_json(
    trace: &str,
    id: &str,
    parent: &str,
    kind: u8,
    start: u64,
    end: u64,
    attrs: &str,
) -> String {
    format!(
        r#"{{"traceId":"{trace}","spanId":"{id}","parentSpanId":"{parent}","name":"op","kind":{kind},"startTimeUnixNano":"{start}","endTimeUnixNano":"{end}","attributes":[{attrs}]}}"#
    )
}

fn s_attr(k: &str, v: &str) -> String {
    format!(r#"{{"key":"{k}","value":{{"stringValue":"{v}"}}}}"#)
}

fn i_attr(k: &str, v: i64) -> String {
    // 64-bit integers are strings in OTLP/JSON.
    format!(r#"{{"key":"{k}","value":{{"intValue":"{v}"}}}}"#)
}

const T1: &str = "0af7651916cd43dd8448eb211c80319c";

#[test]
fn otlp_serde_reads_the_canonical_example() {
    if !crate::testing::corpus::require() {
        return;
    }
    // Upper-case hex ids, string-encoded nanoseconds and integers in the spec's example.
    let req = otlp_request("otelproto_examples_trace.json");
    let span = &req.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(span.trace_id.len(), 16);
    assert_eq!(span.trace_id[0], 0x5b);
    assert_eq!(
        span.span_id,
        [0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74]
    );
    assert_eq!(span.start_time_unix_nano, 1_544_712_660_000_000_000);
    assert_eq!(span.kind, 2);
}

#[test]
fn otlp_protobuf_single_and_length_delimited_read_like_the_json() {
    if !crate::testing::corpus::require() {
        return;
    }
    let req = otlp_request("jaeger_storage_example_trace_otlp.json");
    let json = read(&[corpus("jaeger_storage_example_trace_otlp.json")]).unwrap();
    assert_eq!(json.coverage.spans_kept, 5);

    let single = req.encode_to_vec();
    assert_eq!(
        sniff_bytes(&single),
        Some(TraceFormat::OtlpProtobuf {
            length_delimited: false
        })
    );
    let set = read_bytes(&single);
    assert!(set.errors.is_empty(), "{:?}", set.errors);
    assert_eq!(
        (set.services.clone(), set.coverage.spans_kept),
        (json.services.clone(), 5)
    );
    assert_eq!(set.coverage.bytes, single.len() as u64);

    // Two requests, each prefixed by its length: the same trace twice.
    let mut delimited = req.encode_length_delimited_to_vec();
    delimited.extend(req.encode_length_delimited_to_vec());
    assert_eq!(
        sniff_bytes(&delimited),
        Some(TraceFormat::OtlpProtobuf {
            length_delimited: true
        })
    );
    let set = read_bytes(&delimited);
    assert!(set.errors.is_empty(), "{:?}", set.errors);
    assert_eq!(set.coverage.documents, 2);
    assert_eq!(set.coverage.spans_kept, 10);
    assert_eq!(
        set.coverage.duplicate_span_ids, 5,
        "the second copy repeats every id"
    );
}

#[test]
fn truncated_protobuf_keeps_the_entries_before_the_cut() {
    if !crate::testing::corpus::require() {
        return;
    }
    let req = otlp_request("jaeger_storage_example_trace_otlp.json");
    let bytes = req.encode_to_vec();
    // Entries are whole ResourceSpans; cut inside the last one (3 spans of service 1).
    let set = read_bytes(&bytes[..bytes.len() - 10]);
    assert_eq!(
        set.coverage.spans_kept, 2,
        "the first two resources have one span each"
    );
    assert_eq!(set.coverage.malformed_documents, 1);
    assert!(
        matches!(
            set.errors[0],
            TraceError::Malformed {
                at: Location::Byte(_),
                ..
            }
        ),
        "{}",
        set.errors[0]
    );
}

#[test]
fn gzip_json_lines_read_like_the_plain_file() {
    if !crate::testing::corpus::require() {
        return;
    }
    let plain = std::fs::read(corpus("jaegerui_otlp2jaeger-multi-in.jsonl")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).unwrap();
    let gz = gz.finish().unwrap();
    let f = temp_with(&gz);
    assert_eq!(sniff(f.path()), Some(TraceFormat::OtlpJsonLines));
    let set = read(&[f.path()]).unwrap();
    assert_eq!(set.coverage.spans_kept, 4);
    assert_eq!(
        set.coverage.bytes,
        plain.len() as u64,
        "bytes are counted after gzip"
    );
    assert_eq!(set.max_depth, 3);
}

#[test]
fn truncated_json_lines_keep_the_complete_lines() {
    if !crate::testing::corpus::require() {
        return;
    }
    let plain = std::fs::read(corpus("jaegerui_otlp2jaeger-multi-in.jsonl")).unwrap();
    let cut = &plain[..plain.len() - 60];
    let set = read_bytes(cut);
    assert_eq!(set.coverage.spans_kept, 3);
    assert_eq!(set.coverage.malformed_documents, 1);
    let msg = set.errors[0].to_string();
    assert!(msg.contains("line 4") && msg.contains("truncated"), "{msg}");
}

#[test]
fn truncated_zipkin_document_keeps_the_spans_before_the_cut() {
    if !crate::testing::corpus::require() {
        return;
    }
    let text = std::fs::read(corpus("zipkin_yelp.json")).unwrap();
    let set = read_bytes(&text[..text.len() / 2]);
    let kept = set.coverage.spans_kept;
    assert!(kept > 0 && kept < 16, "kept {kept}");
    match &set.errors[0] {
        TraceError::Malformed {
            at: Location::LineColumn { line, .. },
            what,
            ..
        } => {
            assert!(*line > 1);
            assert!(what.contains("truncated"), "{what}");
        }
        e => panic!("unexpected {e}"),
    }
}

#[test]
fn truncated_gzip_is_partial_not_fatal() {
    if !crate::testing::corpus::require() {
        return;
    }
    let plain = std::fs::read(corpus("zipkin_messaging-kafka.json")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).unwrap();
    let gz = gz.finish().unwrap();
    let set = read_bytes(&gz[..gz.len() * 2 / 3]);
    assert!(set.coverage.spans_kept > 0 && set.coverage.spans_kept < 28);
    assert_eq!(set.coverage.malformed_documents, 1);
}

#[test]
fn spans_without_ids_are_counted_and_bad_hex_names_no_value() {
    let good = span_json(T1, "b7ad6b7169203331", "", 2, 1, 2, "");
    let no_id = span_json(T1, "", "", 2, 1, 2, "");
    let line1 = otlp_line("a", &[good, no_id]);
    let bad_hex = span_json("zz-secret-token-zz", "b7ad6b7169203332", "", 2, 1, 2, "");
    let line2 = otlp_line("a", &[bad_hex]);
    let set = read_bytes(format!("{line1}\n{line2}\n").as_bytes());
    assert_eq!(set.coverage.spans_read, 2);
    assert_eq!(set.coverage.spans_missing_ids, 1);
    assert_eq!(set.coverage.spans_kept, 1);
    assert_eq!(set.coverage.malformed_documents, 1);
    let msg = set.errors[0].to_string();
    assert!(msg.contains("line 2"), "{msg}");
    assert!(
        !msg.contains("secret"),
        "an attribute or id value leaked: {msg}"
    );
}

#[test]
fn servicegraph_pairing_with_http_attributes() {
    let t = "4bf92f3577b34da6a3ce929d0e0e4736";
    let front = otlp_line(
        "frontend",
        &[
            span_json(
                t,
                "0000000000000001",
                "",
                2,
                1_000,
                9_000,
                &s_attr("http.route", "/checkout"),
            )
            .replace(r#""name":"op""#, r#""name":"GET /checkout?session=abc""#),
            span_json(
                t,
                "0000000000000002",
                "0000000000000001",
                3,
                2_000,
                6_000,
                &[
                    s_attr("http.request.method", "POST"),
                    s_attr("url.full", "http://cart.internal:8080/v1/cart/7?token=abc"),
                    i_attr("http.request.body.size", 321),
                ]
                .join(","),
            ),
            span_json(
                t,
                "0000000000000004",
                "0000000000000001",
                3,
                6_500,
                7_000,
                &s_attr("db.system", "postgresql"),
            ),
        ],
    );
    let cart = otlp_line(
        "cart",
        &[span_json(
            t,
            "0000000000000003",
            "0000000000000002",
            2,
            2_500,
            5_500,
            &[
                s_attr("http.method", "POST"),
                s_attr("http.target", "/v1/cart/7?token=abc"),
                s_attr("http.route", "/v1/cart/{id}"),
                i_attr("http.status_code", 503),
                i_attr("http.response.body.size", 1234),
                s_attr("network.protocol.version", "1.1"),
            ]
            .join(","),
        )],
    );
    let set = read_bytes(format!("{front}\n{cart}\n").as_bytes());
    assert_eq!(set.calls.len(), 3);
    let root = &set.calls[0];
    assert_eq!((&*root.caller, &*root.callee), (USER, "frontend"));
    assert_eq!(root.route.as_deref(), Some("/checkout"));
    assert_eq!(&*root.name, "GET /checkout", "span name keeps no query");
    let c = &set.calls[1];
    assert_eq!(
        (&*c.caller, &*c.callee, c.virtual_callee),
        ("frontend", "cart", false)
    );
    assert_eq!(c.method.as_deref(), Some("POST"));
    assert_eq!(c.route.as_deref(), Some("/v1/cart/{id}"));
    assert_eq!(c.path.as_deref(), Some("/v1/cart/7"), "query string cut");
    assert_eq!(c.status_code, Some(503));
    assert!(c.error, "5xx is an error");
    assert_eq!(
        (c.request_body_size, c.response_body_size),
        (Some(321), Some(1234))
    );
    assert_eq!(
        (c.client_start_ns, c.client_end_ns),
        (Some(2_000), Some(6_000))
    );
    assert_eq!(
        (c.server_start_ns, c.server_end_ns),
        (Some(2_500), Some(5_500))
    );
    assert_eq!(c.protocol_version.as_deref(), Some("1.1"));
    assert_eq!(c.parent_call, Some(0));
    assert_eq!(c.skew_ns, 0);
    let db = &set.calls[2];
    assert_eq!(
        (&*db.callee, db.virtual_callee, db.parent_call),
        ("postgresql", true, Some(0))
    );
    assert_eq!(set.coverage.calls_virtual, 1);
    // Nothing with the query string went anywhere.
    let all = format!("{:?}", set.calls);
    assert!(!all.contains("token") && !all.contains("session"), "{all}");
}

#[test]
fn missing_parent_and_cycles_are_counted_not_fatal() {
    let orphan = span_json(T1, "0000000000000001", "00000000000000ff", 2, 1, 2, "");
    // 2 -> 3 -> 2: a parent cycle.
    let a = span_json(T1, "0000000000000002", "0000000000000003", 1, 1, 2, "");
    let b = span_json(T1, "0000000000000003", "0000000000000002", 2, 1, 2, "");
    let set = read_bytes(otlp_line("svc", &[orphan, a, b]).as_bytes());
    assert_eq!(set.coverage.orphan_spans, 1);
    assert_eq!(set.coverage.cycles_broken, 1);
    assert_eq!(set.max_depth, 2);
    let callers: Vec<&str> = set.calls.iter().map(|c| &*c.caller).collect();
    // The orphan SERVER's caller never arrived; span 3's parent (2) is in the same service.
    assert!(callers.contains(&UNKNOWN_CALLER), "{callers:?}");
}

#[test]
fn open_trace_bound_evicts_and_every_span_is_accounted() {
    // 6 traces interleaved, 3 spans each, at most 2 open at once.
    let mut spans = Vec::new();
    for round in 0..3u64 {
        for t in 0..6u64 {
            let tid = format!("{:032x}", t + 1);
            let sid = format!("{:016x}", (t + 1) * 16 + round + 1);
            spans.push(span_json(&tid, &sid, "", 1, round, round + 1, ""));
        }
    }
    let limits = Limits {
        max_open_traces: 2,
        ..Limits::default()
    };
    let set = read_limited(otlp_line("s", &spans).as_bytes(), limits);
    assert!(set.coverage.traces_evicted > 0);
    assert!(
        set.coverage.traces > 6,
        "evicted traces come back as partial ones"
    );
    assert_eq!(set.coverage.spans_kept, 18);

    let limits = Limits {
        max_spans_per_trace: 2,
        ..Limits::default()
    };
    let set = read_limited(otlp_line("s", &spans).as_bytes(), limits);
    assert_eq!(set.coverage.spans_over_trace_cap, 6);
    let c = &set.coverage;
    assert_eq!(
        c.spans_read,
        c.spans_kept + c.spans_over_trace_cap + c.spans_missing_ids
    );
}

#[test]
fn overlong_lines_are_skipped() {
    let line = otlp_line("s", &[span_json(T1, "0000000000000001", "", 2, 1, 2, "")]);
    let long = otlp_line(
        "s",
        &[span_json(
            T1,
            "0000000000000002",
            "",
            2,
            1,
            2,
            &s_attr("pad", &"x".repeat(500)),
        )],
    );
    let limits = Limits {
        max_line_bytes: 400,
        ..Limits::default()
    };
    let set = read_limited(format!("{line}\n{long}\n{line}\n").as_bytes(), limits);
    assert_eq!(set.coverage.lines_too_long, 1);
    assert_eq!(set.coverage.documents, 2);
    assert_eq!(set.coverage.spans_read, 2);
}

#[test]
fn jaeger_protojson_times_and_base64_ids() {
    if !crate::testing::corpus::require() {
        return;
    }
    let set = read(&[corpus("jaeger_model_protojson_domain_03.json")]).unwrap();
    // 2017-01-26T16:46:31.639875-05:00 is 21:46:31.639875 UTC = 1485467191.639875 s
    // (date -d '2017-01-26T21:46:31Z' +%s gives 1485467191); duration 22938000 ns.
    let c = &set.calls[0];
    assert_eq!(c.server_start_ns, Some(1_485_467_191_639_875_000));
    assert_eq!(
        c.server_end_ns,
        Some(1_485_467_191_639_875_000 + 22_938_000)
    );
    // Trace id AAAAAAAAAABSlpqJVVcaPw== is 0x0000000000000000 52969a8955571a3f.
    assert_eq!(c.trace_id, 0x5296_9a89_5557_1a3f);
    assert_eq!(
        set.coverage.cycles_broken, 1,
        "the second span names itself as parent"
    );
}

#[test]
fn rfc3339_edge_cases() {
    assert_eq!(jaeger::rfc3339_ns("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(
        jaeger::rfc3339_ns("2000-03-01T00:00:00.5+00:00"),
        Some(951_868_800_500_000_000)
    );
    assert_eq!(jaeger::rfc3339_ns("2000-13-01T00:00:00Z"), None);
    assert_eq!(jaeger::rfc3339_ns("1969-12-31T23:59:59Z"), None);
    assert_eq!(jaeger::rfc3339_ns("garbage"), None);
}

#[test]
fn url_helpers_keep_no_query() {
    assert_eq!(
        url_host("https://user:pw@api.example.com:8443/a?b=c"),
        Some("api.example.com")
    );
    assert_eq!(url_host("http://[::1]:8080/x"), Some("::1"));
    assert_eq!(url_path("http://h/a/b?token=1#f"), Some("/a/b"));
    assert_eq!(url_path("http://h"), None);
    assert_eq!(strip_query("/p?q"), "/p");
}

#[test]
fn sniff_rejects_non_trace_json_and_text() {
    assert_eq!(sniff_bytes(br#"{"hello": "world"}"#), None);
    assert_eq!(sniff_bytes(b"[1, 2, 3]"), None);
    assert_eq!(sniff_bytes(b"\n# some text file\n"), None);
    assert_eq!(sniff_bytes(b""), None);
}

#[test]
fn long_first_line_is_json_lines_and_pretty_documents_may_follow_one_another() {
    if !crate::testing::corpus::require() {
        return;
    }
    // A first line longer than the sniffed head (the Collector writes batches of
    // hundreds of KB per line) is still JSON lines.
    let pad = s_attr("pad", &"x".repeat(100_000));
    let a = otlp_line("a", &[span_json(T1, "0000000000000001", "", 2, 1, 2, &pad)]);
    let b = otlp_line(
        "b",
        &[span_json(
            T1,
            "0000000000000002",
            "0000000000000001",
            2,
            1,
            2,
            "",
        )],
    );
    let f = temp_with(format!("{a}\n{b}\n").as_bytes());
    assert_eq!(sniff(f.path()), Some(TraceFormat::OtlpJsonLines));
    let set = read(&[f.path()]).unwrap();
    assert_eq!((set.coverage.documents, set.coverage.spans_kept), (2, 2));
    assert!(set.errors.is_empty(), "{:?}", set.errors);

    // Two pretty-printed requests appended to one file: one streamed document each.
    let doc = std::fs::read_to_string(corpus("otelproto_examples_trace.json")).unwrap();
    let f = temp_with(format!("{doc}\n{doc}").as_bytes());
    assert_eq!(sniff(f.path()), Some(TraceFormat::OtlpJson));
    let set = read(&[f.path()]).unwrap();
    assert!(set.errors.is_empty(), "{:?}", set.errors);
    assert_eq!((set.coverage.documents, set.coverage.spans_read), (2, 2));
    assert_eq!(set.coverage.bytes, (doc.len() * 2 + 1) as u64);
}

#[test]
fn jaeger_query_streams_trace_by_trace_and_keeps_traces_before_a_cut() {
    if !crate::testing::corpus::require() {
        return;
    }
    let one = std::fs::read_to_string(corpus("jaeger_ui_01.json")).unwrap();
    let two = one.replace("0000000000000001", "0000000000000abc");
    let doc = format!(r#"{{"data": [{one}, {two}], "total": 2, "limit": 0, "errors": null}}"#);
    assert_eq!(sniff_bytes(doc.as_bytes()), Some(TraceFormat::JaegerQuery));
    let set = read_bytes(doc.as_bytes());
    assert!(set.errors.is_empty(), "{:?}", set.errors);
    assert_eq!((set.coverage.traces, set.coverage.spans_kept), (2, 10));
    // Cut inside the second trace: the first one is whole.
    let cut = &doc[..one.len() + 20 + two.len() / 2];
    let set = read_bytes(cut.as_bytes());
    assert_eq!((set.coverage.traces, set.coverage.spans_kept), (1, 5));
    assert_eq!(set.coverage.malformed_documents, 1);
}

#[test]
fn a_client_answered_twice_lends_its_texts_to_both_calls() {
    // Calls take their texts out of the server span (read by no other call) and copy the
    // client's: a CLIENT span with two SERVER children (a retry recorded under one
    // client span) must give its method and path to both, and each server keeps its
    // own route.
    let t = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client = span_json(
        t,
        "0000000000000001",
        "",
        3,
        1_000,
        9_000,
        &[
            s_attr("http.request.method", "PUT"),
            s_attr("url.full", "http://cart:8080/v1/cart/7?token=abc"),
        ]
        .join(","),
    );
    let server = |id: &str, route: &str| {
        span_json(
            t,
            id,
            "0000000000000001",
            2,
            2_000,
            4_000,
            &s_attr("http.route", route),
        )
    };
    let text = format!(
        "{}\n{}\n",
        otlp_line("front", &[client]),
        otlp_line(
            "cart",
            &[
                server("0000000000000002", "/v1/cart/{id}"),
                server("0000000000000003", "/v2/cart/{id}"),
            ]
        )
    );
    let set = read_bytes(text.as_bytes());
    let calls: Vec<_> = set.calls.iter().filter(|c| &*c.callee == "cart").collect();
    assert_eq!(calls.len(), 2, "{:?}", set.calls);
    let routes: Vec<_> = calls.iter().map(|c| c.route.as_deref()).collect();
    assert_eq!(routes, [Some("/v1/cart/{id}"), Some("/v2/cart/{id}")]);
    for c in &calls {
        assert_eq!(c.client_span_id, Some(1));
        assert_eq!(c.method.as_deref(), Some("PUT"));
        assert_eq!(c.path.as_deref(), Some("/v1/cart/7"), "query cut");
    }
    assert_eq!(set.coverage.calls_virtual, 0);
}

#[test]
fn a_resource_written_after_its_spans_still_names_them() {
    // Exporters write `resource` first; JSON allows any order. Both orders in one line.
    let t = "4bf92f3577b34da6a3ce929d0e0e4736";
    let span = |id: &str| span_json(t, id, "", 2, 1_000, 2_000, "");
    let resource = |svc: &str| {
        format!(
            r#""resource":{{"attributes":[{}]}}"#,
            s_attr("service.name", svc)
        )
    };
    let scope = |id: &str| format!(r#""scopeSpans":[{{"spans":[{}]}}]"#, span(id));
    let line = format!(
        r#"{{"resourceSpans":[{{{},{}}},{{{},{}}},{{{}}}]}}"#,
        resource("first"),
        scope("0000000000000001"),
        scope("0000000000000002"),
        resource("after"),
        scope("0000000000000003"),
    );
    let set = read_bytes(format!("{line}\n").as_bytes());
    let by_span: Vec<_> = set
        .calls
        .iter()
        .map(|c| (c.server_span_id, &*c.callee))
        .collect();
    assert_eq!(
        by_span,
        [
            (Some(1), "first"),
            (Some(2), "after"),
            (Some(3), "unknown_service")
        ]
    );
}

/// An OTLP/JSON-lines file of about `spans` spans from the bench generator
/// (bench/make_spans.py), whole batches of 512 spans a line.
pub(crate) fn bench_spans(spans: usize) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("spans.jsonl");
    let gen = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/make_spans.py");
    let ok = std::process::Command::new("python3")
        .args([gen, out.to_str().unwrap(), &spans.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    std::fs::read(&out).unwrap()
}

/// Everything a reading gives, errors as their messages.
fn reading(set: &TraceSet) -> String {
    let errors: Vec<String> = set.errors.iter().map(ToString::to_string).collect();
    format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n{}\n{errors:?}",
        set.coverage, set.calls, set.services, set.edges, set.max_depth
    )
}

#[test]
fn json_lines_read_alike_on_one_thread_and_on_several() {
    let mut text = bench_spans(3000);
    // Between the generator's lines: a blank line, a line the fast path turns down (an
    // escaped id, read by the reference), a malformed one, one over the bound, spans
    // without ids; and a last line cut short.
    let span = |id: &str| span_json(T1, id, "", 2, 1, 2, &s_attr("http.route", "/a"));
    let extra = [
        String::new(),
        otlp_line("esc", &[span("\\u0030000000000000001")]),
        r#"{"resourceSpans": [{"scopeSpans": 7}]}"#.to_string(),
        otlp_line(
            "long",
            &[span_json(
                T1,
                "00000000000000a2",
                "",
                2,
                1,
                2,
                &s_attr("pad", &"x".repeat(700_000)),
            )],
        ),
        otlp_line("noid", &[span("")]),
    ];
    let mut lines: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let at = lines.len() / 2;
    let mut mixed = Vec::new();
    for (i, l) in lines.drain(..).enumerate() {
        mixed.extend_from_slice(l);
        mixed.push(b'\n');
        if i == at || i == 1 {
            for e in &extra {
                mixed.extend_from_slice(e.as_bytes());
                mixed.push(b'\n');
            }
        }
    }
    mixed.extend_from_slice(&otlp_line("cut", &[span("00000000000000c1")]).as_bytes()[..90]);
    text = mixed;
    let f = temp_with(&text);
    let read_on = |threads| {
        let limits = Limits {
            threads,
            // Over the generator's lines (512 spans, about 350 KB), under the padded one.
            max_line_bytes: 600_000,
            ..Limits::default()
        };
        read_with(&[f.path()], limits).unwrap()
    };
    let one = read_on(1);
    let c = &one.coverage;
    assert_eq!(c.lines_too_long, 2, "{c:?}");
    assert_eq!(
        c.malformed_documents, 3,
        "the bad line twice, the cut line: {c:?}"
    );
    assert_eq!(c.spans_missing_ids, 2, "{c:?}");
    assert_eq!(c.bytes, text.len() as u64);
    assert!(c.calls > 1000 && one.calls.len() as u64 == c.calls, "{c:?}");
    // The escaped id is the reference's reading: its service is there.
    assert!(one.services.keys().any(|s| &**s == "esc"));
    for threads in [2, 3, 8] {
        assert_eq!(
            reading(&read_on(threads)),
            reading(&one),
            "{threads} threads"
        );
    }
}
