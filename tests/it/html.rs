//! `report.html`, `graph.svg` and `graph.dot` of the demo capture: self-contained (no
//! resource outside the page), one graph edge per link of `links.json` in all three, and
//! the table and evidence of every link. The browser test (tests/browser/) checks the same
//! page live in Chromium.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

struct Run {
    dir: tempfile::TempDir,
    links: Value,
}

impl Run {
    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    }
}

fn analyze_demo() -> Run {
    let dir = tempfile::tempdir().unwrap();
    Command::cargo_bin("linkrank")
        .unwrap()
        .current_dir(repo(""))
        .args(["analyze", "captures/prod.pcap", "--quiet", "--out"])
        .arg(dir.path())
        .assert()
        .success();
    let links =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("links.json")).unwrap())
            .unwrap();
    Run { dir, links }
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The value of `attr="..."` right after each occurrence of `marker`.
fn attr_after(text: &str, marker: &str, attr: &str) -> Vec<String> {
    text.match_indices(marker)
        .map(|(i, _)| {
            let rest = &text[i..];
            let end = rest.find('>').unwrap();
            let tag = &rest[..end];
            let key = format!(" {attr}=\"");
            let start = tag
                .find(&key)
                .unwrap_or_else(|| panic!("{attr} missing in {tag}"))
                + key.len();
            let len = tag[start..].find('"').unwrap();
            unescape(&tag[start..start + len])
        })
        .collect()
}

type Pairs = BTreeMap<(String, String), usize>;

fn pairs_of(names: impl Iterator<Item = (String, String)>) -> Pairs {
    let mut m = Pairs::new();
    for p in names {
        *m.entry(p).or_default() += 1;
    }
    m
}

fn json_pairs(links: &Value) -> Pairs {
    pairs_of(links["links"].as_array().unwrap().iter().map(|l| {
        (
            l["client"].as_str().unwrap().to_owned(),
            l["server"].as_str().unwrap().to_owned(),
        )
    }))
}

fn svg_pairs(text: &str) -> Pairs {
    let marker = "<g class=\"edge\"";
    pairs_of(
        attr_after(text, marker, "data-client")
            .into_iter()
            .zip(attr_after(text, marker, "data-server")),
    )
}

/// `"a" -> "b"` lines of the DOT file, with DOT's escapes undone.
fn dot_pairs(dot: &str) -> Pairs {
    fn quoted(s: &str) -> (String, &str) {
        let mut out = String::new();
        let mut chars = s.char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        out.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => return (out, &s[i + 1..]),
                _ => out.push(c),
            }
        }
        panic!("unterminated DOT string: {s}");
    }
    pairs_of(
        dot.lines()
            .map(str::trim)
            .filter(|l| l.starts_with('"') && l.contains(" -> "))
            .map(|l| {
                let (a, rest) = quoted(l);
                let rest = rest.strip_prefix(" -> ").expect("an edge line");
                let (b, _) = quoted(rest);
                (a, b)
            }),
    )
}

#[test]
fn demo_report_html_is_self_contained() {
    let run = analyze_demo();
    let html = run.read("report.html");
    assert!(html.starts_with("<!DOCTYPE html>"));
    // Every src/href/url() points inside the page (an anchor or an SVG marker id).
    let mut refs = Vec::new();
    for key in [" src=\"", " href=\"", " xlink:href=\""] {
        for (i, _) in html.match_indices(key) {
            let v = &html[i + key.len()..];
            refs.push(v[..v.find('"').unwrap()].to_owned());
        }
    }
    for (i, _) in html.match_indices("url(") {
        let v = &html[i + 4..];
        refs.push(v[..v.find(')').unwrap()].to_owned());
    }
    assert!(!refs.is_empty(), "the page has its own anchors and markers");
    for r in &refs {
        assert!(r.starts_with('#'), "reference outside the page: {r}");
    }
    for needle in ["http://", "https://", "@import", "<link", "<img", "<iframe"] {
        assert!(!html.contains(needle), "found {needle}");
    }
    // Exactly one script and one style, both inline.
    assert_eq!(html.matches("<script").count(), 1);
    assert!(html.contains("<script>\n"));
    assert_eq!(html.matches("<style").count(), 1);
    // The browser refuses any fetch the page might still try.
    assert!(html.contains("content=\"default-src 'none';"));
}

#[test]
fn demo_graph_has_one_edge_per_link_in_all_three_files() {
    let run = analyze_demo();
    let want = json_pairs(&run.links);
    let n_links = run.links["links"].as_array().unwrap().len();
    assert!(n_links >= 5, "the demo has its links");
    let html = run.read("report.html");
    let svg = run.read("graph.svg");
    let dot = run.read("graph.dot");
    assert_eq!(svg_pairs(&html), want, "report.html");
    assert_eq!(svg_pairs(&svg), want, "graph.svg");
    assert_eq!(dot_pairs(&dot), want, "graph.dot");
    assert_eq!(html.matches("<g class=\"edge\"").count(), n_links);
    assert_eq!(dot_pairs(&dot).values().sum::<usize>(), n_links);

    // One box per service.
    let services: std::collections::BTreeSet<String> = want
        .keys()
        .flat_map(|(a, b)| [a.clone(), b.clone()])
        .collect();
    let boxes: std::collections::BTreeSet<String> =
        attr_after(&svg, "<g class=\"node\"", "data-service")
            .into_iter()
            .collect();
    assert_eq!(boxes, services);

    // Colour: each edge's target is the link's recommendation.
    let targets: Vec<String> = attr_after(&html, "<g class=\"edge\"", "data-target");
    let json_targets: Vec<String> = run.links["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["recommendation"]["target"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(targets, json_targets);

    // Width: the link with the highest request rate has the widest stroke (1.5 + 6.5).
    let busiest = run.links["links"]
        .as_array()
        .unwrap()
        .iter()
        .max_by(|a, b| {
            let r = |l: &Value| l["requests_per_s"]["mean"].as_f64().unwrap_or(0.0);
            r(a).total_cmp(&r(b))
        })
        .unwrap();
    let tag_start = svg
        .find(&format!(
            "<g class=\"edge\" data-client=\"{}\" data-server=\"{}\"",
            busiest["client"].as_str().unwrap(),
            busiest["server"].as_str().unwrap()
        ))
        .unwrap();
    let tag = &svg[tag_start..];
    let tag = &tag[..tag.find("</g>").unwrap()];
    assert!(tag.contains("stroke-width=\"8.0\""), "{tag}");
}

#[test]
fn demo_table_has_every_link_in_rank_order_with_its_evidence() {
    let run = analyze_demo();
    let html = run.read("report.html");
    let links = run.links["links"].as_array().unwrap();
    let marker = "<tbody class=\"link\"";
    let clients = attr_after(&html, marker, "data-client");
    let servers = attr_after(&html, marker, "data-server");
    assert_eq!(clients.len(), links.len());
    for ((l, c), s) in links.iter().zip(&clients).zip(&servers) {
        assert_eq!(l["client"].as_str().unwrap(), c);
        assert_eq!(l["server"].as_str().unwrap(), s);
    }
    assert_eq!(
        html.matches("<tr class=\"evidence\" hidden>").count(),
        links.len()
    );
    // Every route of every link, and every reason of every recommendation, is in its
    // evidence (escaped).
    for l in links {
        for r in l["routes"].as_array().unwrap() {
            let route = r["route"].as_str().unwrap();
            assert!(
                html.contains(&format!("<code>{}</code>", escape(route))),
                "{route}"
            );
        }
        for why in l["recommendation"]["why"].as_array().unwrap() {
            assert!(html.contains(&escape(why.as_str().unwrap())));
        }
    }
    // The demo's identity conflict is shown and marks the gateway.
    let conflicts = run.links["identity"]["conflicts"].as_array().unwrap();
    assert!(!conflicts.is_empty());
    assert!(html.contains(&escape(conflicts[0]["endpoint"].as_str().unwrap())));
    assert!(html.contains("identity conflict on server"));
    // The plan's waves are all there.
    let waves = run.links["plan"]["waves"].as_array().unwrap();
    assert_eq!(html.matches("<div class=\"wave\">").count(), waves.len());
    // The waterfall of each of the top root routes (up to 5).
    let roots = run.links["chains"]["top_root_routes"].as_array().unwrap();
    assert_eq!(
        html.matches("aria-label=\"critical path waterfall\"")
            .count(),
        roots.len().min(5)
    );
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The demo's clients send a Bearer token, a session cookie and `?token=`: none reaches
/// the page or the graph files (the page is rendered from links.json, which holds none).
#[test]
fn demo_secrets_stay_out_of_the_page() {
    let demo =
        String::from_utf8_lossy(&std::fs::read(repo("captures/prod.pcap")).unwrap()).into_owned();
    let secrets = ["Bearer", "session=", "token="];
    for s in secrets {
        assert!(demo.contains(s), "the demo lost its secret {s}");
    }
    let run = analyze_demo();
    for f in ["report.html", "graph.svg", "graph.dot"] {
        let text = run.read(f);
        for s in secrets {
            assert!(!text.contains(s), "{f} holds {s}");
        }
        // No query string of a route either.
        assert!(!text.contains("?token"), "{f} holds a query string");
    }
}
