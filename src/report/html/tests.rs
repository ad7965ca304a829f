use serde_json::{json, Value};

use super::graph::dot_quote;
use super::{esc, render};

fn link(rank: u64, client: &str, server: &str, target: &str, rps: f64) -> Value {
    json!({
        "rank": rank,
        "client": client,
        "server": server,
        "protocol": "http/1.1",
        "requests": 10,
        "requests_per_s": {"mean": rps, "peak": rps},
        "latency_ms": {"p50": 1.0, "p95": 2.0, "p99": 3.0},
        "routes": [{"method": "GET", "route": "/a/<b>", "requests": 10}],
        "recommendation": {"target": target, "rule": "r", "confidence": "high",
                           "why": ["because <b>"], "risks": []},
        "score": 0.5,
    })
}

fn doc(links: Vec<Value>) -> Value {
    json!({"generator": "linkrank test", "capture_seconds": 10.0, "links": links,
           "identity": {"conflicts": [], "files": [], "sources": {}},
           "capture_quality": {"gaps": 0}, "chains": null, "plan": null})
}

/// Every `<` in the page starts one of the tags the renderer writes itself; a hostile
/// name must only ever appear escaped.
#[test]
fn hostile_names_are_escaped_everywhere() {
    let evil = "<script>alert(\"x&y\")</script>";
    let d = doc(vec![
        link(1, evil, "svc'b", "grpc", 2.0),
        link(2, "a", evil, "keep", 1.0),
    ]);
    let r = render(&d);
    for out in [&r.html, &r.svg] {
        assert!(!out.contains(evil), "raw name leaked");
        assert!(!out.contains("<script>alert"), "raw script tag leaked");
        assert!(out.contains("&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt;"));
        assert!(!out.contains("svc'b"), "single quote not escaped");
    }
    // The only <script> element is the page's own.
    assert_eq!(r.html.matches("<script").count(), 1);
    assert!(!r.html.contains("/a/<b>") && r.html.contains("/a/&lt;b&gt;"));
    assert!(!r.html.contains("because <b>"));
    // DOT: the quote is escaped, so the edge line still has exactly two quoted names.
    assert!(r
        .dot
        .contains("\"<script>alert(\\\"x&y\\\")</script>\" -> \"svc'b\""));
}

#[test]
fn esc_and_dot_quote() {
    assert_eq!(esc("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&#39;");
    assert_eq!(dot_quote("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
}

fn edges(svg: &str) -> usize {
    svg.matches("<g class=\"edge\"").count()
}

#[test]
fn one_edge_per_link_with_self_loop_and_parallel_links() {
    let d = doc(vec![
        link(1, "a", "b", "grpc", 4.0),
        link(2, "b", "c", "broker", 1.0),
        link(3, "c", "a", "mesh", 1.0), // a cycle
        link(4, "b", "b", "keep", 1.0), // calls itself
        link(5, "a", "b", "keep", 0.5), // a second link on the same pair
    ]);
    let r = render(&d);
    assert_eq!(edges(&r.html), 5);
    assert_eq!(edges(&r.svg), 5);
    let dot_edges = r
        .dot
        .lines()
        .filter(|l| l.trim_start().starts_with('"') && l.contains(" -> "))
        .count();
    assert_eq!(dot_edges, 5);
    assert_eq!(r.html.matches("<g class=\"node\"").count(), 3);
    // Every edge has a drawable path.
    assert!(!r.svg.contains("d=\"\""));
    // Width follows the rate: the busiest link (4/s) is the widest, sqrt scale: 1.5 + 6.5.
    assert!(r.svg.contains("stroke-width=\"8.0\""));
    // Colour follows the target.
    assert!(r.svg.contains("data-target=\"broker\""));
    assert!(r.svg.contains("stroke=\"#d97706\""));
    assert!(r.svg.starts_with("<?xml"));
}

#[test]
fn large_graph_uses_the_fallback_layout() {
    // 200 services in a chain: over the layout-rs bound.
    let links: Vec<Value> = (0..200)
        .map(|i| link(i + 1, &format!("s{i}"), &format!("s{}", i + 1), "grpc", 1.0))
        .collect();
    let r = render(&doc(links));
    assert_eq!(edges(&r.html), 200);
    assert_eq!(r.html.matches("<g class=\"node\"").count(), 201);
    assert!(!r.html.contains("d=\"\""), "an edge without a path");
    // Every link in the table, the charts cut to the top 40.
    assert_eq!(r.html.matches("<tbody class=\"link\"").count(), 200);
    assert!(r.html.contains("top 40 of 200 links"));
    // (a chart row label; the graph's tooltips go on past "#40 ...\n")
    assert!(r.html.contains("<title>#40 s39 -&gt; s40</title>"));
    assert!(!r.html.contains("<title>#41 s40 -&gt; s41</title>"));
}

#[test]
fn empty_and_sparse_documents_render() {
    let r = render(&json!({}));
    assert!(r.html.contains("No service-to-service link"));
    assert_eq!(edges(&r.svg), 0);
    // A link with almost nothing known (spans only, no HTTP measures).
    let r = render(&doc(vec![json!({"client": "x", "server": "y"})]));
    assert_eq!(edges(&r.html), 1);
}
