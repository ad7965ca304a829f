//! The ranked table printed after a run.

use std::fmt::Write as _;
use std::path::Path;

use super::{fmt_opt, fmt_pct};
use crate::analysis::rank::Ranked;

/// Connections of a link, `-` when only spans showed it (they show no connections).
pub(crate) fn connections_text(l: &crate::analysis::links::Link) -> String {
    if l.evidence == crate::analysis::links::Evidence::Traces {
        "-".into()
    } else {
        l.connections.to_string()
    }
}

/// Requests of a link: counted, else estimated from its TLS records (`~N est.`), else `-`.
pub(crate) fn requests_text(l: &crate::analysis::links::Link) -> String {
    match (&l.http, l.tls_estimate.as_ref().and_then(|e| e.requests)) {
        (Some(h), _) => h.requests.to_string(),
        (None, Some(n)) => format!("~{n} est."),
        (None, None) => "-".into(),
    }
}

/// A latency of a link (ms): measured, else the estimate's mean (`~X est.`), else `-`.
pub(crate) fn latency_text(measured: Option<f64>, estimated: Option<f64>) -> String {
    match (measured, estimated) {
        (Some(_), _) | (None, None) => fmt_opt(measured, 1),
        (None, Some(e)) => format!("~{e:.1} est."),
    }
}

/// The `top` best links, one line each with the advice, and where the reports are;
/// a warning first when the capture is too short to extrapolate from.
pub fn render(
    links: &[Ranked],
    top: usize,
    out_dir: &Path,
    capture_seconds: Option<f64>,
) -> String {
    let mut s = String::new();
    if let Some(t) = capture_seconds.filter(|t| *t < super::SHORT_CAPTURE_S) {
        let _ = writeln!(
            s,
            "\nwarning: the capture lasts {}: rates and gains are extrapolated from under a \
             minute of traffic (confidence capped); capture at least 5 minutes before acting",
            crate::analysis::cost::units::duration(t)
        );
    }
    let _ = writeln!(
        s,
        "\n{:>4}  {:<36} {:<9} {:>8} {:>7} {:>6} {:>8} {:>11} {:>5}  {:<26} {:>8}",
        "rank",
        "client -> server",
        "protocol",
        "requests",
        "req/s",
        "conns",
        "new-conn",
        "p50 ms total",
        "5xx",
        "advice",
        "score"
    );
    for x in links.iter().take(top) {
        let l = &x.link;
        let h = l.http.as_ref();
        let mut pair = format!("{} -> {}", l.client, l.server);
        if pair.chars().count() > 36 {
            pair = pair.chars().take(35).collect::<String>() + "~";
        }
        let rec = &x.assessment.recommendation;
        let mut advice = rec.target.as_str().to_owned();
        if let Some(fix) = rec.cheaper_fix {
            advice = format!("{advice} + {}", fix.as_str());
        }
        for t in &rec.transport_fixes {
            advice.push_str(" + ");
            advice.push_str(t.kind.short());
        }
        let _ = writeln!(
            s,
            "{:>4}  {:<36} {:<9} {:>8} {:>7} {:>6} {:>8} {:>11} {:>5}  {:<26} {:>8.4}",
            x.rank,
            pair,
            l.protocol,
            requests_text(l),
            fmt_opt(h.and_then(|h| h.requests_per_s.mean), 1),
            connections_text(&x.link),
            fmt_pct(h.and_then(|h| h.new_connection_share)),
            latency_text(
                h.and_then(|h| h.latency_total_ms.p50),
                l.tls_estimate
                    .as_ref()
                    .and_then(|e| e.latency_total_ms_mean)
            ),
            h.map_or("-".into(), |h| h.status.s5xx.to_string()),
            advice,
            x.score
        );
    }
    if links.len() > top {
        let _ = writeln!(
            s,
            "      ... {} more links in the report",
            links.len() - top
        );
    }
    let _ = writeln!(
        s,
        "\nreports: {0}/report.md, {0}/links.json, {0}/links.csv",
        out_dir.display()
    );
    s
}
