//! The service graph: services as boxes, links as edges coloured by the recommended
//! target and as wide as their request rate. `layout-rs` places the boxes and routes the
//! edges (layered, dot-like); a small layered fallback takes over for very large graphs
//! (its layout time grows fast) or if the crate panics on a shape it does not expect.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use layout::core::base::Orientation;
use layout::core::format::{ClipHandle, RenderBackend};
use layout::core::geometry::Point;
use layout::core::style::StyleAttr;
use layout::std_shapes::render::get_shape_size;
use layout::std_shapes::shapes::{Arrow, Element, ShapeKind};
use layout::topo::layout::VisualGraph;
use serde_json::Value;

use super::esc;
use super::value::{fmt, list, num, rate, target_colour, text, TARGETS};

/// Beyond these sizes the fallback layout is used: layout-rs's time grows about with the
/// cube of the graph (random graphs, dev build: 40 services / 80 pairs 0.12 s, 60 / 150
/// 0.8 s, 80 / 200 1.9 s, 150 / 600 470 s; 17 services calling every later one, 136
/// pairs: 1.5 s), and a report must not stall on a large mesh.
const MAX_LAYOUT_NODES: usize = 60;
const MAX_LAYOUT_EDGES: usize = 150;
/// Labels longer than this are cut in the box (the full name stays in the tooltip).
const MAX_LABEL_CHARS: usize = 32;
const MARGIN: f64 = 24.0;

pub struct Node {
    pub name: String,
    /// Top-left corner and size.
    x: f64,
    y: f64,
    w: f64,
    h: f64,
    /// An identity conflict concerns one of its endpoints.
    conflict: bool,
}

pub struct Edge {
    pub client: String,
    pub server: String,
    pub target: String,
    rank: String,
    stroke: f64,
    /// SVG path data.
    d: String,
    tooltip: String,
}

pub struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    width: f64,
    height: f64,
}

/// Points of one edge before the final shift: a cubic path as layout-rs gives it.
#[derive(Clone)]
struct Curve(Path);

pub fn build(doc: &Value) -> Graph {
    let links = list(doc, &["links"]);
    let capture_s = num(doc, &["capture_seconds"]);
    let conflicts = conflict_endpoints(doc);

    // Services in order of first appearance (the ranking's order).
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let mut names: Vec<String> = Vec::new();
    for l in links {
        for side in ["client", "server"] {
            let n = text(l, &[side]).to_owned();
            if !index.contains_key(&n) {
                index.insert(n.clone(), names.len());
                names.push(n);
            }
        }
    }
    let mut conflict = vec![false; names.len()];
    for l in links {
        let client_hit = list(l, &["client_addresses"])
            .iter()
            .any(|a| conflicts.contains(&("client", a.as_str().unwrap_or(""))));
        let server_hit = list(l, &["server_endpoints"])
            .iter()
            .any(|a| conflicts.contains(&("server", a.as_str().unwrap_or(""))));
        if let (true, Some(&i)) = (client_hit, index.get(text(l, &["client"]))) {
            conflict[i] = true;
        }
        if let (true, Some(&i)) = (server_hit, index.get(text(l, &["server"]))) {
            conflict[i] = true;
        }
    }

    // Distinct ordered pairs are laid out once; parallel links share the route.
    let mut pairs: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    let mut pair_list: Vec<(usize, usize)> = Vec::new();
    let mut link_pair = Vec::with_capacity(links.len());
    for l in links {
        let a = index.get(text(l, &["client"])).copied().unwrap_or(0);
        let b = index.get(text(l, &["server"])).copied().unwrap_or(0);
        let p = *pairs.entry((a, b)).or_insert_with(|| {
            pair_list.push((a, b));
            pair_list.len() - 1
        });
        link_pair.push(p);
    }

    // (layout-rs also panics on an empty graph.)
    let laid = if !names.is_empty()
        && names.len() <= MAX_LAYOUT_NODES
        && pair_list.len() <= MAX_LAYOUT_EDGES
    {
        // layout-rs asserts on inputs it does not expect; a report must still come out.
        std::panic::catch_unwind(|| layout_rs(&names, &pair_list)).ok()
    } else {
        None
    };
    let (boxes, curves) = laid.unwrap_or_else(|| fallback(&names, &pair_list));

    // Shift everything to a margin from the origin.
    let mut min = Point::new(f64::INFINITY, f64::INFINITY);
    let mut max = Point::new(f64::NEG_INFINITY, f64::NEG_INFINITY);
    let mut grow = |p: Point| {
        min = Point::new(min.x.min(p.x), min.y.min(p.y));
        max = Point::new(max.x.max(p.x), max.y.max(p.y));
    };
    for b in &boxes {
        grow(b.0);
        grow(b.0.add(b.1));
    }
    for c in curves.iter().flatten() {
        for (p, q) in &c.0 {
            grow(*p);
            grow(*q);
        }
    }
    if !min.x.is_finite() {
        min = Point::zero();
        max = Point::zero();
    }
    let shift = Point::new(MARGIN - min.x, MARGIN - min.y);

    let nodes = names
        .into_iter()
        .zip(boxes)
        .zip(conflict)
        .map(|((name, (tl, size)), conflict)| Node {
            name,
            x: tl.x + shift.x,
            y: tl.y + shift.y,
            w: size.x,
            h: size.y,
            conflict,
        })
        .collect::<Vec<_>>();

    let max_rate = links
        .iter()
        .filter_map(|l| rate(l, capture_s).0)
        .fold(0.0_f64, f64::max);
    let mut edges = Vec::with_capacity(links.len());
    for (l, &p) in links.iter().zip(&link_pair) {
        let (a, b) = pair_list.get(p).copied().unwrap_or((0, 0));
        let (r, unit) = rate(l, capture_s);
        let stroke = match r {
            Some(r) if max_rate > 0.0 => 1.5 + 6.5 * (r / max_rate).sqrt(),
            _ => 1.5,
        };
        let d = match curves.get(p).and_then(Option::as_ref) {
            Some(c) => path_data(c, shift),
            None if a == b => self_loop(nodes.get(a)),
            // layout-rs drew no route for the pair (not expected): a straight line.
            None => straight(nodes.get(a), nodes.get(b)),
        };
        edges.push(Edge {
            client: text(l, &["client"]).to_owned(),
            server: text(l, &["server"]).to_owned(),
            target: text(l, &["recommendation", "target"]).to_owned(),
            rank: super::value::scalar(l.get("rank").unwrap_or(&Value::Null)),
            stroke,
            d,
            tooltip: tooltip(l, r, unit),
        });
    }
    let width = (max.x - min.x + 2.0 * MARGIN).max(100.0);
    let height = (max.y - min.y + 2.0 * MARGIN).max(60.0);
    Graph {
        nodes,
        edges,
        width,
        height,
    }
}

/// `(role, endpoint)` of every identity conflict (client endpoints are addresses).
fn conflict_endpoints(doc: &Value) -> Vec<(&'static str, &str)> {
    list(doc, &["identity", "conflicts"])
        .iter()
        .map(|c| {
            let role = if text(c, &["role"]) == "client" {
                "client"
            } else {
                "server"
            };
            (role, text(c, &["endpoint"]))
        })
        .collect()
}

fn tooltip(l: &Value, r: Option<f64>, unit: &str) -> String {
    let mut t = format!(
        "#{} {} -> {}\nrecommended: {} ({}, confidence {})\nrate: {} {unit}\nlatency p50 / p95: {} / {} ms\ngain: {} ms/s waiting, {} B/s, {} cores\nscore: {}",
        super::value::scalar(l.get("rank").unwrap_or(&Value::Null)),
        text(l, &["client"]),
        text(l, &["server"]),
        text(l, &["recommendation", "target"]),
        text(l, &["recommendation", "rule"]),
        text(l, &["recommendation", "confidence"]),
        fmt(r, 2),
        fmt(num(l, &["latency_ms", "p50"]), 2),
        fmt(num(l, &["latency_ms", "p95"]), 2),
        fmt(num(l, &["recommendation", "gain", "time_saved_ms_per_s"]), 3),
        fmt(num(l, &["recommendation", "gain", "bytes_saved_per_s"]), 0),
        fmt(num(l, &["recommendation", "gain", "cpu_saved_cores"]), 4),
        fmt(num(l, &["score"]), 4),
    );
    if let Some(fix) = l
        .pointer("/recommendation/cheaper_fix")
        .and_then(Value::as_str)
    {
        let _ = write!(t, "\ncheaper fix first: {fix}");
    }
    t
}

/// The draw calls layout-rs makes: only the edges are kept (the boxes are read from the
/// graph's positions); `properties` carries the pair index.
#[derive(Default)]
struct Recorder {
    arrows: Vec<(Option<String>, Path)>,
}

/// A cubic path as layout-rs gives it: (point, control) pairs.
type Path = Vec<(Point, Point)>;

impl RenderBackend for Recorder {
    fn draw_rect(
        &mut self,
        _: Point,
        _: Point,
        _: &StyleAttr,
        _: Option<String>,
        _: Option<ClipHandle>,
    ) {
    }
    fn draw_line(&mut self, _: Point, _: Point, _: &StyleAttr, _: Option<String>) {}
    fn draw_circle(&mut self, _: Point, _: Point, _: &StyleAttr, _: Option<String>) {}
    fn draw_text(&mut self, _: Point, _: &str, _: &StyleAttr) {}
    fn draw_arrow(
        &mut self,
        path: &[(Point, Point)],
        _: bool,
        _: (bool, bool),
        _: &StyleAttr,
        properties: Option<String>,
        _: &str,
    ) {
        self.arrows.push((properties, path.to_vec()));
    }
    fn create_clip(&mut self, _: Point, _: Point, _: usize) -> ClipHandle {
        0
    }
}

type Layout = (Vec<(Point, Point)>, Vec<Option<Curve>>);

fn label(name: &str) -> String {
    if name.chars().count() > MAX_LABEL_CHARS {
        let cut: String = name.chars().take(MAX_LABEL_CHARS - 1).collect();
        cut + "…"
    } else {
        name.to_owned()
    }
}

/// Boxes (top-left, size) per service and a curve per pair (`None` for a self-loop,
/// drawn by hand).
fn layout_rs(names: &[String], pairs: &[(usize, usize)]) -> Layout {
    let dir = Orientation::LeftToRight;
    let mut vg = VisualGraph::new(dir);
    let look = StyleAttr::simple();
    let handles: Vec<_> = names
        .iter()
        .map(|n| {
            let shape = ShapeKind::new_box(&label(n));
            let size = get_shape_size(dir, &shape, look.font_size, false);
            vg.add_node(Element::create(shape, look.clone(), dir, size))
        })
        .collect();
    for (i, &(a, b)) in pairs.iter().enumerate() {
        if a == b {
            continue;
        }
        if let (Some(&ha), Some(&hb)) = (handles.get(a), handles.get(b)) {
            vg.add_edge(Arrow::simple_with_properties("", i.to_string()), ha, hb);
        }
    }
    let mut rec = Recorder::default();
    vg.do_it(false, false, false, &mut rec);
    let boxes = handles
        .iter()
        .map(|&h| {
            let (tl, br) = vg.pos(h).bbox(false);
            (tl, br.sub(tl))
        })
        .collect();
    let mut curves = vec![None; pairs.len()];
    for (props, path) in rec.arrows {
        let i = props.and_then(|p| p.parse::<usize>().ok());
        if let (Some(slot), true) = (i.and_then(|i| curves.get_mut(i)), path.len() >= 2) {
            *slot = Some(Curve(path));
        }
    }
    (boxes, curves)
}

/// Layered layout by hand (why: used only where layout-rs is too slow or fails): a column
/// per call depth from the services nobody calls, straight edges.
fn fallback(names: &[String], pairs: &[(usize, usize)]) -> Layout {
    let n = names.len();
    let mut depth = vec![usize::MAX; n];
    let mut called = vec![false; n];
    for &(a, b) in pairs {
        if a != b {
            if let Some(c) = called.get_mut(b) {
                *c = true;
            }
        }
    }
    let mut queue: std::collections::VecDeque<usize> = (0..n).filter(|&i| !called[i]).collect();
    for &i in &queue {
        depth[i] = 0;
    }
    while let Some(i) = queue.pop_front() {
        for &(a, b) in pairs {
            if a == i && b < n && depth[b] == usize::MAX {
                depth[b] = depth[i] + 1;
                queue.push_back(b);
            }
        }
    }
    let mut rows: BTreeMap<usize, usize> = BTreeMap::new();
    let boxes: Vec<(Point, Point)> = (0..n)
        .map(|i| {
            let col = if depth[i] == usize::MAX { 0 } else { depth[i] };
            let row = rows.entry(col).or_insert(0);
            let tl = Point::new(col as f64 * 240.0, *row as f64 * 64.0);
            *row += 1;
            let w = 24.0 + 8.0 * label(&names[i]).chars().count() as f64;
            (tl, Point::new(w, 36.0))
        })
        .collect();
    let curves = pairs
        .iter()
        .map(|&(a, b)| {
            if a == b {
                return None;
            }
            let (pa, sa) = boxes.get(a)?;
            let (pb, sb) = boxes.get(b)?;
            let from = Point::new(pa.x + sa.x, pa.y + sa.y / 2.0);
            let to = Point::new(pb.x, pb.y + sb.y / 2.0);
            Some(Curve(vec![(from, from), (to, to)]))
        })
        .collect();
    (boxes, curves)
}

/// SVG path data of a layout-rs curve: `M p C c, c, p` then `S c, p` per further point
/// (the format layout-rs's own SVG writer uses).
fn path_data(c: &Curve, s: Point) -> String {
    let p = |q: Point| format!("{:.1} {:.1}", q.x + s.x, q.y + s.y);
    let mut d = String::new();
    if let [first, second, rest @ ..] = c.0.as_slice() {
        let _ = write!(
            d,
            "M {} C {}, {}, {}",
            p(first.0),
            p(first.1),
            p(second.0),
            p(second.1)
        );
        for (ctl, end) in rest {
            let _ = write!(d, " S {}, {}", p(*ctl), p(*end));
        }
    }
    d
}

/// From the right side of one box to the left side of another.
fn straight(a: Option<&Node>, b: Option<&Node>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => format!(
            "M {:.1} {:.1} L {:.1} {:.1}",
            a.x + a.w,
            a.y + a.h / 2.0,
            b.x,
            b.y + b.h / 2.0
        ),
        _ => String::new(),
    }
}

/// A loop above a box, for a service calling itself.
fn self_loop(n: Option<&Node>) -> String {
    match n {
        Some(n) => {
            let (x, y) = (n.x + n.w * 0.35, n.y);
            let x2 = n.x + n.w * 0.65;
            format!(
                "M {x:.1} {y:.1} C {x:.1} {:.1}, {x2:.1} {:.1}, {x2:.1} {y:.1}",
                y - 40.0,
                y - 40.0
            )
        }
        None => String::new(),
    }
}

impl Graph {
    /// The graph's drawing (no outer `<svg>`): markers, edges, then boxes on top.
    fn body(&self) -> String {
        let mut s = String::new();
        s.push_str("<defs>");
        for t in TARGETS.iter().chain(std::iter::once(&"other")) {
            let _ = write!(
                s,
                "<marker id=\"arrow-{t}\" viewBox=\"0 0 10 8\" refX=\"10\" refY=\"4\" markerWidth=\"10\" markerHeight=\"8\" markerUnits=\"userSpaceOnUse\" orient=\"auto\"><path d=\"M0 0 L10 4 L0 8 z\" fill=\"{}\"/></marker>",
                target_colour(t)
            );
        }
        s.push_str("</defs>\n<g class=\"edges\">\n");
        for e in &self.edges {
            let marker = if TARGETS.contains(&e.target.as_str()) {
                e.target.as_str()
            } else {
                "other"
            };
            let _ = writeln!(
                s,
                "<g class=\"edge\" data-client=\"{}\" data-server=\"{}\" data-target=\"{}\" data-rank=\"{}\"><title>{}</title><path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{:.1}\" stroke-opacity=\"0.85\" marker-end=\"url(#arrow-{marker})\"/></g>",
                esc(&e.client),
                esc(&e.server),
                esc(&e.target),
                esc(&e.rank),
                esc(&e.tooltip),
                e.d,
                target_colour(&e.target),
                e.stroke,
            );
        }
        s.push_str("</g>\n<g class=\"nodes\">\n");
        for n in &self.nodes {
            let (stroke, note) = if n.conflict {
                ("#dc2626", "\nidentity conflict: see Identity")
            } else {
                ("#374151", "")
            };
            let _ = writeln!(
                s,
                "<g class=\"node\" data-service=\"{}\"><title>{}{note}</title><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"6\" fill=\"#f9fafb\" stroke=\"{stroke}\" stroke-width=\"1.5\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" dominant-baseline=\"central\" font-family=\"sans-serif\" font-size=\"13\" fill=\"#111827\">{}{}</text></g>",
                esc(&n.name),
                esc(&n.name),
                n.x,
                n.y,
                n.w,
                n.h,
                n.x + n.w / 2.0,
                n.y + n.h / 2.0,
                esc(&label(&n.name)),
                if n.conflict { " ⚠" } else { "" },
            );
        }
        s.push_str("</g>\n");
        s
    }

    /// The graph as inline SVG for the page.
    pub fn inline_svg(&self) -> String {
        format!(
            "<svg class=\"graph\" viewBox=\"0 0 {w:.0} {h:.0}\" width=\"{w:.0}\" height=\"{h:.0}\" role=\"img\" aria-label=\"service graph\">\n{}</svg>",
            self.body(),
            w = self.width,
            h = self.height
        )
    }

    /// `graph.svg`: a standalone SVG document.
    pub fn standalone_svg(&self) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w:.0} {h:.0}\" width=\"{w:.0}\" height=\"{h:.0}\">\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n{}</svg>\n",
            self.body(),
            w = self.width,
            h = self.height
        )
    }

    /// `graph.dot`: the same services and one edge per link, for Graphviz.
    pub fn dot(&self) -> String {
        let mut s = String::from(
            "digraph linkrank {\n  rankdir=LR;\n  node [shape=box, style=rounded, fontname=\"sans-serif\"];\n",
        );
        for n in &self.nodes {
            let colour = if n.conflict { "#dc2626" } else { "#374151" };
            let _ = writeln!(s, "  {} [color=\"{colour}\"];", dot_quote(&n.name));
        }
        for e in &self.edges {
            let _ = writeln!(
                s,
                "  {} -> {} [color=\"{}\", penwidth={:.1}, tooltip={}];",
                dot_quote(&e.client),
                dot_quote(&e.server),
                target_colour(&e.target),
                e.stroke,
                dot_quote(&e.tooltip),
            );
        }
        s.push_str("}\n");
        s
    }
}

/// A DOT double-quoted string: backslash and quote escaped, newlines as `\n`.
pub fn dot_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}
