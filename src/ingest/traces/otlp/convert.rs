//! From `opentelemetry-proto` types to `Span`s: the part the protobuf reader, the JSON
//! document reader and the fast JSON-lines path share.

use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::Link;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, Status};

use crate::ingest::traces::assemble::Ingest;
use crate::ingest::traces::ids::id_from_bytes;
use crate::ingest::traces::shared_strings::SharedStrings;
use crate::ingest::traces::span::{apply_attr, AttrValue, Span, SpanKind, SpanLink, SpanStatus};

/// Name OTel SDKs give a service that did not set one.
const UNKNOWN_SERVICE: &str = "unknown_service";

fn attr_value(kv: &KeyValue) -> AttrValue<'_> {
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => AttrValue::Str(s),
        Some(Value::IntValue(i)) => AttrValue::Int(*i),
        Some(Value::BoolValue(b)) => AttrValue::Bool(*b),
        _ => AttrValue::Other,
    }
}

/// `service.name` of a resource, or the SDK default.
pub(crate) fn service_name(resource: Option<&Resource>) -> &str {
    resource
        .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
        .and_then(|kv| match attr_value(kv) {
            AttrValue::Str(s) if !s.is_empty() => Some(s),
            _ => None,
        })
        .unwrap_or(UNKNOWN_SERVICE)
}

/// Where converted spans go: the assembler, or a test comparing the two JSON paths.
pub(crate) trait SpanSink {
    /// The interner of every repeated string.
    fn names(&mut self) -> &mut SharedStrings;
    /// The shared name of a service.
    fn service(&mut self, name: &str) -> Arc<str> {
        self.names().get(name)
    }
    /// A span, or `None` for one without valid ids (counted and dropped).
    fn push(&mut self, span: Option<Span>);
}

impl SpanSink for Ingest<'_> {
    fn names(&mut self) -> &mut SharedStrings {
        Ingest::names(self)
    }
    fn push(&mut self, span: Option<Span>) {
        match span {
            Some(s) => self.span(s),
            None => self.missing_ids(),
        }
    }
}

/// One resource's spans to `Span`s.
pub(crate) fn convert(rs: ResourceSpans, ing: &mut impl SpanSink) {
    let service = ing.service(service_name(rs.resource.as_ref()));
    for ss in rs.scope_spans {
        for s in ss.spans {
            let head = Head {
                trace_id: id_from_bytes(&s.trace_id, 16),
                span_id: id_from_bytes(&s.span_id, 8),
                parent_span_id: id_from_bytes(&s.parent_span_id, 8),
                kind: s.kind,
                start_ns: s.start_time_unix_nano,
                end_ns: s.end_time_unix_nano,
                status: s.status.as_ref(),
                links: &s.links,
            };
            let name = ing.names().get(&s.name);
            let span = span_of(head, name, &service).map(|mut span| {
                for kv in &s.attributes {
                    apply_attr(&mut span, &kv.key, attr_value(kv), ing.names());
                }
                span
            });
            ing.push(span);
        }
    }
}

/// A span's fields both paths decode the same way; ids already decoded, `None` unless
/// of the right length.
pub(crate) struct Head<'a> {
    pub trace_id: Option<u128>,
    pub span_id: Option<u128>,
    pub parent_span_id: Option<u128>,
    pub kind: i32,
    pub start_ns: u64,
    pub end_ns: u64,
    pub status: Option<&'a Status>,
    pub links: &'a [Link],
}

/// The span without its attributes, which each path folds its own way.
pub(crate) fn span_of(h: Head<'_>, name: Arc<str>, service: &Arc<str>) -> Option<Span> {
    let trace_id = h.trace_id.filter(|&t| t != 0)?;
    let span_id = h.span_id.filter(|&t| t != 0)? as u64;
    // An empty parent is a root; a malformed one too (it could not name a span anyway).
    let parent_span_id = h.parent_span_id.filter(|&p| p != 0).map(|p| p as u64);
    let status = match h.status.map(|st| st.code) {
        Some(1) => SpanStatus::Ok,
        Some(2) => SpanStatus::Error,
        _ => SpanStatus::Unset,
    };
    let links = h
        .links
        .iter()
        .filter_map(|l| {
            Some(SpanLink {
                trace_id: id_from_bytes(&l.trace_id, 16)?,
                span_id: id_from_bytes(&l.span_id, 8)? as u64,
            })
        })
        .collect();
    Some(Span {
        trace_id,
        span_id,
        parent_span_id,
        service: Arc::clone(service),
        kind: SpanKind::from_otlp(h.kind),
        name,
        start_ns: h.start_ns,
        end_ns: h.end_ns.max(h.start_ns),
        status,
        http: Default::default(),
        peer: Default::default(),
        links,
    })
}
