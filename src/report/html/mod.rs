//! `report.html`: one self-contained page (styles, script and charts inline, no network
//! fetch) with the service graph, the ranked links and their evidence, charts, capture
//! quality, identity conflicts and the rollout plan; plus `graph.svg` and `graph.dot`.
//!
//! The page is rendered from the `links.json` document, not from the internal types: it
//! can show only what that contract already holds (privacy), and it stays in step with
//! the stable schema while the internals move. Layout of the graph: `layout-rs`
//! (pure Rust, dot-like), so the default build needs no Graphviz.

mod charts;
mod graph;
mod page;
mod value;

use std::path::Path;

use anyhow::Context;
use serde_json::Value;

use super::LinkReport;

/// The three files of the HTML report.
pub struct Rendered {
    /// `report.html`, self-contained.
    pub html: String,
    /// `graph.svg`: the service graph alone, a standalone SVG document.
    pub svg: String,
    /// `graph.dot`: the same graph for Graphviz.
    pub dot: String,
}

/// Renders the page from a `links.json` document (`links_json::document`).
pub fn render(doc: &Value) -> Rendered {
    let g = graph::build(doc);
    Rendered {
        html: page::render(doc, &g),
        svg: g.standalone_svg(),
        dot: g.dot(),
    }
}

/// Writes `report.html`, `graph.svg` and `graph.dot` into `dir`.
pub fn write(dir: &Path, report: &LinkReport<'_>) -> anyhow::Result<()> {
    let doc = super::links_json::document(report)?;
    let r = render(&doc);
    for (name, text) in [
        ("report.html", &r.html),
        ("graph.svg", &r.svg),
        ("graph.dot", &r.dot),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("{}: cannot write", path.display()))?;
    }
    Ok(())
}

/// HTML (and SVG) escaping of text and attribute values: every string on the page comes
/// from the traffic (service names, routes), so each one goes through here.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
