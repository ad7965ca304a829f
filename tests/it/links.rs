//! Links end to end: names, per-link figures against tshark, reports.

use std::collections::BTreeMap;

use crate::common::*;
use assert_cmd::Command;
use serde_json::Value;

struct Run {
    dir: tempfile::TempDir,
    links: Value,
    stdout: String,
}

impl Run {
    fn link(&self, client: &str, server: &str) -> &Value {
        self.links["links"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["client"] == client && l["server"] == server)
            .unwrap_or_else(|| panic!("no link {client} -> {server}: {}", self.pairs().join(", ")))
    }
    fn pairs(&self) -> Vec<String> {
        self.links["links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                format!(
                    "{} -> {}",
                    l["client"].as_str().unwrap(),
                    l["server"].as_str().unwrap()
                )
            })
            .collect()
    }
    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap()
    }
}

/// `linkrank analyze <args> --out <tmp>` from the repository root.
fn analyze(args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("linkrank")
        .unwrap()
        .current_dir(repo(""))
        .arg("analyze")
        .args(args)
        .arg("--out")
        .arg(dir.path())
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    let links =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("links.json")).unwrap())
            .unwrap();
    Run { dir, links, stdout }
}

/// tshark field rows, split on tabs.
fn rows(file: &str, filter: &str, fields: &[&str]) -> Vec<Vec<String>> {
    let mut args = vec!["-r", file, "-Y", filter, "-T", "fields"];
    for f in fields {
        args.push("-e");
        args.push(f);
    }
    tshark(&args)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

/// (client IP, server IP:port) -> link index, from the addresses each link lists.
fn address_map(run: &Run) -> BTreeMap<(String, String), usize> {
    let mut m = BTreeMap::new();
    for (i, l) in run.links["links"].as_array().unwrap().iter().enumerate() {
        for c in l["client_addresses"].as_array().unwrap() {
            for s in l["server_endpoints"].as_array().unwrap() {
                m.insert(
                    (
                        c.as_str().unwrap().to_owned(),
                        s.as_str().unwrap().to_owned(),
                    ),
                    i,
                );
            }
        }
    }
    m
}

/// Counts tshark rows (client ip, server ip, server port) per link.
fn per_link(run: &Run, rows: &[Vec<String>]) -> BTreeMap<usize, u64> {
    let map = address_map(run);
    let mut counts = BTreeMap::new();
    for r in rows {
        let key = (r[0].clone(), format!("{}:{}", r[1], r[2]));
        let link = map
            .get(&key)
            .unwrap_or_else(|| panic!("tshark sees {key:?}, which no link lists"));
        *counts.entry(*link).or_default() += 1;
    }
    counts
}

#[test]
fn demo_requests_syns_and_errors_per_link_equal_tsharks() {
    let run = analyze(&["captures/prod.pcap"]);
    let file = repo("captures/prod.pcap");
    let file = file.to_str().unwrap();
    let links = run.links["links"].as_array().unwrap();

    let requests = per_link(
        &run,
        &rows(file, "http.request", &["ip.src", "ip.dst", "tcp.dstport"]),
    );
    let syns = per_link(
        &run,
        &rows(
            file,
            "tcp.flags.syn==1 && tcp.flags.ack==0",
            &["ip.src", "ip.dst", "tcp.dstport"],
        ),
    );
    // Responses, keyed by the client (destination) and the server (source).
    let responses = rows(
        file,
        "http.response",
        &["ip.dst", "ip.src", "tcp.srcport", "http.response.code"],
    );
    let class = |lo: u32| -> Vec<Vec<String>> {
        responses
            .iter()
            .filter(|r| {
                r[3].parse::<u32>()
                    .is_ok_and(|c| (lo..lo + 100).contains(&c))
            })
            .cloned()
            .collect()
    };
    let (s4, s5) = (per_link(&run, &class(400)), per_link(&run, &class(500)));
    assert!(requests.len() >= 9, "the demo has at least nine HTTP links");
    for (i, l) in links.iter().enumerate() {
        let name = format!("{} -> {}", l["client"], l["server"]);
        let want = requests.get(&i).copied().unwrap_or(0);
        assert_eq!(
            l["requests"].as_u64().unwrap_or(0),
            want,
            "{name}: requests"
        );
        assert_eq!(
            l["tcp_handshakes"].as_u64().unwrap(),
            syns.get(&i).copied().unwrap_or(0),
            "{name}: SYNs"
        );
        if want > 0 {
            assert_eq!(
                l["status"]["4xx"].as_u64().unwrap(),
                s4.get(&i).copied().unwrap_or(0),
                "{name}: 4xx"
            );
            assert_eq!(
                l["status"]["5xx"].as_u64().unwrap(),
                s5.get(&i).copied().unwrap_or(0),
                "{name}: 5xx"
            );
        }
    }
    let total: u64 = links
        .iter()
        .map(|l| l["requests"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(total, requests.values().sum::<u64>());

    // The services file beside the capture named every HTTP endpoint.
    for pair in [
        ("client", "gateway"),
        ("gateway", "orders"),
        ("gateway", "inventory"),
        ("gateway", "users"),
        ("orders", "inventory"),
        ("orders", "users"),
        ("orders", "payments"),
        ("orders", "notifications"),
        ("payments", "users"),
    ] {
        let l = run.link(pair.0, pair.1);
        assert_eq!(l["client_source"], "services-file");
        assert_eq!(l["server_source"], "services-file");
        assert!(
            l["protocol"].as_str().unwrap().starts_with("http/1."),
            "{l}"
        );
    }
    // Ranks are 1..=n in score order.
    let scores: Vec<f64> = links.iter().map(|l| l["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    let ranks: Vec<u64> = links.iter().map(|l| l["rank"].as_u64().unwrap()).collect();
    assert_eq!(ranks, (1..=links.len() as u64).collect::<Vec<_>>());
}

#[test]
fn demo_link_measures_are_consistent_with_the_tables() {
    let run = analyze(&["captures/prod.pcap"]);
    let t = linkrank::tables::read_tables(&[
        run.dir.path().join("exchanges.parquet"),
        run.dir.path().join("connections.parquet"),
    ])
    .unwrap();
    // gateway -> inventory: nginx's default upstream, one HTTP/1.0 connection per request.
    let l = run.link("gateway", "inventory");
    assert_eq!(l["protocol"], "http/1.0");
    assert_eq!(l["requests"], l["connections"]);
    assert_eq!(l["requests_per_connection"].as_f64().unwrap(), 1.0);
    assert_eq!(l["new_connection_share"].as_f64().unwrap(), 1.0);
    // gateway -> orders is pooled: few connections, many requests each.
    let l = run.link("gateway", "orders");
    assert!(l["connections"].as_u64().unwrap() * 20 < l["requests"].as_u64().unwrap());
    // Header and body bytes of every link add up to the table's.
    let links = run.links["links"].as_array().unwrap();
    for (key, col) in [
        ("request_headers", "req_header_bytes"),
        ("request_bodies", "req_body_bytes"),
        ("response_headers", "resp_header_bytes"),
        ("response_bodies", "resp_body_bytes"),
    ] {
        let from_links: u64 = links
            .iter()
            .map(|l| l["bytes"][key].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(from_links, sum(&t.exchanges, col), "{key}");
    }
    // orders -> payments: payments answers 503 and 429 on a schedule; orders retries.
    let l = run.link("orders", "payments");
    assert!(l["status"]["503"].as_u64().unwrap() > 0);
    assert!(l["status"]["429"].as_u64().unwrap() > 0);
    // Routes are templated and sum to at most the link's requests.
    let routes = l["routes"].as_array().unwrap();
    assert!(
        routes.iter().any(|r| r["route"] == "/payments/{id}"),
        "{routes:?}"
    );
    let listed: u64 = routes.iter().map(|r| r["requests"].as_u64().unwrap()).sum();
    assert_eq!(listed, l["requests"].as_u64().unwrap());
    // Latency percentiles are ordered.
    for l in links.iter().filter(|l| !l["latency_ms"].is_null()) {
        let p = &l["latency_ms"];
        let (a, b, c) = (
            p["p50"].as_f64().unwrap(),
            p["p95"].as_f64().unwrap(),
            p["p99"].as_f64().unwrap(),
        );
        assert!(a <= b && b <= c, "{l}");
    }
    // The CSV has one row per link with the same requests.
    let csv = run.file("links.csv");
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "requests").unwrap();
    let csv_requests: Vec<u64> = lines
        .map(|l| l.split(',').nth(col).unwrap().parse().unwrap_or(0))
        .collect();
    let json_requests: Vec<u64> = links
        .iter()
        .map(|l| l["requests"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(csv_requests, json_requests);
    // The terminal shows the ranking and where the reports are.
    assert!(run.stdout.contains("client -> server"), "{}", run.stdout);
    assert!(run.stdout.contains("report.md"));
}

#[test]
fn without_a_services_file_host_headers_name_servers_and_listeners_name_clients() {
    let run = analyze(&["captures/prod.pcap", "--no-auto-services"]);
    let file = repo("captures/prod.pcap");
    let want = rows(
        file.to_str().unwrap(),
        "http.request && ip.src==10.77.0.11 && ip.dst==10.77.0.14",
        &["ip.src"],
    )
    .len() as u64;
    let l = run.link("orders.internal", "users.internal");
    assert_eq!(l["requests"].as_u64().unwrap(), want);
    assert_eq!(l["server_source"], "host");
    assert_eq!(l["client_source"], "listener");
    // The load generator serves nothing: its address is its name.
    let l = run.link("10.77.0.2", "shop.example.test");
    assert_eq!(l["client_source"], "fallback");
    assert!(run.links["identity"]["conflicts"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn conflicts_between_sources_are_listed() {
    let run = analyze(&["captures/prod.pcap"]);
    let conflicts = run.links["identity"]["conflicts"].as_array().unwrap();
    // The gateway is `gateway` in the services file and `shop.example.test` to its clients.
    assert!(
        conflicts.iter().any(|c| c["endpoint"] == "10.77.0.10:80"
            && c["chosen"]["name"] == "gateway"
            && c["other"]["name"] == "shop.example.test"
            && c["other"]["source"] == "host"),
        "{conflicts:?}"
    );
    // users.internal agrees with users: not a conflict.
    assert!(!conflicts
        .iter()
        .any(|c| c["other"]["name"] == "users.internal"));
    let report = run.file("report.md");
    assert!(report.contains("### Identity conflicts"));
    assert!(report.contains(
        "| `10.77.0.10:80` | server | gateway (services-file) | shop.example.test (host) |"
    ));
}

#[test]
fn an_explicit_services_file_overrides_and_a_broken_one_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let svc = dir.path().join("names.yaml");
    std::fs::write(
        &svc,
        "services:\n  edge: [\"10.77.0.10:80\"]\n  backend: [\"10.77.0.0/24\"]\n",
    )
    .unwrap();
    let run = analyze(&[
        "captures/prod.pcap",
        "--no-auto-services",
        "--services",
        svc.to_str().unwrap(),
    ]);
    // The listener entry beats the network; the gateway's outgoing calls come from the
    // network's `backend` (the host has no entry of its own).
    assert_eq!(
        run.link("backend", "edge")["server_source"],
        "services-file"
    );
    let internal = run.link("backend", "backend");
    assert!(internal["requests"].as_u64().unwrap() > 1000);

    std::fs::write(&svc, "services:\n  edge: [\"10.77.0.10:80\"\n").unwrap();
    let out = Command::cargo_bin("linkrank")
        .unwrap()
        .current_dir(repo(""))
        .args(["analyze", "captures/prod.pcap", "--services"])
        .arg(&svc)
        .arg("--out")
        .arg(dir.path().join("out"))
        .assert()
        .code(1);
    let err = String::from_utf8_lossy(&out.get_output().stderr);
    assert!(
        err.contains("names.yaml") && err.contains("at line 3"),
        "{err}"
    );
    assert!(
        !dir.path().join("out").exists(),
        "nothing is analysed with a broken names file"
    );
}

#[test]
fn a_kubernetes_inventory_names_pods_by_workload() {
    let run = analyze(&[
        "captures/prod.pcap",
        "--no-auto-services",
        "--k8s",
        "fixtures/k8s/cluster.json",
    ]);
    // ReplicaSet pods name their Deployment, inventory-0 its StatefulSet, the
    // notifications pod its DaemonSet.
    for (client, server) in [
        ("gateway", "orders"),
        ("gateway", "inventory"),
        ("orders", "notifications"),
        ("payments", "users"),
    ] {
        let l = run.link(client, server);
        assert_eq!(l["client_source"], "k8s");
        assert_eq!(l["server_source"], "k8s");
    }
    // The load generator is outside the cluster and serves nothing: its address names it.
    assert_eq!(
        run.link("10.77.0.2", "gateway")["client_source"],
        "fallback"
    );
    assert_eq!(
        run.links["identity"]["files"][0],
        "fixtures/k8s/cluster.json"
    );
    assert!(run
        .file("report.md")
        .contains("Name files: `fixtures/k8s/cluster.json`"));
}

fn expected(name: &str) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(repo(&format!("fixtures/expected/{name}.json"))).unwrap(),
    )
    .unwrap()
}

/// Kubernetes Service DNS names name the Service (docs/links.md).
fn service_of(hostname: &str) -> String {
    match hostname.split('.').collect::<Vec<_>>().as_slice() {
        [svc, _ns, "svc", ..] => svc.to_string(),
        _ => hostname.to_owned(),
    }
}

#[test]
fn dns_answers_name_the_servers_they_resolved_to() {
    let run = analyze(&["fixtures/dns_names.pcap"]);
    // From tshark's answers (fixtures/expected): per address, the query name most asked.
    let mut asked: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for r in expected("dns_names")["names"]["responses"]
        .as_array()
        .unwrap()
    {
        for a in r["answers"].as_array().unwrap() {
            if a["type"] == "A" || a["type"] == "AAAA" {
                *asked
                    .entry(a["value"].as_str().unwrap().to_owned())
                    .or_default()
                    .entry(r["query"].as_str().unwrap().to_owned())
                    .or_default() += 1;
            }
        }
    }
    assert!(asked.len() >= 3, "{asked:?}");
    let file = repo("fixtures/dns_names.pcap");
    let requests = per_link(
        &run,
        &rows(
            file.to_str().unwrap(),
            "http.request",
            &["ip.src", "ip.dst", "tcp.dstport"],
        )
        .into_iter()
        .chain(rows(
            file.to_str().unwrap(),
            "http.request && ipv6",
            &["ipv6.src", "ipv6.dst", "tcp.dstport"],
        ))
        .filter(|r| !r[0].is_empty())
        .map(|mut r| {
            if r[1].contains(':') {
                r[1] = format!("[{}]", r[1]);
            }
            r
        })
        .collect::<Vec<_>>(),
    );
    let links = run.links["links"].as_array().unwrap();
    let mut named_by_dns = 0;
    for (i, l) in links.iter().enumerate() {
        for endpoint in l["server_endpoints"].as_array().unwrap() {
            let ip = endpoint
                .as_str()
                .unwrap()
                .rsplit_once(':')
                .unwrap()
                .0
                .trim_matches(['[', ']']);
            let top = asked[ip]
                .iter()
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                .unwrap()
                .0;
            assert_eq!(l["server"], service_of(top).as_str(), "{endpoint}");
            assert_eq!(l["server_source"], "dns");
            named_by_dns += 1;
        }
        assert_eq!(
            l["requests"].as_u64().unwrap(),
            requests[&i],
            "{}",
            l["server"]
        );
    }
    assert_eq!(
        named_by_dns, 3,
        "three listeners: 10.79.0.11, 10.79.0.12 and its IPv6"
    );

    // A services file's hostname matches anywhere on the CNAME chain.
    let dir = tempfile::tempdir().unwrap();
    let svc = dir.path().join("s.yaml");
    std::fs::write(
        &svc,
        "services:\n  orders: [\"orders.shop.svc.cluster.local\"]\n",
    )
    .unwrap();
    let run = analyze(&[
        "fixtures/dns_names.pcap",
        "--services",
        svc.to_str().unwrap(),
    ]);
    let orders = run.links["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["server"] == "orders")
        .expect("orders named through api.shop.test -> edge.shop.test -> orders...");
    assert_eq!(orders["server_source"], "services-file");
    assert_eq!(orders["server_endpoints"][0], "10.79.0.11:8080");
    let conflicts = run.links["identity"]["conflicts"].as_array().unwrap();
    assert!(conflicts
        .iter()
        .any(|c| c["other"]["name"] == "api.shop.test" && c["other"]["source"] == "dns"));
}

#[test]
fn sni_names_tls_servers_and_a_tls_link_has_null_http_measures() {
    let run = analyze(&["fixtures/tls_sni.pcap"]);
    let names = &expected("tls_sni")["names"];
    let conns = names["connections"].as_array().unwrap();
    let mut snis: BTreeMap<&str, u64> = BTreeMap::new();
    for c in conns {
        *snis.entry(c["sni"].as_str().unwrap()).or_default() += 1;
    }
    let top = snis.iter().max_by_key(|(_, n)| **n).unwrap().0;
    let links = run.links["links"].as_array().unwrap();
    assert_eq!(links.len(), 1, "{}", run.pairs().join(", "));
    let l = &links[0];
    assert_eq!(l["server"], *top);
    assert_eq!(l["server_source"], "sni");
    assert_eq!(l["protocol"], "tls");
    assert_eq!(
        l["tls_handshakes"].as_u64().unwrap(),
        names["client_hellos"].as_u64().unwrap()
    );
    assert_eq!(l["connections"].as_u64().unwrap(), conns.len() as u64);
    for measure in [
        "requests",
        "latency_ms",
        "bytes",
        "status",
        "json_share",
        "requests_per_s",
    ] {
        assert!(
            l[measure].is_null(),
            "{measure} should be unknown: {}",
            l[measure]
        );
    }
    assert!(l["requests_per_connection"].is_null());
    // SNI and ALPN offers per connection, as tshark decoded them.
    let mut alpn: BTreeMap<String, u64> = BTreeMap::new();
    for c in conns {
        let offered: Vec<&str> = c["alpn_offered"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        *alpn.entry(offered.join(",")).or_default() += 1;
    }
    let counts = |v: &Value| -> BTreeMap<String, u64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["value"].as_str().unwrap().to_owned(),
                    c["count"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(counts(&l["tls_alpn_offered"]), alpn);
    assert_eq!(
        counts(&l["tls_server_names"]),
        snis.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    );
    // The other SNI is a conflict for that listener, not silently dropped.
    let conflicts = run.links["identity"]["conflicts"].as_array().unwrap();
    assert!(
        conflicts
            .iter()
            .any(|c| c["other"]["name"] == "ledger.internal"),
        "{conflicts:?}"
    );
}

#[test]
fn demo_tls_link_is_named_by_its_sni_through_the_services_file() {
    let run = analyze(&["captures/prod.pcap"]);
    let l = run.link("payments", "fraud");
    assert_eq!(l["server_source"], "services-file");
    assert_eq!(l["protocol"], "tls");
    assert!(l["requests"].is_null());
    // tshark only finds TLS on 8443 when told (captures/README.md).
    let file = repo("captures/prod.pcap");
    let hellos = tshark(&[
        "-r",
        file.to_str().unwrap(),
        "-d",
        "tcp.port==8443,tls",
        "-Y",
        "tls.handshake.type==1 && tls.handshake.extensions_server_name==\"fraud.internal\"",
    ])
    .lines()
    .count() as u64;
    assert!(hellos > 100);
    assert_eq!(l["tls_handshakes"].as_u64().unwrap(), hellos);
    assert_eq!(l["tcp_handshakes"].as_u64().unwrap(), hellos);
}

#[test]
fn cost_constants_can_be_overridden_and_bad_ones_exit_2() {
    let base = analyze(&["captures/prod.pcap"]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cost.yaml");
    std::fs::write(&cfg, "constants:\n  tls_client_crypto_ms: 0.35\n").unwrap();
    let tuned = analyze(&[
        "captures/prod.pcap",
        "--cost-config",
        cfg.to_str().unwrap(),
        "--set",
        "tls_server_crypto_ms=1.06",
    ]);
    let crypto = |r: &Run| {
        r.link("payments", "fraud")["savings"]["crypto_cpu_ms_per_s_saved"]
            .as_f64()
            .unwrap()
    };
    // No fraud connection resumed a session: the crypto per handshake is server + client.
    let want = crypto(&base) * (1.06 + 0.35) / (0.14 + 0.15);
    assert!(
        (crypto(&tuned) - want).abs() < 1e-9 * want.max(1.0),
        "{} vs {want}",
        crypto(&tuned)
    );
    assert_eq!(
        tuned.links["scoring"]["constants"]["tls_server_crypto_ms"],
        1.06
    );
    assert_eq!(
        tuned.links["scoring"]["constants"]["tls_client_crypto_ms"],
        0.35
    );

    for bad in [
        ["--set", "no_such_constant=1"],
        ["--set", "hpack_cold_ratio=-2"],
    ] {
        let out = Command::cargo_bin("linkrank")
            .unwrap()
            .current_dir(repo(""))
            .args(["analyze", "captures/prod.pcap"])
            .args(bad)
            .arg("--out")
            .arg(dir.path().join("x"))
            .assert()
            .code(2);
        let err = String::from_utf8_lossy(&out.get_output().stderr);
        assert!(err.contains(bad[1].split('=').next().unwrap()), "{err}");
    }
}

#[test]
fn savings_follow_the_cost_model_arithmetic() {
    let run = analyze(&["captures/prod.pcap"]);
    let secs = run.links["capture_seconds"].as_f64().unwrap();
    for l in run.links["links"].as_array().unwrap() {
        let s = &l["savings"];
        let pairs = (l["client_addresses"].as_array().unwrap().len()
            * l["server_endpoints"].as_array().unwrap().len()) as f64;
        let saved = (l["tcp_handshakes"].as_f64().unwrap() - pairs).max(0.0);
        let hs = s["handshakes_per_s_saved"].as_f64().unwrap();
        assert!((hs - saved / secs).abs() < 1e-9, "{l}");
        if l["requests"].is_null() {
            assert!(s["header_bytes_per_request"]["now"].is_null());
            continue;
        }
        let r = l["requests"].as_f64().unwrap();
        let b = &l["bytes"];
        let now =
            (b["request_headers"].as_f64().unwrap() + b["response_headers"].as_f64().unwrap()) / r;
        let h = &s["header_bytes_per_request"];
        assert!((h["now"].as_f64().unwrap() - now).abs() < 1e-9);
        // HTTP/2 never needs more header bytes than HTTP/1.1 on these links.
        assert!(h["http2"].as_f64().unwrap() <= now, "{l}");
        let bodies =
            (b["request_bodies"].as_f64().unwrap() + b["response_bodies"].as_f64().unwrap()) / r;
        assert!((s["body_bytes_per_request"]["now"].as_f64().unwrap() - bodies).abs() < 1e-9);
        assert!(s["body_bytes_per_request"]["protobuf"].as_f64().unwrap() <= bodies);
    }
}
