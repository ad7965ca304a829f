//! Jaeger JSON readers: the query API / UI download `{"data": [trace, ...]}` (streamed
//! trace by trace), one UI trace `{"traceID", "spans", "processes"}`, and Jaeger's model
//! protojson `{"spans": [...]}` (base64 ids, RFC 3339 start, "Nns" durations, typed tags).
//!
//! Jaeger is not OTLP, so these are small serde structs: opentelemetry-proto has no
//! types for it. A span's parent is its first reference, as the Jaeger UI takes it.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

use serde::de::DeserializeSeed;
use serde::Deserialize;
use serde_json::Value;

use super::assemble::Ingest;
use super::ids::text_id as parse_id;
use super::shared_strings::SharedStrings;
use super::span::{apply_attr, AttrValue, Span, SpanKind, SpanLink, SpanStatus};
use super::stream::{json_document, json_documents, KeyedArray};

#[derive(Deserialize, Default)]
#[serde(default)]
struct JTrace {
    spans: Vec<JSpan>,
    processes: HashMap<String, JProcess>,
    /// Jaeger api_v2's gRPC-gateway JSON wraps each chunk of spans in `{"result": ...}`.
    result: Option<Box<JTrace>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JSpan {
    #[serde(rename = "traceID", alias = "traceId")]
    trace_id: String,
    #[serde(rename = "spanID", alias = "spanId")]
    span_id: String,
    operation_name: String,
    references: Vec<JRef>,
    start_time: Value,
    duration: Value,
    tags: Vec<JTag>,
    #[serde(rename = "processID", alias = "processId")]
    process_id: String,
    process: Option<JProcess>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JRef {
    ref_type: String,
    #[serde(rename = "traceID", alias = "traceId")]
    trace_id: String,
    #[serde(rename = "spanID", alias = "spanId")]
    span_id: String,
}

#[derive(Deserialize, Default, Clone)]
#[serde(default, rename_all = "camelCase")]
struct JProcess {
    service_name: String,
}

/// UI shape `{key, type, value}` or protojson `{key, vType, vStr|vInt64|vBool|...}`.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JTag {
    key: String,
    value: Value,
    v_str: Option<String>,
    v_int64: Option<Value>,
    v_bool: Option<bool>,
}

impl JTag {
    fn value(&self) -> AttrValue<'_> {
        if let Some(s) = &self.v_str {
            return AttrValue::Str(s);
        }
        if let Some(b) = self.v_bool {
            return AttrValue::Bool(b);
        }
        match self.v_int64.as_ref().unwrap_or(&self.value) {
            Value::String(s) => match s.parse::<i64>() {
                Ok(i) if self.v_int64.is_some() => AttrValue::Int(i),
                _ => AttrValue::Str(s),
            },
            Value::Number(n) => n.as_i64().map_or(AttrValue::Other, AttrValue::Int),
            Value::Bool(b) => AttrValue::Bool(*b),
            _ => AttrValue::Other,
        }
    }
}

/// `{"data": [trace, ...]}`: each trace is converted once parsed.
pub(crate) fn read_query(r: impl BufRead, file: &Path, ing: &mut Ingest) {
    json_document(r, file, ing, "no data array", false, |de, ing| {
        let mut each = |t: JTrace| {
            convert(t, ing);
        };
        KeyedArray::new(&["data"], &mut each).deserialize(de)
    });
}

/// One trace document, or several in a row (api_v2's stream of `{"result": {"spans":
/// [...]}}` chunks); each is held whole (one trace is the unit the pairing needs anyway).
pub(crate) fn read_trace(r: impl BufRead, file: &Path, ing: &mut Ingest) -> std::io::Result<()> {
    json_documents(r, file, ing, "no spans", |de, ing| {
        let t = JTrace::deserialize(de)?;
        Ok(convert(t, ing))
    })
}

/// Converts a trace's spans (and a wrapped chunk's); false if it had none.
fn convert(t: JTrace, ing: &mut Ingest) -> bool {
    let JTrace {
        spans,
        processes,
        result,
    } = t;
    let mut found = !spans.is_empty();
    if let Some(inner) = result {
        found |= convert(*inner, ing);
    }
    for s in spans {
        let service = s
            .process
            .as_ref()
            .or_else(|| processes.get(&s.process_id))
            .map_or("", |p| p.service_name.as_str());
        let service = ing.service(if service.is_empty() {
            "unknown_service"
        } else {
            service
        });
        match span_of(s, service, ing.names()) {
            Some(span) => ing.span(span),
            None => ing.missing_ids(),
        }
    }
    found
}

fn span_of(s: JSpan, service: std::sync::Arc<str>, names: &mut SharedStrings) -> Option<Span> {
    let trace_id = parse_id(&s.trace_id).filter(|&t| t != 0)?;
    let span_id = parse_id(&s.span_id)
        .and_then(|i| u64::try_from(i).ok())
        .filter(|&i| i != 0)?;
    let mut refs = s.references.iter().filter_map(|r| {
        Some((
            r,
            parse_id(&r.trace_id)?,
            u64::try_from(parse_id(&r.span_id)?).ok()?,
        ))
    });
    // The parent is the first reference, in this trace or not (a parent in another trace
    // never arrives here and the span is counted as an orphan); the other references are
    // links.
    let parent = refs.next();
    let parent_span_id = parent.map(|(_, _, sid)| sid);
    let mut links: Vec<SpanLink> = refs
        .map(|(_, tid, sid)| SpanLink {
            trace_id: tid,
            span_id: sid,
        })
        .collect();
    if let Some((r, tid, sid)) = parent {
        if r.ref_type.eq_ignore_ascii_case("FOLLOWS_FROM") {
            links.push(SpanLink {
                trace_id: tid,
                span_id: sid,
            });
        }
    }
    let start_ns = time_ns(&s.start_time)?;
    let dur_ns = duration_ns(&s.duration).unwrap_or(0);
    let mut span = Span {
        trace_id,
        span_id,
        parent_span_id,
        service,
        kind: SpanKind::Internal,
        name: names.get(&s.operation_name),
        start_ns,
        end_ns: start_ns.saturating_add(dur_ns),
        status: SpanStatus::Unset,
        http: Default::default(),
        peer: Default::default(),
        links,
    };
    for tag in &s.tags {
        let v = tag.value();
        if tag.key == "span.kind" {
            if let AttrValue::Str(k) = v {
                span.kind = SpanKind::from_name(k);
            }
        } else {
            apply_attr(&mut span, &tag.key, v, names);
        }
    }
    Some(span)
}

/// Microseconds since the epoch (UI) or an RFC 3339 string (protojson) to ns.
fn time_ns(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64()?.checked_mul(1000),
        Value::String(s) => rfc3339_ns(s),
        _ => None,
    }
}

/// Microseconds (UI) or a protojson duration string ("22938000ns", "0.022938s").
fn duration_ns(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64()?.checked_mul(1000),
        Value::String(s) => {
            let (num, scale) = if let Some(n) = s.strip_suffix("ns") {
                (n, 1.0)
            } else if let Some(n) = s.strip_suffix("us").or_else(|| s.strip_suffix("µs")) {
                (n, 1e3)
            } else if let Some(n) = s.strip_suffix("ms") {
                (n, 1e6)
            } else {
                (s.strip_suffix('s')?, 1e9)
            };
            let x = num.parse::<f64>().ok()? * scale;
            (x.is_finite() && x >= 0.0).then(|| x.round() as u64)
        }
        _ => None,
    }
}

/// RFC 3339 `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` to ns since the epoch. Hand-written:
/// the crate has no date library, and this is the only date format any reader needs.
pub(crate) fn rfc3339_ns(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_ns = 0i64;
    if b.get(i) == Some(&b'.') {
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        let kept = digits.min(9);
        frac_ns = num(i + 1..i + 1 + kept)? * 10i64.pow(9 - kept as u32);
        i += 1 + digits;
    }
    let offset_s = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let off = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
            if sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_s;
    u64::try_from(secs)
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(frac_ns as u64)
}
