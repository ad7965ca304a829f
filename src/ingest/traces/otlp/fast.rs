//! Fast path for OTLP/JSON lines: the same JSON read into borrowed structs that mirror
//! opentelemetry-proto's serde field by field, so no `String` is allocated per attribute
//! key and value, ids are decoded straight to integers, and `intValue` is not buffered
//! through serde's untagged-enum `Content` (the reference's `AnyValue` is `flatten`ed,
//! which buffers every attribute value).
//!
//! Why a second parser: opentelemetry-proto's own types top out near 330,000 spans/s on
//! one core before any conversion (docs/traces.md, Speed), below the 500,000 spans/s
//! we aim for.
//! The reference path (`ExportTraceServiceRequest`) stays the arbiter: a line this parser
//! rejects for any reason (an escaped id, a `bytesValue`, anything malformed) is read
//! again by the reference path, which then decides and words the error. A line it
//! accepts must give the spans the reference gives: every field the reference reads is
//! read here with the same rules (hex with optional `0x`, 64-bit integers as numbers or
//! strings, `null` meaning absent, last value of an `AnyValue` winning, unknown keys
//! ignored); the cold fields (resource, scope, events, links, status) use the reference
//! types themselves. tests.rs checks both paths give identical spans on every corpus
//! OTLP file, on the bench generator's output and on crafted edge cases.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::{ArrayValue, InstrumentationScope, KeyValueList};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, Status};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::convert::{service_name, span_of, Head, SpanSink};
use crate::ingest::traces::ids::bytes_id;
use crate::ingest::traces::shared_strings::SharedStrings;
use crate::ingest::traces::span::{fold_attr, AttrValue, HttpAttrs, PeerAttrs, Span, SpanStatus};

/// One line's spans, converted as they are parsed into buffers kept from line to line
/// (no vector of parsed spans is built and grown per scope). A span's service is only
/// known once its resource is read, which may come after the spans: `resources` holds
/// each resource with the end of its spans in `spans`, and `drain_into` names them
/// unless the resource came first (as exporters write it). Spans without valid ids are
/// only counted, so a line of `{}` spans holds no memory.
pub(crate) struct Parsed {
    spans: Vec<Span>,
    missing_ids: u64,
    resources: Vec<(usize, Naming)>,
    /// Service of the spans being read, when their resource came before them.
    service: Option<Arc<str>>,
    /// Service of a span until `drain_into` sets its resource's.
    unnamed: Arc<str>,
}

/// Whether a resource's spans have their service yet.
enum Naming {
    Named,
    /// The resource came after its spans (or there was none).
    Later(Option<Resource>),
}

impl Default for Parsed {
    fn default() -> Self {
        Parsed {
            spans: Vec::new(),
            missing_ids: 0,
            resources: Vec::new(),
            service: None,
            unnamed: Arc::from(""),
        }
    }
}

impl Parsed {
    /// Parses one line; false hands it to the reference path (nothing is kept). Repeated
    /// strings (span names, attribute values) are shared through `names`.
    pub fn parse(&mut self, line: &[u8], names: &mut SharedStrings) -> bool {
        self.spans.clear();
        self.missing_ids = 0;
        self.resources.clear();
        // One UTF-8 check of the whole line is cheaper than serde_json's check per string.
        let ok = std::str::from_utf8(line).is_ok_and(|text| {
            let mut de = serde_json::Deserializer::from_str(text);
            let cx = VisitContext { out: self, names };
            RequestSeed(cx).deserialize(&mut de).is_ok() && de.end().is_ok()
        });
        if !ok {
            self.spans.clear();
            self.missing_ids = 0;
            self.resources.clear();
        }
        ok
    }

    /// Hands the spans of the last line parsed to `sink`, named after their resources.
    pub fn drain_into(&mut self, sink: &mut impl SpanSink) {
        let mut spans = self.spans.drain(..);
        let mut at = 0;
        for (end, naming) in self.resources.drain(..) {
            let spans = spans.by_ref().take(end - at);
            match naming {
                Naming::Named => spans.for_each(|span| sink.push(Some(span))),
                Naming::Later(resource) => {
                    let service = sink.service(service_name(resource.as_ref()));
                    for mut span in spans {
                        span.service = Arc::clone(&service);
                        sink.push(Some(span));
                    }
                }
            }
            at = end;
        }
        for _ in 0..std::mem::take(&mut self.missing_ids) {
            sink.push(None);
        }
    }
}

/// What the visitors write to: the line's spans, and the interner of repeated strings.
struct VisitContext<'p> {
    out: &'p mut Parsed,
    names: &'p mut SharedStrings,
}

impl VisitContext<'_> {
    fn re(&mut self) -> VisitContext<'_> {
        VisitContext {
            out: &mut *self.out,
            names: &mut *self.names,
        }
    }
}

/// The visitors below follow what serde's derive does for opentelemetry-proto's
/// `ExportTraceServiceRequest`, `ResourceSpans`, `ScopeSpans` and `Span` (`default`
/// structs, camelCase keys): a missing field is empty, an unknown one ignored, a repeated
/// one an error. A struct given as a JSON array, which the derive also reads, is handed
/// over. Keys are matched as field identifiers and strings read as `Text`, so a line
/// allocates nothing per key or value (serde's `Cow<str>` is always owned outside a
/// derive's `#[serde(borrow)]` field).
fn once<E: de::Error>(seen: &mut bool, field: &'static str) -> Result<(), E> {
    if std::mem::replace(seen, true) {
        return Err(E::duplicate_field(field));
    }
    Ok(())
}

/// A JSON string, borrowed from the line unless it has escapes.
pub(crate) struct Text<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum RequestKey {
    ResourceSpans,
    /// Jaeger's api_v3 wraps each `TracesData` in `{"result": ...}`.
    Result,
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum ResourceSpansKey {
    Resource,
    ScopeSpans,
    SchemaUrl,
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum ScopeSpansKey {
    Scope,
    Spans,
    SchemaUrl,
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum SpanKey {
    TraceId,
    SpanId,
    TraceState,
    ParentSpanId,
    Flags,
    Name,
    Kind,
    StartTimeUnixNano,
    EndTimeUnixNano,
    Attributes,
    DroppedAttributesCount,
    Events,
    DroppedEventsCount,
    Links,
    DroppedLinksCount,
    Status,
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum AnyKey {
    StringValue,
    BoolValue,
    IntValue,
    DoubleValue,
    ArrayValue,
    KvlistValue,
    BytesValue,
    #[serde(other)]
    Other,
}

struct RequestSeed<'p>(VisitContext<'p>);

impl<'de> DeserializeSeed<'de> for RequestSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RequestSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("struct ExportTraceServiceRequest")
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let (mut seen, mut seen_result) = (false, false);
        while let Some(key) = map.next_key::<RequestKey>()? {
            match key {
                RequestKey::ResourceSpans => {
                    once(&mut seen, "resourceSpans")?;
                    map.next_value_seed(EachSeed(self.0.re(), ResourceSeed))?;
                }
                RequestKey::Result => {
                    once(&mut seen_result, "result")?;
                    map.next_value_seed(RequestSeed(self.0.re()))?;
                }
                RequestKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A JSON array whose elements are read by the seed `S` into `Parsed`.
struct EachSeed<'p, S>(VisitContext<'p>, S);

/// An element reader of `EachSeed`.
trait ElementSeed: Copy {
    fn next<'de, A: SeqAccess<'de>>(
        self,
        cx: VisitContext<'_>,
        seq: &mut A,
    ) -> Result<bool, A::Error>;
}

impl<'de, S: ElementSeed> DeserializeSeed<'de> for EachSeed<'_, S> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, S: ElementSeed> Visitor<'de> for EachSeed<'_, S> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sequence")
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        while self.1.next(self.0.re(), &mut seq)? {}
        Ok(())
    }
}

#[derive(Clone, Copy)]
struct ResourceSeed;

impl ElementSeed for ResourceSeed {
    fn next<'de, A: SeqAccess<'de>>(
        self,
        cx: VisitContext<'_>,
        seq: &mut A,
    ) -> Result<bool, A::Error> {
        seq.next_element_seed(ResourceSpansSeed(cx))
            .map(|o| o.is_some())
    }
}

struct ResourceSpansSeed<'p>(VisitContext<'p>);

impl<'de> DeserializeSeed<'de> for ResourceSpansSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ResourceSpansSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("struct ResourceSpans")
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let (mut seen_resource, mut seen_scopes, mut seen_schema) = (false, false, false);
        let mut resource = None;
        self.0.out.service = None;
        while let Some(key) = map.next_key::<ResourceSpansKey>()? {
            match key {
                ResourceSpansKey::Resource => {
                    once(&mut seen_resource, "resource")?;
                    resource = map.next_value::<Option<Resource>>()?;
                    if !seen_scopes {
                        // Spans read from here on get their service as they are read.
                        let name = service_name(resource.as_ref());
                        self.0.out.service = Some(self.0.names.get(name));
                    }
                }
                ResourceSpansKey::ScopeSpans => {
                    once(&mut seen_scopes, "scopeSpans")?;
                    map.next_value_seed(EachSeed(self.0.re(), ScopeSeed))?;
                }
                ResourceSpansKey::SchemaUrl => {
                    once(&mut seen_schema, "schemaUrl")?;
                    map.next_value::<Text<'de>>()?;
                }
                ResourceSpansKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let out = &mut *self.0.out;
        let naming = match out.service.take() {
            Some(_) => Naming::Named,
            None => Naming::Later(resource),
        };
        out.resources.push((out.spans.len(), naming));
        Ok(())
    }
}

#[derive(Clone, Copy)]
struct ScopeSeed;

impl ElementSeed for ScopeSeed {
    fn next<'de, A: SeqAccess<'de>>(
        self,
        cx: VisitContext<'_>,
        seq: &mut A,
    ) -> Result<bool, A::Error> {
        seq.next_element_seed(ScopeSpansSeed(cx))
            .map(|o| o.is_some())
    }
}

struct ScopeSpansSeed<'p>(VisitContext<'p>);

impl<'de> DeserializeSeed<'de> for ScopeSpansSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ScopeSpansSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("struct ScopeSpans")
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let (mut seen_scope, mut seen_spans, mut seen_schema) = (false, false, false);
        while let Some(key) = map.next_key::<ScopeSpansKey>()? {
            match key {
                ScopeSpansKey::Scope => {
                    once(&mut seen_scope, "scope")?;
                    map.next_value::<Option<InstrumentationScope>>()?;
                }
                ScopeSpansKey::Spans => {
                    once(&mut seen_spans, "spans")?;
                    map.next_value_seed(EachSeed(self.0.re(), SpanSeed))?;
                }
                ScopeSpansKey::SchemaUrl => {
                    once(&mut seen_schema, "schemaUrl")?;
                    map.next_value::<Text<'de>>()?;
                }
                ScopeSpansKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
struct SpanSeed;

impl ElementSeed for SpanSeed {
    fn next<'de, A: SeqAccess<'de>>(
        self,
        cx: VisitContext<'_>,
        seq: &mut A,
    ) -> Result<bool, A::Error> {
        let VisitContext { out, names } = cx;
        let fields = SpanFields {
            names,
            service: out.service.as_ref().unwrap_or(&out.unnamed),
            spans: &mut out.spans,
            missing_ids: &mut out.missing_ids,
        };
        Ok(seq.next_element_seed(fields)?.is_some())
    }
}

/// opentelemetry-proto `Span` to a `Span` pushed to `spans` (only counted without valid
/// ids; pushed here rather than returned, so the large `Span` is moved once): hot fields
/// borrowed, attributes folded as they are parsed (`fold_attr`, in array order, as the
/// reference path's `apply_attr` loop does), so no attribute is stored. Fields never
/// used are still parsed so a line is checked as the reference checks it.
struct SpanFields<'p> {
    names: &'p mut SharedStrings,
    /// The resource's service, or a stand-in until `drain_into` names it.
    service: &'p Arc<str>,
    spans: &'p mut Vec<Span>,
    missing_ids: &'p mut u64,
}

impl<'de> DeserializeSeed<'de> for SpanFields<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for SpanFields<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("struct Span")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let names = self.names;
        let mut seen = [false; 16];
        let mut trace_id = HexId::<16>(None);
        let (mut span_id, mut parent_span_id) = (HexId::<8>(None), HexId::<8>(None));
        let mut name: Option<Text<'de>> = None;
        let mut kind = 0i32;
        let (mut start, mut end) = (0u64, 0u64);
        let mut attrs = Attrs::default();
        let mut links: Vec<span::Link> = Vec::new();
        let mut status: Option<Status> = None;
        while let Some(key) = map.next_key::<SpanKey>()? {
            let (i, field) = match key {
                SpanKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                SpanKey::TraceId => (0, "traceId"),
                SpanKey::SpanId => (1, "spanId"),
                SpanKey::TraceState => (2, "traceState"),
                SpanKey::ParentSpanId => (3, "parentSpanId"),
                SpanKey::Flags => (4, "flags"),
                SpanKey::Name => (5, "name"),
                SpanKey::Kind => (6, "kind"),
                SpanKey::StartTimeUnixNano => (7, "startTimeUnixNano"),
                SpanKey::EndTimeUnixNano => (8, "endTimeUnixNano"),
                SpanKey::Attributes => (9, "attributes"),
                SpanKey::DroppedAttributesCount => (10, "droppedAttributesCount"),
                SpanKey::Events => (11, "events"),
                SpanKey::DroppedEventsCount => (12, "droppedEventsCount"),
                SpanKey::Links => (13, "links"),
                SpanKey::DroppedLinksCount => (14, "droppedLinksCount"),
                SpanKey::Status => (15, "status"),
            };
            once(&mut seen[i], field)?;
            match key {
                SpanKey::TraceId => trace_id = map.next_value()?,
                SpanKey::SpanId => span_id = map.next_value()?,
                SpanKey::ParentSpanId => parent_span_id = map.next_value()?,
                SpanKey::Name => name = Some(map.next_value()?),
                SpanKey::Kind => kind = map.next_value()?,
                SpanKey::StartTimeUnixNano => start = map.next_value::<U64OrString>()?.0,
                SpanKey::EndTimeUnixNano => end = map.next_value::<U64OrString>()?.0,
                SpanKey::Attributes => attrs = map.next_value_seed(AttrsSeed(&mut *names))?,
                SpanKey::Links => links = map.next_value()?,
                SpanKey::Status => status = map.next_value()?,
                SpanKey::TraceState => {
                    map.next_value::<Text<'de>>()?;
                }
                SpanKey::Events => {
                    map.next_value::<Vec<span::Event>>()?;
                }
                SpanKey::Flags
                | SpanKey::DroppedAttributesCount
                | SpanKey::DroppedEventsCount
                | SpanKey::DroppedLinksCount => {
                    map.next_value::<u32>()?;
                }
                SpanKey::Other => {}
            }
        }
        let head = Head {
            trace_id: trace_id.0,
            span_id: span_id.0,
            parent_span_id: parent_span_id.0,
            kind,
            start_ns: start,
            end_ns: end,
            status: status.as_ref(),
            links: &links,
        };
        let name = names.get(name.as_ref().map_or("", |n| &n.0));
        match span_of(head, name, self.service) {
            Some(mut span) => {
                span.http = attrs.http;
                span.peer = attrs.peer;
                if attrs.status != SpanStatus::Unset {
                    span.status = attrs.status;
                }
                self.spans.push(span);
            }
            None => *self.missing_ids += 1,
        }
        Ok(())
    }
}

/// A span's attributes, folded.
#[derive(Default)]
struct Attrs {
    http: HttpAttrs,
    peer: PeerAttrs,
    /// Set by `error` / `otel.status_code` attributes, which override the span's own
    /// status; `Unset` when none did (those attributes never set `Unset`).
    status: SpanStatus,
}

/// A span's `attributes` array, folded as it is read.
struct AttrsSeed<'p>(&'p mut SharedStrings);

impl<'de> DeserializeSeed<'de> for AttrsSeed<'_> {
    type Value = Attrs;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Attrs, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for AttrsSeed<'_> {
    type Value = Attrs;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sequence")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Attrs, A::Error> {
        let mut a = Attrs::default();
        while let Some(kv) = seq.next_element::<FastKeyValue<'de>>()? {
            fold_attr(
                &mut a.http,
                &mut a.peer,
                &mut a.status,
                &kv.key,
                kv.attr(),
                self.0,
            );
        }
        Ok(a)
    }
}

/// opentelemetry-proto `KeyValue`: `key` is required there too (no `default`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
// Fields never read are still parsed so a line is checked as the reference checks it.
#[allow(dead_code)]
struct FastKeyValue<'a> {
    #[serde(borrow)]
    key: Cow<'a, str>,
    #[serde(borrow)]
    value: Option<FastAnyValue<'a>>,
    #[serde(default)]
    key_strindex: i32,
}

impl FastKeyValue<'_> {
    fn attr(&self) -> AttrValue<'_> {
        match self.value.as_ref().and_then(|v| v.0.as_ref()) {
            Some(AttrJson::Str(s)) => AttrValue::Str(s),
            Some(AttrJson::Int(i)) => AttrValue::Int(*i),
            Some(AttrJson::Bool(b)) => AttrValue::Bool(*b),
            Some(AttrJson::Other) | None => AttrValue::Other,
        }
    }
}

enum AttrJson<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    Bool(bool),
    /// double, array, kvlist: read (and so checked) but not kept.
    Other,
}

/// opentelemetry-proto `AnyValue` (its `serializers::deserialize_from_value`): the last
/// known key with a non-null value wins, unknown keys are ignored.
struct FastAnyValue<'a>(Option<AttrJson<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for FastAnyValue<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(AnyVisitor(std::marker::PhantomData))
    }
}

struct AnyVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for AnyVisitor<'a> {
    type Value = FastAnyValue<'a>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object for AnyValue")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut value = None;
        while let Some(key) = map.next_key::<AnyKey>()? {
            let v = match key {
                AnyKey::StringValue => map
                    .next_value::<Option<Text<'de>>>()?
                    .map(|t| AttrJson::Str(t.0)),
                AnyKey::BoolValue => map.next_value::<Option<bool>>()?.map(AttrJson::Bool),
                AnyKey::IntValue => map
                    .next_value::<Option<I64OrString>>()?
                    .map(|i| AttrJson::Int(i.0)),
                AnyKey::DoubleValue => map.next_value::<Option<f64>>()?.map(|_| AttrJson::Other),
                AnyKey::ArrayValue => map
                    .next_value::<Option<ArrayValue>>()?
                    .map(|_| AttrJson::Other),
                AnyKey::KvlistValue => map
                    .next_value::<Option<KeyValueList>>()?
                    .map(|_| AttrJson::Other),
                // Base64 is checked by the reference path only: rare, so hand it over.
                AnyKey::BytesValue => return Err(de::Error::custom("bytesValue: reference path")),
                AnyKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                    None
                }
            };
            if v.is_some() {
                value = v;
            }
        }
        Ok(FastAnyValue(value))
    }
}

/// An id as the reference path reads it (`ids::bytes_id`: hex as opentelemetry-proto's
/// `const_hex::decode` takes it, or base64 of exactly `N` bytes; anything else fails the
/// document), kept as an integer when it has exactly `N` bytes, else `None` (missing or
/// malformed id, which the converter counts).
#[derive(Default, Clone, Copy)]
pub(crate) struct HexId<const N: usize>(pub Option<u128>);

impl<'de, const N: usize> Deserialize<'de> for HexId<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(HexVisitor::<N>)
    }
}

struct HexVisitor<const N: usize>;

impl<const N: usize> Visitor<'_> for HexVisitor<N> {
    type Value = HexId<N>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string representing hex-encoded bytes")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<HexId<N>, E> {
        bytes_id(s.as_bytes(), N)
            .map(HexId)
            .ok_or_else(|| E::custom("invalid id: neither hex nor base64"))
    }
}

/// opentelemetry-proto `deserialize_string_to_u64`: a u64, a non-negative i64, or a
/// string holding a u64.
#[derive(Default, Clone, Copy)]
pub(crate) struct U64OrString(pub u64);

impl<'de> Deserialize<'de> for U64OrString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = U64OrString;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a u64 integer or a string containing a u64 integer")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<U64OrString, E> {
                Ok(U64OrString(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<U64OrString, E> {
                u64::try_from(v).map(U64OrString).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<U64OrString, E> {
                s.parse().map(U64OrString).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// The reference's untagged `StringOrInt` for `intValue`: an integer in i64 range, or a
/// string that parses as one.
struct I64OrString(i64);

impl<'de> Deserialize<'de> for I64OrString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = I64OrString;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an i64 or a string containing one")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<I64OrString, E> {
                Ok(I64OrString(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<I64OrString, E> {
                i64::try_from(v).map(I64OrString).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<I64OrString, E> {
                s.parse().map(I64OrString).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::convert::{convert, SpanSink};
    use super::Parsed;
    use crate::ingest::traces::ids::bytes_id;
    use crate::ingest::traces::shared_strings::SharedStrings;
    use crate::ingest::traces::span::Span;

    #[derive(Default)]
    struct Collect(Vec<Option<Span>>, SharedStrings);

    impl SpanSink for Collect {
        fn names(&mut self) -> &mut SharedStrings {
            &mut self.1
        }
        fn push(&mut self, span: Option<Span>) {
            self.0.push(span);
        }
    }

    fn reference(line: &[u8]) -> Option<Vec<Option<Span>>> {
        let req = super::super::reference::request(line).ok()?;
        let mut c = Collect::default();
        req.resource_spans
            .into_iter()
            .for_each(|rs| convert(rs, &mut c));
        Some(c.0)
    }

    fn fast(line: &[u8]) -> Option<Vec<Option<Span>>> {
        let mut p = Parsed::default();
        if !p.parse(line, &mut SharedStrings::default()) {
            return None;
        }
        let mut c = Collect::default();
        p.drain_into(&mut c);
        Some(c.0)
    }

    /// Spans kept, in order, and how many had no valid ids: what the assembler sees.
    fn split(v: Vec<Option<Span>>) -> (Vec<Span>, usize) {
        let missing = v.iter().filter(|s| s.is_none()).count();
        (v.into_iter().flatten().collect(), missing)
    }

    /// The fast path either hands the line over (false) or gives exactly the reference's
    /// spans and missing-id count (true).
    fn agree(line: &[u8]) -> bool {
        let Some(f) = fast(line).map(split) else {
            return false;
        };
        let r = reference(line).map(split);
        assert_eq!(
            r.as_ref(),
            Some(&f),
            "fast path disagrees on {}",
            String::from_utf8_lossy(line)
        );
        true
    }

    fn corpus(name: &str) -> PathBuf {
        crate::testing::corpus::path(name)
    }

    #[test]
    fn fast_path_gives_the_reference_spans_on_every_corpus_otlp_file() {
        if !crate::testing::corpus::require() {
            return;
        }
        let mut docs: Vec<Vec<u8>> = [
            "otelproto_examples_trace.json",
            "jaeger_storage_example_trace_otlp.json",
        ]
        .iter()
        .map(|f| std::fs::read(corpus(f)).unwrap())
        .collect();
        let lines = std::fs::read(corpus("jaegerui_otlp2jaeger-multi-in.jsonl")).unwrap();
        docs.extend(
            lines
                .split(|&b| b == b'\n')
                .filter(|l| !l.trim_ascii().is_empty())
                .map(<[u8]>::to_vec),
        );
        let mut spans = 0;
        for d in &docs {
            assert!(
                agree(d),
                "fast path rejected {}",
                String::from_utf8_lossy(d)
            );
            spans += fast(d).unwrap().len();
        }
        // Counted with Python's json module: sum of len(spans) over the three files.
        assert_eq!(spans, 10);
    }

    #[test]
    fn fast_path_gives_the_reference_spans_on_the_bench_generator_output() {
        if !crate::testing::corpus::require() {
            return;
        }
        let text = crate::ingest::traces::tests::bench_spans(5000);
        let mut spans = 0;
        for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            assert!(agree(line));
            spans += fast(line).unwrap().len();
        }
        // make_spans.py writes whole batches of 512 spans: 10 lines for 5000.
        assert_eq!(spans, 5120);
    }

    /// One span line: `fields` (raw JSON values) replace the default fields of the same
    /// name (a name given twice is written twice), `value` is the first attribute's value.
    fn line(fields: &[(&str, &str)], value: &str) -> Vec<u8> {
        let attrs = format!(
            r#"[{{"key":"http.request.method","value":{value}}},{{"key":"http.route","value":{{"stringValue":"/r?q=1"}}}}]"#
        );
        let defaults = [
            ("traceId", r#""0102030405060708090a0b0c0d0e0f10""#),
            ("spanId", r#""1112131415161718""#),
            ("name", r#""GET /x""#),
            ("kind", "2"),
            ("startTimeUnixNano", r#""100""#),
            ("endTimeUnixNano", r#""200""#),
            ("attributes", attrs.as_str()),
        ];
        let span: Vec<String> = defaults
            .iter()
            .filter(|(k, _)| !fields.iter().any(|(f, _)| f == k))
            .chain(fields)
            .map(|(k, v)| format!(r#""{k}":{v}"#))
            .collect();
        format!(
            r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"svc"}}}}]}},"scopeSpans":[{{"spans":[{{{}}}]}}]}}]}}"#,
            span.join(",")
        )
        .into_bytes()
    }

    #[test]
    fn fast_path_agrees_or_hands_over_on_edge_cases() {
        let s = r#"{"stringValue":"GET"}"#;
        // Each of these must be read by the fast path itself, and read right.
        let accepted = [
            line(&[], s),
            line(&[("traceId", r#""0X0102030405060708090A0B0C0D0E0F10""#)], s),
            line(&[("spanId", r#""0x11121314""#)], s),
            line(&[("spanId", r#""""#)], s),
            line(&[("parentSpanId", r#""0000000000000000""#)], s),
            line(&[("parentSpanId", r#""abcdef0123456789""#)], s),
            line(&[("traceId", r#""00000000000000000000000000000000""#)], s),
            line(&[("startTimeUnixNano", r#"300"#)], s),
            line(&[("endTimeUnixNano", r#""18446744073709551615""#)], s),
            line(&[("status", r#"{"code":2,"message":"m"}"#)], s),
            line(&[("status", r#"null"#)], s),
            line(
                &[
                    ("kind", r#"5"#),
                    ("flags", r#"257"#),
                    ("traceState", r#""a=b""#),
                ],
                s,
            ),
            line(&[("name", r#""caf\u00e9 \"q\"""#)], s),
            line(
                &[(
                    "events",
                    r#"[{"timeUnixNano":"5","name":"e","attributes":[]}]"#,
                )],
                s,
            ),
            line(
                &[(
                    "links",
                    r#"[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"2122232425262728"}]"#,
                )],
                s,
            ),
            line(&[("unknownField", r#"{"deep":[1,2,{"x":null}]}"#)], s),
            line(&[], r#"{"stringValue":null}"#),
            line(&[], r#"{"intValue":"42"}"#),
            line(&[], r#"{"intValue":-42}"#),
            line(&[], r#"{"boolValue":true}"#),
            line(&[], r#"{"doubleValue":1.5}"#),
            line(&[], r#"{"doubleValue":2}"#),
            line(&[], r#"{"arrayValue":{"values":[{"stringValue":"a"}]}}"#),
            line(
                &[],
                r#"{"kvlistValue":{"values":[{"key":"k","value":{"intValue":1}}]}}"#,
            ),
            line(&[], r#"{"stringValue":"a","intValue":"7"}"#),
            line(&[], r#"{"intValue":"7","stringValue":null}"#),
            line(&[], r#"{"other":[1],"stringValue":"PUT"}"#),
            line(&[], "null"),
            line(&[], "{}"),
            line(
                &[(
                    "attributes",
                    r#"[{"key":"error","value":{"boolValue":true}},{"key":"otel.status_code","value":{"stringValue":"OK"}}]"#,
                )],
                s,
            ),
            line(
                &[
                    ("status", r#"{"code":1}"#),
                    (
                        "attributes",
                        r#"[{"key":"error","value":{"stringValue":"yes"}}]"#,
                    ),
                ],
                s,
            ),
            line(
                &[(
                    "attributes",
                    r#"[{"value":{"stringValue":"x"},"key":"url.full"},{"key":"http.url","value":{"stringValue":"http://h:1/p?q"}}]"#,
                )],
                s,
            ),
        ];
        for l in &accepted {
            assert!(agree(l), "handed over: {}", String::from_utf8_lossy(l));
        }
        // Base64 ids (protobuf's JSON mapping of bytes) and Jaeger api_v3's wrapper.
        let b64 = [
            line(&[("traceId", r#""AQIDBAUGBwgJCgsMDQ4PEA==""#)], s),
            line(&[("traceId", r#""AQIDBAUGBwgJCgsMDQ4PEA""#)], s),
            line(
                &[
                    ("spanId", r#""ERITFBUWFxg=""#),
                    ("parentSpanId", r#""-_8AAAAAAAE""#),
                ],
                s,
            ),
            format!(
                r#"{{"result":{}}}"#,
                String::from_utf8(line(&[("spanId", r#""ERITFBUWFxg=""#)], s)).unwrap()
            )
            .into_bytes(),
        ];
        let plain = fast(&line(&[], s)).unwrap();
        for l in &b64 {
            assert!(agree(l), "handed over: {}", String::from_utf8_lossy(l));
        }
        // The same ids in base64 give the same spans as in hex.
        assert_eq!(fast(&b64[0]).unwrap(), plain);
        assert_eq!(fast(&b64[3]).unwrap(), plain);
        // Links are read by opentelemetry-proto's types on the fast path too: base64 in
        // them hands the line over, and the reference path reads it.
        let linked = line(
            &[(
                "links",
                r#"[{"traceId":"AQIDBAUGBwgJCgsMDQ4PEA==","spanId":"ERITFBUWFxg="}]"#,
            )],
            s,
        );
        agree(&linked);
        let (spans, _) = split(reference(&linked).unwrap());
        assert_eq!(spans[0].links[0].span_id, 0x1112131415161718);

        // A resource before its spans names them as they are read, one after them names
        // them when the line is handed over, none gives the SDK default: all as the
        // reference names them.
        let one = String::from_utf8(line(&[], s)).unwrap();
        let rs = one
            .strip_prefix(r#"{"resourceSpans":["#)
            .and_then(|r| r.strip_suffix("]}"))
            .unwrap();
        let (resource, scopes) = rs
            .strip_prefix('{')
            .and_then(|r| r.strip_suffix('}'))
            .and_then(|r| r.split_once(r#","scopeSpans""#))
            .unwrap();
        let after = format!(r#"{{"scopeSpans"{scopes},{resource}}}"#);
        let none = format!(r#"{{"scopeSpans"{scopes}}}"#);
        let orders = format!(r#"{{"resourceSpans":[{rs},{after},{none},{rs}]}}"#);
        assert!(agree(orders.as_bytes()), "handed over: {orders}");
        let services: Vec<String> = fast(orders.as_bytes())
            .unwrap()
            .into_iter()
            .flatten()
            .map(|s| s.service.to_string())
            .collect();
        assert_eq!(services, ["svc", "svc", "unknown_service", "svc"]);
        // Spans without ids are counted, whatever their place among kept spans.
        let mixed = line(&[], s);
        let mixed = String::from_utf8(mixed)
            .unwrap()
            .replace(r#""spans":[{"#, r#""spans":[{},{"#);
        // The line ends with the closing of spans, scope, scopeSpans, resource, request.
        let tail = "]}]}]}";
        let mixed = format!("{},{{}}{tail}", mixed.strip_suffix(tail).unwrap());
        assert!(agree(mixed.as_bytes()));
        assert_eq!(
            fast(mixed.as_bytes()).map(split).map(|(k, m)| (k.len(), m)),
            Some((1, 2))
        );
        // Either handed over or read identically; the reference rejects most of these.
        let other = [
            line(&[("traceId", r#""0102030405060708090a0b0c0d0e0f1""#)], s),
            line(&[("traceId", r#""zz02030405060708090a0b0c0d0e0f10""#)], s),
            line(&[("spanId", r#""AQIDBAUGBwgJCgsMDQ4PEA==""#)], s),
            line(&[("traceId", r#""ERITFBUWFxg=""#)], s),
            line(&[("traceId", r#"null"#)], s),
            line(&[("traceId", r#"12"#)], s),
            line(&[("spanId", r#""\u0031112131415161718""#)], s),
            line(&[("startTimeUnixNano", r#"-1"#)], s),
            line(&[("startTimeUnixNano", r#"1.5"#)], s),
            line(&[("startTimeUnixNano", r#""1e3""#)], s),
            line(&[("startTimeUnixNano", r#""18446744073709551616""#)], s),
            line(&[("kind", r#""SPAN_KIND_SERVER""#)], s),
            line(&[("kind", r#"2.0"#)], s),
            line(&[("name", r#"null"#)], s),
            line(&[("name", r#""a""#), ("name", r#""b""#)], s),
            line(&[("attributes", r#"null"#)], s),
            line(&[("attributes", r#"{}"#)], s),
            line(&[("attributes", r#"[{"value":{"stringValue":"x"}}]"#)], s),
            line(&[("attributes", r#"[{"key":null}]"#)], s),
            line(&[("status", r#"{"code":"2"}"#)], s),
            line(&[("events", r#"[{"timeUnixNano":"x"}]"#)], s),
            line(&[("links", r#"[{"spanId":"123"}]"#)], s),
            line(&[], r#"{"intValue":"9223372036854775808"}"#),
            line(&[], r#"{"intValue":9223372036854775808}"#),
            line(&[], r#"{"intValue":1.5}"#),
            line(&[], r#"{"intValue":"x"}"#),
            line(&[], r#"{"stringValue":5}"#),
            line(&[], r#"{"boolValue":"true"}"#),
            line(&[], r#"{"bytesValue":"aGk="}"#),
            line(&[], r#"{"bytesValue":"!!"}"#),
            line(&[], r#"{"arrayValue":{"values":[{"intValue":"x"}]}}"#),
            line(&[], r#"{"doubleValue":"NaN"}"#),
            line(&[], r#""GET""#),
            line(&[], "[]"),
            b"{}".to_vec(),
            b"{\"resourceSpans\":null}".to_vec(),
            b"{\"resourceSpans\":[]} x".to_vec(),
            b"{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"\xff\"}]}]}]}".to_vec(),
        ];
        for l in &other {
            agree(l);
        }
    }

    #[test]
    fn hex_ids_follow_const_hex() {
        // opentelemetry-proto's own id deserializer (const_hex) is the oracle. None of
        // these has the length of a span id in base64 (11 or 12 characters).
        for s in [
            "",
            "0x",
            "0X",
            "00",
            "0x00",
            "abc",
            "0xabc",
            "zz",
            "0g",
            "ABCDEF12",
            "0xABCDEF12",
            "+1",
            "0x0x",
            "00000000000000ff",
            "0x00000000000000ff",
            " 1",
            "é1",
        ] {
            let reference = const_hex_decode(s);
            let fast8 = bytes_id(s.as_bytes(), 8);
            assert_eq!(fast8.is_some(), reference.is_some(), "{s:?}");
            if let (Some(f), Some(r)) = (fast8, reference) {
                let want =
                    (r.len() == 8).then(|| r.iter().fold(0u128, |a, &b| (a << 8) | u128::from(b)));
                assert_eq!(f, want, "{s:?}");
            }
        }
    }

    fn const_hex_decode(s: &str) -> Option<Vec<u8>> {
        let doc = format!(r#"{{"spanId":"{s}"}}"#);
        serde_json::from_str::<opentelemetry_proto::tonic::trace::v1::Span>(&doc)
            .ok()
            .map(|sp| sp.span_id)
    }
}
