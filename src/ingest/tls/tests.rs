//! ClientHello tests on a real hello's bytes (cryptohack_tls13_h2.pcapng frame 8; tshark
//! prints SNI `tls3.cryptohack.org`, ALPN `h2,http/1.1` for it) cut and broken in ways a
//! capture cuts and breaks them.

use super::*;

const HELLO: &str = "1603010200010001fc0303210cb7af9f5da56460d21cda98cda0ac82b979e15979482182e037cf42f663c620120275cbc2b9a00782d009a50d048d2eb5cbbe2a8fb0a12307db5ac1ee942c5500b6130213031301c02cc03000a3009fcca9cca8ccaac0afc0adc0a3c09fc05dc061c057c05300a7c02bc02f00a2009ec0aec0acc0a2c09ec05cc060c056c05200a6c024c028006b006ac073c07700c400c3006d00c5c023c02700670040c072c07600be00bd006c00bfc00ac0140039003800880087c019003a0089c009c01300330032009a009900450044c0180034009b0046009dc0a1c09dc051009cc0a0c09cc050003d00c0003c00ba00350084002f0096004100ff010000fd000000180016000013746c73332e63727970746f6861636b2e6f7267000b000403000102000a00160014001d0017001e0019001801000101010201030104337400000010000e000c02683208687474702f312e31001600000017000000310000000d0030002e040305030603080708080809080a080b080408050806040105010601030302030301020103020202040205020602002b0009080304030303020301002d00020101003300260024001d00208fdfcd4fad1b89daae161ac3d3189eeec9b165049c690326d50b13984cfd74100015002800000000000000000000000000000000000000000000000000000000000000000000000000000000";

/// The hello's bytes (also used by the HTTP stage's tests).
pub(crate) fn hello() -> Vec<u8> {
    (0..HELLO.len() / 2)
        .map(|i| u8::from_str_radix(&HELLO[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn expected() -> Hello {
    Hello::Parsed(HelloNames {
        sni: Some("tls3.cryptohack.org".into()),
        alpn: Some("h2,http/1.1".into()),
    })
}

#[test]
fn whole_hello_in_one_segment() {
    let b = hello();
    assert_eq!(b.len(), 517, "tshark: tcp.len 517");
    assert_eq!(parse_client_hello(&b), expected());
    let mut buf = HelloBuffer::new();
    assert_eq!(buf.push(&b), expected());
    assert!(
        buf.is_empty(),
        "a whole hello is parsed in place, not copied"
    );
}

#[test]
fn hello_split_over_two_segments() {
    let b = hello();
    for cut in [1, 3, 5, 6, 9, 100, 300, 516] {
        let mut buf = HelloBuffer::new();
        assert_eq!(buf.push(&b[..cut]), Hello::NeedMore, "cut at {cut}");
        assert_eq!(buf.len(), cut);
        assert_eq!(buf.push(&b[cut..]), expected(), "cut at {cut}");
    }
}

/// The same handshake message cut into two TLS records (RFC 8446 §5.1 allows it).
#[test]
fn hello_split_over_two_records() {
    let b = hello();
    let msg = &b[5..];
    let (first, second) = msg.split_at(200);
    let record = |frag: &[u8]| {
        let mut r = vec![0x16, 3, 1];
        r.extend_from_slice(&(frag.len() as u16).to_be_bytes());
        r.extend_from_slice(frag);
        r
    };
    let stream = [record(first), record(second)].concat();
    assert_eq!(parse_client_hello(&stream), expected());
    let mut buf = HelloBuffer::new();
    assert_eq!(buf.push(&stream[..203]), Hello::NeedMore);
    assert_eq!(buf.push(&stream[203..]), expected());
}

#[test]
fn not_a_client_hello() {
    // An application-data record.
    assert_eq!(
        parse_client_hello(&[0x17, 3, 3, 0, 2, 1, 2]),
        Hello::Failed(HelloError::NotHandshake)
    );
    // A ServerHello (type 2) where the client's hello should be.
    let mut b = hello();
    b[5] = 2;
    assert_eq!(
        parse_client_hello(&b),
        Hello::Failed(HelloError::NotClientHello)
    );
}

#[test]
fn oversized_hello_is_refused_early() {
    // A handshake length of 1 MiB: refused on its header, nothing more buffered.
    let mut b = hello();
    b[6..9].copy_from_slice(&[0x10, 0, 0]);
    let mut buf = HelloBuffer::new();
    assert_eq!(buf.push(&b), Hello::Failed(HelloError::TooLarge));
    // Records that never complete a message stop at the cap.
    let mut buf = HelloBuffer::new();
    let mut last = Hello::NeedMore;
    let chunk = [0x16, 3, 1, 0, 4, 1, 0, 0x7f, 0xff];
    let mut pushed = 0;
    while last == Hello::NeedMore && pushed < 4 * MAX_HELLO_BYTES {
        let part = if pushed == 0 {
            &chunk[..]
        } else {
            &[0x16, 3, 1, 0, 4, 0, 0, 0, 0][..]
        };
        last = buf.push(part);
        pushed += part.len();
        assert!(buf.len() <= MAX_HELLO_BYTES);
    }
    assert_eq!(last, Hello::Failed(HelloError::TooLarge));
}

#[test]
fn hello_without_extensions_has_no_names() {
    // ClientHello: version, random, empty session id, one suite, null compression.
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
    let mut msg = vec![1, 0, 0, body.len() as u8];
    msg.extend_from_slice(&body);
    let mut rec = vec![0x16, 3, 1, 0, msg.len() as u8];
    rec.extend_from_slice(&msg);
    assert_eq!(
        parse_client_hello(&rec),
        Hello::Parsed(HelloNames::default())
    );
}

#[test]
fn sni_is_lower_cased() {
    let mut b = hello();
    let at = b.windows(4).position(|w| w == b"tls3").unwrap();
    b[at..at + 4].copy_from_slice(b"TLS3");
    let Hello::Parsed(n) = parse_client_hello(&b) else {
        panic!("not parsed")
    };
    assert_eq!(n.sni.as_deref(), Some("tls3.cryptohack.org"));
}

#[test]
fn never_panics_on_broken_hellos() {
    use proptest::prelude::*;
    proptest!(|(flips in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..8), cut in any::<u16>())| {
        let mut b = hello();
        for (at, x) in flips {
            let i = usize::from(at) % b.len();
            b[i] ^= x;
        }
        let cut = usize::from(cut) % (b.len() + 1);
        let mut buf = HelloBuffer::new();
        let _ = buf.push(&b[..cut]);
        let _ = buf.push(&b[cut..]);
        let _ = parse_client_hello(&b);
    });
}
