//! Schema inference and sizes; expected bytes are worked out by hand from the protobuf
//! wire format (tag = number << 3 | wire type, varints 7 bits a byte, zigzag for sint64).

use prost::Message as _;
use prost_reflect::{DynamicMessage, Value as PValue};

use super::json::Json;
use super::schema::{encode_all, Schema, Ty};
use super::*;

fn docs(texts: &[&str]) -> Vec<Json> {
    texts
        .iter()
        .map(|t| Json::parse(t.as_bytes()).unwrap())
        .collect()
}

fn encode(texts: &[&str]) -> (Schema, Vec<Vec<u8>>) {
    let d = docs(texts);
    let s = Schema::infer(&d);
    let e = encode_all(&s, &d).unwrap();
    (s, e)
}

fn numbers(s: &Schema, msg: usize) -> Vec<(&str, u32)> {
    s.messages[msg]
        .fields
        .iter()
        .map(|f| (f.key.as_str(), f.number))
        .collect()
}

#[test]
fn scalar_fields_match_the_spec_example() {
    // The encoding guide's example: 150 in field 1 is 08 96 01; "testing" in field 2.
    let (s, e) = encode(&[r#"{"id":150,"name":"testing"}"#]);
    assert_eq!(s.messages[0].fields[0].ty, Ty::Int64);
    assert_eq!(s.messages[0].fields[1].ty, Ty::String);
    let mut want = vec![0x08, 0x96, 0x01, 0x12, 0x07];
    want.extend_from_slice(b"testing");
    assert_eq!(e[0], want);
}

#[test]
fn numbers_by_frequency_then_document_order() {
    let (s, _) = encode(&[
        r#"{"a":1}"#,
        r#"{"b":2,"a":3}"#,
        r#"{"b":4}"#,
        r#"{"c":5,"b":6}"#,
    ]);
    assert_eq!(numbers(&s, 0), vec![("b", 1), ("a", 2), ("c", 3)]);
    // Ties keep document order, not alphabetical order.
    let (s, _) = encode(&[r#"{"z":1,"y":2,"x":3}"#]);
    assert_eq!(numbers(&s, 0), vec![("z", 1), ("y", 2), ("x", 3)]);
}

#[test]
fn field_sixteen_needs_a_two_byte_tag() {
    let keys: Vec<String> = (1..=16).map(|i| format!("\"k{i}\":1")).collect();
    let doc = format!("{{{}}}", keys.join(","));
    let (_, e) = encode(&[&doc]);
    // 15 fields of tag + value (2 bytes), then tag 16<<3 = 128 = 80 01, value 01.
    assert_eq!(e[0].len(), 15 * 2 + 3);
    assert_eq!(&e[0][30..], &[0x80, 0x01, 0x01]);
}

#[test]
fn negative_integers_make_sint64_and_fractions_double() {
    let (s, e) = encode(&[r#"{"t":-1}"#, r#"{"t":2}"#]);
    assert_eq!(s.messages[0].fields[0].ty, Ty::Sint64);
    // zigzag(-1) = 1, zigzag(2) = 4 (as int64, -1 would take 10 bytes).
    assert_eq!(e, vec![vec![0x08, 0x01], vec![0x08, 0x04]]);
    let (s, e) = encode(&[r#"{"x":1}"#, r#"{"x":0.5}"#]);
    assert_eq!(s.messages[0].fields[0].ty, Ty::Double);
    // Wire type 1 (64-bit): tag 09, then 8 bytes of the IEEE double 1.0.
    let mut want = vec![0x09];
    want.extend_from_slice(&1.0f64.to_le_bytes());
    assert_eq!(e[0], want);
}

#[test]
fn arrays_of_numbers_are_packed_and_of_strings_repeated() {
    let (_, e) = encode(&[r#"{"v":[1,2,300]}"#]);
    // One length-delimited field: 0a, length 4, varints 01 02 ac02.
    assert_eq!(e[0], vec![0x0a, 0x04, 0x01, 0x02, 0xac, 0x02]);
    let (_, e) = encode(&[r#"{"s":["a","bc",null]}"#]);
    assert_eq!(e[0], vec![0x0a, 0x01, b'a', 0x0a, 0x02, b'b', b'c']);
}

#[test]
fn nested_objects_arrays_of_objects_and_unicode() {
    let (s, e) = encode(&[r#"{"items":[{"n":1},{"n":2}]}"#]);
    assert!(s.messages[0].fields[0].repeated);
    assert_eq!(e[0], vec![0x0a, 0x02, 0x08, 0x01, 0x0a, 0x02, 0x08, 0x02]);
    // "é" is two UTF-8 bytes.
    let (_, e) = encode(&[r#"{"user":{"name":"é"}}"#]);
    assert_eq!(e[0], vec![0x0a, 0x04, 0x0a, 0x02, 0xc3, 0xa9]);
}

#[test]
fn nulls_take_the_type_of_other_samples() {
    let (s, e) = encode(&[r#"{"a":null,"b":1}"#, r#"{"a":"x","b":2}"#]);
    // "a" is non-null once, "b" twice: b is field 1.
    assert_eq!(numbers(&s, 0), vec![("b", 1), ("a", 2)]);
    assert_eq!(e[0], vec![0x08, 0x01]);
    assert_eq!(e[1], vec![0x08, 0x02, 0x12, 0x01, b'x']);
    // Only ever null: no field at all.
    let (s, _) = encode(&[r#"{"a":null,"b":1}"#]);
    assert_eq!(numbers(&s, 0), vec![("b", 1)]);
}

#[test]
fn mixed_types_carry_json_text() {
    let (s, e) = encode(&[r#"{"m":1}"#, r#"{"m":"x"}"#]);
    assert_eq!(s.messages[0].fields[0].ty, Ty::JsonText);
    assert_eq!(e[0], vec![0x0a, 0x01, b'1']);
    assert_eq!(e[1], vec![0x0a, 0x03, b'"', b'x', b'"']);
}

#[test]
fn dynamic_keys_become_maps() {
    // Four keys, each in one object of four: sparse, so a map<string, int64>.
    let (s, e) = encode(&[
        r#"{"counts":{"k1":1}}"#,
        r#"{"counts":{"k2":2}}"#,
        r#"{"counts":{"k3":3}}"#,
        r#"{"counts":{"k4":4}}"#,
    ]);
    assert_eq!(s.messages[0].fields[0].ty, Ty::Map(Box::new(Ty::Int64)));
    // Entry: key (0a 02 'k' '1') + value (10 01) = 6 bytes, in field 1: 0a 06.
    assert_eq!(e[0], vec![0x0a, 0x06, 0x0a, 0x02, b'k', b'1', 0x10, 0x01]);
    // Keys that could not be field names, even in one document.
    let (s, e) = encode(&[r#"{"scores":{"10.0.0.1":5,"10.0.0.2":7}}"#]);
    assert!(matches!(s.messages[0].fields[0].ty, Ty::Map(_)));
    // Each entry: 0a 08 + 8 key bytes, 10 + value: 12 bytes, framed 0a 0c: 14.
    assert_eq!(e[0].len(), 28);
    // A fixed object is a message, not a map.
    let (s, _) = encode(&[r#"{"p":{"x":1,"y":2}}"#, r#"{"p":{"x":3,"y":4}}"#]);
    assert_eq!(s.messages[0].fields[0].ty, Ty::Message(1));
}

#[test]
fn few_identifier_strings_become_an_enum() {
    let mut texts = vec![r#"{"status":"ok"}"#; 6];
    texts.extend([r#"{"status":"fail"}"#; 2]);
    let (s, e) = encode(&texts);
    assert_eq!(s.messages[0].fields[0].ty, Ty::Enum(0));
    assert_eq!(s.enums[0], vec!["ok".to_string(), "fail".to_string()]);
    assert_eq!(e[0], vec![0x08, 0x01]);
    assert_eq!(e[7], vec![0x08, 0x02]);
    // Seven values are too few to call it an enum.
    let (s, _) = encode(&texts[..7]);
    assert_eq!(s.messages[0].fields[0].ty, Ty::String);
}

#[test]
fn defaults_empty_documents_and_top_level_arrays() {
    // proto3 omits 0, "", false and empty containers.
    let (_, e) = encode(&[r#"{"n":0,"s":"","f":false,"t":true,"a":[],"o":{}}"#]);
    // Only t (field 4) = true, and o (field 5): an empty message is still present.
    assert_eq!(e[0], vec![0x20, 0x01, 0x2a, 0x00]);
    let (_, e) = encode(&["{}"]);
    assert_eq!(e[0], Vec::<u8>::new());
    let (s, e) = encode(&["[1,2,3]", "[]"]);
    assert!(s.wrapped);
    assert_eq!(e[0], vec![0x0a, 0x03, 0x01, 0x02, 0x03]);
    assert_eq!(e[1], Vec::<u8>::new());
}

#[test]
fn encodings_decode_back_to_the_same_values() {
    let texts = [
        r#"{"id":7,"name":"Zoë","tags":["a","b"],"loc":{"lat":1.25,"lon":-3.5},"n":[-1,5],"ok":true,"m":{"1":"x","2":"y"}}"#,
        r#"{"id":9,"name":"Ann","tags":[],"loc":{"lat":2.5,"lon":4.0},"n":[3],"ok":true,"m":{"3":"z","4":"w"}}"#,
    ];
    let d = docs(&texts);
    let s = Schema::infer(&d);
    let desc = s.root_descriptor().unwrap();
    for doc in &d {
        let m = s.message(&desc, doc);
        let bytes = m.encode_to_vec();
        let back = DynamicMessage::decode(desc.clone(), bytes.as_slice()).unwrap();
        assert_eq!(back, m);
        // Same size (map entries may come out in another order).
        assert_eq!(back.encode_to_vec().len(), bytes.len());
    }
    let back = DynamicMessage::decode(
        desc.clone(),
        s.message(&desc, &d[0]).encode_to_vec().as_slice(),
    )
    .unwrap();
    let num = |key: &str| {
        s.messages[0]
            .fields
            .iter()
            .find(|f| f.key == key)
            .unwrap()
            .number
    };
    assert_eq!(
        back.get_field_by_number(num("id")).unwrap().as_i64(),
        Some(7)
    );
    assert_eq!(
        back.get_field_by_number(num("name")).unwrap().as_str(),
        Some("Zoë")
    );
    assert_eq!(
        back.get_field_by_number(num("n")).unwrap().into_owned(),
        PValue::List(vec![PValue::I64(-1), PValue::I64(5)])
    );
}

fn key(route: &str) -> SampleKey {
    SampleKey {
        client_ip: "10.0.0.1".parse().unwrap(),
        server_ip: "10.0.0.2".parse().unwrap(),
        server_port: 80,
        method: "POST".into(),
        route: route.into(),
        direction: "request",
    }
}

/// A fresh body identity (exchange `n` of connection 1) and its rank.
fn next_rank() -> BodyRank {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let client = crate::model::Endpoint::new([10, 0, 0, 1].into(), 40000);
    let server = crate::model::Endpoint::new([10, 0, 0, 2].into(), 80);
    let ex = Exchange::new(
        crate::model::ConnId(1),
        N.fetch_add(1, Ordering::Relaxed),
        client,
        server,
    );
    BodyRank::of(&ex, Direction::ClientToServer)
}

/// One JSON body through the sampler as the HTTP stage hands it over: admitted when it
/// starts, offered when it ends.
fn json(s: &mut Sampler, k: SampleKey, text: &[u8]) {
    if let Some(mut c) = s.admit(k.clone(), next_rank()) {
        c.push(text);
        s.offer(k, Offer::Json(c));
    }
}

#[test]
fn sampler_bounds_counts_and_rows() {
    let mut s = Sampler::new(SamplerConfig {
        max_docs_per_key: 4,
        ..Default::default()
    });
    for i in 0..10 {
        json(&mut s, key("/a"), format!(r#"{{"id":{i}}}"#).as_bytes());
    }
    // An 11th body, cut by a gap: dropped whether the reservoir admitted it or not.
    if s.admit(key("/a"), next_rank()).is_some() {
        s.offer(key("/a"), Offer::AdmittedLost);
    }
    s.offer(key("/a"), Offer::Other(BodyKind::Form));
    s.offer(key("/a"), Offer::Other(BodyKind::Xml));
    s.offer(key("/a"), Offer::Other(BodyKind::Form));
    json(&mut s, key("/b"), &vec![b'1'; (256 << 10) + 1]);
    json(&mut s, key("/b"), b"not json");
    let mut cov = Coverage::default();
    let rows = s.finish(&mut cov);
    assert_eq!(rows.len(), 2);
    let a = &rows[0];
    assert_eq!((a.bodies, a.samples, a.dropped), (11, 4, 7));
    assert_eq!(a.non_json_bodies, 3);
    assert_eq!(a.non_json_kinds, "form:2,xml:1");
    assert!(a.sampled_protobuf_bytes < a.sampled_json_bytes);
    assert_eq!(a.schema_fields, 1);
    assert!(a.json_parse_ns_per_byte.is_some_and(|x| x > 0.0));
    let b = &rows[1];
    assert_eq!((b.bodies, b.samples, b.oversized, b.dropped), (2, 0, 1, 2));
    assert_eq!(cov.json_bodies_sampled, 4);
    assert_eq!(cov.json_bodies_dropped, 7 + 2);
    assert_eq!(cov.json_bodies_oversized, 1);
}

/// What gzip would make of a key's documents is measured on every sample, also where
/// the link sends its bodies uncompressed (the case where gzip could help at all).
#[test]
fn gzip_sizes_cover_uncompressed_samples() {
    let mut s = Sampler::new(SamplerConfig::default());
    let doc = format!(
        r#"{{"items":[{}]}}"#,
        vec![r#"{"sku":"SKU-10042","name":"Espresso beans 1kg","qty":2}"#; 20].join(",")
    );
    for _ in 0..3 {
        json(&mut s, key("/orders"), doc.as_bytes());
    }
    let mut cov = Coverage::default();
    let rows = s.finish(&mut cov);
    let r = &rows[0];
    assert_eq!(r.sampled_json_bytes, 3 * doc.len() as u64);
    assert_eq!(
        r.sampled_json_gzip_bytes,
        Some(3 * gzip_len(doc.as_bytes())),
        "every sample is gzipped"
    );
    assert!(r.sampled_json_gzip_bytes.unwrap() < r.sampled_json_bytes / 5);
    assert!(r.sampled_protobuf_gzip_bytes.is_some_and(|g| g > 0));
}

#[test]
fn sampler_memory_bound_is_counted() {
    let mut s = Sampler::new(SamplerConfig {
        max_total_bytes: 20,
        ..Default::default()
    });
    for _ in 0..3 {
        json(&mut s, key("/m"), br#"{"id":123456}"#); // 13 bytes
    }
    assert_eq!(s.held_bytes(), 13);
    let c = s.counts();
    assert_eq!((c.kept, c.memory_cap_hits, c.dropped), (1, 2, 2));
}

#[test]
fn body_kinds_by_media_type() {
    let k = |ct: Option<&str>, len| BodyKind::of(ct, len);
    assert_eq!(
        k(Some("application/json; charset=utf-8"), 3),
        Some(BodyKind::Json)
    );
    assert_eq!(k(Some("application/problem+json"), 3), Some(BodyKind::Json));
    assert_eq!(k(Some("Text/JSON"), 3), Some(BodyKind::Json));
    assert_eq!(
        k(Some("application/x-www-form-urlencoded"), 3),
        Some(BodyKind::Form)
    );
    assert_eq!(k(Some("application/soap+xml"), 3), Some(BodyKind::Xml));
    assert_eq!(
        k(Some("multipart/form-data; boundary=x"), 3),
        Some(BodyKind::Multipart)
    );
    assert_eq!(k(Some("text/plain"), 3), Some(BodyKind::Text));
    assert_eq!(
        k(Some("application/octet-stream"), 3),
        Some(BodyKind::Other)
    );
    assert_eq!(k(Some("application/json"), 0), Some(BodyKind::Empty));
    assert_eq!(k(None, 0), None);
    assert_eq!(k(None, 5), Some(BodyKind::Other));
}

proptest::proptest! {
    /// Bodies shared among several samplers (threads owning different connections), in
    /// any order, and merged give the rows one sampler fed them all gives: the same
    /// documents kept, the same counts.
    #[test]
    fn merged_samplers_keep_what_one_keeps(
        bodies in proptest::collection::vec((0u64..40, 0u32..6, 0usize..3, 0usize..3), 1..120),
        shards in 1usize..4,
    ) {
        let cfg = SamplerConfig {
            max_docs_per_key: 3,
            cpu_budget: Duration::ZERO,
            ..Default::default()
        };
        let body = |conn: u64, index: u32, route: usize, size: usize| {
            let client = crate::model::Endpoint::new([10, 0, 0, 1].into(), 40000);
            let server = crate::model::Endpoint::new([10, 0, 0, 2].into(), 80);
            let ex = Exchange::new(crate::model::ConnId(conn), index, client, server);
            let text = format!(r#"{{"conn":{conn},"i":{index},"pad":"{}"}}"#, "x".repeat(size * 7));
            (key(["/a", "/b", "/c"][route]), BodyRank::of(&ex, Direction::ClientToServer), text)
        };
        let feed = |s: &mut Sampler, (k, rank, text): (SampleKey, BodyRank, String)| {
            if let Some(mut c) = s.admit(k.clone(), rank) {
                c.push(text.as_bytes());
                s.offer(k, Offer::Json(c));
            }
        };
        // Each (connection, exchange) once.
        let mut seen = std::collections::BTreeSet::new();
        let bodies: Vec<_> = bodies.into_iter().filter(|b| seen.insert((b.0, b.1))).collect();
        let mut one = Sampler::new(cfg);
        for &(conn, index, route, size) in &bodies {
            feed(&mut one, body(conn, index, route, size));
        }
        // Shard by connection, each shard in reverse order.
        let mut parts: Vec<Sampler> = (0..shards).map(|_| Sampler::new(cfg)).collect();
        for &(conn, index, route, size) in bodies.iter().rev() {
            feed(&mut parts[conn as usize % shards], body(conn, index, route, size));
        }
        let mut merged = Sampler::new(cfg);
        for p in parts {
            merged.merge(p);
        }
        proptest::prop_assert_eq!(one.counts(), merged.counts());
        let (mut c1, mut c2) = (Coverage::default(), Coverage::default());
        proptest::prop_assert_eq!(one.finish(&mut c1), merged.finish(&mut c2));
        proptest::prop_assert_eq!(c1, c2);
    }
}
