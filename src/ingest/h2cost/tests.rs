//! Expected octets come from RFC 7541 Appendix C and from hand arithmetic with the
//! Huffman code lengths of RFC 7541 Appendix B, never from this code's own output.

use super::hpack::{policy, Hpack};
use super::*;

/// Octets of each field of `fields`, in order.
fn encode(enc: &mut Hpack, fields: &[(&str, &str)]) -> Vec<usize> {
    fields
        .iter()
        .map(|(n, v)| enc.field(n.as_bytes(), v.as_bytes(), policy(n.as_bytes(), false)))
        .collect()
}

/// The octet strings of an RFC 7541 example, one per field, as their lengths.
fn lens(fields: &[&str]) -> Vec<usize> {
    fields.iter().map(|f| hex(f).len()).collect()
}

pub(crate) fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const C_REQ1: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
];
const C_REQ2: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
    ("cache-control", "no-cache"),
];
const C_REQ3: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "https"),
    (":path", "/index.html"),
    (":authority", "www.example.com"),
    ("custom-key", "custom-value"),
];

/// RFC 7541 C.3: the same three requests without Huffman coding, field by field.
#[test]
fn rfc7541_c3_requests_without_huffman() {
    let mut enc = Hpack::new(false);
    let want: [&[&str]; 3] = [
        &[
            "82",
            "86",
            "84",
            "41 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        ],
        &["82", "86", "84", "be", "5808 6e6f 2d63 6163 6865"],
        &[
            "82",
            "87",
            "85",
            "bf",
            "400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
        ],
    ];
    for (fields, want) in [C_REQ1, C_REQ2, C_REQ3].iter().zip(want) {
        assert_eq!(encode(&mut enc, fields), lens(want));
    }
    // RFC 7541 C.3.3: table size 164.
    assert_eq!(enc.held_bytes(), 164);
}

/// RFC 7541 C.4: with Huffman coding (17, 12 and 24 octets).
#[test]
fn rfc7541_c4_requests_with_huffman() {
    let mut enc = Hpack::new(true);
    let want: [&[&str]; 3] = [
        &["82", "86", "84", "41 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"],
        &["82", "86", "84", "be", "5886 a8eb 1064 9cbf"],
        &[
            "82",
            "87",
            "85",
            "bf",
            "4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
        ],
    ];
    for (fields, want) in [C_REQ1, C_REQ2, C_REQ3].iter().zip(want) {
        assert_eq!(encode(&mut enc, fields), lens(want));
    }
    // Three entries indexed: 57 + 53 + 54 octets (RFC 7541 C.4.3 table size 164).
    assert_eq!(enc.held_bytes(), 164);
}

/// httlib-hpack's encoder told the same choices, as the reference: the octets it writes
/// for each field.
struct Reference {
    enc: httlib_hpack::Encoder<'static>,
}

impl Reference {
    fn field(&mut self, name: &[u8], value: &[u8], index: super::hpack::Index) -> usize {
        use httlib_hpack::Encoder;
        let entry = name.len() + value.len() + 32;
        let index = match index {
            super::hpack::Index::Yes if entry > 3072 => super::hpack::Index::No,
            i => i,
        };
        let mut flags = Encoder::BEST_FORMAT;
        flags |= match index {
            super::hpack::Index::Yes => Encoder::WITH_INDEXING,
            super::hpack::Index::Never => Encoder::NEVER_INDEXED,
            super::hpack::Index::No => 0,
        };
        let huffman = |s: &[u8]| {
            let mut h = Vec::new();
            httlib_huffman::encode(s, &mut h).unwrap();
            !s.is_empty() && h.len() + hpack_int_len(h.len()) < s.len() + hpack_int_len(s.len())
        };
        if huffman(name) {
            flags |= Encoder::HUFFMAN_NAME;
        }
        if huffman(value) {
            flags |= Encoder::HUFFMAN_VALUE;
        }
        let mut out = Vec::new();
        self.enc
            .encode((name.to_vec(), value.to_vec(), flags), &mut out)
            .unwrap();
        out.len()
    }
}

/// Octets of a string-length integer with a 7-bit prefix.
fn hpack_int_len(n: usize) -> usize {
    if n < 127 {
        1
    } else {
        2 + (n - 127).checked_ilog(128).map_or(0, |l| l as usize)
    }
}

proptest::proptest! {
    /// Field after field, the octet count equals what httlib-hpack writes, over lists that
    /// repeat names and values (full, name-only and static matches, evictions past the
    /// 4096-octet table, entries over 3/4 of it, secrets); and so does an encoder whose
    /// fields and names all share one hash, which finds them by scanning the table.
    #[test]
    fn octets_equal_httlib_hpack(
        fields in proptest::collection::vec((0usize..12, 0usize..6, 0usize..3000), 1..300)
    ) {
        const NAMES: [&str; 12] = [
            ":method", ":path", ":authority", "accept", "user-agent", "x-request-id",
            "authorization", "cookie", "content-length", "traceparent", "x-custom", "etag",
        ];
        const VALUES: [&str; 6] = ["GET", "/", "application/json", "", "é\u{7f}", "gzip, deflate"];
        let mut ours = Hpack::new(true);
        let mut colliding = Hpack::colliding(true);
        let mut reference = Reference { enc: httlib_hpack::Encoder::with_dynamic_size(4096) };
        for (n, v, len) in fields {
            let name = NAMES[n].as_bytes();
            // A value from the small set (matches) or a fresh one of `len` octets.
            let long;
            let value = if len % 3 == 0 {
                VALUES[v].as_bytes()
            } else {
                long = format!("{v}{}", "z".repeat(len % 200 + if len > 2500 { 3000 } else { 0 }));
                long.as_bytes()
            };
            let index = policy(name, n == 1 && v == 0);
            let want = reference.field(name, value, index);
            proptest::prop_assert_eq!(ours.field(name, value, index), want);
            proptest::prop_assert_eq!(colliding.field(name, value, index), want);
        }
    }
}

/// Secrets and per-message values are never put in the table (RFC 7541 §6.2.2, §6.2.3).
#[test]
fn secrets_are_not_indexed() {
    let mut enc = Hpack::new(true);
    let a = encode(
        &mut enc,
        &[("authorization", "Bearer xyz"), ("cookie", "s=1")],
    );
    // authorization: never indexed with static name 23 (0001 1111 then 8, two octets),
    // "Bearer xyz" Huffman-coded in 7+5+5+6+5+6+6+7+7+8 = 62 bits, 8 octets, and its
    // length; cookie: without indexing with static name 32 (0000 1111 then 17), "s=1" in
    // 5+6+5 bits, 2 octets, and its length.
    assert_eq!(a, vec![2 + 8 + 1, 2 + 2 + 1]);
    assert_eq!(enc.held_bytes(), 0);
    let b = encode(
        &mut enc,
        &[("authorization", "Bearer xyz"), ("cookie", "s=1")],
    );
    assert_eq!(a, b, "not indexed, so a repeat costs the same");
}

fn parse_req(raw: &[u8]) -> (String, String, Vec<(String, Vec<u8>)>) {
    let mut h = [httparse::EMPTY_HEADER; 32];
    let mut r = httparse::Request::new(&mut h);
    r.parse(raw).unwrap();
    let hs = r
        .headers
        .iter()
        .map(|h| (h.name.to_owned(), h.value.to_vec()))
        .collect();
    (r.method.unwrap().to_owned(), r.path.unwrap().to_owned(), hs)
}

fn request(replay: &mut Replay, raw: &[u8], route: Option<&str>) -> HeadCost {
    let (method, target, hs) = parse_req(raw);
    let headers: Vec<httparse::Header<'_>> = hs
        .iter()
        .map(|(n, v)| httparse::Header { name: n, value: v })
        .collect();
    replay
        .request(&Request {
            method: &method,
            target: &target,
            route,
            headers: &headers,
        })
        .unwrap()
}

fn response(replay: &mut Replay, status: u16, reason: &str, hs: &[(&str, &str)]) -> HeadCost {
    let headers: Vec<httparse::Header<'_>> = hs
        .iter()
        .map(|(n, v)| httparse::Header {
            name: n,
            value: v.as_bytes(),
        })
        .collect();
    replay
        .response(&Response {
            status,
            reason,
            headers: &headers,
        })
        .unwrap()
}

/// The HTTP/1 request of RFC 7541 C.4.1 becomes exactly its header list: 17 octets of
/// HPACK plus a 9-octet frame header; Host and Connection are not sent.
#[test]
fn http1_request_becomes_the_rfc_list() {
    let mut r = Replay::new();
    let c = request(
        &mut r,
        b"GET / HTTP/1.1\r\nHost: www.example.com\r\nConnection: keep-alive\r\n\r\n",
        Some("/"),
    );
    assert_eq!(c.h2, 17 + 9);
}

/// gRPC response of a fresh connection, by hand (RFC 7541 Appendix B code lengths):
/// HEADERS: `:status 200` (static 8, 1 octet), `content-type: application/grpc` (0x5f,
/// Huffman 88 bits = 11 octets + length: 13), `grpc-accept-encoding: identity, deflate,
/// gzip` (0x40, name 110 bits = 14 + 1, value 134 bits = 17 + 1: 34), + 9; DATA 9 +
/// prefix 5; trailers `grpc-status: 0` (0x40, name 60 bits = 8 + 1, plain value 1 + 1: 12)
/// and `grpc-message` empty without indexing (0x00, name 66 bits = 9 + 1, length 0: 12),
/// + 9.
#[test]
fn grpc_response_framing_by_hand() {
    let mut r = Replay::new();
    let c = response(&mut r, 200, "OK", &[("Content-Type", "application/json")]);
    assert_eq!(c.grpc, (1 + 13 + 34 + 9) + (9 + 5) + (12 + 12 + 9));
    // HTTP/2: `:status 200` indexed (1), content-type name 31 with value
    // `application/json` (Huffman 88 bits: 11 + 1 + 1 for the representation) + 9.
    assert_eq!(c.h2, 1 + 13 + 9);
    // The same response again: every indexed field is one octet; grpc-message is not
    // indexed, so it costs its 12 octets again (grpc-core does the same: 25-octet trailers
    // on every call of fixtures/grpc_vs_json.pcap).
    let c = response(&mut r, 200, "OK", &[("Content-Type", "application/json")]);
    assert_eq!(c.h2, 2 + 9);
    assert_eq!(c.grpc, (3 + 9) + (9 + 5) + (1 + 12 + 9));
}

/// An error status adds `grpc-message`; an interim response costs nothing in gRPC.
#[test]
fn grpc_error_and_interim() {
    let mut r = Replay::new();
    let ok = response(&mut r, 200, "OK", &[]);
    let mut r = Replay::new();
    let nf = response(&mut r, 404, "Not Found", &[]);
    assert!(nf.grpc > ok.grpc + "Not Found".len() as u64 / 2);
    let cont = response(&mut r, 100, "Continue", &[]);
    assert_eq!(cont.grpc, 0);
    // `:status 100` is not in the static table: 0x48 (indexed name 8, incremental
    // indexing), then `100` Huffman-coded in 15 bits (2 octets) after its length octet.
    assert_eq!(cont.h2, 1 + 1 + 2 + 9);
}

/// A warm connection sends much smaller blocks (the dynamic table works), in both replays.
#[test]
fn second_request_is_much_smaller() {
    let raw = b"POST /api/orders?x=1 HTTP/1.1\r\nHost: orders.internal:8080\r\n\
        User-Agent: python-requests/2.31\r\nAccept: application/json\r\n\
        Content-Type: application/json\r\nContent-Length: 42\r\n\
        traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n";
    let mut r = Replay::new();
    let first = request(&mut r, raw, Some("/api/orders"));
    let second = request(&mut r, raw, Some("/api/orders"));
    assert!(first.h2 < raw.len() as u64);
    assert!(second.h2 * 3 < first.h2, "{second:?} vs {first:?}");
    assert!(second.grpc * 2 < first.grpc, "{second:?} vs {first:?}");
}

#[test]
fn connection_specific_fields_cost_nothing() {
    let mut a = Replay::new();
    let mut b = Replay::new();
    let plain = request(&mut a, b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n", None);
    let extra = request(
        &mut b,
        b"GET /x HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\
          HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\nKeep-Alive: 5\r\nTE: gzip\r\n\r\n",
        None,
    );
    assert_eq!(plain, extra);
}

/// Absolute-form targets give `:authority` and `:path`; CONNECT has neither :path nor
/// :scheme (RFC 9113 §8.5).
#[test]
fn target_forms() {
    assert_eq!(
        split_target("http://a.b:8/x?q=1"),
        (Some("a.b:8"), "/x?q=1")
    );
    assert_eq!(split_target("http://a.b?q"), (Some("a.b"), "/"));
    assert_eq!(split_target("/p?u=http://x"), (None, "/p?u=http://x"));
    assert_eq!(split_target("*"), (None, "*"));
    let mut r = Replay::new();
    let c = request(&mut r, b"CONNECT db:5432 HTTP/1.1\r\n\r\n", None);
    // :method CONNECT: name 2 literal (0x42), 7 octets Huffman-coded shorter? C,O,N,E,T
    // are 7-bit codes: 49 bits = 7 octets, not shorter, so plain 1 + 7; :authority
    // `db:5432` (0x41, Huffman d6 b6 :7 5,4,3,2 5/6/6/5 = 46 bits = 6 octets + 1).
    assert_eq!(c.h2, (1 + 8) + (1 + 7) + 9);
}

#[test]
fn frame_arithmetic() {
    assert_eq!(data_frames(0), 0);
    assert_eq!(data_frames(1), 9);
    assert_eq!(data_frames(16384), 9);
    assert_eq!(data_frames(16385), 18);
    assert_eq!(headers_frames(0), 9);
    assert_eq!(headers_frames(16384), 16384 + 9);
    assert_eq!(headers_frames(16385), 16385 + 18);
}

#[test]
fn grpc_names() {
    assert_eq!(
        grpc_path(
            Some("orders-api.internal:8080"),
            "GET",
            Some("/orders/{id}")
        ),
        "/linkrank.OrdersApi/GetOrdersId"
    );
    assert_eq!(
        grpc_path(Some("10.0.0.7:80"), "POST", None),
        "/linkrank.Service/Post"
    );
    assert_eq!(
        grpc_path(None, "DELETE", Some("/")),
        "/linkrank.Service/Delete"
    );
    let long = grpc_path(Some("a"), "GET", Some(&"/segment".repeat(40)));
    assert_eq!(long.len(), "/linkrank.A/".len() + 48);
    assert_eq!(
        [200, 204, 400, 401, 403, 404, 409, 429, 499, 500, 501, 503, 504, 302, 418]
            .map(grpc_status),
        [0, 0, 3, 16, 7, 5, 6, 8, 1, 13, 12, 14, 4, 2, 2]
    );
}

/// A replay a closed connection gave back costs every head as a new one does: its
/// tables start empty whatever the connection before it inserted.
#[test]
fn a_recycled_replay_is_a_new_one() {
    let exchange = |r: &mut Replay, i: usize| {
        let raw = format!(
            "GET /orders/{i} HTTP/1.1\r\nHost: orders:8080\r\nUser-Agent: curl/8.5.0\r\nX-Request-Id: req-{i}\r\nAccept: */*\r\n\r\n"
        );
        let req = request(r, raw.as_bytes(), Some("/orders/{id}"));
        let resp = response(
            r,
            200,
            "OK",
            &[("Content-Type", "application/json"), ("ETag", "\"v1\"")],
        );
        (req, resp)
    };
    // Fill one replay past its 4096-octet tables, so that the recycled one had evicted.
    let mut first = Replay::fresh();
    for i in 0..200 {
        exchange(&mut first, i);
    }
    assert!(first.held_bytes() > 6000, "both request tables full");
    let held = first.held_bytes();
    first.recycle();
    let mut again = Replay::fresh();
    assert_eq!(
        again.held_bytes(),
        0,
        "the recycled replay ({held} octets) was emptied"
    );
    let mut new = Replay::new();
    for i in 0..50 {
        assert_eq!(
            exchange(&mut again, i),
            exchange(&mut new, i),
            "exchange {i}"
        );
    }
}
