//! What each HTTP/1.x header block would cost as HTTP/2 and as gRPC.
//!
//! The header lists of a connection are replayed, in order, through HPACK encoders that
//! count octets ([`hpack`], checked against httlib-hpack) with the default 4096-octet
//! dynamic table: one per direction
//! for HTTP/2 and another pair for gRPC, as one HTTP/2 connection would have. The values
//! are used only inside [`Replay::request`] / [`Replay::response`], while the parser
//! holds them; only sizes come out. See docs/engine.md "h2cost" for the lists built.

mod grpc;
pub mod hpack;
#[cfg(test)]
pub(crate) mod tests;

pub use grpc::{grpc_path, grpc_path_into, grpc_status};
use hpack::{policy, Hpack};

use crate::model::Exchange;

/// An HTTP/2 frame header (RFC 9113 §4.1).
pub const FRAME_HEADER: u64 = 9;
/// SETTINGS_MAX_FRAME_SIZE default (RFC 9113 §6.5.2).
pub const MAX_FRAME_PAYLOAD: u64 = 16384;
/// gRPC length-prefixed message: compressed flag and 4-octet length.
pub const GRPC_PREFIX: u64 = 5;
/// What gRPC stacks (grpc-core, grpc-go with gzip) advertise in every call's headers.
const ACCEPT_ENCODING: &[u8] = b"identity, deflate, gzip";

/// One header block's cost in both protocols, in octets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeadCost {
    /// HEADERS (+ CONTINUATION) frames: HPACK block plus frame headers.
    pub h2: u64,
    /// All gRPC framing of the message: HEADERS, one DATA frame header, the 5-octet
    /// message prefix, and for a response the trailers' HEADERS frame.
    pub grpc: u64,
}

/// A parsed request head, borrowed from the parser for the duration of one call.
pub struct Request<'a> {
    pub method: &'a str,
    /// The request target as sent (query included: HTTP/2 sends it too).
    pub target: &'a str,
    /// The templated route, for the gRPC method name.
    pub route: Option<&'a str>,
    pub headers: &'a [httparse::Header<'a>],
}

/// A parsed response head, borrowed likewise.
pub struct Response<'a> {
    pub status: u16,
    pub reason: &'a str,
    pub headers: &'a [httparse::Header<'a>],
}

const REQ: usize = 0;
const RESP: usize = 1;

/// The HPACK state of one connection: the HTTP/2 and the gRPC encoder of each direction.
pub struct Replay {
    h2: [Hpack; 2],
    grpc: [Hpack; 2],
    /// Scratch: the lower-cased name, the gRPC path.
    name: Vec<u8>,
    path: String,
}

impl Default for Replay {
    fn default() -> Self {
        Self::new()
    }
}

/// Fields HTTP/2 forbids (RFC 9113 §8.2.2), and Host, which becomes `:authority`.
fn connection_specific(name: &[u8], value: &[u8]) -> bool {
    match name {
        b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding" | b"upgrade"
        | b"host" | b"http2-settings" => true,
        b"te" => !value.eq_ignore_ascii_case(b"trailers"),
        _ => false,
    }
}

/// Fields that describe HTTP/1 representation or caching and have no gRPC metadata
/// counterpart (gRPC fixes the content type and frames messages itself). Application
/// metadata (authorization, cookies, user-agent, traceparent, x-...) is kept.
fn http_only(name: &[u8]) -> bool {
    matches!(
        name,
        b"content-type"
            | b"content-length"
            | b"content-encoding"
            | b"accept"
            | b"accept-encoding"
            | b"accept-ranges"
            | b"expect"
            | b"te"
            | b"date"
            | b"server"
            | b"etag"
            | b"last-modified"
            | b"vary"
            | b"cache-control"
            | b"expires"
            | b"age"
    )
}

/// Octets of the HEADERS frame (and CONTINUATION frames) carrying a `block`-octet block.
pub fn headers_frames(block: u64) -> u64 {
    block + FRAME_HEADER * block.div_ceil(MAX_FRAME_PAYLOAD).max(1)
}

/// Octets of DATA frame headers HTTP/2 adds to a `len`-octet body (none without a body).
pub fn data_frames(len: u64) -> u64 {
    FRAME_HEADER * len.div_ceil(MAX_FRAME_PAYLOAD)
}

/// Where an HTTP/2 request takes `:authority` and `:path` from a target: absolute form
/// carries both, origin form only the path.
fn split_target(target: &str) -> (Option<&str>, &str) {
    match target.split_once("://") {
        Some((scheme, rest)) if !scheme.is_empty() && !scheme.contains('/') => {
            match rest.find(['/', '?']) {
                Some(i) if rest.as_bytes().get(i) == Some(&b'/') => (Some(&rest[..i]), &rest[i..]),
                Some(i) => (Some(&rest[..i]), "/"),
                None => (Some(rest), "/"),
            }
        }
        _ => (None, target),
    }
}

fn header_value<'h>(headers: &'h [httparse::Header<'_>], name: &str) -> Option<&'h [u8]> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.trim_ascii())
}

thread_local! {
    /// Replays that closed connections gave back, emptied, kept per thread for the next
    /// connections: a capture of short connections opens one for each, and a new
    /// replay's encoders allocate their tables and first entries again. Boxed as the
    /// connections hold them, so that handing one out allocates nothing.
    #[allow(clippy::vec_box)]
    static RECYCLED: std::cell::RefCell<Vec<Box<Replay>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Replays kept per thread (each holds at most a few KB of spare buffers).
const RECYCLED_MAX: usize = 16;

impl Replay {
    pub fn new() -> Self {
        Replay {
            h2: [Hpack::new(true), Hpack::new(true)],
            grpc: [Hpack::new(true), Hpack::new(true)],
            name: Vec::new(),
            path: String::new(),
        }
    }

    /// A replay in a new one's state: one this thread got back ([`Replay::recycle`]),
    /// else a new one.
    pub fn fresh() -> Box<Replay> {
        RECYCLED.with(|r| r.borrow_mut().pop()).unwrap_or_default()
    }

    /// Empties a closed connection's replay (its encoders as new ones, their buffers
    /// kept) and keeps it for the thread's next connection.
    pub fn recycle(mut self: Box<Self>) {
        for enc in self.h2.iter_mut().chain(&mut self.grpc) {
            enc.clear();
        }
        RECYCLED.with(|r| {
            let mut r = r.borrow_mut();
            if r.len() < RECYCLED_MAX {
                r.push(self);
            }
        });
    }

    /// Dynamic-table octets the four encoders hold (each at most 4096).
    pub fn held_bytes(&self) -> usize {
        self.h2
            .iter()
            .chain(&self.grpc)
            .map(Hpack::held_bytes)
            .sum()
    }

    /// Replays one request head. `Option` for the callers' sake: every head is replayed.
    pub fn request(&mut self, req: &Request<'_>) -> Option<HeadCost> {
        let host = header_value(req.headers, "host");
        let (abs_authority, path) = split_target(req.target);
        let authority = host.or(abs_authority.map(str::as_bytes));

        // HTTP/2 (RFC 9113 §8.3.1; CONNECT §8.5 has only :method and :authority).
        let enc = &mut self.h2[REQ];
        let mut block = enc.field(b":method", req.method.as_bytes(), policy(b":method", false));
        if req.method.eq_ignore_ascii_case("CONNECT") {
            block += enc.field(b":authority", req.target.as_bytes(), hpack::Index::Yes);
        } else {
            block += enc.field(b":scheme", b"http", hpack::Index::Yes);
            if let Some(a) = authority {
                block += enc.field(b":authority", a, hpack::Index::Yes);
            }
            block += enc.field(b":path", path.as_bytes(), policy(b":path", false));
        }
        block += fields(enc, &mut self.name, req.headers, |_| false);
        let h2 = headers_frames(block as u64);

        // gRPC: a unary call carrying the application's metadata.
        let enc = &mut self.grpc[REQ];
        let host_str = host.map(String::from_utf8_lossy);
        grpc_path_into(host_str.as_deref(), req.method, req.route, &mut self.path);
        let mut block = enc.field(b":method", b"POST", hpack::Index::Yes)
            + enc.field(b":scheme", b"http", hpack::Index::Yes)
            + enc.field(b":path", self.path.as_bytes(), policy(b":path", true));
        if let Some(a) = authority {
            block += enc.field(b":authority", a, hpack::Index::Yes);
        }
        block += enc.field(b"te", b"trailers", hpack::Index::Yes)
            + enc.field(b"content-type", b"application/grpc", hpack::Index::Yes)
            + enc.field(b"grpc-accept-encoding", ACCEPT_ENCODING, hpack::Index::Yes)
            + fields(enc, &mut self.name, req.headers, http_only);
        let grpc = headers_frames(block as u64) + FRAME_HEADER + GRPC_PREFIX;
        Some(HeadCost { h2, grpc })
    }

    /// Replays one response head (an interim 1xx one too: HTTP/2 sends it as its own
    /// HEADERS frame; gRPC has none, so it costs nothing there).
    pub fn response(&mut self, resp: &Response<'_>) -> Option<HeadCost> {
        let enc = &mut self.h2[RESP];
        let status = format!("{:03}", resp.status.min(999));
        let block = enc.field(b":status", status.as_bytes(), hpack::Index::Yes)
            + fields(enc, &mut self.name, resp.headers, |_| false);
        let h2 = headers_frames(block as u64);
        if (100..200).contains(&resp.status) {
            return Some(HeadCost { h2, grpc: 0 });
        }

        let enc = &mut self.grpc[RESP];
        let block = enc.field(b":status", b"200", hpack::Index::Yes)
            + enc.field(b"content-type", b"application/grpc", hpack::Index::Yes)
            + enc.field(b"grpc-accept-encoding", ACCEPT_ENCODING, hpack::Index::Yes)
            + fields(enc, &mut self.name, resp.headers, http_only);
        let headers = headers_frames(block as u64);
        // Trailers: grpc-status and grpc-message, which grpc-go and grpc-core send on
        // success too (empty); grpc-core sends the message without indexing, as seen in
        // fixtures/grpc_vs_json.pcap. An error's message is its reason phrase.
        let code = grpc_status(resp.status);
        let msg = if code == 0 { "" } else { resp.reason.trim() };
        let block = enc.field(
            b"grpc-status",
            code.to_string().as_bytes(),
            hpack::Index::Yes,
        ) + enc.field(b"grpc-message", msg.as_bytes(), hpack::Index::No);
        let trailers = headers_frames(block as u64);
        Some(HeadCost {
            h2,
            grpc: headers + FRAME_HEADER + GRPC_PREFIX + trailers,
        })
    }
}

/// The octets of the regular fields of a head with lower-cased names, leaving out the
/// connection-specific ones and those `drop` names.
fn fields(
    enc: &mut Hpack,
    name: &mut Vec<u8>,
    headers: &[httparse::Header<'_>],
    drop: impl Fn(&[u8]) -> bool,
) -> usize {
    let mut octets = 0;
    for h in headers {
        name.clear();
        name.extend(h.name.bytes().map(|c| c.to_ascii_lowercase()));
        let value = h.value.trim_ascii();
        if connection_specific(name, value) || drop(name) {
            continue;
        }
        octets += enc.field(name, value, policy(name, false));
    }
    octets
}

/// Sets a request's figures from its head's cost (`None`: not seen whole or not replayed).
pub fn set_request(ex: &mut Exchange, cost: Option<HeadCost>) {
    ex.req_header_bytes_h2 = cost.map(|c| c.h2);
    ex.req_header_bytes_grpc = cost.map(|c| c.grpc);
}

/// Adds a response head's cost; call before `resp_first` is set, as the first head of
/// an exchange starts the sums. Any head without a cost makes them unknown.
pub fn add_response(ex: &mut Exchange, cost: Option<HeadCost>) {
    let first = ex.resp_first.is_none();
    let add = |slot: Option<u64>, v: Option<u64>| {
        if first {
            v
        } else {
            slot.zip(v).map(|(a, b)| a.saturating_add(b))
        }
    };
    ex.resp_header_bytes_h2 = add(ex.resp_header_bytes_h2, cost.map(|c| c.h2));
    ex.resp_header_bytes_grpc = add(ex.resp_header_bytes_grpc, cost.map(|c| c.grpc));
}

/// The DATA frame headers HTTP/2 would add to each body whose head was replayed.
pub fn finish(ex: &mut Exchange) {
    ex.req_data_frame_bytes_h2 = ex.req_header_bytes_h2.map(|_| data_frames(ex.req_body_len));
    ex.resp_data_frame_bytes_h2 = ex
        .resp_header_bytes_h2
        .map(|_| data_frames(ex.resp_body_len));
}
