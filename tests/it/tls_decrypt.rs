//! TLS decryption with key logs: the exchanges read from decrypted records must be the
//! requests tshark finds with the same keys (`-o tls.keylog_file:`), on the TLS fixtures
//! (fixtures/tls, made by make_tls.sh with nginx, curl and Python) and on the corpus.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::{analyse, analyse_with_keys, corpus, strs, tshark, u64s};
use linkrank::tables::Tables;
use serde_json::Value;

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

fn fixture(name: &str) -> PathBuf {
    crate::common::repo(&format!("fixtures/tls/{name}"))
}

fn truth(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(&format!("{name}.truth.json"))).unwrap())
        .unwrap()
}

type Request = (String, String, Option<u64>);

/// Per connection (client port): the truth's requests, paths templated, in order.
fn truth_by_port(t: &Value) -> BTreeMap<u64, Vec<Request>> {
    t["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let reqs = c["requests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    let path = linkrank::ingest::http::route::template(r["path"].as_str().unwrap());
                    (
                        r["method"].as_str().unwrap().to_string(),
                        path,
                        r["status"].as_u64(),
                    )
                })
                .collect();
            (c["client_port"].as_u64().unwrap(), reqs)
        })
        .collect()
}

/// Per connection (client port): linkrank's exchanges in connection order.
fn ours_by_port(t: &Tables) -> BTreeMap<u64, Vec<Request>> {
    let ex = &t.exchanges;
    let (port, index) = (u64s(ex, "client_port"), u64s(ex, "index"));
    let (m, r, s) = (strs(ex, "method"), strs(ex, "route"), u64s(ex, "status"));
    let mut rows: Vec<(u64, u64, Request)> = (0..ex.height())
        .map(|i| {
            let req = (
                m[i].clone().unwrap_or_default(),
                r[i].clone().unwrap_or_default(),
                s[i],
            );
            (port[i].unwrap(), index[i].unwrap(), req)
        })
        .collect();
    rows.sort_by_key(|(p, i, _)| (*p, *i));
    let mut out: BTreeMap<u64, Vec<Request>> = BTreeMap::new();
    for (p, _, req) in rows {
        out.entry(p).or_default().push(req);
    }
    out
}

/// Every connection of the fixture decrypted, and its exchanges equal tshark's requests.
fn check_fixture(name: &str, capture: &str, keylogs: &[PathBuf]) -> Tables {
    let t = truth(name);
    let (tables, cov) = analyse_with_keys(&[fixture(capture)], keylogs);
    let want = truth_by_port(&t);
    assert_eq!(ours_by_port(&tables), want, "{name}");
    let n = want.len() as u64;
    assert_eq!(cov.tls_decrypted, n, "{name}: {:?}", cov.tls_undecrypted);
    assert!(
        cov.tls_undecrypted.is_empty(),
        "{name}: {:?}",
        cov.tls_undecrypted
    );
    assert!(decrypted_flags(&tables).iter().all(|&d| d), "{name}");
    let total: u64 = t["totals"]["requests"].as_u64().unwrap();
    assert_eq!(tables.exchanges.height() as u64, total, "{name}");
    tables
}

#[test]
fn tls12_fixture_equals_tshark() {
    // AES-128-GCM, AES-256-GCM-SHA384, ChaCha20-Poly1305; keep-alive, per request, resumed.
    let t = check_fixture("tls12", "tls12.pcap", &[fixture("tls12.keys")]);
    let resumed = crate::common::bools(&t.connections, "tls_resumed");
    assert_eq!(
        resumed.iter().filter(|&&r| r).count(),
        2,
        "Python resumed twice"
    );
}

#[test]
fn tls13_fixture_equals_tshark() {
    // Every AEAD suite, a HelloRetryRequest, PSK resumption and a KeyUpdate (s_client).
    check_fixture("tls13", "tls13.pcap", &[fixture("tls13.keys")]);
}

#[test]
fn http2_over_tls_fixture_equals_tshark() {
    let t = check_fixture("tls_h2", "tls_h2.pcap", &[fixture("tls_h2.keys")]);
    let versions = strs(&t.exchanges, "version");
    assert!(
        versions.iter().all(|v| v.as_deref() == Some("HTTP/2")),
        "{versions:?}"
    );
    // The HTTP/2 counters of the decrypted connections are kept too.
    let streams: u64 = u64s(&t.connections, "h2_streams").iter().flatten().sum();
    assert_eq!(streams, 7);
}

#[test]
fn secrets_embedded_in_the_pcapng_decrypt_without_a_keylog() {
    let t = check_fixture("tls_h2", "tls_h2_dsb.pcapng", &[]);
    assert_eq!(t.exchanges.height(), 7);
    // And without them nothing is decrypted.
    let (plain, cov) = analyse(&[fixture("tls_h2.pcap")]);
    assert_eq!(plain.exchanges.height(), 0);
    assert_eq!(cov.tls_undecrypted.get("no_key"), Some(&2));
}

#[test]
fn keys_never_reach_the_outputs() {
    // Every secret of the key log, in hex, must be absent from every table written.
    let keys = std::fs::read_to_string(fixture("tls13.keys")).unwrap();
    let secrets: Vec<String> = keys
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_lowercase))
        .collect();
    assert!(!secrets.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_linkrank"))
        .args(["analyze", "--quiet", "--reproducible", "--keylog"])
        .arg(fixture("tls13.keys"))
        .arg(fixture("tls13.pcap"))
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let mut seen = 0;
    for entry in std::fs::read_dir(&out).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let text = String::from_utf8_lossy(&bytes).to_lowercase();
        for s in &secrets {
            assert!(!text.contains(&s[..32]), "a secret in the outputs");
        }
        seen += 1;
    }
    assert!(seen >= 3, "outputs written");
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

/// Per connection: (truth requests, estimated requests, estimated ttfb ns, decrypted mean
/// latency ns) with keys, so the estimate and the decrypted exchanges come from one run.
fn estimates_vs_truth(name: &str, capture: &str) -> Vec<(u64, Option<u64>, Option<i64>, f64)> {
    let truth = truth_by_port(&truth(name));
    let (t, _) = analyse_with_keys(&[fixture(capture)], &[fixture(&format!("{name}.keys"))]);
    let cn = &t.connections;
    let port = u64s(cn, "client_port");
    let est = u64s(cn, "tls_est_requests");
    let ttfb = crate::common::i64s(cn, "tls_est_ttfb_ns");
    let ex = &t.exchanges;
    let (xport, q, r1) = (
        u64s(ex, "client_port"),
        crate::common::i64s(ex, "req_last_ns"),
        crate::common::i64s(ex, "resp_first_ns"),
    );
    (0..cn.height())
        .filter_map(|i| {
            let p = port[i]?;
            let want = truth.get(&p)?.len() as u64;
            let lat: Vec<i64> = (0..ex.height())
                .filter(|&j| xport[j] == Some(p))
                .filter_map(|j| Some(r1[j]? - q[j]?))
                .collect();
            let mean = lat.iter().sum::<i64>() as f64 / lat.len().max(1) as f64;
            Some((want, est[i], ttfb[i], mean))
        })
        .collect()
}

#[test]
fn http1_estimates_without_keys_are_close_to_the_decrypted_truth() {
    for (name, capture) in [("tls12", "tls12.pcap"), ("tls13", "tls13.pcap")] {
        let rows = estimates_vs_truth(name, capture);
        let want: u64 = rows.iter().map(|r| r.0).sum();
        let got: u64 = rows.iter().filter_map(|r| r.1).sum();
        let exact = rows.iter().filter(|r| r.1 == Some(r.0)).count();
        let lat_err: Vec<f64> = rows
            .iter()
            .filter_map(|r| Some((r.2? as f64 - r.3).abs() / r.3))
            .collect();
        let mean_lat_err = lat_err.iter().sum::<f64>() / lat_err.len() as f64;
        eprintln!(
            "{name}: requests truth {want}, estimated {got}; connections exact {exact}/{}; \
             latency per turn vs decrypted: mean relative error {:.1}%",
            rows.len(),
            100.0 * mean_lat_err
        );
        // Each turn is one request on these captures (curl, Python, s_client: no
        // pipelining); latency per turn is the records' first-byte time, the decrypted
        // exchange's the time the record was whole (ample on 16 KiB records).
        assert_eq!(got, want, "{name}: {rows:?}");
        assert_eq!(exact, rows.len(), "{name}: {rows:?}");
        assert!(mean_lat_err < 0.25, "{name}: {rows:?}");
    }
}

#[test]
fn http2_over_tls_without_keys_gives_rounds_not_requests() {
    let (t, _) = analyse(&[fixture("tls_h2.pcap")]);
    let cn = &t.connections;
    let modes = strs(cn, "tls_est_mode");
    let conf = strs(cn, "tls_est_confidence");
    let versions = strs(cn, "tls_version");
    assert_eq!(t.exchanges.height(), 0);
    for i in 0..cn.height() {
        assert_eq!(modes[i].as_deref(), Some("h2_rounds"));
        // TLS 1.2 shows the selected ALPN in clear; TLS 1.3 only the offer.
        let want = if versions[i].as_deref() == Some("TLS 1.2") {
            "medium"
        } else {
            "low"
        };
        assert_eq!(conf[i].as_deref(), Some(want));
    }
    assert!(u64s(cn, "tls_est_requests").iter().all(Option::is_none));
    assert!(u64s(cn, "tls_est_turns")
        .iter()
        .all(|t| t.is_some_and(|t| t > 0)));
}

/// The demo's payments -> fraud link is TLS 1.3 without keys: one `POST /scores` per
/// connection (captures/README.md; the number of connections is tshark's count of SYNs
/// to :8443). The estimate is within 5% of it and marked medium.
#[test]
fn demo_tls_link_is_estimated_within_five_percent() {
    let cap = crate::common::repo("captures/prod.pcap");
    let requests = tshark(&[
        "-r",
        cap.to_str().unwrap(),
        "-Y",
        "tcp.flags.syn == 1 && tcp.flags.ack == 0 && tcp.dstport == 8443",
        "-T",
        "fields",
        "-e",
        "frame.number",
    ])
    .lines()
    .count() as f64;
    assert!(requests > 100.0);
    let (t, _) = analyse(&[cap]);
    let cn = &t.connections;
    let port = u64s(cn, "server_port");
    let est: u64 = u64s(cn, "tls_est_requests")
        .iter()
        .zip(&port)
        .filter(|(_, p)| **p == Some(8443))
        .filter_map(|(e, _)| *e)
        .sum();
    let err = (est as f64 - requests).abs() / requests;
    eprintln!(
        "demo payments -> fraud: {requests} requests, estimated {est} ({:.1}%)",
        100.0 * err
    );
    assert!(err <= 0.05, "{est} vs {requests}");
    let conf = strs(cn, "tls_est_confidence");
    assert!(conf
        .iter()
        .zip(&port)
        .filter(|(_, p)| **p == Some(8443))
        .all(|(c, _)| c.as_deref() == Some("medium")));
}
