//! The capture-quality summary: what was read, decoded, lost and evicted, printed on the
//! terminal after every run and written as `quality.json` beside the tables.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use polars::prelude::*;
use serde::Serialize;

use crate::model::Coverage;
use crate::tables::columns;
use crate::tables::Tables;

/// One input of a run, as the summary names it.
#[derive(Clone, Debug, Serialize)]
pub struct InputSummary {
    pub path: PathBuf,
    pub format: &'static str,
    pub gzipped: bool,
    pub packets: u64,
    /// Bytes read (decompressed for gzip inputs).
    pub bytes: u64,
}

/// The path of capture input `input` as the run lists it (`input N` when unknown).
pub fn input_name(inputs: &[InputSummary], input: u16) -> String {
    inputs.get(usize::from(input)).map_or_else(
        || format!("input {input}"),
        |i| i.path.display().to_string(),
    )
}

/// Figures read off the tables themselves (so they also cover Parquet inputs).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct TableFigures {
    pub connections: usize,
    pub exchanges: usize,
    pub connections_by_protocol: Vec<(String, u32)>,
    pub exchanges_by_completeness: Vec<(String, u32)>,
}

impl TableFigures {
    pub fn of(tables: &Tables) -> PolarsResult<TableFigures> {
        Ok(TableFigures {
            connections: tables.connections.height(),
            exchanges: tables.exchanges.height(),
            connections_by_protocol: counts(&tables.connections, columns::PROTOCOL)?,
            exchanges_by_completeness: counts(&tables.exchanges, columns::COMPLETENESS)?,
        })
    }
}

/// Value counts of a string column, largest first, ties by name.
fn counts(df: &DataFrame, column: &str) -> PolarsResult<Vec<(String, u32)>> {
    let mut map = std::collections::BTreeMap::<&str, u32>::new();
    for v in df.column(column)?.str()?.iter().flatten() {
        *map.entry(v).or_default() += 1;
    }
    let mut v: Vec<_> = map.into_iter().map(|(k, n)| (k.to_owned(), n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(v)
}

#[derive(Serialize)]
struct QualityFile<'a> {
    schema: &'static str,
    inputs: &'a [InputSummary],
    capture: &'a Coverage,
    tables: &'a TableFigures,
}

pub fn write_quality_json(
    dir: &Path,
    inputs: &[InputSummary],
    cov: &Coverage,
    figures: &TableFigures,
) -> anyhow::Result<()> {
    let file = QualityFile {
        schema: "linkrank.quality/v1",
        inputs,
        capture: cov,
        tables: figures,
    };
    let path = dir.join("quality.json");
    let json = serde_json::to_string_pretty(&file)?;
    std::fs::write(&path, json + "\n").with_context(|| format!("{}: cannot write", path.display()))
}

/// The terminal summary.
pub fn render(
    inputs: &[InputSummary],
    cov: &Coverage,
    figures: &TableFigures,
    out_dir: &Path,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "inputs");
    for i in inputs {
        let gz = if i.gzipped { "+gzip" } else { "" };
        let _ = writeln!(
            s,
            "  {} ({}{gz}): {} packets, {} bytes",
            i.path.display(),
            i.format,
            i.packets,
            i.bytes
        );
    }
    live_counters(&mut s, cov);
    let _ = writeln!(s, "capture");
    line(&mut s, "packets read", cov.packets);
    line(&mut s, "TCP segments decoded", cov.tcp_segments);
    line(&mut s, "non-IP frames", cov.non_ip);
    line(&mut s, "non-TCP packets", cov.non_tcp);
    line(&mut s, "unsupported link types", cov.unsupported_link);
    line(
        &mut s,
        "malformed (decode)",
        cov.decode_errors + cov.tcp_malformed,
    );
    line(&mut s, "truncated by snaplen", cov.truncated_snaplen);
    line(&mut s, "tunnels unwrapped", cov.tunnels_unwrapped);
    line(&mut s, "IPv4 fragments", cov.ip_fragments);
    if cov.ip_fragments > 0 {
        let _ = writeln!(
            s,
            "    reassembled {}, dropped {}",
            cov.ip_fragments_reassembled, cov.ip_fragments_dropped
        );
    }
    let _ = writeln!(s, "connections");
    line(&mut s, "TCP connections", cov.connections);
    for (proto, n) in &figures.connections_by_protocol {
        let _ = writeln!(s, "    {proto:<12} {n}");
    }
    line(
        &mut s,
        "without handshake (started mid-connection)",
        cov.connections_without_handshake,
    );
    line(&mut s, "one-sided", cov.one_sided_connections);
    if cov.unanswered_attempts > 0 {
        line(
            &mut s,
            "unanswered attempts (SYN only, no table row)",
            cov.unanswered_attempts,
        );
    }
    line(&mut s, "gaps (bytes lost)", cov.gaps);
    if cov.gaps > 0 {
        let _ = writeln!(s, "    {} bytes lost", cov.gap_bytes);
    }
    line(&mut s, "retransmitted bytes", cov.retransmitted_bytes);
    line(&mut s, "capture duplicates ignored", cov.capture_duplicates);
    line(&mut s, "evicted idle", cov.evicted_idle);
    line(&mut s, "evicted for capacity", cov.evicted_capacity);
    line(
        &mut s,
        "out-of-order buffer overflows",
        cov.out_of_order_overflows,
    );
    line(&mut s, "still open at end of capture", cov.flushed_at_end);
    line(&mut s, "stray segments after close", cov.stray_segments);
    let _ = writeln!(s, "http");
    line(&mut s, "exchanges", figures.exchanges as u64);
    for (kind, n) in &figures.exchanges_by_completeness {
        let _ = writeln!(s, "    {kind:<14} {n}");
    }
    line(&mut s, "malformed HTTP messages", cov.malformed_http);
    line(&mut s, "resynchronisations after gaps", cov.http_resyncs);
    line(
        &mut s,
        "header blocks dropped (buffer bound)",
        cov.header_budget_overflows,
    );
    let undecrypted: u64 = cov.tls_undecrypted.values().sum();
    if cov.tls_decrypted + undecrypted > 0 {
        let _ = writeln!(s, "tls");
        line(&mut s, "connections decrypted (key log)", cov.tls_decrypted);
        for (why, n) in &cov.tls_undecrypted {
            line(&mut s, &format!("not decrypted: {why} (estimated)"), *n);
        }
    }
    // Name sources, shown only when the capture had any (keeps HTTP-only summaries short).
    if cov.tls_client_hellos + cov.tls_client_hello_unparsed + cov.dns_responses + cov.dns_malformed
        > 0
    {
        let _ = writeln!(s, "names");
        line(
            &mut s,
            "TLS ClientHellos read (SNI, ALPN)",
            cov.tls_client_hellos,
        );
        line(
            &mut s,
            "TLS ClientHellos unreadable",
            cov.tls_client_hello_unparsed,
        );
        line(&mut s, "DNS responses", cov.dns_responses);
        line(&mut s, "DNS answers kept", cov.dns_answers);
        line(&mut s, "malformed DNS responses", cov.dns_malformed);
        if cov.dns_answers_dropped > 0 {
            line(
                &mut s,
                "DNS answers dropped (row bound)",
                cov.dns_answers_dropped,
            );
        }
    }
    for w in &cov.input_warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    let _ = writeln!(
        s,
        "wrote {}/{{exchanges,connections,dns}}.parquet and quality.json",
        out_dir.display()
    );
    s
}

/// libpcap's counters per interface of a live capture, and a warning when packets were
/// lost before linkrank saw them.
fn live_counters(s: &mut String, cov: &Coverage) {
    if cov.live.is_empty() {
        return;
    }
    let _ = writeln!(s, "live capture (libpcap)");
    for c in &cov.live {
        let _ = writeln!(
            s,
            "  {}: received {}, dropped {}, dropped by the interface {}, analysed {}",
            c.interface, c.received, c.dropped, c.if_dropped, c.analysed
        );
        if c.not_analysed > 0 {
            let _ = writeln!(
                s,
                "    {} received after --packets was reached",
                c.not_analysed
            );
        }
        if c.written + c.write_skipped > 0 {
            let _ = writeln!(
                s,
                "    written to the pcapng {}, left out (size bound) {}",
                c.written, c.write_skipped
            );
        }
    }
    let dropped = cov.live_dropped();
    if dropped > 0 {
        let _ = writeln!(
            s,
            "warning: {dropped} packets were dropped before linkrank read them (kernel buffer \
             or interface): the figures miss that traffic"
        );
    }
}

fn line(s: &mut String, label: &str, n: u64) {
    let _ = writeln!(s, "  {label:<44} {n}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LiveCounters;

    fn live(dropped: u64, if_dropped: u64) -> Coverage {
        Coverage {
            live: vec![LiveCounters {
                interface: "veth0".into(),
                received: 120,
                dropped,
                if_dropped,
                analysed: 100,
                ..LiveCounters::default()
            }],
            ..Coverage::default()
        }
    }

    #[test]
    fn a_live_run_that_dropped_packets_says_so() {
        let mut s = String::new();
        live_counters(&mut s, &live(15, 5));
        assert!(
            s.contains("veth0: received 120, dropped 15, dropped by the interface 5, analysed 100"),
            "{s}"
        );
        assert!(s.contains("warning: 20 packets were dropped"), "{s}");
        let mut s = String::new();
        live_counters(&mut s, &live(0, 0));
        assert!(s.contains("received 120") && !s.contains("warning"), "{s}");
        let mut s = String::new();
        live_counters(&mut s, &Coverage::default());
        assert!(s.is_empty(), "files only: no live section");
    }
}
