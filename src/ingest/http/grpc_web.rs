//! gRPC-Web over HTTP/1.1 (`application/grpc-web`, `+proto`, `+json`): the messages of the
//! bodies and the status, from the response headers (trailers-only) or the trailers frame
//! at the end of the response body. The base64 `-text` forms are recognised as gRPC-Web
//! but their messages are not counted.

use crate::ingest::http::h2::grpc::{self, MessageReader};
use crate::model::{Exchange, GrpcExchange};

/// The `grpc-*` headers of one HTTP/1 head (privacy: `grpc-message` by presence only).
#[derive(Clone, Debug, Default)]
pub(crate) struct GrpcHead {
    pub status: Option<u32>,
    pub message: bool,
    pub timeout_ns: Option<i64>,
    pub encoding: Option<String>,
}

/// One `grpc-*` header (`name` starts with `grpc-`, any case).
pub(crate) fn head_field(slot: &mut Option<Box<GrpcHead>>, name: &str, value: &str) {
    let g = slot.get_or_insert_with(Box::default);
    let n = name.as_bytes();
    let v = value.as_bytes();
    if n.eq_ignore_ascii_case(b"grpc-status") {
        g.status = grpc::parse_status(v);
    } else if n.eq_ignore_ascii_case(b"grpc-message") {
        g.message = !value.trim().is_empty();
    } else if n.eq_ignore_ascii_case(b"grpc-timeout") {
        g.timeout_ns = grpc::parse_timeout(v);
    } else if n.eq_ignore_ascii_case(b"grpc-encoding") {
        g.encoding = grpc::encoding_token(v);
    }
}

/// Whether a media type is gRPC-Web, and a reader for its body when its messages can be
/// counted (not the base64 `-text` forms).
fn web_reader(content_type: Option<&str>) -> Option<Option<Box<MessageReader>>> {
    let t = content_type?;
    (grpc::content_kind(t) == Some(true)).then(|| {
        (!t.starts_with("application/grpc-web-text")).then(|| Box::new(MessageReader::new(true)))
    })
}

/// A request head was read: a gRPC-Web request makes the exchange a gRPC-Web call, and
/// its body's messages are to be counted with the returned reader.
pub(crate) fn request(ex: &mut Exchange, head: Option<&GrpcHead>) -> Option<Box<MessageReader>> {
    let reader = web_reader(ex.req_content_type.as_deref())?;
    let g = ex.grpc.get_or_insert_with(Box::default);
    if let Some(h) = head {
        g.timeout_ns = h.timeout_ns;
        g.encoding = h.encoding.clone();
    }
    reader
}

/// A response head was read (the final one): its `grpc-status` (a trailers-only
/// response), and a reader for a gRPC-Web body.
pub(crate) fn response(ex: &mut Exchange, head: Option<&GrpcHead>) -> Option<Box<MessageReader>> {
    let reader = web_reader(ex.resp_content_type.as_deref());
    if reader.is_none() && ex.grpc.is_none() {
        return None;
    }
    let g = ex.grpc.get_or_insert_with(Box::default);
    if let Some(h) = head.filter(|h| h.status.is_some()) {
        g.status = h.status;
        g.message_sent = h.message;
    }
    if let Some(e) = head.and_then(|h| h.encoding.clone()) {
        g.encoding.get_or_insert(e);
    }
    reader.flatten()
}

/// A body's messages, counted by `reader`, go to the exchange (`request`: which side).
pub(crate) fn body_done(ex: &mut Exchange, request: bool, reader: &MessageReader) {
    let g: &mut GrpcExchange = ex.grpc.get_or_insert_with(Box::default);
    if request {
        g.req_messages = reader.messages;
        g.req_message_bytes = reader.bytes;
    } else {
        g.resp_messages = reader.messages;
        g.resp_message_bytes = reader.bytes;
        let (status, message) = reader.web_status();
        if status.is_some() {
            g.status = status;
            g.message_sent = message;
        }
    }
    g.compressed_messages = g.compressed_messages.saturating_add(reader.compressed);
}
