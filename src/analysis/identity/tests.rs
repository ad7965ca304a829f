//! Precedence and conflicts, one test per name source.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::observed::Tally;
use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tally(names: &[(&str, u64)]) -> Tally {
    let mut t = Tally::default();
    for (n, c) in names {
        t = t.with(n, *c);
    }
    t
}

fn observed(servers: &[(&str, u16)], clients: &[&str]) -> Observed {
    Observed {
        servers: servers.iter().map(|(i, p)| (ip(i), *p)).collect(),
        clients: clients.iter().map(|c| ip(c)).collect(),
        ..Default::default()
    }
}

fn services(yaml: &str) -> NameSources {
    NameSources {
        services: vec![ServicesFile::parse(Path::new("s.yaml"), yaml).unwrap()],
        k8s: vec![],
        ..Default::default()
    }
}

fn named(name: &str, source: NameSource) -> Named {
    Named {
        name: name.into(),
        source,
    }
}

#[test]
fn fallback_is_ip_port_for_servers_and_ip_for_clients() {
    let obs = observed(&[("10.0.0.2", 8080), ("fd00::2", 443)], &["10.0.0.1"]);
    let n = resolve(&NameSources::default(), &obs);
    assert_eq!(
        n.server(ip("10.0.0.2"), 8080),
        named("10.0.0.2:8080", NameSource::Fallback)
    );
    assert_eq!(
        n.server(ip("fd00::2"), 443),
        named("[fd00::2]:443", NameSource::Fallback)
    );
    assert_eq!(
        n.client(ip("10.0.0.1")),
        named("10.0.0.1", NameSource::Fallback)
    );
    assert!(n.conflicts.is_empty());
}

#[test]
fn services_file_addresses_listeners_and_networks() {
    let src = services(
        "services:\n  web: [\"10.0.2.0/24\"]\n  auth: [\"10.0.3.7:8443\"]\n  api: [\"10.0.2.9\"]\n",
    );
    let obs = observed(
        &[("10.0.3.7", 8443), ("10.0.2.9", 80)],
        &["10.0.2.5", "10.0.3.7"],
    );
    let n = resolve(&src, &obs);
    assert_eq!(
        n.server(ip("10.0.3.7"), 8443),
        named("auth", NameSource::ServicesFile)
    );
    assert_eq!(
        n.server(ip("10.0.2.9"), 80),
        named("api", NameSource::ServicesFile)
    );
    assert_eq!(
        n.client(ip("10.0.2.5")),
        named("web", NameSource::ServicesFile)
    );
    // A listener entry names only the server side; the same host as a client takes the
    // name of its listeners.
    assert_eq!(
        n.client(ip("10.0.3.7")),
        named("auth", NameSource::Listener)
    );
    // api (host) beats web (network) for 10.0.2.9: more specific, not a conflict worth
    // hiding: it is listed.
    assert!(n
        .conflicts
        .iter()
        .any(|c| c.endpoint == "10.0.2.9:80" && c.other.name == "web"));
}

#[test]
fn services_file_hostnames_match_dns_host_and_sni() {
    let src = services(
        "services:\n  orders: [\"orders.shop.svc.cluster.local\"]\n  fraud: [\"fraud.internal\"]\n  users: [\"users.internal\"]\n",
    );
    let mut obs = observed(
        &[("10.1.0.5", 8080), ("10.1.0.6", 8443), ("10.1.0.7", 8080)],
        &[],
    );
    // api.shop.test -> CNAME edge -> orders.shop.svc.cluster.local -> 10.1.0.5
    obs.dns_all_names.insert(
        ip("10.1.0.5"),
        [
            "api.shop.test",
            "edge.shop.test",
            "orders.shop.svc.cluster.local",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect::<BTreeSet<_>>(),
    );
    obs.dns_query_names
        .insert(ip("10.1.0.5"), tally(&[("api.shop.test", 3)]));
    obs.sni_names
        .insert((ip("10.1.0.6"), 8443), tally(&[("fraud.internal", 9)]));
    obs.host_names
        .insert((ip("10.1.0.7"), 8080), tally(&[("users.internal", 4)]));
    let n = resolve(&src, &obs);
    assert_eq!(
        n.server(ip("10.1.0.5"), 8080),
        named("orders", NameSource::ServicesFile)
    );
    assert_eq!(
        n.server(ip("10.1.0.6"), 8443),
        named("fraud", NameSource::ServicesFile)
    );
    assert_eq!(
        n.server(ip("10.1.0.7"), 8080),
        named("users", NameSource::ServicesFile)
    );
    // The DNS query name (api.shop.test) disagrees with `orders`: listed.
    assert_eq!(
        n.conflicts
            .iter()
            .map(|c| (c.endpoint.as_str(), c.other.name.as_str(), c.other.source))
            .collect::<Vec<_>>(),
        [("10.1.0.5:8080", "api.shop.test", NameSource::Dns)]
    );
}

#[test]
fn k8s_beats_dns_and_dns_beats_host_and_sni() {
    let inv = K8sInventory::parse(
        Path::new("k.json"),
        r#"{"kind":"List","items":[{"kind":"Pod","metadata":{"name":"orders-abc12-xyz","namespace":"shop",
           "ownerReferences":[{"kind":"ReplicaSet","name":"orders-abc12","controller":true}]},"status":{"podIP":"10.1.0.5"}}]}"#,
    )
    .unwrap();
    let src = NameSources {
        services: vec![],
        k8s: vec![inv],
        ..Default::default()
    };
    let mut obs = observed(&[("10.1.0.5", 8080), ("10.1.0.9", 443)], &["10.1.0.5"]);
    obs.dns_query_names.insert(
        ip("10.1.0.5"),
        tally(&[("orders.shop.svc.cluster.local", 2)]),
    );
    obs.host_names.insert(
        (ip("10.1.0.5"), 8080),
        tally(&[("legacy-orders.example", 5)]),
    );
    obs.dns_query_names.insert(
        ip("10.1.0.9"),
        tally(&[("pay.example", 1), ("payments.example", 7)]),
    );
    obs.host_names
        .insert((ip("10.1.0.9"), 443), tally(&[("checkout.example", 3)]));
    obs.sni_names
        .insert((ip("10.1.0.9"), 443), tally(&[("payments.example", 3)]));
    let n = resolve(&src, &obs);
    assert_eq!(
        n.server(ip("10.1.0.5"), 8080),
        named("orders", NameSource::K8s)
    );
    assert_eq!(n.client(ip("10.1.0.5")), named("orders", NameSource::K8s));
    // The most asked-for DNS name wins over Host and SNI.
    assert_eq!(
        n.server(ip("10.1.0.9"), 443),
        named("payments.example", NameSource::Dns)
    );
    let others: BTreeMap<_, _> = n
        .conflicts
        .iter()
        .map(|c| {
            (
                c.other.name.clone(),
                (c.endpoint.clone(), c.chosen.name.clone()),
            )
        })
        .collect();
    // `orders.shop.svc.cluster.local` is the Service DNS name of `orders`: it agrees.
    assert_eq!(
        others,
        BTreeMap::from([
            (
                "legacy-orders.example".to_string(),
                ("10.1.0.5:8080".to_string(), "orders".to_string())
            ),
            (
                "checkout.example".to_string(),
                ("10.1.0.9:443".to_string(), "payments.example".to_string())
            ),
            // The less asked DNS name of the same address.
            (
                "pay.example".to_string(),
                ("10.1.0.9:443".to_string(), "payments.example".to_string())
            ),
        ])
    );
}

#[test]
fn host_then_sni_then_listener_inheritance() {
    let mut obs = observed(
        &[("10.0.0.2", 80), ("10.0.0.3", 443), ("10.0.0.3", 8443)],
        &["10.0.0.2", "10.0.0.3"],
    );
    obs.host_names.insert(
        (ip("10.0.0.2"), 80),
        tally(&[("shop.example", 5), ("www.shop.example", 9)]),
    );
    obs.sni_names
        .insert((ip("10.0.0.3"), 443), tally(&[("a.example", 1)]));
    obs.sni_names
        .insert((ip("10.0.0.3"), 8443), tally(&[("b.example", 1)]));
    let n = resolve(&NameSources::default(), &obs);
    assert_eq!(
        n.server(ip("10.0.0.2"), 80),
        named("www.shop.example", NameSource::Host)
    );
    assert_eq!(
        n.server(ip("10.0.0.3"), 443),
        named("a.example", NameSource::Sni)
    );
    assert_eq!(
        n.client(ip("10.0.0.2")),
        named("www.shop.example", NameSource::Listener)
    );
    // Two listeners with different names: the client keeps its address.
    assert_eq!(
        n.client(ip("10.0.0.3")),
        named("10.0.0.3", NameSource::Fallback)
    );
}

#[test]
fn span_service_names_outrank_the_inventory_and_lose_to_the_services_file() {
    let yaml = "services:\n  orders-svc: [\"10.1.0.5:8080\"]\n";
    let mut src = services(yaml);
    let traced = Tally::default().with("orders", 40).with("legacy", 2);
    src.traces
        .servers
        .insert((ip("10.1.0.5"), 8080), traced.clone());
    src.traces
        .servers
        .insert((ip("10.1.0.9"), 443), traced.clone());
    src.traces
        .clients
        .insert(ip("10.1.0.7"), Tally::default().with("gateway", 5));
    let obs = observed(&[("10.1.0.5", 8080), ("10.1.0.9", 443)], &["10.1.0.7"]);
    let n = resolve(&src, &obs);
    // The services file is the user's explicit word.
    assert_eq!(
        n.server(ip("10.1.0.5"), 8080),
        named("orders-svc", NameSource::ServicesFile)
    );
    // Elsewhere the most frequent span name wins, and the other is a conflict.
    assert_eq!(
        n.server(ip("10.1.0.9"), 443),
        named("orders", NameSource::Traces)
    );
    assert_eq!(
        n.client(ip("10.1.0.7")),
        named("gateway", NameSource::Traces)
    );
    assert!(n
        .conflicts
        .iter()
        .any(|c| c.endpoint == "10.1.0.9:443" && c.other.name == "legacy"));
}
