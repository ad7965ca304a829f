//! The `exchanges` table: one row per HTTP request/response exchange.

use polars::prelude::*;

use crate::model::Exchange;
use crate::model::Symbols;

/// Column name, polars type, meaning. The single source of the table's documentation:
/// `docs/tables.md` is checked against it by a test.
pub const COLUMNS: &[(&str, &str, &str)] = &[
    ("conn_id", "u64", "connection id, unique within one run (joins `connections.conn_id`)"),
    ("index", "u32", "0-based position of the exchange on its connection"),
    ("client_ip", "str", "client IP address"),
    ("client_port", "u32", "client TCP port"),
    ("server_ip", "str", "server IP address"),
    ("server_port", "u32", "server TCP port"),
    ("version", "str", "HTTP version of the request (`HTTP/1.0`, `HTTP/1.1`)"),
    ("method", "str?", "request method; null when only the response was captured"),
    ("route", "str?", "request path without query, identifiers templated as `{id}`"),
    ("status", "u32?", "final response status code; null when no response was seen"),
    ("req_first_ns", "i64?", "capture time of the request's first byte, ns since the Unix epoch"),
    ("req_last_ns", "i64?", "capture time of the request's last byte"),
    ("resp_first_ns", "i64?", "capture time of the response's first byte (final response, not 1xx)"),
    ("resp_last_ns", "i64?", "capture time of the response's last byte"),
    ("req_header_bytes", "u64", "request line and headers on the wire, including the blank line"),
    ("req_body_bytes", "u64", "request body on the wire (chunk framing and trailers included)"),
    ("resp_header_bytes", "u64", "status line and headers on the wire (1xx responses included)"),
    ("resp_body_bytes", "u64", "response body on the wire (chunk framing and trailers included)"),
    ("req_body_len", "u64", "request body length without chunk framing"),
    ("resp_body_len", "u64", "response body length without chunk framing"),
    ("req_body_decoded_len", "u64?", "request body length after gzip/deflate decoding; null when not encoded"),
    ("resp_body_decoded_len", "u64?", "response body length after gzip/deflate decoding; null when not encoded"),
    ("req_content_type", "str?", "request media type (parameters dropped)"),
    ("resp_content_type", "str?", "response media type (parameters dropped)"),
    ("req_content_encoding", "str?", "request Content-Encoding"),
    ("resp_content_encoding", "str?", "response Content-Encoding"),
    ("host", "str?", "Host header"),
    ("trace_id", "str?", "trace id (32 hex digits) from W3C traceparent, else B3 (64-bit ids zero-extended), else X-Request-Id (a UUID as it is, any other value hashed)"),
    ("parent_span_id", "str?", "the caller's span id (16 hex digits) from traceparent or B3; null for X-Request-Id"),
    ("req_header_names", "str", "request header names in wire order, lower-case, comma-separated (never values)"),
    ("resp_header_names", "str", "response header names in wire order, lower-case, comma-separated"),
    ("interim_responses", "u32", "1xx responses before the final response"),
    ("expect_continue", "bool", "the request carried `Expect: 100-continue`"),
    ("chunked_request", "bool", "the request body was chunked"),
    ("chunked_response", "bool", "the response body was chunked"),
    ("close_delimited", "bool", "the response body ended with the connection"),
    ("upgrade", "str?", "protocol the connection switched to after this exchange (`websocket`, `h2c`, `tunnel`, ...)"),
    ("completeness", "str", "`complete`, `gap`, `no_response`, `truncated` or `response_only`"),
    ("req_header_bytes_h2", "u64?", "the request's headers as HTTP/2 HEADERS frames (HPACK replayed over the connection); null when the header block was not seen whole"),
    ("resp_header_bytes_h2", "u64?", "the response's headers (1xx included) as HTTP/2 HEADERS frames; null when a header block was not seen whole"),
    ("req_header_bytes_grpc", "u64?", "all gRPC framing of the request as a unary call: HEADERS frame, DATA frame header, 5-byte message prefix"),
    ("resp_header_bytes_grpc", "u64?", "all gRPC framing of the response: HEADERS, DATA frame header, message prefix, trailers HEADERS"),
    ("req_data_frame_bytes_h2", "u64?", "DATA frame headers HTTP/2 adds to the request body (9 per 16384 bytes, 0 without a body)"),
    ("resp_data_frame_bytes_h2", "u64?", "DATA frame headers HTTP/2 adds to the response body"),
];

#[derive(Default)]
pub struct ExchangeColumns {
    conn_id: Vec<u64>,
    index: Vec<u32>,
    client_ip: Vec<u32>,
    client_port: Vec<u32>,
    server_ip: Vec<u32>,
    server_port: Vec<u32>,
    version: Vec<u32>,
    method: Vec<Option<u32>>,
    route: Vec<Option<u32>>,
    status: Vec<Option<u32>>,
    req_first_ns: Vec<Option<i64>>,
    req_last_ns: Vec<Option<i64>>,
    resp_first_ns: Vec<Option<i64>>,
    resp_last_ns: Vec<Option<i64>>,
    req_header_bytes: Vec<u64>,
    req_body_bytes: Vec<u64>,
    resp_header_bytes: Vec<u64>,
    resp_body_bytes: Vec<u64>,
    req_body_len: Vec<u64>,
    resp_body_len: Vec<u64>,
    req_body_decoded_len: Vec<Option<u64>>,
    resp_body_decoded_len: Vec<Option<u64>>,
    req_content_type: Vec<Option<u32>>,
    resp_content_type: Vec<Option<u32>>,
    req_content_encoding: Vec<Option<u32>>,
    resp_content_encoding: Vec<Option<u32>>,
    host: Vec<Option<u32>>,
    trace_id: Vec<Option<String>>,
    parent_span_id: Vec<Option<String>>,
    req_header_names: Vec<u32>,
    resp_header_names: Vec<u32>,
    interim_responses: Vec<u32>,
    expect_continue: Vec<bool>,
    chunked_request: Vec<bool>,
    chunked_response: Vec<bool>,
    close_delimited: Vec<bool>,
    upgrade: Vec<Option<u32>>,
    completeness: Vec<u32>,
    req_header_bytes_h2: Vec<Option<u64>>,
    resp_header_bytes_h2: Vec<Option<u64>>,
    req_header_bytes_grpc: Vec<Option<u64>>,
    resp_header_bytes_grpc: Vec<Option<u64>>,
    req_data_frame_bytes_h2: Vec<Option<u64>>,
    resp_data_frame_bytes_h2: Vec<Option<u64>>,
}

impl ExchangeColumns {
    pub fn len(&self) -> usize {
        self.conn_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conn_id.is_empty()
    }

    pub fn push(&mut self, x: &Exchange, strings: &mut Symbols) {
        self.conn_id.push(x.conn.0);
        self.index.push(x.index);
        self.client_ip
            .push(strings.intern(&x.client.ip.to_string()));
        self.client_port.push(u32::from(x.client.port));
        self.server_ip
            .push(strings.intern(&x.server.ip.to_string()));
        self.server_port.push(u32::from(x.server.port));
        self.version.push(strings.intern(x.version));
        self.method.push(strings.intern_opt(x.method.as_deref()));
        self.route.push(strings.intern_opt(x.route.as_deref()));
        self.status.push(x.status.map(u32::from));
        self.req_first_ns.push(x.req_first.map(|t| t.nanos()));
        self.req_last_ns.push(x.req_last.map(|t| t.nanos()));
        self.resp_first_ns.push(x.resp_first.map(|t| t.nanos()));
        self.resp_last_ns.push(x.resp_last.map(|t| t.nanos()));
        self.req_header_bytes.push(x.req_header_bytes);
        self.req_body_bytes.push(x.req_body_bytes);
        self.resp_header_bytes.push(x.resp_header_bytes);
        self.resp_body_bytes.push(x.resp_body_bytes);
        self.req_body_len.push(x.req_body_len);
        self.resp_body_len.push(x.resp_body_len);
        self.req_body_decoded_len.push(x.req_body_decoded_len);
        self.resp_body_decoded_len.push(x.resp_body_decoded_len);
        self.req_content_type
            .push(strings.intern_opt(x.req_content_type.as_deref()));
        self.resp_content_type
            .push(strings.intern_opt(x.resp_content_type.as_deref()));
        self.req_content_encoding
            .push(strings.intern_opt(x.req_content_encoding.as_deref()));
        self.resp_content_encoding
            .push(strings.intern_opt(x.resp_content_encoding.as_deref()));
        self.host.push(strings.intern_opt(x.host.as_deref()));
        self.trace_id.push(x.trace_id.clone());
        self.parent_span_id.push(x.parent_span_id.clone());
        self.req_header_names
            .push(strings.intern(&x.req_header_names));
        self.resp_header_names
            .push(strings.intern(&x.resp_header_names));
        self.interim_responses.push(u32::from(x.interim_responses));
        self.expect_continue.push(x.expect_continue);
        self.chunked_request.push(x.chunked_request);
        self.chunked_response.push(x.chunked_response);
        self.close_delimited.push(x.close_delimited);
        self.upgrade.push(strings.intern_opt(x.upgrade.as_deref()));
        self.completeness
            .push(strings.intern(x.completeness.as_str()));
        self.req_header_bytes_h2.push(x.req_header_bytes_h2);
        self.resp_header_bytes_h2.push(x.resp_header_bytes_h2);
        self.req_header_bytes_grpc.push(x.req_header_bytes_grpc);
        self.resp_header_bytes_grpc.push(x.resp_header_bytes_grpc);
        self.req_data_frame_bytes_h2.push(x.req_data_frame_bytes_h2);
        self.resp_data_frame_bytes_h2
            .push(x.resp_data_frame_bytes_h2);
    }

    /// Builds the DataFrame, consuming the columns.
    pub fn into_frame(self, strings: &Symbols) -> PolarsResult<DataFrame> {
        let height = self.conn_id.len();
        let columns = vec![
            Column::new("conn_id".into(), self.conn_id),
            Column::new("index".into(), self.index),
            Column::new("client_ip".into(), strings.resolve(self.client_ip)),
            Column::new("client_port".into(), self.client_port),
            Column::new("server_ip".into(), strings.resolve(self.server_ip)),
            Column::new("server_port".into(), self.server_port),
            Column::new("version".into(), strings.resolve(self.version)),
            Column::new("method".into(), strings.resolve_opt(self.method)),
            Column::new("route".into(), strings.resolve_opt(self.route)),
            Column::new("status".into(), self.status),
            Column::new("req_first_ns".into(), self.req_first_ns),
            Column::new("req_last_ns".into(), self.req_last_ns),
            Column::new("resp_first_ns".into(), self.resp_first_ns),
            Column::new("resp_last_ns".into(), self.resp_last_ns),
            Column::new("req_header_bytes".into(), self.req_header_bytes),
            Column::new("req_body_bytes".into(), self.req_body_bytes),
            Column::new("resp_header_bytes".into(), self.resp_header_bytes),
            Column::new("resp_body_bytes".into(), self.resp_body_bytes),
            Column::new("req_body_len".into(), self.req_body_len),
            Column::new("resp_body_len".into(), self.resp_body_len),
            Column::new("req_body_decoded_len".into(), self.req_body_decoded_len),
            Column::new("resp_body_decoded_len".into(), self.resp_body_decoded_len),
            Column::new(
                "req_content_type".into(),
                strings.resolve_opt(self.req_content_type),
            ),
            Column::new(
                "resp_content_type".into(),
                strings.resolve_opt(self.resp_content_type),
            ),
            Column::new(
                "req_content_encoding".into(),
                strings.resolve_opt(self.req_content_encoding),
            ),
            Column::new(
                "resp_content_encoding".into(),
                strings.resolve_opt(self.resp_content_encoding),
            ),
            Column::new("host".into(), strings.resolve_opt(self.host)),
            Column::new("trace_id".into(), self.trace_id),
            Column::new("parent_span_id".into(), self.parent_span_id),
            Column::new(
                "req_header_names".into(),
                strings.resolve(self.req_header_names),
            ),
            Column::new(
                "resp_header_names".into(),
                strings.resolve(self.resp_header_names),
            ),
            Column::new("interim_responses".into(), self.interim_responses),
            Column::new("expect_continue".into(), self.expect_continue),
            Column::new("chunked_request".into(), self.chunked_request),
            Column::new("chunked_response".into(), self.chunked_response),
            Column::new("close_delimited".into(), self.close_delimited),
            Column::new("upgrade".into(), strings.resolve_opt(self.upgrade)),
            Column::new("completeness".into(), strings.resolve(self.completeness)),
            Column::new("req_header_bytes_h2".into(), self.req_header_bytes_h2),
            Column::new("resp_header_bytes_h2".into(), self.resp_header_bytes_h2),
            Column::new("req_header_bytes_grpc".into(), self.req_header_bytes_grpc),
            Column::new("resp_header_bytes_grpc".into(), self.resp_header_bytes_grpc),
            Column::new(
                "req_data_frame_bytes_h2".into(),
                self.req_data_frame_bytes_h2,
            ),
            Column::new(
                "resp_data_frame_bytes_h2".into(),
                self.resp_data_frame_bytes_h2,
            ),
        ];
        DataFrame::new(height, columns)
    }
}
