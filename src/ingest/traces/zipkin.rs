//! Zipkin v2 JSON: a list of spans (the UI's download, `/api/v2/trace/{id}`) or a list
//! of traces (`/api/v2/traces`), streamed span by span. Small serde structs: Zipkin is
//! not OTLP, so opentelemetry-proto has no types for it.

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
    let local = z
        .local_endpoint
        .as_ref()
        .and_then(|e| e.service_name.as_deref());
    let service = ing.service(local.filter(|s| !s.is_empty()).unwrap_or("unknown_service"));
    let ids = (
        text_id(&z.trace_id).filter(|&t| t != 0),
        text_id(&z.id)
            .and_then(|i| u64::try_from(i).ok())
            .filter(|&i| i != 0),
    );
    let (Some(trace_id), Some(span_id)) = ids else {
        ing.missing_ids();
        return;
    };
    let start_ns = z.timestamp.unwrap_or(0).saturating_mul(1000);
    let mut span = Span {
        trace_id,
        span_id,
        parent_span_id: z
            .parent_id
            .as_deref()
            .and_then(text_id)
            .and_then(|p| u64::try_from(p).ok())
            .filter(|&p| p != 0),
        service,
        kind: z
            .kind
            .as_deref()
            .map_or(SpanKind::Internal, SpanKind::from_name),
        name: ing.names().get(z.name.as_deref().unwrap_or_default()),
        start_ns,
        end_ns: start_ns.saturating_add(z.duration.unwrap_or(0).saturating_mul(1000)),
        status: SpanStatus::Unset,
        http: Default::default(),
        peer: Default::default(),
        links: Vec::new(),
    };
    if let Some(remote) = &z.remote_endpoint {
        let names = ing.names();
        span.peer.peer_service = (remote.service_name.as_deref())
            .filter(|s| !s.is_empty())
            .map(|s| names.get(s));
        span.peer.server_address = (remote.ipv4.as_deref())
            .or(remote.ipv6.as_deref())
            .map(|s| names.get(s));
    }
    for (k, v) in &z.tags {
        apply_attr(&mut span, k, AttrValue::Str(v), ing.names());
    }
    ing.span(span);
}
