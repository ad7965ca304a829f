//! DNS tests on real responses' bytes (taken from corpus captures; the expected values
//! are what `tshark -V` prints for those frames) and on broken ones.

use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::model::{Endpoint, SourceId};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// wireshark_http.cap.pcap frame 17: pagead2.googlesyndication.com A, answered through
/// two CNAMEs (tshark: CNAME pagead2.google.com ttl 48321, CNAME pagead.google.akadns.net
/// ttl 122, A 216.239.59.104 and 216.239.59.99 ttl 123).
const CNAME_CHAIN: &str = "002381800001000400000000077061676561643211676f6f676c6573796e6469636174696f6e03636f6d0000010001c00c000500010000bcc10011077061676561643206676f6f676c65c026c03b000500010000007a001a0670616765616406676f6f676c6506616b61646e73036e657400c058000100010000007b0004d8ef3b68c058000100010000007b0004d8ef3b63";

/// zeek_pcapng-multi-interface.pcapng frame 6: google.com AAAA, four answers, ttl 112.
const AAAA: &str = "00058180000100040000000006676f6f676c6503636f6d00001c0001c00c001c00010000007000102607f8b0402320070000000000000066c00c001c00010000007000102607f8b040232007000000000000008bc00c001c00010000007000102607f8b0402320070000000000000071c00c001c00010000007000102607f8b040232007000000000000008a";

/// zeek_pcapng-multi-interface.pcapng frame 2: www.apple.com, three CNAMEs then an A,
/// with an EDNS OPT record in the additional section.
const APPLE: &str = "4fe88180000100040000000103777777056170706c6503636f6d0000010001c00c000500010000010f001a0d7777772d6170706c652d636f6d0176076161706c696d67c016c02b000500010000010f001b03777777056170706c6503636f6d07656467656b6579036e657400c051000500010000010f00190565363835380564736365390a616b616d616965646765c067c0780001000100000009000417c2651800002904d0000000000000";

/// cryptohack_tls13_h2.pcapng frame 1: the query for tls3.cryptohack.org A.
const QUERY: &str = "63100100000100000000000004746c73330a63727970746f6861636b036f72670000010001";

const RESOLVER: [u8; 4] = [145, 253, 2, 203];
const CLIENT: [u8; 4] = [145, 254, 160, 237];

fn datagram(payload: &[u8], truncated: bool) -> Datagram<'_> {
    Datagram {
        ts: Timestamp(7),
        source: SourceId::default(),
        src: Endpoint::new(IpAddr::V4(Ipv4Addr::from(RESOLVER)), 53),
        dst: Endpoint::new(IpAddr::V4(Ipv4Addr::from(CLIENT)), 3009),
        payload,
        truncated,
    }
}

fn run(payload: &[u8], config: DnsConfig) -> (Vec<DnsAnswer>, Coverage) {
    let mut cov = Coverage::default();
    let mut out = Vec::new();
    DnsStage::new(config).push(&datagram(payload, false), &mut cov, &mut |a| out.push(a));
    (out, cov)
}

fn rows(answers: &[DnsAnswer]) -> Vec<(&str, &str, &str, &str, u32)> {
    answers
        .iter()
        .map(|a| {
            (
                a.query.as_str(),
                a.name.as_str(),
                a.rtype.as_str(),
                a.answer.as_str(),
                a.ttl,
            )
        })
        .collect()
}

#[test]
fn cname_chain_response() {
    let (out, cov) = run(&hex(CNAME_CHAIN), DnsConfig::default());
    let q = "pagead2.googlesyndication.com";
    assert_eq!(
        rows(&out),
        vec![
            (q, q, "CNAME", "pagead2.google.com", 48321),
            (
                q,
                "pagead2.google.com",
                "CNAME",
                "pagead.google.akadns.net",
                122
            ),
            (q, "pagead.google.akadns.net", "A", "216.239.59.104", 123),
            (q, "pagead.google.akadns.net", "A", "216.239.59.99", 123),
        ]
    );
    assert!(out.iter().all(|a| a.ts == Timestamp(7)
        && a.resolver == IpAddr::from(RESOLVER)
        && a.client == IpAddr::from(CLIENT)));
    assert_eq!(
        (cov.dns_responses, cov.dns_answers, cov.dns_malformed),
        (1, 4, 0)
    );
}

#[test]
fn aaaa_and_edns_responses() {
    let (out, _) = run(&hex(AAAA), DnsConfig::default());
    let got: Vec<_> = out.iter().map(|a| (a.rtype, a.answer.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (DnsType::Aaaa, "2607:f8b0:4023:2007::66"),
            (DnsType::Aaaa, "2607:f8b0:4023:2007::8b"),
            (DnsType::Aaaa, "2607:f8b0:4023:2007::71"),
            (DnsType::Aaaa, "2607:f8b0:4023:2007::8a"),
        ]
    );
    // The OPT pseudo-record of the additional section is not an answer.
    let (out, cov) = run(&hex(APPLE), DnsConfig::default());
    let got: Vec<_> = out.iter().map(|a| (a.rtype, a.answer.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (DnsType::Cname, "www-apple-com.v.aaplimg.com"),
            (DnsType::Cname, "www.apple.com.edgekey.net"),
            (DnsType::Cname, "e6858.dsce9.akamaiedge.net"),
            (DnsType::A, "23.194.101.24"),
        ]
    );
    assert_eq!(out[3].name, "e6858.dsce9.akamaiedge.net");
    assert_eq!(cov.dns_answers, 4);
}

#[test]
fn queries_and_errors_give_no_rows() {
    let (out, cov) = run(&hex(QUERY), DnsConfig::default());
    assert!(out.is_empty());
    assert_eq!((cov.dns_responses, cov.dns_malformed), (0, 0));
    // The same response with rcode 3 (NXDOMAIN): a response, no answers kept.
    let mut nx = hex(CNAME_CHAIN);
    nx[3] |= 3;
    let (out, cov) = run(&nx, DnsConfig::default());
    assert!(out.is_empty());
    assert_eq!((cov.dns_responses, cov.dns_answers), (1, 0));
}

#[test]
fn names_are_lower_cased() {
    let mut b = hex(CNAME_CHAIN);
    // "pagead2" of the question, at offset 13, in capitals; the compressed owner name of
    // the first answer points to it.
    b[13..20].copy_from_slice(b"PAGEAD2");
    let (out, _) = run(&b, DnsConfig::default());
    assert_eq!(out[0].query, "pagead2.googlesyndication.com");
    assert_eq!(out[0].name, "pagead2.googlesyndication.com");
}

#[test]
fn answers_over_the_bound_are_counted_not_kept() {
    let (out, cov) = run(&hex(CNAME_CHAIN), DnsConfig { max_answers: 3 });
    assert_eq!(out.len(), 3);
    assert_eq!((cov.dns_answers, cov.dns_answers_dropped), (3, 1));
}

#[test]
fn malformed_and_truncated_are_counted() {
    let full = hex(CNAME_CHAIN);
    // Every prefix of a response: each is either parsed whole or counted as malformed.
    for len in 0..full.len() {
        let (out, cov) = run(&full[..len], DnsConfig::default());
        assert!(out.is_empty(), "prefix {len}");
        assert_eq!(cov.dns_malformed, 1, "prefix {len}");
    }
    // Counts far beyond the datagram are refused before parsing.
    let mut big = full.clone();
    big[6] = 0xff;
    let (_, cov) = run(&big, DnsConfig::default());
    assert_eq!(cov.dns_malformed, 1);
    // A compression pointer to itself must not loop.
    let mut looped = full.clone();
    let at = 47; // the first answer's owner name, `c0 0c`
    assert_eq!(&looped[at..at + 2], &[0xc0, 0x0c]);
    looped[at + 1] = at as u8;
    let (_, cov) = run(&looped, DnsConfig::default());
    assert_eq!(cov.dns_malformed, 1);
    // Snaplen-cut datagrams are malformed too, with their own reason.
    let cut = datagram(&full[..40], true);
    assert_eq!(
        parse_response(&cut, &mut Vec::new()),
        Err(DnsError::Truncated)
    );
}

#[test]
fn never_panics_on_random_bytes() {
    use proptest::prelude::*;
    proptest!(|(mut bytes in proptest::collection::vec(any::<u8>(), 0..300), flip in any::<u16>())| {
        // Mostly responses, so that the parser is reached.
        if bytes.len() > 2 {
            bytes[2] |= 0x80;
        }
        let mut real = hex(CNAME_CHAIN);
        let i = usize::from(flip) % real.len();
        real[i] ^= (flip >> 8) as u8 | 1;
        for b in [&bytes, &real] {
            let _ = run(b, DnsConfig::default());
        }
    });
}
