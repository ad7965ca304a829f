//! The `exchanges` table: one row per HTTP request/response exchange.

use polars::prelude::*;

use super::columns;
use crate::model::Exchange;
use crate::model::Symbols;

/// Column name, polars type, meaning. The single source of the table's documentation:
/// `docs/tables.md` is checked against it by a test.
pub const COLUMNS: &[(&str, &str, &str)] = &[
    (columns::CONN_ID, "u64", "connection id, unique within one run (joins `connections.conn_id`)"),
    (columns::INDEX, "u32", "0-based position of the exchange on its connection"),
    (columns::CLIENT_IP, "str", "client IP address"),
    (columns::CLIENT_PORT, "u32", "client TCP port"),
    (columns::SERVER_IP, "str", "server IP address"),
    (columns::SERVER_PORT, "u32", "server TCP port"),
    (columns::VERSION, "str", "HTTP version of the request (`HTTP/1.0`, `HTTP/1.1`, `HTTP/2`)"),
    (columns::METHOD, "str?", "request method; null when only the response was captured"),
    (columns::ROUTE, "str?", "request path without query, identifiers templated as `{id}`"),
    (
        columns::QUERY_NAMES,
        "str?",
        "names of the query's parameters, sorted and comma-separated (`customer_id,page`); never a value; names of `name=value` items only (a bare item may be a token), names that look like data dropped; null without a query",
    ),
    (columns::STATUS, "u32?", "final response status code; null when no response was seen"),
    (columns::REQ_FIRST_NS, "i64?", "capture time of the request's first byte, ns since the Unix epoch"),
    (columns::REQ_LAST_NS, "i64?", "capture time of the request's last byte"),
    (columns::RESP_FIRST_NS, "i64?", "capture time of the response's first byte (final response, not 1xx)"),
    (columns::RESP_LAST_NS, "i64?", "capture time of the response's last byte"),
    (columns::REQ_HEADER_BYTES, "u64", "request line and headers on the wire, including the blank line"),
    (columns::REQ_BODY_BYTES, "u64", "request body on the wire (chunk framing and trailers included)"),
    (columns::RESP_HEADER_BYTES, "u64", "status line and headers on the wire (1xx responses included)"),
    (columns::RESP_BODY_BYTES, "u64", "response body on the wire (chunk framing and trailers included)"),
    (columns::REQ_BODY_LEN, "u64", "request body length without chunk framing"),
    (columns::RESP_BODY_LEN, "u64", "response body length without chunk framing"),
    (columns::REQ_BODY_DECODED_LEN, "u64?", "request body length after gzip/deflate decoding; null when not encoded"),
    (columns::RESP_BODY_DECODED_LEN, "u64?", "response body length after gzip/deflate decoding; null when not encoded"),
    (columns::REQ_CONTENT_TYPE, "str?", "request media type (parameters dropped)"),
    (columns::RESP_CONTENT_TYPE, "str?", "response media type (parameters dropped)"),
    (columns::REQ_CONTENT_ENCODING, "str?", "request Content-Encoding"),
    (columns::RESP_CONTENT_ENCODING, "str?", "response Content-Encoding"),
    (columns::HOST, "str?", "Host header"),
    (columns::TRACE_ID, "str?", "trace id (32 hex digits) from W3C traceparent, else B3 (64-bit ids zero-extended), else X-Request-Id (a UUID as it is, any other value hashed)"),
    (columns::PARENT_SPAN_ID, "str?", "the caller's span id (16 hex digits) from traceparent or B3; null for X-Request-Id"),
    (columns::REQ_HEADER_NAMES, "str", "request header names in wire order, lower-case, comma-separated (never values)"),
    (columns::RESP_HEADER_NAMES, "str", "response header names in wire order, lower-case, comma-separated"),
    (columns::INTERIM_RESPONSES, "u32", "1xx responses before the final response"),
    (columns::EXPECT_CONTINUE, "bool", "the request carried `Expect: 100-continue`"),
    (columns::CHUNKED_REQUEST, "bool", "the request body was chunked"),
    (columns::CHUNKED_RESPONSE, "bool", "the response body was chunked"),
    (columns::CLOSE_DELIMITED, "bool", "the response body ended with the connection"),
    (columns::UPGRADE, "str?", "protocol the connection switched to after this exchange (`websocket`, `h2c`, `tunnel`, ...)"),
    (columns::COMPLETENESS, "str", "`complete`, `gap`, `no_response`, `truncated` or `response_only`"),
    (columns::REQ_HEADER_BYTES_H2, "u64?", "the request's headers as HTTP/2 HEADERS frames (HPACK replayed over the connection); null when the header block was not seen whole"),
    (columns::RESP_HEADER_BYTES_H2, "u64?", "the response's headers (1xx included) as HTTP/2 HEADERS frames; null when a header block was not seen whole"),
    (columns::REQ_HEADER_BYTES_GRPC, "u64?", "all gRPC framing of the request as a unary call: HEADERS frame, DATA frame header, 5-byte message prefix"),
    (columns::RESP_HEADER_BYTES_GRPC, "u64?", "all gRPC framing of the response: HEADERS, DATA frame header, message prefix, trailers HEADERS"),
    (columns::REQ_DATA_FRAME_BYTES_H2, "u64?", "DATA frame headers HTTP/2 adds to the request body (9 per 16384 bytes, 0 without a body)"),
    (columns::RESP_DATA_FRAME_BYTES_H2, "u64?", "DATA frame headers HTTP/2 adds to the response body"),
    (columns::REQ_STALL_NS, "i64?", "the longest sender stall inside the request, ns: the client sent part of it, sent nothing for at least 10 ms while waiting for the server's ACK, and sent the rest right after that ACK (Nagle's algorithm against a delayed ACK); null when none"),
    (columns::RESP_STALL_NS, "i64?", "the longest sender stall inside the response (1xx included), ns: the server's writes held until the client's ACK came; null when none"),
    (columns::TLS_DECRYPTED, "bool?", "read from TLS application data decrypted with the key log (`--keylog` or the capture's Decryption Secrets Blocks); false for exchanges read in clear; null in tables written before decryption existed"),
    (columns::EXCHANGE_PROTOCOL, "str?", "what the exchange spoke: `http/1.0`, `http/1.1`, `h2c` (HTTP/2 in clear), `grpc` (over HTTP/2) or `grpc-web` (over HTTP/1.1)"),
    (columns::STREAM_ID, "u32?", "HTTP/2 stream id; null for HTTP/1"),
    (columns::REQ_HEADER_DECODED_BYTES, "u64?", "HTTP/2: the request's header fields decoded (name + value + 32 each, RFC 9113 §6.5.2), trailers included, of the fields whose HPACK entry was known; `req_header_bytes` is then the HEADERS and CONTINUATION frames on the wire"),
    (columns::RESP_HEADER_DECODED_BYTES, "u64?", "HTTP/2: the same for the response (1xx and trailers included)"),
    (columns::REQ_DATA_FRAMES, "u32?", "HTTP/2: DATA frames of the request; `req_body_bytes` is their bytes on the wire (frame headers and padding included), `req_body_len` their data"),
    (columns::RESP_DATA_FRAMES, "u32?", "HTTP/2: DATA frames of the response"),
    (columns::PADDING_BYTES, "u64?", "HTTP/2: padding of the stream's DATA, HEADERS and PUSH_PROMISE frames, both ways (pad length octets included)"),
    (columns::TRAILERS, "bool?", "HTTP/2: the response ended with a trailers block"),
    (columns::HPACK_UNKNOWN_FIELDS, "u32?", "HTTP/2: header fields naming an HPACK table entry the capture never saw inserted (it began mid-connection, or lost a header block); decoded as unknown"),
    (columns::HEADERS_COMPLETE, "bool?", "HTTP/2: every header block of the stream, the request's included, was seen and decoded with every field known"),
    (columns::STREAM_ERROR, "str?", "HTTP/2: `rst_client:CODE` or `rst_server:CODE` (an RST_STREAM before the stream ended; NO_ERROR after a whole response is not one), or `goaway_refused` (above a GOAWAY's last stream id)"),
    (columns::GRPC_STATUS, "u32?", "gRPC status code from the trailers (or a trailers-only response, or a gRPC-Web trailers frame)"),
    (columns::GRPC_MESSAGE_SENT, "bool?", "gRPC: a non-empty `grpc-message` came with the status (its text is free and never kept)"),
    (columns::GRPC_ENCODING, "str?", "gRPC `grpc-encoding` (message compression) of the request, else of the response"),
    (columns::REQ_GRPC_MESSAGES, "u32?", "gRPC length-prefixed messages the client sent; null when the call's start was not captured"),
    (columns::RESP_GRPC_MESSAGES, "u32?", "gRPC messages the server sent"),
    (columns::REQ_GRPC_MESSAGE_BYTES, "u64?", "bytes of the client's gRPC messages (their 5-byte prefixes excluded)"),
    (columns::RESP_GRPC_MESSAGE_BYTES, "u64?", "bytes of the server's gRPC messages"),
    (columns::GRPC_COMPRESSED_MESSAGES, "u32?", "gRPC messages sent with the compressed flag, both ways"),
    (columns::GRPC_CALL_KIND, "str?", "`unary`, `server_streaming`, `client_streaming` or `bidi_streaming`, from the messages each side sent (a bidirectional call that sent one each way reads as unary)"),
    (columns::GRPC_TIMEOUT_NS, "i64?", "the call's deadline from `grpc-timeout`, ns"),
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
    query_names: Vec<Option<u32>>,
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
    req_stall_ns: Vec<Option<i64>>,
    tls_decrypted: Vec<Option<bool>>,
    resp_stall_ns: Vec<Option<i64>>,
    h2: super::h2::H2ExchangeColumns,
}

impl ExchangeColumns {
    pub fn len(&self) -> usize {
        self.conn_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conn_id.is_empty()
    }

    pub fn push(&mut self, mut x: Exchange, strings: &mut Symbols) {
        self.conn_id.push(x.conn.0);
        self.index.push(x.index);
        self.client_ip.push(strings.intern_ip(x.client.ip));
        self.client_port.push(u32::from(x.client.port));
        self.server_ip.push(strings.intern_ip(x.server.ip));
        self.server_port.push(u32::from(x.server.port));
        self.version.push(strings.intern(x.version));
        self.method.push(strings.intern_opt(x.method.as_deref()));
        self.route.push(strings.intern_opt(x.route.as_deref()));
        self.query_names
            .push(strings.intern_opt(x.query_names.as_deref()));
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
        self.trace_id.push(x.trace_id.take());
        self.parent_span_id.push(x.parent_span_id.take());
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
        self.req_stall_ns.push(x.req_stall_ns);
        self.resp_stall_ns.push(x.resp_stall_ns);
        self.tls_decrypted.push(Some(x.tls_decrypted));
        self.h2.push(&x);
    }

    /// Builds the DataFrame, consuming the columns.
    pub fn into_frame(self, strings: &Symbols) -> PolarsResult<DataFrame> {
        let height = self.conn_id.len();
        let mut columns = vec![
            Column::new(columns::CONN_ID.into(), self.conn_id),
            Column::new(columns::INDEX.into(), self.index),
            Column::new(columns::CLIENT_IP.into(), strings.resolve(self.client_ip)),
            Column::new(columns::CLIENT_PORT.into(), self.client_port),
            Column::new(columns::SERVER_IP.into(), strings.resolve(self.server_ip)),
            Column::new(columns::SERVER_PORT.into(), self.server_port),
            Column::new(columns::VERSION.into(), strings.resolve(self.version)),
            Column::new(columns::METHOD.into(), strings.resolve_opt(self.method)),
            Column::new(columns::ROUTE.into(), strings.resolve_opt(self.route)),
            Column::new(
                columns::QUERY_NAMES.into(),
                strings.resolve_opt(self.query_names),
            ),
            Column::new(columns::STATUS.into(), self.status),
            Column::new(columns::REQ_FIRST_NS.into(), self.req_first_ns),
            Column::new(columns::REQ_LAST_NS.into(), self.req_last_ns),
            Column::new(columns::RESP_FIRST_NS.into(), self.resp_first_ns),
            Column::new(columns::RESP_LAST_NS.into(), self.resp_last_ns),
            Column::new(columns::REQ_HEADER_BYTES.into(), self.req_header_bytes),
            Column::new(columns::REQ_BODY_BYTES.into(), self.req_body_bytes),
            Column::new(columns::RESP_HEADER_BYTES.into(), self.resp_header_bytes),
            Column::new(columns::RESP_BODY_BYTES.into(), self.resp_body_bytes),
            Column::new(columns::REQ_BODY_LEN.into(), self.req_body_len),
            Column::new(columns::RESP_BODY_LEN.into(), self.resp_body_len),
            Column::new(
                columns::REQ_BODY_DECODED_LEN.into(),
                self.req_body_decoded_len,
            ),
            Column::new(
                columns::RESP_BODY_DECODED_LEN.into(),
                self.resp_body_decoded_len,
            ),
            Column::new(
                columns::REQ_CONTENT_TYPE.into(),
                strings.resolve_opt(self.req_content_type),
            ),
            Column::new(
                columns::RESP_CONTENT_TYPE.into(),
                strings.resolve_opt(self.resp_content_type),
            ),
            Column::new(
                columns::REQ_CONTENT_ENCODING.into(),
                strings.resolve_opt(self.req_content_encoding),
            ),
            Column::new(
                columns::RESP_CONTENT_ENCODING.into(),
                strings.resolve_opt(self.resp_content_encoding),
            ),
            Column::new(columns::HOST.into(), strings.resolve_opt(self.host)),
            Column::new(columns::TRACE_ID.into(), self.trace_id),
            Column::new(columns::PARENT_SPAN_ID.into(), self.parent_span_id),
            Column::new(
                columns::REQ_HEADER_NAMES.into(),
                strings.resolve(self.req_header_names),
            ),
            Column::new(
                columns::RESP_HEADER_NAMES.into(),
                strings.resolve(self.resp_header_names),
            ),
            Column::new(columns::INTERIM_RESPONSES.into(), self.interim_responses),
            Column::new(columns::EXPECT_CONTINUE.into(), self.expect_continue),
            Column::new(columns::CHUNKED_REQUEST.into(), self.chunked_request),
            Column::new(columns::CHUNKED_RESPONSE.into(), self.chunked_response),
            Column::new(columns::CLOSE_DELIMITED.into(), self.close_delimited),
            Column::new(columns::UPGRADE.into(), strings.resolve_opt(self.upgrade)),
            Column::new(
                columns::COMPLETENESS.into(),
                strings.resolve(self.completeness),
            ),
            Column::new(
                columns::REQ_HEADER_BYTES_H2.into(),
                self.req_header_bytes_h2,
            ),
            Column::new(
                columns::RESP_HEADER_BYTES_H2.into(),
                self.resp_header_bytes_h2,
            ),
            Column::new(
                columns::REQ_HEADER_BYTES_GRPC.into(),
                self.req_header_bytes_grpc,
            ),
            Column::new(
                columns::RESP_HEADER_BYTES_GRPC.into(),
                self.resp_header_bytes_grpc,
            ),
            Column::new(
                columns::REQ_DATA_FRAME_BYTES_H2.into(),
                self.req_data_frame_bytes_h2,
            ),
            Column::new(
                columns::RESP_DATA_FRAME_BYTES_H2.into(),
                self.resp_data_frame_bytes_h2,
            ),
            Column::new(columns::REQ_STALL_NS.into(), self.req_stall_ns),
            Column::new(columns::RESP_STALL_NS.into(), self.resp_stall_ns),
            Column::new(columns::TLS_DECRYPTED.into(), self.tls_decrypted),
        ];
        columns.extend(self.h2.into_columns());
        DataFrame::new(height, columns)
    }
}
