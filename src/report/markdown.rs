//! `report.md`: what was analysed, how good the capture was, the ranked links, one
//! section per link with its measures and routes, and the identity conflicts.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;

use super::{fmt_opt, fmt_pct, LinkReport, SHORT_CAPTURE_S};
use crate::analysis::cost::units;
use crate::analysis::links::{Evidence, HttpMeasures, Link};
use crate::analysis::rank::Ranked;

pub fn render(r: &LinkReport<'_>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# linkrank report\n");
    summary(&mut s, r);
    analysed(&mut s, r);
    quality(&mut s, r);
    traces_section(&mut s, r);
    ranking(&mut s, r);
    recommendations(&mut s, r);
    rollout_plan(&mut s, r);
    scoring(&mut s, r);
    call_chains(&mut s, r);
    for ranked in r.links {
        link_section(&mut s, ranked);
    }
    identity(&mut s, r);
    s
}

pub fn write(dir: &Path, r: &LinkReport<'_>) -> anyhow::Result<()> {
    let path = dir.join("report.md");
    std::fs::write(&path, render(r)).with_context(|| format!("{}: cannot write", path.display()))
}

fn analysed(s: &mut String, r: &LinkReport<'_>) {
    let _ = writeln!(s, "## What was analysed\n");
    let _ = writeln!(s, "| input | format | packets | bytes |");
    let _ = writeln!(s, "|---|---|---:|---:|");
    for i in r.inputs {
        let gz = if i.gzipped { " (gzip)" } else { "" };
        let _ = writeln!(
            s,
            "| `{}` | {}{gz} | {} | {} |",
            i.path.display(),
            i.format,
            i.packets,
            i.bytes
        );
    }
    let _ = writeln!(
        s,
        "\n{} TCP connections and {} HTTP exchanges over {} s; {} service-to-service links.\n",
        r.figures.connections,
        r.figures.exchanges,
        fmt_opt(r.capture_seconds, 2),
        r.links.len()
    );
}

fn quality(s: &mut String, r: &LinkReport<'_>) {
    let c = r.coverage;
    let _ = writeln!(s, "## Capture quality\n");
    let rows: [(&str, u64); 14] = [
        ("packets read", c.packets),
        ("TCP segments decoded", c.tcp_segments),
        ("malformed frames", c.decode_errors + c.tcp_malformed),
        ("frames cut by snaplen", c.truncated_snaplen),
        ("IPv4 fragments dropped", c.ip_fragments_dropped),
        (
            "connections without a captured handshake",
            c.connections_without_handshake,
        ),
        ("one-sided connections", c.one_sided_connections),
        ("gaps (holes never filled)", c.gaps),
        ("bytes lost in gaps", c.gap_bytes),
        ("retransmitted bytes", c.retransmitted_bytes),
        (
            "connections evicted (idle or capacity)",
            c.evicted_idle + c.evicted_capacity,
        ),
        ("malformed HTTP messages", c.malformed_http),
        ("incomplete exchanges", c.incomplete_exchanges),
        (
            "header blocks dropped (memory bound)",
            c.header_budget_overflows,
        ),
    ];
    let _ = writeln!(s, "| measure | count |\n|---|---:|");
    for (label, n) in rows {
        let _ = writeln!(s, "| {label} | {n} |");
    }
    tls_decryption(s, c);
    live_counters(s, c);
    if c.unanswered_attempts > 0 {
        let mut servers: Vec<_> = c.unanswered_attempts_by_server.iter().collect();
        servers.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        let top: Vec<String> = servers
            .iter()
            .take(5)
            .map(|(server, n)| format!("{server} ({n})"))
            .collect();
        let _ = writeln!(
            s,
            "\n{} connection attempts were never answered (a SYN, nothing back); they have no \
             row in connections.parquet and no link. Most to: {}.",
            c.unanswered_attempts,
            top.join(", ")
        );
    }
    if r.payloadless_connections_unlinked > 0 {
        let _ = writeln!(
            s,
            "\n{} connections carried no payload at all and are not counted in any link.",
            r.payloadless_connections_unlinked
        );
    }
    for w in &c.input_warnings {
        let _ = writeln!(
            s,
            "\n**Warning:** {w}; the packets before it were analysed, the rest of that file was not."
        );
    }
    clocks(s, r);
    let _ = writeln!(s);
}

/// libpcap's counters per interface of a live capture.
fn live_counters(s: &mut String, c: &crate::model::Coverage) {
    if c.live.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\nLive capture (libpcap counters):\n\n\
         | interface | received | dropped (buffer) | dropped (interface) | analysed | written |\n\
         |---|---:|---:|---:|---:|---:|"
    );
    for l in &c.live {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} | {} | {} |",
            l.interface, l.received, l.dropped, l.if_dropped, l.analysed, l.written
        );
    }
    let dropped = c.live_dropped();
    if dropped > 0 {
        let _ = writeln!(
            s,
            "\n**Warning:** {dropped} packets were dropped before linkrank read them; the \
             figures miss that traffic."
        );
    }
}

/// Capture clocks: what was corrected and what the estimates left.
fn clocks(s: &mut String, r: &LinkReport<'_>) {
    let c = r.coverage;
    let name = |input: u16| super::summary::input_name(r.inputs, input);
    for k in &c.clock_corrections {
        let _ = writeln!(
            s,
            "\nThe clock of {} was {:.3} ms off {}'s (median of {} packets both captured); \
             its timestamps were corrected before any time was compared.",
            name(k.input),
            k.shift_ns as f64 / 1e6,
            name(0),
            k.pairs
        );
    }
    for o in &c.clock_offsets {
        let _ = writeln!(
            s,
            "\nClock offset {}{} against {}: {:.3} ms{} over {} packet pairs{}.",
            name(o.input),
            if c.clock_corrections.is_empty() {
                ""
            } else {
                " after correction"
            },
            name(o.reference_input),
            o.offset_ns as f64 / 1e6,
            o.delay_ns.map_or(String::new(), |d| format!(
                ", one-way delay {:.3} ms",
                d as f64 / 1e6
            )),
            o.pairs,
            if o.offset_ns.unsigned_abs()
                >= crate::ingest::flow::skew::MIN_CORRECTION_NS.unsigned_abs()
                && c.clock_corrections.is_empty()
            {
                " (too few pairs to correct by it)"
            } else {
                ""
            }
        );
    }
}

fn ranking(s: &mut String, r: &LinkReport<'_>) {
    let _ = writeln!(s, "## Ranked links\n");
    let _ = writeln!(
        s,
        "| rank | client -> server | protocol | requests | req/s mean / peak | connections | new-connection share | total p50 / p95 ms | to first byte p50 ms | stalled | header share | JSON share | 4xx / 5xx | score |"
    );
    let _ = writeln!(
        s,
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for x in r.links {
        let l = &x.link;
        let h = l.http.as_ref();
        let _ = writeln!(
            s,
            "| {} | [{} -> {}](#{}) | {} | {} | {} / {} | {} | {} | {} / {} | {} | {} | {} | {} | {} | {:.4} |",
            x.rank,
            l.client,
            l.server,
            anchor(x),
            l.protocol,
            super::terminal::requests_text(l),
            fmt_opt(h.and_then(|h| h.requests_per_s.mean), 1),
            fmt_opt(h.and_then(|h| h.requests_per_s.peak), 0),
            super::terminal::connections_text(l),
            fmt_pct(h.and_then(|h| h.new_connection_share)),
            super::terminal::latency_text(
                h.and_then(|h| h.latency_total_ms.p50),
                l.tls_estimate.as_ref().and_then(|e| e.latency_total_ms_mean)
            ),
            fmt_opt(h.and_then(|h| h.latency_total_ms.p95), 1),
            super::terminal::latency_text(
                h.and_then(|h| h.latency_ms.p50),
                l.tls_estimate.as_ref().and_then(|e| e.latency_ms_mean)
            ),
            fmt_pct(h.and_then(|h| (h.requests > 0)
                .then(|| h.stalled_requests as f64 / h.requests as f64))),
            fmt_pct(h.and_then(|h| h.header_share)),
            fmt_pct(h.and_then(|h| h.json_share)),
            h.map_or("-".into(), |h| format!("{} / {}", h.status.s4xx, h.status.s5xx)),
            x.score
        );
    }
    let _ = writeln!(s);
}

fn scoring(s: &mut String, r: &LinkReport<'_>) {
    let _ = writeln!(s, "## How the links are ranked\n");
    let _ = writeln!(
        s,
        "Each link's savings as pooled gRPC (one HTTP/2 channel per client and listener, HPACK \
         headers, protobuf bodies) are computed from the capture: waiting removed (handshakes \
         and serialization, latency-ms per second, counted as the root latency it removes \
         along the critical paths the link's calls lie on; see Call chains), bytes per \
         second and CPU. Each is divided \
         by its total over all links, the three shares are averaged, and the result is divided \
         by 1 + effort (routes + callers of the server + {} if the caller is outside the \
         captured system). The model and every constant: `docs/cost-model.md`; the score: \
         `docs/ranking.md`.\n",
        r.constants.external_effort
    );
}

/// The savings of one link in sentences a platform engineer can check.
fn savings_text(s: &mut String, x: &Ranked) {
    let l = &x.link;
    let v = &x.assessment.savings;
    let n = &v.samples;
    let _ = writeln!(s, "**What pooled gRPC would save.**\n");
    let pairs = l.client_addresses.len() * l.server_endpoints.len();
    let tls = if l.tls_handshakes > 0 {
        format!(
            ", {} of them TLS ({:.2} extra round trips each on average)",
            l.tls_handshakes,
            if l.tls_handshakes > 0 {
                v.tls_extra_rtts * l.connections as f64 / l.tls_handshakes as f64
            } else {
                0.0
            }
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        s,
        "- Handshakes: {} TCP handshakes captured{tls}, {} per request. One pooled channel per \
         client address and listener ({pairs}) would save {} handshakes/s and {} ms of waiting \
         per request (handshake RTT p50 {} ms), and {} ms of handshake CPU per second.",
        l.tcp_handshakes,
        fmt_opt(v.handshakes_per_request, 3),
        fmt_opt(v.handshakes_per_s_saved, 2),
        fmt_opt(v.handshake_ms_per_request_saved, 4),
        fmt_opt(l.handshake_rtt_ms.p50, 3),
        fmt_opt(v.crypto_cpu_ms_per_s_saved, 4),
    );
    if l.http.is_none() {
        let _ = writeln!(
            s,
            "- Headers and bodies: not visible (encrypted), so not estimated.\n"
        );
        return;
    }
    let h = &v.header_bytes_per_request;
    let how = if n.headers_from_constant {
        "estimated with the cold-HPACK ratio: no header block was replayed".to_string()
    } else {
        format!(
            "{} exchanges replayed through HPACK with a 4096-byte table per connection direction",
            n.header_replays
        )
    };
    let _ = writeln!(
        s,
        "- Headers: {} B per request today; as HTTP/2 {} B and as gRPC {} B with its framing and trailers ({how}).",
        fmt_opt(h.now, 0),
        fmt_opt(h.http2, 0),
        fmt_opt(h.grpc, 0),
    );
    let b = &v.body_bytes_per_request;
    let how = if n.bodies_from_constant {
        "the protobuf/JSON ratio is the no-sample constant".to_string()
    } else {
        format!(
            "ratio measured by encoding {} sampled JSON documents as protobuf",
            n.json_documents
        )
    };
    let _ = writeln!(
        s,
        "- Bodies: {} B per request today, {} B with JSON bodies as protobuf (ratio {}; {how}).",
        fmt_opt(b.now, 0),
        fmt_opt(b.protobuf, 0),
        fmt_opt(v.protobuf_ratio, 2),
    );
    let sb = &v.sampled_bodies;
    if let (Some(j), Some(p)) = (sb.json_gzip_bytes, sb.protobuf_gzip_bytes) {
        let _ = writeln!(
            s,
            "- Compressed: the sampled bodies that were sent gzip-compressed take {j} B as gzip'd JSON and {p} B as gzip'd protobuf."
        );
    }
    if sb.non_json_bodies > 0 {
        let _ = writeln!(
            s,
            "- Not estimated: {} bodies that are not JSON ({} of all bodies).",
            sb.non_json_bodies,
            fmt_pct(sb.non_json_share)
        );
    }
    let z = &v.serialization_us_per_request;
    let _ = writeln!(
        s,
        "- Serialization: {} us per request to serialize and parse the JSON today, {} us as protobuf ({}).",
        fmt_opt(z.now, 2),
        fmt_opt(z.protobuf, 2),
        match (sb.json_parse_ns_per_byte, sb.protobuf_decode_ns_per_byte) {
            (Some(j), Some(p)) => format!(
                "parse {j:.2} ns/B and protobuf decode {p:.2} ns/B measured on the samples"
            ),
            _ => "parse and decode costs from the constants: no samples".to_string(),
        }
    );
    let _ = writeln!(
        s,
        "- Altogether: {} B/s, {} ms of CPU per second and {} ms per request ({} latency-ms/s).\n",
        fmt_opt(v.bytes_per_s_saved, 0),
        fmt_opt(v.cpu_ms_per_s_saved, 4),
        fmt_opt(v.latency_ms_per_request_saved, 4),
        fmt_opt(v.latency_ms_per_s_saved, 3),
    );
}

fn anchor(x: &Ranked) -> String {
    let raw = format!("{}-{}-{}", x.rank, x.link.client, x.link.server);
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

fn link_section(s: &mut String, x: &Ranked) {
    let l = &x.link;
    let _ = writeln!(s, "<a id=\"{}\"></a>", anchor(x));
    let _ = writeln!(
        s,
        "## {}. {} -> {} ({})\n",
        x.rank, l.client, l.server, l.protocol
    );
    let _ = writeln!(
        s,
        "Client `{}` (named by {}: {}); server `{}` (named by {}: {}).\n",
        l.client,
        l.client_source.as_str(),
        l.client_addresses.join(", "),
        l.server,
        l.server_source.as_str(),
        l.server_endpoints.join(", ")
    );
    let i = &x.score_inputs;
    let _ = writeln!(
        s,
        "Score {:.4}: the advice saves {:.2} latency-ms/s (weighted by the callers waiting), \
         {} and {}; effort {}{}.\n",
        x.score,
        i.time_saved_ms_per_s,
        units::bit_rate(i.bytes_saved_per_s),
        units::cores(i.cpu_saved_cores),
        i.effort,
        if i.external { " (external caller)" } else { "" }
    );
    recommendation_text(s, x);
    evidence_text(s, l);
    savings_text(s, x);
    chain_text(s, x);
    transport_text(s, l);
    let _ = writeln!(s, "| measure | value |\n|---|---:|");
    if l.evidence == Evidence::Traces {
        let _ = writeln!(
            s,
            "| connections, handshakes, header bytes | not known: only spans showed this link |"
        );
    } else {
        connection_rows(s, l);
    }
    match &l.http {
        Some(h) => http_rows(s, h, l.evidence != Evidence::Traces),
        None => {
            let _ = writeln!(s, "| HTTP | not visible (encrypted or not HTTP/1) |");
        }
    }
    let _ = writeln!(s);
    if let Some(h) = &l.http {
        let types = counts_text;
        let _ = writeln!(
            s,
            "Content types: requests {}; responses {}. HTTP versions: {}.\n",
            types(&h.request_content_types),
            types(&h.response_content_types),
            types(&h.http_versions)
        );
    }
    if !l.routes.is_empty() {
        let _ = writeln!(
            s,
            "| method | route | requests | req/s peak | latency p50 / p95 / p99 ms | req / resp bytes per request (headers + body) | 2xx | 4xx | 5xx | new-connection share |"
        );
        let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for r in &l.routes {
            let h = &r.http;
            let b = &h.bytes_per_request;
            let _ = writeln!(
                s,
                "| {} | `{}` | {} | {} | {} / {} / {} | {} + {} / {} + {} | {} | {} | {} | {} |",
                r.method.as_deref().unwrap_or("-"),
                r.route.as_deref().unwrap_or("-"),
                h.requests,
                fmt_opt(h.requests_per_s.peak, 0),
                fmt_opt(h.latency_ms.p50, 1),
                fmt_opt(h.latency_ms.p95, 1),
                fmt_opt(h.latency_ms.p99, 1),
                fmt_opt(b.request_headers, 0),
                fmt_opt(b.request_bodies, 0),
                fmt_opt(b.response_headers, 0),
                fmt_opt(b.response_bodies, 0),
                h.status.s2xx,
                h.status.s4xx,
                h.status.s5xx,
                fmt_pct(h.new_connection_share)
            );
        }
        if l.routes_not_listed > 0 {
            let _ = writeln!(s, "\n{} more routes not listed.", l.routes_not_listed);
        }
        let _ = writeln!(s);
    }
}

/// The decision per link, one row each, best first.
fn recommendations(s: &mut String, r: &LinkReport<'_>) {
    let _ = writeln!(s, "## Recommendations\n");
    let _ = writeln!(
        s,
        "| rank | link | target | fixes | confidence | waiting saved per request | bandwidth saved | CPU saved | main reason |"
    );
    let _ = writeln!(s, "|---:|---|---|---|---|---:|---:|---:|---|");
    for x in r.links {
        let l = &x.link;
        let rec = &x.assessment.recommendation;
        let target = match &rec.broker {
            Some(b) => format!("broker ({})", b.kind.as_str()),
            None => rec.target.as_str().to_owned(),
        };
        let _ = writeln!(
            s,
            "| {} | [{} -> {}](#{}) | {} | {} | {:?} ({:.2}) | {} | {} | {} | {} |",
            x.rank,
            l.client,
            l.server,
            anchor(x),
            target,
            fixes_text(rec),
            rec.confidence,
            rec.confidence_score,
            per_request(
                rec.gain.root_latency_ms_per_s_saved
                    + rec.transport_gain().root_latency_ms_per_s_saved,
                l.requests_or_connections_per_s(r.capture_seconds)
            )
            .map_or("-".into(), units::millis),
            units::bit_rate(rec.gain.bytes_saved_per_s),
            units::cores(rec.gain.cpu_saved_cores),
            rec.why.first().map_or("-", String::as_str)
        );
    }
    let _ = writeln!(s);
}

/// The fixes advised on a link: the cheaper fix and the transport fix, `-` for none.
fn fixes_text(rec: &crate::analysis::recommend::Recommendation) -> String {
    let mut v: Vec<String> = rec
        .cheaper_fix
        .iter()
        .map(|f| f.as_str().to_owned())
        .collect();
    v.extend(rec.transport_fixes.iter().map(|t| t.action.clone()));
    if v.is_empty() {
        "-".into()
    } else {
        v.join(" + ")
    }
}

fn per_request(per_s: f64, rate: Option<f64>) -> Option<f64> {
    rate.filter(|r| *r > 0.0).map(|r| per_s / r)
}

/// The report's opening: what following the advice would save, in absolute units, and
/// how far the capture can be trusted for it.
fn summary(s: &mut String, r: &LinkReport<'_>) {
    let _ = writeln!(s, "## Summary\n");
    let mut total = crate::analysis::recommend::Gain::default();
    let (mut migrations, mut fixes) = (0, 0);
    for x in r.links {
        let rec = &x.assessment.recommendation;
        total.root_latency_ms_per_s_saved += rec.gain.root_latency_ms_per_s_saved.max(0.0);
        total.root_latency_ms_per_s_saved += rec.transport_gain().root_latency_ms_per_s_saved;
        fixes += rec.transport_fixes.len();
        total.bytes_saved_per_s += rec.gain.bytes_saved_per_s.max(0.0);
        total.cpu_saved_cores += rec.gain.cpu_saved_cores;
        if rec.target != crate::analysis::recommend::Target::Keep {
            migrations += 1;
        }
        if rec.cheaper_fix.is_some() {
            fixes += 1;
        }
    }
    let roots_per_s = match (r.chains, r.capture_seconds) {
        (Some(c), Some(t)) if t > 0.0 && c.roots > 0 => Some(c.roots as f64 / t),
        _ => None,
    };
    let _ = writeln!(
        s,
        "Following every recommendation would save **{}** of CPU, **{}** of bandwidth and \
         **{}** of waiting per root request{}, from {} over {}; the rest keep HTTP as it is.\n",
        units::cores(total.cpu_saved_cores),
        units::bit_rate(total.bytes_saved_per_s),
        per_request(total.root_latency_ms_per_s_saved, roots_per_s)
            .map_or("-".into(), units::millis),
        roots_per_s.map_or(String::new(), |q| format!(
            " ({:.1} latency-ms/s over {q:.1} root requests/s)",
            total.root_latency_ms_per_s_saved
        )),
        plural_pair(migrations, "migration", fixes, "fix"),
        plural(r.links.len(), "link")
    );
    if let Some(t) = r.capture_seconds.filter(|t| *t < SHORT_CAPTURE_S) {
        let _ = writeln!(
            s,
            "> **Short capture:** {} of traffic. Rates, gains and the ranking are \
             extrapolated from under {SHORT_CAPTURE_S:.0} s; every confidence is capped for \
             it. Capture at least 5 minutes of representative traffic before acting.\n",
            units::duration(t)
        );
    }
}

/// `1 link`, `2 links`, `3 cheaper fixes`.
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else if word.ends_with('x') {
        format!("{n} {word}es")
    } else {
        format!("{n} {word}s")
    }
}

/// `2 migrations and 1 cheaper fix`.
fn plural_pair(a: usize, a_name: &str, b: usize, b_name: &str) -> String {
    format!("{} and {}", plural(a, a_name), plural(b, b_name))
}

/// Quick wins, then the waves of migrations with their steps, risks and checks.
fn rollout_plan(s: &mut String, r: &LinkReport<'_>) {
    let Some(p) = r.plan else { return };
    let _ = writeln!(s, "## Rollout plan\n");
    if !p.quick_wins.is_empty() {
        let _ = writeln!(
            s,
            "**Quick wins first** (cheap changes: a fix that captures most of a link's gain, or a transport fix):\n"
        );
        for q in &p.quick_wins {
            let _ = writeln!(
                s,
                "- {} -> {}: {}",
                q.client,
                q.server,
                q.transport_fix
                    .clone()
                    .or_else(|| q.cheaper_fix.map(|f| f.as_str().to_owned()))
                    .unwrap_or_else(|| "-".into())
            );
        }
        let _ = writeln!(s);
    }
    for w in &p.waves {
        let names: Vec<String> = w
            .links
            .iter()
            .map(|l| {
                format!(
                    "{} -> {} ({}){}",
                    l.client,
                    l.server,
                    l.target.as_str(),
                    if l.reuses_earlier_wave {
                        ", reuses an earlier wave's server side"
                    } else {
                        ""
                    }
                )
            })
            .collect();
        let _ = writeln!(s, "### Wave {}: {}\n", w.number, names.join("; "));
        kit_links(s, r, w);
        let _ = writeln!(
            s,
            "Expected gain: {:.2} latency-ms/s, {:.0} B/s, {:.5} cores.\n",
            w.gain.time_saved_ms_per_s, w.gain.bytes_saved_per_s, w.gain.cpu_saved_cores
        );
        for (title, items) in [
            ("Steps", &w.steps),
            ("Risks seen in the data", &w.risks),
            ("How to verify", &w.verify),
        ] {
            if items.is_empty() {
                continue;
            }
            let _ = writeln!(s, "{title}:\n");
            for i in items {
                let _ = writeln!(s, "- {i}");
            }
            let _ = writeln!(s);
        }
    }
    if !p.kept.is_empty() {
        let _ = writeln!(s, "Kept on their protocol: {}.\n", p.kept.join(", "));
    }
}

/// The kit files a wave's links need, as links relative to report.md.
fn kit_links(s: &mut String, r: &LinkReport<'_>, w: &crate::analysis::plan::Wave) {
    let Some(kit) = r.kit.filter(|k| !k.is_empty()) else {
        return;
    };
    let mut files: Vec<String> = Vec::new();
    for l in &w.links {
        for f in kit.files_of(&l.client, &l.server) {
            let link = format!("[`kit/{f}`](kit/{f})");
            if !files.contains(&link) {
                files.push(link);
            }
        }
    }
    if !files.is_empty() {
        let _ = writeln!(
            s,
            "Migration kit for this wave: {} (all files: [kit/README.md](kit/README.md)).\n",
            files.join(", ")
        );
    }
}

/// What "waiting saved" means for this link's advice, in one sentence.
fn time_saved_meaning(rec: &crate::analysis::recommend::Recommendation) -> &'static str {
    use crate::analysis::recommend::{Fix, Target};
    match (rec.target, rec.cheaper_fix) {
        (Target::Grpc, _) => {
            "Waiting saved here: the root latency gRPC's savings remove along the critical \
             paths the link's calls lie on, counted once for every synchronous caller waiting \
             above it."
        }
        (Target::Broker, _) => {
            "Waiting saved here: the caller's wait for the answer, minus the publish, where \
             the call is on its roots' critical paths."
        }
        (Target::Mesh, _) => {
            "Waiting saved here: the handshakes the sidecars' pooled connections avoid; the \
             proxies' CPU is counted against the gain."
        }
        (Target::Keep, Some(Fix::KeepAlive | Fix::ConnectionPooling)) => {
            "Waiting saved here: the TCP (and TLS) handshake a reused connection no longer \
             waits for, on the share of calls on a critical path."
        }
        (Target::Keep, Some(Fix::Http2 | Fix::Gzip)) => {
            "Waiting saved here: none counted; the fix saves bytes."
        }
        (Target::Keep, None) => "Waiting saved here: none; the link stays as it is.",
    }
}

/// The link's recommendation and the facts behind it.
fn recommendation_text(s: &mut String, x: &Ranked) {
    let rec = &x.assessment.recommendation;
    let _ = writeln!(
        s,
        "**Recommendation: {}**{}{} (rule `{}`, confidence {:?}, {:.2}).\n",
        rec.target.as_str(),
        rec.broker.as_ref().map_or(String::new(), |b| format!(
            " via {}: {}",
            b.kind.as_str(),
            b.reason
        )),
        rec.cheaper_fix
            .map_or(String::new(), |f| format!("; first: {}", f.as_str())),
        rec.rule,
        rec.confidence,
        rec.confidence_score
    );
    for w in &rec.why {
        let _ = writeln!(s, "- {w}");
    }
    let _ = writeln!(s, "\n{}", time_saved_meaning(rec));
    if !rec.risks.is_empty() {
        let _ = writeln!(s, "\nRisks:\n");
        for r in &rec.risks {
            let _ = writeln!(s, "- {r}");
        }
    }
    let _ = writeln!(s);
}

/// `n`, or `-` when unknown.
fn count_text(n: Option<u64>) -> String {
    n.map_or_else(|| "-".into(), |n| n.to_string())
}

/// `users'` or `orders'`: a service name as an owner.
fn owner(name: &str) -> String {
    if name.ends_with('s') {
        format!("{name}'")
    } else {
        format!("{name}'s")
    }
}

/// What the link's TCP showed: messages held until the peer's ACK (with the fix), zero
/// windows and retransmission timeouts, each in the link's own figures; nothing when
/// there was none.
fn transport_text(s: &mut String, l: &Link) {
    let mut t = String::new();
    if let Some(h) = l.http.as_ref().filter(|_| l.evidence != Evidence::Traces) {
        for (side, stalls, writer, waiter) in [
            ("responses", &h.response_stalls, &l.server, &l.client),
            ("requests", &h.request_stalls, &l.client, &l.server),
        ] {
            if stalls.stalled == 0 {
                continue;
            }
            let one = &side[..side.len() - 1];
            let _ = write!(
                t,
                "{} of {} {side} were held a median {} (p95 {}) by Nagle's algorithm waiting \
                 for {} delayed ACK: set TCP_NODELAY on {} sockets or write each {one} in \
                 one call. ",
                stalls.stalled,
                h.requests,
                ms_text(stalls.p50_ms),
                ms_text(stalls.p95_ms),
                owner(waiter),
                owner(writer),
            );
        }
        if h.stalled_requests > 0 {
            let _ = write!(
                t,
                "The stalls cost {} per request on average over all {} requests. ",
                ms_text(h.stall_ms.mean),
                h.requests
            );
        }
    }
    let zero = l.zero_window_events.unwrap_or(0);
    let rto = l.retransmission_timeouts.unwrap_or(0);
    if zero > 0 || rto > 0 {
        let _ = write!(
            t,
            "Its connections advertised a zero receive window {zero} times (a receiver that \
             could take no more) and resent {rto} segments on a retransmission timeout \
             (at least 200 ms of silence each). "
        );
    }
    if !t.is_empty() {
        let _ = writeln!(s, "**Transport.** {}\n", t.trim_end());
    }
}

/// Which inputs showed the link, and what the spans say of it.
fn evidence_text(s: &mut String, l: &Link) {
    let Some(calls) = l.traced_calls else { return };
    let seen = match l.evidence {
        Evidence::Capture => "the capture only (no span of the trace files is on it)",
        Evidence::Traces => "the trace files only (no capture showed it)",
        Evidence::Both => "the capture and the trace files",
    };
    let _ = write!(s, "Seen in {seen}; {calls} traced calls");
    match (l.async_share, &l.broker) {
        (Some(a), Some(b)) if a > 0.0 => {
            let _ = write!(
                s,
                ", {} of them already asynchronous through `{b}`",
                fmt_pct(Some(a))
            );
        }
        (Some(a), None) if a > 0.0 => {
            let _ = write!(
                s,
                ", {} of them already asynchronous (producer/consumer spans)",
                fmt_pct(Some(a))
            );
        }
        _ => {}
    }
    let _ = writeln!(s, ".\n");
    if l.evidence == Evidence::Traces {
        let _ = writeln!(
            s,
            "From the spans alone: calls, latency, errors, depth, fan-out, N+1 and the \
             synchronous share (protocol `{}`). A capture of this link is needed for its \
             connections and handshakes, header and body bytes, JSON share, retries and \
             transport stalls, and so for its savings and its score.\n",
            l.protocol
        );
    }
}

/// The trace files, what was read of them, and the join with the captures.
fn traces_section(s: &mut String, r: &LinkReport<'_>) {
    let Some(t) = r.traces else { return };
    let _ = writeln!(
        s,
        "## Traces
"
    );
    let _ = writeln!(
        s,
        "{} spans of {} services in {} traces made {} calls between services (deepest trace: {} spans).\n",
        t.spans, t.services, t.coverage.traces, t.calls, t.max_span_depth
    );
    let c = &t.coverage;
    let rules = [
        ("a SERVER span under a CLIENT span", c.calls_client_server),
        (
            "a SERVER span under a span of another kind, or a root (`user`)",
            c.calls_server_only,
        ),
        (
            "a span without a kind (or INTERNAL) under a span of another service",
            c.calls_kindless,
        ),
        (
            "a CLIENT or PRODUCER span nobody answered, or a kind-less span naming its `peer.service` (virtual callee)",
            c.calls_virtual,
        ),
        ("a CONSUMER span (PRODUCER -> CONSUMER)", c.calls_producer_consumer),
    ];
    let _ = writeln!(
        s,
        "| calls found by rule ([traces.md](docs/traces.md)) | calls |\n|---|---:|"
    );
    for (k, v) in rules {
        let _ = writeln!(s, "| {k} | {v} |");
    }
    let _ = writeln!(
        s,
        "| of all of them, asynchronous (through a broker) | {} |\n",
        c.calls_async
    );
    let lost = [
        (
            "malformed documents or lines (read up to the fault)",
            c.malformed_documents,
        ),
        ("lines over the length bound", c.lines_too_long),
        ("spans without valid ids", c.spans_missing_ids),
        ("spans over the per-trace bound", c.spans_over_trace_cap),
        ("traces evicted (open-trace bound)", c.traces_evicted),
        ("spans whose parent never arrived", c.orphan_spans),
        ("parent cycles cut", c.cycles_broken),
        ("duplicate span ids", c.duplicate_span_ids),
        (
            "calls whose server span lies outside its client span (clock skew)",
            c.clock_skew,
        ),
    ];
    let _ = writeln!(s, "| trace input problem | count |\n|---|---:|");
    for (k, v) in lost {
        let _ = writeln!(s, "| {k} | {v} |");
    }
    let _ = writeln!(s);
    if !t.errors.is_empty() {
        let _ = writeln!(s, "First problems, by file and position:\n");
        for e in &t.errors {
            let _ = writeln!(s, "- {e}");
        }
        let _ = writeln!(s);
    }
    if let Some(j) = &t.join {
        let _ = writeln!(
            s,
            "**Joined with the captures**: {} of {} HTTP exchanges matched a traced call ({}): {} by traceparent, {} by endpoints and time; {} of the {} synchronous traced calls ({}) were in the capture. {} exchanges carried a traceparent no trace file holds. The spans named {} endpoints (name source `traces`).\n",
            j.matched,
            j.exchanges,
            fmt_pct(j.exchange_coverage),
            j.by_traceparent,
            j.by_time,
            j.matched,
            j.calls,
            fmt_pct(j.call_coverage),
            j.traceparent_unknown,
            j.named_endpoints
        );
        match (j.clock_offset_ms, j.clock_offset_p5_p95_ms) {
            (Some(o), Some((a, b))) => {
                let _ = writeln!(
                    s,
                    "Clock offset, trace clocks minus capture clock: {o:.3} ms (median of {} pairs; 5th-95th percentile {a:.3} to {b:.3} ms).\n",
                    j.offset_pairs
                );
            }
            _ => {
                let _ = writeln!(s, "Clock offset: not measurable (no matched pair).\n");
            }
        }
    }
    if let Some(k) = &t.chain_check {
        let _ = writeln!(
            s,
            "The span trees give the parent of {} captured calls; timing alone chose the same parent for {} ({}), another for {} and none for {}: the span trees' edges are used.\n",
            k.span_edges,
            k.timing_agrees,
            fmt_pct(k.agreement),
            k.timing_corrected,
            k.timing_missed
        );
    }
    if let Some(k) = &t.chain_sample {
        let _ = writeln!(
            s,
            "The call chains are read from a sample of whole traces: {} traces ({} calls) kept, {} traces ({} calls) left out (`--trace-window` sets the bound); the links measure every call.\n",
            k.traces_kept, k.calls_kept, k.traces_left_out, k.calls_left_out
        );
    }
}

/// `a (3), b (1)`, or `-` when empty.
fn counts_text(v: &[crate::analysis::links::Count]) -> String {
    if v.is_empty() {
        return "-".to_string();
    }
    v.iter()
        .map(|c| format!("{} ({})", c.value, c.count))
        .collect::<Vec<_>>()
        .join(", ")
}

fn connection_rows(s: &mut String, l: &Link) {
    let q = &l.quality;
    let d = &l.requests_per_connection_dist;
    let rows = [
        ("connections", l.connections.to_string()),
        ("TCP handshakes seen", l.tcp_handshakes.to_string()),
        ("TLS connections", l.tls_handshakes.to_string()),
        (
            "requests per connection (mean / p50 / p95 / max)",
            format!(
                "{} / {} / {} / {}",
                fmt_opt(d.mean, 1),
                fmt_opt(d.p50, 0),
                fmt_opt(d.p95, 0),
                d.max.map_or("-".into(), |m| m.to_string())
            ),
        ),
        (
            "connections with one request",
            d.single_request_connections.to_string(),
        ),
        (
            "handshake RTT p50 / p95 ms",
            format!(
                "{} / {}",
                fmt_opt(l.handshake_rtt_ms.p50, 3),
                fmt_opt(l.handshake_rtt_ms.p95, 3)
            ),
        ),
        (
            "TLS versions (resumed)",
            format!("{} ({})", counts_text(&l.tls_versions), l.tls_resumed),
        ),
        (
            "TLS handshake p50 / p95 ms",
            format!(
                "{} / {}",
                fmt_opt(l.tls_handshake_ms.p50, 3),
                fmt_opt(l.tls_handshake_ms.p95, 3)
            ),
        ),
        ("TLS server names (SNI)", counts_text(&l.tls_server_names)),
        ("ALPN offered", counts_text(&l.tls_alpn_offered)),
        (TLS_ESTIMATE_ROW, tls_estimate_text(l)),
        ("connections reset", l.resets.to_string()),
        ("retransmitted bytes", l.retransmitted_bytes.to_string()),
        (
            "zero windows / retransmission timeouts",
            format!(
                "{} / {}",
                count_text(l.zero_window_events),
                count_text(l.retransmission_timeouts)
            ),
        ),
        (
            "quality: gaps / one-sided / no handshake / incomplete exchanges",
            format!(
                "{} / {} / {} / {}",
                q.connections_with_gaps,
                q.one_sided_connections,
                q.no_handshake_seen,
                q.incomplete_exchanges
            ),
        ),
    ];
    for (k, v) in rows {
        if k == TLS_ESTIMATE_ROW && l.tls_estimate.is_none() {
            continue;
        }
        let _ = writeln!(s, "| {k} | {v} |");
    }
}

/// `capture`: the measures come from a capture (spans show no stalls).
fn http_rows(s: &mut String, h: &HttpMeasures, capture: bool) {
    let b = &h.bytes;
    let p = &h.bytes_per_request;
    let st = &h.status;
    let mut rows = vec![
        ("requests", h.requests.to_string()),
        (
            "requests/s mean / peak (1 s)",
            format!(
                "{} / {}",
                fmt_opt(h.requests_per_s.mean, 2),
                fmt_opt(h.requests_per_s.peak, 0)
            ),
        ),
        (
            "requests that paid a new TCP handshake",
            fmt_pct(h.new_connection_share),
        ),
        (
            "latency p50 / p95 / p99 ms (request end -> response start)",
            format!(
                "{} / {} / {}",
                fmt_opt(h.latency_ms.p50, 2),
                fmt_opt(h.latency_ms.p95, 2),
                fmt_opt(h.latency_ms.p99, 2)
            ),
        ),
        (
            "latency p50 / p95 / p99 ms (request start -> response end)",
            format!(
                "{} / {} / {}",
                fmt_opt(h.latency_total_ms.p50, 2),
                fmt_opt(h.latency_total_ms.p95, 2),
                fmt_opt(h.latency_total_ms.p99, 2)
            ),
        ),
        (
            "request headers / bodies, bytes (per request)",
            format!(
                "{} / {} ({} / {})",
                b.request_headers.unwrap_or(0),
                b.request_bodies.unwrap_or(0),
                fmt_opt(p.request_headers, 0),
                fmt_opt(p.request_bodies, 0)
            ),
        ),
        (
            "response headers / bodies, bytes (per request)",
            format!(
                "{} / {} ({} / {})",
                b.response_headers.unwrap_or(0),
                b.response_bodies.unwrap_or(0),
                fmt_opt(p.response_headers, 0),
                fmt_opt(p.response_bodies, 0)
            ),
        ),
        ("header share of HTTP bytes", fmt_pct(h.header_share)),
        ("requests with JSON bodies", fmt_pct(h.json_share)),
        (
            "status 1xx / 2xx / 3xx / 4xx / 5xx",
            format!(
                "{} / {} / {} / {} / {}",
                st.s1xx, st.s2xx, st.s3xx, st.s4xx, st.s5xx
            ),
        ),
        (
            "429 / 503 / no response",
            format!("{} / {} / {}", st.s429, st.s503, st.no_response),
        ),
    ];
    if let Some(f) = st.failed {
        rows.push((
            "calls a span marked failed (error status or tag, 5xx, gRPC status not OK; no status: counted as 5xx by the advice)",
            format!("{f} ({} with no status)", st.failed_without_status),
        ));
    }
    if capture {
        rows.extend([
            (
                "stalled requests / responses (sender waited for an ACK)",
                format!(
                    "{} / {}",
                    h.request_stalls.stalled, h.response_stalls.stalled
                ),
            ),
            (
                "stall per request mean / p95 / p99 ms",
                format!(
                    "{} / {} / {}",
                    fmt_opt(h.stall_ms.mean, 2),
                    fmt_opt(h.stall_ms.p95, 2),
                    fmt_opt(h.stall_ms.p99, 2)
                ),
            ),
        ]);
    }
    for (k, v) in rows {
        let _ = writeln!(s, "| {k} | {v} |");
    }
}

fn identity(s: &mut String, r: &LinkReport<'_>) {
    let _ = writeln!(s, "## Service identity\n");
    if r.name_files.is_empty() {
        let _ = writeln!(s, "No services file or Kubernetes inventory was given.");
    } else {
        let _ = writeln!(
            s,
            "Name files: {}.",
            r.name_files
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let counts = r
        .naming
        .source_counts()
        .iter()
        .map(|(k, v)| format!("{} {v}", k.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(s, "Endpoints named by source: {counts}.\n");
    let _ = writeln!(s, "### Identity conflicts\n");
    if r.naming.conflicts.is_empty() {
        let _ = writeln!(s, "None: no endpoint was named differently by two sources.");
        return;
    }
    let _ = writeln!(
        s,
        "| endpoint | role | chosen (source) | also named (source) |\n|---|---|---|---|"
    );
    for c in &r.naming.conflicts {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} ({}) | {} ({}) |",
            c.endpoint,
            c.role,
            c.chosen.name,
            c.chosen.source.as_str(),
            c.other.name,
            c.other.source.as_str()
        );
    }
}

/// `12.3 ms`, `-` when unknown.
fn ms_text(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.1} ms"),
        _ => "-".into(),
    }
}

/// The run's call trees: how they were inferred, their depths and the busiest root
/// routes with their critical paths (see `docs/chains.md`).
fn call_chains(s: &mut String, r: &LinkReport<'_>) {
    let Some(c) = r.chains else { return };
    let _ = writeln!(s, "## Call chains\n");
    if !c.reliable {
        let _ = writeln!(
            s,
            "**The call chains below are unreliable**: {}. Parents were matched by time \
             across captures whose clocks disagree, so depths, critical paths and the \
             ranking's critical-path weights may be wrong.\n",
            c.unreliable_reason
                .as_deref()
                .unwrap_or("the captures' clocks disagree")
        );
    }
    let inf = &c.inference;
    // Without the inference's settings the trees were assembled from the nodes' edges
    // (`linkrank fleet`): how each node weighed its candidates is not known.
    let weighed = if c.settings.is_some() {
        format!("{} chosen among several candidates, ", inf.ambiguous)
    } else {
        String::new()
    };
    let _ = writeln!(
        s,
        "{} calls, {} of them root requests from edge clients (callers that serve nothing in \
         the capture). {} calls found the request their caller was serving: {} by \
         W3C traceparent ids (exact), {} by span ids and {} by timing ({}{} started just \
         after the parent answered). {} calls came from \
         a service that serves requests but matched none of them (orphans: their depth is \
         unknown).",
        c.calls,
        c.roots,
        inf.with_parent,
        inf.by_traceparent,
        inf.by_span,
        inf.by_timing,
        weighed,
        inf.late,
        c.orphans
    );
    if let Some(share) = c.timing_vs_ids.share {
        let a = &c.timing_vs_ids;
        if a.left_out == 0 {
            let _ = writeln!(
                s,
                "Where ids named the parent and timing alone could too, timing named the same \
                 parent for {} of {} calls ({}).",
                a.agreed,
                a.checked,
                fmt_pct(Some(share))
            );
        } else {
            let _ = writeln!(
                s,
                "Where ids named the parent and timing alone could too ({} calls), timing \
                 named the same parent for an estimated {}: {} of {} calls checked agreed, and \
                 the {} calls that timing alone left tied among candidates outside the \
                 stretches of the capture it refined were not checked (the tied calls \
                 checked stand for them).",
                a.checked + a.left_out,
                fmt_pct(Some(share)),
                a.agreed,
                a.checked,
                a.left_out
            );
        }
    }
    if inf.windows_dropped + inf.candidates_dropped > 0 {
        let _ = writeln!(
            s,
            "Bounds: {} serving windows and {} candidates were not weighed.",
            inf.windows_dropped, inf.candidates_dropped
        );
    }
    let _ = writeln!(s);
    if !c.tree_depths.is_empty() {
        let _ = writeln!(s, "| tree depth | root requests |\n|---:|---:|");
        for d in &c.tree_depths {
            let _ = writeln!(s, "| {} | {} |", d.depth, d.roots);
        }
        let _ = writeln!(s);
    }
    for rr in &c.top_root_routes {
        let _ = writeln!(
            s,
            "**{} `{}`** ({} -> {}): {} root requests, mean {}, trees up to {} deep.",
            rr.method.as_deref().unwrap_or("-"),
            rr.route.as_deref().unwrap_or("-"),
            rr.client,
            rr.server,
            rr.roots,
            ms_text(rr.mean_latency_ms),
            rr.max_depth
        );
        let Some(p) = &rr.critical_path else {
            let _ = writeln!(s);
            continue;
        };
        let _ = writeln!(
            s,
            "Its commonest critical path ({} of {} roots; {} distinct paths):\n",
            p.roots, rr.roots, rr.critical_paths
        );
        let _ = writeln!(
            s,
            "| depth | call | mean | own time | waiting on calls |\n|---:|---|---:|---:|---:|"
        );
        for h in &p.hops {
            let _ = writeln!(
                s,
                "| {} | {} -> {} {} | {} | {} | {} |",
                h.depth,
                h.client,
                h.server,
                match (&h.method, &h.route) {
                    (Some(m), Some(r)) => format!("{m} `{r}`"),
                    (None, Some(r)) => format!("`{r}`"),
                    _ => "(requests not visible)".to_owned(),
                },
                ms_text(h.mean_ms),
                ms_text(h.own_ms),
                ms_text(h.waiting_ms)
            );
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(
        s,
        "Own time and waiting split the server's time between the request's last byte and \
         its answer's first byte; the calls' mean includes the network both ways.\n"
    );
}

/// One link's place in the call trees, in sentences.
fn chain_text(s: &mut String, x: &Ranked) {
    let l = &x.link;
    let Some(c) = &x.chain else { return };
    let Some(depth) = c.max_depth else {
        let _ = writeln!(
            s,
            "Call chain: none of its calls was traced to a root request (their callers' \
             parents were not found).\n"
        );
        return;
    };
    let mut t = format!(
        "Call chain: {} hop{} from the edge client at most (mean {}); ",
        depth,
        if depth == 1 { "" } else { "s" },
        fmt_opt(c.mean_depth, 1),
    );
    match c.critical_path_share.latency {
        Some(lat) if c.critical_path_share.roots.is_some_and(|r| r > 0.0) => {
            let _ = write!(
                t,
                "on the critical path of {} of the root requests through it, accounting \
                 for {} of their latency.",
                fmt_pct(c.critical_path_share.roots),
                fmt_pct(Some(lat))
            );
        }
        _ => t.push_str("never on the critical path of the root requests through it."),
    }
    if let Some(mean) = c.calls_per_parent.mean {
        let _ = write!(
            t,
            " {} calls per parent request (max {}), {} in parallel with a sibling, {} not \
             waited for (fire-and-forget). Parents inferred with mean confidence {}, {} \
             confirmed by trace ids.",
            fmt_opt(Some(mean), 1),
            c.calls_per_parent.max.unwrap_or(0),
            fmt_pct(c.parallel_share),
            fmt_pct(c.fire_and_forget_share),
            fmt_opt(c.inferred_confidence, 2),
            fmt_pct(c.confirmed_by_ids_share)
        );
    }
    for n in &c.n_plus_one {
        let _ = write!(
            t,
            " N+1: {} `{}` called {} times under {} parent requests (up to {} each, one after \
             the other).",
            n.method.as_deref().unwrap_or("-"),
            n.route.as_deref().unwrap_or("-"),
            n.calls,
            n.parents,
            n.max_per_parent
        );
    }
    let w = x.assessment.what_if.unwrap_or_default();
    if let Some(saved) = w.root_latency_ms_per_s_saved {
        let _ = write!(
            t,
            " What-if: its savings would remove {} latency-ms/s of root latency along those \
             critical paths ({} per root request).",
            fmt_opt(Some(saved), 2),
            ms_text(w.root_latency_ms_per_root_saved)
        );
    }
    if let Some(a) = w.if_async.root_latency_ms_per_s_saved.filter(|_| depth > 1) {
        let _ = write!(
            t,
            " Made asynchronous, it would remove {} latency-ms/s from its roots",
            fmt_opt(Some(a), 1)
        );
        match w.if_async.callee_peak_share_freed {
            Some(f) => {
                let _ = write!(
                    t,
                    " and a queue would free {} of {}'s peak load.",
                    fmt_pct(Some(f)),
                    l.server
                );
            }
            None => t.push('.'),
        }
    }
    let _ = writeln!(s, "{t}\n");
}

/// The row of a link's facts with its TLS estimates (only on links that have them).
const TLS_ESTIMATE_ROW: &str = "TLS without keys (estimated)";

/// The estimates from a link's undecrypted TLS records, every figure marked as such.
fn tls_estimate_text(l: &crate::analysis::links::Link) -> String {
    let Some(e) = &l.tls_estimate else {
        return "-".into();
    };
    let requests = e.requests.map_or_else(
        || format!("{} rounds (HTTP/2: requests not countable)", e.turns),
        |n| format!("~{n} requests"),
    );
    format!(
        "estimated from the records of {} connection(s), {}: {requests}; latency ~{} ms \
         (total ~{} ms) per turn; ~{} / ~{} bytes per turn; {} handshakes per request; \
         confidence {}; not estimated: {}",
        e.connections,
        e.mode,
        fmt_opt(e.latency_ms_mean, 1),
        fmt_opt(e.latency_total_ms_mean, 1),
        fmt_opt(e.request_bytes_per_turn, 0),
        fmt_opt(e.response_bytes_per_turn, 0),
        fmt_opt(e.handshakes_per_request, 2),
        e.confidence,
        e.not_estimated.join(", ")
    )
}

/// Which TLS connections were decrypted and which were only estimated (by reason).
fn tls_decryption(s: &mut String, c: &crate::model::Coverage) {
    let undecrypted: u64 = c.tls_undecrypted.values().sum();
    if c.tls_decrypted + undecrypted == 0 {
        return;
    }
    let reasons: Vec<String> = c
        .tls_undecrypted
        .iter()
        .map(|(why, n)| format!("{why} {n}"))
        .collect();
    let _ = writeln!(
        s,
        "\nTLS: {} connection(s) decrypted with the key log (their exchanges are measured like \
         cleartext ones); {undecrypted} not decrypted ({}), whose links carry only the \
         estimates made from their records (`~N est.`).",
        c.tls_decrypted,
        if reasons.is_empty() {
            "-".to_string()
        } else {
            reasons.join(", ")
        }
    );
}
