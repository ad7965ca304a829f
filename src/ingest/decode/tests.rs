//! Decoder tests: byte arrays per link type and encapsulation, fragment reassembly, and
//! real captures (read with pcap-parser directly, independent of the capture module).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{IpNumber, Ipv4Header, PacketBuilder};

use super::*;

const PAYLOAD: &[u8] = b"GET / HTTP/1.1\r\n\r\n";
const A4: [u8; 4] = [10, 0, 0, 1];
const B4: [u8; 4] = [10, 0, 0, 2];
const A6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const B6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

/// IPv4 + TCP (PSH|ACK, 20-byte header) carrying `payload`.
fn ip4_tcp(payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ipv4(A4, B4, 64)
        .tcp(40000, 80, 1000, 512)
        .ack(77)
        .psh();
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}

fn ip6_tcp(payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ipv6(A6, B6, 64)
        .tcp(40000, 443, 5, 1024)
        .syn();
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}

/// An outer IPv4 header (10.9.9.1 -> 10.9.9.2) with protocol `proto` around `inner`.
fn ip4_wrap(proto: u8, inner: &[u8]) -> Vec<u8> {
    let h = Ipv4Header::new(
        inner.len() as u16,
        64,
        IpNumber(proto),
        [10, 9, 9, 1],
        [10, 9, 9, 2],
    )
    .unwrap();
    let mut out = Vec::new();
    h.write(&mut out).unwrap();
    out.extend_from_slice(inner);
    out
}

/// Outer IPv4 + UDP to `dst_port` around `inner`.
fn udp4(dst_port: u16, inner: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ipv4([10, 9, 9, 1], [10, 9, 9, 2], 64).udp(50000, dst_port);
    let mut out = Vec::new();
    b.write(&mut out, inner).unwrap();
    out
}

fn eth(ether_type: u16, inner: &[u8]) -> Vec<u8> {
    let mut out = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    out.extend(ether_type.to_be_bytes());
    out.extend_from_slice(inner);
    out
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn frame_at(link: LinkType, data: &[u8], ts: i64) -> Frame<'_> {
    Frame {
        ts: Timestamp(ts),
        link,
        source: SourceId::default(),
        orig_len: data.len() as u32,
        data,
    }
}

fn frame(link: LinkType, data: &[u8]) -> Frame<'_> {
    frame_at(link, data, 0)
}

/// Decodes one frame with a fresh decoder; returns (src, dst, payload, wire_len) and coverage.
type Decoded = Option<(Endpoint, Endpoint, Vec<u8>, u32)>;

fn one(link: LinkType, data: &[u8]) -> (Decoded, Coverage) {
    let mut d = Decoder::new(DecodeConfig::default());
    let mut cov = Coverage::default();
    let seg = d
        .decode(&frame(link, data), &mut cov)
        .map(|s| (s.src, s.dst, s.payload.to_vec(), s.wire_len));
    (seg, cov)
}

fn ep(ip: [u8; 4], port: u16) -> Endpoint {
    Endpoint::new(IpAddr::V4(Ipv4Addr::from(ip)), port)
}

/// Asserts the frame decodes to the IPv4 test segment (10.0.0.1:40000 -> 10.0.0.2:80).
fn assert_v4(link: LinkType, data: &[u8]) -> Coverage {
    let (seg, cov) = one(link, data);
    let (src, dst, payload, wire) = seg.expect("a segment");
    assert_eq!((src, dst), (ep(A4, 40000), ep(B4, 80)));
    assert_eq!(payload, PAYLOAD);
    assert_eq!(wire as usize, PAYLOAD.len());
    assert_eq!(cov.tcp_segments, 1);
    cov
}

fn assert_v6(link: LinkType, data: &[u8]) {
    let (seg, cov) = one(link, data);
    let (src, dst, payload, _) = seg.expect("a segment");
    assert_eq!(src.ip, IpAddr::V6(Ipv6Addr::from(A6)));
    assert_eq!(dst, Endpoint::new(IpAddr::V6(Ipv6Addr::from(B6)), 443));
    assert_eq!(payload, PAYLOAD);
    assert_eq!(cov.tcp_segments, 1);
}

#[test]
fn ethernet_ipv4_fields() {
    let data = eth(0x0800, &ip4_tcp(PAYLOAD));
    let mut d = Decoder::new(DecodeConfig::default());
    let mut cov = Coverage::default();
    let s = d
        .decode(&frame_at(LinkType::Ethernet, &data, 42), &mut cov)
        .unwrap();
    assert_eq!((s.seq, s.ack, s.window), (1000, 77, 512));
    assert_eq!(s.flags.0, TcpFlags::PSH | TcpFlags::ACK);
    assert!(s.flags.ack() && !s.flags.syn() && !s.flags.fin() && !s.flags.rst());
    assert_eq!(s.ts, Timestamp(42));
    assert_eq!(s.payload, PAYLOAD);
}

#[test]
fn ethernet_padding_is_not_payload() {
    // A SYN padded to the 60-byte Ethernet minimum: IPv4 total length bounds the payload.
    let mut data = eth(0x0800, &ip4_tcp(b""));
    data.resize(60, 0);
    let (seg, _) = one(LinkType::Ethernet, &data);
    let (_, _, payload, wire) = seg.unwrap();
    assert!(payload.is_empty());
    assert_eq!(wire, 0);
}

#[test]
fn null_and_loop_families_both_byte_orders() {
    let v4 = ip4_tcp(PAYLOAD);
    let v6 = ip6_tcp(PAYLOAD);
    // AF_INET = 2 in little-endian (x86 macOS) and big-endian hosts.
    assert_v4(LinkType::Null, &cat(&[&2u32.to_le_bytes(), &v4]));
    assert_v4(LinkType::Null, &cat(&[&2u32.to_be_bytes(), &v4]));
    // AF_INET6 of NetBSD/OpenBSD (24), FreeBSD (28), macOS (30).
    for family in [24u32, 28, 30] {
        assert_v6(LinkType::Null, &cat(&[&family.to_le_bytes(), &v6]));
        assert_v6(LinkType::Null, &cat(&[&family.to_be_bytes(), &v6]));
    }
    assert_v4(LinkType::Loop, &cat(&[&2u32.to_be_bytes(), &v4]));
    // LOOP is big-endian only: a little-endian 2 is an unknown family.
    let (seg, cov) = one(LinkType::Loop, &cat(&[&2u32.to_le_bytes(), &v4]));
    assert!(seg.is_none());
    assert_eq!(cov.non_ip, 1);
    let (_, cov) = one(LinkType::Null, &cat(&[&7u32.to_le_bytes(), &v4]));
    assert_eq!(cov.non_ip, 1);
    let (_, cov) = one(LinkType::Null, &[2, 0]);
    assert_eq!(cov.decode_errors, 1);
}

#[test]
fn raw_ip_link_types() {
    assert_v4(LinkType::RawIp, &ip4_tcp(PAYLOAD));
    assert_v6(LinkType::RawIp, &ip6_tcp(PAYLOAD));
    assert_v4(LinkType::Ipv4, &ip4_tcp(PAYLOAD));
    assert_v6(LinkType::Ipv6, &ip6_tcp(PAYLOAD));
    let (_, cov) = one(LinkType::RawIp, &[0x10, 0, 0]);
    assert_eq!(cov.non_ip, 1);
    let (_, cov) = one(LinkType::Other(147), &ip4_tcp(PAYLOAD));
    assert_eq!(cov.unsupported_link, 1);
    assert_eq!(cov.tcp_segments, 0);
}

#[test]
fn linux_sll_v1_and_v2() {
    // SLL v1: packet type 0 (to us), ARPHRD_LOOPBACK 772, addr len 6, addr[8], protocol.
    let mut sll = vec![0, 0, 0x03, 0x04, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0];
    sll.extend(0x0800u16.to_be_bytes());
    assert_v4(LinkType::LinuxSll, &cat(&[&sll, &ip4_tcp(PAYLOAD)]));
    // SLL v2: protocol, reserved, ifindex 1, ARPHRD_ETHER 1, pkttype 4, addrlen 6, addr[8].
    let mut sll2 = 0x86DDu16.to_be_bytes().to_vec();
    sll2.extend([0, 0, 0, 0, 0, 1, 0, 1, 4, 6, 1, 2, 3, 4, 5, 6, 0, 0]);
    assert_eq!(sll2.len(), 20);
    assert_v6(LinkType::LinuxSll2, &cat(&[&sll2, &ip6_tcp(PAYLOAD)]));
    let (_, cov) = one(LinkType::LinuxSll2, &sll2[..10]);
    assert_eq!(cov.decode_errors, 1);
}

#[test]
fn vlan_and_qinq() {
    let ip = ip4_tcp(PAYLOAD);
    let tag = |tci: u16, next: u16| cat(&[&tci.to_be_bytes(), &next.to_be_bytes()]);
    assert_v4(
        LinkType::Ethernet,
        &eth(0x8100, &cat(&[&tag(100, 0x0800), &ip])),
    );
    for outer in [0x88A8, 0x9100, 0x8100] {
        let data = eth(outer, &cat(&[&tag(200, 0x8100), &tag(201, 0x0800), &ip]));
        assert_v4(LinkType::Ethernet, &data);
    }
}

#[test]
fn mpls_label_stack() {
    let label = |bottom: bool| [0x00, 0x01, 0x10 | u8::from(bottom), 64];
    let data = eth(
        0x8847,
        &cat(&[&label(false), &label(true), &ip4_tcp(PAYLOAD)]),
    );
    assert_v4(LinkType::Ethernet, &data);
    assert_v6(
        LinkType::Ethernet,
        &eth(0x8848, &cat(&[&label(true), &ip6_tcp(PAYLOAD)])),
    );
    // VLAN then MPLS.
    let data = eth(
        0x8100,
        &cat(&[&[0, 5, 0x88, 0x47], &label(true), &ip4_tcp(PAYLOAD)]),
    );
    assert_v4(LinkType::Ethernet, &data);
    // Ethernet pseudowire with control word: not IP.
    let pw = eth(
        0x8847,
        &cat(&[&label(true), &[0; 4], &eth(0x0800, &ip4_tcp(PAYLOAD))]),
    );
    let (seg, cov) = one(LinkType::Ethernet, &pw);
    assert!(seg.is_none());
    assert_eq!(cov.non_ip, 1);
    // No bottom of stack before the end.
    let (_, cov) = one(LinkType::Ethernet, &eth(0x8847, &label(false)));
    assert_eq!(cov.decode_errors, 1);
}

#[test]
fn vxlan_both_ports() {
    let inner = eth(0x0800, &ip4_tcp(PAYLOAD));
    for port in [4789, 8472] {
        let vx = cat(&[&[0x08, 0, 0, 0, 0, 0, 42, 0], &inner]);
        let cov = assert_v4(LinkType::Ethernet, &eth(0x0800, &udp4(port, &vx)));
        assert_eq!(cov.tunnels_unwrapped, 1);
    }
    // Same bytes to another UDP port: plain UDP, not TCP.
    let vx = cat(&[&[0x08, 0, 0, 0, 0, 0, 42, 0], &inner]);
    let (seg, cov) = one(LinkType::Ethernet, &eth(0x0800, &udp4(9999, &vx)));
    assert!(seg.is_none());
    assert_eq!((cov.non_tcp, cov.tunnels_unwrapped), (1, 0));
}

#[test]
fn geneve_with_options() {
    // Version 0, options length 2 words (8 bytes), protocol 0x6558 (Ethernet).
    let header = [0x02, 0, 0x65, 0x58, 0, 0, 7, 0];
    let opts = [0u8; 8];
    let g = cat(&[&header, &opts, &eth(0x0800, &ip4_tcp(PAYLOAD))]);
    let cov = assert_v4(LinkType::Ethernet, &eth(0x0800, &udp4(6081, &g)));
    assert_eq!(cov.tunnels_unwrapped, 1);
    // Protocol 0x86DD: IPv6 directly, no options.
    let g = cat(&[&[0, 0, 0x86, 0xDD, 0, 0, 7, 0], &ip6_tcp(PAYLOAD)]);
    assert_v6(LinkType::Ethernet, &eth(0x0800, &udp4(6081, &g)));
}

#[test]
fn ip_in_ip() {
    let cov = assert_v4(LinkType::RawIp, &ip4_wrap(4, &ip4_tcp(PAYLOAD)));
    assert_eq!(cov.tunnels_unwrapped, 1);
    assert_v6(LinkType::RawIp, &ip4_wrap(41, &ip6_tcp(PAYLOAD)));
    // Depth cap: 4 nested tunnels decode, 5 do not.
    let mut data = ip4_tcp(PAYLOAD);
    for _ in 0..4 {
        data = ip4_wrap(4, &data);
    }
    assert_eq!(assert_v4(LinkType::RawIp, &data).tunnels_unwrapped, 4);
    let (seg, cov) = one(LinkType::RawIp, &ip4_wrap(4, &data));
    assert!(seg.is_none());
    assert_eq!(cov.decode_errors, 1);
}

#[test]
fn gre_variants() {
    let ip = ip4_tcp(PAYLOAD);
    // Plain: no flags, protocol IPv4.
    let cov = assert_v4(
        LinkType::RawIp,
        &ip4_wrap(47, &cat(&[&[0, 0, 0x08, 0x00], &ip])),
    );
    assert_eq!(cov.tunnels_unwrapped, 1);
    // C, K and S: 4 + 4 + 4 + 4 = 16 bytes.
    let gre = cat(&[&[0xB0, 0, 0x08, 0x00], &[0xAA; 12], &ip]);
    assert_v4(LinkType::RawIp, &ip4_wrap(47, &gre));
    // K only, transparent Ethernet bridging (NVGRE-style).
    let gre = cat(&[&[0x20, 0, 0x65, 0x58], &[0; 4], &eth(0x0800, &ip)]);
    assert_v4(LinkType::RawIp, &ip4_wrap(47, &gre));
    // MPLS over GRE.
    let gre = cat(&[&[0, 0, 0x88, 0x47], &[0, 0, 0x11, 64], &ip]);
    assert_v4(LinkType::RawIp, &ip4_wrap(47, &gre));
    // ERSPAN type II: skipped.
    let gre = cat(&[&[0x10, 0, 0x88, 0xBE], &[0; 12], &eth(0x0800, &ip)]);
    let (seg, cov) = one(LinkType::RawIp, &ip4_wrap(47, &gre));
    assert!(seg.is_none());
    assert_eq!(cov.non_tcp, 1);
}

#[test]
fn non_ip_and_non_tcp() {
    let (_, cov) = one(LinkType::Ethernet, &eth(0x0806, &[0; 28])); // ARP
    assert_eq!(cov.non_ip, 1);
    let (_, cov) = one(LinkType::Ethernet, &eth(0x0800, &udp4(53, b"dns")));
    assert_eq!(cov.non_tcp, 1);
    let mut icmp = Vec::new();
    PacketBuilder::ipv4(A4, B4, 64)
        .icmpv4_echo_request(1, 1)
        .write(&mut icmp, b"ping")
        .unwrap();
    let (_, cov) = one(LinkType::RawIp, &icmp);
    assert_eq!(cov.non_tcp, 1);
    let (_, cov) = one(LinkType::Ethernet, &[0; 10]);
    assert_eq!(cov.decode_errors, 1);
    let (_, cov) = one(LinkType::RawIp, &[0x45, 0, 0, 20]); // IPv4 header cut short
    assert_eq!(cov.decode_errors, 1);
}

#[test]
fn malformed_tcp() {
    let good = ip4_tcp(PAYLOAD);
    // Data offset 4 (< 5).
    let mut bad = good.clone();
    bad[20 + 12] = 0x40;
    let (seg, cov) = one(LinkType::RawIp, &bad);
    assert!(seg.is_none());
    assert_eq!(cov.tcp_malformed, 1);
    // Data offset 15 (60 bytes) is beyond the 38-byte IP payload.
    let mut bad = good.clone();
    bad[20 + 12] = 0xF0;
    let (_, cov) = one(LinkType::RawIp, &bad);
    assert_eq!(cov.tcp_malformed, 1);
    // TCP header cut at 10 bytes.
    let (_, cov) = one(LinkType::RawIp, &ip4_wrap(6, &good[20..30]));
    assert_eq!(cov.tcp_malformed, 1);
}

#[test]
fn snaplen_keeps_wire_length() {
    let big = vec![b'x'; 1000];
    let full = eth(0x0800, &ip4_tcp(&big));
    let cut = &full[..14 + 20 + 20 + 100];
    let (seg, cov) = one(LinkType::Ethernet, cut);
    let (_, _, payload, wire) = seg.unwrap();
    assert_eq!(payload.len(), 100);
    assert_eq!(wire, 1000);
    assert_eq!(cov.tcp_segments, 1);
    // Same for IPv6 (payload length field).
    let full = ip6_tcp(&big);
    let (seg, _) = one(LinkType::RawIp, &full[..40 + 20 + 10]);
    assert_eq!(seg.unwrap().3, 1000);
}

/// Splits an IPv4 datagram (20-byte header) into fragments of the given payload ranges.
fn fragments(datagram: &[u8], id: u16, cuts: &[(usize, usize)]) -> Vec<Vec<u8>> {
    let total = datagram.len() - 20;
    cuts.iter()
        .map(|&(start, end)| {
            let mut h =
                Ipv4Header::new((end - start) as u16, 64, IpNumber(datagram[9]), A4, B4).unwrap();
            h.identification = id;
            h.more_fragments = end < total;
            h.fragment_offset = etherparse::IpFragOffset::try_new((start / 8) as u16).unwrap();
            let mut out = Vec::new();
            h.write(&mut out).unwrap();
            out.extend_from_slice(&datagram[20 + start..20 + end]);
            out
        })
        .collect()
}

/// Feeds frames in order; returns the decoded segment's (payload, wire_len) if any.
fn feed(d: &mut Decoder, frames: &[(i64, Vec<u8>)], cov: &mut Coverage) -> Option<(Vec<u8>, u32)> {
    let mut got = None;
    for (ts, data) in frames {
        if let Some(s) = d.decode(&frame_at(LinkType::RawIp, data, *ts), cov) {
            assert!(got.is_none(), "one segment only");
            assert_eq!((s.src, s.dst), (ep(A4, 40000), ep(B4, 80)));
            got = Some((s.payload.to_vec(), s.wire_len));
        }
    }
    got
}

#[test]
fn fragments_in_and_out_of_order() {
    let body: Vec<u8> = (0..200u8).collect();
    let datagram = ip4_tcp(&body); // TCP header 20 + 200 = 220 payload bytes
    let parts = fragments(&datagram, 7, &[(0, 80), (80, 160), (160, 220)]);
    for order in [[0, 1, 2], [2, 0, 1], [1, 2, 0]] {
        let frames: Vec<_> = order.iter().map(|&i| (0, parts[i].clone())).collect();
        let mut d = Decoder::new(DecodeConfig::default());
        let mut cov = Coverage::default();
        let (payload, wire) = feed(&mut d, &frames, &mut cov).expect("reassembled");
        assert_eq!(payload, body);
        assert_eq!(wire, 200);
        assert_eq!((cov.ip_fragments, cov.ip_fragments_reassembled), (3, 3));
        assert_eq!((cov.tcp_segments, cov.ip_fragments_dropped), (1, 0));
        assert_eq!(d.pending_fragment_datagrams(), 0);
    }
}

#[test]
fn fragments_overlap_first_wins() {
    let body = vec![b'a'; 200];
    let datagram = ip4_tcp(&body);
    let mut parts = fragments(&datagram, 8, &[(0, 80), (80, 160), (160, 220), (72, 160)]);
    // The late overlapping fragment carries different bytes; the first arrival must win.
    for b in &mut parts[3][20..] {
        *b = b'Z';
    }
    let frames = vec![
        (0, parts[0].clone()),
        (0, parts[3].clone()),
        (0, parts[1].clone()),
        (0, parts[2].clone()),
    ];
    let mut d = Decoder::new(DecodeConfig::default());
    let mut cov = Coverage::default();
    let (payload, _) = feed(&mut d, &frames, &mut cov).expect("reassembled");
    // Fragment 3 (bytes 72..160) arrived second: bytes 80..160 come from it ('Z'), and
    // 72..80 keep fragment 0's bytes. Payload offset = datagram offset - 20 (TCP header).
    let mut want = vec![b'a'; 200];
    for b in &mut want[60..140] {
        *b = b'Z';
    }
    assert_eq!(payload, want);
    assert_eq!(cov.ip_fragments_reassembled, 4);
}

#[test]
fn fragments_expire_and_bound() {
    let datagram = ip4_tcp(&[1u8; 200]);
    let parts = fragments(&datagram, 9, &[(0, 80), (80, 160), (160, 220)]);
    let config = DecodeConfig {
        fragment_timeout_ns: 1_000,
        ..DecodeConfig::default()
    };
    // The last fragment comes 2 µs later: the first two have expired.
    let frames = vec![
        (0, parts[0].clone()),
        (10, parts[1].clone()),
        (2_000, parts[2].clone()),
    ];
    let mut d = Decoder::new(config);
    let mut cov = Coverage::default();
    assert!(feed(&mut d, &frames, &mut cov).is_none());
    assert_eq!((cov.ip_fragments, cov.ip_fragments_dropped), (3, 2));
    d.finish(&mut cov);
    assert_eq!(cov.ip_fragments_dropped, 3);
    assert_eq!(cov.tcp_segments, 0);
    // Byte bound of 100: the second fragment would hold 160 bytes.
    let config = DecodeConfig {
        max_fragment_bytes: 100,
        ..DecodeConfig::default()
    };
    let frames: Vec<_> = parts.iter().map(|p| (0, p.clone())).collect();
    let mut d = Decoder::new(config);
    let mut cov = Coverage::default();
    assert!(feed(&mut d, &frames, &mut cov).is_none());
    assert_eq!(cov.ip_fragments, 3);
    // Fragments 0 and 1 (80 + 80 > 100 bytes) go together; fragment 2 alone would need a
    // 220-byte buffer (it sits at offset 160), so it is dropped too.
    assert_eq!(cov.ip_fragments_dropped, 3);
    assert_eq!(d.pending_fragment_datagrams(), 0);
}

#[test]
fn reassembled_vxlan_carries_tcp() {
    // A fragmented outer UDP datagram whose VXLAN payload holds a TCP segment.
    let inner = eth(0x0800, &ip4_tcp(PAYLOAD));
    let vx = cat(&[&[0x08, 0, 0, 0, 0, 0, 42, 0], &inner]);
    let mut outer = udp4(4789, &vx);
    outer[12..16].copy_from_slice(&A4);
    outer[16..20].copy_from_slice(&B4);
    let n = outer.len() - 20;
    let parts = fragments(&outer, 3, &[(0, 40), (40, n)]);
    let mut d = Decoder::new(DecodeConfig::default());
    let mut cov = Coverage::default();
    assert!(d
        .decode(&frame(LinkType::RawIp, &parts[1]), &mut cov)
        .is_none());
    let s = d
        .decode(&frame(LinkType::RawIp, &parts[0]), &mut cov)
        .expect("segment");
    assert_eq!(s.payload, PAYLOAD);
    assert_eq!(
        (cov.tunnels_unwrapped, cov.ip_fragments_reassembled),
        (1, 2)
    );
}

#[test]
fn ipv6_fragments_counted_and_dropped() {
    // IPv6 + fragment header (next header TCP, offset 0, M=1) + start of a TCP segment.
    let tcp = &ip6_tcp(PAYLOAD)[40..];
    let frag_hdr = [6u8, 0, 0x00, 0x01, 0, 0, 0, 9];
    let mut data = ip6_tcp(PAYLOAD)[..40].to_vec();
    data[6] = 44; // next header: fragment
    let plen = (8 + tcp.len()) as u16;
    data[4..6].copy_from_slice(&plen.to_be_bytes());
    data.extend(frag_hdr);
    data.extend_from_slice(tcp);
    let (seg, cov) = one(LinkType::RawIp, &data);
    assert!(seg.is_none());
    assert_eq!((cov.ip_fragments, cov.ip_fragments_dropped), (1, 1));
}

#[test]
fn never_panics_on_prefixes() {
    // Every prefix of every encapsulation decodes or is counted, without panic.
    let ip = ip4_tcp(PAYLOAD);
    let samples = [
        (
            LinkType::Ethernet,
            eth(
                0x0800,
                &udp4(
                    4789,
                    &cat(&[
                        &[8, 0, 0, 0, 0, 0, 1, 0],
                        &eth(0x8100, &cat(&[&[0, 1, 8, 0], &ip])),
                    ]),
                ),
            ),
        ),
        (
            LinkType::RawIp,
            ip4_wrap(
                47,
                &cat(&[&[0xB0, 0, 0x88, 0x47], &[0; 12], &[0, 0, 0x11, 64], &ip]),
            ),
        ),
        (
            LinkType::Ethernet,
            eth(
                0x0800,
                &udp4(6081, &cat(&[&[0x3F, 0, 0x65, 0x58], &[0; 4]])),
            ),
        ),
        (
            LinkType::Null,
            cat(&[&30u32.to_le_bytes(), &ip6_tcp(PAYLOAD)]),
        ),
        (LinkType::LinuxSll2, cat(&[&[0x08, 0], &[0; 18], &ip])),
    ];
    for (link, data) in &samples {
        for len in 0..=data.len() {
            let mut d = Decoder::new(DecodeConfig::default());
            let mut cov = Coverage::default();
            let got = d.decode(&frame(*link, &data[..len]), &mut cov).is_some();
            let counted = cov.tcp_segments
                + cov.non_ip
                + cov.non_tcp
                + cov.decode_errors
                + cov.tcp_malformed
                + cov.ip_fragments;
            assert_eq!(
                counted, 1,
                "{link:?} prefix {len}: every frame counted once"
            );
            assert_eq!(got, cov.tcp_segments == 1);
        }
    }
}

mod corpus {
    //! Real captures. Expected figures were computed with tshark 4.x:
    //! `tshark -r F -Y tcp | wc -l` for the segment count and
    //! `tshark -r F -T fields -e tcp.len` summed for the payload bytes.
    use super::*;
    use pcap_parser::{create_reader, PcapBlockOwned, PcapError};

    fn path(name: &str) -> String {
        crate::testing::corpus::path(name).display().to_string()
    }

    #[derive(Default)]
    struct Tally {
        frames: u64,
        segments: u64,
        wire_bytes: u64,
        captured_bytes: u64,
        endpoints: Vec<(Endpoint, Endpoint)>,
        cov: Coverage,
    }

    /// Decodes every packet of a pcap or pcapng file (pcap-parser, µs timestamps assumed:
    /// only used for fragment expiry, which none of these files exercise).
    fn decode_file(name: &str) -> Tally {
        let file = std::fs::File::open(path(name)).expect("corpus file");
        let mut reader = create_reader(1 << 16, file).expect("a capture");
        let mut links: Vec<LinkType> = Vec::new();
        let mut decoder = Decoder::new(DecodeConfig::default());
        let mut t = Tally::default();
        loop {
            match reader.next() {
                Ok((offset, block)) => {
                    let packet: Option<(LinkType, i64, &[u8])> = match block {
                        PcapBlockOwned::LegacyHeader(h) => {
                            links = vec![LinkType::from_linktype(h.network.0 as u32)];
                            None
                        }
                        PcapBlockOwned::Legacy(p) => Some((
                            links[0],
                            i64::from(p.ts_sec) * 1_000_000_000 + i64::from(p.ts_usec) * 1_000,
                            p.data,
                        )),
                        PcapBlockOwned::NG(pcap_parser::Block::InterfaceDescription(idb)) => {
                            links.push(LinkType::from_linktype(idb.linktype.0 as u32));
                            None
                        }
                        PcapBlockOwned::NG(pcap_parser::Block::EnhancedPacket(epb)) => {
                            let ts = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                            let caplen = (epb.caplen as usize).min(epb.data.len());
                            Some((
                                links[epb.if_id as usize],
                                // Resolution ignored (µs or ns): only fragment expiry reads it.
                                (ts as i64).wrapping_mul(1_000),
                                &epb.data[..caplen],
                            ))
                        }
                        _ => None,
                    };
                    if let Some((link, ts, data)) = packet {
                        t.frames += 1;
                        let f = frame_at(link, data, ts);
                        if let Some(s) = decoder.decode(&f, &mut t.cov) {
                            t.segments += 1;
                            t.wire_bytes += u64::from(s.wire_len);
                            t.captured_bytes += s.payload.len() as u64;
                            if !t.endpoints.contains(&(s.src, s.dst)) {
                                t.endpoints.push((s.src, s.dst));
                            }
                        }
                    }
                    reader.consume(offset);
                }
                Err(PcapError::Eof) => break,
                Err(PcapError::Incomplete(_)) => reader.refill().expect("refill"),
                Err(e) => panic!("{name}: {e:?}"),
            }
        }
        decoder.finish(&mut t.cov);
        t
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn vxlan_inner_endpoints() {
        if !crate::testing::corpus::require() {
            return;
        }
        // tshark: 12 frames, all TCP; innermost 172.16.11.201:40354 <-> 54.86.237.188:80
        // (outer VXLAN 10.1.200.131 -> 10.1.1.172, UDP 4789); tcp.len sum 9299.
        let t = decode_file("zeek_vxlan-encapsulated-http.pcap");
        assert_eq!((t.frames, t.segments), (12, 12));
        assert_eq!(t.cov.tunnels_unwrapped, 12);
        let client = Endpoint::new(ip("172.16.11.201"), 40354);
        let server = Endpoint::new(ip("54.86.237.188"), 80);
        assert_eq!(t.endpoints, vec![(client, server), (server, client)]);
        assert_eq!(t.wire_bytes, 9299);
    }

    #[test]
    fn qinq() {
        if !crate::testing::corpus::require() {
            return;
        }
        // tshark: 6 frames, all TCP, VLANs 201 then 200; 10.0.0.1:54422 <-> 10.0.0.2:80;
        // tcp.len sum 4457.
        let t = decode_file("arkime_twovlan_qinq.pcap");
        assert_eq!((t.frames, t.segments), (6, 6));
        let client = Endpoint::new(ip("10.0.0.1"), 54422);
        let server = Endpoint::new(ip("10.0.0.2"), 80);
        assert_eq!(t.endpoints, vec![(client, server), (server, client)]);
        assert_eq!(t.wire_bytes, 4457);
    }

    #[test]
    fn sll2() {
        if !crate::testing::corpus::require() {
            return;
        }
        // tshark: 159 frames, 159 TCP; first 192.168.1.253:56478 -> 192.168.1.21:80;
        // tcp.len sum 2598957.
        let t = decode_file("sv_decode-sll2-02.pcap");
        assert_eq!((t.frames, t.segments), (159, 159));
        assert_eq!(t.endpoints[0].0, Endpoint::new(ip("192.168.1.253"), 56478));
        assert_eq!(t.endpoints[0].1, Endpoint::new(ip("192.168.1.21"), 80));
        assert_eq!(t.wire_bytes, 2_598_957);
    }

    #[test]
    fn sll_v1() {
        if !crate::testing::corpus::require() {
            return;
        }
        // tshark: 10 frames, 10 TCP; first 127.0.0.1:37824 -> :29518; tcp.len sum 591.
        let t = decode_file("ndpi_http2_5g_sbi.pcapng");
        assert_eq!((t.frames, t.segments), (10, 10));
        assert_eq!(t.endpoints[0].0, Endpoint::new(ip("127.0.0.1"), 37824));
        assert_eq!(t.wire_bytes, 591);
    }

    #[test]
    fn null_ipv4() {
        if !crate::testing::corpus::require() {
            return;
        }
        // tshark: 22 frames, 22 TCP; first 127.0.0.1:59219 -> :8400; tcp.len sum 2224.
        let t = decode_file("itls13_capture.pcap");
        assert_eq!((t.frames, t.segments), (22, 22));
        assert_eq!(t.endpoints[0].1, Endpoint::new(ip("127.0.0.1"), 8400));
        assert_eq!(t.wire_bytes, 2224);
    }

    #[test]
    fn null_ipv6_loopback() {
        if !crate::testing::corpus::require() {
            return;
        }
        // tshark: 4318 frames, 4306 TCP (the other 12 are NBNS/mDNS over UDP); 30 frames
        // are IPv6 with null.family 30 (::1 <-> ::1), the rest IPv4; tcp.len sum 52447.
        let t = decode_file("packt_grpc_unary.pcapng");
        assert_eq!((t.frames, t.segments), (4318, 4306));
        assert_eq!(t.cov.non_tcp, 12);
        assert_eq!(t.wire_bytes, 52447);
        assert!(t.endpoints.iter().any(|(s, _)| s.ip == ip("::1")));
    }

    #[test]
    fn truncated_ipv4() {
        if !crate::testing::corpus::require() {
            return;
        }
        // tshark: 1 frame, no TCP: a UDP datagram whose IPv4 total length (65028) exceeds
        // the 1516 captured bytes. Counted as non-TCP, no panic.
        let t = decode_file("sv_ipv4-truncated.pcap");
        assert_eq!((t.frames, t.segments), (1, 0));
        assert_eq!(t.cov.non_tcp, 1);
    }

    #[test]
    fn captured_equals_wire_when_not_cut() {
        if !crate::testing::corpus::require() {
            return;
        }
        // None of these captures was cut by a snaplen, so captured payload = wire length.
        for name in [
            "zeek_vxlan-encapsulated-http.pcap",
            "sv_decode-sll2-02.pcap",
        ] {
            let t = decode_file(name);
            assert_eq!(t.captured_bytes, t.wire_bytes, "{name}");
        }
    }

    /// Every capture of the corpus that pcap-parser reads to the end (pfe_corrupted.pcap is
    /// a capture-level fault, the capture module's business). Figures checked with tshark:
    /// (frames, `tshark -r F -Y tcp | wc -l`, sum of `tshark -r F -Y tcp -T fields -e tcp.len`).
    /// The non-TCP frames are UDP (DNS, NBNS, mDNS, QUIC...) per tshark.
    #[test]
    fn whole_corpus_matches_tshark() {
        if !crate::testing::corpus::require() {
            return;
        }
        let expected: &[(&str, u64, u64, u64)] = &[
            ("arkime_bigendian.pcap", 2, 0, 0),
            ("arkime_empty.pcap", 0, 0, 0),
            ("arkime_twovlan_qinq.pcap", 6, 6, 4457),
            ("cryptohack_tls13_h2.pcapng", 33, 29, 6365),
            ("deepflow_grpc-service-name.pcap", 39, 39, 674),
            ("deepflow_sw8_skywalking.pcap", 20, 20, 4343),
            ("itls13_capture.pcap", 22, 22, 2224),
            ("ndpi_http-proxy.pcapng", 11, 11, 1010),
            ("ndpi_http2_5g_sbi.pcapng", 10, 10, 591),
            ("ndpi_http_keepalive_37req.pcapng", 115, 115, 68704),
            ("packt_grpc_unary.pcapng", 4318, 4306, 52447),
            ("pfe_linux_new_test_nsec.pcap", 50, 50, 1896),
            ("pfe_sample_multi_iface.pcap", 50, 50, 1509),
            ("sv_decode-sll2-02.pcap", 159, 159, 2598957),
            ("sv_http-brotli-ce.pcap", 16, 16, 5392),
            ("sv_http-multiple100.pcap", 48, 48, 34967),
            ("sv_http2-range_h2c-upgrade.pcap", 116, 116, 2279),
            ("sv_ipv4-truncated.pcap", 1, 0, 0),
            ("sv_response_gzip_multi_encoding.pcap", 11, 11, 731),
            ("wireshark_http.cap.pcap", 43, 41, 22584),
            ("zeek_http_100-continue.pcap", 66, 66, 63324),
            ("zeek_http_body-match.pcap", 207, 207, 4761),
            ("zeek_http_docker-http-upgrade.pcap", 200, 200, 4749),
            ("zeek_http_get_nosyn.pcap", 11, 11, 5143),
            ("zeek_http_methods.pcap", 655, 655, 184311),
            ("zeek_http_pipelined-requests.pcap", 49, 49, 42362),
            ("zeek_pcapng-multi-interface.pcapng", 6, 0, 0),
            ("zeek_vxlan-encapsulated-http.pcap", 12, 12, 9299),
        ];
        for &(name, frames, segments, bytes) in expected {
            let t = decode_file(name);
            assert_eq!(
                (t.frames, t.segments, t.wire_bytes),
                (frames, segments, bytes),
                "{name}"
            );
            let c = &t.cov;
            // Every frame is accounted for exactly once.
            let counted = c.tcp_segments + c.non_ip + c.non_tcp + c.decode_errors + c.tcp_malformed;
            assert_eq!(counted, frames, "{name}");
        }
    }
}

/// UDP that is not a tunnel is handed on as a datagram (for DNS), counted as non-TCP like
/// before; a fragmented one is reassembled; a snaplen-cut one says so.
#[test]
fn udp_datagrams_for_dns() {
    if !crate::testing::corpus::require() {
        return;
    }
    let dns = [0x12u8, 0x34, 0x81, 0x80, 0, 0, 0, 0, 0, 0, 0, 0];
    let mut out = Vec::new();
    PacketBuilder::ipv4(A4, B4, 64)
        .udp(53, 3333)
        .write(&mut out, &dns)
        .unwrap();
    let mut d = Decoder::new(DecodeConfig::default());
    let mut cov = Coverage::default();
    let framed = eth(0x0800, &out);
    match d.decode_packet(&frame(LinkType::Ethernet, &framed), &mut cov) {
        Some(Packet::Udp(u)) => {
            assert_eq!((u.src, u.dst), (ep(A4, 53), ep(B4, 3333)));
            assert_eq!(u.payload, dns);
            assert!(!u.truncated);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!((cov.non_tcp, cov.tcp_segments), (1, 0));
    // `decode` (TCP only) still returns nothing for it and counts it the same.
    let mut cov2 = Coverage::default();
    assert!(d
        .decode(&frame(LinkType::Ethernet, &framed), &mut cov2)
        .is_none());
    assert_eq!(cov2, cov);

    // Cut by the snaplen.
    let mut cov = Coverage::default();
    match d.decode_packet(&frame(LinkType::RawIp, &out[..out.len() - 4]), &mut cov) {
        Some(Packet::Udp(u)) => assert!(u.truncated && u.payload.len() == dns.len() - 4),
        other => panic!("{other:?}"),
    }

    // A 1000-byte response in two IPv4 fragments: one datagram after reassembly.
    let big: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    let mut whole = Vec::new();
    PacketBuilder::ipv4(A4, B4, 64)
        .udp(53, 3333)
        .write(&mut whole, &big)
        .unwrap();
    let n = whole.len() - 20;
    let parts = fragments(&whole, 9, &[(0, 504), (504, n)]);
    let mut cov = Coverage::default();
    assert!(d
        .decode_packet(&frame(LinkType::RawIp, &parts[0]), &mut cov)
        .is_none());
    match d.decode_packet(&frame(LinkType::RawIp, &parts[1]), &mut cov) {
        Some(Packet::Udp(u)) => assert_eq!(u.payload, &big[..]),
        other => panic!("{other:?}"),
    }
    assert_eq!(cov.ip_fragments_reassembled, 2);

    // VXLAN is still a tunnel, unwrapped to its TCP segment, not a datagram.
    let inner = eth(0x0800, &ip4_tcp(PAYLOAD));
    let vx = cat(&[&[0x08, 0, 0, 0, 0, 0, 42, 0], &inner]);
    let mut cov = Coverage::default();
    let tunneled = udp4(4789, &vx);
    assert!(matches!(
        d.decode_packet(&frame(LinkType::RawIp, &tunneled), &mut cov),
        Some(Packet::Tcp(_))
    ));
    assert_eq!(cov.tunnels_unwrapped, 1);
}
