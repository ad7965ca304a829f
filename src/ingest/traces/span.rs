//! The owned span record every trace format is converted to, before spans become calls.
//!
//! One record shape for OTLP, Jaeger and Zipkin keeps the pairing logic format-blind. Only
//! the attributes linkrank measures are kept; a path never keeps its query string.

use std::sync::Arc;

use super::shared_strings::SharedStrings;

/// Trace ids are 128 bits in OTLP; 64-bit Jaeger and Zipkin ids are zero-extended.
pub type TraceId = u128;
/// Span ids are 64 bits in every format; 0 is invalid (OTLP) and means "none".
pub type SpanId = u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum SpanKind {
    /// OTLP UNSPECIFIED and INTERNAL, Zipkin spans without a kind: local work.
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    /// OTLP enum numbers (trace.proto `SpanKind`).
    pub fn from_otlp(v: i32) -> SpanKind {
        match v {
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => SpanKind::Internal,
        }
    }

    /// Zipkin `kind` and Jaeger `span.kind` tag values, any case.
    pub fn from_name(s: &str) -> SpanKind {
        if s.eq_ignore_ascii_case("server") {
            SpanKind::Server
        } else if s.eq_ignore_ascii_case("client") {
            SpanKind::Client
        } else if s.eq_ignore_ascii_case("producer") {
            SpanKind::Producer
        } else if s.eq_ignore_ascii_case("consumer") {
            SpanKind::Consumer
        } else {
            SpanKind::Internal
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub enum SpanStatus {
    #[default]
    Unset,
    Ok,
    Error,
}

/// A span link (OTLP `links`, Jaeger FOLLOWS_FROM beyond the parent): the async edge of a
/// batch consumer to the producers it read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SpanLink {
    pub trace_id: TraceId,
    pub span_id: SpanId,
}

/// HTTP/RPC semantic-convention attributes, old and new names folded together.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct HttpAttrs {
    /// `http.request.method` / `http.method`.
    pub method: Option<Arc<str>>,
    /// `http.route` (a template, never contains a query).
    pub route: Option<Arc<str>>,
    /// `url.path` / `http.target` / path of `http.url`, with the query string cut off.
    pub path: Option<Arc<str>>,
    /// `http.response.status_code` / `http.status_code`.
    pub status_code: Option<u16>,
    /// `http.request.body.size` / `http.request_content_length`.
    pub request_body_size: Option<u64>,
    /// `http.response.body.size` / `http.response_content_length`.
    pub response_body_size: Option<u64>,
    /// `network.protocol.version` / `http.flavor`.
    pub protocol_version: Option<Arc<str>>,
    /// `rpc.system` (grpc, thrift, apache_dubbo, connect_rpc, jsonrpc, ...).
    pub rpc_system: Option<Arc<str>>,
    /// `rpc.grpc.status_code` (0 is OK).
    pub grpc_status: Option<u16>,
}

/// What a CLIENT or PRODUCER span says about its peer, to name a virtual node when no
/// SERVER or CONSUMER span answers it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PeerAttrs {
    /// `peer.service`, Zipkin `remoteEndpoint.serviceName`.
    pub peer_service: Option<Arc<str>>,
    /// `server.address`.
    pub server_address: Option<Arc<str>>,
    /// `net.peer.name`.
    pub net_peer_name: Option<Arc<str>>,
    /// `db.system` (`db.system.name` in the newer conventions).
    pub db_system: Option<Arc<str>>,
    /// `db.name` (`db.namespace` in the newer conventions).
    pub db_name: Option<Arc<str>>,
    /// `rpc.service` (`shop.Catalog`).
    pub rpc_service: Option<Arc<str>>,
    /// Host of `url.full` / `http.url` (the rest of the URL is not kept).
    pub url_host: Option<Arc<str>>,
    /// `messaging.system` (kafka, rabbitmq, nats, ...).
    pub messaging_system: Option<Arc<str>>,
    /// `messaging.destination.name` (the old `messaging.destination`): topic, queue,
    /// subject.
    pub messaging_destination: Option<Arc<str>>,
    /// On a SERVER span, the caller's port: `client.port`, else the peer's
    /// (`network.peer.port`, `net.sock.peer.port`, the old `net.peer.port`). It tells one
    /// TCP connection from another when a capture is joined to the spans.
    pub client_port: Option<u16>,
    pub peer_port: Option<u16>,
}

impl PeerAttrs {
    /// The virtual node's name: `peer.service`, `server.address`, `net.peer.name`,
    /// `db.system` with `db.name` (`postgresql/shop`), `rpc.service`, the host of the URL,
    /// `messaging.system`. `peer.service` first: it is the name a team gave the peer,
    /// while the addresses after it may be a load balancer's or a pod's.
    pub(crate) fn node_name(&self, names: &mut SharedStrings) -> Option<Arc<str>> {
        let some = |v: &Option<Arc<str>>| v.as_ref().filter(|s| !s.is_empty()).cloned();
        let db = || {
            let system = some(&self.db_system)?;
            Some(match some(&self.db_name) {
                Some(name) => names.get(&format!("{system}/{name}")),
                None => system,
            })
        };
        some(&self.peer_service)
            .or_else(|| some(&self.server_address))
            .or_else(|| some(&self.net_peer_name))
            .or_else(db)
            .or_else(|| some(&self.rpc_service))
            .or_else(|| some(&self.url_host))
            .or_else(|| some(&self.messaging_system))
    }

    /// The broker of a PRODUCER or CONSUMER span: `messaging.system` (`nats`, `kafka`),
    /// else the peer's name (Zipkin's remote endpoint, `kafka`).
    pub(crate) fn broker_name(&self, names: &mut SharedStrings) -> Option<Arc<str>> {
        (self.messaging_system.as_ref())
            .filter(|s| !s.is_empty())
            .cloned()
            .or_else(|| self.node_name(names))
    }

    /// The virtual node's name, as `node_name` gives it.
    pub fn name(&self) -> Option<String> {
        self.node_name(&mut SharedStrings::default())
            .map(|s| s.to_string())
    }
}

/// One span, owned, whatever the input format.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Span {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    /// `None` for a root span.
    pub parent_span_id: Option<SpanId>,
    /// `service.name` of the resource (OTLP), the process (Jaeger), the local endpoint
    /// (Zipkin). Shared between the spans of one resource.
    pub service: Arc<str>,
    pub kind: SpanKind,
    /// Shared from the reader's interner: span names repeat on most spans.
    pub name: Arc<str>,
    pub start_ns: u64,
    pub end_ns: u64,
    pub status: SpanStatus,
    pub http: HttpAttrs,
    pub peer: PeerAttrs,
    pub links: Vec<SpanLink>,
}

impl Span {
    pub fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }
}

/// Cut the query string and fragment: a path may go into a record, its query never may.
pub fn strip_query(path: &str) -> &str {
    // memchr2: `str::find` with a char-array pattern is per-char and showed in profiles.
    let end = memchr::memchr2(b'?', b'#', path.as_bytes()).unwrap_or(path.len());
    // Both are ASCII, so `end` is a char boundary.
    &path[..end]
}

/// Host of an absolute URL (`scheme://[user@]host[:port]/...`), without port or userinfo.
pub fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    (!host.is_empty()).then_some(host)
}

/// Path of an absolute URL, query cut: `http.url` on old instrumentations.
pub fn url_path(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let start = rest.find('/')?;
    let path = strip_query(&rest[start..]);
    (!path.is_empty()).then_some(path)
}

/// Typed attribute value as the readers see it, borrowed so nothing is copied until a
/// key is known to be wanted.
#[derive(Clone, Copy, Debug)]
pub enum AttrValue<'a> {
    Str(&'a str),
    Int(i64),
    Bool(bool),
    Other,
}

impl AttrValue<'_> {
    fn as_u64(&self) -> Option<u64> {
        match *self {
            AttrValue::Int(i) => u64::try_from(i).ok(),
            AttrValue::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// The value as shared text: these attributes repeat on most spans.
    fn as_text(&self, names: &mut SharedStrings) -> Option<Arc<str>> {
        match *self {
            AttrValue::Str(s) => Some(names.get(s)),
            AttrValue::Int(i) => Some(names.get(&i.to_string())),
            AttrValue::Bool(b) => Some(names.get(if b { "true" } else { "false" })),
            AttrValue::Other => None,
        }
    }
}

/// Folds one attribute into the span's kept fields; returns false when the key is not
/// one linkrank keeps (the caller may then look at format-specific keys).
pub(crate) fn apply_attr(
    span: &mut Span,
    key: &str,
    v: AttrValue<'_>,
    names: &mut SharedStrings,
) -> bool {
    fold_attr(
        &mut span.http,
        &mut span.peer,
        &mut span.status,
        key,
        v,
        names,
    )
}

/// `apply_attr` on the parts of a span, for a reader that folds attributes while it
/// parses, before the span exists (`otlp/fast.rs`).
pub(crate) fn fold_attr(
    h: &mut HttpAttrs,
    p: &mut PeerAttrs,
    status: &mut SpanStatus,
    key: &str,
    v: AttrValue<'_>,
    names: &mut SharedStrings,
) -> bool {
    match key {
        "http.request.method" | "http.method" => h.method = v.as_text(names),
        "http.route" => {
            h.route = match v {
                AttrValue::Str(r) => Some(names.get(strip_query(r))),
                _ => v.as_text(names),
            }
        }
        "url.path" | "http.path" | "http.target" => {
            if let AttrValue::Str(s) = v {
                // Not interned: paths carry ids, one allocation each.
                h.path = Some(Arc::from(strip_query(s)));
            }
        }
        "http.response.status_code" | "http.status_code" => {
            h.status_code = v.as_u64().and_then(|c| u16::try_from(c).ok())
        }
        "http.request.body.size" | "http.request_content_length" => {
            h.request_body_size = v.as_u64()
        }
        "http.response.body.size" | "http.response_content_length" => {
            h.response_body_size = v.as_u64()
        }
        "network.protocol.version" => h.protocol_version = v.as_text(names),
        "http.flavor" => {
            if h.protocol_version.is_none() {
                h.protocol_version = v.as_text(names);
            }
        }
        "rpc.system" => h.rpc_system = v.as_text(names),
        "rpc.grpc.status_code" => h.grpc_status = v.as_u64().and_then(|c| u16::try_from(c).ok()),
        "rpc.jsonrpc.error_code" | "rpc.connect_rpc.error_code" => {
            // Set only when the call failed (the RPC conventions).
            if !matches!(v, AttrValue::Other) {
                *status = SpanStatus::Error;
            }
        }
        "rpc.service" => p.rpc_service = v.as_text(names),
        "db.name" | "db.namespace" => p.db_name = v.as_text(names),
        "messaging.destination.name" | "messaging.destination" => {
            p.messaging_destination = v.as_text(names)
        }
        "peer.service" => p.peer_service = v.as_text(names),
        "server.address" => p.server_address = v.as_text(names),
        "net.peer.name" => p.net_peer_name = v.as_text(names),
        "client.port" => p.client_port = v.as_u64().and_then(|x| u16::try_from(x).ok()),
        "network.peer.port" | "net.sock.peer.port" | "net.peer.port" => {
            p.peer_port = v.as_u64().and_then(|x| u16::try_from(x).ok())
        }
        "db.system" | "db.system.name" => p.db_system = v.as_text(names),
        "messaging.system" => p.messaging_system = v.as_text(names),
        "url.full" | "http.url" => {
            if let AttrValue::Str(s) = v {
                p.url_host = url_host(s).map(|x| names.get(x));
                if h.path.is_none() {
                    h.path = url_path(s).map(Arc::from);
                }
            }
        }
        "error" => {
            // OpenTracing's `error=true` tag (Jaeger, Zipkin): the span failed.
            let failed = match v {
                AttrValue::Bool(b) => b,
                AttrValue::Str(s) => !s.eq_ignore_ascii_case("false"),
                _ => false,
            };
            if failed {
                *status = SpanStatus::Error;
            }
        }
        "otel.status_code" => {
            if let AttrValue::Str(s) = v {
                if s.eq_ignore_ascii_case("error") {
                    *status = SpanStatus::Error;
                } else if s.eq_ignore_ascii_case("ok") {
                    *status = SpanStatus::Ok;
                }
            }
        }
        _ => return false,
    }
    true
}
