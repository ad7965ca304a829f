//! Unit tests of the HTTP/2 reader: frames built byte by byte, pushed through the HTTP
//! stage as flow events, exchanges checked field by field. Expected sizes come from the
//! built bytes (`len()`), never from the code's output.

use super::frame::{self as f, HEADER_LEN};
use crate::ingest::http::tests::{Harness, S2C};
use crate::ingest::http::HttpConfig;
use crate::model::{CloseReason, Completeness, Exchange, L7Protocol};

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    v.push(kind);
    v.push(flags);
    v.extend_from_slice(&stream.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// HPACK literal without indexing, new name (RFC 7541 §6.2.2), short strings.
fn lit(name: &str, value: &str) -> Vec<u8> {
    let mut v = vec![0x00, name.len() as u8];
    v.extend_from_slice(name.as_bytes());
    v.push(value.len() as u8);
    v.extend_from_slice(value.as_bytes());
    v
}

/// HPACK literal with incremental indexing, new name (§6.2.1).
fn lit_indexed(name: &str, value: &str) -> Vec<u8> {
    let mut v = lit(name, value);
    v[0] = 0x40;
    v
}

/// HPACK indexed field (§6.1), index below 127.
fn idx(i: u8) -> u8 {
    0x80 | i
}

fn settings(pairs: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::new();
    for (id, v) in pairs {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    frame(f::SETTINGS, 0, 0, &p)
}

fn grpc_msg(flag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![flag];
    v.extend_from_slice(&(body.len() as u32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// GET request headers: `:method GET`, `:scheme http`, `:path`, `:authority`.
fn get(path: &str, authority: &str) -> Vec<u8> {
    cat(&[
        &[idx(2), idx(6)],
        &lit(":path", path),
        &lit(":authority", authority),
    ])
}

fn status_200() -> Vec<u8> {
    vec![idx(8)]
}

const EH: u8 = f::END_HEADERS;
const ES: u8 = f::END_STREAM;

fn prior_knowledge() -> Harness {
    let mut h = Harness::new();
    h.c(&cat(&[super::PREFACE, &settings(&[(1, 4096)])]));
    h.s(&settings(&[(5, 32768)]));
    h
}

fn only(exs: &[Exchange]) -> &Exchange {
    assert_eq!(exs.len(), 1, "{exs:#?}");
    &exs[0]
}

#[test]
fn prior_knowledge_get_is_one_exchange_with_every_field() {
    let mut h = prior_knowledge();
    let block = cat(&[
        &get("/orders/12345?secret=1", "orders.internal"),
        &lit(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        &lit("authorization", "Bearer x"),
    ]);
    let req = frame(f::HEADERS, EH | ES, 1, &block);
    h.c(&req);
    let resp_block = cat(&[
        &status_200(),
        &lit("content-type", "application/json; charset=utf-8"),
    ]);
    let resp = cat(&[
        &frame(f::HEADERS, EH, 1, &resp_block),
        &frame(f::DATA, ES, 1, b"{\"ok\":true}"),
    ]);
    h.s(&resp);
    assert_eq!(h.exchanges().len(), 1, "emitted when both sides ended");
    let (exs, conn) = h.close(CloseReason::Fin);
    let e = only(&exs);
    assert_eq!(e.version, "HTTP/2");
    assert_eq!(e.protocol(), "h2c");
    assert_eq!(e.method.as_deref(), Some("GET"));
    assert_eq!(e.route.as_deref(), Some("/orders/{id}"));
    assert_eq!(e.host.as_deref(), Some("orders.internal"));
    assert_eq!(e.status, Some(200));
    assert_eq!(e.resp_content_type.as_deref(), Some("application/json"));
    assert_eq!(
        e.trace_id.as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    assert_eq!(e.req_header_names, "traceparent,authorization");
    assert_eq!(e.req_header_bytes, req.len() as u64);
    assert_eq!(e.resp_header_bytes, (HEADER_LEN + resp_block.len()) as u64);
    assert_eq!(e.resp_body_bytes, (HEADER_LEN + 11) as u64);
    assert_eq!((e.req_body_len, e.resp_body_len), (0, 11));
    assert_eq!(e.completeness, Completeness::Complete);
    let x = e.h2.as_deref().unwrap();
    assert_eq!(x.stream_id, 1);
    assert!(x.headers_complete);
    assert_eq!((x.req_data_frames, x.resp_data_frames), (0, 1));
    // name + value + 32 per field, as decoded.
    let dec = |n: &str, v: &str| (n.len() + v.len() + 32) as u64;
    assert_eq!(
        x.resp_header_decoded,
        dec(":status", "200") + dec("content-type", "application/json; charset=utf-8")
    );
    assert!(e.req_first <= e.req_last && e.req_last < e.resp_first);
    assert_eq!(conn.protocol, L7Protocol::Http2);
    assert_eq!(conn.exchanges, 1);
    let s = conn.h2.as_deref().unwrap();
    assert_eq!(s.found_by, "preface");
    assert_eq!(s.frames[f::SETTINGS as usize], 2);
    assert_eq!(s.frames[f::HEADERS as usize], 2);
    assert_eq!(s.frames[f::DATA as usize], 1);
    assert_eq!(s.header_table_size, [Some(4096), None]);
    assert_eq!(s.max_frame_size, [None, Some(32768)]);
}

/// Two streams whose frames interleave, a header block split by CONTINUATION, padded
/// DATA, and the server's bytes cut at every position into two segments.
#[test]
fn interleaved_streams_continuation_and_padding_at_every_split() {
    let req1 = frame(f::HEADERS, EH | ES, 1, &get("/a", "h"));
    let req3 = frame(f::HEADERS, EH | ES, 3, &get("/b", "h"));
    let big = cat(&[&status_200(), &lit("x-long", &"v".repeat(100))]);
    let (first, rest) = big.split_at(40);
    let mut padded = vec![4u8];
    padded.extend_from_slice(b"hello");
    padded.extend_from_slice(&[0; 4]);
    let server = cat(&[
        &frame(f::HEADERS, 0, 3, first),
        &frame(f::CONTINUATION, EH, 3, rest),
        &frame(f::HEADERS, EH, 1, &status_200()),
        &frame(f::DATA, f::PADDED, 1, &padded),
        &frame(f::DATA, ES, 3, b"three"),
        &frame(f::DATA, ES, 1, b"!"),
    ]);
    for cut in 0..=server.len() {
        let mut h = prior_knowledge();
        h.c(&cat(&[&req1, &req3]));
        h.s(&server[..cut]);
        h.s(&server[cut..]);
        let (mut exs, conn) = h.close(CloseReason::Fin);
        exs.sort_by_key(|e| e.h2.as_ref().map(|x| x.stream_id));
        assert_eq!(exs.len(), 2, "cut {cut}");
        let (a, b) = (&exs[0], &exs[1]);
        assert_eq!(a.route.as_deref(), Some("/a"));
        assert_eq!(b.route.as_deref(), Some("/b"));
        assert_eq!((a.status, b.status), (Some(200), Some(200)));
        assert_eq!(a.resp_body_len, 6, "padding is not data (cut {cut})");
        assert_eq!(
            a.resp_body_bytes,
            (2 * HEADER_LEN + padded.len() + 1) as u64
        );
        assert_eq!(a.h2.as_ref().unwrap().padding_bytes, 5);
        assert_eq!(b.resp_body_len, 5);
        assert_eq!(
            b.resp_header_bytes,
            (2 * HEADER_LEN + big.len()) as u64,
            "HEADERS and CONTINUATION"
        );
        assert_eq!(b.resp_header_names, "x-long");
        assert!(exs.iter().all(|e| e.completeness == Completeness::Complete));
        assert_eq!(
            conn.h2.as_ref().unwrap().frames[f::CONTINUATION as usize],
            1
        );
    }
}

fn grpc_request(stream: u32, path: &str) -> Vec<u8> {
    let block = cat(&[
        &[idx(3), idx(6)],
        &lit(":path", path),
        &lit(":authority", "greeter:50051"),
        &lit("content-type", "application/grpc"),
        &lit("grpc-timeout", "250m"),
        &lit("grpc-encoding", "gzip"),
        &lit("te", "trailers"),
    ]);
    frame(f::HEADERS, EH, stream, &block)
}

fn grpc_response_headers(stream: u32) -> Vec<u8> {
    let block = cat(&[&status_200(), &lit("content-type", "application/grpc")]);
    frame(f::HEADERS, EH, stream, &block)
}

fn grpc_trailers(stream: u32, status: &str, message: &str) -> Vec<u8> {
    let mut block = lit("grpc-status", status);
    if !message.is_empty() {
        block.extend(lit("grpc-message", message));
    }
    frame(f::HEADERS, EH | ES, stream, &block)
}

/// The four call kinds, told apart by the messages each side sent.
#[test]
fn grpc_call_kinds_statuses_and_deadline() {
    let mut h = prior_knowledge();
    // (stream, client messages, server messages, status)
    let calls: [(u32, usize, usize, &str); 4] = [
        (1, 1, 1, "0"),
        (3, 1, 3, "0"),
        (5, 4, 1, "0"),
        (7, 2, 2, "14"),
    ];
    for (id, nc, ns, status) in calls {
        h.c(&grpc_request(id, "/helloworld.Greeter/SayHello"));
        for i in 0..nc {
            let flags = if i + 1 == nc { ES } else { 0 };
            h.c(&frame(
                f::DATA,
                flags,
                id,
                &grpc_msg(u8::from(i == 0), &[1; 10]),
            ));
        }
        h.s(&grpc_response_headers(id));
        // Server messages: two in one DATA frame, one split across frames.
        let msgs: Vec<u8> = (0..ns).flat_map(|_| grpc_msg(0, &[2; 7])).collect();
        let (x, y) = msgs.split_at(msgs.len() / 2 + 1);
        h.s(&frame(f::DATA, 0, id, x));
        h.s(&frame(f::DATA, 0, id, y));
        h.s(&grpc_trailers(
            id,
            status,
            if status == "0" { "" } else { "backend gone" },
        ));
    }
    let (mut exs, _) = h.close(CloseReason::Fin);
    exs.sort_by_key(|e| e.h2.as_ref().map(|x| x.stream_id));
    let kinds: Vec<&str> = exs
        .iter()
        .map(|e| super::grpc::call_kind(e.grpc.as_deref().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            "unary",
            "server_streaming",
            "client_streaming",
            "bidi_streaming"
        ]
    );
    for (e, (_, nc, ns, status)) in exs.iter().zip(calls) {
        assert_eq!(e.protocol(), "grpc");
        assert_eq!(e.route.as_deref(), Some("/helloworld.Greeter/SayHello"));
        assert_eq!(e.method.as_deref(), Some("POST"));
        let g = e.grpc.as_deref().unwrap();
        assert_eq!(
            (g.req_messages as usize, g.resp_messages as usize),
            (nc, ns)
        );
        assert_eq!(g.req_message_bytes, 10 * nc as u64);
        assert_eq!(g.resp_message_bytes, 7 * ns as u64);
        assert_eq!(g.compressed_messages, 1);
        assert_eq!(g.status, Some(status.parse().unwrap()));
        assert_eq!(g.message_sent, status != "0");
        assert_eq!(g.timeout_ns, Some(250_000_000));
        assert_eq!(g.encoding.as_deref(), Some("gzip"));
        assert!(e.h2.as_ref().unwrap().trailers);
        assert_eq!(e.status, Some(200), "the HTTP status stays the HTTP status");
    }
}

#[test]
fn grpc_trailers_only_response() {
    let mut h = prior_knowledge();
    h.c(&grpc_request(1, "/pkg.Svc/Get"));
    h.c(&frame(f::DATA, ES, 1, &grpc_msg(0, b"q")));
    let block = cat(&[
        &status_200(),
        &lit("content-type", "application/grpc"),
        &lit("grpc-status", "5"),
        &lit("grpc-message", "no such thing"),
    ]);
    h.s(&frame(f::HEADERS, EH | ES, 1, &block));
    let (exs, _) = h.close(CloseReason::Fin);
    let e = only(&exs);
    let g = e.grpc.as_deref().unwrap();
    assert_eq!((g.status, g.message_sent), (Some(5), true));
    assert_eq!((g.req_messages, g.resp_messages), (1, 0));
    assert!(
        !e.h2.as_ref().unwrap().trailers,
        "trailers-only: no separate trailers"
    );
}

#[test]
fn resets_and_goaway_refusals_are_errors_but_no_error_after_a_response_is_not() {
    let mut h = prior_knowledge();
    // 1: the client cancels before any response.
    h.c(&frame(f::HEADERS, EH, 1, &get("/slow", "h")));
    h.c(&frame(f::RST_STREAM, 0, 1, &8u32.to_be_bytes()));
    // 3: the server answers whole, then resets the unfinished request with NO_ERROR.
    h.c(&frame(f::HEADERS, EH, 3, &get("/upload", "h")));
    h.c(&frame(f::DATA, 0, 3, b"part"));
    h.s(&frame(f::HEADERS, EH | ES, 3, &[idx(13)]));
    h.s(&frame(f::RST_STREAM, 0, 3, &0u32.to_be_bytes()));
    // 5 and 7 open; the server's GOAWAY says it processed up to 5.
    h.c(&frame(f::HEADERS, EH | ES, 5, &get("/x", "h")));
    h.c(&frame(f::HEADERS, EH | ES, 7, &get("/y", "h")));
    let mut goaway = 5u32.to_be_bytes().to_vec();
    goaway.extend_from_slice(&0u32.to_be_bytes());
    h.s(&frame(f::GOAWAY, 0, 0, &goaway));
    h.s(&frame(f::HEADERS, EH | ES, 5, &status_200()));
    let (mut exs, conn) = h.close(CloseReason::Fin);
    exs.sort_by_key(|e| e.h2.as_ref().map(|x| x.stream_id));
    let errors: Vec<Option<&str>> = exs
        .iter()
        .map(|e| e.h2.as_ref().unwrap().error.as_deref())
        .collect();
    assert_eq!(
        errors,
        [
            Some("rst_client:CANCEL"),
            None,
            None,
            Some("goaway_refused")
        ]
    );
    assert_eq!(exs[0].status, None);
    assert_eq!(exs[1].status, Some(404));
    assert_eq!(exs[2].status, Some(200));
    let s = conn.h2.as_deref().unwrap();
    assert_eq!(s.goaway_error, Some("NO_ERROR"));
    assert_eq!(s.goaway_refused, 1);
    assert_eq!(s.frames[f::RST_STREAM as usize], 2);
}

/// A capture that begins mid-connection: no preface, a dynamic table the capture never
/// saw filled. The frames are found, the unknown field is counted, the exchange is still
/// made, and entries inserted from then on index right.
#[test]
fn mid_connection_frames_are_found_and_unknown_table_entries_counted() {
    let mut h = Harness::new();
    // Stream 41: `:path` names dynamic entry 62 (inserted before the capture);
    // `x-tenant` is inserted now and becomes entry 62, pushing the unknown one to 63.
    let block = cat(&[&[idx(2), idx(6), 0xbe], &lit_indexed("x-tenant", "blue")]);
    let win = frame(f::WINDOW_UPDATE, 0, 0, &1000u32.to_be_bytes());
    let ping = frame(f::PING, 0, 0, &[0; 8]);
    h.c(&cat(&[
        &win,
        &ping,
        &frame(f::HEADERS, EH | ES, 41, &block),
    ]));
    h.s(&frame(f::HEADERS, EH | ES, 41, &status_200()));
    // Stream 43: 62 is now `x-tenant: blue`, 63 the unknown `:path`.
    h.c(&frame(
        f::HEADERS,
        EH | ES,
        43,
        &[idx(2), idx(6), 0xbf, 0xbe],
    ));
    h.s(&frame(f::HEADERS, EH | ES, 43, &status_200()));
    let (mut exs, conn) = h.close(CloseReason::Fin);
    exs.sort_by_key(|e| e.h2.as_ref().map(|x| x.stream_id));
    assert_eq!(exs.len(), 2);
    for e in &exs {
        assert_eq!(e.method.as_deref(), Some("GET"));
        assert_eq!(e.route, None, "`:path` was an unknown entry");
        assert_eq!(e.status, Some(200));
        let x = e.h2.as_ref().unwrap();
        assert_eq!(x.unknown_fields, 1);
        assert!(!x.headers_complete);
    }
    assert_eq!(exs[1].req_header_names, "x-tenant", "learned entry 62");
    assert_eq!(conn.protocol, L7Protocol::Http2);
    let s = conn.h2.as_deref().unwrap();
    assert_eq!(s.found_by, "frames");
    assert_eq!(s.hpack_unknown_fields, 2);
}

#[test]
fn bytes_that_are_no_frames_stay_other() {
    let mut h = Harness::new();
    for _ in 0..40 {
        h.c(b"\x00\x00\x00\x10some binary protocol that is not http/2 at all");
        h.s(b"\x01\x02\x03 reply");
    }
    let (exs, conn) = h.close(CloseReason::Fin);
    assert!(exs.is_empty());
    assert_eq!(conn.protocol, L7Protocol::Other);
    assert!(conn.h2.is_none());
}

#[test]
fn h2c_upgrade_answers_the_http1_request_on_stream_1() {
    let mut h = Harness::new();
    h.c(b"GET /range HTTP/1.1\r\nHost: web\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n");
    let switch = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
    let resp_block = cat(&[&[idx(10)], &lit("content-type", "text/plain")]);
    let frames = cat(&[
        &settings(&[(3, 100)]),
        &frame(f::HEADERS, EH, 1, &resp_block),
        &frame(f::DATA, ES, 1, b"0123456789"),
    ]);
    h.s(&cat(&[switch, &frames]));
    h.c(&cat(&[super::PREFACE, &settings(&[])]));
    let (exs, conn) = h.close(CloseReason::Fin);
    let e = only(&exs);
    assert_eq!(e.method.as_deref(), Some("GET"));
    assert_eq!(e.route.as_deref(), Some("/range"));
    assert_eq!(e.version, "HTTP/1.1", "the request was HTTP/1.1");
    assert_eq!(e.protocol(), "h2c");
    assert_eq!(e.upgrade.as_deref(), Some("h2c"));
    assert_eq!(e.status, Some(206));
    assert_eq!(e.interim_responses, 1, "the 101");
    assert_eq!(e.resp_body_len, 10);
    assert_eq!(
        e.resp_header_bytes,
        (switch.len() + HEADER_LEN + resp_block.len()) as u64
    );
    assert_eq!(conn.protocol, L7Protocol::Http11);
    assert_eq!(conn.upgraded_to.as_deref(), Some("h2c"));
    assert_eq!(conn.exchanges, 1);
    assert_eq!(conn.h2.as_deref().unwrap().found_by, "upgrade");
}

#[test]
fn a_gap_inside_data_keeps_step_and_one_across_frames_resyncs_at_the_next_segment() {
    let mut h = prior_knowledge();
    h.c(&frame(f::HEADERS, EH | ES, 1, &get("/a", "h")));
    h.s(&frame(f::HEADERS, EH, 1, &status_200()));
    let data = frame(f::DATA, ES, 1, &[7; 100]);
    h.s(&data[..30]);
    h.gap(S2C, 50);
    h.s(&data[80..]);
    // Stream 3: the gap runs over frame boundaries; frames resume at a segment start.
    h.c(&frame(f::HEADERS, EH | ES, 3, &get("/b", "h")));
    h.s(&frame(f::HEADERS, EH, 3, &status_200())[..5]);
    h.gap(S2C, 400);
    h.s(b"tail of something");
    h.c(&frame(f::HEADERS, EH | ES, 5, &get("/c", "h")));
    h.s(&frame(f::HEADERS, EH | ES, 5, &status_200()));
    let (mut exs, conn) = h.close(CloseReason::Fin);
    exs.sort_by_key(|e| e.h2.as_ref().map(|x| x.stream_id));
    assert_eq!(exs.len(), 3);
    assert_eq!(exs[0].resp_body_len, 100, "lost bytes counted");
    assert_eq!(exs[0].completeness, Completeness::Gap);
    assert_eq!(exs[0].status, Some(200));
    assert_eq!(exs[1].completeness, Completeness::Gap);
    assert_eq!(exs[2].status, Some(200), "in step again");
    assert_eq!(exs[2].completeness, Completeness::Complete);
    let s = conn.h2.as_deref().unwrap();
    assert_eq!(s.sync_lost, 1);
    assert_eq!(s.unsynced_bytes, 17);
}

#[test]
fn streams_beyond_the_cap_are_evicted_and_counted() {
    let mut h = Harness::with(HttpConfig {
        max_h2_streams: 2,
        ..HttpConfig::default()
    });
    h.c(&cat(&[super::PREFACE, &settings(&[])]));
    for id in [1, 3, 5] {
        h.c(&frame(f::HEADERS, EH | ES, id, &get("/q", "h")));
    }
    assert_eq!(h.exchanges().len(), 1, "stream 1 given up");
    assert_eq!(h.exchanges()[0].completeness, Completeness::Truncated);
    let (exs, conn) = h.close(CloseReason::Fin);
    assert_eq!(exs.len(), 3);
    assert_eq!(conn.h2.as_deref().unwrap().streams_evicted, 1);
    assert!(exs[1..]
        .iter()
        .all(|e| e.completeness == Completeness::NoResponse));
}

#[test]
fn a_header_block_over_the_bound_is_dropped_and_the_table_forgotten() {
    let mut h = Harness::with(HttpConfig {
        max_header_bytes: 64,
        ..HttpConfig::default()
    });
    h.c(&cat(&[super::PREFACE, &settings(&[])]));
    let big = cat(&[&get("/a", "h"), &lit_indexed("x-big", &"b".repeat(100))]);
    let req = frame(f::HEADERS, EH | ES, 1, &big);
    // Two segments: the payload spans them, so it would have to be held.
    h.c(&req[..20]);
    h.c(&req[20..]);
    h.s(&frame(f::HEADERS, EH | ES, 1, &status_200()));
    // The next block names entry 62, which the dropped block inserted: unknown.
    h.c(&frame(
        f::HEADERS,
        EH | ES,
        3,
        &[idx(2), idx(6), idx(4), 0xbe],
    ));
    let (mut exs, conn) = h.close(CloseReason::Fin);
    exs.sort_by_key(|e| e.h2.as_ref().map(|x| x.stream_id));
    assert_eq!(exs[0].method, None);
    assert_eq!(exs[0].req_header_bytes, req.len() as u64);
    assert!(!exs[0].h2.as_ref().unwrap().headers_complete);
    assert_eq!(exs[1].route.as_deref(), Some("/"));
    assert_eq!(exs[1].h2.as_ref().unwrap().unknown_fields, 1);
    assert_eq!(conn.h2.as_deref().unwrap().header_blocks_dropped, 1);
}

#[test]
fn grpc_web_over_http1_counts_messages_and_reads_the_trailers_frame() {
    let mut h = Harness::new();
    let body = grpc_msg(0, b"request");
    h.c(&cat(&[
        format!(
            "POST /pkg.Svc/Get HTTP/1.1\r\nHost: api\r\nContent-Type: application/grpc-web+proto\r\nX-Grpc-Web: 1\r\ngrpc-timeout: 5S\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
        &body,
    ]));
    let resp = cat(&[
        &grpc_msg(0, b"one"),
        &grpc_msg(0, b"two"),
        &grpc_msg(0x80, b"grpc-status: 7\r\ngrpc-message: denied\r\n"),
    ]);
    h.s(&cat(&[
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/grpc-web+proto\r\nContent-Length: {}\r\n\r\n",
            resp.len()
        )
        .as_bytes(),
        &resp,
    ]));
    let (exs, _) = h.close(CloseReason::Fin);
    let e = only(&exs);
    assert_eq!(e.protocol(), "grpc-web");
    let g = e.grpc.as_deref().unwrap();
    assert_eq!((g.req_messages, g.resp_messages), (1, 2));
    assert_eq!((g.status, g.message_sent), (Some(7), true));
    assert_eq!(g.timeout_ns, Some(5_000_000_000));
    assert_eq!(e.route.as_deref(), Some("/pkg.Svc/Get"));
}

#[test]
fn grpc_web_trailers_only_response_in_http1_headers() {
    let mut h = Harness::new();
    h.c(b"POST /pkg.Svc/Get HTTP/1.1\r\nHost: api\r\nContent-Type: application/grpc-web\r\nContent-Length: 0\r\n\r\n");
    h.s(b"HTTP/1.1 200 OK\r\nContent-Type: application/grpc-web\r\ngrpc-status: 12\r\nContent-Length: 0\r\n\r\n");
    let (exs, _) = h.close(CloseReason::Fin);
    let g = only(&exs).grpc.as_deref().unwrap();
    assert_eq!(g.status, Some(12));
}

/// A pseudo-header RFC 9113 does not define (`:pati`) or a name that is no token (`a:pt`)
/// is no header name (fuzzing found both kept in `req_header_names`).
#[test]
fn undefined_pseudo_headers_are_not_header_names() {
    let mut h = prior_knowledge();
    let block = cat(&[
        &get("/a", "h"),
        &lit(":pati", "x"),
        &lit("a\u{e8}:pt", "x"),
        &lit("x-ok", "1"),
    ]);
    h.c(&frame(f::HEADERS, EH | ES, 1, &block));
    h.s(&frame(f::HEADERS, EH | ES, 1, &status_200()));
    let (exs, _) = h.close(CloseReason::Fin);
    assert_eq!(only(&exs).req_header_names, "x-ok");
}
