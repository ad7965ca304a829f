//! The `payloads` table: one row per (client, server, method, route, direction), what its
//! JSON bodies cost and what the same documents cost as protobuf (sizes and counts only).

use polars::prelude::*;

use crate::model::Symbols;
use crate::serialization::PayloadRow;

/// Column name, polars type, meaning (checked against `docs/tables.md` by a test).
pub const COLUMNS: &[(&str, &str, &str)] = &[
    ("client_ip", "str", "client IP address"),
    ("server_ip", "str", "server IP address"),
    ("server_port", "u32", "server TCP port"),
    (
        "method",
        "str",
        "request method (empty for responses without a request)",
    ),
    (
        "route",
        "str",
        "templated route (empty for responses without a request)",
    ),
    (
        "direction",
        "str",
        "`request` (client to server bodies) or `response`",
    ),
    ("bodies", "u64", "JSON bodies seen, kept or not"),
    (
        "samples",
        "u64",
        "JSON documents kept and measured (at most `--samples-per-route`, 32 by default, a reservoir sample)",
    ),
    (
        "sampled_json_bytes",
        "u64",
        "bytes of the sampled documents as JSON (decoded, as the application sent them)",
    ),
    (
        "sampled_protobuf_bytes",
        "u64",
        "bytes of the same documents encoded as protobuf with the inferred schema",
    ),
    (
        "sampled_json_gzip_bytes",
        "u64?",
        "gzip (level 6) size of the sampled documents that were sent compressed; null when none was",
    ),
    (
        "sampled_protobuf_gzip_bytes",
        "u64?",
        "gzip (level 6) size of the protobuf encodings of those same documents",
    ),
    (
        "json_parse_ns_per_byte",
        "f64?",
        "CPU time of `serde_json` parsing the samples, ns per JSON byte (measured in process at the end of the run)",
    ),
    (
        "protobuf_decode_ns_per_byte",
        "f64?",
        "CPU time of decoding their protobuf encodings (`prost-reflect` dynamic messages), ns per protobuf byte",
    ),
    (
        "schema_fields",
        "u32",
        "fields of the inferred protobuf schema, over all its messages",
    ),
    (
        "unsafe_integers",
        "u64?",
        "integer values in the sampled documents beyond 2^53, which JSON clients that read numbers as doubles (JavaScript) get wrong, and which proto3's JSON mapping writes as strings",
    ),
    (
        "type_conflicts",
        "u32?",
        "fields (by key path) whose values have different JSON types across the sampled documents: schema drift a .proto must settle",
    ),
    (
        "non_json_bodies",
        "u64",
        "bodies that are not JSON (not estimated)",
    ),
    (
        "non_json_kinds",
        "str",
        "those bodies by kind, e.g. `form:3,xml:1` (kinds: empty, form, multipart, other, text, xml)",
    ),
    (
        "oversized",
        "u64",
        "JSON bodies over the per-body bound (256 KiB decoded), not sampled",
    ),
    (
        "dropped",
        "u64",
        "JSON bodies not among the samples (reservoir, oversized, cut, undecodable, invalid, memory bound); `bodies = samples + dropped`",
    ),
];

#[derive(Default)]
pub struct PayloadColumns {
    rows: Vec<PayloadRow>,
}

impl PayloadColumns {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn push(&mut self, row: PayloadRow) {
        self.rows.push(row);
    }

    pub fn into_frame(self, _strings: &Symbols) -> PolarsResult<DataFrame> {
        let r = &self.rows;
        let height = r.len();
        let s = |f: fn(&PayloadRow) -> String| r.iter().map(f).collect::<Vec<String>>();
        let u = |f: fn(&PayloadRow) -> u64| r.iter().map(f).collect::<Vec<u64>>();
        let ou = |f: fn(&PayloadRow) -> Option<u64>| r.iter().map(f).collect::<Vec<_>>();
        let of = |f: fn(&PayloadRow) -> Option<f64>| r.iter().map(f).collect::<Vec<_>>();
        let columns = vec![
            Column::new("client_ip".into(), s(|x| x.key.client_ip.to_string())),
            Column::new("server_ip".into(), s(|x| x.key.server_ip.to_string())),
            Column::new(
                "server_port".into(),
                r.iter()
                    .map(|x| u32::from(x.key.server_port))
                    .collect::<Vec<u32>>(),
            ),
            Column::new("method".into(), s(|x| x.key.method.clone())),
            Column::new("route".into(), s(|x| x.key.route.clone())),
            Column::new("direction".into(), s(|x| x.key.direction.to_owned())),
            Column::new("bodies".into(), u(|x| x.bodies)),
            Column::new("samples".into(), u(|x| x.samples)),
            Column::new("sampled_json_bytes".into(), u(|x| x.sampled_json_bytes)),
            Column::new(
                "sampled_protobuf_bytes".into(),
                u(|x| x.sampled_protobuf_bytes),
            ),
            Column::new(
                "sampled_json_gzip_bytes".into(),
                ou(|x| x.sampled_json_gzip_bytes),
            ),
            Column::new(
                "sampled_protobuf_gzip_bytes".into(),
                ou(|x| x.sampled_protobuf_gzip_bytes),
            ),
            Column::new(
                "json_parse_ns_per_byte".into(),
                of(|x| x.json_parse_ns_per_byte),
            ),
            Column::new(
                "protobuf_decode_ns_per_byte".into(),
                of(|x| x.protobuf_decode_ns_per_byte),
            ),
            Column::new(
                "schema_fields".into(),
                r.iter().map(|x| x.schema_fields).collect::<Vec<u32>>(),
            ),
            Column::new(
                "unsafe_integers".into(),
                r.iter()
                    .map(|x| Some(x.unsafe_integers))
                    .collect::<Vec<Option<u64>>>(),
            ),
            Column::new(
                "type_conflicts".into(),
                r.iter()
                    .map(|x| Some(x.type_conflicts))
                    .collect::<Vec<Option<u32>>>(),
            ),
            Column::new("non_json_bodies".into(), u(|x| x.non_json_bodies)),
            Column::new("non_json_kinds".into(), s(|x| x.non_json_kinds.clone())),
            Column::new("oversized".into(), u(|x| x.oversized)),
            Column::new("dropped".into(), u(|x| x.dropped)),
        ];
        DataFrame::new(height, columns)
    }
}
