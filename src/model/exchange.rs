//! One HTTP request/response pair: a row of the `exchanges` table.
//!
//! Privacy: only an allowlist of header *values* is kept (Host, Content-Type,
//! Content-Encoding, the trace ids of `traceparent`); every other header is kept by name only.
//! The route has its query removed and its identifiers templated.

use super::{ConnId, Endpoint, Timestamp};

/// How much of the exchange the capture showed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Completeness {
    /// Request and response both seen whole.
    Complete,
    /// A capture gap fell inside the request or response; sizes include the lost bytes
    /// where the framing told us how many there were.
    Gap,
    /// The connection closed or was reset before a response came.
    NoResponse,
    /// The capture (or the connection's state, on eviction) ended mid-exchange.
    Truncated,
    /// Only the response was seen (the capture started after its request).
    ResponseOnly,
}

impl Completeness {
    pub const fn as_str(self) -> &'static str {
        match self {
            Completeness::Complete => "complete",
            Completeness::Gap => "gap",
            Completeness::NoResponse => "no_response",
            Completeness::Truncated => "truncated",
            Completeness::ResponseOnly => "response_only",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Exchange {
    pub conn: ConnId,
    /// 0-based position of this exchange on its connection.
    pub index: u32,
    pub client: Endpoint,
    pub server: Endpoint,
    /// "HTTP/1.0" or "HTTP/1.1" (the request's version; the response's if no request).
    pub version: &'static str,
    pub method: Option<String>,
    /// Path with the query removed and ids templated (`/orders/{id}`).
    pub route: Option<String>,
    /// Names of the query's parameters, sorted, comma-separated (`customer_id,page`);
    /// never a value.
    pub query_names: Option<String>,
    pub status: Option<u16>,
    pub req_first: Option<Timestamp>,
    pub req_last: Option<Timestamp>,
    pub resp_first: Option<Timestamp>,
    pub resp_last: Option<Timestamp>,
    /// Bytes of the request line and headers including the final CRLF CRLF.
    pub req_header_bytes: u64,
    /// Bytes after the header block as on the wire (chunk framing and trailers included).
    pub req_body_bytes: u64,
    pub resp_header_bytes: u64,
    pub resp_body_bytes: u64,
    /// Body length after removing chunked framing (the entity as sent).
    pub req_body_len: u64,
    pub resp_body_len: u64,
    /// Body length after gzip/deflate decoding; None when not content-encoded or undecodable.
    pub req_body_decoded_len: Option<u64>,
    pub resp_body_decoded_len: Option<u64>,
    pub req_content_type: Option<String>,
    pub resp_content_type: Option<String>,
    pub req_content_encoding: Option<String>,
    pub resp_content_encoding: Option<String>,
    pub host: Option<String>,
    /// From a W3C `traceparent` header, else B3, else `X-Request-Id`: 32 hex digits.
    pub trace_id: Option<String>,
    /// The caller's span id from `traceparent` or B3: 16 hex digits (none from
    /// `X-Request-Id`).
    pub parent_span_id: Option<String>,
    /// Header names in wire order, lower-cased, comma-separated (never values).
    pub req_header_names: String,
    pub resp_header_names: String,
    /// 1xx responses before the final one (e.g. `100 Continue`).
    pub interim_responses: u8,
    pub expect_continue: bool,
    pub chunked_request: bool,
    pub chunked_response: bool,
    /// The response ended the connection (close-delimited body).
    pub close_delimited: bool,
    /// Protocol the connection switched to after this exchange (`websocket`, `h2c`, `tunnel`).
    pub upgrade: Option<String>,
    pub completeness: Completeness,
    /// The request's header block as HTTP/2 HEADERS frames (HPACK replayed over the
    /// connection, see `crate::ingest::h2cost`); None when the block was not seen whole.
    pub req_header_bytes_h2: Option<u64>,
    /// Status lines and headers (1xx included) as HTTP/2 HEADERS frames.
    pub resp_header_bytes_h2: Option<u64>,
    /// All gRPC framing of the request as a unary call: HEADERS, DATA frame header, prefix.
    pub req_header_bytes_grpc: Option<u64>,
    /// All gRPC framing of the response: HEADERS, DATA frame header, prefix, trailers.
    pub resp_header_bytes_grpc: Option<u64>,
    /// DATA frame headers HTTP/2 would add to the request body (9 per 16384 octets).
    pub req_data_frame_bytes_h2: Option<u64>,
    pub resp_data_frame_bytes_h2: Option<u64>,
    /// The longest sender stall inside the request (see `crate::ingest::flow::tcp`): the
    /// client had sent part of it, waited for the server's ACK and only then sent the rest.
    pub req_stall_ns: Option<i64>,
    /// The same inside the response (1xx included): the server's writes held back.
    pub resp_stall_ns: Option<i64>,
    /// HTTP/2 facts of the stream that carried the exchange (None for HTTP/1).
    pub h2: Option<Box<H2Exchange>>,
    /// gRPC facts, over HTTP/2 or gRPC-Web (None for other exchanges).
    pub grpc: Option<Box<GrpcExchange>>,
    /// Read from TLS application data decrypted with the run's key log.
    pub tls_decrypted: bool,
}

impl Exchange {
    /// What the exchange spoke: `http/1.0`, `http/1.1`, `h2c` (HTTP/2 in clear: linkrank
    /// reads no other), `grpc` (gRPC over HTTP/2) or `grpc-web` (over HTTP/1.1).
    pub fn protocol(&self) -> &'static str {
        match (&self.h2, &self.grpc) {
            (Some(_), Some(_)) => "grpc",
            (None, Some(_)) => "grpc-web",
            (Some(_), None) => "h2c",
            (None, None) if self.version == "HTTP/1.0" => "http/1.0",
            (None, None) => "http/1.1",
        }
    }
}

/// One HTTP/2 stream's own facts (the `exchanges` columns that only HTTP/2 fills).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct H2Exchange {
    pub stream_id: u32,
    /// Decoded size of the request's header fields (name + value + 32 each, RFC 9113
    /// §6.5.2), of the fields whose table entry was known.
    pub req_header_decoded: u64,
    pub resp_header_decoded: u64,
    pub req_data_frames: u32,
    pub resp_data_frames: u32,
    /// Padding bytes of the stream's DATA, HEADERS and PUSH_PROMISE frames (pad length
    /// octet included), both ways.
    pub padding_bytes: u64,
    /// The response ended with a trailers block (HEADERS after the response's HEADERS).
    pub trailers: bool,
    /// Fields naming an HPACK table entry the capture never saw inserted.
    pub unknown_fields: u32,
    /// Every header block of the stream was seen and decoded with every field known.
    pub headers_complete: bool,
    /// `rst_client:CODE` / `rst_server:CODE` (an RST_STREAM before the stream completed,
    /// NO_ERROR after a whole response excepted), or `goaway_refused` (a GOAWAY's last
    /// stream id was below this stream's).
    pub error: Option<String>,
}

/// One gRPC call's facts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GrpcExchange {
    pub req_messages: u32,
    pub resp_messages: u32,
    /// Sum of the messages' lengths (the 5-byte prefixes excluded).
    pub req_message_bytes: u64,
    pub resp_message_bytes: u64,
    /// Messages sent with the compressed flag, both ways.
    pub compressed_messages: u32,
    /// `grpc-encoding` of the request, else of the response (a coding name only).
    pub encoding: Option<String>,
    /// `grpc-status` of the trailers (or of a trailers-only response).
    pub status: Option<u32>,
    /// A non-empty `grpc-message` came with the status; its text is never kept (free text
    /// that may hold user data).
    pub message_sent: bool,
    /// The deadline the client sent (`grpc-timeout`), in ns.
    pub timeout_ns: Option<i64>,
}

impl Exchange {
    /// An empty exchange on a connection, to be filled in by the protocol parser.
    pub fn new(conn: ConnId, index: u32, client: Endpoint, server: Endpoint) -> Self {
        Exchange {
            conn,
            index,
            client,
            server,
            version: "HTTP/1.1",
            method: None,
            route: None,
            query_names: None,
            status: None,
            req_first: None,
            req_last: None,
            resp_first: None,
            resp_last: None,
            req_header_bytes: 0,
            req_body_bytes: 0,
            resp_header_bytes: 0,
            resp_body_bytes: 0,
            req_body_len: 0,
            resp_body_len: 0,
            req_body_decoded_len: None,
            resp_body_decoded_len: None,
            req_content_type: None,
            resp_content_type: None,
            req_content_encoding: None,
            resp_content_encoding: None,
            host: None,
            trace_id: None,
            parent_span_id: None,
            req_header_names: String::new(),
            resp_header_names: String::new(),
            interim_responses: 0,
            expect_continue: false,
            chunked_request: false,
            chunked_response: false,
            close_delimited: false,
            upgrade: None,
            completeness: Completeness::Complete,
            req_header_bytes_h2: None,
            resp_header_bytes_h2: None,
            req_header_bytes_grpc: None,
            resp_header_bytes_grpc: None,
            req_data_frame_bytes_h2: None,
            resp_data_frame_bytes_h2: None,
            req_stall_ns: None,
            resp_stall_ns: None,
            h2: None,
            grpc: None,
            tls_decrypted: false,
        }
    }
}
