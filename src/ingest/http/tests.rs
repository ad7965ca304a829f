//! Stage-level tests: byte arrays pushed as flow events, records checked field by field.
//! Expected sizes are computed from the literals themselves (`len()`), never copied from
//! the code's output.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;

use super::*;
use crate::model::{CloseReason, Completeness, DirStats};

pub(crate) const C2S: Direction = Direction::ClientToServer;
pub(crate) const S2C: Direction = Direction::ServerToClient;

pub(crate) fn ep(last: u8, port: u16) -> Endpoint {
    Endpoint::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)), port)
}

/// Route, status and completeness of each exchange: what the pairing tests compare.
fn outcomes(exs: &[Exchange]) -> Vec<(Option<&str>, Option<u16>, Completeness)> {
    exs.iter()
        .map(|e| (e.route.as_deref(), e.status, e.completeness))
        .collect()
}

pub(crate) struct Harness {
    stage: HttpStage,
    cov: Coverage,
    recs: Vec<Record>,
    conn: ConnId,
    t: i64,
}

impl Harness {
    pub(crate) fn new() -> Self {
        Self::with(HttpConfig::default())
    }

    pub(crate) fn with(cfg: HttpConfig) -> Self {
        let mut h = Harness {
            stage: HttpStage::new(cfg),
            cov: Coverage::default(),
            recs: Vec::new(),
            conn: ConnId(7),
            t: 1_000,
        };
        h.push(EventKind::Opened {
            client: ep(1, 40000),
            server: ep(2, 80),
        });
        h
    }

    pub(crate) fn push(&mut self, kind: EventKind<'_>) -> Interest {
        self.t += 1_000;
        let ev = StreamEvent {
            conn: self.conn,
            ts: Timestamp(self.t),
            kind,
        };
        let recs = &mut self.recs;
        self.stage.push(ev, &mut self.cov, &mut |r| recs.push(r))
    }

    pub(crate) fn c(&mut self, b: &[u8]) -> Interest {
        self.push(EventKind::Data {
            dir: C2S,
            bytes: b,
            stall_ns: None,
        })
    }

    pub(crate) fn s(&mut self, b: &[u8]) -> Interest {
        self.push(EventKind::Data {
            dir: S2C,
            bytes: b,
            stall_ns: None,
        })
    }

    /// Bytes of `dir` whose segment ended a sender stall of `ns` (as the flow stage says).
    pub(crate) fn stalled(&mut self, dir: Direction, b: &[u8], ns: i64) -> Interest {
        self.push(EventKind::Data {
            dir,
            bytes: b,
            stall_ns: Some(ns),
        })
    }

    pub(crate) fn gap(&mut self, dir: Direction, len: u64) {
        self.push(EventKind::Gap { dir, len });
    }

    pub(crate) fn end(&mut self, dir: Direction) {
        self.push(EventKind::End { dir });
    }

    pub(crate) fn close(&mut self, reason: CloseReason) -> (Vec<Exchange>, Connection) {
        let summary = TcpSummary {
            conn: self.conn,
            client: ep(1, 40000),
            server: ep(2, 80),
            first_packet: Timestamp(0),
            last_packet: Timestamp(self.t),
            syn: None,
            syn_ack: None,
            handshake_ack: None,
            handshake_seen: false,
            roles_inferred: true,
            client_to_server: DirStats::default(),
            server_to_client: DirStats::default(),
            close: reason,
        };
        let live = self.stage.live_connections();
        self.push(EventKind::Closed(&summary));
        assert_eq!(
            self.stage.live_connections() + 1,
            live,
            "state removed on Closed"
        );
        let mut exs = Vec::new();
        let mut conn = None;
        for r in self.recs.drain(..) {
            match r {
                Record::Exchange(e) => exs.push(e),
                Record::Connection(c) => {
                    assert!(conn.is_none(), "one connection record");
                    conn = Some(c);
                }
            }
        }
        (exs, conn.expect("connection record"))
    }

    /// Exchanges emitted so far (before Closed).
    pub(crate) fn exchanges(&self) -> Vec<&Exchange> {
        self.recs
            .iter()
            .filter_map(|r| match r {
                Record::Exchange(e) => Some(e),
                Record::Connection(_) => None,
            })
            .collect()
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

const REQ_HEAD: &str =
    "POST /orders/123/items/550e8400-e29b-41d4-a716-446655440000?token=x HTTP/1.1\r\n\
Host: shop.internal:8080\r\nContent-Type: application/json; charset=utf-8\r\n\
traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nContent-Length: 13\r\n\r\n";
const REQ_BODY: &str = "{\"qty\": 1234}";
const RESP_HEAD: &str =
    "HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n";

#[test]
fn content_length_exchange_fills_every_field() {
    let mut h = Harness::new();
    assert_eq!(h.c(REQ_HEAD.as_bytes()), Interest::Keep);
    h.c(REQ_BODY.as_bytes());
    h.s(RESP_HEAD.as_bytes());
    h.s(b"ok");
    let (exs, conn) = h.close(CloseReason::Fin);
    assert_eq!(exs.len(), 1);
    let e = &exs[0];
    assert_eq!(e.conn, ConnId(7));
    assert_eq!(e.index, 0);
    assert_eq!((e.client, e.server), (ep(1, 40000), ep(2, 80)));
    assert_eq!(e.version, "HTTP/1.1");
    assert_eq!(e.method.as_deref(), Some("POST"));
    assert_eq!(e.route.as_deref(), Some("/orders/{id}/items/{id}"));
    assert_eq!(e.status, Some(201));
    // events are 1000 ns apart: open 2000, req head 3000, body 4000, resp 5000, 6000
    assert_eq!(e.req_first, Some(Timestamp(3_000)));
    assert_eq!(e.req_last, Some(Timestamp(4_000)));
    assert_eq!(e.resp_first, Some(Timestamp(5_000)));
    assert_eq!(e.resp_last, Some(Timestamp(6_000)));
    assert_eq!(e.req_header_bytes, REQ_HEAD.len() as u64);
    assert_eq!(e.req_body_bytes, 13);
    assert_eq!(e.req_body_len, 13);
    assert_eq!(e.resp_header_bytes, RESP_HEAD.len() as u64);
    assert_eq!((e.resp_body_bytes, e.resp_body_len), (2, 2));
    assert_eq!(
        (e.req_body_decoded_len, e.resp_body_decoded_len),
        (None, None)
    );
    assert_eq!(e.req_content_type.as_deref(), Some("application/json"));
    assert_eq!(e.resp_content_type.as_deref(), Some("text/plain"));
    assert_eq!(e.host.as_deref(), Some("shop.internal:8080"));
    assert_eq!(
        e.trace_id.as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    assert_eq!(e.parent_span_id.as_deref(), Some("00f067aa0ba902b7"));
    assert_eq!(
        e.req_header_names,
        "host,content-type,traceparent,content-length"
    );
    assert_eq!(e.resp_header_names, "content-type,content-length");
    assert!(!e.chunked_request && !e.chunked_response && !e.close_delimited);
    assert_eq!(e.completeness, Completeness::Complete);
    assert_eq!(conn.protocol, L7Protocol::Http11);
    assert_eq!((conn.exchanges, conn.malformed_messages), (1, 0));
    assert_eq!(h.cov.exchanges, 1);
    assert_eq!(h.cov.incomplete_exchanges, 0);
    assert_eq!(h.cov.connections_by_protocol.get("http/1.1"), Some(&1));
}

const CHUNKED_RESP: &[u8] =
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n\
5;ext=\"a;b\"\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0;fin\r\nX-T: 1\r\n\r\n";
const CHUNKED_HEAD_LEN: usize = 61;

#[test]
fn chunked_with_extensions_and_trailers_split_at_every_position() {
    let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n";
    assert_eq!(head.len(), CHUNKED_HEAD_LEN);
    let req = b"GET /stream HTTP/1.1\r\nHost: a\r\n\r\n";
    let follow = b"HTTP/1.1 204 No Content\r\n\r\n";
    for i in 0..=CHUNKED_RESP.len() {
        let mut h = Harness::new();
        h.c(req);
        h.c(b"GET /next HTTP/1.1\r\n\r\n");
        h.s(&CHUNKED_RESP[..i]);
        h.s(&CHUNKED_RESP[i..]);
        h.s(follow);
        let (exs, _) = h.close(CloseReason::Fin);
        assert_eq!(exs.len(), 2, "split {i}");
        let e = &exs[0];
        assert_eq!(e.status, Some(200));
        assert!(e.chunked_response);
        assert_eq!(e.resp_header_bytes, CHUNKED_HEAD_LEN as u64, "split {i}");
        assert_eq!(
            e.resp_body_bytes,
            (CHUNKED_RESP.len() - CHUNKED_HEAD_LEN) as u64
        );
        assert_eq!(e.resp_body_len, 5 + 26);
        assert_eq!(e.completeness, Completeness::Complete);
        assert_eq!(exs[1].status, Some(204));
        assert_eq!(exs[1].route.as_deref(), Some("/next"));
        assert_eq!(h.cov.malformed_http, 0);
    }
}

#[test]
fn chunked_request_body_split_in_three() {
    let req = b"PUT /kv/alpha HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    let head_len = req.len() - 13;
    for i in 0..=req.len() {
        for j in i..=req.len() {
            let mut h = Harness::new();
            h.c(&req[..i]);
            h.c(&req[i..j]);
            h.c(&req[j..]);
            h.s(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
            let (exs, _) = h.close(CloseReason::Fin);
            assert_eq!(exs.len(), 1);
            let e = &exs[0];
            assert!(e.chunked_request);
            assert_eq!(e.req_header_bytes, head_len as u64, "{i},{j}");
            assert_eq!((e.req_body_bytes, e.req_body_len), (13, 3), "{i},{j}");
            assert_eq!(e.completeness, Completeness::Complete);
        }
    }
}

#[test]
fn close_delimited_http10_response_ends_at_server_end() {
    let mut h = Harness::new();
    h.c(b"GET /legacy HTTP/1.0\r\n\r\n");
    h.s(b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<html>");
    h.s(b"</html>");
    assert!(h.exchanges().is_empty(), "body runs until the close");
    h.end(S2C);
    assert_eq!(h.exchanges().len(), 1);
    let (exs, conn) = h.close(CloseReason::Fin);
    let e = &exs[0];
    assert!(e.close_delimited);
    assert_eq!(e.version, "HTTP/1.0");
    assert_eq!((e.resp_body_bytes, e.resp_body_len), (13, 13));
    // events: open 2000, request 3000, response 4000 and 5000, FIN 6000
    assert_eq!(
        e.resp_last,
        Some(Timestamp(5_000)),
        "last data, not the FIN"
    );
    assert_eq!(e.completeness, Completeness::Complete);
    assert_eq!(conn.protocol, L7Protocol::Http10);
}

#[test]
fn close_delimited_cut_by_end_of_capture_is_truncated() {
    let mut h = Harness::new();
    h.c(b"GET / HTTP/1.1\r\n\r\n");
    h.s(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npartial");
    let (exs, _) = h.close(CloseReason::EndOfCapture);
    assert_eq!(exs[0].completeness, Completeness::Truncated);
    assert_eq!(exs[0].resp_body_bytes, 7);
    assert_eq!(h.cov.incomplete_exchanges, 1);
}

#[test]
fn head_204_304_have_no_body() {
    let mut h = Harness::new();
    h.c(b"HEAD /a HTTP/1.1\r\n\r\nDELETE /b/9 HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\nIf-None-Match: x\r\n\r\n");
    h.s(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
    h.s(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n");
    h.s(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 77\r\n\r\n");
    let (exs, _) = h.close(CloseReason::Fin);
    let got: Vec<_> = exs
        .iter()
        .map(|e| {
            (
                e.method.as_deref().unwrap(),
                e.route.as_deref().unwrap(),
                e.status.unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("HEAD", "/a", 200),
            ("DELETE", "/b/{id}", 204),
            ("GET", "/c", 304)
        ]
    );
    assert!(exs.iter().all(|e| e.resp_body_bytes == 0));
    assert!(exs.iter().all(|e| e.completeness == Completeness::Complete));
}

#[test]
fn expect_100_continue_counts_interim_and_pairs_final() {
    let head = "POST /upload HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n";
    let cont = "HTTP/1.1 100 Continue\r\n\r\n";
    let fin = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let mut h = Harness::new();
    h.c(head.as_bytes());
    h.s(cont.as_bytes());
    h.c(b"0123456789");
    h.s(fin.as_bytes());
    let (exs, _) = h.close(CloseReason::Fin);
    assert_eq!(exs.len(), 1);
    let e = &exs[0];
    assert!(e.expect_continue);
    assert_eq!(e.interim_responses, 1);
    assert_eq!(e.status, Some(200));
    assert_eq!(e.req_body_bytes, 10);
    assert_eq!(e.resp_header_bytes, (cont.len() + fin.len()) as u64);
    assert_eq!(
        e.resp_first,
        Some(Timestamp(4_000)),
        "first response byte is the 100"
    );
    assert_eq!(e.completeness, Completeness::Complete);
}

#[test]
fn expect_100_refused_before_body_ends_request() {
    let mut h = Harness::new();
    h.c(b"PUT /big HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 99999\r\n\r\n");
    h.s(b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n");
    h.c(b"GET /after HTTP/1.1\r\n\r\n");
    h.s(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    let (exs, _) = h.close(CloseReason::Fin);
    assert_eq!(exs.len(), 2);
    assert_eq!((exs[0].status, exs[0].req_body_bytes), (Some(413), 0));
    assert_eq!(exs[1].route.as_deref(), Some("/after"));
    assert_eq!(exs[1].status, Some(200));
}

#[test]
fn websocket_upgrade_leaves_http() {
    let mut h = Harness::new();
    h.c(b"GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
    let i = h.s(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello");
    assert_eq!(i, Interest::Ignore);
    assert_eq!(h.c(b"\x81\x85abcdHTTP/1.1 200 OK\r\n"), Interest::Ignore);
    let (exs, conn) = h.close(CloseReason::Fin);
    assert_eq!(exs.len(), 1);
    assert_eq!(exs[0].status, Some(101));
    assert_eq!(exs[0].upgrade.as_deref(), Some("websocket"));
    assert_eq!(exs[0].completeness, Completeness::Complete);
    assert_eq!(conn.upgraded_to.as_deref(), Some("websocket"));
    assert_eq!(conn.protocol, L7Protocol::Http11);
    assert_eq!(h.cov.malformed_http, 0);
}

#[test]
fn declined_upgrade_stays_http() {
    let mut h = Harness::new();
    h.c(b"GET / HTTP/1.1\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n");
    assert_eq!(
        h.s(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"),
        Interest::Keep
    );
    h.c(b"GET /two HTTP/1.1\r\n\r\n");
    h.s(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    let (exs, conn) = h.close(CloseReason::Fin);
    assert_eq!(exs.len(), 2);
    assert!(exs
        .iter()
        .all(|e| e.upgrade.is_none() && e.status == Some(200)));
    assert_eq!(conn.upgraded_to, None);
}

#[test]
fn connect_tunnel() {
    let mut h = Harness::new();
    h.c(b"CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\n");
    assert_eq!(
        h.s(b"HTTP/1.1 200 Connection established\r\n\r\n"),
        Interest::Ignore
    );
    assert_eq!(h.c(&[0x16, 3, 1, 0, 5, 1, 0, 0, 1, 0]), Interest::Ignore);
    let (exs, conn) = h.close(CloseReason::Fin);
    assert_eq!(exs.len(), 1);
    assert_eq!(exs[0].method.as_deref(), Some("CONNECT"));
    assert_eq!(exs[0].upgrade.as_deref(), Some("tunnel"));
    assert_eq!(exs[0].resp_body_bytes, 0);
    assert_eq!(conn.upgraded_to.as_deref(), Some("tunnel"));
}

#[test]
fn pipelining_three_requests_then_three_responses() {
    let mut h = Harness::new();
    h.c(b"GET /one HTTP/1.1\r\n\r\nGET /two HTTP/1.1\r\n\r\nPOST /three HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
    h.s(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n22HTTP/1.1 500 Oops\r\nContent-Length: 3\r\n\r\n333");
    let (exs, _) = h.close(CloseReason::Fin);
    let got: Vec<_> = exs
        .iter()
        .map(|e| {
            (
                e.index,
                e.route.as_deref().unwrap(),
                e.status.unwrap(),
                e.resp_body_len,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (0, "/one", 200, 1),
            (1, "/two", 404, 2),
            (2, "/three", 500, 3)
        ]
    );
    assert_eq!(exs[2].req_body_bytes, 3);
}

#[test]
fn pending_cap_gives_up_on_oldest() {
    let cfg = HttpConfig {
        max_pending_requests: 2,
        ..HttpConfig::default()
    };
    let mut h = Harness::with(cfg);
    h.c(b"GET /one HTTP/1.1\r\n\r\nGET /two HTTP/1.1\r\n\r\nGET /three HTTP/1.1\r\n\r\n");
    let first = h.exchanges();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].route.as_deref(), Some("/one"));
    assert_eq!(first[0].completeness, Completeness::NoResponse);
    h.s(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    let (exs, _) = h.close(CloseReason::Fin);
    assert_eq!(exs[1].route.as_deref(), Some("/two"));
    assert_eq!(exs[1].status, Some(200));
    assert_eq!(exs[2].completeness, Completeness::NoResponse);
}

#[test]
fn gzip_body_decoded_length() {
    let text =
        "{\"items\": [".to_owned() + &"{\"id\": 1, \"name\": \"widget\"},".repeat(200) + "]}";
    let gz = gzip(text.as_bytes());
    let mut resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        gz.len()
    )
    .into_bytes();
    resp.extend_from_slice(&gz);
    resp.extend_from_slice(b"\r\n0\r\n\r\n");
    let mut h = Harness::new();
    h.c(b"GET /items HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\n");
    for piece in resp.chunks(97) {
        h.s(piece);
    }
    let (exs, _) = h.close(CloseReason::Fin);
    let e = &exs[0];
    assert_eq!(e.resp_content_encoding.as_deref(), Some("gzip"));
    assert_eq!(e.resp_body_len, gz.len() as u64);
    assert_eq!(e.resp_body_decoded_len, Some(text.len() as u64));
    assert!(e.resp_body_len < e.resp_body_decoded_len.unwrap());
    assert_eq!(e.req_body_decoded_len, None);
}

#[test]
fn gzip_request_body_over_cap_is_none() {
    let gz = gzip(&[b'a'; 10_000]);
    let cfg = HttpConfig {
        max_decoded_body_bytes: 1_000,
        ..HttpConfig::default()
    };
    let mut h = Harness::with(cfg);
    h.c(format!(
        "POST /x HTTP/1.1\r\nContent-Encoding: x-gzip\r\nContent-Length: {}\r\n\r\n",
        gz.len()
    )
    .as_bytes());
    h.c(&gz);
    h.s(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    let (exs, _) = h.close(CloseReason::Fin);
    assert_eq!(exs[0].req_body_len, gz.len() as u64);
    assert_eq!(exs[0].req_body_decoded_len, None);
    assert_eq!(exs[0].completeness, Completeness::Complete);
}

#[test]
fn malformed_request_then_resync() {
    let mut h = Harness::new();
    h.c(b"GET /ok1 HTTP/1.1\r\n\r\n");
    h.s(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    // A control byte in the target: neither httparse nor the lenient reader takes it.
    h.c(b"GET /b\x01d HTTP/1.1\r\nHost: a\r\n\r\n");
    h.s(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    h.c(b"GET /ok2 HTTP/1.1\r\n\r\n");
    h.s(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    let (exs, conn) = h.close(CloseReason::Fin);
    assert_eq!(h.cov.malformed_http, 1);
    assert_eq!(h.cov.http_resyncs, 1);
    assert_eq!(conn.malformed_messages, 1);
    let got = outcomes(&exs);
    assert_eq!(
        got,
        [
            (Some("/ok1"), Some(200), Completeness::Complete),
            (None, Some(400), Completeness::ResponseOnly),
            (Some("/ok2"), Some(200), Completeness::Complete),
        ]
    );
}

/// Request lines httparse rejects but servers answered (zeek's methods.pcap, LF line ends as
/// sent there; tshark counts each as a request), and HTTP/0.9: (request, method, route,
/// version the record carries).
const ODD_REQUESTS: [(&[u8], &str, Option<&str>, &str); 6] = [
    (
        b"OPTIONS HTTP/1.1\nHost: www.google.com\n\n",
        "OPTIONS",
        None,
        "HTTP/1.1",
    ),
    (
        b"OPTIONS\nHost: www.google.com\n\n",
        "OPTIONS",
        None,
        "HTTP/1.0",
    ),
    (
        b"GET / HTTP/1.\nHost: www.google.com\n\n",
        "GET",
        Some("/"),
        "HTTP/1.0",
    ),
    (
        b"GET /HTTP/1.1\nHost: www.google.com\n\n",
        "GET",
        Some("/"),
        "HTTP/1.1",
    ),
    (b"GET /\r\n", "GET", Some("/"), "HTTP/1.0"),
    (b"CCM_POST /42\n", "CCM_POST", Some("/{id}"), "HTTP/1.0"),
];

const BAD_REQUEST: &[u8] =
    b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nerror";

/// Checks the two exchanges of an odd request, its 400 and a sound request answered 204.
fn check_odd_then_sound(h: &Harness, exs: &[Exchange], odd: (&[u8], &str, Option<&str>, &str)) {
    let (req, method, route, version) = odd;
    let name = String::from_utf8_lossy(req);
    assert_eq!(exs.len(), 2, "{name:?}");
    let e = &exs[0];
    assert_eq!(e.index, 0);
    assert_eq!(e.method.as_deref(), Some(method), "{name:?}");
    assert_eq!(e.route.as_deref(), route, "{name:?}");
    assert_eq!(e.version, version, "{name:?}");
    assert_eq!(e.status, Some(400), "{name:?}");
    assert_eq!(e.req_header_bytes, req.len() as u64, "{name:?}");
    assert_eq!((e.req_body_bytes, e.req_body_len), (0, 0));
    // The 400's head is all but its 5-byte body.
    assert_eq!(e.resp_header_bytes, BAD_REQUEST.len() as u64 - 5);
    assert_eq!((e.resp_body_bytes, e.resp_body_len), (5, 5));
    assert_eq!(e.resp_content_type.as_deref(), Some("text/html"));
    assert_eq!(e.completeness, Completeness::Complete, "{name:?}");
    let e = &exs[1];
    assert_eq!(e.index, 1);
    assert_eq!(
        (e.method.as_deref(), e.route.as_deref(), e.status),
        (Some("GET"), Some("/next"), Some(204))
    );
    assert_eq!(e.completeness, Completeness::Complete);
    assert_eq!(h.cov.malformed_http, 1, "{name:?}");
    assert_eq!(h.cov.http_resyncs, 0, "{name:?}");
}

#[test]
fn odd_request_lines_are_exchanges_paired_in_order() {
    for odd in ODD_REQUESTS {
        let mut h = Harness::new();
        h.c(odd.0);
        h.s(BAD_REQUEST);
        h.c(b"GET /next HTTP/1.1\r\n\r\n");
        h.s(b"HTTP/1.1 204 No Content\r\n\r\n");
        let (exs, conn) = h.close(CloseReason::Fin);
        check_odd_then_sound(&h, &exs, odd);
        // events: open 2000, odd request 3000, its answer 4000
        assert_eq!(exs[0].req_first, Some(Timestamp(3_000)));
        assert_eq!(exs[0].resp_first, Some(Timestamp(4_000)));
        assert_eq!((conn.exchanges, conn.malformed_messages), (2, 1));
        let proto = if odd.3 == "HTTP/1.1" {
            L7Protocol::Http11
        } else {
            L7Protocol::Http10
        };
        assert_eq!(conn.protocol, proto, "version from the first request");
    }
}

#[test]
fn odd_request_lines_split_at_every_position() {
    for odd in ODD_REQUESTS {
        for i in 1..odd.0.len() {
            if odd.0[..i] == b"OPTIONS\n"[..] {
                // A version-less line that fills a segment is taken for HTTP/0.9; here its
                // header block came in the next one (see `odd_request_line_then_late_headers`).
                continue;
            }
            let mut h = Harness::new();
            h.c(&odd.0[..i]);
            h.c(&odd.0[i..]);
            h.s(BAD_REQUEST);
            h.c(b"GET /next HTTP/1.1\r\n\r\n");
            h.s(b"HTTP/1.1 204 No Content\r\n\r\n");
            let (exs, _) = h.close(CloseReason::Fin);
            check_odd_then_sound(&h, &exs, odd);
        }
    }
}

#[test]
fn odd_request_line_then_late_headers() {
    // Known limit: a version-less line that ends its segment is a whole HTTP/0.9 request, so
    // headers in the next segment are malformed; the answer still pairs with the request.
    let mut h = Harness::new();
    h.c(b"OPTIONS\n");
    h.c(b"Host: www.google.com\n\n");
    h.s(BAD_REQUEST);
    let (exs, conn) = h.close(CloseReason::Fin);
    assert_eq!(exs.len(), 1);
    assert_eq!(exs[0].method.as_deref(), Some("OPTIONS"));
    assert_eq!(exs[0].req_header_bytes, 8);
    assert_eq!(exs[0].status, Some(400));
    assert_eq!(exs[0].completeness, Completeness::Complete);
    assert_eq!((conn.malformed_messages, h.cov.malformed_http), (2, 2));
}

#[test]
fn odd_head_and_connect_keep_their_meaning() {
    let mut h = Harness::new();
    // HEAD: the answer's Content-Length announces no body.
    h.c(b"HEAD /HTTP/1.1\nHost: a\n\n");
    h.s(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
    // CONNECT refused: no tunnel, HTTP goes on.
    h.c(b"CONNECT /HTTP/1.1\nHost: a\n\n");
    h.s(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n");
    h.c(b"GET /next HTTP/1.1\r\n\r\n");
    h.s(b"HTTP/1.1 204 No Content\r\n\r\n");
    let (exs, conn) = h.close(CloseReason::Fin);
    let got: Vec<_> = exs
        .iter()
        .map(|e| {
            (
                e.method.as_deref(),
                e.status,
                e.resp_body_bytes,
                e.completeness,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (Some("HEAD"), Some(200), 0, Completeness::Complete),
            (Some("CONNECT"), Some(405), 0, Completeness::Complete),
            (Some("GET"), Some(204), 0, Completeness::Complete),
        ]
    );
    assert_eq!(conn.upgraded_to, None);
    assert_eq!((conn.malformed_messages, h.cov.malformed_http), (2, 2));
}

#[test]
fn odd_request_line_with_body_and_secrets() {
    let mut h = Harness::new();
    let head =
        b"POST /users/12345?token=s3cr3t HTTP/1.\r\nCookie: sid=zq9x\r\nContent-Length: 4\r\n\r\n";
    h.c(head);
    h.c(b"k=v1");
    h.s(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
    let (exs, conn) = h.close(CloseReason::Fin);
    assert_eq!(exs.len(), 1);
    let e = &exs[0];
    assert_eq!(e.route.as_deref(), Some("/users/{id}"));
    assert_eq!(e.req_header_bytes, head.len() as u64);
    assert_eq!((e.req_body_bytes, e.status), (4, Some(201)));
    assert_eq!(e.req_header_names, "cookie,content-length");
    let all = format!("{exs:?}{conn:?}");
    for secret in ["s3cr3t", "zq9x", "12345", "k=v1"] {
        assert!(!all.contains(secret), "{secret} leaked");
    }
}

#[test]
fn other_line_protocol_gives_no_exchange() {
    let mut h = Harness::new();
    // "STAT " looks like a method and a space, so the connection is parsed as HTTP/1.
    h.c(b"STAT 20712282 4547426\n");
    h.c(b"STAT 20714673 4551444\n");
    let (exs, conn) = h.close(CloseReason::Fin);
    assert!(exs.is_empty(), "{exs:?}");
    assert!(conn.malformed_messages >= 1);
    assert_eq!(conn.exchanges, 0);
}

#[test]
fn huge_gaps_in_a_close_delimited_body_saturate() {
    // Found by `arbitrary_events_never_panic`: a gap near u64::MAX, then data.
    let mut h = Harness::new();
    h.c(b"GET / HTTP/1.1\r\n\r\n");
    h.s(b"HTTP/1.1 200 OK\r\n\r\n");
    h.gap(S2C, u64::MAX - 1);
    h.s(b"more");
    let (exs, _) = h.close(CloseReason::Fin);
    assert_eq!(exs[0].resp_body_bytes, u64::MAX);
    assert_eq!(exs[0].completeness, Completeness::Gap);
}

#[test]
fn garbage_in_same_event_resyncs_to_next_request_line() {
    let mut h = Harness::new();
    h.c(b"GET /a HTTP/1.1\r\n\r\n");
    h.s(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    h.c(b"\x00\x01junk\r\nmore junk GET / HTTP/1.1\r\nGET /b HTTP/1.1\r\n\r\n");
    h.s(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
    let (exs, _) = h.close(CloseReason::Fin);
    assert_eq!(exs.len(), 2);
    assert_eq!(
        (exs[1].route.as_deref(), exs[1].status),
        (Some("/b"), Some(202))
    );
    assert_eq!(h.cov.malformed_http, 1);
}

#[test]
fn gap_inside_content_length_body_advances() {
    let mut h = Harness::new();
    h.c(b"POST /bulk HTTP/1.1\r\nContent-Length: 1000\r\n\r\n");
    h.c(&[b'x'; 100]);
    h.gap(C2S, 800);
    h.c(&[b'y'; 100]);
    h.s(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    h.c(b"GET /next HTTP/1.1\r\n\r\n");
    h.s(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    let (exs, _) = h.close(CloseReason::Fin);
    assert_eq!(exs.len(), 2);
    assert_eq!(exs[0].req_body_bytes, 1000);
    assert_eq!(exs[0].completeness, Completeness::Gap);
    assert_eq!(exs[0].status, Some(200));
    assert_eq!(exs[1].completeness, Completeness::Complete);
    assert_eq!(h.cov.http_resyncs, 0);
}

#[test]
fn gap_past_body_end_counts_promised_bytes_and_resyncs() {
    let mut h = Harness::new();
    h.c(b"GET /a HTTP/1.1\r\n\r\n");
    h.s(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n0123456789");
    h.gap(S2C, 500);
    h.c(b"GET /b HTTP/1.1\r\n\r\n");
    h.s(b"tail of something\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
    let (exs, _) = h.close(CloseReason::Fin);
    assert_eq!(exs.len(), 2);
    assert_eq!(
        (exs[0].resp_body_bytes, exs[0].completeness),
        (50, Completeness::Gap)
    );
    assert_eq!(
        (exs[1].route.as_deref(), exs[1].status),
        (Some("/b"), Some(201))
    );
    assert_eq!(exs[1].completeness, Completeness::Complete);
    assert_eq!(h.cov.http_resyncs, 1);
}

#[test]
fn gap_in_response_headers_then_resync() {
    let mut h = Harness::new();
    h.c(b"GET /a HTTP/1.1\r\n\r\n");
    let cut = b"HTTP/1.1 200 OK\r\nContent-Le";
    h.s(cut);
    h.gap(S2C, 40);
    h.s(b"ngth: 3\r\n\r\nabc");
    h.c(b"GET /b HTTP/1.1\r\n\r\n");
    h.s(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    let (exs, _) = h.close(CloseReason::Fin);
    assert_eq!(exs.len(), 2);
    assert_eq!(exs[0].route.as_deref(), Some("/a"));
    assert_eq!(exs[0].status, None);
    assert_eq!(exs[0].resp_header_bytes, cut.len() as u64);
    assert_eq!(exs[0].completeness, Completeness::Gap);
    assert_eq!(
        (exs[1].route.as_deref(), exs[1].status),
        (Some("/b"), Some(404))
    );
    assert_eq!(exs[1].completeness, Completeness::Complete);
    assert_eq!(h.cov.http_resyncs, 1);
}

#[test]
fn gap_in_request_headers_keeps_pairing() {
    let mut h = Harness::new();
    h.c(b"GET /a/77 HTTP/1.1\r\nHo");
    h.gap(C2S, 30);
    h.c(b"st: x\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
    h.s(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    h.s(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    let (exs, _) = h.close(CloseReason::Fin);
    let got = outcomes(&exs);
    assert_eq!(
        got,
        [
            (Some("/a/{id}"), Some(200), Completeness::Gap),
            (Some("/b"), Some(404), Completeness::Complete),
        ]
    );
}

#[test]
fn lost_response_does_not_shift_pairing() {
    // Keep-alive without pipelining: the response to /2 falls entirely in a server gap.
    let mut h = Harness::new();
    h.c(b"GET /one HTTP/1.1\r\n\r\n");
    h.s(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    h.c(b"GET /two HTTP/1.1\r\n\r\n");
    h.gap(S2C, 38);
    h.c(b"GET /three HTTP/1.1\r\n\r\n");
    h.s(b"HTTP/1.1 203 Non-Authoritative\r\nContent-Length: 0\r\n\r\n");
    let (exs, _) = h.close(CloseReason::Fin);
    let got = outcomes(&exs);
    assert_eq!(
        got,
        [
            (Some("/one"), Some(200), Completeness::Complete),
            (Some("/two"), None, Completeness::Gap),
            (Some("/three"), Some(203), Completeness::Complete),
        ]
    );
}

#[test]
fn lost_request_makes_response_unpaired() {
    let mut h = Harness::new();
    h.c(b"GET /one HTTP/1.1\r\n\r\n");
    h.s(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    h.gap(C2S, 19);
    h.s(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
    h.c(b"GET /three HTTP/1.1\r\n\r\n");
    h.s(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
    let (exs, _) = h.close(CloseReason::Fin);
    let got = outcomes(&exs);
    assert_eq!(
        got,
        [
            (Some("/one"), Some(200), Completeness::Complete),
            (None, Some(201), Completeness::Gap),
            (Some("/three"), Some(202), Completeness::Complete),
        ]
    );
}

#[test]
fn response_only_when_capture_starts_late() {
    let mut h = Harness::new();
    h.s(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc");
    let (exs, conn) = h.close(CloseReason::Fin);
    assert_eq!(exs.len(), 1);
    assert_eq!(exs[0].completeness, Completeness::ResponseOnly);
    assert_eq!((exs[0].method.as_ref(), exs[0].status), (None, Some(200)));
    assert_eq!(exs[0].resp_body_bytes, 3);
    assert_eq!(conn.protocol, L7Protocol::Http11);
    assert_eq!(h.cov.incomplete_exchanges, 1);
}

#[test]
fn unanswered_requests_on_close() {
    for (reason, want) in [
        (CloseReason::Fin, Completeness::NoResponse),
        (CloseReason::Rst, Completeness::NoResponse),
        (CloseReason::EndOfCapture, Completeness::Truncated),
        (CloseReason::IdleEvicted, Completeness::Truncated),
    ] {
        let mut h = Harness::new();
        h.c(b"GET /wait HTTP/1.1\r\n\r\n");
        h.c(b"POST /half HTTP/1.1\r\nContent-Length: 10\r\n\r\n12345");
        let (exs, _) = h.close(reason);
        assert_eq!(exs.len(), 2);
        assert_eq!(exs[0].completeness, want, "{reason:?}");
        assert_eq!(
            exs[1].completeness,
            Completeness::Truncated,
            "message in progress"
        );
        assert_eq!(exs[1].req_body_bytes, 5);
        assert_eq!(h.cov.incomplete_exchanges, 2);
    }
}

#[test]
fn truncated_request_headers_keep_method_and_route() {
    let mut h = Harness::new();
    h.c(b"GET /partial/123?secret=1 HTTP/1.1\r\nHost: a\r\n");
    let (exs, conn) = h.close(CloseReason::EndOfCapture);
    assert_eq!(exs.len(), 1);
    assert_eq!(exs[0].method.as_deref(), Some("GET"));
    assert_eq!(exs[0].route.as_deref(), Some("/partial/{id}"));
    assert_eq!(exs[0].completeness, Completeness::Truncated);
    assert_eq!(
        conn.protocol,
        L7Protocol::Http11,
        "version comes from the first request"
    );
}

#[test]
fn header_block_over_cap_is_malformed() {
    let cfg = HttpConfig {
        max_header_bytes: 64,
        ..HttpConfig::default()
    };
    let mut h = Harness::with(cfg);
    h.c(b"GET /a HTTP/1.1\r\n\r\n");
    h.c(b"GET /b HTTP/1.1\r\nX-Long: ");
    h.c(&[b'v'; 100]);
    h.c(b"\r\n\r\n");
    let (_, conn) = h.close(CloseReason::Fin);
    assert_eq!(conn.malformed_messages, 1);
}

fn classify(first: &[u8]) -> (L7Protocol, Interest, Coverage) {
    let mut h = Harness::new();
    let i = if first.is_empty() {
        Interest::Keep
    } else {
        h.c(first)
    };
    let (exs, conn) = h.close(CloseReason::Fin);
    assert!(exs.is_empty());
    (conn.protocol, i, h.cov)
}

#[test]
fn protocol_classification() {
    // HTTP/2 is read (crate::ingest::http2).
    let (p, i, cov) = classify(detect::H2_PREFACE);
    assert_eq!((p, i), (L7Protocol::Http2, Interest::Keep));
    assert_eq!(cov.connections_by_protocol.get("http2"), Some(&1));
    // The start of a ClientHello: TLS, its bytes still wanted until the hello is whole.
    let (p, i, cov) = classify(&[0x16, 3, 1, 0, 0xc8, 1, 0, 0, 0xc4, 3, 3]);
    assert_eq!((p, i), (L7Protocol::Tls, Interest::Keep));
    assert_eq!(
        cov.tls_client_hello_unparsed, 1,
        "closed before the hello was whole"
    );
    // Unknown bytes are held a while, in case they are HTTP/2 frames mid-connection.
    let (p, i, _) = classify(b"\x00\x00\x00\x2c\x0a\x0b binary");
    assert_eq!((p, i), (L7Protocol::Other, Interest::Keep));
    let (p, _, cov) = classify(b"");
    assert_eq!(p, L7Protocol::Empty);
    assert_eq!(cov.connections_by_protocol.get("empty"), Some(&1));
}

/// A ClientHello cut into two segments (after the first 3 bytes: the sniff has decided TLS
/// before the record header is whole) yields the connection's SNI and ALPN. The records
/// are followed on (for the estimates without keys).
#[test]
fn client_hello_split_over_two_segments_names_the_connection() {
    let hello = crate::ingest::tls::tests::hello();
    for cut in [3, 200] {
        let mut h = Harness::new();
        assert_eq!(h.c(&hello[..cut]), Interest::Keep);
        assert_eq!(h.s(&[0x16, 3, 3, 0, 0x5a, 2]), Interest::Keep);
        assert_eq!(h.c(&hello[cut..]), Interest::Keep);
        let (_, conn) = h.close(CloseReason::Fin);
        assert_eq!(conn.protocol, L7Protocol::Tls);
        assert_eq!(conn.tls_sni.as_deref(), Some("tls3.cryptohack.org"));
        assert_eq!(conn.tls_alpn.as_deref(), Some("h2,http/1.1"));
        assert_eq!(
            (h.cov.tls_client_hellos, h.cov.tls_client_hello_unparsed),
            (1, 0)
        );
        assert_eq!(h.stage.held_header_bytes(), 0);
    }
}

/// A gap inside the ClientHello, or a hello over the bound, is counted and not parsed.
#[test]
fn client_hello_lost_or_too_large_is_counted() {
    let hello = crate::ingest::tls::tests::hello();
    let mut h = Harness::new();
    h.c(&hello[..100]);
    h.gap(C2S, 50);
    let (_, conn) = h.close(CloseReason::Fin);
    assert_eq!((conn.protocol, conn.tls_sni), (L7Protocol::Tls, None));
    assert_eq!(h.cov.tls_client_hello_unparsed, 1);
    // All connections' held bytes are bounded together with the header buffers.
    let mut h = Harness::with(HttpConfig {
        max_header_bytes_total: 64,
        ..HttpConfig::default()
    });
    assert_eq!(h.c(&hello[..100]), Interest::Ignore);
    assert_eq!(h.cov.tls_client_hello_unparsed, 1);
    assert_eq!(h.stage.held_header_bytes(), 0);
}

#[test]
fn preface_split_over_events_is_http2() {
    let mut h = Harness::new();
    assert_eq!(h.c(&detect::H2_PREFACE[..3]), Interest::Keep);
    assert_eq!(h.c(&detect::H2_PREFACE[3..]), Interest::Keep);
    let (_, conn) = h.close(CloseReason::Fin);
    assert_eq!(conn.protocol, L7Protocol::Http2);
    assert_eq!(h.cov.malformed_http, 0);
}

#[test]
fn request_line_split_over_events_while_sniffing() {
    let mut h = Harness::new();
    h.c(b"G");
    h.c(b"ET /x HTTP/1.0\r\n");
    h.c(b"\r\n");
    h.s(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
    let (exs, conn) = h.close(CloseReason::Fin);
    assert_eq!(exs.len(), 1);
    assert_eq!(exs[0].req_first, Some(Timestamp(3_000)));
    assert_eq!(exs[0].req_last, Some(Timestamp(5_000)));
    assert_eq!(
        exs[0].req_header_bytes,
        "GET /x HTTP/1.0\r\n\r\n".len() as u64
    );
    assert_eq!(conn.protocol, L7Protocol::Http10);
}

#[test]
fn privacy_no_secret_values_in_records() {
    let secrets = [
        "s3ss10nC00kie",
        "Bearer eyJhbGciOiJIUzI1NiJ9",
        "qv4lue",
        "p4ssw0rd",
        "ali@ce",
        "rsp-c00kie",
    ];
    let req = "GET /users/ali@ce/profile?api_key=qv4lue&x=1 HTTP/1.1\r\nHost: api\r\n\
Cookie: sid=s3ss10nC00kie\r\nAuthorization: Bearer eyJhbGciOiJIUzI1NiJ9\r\n\
X-Password: p4ssw0rd\r\n\r\n";
    let mut h = Harness::new();
    h.c(req.as_bytes());
    h.s(b"HTTP/1.1 200 OK\r\nSet-Cookie: t=rsp-c00kie\r\nContent-Length: 0\r\n\r\n");
    h.c(b"GET http://user:p4ssw0rd@api/x?qv4lue HTTP/1.1\r\nHost: api\r\n");
    h.gap(C2S, 10);
    let recs_before = format!("{:?}", h.recs);
    let (exs, conn) = h.close(CloseReason::EndOfCapture);
    let all = format!("{recs_before}{exs:?}{conn:?}{:?}", h.cov);
    for s in secrets {
        assert!(!all.contains(s), "{s} leaked");
    }
    assert!(
        all.contains("cookie,authorization,x-password"),
        "names are kept"
    );
}

fn normalised(mut e: Exchange) -> Exchange {
    e.req_first = None;
    e.req_last = None;
    e.resp_first = None;
    e.resp_last = None;
    e
}

fn run_split(stream: &[(Direction, &[u8])], cuts: &[usize]) -> Vec<Exchange> {
    let mut h = Harness::new();
    for (dir, bytes) in stream {
        let mut prev = 0;
        for &c in cuts.iter().filter(|&&c| c < bytes.len()) {
            let c = c.max(prev);
            h.push(EventKind::Data {
                dir: *dir,
                bytes: &bytes[prev..c],
                stall_ns: None,
            });
            prev = c;
        }
        h.push(EventKind::Data {
            dir: *dir,
            bytes: &bytes[prev..],
            stall_ns: None,
        });
    }
    let (exs, _) = h.close(CloseReason::Fin);
    exs.into_iter().map(normalised).collect()
}

proptest! {
    #[test]
    fn any_split_yields_the_same_exchange(mut cuts in proptest::collection::vec(0usize..400, 0..12)) {
        cuts.sort_unstable();
        let text = "abc".repeat(50);
        let gz = gzip(text.as_bytes());
        let mut resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n\
Transfer-Encoding: chunked\r\n\r\n{:x};x=y\r\n", gz.len()).into_bytes();
        resp.extend_from_slice(&gz);
        resp.extend_from_slice(b"\r\n0\r\nX-Trailer: 1\r\n\r\n");
        let req = format!("{REQ_HEAD}{REQ_BODY}").into_bytes();
        let stream: [(Direction, &[u8]); 2] = [(C2S, &req), (S2C, &resp)];
        let whole = run_split(&stream, &[]);
        prop_assert_eq!(whole.len(), 1);
        prop_assert_eq!(whole[0].resp_body_decoded_len, Some(150));
        prop_assert_eq!(whole[0].route.as_deref(), Some("/orders/{id}/items/{id}"));
        prop_assert_eq!(whole[0].completeness, Completeness::Complete);
        let split = run_split(&stream, &cuts);
        prop_assert_eq!(split, whole);
    }
}

#[derive(Clone, Debug)]
enum Ev {
    Data(bool, Vec<u8>),
    Gap(bool, u64),
    End(bool),
}

fn ev_strategy() -> impl Strategy<Value = Ev> {
    let pieces = prop_oneof![
        Just(b"GET / HTTP/1.1\r\n".to_vec()),
        Just(b"HTTP/1.1 200 OK\r\n".to_vec()),
        Just(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec()),
        Just(b"HTTP/1.1 101 Switching\r\n\r\n".to_vec()),
        Just(b"Content-Length: 5\r\n".to_vec()),
        Just(b"Transfer-Encoding: chunked\r\n".to_vec()),
        Just(b"Content-Encoding: gzip\r\n".to_vec()),
        Just(b"Expect: 100-continue\r\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"5\r\nhello\r\n0\r\n\r\n".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..40),
    ];
    prop_oneof![
        (any::<bool>(), proptest::collection::vec(pieces, 1..6))
            .prop_map(|(c, p)| Ev::Data(c, p.concat())),
        (any::<bool>(), 0u64..u64::MAX).prop_map(|(c, l)| Ev::Gap(c, l)),
        any::<bool>().prop_map(Ev::End),
    ]
}

proptest! {
    /// Arbitrary event sequences never panic, and every exchange is reported exactly once.
    #[test]
    fn arbitrary_events_never_panic(evs in proptest::collection::vec(ev_strategy(), 0..30)) {
        let cfg = HttpConfig { max_header_bytes: 128, max_pending_requests: 3, ..HttpConfig::default() };
        let mut h = Harness::with(cfg);
        h.c(b"GET /start HTTP/1.1\r\n");
        for e in &evs {
            let dir = |c: bool| if c { C2S } else { S2C };
            match e {
                Ev::Data(c, b) => { h.push(EventKind::Data { dir: dir(*c), bytes: b, stall_ns: None }); }
                Ev::Gap(c, l) => h.gap(dir(*c), *l),
                Ev::End(c) => h.end(dir(*c)),
            }
        }
        let (exs, conn) = h.close(CloseReason::EndOfCapture);
        prop_assert_eq!(exs.len() as u32, conn.exchanges);
        prop_assert_eq!(h.cov.exchanges, u64::from(conn.exchanges));
        let mut idx: Vec<u32> = exs.iter().map(|e| e.index).collect();
        idx.sort_unstable();
        idx.dedup();
        prop_assert_eq!(idx.len(), exs.len(), "indices unique");
    }
}

/// All connections' partial header blocks together stay within `max_header_bytes_total`:
/// the connection that would pass it drops its partial block (counted, malformed) and
/// resynchronises; the memory it held is given back.
#[test]
fn header_buffers_across_connections_stay_within_their_bound() {
    let cfg = HttpConfig {
        max_header_bytes_total: 6000,
        ..HttpConfig::default()
    };
    let mut h = Harness::with(cfg);
    // A header block cut after 3000 bytes stays buffered (first sniffed as HTTP/1).
    let pad = |n: usize| format!("GET /a HTTP/1.1\r\nHost: x\r\nX-Pad: {}", "p".repeat(n));
    h.c(pad(3000).as_bytes());
    assert!(h.stage.held_header_bytes() >= 3000);
    // A second connection buffers another 3500: over the 6000-byte bound.
    h.conn = ConnId(8);
    h.push(EventKind::Opened {
        client: ep(3, 40001),
        server: ep(2, 80),
    });
    h.c(pad(3500).as_bytes());
    assert_eq!(h.cov.header_budget_overflows, 1);
    assert!(
        h.stage.held_header_bytes() <= 6000,
        "{}",
        h.stage.held_header_bytes()
    );
    // The shed connection finds the next request intact.
    h.c(b"\r\n\r\nGET /orders/7 HTTP/1.1\r\nHost: x\r\n\r\n");
    h.s(b"HTTP/1.1 204 No Content\r\n\r\n");
    let (xs, conn) = h.close(CloseReason::Fin);
    assert_eq!(conn.malformed_messages, 1);
    let routes: Vec<_> = xs.iter().filter_map(|x| x.route.clone()).collect();
    assert_eq!(routes, vec!["/orders/{id}".to_string()]);
    // The first connection still completes its request.
    h.conn = ConnId(7);
    h.c(b"\r\n\r\n");
    h.s(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    let (xs, _) = h.close(CloseReason::Fin);
    assert_eq!(xs.len(), 1);
    assert_eq!(xs[0].status, Some(200));
    assert_eq!(xs[0].req_header_bytes as usize, pad(3000).len() + 4);
    assert_eq!(
        h.stage.held_header_bytes(),
        0,
        "closed connections hold nothing"
    );
}

// ---- sender stalls: charged to the message they interrupt ------------------------------

const MS: i64 = 1_000_000;

/// The demo's users service: the response head in one write, the body in the next, held
/// by Nagle until the client's delayed ACK. The stall is the response's, not the request's.
#[test]
fn stall_inside_a_response_body_is_the_responses() {
    let mut h = Harness::new();
    h.c(b"GET /users/7 HTTP/1.1\r\nHost: users\r\n\r\n");
    h.s(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
    h.stalled(S2C, b"hello", 41 * MS);
    let (exs, _) = h.close(CloseReason::Fin);
    assert_eq!(exs.len(), 1);
    assert_eq!(exs[0].resp_stall_ns, Some(41 * MS));
    assert_eq!(exs[0].req_stall_ns, None);
    assert_eq!(exs[0].completeness, Completeness::Complete);
}

/// A request whose header block spans two segments with a stall between them, and a body
/// with two stalls: the request keeps the longest; the response had none.
#[test]
fn longest_stall_inside_a_request_is_kept() {
    let mut h = Harness::new();
    h.c(b"POST /charges HTTP/1.1\r\nHost: p\r\n");
    h.stalled(C2S, b"Content-Length: 6\r\n\r\n", 12 * MS);
    h.c(b"ab");
    h.stalled(C2S, b"cd", 40 * MS);
    h.stalled(C2S, b"ef", 15 * MS);
    h.s(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
    let (exs, _) = h.close(CloseReason::Fin);
    assert_eq!(exs.len(), 1);
    assert_eq!(exs[0].req_stall_ns, Some(40 * MS));
    assert_eq!(exs[0].resp_stall_ns, None);
}

/// A pause before a message starts is the application's (the client thinking, the server
/// working): a stall reported with the first bytes of a message is not counted, on either
/// side, on the first exchange or a later one on the same connection.
#[test]
fn pause_before_a_new_message_is_not_a_stall() {
    let mut h = Harness::new();
    h.stalled(C2S, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", 30 * MS);
    h.stalled(
        S2C,
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        30 * MS,
    );
    h.stalled(C2S, b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n", 30 * MS);
    h.stalled(
        S2C,
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        30 * MS,
    );
    let (exs, _) = h.close(CloseReason::Fin);
    assert_eq!(exs.len(), 2);
    for e in &exs {
        assert_eq!(
            (e.req_stall_ns, e.resp_stall_ns),
            (None, None),
            "{:?}",
            e.route
        );
    }
}

/// A client that sent `Expect: 100-continue` waits for the answer before its body by
/// design: that pause is not the transport's. A stall later in the same body is.
#[test]
fn waiting_for_100_continue_is_not_a_stall() {
    let mut h = Harness::new();
    h.c(b"PUT /blob HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    h.s(b"HTTP/1.1 100 Continue\r\n\r\n");
    h.stalled(C2S, b"ab", 45 * MS);
    h.s(b"HTTP/1.1 204 No Content\r\n\r\n");
    let (exs, _) = h.close(CloseReason::Fin);
    assert_eq!(exs[0].req_stall_ns, None);

    let mut h = Harness::new();
    h.c(b"PUT /blob HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    h.s(b"HTTP/1.1 100 Continue\r\n\r\n");
    h.c(b"ab");
    h.stalled(C2S, b"cd", 45 * MS);
    h.s(b"HTTP/1.1 204 No Content\r\n\r\n");
    let (exs, _) = h.close(CloseReason::Fin);
    assert_eq!(exs[0].req_stall_ns, Some(45 * MS));
}

/// A stall in a message the parser lost track of belongs to no exchange: it must not leak
/// into the next message of that side.
#[test]
fn stall_in_a_message_lost_to_resync_is_dropped() {
    let mut h = Harness::new();
    h.c(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    h.s(b"HTTP/1.1 200 OK\r\n");
    // The rest of the head, after a stall, turns out unreadable: the response is malformed.
    h.stalled(S2C, b"Bad\0Name: v\r\n\r\n", 40 * MS);
    h.c(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n");
    h.s(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");
    h.s(b"ok");
    let (exs, conn) = h.close(CloseReason::Fin);
    assert_eq!(conn.malformed_messages, 1);
    assert_eq!(outcomes(&exs).len(), 2);
    for e in &exs {
        assert_eq!(e.resp_stall_ns, None, "{:?}", e.route);
    }
}

/// A capture that began after the TLS handshake: application-data records from the start.
/// The connection is TLS, counted as not decrypted for want of a handshake, and its turns
/// are still estimated; no ClientHello is counted as unparsed.
#[test]
fn tls_application_data_mid_connection_is_tls_without_a_handshake() {
    let mut h = Harness::new();
    assert_eq!(h.c(&[0x17, 3, 3, 0, 20]), Interest::Keep);
    assert_eq!(h.c(&[9; 20]), Interest::Keep);
    assert_eq!(h.s(&[0x17, 3, 3, 0, 40]), Interest::Keep);
    h.s(&[9; 40]);
    h.c(&[0x17, 3, 3, 0, 30]);
    h.c(&[9; 30]);
    h.s(&[0x17, 3, 3, 0, 50]);
    h.s(&[9; 50]);
    let (_, conn) = h.close(CloseReason::Fin);
    assert_eq!(conn.protocol, L7Protocol::Tls);
    assert_eq!(conn.tls_decryption, Some("no_handshake"));
    assert_eq!(h.cov.tls_undecrypted.get("no_handshake"), Some(&1));
    assert_eq!(h.cov.tls_client_hello_unparsed, 0);
    let e = conn.tls_estimate.expect("turns");
    assert_eq!((e.turns, e.requests, e.mode), (2, Some(2), "http1_turns"));
    // Overhead unknown without a ServerHello: the record bodies are the bytes.
    assert_eq!((e.req_bytes, e.resp_bytes), (50, 90));
}

/// A TLS connection known only by the server's handshake bytes is counted as not
/// decrypted for want of the ClientHello.
#[test]
fn tls_known_only_by_the_server_counts_as_no_handshake() {
    let mut h = Harness::new();
    h.s(&[0x16, 3, 3, 0, 0x5a, 2, 0, 0]);
    let (_, conn) = h.close(CloseReason::Fin);
    assert_eq!(conn.protocol, L7Protocol::Tls);
    assert_eq!(conn.tls_decryption, Some("no_handshake"));
    assert_eq!(h.cov.tls_undecrypted.get("no_handshake"), Some(&1));
}
