//! Recommendations on the demo capture: the fire-and-forget link goes to a
//! broker, the TLS link that handshakes on every request ranks near the top for its
//! handshakes, a low-rate link is kept, the external caller keeps HTTP, and a deep
//! synchronous link outranks an equally costly shallow one.

use crate::common::*;
use clap::Parser;
use linkrank::analysis::assess::{Assessed, Assessment};
use linkrank::analysis::cost::CostConstants;
use linkrank::analysis::rank::Ranked;
use linkrank::analysis::recommend::{BrokerKind, Subject, Target};
use linkrank::cli::{Cli, Command};
use serde_json::Value;

fn demo() -> (tempfile::TempDir, Value, linkrank::app::RunOutcome) {
    let dir = tempfile::tempdir().unwrap();
    let demo = repo("captures/prod.pcap");
    let cli = Cli::try_parse_from([
        "linkrank",
        "analyze",
        demo.to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
        "--quiet",
        "--reproducible",
    ])
    .unwrap();
    let Command::Analyze(args) = cli.command else {
        panic!("not analyze")
    };
    let config = args.into_config().unwrap();
    let outcome = linkrank::app::analyze(&config).unwrap();
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("links.json")).unwrap())
            .unwrap();
    (dir, json, outcome)
}

fn link<'a>(json: &'a Value, client: &str, server: &str) -> &'a Value {
    json["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["client"] == client && l["server"] == server)
        .unwrap_or_else(|| panic!("no link {client} -> {server}"))
}

#[test]
fn demo_links_get_the_targets_the_cost_model_rules_give() {
    let (dir, json, _) = demo();
    // orders -> notifications: orders answers before notifications does (docs: captures/README.md).
    let n = link(&json, "orders", "notifications");
    assert_eq!(n["chain"]["fire_and_forget_share"], 1.0);
    assert_eq!(n["recommendation"]["target"], "broker");
    assert_eq!(n["recommendation"]["rule"], "broker:fire-and-forget");
    assert_eq!(n["recommendation"]["broker"]["kind"], "nats");

    // payments -> fraud: TLS 1.3 with a full handshake per request.
    let f = link(&json, "payments", "fraud");
    assert!(f["rank"].as_u64().unwrap() <= 3, "rank {}", f["rank"]);
    assert_eq!(f["tls_handshakes"], f["connections"]);
    let why = f["recommendation"]["why"][0].as_str().unwrap();
    assert!(why.contains("handshakes"), "{why}");
    assert_eq!(f["recommendation"]["cheaper_fix"], "connection-pooling");

    // The lowest-rate internal link is kept: its gain is below min_gain_share.
    let internal: Vec<&Value> = json["links"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["client"] != "client" && l["requests_per_s"]["mean"].is_number())
        .collect();
    let slowest = internal
        .iter()
        .min_by(|a, b| {
            let r = |l: &Value| l["requests_per_s"]["mean"].as_f64().unwrap();
            r(a).total_cmp(&r(b))
        })
        .unwrap();
    assert_eq!(slowest["recommendation"]["target"], "keep", "{slowest}");
    assert_eq!(slowest["recommendation"]["rule"], "keep:low-gain");

    // The load generator is outside the system.
    let c = link(&json, "client", "gateway");
    assert_eq!(c["recommendation"]["rule"], "keep:external");

    // Every link has a decision with reasons; the plan places every migrated link once.
    let mut planned = Vec::new();
    for w in json["plan"]["waves"].as_array().unwrap() {
        assert!(!w["steps"].as_array().unwrap().is_empty());
        assert!(!w["verify"].as_array().unwrap().is_empty());
        for l in w["links"].as_array().unwrap() {
            planned.push(format!("{} -> {}", l["client"], l["server"]));
        }
    }
    let migrated: Vec<String> = json["links"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["recommendation"]["target"] != "keep")
        .map(|l| format!("{} -> {}", l["client"], l["server"]))
        .collect();
    planned.sort();
    let mut expected = migrated.clone();
    expected.sort();
    assert_eq!(planned, expected);
    for l in json["links"].as_array().unwrap() {
        assert!(!l["recommendation"]["why"].as_array().unwrap().is_empty());
    }
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains("## Recommendations") && md.contains("### Wave 1"));
}

/// Decides `links` again (their savings, what-if and chain as given) at `k`.
fn decide_again(links: Vec<Ranked>, k: &CostConstants) -> Vec<Assessed> {
    let subjects: Vec<Subject<'_>> = links
        .iter()
        .map(|r| Subject {
            link: &r.link,
            chain: r.chain.as_ref(),
            savings: &r.assessment.savings,
            what_if: r.assessment.what_if.as_ref(),
        })
        .collect();
    let decisions = linkrank::analysis::recommend::recommend(&subjects, k);
    links
        .into_iter()
        .zip(decisions)
        .map(|(r, recommendation)| Assessed {
            link: r.link,
            chain: r.chain,
            assessment: Assessment {
                recommendation,
                ..r.assessment
            },
        })
        .collect()
}

#[test]
fn a_deep_synchronous_link_outranks_an_equally_costly_shallow_one() {
    let (_dir, _, outcome) = demo();
    let real = |c: &str, s: &str| {
        outcome
            .ranked
            .iter()
            .find(|r| r.link.client == c && r.link.server == s)
            .unwrap()
            .clone()
    };
    // Two copies of one measured link that differ only in how deep their calls sit.
    let mut deep = real("orders", "users");
    let mut shallow = deep.clone();
    shallow.link.server = "users-shallow".into();
    deep.chain.as_mut().unwrap().mean_depth = Some(3.0);
    deep.chain.as_mut().unwrap().max_depth = Some(3);
    shallow.chain.as_mut().unwrap().mean_depth = Some(1.0);
    shallow.chain.as_mut().unwrap().max_depth = Some(1);
    let k = CostConstants::default();
    let assessed = decide_again(vec![real("gateway", "orders"), shallow, deep], &k);
    let ranked = linkrank::analysis::rank::rank(assessed, &k);
    let pos = |s: &str| ranked.iter().position(|r| r.link.server == s).unwrap();
    let (d, sh) = (&ranked[pos("users")], &ranked[pos("users-shallow")]);
    assert_eq!(
        d.assessment.recommendation.target,
        sh.assessment.recommendation.target
    );
    assert!(
        d.score > sh.score,
        "deep {} <= shallow {}",
        d.score,
        sh.score
    );
    assert!(pos("users") < pos("users-shallow"));
}

#[test]
fn one_payload_sent_to_several_services_goes_to_a_broker() {
    let (_dir, _, outcome) = demo();
    let mut links = outcome.ranked.clone();
    // orders -> users as measured, except that its caller also sent each payload to
    // another service for the same request (the chain figure the rule reads).
    let i = links
        .iter()
        .position(|r| r.link.client == "orders" && r.link.server == "users")
        .unwrap();
    let k = CostConstants::default();
    let decided = decide_again(links.clone(), &k);
    assert_ne!(decided[i].assessment.recommendation.target, Target::Broker);
    links[i].chain.as_mut().unwrap().same_payload_fanout_share = Some(0.9);
    let decided = decide_again(links, &k);
    let r = &decided[i].assessment.recommendation;
    assert_eq!(r.rule, "broker:same-payload-fan-out");
    assert_eq!(r.broker.as_ref().unwrap().kind, BrokerKind::Kafka);
    assert!(r.why[0].contains("90%"), "{}", r.why[0]);
}
