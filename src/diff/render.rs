//! diff.md and the terminal table.

use std::fmt::Write as _;
use std::path::Path;

use super::{Change, Diff, LinkDiff, Presence};

fn num(v: Option<f64>, prec: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.prec$}"))
}

/// `before -> after`, and the relative change when `pct`.
fn cell(c: &Change, prec: usize, pct: bool) -> String {
    let mut s = format!("{} → {}", num(c.before, prec), num(c.after, prec));
    if pct {
        if let Some(p) = c.change_pct {
            let _ = write!(s, " ({p:+.0}%)");
        }
    }
    s
}

fn test_cell(l: &LinkDiff) -> String {
    match &l.latency_test {
        Some(t) => format!(
            "p = {:.3}{}, n {} → {}, median {:+.2} ms",
            t.result.p_value,
            if t.significant { " *" } else { "" },
            t.result.n_before,
            t.result.n_after,
            t.median_change_ms.unwrap_or(0.0)
        ),
        None => "-".into(),
    }
}

fn values<T: std::fmt::Display>(b: &Option<T>, a: &Option<T>) -> String {
    let s = |v: &Option<T>| v.as_ref().map_or_else(|| "-".into(), |v| v.to_string());
    format!("{} → {}", s(b), s(a))
}

fn notes(l: &LinkDiff) -> String {
    let mut n = Vec::new();
    match l.presence {
        Presence::BeforeOnly => n.push("before only".to_owned()),
        Presence::AfterOnly => n.push("after only".to_owned()),
        Presence::Both => {}
    }
    if l.protocol.changed {
        n.push(format!(
            "protocol {}",
            values(&l.protocol.before, &l.protocol.after)
        ));
    }
    if l.mode.changed {
        n.push(values(&l.mode.before, &l.mode.after));
    }
    if !l.regressions.is_empty() {
        n.push("REGRESSED".into());
    }
    n.join("; ")
}

/// diff.md.
pub fn markdown(d: &Diff) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# linkrank diff\n");
    let _ = writeln!(
        s,
        "- before: `{}` ({}, {} links)\n- after: `{}` ({}, {} links)",
        d.before.source, d.before.kind, d.before.links, d.after.source, d.after.kind, d.after.links
    );
    let both = d
        .links
        .iter()
        .filter(|l| l.presence == Presence::Both)
        .count();
    let significant = d
        .links
        .iter()
        .filter(|l| l.latency_test.is_some_and(|t| t.significant))
        .count();
    let _ = writeln!(
        s,
        "- links on both sides: {both}; latency changed significantly (Mann-Whitney U, p < {}): {significant}; protocol changed: {}; sync/async changed: {}",
        d.alpha,
        d.links.iter().filter(|l| l.protocol.changed).count(),
        d.links.iter().filter(|l| l.mode.changed).count()
    );
    match d.fail_if_regressed_pct {
        Some(p) if d.regressed.is_empty() => {
            let _ = writeln!(s, "- `--fail-if-regressed {p}`: no link regressed");
        }
        Some(p) => {
            let _ = writeln!(
                s,
                "- `--fail-if-regressed {p}`: **regressed**: {}",
                d.regressed.join(", ")
            );
        }
        None => {}
    }
    let _ = writeln!(
        s,
        "\n## Links\n\nEach cell is before → after. Latency is request last byte → response first byte; \
         the test compares every exchange's latency (`*`: p < {}); handshakes are new TCP connections \
         (SYN captured) per request; 5xx is the share of requests.\n",
        d.alpha
    );
    let _ = writeln!(
        s,
        "| link | requests | p50 ms | p95 ms | p99 ms | latency test | bytes/request | TCP handshakes | handshakes/request | 5xx % | notes |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|");
    for l in &d.links {
        let _ = writeln!(
            s,
            "| {} → {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            l.client,
            l.server,
            cell(&l.requests, 0, false),
            cell(&l.latency_ms.p50, 2, true),
            cell(&l.latency_ms.p95, 2, true),
            cell(&l.latency_ms.p99, 2, true),
            test_cell(l),
            cell(&l.bytes_per_request, 0, true),
            cell(&l.tcp_handshakes, 0, false),
            cell(&l.handshakes_per_request, 3, false),
            cell(&l.error_rate_pct, 1, false),
            notes(l)
        );
    }
    let predicted: Vec<&LinkDiff> = d
        .links
        .iter()
        .filter(|l| l.grpc_prediction.is_some())
        .collect();
    if !predicted.is_empty() {
        let _ = writeln!(
            s,
            "\n## gRPC projections checked\n\nLinks that moved to gRPC: the bytes per request the \
             before analysis projected for gRPC → what the after capture measured (the error is \
             relative to the projection).\n\n| link | header bytes/request | body bytes/request | bytes/request |\n|---|---|---|---|"
        );
        for l in predicted {
            let p = l.grpc_prediction.as_ref().expect("filtered");
            let _ = writeln!(
                s,
                "| {} → {} | {} | {} | {} |",
                l.client,
                l.server,
                cell(&p.header_bytes_per_request, 0, true),
                cell(&p.body_bytes_per_request, 0, true),
                cell(&p.bytes_per_request, 0, true)
            );
        }
    }
    let regressed: Vec<&LinkDiff> = d
        .links
        .iter()
        .filter(|l| !l.regressions.is_empty())
        .collect();
    if !regressed.is_empty() {
        let _ = writeln!(s, "\n## Regressions\n");
        for l in regressed {
            let _ = writeln!(
                s,
                "- {} → {}: {}",
                l.client,
                l.server,
                l.regressions.join("; ")
            );
        }
    }
    s
}

/// The terminal table.
pub fn terminal(d: &Diff, out: &Path) -> String {
    let mut rows: Vec<[String; 8]> = vec![[
        "link".into(),
        "requests".into(),
        "p50 ms".into(),
        "p95 ms".into(),
        "test".into(),
        "handshakes/req".into(),
        "5xx %".into(),
        "notes".into(),
    ]];
    for l in &d.links {
        let test = l.latency_test.map_or_else(
            || "-".into(),
            |t| {
                format!(
                    "p={:.3}{}",
                    t.result.p_value,
                    if t.significant { "*" } else { "" }
                )
            },
        );
        rows.push([
            format!("{} -> {}", l.client, l.server),
            cell(&l.requests, 0, false),
            cell(&l.latency_ms.p50, 1, false),
            cell(&l.latency_ms.p95, 1, true),
            test,
            // A TLS link has no visible requests: its connections stand in.
            if l.handshakes_per_request
                .before
                .or(l.handshakes_per_request.after)
                .is_some()
            {
                cell(&l.handshakes_per_request, 2, false)
            } else {
                format!("{} conns", cell(&l.tcp_handshakes, 0, false))
            },
            cell(&l.error_rate_pct, 1, false),
            notes(l),
        ]);
    }
    let mut widths = [0usize; 8];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut s = String::new();
    for r in &rows {
        let mut line = String::new();
        for (i, (c, w)) in r.iter().zip(widths).enumerate() {
            let pad = w.saturating_sub(c.chars().count());
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(c);
            if i + 1 < r.len() {
                line.push_str(&" ".repeat(pad));
            }
        }
        let _ = writeln!(s, "{}", line.trim_end());
    }
    let _ = writeln!(
        s,
        "(before → after; * latency changed, Mann-Whitney p < {}) written: {}",
        d.alpha,
        out.join("diff.md").display()
    );
    if !d.regressed.is_empty() {
        let _ = writeln!(s, "regressed: {}", d.regressed.join(", "));
    }
    s
}
