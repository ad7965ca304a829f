//! The HTTP figures of groups of exchanges (per route, rolled up per link), folded over
//! blocks of the link measures' exchanges frame.

use std::collections::BTreeMap;

use polars::prelude::*;
use rustc_hash::FxHashMap;

use super::{at, count_value, Grouped, Key};
use crate::analysis::links::samples::Samples;
use crate::analysis::links::Percentiles;
use crate::tables::columns;

/// The columns a route's key is made of; a link's key is the first two.
pub(crate) const ROUTE_KEY: [&str; 4] = [
    columns::CLIENT,
    columns::SERVER,
    columns::METHOD,
    columns::ROUTE,
];

/// The integer figures of the HTTP group-by (counts and sums; null read as 0), by the
/// names both engines give them.
pub(crate) const HTTP_INTS: &[&str] = &[
    "requests",
    "s1xx",
    "s2xx",
    "s3xx",
    "s4xx",
    "s5xx",
    "s429",
    "s503",
    "no_response",
    "req_headers",
    "req_bodies",
    "resp_headers",
    "resp_bodies",
    "json",
    "new_conn",
    "incomplete",
    "idempotency_keyed",
    "retry_after",
    "forwarded",
    "retried",
    "recovered",
    columns::JSON_BODY_BYTES,
    columns::JSON_IDENTITY_BODY_BYTES,
    "replayed",
    "replay_h1",
    "replay_h2",
    "replay_grpc",
    "stalled",
    "h2_streams",
    "h2_complete",
    "grpc_calls",
    "req_stalled",
    "resp_stalled",
    "slow_starts",
    "slow_start_responses",
];

/// The string columns whose values are counted per group, in the order
/// [`HttpAcc::take_counted`] gives their counts (the fleet's query counts the same).
pub(crate) const COUNTED: [&str; 7] = [
    columns::VERSION,
    columns::REQ_CONTENT_TYPE,
    columns::RESP_CONTENT_TYPE,
    columns::STREAM_ERROR,
    columns::GRPC_STATUS_NAME,
    columns::GRPC_CALL_KIND,
    columns::EXCHANGE_PROTOCOL,
];

/// The figures of one group of exchanges.
#[derive(Clone)]
pub(crate) struct HttpAcc {
    ints: FxHashMap<&'static str, u64>,
    ttfb_ms: Samples,
    total_ms: Samples,
    stall_ms: Samples,
    req_stall_ms: Samples,
    resp_stall_ms: Samples,
    /// Sums for the means (over every request of the group).
    stall_ms_sum: f64,
    slow_start_ms_sum: f64,
    /// Requests per second of the request's first byte.
    seconds: BTreeMap<i64, u64>,
    /// Requests per value of each [`COUNTED`] column (nulls not counted).
    counted: [BTreeMap<String, u64>; COUNTED.len()],
}

impl HttpAcc {
    /// No exchanges yet; latencies kept exactly up to `exact_samples` per measure.
    fn new(exact_samples: usize) -> HttpAcc {
        HttpAcc {
            ints: FxHashMap::default(),
            ttfb_ms: Samples::up_to(exact_samples),
            total_ms: Samples::up_to(exact_samples),
            stall_ms: Samples::up_to(exact_samples),
            req_stall_ms: Samples::up_to(exact_samples),
            resp_stall_ms: Samples::up_to(exact_samples),
            stall_ms_sum: 0.0,
            slow_start_ms_sum: 0.0,
            seconds: BTreeMap::new(),
            counted: Default::default(),
        }
    }

    fn bump(&mut self, name: &'static str, by: u64) {
        debug_assert!(HTTP_INTS.contains(&name), "{name} is not an HTTP figure");
        *self.ints.entry(name).or_default() += by;
    }

    /// A count or sum by its group-by name (`HTTP_INTS`); 0 when nothing added to it.
    pub(crate) fn int(&self, name: &str) -> u64 {
        self.ints.get(name).copied().unwrap_or(0)
    }

    /// Percentiles of the time to first byte, the whole exchange, the stall and the
    /// request's and response's own stalls, in ms.
    pub(crate) fn percentiles(&mut self) -> [Percentiles; 5] {
        [
            self.ttfb_ms.percentiles(),
            self.total_ms.percentiles(),
            self.stall_ms.percentiles(),
            self.req_stall_ms.percentiles(),
            self.resp_stall_ms.percentiles(),
        ]
    }

    /// Mean stall and mean slow-start restart cost per request, in ms.
    pub(crate) fn means(&self) -> (Option<f64>, Option<f64>) {
        let requests = self.int("requests");
        let mean = |sum: f64| (requests > 0).then(|| sum / requests as f64);
        (mean(self.stall_ms_sum), mean(self.slow_start_ms_sum))
    }

    /// Requests in the group's busiest second.
    pub(crate) fn peak(&self) -> Option<u64> {
        self.seconds.values().max().copied()
    }

    /// Requests per value of each [`COUNTED`] column, in its order.
    pub(crate) fn take_counted(&mut self) -> [BTreeMap<String, u64>; COUNTED.len()] {
        std::mem::take(&mut self.counted)
    }

    /// Requests per value of [`columns::EXCHANGE_PROTOCOL`].
    pub(crate) fn protocols(&self) -> &BTreeMap<String, u64> {
        &self.counted[COUNTED.len() - 1]
    }

    /// Adds `other`'s exchanges to this group's.
    pub(crate) fn merge(&mut self, other: HttpAcc) {
        for (name, n) in other.ints {
            self.bump(name, n);
        }
        self.ttfb_ms.merge(other.ttfb_ms);
        self.total_ms.merge(other.total_ms);
        self.stall_ms.merge(other.stall_ms);
        self.req_stall_ms.merge(other.req_stall_ms);
        self.resp_stall_ms.merge(other.resp_stall_ms);
        self.stall_ms_sum += other.stall_ms_sum;
        self.slow_start_ms_sum += other.slow_start_ms_sum;
        for (s, n) in other.seconds {
            *self.seconds.entry(s).or_default() += n;
        }
        for (ours, theirs) in self.counted.iter_mut().zip(other.counted) {
            for (v, n) in theirs {
                *ours.entry(v).or_default() += n;
            }
        }
    }
}

/// The groups of a fold, by key, with their figures.
pub(crate) type Groups = BTreeMap<Key, HttpAcc>;

/// Exchanges folded per route ([`ROUTE_KEY`]).
pub(crate) type HttpFold = Grouped<4, HttpAcc>;

impl HttpFold {
    /// Folds a block of rows of the link measures' exchanges frame (the exchanges table
    /// plus the columns `exchanges_frame` derives).
    pub(crate) fn add(&mut self, ex: &DataFrame) -> PolarsResult<()> {
        let group = self.rows(ex, &ROUTE_KEY, HttpAcc::new)?;
        self.fold_columns(ex, &group)
    }

    fn fold_columns(&mut self, ex: &DataFrame, group: &[u32]) -> PolarsResult<()> {
        let accs = self.accs();

        // Requests and status classes.
        let status = ex.column(columns::STATUS)?.cast(&DataType::UInt32)?;
        for (&g, s) in group.iter().zip(status.u32()?.iter()) {
            let a = at(accs, g);
            a.bump("requests", 1);
            match s {
                None => a.bump("no_response", 1),
                Some(s) => {
                    let class = match s {
                        100..=199 => Some("s1xx"),
                        200..=299 => Some("s2xx"),
                        300..=399 => Some("s3xx"),
                        400..=499 => Some("s4xx"),
                        500..=599 => Some("s5xx"),
                        _ => None,
                    };
                    if let Some(c) = class {
                        a.bump(c, 1);
                    }
                    if s == 429 {
                        a.bump("s429", 1);
                    }
                    if s == 503 {
                        a.bump("s503", 1);
                    }
                }
            }
        }

        // Sums of byte counts (nulls as 0).
        for (column, name) in [
            (columns::REQ_HEADER_BYTES, "req_headers"),
            (columns::REQ_BODY_BYTES, "req_bodies"),
            (columns::RESP_HEADER_BYTES, "resp_headers"),
            (columns::RESP_BODY_BYTES, "resp_bodies"),
            (columns::JSON_BODY_BYTES, columns::JSON_BODY_BYTES),
            (
                columns::JSON_IDENTITY_BODY_BYTES,
                columns::JSON_IDENTITY_BODY_BYTES,
            ),
            (columns::REPLAY_H1_HEADER_BYTES, "replay_h1"),
            (columns::REPLAY_H2_HEADER_BYTES, "replay_h2"),
            (columns::REPLAY_GRPC_HEADER_BYTES, "replay_grpc"),
        ] {
            let c = ex.column(column)?.cast(&DataType::UInt64)?;
            for (&g, v) in group.iter().zip(c.u64()?.iter()) {
                if let Some(v) = v {
                    at(accs, g).bump(name, v);
                }
            }
        }

        // Rows where a flag is true.
        for (column, name) in [
            (columns::JSON, "json"),
            (columns::NEW_CONN, "new_conn"),
            (columns::INCOMPLETE, "incomplete"),
            (columns::IDEMPOTENCY_KEYED, "idempotency_keyed"),
            (columns::RETRY_AFTER, "retry_after"),
            (columns::FORWARDED, "forwarded"),
            (columns::RETRIED_FAILURE, "retried"),
            (columns::RECOVERED_FAILURE, "recovered"),
            (columns::HEADERS_COMPLETE, "h2_complete"),
            (columns::SLOW_START_RESPONSE, "slow_start_responses"),
        ] {
            for (&g, v) in group.iter().zip(ex.column(column)?.bool()?.iter()) {
                if v == Some(true) {
                    at(accs, g).bump(name, 1);
                }
            }
        }

        // Rows where a value is present.
        for (column, name) in [
            (columns::REPLAY_GRPC_HEADER_BYTES, "replayed"),
            (columns::STREAM_ID, "h2_streams"),
            (columns::GRPC_CALL_KIND, "grpc_calls"),
            (columns::REQ_STALL_MS, "req_stalled"),
            (columns::RESP_STALL_MS, "resp_stalled"),
            (columns::SLOW_START_MS, "slow_starts"),
        ] {
            let present = ex.column(column)?.is_not_null();
            for (&g, v) in group.iter().zip(present.iter()) {
                if v == Some(true) {
                    at(accs, g).bump(name, 1);
                }
            }
        }

        // Latencies and stalls, in ms.
        let floats = |column: &str| -> PolarsResult<Float64Chunked> {
            Ok(ex.column(column)?.cast(&DataType::Float64)?.f64()?.clone())
        };
        type Pick = fn(&mut HttpAcc) -> &mut Samples;
        let samples: [(&str, Pick); 5] = [
            (columns::TTFB_MS, |a| &mut a.ttfb_ms),
            (columns::TOTAL_MS, |a| &mut a.total_ms),
            (columns::STALL_MS, |a| &mut a.stall_ms),
            (columns::REQ_STALL_MS, |a| &mut a.req_stall_ms),
            (columns::RESP_STALL_MS, |a| &mut a.resp_stall_ms),
        ];
        for (column, pick) in samples {
            for (&g, v) in group.iter().zip(floats(column)?.iter()) {
                if let Some(v) = v {
                    pick(at(accs, g)).add(v);
                }
            }
        }
        for (&g, v) in group.iter().zip(floats(columns::STALL_MS)?.iter()) {
            let a = at(accs, g);
            if let Some(v) = v {
                a.stall_ms_sum += v;
                if v > 0.0 {
                    a.bump("stalled", 1);
                }
            }
        }
        for (&g, v) in group.iter().zip(floats(columns::SLOW_START_MS)?.iter()) {
            at(accs, g).slow_start_ms_sum += v.unwrap_or(0.0);
        }

        // Requests per second, and per value of the counted columns.
        let second = ex.column(columns::SECOND)?.cast(&DataType::Int64)?;
        for (&g, s) in group.iter().zip(second.i64()?.iter()) {
            if let Some(s) = s {
                *at(accs, g).seconds.entry(s).or_default() += 1;
            }
        }
        for (k, column) in COUNTED.iter().enumerate() {
            for (&g, v) in group.iter().zip(ex.column(column)?.str()?.iter()) {
                if let Some(v) = v {
                    count_value(&mut at(accs, g).counted[k], v);
                }
            }
        }
        Ok(())
    }
}

/// The groups of `routes` merged by their first `width` key columns (2: per link).
pub(crate) fn roll_up(routes: &Groups, width: usize) -> Groups {
    let mut out = Groups::new();
    for (key, acc) in routes {
        let k: Key = key[..width].to_vec();
        match out.get_mut(&k) {
            Some(a) => a.merge(acc.clone()),
            None => {
                out.insert(k, acc.clone());
            }
        }
    }
    out
}
