//! The `payloads` table: one row per (client, server, method, route, direction), what its
//! JSON bodies cost and what the same documents cost as protobuf (sizes and counts only).

use polars::prelude::*;

use super::columns;
use crate::ingest::serialization::PayloadRow;
use crate::model::Symbols;

/// Column name, polars type, meaning (checked against `docs/tables.md` by a test).
pub const COLUMNS: &[(&str, &str, &str)] = &[
    (columns::CLIENT_IP, "str", "client IP address"),
    (columns::SERVER_IP, "str", "server IP address"),
    (columns::SERVER_PORT, "u32", "server TCP port"),
    (
        columns::METHOD,
        "str",
        "request method (empty for responses without a request)",
    ),
    (
        columns::ROUTE,
        "str",
        "templated route (empty for responses without a request)",
    ),
    (
        columns::DIRECTION,
        "str",
        "`request` (client to server bodies) or `response`",
    ),
    (columns::BODIES, "u64", "JSON bodies seen, kept or not"),
    (
        columns::SAMPLES,
        "u64",
        "JSON documents kept and measured (at most `--samples-per-route`, 32 by default, a uniform bottom-k sample)",
    ),
    (
        columns::SAMPLED_JSON_BYTES,
        "u64",
        "bytes of the sampled documents as JSON (decoded, as the application sent them)",
    ),
    (
        columns::SAMPLED_PROTOBUF_BYTES,
        "u64",
        "bytes of the same documents encoded as protobuf with the inferred schema",
    ),
    (
        columns::SAMPLED_JSON_GZIP_BYTES,
        "u64?",
        "gzip (level 6) size of all the sampled documents, whether or not they were sent compressed; null without samples",
    ),
    (
        columns::SAMPLED_PROTOBUF_GZIP_BYTES,
        "u64?",
        "gzip (level 6) size of the protobuf encodings of the same documents",
    ),
    (
        columns::JSON_PARSE_NS_PER_BYTE,
        "f64?",
        "CPU time of `serde_json` parsing the samples, ns per JSON byte (measured in process at the end of the run)",
    ),
    (
        columns::PROTOBUF_DECODE_NS_PER_BYTE,
        "f64?",
        "CPU time of decoding their protobuf encodings (`prost-reflect` dynamic messages), ns per protobuf byte",
    ),
    (
        columns::SCHEMA_FIELDS,
        "u32",
        "fields of the inferred protobuf schema, over all its messages",
    ),
    (
        columns::UNSAFE_INTEGERS,
        "u64?",
        "integer values in the sampled documents beyond 2^53, which JSON clients that read numbers as doubles (JavaScript) get wrong, and which proto3's JSON mapping writes as strings",
    ),
    (
        columns::TYPE_CONFLICTS,
        "u32?",
        "fields (by key path) whose values have different JSON types across the sampled documents: schema drift a .proto must settle",
    ),
    (
        columns::NON_JSON_BODIES,
        "u64",
        "bodies that are not JSON (not estimated)",
    ),
    (
        columns::NON_JSON_KINDS,
        "str",
        "those bodies by kind, e.g. `form:3,xml:1` (kinds: empty, form, multipart, other, text, xml)",
    ),
    (
        columns::OVERSIZED,
        "u64",
        "JSON bodies over the per-body bound (256 KiB decoded), not sampled",
    ),
    (
        columns::DROPPED,
        "u64",
        "JSON bodies not among the samples (not sampled, oversized, cut, undecodable, invalid, memory bound); `bodies = samples + dropped`",
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
            Column::new(
                columns::CLIENT_IP.into(),
                s(|x| x.key.client_ip.to_string()),
            ),
            Column::new(
                columns::SERVER_IP.into(),
                s(|x| x.key.server_ip.to_string()),
            ),
            Column::new(
                columns::SERVER_PORT.into(),
                r.iter()
                    .map(|x| u32::from(x.key.server_port))
                    .collect::<Vec<u32>>(),
            ),
            Column::new(columns::METHOD.into(), s(|x| x.key.method.clone())),
            Column::new(columns::ROUTE.into(), s(|x| x.key.route.clone())),
            Column::new(columns::DIRECTION.into(), s(|x| x.key.direction.to_owned())),
            Column::new(columns::BODIES.into(), u(|x| x.bodies)),
            Column::new(columns::SAMPLES.into(), u(|x| x.samples)),
            Column::new(
                columns::SAMPLED_JSON_BYTES.into(),
                u(|x| x.sampled_json_bytes),
            ),
            Column::new(
                columns::SAMPLED_PROTOBUF_BYTES.into(),
                u(|x| x.sampled_protobuf_bytes),
            ),
            Column::new(
                columns::SAMPLED_JSON_GZIP_BYTES.into(),
                ou(|x| x.sampled_json_gzip_bytes),
            ),
            Column::new(
                columns::SAMPLED_PROTOBUF_GZIP_BYTES.into(),
                ou(|x| x.sampled_protobuf_gzip_bytes),
            ),
            Column::new(
                columns::JSON_PARSE_NS_PER_BYTE.into(),
                of(|x| x.json_parse_ns_per_byte),
            ),
            Column::new(
                columns::PROTOBUF_DECODE_NS_PER_BYTE.into(),
                of(|x| x.protobuf_decode_ns_per_byte),
            ),
            Column::new(
                columns::SCHEMA_FIELDS.into(),
                r.iter().map(|x| x.schema_fields).collect::<Vec<u32>>(),
            ),
            Column::new(
                columns::UNSAFE_INTEGERS.into(),
                r.iter()
                    .map(|x| Some(x.unsafe_integers))
                    .collect::<Vec<Option<u64>>>(),
            ),
            Column::new(
                columns::TYPE_CONFLICTS.into(),
                r.iter()
                    .map(|x| Some(x.type_conflicts))
                    .collect::<Vec<Option<u32>>>(),
            ),
            Column::new(columns::NON_JSON_BODIES.into(), u(|x| x.non_json_bodies)),
            Column::new(
                columns::NON_JSON_KINDS.into(),
                s(|x| x.non_json_kinds.clone()),
            ),
            Column::new(columns::OVERSIZED.into(), u(|x| x.oversized)),
            Column::new(columns::DROPPED.into(), u(|x| x.dropped)),
        ];
        DataFrame::new(height, columns)
    }
}
