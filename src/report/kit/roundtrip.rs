//! The round trip of every sampled body through its generated message: the .proto text
//! is compiled (protox, a protobuf compiler in Rust, with the vendored googleapis
//! annotations), each sample is parsed into its message through protobuf's JSON mapping
//! (prost-reflect), encoded to the wire, decoded, written back as JSON, and compared with
//! the sample modulo the mapping's documented changes:
//! - a member that is `null`, or equal to its type's default (`0`, `false`, `""`, `[]`,
//!   `{}`), may be absent (proto3 writes no default of a field without presence);
//! - 64-bit integers are written as JSON strings;
//! - numbers compare by value (`1.0` and `1` are one number);
//! - member order is free.
//!
//! Anything else (an unknown key, a value that does not fit its field) fails the sample;
//! the first failure's reason names a JSON path and what differed, never a value.

use prost::Message as _;
use prost_reflect::{DescriptorPool, DeserializeOptions, DynamicMessage, SerializeOptions};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};
use serde_json::Value;

use super::proto::BodyMapping;
use crate::ingest::serialization::json::Json;

pub(crate) const ANNOTATIONS: &str =
    include_str!("../../../third_party/googleapis/google/api/annotations.proto");
pub(crate) const HTTP: &str = include_str!("../../../third_party/googleapis/google/api/http.proto");

/// Resolves the generated file and the vendored googleapis files from memory.
struct Sources {
    name: String,
    text: String,
}

impl FileResolver for Sources {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match name {
            n if n == self.name => File::from_source(n, &self.text),
            "google/api/annotations.proto" => File::from_source(name, ANNOTATIONS),
            "google/api/http.proto" => File::from_source(name, HTTP),
            _ => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// Compiles one generated .proto (`name` as imported, `text` its source).
pub fn compile(name: &str, text: &str) -> Result<DescriptorPool, String> {
    let mut chain = ChainFileResolver::new();
    chain.add(Sources {
        name: name.to_owned(),
        text: text.to_owned(),
    });
    chain.add(GoogleFileResolver::new());
    let mut c = protox::Compiler::with_file_resolver(chain);
    c.include_imports(true);
    c.open_file(name).map_err(|e| e.to_string())?;
    Ok(c.descriptor_pool())
}

/// Round-trips of one route direction: samples tried, samples given back, and why the
/// first failure failed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub samples: usize,
    pub passed: usize,
    pub first_failure: Option<String>,
}

/// Round-trips `docs` through message `full_name` of `pool`.
pub fn round_trip(
    pool: &DescriptorPool,
    full_name: &str,
    mapping: &BodyMapping,
    docs: &[&Json],
) -> Tally {
    let mut t = Tally::default();
    let Some(desc) = pool.get_message_by_name(full_name) else {
        t.first_failure = Some(format!("message {full_name} not in the compiled file"));
        return t;
    };
    for d in docs {
        t.samples += 1;
        let original: Value = match serde_json::from_str(&d.text()) {
            Ok(v) => v,
            Err(e) => {
                t.first_failure
                    .get_or_insert(format!("sample not JSON: {e}"));
                continue;
            }
        };
        let input = match mapping {
            BodyMapping::Field(f) => serde_json::json!({ f.as_str(): original.clone() }),
            _ => original.clone(),
        };
        match one(&desc, &input) {
            Ok(out) => {
                let out = match mapping {
                    BodyMapping::Field(f) => out.get(f.as_str()).cloned().unwrap_or(Value::Null),
                    _ => out,
                };
                match same("$", &original, &out) {
                    Ok(()) => t.passed += 1,
                    Err(why) => {
                        t.first_failure.get_or_insert(why);
                    }
                }
            }
            Err(why) => {
                t.first_failure.get_or_insert(why);
            }
        }
    }
    t
}

/// JSON -> message -> wire -> message -> JSON.
fn one(desc: &prost_reflect::MessageDescriptor, input: &Value) -> Result<Value, String> {
    let msg = DynamicMessage::deserialize_with_options(
        desc.clone(),
        input,
        &DeserializeOptions::new().deny_unknown_fields(true),
    )
    // The parser's message names the field, not the value.
    .map_err(|e| format!("parse: {}", redact(&e.to_string())))?;
    let wire = msg.encode_to_vec();
    let back = DynamicMessage::decode(desc.clone(), wire.as_slice())
        .map_err(|e| format!("decode: {e}"))?;
    back.serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new())
        .map_err(|e| format!("write: {e}"))
}

/// Error texts of the JSON parser may quote the offending value: keep what precedes it.
fn redact(s: &str) -> String {
    s.split(['`', '"']).next().unwrap_or("").trim().to_owned()
}

/// A JSON value proto3 writes as nothing: `null`, `0`, `false`, `""`, `[]`, `{}`.
pub fn is_default(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Equal modulo the documented changes (module docs); Err names the first difference.
fn same(path: &str, a: &Value, b: &Value) -> Result<(), String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                let p = format!("{path}.{k}");
                match y.get(k) {
                    Some(vb) => same(&p, va, vb)?,
                    None if is_default(va) => {}
                    None => return Err(format!("{p}: missing after the round trip")),
                }
            }
            for (k, vb) in y {
                if !x.contains_key(k) && !is_default(vb) {
                    return Err(format!("{path}.{k}: appeared in the round trip"));
                }
            }
            Ok(())
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Err(format!("{path}: {} elements became {}", x.len(), y.len()));
            }
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                same(&format!("{path}[{i}]"), va, vb)?;
            }
            Ok(())
        }
        (Value::Number(x), Value::Number(y)) => num_eq(x, y)
            .then_some(())
            .ok_or_else(|| format!("{path}: number changed")),
        (Value::Number(x), Value::String(s)) => s
            .parse::<serde_json::Number>()
            .ok()
            .filter(|y| num_eq(x, y))
            .map(|_| ())
            .ok_or_else(|| format!("{path}: number changed")),
        (x, y) if x == y => Ok(()),
        (x, y) if is_default(x) && is_default(y) => Ok(()),
        (x, y) => Err(format!("{path}: {} became {}", kind(x), kind(y))),
    }
}

fn num_eq(x: &serde_json::Number, y: &serde_json::Number) -> bool {
    match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
        (Some(a), Some(b), _, _) => a == b,
        (_, _, Some(a), Some(b)) => a == b,
        _ => x.as_f64() == y.as_f64(),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documented_changes_are_allowed_and_others_are_not() {
        assert!(same("$", &json!({"a": 0, "b": null, "c": 5}), &json!({"c": "5"})).is_ok());
        assert!(same("$", &json!({"x": 1.0}), &json!({"x": 1})).is_ok());
        assert!(same("$", &json!({"x": 1}), &json!({"x": 2})).is_err());
        assert!(same("$", &json!({"x": "a"}), &json!({})).is_err());
        assert!(same("$", &json!([1, 2]), &json!([1])).is_err());
        assert!(same("$", &json!({}), &json!({"y": true})).is_err());
    }

    #[test]
    fn a_sample_with_an_unknown_key_fails_its_round_trip() {
        let text = "syntax = \"proto3\";\npackage t.v1;\nmessage M {\n  int32 a = 1;\n  \
                    string b_c = 2 [json_name = \"b_c\"];\n}\n";
        let pool = compile("t.proto", text).unwrap();
        let docs: Vec<Json> = [r#"{"a": 1, "b_c": "x"}"#, r#"{"a": 2, "zz": 1}"#]
            .iter()
            .map(|t| Json::parse(t.as_bytes()).unwrap())
            .collect();
        let refs: Vec<&Json> = docs.iter().collect();
        let t = round_trip(&pool, "t.v1.M", &BodyMapping::Message, &refs);
        assert_eq!((t.samples, t.passed), (2, 1));
        assert!(t.first_failure.unwrap().starts_with("parse"));
    }
}
