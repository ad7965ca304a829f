//! `kit/proto/<service>.proto`: one proto3 service per callee, one rpc per observed route,
//! its request and response messages from the schema inferred from the sampled JSON
//! (`crate::ingest::serialization::schema`, the one the protobuf sizes were measured with,
//! so field numbers are the same), named from the JSON keys, with `google.api.http`
//! bindings back to the observed verb and path.
//!
//! Type rules over the inferred schema (docs/kit.md):
//! - integers: `int32` (`sint32` when negative) when every sample fits in 32 bits, else
//!   `int64` (`sint64`); beyond 2^53 the field's comment says JSON clients must read it
//!   as the string the proto3 JSON mapping writes;
//! - values of different JSON types under one key: `google.protobuf.Value`, commented;
//! - `optional` for a scalar absent (or null) in some of the objects at its place;
//! - an enum only when every one of its symbols was seen at least twice
//!   ([`ENUM_MIN_OCCURRENCES`]) and each is a protobuf identifier; its value names are the
//!   symbols themselves, so that the JSON mapping reads and writes the old bodies;
//! - field names are `lower_snake_case` of the keys, with `json_name` set to the key
//!   wherever protobuf's default JSON name would differ, so that a transcoder writes the
//!   keys the old clients read.
//!
//! Only names, types and counts are written: no value of a body, header or query string.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::names::{default_json_name, pascal, singular, snake, upper_snake};
use super::shape::{self, FieldEvidence, MessageEvidence};
use crate::ingest::serialization::json::Json;
use crate::ingest::serialization::schema::{Schema, Ty};

/// Fewer JSON samples than this: no schema is inferred (a stub message says why).
pub const MIN_SAMPLES: usize = 3;

/// An enum symbol seen fewer times than this may be one record's own value (a name, a
/// code): the field stays a `string` and no symbol is written.
pub const ENUM_MIN_OCCURRENCES: usize = 2;

/// Keys whose values are about a person or a place: never an enum, whatever the samples
/// (a customer's city seen twice is still the customer's city).
const PERSONAL_KEYS: &[&str] = &[
    "name", "email", "mail", "phone", "mobile", "city", "street", "address", "postcode", "postal",
    "zip", "country", "region", "state", "user", "username", "login", "first", "last", "surname",
    "birth", "ip", "iban", "card", "token", "secret", "password",
];

/// Why the symbols of an enum-like field must not be written, if they must not.
pub(crate) fn enum_refusal(
    key: &str,
    fe: &FieldEvidence,
    symbols: &[&String],
) -> Option<&'static str> {
    let words = super::names::words(key);
    if words.iter().any(|w| PERSONAL_KEYS.contains(&w.as_str())) {
        return Some("its key names personal or location data, whose values are never written");
    }
    if fe.symbols.values().any(|n| *n < ENUM_MIN_OCCURRENCES) {
        return Some("a symbol was seen only once, and a value seen once may be one record's own");
    }
    let constant = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            || s.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    };
    if !symbols.iter().all(|s| is_proto_ident(s) && constant(s)) {
        return Some(
            "a symbol is not a lower_snake or UPPER_SNAKE constant (a proper noun, a code \
             with punctuation): it may be data rather than a status",
        );
    }
    None
}

/// What was seen of one direction (request or response bodies) of one route.
#[derive(Clone, Debug, Default)]
pub struct BodySamples<'a> {
    /// Parsed JSON samples, from every client of the route.
    pub docs: Vec<&'a Json>,
    /// JSON bodies seen, kept or not.
    pub json_bodies: u64,
    /// Kept bodies labelled JSON that did not parse.
    pub not_json: u64,
    /// Bodies of another kind (form, XML, text...), or empty ones.
    pub other_bodies: u64,
}

impl BodySamples<'_> {
    /// Every JSON body of the route is among the samples. Only then may an enum (or an
    /// AsyncAPI `enum` list) be written: a symbol a partial sample missed (a rare status)
    /// would not parse through the JSON mapping, and real traffic would be refused.
    pub fn is_complete(&self) -> bool {
        self.docs.len() as u64 >= self.json_bodies
    }
}

/// How the JSON body maps onto a message (what `google.api.http`'s `body` /
/// `response_body` says, and what the round trip wraps the samples in).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyMapping {
    /// No schema: a stub (or no body at all).
    None,
    /// The JSON object is the message.
    Message,
    /// The JSON document (an array or a scalar) is the message's field `values`.
    Field(String),
}

/// One generated message: its text (at top level of the file) and how the samples map.
#[derive(Clone, Debug)]
pub struct GeneratedMessage {
    pub name: String,
    pub text: String,
    pub mapping: BodyMapping,
    /// Uses `google.protobuf.Value`.
    pub uses_struct: bool,
    /// Why no schema was inferred (`None` when one was).
    pub stub_reason: Option<String>,
}

/// Generates `name` from the samples of one direction of a route. `extra` fields (the
/// request's path parameters) follow the body's fields; `what` says which bodies these
/// are (`GET /orders/{id} responses`) in the evidence comment.
pub fn body_message(
    name: &str,
    what: &str,
    body: &BodySamples<'_>,
    extra: &[(String, String)],
    infer_enums: bool,
) -> GeneratedMessage {
    let stub = |reason: String| {
        let mut text = String::new();
        let _ = writeln!(text, "// {what}: no schema inferred. {reason}");
        let _ = writeln!(text, "message {name} {{");
        for (i, (field, comment)) in extra.iter().enumerate() {
            let _ = writeln!(text, "  // {comment}");
            let _ = writeln!(text, "  string {field} = {};", i + 1);
        }
        let _ = writeln!(text, "}}");
        GeneratedMessage {
            name: name.to_owned(),
            text,
            mapping: BodyMapping::None,
            uses_struct: false,
            stub_reason: Some(reason),
        }
    };
    if body.docs.is_empty() {
        let reason = if body.not_json > 0 || body.other_bodies > 0 {
            format!(
                "Its bodies were not JSON ({} labelled JSON that did not parse, {} of other \
                 kinds or empty): nothing to infer from.",
                body.not_json, body.other_bodies
            )
        } else if body.json_bodies > 0 {
            format!(
                "{} JSON bodies were seen but none was kept whole (cut by capture loss, or \
                 over the sampler's size bound).",
                body.json_bodies
            )
        } else {
            "No body was seen on the wire.".to_owned()
        };
        return stub(reason);
    }
    if body.docs.len() < MIN_SAMPLES {
        return stub(format!(
            "Only {} JSON sample(s) were kept (at least {MIN_SAMPLES} are needed to infer a \
             schema).",
            body.docs.len()
        ));
    }
    let owned: Vec<Json> = body.docs.iter().map(|d| (*d).clone()).collect();
    let schema = Schema::infer_with(&owned, infer_enums);
    let ev = shape::evidence(&schema, &body.docs);
    let mut g = Gen {
        schema: &schema,
        ev: &ev,
        uses_struct: false,
        sample_complete: body.is_complete(),
    };
    let header = format!(
        "{what}: inferred from {} sampled JSON documents (of {} JSON bodies seen){}.",
        body.docs.len(),
        body.json_bodies,
        if body.other_bodies + body.not_json > 0 {
            format!(
                "; {} other bodies not used",
                body.other_bodies + body.not_json
            )
        } else {
            String::new()
        }
    );
    let mut text = String::new();
    g.message(&mut text, 0, name, 0, &header, extra);
    GeneratedMessage {
        name: name.to_owned(),
        text,
        mapping: if schema.wrapped {
            BodyMapping::Field("values".to_owned())
        } else {
            BodyMapping::Message
        },
        uses_struct: g.uses_struct,
        stub_reason: None,
    }
}

struct Gen<'s> {
    schema: &'s Schema,
    ev: &'s [MessageEvidence],
    uses_struct: bool,
    /// [`BodySamples::is_complete`]: a field whose sample is partial stays a string.
    sample_complete: bool,
}

/// Names already taken in one message's scope (fields, nested types, enum values).
#[derive(Default)]
struct Scope(BTreeSet<String>);

impl Scope {
    /// `want`, or `want_2`, `want_3`... (fields and enum values).
    fn take(&mut self, want: &str) -> String {
        self.take_with(want, "_")
    }
    /// `want`, or `want2`, `want3`... (type names stay PascalCase).
    fn take_type(&mut self, want: &str) -> String {
        self.take_with(want, "")
    }
    fn take_with(&mut self, want: &str, sep: &str) -> String {
        let mut name = want.to_owned();
        let mut n = 2;
        while self.0.contains(&name) {
            name = format!("{want}{sep}{n}");
            n += 1;
        }
        self.0.insert(name.clone());
        name
    }
}

fn is_proto_ident(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Gen<'_> {
    #[allow(clippy::too_many_arguments)]
    fn message(
        &mut self,
        out: &mut String,
        i: usize,
        name: &str,
        depth: usize,
        comment: &str,
        extra: &[(String, String)],
    ) {
        let pad = "  ".repeat(depth);
        let Some(m) = self.schema.messages.get(i) else {
            return;
        };
        let ev = self.ev.get(i).cloned().unwrap_or_default();
        let conflicts = m
            .fields
            .iter()
            .filter(|f| matches!(f.ty, Ty::JsonText))
            .count();
        let _ = writeln!(out, "{pad}// {comment}");
        let _ = writeln!(
            out,
            "{pad}// Evidence: {} object(s) here, {} field(s) seen, {} type conflict(s).",
            ev.objects,
            m.fields.len(),
            conflicts
        );
        let _ = writeln!(out, "{pad}message {name} {{");
        // Field names first: an enum value (which shares the message's scope) must not
        // take a field's name.
        let mut scope = Scope::default();
        let fnames: Vec<String> = m
            .fields
            .iter()
            .map(|f| {
                scope.take(&if f.key.is_empty() {
                    "values".to_owned()
                } else {
                    snake(&f.key)
                })
            })
            .collect();
        let mut body = String::new();
        let mut nested = String::new();
        let mut max_number = 0;
        for (f, fname) in m.fields.iter().zip(fnames) {
            max_number = max_number.max(f.number);
            let fe = ev.fields.get(&f.key).cloned().unwrap_or_default();
            let mut notes: Vec<String> = Vec::new();
            let ty = self.field_type(
                &f.ty,
                &f.key,
                &fe,
                &mut scope,
                &mut nested,
                depth + 1,
                &mut notes,
            );
            let is_map = matches!(f.ty, Ty::Map(_));
            let label = if f.repeated && !is_map {
                "repeated "
            } else if !is_map
                && !matches!(f.ty, Ty::Message(_) | Ty::JsonText)
                && fe.present < ev.objects
            {
                "optional "
            } else {
                ""
            };
            if f.key.is_empty() {
                notes.push("the whole JSON document (not an object)".to_owned());
            } else if fe.present < ev.objects {
                notes.push(format!("in {} of {} objects", fe.present, ev.objects));
            }
            if fe.nulls > 0 {
                notes.push(format!("null in {}", fe.nulls));
            }
            if fe.null_elements > 0 {
                notes.push(format!(
                    "{} null array element(s), which a repeated field cannot hold",
                    fe.null_elements
                ));
            }
            let json = (!f.key.is_empty() && default_json_name(&fname) != f.key)
                .then(|| format!(" [json_name = {}]", quote(&f.key)));
            if !notes.is_empty() {
                let _ = writeln!(body, "{pad}  // {}", notes.join("; "));
            }
            let _ = writeln!(
                body,
                "{pad}  {label}{ty} {fname} = {}{};",
                f.number,
                json.unwrap_or_default()
            );
        }
        // Keys the samples never gave a value: declared, so that the old bodies still
        // parse, with the type left open.
        for (key, seen) in &ev.untyped {
            max_number += 1;
            self.uses_struct = true;
            let fname = scope.take(&snake(key));
            let json = (default_json_name(&fname) != *key)
                .then(|| format!(" [json_name = {}]", quote(key)));
            let _ = writeln!(
                body,
                "{pad}  // only null or [] in the samples ({seen} of {} objects): type unknown",
                ev.objects
            );
            let _ = writeln!(
                body,
                "{pad}  google.protobuf.Value {fname} = {max_number}{};",
                json.unwrap_or_default()
            );
        }
        for (k, (field, note)) in extra.iter().enumerate() {
            let fname = scope.take(field);
            let _ = writeln!(body, "{pad}  // {note}");
            let _ = writeln!(
                body,
                "{pad}  string {fname} = {};",
                max_number as usize + k + 1
            );
        }
        out.push_str(&nested);
        out.push_str(&body);
        let _ = writeln!(out, "{pad}}}");
    }

    #[allow(clippy::too_many_arguments)]
    fn field_type(
        &mut self,
        ty: &Ty,
        key: &str,
        fe: &FieldEvidence,
        scope: &mut Scope,
        nested: &mut String,
        depth: usize,
        notes: &mut Vec<String>,
    ) -> String {
        match ty {
            Ty::Int64 | Ty::Sint64 => {
                let signed = if matches!(ty, Ty::Sint64) { "s" } else { "" };
                if fe.beyond_2_53 {
                    notes.push(
                        "integers beyond 2^53 seen: proto3 JSON writes int64 as a string, \
                         which JSON clients must read as such"
                            .to_owned(),
                    );
                    format!("{signed}int64")
                } else if fe.beyond_32 {
                    format!("{signed}int64")
                } else {
                    format!("{signed}int32")
                }
            }
            Ty::Double => "double".to_owned(),
            Ty::Bool => "bool".to_owned(),
            Ty::String => "string".to_owned(),
            Ty::JsonText => {
                self.uses_struct = true;
                let kinds: Vec<String> = fe.kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
                notes.push(format!(
                    "the samples conflict ({}): kept as google.protobuf.Value",
                    kinds.join(", ")
                ));
                "google.protobuf.Value".to_owned()
            }
            Ty::Enum(e) => {
                let symbols: Vec<&String> = self
                    .schema
                    .enums
                    .get(*e)
                    .map_or(Vec::new(), |v| v.iter().collect());
                let clash = symbols.iter().any(|s| scope.0.contains(s.as_str()));
                let why = enum_refusal(key, fe, &symbols)
                    .or(clash.then_some(
                        "a symbol clashes with a name in this message (enum values share its scope)",
                    ))
                    .or((!self.sample_complete).then_some(
                        "the samples are not every body of the route, and a symbol they missed \
                         would not parse as an enum value",
                    ));
                if let Some(why) = why {
                    notes.push(format!(
                        "enum-like ({} distinct identifiers), kept as string: {why}",
                        symbols.len()
                    ));
                    return "string".to_owned();
                }
                let ename = scope.take_type(&pascal(&singular(key)));
                let pad = "  ".repeat(depth);
                let _ = writeln!(
                    nested,
                    "{pad}// Symbols of `{key}`, each seen at least {ENUM_MIN_OCCURRENCES} times; \
                     value names are the JSON symbols so that the JSON mapping reads them."
                );
                let _ = writeln!(nested, "{pad}enum {ename} {{");
                let zero = scope.take(&format!("{}_UNSPECIFIED", upper_snake(&ename)));
                let _ = writeln!(nested, "{pad}  {zero} = 0;");
                for (j, s) in symbols.iter().enumerate() {
                    scope.0.insert((*s).clone());
                    let _ = writeln!(nested, "{pad}  {s} = {};", j + 1);
                }
                let _ = writeln!(nested, "{pad}}}");
                ename
            }
            Ty::Message(j) => {
                // The elements of a top-level array have no key.
                let base = if key.is_empty() {
                    "Element".to_owned()
                } else {
                    pascal(&singular(key))
                };
                let mname = scope.take_type(&base);
                let comment = format!("`{key}`");
                self.message(nested, *j, &mname, depth, &comment, &[]);
                mname
            }
            Ty::Map(inner) => {
                let v = match inner.as_ref() {
                    Ty::Message(j) => {
                        let mname = scope.take_type(&(pascal(&singular(key)) + "Value"));
                        let comment = format!("values of the map `{key}`");
                        self.message(nested, *j, &mname, depth, &comment, &[]);
                        mname
                    }
                    Ty::JsonText => {
                        self.uses_struct = true;
                        "google.protobuf.Value".to_owned()
                    }
                    Ty::Int64 | Ty::Sint64 => "int64".to_owned(),
                    Ty::Double => "double".to_owned(),
                    Ty::Bool => "bool".to_owned(),
                    _ => "string".to_owned(),
                };
                notes.push("an object with dynamic keys: a map".to_owned());
                format!("map<string, {v}>")
            }
        }
    }
}

/// A protobuf string literal.
pub fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_ascii_graphic() || c == ' ' => out.push(c),
            c => {
                let mut b = [0; 4];
                for byte in c.encode_utf8(&mut b).bytes() {
                    let _ = write!(out, "\\{byte:03o}");
                }
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(docs: &[Json], other: u64, not_json: u64) -> BodySamples<'_> {
        BodySamples {
            docs: docs.iter().collect(),
            json_bodies: docs.len() as u64 + not_json,
            not_json,
            other_bodies: other,
        }
    }

    #[test]
    fn bodies_that_are_not_json_or_too_few_get_a_stub_that_says_why() {
        let extra = [("order_id".to_owned(), "path parameter".to_owned())];
        let none = body_message("XRequest", "bodies", &samples(&[], 12, 0), &extra, true);
        assert_eq!(none.mapping, BodyMapping::None);
        assert!(none
            .stub_reason
            .as_deref()
            .unwrap()
            .contains("not JSON (0 labelled JSON that did not parse, 12 of other kinds"));
        // The path parameter is still a field; nothing else is.
        assert!(none.text.contains("string order_id = 1;"));
        assert_eq!(none.text.matches(" = ").count(), 1);
        let broken = body_message("X", "bodies", &samples(&[], 0, 3), &[], true);
        assert!(broken
            .stub_reason
            .unwrap()
            .contains("3 labelled JSON that did not parse"));
        let two = Json::parse_all(&[r#"{"a": 1}"#, r#"{"a": 2}"#]);
        let few = body_message("X", "bodies", &samples(&two, 0, 0), &[], true);
        assert!(few.stub_reason.unwrap().contains("Only 2 JSON sample(s)"));
        assert!(!few.text.contains("int32 a"));
    }

    #[test]
    fn types_presence_conflicts_and_the_enum_privacy_rule() {
        let docs = Json::parse_all(&[
            r#"{"id": 1, "big": 9007199254740993, "st": "paid", "city": "paris", "mix": 1, "who": "Ann"}"#,
            r#"{"id": 2, "big": 1, "st": "paid", "city": "paris", "mix": "x", "who": "Bob"}"#,
            r#"{"id": -3, "big": 2, "st": "new", "city": "rome", "who": "Ann"}"#,
            r#"{"id": 4, "big": 3, "st": "new", "city": "rome", "who": "Bob"}"#,
            r#"{"id": 5, "big": 4, "st": "paid", "city": "paris", "who": "Ann"}"#,
            r#"{"id": 6, "big": 5, "st": "new", "city": "rome", "who": "Bob"}"#,
            r#"{"id": 7, "big": 6, "st": "paid", "city": "paris", "who": "Ann"}"#,
            r#"{"id": 8, "big": 7, "st": "new", "city": "rome", "who": "Bob"}"#,
        ]);
        let m = body_message("R", "bodies", &samples(&docs, 0, 0), &[], true);
        assert!(m.stub_reason.is_none());
        let t = &m.text;
        assert!(t.contains("sint32 id = 1;"), "{t}");
        assert!(
            t.contains("int64 big = 2;") && t.contains("beyond 2^53"),
            "{t}"
        );
        // A status seen 4 times each: an enum; a city: never; proper nouns: never.
        assert!(t.contains("St st = 3;") && t.contains("  paid = 1;"), "{t}");
        assert!(
            t.contains("string city = 4;") && !t.contains("paris"),
            "{t}"
        );
        assert!(t.contains("string who = 5;") && !t.contains("Ann"), "{t}");
        assert!(
            t.contains("google.protobuf.Value mix = 6;") && m.uses_struct,
            "{t}"
        );
        assert!(t.contains("in 2 of 8 objects"), "{t}");
        let off = body_message("R", "bodies", &samples(&docs, 0, 0), &[], false);
        assert!(!off.text.contains("enum "));
    }
}
