//! TLS decryption with key logs: the exchanges read from decrypted records must be the
//! requests tshark finds with the same keys (`-o tls.keylog_file:`), on the TLS fixtures
//! (fixtures/tls, made by make_tls.sh with nginx, curl and Python) and on the corpus.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::{analyse, analyse_with_keys, corpus, strs, tshark, u64s};
use linkrank::tables::Tables;

/// (method, path, status) of every request tshark decrypts, sorted. HTTP/1 and HTTP/2.
fn tshark_requests(capture: &Path, keylog: Option<&Path>) -> Vec<(String, String, Option<u64>)> {
    let key_opt = keylog.map(|k| format!("tls.keylog_file:{}", k.display()));
    let mut args: Vec<&str> = vec!["-r", capture.to_str().unwrap()];
    if let Some(o) = &key_opt {
        args.extend(["-o", o]);
    }
    // HTTP/1: each request, and the status of the response answering it.
    let mut h1 = args.clone();
    h1.extend([
        "-Y",
        "http.request",
        "-T",
        "fields",
        "-e",
        "tcp.stream",
        "-e",
        "frame.number",
        "-e",
        "http.request.method",
        "-e",
        "http.request.uri",
        "-e",
        "http.response_in",
    ]);
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    let mut resp = args.clone();
    resp.extend([
        "-Y",
        "http.response",
        "-T",
        "fields",
        "-e",
        "frame.number",
        "-e",
        "http.response.code",
    ]);
    for line in tshark(&resp).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if let (Some(n), Some(c)) = (f.first(), f.get(1).and_then(|c| c.parse().ok())) {
            statuses.insert(n.to_string(), c);
        }
    }
    let mut out = Vec::new();
    for line in tshark(&h1).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 4 {
            continue;
        }
        let path = f[3].split('?').next().unwrap_or("").to_string();
        let status = f.get(4).and_then(|r| statuses.get(*r)).copied();
        out.push((f[2].to_string(), path, status));
    }
    // HTTP/2: every HEADERS frame's fields, split by `http2.header.count` (types and stream
    // ids align frame by frame; the fields of all HEADERS frames follow in order).
    let sep = "\u{1f}";
    let agg = format!("aggregator={sep}");
    let mut h2 = args.clone();
    h2.extend([
        "-Y",
        "http2.type == 1",
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        &agg,
        "-e",
        "tcp.stream",
        "-e",
        "http2.type",
        "-e",
        "http2.streamid",
        "-e",
        "http2.header.count",
        "-e",
        "http2.header.name",
        "-e",
        "http2.header.value",
    ]);
    let mut streams: BTreeMap<(String, String), (String, String, Option<u64>)> = BTreeMap::new();
    for line in tshark(&h2).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 6 {
            continue;
        }
        let types: Vec<&str> = f[1].split(sep).collect();
        let sids: Vec<&str> = f[2].split(sep).collect();
        let counts: Vec<usize> = f[3].split(sep).filter_map(|c| c.parse().ok()).collect();
        let names: Vec<&str> = f[4].split(sep).collect();
        let values: Vec<&str> = f[5].split(sep).collect();
        let headers_sids = types
            .iter()
            .zip(&sids)
            .filter(|(t, _)| **t == "1")
            .map(|(_, s)| *s);
        let mut at = 0;
        for (sid, n) in headers_sids.zip(counts) {
            let e = streams
                .entry((f[0].to_string(), sid.to_string()))
                .or_default();
            let fields = names
                .iter()
                .zip(values.iter().chain(std::iter::repeat(&"")));
            for (name, v) in fields.skip(at).take(n) {
                match *name {
                    ":method" => e.0 = v.to_string(),
                    ":path" => e.1 = v.split('?').next().unwrap_or("").to_string(),
                    ":status" => e.2 = v.parse().ok(),
                    _ => {}
                }
            }
            at += n;
        }
    }
    out.extend(streams.into_values().filter(|e| !e.0.is_empty()));
    out.sort();
    out
}

/// (method, raw path, status) of linkrank's decrypted exchanges, sorted. Routes are
/// templated, so the comparison uses tshark's paths templated the same way.
fn linkrank_requests(t: &Tables) -> Vec<(String, String, Option<u64>)> {
    let ex = &t.exchanges;
    let m = strs(ex, "method");
    let r = strs(ex, "route");
    let s = u64s(ex, "status");
    let mut out: Vec<_> = (0..ex.height())
        .filter_map(|i| Some((m[i].clone()?, r[i].clone().unwrap_or_default(), s[i])))
        .collect();
    out.sort();
    out
}

fn templated(v: Vec<(String, String, Option<u64>)>) -> Vec<(String, String, Option<u64>)> {
    let mut v: Vec<_> = v
        .into_iter()
        .map(|(m, p, s)| (m, linkrank::ingest::http::route::template(&p), s))
        .collect();
    v.sort();
    v
}

fn decrypted_flags(t: &Tables) -> Vec<bool> {
    let c = t.exchanges.column("tls_decrypted").unwrap();
    c.bool()
        .unwrap()
        .iter()
        .map(|b| b.unwrap_or(false))
        .collect()
}

fn decryption(t: &Tables) -> Vec<Option<String>> {
    strs(&t.connections, "tls_decryption")
}

#[test]
fn corpus_tls13_h2_matches_tshark() {
    if !linkrank::testing::corpus::require() {
        return;
    }
    let cap = corpus("cryptohack_tls13_h2.pcapng");
    let keys = corpus("cryptohack_tls13_h2_keylog.txt");
    let truth = tshark_requests(&cap, Some(&keys));
    assert!(!truth.is_empty(), "tshark decrypted nothing");
    let (t, cov) = analyse_with_keys(std::slice::from_ref(&cap), &[keys]);
    assert_eq!(linkrank_requests(&t), templated(truth));
    assert!(decrypted_flags(&t).iter().all(|&d| d));
    assert_eq!(cov.tls_decrypted, 1, "{:?}", cov.tls_undecrypted);
    // The same capture without keys: no exchange, counted as no_key.
    let (t, cov) = analyse(&[cap]);
    assert_eq!(t.exchanges.height(), 0);
    assert_eq!(cov.tls_undecrypted.get("no_key"), Some(&1));
    assert_eq!(decryption(&t), vec![Some("no_key".to_string())]);
}

#[test]
fn corpus_illustrated_tls13_decrypts_without_http() {
    if !linkrank::testing::corpus::require() {
        return;
    }
    let cap = corpus("itls13_capture.pcap");
    let keys = corpus("itls13_keylog.txt");
    // Its application data is "ping" / "pong": no HTTP for tshark or linkrank.
    assert!(tshark_requests(&cap, Some(&keys)).is_empty());
    let (t, cov) = analyse_with_keys(&[cap], &[keys]);
    assert_eq!(t.exchanges.height(), 0);
    assert_eq!(cov.tls_decrypted, 1, "{:?}", cov.tls_undecrypted);
    assert_eq!(decryption(&t), vec![Some("decrypted".to_string())]);
}

#[allow(dead_code)]
fn fixture(name: &str) -> PathBuf {
    crate::common::repo(&format!("fixtures/tls/{name}"))
}

#[test]
fn a_wrong_secret_fails_authentication_and_a_missing_one_is_no_key() {
    if !linkrank::testing::corpus::require() {
        return;
    }
    let cap = corpus("itls13_capture.pcap");
    let text = std::fs::read_to_string(corpus("itls13_keylog.txt")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Every secret's last hex digit changed: the records no longer authenticate.
    let wrong: String = text
        .lines()
        .map(|l| {
            let mut l = l.trim_end().to_string();
            let last = l.pop().unwrap();
            l.push(if last == '0' { '1' } else { '0' });
            l + "\n"
        })
        .collect();
    let wrong_path = dir.path().join("wrong.txt");
    std::fs::write(&wrong_path, wrong).unwrap();
    let (t, cov) = analyse_with_keys(std::slice::from_ref(&cap), &[wrong_path]);
    assert_eq!(cov.tls_undecrypted.get("auth_failed"), Some(&1));
    assert_eq!(decryption(&t), vec![Some("auth_failed".to_string())]);
    // Only the client traffic secret: the handshake secrets are missing.
    let partial: String = text
        .lines()
        .filter(|l| l.starts_with("CLIENT_TRAFFIC_SECRET_0"))
        .collect();
    let partial_path = dir.path().join("partial.txt");
    std::fs::write(&partial_path, partial).unwrap();
    let (_, cov) = analyse_with_keys(&[cap], &[partial_path]);
    assert_eq!(cov.tls_undecrypted.get("no_key"), Some(&1));
    assert_eq!(cov.tls_decrypted, 0);
}
