//! Tests of `CaptureFile` over real corpus captures and built byte arrays. Expected counts,
//! timestamps and lengths of corpus files were checked with tshark/capinfos (commands in
//! the comments); offsets are derived by arithmetic on the record layout.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::*;

fn corpus(name: &str) -> PathBuf {
    crate::testing::corpus::path(name)
}

#[derive(Debug, Clone, PartialEq)]
struct Got {
    ts: i64,
    link: LinkType,
    iface: u32,
    orig_len: u32,
    data: Vec<u8>,
}

/// Reads a file to its end; returns the packets, the fault if any, and the coverage.
fn read_all(path: &Path) -> (Vec<Got>, Option<CaptureError>, Coverage) {
    let mut cov = Coverage::default();
    let mut f = CaptureFile::open(path, 7).expect("open");
    let mut out = Vec::new();
    let mut fault = None;
    loop {
        match f.advance(&mut cov) {
            Ok(true) => {
                let fr = f.current();
                assert_eq!(fr.source.input, 7);
                out.push(Got {
                    ts: fr.ts.nanos(),
                    link: fr.link,
                    iface: fr.source.interface,
                    orig_len: fr.orig_len,
                    data: fr.data.to_vec(),
                });
            }
            Ok(false) => break,
            Err(e) => {
                assert!(fault.is_none(), "a fault is reported once");
                fault = Some(e);
            }
        }
    }
    // After the end (or the fault) the file stays ended.
    assert!(matches!(f.advance(&mut cov), Ok(false)));
    assert_eq!(f.packets(), out.len() as u64);
    (out, fault, cov)
}

/// "1335958313.152630000" (tshark frame.time_epoch) as nanoseconds.
fn ns(epoch: &str) -> i64 {
    let (s, frac) = epoch.split_once('.').unwrap();
    let frac = format!("{frac:0<9}");
    s.parse::<i64>().unwrap() * 1_000_000_000 + frac[..9].parse::<i64>().unwrap()
}

fn tmp_file(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

// ---- corpus ----------------------------------------------------------------------------

#[test]
fn big_endian_pcap() {
    if !crate::testing::corpus::require() {
        return;
    }
    // tshark -r arkime_bigendian.pcap -T fields -e frame.time_epoch -e frame.len -e eth.dst
    //   1335958313.152630000 98 00:00:5e:00:01:b1 ; 1335958317.529201000 98 ...
    let path = corpus("arkime_bigendian.pcap");
    let (pkts, fault, cov) = read_all(&path);
    assert!(fault.is_none());
    assert_eq!(pkts.len(), 2);
    assert_eq!(pkts[0].ts, ns("1335958313.152630000"));
    assert_eq!(pkts[1].ts, ns("1335958317.529201000"));
    assert_eq!(pkts[0].data.len(), 98);
    assert_eq!(pkts[0].orig_len, 98);
    assert_eq!(&pkts[0].data[..6], &[0x00, 0x00, 0x5e, 0x00, 0x01, 0xb1]);
    assert_eq!(&pkts[0].data[12..14], &[0x08, 0x00]);
    assert!(pkts
        .iter()
        .all(|p| p.link == LinkType::Ethernet && p.iface == 0));
    let f = CaptureFile::open(&path, 0).unwrap();
    assert_eq!(
        f.format(),
        CaptureFormat::Pcap {
            nanos: false,
            big_endian: true
        }
    );
    assert!(!f.gzipped());
    assert_eq!(
        (cov.files, cov.packets, cov.bytes, cov.truncated_snaplen),
        (1, 2, 196, 0)
    );
}

#[test]
fn empty_pcap_is_not_an_error() {
    if !crate::testing::corpus::require() {
        return;
    }
    // capinfos: 0 packets (24-byte file header only)
    let (pkts, fault, cov) = read_all(&corpus("arkime_empty.pcap"));
    assert!(pkts.is_empty());
    assert!(fault.is_none(), "{fault:?}");
    assert_eq!((cov.files, cov.packets), (1, 0));
}

#[test]
fn nanosecond_pcap() {
    if !crate::testing::corpus::require() {
        return;
    }
    // tshark -r pfe_linux_new_test_nsec.pcap -c1 -T fields -e frame.time_epoch
    //   1762599849.735187245 ; tshark | wc -l: 50
    let path = corpus("pfe_linux_new_test_nsec.pcap");
    let (pkts, fault, _) = read_all(&path);
    assert!(fault.is_none());
    assert_eq!(pkts.len(), 50);
    assert_eq!(pkts[0].ts, ns("1762599849.735187245"));
    assert_eq!(pkts[1].ts, ns("1762599849.735204121"));
    let f = CaptureFile::open(&path, 0).unwrap();
    assert_eq!(
        f.format(),
        CaptureFormat::Pcap {
            nanos: true,
            big_endian: false
        }
    );
}

#[test]
fn pcapng_named_pcap_with_two_interfaces() {
    if !crate::testing::corpus::require() {
        return;
    }
    // capinfos: pcapng, 2 interfaces (#0 NULL/Loopback, #1 Ethernet), 50 packets all on #0.
    // tshark -c1 -e frame.time_epoch: 1762204534.277019000, null.family 2 (AF_INET).
    let path = corpus("pfe_sample_multi_iface.pcap");
    let f = CaptureFile::open(&path, 0).unwrap();
    assert_eq!(f.format(), CaptureFormat::PcapNg);
    let (pkts, fault, _) = read_all(&path);
    assert!(fault.is_none());
    assert_eq!(pkts.len(), 50);
    assert!(pkts
        .iter()
        .all(|p| p.link == LinkType::Null && p.iface == 0));
    assert_eq!(pkts[0].ts, ns("1762204534.277019000"));
    assert_eq!(pkts[0].data.len(), 68);
    assert_eq!(u32::from_le_bytes(pkts[0].data[..4].try_into().unwrap()), 2);
}

#[test]
fn pcapng_interfaces_with_different_resolutions() {
    if !crate::testing::corpus::require() {
        return;
    }
    // capinfos: interface #0 tsresol 9 (ns), #1 tsresol 6 (µs), both Ethernet.
    // tshark -T fields -e frame.time_epoch -e frame.cap_len -e frame.interface_id
    let expected = [
        ("1767663089.500330493", 96, 0),
        ("1767663089.514291940", 214, 0),
        ("1767663437.111897000", 70, 1),
        ("1767663437.126460000", 166, 1),
        ("1767663437.128303000", 70, 1),
        ("1767663437.140942000", 182, 1),
    ];
    let (pkts, fault, cov) = read_all(&corpus("zeek_pcapng-multi-interface.pcapng"));
    assert!(fault.is_none());
    assert_eq!(pkts.len(), expected.len());
    for (p, (ts, len, iface)) in pkts.iter().zip(expected) {
        assert_eq!((p.ts, p.data.len(), p.iface), (ns(ts), len, iface));
        assert_eq!(p.link, LinkType::Ethernet);
    }
    assert_eq!(cov.bytes, 96 + 214 + 70 + 166 + 70 + 182);
}

#[test]
fn corrupt_record_after_27_packets() {
    if !crate::testing::corpus::require() {
        return;
    }
    // capinfos: "error after reading 27 packets ... File has 8323328-byte packet, bigger than
    // maximum of 262144". tshark: the 27 packets' cap_len sum to 1663, one has len > cap_len.
    let path = corpus("pfe_corrupted.pcap");
    let (pkts, fault, cov) = read_all(&path);
    assert_eq!(pkts.len(), 27);
    let captured: usize = pkts.iter().map(|p| p.data.len()).sum();
    assert_eq!(captured, 1663);
    assert_eq!(cov.truncated_snaplen, 1);
    // file header + 27 record headers + their data
    let bad_at = 24 + 27 * 16 + 1663;
    match fault {
        Some(CaptureError::Corrupt {
            offset, ref what, ..
        }) => {
            assert_eq!(offset, bad_at as u64);
            assert!(what.contains("8323328"), "{what}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // The caplen field of that record really is the bad one (little-endian file).
    let bytes = std::fs::read(&path).unwrap();
    let caplen = u32::from_le_bytes(bytes[bad_at + 8..bad_at + 12].try_into().unwrap());
    assert_eq!(caplen, 8_323_328);
}

#[test]
fn whole_corpus_matches_tshark() {
    if !crate::testing::corpus::require() {
        return;
    }
    // (file, packets, captured bytes, frames with cap_len < len, sum of timestamps in ns),
    // each computed from `tshark -r F -T fields -e frame.time_epoch -e frame.cap_len
    // -e frame.len` (epoch strings summed exactly as integers, not floats).
    let table: [(&str, usize, u64, u64, i128); 29] = [
        ("arkime_bigendian.pcap", 2, 196, 0, 2671916630681831000),
        ("arkime_empty.pcap", 0, 0, 0, 0),
        ("arkime_twovlan_qinq.pcap", 6, 4917, 0, 8736257530267308000),
        (
            "deepflow_grpc-service-name.pcap",
            39,
            3264,
            0,
            67029068163483506000,
        ),
        (
            "deepflow_sw8_skywalking.pcap",
            20,
            5679,
            0,
            32588882673359456000,
        ),
        ("itls13_capture.pcap", 22, 3480, 0, 36273030559302930000),
        ("pfe_corrupted.pcap", 27, 1663, 1, 37005993785346871000),
        (
            "pfe_linux_new_test_nsec.pcap",
            50,
            5276,
            0,
            88129992491548526002,
        ),
        (
            "pfe_sample_multi_iface.pcap",
            50,
            4405,
            0,
            88110226718031686000,
        ),
        (
            "sv_decode-sll2-02.pcap",
            159,
            2610421,
            0,
            276084655896493028000,
        ),
        ("sv_http-brotli-ce.pcap", 16, 6464, 0, 26697829745199049000),
        (
            "sv_http-multiple100.pcap",
            48,
            38199,
            0,
            80440284328386904000,
        ),
        (
            "sv_http2-range_h2c-upgrade.pcap",
            116,
            8895,
            0,
            189156560004277258000,
        ),
        ("sv_ipv4-truncated.pcap", 1, 1530, 0, 1734374386302630000),
        (
            "sv_response_gzip_multi_encoding.pcap",
            11,
            1367,
            0,
            16804690573660273000,
        ),
        (
            "wireshark_http.cap.pcap",
            43,
            25091,
            0,
            46631067592496248000,
        ),
        (
            "zeek_http_100-continue.pcap",
            66,
            66942,
            0,
            81671046351250040000,
        ),
        (
            "zeek_http_body-match.pcap",
            207,
            18287,
            0,
            255555553344033593000,
        ),
        (
            "zeek_http_docker-http-upgrade.pcap",
            200,
            17997,
            0,
            346529383089991453000,
        ),
        (
            "zeek_http_get_nosyn.pcap",
            11,
            5869,
            0,
            14989617797180197000,
        ),
        (
            "zeek_http_methods.pcap",
            655,
            228325,
            0,
            887085428563696366000,
        ),
        (
            "zeek_http_pipelined-requests.pcap",
            49,
            45144,
            0,
            61670316459076957000,
        ),
        (
            "zeek_vxlan-encapsulated-http.pcap",
            12,
            10707,
            0,
            19561985688723876000,
        ),
        (
            "cryptohack_tls13_h2.pcapng",
            33,
            8510,
            0,
            55108430598342573000,
        ),
        ("ndpi_http-proxy.pcapng", 11, 1652, 0, 17945439078661564000),
        (
            "ndpi_http2_5g_sbi.pcapng",
            10,
            1271,
            0,
            15918634603457085473,
        ),
        (
            "ndpi_http_keepalive_37req.pcapng",
            115,
            76310,
            0,
            173266470369785207000,
        ),
        (
            "packt_grpc_unary.pcapng",
            4318,
            298909,
            0,
            7219887907417541593000,
        ),
        (
            "zeek_pcapng-multi-interface.pcapng",
            6,
            798,
            0,
            10605979927522224433,
        ),
    ];
    for (name, packets, bytes, cut, ts_sum) in table {
        let (pkts, fault, cov) = read_all(&corpus(name));
        assert_eq!(pkts.len(), packets, "{name}");
        assert_eq!(cov.bytes, bytes, "{name}");
        assert_eq!(cov.truncated_snaplen, cut, "{name}");
        assert_eq!(
            pkts.iter().map(|p| i128::from(p.ts)).sum::<i128>(),
            ts_sum,
            "{name}"
        );
        // Only the corrupt sample has a fault.
        assert_eq!(
            fault.is_some(),
            name == "pfe_corrupted.pcap",
            "{name}: {fault:?}"
        );
    }
}

// ---- gzip, truncation ------------------------------------------------------------------

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn gzip_same_packets_as_plain() {
    if !crate::testing::corpus::require() {
        return;
    }
    let plain_path = corpus("wireshark_http.cap.pcap");
    let plain = std::fs::read(&plain_path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Name says nothing; detection is by bytes.
    let gz = tmp_file(&dir, "capture.bin", &gzip(&plain));
    // Two gzip members back to back (as `cat a.gz b.gz`), split mid-record.
    let mut two = gzip(&plain[..1000]);
    two.extend(gzip(&plain[1000..]));
    let gz2 = tmp_file(&dir, "two.pcap", &two);

    let (want, fault, _) = read_all(&plain_path);
    assert!(fault.is_none());
    assert_eq!(want.len(), 43); // tshark -r wireshark_http.cap.pcap | wc -l
    for p in [gz, gz2] {
        let f = CaptureFile::open(&p, 0).unwrap();
        assert!(f.gzipped());
        assert_eq!(
            f.format(),
            CaptureFormat::Pcap {
                nanos: false,
                big_endian: false
            }
        );
        let (got, fault, _) = read_all(&p);
        assert!(fault.is_none(), "{fault:?}");
        assert_eq!(got, want);
    }
}

#[test]
fn truncated_file_reports_offset_of_cut_record() {
    if !crate::testing::corpus::require() {
        return;
    }
    // wireshark_http.cap.pcap: little-endian pcap, 43 records. tshark cap_len of the first
    // 11: 62 62 54 533 54 1434 54 1434 54 1434 1434 (sum of all 43 is 25091, and
    // 24 + 43*16 + 25091 = 25803 = the file size).
    let plain = std::fs::read(corpus("wireshark_http.cap.pcap")).unwrap();
    let caplens = [62usize, 62, 54, 533, 54, 1434, 54, 1434, 54, 1434];
    let rec10 = 24 + caplens.iter().map(|c| 16 + c).sum::<usize>();
    assert_eq!(rec10, 5359);
    let (full, _, _) = read_all(&corpus("wireshark_http.cap.pcap"));
    let dir = tempfile::tempdir().unwrap();

    // Cut inside the data of record 10, inside its header, and exactly between records.
    for (cut, expect_fault) in [(rec10 + 16 + 100, true), (rec10 + 8, true), (rec10, false)] {
        let p = tmp_file(&dir, "cut.pcap", &plain[..cut]);
        let (got, fault, _) = read_all(&p);
        assert_eq!(got.len(), 10, "cut at {cut}");
        assert_eq!(got[..], full[..10]);
        match fault {
            Some(CaptureError::Truncated { offset, .. }) => {
                assert!(expect_fault);
                assert_eq!(offset, rec10 as u64);
            }
            None => assert!(!expect_fault, "cut at {cut} should be reported"),
            other => panic!("unexpected {other:?}"),
        }
    }
    // Cut inside the file header.
    let p = tmp_file(&dir, "hdr.pcap", &plain[..20]);
    assert!(matches!(
        CaptureFile::open(&p, 0),
        Err(CaptureError::Truncated { offset: 0, .. })
    ));
}

#[test]
fn truncated_gzip_stream() {
    if !crate::testing::corpus::require() {
        return;
    }
    let plain = std::fs::read(corpus("wireshark_http.cap.pcap")).unwrap();
    let gz = gzip(&plain);
    let dir = tempfile::tempdir().unwrap();
    let p = tmp_file(&dir, "cut.pcap.gz", &gz[..gz.len() / 2]);
    let (got, fault, _) = read_all(&p);
    let (full, _, _) = read_all(&corpus("wireshark_http.cap.pcap"));
    assert!(!got.is_empty() && got.len() < full.len());
    assert_eq!(got[..], full[..got.len()]);
    assert!(
        matches!(fault, Some(CaptureError::Truncated { .. })),
        "{fault:?}"
    );
}

#[test]
fn open_errors() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        CaptureFile::open(&dir.path().join("missing.pcap"), 0),
        Err(CaptureError::Io { .. })
    ));
    let p = tmp_file(&dir, "x.pcap", b"GET / HTTP/1.1\r\n\r\n");
    match CaptureFile::open(&p, 0) {
        Err(CaptureError::NotACapture { magic, .. }) => assert!(magic.starts_with("47 45 54 20")),
        other => panic!("{:?}", other.err()),
    }
    let p = tmp_file(&dir, "empty.pcap", b"");
    assert!(matches!(
        CaptureFile::open(&p, 0),
        Err(CaptureError::NotACapture { .. })
    ));
    // gzip of garbage: sniffed again after decompression
    let p = tmp_file(&dir, "g.gz", &gzip(b"hello world, not a capture"));
    assert!(matches!(
        CaptureFile::open(&p, 0),
        Err(CaptureError::NotACapture { .. })
    ));
    // gzip magic but not a gzip stream
    let p = tmp_file(
        &dir,
        "bad.gz",
        &[0x1f, 0x8b, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    );
    assert!(CaptureFile::open(&p, 0).is_err());
}

// ---- built pcapng ----------------------------------------------------------------------

fn u32b(v: u32, be: bool) -> [u8; 4] {
    if be {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    }
}

/// A pcapng block: type, total length, body padded to 4, total length.
fn block(be: bool, ty: u32, body: &[u8]) -> Vec<u8> {
    let mut b = body.to_vec();
    while b.len() % 4 != 0 {
        b.push(0);
    }
    let len = 12 + b.len() as u32;
    let mut out = u32b(ty, be).to_vec();
    out.extend(u32b(len, be));
    out.extend(b);
    out.extend(u32b(len, be));
    out
}

fn shb(be: bool) -> Vec<u8> {
    let mut body = u32b(0x1A2B_3C4D, be).to_vec();
    body.extend(if be { [0, 1, 0, 0] } else { [1, 0, 0, 0] }); // version 1.0
    body.extend([0xff; 8]); // section length unknown
    block(be, 0x0A0D_0D0A, &body)
}

fn opt(be: bool, code: u16, value: &[u8]) -> Vec<u8> {
    let mut o = if be {
        code.to_be_bytes()
    } else {
        code.to_le_bytes()
    }
    .to_vec();
    o.extend(if be {
        (value.len() as u16).to_be_bytes()
    } else {
        (value.len() as u16).to_le_bytes()
    });
    o.extend(value);
    while o.len() % 4 != 0 {
        o.push(0);
    }
    o
}

fn idb(be: bool, linktype: u16, snaplen: u32, opts: &[Vec<u8>]) -> Vec<u8> {
    let mut body = if be {
        linktype.to_be_bytes()
    } else {
        linktype.to_le_bytes()
    }
    .to_vec();
    body.extend([0, 0]);
    body.extend(u32b(snaplen, be));
    if !opts.is_empty() {
        for o in opts {
            body.extend(o);
        }
        body.extend([0; 4]); // opt_endofopt
    }
    block(be, 1, &body)
}

fn epb(be: bool, if_id: u32, ts: u64, data: &[u8], orig: u32) -> Vec<u8> {
    let mut body = u32b(if_id, be).to_vec();
    body.extend(u32b((ts >> 32) as u32, be));
    body.extend(u32b(ts as u32, be));
    body.extend(u32b(data.len() as u32, be));
    body.extend(u32b(orig, be));
    body.extend(data);
    block(be, 6, &body)
}

/// Every packet block kind, big- and little-endian sections, clocks per interface, and
/// blocks to skip. Expected values follow from the pcapng spec (draft-ietf-opsawg-pcapng):
/// if_tsresol 0x83 = 2^-3 s units, if_tsoffset in seconds, SPB on interface 0 cut to its
/// snaplen. Checked with tshark on the written file: 4 frames, epoch times 11.000000000,
/// (none: SPB), 2.500000000, 0.000000007; interfaces 0, 0, 1 and the second section's first;
/// encaps raw IP, raw IP, Ethernet, Linux SLL; lengths 3/3, 6/4, 60/2, 5/5.
fn built_pcapng() -> Vec<u8> {
    let mut f = shb(true);
    // interface 0: raw IP, snaplen 4, 1/8 s units, +10 s offset
    f.extend(idb(
        true,
        101,
        4,
        &[opt(true, 9, &[0x83]), opt(true, 14, &10i64.to_be_bytes())],
    ));
    // interface 1: Ethernet, default µs
    f.extend(idb(true, 1, 0, &[]));
    f.extend(epb(true, 0, 8, &[0x45, 1, 2], 3)); // 8/8 s + 10 s = 11 s
    f.extend(block(true, 0x0000_0004, &[0u8; 8])); // name resolution: skipped
    let mut spb = u32b(6, true).to_vec();
    spb.extend([0x45, 9, 9, 9]);
    f.extend(block(true, 3, &spb)); // SPB: orig 6, snaplen 4: 4 bytes kept
    let mut pb = 1u16.to_be_bytes().to_vec(); // obsolete Packet Block on interface 1
    pb.extend([0, 0]);
    pb.extend(u32b(0, true));
    pb.extend(u32b(2_500_000, true)); // 2.5 s in µs
    pb.extend(u32b(2, true));
    pb.extend(u32b(60, true));
    pb.extend([0xaa, 0xbb]);
    f.extend(block(true, 2, &pb));
    // A new little-endian section forgets the interfaces.
    f.extend(shb(false));
    f.extend(idb(false, 113, 0, &[opt(false, 9, &[9])]));
    f.extend(block(false, 0x0BAD_1234, &[1, 2, 3, 4])); // unknown type: skipped
    f.extend(epb(false, 0, 7, &[1, 2, 3, 4, 5], 5));
    f
}

#[test]
fn pcapng_block_kinds_sections_and_clocks() {
    let dir = tempfile::tempdir().unwrap();
    let p = tmp_file(&dir, "built.pcapng", &built_pcapng());
    let (pkts, fault, cov) = read_all(&p);
    assert!(fault.is_none(), "{fault:?}");
    let summary: Vec<_> = pkts
        .iter()
        .map(|p| (p.ts, p.link, p.iface, p.orig_len, p.data.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (11_000_000_000, LinkType::RawIp, 0, 3, vec![0x45, 1, 2]),
            // SPB: no timestamp of its own, keeps the previous one
            (11_000_000_000, LinkType::RawIp, 0, 6, vec![0x45, 9, 9, 9]),
            (2_500_000_000, LinkType::Ethernet, 1, 60, vec![0xaa, 0xbb]),
            // interface 0 of the second section, numbered after the first section's two
            (7, LinkType::LinuxSll, 2, 5, vec![1, 2, 3, 4, 5]),
        ]
    );
    assert_eq!(cov.truncated_snaplen, 2);
    assert_eq!(cov.bytes, 3 + 4 + 2 + 5);
}

#[test]
fn pcapng_faults_name_the_block_offset() {
    let dir = tempfile::tempdir().unwrap();
    let head = [shb(false), idb(false, 1, 0, &[])].concat();
    let good = epb(false, 0, 1, &[1, 2, 3, 4], 4);
    let at = (head.len() + good.len()) as u64;

    // EPB whose caplen runs past its block
    let mut bad = epb(false, 0, 2, &[1, 2, 3, 4], 4);
    bad[20..24].copy_from_slice(&100u32.to_le_bytes());
    // EPB for an interface nobody described
    let stray = epb(false, 3, 2, &[1], 1);
    // impossible block length
    let mut odd = epb(false, 0, 2, &[1, 2, 3, 4], 4);
    odd[4..8].copy_from_slice(&33u32.to_le_bytes());
    // trailing length disagrees with the leading one
    let mut mismatch = epb(false, 0, 2, &[1, 2, 3, 4], 4);
    let n = mismatch.len();
    mismatch[n - 4..].copy_from_slice(&64u32.to_le_bytes());

    for tail in [bad, stray, odd, mismatch] {
        let bytes = [head.clone(), good.clone(), tail, good.clone()].concat();
        let p = tmp_file(&dir, "bad.pcapng", &bytes);
        let (pkts, fault, _) = read_all(&p);
        assert_eq!(pkts.len(), 1);
        match fault {
            Some(CaptureError::Corrupt { offset, .. }) => assert_eq!(offset, at),
            other => panic!("expected Corrupt at {at}, got {other:?}"),
        }
    }

    // cut inside the second EPB
    let bytes = [head.clone(), good.clone(), good.clone()].concat();
    let p = tmp_file(&dir, "cut.pcapng", &bytes[..bytes.len() - 6]);
    let (pkts, fault, _) = read_all(&p);
    assert_eq!(pkts.len(), 1);
    assert!(matches!(fault, Some(CaptureError::Truncated { offset, .. }) if offset == at));
}

#[test]
fn record_larger_than_the_buffer_is_read() {
    // A 3 MiB custom block (legal, over the 1 MiB buffer) between two packets.
    let big = block(false, 0x0000_0BAD, &vec![0x5a; 3 << 20]);
    let bytes = [
        shb(false),
        idb(false, 1, 0, &[]),
        epb(false, 0, 1, &[1; 60], 60),
        big,
        epb(false, 0, 2, &[2; 60], 60),
    ]
    .concat();
    let dir = tempfile::tempdir().unwrap();
    let p = tmp_file(&dir, "big.pcapng", &bytes);
    let (pkts, fault, _) = read_all(&p);
    assert!(fault.is_none(), "{fault:?}");
    assert_eq!(pkts.len(), 2);
    assert_eq!(pkts[1].data, vec![2; 60]);
    assert_eq!(pkts[1].ts, 2_000);
}

#[test]
fn offsets_sum_consumed_bytes() {
    if !crate::testing::corpus::require() {
        return;
    }
    // After the last packet of arkime_bigendian.pcap (252 bytes), the offset is the file size.
    let mut cov = Coverage::default();
    let mut f = CaptureFile::open(&corpus("arkime_bigendian.pcap"), 0).unwrap();
    assert!(f.advance(&mut cov).unwrap());
    assert_eq!(
        f.offset(),
        24,
        "header consumed, first record still current"
    );
    assert!(f.advance(&mut cov).unwrap());
    assert_eq!(f.offset(), 24 + 16 + 98);
    assert!(!f.advance(&mut cov).unwrap());
    assert_eq!(f.offset(), 252);
    assert!(
        f.current().data.is_empty(),
        "no current frame after the end"
    );
}

// ---- robustness ------------------------------------------------------------------------

mod damaged {
    use proptest::prelude::*;

    use super::*;

    /// Reads a damaged file to the end: no panic, no hang, at most one fault, and the offset
    /// never passes the (decompressed) size.
    fn survives(bytes: &[u8]) {
        let dir = tempfile::tempdir().unwrap();
        let p = tmp_file(&dir, "d.pcap", bytes);
        let Ok(mut f) = CaptureFile::open(&p, 0) else {
            return;
        };
        let mut cov = Coverage::default();
        let mut faults = 0;
        for _ in 0..100_000 {
            match f.advance(&mut cov) {
                Ok(true) => assert!(f.current().data.len() <= MAX_CAPLEN as usize),
                Ok(false) => break,
                Err(_) => faults += 1,
            }
        }
        assert!(matches!(f.advance(&mut cov), Ok(false)), "ended");
        assert!(faults <= 1);
        assert!(f.offset() <= bytes.len() as u64);
    }

    fn base(name: &str) -> Vec<u8> {
        std::fs::read(corpus(name)).unwrap()
    }

    #[test]
    fn flipped_bytes_in_pcap() {
        if !crate::testing::corpus::require() {
            return;
        }
        let original = base("wireshark_http.cap.pcap");
        proptest!(ProptestConfig::with_cases(48), |(flips in prop::collection::vec((0usize..2500, any::<u8>()), 1..8))| {
            let mut b = original.clone();
            for (at, v) in flips { b[at] = v; }
            survives(&b);
        });
    }

    #[test]
    fn flipped_bytes_in_pcapng() {
        if !crate::testing::corpus::require() {
            return;
        }
        let original = base("zeek_pcapng-multi-interface.pcapng");
        proptest!(ProptestConfig::with_cases(48), |(flips in prop::collection::vec((0usize..1348, any::<u8>()), 1..8), cut in 0usize..1348)| {
            let mut b = original.clone();
            for (at, v) in flips { b[at] = v; }
            survives(&b[..cut.max(12)]);
            survives(&b);
        });
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn built_pcapng_damaged(at in 0usize..400, v in any::<u8>()) {
            let mut b = built_pcapng();
            let at = at % b.len();
            b[at] = v;
            survives(&b);
        }
    }
}
