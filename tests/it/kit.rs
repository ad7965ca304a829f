//! The migration kit (`reports/<name>/kit/`, docs/kit.md) checked by third-party tools
//! and against the wire: the .proto files compile with protoc and pass `buf lint`; every
//! JSON body tshark finds on the demo's gRPC routes parses into its generated message
//! (protoc's descriptors, prost-reflect's JSON mapping) and comes back the same; the
//! AsyncAPI document passes the official parser; the mesh policy's values are the
//! figures of links.json; the .proto generated from `fixtures/grpc_vs_json.pcap`'s JSON
//! side is compared field by field with the .proto its gRPC twin was written from.
//!
//! protoc (Debian's protobuf-compiler), node and tests/kit's npm packages are needed:
//! `bash scripts/test.sh` installs them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, Kind, MessageDescriptor, SerializeOptions,
    Value as PValue,
};
use serde_json::Value;

use crate::common::{repo, tshark};
use linkrank::report::kit::roundtrip::is_default;

/// The demo's services on the wire (captures/prod.services.yaml).
const ORDERS_IP: &str = "10.77.0.11";

fn floors_off() -> Vec<&'static str> {
    vec![
        "--set",
        "floor_cores=0",
        "--set",
        "floor_mbit_per_s=0",
        "--set",
        "floor_ms_per_request=0",
    ]
}

/// Runs `linkrank analyze` into `target/kit-tests/<name>` (once per test process).
fn run(name: &str, input: &str, extra: &[&str]) -> PathBuf {
    let out = repo("target/kit-tests").join(name);
    let _ = std::fs::remove_dir_all(&out);
    let status = Command::new(env!("CARGO_BIN_EXE_linkrank"))
        .arg("analyze")
        .arg(repo(input))
        .arg("--out")
        .arg(&out)
        .arg("--quiet")
        .args(extra)
        .status()
        .expect("running linkrank");
    assert!(status.success(), "linkrank analyze {input} failed");
    out
}

/// The demo with the floors at 0: gRPC for three links, a broker for one.
fn demo() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| run("demo", "captures/prod.pcap", &floors_off()))
}

fn twin() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| run("twin", "fixtures/grpc_vs_json.pcap", &["--kit-all"]))
}

fn links_json(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("links.json")).unwrap()).unwrap()
}

fn need(cmd: &Path) -> &Path {
    assert!(
        cmd.exists() || which(cmd),
        "{} is needed by the kit tests: run `bash scripts/test.sh` (it installs \
         protobuf-compiler and tests/kit's npm packages)",
        cmd.display()
    );
    cmd
}

fn which(cmd: &Path) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {}", cmd.display()))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// protoc's descriptor set of one generated file (imports included), as a pool.
fn protoc(proto_dir: &Path, file: &str) -> DescriptorPool {
    need(Path::new("protoc"));
    let set = proto_dir.join(format!("{file}.pb"));
    let out = Command::new("protoc")
        .arg("-I")
        .arg(proto_dir)
        .arg("-I")
        .arg("/usr/include")
        .arg("--include_imports")
        .arg(format!("--descriptor_set_out={}", set.display()))
        .arg(proto_dir.join(file))
        .output()
        .expect("protoc");
    assert!(
        out.status.success(),
        "protoc rejected {file}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&set).unwrap();
    std::fs::remove_file(&set).unwrap();
    DescriptorPool::decode(bytes.as_slice()).unwrap()
}

/// (verb, path, body, response_body) of each rpc, from its google.api.http option.
fn bindings(pool: &DescriptorPool) -> BTreeMap<String, (String, String, String, String)> {
    let ext = pool.get_extension_by_name("google.api.http").unwrap();
    let mut out = BTreeMap::new();
    for svc in pool.services() {
        for m in svc.methods() {
            let opt = m.options();
            let rule = opt.get_extension(&ext);
            let PValue::Message(rule) = rule.as_ref() else {
                panic!("{} has no google.api.http", m.name());
            };
            let s = |f: &str| {
                rule.get_field_by_name(f)
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            };
            let (verb, path) = ["get", "put", "post", "delete", "patch"]
                .iter()
                .find(|v| !s(v).is_empty())
                .map(|v| (v.to_ascii_uppercase(), s(v)))
                .expect("a standard verb");
            out.insert(
                m.full_name().to_owned(),
                (verb, path, s("body"), s("response_body")),
            );
        }
    }
    out
}

/// `/orders/{order_id}` -> `/orders/{id}` (linkrank's templated route).
fn templated(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "{id}" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn the_demo_kit_has_a_file_per_recommendation_linked_from_the_reports() {
    let dir = demo();
    let links = links_json(dir);
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let readme = std::fs::read_to_string(dir.join("kit/README.md")).unwrap();
    let mut grpc_servers = Vec::new();
    for l in links["links"].as_array().unwrap() {
        let (c, s) = (l["client"].as_str().unwrap(), l["server"].as_str().unwrap());
        let file = match l["recommendation"]["target"].as_str().unwrap() {
            "grpc" => {
                grpc_servers.push(s.to_owned());
                format!("proto/{s}.proto")
            }
            "broker" => "asyncapi.yaml".to_owned(),
            "mesh" => format!("mesh/{c}-{s}.yaml"),
            _ => continue,
        };
        assert!(
            dir.join("kit").join(&file).exists(),
            "{c} -> {s}: no {file}"
        );
        assert!(
            md.contains(&format!("(kit/{file})")),
            "report.md does not link {file}"
        );
        assert!(
            html.contains(&format!("href=\"kit/{file}\"")),
            "report.html does not link {file}"
        );
        assert!(
            readme.contains(&format!("({file})")),
            "kit/README.md does not list {file}"
        );
    }
    grpc_servers.sort();
    grpc_servers.dedup();
    assert_eq!(grpc_servers, ["inventory", "orders", "users"]);
    assert!(md.contains("(kit/README.md)") && html.contains("href=\"kit/README.md\""));
}

#[test]
fn no_kit_when_every_link_keeps_http() {
    let dir = run("demo-default", "captures/prod.pcap", &[]);
    assert!(!dir.join("kit").exists());
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(!md.contains("kit/"));
}

#[test]
fn every_demo_proto_compiles_and_binds_every_observed_route() {
    let dir = demo();
    let links = links_json(dir);
    for l in links["links"].as_array().unwrap() {
        if l["recommendation"]["target"] != "grpc" {
            continue;
        }
        let server = l["server"].as_str().unwrap();
        let pool = protoc(&dir.join("kit/proto"), &format!("{server}.proto"));
        let bound: Vec<(String, String)> = bindings(&pool)
            .into_values()
            .map(|(v, p, _, _)| (v, templated(&p)))
            .collect();
        for r in l["routes"].as_array().unwrap() {
            let want = (
                r["method"].as_str().unwrap().to_owned(),
                r["route"].as_str().unwrap().to_owned(),
            );
            assert!(bound.contains(&want), "{server}: no rpc binds {want:?}");
        }
    }
}

#[test]
fn the_protos_pass_buf_lint_with_the_rules_relaxed_in_buf_yaml() {
    let buf = repo("tests/kit/node_modules/.bin/buf");
    need(&buf);
    for dir in [demo(), twin()] {
        let out = Command::new(&buf)
            .arg("lint")
            .current_dir(dir.join("kit/proto"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "buf lint {}: {}{}",
            dir.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let proto = demo().join("kit/proto");
    // The relaxed rules are listed, each with its reason.
    let cfg = std::fs::read_to_string(proto.join("buf.yaml")).unwrap();
    for rule in [
        "PACKAGE_DIRECTORY_MATCH",
        "DIRECTORY_SAME_PACKAGE",
        "ENUM_VALUE_UPPER_SNAKE_CASE",
        "ENUM_VALUE_PREFIX",
    ] {
        assert_eq!(cfg.matches(rule).count(), 2, "{rule}: listed and explained");
    }
}

/// JSON -> message -> wire -> message -> JSON, compared with the original: nulls and
/// default values may vanish, 64-bit integers come back as strings, numbers compare by
/// value; anything else is a failure.
fn round_trips(desc: &MessageDescriptor, body: &Value, wrap: &str) -> Result<(), String> {
    let input = if wrap.is_empty() {
        body.clone()
    } else {
        serde_json::json!({ wrap: body })
    };
    let msg = DynamicMessage::deserialize_with_options(
        desc.clone(),
        &input,
        &DeserializeOptions::new().deny_unknown_fields(true),
    )
    .map_err(|e| e.to_string())?;
    let back = DynamicMessage::decode(desc.clone(), msg.encode_to_vec().as_slice()).unwrap();
    let mut out = back
        .serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new())
        .unwrap();
    if !wrap.is_empty() {
        out = out.get(wrap).cloned().unwrap_or(Value::Null);
    }
    (canonical(body) == canonical_like(&out, body))
        .then_some(())
        .ok_or_else(|| format!("differs: {body} vs {out}"))
}

/// Nulls and defaults dropped, numbers as f64.
fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), canonical(x)))
                .filter(|(_, x)| !is_default(x))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        Value::Number(n) => serde_json::json!(n.as_f64().unwrap()),
        x => x.clone(),
    }
}

/// [`canonical`] of `out`, reading back as numbers the strings that stand where `like`
/// has a number (the JSON mapping's 64-bit integers).
fn canonical_like(out: &Value, like: &Value) -> Value {
    match (out, like) {
        (Value::Object(o), Value::Object(l)) => Value::Object(
            o.iter()
                .map(|(k, x)| {
                    (
                        k.clone(),
                        canonical_like(x, l.get(k).unwrap_or(&Value::Null)),
                    )
                })
                .filter(|(_, x)| !is_default(x))
                .collect(),
        ),
        (Value::Array(a), Value::Array(l)) => Value::Array(
            a.iter()
                .enumerate()
                .map(|(i, x)| canonical_like(x, l.get(i).unwrap_or(&Value::Null)))
                .collect(),
        ),
        (Value::String(s), Value::Number(_)) => {
            serde_json::json!(s.parse::<f64>().unwrap_or(f64::NAN))
        }
        (x, _) => canonical(x),
    }
}

/// Every JSON body tshark shows to or from `server_ip`: (method, path, direction, body).
fn wire_bodies(
    pcap: &str,
    server_ip: &str,
    port: u16,
) -> Vec<(String, String, &'static str, Value)> {
    let text = tshark(&[
        "-r",
        repo(pcap).to_str().unwrap(),
        "-d",
        &format!("tcp.port=={port},http"),
        "-Y",
        &format!("http and ip.addr=={server_ip} and tcp.port=={port} and http.file_data"),
        "-T",
        "fields",
        "-E",
        "separator=\t",
        "-e",
        "ip.src",
        "-e",
        "http.request.method",
        "-e",
        "http.request.uri",
        "-e",
        "http.response_for.uri",
        "-e",
        "http.request_in",
        "-e",
        "http.file_data",
    ]);
    // Response -> its request's method, by frame number.
    let mut methods: BTreeMap<String, String> = BTreeMap::new();
    let frames = tshark(&[
        "-r",
        repo(pcap).to_str().unwrap(),
        "-d",
        &format!("tcp.port=={port},http"),
        "-Y",
        &format!("http.request and ip.dst=={server_ip}"),
        "-T",
        "fields",
        "-e",
        "frame.number",
        "-e",
        "http.request.method",
    ]);
    for l in frames.lines() {
        if let Some((f, m)) = l.split_once('\t') {
            methods.insert(f.to_owned(), m.to_owned());
        }
    }
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.splitn(6, '\t').collect();
        let [src, method, uri, resp_for, req_in, body] = f[..] else {
            continue;
        };
        let Ok(doc) = serde_json::from_str::<Value>(body) else {
            continue;
        };
        let (method, path, dir) = if src == server_ip {
            let path = resp_for
                .split_once("//")
                .map_or(resp_for, |(_, r)| r.find('/').map_or("/", |i| &r[i..]));
            (
                methods.get(req_in).cloned().unwrap_or_default(),
                path,
                "response",
            )
        } else {
            (method.to_owned(), uri, "request")
        };
        let path = path.split('?').next().unwrap_or("").to_owned();
        out.push((method, path, dir, doc));
    }
    out
}

/// A path against a binding's template (`/orders/{order_id}` matches `/orders/1123`).
fn matches_template(path: &str, template: &str) -> bool {
    let (a, b): (Vec<&str>, Vec<&str>) = (path.split('/').collect(), template.split('/').collect());
    a.len() == b.len() && a.iter().zip(&b).all(|(x, t)| t.starts_with('{') || x == t)
}

/// (verb, route, direction) -> (bodies, round-tripped, why the others failed).
type Tally = BTreeMap<(String, String, &'static str), (usize, usize, Vec<String>)>;

/// Round-trips every body on the wire of `server`'s routes through protoc's descriptors
/// of the generated file; (route, direction) -> (bodies, passed).
fn wire_round_trips(kit: &Path, file: &str, pcap: &str, ip: &str, port: u16) -> Tally {
    let pool = protoc(&kit.join("proto"), file);
    let binds = bindings(&pool);
    let mut tally = Tally::new();
    for (method, path, dir, body) in wire_bodies(pcap, ip, port) {
        let Some((rpc, (verb, template, req_body, resp_body))) = binds
            .iter()
            .find(|(_, (v, t, _, _))| *v == method && matches_template(&path, t))
        else {
            continue;
        };
        let m = pool
            .services()
            .flat_map(|s| s.methods().collect::<Vec<_>>())
            .find(|m| m.full_name() == rpc)
            .unwrap();
        let (desc, wrap) = if dir == "request" {
            (
                m.input(),
                if req_body == "*" {
                    ""
                } else {
                    req_body.as_str()
                },
            )
        } else {
            (m.output(), resp_body.as_str())
        };
        let e = tally
            .entry((verb.clone(), templated(template), dir))
            .or_default();
        e.0 += 1;
        match round_trips(&desc, &body, wrap) {
            Ok(()) => e.1 += 1,
            Err(why) => e.2.push(why),
        }
    }
    tally
}

#[test]
fn every_orders_body_on_the_demo_wire_round_trips_through_protocs_descriptors() {
    let tally = wire_round_trips(
        &demo().join("kit"),
        "orders.proto",
        "captures/prod.pcap",
        ORDERS_IP,
        8080,
    );
    // The figures the kit README gives for its samples are of the same routes.
    let readme = std::fs::read_to_string(demo().join("kit/README.md")).unwrap();
    for ((verb, route, dir), (n, ok, fails)) in &tally {
        eprintln!("orders {verb} {route} {dir}: {ok} of {n} bodies round-trip");
        assert!(*n > 0);
        assert_eq!(ok, n, "{verb} {route} {dir}: {:?}", fails.first());
        assert!(readme.contains(&format!("`{verb} {route}` | {dir} | 32 | 32 |")));
    }
    // Every JSON route of orders on the wire was bound: 4 responses, 1 request.
    assert_eq!(tally.len(), 5, "{:?}", tally.keys().collect::<Vec<_>>());
}

#[test]
fn the_asyncapi_document_passes_the_official_parser() {
    need(Path::new("node"));
    need(&repo("tests/kit/node_modules/@asyncapi/parser"));
    let doc = demo().join("kit/asyncapi.yaml");
    let out = Command::new("node")
        .arg(repo("tests/kit/validate_asyncapi.mjs"))
        .arg(&doc)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("valid: AsyncAPI 3.0.0, 1 channel(s), 2 operation(s)"),
        "{text}"
    );
    // The broker of the recommendation, its binding, and the outbox/idempotency headers.
    let y: serde_json::Value =
        serde_norway::from_str(&std::fs::read_to_string(&doc).unwrap()).unwrap();
    let links = links_json(demo());
    let broker = links["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["recommendation"]["target"] == "broker")
        .unwrap();
    let kind = broker["recommendation"]["broker"]["kind"].as_str().unwrap();
    assert_eq!(y["servers"][kind]["protocol"], kind);
    let msg = &y["components"]["messages"]["CreateNotification"];
    assert_eq!(
        msg["headers"]["required"],
        serde_json::json!(["idempotency-key", "outbox-id"])
    );
    let consume = &y["operations"]["consumeCreateNotification"];
    assert_eq!(consume["action"], "receive");
    assert!(consume["bindings"][kind].is_object());
    // The payload's properties are the keys of the route's request bodies on the wire.
    let wire = wire_bodies("captures/prod.pcap", "10.77.0.15", 8080);
    let mut keys: Vec<String> = wire
        .iter()
        .filter(|(_, _, d, _)| *d == "request")
        .flat_map(|(_, _, _, b)| b.as_object().unwrap().keys().cloned().collect::<Vec<_>>())
        .collect();
    keys.sort();
    keys.dedup();
    let mut props: Vec<String> = msg["payload"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    props.sort();
    assert!(!keys.is_empty());
    assert_eq!(props, keys);
}

/// `word` in `text` as a whole word: not inside a longer identifier (the status value
/// `captured` is not the field name `captured_at`).
fn contains_word(text: &str, word: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

/// Every string value of the demo's bodies that a kit file holds is a JSON key or an
/// enum symbol the kit declares (docs/kit.md, "Privacy").
#[test]
fn no_body_value_reaches_the_kit_except_declared_enum_symbols() {
    let dir = demo().join("kit");
    let mut texts = String::new();
    for e in walk(&dir) {
        if e.extension()
            .is_some_and(|x| x == "proto" || x == "yaml" || x == "md")
            && !e.to_string_lossy().contains("google")
        {
            texts.push_str(&std::fs::read_to_string(&e).unwrap());
        }
    }
    let mut keys = Vec::new();
    let mut values = Vec::new();
    for ip in ["10.77.0.11", "10.77.0.12", "10.77.0.14", "10.77.0.15"] {
        for (_, _, _, b) in wire_bodies("captures/prod.pcap", ip, 8080) {
            collect(&b, &mut keys, &mut values);
        }
    }
    let mut seen = 0;
    for v in values.iter().filter(|v| v.len() >= 3 && !keys.contains(v)) {
        let declared = texts.contains(&format!("  {v} = ")) || texts.contains(&format!("- {v}\n"));
        if contains_word(&texts, v) {
            seen += 1;
            assert!(
                declared,
                "body value {v:?} is in the kit without being an enum symbol"
            );
            assert!(
                v.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                    || v.chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
                "{v:?}: only constant-like symbols are written"
            );
        }
    }
    // The demo's enum-like fields (order status, tier, currency) are sampled from busier
    // routes than their 32 samples: they stay strings, with the reason in a comment, and
    // none of their symbols is written.
    assert_eq!(seen, 0, "no symbol of a partly sampled route is written");
    assert!(
        texts.contains("enum-like") && texts.contains("not every body of the route"),
        "the enum-like fields say why they stay strings"
    );
}

fn collect(v: &Value, keys: &mut Vec<String>, values: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                keys.push(k.clone());
                collect(x, keys, values);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect(x, keys, values)),
        Value::String(s) => values.push(s.clone()),
        _ => {}
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A message's fields by JSON name: (number, type, label).
fn fields(m: &MessageDescriptor) -> BTreeMap<String, (u32, String, bool)> {
    m.fields()
        .map(|f| {
            let ty = match f.kind() {
                Kind::Message(x) => format!("message {}", x.name()),
                Kind::Enum(_) => "enum".to_owned(),
                k => format!("{k:?}").to_ascii_lowercase(),
            };
            (f.name().to_owned(), (f.number(), ty, f.is_list()))
        })
        .collect()
}

/// Same wire meaning for the comparison: int32 and int64 (and their zigzag twins) are
/// one varint family, an enum is a string on the JSON side.
fn family(ty: &str) -> String {
    match ty {
        "int32" | "int64" => "varint".into(),
        "sint32" | "sint64" => "zigzag".into(),
        "enum" => "string".into(),
        t if t.starts_with("message") => "message".into(),
        t => t.into(),
    }
}

/// The .proto generated from the JSON side of grpc_vs_json.pcap against the .proto the
/// gRPC side was written from (fixtures/grpc/orders.proto), message by message.
#[test]
fn the_twin_fixtures_proto_matches_the_real_one_field_by_field() {
    let kit = twin().join("kit");
    let generated = protoc(&kit.join("proto"), "svc_10_80_0_11_8080.proto");
    let real = protoc(&repo("fixtures/grpc"), "orders.proto");
    let g = |n: &str| {
        generated
            .get_message_by_name(&format!("svc_10_80_0_11_8080.v1.{n}"))
            .unwrap()
    };
    let r = |n: &str| real.get_message_by_name(&format!("orders.{n}")).unwrap();
    let pairs = [
        (r("Order"), g("GetOrderResponse")),
        (r("Order"), g("CreateOrderResponse")),
        (r("Customer"), g("GetOrderResponse.Customer")),
        (r("LineItem"), g("GetOrderResponse.Item")),
        (r("Address"), g("GetOrderResponse.ShippingAddress")),
        (r("NewOrder"), g("CreateOrderRequest")),
        (r("NewOrderItem"), g("CreateOrderRequest.Item")),
        (r("Address"), g("CreateOrderRequest.ShippingAddress")),
        (r("OrderList"), g("ListOrdersResponse")),
        (r("OrderSummary"), g("ListOrdersResponse.Element")),
        (r("GetOrderRequest"), g("GetOrderRequest")),
        (r("ListOrdersRequest"), g("ListOrdersRequest")),
    ];
    let (mut same, mut narrower, mut enums, mut other) = (0, 0, 0, Vec::new());
    for (real_m, gen_m) in &pairs {
        let (rf, gf) = (fields(real_m), fields(gen_m));
        assert_eq!(
            rf.keys().collect::<Vec<_>>(),
            gf.keys().collect::<Vec<_>>(),
            "{} vs {}: the same fields",
            real_m.name(),
            gen_m.name()
        );
        for (name, (rn, rt, rl)) in &rf {
            let (gn, gt, gl) = &gf[name];
            assert_eq!(
                (rn, rl),
                (gn, gl),
                "{}.{name}: number and label",
                real_m.name()
            );
            if family(rt) != family(gt) {
                other.push(format!("{}.{name}: {rt} vs {gt}", real_m.name()));
            } else if rt == gt || (rt.starts_with("message") && gt.starts_with("message")) {
                same += 1;
            } else if gt == "enum" {
                enums += 1;
            } else {
                assert!(
                    gt.ends_with("int32"),
                    "{}.{name}: {rt} vs {gt}",
                    real_m.name()
                );
                narrower += 1;
            }
        }
    }
    eprintln!("twin: {same} fields identical, {narrower} narrowed to 32 bits, {enums} enums");
    // The differences docs/kit.md lists: the path and query parameters are strings (the
    // URL's type; the real service chose int64), nothing else.
    assert_eq!(
        other,
        [
            "GetOrderRequest.order_id: int64 vs string",
            "ListOrdersRequest.customer_id: int64 vs string"
        ]
    );
    // No enums: 32 of the route's 200 bodies are sampled, and an enum is written only from
    // a sample of every body, so the five enum-like fields are strings, as in the real file.
    assert_eq!((same, narrower, enums), (59, 16, 0));
    // What the generated file has beyond the real one: presence where keys were absent.
    let optional = g("GetOrderResponse")
        .fields()
        .filter(|f| f.supports_presence() && !matches!(f.kind(), Kind::Message(_)))
        .map(|f| f.name().to_owned())
        .collect::<Vec<_>>();
    assert_eq!(optional, ["notes", "coupon_code"]);
}

#[test]
fn every_twin_body_on_the_wire_round_trips() {
    let tally = wire_round_trips(
        &twin().join("kit"),
        "svc_10_80_0_11_8080.proto",
        "fixtures/grpc_vs_json.pcap",
        "10.80.0.11",
        8080,
    );
    let n: usize = tally.values().map(|t| t.0).sum();
    for ((verb, route, dir), (n, ok, fails)) in &tally {
        eprintln!("twin {verb} {route} {dir}: {ok} of {n} bodies round-trip");
        assert_eq!(ok, n, "{verb} {route} {dir}: {:?}", fails.first());
    }
    // 50 GET responses, 50 POST requests and responses, 50 list responses.
    assert_eq!(n, 200);
}

/// The mesh policy of the demo's one link with transient failures (orders -> payments:
/// the advice keeps it, as the caller already retries, so the policy is asked for
/// directly), every value checked against that link's figures in links.json.
#[test]
fn the_mesh_policy_takes_every_value_from_links_json() {
    let out = repo("target/kit-tests/mesh");
    let _ = std::fs::remove_dir_all(&out);
    let mut config = linkrank::app::AnalyzeConfig::for_inputs(vec![repo("captures/prod.pcap")]);
    config.out = out.clone();
    config.quiet = true;
    let outcome = linkrank::app::analyze(&config).unwrap_or_else(|e| panic!("{e:#}"));
    let link = &outcome
        .ranked
        .iter()
        .find(|r| r.link.client == "orders" && r.link.server == "payments")
        .unwrap()
        .link;
    let retries = 2;
    let text = linkrank::report::kit::mesh::policy(link, retries);
    let docs: Vec<Value> = serde_norway::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    assert_eq!(docs.len(), 3);
    let (vs, dr, sp) = (&docs[0], &docs[1], &docs[2]);
    assert_eq!(
        (
            vs["kind"].as_str(),
            dr["kind"].as_str(),
            sp["kind"].as_str()
        ),
        (
            Some("VirtualService"),
            Some("DestinationRule"),
            Some("ServiceProfile")
        )
    );
    let j = links_json(&out);
    let l = j["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["client"] == "orders" && l["server"] == "payments")
        .unwrap();
    let routes = l["routes"].as_array().unwrap();
    let http = vs["spec"]["http"].as_array().unwrap();
    let profile = sp["spec"]["routes"].as_array().unwrap();
    assert_eq!(http.len(), routes.len());
    assert_eq!(profile.len(), routes.len());
    let mut retried = 0;
    for (r, (h, p)) in routes.iter().zip(http.iter().zip(profile)) {
        let method = r["method"].as_str().unwrap();
        let p99 = r["latency_ms"]["p99"].as_f64().unwrap();
        let per_try = format!("{}ms", p99.ceil() as u64);
        let requests = r["requests"].as_u64().unwrap();
        let keyed = r["retries"]["idempotency_keyed"].as_u64().unwrap();
        let safe = matches!(method, "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE")
            || keyed as f64 >= 0.9 * requests as f64;
        assert_eq!(h["match"][0]["method"]["exact"], method);
        let attempts = h["retries"]["attempts"].as_u64().unwrap();
        assert_eq!(attempts, if safe { retries as u64 } else { 0 }, "{method}");
        if safe {
            retried += 1;
            assert_eq!(h["retries"]["perTryTimeout"], per_try.as_str());
            let on = h["retries"]["retryOn"].as_str().unwrap();
            assert_eq!(on.contains("5xx"), r["status"]["5xx"].as_u64().unwrap() > 0);
            assert_eq!(on.contains("429"), r["status"]["429"].as_u64().unwrap() > 0);
            let none = ["5xx", "429", "no_response"]
                .iter()
                .all(|k| r["status"][k].as_u64() == Some(0));
            assert_eq!(on == "connect-failure,refused-stream", none);
        }
        let total = format!("{}ms", p99.ceil() as u64 * (attempts + 1));
        assert_eq!(h["timeout"], total.as_str());
        assert_eq!(p["isRetryable"].as_bool(), Some(safe));
        assert_eq!(p["timeout"], per_try.as_str());
        assert_eq!(p["condition"]["method"], method);
    }
    // Both of its routes: POST /charges (idempotency-keyed on every request) and GET.
    assert_eq!(retried, 2);
    let failed = ["5xx", "429", "no_response"]
        .iter()
        .map(|k| l["status"][k].as_u64().unwrap())
        .sum::<u64>();
    let share = failed as f64 / l["requests"].as_f64().unwrap();
    let od = &dr["spec"]["trafficPolicy"]["outlierDetection"];
    let k = od["consecutive5xxErrors"].as_u64().unwrap();
    assert!(share.powi(k as i32) <= 0.001 && (k == 2 || share.powi(k as i32 - 1) > 0.001));
    let rate = l["requests_per_s"]["mean"].as_f64().unwrap();
    let interval = ((k as f64 / rate).ceil() as u64).clamp(1, 60);
    assert_eq!(od["interval"], format!("{interval}s").as_str());
    // Each value's source figure is in a comment beside it.
    assert!(text.contains(&format!("{failed} of {} requests failed", l["requests"])));
}

/// A non-idempotent route without idempotency keys gets no retry: the demo's
/// orders -> notifications link (POST /notifications, no key) as a mesh link.
#[test]
fn a_mesh_never_retries_a_non_idempotent_route() {
    let out = repo("target/kit-tests/mesh-post");
    let _ = std::fs::remove_dir_all(&out);
    let mut config = linkrank::app::AnalyzeConfig::for_inputs(vec![repo("captures/prod.pcap")]);
    config.out = out;
    config.quiet = true;
    let outcome = linkrank::app::analyze(&config).unwrap_or_else(|e| panic!("{e:#}"));
    let link = &outcome
        .ranked
        .iter()
        .find(|r| r.link.server == "notifications")
        .unwrap()
        .link;
    assert_eq!(link.routes[0].method.as_deref(), Some("POST"));
    assert_eq!(link.routes[0].http.retries.idempotency_keyed, 0);
    let text = linkrank::report::kit::mesh::policy(link, 2);
    let vs: Value = serde_norway::from_str(text.split("---").next().unwrap()).unwrap();
    assert_eq!(vs["spec"]["http"][0]["retries"]["attempts"], 0);
    assert!(text.contains("isRetryable: false"));
}

/// The three brokers' bindings through the official parser: the demo's broker link
/// (NATS by the advice) given Kafka and RabbitMQ instead.
#[test]
fn the_asyncapi_bindings_of_every_broker_pass_the_parser() {
    use linkrank::analysis::recommend::{BrokerChoice, BrokerKind, Target};
    need(Path::new("node"));
    need(&repo("tests/kit/node_modules/@asyncapi/parser"));
    let out = repo("target/kit-tests/brokers");
    let _ = std::fs::remove_dir_all(&out);
    let mut config = linkrank::app::AnalyzeConfig::for_inputs(vec![repo("captures/prod.pcap")]);
    config.out = out.clone();
    config.quiet = true;
    config.cost.floor_cores = 0.0;
    config.cost.floor_mbit_per_s = 0.0;
    config.cost.floor_ms_per_request = 0.0;
    let outcome = linkrank::app::analyze(&config).unwrap_or_else(|e| panic!("{e:#}"));
    for (kind, binding) in [
        (BrokerKind::Nats, "nats"),
        (BrokerKind::Kafka, "kafka"),
        (BrokerKind::Rabbitmq, "amqp"),
    ] {
        let mut ranked = outcome.ranked.clone();
        let b = ranked
            .iter_mut()
            .find(|r| r.assessment.recommendation.target == Target::Broker)
            .unwrap();
        b.assessment.recommendation.broker = Some(BrokerChoice {
            kind,
            reason: String::new(),
        });
        let input = linkrank::report::kit::KitInput {
            links: &ranked,
            plan: None,
            naming: &outcome.naming,
            samples: &[],
            infer_enums: true,
            all_http: false,
            mesh_retries: 2,
            source: "prod.pcap".to_owned(),
            query_names: Default::default(),
        };
        let doc = linkrank::report::kit::asyncapi::document(&input).unwrap();
        let path = out.join(format!("asyncapi-{binding}.yaml"));
        std::fs::write(&path, &doc).unwrap();
        let res = Command::new("node")
            .arg(repo("tests/kit/validate_asyncapi.mjs"))
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&res.stdout);
        assert!(res.status.success(), "{binding}: {text}");
        let y: Value = serde_norway::from_str(&doc).unwrap();
        let op = &y["operations"]["consumeCreateNotification"];
        assert!(op["bindings"][binding].is_object(), "{binding}: {doc}");
        // Without samples, the payload says why there is no schema.
        let payload = &y["components"]["messages"]["CreateNotification"]["payload"];
        assert!(payload["description"]
            .as_str()
            .unwrap()
            .starts_with("No schema inferred: 0 JSON sample(s)"));
    }
}
