//! Inline SVG charts, generated here rather than by a JavaScript charting library (why: a
//! few bar charts do not justify vendoring one, and the SVG is readable without script).
//! Every bar carries a `<title>` with its exact value.

use std::fmt::Write as _;

use serde_json::Value;

use super::esc;
use super::value::{fmt, list, num, text};

const WIDTH: f64 = 760.0;
const LABEL_W: f64 = 230.0;
const ROW_H: f64 = 22.0;
const TOP: f64 = 34.0;

/// A series of a chart: its name and colour.
pub struct Series<'a> {
    pub name: &'a str,
    pub colour: &'a str,
}

/// One row: its label and a value per series (unknown values draw nothing).
pub struct Row {
    pub label: String,
    pub values: Vec<Option<f64>>,
}

fn legend(s: &mut String, series: &[Series<'_>]) {
    let mut x = LABEL_W;
    for se in series {
        let _ = write!(
            s,
            "<rect x=\"{x:.0}\" y=\"6\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"{:.0}\" y=\"16\" class=\"lg\">{}</text>",
            se.colour,
            x + 16.0,
            esc(se.name)
        );
        x += 28.0 + 7.0 * se.name.chars().count() as f64;
    }
}

fn axis(s: &mut String, max: f64, height: f64, unit: &str) {
    let plot_w = WIDTH - LABEL_W - 20.0;
    for i in 0..=4 {
        let v = max * i as f64 / 4.0;
        let x = LABEL_W + plot_w * i as f64 / 4.0;
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{:.1}\" class=\"grid\"/><text x=\"{x:.1}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"middle\">{}</text>",
            height - 18.0,
            height - 6.0,
            short(v)
        );
    }
    let _ = write!(
        s,
        "<text x=\"{:.0}\" y=\"16\" class=\"tick\" text-anchor=\"end\">{}</text>",
        WIDTH - 4.0,
        esc(unit)
    );
}

/// `1.2k`, `35`, `0.42`: tick labels.
fn short(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v >= 1000.0 {
        format!("{:.1}k", v / 1000.0)
    } else if v >= 10.0 {
        format!("{v:.0}")
    } else if v > 0.0 {
        format!("{v:.2}")
    } else {
        "0".into()
    }
}

/// Opens a chart of `rows` bars running from 0 to `max` (in `unit`), with its legend
/// and axis; returns the pixels per unit.
fn open(
    s: &mut String,
    rows: usize,
    aria: &str,
    series: &[Series<'_>],
    max: f64,
    unit: &str,
) -> f64 {
    let height = TOP + rows as f64 * ROW_H + 26.0;
    let _ = write!(
        s,
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {height:.0}\" width=\"{WIDTH}\" height=\"{height:.0}\" role=\"img\" aria-label=\"{}\">",
        esc(aria)
    );
    legend(s, series);
    axis(s, max, height, unit);
    if max > 0.0 {
        (WIDTH - LABEL_W - 20.0) / max
    } else {
        0.0
    }
}

/// Labels longer than this are cut (the full one is the label's title): the label column
/// is `LABEL_W` wide at about 6 px a character.
const MAX_LABEL_CHARS: usize = 36;

fn row_label(s: &mut String, i: usize, label: &str) {
    let shown = if label.chars().count() > MAX_LABEL_CHARS {
        let cut: String = label.chars().take(MAX_LABEL_CHARS - 1).collect();
        cut + "…"
    } else {
        label.to_owned()
    };
    let _ = write!(
        s,
        "<text x=\"{:.0}\" y=\"{:.1}\" class=\"rl\" text-anchor=\"end\"><title>{}</title>{}</text>",
        LABEL_W - 8.0,
        TOP + i as f64 * ROW_H + ROW_H / 2.0 + 4.0,
        esc(label),
        esc(&shown)
    );
}

/// Horizontal stacked bars. Negative values (a cost, not a saving) are drawn as zero and
/// said in the bar's title.
pub fn stacked(aria: &str, unit: &str, series: &[Series<'_>], rows: &[Row]) -> String {
    let mut s = String::new();
    let total = |r: &Row| -> f64 { r.values.iter().flatten().map(|v| v.max(0.0)).sum() };
    let max = rows.iter().map(total).fold(0.0_f64, f64::max);
    let scale = open(&mut s, rows.len(), aria, series, max, unit);
    for (i, r) in rows.iter().enumerate() {
        row_label(&mut s, i, &r.label);
        let y = TOP + i as f64 * ROW_H + 3.0;
        let mut x = LABEL_W;
        for (se, v) in series.iter().zip(&r.values) {
            let Some(v) = v else { continue };
            let w = v.max(0.0) * scale;
            let neg = if *v < 0.0 {
                " (a cost: drawn as 0)"
            } else {
                ""
            };
            let _ = write!(
                s,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.0}\" fill=\"{}\"><title>{}: {} {} {}{neg}</title></rect>",
                ROW_H - 6.0,
                se.colour,
                esc(&r.label),
                esc(se.name),
                fmt(Some(*v), 3),
                esc(unit)
            );
            x += w;
        }
        if r.values.iter().all(Option::is_none) {
            let _ = write!(
                s,
                "<text x=\"{:.0}\" y=\"{:.1}\" class=\"tick\">not measured</text>",
                LABEL_W + 4.0,
                y + 12.0
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// Overlaid bars for ordered quantiles (p50 <= p95 <= p99): the widest drawn first.
pub fn quantiles(aria: &str, unit: &str, series: &[Series<'_>], rows: &[Row]) -> String {
    let mut s = String::new();
    let max = rows
        .iter()
        .flat_map(|r| r.values.iter().flatten())
        .fold(0.0_f64, |a, &b| a.max(b));
    let scale = open(&mut s, rows.len(), aria, series, max, unit);
    for (i, r) in rows.iter().enumerate() {
        row_label(&mut s, i, &r.label);
        let y = TOP + i as f64 * ROW_H + 3.0;
        for (se, v) in series.iter().zip(&r.values).rev() {
            let Some(v) = v else { continue };
            let _ = write!(
                s,
                "<rect x=\"{LABEL_W}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.0}\" fill=\"{}\"><title>{}: {} {} {}</title></rect>",
                v.max(0.0) * scale,
                ROW_H - 6.0,
                se.colour,
                esc(&r.label),
                esc(se.name),
                fmt(Some(*v), 3),
                esc(unit)
            );
        }
        if r.values.iter().all(Option::is_none) {
            let _ = write!(
                s,
                "<text x=\"{:.0}\" y=\"{:.1}\" class=\"tick\">not measured (encrypted or spans only)</text>",
                LABEL_W + 4.0,
                y + 12.0
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// The critical path of one root route as a waterfall: a bar per hop, its own time dark
/// and its wait on callees light. The capture gives each hop's mean duration, not its
/// start, so a hop is drawn from its parent's start plus its earlier siblings' durations
/// (calls back to back), which is what a critical path of sequential calls looks like.
pub fn waterfall(route: &Value) -> String {
    let hops = list(route, &["critical_path", "hops"]);
    let mut s = String::new();
    if hops.is_empty() {
        return s;
    }
    let rows: Vec<&Value> = hops.iter().take(40).collect();
    // Start of each hop: parent's start + earlier siblings' means.
    let mut starts = Vec::with_capacity(rows.len());
    // (depth, start, next free offset under this hop)
    let mut stack: Vec<(f64, f64, f64)> = Vec::new();
    let mut end_max = 0.0_f64;
    for h in &rows {
        let depth = num(h, &["depth"]).unwrap_or(1.0);
        let mean = num(h, &["mean_ms"]).unwrap_or(0.0).max(0.0);
        while stack.last().is_some_and(|&(d, _, _)| d >= depth) {
            stack.pop();
        }
        let start = match stack.last_mut() {
            Some(parent) => {
                let st = parent.1 + parent.2;
                parent.2 += mean;
                st
            }
            None => 0.0,
        };
        stack.push((depth, start, 0.0));
        starts.push(start);
        end_max = end_max.max(start + mean);
    }
    let scale = open(
        &mut s,
        rows.len(),
        "critical path waterfall",
        &[
            Series {
                name: "own time",
                colour: "#1d4ed8",
            },
            Series {
                name: "waiting on callees",
                colour: "#93c5fd",
            },
            Series {
                name: "not known (opaque hop)",
                colour: "#d1d5db",
            },
        ],
        end_max,
        "ms",
    );
    for (i, (h, start)) in rows.iter().zip(&starts).enumerate() {
        let depth = num(h, &["depth"]).unwrap_or(1.0);
        let route_txt = match (text(h, &["method"]), text(h, &["route"])) {
            ("", "") => String::new(),
            (m, r) => format!(" {m} {r}"),
        };
        let label = format!(
            "{}{} -> {}{}",
            "· ".repeat((depth as usize).saturating_sub(1).min(8)),
            text(h, &["client"]),
            text(h, &["server"]),
            route_txt
        );
        row_label(&mut s, i, &label);
        let y = TOP + i as f64 * ROW_H + 3.0;
        let mean = num(h, &["mean_ms"]).unwrap_or(0.0).max(0.0);
        let x0 = LABEL_W + start * scale;
        let title = format!(
            "{label}: {} ms mean, own {} ms, waiting {} ms",
            fmt(Some(mean), 2),
            fmt(num(h, &["own_ms"]), 2),
            fmt(num(h, &["waiting_ms"]), 2)
        );
        match (num(h, &["own_ms"]), num(h, &["waiting_ms"])) {
            (Some(own), Some(wait)) => {
                let wo = own.max(0.0) * scale;
                let _ = write!(
                    s,
                    "<rect x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.0}\" fill=\"#93c5fd\"><title>{}</title></rect><rect x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{wo:.1}\" height=\"{:.0}\" fill=\"#1d4ed8\"><title>{}</title></rect>",
                    (own.max(0.0) + wait.max(0.0)).max(mean) * scale,
                    ROW_H - 6.0,
                    esc(&title),
                    ROW_H - 6.0,
                    esc(&title)
                );
            }
            _ => {
                let _ = write!(
                    s,
                    "<rect x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.0}\" fill=\"#d1d5db\"><title>{}</title></rect>",
                    mean * scale,
                    ROW_H - 6.0,
                    esc(&title)
                );
            }
        }
    }
    s.push_str("</svg>");
    s
}
