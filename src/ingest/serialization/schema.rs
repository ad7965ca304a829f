//! A protobuf schema inferred from the sampled JSON documents of one key, and the
//! documents re-encoded with it as real protobuf (`prost-reflect` dynamic messages).
//!
//! Rules (docs/engine.md, "JSON bodies and their protobuf size"):
//! - every JSON object path is a message; its fields are numbered 1, 2, … by how many
//!   objects at that path carry the key with a non-null value (most first, so the one-byte
//!   tags 1-15 go to the commonest keys), ties by first-seen order; numbers 19000-19999
//!   (reserved by protobuf) are skipped;
//! - integer -> int64, or sint64 when a negative value was seen; a fraction (or an integer
//!   beyond i64) -> double; bool -> bool; object -> nested message;
//! - string -> enum when the key has at most 16 distinct values over at least 8 values and
//!   all look like identifiers (value 0 is an `UNSPECIFIED` placeholder, the seen values are
//!   1, 2, … by frequency then first-seen); otherwise string;
//! - array -> repeated field of its elements' type (numbers and bools packed, proto3's
//!   default); null elements are skipped; arrays of arrays carry each inner array as JSON text;
//! - an object whose values share one type and whose keys are dynamic -> `map<string, T>`;
//!   dynamic means at least 4 keys none of which is in more than half of the objects seen
//!   there, or keys that could not be field names (all start with a digit or hold a
//!   character other than `[A-Za-z0-9_]`);
//! - null -> skipped (the type comes from the other values; a key only ever null, or only
//!   ever an empty array, gets no field: proto3 would not encode it anyway);
//! - values of different types under one key -> string holding each value's JSON text;
//! - a document that is not an object (array, scalar) is wrapped in a message whose field 1
//!   holds it (repeated for an array).
//!
//! Field and type names are synthetic (`f<n>`, `M<n>`, `E<n>`): names do not change the
//! encoding, and no JSON key ever reaches a descriptor.

use std::collections::HashMap;

use super::json::Json;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MapKey, MessageDescriptor, Value as PValue};
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{
    DescriptorProto, EnumDescriptorProto, EnumValueDescriptorProto, FieldDescriptorProto,
    FileDescriptorProto, MessageOptions,
};

/// An object's members, in document order.
type Members = Vec<(String, Json)>;

const ENUM_MAX_VALUES: usize = 16;
const ENUM_MIN_VALUES: usize = 8;
const MAP_MIN_SPARSE_KEYS: usize = 4;
const PACKAGE: &str = "linkrank.inferred";

/// The protobuf type of a field (or of a map's values).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ty {
    Int64,
    Sint64,
    Double,
    Bool,
    String,
    /// Values of mixed types: a string holding the value's JSON text.
    JsonText,
    /// Index into [`Schema::enums`].
    Enum(usize),
    /// Index into [`Schema::messages`].
    Message(usize),
    /// `map<string, T>`.
    Map(Box<Ty>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// The JSON key (empty for the wrapper of a non-object document).
    pub key: String,
    pub number: u32,
    pub ty: Ty,
    pub repeated: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageSchema {
    /// In field-number order.
    pub fields: Vec<Field>,
}

impl MessageSchema {
    fn field(&self, key: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.key == key)
    }
}

/// The inferred schema of one key's documents; message 0 is the document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schema {
    pub messages: Vec<MessageSchema>,
    /// Each enum's seen values; value `i` is enum number `i + 1`.
    pub enums: Vec<Vec<String>>,
    /// The documents are not all objects: message 0 wraps each in field 1.
    pub wrapped: bool,
    /// The enum rule applies (else every string is a `string`).
    infer_enums: bool,
}

impl Schema {
    /// Infers the schema of `docs` (parsed JSON documents).
    pub fn infer(docs: &[Json]) -> Schema {
        Schema::infer_with(docs, true)
    }

    /// [`Schema::infer`], with the enum rule on or off.
    pub fn infer_with(docs: &[Json], infer_enums: bool) -> Schema {
        let mut s = Schema {
            messages: vec![MessageSchema::default()],
            enums: Vec::new(),
            wrapped: false,
            infer_enums,
        };
        let all: Vec<&Json> = docs.iter().collect();
        if !all.is_empty() && all.iter().all(|d| d.is_object()) {
            let objs: Vec<&Members> = all.iter().filter_map(|d| d.as_object()).collect();
            s.messages[0] = s.object_message(&objs);
        } else {
            s.wrapped = true;
            if let Some((ty, repeated)) = s.field_type(&all) {
                s.messages[0].fields.push(Field {
                    key: String::new(),
                    number: 1,
                    ty,
                    repeated,
                });
            }
        }
        s
    }

    /// Fields across all messages (map entries not counted).
    pub fn field_count(&self) -> usize {
        self.messages.iter().map(|m| m.fields.len()).sum()
    }

    fn object_message(&mut self, objs: &[&Members]) -> MessageSchema {
        // Key -> (non-null appearances, first-seen rank, values).
        let mut keys: Vec<(&str, usize, Vec<&Json>)> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for o in objs {
            for (k, v) in o.iter() {
                if v.is_null() {
                    continue;
                }
                let i = *index.entry(k.as_str()).or_insert_with(|| {
                    keys.push((k.as_str(), 0, Vec::new()));
                    keys.len() - 1
                });
                keys[i].1 += 1;
                keys[i].2.push(v);
            }
        }
        // Stable sort: ties keep first-seen order.
        keys.sort_by_key(|k| std::cmp::Reverse(k.1));
        let mut msg = MessageSchema::default();
        let mut number = 0u32;
        for (key, _, vals) in keys {
            let Some((ty, repeated)) = self.field_type(&vals) else {
                continue;
            };
            number += 1;
            if number == 19000 {
                number = 20000;
            }
            msg.fields.push(Field {
                key: key.to_owned(),
                number,
                ty,
                repeated,
            });
        }
        msg
    }

    /// Type of a field from its non-null values; None when nothing typed was seen.
    fn field_type(&mut self, vals: &[&Json]) -> Option<(Ty, bool)> {
        let vals: Vec<&Json> = vals.iter().copied().filter(|v| !v.is_null()).collect();
        let arrays = vals.iter().filter(|v| v.is_array()).count();
        if arrays > 0 && arrays < vals.len() {
            return Some((Ty::JsonText, false));
        }
        if arrays == 0 {
            return self.single_type(&vals).map(|t| (t, false));
        }
        let elems: Vec<&Json> = vals
            .iter()
            .filter_map(|v| v.as_array())
            .flatten()
            .filter(|e| !e.is_null())
            .collect();
        if elems.iter().any(|e| e.is_array()) {
            return Some((Ty::JsonText, true));
        }
        self.single_type(&elems).map(|t| (t, true))
    }

    /// Type of non-null, non-array values.
    fn single_type(&mut self, vals: &[&Json]) -> Option<Ty> {
        let first = vals.first()?;
        if vals.iter().any(|v| kind(v) != kind(first)) {
            return Some(Ty::JsonText);
        }
        Some(match first {
            Json::Bool(_) => Ty::Bool,
            Json::Number(_) => number_type(vals),
            Json::String(_) => self.string_type(vals),
            Json::Object(_) => {
                let objs: Vec<&Members> = vals.iter().filter_map(|v| v.as_object()).collect();
                match map_values(&objs) {
                    Some(values) => match self.field_type(&values) {
                        Some((t, false)) => Ty::Map(Box::new(t)),
                        // Map values cannot be repeated: such an object stays a message.
                        _ => self.message_type(&objs),
                    },
                    None => self.message_type(&objs),
                }
            }
            Json::Array(_) | Json::Null => Ty::JsonText,
        })
    }

    fn message_type(&mut self, objs: &[&Members]) -> Ty {
        let i = self.messages.len();
        self.messages.push(MessageSchema::default());
        let m = self.object_message(objs);
        if let Some(slot) = self.messages.get_mut(i) {
            *slot = m;
        }
        Ty::Message(i)
    }

    fn string_type(&mut self, vals: &[&Json]) -> Ty {
        if !self.infer_enums || vals.len() < ENUM_MIN_VALUES {
            return Ty::String;
        }
        let mut seen: Vec<(&str, usize)> = Vec::new();
        for v in vals {
            let Some(s) = v.as_str() else {
                return Ty::String;
            };
            if !is_identifier(s) {
                return Ty::String;
            }
            if let Some(e) = seen.iter_mut().find(|(x, _)| *x == s) {
                e.1 += 1;
            } else if seen.len() < ENUM_MAX_VALUES {
                seen.push((s, 1));
            } else {
                return Ty::String;
            }
        }
        seen.sort_by_key(|s| std::cmp::Reverse(s.1));
        self.enums
            .push(seen.into_iter().map(|(s, _)| s.to_owned()).collect());
        Ty::Enum(self.enums.len() - 1)
    }

    /// The file descriptor of this schema, in proto3.
    pub fn file_descriptor(&self) -> FileDescriptorProto {
        let messages = self
            .messages
            .iter()
            .enumerate()
            .map(|(i, m)| self.descriptor(i, m))
            .collect();
        let enums = self
            .enums
            .iter()
            .enumerate()
            .map(|(i, values)| {
                let mut v = vec![enum_value(format!("E{i}_UNSPECIFIED"), 0)];
                for (j, _) in values.iter().enumerate() {
                    v.push(enum_value(format!("E{i}_V{}", j + 1), j as i32 + 1));
                }
                EnumDescriptorProto {
                    name: Some(format!("E{i}")),
                    value: v,
                    ..Default::default()
                }
            })
            .collect();
        FileDescriptorProto {
            name: Some("inferred.proto".into()),
            package: Some(PACKAGE.into()),
            message_type: messages,
            enum_type: enums,
            syntax: Some("proto3".into()),
            ..Default::default()
        }
    }

    fn descriptor(&self, i: usize, m: &MessageSchema) -> DescriptorProto {
        let mut d = DescriptorProto {
            name: Some(format!("M{i}")),
            ..Default::default()
        };
        for f in &m.fields {
            let name = format!("f{}", f.number);
            match &f.ty {
                Ty::Map(v) => {
                    let entry = format!("F{}Entry", f.number);
                    d.nested_type.push(DescriptorProto {
                        name: Some(entry.clone()),
                        field: vec![
                            field_proto("key".into(), 1, &Ty::String, false),
                            field_proto("value".into(), 2, v, false),
                        ],
                        options: Some(MessageOptions {
                            map_entry: Some(true),
                            ..Default::default()
                        }),
                        ..Default::default()
                    });
                    let mut fp = field_proto(name, f.number, &Ty::Message(0), true);
                    fp.type_name = Some(format!(".{PACKAGE}.M{i}.{entry}"));
                    d.field.push(fp);
                }
                ty => d.field.push(field_proto(name, f.number, ty, f.repeated)),
            }
        }
        d
    }

    /// The descriptor of message 0, from a fresh pool holding this schema.
    pub fn root_descriptor(&self) -> Result<MessageDescriptor, String> {
        let mut pool = DescriptorPool::new();
        pool.add_file_descriptor_proto(self.file_descriptor())
            .map_err(|e| format!("inferred schema rejected: {e}"))?;
        pool.get_message_by_name(&format!("{PACKAGE}.M0"))
            .ok_or_else(|| "inferred schema has no root message".to_owned())
    }

    /// `doc` as a message of this schema (keys the schema lacks are skipped).
    pub fn message(&self, desc: &MessageDescriptor, doc: &Json) -> DynamicMessage {
        if self.wrapped {
            let mut m = DynamicMessage::new(desc.clone());
            if let Some(f) = self.messages.first().and_then(|m| m.fields.first()) {
                if let Some(v) = self.field_value(desc, f, doc) {
                    let _ = m.try_set_field_by_number(f.number, v);
                }
            }
            return m;
        }
        match doc.as_object() {
            Some(o) => self.object(0, desc, o),
            None => DynamicMessage::new(desc.clone()),
        }
    }

    fn object(&self, i: usize, desc: &MessageDescriptor, o: &Members) -> DynamicMessage {
        let mut m = DynamicMessage::new(desc.clone());
        let Some(schema) = self.messages.get(i) else {
            return m;
        };
        for (k, v) in o {
            let Some(f) = schema.field(k) else { continue };
            if let Some(value) = self.field_value(desc, f, v) {
                // Types come from the same documents, so a mismatch cannot happen; if it
                // did, the field is left out rather than panicking.
                let _ = m.try_set_field_by_number(f.number, value);
            }
        }
        m
    }

    fn field_value(&self, desc: &MessageDescriptor, f: &Field, v: &Json) -> Option<PValue> {
        if v.is_null() {
            return None;
        }
        let fd = desc.get_field(f.number)?;
        let sub = match fd.kind() {
            prost_reflect::Kind::Message(m) => Some(m),
            _ => None,
        };
        if let Ty::Map(vt) = &f.ty {
            let entry = sub?;
            let vd = entry.get_field(2)?;
            let vdesc = match vd.kind() {
                prost_reflect::Kind::Message(m) => Some(m),
                _ => None,
            };
            let mut map = HashMap::new();
            for (k, x) in v.as_object()? {
                if let Some(val) = self.scalar(vt, vdesc.as_ref(), x) {
                    map.insert(MapKey::String(k.clone()), val);
                }
            }
            // Empty containers are proto3 defaults: not set, as a decoder would leave them.
            return (!map.is_empty()).then_some(PValue::Map(map));
        }
        if f.repeated {
            let list = match v.as_array() {
                Some(a) => a
                    .iter()
                    .filter(|e| !e.is_null())
                    .filter_map(|e| self.scalar(&f.ty, sub.as_ref(), e))
                    .collect(),
                None => vec![self.scalar(&f.ty, sub.as_ref(), v)?],
            };
            return (!list.is_empty()).then_some(PValue::List(list));
        }
        self.scalar(&f.ty, sub.as_ref(), v)
    }

    fn scalar(&self, ty: &Ty, sub: Option<&MessageDescriptor>, v: &Json) -> Option<PValue> {
        Some(match ty {
            Ty::Int64 | Ty::Sint64 => PValue::I64(v.as_i64()?),
            Ty::Double => PValue::F64(v.as_f64()?),
            Ty::Bool => PValue::Bool(v.as_bool()?),
            Ty::String => PValue::String(v.as_str()?.to_owned()),
            Ty::JsonText => PValue::String(v.text()),
            Ty::Enum(e) => {
                let s = v.as_str()?;
                let n = self.enums.get(*e)?.iter().position(|x| x == s)?;
                PValue::EnumNumber(n as i32 + 1)
            }
            Ty::Message(i) => PValue::Message(self.object(*i, sub?, v.as_object()?)),
            Ty::Map(_) => return None,
        })
    }
}

/// Encodes each document with `schema`; the sizes are those of real protobuf.
pub fn encode_all(schema: &Schema, docs: &[Json]) -> Result<Vec<Vec<u8>>, String> {
    let desc = schema.root_descriptor()?;
    Ok(docs
        .iter()
        .map(|d| schema.message(&desc, d).encode_to_vec())
        .collect())
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

fn kind(v: &Json) -> Kind {
    match v {
        Json::Null => Kind::Null,
        Json::Bool(_) => Kind::Bool,
        Json::Number(_) => Kind::Number,
        Json::String(_) => Kind::String,
        Json::Array(_) => Kind::Array,
        Json::Object(_) => Kind::Object,
    }
}

fn number_type(vals: &[&Json]) -> Ty {
    let mut negative = false;
    for v in vals {
        match v.as_i64() {
            Some(n) => negative |= n < 0,
            // A fraction, or an integer beyond i64.
            None => return Ty::Double,
        }
    }
    if negative {
        Ty::Sint64
    } else {
        Ty::Int64
    }
}

/// When the objects look like a map (see the module docs), all their non-null values.
fn map_values<'a>(objs: &[&'a Members]) -> Option<Vec<&'a Json>> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    let mut values = Vec::new();
    for o in objs {
        for (k, v) in o.iter() {
            *counts.entry(k.as_str()).or_default() += 1;
            if !v.is_null() {
                values.push(v);
            }
        }
    }
    let first = values.first()?;
    if values.iter().any(|v| kind(v) != kind(first)) || first.is_array() {
        return None;
    }
    let sparse =
        counts.len() >= MAP_MIN_SPARSE_KEYS && counts.values().all(|&c| c * 2 <= objs.len());
    let keyish = counts.len() >= 2
        && counts.keys().all(|k| {
            k.starts_with(|c: char| c.is_ascii_digit())
                || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    (sparse || keyish).then_some(values)
}

/// Looks like an enum constant: `[A-Za-z][A-Za-z0-9_.-]*`, at most 64 bytes.
fn is_identifier(s: &str) -> bool {
    s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn enum_value(name: String, number: i32) -> EnumValueDescriptorProto {
    EnumValueDescriptorProto {
        name: Some(name),
        number: Some(number),
        ..Default::default()
    }
}

fn field_proto(name: String, number: u32, ty: &Ty, repeated: bool) -> FieldDescriptorProto {
    let (t, type_name) = match ty {
        Ty::Int64 => (Type::Int64, None),
        Ty::Sint64 => (Type::Sint64, None),
        Ty::Double => (Type::Double, None),
        Ty::Bool => (Type::Bool, None),
        Ty::String | Ty::JsonText => (Type::String, None),
        Ty::Enum(e) => (Type::Enum, Some(format!(".{PACKAGE}.E{e}"))),
        Ty::Message(m) => (Type::Message, Some(format!(".{PACKAGE}.M{m}"))),
        // Not reached: map fields are built by the caller.
        Ty::Map(_) => (Type::Message, None),
    };
    FieldDescriptorProto {
        name: Some(name),
        number: Some(number as i32),
        label: Some(if repeated {
            Label::Repeated
        } else {
            Label::Optional
        } as i32),
        r#type: Some(t as i32),
        type_name,
        ..Default::default()
    }
}
