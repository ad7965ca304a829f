//! Zipkin JSON: a list of spans (the UI's download, `/api/v2/trace/{id}`) or a list of
//! traces (`/api/v2/traces`), streamed span by span, in the v2 model or the v1 model
//! (`/api/v1/...`: `annotations` with endpoints and `binaryAnnotations`), told apart per
//! span. Small serde structs: Zipkin is not OTLP, so opentelemetry-proto has no types
//! for it.
//!
//! A v1 span is turned into v2 spans as Zipkin's own `V1SpanConverter` does: `cs`/`cr`
//! make a CLIENT span in the endpoint of those annotations, `sr`/`ss` a SERVER span in
//! theirs (the two share the id, as a v2 shared span), `ms` a PRODUCER, `mr` a CONSUMER;
//! a span with none of them is local work. The `sa` (server address) and `ma` (message
//! address) binary annotations name the remote endpoint; the other binary annotations
//! are tags.

use std::collections::BTreeMap;
use std::fmt;
use std::io::BufRead;
use std::path::Path;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::assemble::Ingest;
use super::ids::text_id;
use super::span::{apply_attr, AttrValue, Span, SpanKind, SpanStatus};
use super::stream::{json_document, EachElement};

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ZSpan {
    trace_id: String,
    id: String,
    parent_id: Option<String>,
    kind: Option<String>,
    name: Option<String>,
    /// Microseconds since the epoch.
    timestamp: Option<u64>,
    /// Microseconds.
    duration: Option<u64>,
    local_endpoint: Option<ZEndpoint>,
    remote_endpoint: Option<ZEndpoint>,
    tags: BTreeMap<String, String>,
    /// v1 (and v2 with `endpoint` never set).
    annotations: Vec<ZAnnotation>,
    /// v1 only.
    binary_annotations: Vec<ZBinary>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ZAnnotation {
    timestamp: Option<u64>,
    value: String,
    endpoint: Option<ZEndpoint>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ZBinary {
    key: String,
    value: serde_json::Value,
    endpoint: Option<ZEndpoint>,
}

impl ZSpan {
    /// The v1 model: endpoints on the annotations, or binary annotations, and no v2
    /// `localEndpoint` or `kind`.
    fn is_v1(&self) -> bool {
        self.local_endpoint.is_none()
            && self.kind.is_none()
            && (!self.binary_annotations.is_empty()
                || self.annotations.iter().any(|a| a.endpoint.is_some()))
    }
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ZEndpoint {
    service_name: Option<String>,
    ipv4: Option<String>,
    ipv6: Option<String>,
}

pub(crate) fn read(r: impl BufRead, file: &Path, ing: &mut Ingest) {
    json_document(r, file, ing, "", false, |de, ing| {
        let mut each = |z: ZSpan| convert(z, ing);
        de.deserialize_seq(Items { f: &mut each })?;
        Ok(true)
    });
}

/// Elements of the top-level list: a span, or a trace (a list of spans).
struct Items<'f, F> {
    f: &'f mut F,
}

impl<'de, F: FnMut(ZSpan)> Visitor<'de> for Items<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of Zipkin spans or of traces")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Item { f: self.f })?.is_some() {}
        Ok(())
    }
}

struct Item<'f, F> {
    f: &'f mut F,
}

impl<'de, F: FnMut(ZSpan)> DeserializeSeed<'de> for Item<'_, F> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, F: FnMut(ZSpan)> Visitor<'de> for Item<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Zipkin span or a list of spans")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let z = ZSpan::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        (self.f)(z);
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        EachElement::<ZSpan, F>::new(self.f).visit_seq(seq)
    }
}

fn convert(z: ZSpan, ing: &mut Ingest) {
    if z.is_v1() {
        convert_v1(z, ing);
        return;
    }
    let local = z
        .local_endpoint
        .as_ref()
        .and_then(|e| e.service_name.as_deref());
    let Some(mut span) = base(&z, local, ing) else {
        ing.missing_ids();
        return;
    };
    span.kind = z
        .kind
        .as_deref()
        .map_or(SpanKind::Internal, SpanKind::from_name);
    if let Some(remote) = &z.remote_endpoint {
        set_remote(&mut span, remote, ing);
    }
    for (k, v) in &z.tags {
        apply_attr(&mut span, k, AttrValue::Str(v), ing.names());
    }
    ing.span(span);
}

/// The span without kind, remote endpoint or tags, in service `local`; `None` without
/// valid ids.
fn base(z: &ZSpan, local: Option<&str>, ing: &mut Ingest) -> Option<Span> {
    let service = ing.service(local.filter(|s| !s.is_empty()).unwrap_or("unknown_service"));
    let trace_id = text_id(&z.trace_id).filter(|&t| t != 0)?;
    let span_id = text_id(&z.id)
        .and_then(|i| u64::try_from(i).ok())
        .filter(|&i| i != 0)?;
    let start_ns = z.timestamp.unwrap_or(0).saturating_mul(1000);
    Some(Span {
        trace_id,
        span_id,
        parent_span_id: z
            .parent_id
            .as_deref()
            .and_then(text_id)
            .and_then(|p| u64::try_from(p).ok())
            .filter(|&p| p != 0),
        service,
        kind: SpanKind::Internal,
        name: ing.names().get(z.name.as_deref().unwrap_or_default()),
        start_ns,
        end_ns: start_ns.saturating_add(z.duration.unwrap_or(0).saturating_mul(1000)),
        status: SpanStatus::Unset,
        http: Default::default(),
        peer: Default::default(),
        links: Vec::new(),
    })
}

/// A remote endpoint's service name is the peer's (like `peer.service`), its ip the
/// `server.address`.
fn set_remote(span: &mut Span, remote: &ZEndpoint, ing: &mut Ingest) {
    let names = ing.names();
    span.peer.peer_service = (remote.service_name.as_deref())
        .filter(|s| !s.is_empty())
        .map(|s| names.get(s));
    span.peer.server_address = (remote.ipv4.as_deref())
        .or(remote.ipv6.as_deref())
        .map(|s| names.get(s));
}

/// One v1 span: a CLIENT and/or SERVER half (sharing the id), a PRODUCER or CONSUMER, or
/// local work.
fn convert_v1(z: ZSpan, ing: &mut Ingest) {
    let at = |v: &str| z.annotations.iter().find(|a| a.value == v);
    let halves = [
        (SpanKind::Client, at("cs"), at("cr"), "sa"),
        (SpanKind::Server, at("sr"), at("ss"), ""),
        (SpanKind::Producer, at("ms"), at("ws"), "ma"),
        (SpanKind::Consumer, at("wr").or(at("mr")), at("mr"), "ma"),
    ];
    let service_of = |a: Option<&ZAnnotation>, b: Option<&ZAnnotation>| {
        a.or(b)
            .and_then(|x| x.endpoint.as_ref())
            .and_then(|e| e.service_name.clone())
    };
    let mut made = 0;
    for (kind, first, last, remote_key) in halves {
        if first.is_none() && last.is_none() {
            continue;
        }
        let local = service_of(first, last);
        let Some(mut span) = base(&z, local.as_deref(), ing) else {
            ing.missing_ids();
            return;
        };
        span.kind = kind;
        // The annotations' times where they are known, else the span's duration.
        let ts =
            |a: Option<&ZAnnotation>| a.and_then(|a| a.timestamp).map(|t| t.saturating_mul(1000));
        let took = span.end_ns - span.start_ns;
        let start = ts(first).unwrap_or(span.start_ns);
        span.start_ns = start;
        span.end_ns = ts(last)
            .filter(|&e| e >= start)
            .unwrap_or(start.saturating_add(took));
        // The server's peer is its caller, not a node to name.
        let remote = (kind != SpanKind::Server)
            .then(|| z.binary_annotations.iter().find(|b| b.key == remote_key))
            .flatten()
            .and_then(|b| b.endpoint.as_ref());
        if let Some(remote) = remote {
            set_remote(&mut span, remote, ing);
        }
        tags_v1(&z, &mut span, ing);
        ing.span(span);
        made += 1;
    }
    if made == 0 {
        // Local work: the service of the `lc` (local component) annotation, else of any
        // endpoint the span carries.
        let local = z
            .binary_annotations
            .iter()
            .filter(|b| b.key == "lc")
            .chain(z.binary_annotations.iter())
            .filter_map(|b| b.endpoint.as_ref())
            .chain(z.annotations.iter().filter_map(|a| a.endpoint.as_ref()))
            .find_map(|e| e.service_name.clone());
        let Some(mut span) = base(&z, local.as_deref(), ing) else {
            ing.missing_ids();
            return;
        };
        tags_v1(&z, &mut span, ing);
        ing.span(span);
    }
}

/// v1 binary annotations as tags (the address annotations are endpoints, not tags).
fn tags_v1(z: &ZSpan, span: &mut Span, ing: &mut Ingest) {
    for b in &z.binary_annotations {
        if matches!(b.key.as_str(), "sa" | "ca" | "ma") {
            continue;
        }
        let v = match &b.value {
            serde_json::Value::String(s) => AttrValue::Str(s),
            serde_json::Value::Bool(x) => AttrValue::Bool(*x),
            serde_json::Value::Number(n) => n.as_i64().map_or(AttrValue::Other, AttrValue::Int),
            _ => AttrValue::Other,
        };
        apply_attr(span, &b.key, v, ing.names());
    }
}
