//! The connection figures of each link, folded over blocks of the connections frame (the
//! connections table with `client` and `server` named).

use std::collections::BTreeMap;

use polars::prelude::*;
use rustc_hash::FxHashMap;

use super::{at, count_value, Grouped};
use crate::analysis::links::samples::Samples;
use crate::analysis::links::{Percentiles, RttPercentiles};
use crate::tables::columns;

/// The columns a link's key is made of.
const LINK_KEY: [&str; 2] = [columns::CLIENT, columns::SERVER];

/// The integer figures of the connections group-by.
pub(crate) const CONN_INTS: &[&str] = &[
    "connections",
    "tcp_handshakes",
    "tls",
    "resets",
    "retransmitted",
    "zero_windows",
    "zero_windows_known",
    "timeouts",
    "timeouts_known",
    "rto_wait_known",
    "zero_window_known",
    "with_gaps",
    "gap_bytes",
    columns::ONE_SIDED,
    "no_handshake",
    "single",
];

/// Counts kept beside [`CONN_INTS`]: connections that carried HTTP (for the mean
/// requests per connection) and TLS sessions resumed.
const CONN_INNER_INTS: [&str; 2] = ["carrying", "resumed"];

/// The string columns whose values are counted per link, in the order
/// [`ConnAcc::take_counted`] gives their counts. A table written before one existed
/// simply has no counts for it.
pub(crate) const CONN_COUNTED: [&str; 4] = [
    columns::PROTOCOL,
    columns::TLS_SNI,
    columns::TLS_VERSION,
    columns::TLS_ALPN,
];

/// The connection figures of one link.
#[derive(Clone)]
pub(crate) struct ConnAcc {
    ints: FxHashMap<&'static str, u64>,
    /// Sums of nanoseconds, for the totals in ms.
    ns: FxHashMap<&'static str, i64>,
    handshake_rtt_ms: Samples,
    tls_handshake_ms: Samples,
    /// Exchanges per connection that carried HTTP.
    requests_per_connection: Samples,
    requests_on_carrying: u64,
    max_requests: Option<u32>,
    counted: [BTreeMap<String, u64>; CONN_COUNTED.len()],
}

impl ConnAcc {
    fn new(exact_samples: usize) -> ConnAcc {
        ConnAcc {
            ints: FxHashMap::default(),
            ns: FxHashMap::default(),
            handshake_rtt_ms: Samples::up_to(exact_samples),
            tls_handshake_ms: Samples::up_to(exact_samples),
            requests_per_connection: Samples::up_to(exact_samples),
            requests_on_carrying: 0,
            max_requests: None,
            counted: Default::default(),
        }
    }

    fn bump(&mut self, name: &'static str, by: u64) {
        debug_assert!(
            CONN_INTS.contains(&name) || CONN_INNER_INTS.contains(&name),
            "{name} is not a connection figure"
        );
        *self.ints.entry(name).or_default() += by;
    }

    /// A count or sum by its group-by name (`CONN_INTS`); 0 when nothing added to it.
    pub(crate) fn int(&self, name: &str) -> u64 {
        self.ints.get(name).copied().unwrap_or(0)
    }

    /// A sum of nanoseconds by its group-by name, in ms (0 when nothing added to it).
    pub(crate) fn ms(&self, name: &str) -> f64 {
        self.ns.get(name).copied().unwrap_or(0) as f64 / 1e6
    }

    /// The handshake round trip's and the TLS handshake's percentiles, in ms.
    pub(crate) fn handshake_percentiles(&mut self) -> (RttPercentiles, RttPercentiles) {
        let rtt = |p: Percentiles| RttPercentiles {
            p50: p.p50,
            p95: p.p95,
        };
        (
            rtt(self.handshake_rtt_ms.percentiles()),
            rtt(self.tls_handshake_ms.percentiles()),
        )
    }

    /// Mean, percentiles and maximum of the requests per connection that carried HTTP.
    pub(crate) fn requests_per_connection(&mut self) -> (Option<f64>, Percentiles, Option<f64>) {
        let carrying = self.int("carrying");
        let mean = (carrying > 0).then(|| self.requests_on_carrying as f64 / carrying as f64);
        let p = self.requests_per_connection.percentiles();
        (mean, p, self.max_requests.map(f64::from))
    }

    /// Connections per value of each [`CONN_COUNTED`] column, in its order.
    pub(crate) fn take_counted(&mut self) -> [BTreeMap<String, u64>; CONN_COUNTED.len()] {
        std::mem::take(&mut self.counted)
    }
}

/// Connections folded per link.
pub(crate) type ConnFold = Grouped<2, ConnAcc>;

impl ConnFold {
    /// Folds a block of rows of the connections frame.
    pub(crate) fn add(&mut self, cn: &DataFrame) -> PolarsResult<()> {
        let group = self.rows(cn, &LINK_KEY, ConnAcc::new)?;
        let accs = self.accs();
        let has = |c: &str| cn.get_column_names().iter().any(|n| n.as_str() == c);
        let both = |a: &str, b: &str| col(a) + col(b);
        // Per row, what the link sums; a sum of both directions is null when either is
        // (tables written before a counter existed), as polars' addition makes it.
        let mut exprs = vec![
            both(
                columns::C2S_RETRANSMITTED_BYTES,
                columns::S2C_RETRANSMITTED_BYTES,
            )
            .alias("retransmitted"),
            both(columns::C2S_ZERO_WINDOWS, columns::S2C_ZERO_WINDOWS).alias("zero_windows"),
            both(
                columns::C2S_RETRANSMISSION_TIMEOUTS,
                columns::S2C_RETRANSMISSION_TIMEOUTS,
            )
            .alias("timeouts"),
            both(columns::C2S_GAPS, columns::S2C_GAPS).alias("gaps"),
            both(columns::C2S_GAP_BYTES, columns::S2C_GAP_BYTES).alias("gap_bytes"),
            both(columns::C2S_RTO_WAIT_NS, columns::S2C_RTO_WAIT_NS).alias("rto_wait_ns"),
            col(columns::C2S_ZERO_WINDOW_NS).alias("client_zero_window_ns"),
            col(columns::S2C_ZERO_WINDOW_NS).alias("server_zero_window_ns"),
            col(columns::SYN_NS).is_not_null().alias("syn"),
            col(columns::PROTOCOL).eq(lit("tls")).alias("tls"),
            col(columns::CLOSE).eq(lit("rst")).alias("rst"),
            col(columns::ONE_SIDED),
            col(columns::HANDSHAKE_SEEN).not().alias("no_handshake"),
            (col(columns::HANDSHAKE_RTT_NS).cast(DataType::Float64) / lit(1e6)).alias("rtt_ms"),
            col(columns::EXCHANGES).cast(DataType::UInt32),
        ];
        if has(columns::TLS_RESUMED) {
            exprs.push(
                col(columns::TLS_RESUMED)
                    .fill_null(lit(false))
                    .alias("resumed"),
            );
        }
        if has(columns::TLS_HANDSHAKE_NS) {
            exprs.push(
                (col(columns::TLS_HANDSHAKE_NS).cast(DataType::Float64) / lit(1e6)).alias("tls_ms"),
            );
        }
        let rows = cn.clone().lazy().select(exprs).collect()?;

        for &g in &group {
            at(accs, g).bump("connections", 1);
        }
        // Sums, with how many rows had them ("known").
        for (column, sum, known) in [
            ("retransmitted", "retransmitted", None),
            ("zero_windows", "zero_windows", Some("zero_windows_known")),
            ("timeouts", "timeouts", Some("timeouts_known")),
            ("gap_bytes", "gap_bytes", None),
        ] {
            let c = rows.column(column)?.cast(&DataType::UInt64)?;
            for (&g, v) in group.iter().zip(c.u64()?.iter()) {
                if let Some(v) = v {
                    let a = at(accs, g);
                    a.bump(sum, v);
                    if let Some(k) = known {
                        a.bump(k, 1);
                    }
                }
            }
        }
        let gaps = rows.column("gaps")?.cast(&DataType::UInt64)?;
        for (&g, v) in group.iter().zip(gaps.u64()?.iter()) {
            if v.is_some_and(|v| v > 0) {
                at(accs, g).bump("with_gaps", 1);
            }
        }
        for (column, known) in [
            ("rto_wait_ns", Some("rto_wait_known")),
            ("client_zero_window_ns", Some("zero_window_known")),
            ("server_zero_window_ns", None),
        ] {
            let c = rows.column(column)?.cast(&DataType::Int64)?;
            for (&g, v) in group.iter().zip(c.i64()?.iter()) {
                if let Some(v) = v {
                    let a = at(accs, g);
                    *a.ns.entry(column).or_default() += v;
                    if let Some(k) = known {
                        a.bump(k, 1);
                    }
                }
            }
        }
        // Connections where a flag is true.
        let mut flags = vec![
            ("syn", "tcp_handshakes"),
            ("tls", "tls"),
            ("rst", "resets"),
            (columns::ONE_SIDED, columns::ONE_SIDED),
            ("no_handshake", "no_handshake"),
        ];
        if has(columns::TLS_RESUMED) {
            flags.push(("resumed", "resumed"));
        }
        for (column, name) in flags {
            for (&g, v) in group.iter().zip(rows.column(column)?.bool()?.iter()) {
                if v == Some(true) {
                    at(accs, g).bump(name, 1);
                }
            }
        }
        for (&g, v) in group.iter().zip(rows.column("rtt_ms")?.f64()?.iter()) {
            if let Some(v) = v {
                at(accs, g).handshake_rtt_ms.add(v);
            }
        }
        if has(columns::TLS_HANDSHAKE_NS) {
            for (&g, v) in group.iter().zip(rows.column("tls_ms")?.f64()?.iter()) {
                if let Some(v) = v {
                    at(accs, g).tls_handshake_ms.add(v);
                }
            }
        }
        // Requests per connection, over the connections that carried HTTP.
        for (&g, n) in group
            .iter()
            .zip(rows.column(columns::EXCHANGES)?.u32()?.iter())
        {
            let Some(n) = n else { continue };
            let a = at(accs, g);
            if n == 1 {
                a.bump("single", 1);
            }
            if n > 0 {
                a.bump("carrying", 1);
                a.requests_on_carrying += u64::from(n);
                a.requests_per_connection.add(f64::from(n));
                a.max_requests = Some(a.max_requests.map_or(n, |m| m.max(n)));
            }
        }
        for (k, column) in CONN_COUNTED.iter().enumerate() {
            if !has(column) {
                continue;
            }
            for (&g, v) in group.iter().zip(cn.column(column)?.str()?.iter()) {
                if let Some(v) = v {
                    count_value(&mut at(accs, g).counted[k], v);
                }
            }
        }
        Ok(())
    }
}
