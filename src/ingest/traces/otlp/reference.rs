//! The reference reading of OTLP/JSON: opentelemetry-proto's serde, given the two things
//! it does not read itself. Ids in base64 (protobuf's canonical JSON mapping of `bytes`,
//! which Tempo's data, protobuf's `json_format` and older exporters write) are turned to
//! the hex it expects (`ids::bytes_id` tells the two apart), and Jaeger api_v3's
//! `{"result": {...}}` wrapper is opened. A document that needs neither is read exactly
//! as opentelemetry-proto reads it.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::ingest::traces::ids::bytes_id;

/// One request (a JSON line). A line opentelemetry-proto rejects, or reads as empty (it
/// ignores an unknown `result` key), is read again with its ids in hex and its wrapper
/// opened, when that changes anything; else its own result stands.
pub(crate) fn request(line: &[u8]) -> serde_json::Result<ExportTraceServiceRequest> {
    let direct = serde_json::from_slice::<ExportTraceServiceRequest>(line);
    if direct.as_ref().is_ok_and(|r| !r.resource_spans.is_empty()) {
        return direct;
    }
    let Ok(mut v) = serde_json::from_slice::<Value>(line) else {
        return direct;
    };
    let opened = open_result(&mut v);
    if opened | hex_ids(&mut v) {
        ExportTraceServiceRequest::deserialize(v)
    } else {
        direct
    }
}

/// One `resourceSpans` element of a streamed document, read the same way.
pub(crate) struct Element(pub ResourceSpans);

impl<'de> Deserialize<'de> for Element {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut v = Value::deserialize(d)?;
        match ResourceSpans::deserialize(&v) {
            Ok(rs) => Ok(Element(rs)),
            Err(e) if !hex_ids(&mut v) => Err(serde::de::Error::custom(e)),
            Err(_) => ResourceSpans::deserialize(v)
                .map(Element)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// `{"result": {...}}` (Jaeger api_v3) replaced by what it wraps; true if it was there.
fn open_result(v: &mut Value) -> bool {
    let inner = match v {
        Value::Object(m) if !m.contains_key("resourceSpans") => m.remove("result"),
        _ => None,
    };
    match inner {
        Some(i @ Value::Object(_)) => {
            *v = i;
            true
        }
        Some(other) => {
            // Not a wrapper after all: put it back for the error to name.
            if let Value::Object(m) = v {
                m.insert("result".into(), other);
            }
            false
        }
        None => false,
    }
}

/// Turns every base64 `traceId` / `spanId` / `parentSpanId` (spans and their links) to
/// hex; true if any was.
fn hex_ids(v: &mut Value) -> bool {
    match v {
        Value::Object(m) => {
            let mut changed = false;
            for (k, x) in m.iter_mut() {
                let n = match k.as_str() {
                    "traceId" => 16,
                    "spanId" | "parentSpanId" => 8,
                    _ => {
                        changed |= hex_ids(x);
                        continue;
                    }
                };
                if let Value::String(s) = x {
                    let is_hex = s.len() == 2 * n && s.bytes().all(|b| b.is_ascii_hexdigit());
                    if let (false, Some(Some(id))) = (is_hex, bytes_id(s.as_bytes(), n)) {
                        *s = format!("{id:0w$x}", w = 2 * n);
                        changed = true;
                    }
                }
            }
            changed
        }
        Value::Array(a) => a.iter_mut().fold(false, |c, x| hex_ids(x) | c),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_ids_and_the_result_wrapper_read_as_hex() {
        let hex = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"1112131415161718","parentSpanId":"fbff000000000001","name":"x","links":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"1112131415161718"}]}]}]}]}"#;
        let b64 = hex
            .replace(
                "0102030405060708090a0b0c0d0e0f10",
                "AQIDBAUGBwgJCgsMDQ4PEA==",
            )
            .replace("1112131415161718", "ERITFBUWFxg=")
            .replace("fbff000000000001", "-_8AAAAAAAE");
        let want = request(hex.as_bytes()).unwrap();
        assert_eq!(request(b64.as_bytes()).unwrap(), want);
        let wrapped = format!(r#"{{"result":{b64}}}"#);
        assert_eq!(request(wrapped.as_bytes()).unwrap(), want);
        // A malformed id is still an error, and the wrapper alone does not hide one.
        assert!(request(hex.replace("1112131415161718", "zz").as_bytes()).is_err());
        assert!(request(br#"{"result":[1]}"#).is_ok_and(|r| r.resource_spans.is_empty()));
    }
}
