//! Risks a migration meets in the sampled documents: integers a JavaScript client cannot
//! hold (beyond 2^53, written as strings by proto3's JSON mapping), and fields whose JSON
//! type changes from document to document (drift a .proto must settle).

use std::collections::BTreeMap;

use super::json::Json;

/// 2^53: the largest integer every double holds exactly.
const SAFE_INTEGER: u64 = 1 << 53;

/// Depth bound of the walk: documents are parsed already, but a deep one must not make
/// the scan recurse without end.
const MAX_DEPTH: usize = 64;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Risks {
    pub unsafe_integers: u64,
    pub type_conflicts: u32,
}

/// JSON kinds seen at one key path, as bits (null is not a type change: it is absence).
const BOOL: u8 = 1;
const NUMBER: u8 = 2;
const STRING: u8 = 4;
const ARRAY: u8 = 8;
const OBJECT: u8 = 16;

pub fn scan(docs: &[Json]) -> Risks {
    let mut kinds: BTreeMap<String, u8> = BTreeMap::new();
    let mut risks = Risks::default();
    for d in docs {
        walk(d, &mut String::new(), 0, &mut kinds, &mut risks);
    }
    risks.type_conflicts = kinds
        .values()
        .filter(|k| k.count_ones() > 1)
        .count()
        .try_into()
        .unwrap_or(u32::MAX);
    risks
}

fn walk(
    v: &Json,
    path: &mut String,
    depth: usize,
    kinds: &mut BTreeMap<String, u8>,
    r: &mut Risks,
) {
    if depth > MAX_DEPTH {
        return;
    }
    let bit = match v {
        Json::Null => return,
        Json::Bool(_) => BOOL,
        Json::Number(n) => {
            let unsafe_int = match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => u > SAFE_INTEGER,
                (None, Some(i)) => i.unsigned_abs() > SAFE_INTEGER,
                // A fraction, or an integer beyond 64 bits (serde_json gives it as f64).
                _ => n
                    .as_f64()
                    .is_some_and(|f| f.fract() == 0.0 && f.abs() > SAFE_INTEGER as f64),
            };
            r.unsafe_integers += u64::from(unsafe_int);
            NUMBER
        }
        Json::String(_) => STRING,
        Json::Array(items) => {
            let len = path.len();
            path.push_str("[]");
            for i in items {
                walk(i, path, depth + 1, kinds, r);
            }
            path.truncate(len);
            ARRAY
        }
        Json::Object(members) => {
            for (k, m) in members {
                let len = path.len();
                path.push('.');
                path.push_str(k);
                walk(m, path, depth + 1, kinds, r);
                path.truncate(len);
            }
            OBJECT
        }
    };
    *kinds.entry(path.clone()).or_default() |= bit;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(texts: &[&str]) -> Vec<Json> {
        Json::parse_all(texts)
    }

    #[test]
    fn integers_beyond_2_53_are_counted_wherever_they_sit() {
        // 2^53 = 9007199254740992 is still exact; 2^53 + 1 is not.
        let r = scan(&docs(&[
            r#"{"id": 9007199254740992, "ids": [9007199254740993, -9007199254740993, 1], "n": {"big": 18446744073709551615}}"#,
        ]));
        assert_eq!(r.unsafe_integers, 3);
    }

    #[test]
    fn a_field_that_changes_type_is_one_conflict_and_null_is_absence() {
        let r = scan(&docs(&[
            r#"{"price": 10, "tags": ["a"], "note": null, "user": {"id": 1}}"#,
            r#"{"price": "10.00", "tags": ["b"], "note": "x", "user": {"id": "u-1"}}"#,
        ]));
        // price: number vs string; user.id: number vs string; note: null is no type.
        assert_eq!(r.type_conflicts, 2);
        assert_eq!(r.unsafe_integers, 0);
    }
}
