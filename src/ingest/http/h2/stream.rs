//! One HTTP/2 stream: its exchange in the making, the facts its header blocks give, and
//! the gRPC messages of its DATA.

use super::grpc::{self, MessageReader};
use super::hpack::Field;
use crate::ingest::http::detect::is_tchar;
use crate::ingest::http::route;
use crate::ingest::http::trace::TraceHeaders;
use crate::model::{Completeness, Endpoint, Exchange, GrpcExchange, H2Exchange, Timestamp};

const CLIENT: usize = 0;
const SERVER: usize = 1;

/// What one decoded header block says. Values are kept only for the allowlisted headers
/// (docs/engine.md, Privacy); every other header is kept by name.
#[derive(Default)]
pub(crate) struct Block {
    pub method: Option<String>,
    /// `:path` as sent, until [`Block::route`] templates it (never stored as it is).
    path: Option<String>,
    pub authority: Option<String>,
    pub status: Option<u16>,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub grpc_encoding: Option<String>,
    pub grpc_status: Option<u32>,
    pub grpc_message: bool,
    pub grpc_timeout_ns: Option<i64>,
    /// Regular (not pseudo) header names, lower-case, comma-separated.
    pub names: String,
    trace: TraceHeaders,
    pub unknown: u32,
}

impl Block {
    /// Takes one decoded field.
    pub(crate) fn field(&mut self, f: Field<'_>) {
        let Some(name) = f.name else {
            self.unknown += 1;
            return;
        };
        let value = f.value.unwrap_or_default();
        let text = || String::from_utf8_lossy(value);
        match name {
            b":method" => self.method = Some(method_token(value)),
            b":path" => self.path = Some(text().into_owned()),
            b":authority" => self.authority = Some(text().trim().to_ascii_lowercase()),
            b":status" => {
                self.status = std::str::from_utf8(value)
                    .ok()
                    .filter(|v| v.len() == 3)
                    .and_then(|v| v.parse().ok())
            }
            // `:scheme`, `:protocol`, and pseudo-headers RFC 9113 does not define (a
            // malformed block): not header names.
            n if n.starts_with(b":") => {}
            // Not a token (RFC 9110 §5.1): a malformed field, neither named nor read.
            n if n.is_empty() || !n.iter().all(|&c| is_tchar(c)) => {}
            _ => {
                if !self.names.is_empty() {
                    self.names.push(',');
                }
                // HTTP/2 names are lower-case on the wire (RFC 9113 §8.2.1); a peer that
                // breaks that rule still gets its names lower-cased here.
                for &c in name {
                    self.names.push(char::from(c.to_ascii_lowercase()));
                }
                self.regular(name, value);
            }
        }
    }

    fn regular(&mut self, name: &[u8], value: &[u8]) {
        let text = String::from_utf8_lossy(value);
        let v = text.trim();
        let name = String::from_utf8_lossy(name);
        match name.to_ascii_lowercase().as_str() {
            "content-type" => {
                let media = v.split(';').next().unwrap_or("").trim();
                self.content_type
                    .get_or_insert_with(|| media.to_ascii_lowercase());
            }
            "content-encoding" => {
                self.content_encoding.get_or_insert_with(|| v.to_owned());
            }
            "host" => {
                self.authority.get_or_insert_with(|| v.to_ascii_lowercase());
            }
            "grpc-encoding" => self.grpc_encoding = grpc::encoding_token(value),
            "grpc-status" => self.grpc_status = grpc::parse_status(value),
            "grpc-message" => self.grpc_message = !v.is_empty(),
            "grpc-timeout" => self.grpc_timeout_ns = grpc::parse_timeout(value),
            n => {
                self.trace.offer(n, v);
            }
        }
    }
}

impl Block {
    /// The route of `:path`: a gRPC method path (`/package.Service/Method`) as it is, any
    /// other path templated as HTTP/1 routes are.
    fn route(&self) -> Option<String> {
        let p = self.path.as_deref()?;
        let grpc = self
            .content_type
            .as_deref()
            .and_then(grpc::content_kind)
            .is_some();
        Some(match grpc.then(|| route::grpc_method(p)).flatten() {
            Some(r) => r,
            None => route::template(p),
        })
    }
}

/// A method is a token (RFC 9110); anything else is kept as `?` rather than as text.
fn method_token(v: &[u8]) -> String {
    let ok = !v.is_empty() && v.len() <= 20 && v.iter().all(|&c| is_tchar(c));
    if ok {
        String::from_utf8_lossy(v).into_owned()
    } else {
        "?".to_owned()
    }
}

/// A stream and the exchange it becomes.
pub(crate) struct Stream {
    pub ex: Exchange,
    /// Request HEADERS (or the PUSH_PROMISE, or the HTTP/1 upgrade request) seen.
    pub request_seen: bool,
    /// The final (non-1xx) response HEADERS seen.
    pub response_seen: bool,
    /// END_STREAM seen from each side.
    pub ended: [bool; 2],
    /// gRPC messages of each side; set once a header block says `application/grpc`.
    pub grpc: Option<Box<[MessageReader; 2]>>,
    /// gRPC was announced by a content type before any DATA was counted.
    grpc_from_start: [bool; 2],
    /// A header block of this stream was dropped or could not be decoded.
    pub headers_lost: bool,
}

impl Stream {
    pub(crate) fn new(ex: Exchange, id: u32) -> Self {
        let mut ex = ex;
        ex.version = "HTTP/2";
        ex.completeness = Completeness::Complete;
        ex.h2 = Some(Box::new(H2Exchange {
            stream_id: id,
            ..H2Exchange::default()
        }));
        Stream {
            ex,
            request_seen: false,
            response_seen: false,
            ended: [false; 2],
            grpc: None,
            grpc_from_start: [false; 2],
            headers_lost: false,
        }
    }

    pub(crate) fn h2(&mut self) -> &mut H2Exchange {
        self.ex.h2.get_or_insert_with(Box::default)
    }

    /// Whether the stream is over: both sides ended.
    pub(crate) fn done(&self) -> bool {
        self.ended == [true, true]
    }

    /// A decoded header block of side `d` (`wire`: its HEADERS and CONTINUATION frame
    /// bytes; `decoded`: the known fields' size), first frame at `ts`.
    pub(crate) fn headers(&mut self, d: usize, b: Block, wire: u64, decoded: u64, ts: Timestamp) {
        let unknown = b.unknown;
        {
            let h2 = self.h2();
            h2.unknown_fields = h2.unknown_fields.saturating_add(unknown);
        }
        if d == CLIENT {
            self.ex.req_header_bytes += wire;
            self.h2().req_header_decoded += decoded;
            if self.request_seen {
                // Request trailers: only their size matters.
                return;
            }
            self.request_seen = true;
            self.ex.req_first.get_or_insert(ts);
            self.ex.req_last = Some(ts);
            self.ex.route = b.route();
            self.ex.query_names = b.path.as_deref().and_then(route::query_names);
            self.ex.method = b.method;
            self.ex.host = b.authority;
            self.ex.req_content_type = b.content_type;
            self.ex.req_content_encoding = b.content_encoding;
            self.ex.req_header_names = b.names;
            if let Some((t, p)) = b.trace.finish() {
                self.ex.trace_id = Some(t);
                self.ex.parent_span_id = p;
            }
            self.note_grpc(CLIENT, self.ex.req_content_type.clone().as_deref());
            if let Some(g) = self.grpc_mut() {
                g.timeout_ns = b.grpc_timeout_ns;
                g.encoding = b.grpc_encoding;
            }
            return;
        }
        self.ex.resp_header_bytes += wire;
        self.h2().resp_header_decoded += decoded;
        self.ex.resp_first.get_or_insert(ts);
        self.ex.resp_last = Some(ts);
        let interim = b.status.is_some_and(|s| (100..200).contains(&s));
        if self.response_seen || (b.status.is_none() && self.ex.resp_body_bytes > 0) {
            // Trailers.
            self.h2().trailers = true;
        } else if interim {
            self.ex.interim_responses = self.ex.interim_responses.saturating_add(1);
            return;
        } else {
            self.response_seen = true;
            self.ex.status = b.status;
            self.ex.resp_content_type = b.content_type;
            self.ex.resp_content_encoding = b.content_encoding;
            self.ex.resp_header_names = b.names;
            self.note_grpc(SERVER, self.ex.resp_content_type.clone().as_deref());
        }
        if b.grpc_status.is_some() || self.grpc.is_some() {
            if let Some(g) = self.grpc_mut_or_new() {
                if b.grpc_status.is_some() {
                    g.status = b.grpc_status;
                    g.message_sent = b.grpc_message;
                }
                if g.encoding.is_none() {
                    g.encoding = b.grpc_encoding;
                }
            }
        }
    }

    /// A gRPC content type on side `d`'s headers makes this a gRPC call.
    fn note_grpc(&mut self, d: usize, content_type: Option<&str>) {
        if content_type.and_then(grpc::content_kind) == Some(false) {
            if self.grpc.is_none() {
                self.grpc = Some(Box::new([
                    MessageReader::new(false),
                    MessageReader::new(false),
                ]));
                self.ex.grpc = Some(Box::default());
            }
            let body = if d == CLIENT {
                self.ex.req_body_len
            } else {
                self.ex.resp_body_len
            };
            self.grpc_from_start[d] = body == 0;
        }
    }

    fn grpc_mut(&mut self) -> Option<&mut GrpcExchange> {
        self.ex.grpc.as_deref_mut()
    }

    /// A `grpc-status` makes the call gRPC even when its content type was not seen (the
    /// capture began after the request headers, or they named unknown table entries).
    fn grpc_mut_or_new(&mut self) -> Option<&mut GrpcExchange> {
        if self.ex.grpc.is_none() {
            self.ex.grpc = Some(Box::default());
        }
        self.ex.grpc.as_deref_mut()
    }

    /// The stream was read with client and server the wrong way round (only DATA seen so
    /// far, see `H2Conn::check_roles`): what each side sent changes places.
    pub(crate) fn swap_sides(&mut self, client: Endpoint, server: Endpoint) {
        let ex = &mut self.ex;
        ex.client = client;
        ex.server = server;
        std::mem::swap(&mut ex.req_body_bytes, &mut ex.resp_body_bytes);
        std::mem::swap(&mut ex.req_body_len, &mut ex.resp_body_len);
        std::mem::swap(&mut ex.req_first, &mut ex.resp_first);
        std::mem::swap(&mut ex.req_last, &mut ex.resp_last);
        self.ended.swap(0, 1);
        self.grpc_from_start.swap(0, 1);
        if let Some(r) = self.grpc.as_deref_mut() {
            r.swap(0, 1);
        }
        let h2 = self.h2();
        std::mem::swap(&mut h2.req_data_frames, &mut h2.resp_data_frames);
    }

    /// DATA payload bytes of side `d` (padding excluded).
    pub(crate) fn data(&mut self, d: usize, b: &[u8]) {
        if let Some(r) = self.grpc.as_deref_mut() {
            r[d].feed(b);
        }
        if d == CLIENT {
            self.ex.req_body_len += b.len() as u64;
        } else {
            self.ex.resp_body_len += b.len() as u64;
        }
    }

    /// `n` DATA payload bytes of side `d` were not captured.
    pub(crate) fn lose(&mut self, d: usize, n: u64) {
        if let Some(r) = self.grpc.as_deref_mut() {
            r[d].lose(n);
        }
        if d == CLIENT {
            self.ex.req_body_len = self.ex.req_body_len.saturating_add(n);
        } else {
            self.ex.resp_body_len = self.ex.resp_body_len.saturating_add(n);
        }
        self.ex.completeness = Completeness::Gap;
    }

    /// The exchange, with the gRPC counts moved in; `headers_complete` is decided here.
    pub(crate) fn finish(mut self) -> Exchange {
        if let (Some(r), Some(g)) = (self.grpc.take(), self.ex.grpc.as_deref_mut()) {
            let [req, resp] = *r;
            // Message counts are only sure when DATA was followed from a stream's start.
            if self.grpc_from_start[CLIENT] || self.request_seen {
                g.req_messages = req.messages;
                g.req_message_bytes = req.bytes;
            }
            g.resp_messages = resp.messages;
            g.resp_message_bytes = resp.bytes;
            g.compressed_messages = req.compressed.saturating_add(resp.compressed);
        }
        let complete = self.request_seen && !self.headers_lost;
        let h2 = self.h2();
        h2.headers_complete = complete && h2.unknown_fields == 0;
        if !self.request_seen && self.ex.completeness == Completeness::Complete {
            self.ex.completeness = Completeness::ResponseOnly;
        }
        self.ex
    }
}
