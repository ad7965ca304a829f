//! What the samples of one route and direction say beyond the inferred schema
//! (`crate::ingest::serialization::schema`): per message, how many objects were seen and,
//! per field, in how many of them it was present, which JSON kinds its values had, how
//! large its integers got (as ranges of types, never the values) and how often each enum
//! symbol occurred. The kit's types, `optional`, conflict comments and enum privacy rule
//! are read from here.

use std::collections::BTreeMap;

use crate::ingest::serialization::json::Json;
use crate::ingest::serialization::schema::{Schema, Ty};

/// 2^53: above it a JSON number loses integer precision in most JSON parsers.
pub const SAFE_INTEGER: u64 = 1 << 53;

#[derive(Clone, Debug, Default)]
pub struct FieldEvidence {
    /// Objects of the message carrying the key with a non-null value.
    pub present: usize,
    /// Objects carrying the key with `null`.
    pub nulls: usize,
    /// JSON kinds of the values (array elements for a repeated field), with counts.
    pub kinds: BTreeMap<&'static str, usize>,
    /// An integer outside i32 / u32 was seen.
    pub beyond_32: bool,
    /// An integer beyond 2^53 in magnitude was seen.
    pub beyond_2_53: bool,
    pub negative: bool,
    /// Enum fields: occurrences of each symbol.
    pub symbols: BTreeMap<String, usize>,
    /// Null elements inside arrays (proto3 repeated scalars cannot hold them).
    pub null_elements: usize,
}

#[derive(Clone, Debug, Default)]
pub struct MessageEvidence {
    /// JSON objects seen at this place.
    pub objects: usize,
    /// By JSON key.
    pub fields: BTreeMap<String, FieldEvidence>,
    /// Keys the schema has no field for (only ever `null` or `[]` in the samples), in
    /// first-seen order, with the objects carrying them.
    pub untyped: Vec<(String, usize)>,
}

/// Evidence per message of `schema` (indexed like `schema.messages`).
pub fn evidence(schema: &Schema, docs: &[&Json]) -> Vec<MessageEvidence> {
    let mut ev = vec![MessageEvidence::default(); schema.messages.len()];
    if schema.wrapped {
        ev[0].objects = docs.len();
        if let Some(f) = schema.messages.first().and_then(|m| m.fields.first()) {
            let vals: Vec<&Json> = docs.to_vec();
            field(schema, &mut ev, 0, &f.key, &f.ty, f.repeated, &vals);
        }
        return ev;
    }
    let objs: Vec<&Vec<(String, Json)>> = docs.iter().filter_map(|d| d.as_object()).collect();
    message(schema, &mut ev, 0, &objs);
    ev
}

fn message(schema: &Schema, ev: &mut [MessageEvidence], i: usize, objs: &[&Vec<(String, Json)>]) {
    let Some(m) = schema.messages.get(i) else {
        return;
    };
    if let Some(e) = ev.get_mut(i) {
        e.objects += objs.len();
    }
    for f in &m.fields {
        let mut vals = Vec::new();
        let mut nulls = 0;
        for o in objs {
            match o.iter().find(|(k, _)| *k == f.key) {
                Some((_, v)) if v.is_null() => nulls += 1,
                Some((_, v)) => vals.push(v),
                None => {}
            }
        }
        if let Some(e) = ev.get_mut(i) {
            e.fields.entry(f.key.clone()).or_default().nulls += nulls;
        }
        field(schema, ev, i, &f.key, &f.ty, f.repeated, &vals);
    }
    for o in objs {
        for (k, _) in o.iter() {
            if m.fields.iter().any(|f| f.key == *k) {
                continue;
            }
            let Some(e) = ev.get_mut(i) else { continue };
            match e.untyped.iter_mut().find(|(x, _)| x == k) {
                Some(u) => u.1 += 1,
                None => e.untyped.push((k.clone(), 1)),
            }
        }
    }
}

fn field(
    schema: &Schema,
    ev: &mut [MessageEvidence],
    i: usize,
    key: &str,
    ty: &Ty,
    repeated: bool,
    vals: &[&Json],
) {
    let mut leaves: Vec<&Json> = Vec::new();
    let mut null_elements = 0;
    for v in vals {
        match (repeated, v.as_array()) {
            (true, Some(a)) => {
                for e in a {
                    if e.is_null() {
                        null_elements += 1;
                    } else {
                        leaves.push(e);
                    }
                }
            }
            _ => leaves.push(v),
        }
    }
    {
        let Some(me) = ev.get_mut(i) else { return };
        let fe = me.fields.entry(key.to_owned()).or_default();
        fe.present += vals.len();
        fe.null_elements += null_elements;
        for v in &leaves {
            *fe.kinds.entry(kind_name(v)).or_default() += 1;
            if let Json::Number(n) = v {
                let big = match (n.as_i64(), n.as_u64()) {
                    (Some(x), _) => {
                        fe.negative |= x < 0;
                        fe.beyond_32 |= x < i64::from(i32::MIN) || x > i64::from(u32::MAX);
                        x.unsigned_abs() > SAFE_INTEGER
                    }
                    (None, Some(_)) => {
                        fe.beyond_32 = true;
                        true
                    }
                    _ => false,
                };
                fe.beyond_2_53 |= big;
            }
            if let (Ty::Enum(_), Some(s)) = (ty, v.as_str()) {
                *fe.symbols.entry(s.to_owned()).or_default() += 1;
            }
        }
    }
    match ty {
        Ty::Message(j) => {
            let objs: Vec<&Vec<(String, Json)>> =
                leaves.iter().filter_map(|v| v.as_object()).collect();
            message(schema, ev, *j, &objs);
        }
        Ty::Map(inner) => {
            if let Ty::Message(j) = inner.as_ref() {
                let objs: Vec<&Vec<(String, Json)>> = leaves
                    .iter()
                    .filter_map(|v| v.as_object())
                    .flatten()
                    .filter_map(|(_, x)| x.as_object())
                    .collect();
                message(schema, ev, *j, &objs);
            }
        }
        _ => {}
    }
}

pub fn kind_name(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "bool",
        Json::Number(n) if n.is_f64() => "fraction",
        Json::Number(_) => "integer",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(texts: &[&str]) -> Vec<Json> {
        Json::parse_all(texts)
    }

    #[test]
    fn presence_kinds_and_integer_ranges() {
        let d = docs(&[
            r#"{"id": 1, "big": 9007199254740993, "n": {"x": -3}, "mix": 1}"#,
            r#"{"id": 4294967296, "big": 1, "mix": "a"}"#,
            r#"{"id": 2, "big": 2, "n": null, "mix": true, "never": null}"#,
        ]);
        let refs: Vec<&Json> = d.iter().collect();
        let s = Schema::infer(&d);
        let ev = evidence(&s, &refs);
        assert_eq!(ev[0].objects, 3);
        let id = &ev[0].fields["id"];
        assert_eq!((id.present, id.beyond_32, id.beyond_2_53), (3, true, false));
        let big = &ev[0].fields["big"];
        assert!(big.beyond_2_53);
        let n = &ev[0].fields["n"];
        assert_eq!((n.present, n.nulls), (1, 1));
        assert_eq!(ev[0].fields["mix"].kinds.len(), 3);
        assert_eq!(ev[0].untyped, vec![("never".to_owned(), 1)]);
        // The nested message saw one object, with a negative integer.
        let inner = ev
            .iter()
            .skip(1)
            .find(|m| m.fields.contains_key("x"))
            .unwrap();
        assert_eq!(inner.objects, 1);
        assert!(inner.fields["x"].negative);
    }
}
