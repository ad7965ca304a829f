//! Name sources against tshark on real captures: the `dns` table (A, AAAA, CNAME answers
//! of UDP DNS responses) and the connections' `tls_sni` / `tls_alpn` (ClientHello).
//! Every expected value is what tshark prints for the same file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::{analyse, corpus, i64s, repo, strs, tshark, u64s};
use linkrank::tables::{read_tables, write_tables};

/// One DNS answer row: (ts_ns, resolver, client, query, name, type, answer, ttl).
type DnsRow = (i64, String, String, String, String, String, String, u64);

/// tshark's `frame.time_epoch` (seconds with a decimal fraction) in nanoseconds.
fn epoch_ns(s: &str) -> i64 {
    let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
    let frac = format!("{frac:0<9}");
    sec.parse::<i64>().unwrap() * 1_000_000_000 + frac[..9].parse::<i64>().unwrap()
}

/// The A, AAAA and CNAME answers of NOERROR responses (UDP port 53) as tshark decodes
/// them, and the number of responses. tshark's `dns.a`/`dns.aaaa`/`dns.cname` list the
/// records of every section in order, so the answers' values are the first ones of each
/// type; `dns.count.answers` says how many of the `dns.resp.*` entries are answers.
fn tshark_dns(file: &Path) -> (Vec<DnsRow>, usize) {
    let out = tshark(&[
        "-r",
        file.to_str().unwrap(),
        "-Y",
        "dns.flags.response==1 && udp.port==53",
        "-T",
        "fields",
        "-E",
        "separator=\t",
        "-e",
        "frame.time_epoch",
        "-e",
        "ip.src",
        "-e",
        "ipv6.src",
        "-e",
        "ip.dst",
        "-e",
        "ipv6.dst",
        "-e",
        "dns.flags.rcode",
        "-e",
        "dns.qry.name",
        "-e",
        "dns.count.answers",
        "-e",
        "dns.resp.name",
        "-e",
        "dns.resp.type",
        "-e",
        "dns.resp.ttl",
        "-e",
        "dns.a",
        "-e",
        "dns.aaaa",
        "-e",
        "dns.cname",
    ]);
    let mut rows = Vec::new();
    let mut responses = 0;
    for line in out.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 14, "{line}");
        responses += 1;
        if f[5] != "0" {
            continue;
        }
        let list = |s: &str| -> Vec<String> {
            s.split(',')
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let resolver = if f[1].is_empty() { f[2] } else { f[1] };
        let client = if f[3].is_empty() { f[4] } else { f[3] };
        let query = list(f[6]).first().cloned().unwrap_or_default();
        let n: usize = f[7].parse().unwrap();
        let (names, types, ttls) = (list(f[8]), list(f[9]), list(f[10]));
        let mut values = [list(f[11]), list(f[12]), list(f[13])].map(|v| v.into_iter());
        for i in 0..n {
            let (t, slot) = match types[i].as_str() {
                "1" => ("A", 0),
                "28" => ("AAAA", 1),
                "5" => ("CNAME", 2),
                _ => continue,
            };
            let value = values[slot].next().unwrap();
            rows.push((
                epoch_ns(f[0]),
                resolver.to_owned(),
                client.to_owned(),
                query.to_lowercase(),
                names[i].to_lowercase(),
                t.to_owned(),
                if slot == 2 {
                    value.to_lowercase()
                } else {
                    value
                },
                ttls[i].parse().unwrap(),
            ));
        }
    }
    (rows, responses)
}

fn our_dns(file: &PathBuf) -> (Vec<DnsRow>, linkrank::model::Coverage) {
    let (tables, cov) = analyse(std::slice::from_ref(file));
    let d = &tables.dns;
    let ts = i64s(d, "ts_ns");
    let s = |c| strs(d, c);
    let (res, cli, q, name, ty, ans) = (
        s("resolver_ip"),
        s("client_ip"),
        s("query"),
        s("name"),
        s("type"),
        s("answer"),
    );
    let ttl = u64s(d, "ttl");
    let rows = (0..d.height())
        .map(|i| {
            (
                ts[i].unwrap(),
                res[i].clone().unwrap(),
                cli[i].clone().unwrap(),
                q[i].clone().unwrap(),
                name[i].clone().unwrap(),
                ty[i].clone().unwrap(),
                ans[i].clone().unwrap(),
                ttl[i].unwrap(),
            )
        })
        .collect();
    (rows, cov)
}

/// Our DNS rows equal tshark's, row by row; returns how many there were.
fn dns_matches_tshark(file: PathBuf) -> usize {
    let (want, responses) = tshark_dns(&file);
    let (got, cov) = our_dns(&file);
    assert_eq!(got, want, "{}", file.display());
    assert_eq!(cov.dns_responses as usize, responses, "{}", file.display());
    assert_eq!(cov.dns_answers as usize, want.len());
    assert_eq!((cov.dns_malformed, cov.dns_answers_dropped), (0, 0));
    want.len()
}

#[test]
fn dns_answers_of_corpus_captures_match_tshark() {
    if !linkrank::testing::corpus::require() {
        return;
    }
    // CNAME chain of four records (2 CNAME, 2 A).
    assert_eq!(dns_matches_tshark(corpus("wireshark_http.cap.pcap")), 4);
    // Three CNAMEs and an A with EDNS; six A; four AAAA.
    assert_eq!(
        dns_matches_tshark(corpus("zeek_pcapng-multi-interface.pcapng")),
        14
    );
    // One A; the AAAA response has only an SOA in its authority section.
    assert_eq!(dns_matches_tshark(corpus("cryptohack_tls13_h2.pcapng")), 1);
}

#[test]
fn dns_answers_of_the_names_fixture_match_tshark() {
    let file = repo("fixtures/dns_names.pcap");
    let n = dns_matches_tshark(file.clone());
    assert!(n >= 10, "{n} rows");
    let (rows, cov) = our_dns(&file);
    // The chain api.shop.test -> edge.shop.test -> orders.shop.svc.cluster.local -> A.
    let chain: Vec<(&str, &str, &str)> = rows
        .iter()
        .filter(|r| r.3 == "api.shop.test")
        .take(3)
        .map(|r| (r.4.as_str(), r.5.as_str(), r.6.as_str()))
        .collect();
    assert_eq!(
        chain,
        vec![
            ("api.shop.test", "CNAME", "edge.shop.test"),
            ("edge.shop.test", "CNAME", "orders.shop.svc.cluster.local"),
            ("orders.shop.svc.cluster.local", "A", "10.79.0.11"),
        ]
    );
    // NXDOMAIN is a response without rows.
    assert!(rows.iter().all(|r| r.3 != "missing.shop.test"));
    assert!(
        rows.iter().any(|r| r.5 == "AAAA"),
        "the fixture has AAAA answers"
    );
    // DNS datagrams still count as non-TCP packets.
    assert!(cov.non_tcp >= cov.dns_responses);
}

type Hellos = BTreeMap<String, (Option<String>, Option<String>)>;

/// Client `ip:port` -> (SNI, ALPN) of each ClientHello, as tshark prints them; `extra`
/// are more tshark arguments (decode-as).
fn tshark_hellos(file: &Path, extra: &[&str]) -> Hellos {
    let mut args = vec!["-r", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "-Y",
        "tls.handshake.type==1",
        "-T",
        "fields",
        "-E",
        "separator=\t",
        "-e",
        "ip.src",
        "-e",
        "tcp.srcport",
        "-e",
        "tls.handshake.extensions_server_name",
        "-e",
        "tls.handshake.extensions_alpn_str",
    ]);
    let out = tshark(&args);
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    out.lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 4, "{line}");
            (
                format!("{}:{}", f[0], f[1]),
                (opt(&f[2].to_lowercase()), opt(f[3])),
            )
        })
        .collect()
}

/// Our TLS connections' names, by client; checks every hello was read.
fn sni_matches_tshark(file: PathBuf, extra: &[&str]) -> Hellos {
    let want = tshark_hellos(&file, extra);
    let (tables, cov) = analyse(std::slice::from_ref(&file));
    let c = &tables.connections;
    let (ips, ports) = (strs(c, "client_ip"), u64s(c, "client_port"));
    let proto = strs(c, "protocol");
    let (sni, alpn) = (strs(c, "tls_sni"), strs(c, "tls_alpn"));
    let got: BTreeMap<_, _> = (0..c.height())
        .filter(|&i| proto[i].as_deref() == Some("tls"))
        .map(|i| {
            let client = format!("{}:{}", ips[i].as_deref().unwrap(), ports[i].unwrap());
            (client, (sni[i].clone(), alpn[i].clone()))
        })
        .collect();
    assert_eq!(got, want, "{}", file.display());
    assert_eq!(cov.tls_client_hellos as usize, want.len());
    assert_eq!(cov.tls_client_hello_unparsed, 0);
    // Names appear on TLS connections only.
    for i in 0..c.height() {
        if proto[i].as_deref() != Some("tls") {
            assert_eq!((&sni[i], &alpn[i]), (&None, &None));
        }
    }
    want
}

#[test]
fn sni_and_alpn_of_corpus_captures_match_tshark() {
    if !linkrank::testing::corpus::require() {
        return;
    }
    let got = sni_matches_tshark(corpus("itls13_capture.pcap"), &[]);
    assert_eq!(
        got.values().collect::<Vec<_>>(),
        vec![&(Some("example.ulfheim.net".to_owned()), None)]
    );
    let got = sni_matches_tshark(corpus("cryptohack_tls13_h2.pcapng"), &[]);
    assert_eq!(
        got.values().collect::<Vec<_>>(),
        vec![&(
            Some("tls3.cryptohack.org".to_owned()),
            Some("h2,http/1.1".to_owned())
        )]
    );
}

#[test]
fn sni_and_alpn_of_the_tls_fixture_match_tshark() {
    let got = sni_matches_tshark(repo("fixtures/tls_sni.pcap"), &[]);
    assert_eq!(got.len(), 5, "five ClientHellos");
    let snis: std::collections::BTreeSet<_> = got.values().filter_map(|v| v.0.clone()).collect();
    assert_eq!(
        snis.into_iter().collect::<Vec<_>>(),
        vec!["ledger.internal", "payments.internal"]
    );
    assert!(got.values().any(|v| v.1.as_deref() == Some("http/1.1")));
}

/// The demo capture: 158 TLS connections to port 8443. tshark's heuristics miss one
/// ClientHello there, so it is told that 8443 is TLS.
#[test]
fn sni_and_alpn_of_the_demo_capture_match_tshark() {
    let got = sni_matches_tshark(repo("captures/prod.pcap"), &["-d", "tcp.port==8443,tls"]);
    assert_eq!(got.len(), 158);
}

/// dns.parquet is written beside the other tables, read back whole, and appended.
#[test]
fn dns_table_round_trips_through_parquet() {
    let (tables, _) = analyse(&[repo("fixtures/dns_names.pcap")]);
    assert!(tables.dns.height() > 0);
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    write_tables(&tables, &a).unwrap();
    write_tables(&tables, &b).unwrap();
    let files =
        |d: &PathBuf| ["exchanges", "connections", "dns"].map(|t| d.join(format!("{t}.parquet")));
    let one = read_tables(&files(&a)).unwrap();
    assert!(one.dns.equals_missing(&tables.dns));
    assert!(one.connections.equals_missing(&tables.connections));
    let both = read_tables(&[files(&a), files(&b)].concat()).unwrap();
    assert_eq!(both.dns.height(), 2 * tables.dns.height());
}
