//! Handshake tests on real records: fixtures/tls_sni.pcap frames 44, 46, 48 and 49 (a TLS
//! 1.2 handshake; tshark: ServerHello 0xc02c with ALPN `h2`, Certificate length 549,
//! server ChangeCipherSpec and Finished in frame 49) and the ServerHello record of frame 8
//! (TLS 1.3, supported_versions 0x0304, cipher 0x1302).

use super::*;
use crate::ingest::tls::tests::hello;
use crate::model::{Coverage, Direction, Timestamp};

const C2S: Direction = Direction::ClientToServer;
const S2C: Direction = Direction::ServerToClient;

/// Frame 44: ClientHello (228 bytes, empty session id).
const CH12: &str = "16030100df010000db030303698ea6ceb3ef3ca9f5a0606bd6ca5ca98103f26569f66393f6c2f970d82f6e000038c02cc030009fcca9cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff0100007a0000001600140000117061796d656e74732e696e7465726e616c000b000403000102000a000c000a001d0017001e001900180010000e000c02683208687474702f312e310016000000170000000d002a0028040305030603080708080809080a080b080408050806040105010601030303010302040205020602";
/// Frame 46: ServerHello, Certificate, ServerKeyExchange, ServerHelloDone (798 bytes).
const FLIGHT12: &str = "160303006a0200006603032b1b533a38f8d84843be56d0297dddc788c335466a9126dc444f574e47524401207b8166217517fe79f2eefb2211a2eea8e4987f0bd443e803548c61fd7b80dea9c02c00001eff0100010000000000000b0004030001020010000500030268320017000016030302290b00022500022200021f3082021b308201c1a0030201020214359ff8de4ca133465e681238173772c8db64e289300a06082a8648ce3d040302303b311a3018060355040a0c116c696e6b72616e6b206669787475726573311d301b06035504030c146c696e6b72616e6b206669787475726573204341301e170d3236313132353138313433385a170d3236313132373138313433385a3038311a3018060355040a0c116c696e6b72616e6b206669787475726573311a301806035504030c117061796d656e74732e696e7465726e616c3059301306072a8648ce3d020106082a8648ce3d03010703420004fd08b77f354b511cef3b9089d872740be7e150e59f8ede54f8e3d3302c13e650e056305c62d30c9649985b281785c073894aa4b06240cefd922ccff7b3d8b9d0a381a53081a2302d0603551d110426302482117061796d656e74732e696e7465726e616c820f6c65646765722e696e7465726e616c300c0603551d130101ff04023000300e0603551d0f0101ff04040302078030130603551d25040c300a06082b06010505070301301f0603551d23041830168014667afc77ef14ad5f9ebc03178bed7c1e16006d48301d0603551d0e041604145e9fe8215b797044f9d32033a90a830627afe258300a06082a8648ce3d0403020348003045022064d0c1f8e8039bc5671c73fb930ebce9b6a65c67244a9c4801c717350a3b2c63022100dded553095adf95afae700d971b3f8c7ffad21ac1228f9251ba23c319c7e35e916030300730c00006f03001d20120cf38142d589d3ec370493c1ac14b23e093063230d4195d6ceb0a6df20f57c040300473045022036081dc6cb29002076c26a202f4541d5fb9423b5b9255ce6038de9ffaeb61325022100d523937dc7792da594717b627d941597da2149f620254091a9798d7543ca17ae16030300040e000000";
/// Frame 48: ClientKeyExchange, ChangeCipherSpec, encrypted Finished (93 bytes).
const CKE12: &str = "160303002510000021201d366b9ea9c999df30ab148d47e121406f962cc59ca4a72e3c97eff17e868a4e140303000101160303002893b29961fd6c656a7bf6adf5d88851b51697c18c0dd685fe20c01a3948811196028cf81ff41ed4e4";
/// Frame 49: the server's ChangeCipherSpec and encrypted Finished (51 bytes).
const FIN12: &str = "1403030001011603030028a50f81e848178f828676d2d038b52f2dab97f74661343dedec5d8933a606b3dd34e3d0848d4f9951";
/// Frame 8's first record: a TLS 1.3 ServerHello (127 bytes).
const SH13: &str = "160303007a020000760303589bb4bec0d8e8bc910e1fd113dadab626dbb925dac32f9056ce049562d94c87204cbef8b1a8b27ca36bc4e60e4d6e2a1dfe6a0edb33b046717680e69ffa0dfcab130200002e002b0002030400330024001d002052e6338347bf0832ef727c7790d2e9059ea6f01559fe38f8cd02616e3e4c8c09";

fn bytes(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn ts(ns: i64) -> Timestamp {
    Timestamp::from_nanos(ns)
}

/// Feeds (direction, time, bytes) in order; returns the finished facts and coverage.
fn run(events: &[(Direction, i64, Vec<u8>)]) -> (super::HelloNames, TlsHandshake, Coverage) {
    let mut h = Handshake::new(ts(events[0].1));
    for (dir, t, b) in events {
        h.data(*dir, ts(*t), b);
    }
    let mut cov = Coverage::default();
    let (names, facts) = h.finish(&mut cov);
    (names, facts, cov)
}

use crate::model::connection::TlsHandshake;

fn tls12() -> Vec<(Direction, i64, Vec<u8>)> {
    vec![
        (C2S, 1_000, bytes(CH12)),
        (S2C, 2_000, bytes(FLIGHT12)),
        (C2S, 3_000, bytes(CKE12)),
        (S2C, 4_000, bytes(FIN12)),
    ]
}

#[test]
fn tls13_server_hello_record() {
    let (names, f, cov) = run(&[(C2S, 5, hello()), (S2C, 9, bytes(SH13))]);
    assert_eq!(names.sni.as_deref(), Some("tls3.cryptohack.org"));
    assert_eq!(f.version.as_deref(), Some("TLS 1.3"));
    assert_eq!(
        f.cipher.as_deref(),
        Some("TLS_AES_256_GCM_SHA384"),
        "0x1302"
    );
    assert_eq!(
        f.resumed,
        Some(false),
        "no pre_shared_key in the ServerHello"
    );
    assert_eq!((f.alpn_selected, f.cert_bytes), (None, None));
    // The client's application data was never seen: no end.
    assert_eq!((f.handshake_ns, f.handshake_bytes), (None, None));
    assert_eq!((cov.tls_client_hellos, cov.tls_server_hellos), (1, 1));
    assert_eq!(cov.tls_handshake_unparsed, 0);
}

#[test]
fn tls13_end_is_the_clients_first_data_after_its_finished() {
    let app = |n: u8| vec![23, 3, 3, 0, 2, n, n];
    let mut server = bytes(SH13);
    server.extend_from_slice(&[20, 3, 3, 0, 1, 1]);
    server.extend(app(1)); // the encrypted flight
    let ccs_fin = [vec![20, 3, 3, 0, 1, 1], app(2)].concat();
    let (_, f, _) = run(&[
        (C2S, 100, hello()),
        (S2C, 200, server.clone()),
        (C2S, 300, ccs_fin.clone()),
        (S2C, 350, app(3)), // a ticket
        (C2S, 400, app(4)), // the first request: the end
        (C2S, 500, app(5)),
    ]);
    assert_eq!(f.handshake_ns, Some(300));
    // Everything before the request: 517 + server flight + 13 + 7.
    let want = 517 + server.len() as u64 + ccs_fin.len() as u64 + 7;
    assert_eq!(f.handshake_bytes, Some(want));
}

#[test]
fn tls12_full_handshake() {
    let (names, f, cov) = run(&tls12());
    assert_eq!(names.alpn.as_deref(), Some("h2,http/1.1"));
    assert_eq!(f.version.as_deref(), Some("TLS 1.2"));
    assert_eq!(
        f.cipher.as_deref(),
        Some("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
        "0xc02c"
    );
    assert_eq!(f.alpn_selected.as_deref(), Some("h2"));
    assert_eq!(f.cert_bytes, Some(549), "tshark: tls.handshake.length 549");
    assert_eq!(f.resumed, Some(false));
    assert_eq!(f.ticket_offered, Some(false));
    // Server Finished (frame 49) - ClientHello (frame 44); all four segments' bytes.
    assert_eq!(f.handshake_ns, Some(3_000));
    assert_eq!(f.handshake_bytes, Some(228 + 798 + 93 + 51));
    assert_eq!((cov.tls_server_hellos, cov.tls_handshakes_resumed), (1, 0));
}

#[test]
fn tls12_cut_anywhere_gives_the_same_facts() {
    let (_, whole, _) = run(&tls12());
    let all = tls12();
    for (k, cut) in [
        (0, 3),
        (0, 100),
        (1, 1),
        (1, 4),
        (1, 9),
        (1, 111),
        (1, 400),
        (1, 797),
        (3, 6),
    ] {
        let mut ev = Vec::new();
        for (i, (d, t, b)) in all.iter().enumerate() {
            if i == k {
                ev.push((*d, *t, b[..cut].to_vec()));
                ev.push((*d, *t, b[cut..].to_vec()));
            } else {
                ev.push((*d, *t, b.clone()));
            }
        }
        let (_, f, _) = run(&ev);
        assert_eq!(f, whole, "event {k} cut at {cut}");
    }
}

/// The ClientHello of frame 44 with a 32-byte session id (lengths adjusted).
fn hello_with_session_id(id: &[u8]) -> Vec<u8> {
    let ch = bytes(CH12);
    let mut out = ch[..43].to_vec();
    assert_eq!(ch[43], 0, "empty session id");
    out.push(id.len() as u8);
    out.extend_from_slice(id);
    out.extend_from_slice(&ch[44..]);
    let rec = u16::from_be_bytes([ch[3], ch[4]]) + id.len() as u16;
    out[3..5].copy_from_slice(&rec.to_be_bytes());
    out[8] += id.len() as u8; // handshake length 0x0000db + 32 stays below 0x100
    out
}

#[test]
fn tls12_resumption_by_session_id_and_abbreviated() {
    let flight = bytes(FLIGHT12);
    let sh = flight[..5 + 106].to_vec();
    let sid = sh[5 + 4 + 2 + 32 + 1..5 + 4 + 2 + 32 + 1 + 32].to_vec();
    assert_eq!(sh[5 + 4 + 2 + 32], 32);
    // Abbreviated: ServerHello, ChangeCipherSpec, Finished; same session id.
    for (client, by) in [(hello_with_session_id(&sid), "id"), (bytes(CH12), "ccs")] {
        let (_, f, cov) = run(&[
            (C2S, 10, client.clone()),
            (S2C, 20, [sh.clone(), bytes(FIN12)].concat()),
            (C2S, 30, bytes(CKE12)[42..].to_vec()),
        ]);
        assert_eq!(f.resumed, Some(true), "{by}");
        assert_eq!(f.cert_bytes, Some(0));
        assert_eq!(f.handshake_ns, Some(10));
        assert_eq!(
            f.handshake_bytes,
            Some((client.len() + sh.len() + 51) as u64)
        );
        assert_eq!(cov.tls_handshakes_resumed, 1);
    }
}

#[test]
fn broken_server_records_are_counted() {
    let (_, f, cov) = run(&[(C2S, 1, bytes(CH12)), (S2C, 2, vec![0x16, 9, 9, 0, 1, 0])]);
    assert_eq!(f.version, None);
    assert_eq!((cov.tls_client_hellos, cov.tls_handshake_unparsed), (1, 1));
    let mut h = Handshake::new(ts(0));
    h.data(C2S, ts(0), &bytes(CH12));
    assert_eq!(h.gap(), Progress::Done);
    let mut cov = Coverage::default();
    h.finish(&mut cov);
    assert_eq!(cov.tls_handshake_unparsed, 1);
}

#[test]
fn never_panics_and_stays_bounded() {
    use proptest::prelude::*;
    proptest!(|(flips in proptest::collection::vec((any::<u16>(), any::<u8>()), 0..8), cut in any::<u16>())| {
        let mut ev = tls12();
        for (at, x) in flips {
            let b = &mut ev[usize::from(at) % 4].2;
            let i = usize::from(at) % b.len();
            b[i] ^= x;
        }
        let mut h = Handshake::new(ts(0));
        for (d, t, b) in &ev {
            let c = usize::from(cut) % (b.len() + 1);
            h.data(*d, ts(*t), &b[..c]);
            h.data(*d, ts(*t), &b[c..]);
            prop_assert!(h.held_bytes() <= 2 * super::MAX_HELLO_BYTES);
        }
        h.finish(&mut Coverage::default());
    });
}
