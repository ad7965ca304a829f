//! The TLS handshake columns of the connections table against tshark on real captures:
//! version, cipher suite, selected ALPN, resumption, certificate bytes, and the time and
//! bytes from the ClientHello to the handshake's end, worked out here from tshark's
//! per-frame record lists (not from linkrank's code). Coverage counters against tshark's
//! counts of ServerHellos.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::{analyse, corpus, i64s, repo, strs, tshark, u64s};
use polars::prelude::*;

/// One TCP payload-carrying frame of a stream, as tshark dissects it.
#[derive(Debug)]
struct Frame {
    ns: i64,
    from_client: bool,
    tcp_len: u64,
    /// Record content types in order: the cleartext ones, then the opaque (TLS 1.3) ones.
    records: Vec<(u8, u64)>,
    hs_types: Vec<u8>,
    hs_lens: Vec<u64>,
    ext_types: Vec<u16>,
    supported_version: Vec<String>,
    hs_version: String,
    cipher: String,
    session_id: String,
    alpn: String,
}

/// What tshark's frames say of one connection.
#[derive(Debug, Default, PartialEq)]
struct Expect {
    version: Option<String>,
    cipher: Option<u16>,
    alpn_selected: Option<String>,
    resumed: Option<bool>,
    cert_bytes: Option<u64>,
    handshake_ns: Option<i64>,
    handshake_bytes: Option<u64>,
}

fn epoch_ns(s: &str) -> i64 {
    let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
    let frac = format!("{frac:0<9}");
    sec.parse::<i64>().unwrap() * 1_000_000_000 + frac[..9].parse::<i64>().unwrap()
}

fn list<T: std::str::FromStr>(s: &str) -> Vec<T> {
    s.split(',').filter_map(|x| x.trim().parse().ok()).collect()
}

/// Frames with payload per (client port, server port), from the ClientHello on.
fn tshark_streams(file: &Path, extra: &[&str]) -> BTreeMap<(u16, u16), Vec<Frame>> {
    let mut args = vec!["-r", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-Y", "tcp.len>0", "-T", "fields", "-E", "separator=|"]);
    for f in [
        "frame.time_epoch",
        "tcp.stream",
        "tcp.srcport",
        "tcp.dstport",
        "tcp.len",
        "tls.record.content_type",
        "tls.record.opaque_type",
        "tls.record.length",
        "tls.handshake.type",
        "tls.handshake.length",
        "tls.handshake.extension.type",
        "tls.handshake.extensions.supported_version",
        "tls.handshake.version",
        "tls.handshake.ciphersuite",
        "tls.handshake.session_id",
        "tls.handshake.extensions_alpn_str",
    ] {
        args.extend_from_slice(&["-e", f]);
    }
    let out = tshark(&args);
    let mut by_stream: BTreeMap<u64, (u16, u16, Vec<Frame>)> = BTreeMap::new();
    for line in out.lines() {
        let f: Vec<&str> = line.split('|').collect();
        assert_eq!(f.len(), 16, "{line}");
        let stream: u64 = f[1].parse().unwrap();
        let (src, dst): (u16, u16) = (f[2].parse().unwrap(), f[3].parse().unwrap());
        let hs_types: Vec<u8> = list(f[8]);
        let entry = by_stream.entry(stream);
        let started = matches!(entry, std::collections::btree_map::Entry::Occupied(_));
        if !started && !hs_types.contains(&1) {
            continue;
        }
        // The ClientHello's sender is the client.
        let e = entry.or_insert((src, dst, Vec::new()));
        let types: Vec<u8> = list::<u8>(f[5]).into_iter().chain(list(f[6])).collect();
        let lens: Vec<u64> = list(f[7]);
        e.2.push(Frame {
            ns: epoch_ns(f[0]),
            from_client: src == e.0,
            tcp_len: f[4].parse().unwrap(),
            records: types.into_iter().zip(lens).collect(),
            hs_types,
            hs_lens: list(f[9]),
            ext_types: list(f[10]),
            supported_version: f[11].split(',').map(str::to_owned).collect(),
            hs_version: f[12].split(',').next_back().unwrap_or("").to_owned(),
            cipher: f[13].to_owned(),
            session_id: f[14].to_owned(),
            alpn: f[15].to_owned(),
        });
    }
    by_stream
        .into_values()
        .map(|(c, s, frames)| ((c, s), frames))
        .collect()
}

/// The handshake facts of one connection, by the rules of docs/engine.md, from frames.
fn expect(frames: &[Frame]) -> Expect {
    let mut x = Expect::default();
    let hello = &frames[0];
    let Some(sh) = frames
        .iter()
        .find(|f| !f.from_client && f.hs_types.contains(&2))
    else {
        return x;
    };
    let v13 = sh.supported_version.iter().any(|v| v == "0x0304");
    x.version = Some(if v13 { "TLS 1.3" } else { "TLS 1.2" }.to_owned());
    assert!(v13 || sh.hs_version == "0x0303", "{:?}", sh.hs_version);
    x.cipher = u16::from_str_radix(sh.cipher.trim_start_matches("0x"), 16).ok();
    // All records of both sides in capture order: (frame index, type, bytes before it).
    let mut recs = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let mut before = 0;
        for &(t, len) in &f.records {
            recs.push((i, f.from_client, t, before, len + 5));
            before += len + 5;
        }
    }
    let upto = |frame: usize, before: u64| -> u64 {
        frames[..frame].iter().map(|f| f.tcp_len).sum::<u64>() + before
    };
    if v13 {
        x.resumed = Some(sh.ext_types.contains(&41));
        let first_server_23 = recs.iter().position(|r| !r.1 && r.2 == 23);
        if let Some(s) = first_server_23 {
            let mut client_23 = recs[s..].iter().filter(|r| r.1 && r.2 == 23);
            let _finished = client_23.next();
            if let Some(&(i, _, _, before, _)) = client_23.next() {
                x.handshake_ns = Some(frames[i].ns - hello.ns);
                x.handshake_bytes = Some(upto(i, before));
            }
        }
    } else {
        x.alpn_selected = Some(sh.alpn.clone()).filter(|a| !a.is_empty());
        let certs: u64 = frames
            .iter()
            .flat_map(|f| f.hs_types.iter().zip(&f.hs_lens))
            .filter(|(t, _)| **t == 11)
            .map(|(_, l)| *l)
            .sum();
        x.cert_bytes = Some(certs);
        let full = frames
            .iter()
            .any(|f| !f.from_client && (f.hs_types.contains(&11) || f.hs_types.contains(&14)));
        let same_id = !sh.session_id.is_empty() && sh.session_id == hello.session_id;
        x.resumed = Some(same_id || !full);
        let ccs = recs.iter().position(|r| !r.1 && r.2 == 20);
        if let Some(c) = ccs {
            if let Some(&(i, _, _, before, len)) = recs[c + 1..].iter().find(|r| !r.1) {
                x.handshake_ns = Some(frames[i].ns - hello.ns);
                x.handshake_bytes = Some(upto(i, before + len));
            }
        }
    }
    x
}

fn u16s(df: &DataFrame, col: &str) -> Vec<Option<u64>> {
    u64s(df, col)
}

fn bools(df: &DataFrame, col: &str) -> Vec<Option<bool>> {
    df.column(col).unwrap().bool().unwrap().iter().collect()
}

/// Runs linkrank and compares each TLS connection with tshark; returns (hellos, server
/// hellos, resumed) as tshark counts them.
fn compare(file: &Path, extra: &[&str]) -> (usize, usize, usize) {
    let streams = tshark_streams(file, extra);
    let (tables, cov) = analyse(&[file.to_path_buf()]);
    let cn = &tables.connections;
    let cport = u16s(cn, "client_port");
    let sport = u16s(cn, "server_port");
    let version = strs(cn, "tls_version");
    let cipher = strs(cn, "tls_cipher");
    let alpn = strs(cn, "tls_alpn_selected");
    let resumed = bools(cn, "tls_resumed");
    let certs = u64s(cn, "tls_cert_bytes");
    let hs_ns = i64s(cn, "tls_handshake_ns");
    let hs_bytes = u64s(cn, "tls_handshake_bytes");
    let protocol = strs(cn, "protocol");
    let mut rows = BTreeMap::new();
    for i in (0..cn.height()).filter(|&i| protocol[i].as_deref() == Some("tls")) {
        let key = (cport[i].unwrap() as u16, sport[i].unwrap() as u16);
        assert!(rows.insert(key, i).is_none(), "ports reused: {key:?}");
    }
    let (mut shs, mut res, mut timed) = (0, 0, 0);
    for (key, frames) in &streams {
        let want = expect(frames);
        let i = rows[key];
        let got = Expect {
            version: version[i].clone(),
            cipher: cipher[i].as_deref().map(|c| {
                tls_parser::TlsCipherSuite::from_name(c)
                    .map(|s| s.id.0)
                    .unwrap_or_else(|| u16::from_str_radix(&c[2..], 16).unwrap())
            }),
            alpn_selected: alpn[i].clone(),
            resumed: resumed[i],
            cert_bytes: certs[i],
            handshake_ns: hs_ns[i],
            handshake_bytes: hs_bytes[i],
        };
        assert_eq!(got, want, "{} connection {key:?}", file.display());
        shs += usize::from(want.version.is_some());
        res += usize::from(want.resumed == Some(true));
        timed += usize::from(want.handshake_ns.is_some());
    }
    // Most handshakes are timed: the comparison above is not only of nulls.
    assert!(
        2 * timed > streams.len(),
        "{timed} of {} timed",
        streams.len()
    );
    eprintln!(
        "{}: {} hellos, {shs} server hellos, {res} resumed, {timed} timed",
        file.display(),
        streams.len()
    );
    assert_eq!(cov.tls_client_hellos as usize, streams.len(), "hellos");
    assert_eq!(cov.tls_server_hellos as usize, shs, "server hellos");
    assert_eq!(cov.tls_handshakes_resumed as usize, res, "resumed");
    assert_eq!(cov.tls_handshake_unparsed, 0);
    (streams.len(), shs, res)
}

#[test]
fn tls_fixture_matches_tshark_and_expected_json() {
    let file = repo("fixtures/tls_sni.pcap");
    assert_eq!(compare(&file, &[]), (5, 5, 0));
    // fixtures/expected/tls_sni.json: version, cipher suite and selected ALPN per port.
    let text = std::fs::read_to_string(repo("fixtures/expected/tls_sni.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let (tables, _) = analyse(&[file]);
    let cn = &tables.connections;
    let (ports, version, cipher, alpn) = (
        u64s(cn, "client_port"),
        strs(cn, "tls_version"),
        strs(cn, "tls_cipher"),
        strs(cn, "tls_alpn_selected"),
    );
    for c in json["names"]["connections"].as_array().unwrap() {
        let port = c["client_port"].as_u64().unwrap();
        let i = ports.iter().position(|p| *p == Some(port)).unwrap();
        assert_eq!(version[i].as_deref(), c["version"].as_str());
        let id = u16::from_str_radix(&c["cipher_suite"].as_str().unwrap()[2..], 16).unwrap();
        let name = tls_parser::TlsCipherSuite::from_id(id).map(|s| s.name);
        assert_eq!(cipher[i].as_deref(), name, "port {port}");
        assert_eq!(alpn[i].as_deref(), c["alpn_selected"].as_str());
    }
}

#[test]
fn demo_capture_matches_tshark() {
    let file = repo("captures/prod.pcap");
    assert_eq!(compare(&file, &["-d", "tcp.port==8443,tls"]), (158, 158, 0));
    let (tables, _) = analyse(&[file]);
    let cipher = strs(&tables.connections, "tls_cipher");
    let n = cipher
        .iter()
        .filter(|c| c.as_deref() == Some("TLS_AES_256_GCM_SHA384"))
        .count();
    assert_eq!(n, 158);
}

#[test]
fn corpus_captures_match_tshark() {
    if !linkrank::testing::corpus::require() {
        return;
    }
    for name in ["itls13_capture.pcap", "cryptohack_tls13_h2.pcapng"] {
        let (hellos, shs, _) = compare(&corpus(name), &[]);
        assert!(hellos > 0 && shs > 0, "{name}");
    }
}
