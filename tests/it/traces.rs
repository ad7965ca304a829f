//! Trace readers against the third-party trace files of the corpus (see `linkrank::testing`), with the
//! MANIFEST's machine-made summary (spans, services, depth, cross-service edges, orphans)
//! as the oracle, and hand-checked calls on the Zipkin files.

use std::collections::BTreeMap;
use std::path::PathBuf;

use linkrank::ingest::traces::{self, SpanCallKind, TraceFormat, USER};

fn corpus(name: &str) -> PathBuf {
    linkrank::testing::corpus::path(name)
}

/// The MANIFEST's summary of one trace file.
#[derive(Debug, Default)]
struct Oracle {
    format: String,
    spans: u64,
    orphans: u64,
    services: BTreeMap<String, u64>,
    max_depth: u32,
    edges: BTreeMap<(String, String), u64>,
}

fn bracketed(v: &str) -> Vec<String> {
    let inner = v
        .split_once('[')
        .and_then(|(_, r)| r.rsplit_once(']'))
        .map_or("", |(l, _)| l);
    inner
        .split(", ")
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn manifest() -> BTreeMap<String, Oracle> {
    let text = std::fs::read_to_string(corpus("MANIFEST.tsv")).expect("MANIFEST.tsv");
    let mut out = BTreeMap::new();
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.get(7) != Some(&"trace") {
            continue;
        }
        let mut o = Oracle::default();
        for field in cols[8].split("; ") {
            let (k, v) = field.split_once('=').expect("key=value");
            match k {
                "format" => o.format = v.to_owned(),
                "spans" => o.spans = v.parse().unwrap(),
                "orphan_spans(parent missing)" => o.orphans = v.parse().unwrap(),
                "max_depth" => o.max_depth = v.parse().unwrap(),
                "services" => {
                    for s in bracketed(v) {
                        let (name, n) = s.rsplit_once(':').unwrap();
                        o.services.insert(name.to_owned(), n.parse().unwrap());
                    }
                }
                "cross_service_edges" => {
                    for e in bracketed(v) {
                        let (pair, n) = e.rsplit_once(':').unwrap();
                        let (a, b) = pair.split_once("->").unwrap();
                        o.edges
                            .insert((a.to_owned(), b.to_owned()), n.parse().unwrap());
                    }
                }
                _ => {}
            }
        }
        out.insert(cols[0].to_owned(), o);
    }
    out
}

#[test]
fn every_corpus_trace_file_matches_the_manifest() {
    if !linkrank::testing::corpus::require() {
        return;
    }
    let m = manifest();
    assert_eq!(m.len(), 9, "trace rows in MANIFEST.tsv");
    for (file, o) in &m {
        let set = traces::read(&[corpus(file)]).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(set.errors.is_empty(), "{file}: {:?}", set.errors);
        assert_eq!(set.coverage.spans_kept, o.spans, "{file}: spans");
        assert_eq!(set.coverage.orphan_spans, o.orphans, "{file}: orphans");
        assert_eq!(set.max_depth, o.max_depth, "{file}: max depth");
        let services: BTreeMap<String, u64> = set
            .services
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        assert_eq!(services, o.services, "{file}: services");
        let edges: BTreeMap<(String, String), u64> = set
            .edges
            .iter()
            .map(|((a, b), n)| ((a.to_string(), b.to_string()), *n))
            .collect();
        assert_eq!(edges, o.edges, "{file}: cross-service edges");
        // The MANIFEST's format names, mapped to ours.
        let want = match o.format.as_str() {
            "otlp" if file.ends_with(".jsonl") => TraceFormat::OtlpJsonLines,
            "otlp" => TraceFormat::OtlpJson,
            "jaeger-ui/query-api" => TraceFormat::JaegerQuery,
            "jaeger-trace" | "jaeger-model-protojson" => TraceFormat::JaegerTrace,
            f if f.contains("zipkin-v2") => TraceFormat::ZipkinV2,
            f => panic!("{file}: unknown MANIFEST format {f}"),
        };
        assert_eq!(traces::sniff(&corpus(file)), Some(want), "{file}: format");
    }
}

#[test]
fn captures_are_not_taken_for_trace_files() {
    if !linkrank::testing::corpus::require() {
        return;
    }
    for f in [
        "wireshark_http.cap.pcap",
        "packt_grpc_unary.pcapng",
        "arkime_empty.pcap",
        "itls13_keylog.txt",
    ] {
        assert_eq!(traces::sniff(&corpus(f)), None, "{f}");
    }
    assert!(matches!(
        traces::read(&[corpus("wireshark_http.cap.pcap")]),
        Err(traces::TraceError::UnknownFormat { .. })
    ));
}

#[test]
fn jaeger_query_output_and_its_otlp_input_give_the_same_trace() {
    if !linkrank::testing::corpus::require() {
        return;
    }
    // jaeger-ui's fixture: the .json is the UI's conversion of the .jsonl.
    let a = traces::read(&[corpus("jaegerui_otlp2jaeger-multi-in.jsonl")]).unwrap();
    let b = traces::read(&[corpus("jaegerui_oltp2jaeger-multi-out.json")]).unwrap();
    assert_eq!(a.coverage.spans_kept, 4);
    assert_eq!(
        (a.services, a.edges, a.max_depth),
        (b.services, b.edges, b.max_depth)
    );
    assert_eq!(a.coverage.documents, 4, "one document per line");
}

#[test]
fn zipkin_yelp_shared_spans_pair_into_calls() {
    if !linkrank::testing::corpus::require() {
        return;
    }
    let set = traces::read(&[corpus("zipkin_yelp.json")]).unwrap();
    assert_eq!(
        set.coverage.shared_spans, 3,
        "3 ids carry a CLIENT and a SERVER row"
    );
    let sync: Vec<_> = set.calls.iter().filter(|c| !c.virtual_callee).collect();
    let pairs: Vec<(&str, &str)> = sync.iter().map(|c| (&*c.caller, &*c.callee)).collect();
    for want in [
        (USER, "routing"),
        ("yelp-main", "mobile_api"),
        ("mobile_api", "spectre"),
        ("unknown", "yelp_main/api_proxy"),
        // The kind-less `txn: ...` span of yelp-main under yelp_main/api_proxy's SERVER
        // span (Yelp's proxy names its server span after itself, the work is
        // yelp-main's): Jaeger's dependencies job and Zipkin's linker (which backfills
        // a link from the nearest remote ancestor) both make this link.
        ("yelp_main/api_proxy", "yelp-main"),
    ] {
        assert!(pairs.contains(&want), "{want:?} in {pairs:?}");
    }
    assert_eq!(sync.len(), 5);
    // CLIENT rows nobody answers: memcache x5, mysql x2, blt x1 (remoteEndpoint names).
    let mut virt: BTreeMap<&str, u32> = BTreeMap::new();
    for c in set.calls.iter().filter(|c| c.virtual_callee) {
        *virt.entry(&c.callee).or_default() += 1;
    }
    assert_eq!(
        virt,
        BTreeMap::from([("blt", 1), ("memcache", 5), ("mysql", 2)])
    );
    // mobile_api -> spectre is made while serving yelp-main -> mobile_api, itself made
    // while routing serves the user.
    let idx = |a: &str, b: &str| {
        set.calls
            .iter()
            .position(|c| &*c.caller == a && &*c.callee == b)
            .unwrap()
    };
    let spectre = idx("mobile_api", "spectre");
    let mobile = idx("yelp-main", "mobile_api");
    let root = idx(USER, "routing");
    assert_eq!(set.calls[spectre].parent_call, Some(mobile));
    assert_eq!(set.calls[mobile].parent_call, Some(root));
    assert_eq!(set.calls[root].parent_call, None);
    // Times: client view from the yelp-main row, server view from the mobile_api row.
    let c = &set.calls[mobile];
    assert_eq!(c.client_start_ns, Some(1_571_896_375_287_000_000));
    assert_eq!(c.client_end_ns, Some(1_571_896_375_343_000_000));
    assert_eq!(c.server_start_ns, Some(1_571_896_375_297_103_000));
    assert_eq!(c.route.as_deref(), Some("/location/update/v4"));
    assert_eq!(set.coverage.clock_skew, 0);
}

#[test]
fn zipkin_skew_is_counted_and_measured() {
    if !linkrank::testing::corpus::require() {
        return;
    }
    let set = traces::read(&[corpus("zipkin_skew.json")]).unwrap();
    let c = set.calls.iter().find(|c| &*c.callee == "serviceb").unwrap();
    assert_eq!(&*c.caller, "servicea");
    assert_eq!(set.coverage.clock_skew, 1);
    // Server mid (4008761 + 4102338) / 2 minus client mid (4074202 + 4168741) / 2, in µs
    // past ...150000, times 1000.
    assert_eq!(c.skew_ns, -65_922_000);
}

#[test]
fn kafka_producer_consumer_pairs_are_async_calls() {
    if !linkrank::testing::corpus::require() {
        return;
    }
    let set = traces::read(&[corpus("zipkin_messaging-kafka.json")]).unwrap();
    assert!(
        set.calls.iter().all(|c| c.kind == SpanCallKind::Async),
        "no CLIENT/SERVER spans in the file"
    );
    let count = |a: &str, b: &str, virt: bool| {
        set.calls
            .iter()
            .filter(|c| &*c.caller == a && &*c.callee == b && c.virtual_callee == virt)
            .count()
    };
    // CONSUMER spans whose parent is a PRODUCER: 3 in serviceb, 3 in servicea.
    assert_eq!(count("servicea", "serviceb", false), 3);
    assert_eq!(count("servicea", "servicea", false), 3);
    // The root CONSUMER (poll) is fed by the broker.
    assert_eq!(count("kafka", "servicea", false), 1);
    // 9 PRODUCER spans, 3 of them answered: 6 sends nobody in the file consumed.
    assert_eq!(count("servicea", "kafka", true), 6);
    assert!(set
        .calls
        .iter()
        .filter(|c| !c.virtual_callee && &*c.caller != "kafka")
        .all(|c| c.broker.as_deref() == Some("kafka")));
    assert_eq!(set.coverage.calls_async, 13);
}
