//! The page: sections in reading order (graph, ranking with evidence, charts, plan,
//! capture quality and identity), the inline style and the small script that sorts,
//! filters and opens the table's rows.

use std::fmt::Write as _;

use serde_json::Value;

use super::charts::{self, Row, Series};
use super::esc;
use super::graph::Graph;
use super::value::{at, fmt, list, num, pct, rate, scalar, target_colour, text, TARGETS};

/// Rows per chart: more bars than this are unreadable; the table still lists every link.
const CHART_LINKS: usize = 40;
/// Links whose evidence is inlined (each is about 10 kB): bounds the page on a huge mesh.
const EVIDENCE_LINKS: usize = 1000;

const STYLE: &str = include_str!("style.css");
const SCRIPT: &str = include_str!("script.js");

/// Counters of `capture_quality` that make figures less certain, with what they weaken.
const LOSSES: [(&str, &str); 11] = [
    ("gaps", "bytes and exchanges of the connections with holes"),
    ("gap_bytes", "byte totals"),
    (
        "one_sided_connections",
        "latency and request counts (one direction missing)",
    ),
    ("connections_without_handshake", "handshake counts and RTTs"),
    ("truncated_snaplen", "body sizes and JSON samples"),
    ("ip_fragments_dropped", "bytes of the dropped packets"),
    ("evicted_idle", "connections split in two"),
    ("evicted_capacity", "connections split in two"),
    ("malformed_http", "request counts"),
    ("incomplete_exchanges", "latency (no response seen)"),
    ("header_budget_overflows", "header byte figures"),
];

pub fn render(doc: &Value, g: &Graph) -> String {
    let mut s = String::with_capacity(64 * 1024);
    let links = list(doc, &["links"]);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>linkrank report</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n"
    );
    header(&mut s, doc, links);
    graph_section(&mut s, g, links);
    table(&mut s, doc, links);
    charts_section(&mut s, doc, links);
    plan(&mut s, doc);
    quality(&mut s, doc);
    identity(&mut s, doc);
    traces(&mut s, doc);
    let _ = write!(
        s,
        "<footer>Written by {}. Scoring <code>{}</code>; the model and every constant: \
         <code>docs/cost-model.md</code>, the page: <code>docs/report.md</code>.</footer>\n\
         <script>\n{SCRIPT}</script>\n</body>\n</html>\n",
        esc(text(doc, &["generator"])),
        esc(text(doc, &["scoring", "name"]))
    );
    s
}

fn header(s: &mut String, doc: &Value, links: &[Value]) {
    let inputs: Vec<String> = list(doc, &["inputs"])
        .iter()
        .map(|i| {
            format!(
                "<code>{}</code> ({}, {} packets)",
                esc(text(i, &["path"])),
                esc(text(i, &["format"])),
                scalar(i.get("packets").unwrap_or(&Value::Null))
            )
        })
        .collect();
    let _ = write!(
        s,
        "<header><h1>linkrank report</h1><p>{} &middot; {} TCP connections, {} HTTP exchanges over {} s &middot; <strong>{}</strong> service-to-service links</p>\n\
         <nav><a href=\"#graph\">Graph</a> <a href=\"#ranking\">Ranked links</a> <a href=\"#charts\">Charts</a> <a href=\"#plan\">Rollout plan</a> <a href=\"#quality\">Capture quality</a> <a href=\"#identity\">Identity</a></nav></header>\n",
        if inputs.is_empty() {
            "no capture input".to_owned()
        } else {
            inputs.join(", ")
        },
        fmt(num(doc, &["tables", "connections"]), 0),
        fmt(num(doc, &["tables", "exchanges"]), 0),
        fmt(num(doc, &["capture_seconds"]), 1),
        links.len()
    );
    let weak = weakening(doc);
    if !weak.is_empty() {
        let _ = writeln!(
            s,
            "<p class=\"warn\" id=\"quality-banner\">Capture quality weakens some figures: {}. See <a href=\"#quality\">Capture quality</a>.</p>",
            weak.join("; ")
        );
    }
}

/// Sentences for each loss counter that is not zero (escaped).
fn weakening(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (key, what) in LOSSES {
        if let Some(n) = num(doc, &["capture_quality", key]).filter(|&n| n > 0.0) {
            out.push(format!(
                "{} {} (weakens {what})",
                fmt(Some(n), 0),
                key.replace('_', " ")
            ));
        }
    }
    for w in list(doc, &["capture_quality", "input_warnings"]) {
        out.push(esc(&scalar(w)));
    }
    out
}

fn legend(s: &mut String) {
    s.push_str("<p class=\"legend\">");
    for t in TARGETS {
        let _ = write!(
            s,
            "<span><i style=\"background:{}\"></i>{t}</span>",
            target_colour(t)
        );
    }
    s.push_str("<span>edge width: request rate (connections/s when encrypted)</span><span>hover an edge or a box for its figures</span></p>\n");
}

fn graph_section(s: &mut String, g: &Graph, links: &[Value]) {
    s.push_str("<section id=\"graph\"><h2>Service graph</h2>\n");
    legend(s);
    if links.is_empty() {
        s.push_str("<p>No service-to-service link was found.</p>");
    }
    let _ = write!(
        s,
        "<div class=\"scroll\">{}</div>\n<p class=\"note\">Also written as <code>graph.svg</code> and <code>graph.dot</code> (Graphviz) beside this page. A red box: an identity conflict concerns one of the service's endpoints.</p></section>\n",
        g.inline_svg()
    );
}

fn link_name(l: &Value) -> String {
    format!("{} -> {}", text(l, &["client"]), text(l, &["server"]))
}

/// Why a link's figures are weaker than they look (escaped sentences).
fn link_warnings(doc: &Value, l: &Value) -> Vec<String> {
    let mut w = Vec::new();
    if let Some(q) = l.get("quality").and_then(Value::as_object) {
        for (k, v) in q {
            if v.as_f64().is_some_and(|n| n > 0.0) {
                w.push(format!("{} {}", scalar(v), esc(&k.replace('_', " "))));
            }
        }
    }
    for c in list(doc, &["identity", "conflicts"]) {
        let ep = text(c, &["endpoint"]);
        let hit = if text(c, &["role"]) == "client" {
            list(l, &["client_addresses"])
                .iter()
                .any(|a| a.as_str() == Some(ep))
        } else {
            list(l, &["server_endpoints"])
                .iter()
                .any(|a| a.as_str() == Some(ep))
        };
        if hit {
            w.push(format!(
                "identity conflict on {} {}: named {} by {}, {} by {}",
                esc(text(c, &["role"])),
                esc(ep),
                esc(text(c, &["chosen", "name"])),
                esc(text(c, &["chosen", "source"])),
                esc(text(c, &["other", "name"])),
                esc(text(c, &["other", "source"]))
            ));
        }
    }
    if text(l, &["recommendation", "confidence"]) == "low" {
        w.push("low confidence in the recommendation".into());
    }
    if text(l, &["evidence"]) == "traces" {
        w.push("seen only in spans: no handshakes or header bytes".into());
    }
    if at(doc, &["chains", "reliable"]).and_then(Value::as_bool) == Some(false)
        && l.get("chain").is_some_and(|c| !c.is_null())
    {
        w.push("call chains were judged unreliable for this run".into());
    }
    w
}

/// Table columns: header, sort type, and the cell (display, sort value) per link.
type Cell = (String, Option<f64>);

fn cells(doc: &Value, l: &Value) -> Vec<Cell> {
    let capture_s = num(doc, &["capture_seconds"]);
    let target = text(l, &["recommendation", "target"]);
    let warn = link_warnings(doc, l);
    let name = format!(
        "{}{}",
        esc(&link_name(l)),
        if warn.is_empty() {
            String::new()
        } else {
            format!(" <span class=\"w\" title=\"{}\">⚠</span>", warn.join("; "))
        }
    );
    let n = |p: &[&str]| num(l, p);
    vec![
        (fmt(n(&["rank"]), 0), n(&["rank"])),
        (name, None),
        (
            format!(
                "<span class=\"badge\" style=\"background:{}\">{}</span>",
                target_colour(target),
                esc(target)
            ),
            None,
        ),
        (esc(text(l, &["protocol"])), None),
        (fmt(n(&["requests"]), 0), n(&["requests"])),
        (fmt(rate(l, capture_s).0, 2), rate(l, capture_s).0),
        (fmt(n(&["latency_ms", "p95"]), 2), n(&["latency_ms", "p95"])),
        (
            pct(n(&["new_connection_share"])),
            n(&["new_connection_share"]),
        ),
        (pct(n(&["header_share"])), n(&["header_share"])),
        (
            fmt(n(&["recommendation", "gain", "time_saved_ms_per_s"]), 2),
            n(&["recommendation", "gain", "time_saved_ms_per_s"]),
        ),
        (esc(text(l, &["recommendation", "confidence"])), None),
        (fmt(n(&["score"]), 4), n(&["score"])),
    ]
}

const COLUMNS: [(&str, &str, &str); 12] = [
    ("rank", "num", "#"),
    ("link", "text", "link"),
    ("target", "text", "target"),
    ("protocol", "text", "protocol"),
    ("requests", "num", "requests"),
    ("rate", "num", "rate /s"),
    ("p95", "num", "p95 ms"),
    ("newconn", "num", "new conn."),
    ("headers", "num", "header share"),
    ("gain", "num", "gain ms/s"),
    ("confidence", "text", "confidence"),
    ("score", "num", "score"),
];

fn table(s: &mut String, doc: &Value, links: &[Value]) {
    s.push_str("<section id=\"ranking\"><h2>Ranked links</h2>\n<div class=\"controls\"><input id=\"filter\" type=\"search\" placeholder=\"filter: service or route\" aria-label=\"filter links\"> <select id=\"target-filter\" aria-label=\"recommended target\"><option value=\"\">every target</option>");
    for t in TARGETS {
        let _ = write!(s, "<option value=\"{t}\">{t}</option>");
    }
    s.push_str("</select> <span id=\"shown\"></span> <span class=\"note\">click a header to sort, a row to open its evidence</span></div>\n<table id=\"links\"><thead><tr>");
    for (key, kind, label) in COLUMNS {
        let _ = write!(
            s,
            "<th data-key=\"{key}\" data-type=\"{kind}\" tabindex=\"0\">{label}</th>"
        );
    }
    s.push_str("</tr></thead>\n");
    for (i, l) in links.iter().enumerate() {
        let routes: Vec<String> = list(l, &["routes"])
            .iter()
            .map(|r| text(r, &["route"]).to_owned())
            .collect();
        let search = format!(
            "{} {} {}",
            link_name(l),
            text(l, &["protocol"]),
            routes.join(" ")
        )
        .to_lowercase();
        let _ = write!(
            s,
            "<tbody class=\"link\" data-client=\"{}\" data-server=\"{}\" data-target=\"{}\" data-search=\"{}\"><tr class=\"row\" tabindex=\"0\" aria-expanded=\"false\">",
            esc(text(l, &["client"])),
            esc(text(l, &["server"])),
            esc(text(l, &["recommendation", "target"])),
            esc(&search)
        );
        for (display, sort) in cells(doc, l) {
            let v = sort.map_or(String::new(), |v| format!("{v}"));
            let _ = write!(s, "<td data-v=\"{v}\">{display}</td>");
        }
        let _ = write!(
            s,
            "</tr><tr class=\"evidence\" hidden><td colspan=\"{}\">",
            COLUMNS.len()
        );
        if i < EVIDENCE_LINKS {
            evidence(s, doc, l);
        } else {
            s.push_str("<p class=\"note\">Evidence shown for the top links only: this link's is in <code>links.json</code> and <code>report.md</code>.</p>");
        }
        s.push_str("</td></tr></tbody>\n");
    }
    s.push_str("</table></section>\n");
}

fn dl(s: &mut String, rows: &[(&str, String)]) {
    s.push_str("<dl>");
    for (k, v) in rows {
        let _ = write!(s, "<dt>{}</dt><dd>{v}</dd>", esc(k));
    }
    s.push_str("</dl>");
}

/// Every scalar leaf of an object as `a.b.c: value` rows (escaped); arrays of scalars
/// joined.
fn flat(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flat(&key, x, out);
            }
        }
        Value::Array(a) if a.iter().all(|x| !x.is_object() && !x.is_array()) => {
            let items: Vec<String> = a.iter().map(scalar).collect();
            out.push((
                prefix.to_owned(),
                if items.is_empty() {
                    "none".into()
                } else {
                    items.join(", ")
                },
            ));
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate().take(50) {
                flat(&format!("{prefix}[{i}]"), x, out);
            }
        }
        other => out.push((prefix.to_owned(), scalar(other))),
    }
}

fn kv_table(s: &mut String, v: &Value) {
    let mut rows = Vec::new();
    flat("", v, &mut rows);
    if rows.is_empty() {
        s.push_str("<p>not known</p>");
        return;
    }
    s.push_str("<table class=\"kv\">");
    for (k, val) in rows {
        let _ = write!(s, "<tr><th>{}</th><td>{}</td></tr>", esc(&k), esc(&val));
    }
    s.push_str("</table>");
}

fn counts(v: &Value, key: &str) -> String {
    let items: Vec<String> = list(v, &[key])
        .iter()
        .map(|c| {
            format!(
                "{} ({})",
                text(c, &["value"]),
                scalar(c.get("count").unwrap_or(&Value::Null))
            )
        })
        .collect();
    if items.is_empty() {
        "-".into()
    } else {
        esc(&items.join(", "))
    }
}

fn evidence(s: &mut String, doc: &Value, l: &Value) {
    let n = |p: &[&str]| num(l, p);
    s.push_str("<div class=\"ev\">");
    let warn = link_warnings(doc, l);
    if !warn.is_empty() {
        let _ = write!(
            s,
            "<p class=\"warn\">Weaker figures: {}.</p>",
            warn.join("; ")
        );
    }
    // Recommendation first: it is what the row is for.
    let rec = l.get("recommendation").unwrap_or(&Value::Null);
    let target = text(rec, &["target"]);
    let _ = write!(
        s,
        "<h4>Recommendation: <span class=\"badge\" style=\"background:{}\">{}</span> <small>rule {} &middot; confidence {} ({})</small></h4>",
        target_colour(target),
        esc(target),
        esc(text(rec, &["rule"])),
        esc(text(rec, &["confidence"])),
        fmt(num(rec, &["confidence_score"]), 2)
    );
    let mut facts = vec![(
        "gain",
        format!(
            "{} ms/s of waiting, {} B/s, {} cores",
            fmt(num(rec, &["gain", "time_saved_ms_per_s"]), 3),
            fmt(num(rec, &["gain", "bytes_saved_per_s"]), 0),
            fmt(num(rec, &["gain", "cpu_saved_cores"]), 5)
        ),
    )];
    if let Some(fix) = rec.get("cheaper_fix").and_then(Value::as_str) {
        facts.push((
            "cheaper fix first",
            format!(
                "{} ({} of the target's gain)",
                esc(fix),
                pct(num(rec, &["cheaper_fix_share"]))
            ),
        ));
    }
    if let Some(b) = rec.get("broker").filter(|b| !b.is_null()) {
        facts.push((
            "broker",
            format!("{}: {}", esc(text(b, &["kind"])), esc(text(b, &["reason"]))),
        ));
    }
    dl(s, &facts);
    for (title, key) in [("Why", "why"), ("Risks", "risks")] {
        let items = list(rec, &[key]);
        if !items.is_empty() {
            let _ = write!(s, "<p><strong>{title}</strong></p><ul>");
            for i in items {
                let _ = write!(s, "<li>{}</li>", esc(&scalar(i)));
            }
            s.push_str("</ul>");
        }
    }

    s.push_str("<div class=\"cols\"><div><h4>Measures</h4>");
    dl(
        s,
        &[
            ("protocol", esc(text(l, &["protocol"]))),
            ("evidence", esc(text(l, &["evidence"]))),
            ("requests", fmt(n(&["requests"]), 0)),
            (
                "requests/s mean / peak",
                format!(
                    "{} / {}",
                    fmt(n(&["requests_per_s", "mean"]), 2),
                    fmt(n(&["requests_per_s", "peak"]), 0)
                ),
            ),
            (
                "connections (TLS)",
                format!(
                    "{} ({})",
                    fmt(n(&["connections"]), 0),
                    fmt(n(&["tls_handshakes"]), 0)
                ),
            ),
            (
                "requests per connection",
                fmt(n(&["requests_per_connection"]), 2),
            ),
            ("new-connection share", pct(n(&["new_connection_share"]))),
            (
                "latency p50 / p95 / p99 ms",
                format!(
                    "{} / {} / {}",
                    fmt(n(&["latency_ms", "p50"]), 2),
                    fmt(n(&["latency_ms", "p95"]), 2),
                    fmt(n(&["latency_ms", "p99"]), 2)
                ),
            ),
            (
                "handshake RTT p50 / p95 ms",
                format!(
                    "{} / {}",
                    fmt(n(&["handshake_rtt_ms", "p50"]), 3),
                    fmt(n(&["handshake_rtt_ms", "p95"]), 3)
                ),
            ),
            (
                "TLS handshake p50 / p95 ms",
                format!(
                    "{} / {}",
                    fmt(n(&["tls_handshake_ms", "p50"]), 2),
                    fmt(n(&["tls_handshake_ms", "p95"]), 2)
                ),
            ),
            ("TLS versions", counts(l, "tls_versions")),
            ("TLS server names", counts(l, "tls_server_names")),
            ("HTTP versions", counts(l, "http_versions")),
            ("request content types", counts(l, "request_content_types")),
            (
                "header share / JSON share",
                format!(
                    "{} / {}",
                    pct(n(&["header_share"])),
                    pct(n(&["json_share"]))
                ),
            ),
            (
                "status 2xx / 4xx / 5xx / none",
                format!(
                    "{} / {} / {} / {}",
                    fmt(n(&["status", "2xx"]), 0),
                    fmt(n(&["status", "4xx"]), 0),
                    fmt(n(&["status", "5xx"]), 0),
                    fmt(n(&["status", "no_response"]), 0)
                ),
            ),
            ("resets", fmt(n(&["resets"]), 0)),
            ("retransmitted bytes", fmt(n(&["retransmitted_bytes"]), 0)),
        ],
    );
    s.push_str("<h5>Bytes per request</h5>");
    kv_table(s, l.get("bytes_per_request").unwrap_or(&Value::Null));
    s.push_str("<h5>Capture quality of this link</h5>");
    kv_table(s, l.get("quality").unwrap_or(&Value::Null));
    s.push_str("</div><div><h4>Savings as pooled gRPC, with their inputs</h4>");
    kv_table(s, l.get("savings").unwrap_or(&Value::Null));
    s.push_str("<h5>Score inputs</h5>");
    kv_table(s, l.get("score_inputs").unwrap_or(&Value::Null));
    s.push_str("</div><div><h4>Position in the call chains</h4>");
    kv_table(s, l.get("chain").unwrap_or(&Value::Null));
    s.push_str("</div></div>");

    let routes = list(l, &["routes"]);
    let _ = write!(s, "<h4>Routes ({})</h4>", routes.len());
    if !routes.is_empty() {
        s.push_str("<table class=\"routes\"><tr><th>method</th><th>route</th><th>requests</th><th>req/s</th><th>p50 ms</th><th>p95 ms</th><th>header share</th><th>4xx</th><th>5xx</th></tr>");
        for r in routes {
            let rn = |p: &[&str]| num(r, p);
            let _ = write!(
                s,
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(text(r, &["method"])),
                esc(text(r, &["route"])),
                fmt(rn(&["requests"]), 0),
                fmt(rn(&["requests_per_s", "mean"]), 2),
                fmt(rn(&["latency_ms", "p50"]), 2),
                fmt(rn(&["latency_ms", "p95"]), 2),
                pct(rn(&["header_share"])),
                fmt(rn(&["status", "4xx"]), 0),
                fmt(rn(&["status", "5xx"]), 0),
            );
        }
        s.push_str("</table>");
    }
    if let Some(more) = n(&["routes_not_listed"]).filter(|&m| m > 0.0) {
        let _ = write!(
            s,
            "<p class=\"note\">{} more routes not listed.</p>",
            fmt(Some(more), 0)
        );
    }
    s.push_str("</div>");
}

fn charts_section(s: &mut String, doc: &Value, all: &[Value]) {
    s.push_str("<section id=\"charts\"><h2>Charts</h2>\n");
    let links = &all[..all.len().min(CHART_LINKS)];
    if all.len() > links.len() {
        let _ = write!(
            s,
            "<p class=\"note\">The per-link charts show the top {} of {} links.</p>",
            links.len(),
            all.len()
        );
    }
    let label = |l: &Value| format!("#{} {}", fmt(num(l, &["rank"]), 0), link_name(l));
    // Time: handshakes and serialization of gRPC, and the what-if of making it async.
    let time_rows: Vec<Row> = links
        .iter()
        .map(|l| {
            let r = num(l, &["requests_per_s", "mean"]);
            let handshake = num(l, &["savings", "handshake_ms_per_request_saved"])
                .zip(r)
                .map(|(h, r)| h * r)
                // Without HTTP (TLS) all the link's latency saving is its handshakes.
                .or_else(|| num(l, &["savings", "latency_ms_per_s_saved"]));
            let ser = num(l, &["savings", "serialization_us_per_request", "now"])
                .zip(num(
                    l,
                    &["savings", "serialization_us_per_request", "protobuf"],
                ))
                .zip(r)
                .map(|((now, pb), r)| (now - pb) / 1000.0 * r);
            Row {
                label: label(l),
                values: vec![handshake, ser],
            }
        })
        .collect();
    s.push_str("<h3>Savings per link: waiting removed</h3><p class=\"note\">ms of waiting removed per second of capture as pooled gRPC: handshakes (TCP and TLS round trips and crypto) and serialization (JSON parse and write minus protobuf decode and encode).</p>");
    s.push_str(&charts::stacked(
        "savings per link, ms per second",
        "ms/s",
        &[
            Series {
                name: "handshakes",
                colour: "#2563eb",
            },
            Series {
                name: "serialization",
                colour: "#059669",
            },
        ],
        &time_rows,
    ));
    // Async is a what-if of another migration, often orders of magnitude larger: its own
    // chart, so it does not flatten the gRPC bars.
    let async_rows: Vec<Row> = links
        .iter()
        .map(|l| Row {
            label: label(l),
            values: vec![num(
                l,
                &[
                    "chain",
                    "what_if",
                    "if_async",
                    "root_latency_ms_per_s_saved",
                ],
            )],
        })
        .collect();
    s.push_str("<h3>Savings per link: if made asynchronous</h3><p class=\"note\">root latency removed per second of capture if the callers stopped waiting on the link (a what-if from the call chains, not part of gRPC's saving).</p>");
    s.push_str(&charts::stacked(
        "async what-if per link, ms per second",
        "ms/s",
        &[Series {
            name: "async (what-if)",
            colour: "#d97706",
        }],
        &async_rows,
    ));
    let byte_rows: Vec<Row> = links
        .iter()
        .map(|l| {
            let r = num(l, &["requests_per_s", "mean"]);
            let head = num(l, &["savings", "header_bytes_per_request", "now"])
                .zip(num(l, &["savings", "header_bytes_per_request", "grpc"]))
                .zip(r)
                .map(|((now, g), r)| (now - g) * r);
            let body = num(l, &["savings", "body_bytes_per_request", "now"])
                .zip(num(l, &["savings", "body_bytes_per_request", "protobuf"]))
                .zip(r)
                .map(|((now, p), r)| (now - p) * r);
            Row {
                label: label(l),
                values: vec![head, body],
            }
        })
        .collect();
    s.push_str("<h3>Savings per link: bytes</h3><p class=\"note\">bytes per second saved: headers (HTTP/1.1 now minus gRPC over HPACK, replayed) and bodies (JSON now minus protobuf, sampled).</p>");
    s.push_str(&charts::stacked(
        "bytes saved per link",
        "B/s",
        &[
            Series {
                name: "headers",
                colour: "#7c3aed",
            },
            Series {
                name: "bodies",
                colour: "#db2777",
            },
        ],
        &byte_rows,
    ));

    let lat_rows: Vec<Row> = links
        .iter()
        .map(|l| Row {
            label: label(l),
            values: ["p50", "p95", "p99"]
                .iter()
                .map(|q| num(l, &["latency_ms", q]))
                .collect(),
        })
        .collect();
    s.push_str("<h3>Latency per link</h3><p class=\"note\">request sent to response complete, ms; p50 dark, p95 and p99 lighter.</p>");
    s.push_str(&charts::quantiles(
        "latency per link",
        "ms",
        &[
            Series {
                name: "p50",
                colour: "#1e3a8a",
            },
            Series {
                name: "p95",
                colour: "#3b82f6",
            },
            Series {
                name: "p99",
                colour: "#bfdbfe",
            },
        ],
        &lat_rows,
    ));

    let hb_rows: Vec<Row> = links
        .iter()
        .map(|l| {
            let b = |k: &str| num(l, &["bytes_per_request", k]);
            let sum = |a: Option<f64>, c: Option<f64>| match (a, c) {
                (None, None) => None,
                (a, c) => Some(a.unwrap_or(0.0) + c.unwrap_or(0.0)),
            };
            Row {
                label: label(l),
                values: vec![
                    sum(b("request_headers"), b("response_headers")),
                    sum(b("request_bodies"), b("response_bodies")),
                ],
            }
        })
        .collect();
    s.push_str("<h3>Header vs body bytes per request</h3>");
    s.push_str(&charts::stacked(
        "header and body bytes per request",
        "bytes",
        &[
            Series {
                name: "headers (both ways)",
                colour: "#7c3aed",
            },
            Series {
                name: "bodies (both ways)",
                colour: "#f59e0b",
            },
        ],
        &hb_rows,
    ));

    let chains = doc.get("chains").filter(|c| !c.is_null());
    match chains {
        None => s.push_str("<h3>Call trees</h3><p>Call chains were not analysed in this run.</p>"),
        Some(c) => {
            s.push_str("<h3>Tree depth distribution</h3>");
            if at(c, &["reliable"]).and_then(Value::as_bool) == Some(false) {
                let _ = write!(
                    s,
                    "<p class=\"warn\">The call-chain inference was judged unreliable: {}. Depths and critical paths below are weak.</p>",
                    esc(text(c, &["unreliable_reason"]))
                );
            }
            // Without settings the trees came from the nodes' edges (`linkrank fleet`):
            // the nodes' ambiguous choices and id checks are not known.
            let known = at(c, &["settings"]).is_some_and(|v| !v.is_null());
            let _ = write!(
                s,
                "<p class=\"note\">{} root requests, {} calls; parent found by traceparent {}, by timing {}{}.</p>",
                fmt(num(c, &["roots"]), 0),
                fmt(num(c, &["calls"]), 0),
                fmt(num(c, &["inference", "by_traceparent"]), 0),
                fmt(num(c, &["inference", "by_timing"]), 0),
                if known {
                    format!(
                        ", ambiguous {}; timing agreed with ids on {}{}",
                        fmt(num(c, &["inference", "ambiguous"]), 0),
                        // An estimate when only stretches of the tied calls were checked.
                        if num(c, &["timing_vs_ids", "left_out"]).unwrap_or(0.0) > 0.0 {
                            "an estimated "
                        } else {
                            ""
                        },
                        pct(num(c, &["timing_vs_ids", "share"]))
                    )
                } else {
                    String::new()
                }
            );
            let rows: Vec<Row> = list(c, &["tree_depths"])
                .iter()
                .map(|d| Row {
                    label: format!("depth {}", fmt(num(d, &["depth"]), 0)),
                    values: vec![num(d, &["roots"])],
                })
                .collect();
            s.push_str(&charts::stacked(
                "tree depth distribution",
                "root requests",
                &[Series {
                    name: "root requests",
                    colour: "#0f766e",
                }],
                &rows,
            ));
            s.push_str("<h3>Critical paths of the top root routes</h3><p class=\"note\">Each hop's mean duration; dark: its own time, light: waiting on its callees. Hops are drawn from their parent's start, siblings back to back (the capture gives durations, not offsets).</p>");
            for r in list(c, &["top_root_routes"]).iter().take(5) {
                let _ = write!(
                    s,
                    "<h4>{} {} {} -> {} <small>{} roots, mean {} ms, depth up to {}</small></h4>",
                    esc(text(r, &["method"])),
                    esc(text(r, &["route"])),
                    esc(text(r, &["client"])),
                    esc(text(r, &["server"])),
                    fmt(num(r, &["roots"]), 0),
                    fmt(num(r, &["mean_latency_ms"]), 2),
                    fmt(num(r, &["max_depth"]), 0)
                );
                s.push_str(&charts::waterfall(r));
            }
        }
    }
    s.push_str("</section>\n");
}

fn plan_link(p: &Value) -> String {
    let mut t = format!(
        "{} -> {}: <span class=\"badge\" style=\"background:{}\">{}</span>",
        esc(text(p, &["client"])),
        esc(text(p, &["server"])),
        target_colour(text(p, &["target"])),
        esc(text(p, &["target"]))
    );
    if let Some(f) = p.get("cheaper_fix").and_then(Value::as_str) {
        let _ = write!(t, ", first {}", esc(f));
    }
    if p.get("reuses_earlier_wave").and_then(Value::as_bool) == Some(true) {
        t.push_str(" (reuses an earlier wave)");
    }
    t
}

/// Links to the kit files of a planned link (empty without a kit).
fn kit_files(doc: &Value, l: &Value) -> String {
    let files: Vec<String> = list(doc, &["kit", "links"])
        .iter()
        .filter(|k| text(k, &["client"]) == text(l, &["client"]))
        .filter(|k| text(k, &["server"]) == text(l, &["server"]))
        .flat_map(|k| list(k, &["files"]))
        .map(|f| format!("<a href=\"{0}\">{0}</a>", esc(&scalar(f))))
        .collect();
    if files.is_empty() {
        String::new()
    } else {
        format!(" (kit: {})", files.join(", "))
    }
}

fn plan(s: &mut String, doc: &Value) {
    s.push_str("<section id=\"plan\"><h2>Rollout plan</h2>\n");
    if let Some(readme) = doc
        .get("kit")
        .and_then(|k| k.get("readme"))
        .and_then(Value::as_str)
    {
        let _ = write!(
            s,
            "<p>Migration kit (the .proto, AsyncAPI and mesh files each step needs): \
             <a href=\"{0}\">{0}</a></p>",
            esc(readme)
        );
    }
    let Some(p) = doc.get("plan").filter(|p| !p.is_null()) else {
        s.push_str("<p>No plan was computed.</p></section>\n");
        return;
    };
    let quick = list(p, &["quick_wins"]);
    s.push_str("<h3>Quick wins</h3>");
    if quick.is_empty() {
        s.push_str("<p>None.</p>");
    } else {
        s.push_str("<ol>");
        for q in quick {
            let _ = write!(s, "<li>{}</li>", plan_link(q));
        }
        s.push_str("</ol>");
    }
    for w in list(p, &["waves"]) {
        let _ = write!(
            s,
            "<div class=\"wave\"><h3>Wave {} <small>gain {} ms/s waiting, {} B/s, {} cores</small></h3><ul>",
            fmt(num(w, &["number"]), 0),
            fmt(num(w, &["gain", "time_saved_ms_per_s"]), 2),
            fmt(num(w, &["gain", "bytes_saved_per_s"]), 0),
            fmt(num(w, &["gain", "cpu_saved_cores"]), 4)
        );
        for l in list(w, &["links"]) {
            let _ = write!(s, "<li>{}{}</li>", plan_link(l), kit_files(doc, l));
        }
        s.push_str("</ul>");
        for (title, key) in [("Steps", "steps"), ("Risks", "risks"), ("Verify", "verify")] {
            let items = list(w, &[key]);
            if items.is_empty() {
                continue;
            }
            let _ = write!(s, "<h4>{title}</h4><ul>");
            for i in items {
                let _ = write!(s, "<li>{}</li>", esc(&scalar(i)));
            }
            s.push_str("</ul>");
        }
        s.push_str("</div>");
    }
    let kept = list(p, &["kept"]);
    if !kept.is_empty() {
        let names: Vec<String> = kept.iter().map(|k| esc(&scalar(k))).collect();
        let _ = write!(
            s,
            "<p><strong>Kept on their protocol:</strong> {}.</p>",
            names.join(", ")
        );
    }
    s.push_str("</section>\n");
}

fn quality(s: &mut String, doc: &Value) {
    s.push_str("<section id=\"quality\"><h2>Capture quality</h2>\n");
    let weak = weakening(doc);
    if weak.is_empty() {
        s.push_str("<p class=\"ok\">No loss counter is above zero: no figure is weakened by the capture.</p>");
    } else {
        s.push_str("<ul class=\"warn\">");
        for w in weak {
            let _ = write!(s, "<li>{w}</li>");
        }
        s.push_str("</ul>");
    }
    if let Some(n) = num(doc, &["payloadless_connections_unlinked"]).filter(|&n| n > 0.0) {
        let _ = write!(
            s,
            "<p>{} connections carried no payload and are not counted in any link.</p>",
            fmt(Some(n), 0)
        );
    }
    s.push_str("<details><summary>Every counter</summary>");
    kv_table(s, doc.get("capture_quality").unwrap_or(&Value::Null));
    s.push_str("</details></section>\n");
}

fn identity(s: &mut String, doc: &Value) {
    s.push_str("<section id=\"identity\"><h2>Identity</h2>\n");
    let files: Vec<String> = list(doc, &["identity", "files"])
        .iter()
        .map(|f| format!("<code>{}</code>", esc(&scalar(f))))
        .collect();
    let _ = write!(
        s,
        "<p>Names from: {}. Endpoints named per source: {}.</p>",
        if files.is_empty() {
            "the traffic only".to_owned()
        } else {
            files.join(", ")
        },
        {
            let mut src = Vec::new();
            if let Some(m) = at(doc, &["identity", "sources"]).and_then(Value::as_object) {
                for (k, v) in m {
                    src.push(format!("{} {}", esc(k), scalar(v)));
                }
            }
            if src.is_empty() {
                "-".into()
            } else {
                src.join(", ")
            }
        }
    );
    let conflicts = list(doc, &["identity", "conflicts"]);
    if conflicts.is_empty() {
        s.push_str("<p class=\"ok\">No identity conflict.</p>");
    } else {
        s.push_str("<p class=\"warn\">Sources disagree on these endpoints; the links they touch are marked ⚠ in the table and their services red in the graph.</p><table class=\"routes\"><tr><th>endpoint</th><th>role</th><th>chosen</th><th>other</th></tr>");
        for c in conflicts {
            let _ = write!(
                s,
                "<tr><td><code>{}</code></td><td>{}</td><td>{} ({})</td><td>{} ({})</td></tr>",
                esc(text(c, &["endpoint"])),
                esc(text(c, &["role"])),
                esc(text(c, &["chosen", "name"])),
                esc(text(c, &["chosen", "source"])),
                esc(text(c, &["other", "name"])),
                esc(text(c, &["other", "source"]))
            );
        }
        s.push_str("</table>");
    }
    s.push_str("</section>\n");
}

fn traces(s: &mut String, doc: &Value) {
    let Some(t) = doc.get("traces").filter(|t| !t.is_null()) else {
        return;
    };
    s.push_str("<section id=\"traces\"><h2>Traces</h2><details open><summary>Trace files and the join with the captures</summary>");
    kv_table(s, t);
    s.push_str("</details></section>\n");
}
