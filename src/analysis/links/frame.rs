//! The exchanges and connections tables with their endpoints named, plus the derived
//! columns the link measures group and aggregate.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use polars::prelude::*;
use rustc_hash::FxHashMap;

use crate::analysis::identity::{Named, Naming};
use crate::ingest::http::h2::{grpc_http_status, grpc_status_name};
use crate::tables::{columns, Tables};

/// Service names of every row's client and server: each distinct client address and
/// server endpoint named once, and per row its client's and server's position (a table
/// has few endpoints and many rows).
pub(crate) struct RowNames {
    client_of: Vec<u32>,
    server_of: Vec<u32>,
    /// The client's name and its IP address as the table wrote it.
    clients: Vec<(Named, String)>,
    /// The server's name and the endpoint's `ip:port`.
    servers: Vec<(Named, String)>,
}

impl RowNames {
    pub fn rows(&self) -> usize {
        self.client_of.len()
    }

    pub fn client(&self, row: usize) -> &Named {
        &self.clients[self.client_of[row] as usize].0
    }

    pub fn server(&self, row: usize) -> &Named {
        &self.servers[self.server_of[row] as usize].0
    }

    /// The position of the row's client among the distinct client addresses: equal for
    /// two rows exactly when their clients' addresses are.
    pub fn client_position(&self, row: usize) -> u32 {
        self.client_of[row]
    }

    /// The distinct (client, server endpoint) pairs of the rows, each once, as (client
    /// name, client IP, server name, server `ip:port`).
    pub fn pairs(&self) -> impl Iterator<Item = (&Named, &str, &Named, &str)> + '_ {
        let mut seen: Vec<(u32, u32)> = self
            .client_of
            .iter()
            .copied()
            .zip(self.server_of.iter().copied())
            .collect();
        seen.sort_unstable();
        seen.dedup();
        seen.into_iter().map(move |(c, s)| {
            let (client, ip) = &self.clients[c as usize];
            let (server, endpoint) = &self.servers[s as usize];
            (client, ip.as_str(), server, endpoint.as_str())
        })
    }

    /// A column of the client (or server) name of each of `rows`.
    fn column(&self, name: &str, server: bool, rows: std::ops::Range<usize>) -> Column {
        let names: Vec<&str> = rows
            .map(|r| {
                if server {
                    self.server(r).name.as_str()
                } else {
                    self.client(r).name.as_str()
                }
            })
            .collect();
        Column::new(name.into(), names)
    }
}

/// Names each row of a table with `client_ip`, `server_ip`, `server_port` columns.
pub(crate) fn name_rows(df: &DataFrame, naming: &Naming) -> PolarsResult<RowNames> {
    let cip = df.column(columns::CLIENT_IP)?.str()?;
    let sip = df.column(columns::SERVER_IP)?.str()?;
    let sport = df.column(columns::SERVER_PORT)?.u32()?;
    let mut clients: HashMap<&str, u32> = HashMap::new();
    let mut servers: HashMap<(&str, u32), u32> = HashMap::new();
    let mut out = RowNames {
        client_of: Vec::with_capacity(df.height()),
        server_of: Vec::with_capacity(df.height()),
        clients: Vec::new(),
        servers: Vec::new(),
    };
    for ((c, s), p) in cip.iter().zip(sip.iter()).zip(sport.iter()) {
        let c = c.unwrap_or("");
        let (s, p) = (s.unwrap_or(""), p.unwrap_or(0));
        let client = *clients.entry(c).or_insert_with(|| {
            let named = match c.parse::<IpAddr>() {
                Ok(ip) => naming.client(ip),
                Err(_) => unparsable(c),
            };
            out.clients.push((named, c.to_owned()));
            (out.clients.len() - 1) as u32
        });
        let server = *servers.entry((s, p)).or_insert_with(|| {
            let named = match s.parse::<IpAddr>() {
                Ok(ip) => {
                    let port = p as u16;
                    (
                        naming.server(ip, port),
                        std::net::SocketAddr::new(ip, port).to_string(),
                    )
                }
                Err(_) => (unparsable(s), format!("{s}:{p}")),
            };
            out.servers.push(named);
            (out.servers.len() - 1) as u32
        });
        out.client_of.push(client);
        out.server_of.push(server);
    }
    Ok(out)
}

/// Tables written by hand could hold anything; such a row keeps its text as its name.
fn unparsable(text: &str) -> Named {
    Named {
        name: text.to_owned(),
        source: crate::analysis::identity::NameSource::Fallback,
    }
}

/// A media type is JSON when it is `application/json` or any `+json` suffix type.
pub(crate) fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|t| {
        let t = t.trim().to_ascii_lowercase();
        t == "application/json" || t.ends_with("+json") || t == "text/json"
    })
}

/// Request header names that carry an idempotency key (the IETF draft's and the common
/// `X-` spelling).
const IDEMPOTENCY_HEADERS: &[&str] = &["idempotency-key", "x-idempotency-key"];

/// Request header names a proxy adds when it forwards a request (RFC 7239, RFC 9110
/// §7.6.3, and the de facto `X-` ones nginx, Envoy and HAProxy set).
const FORWARDING_HEADERS: &[&str] = &["x-forwarded-for", "x-real-ip", "forwarded", "via"];

/// A failure (5xx, 429 or no answer) is retried when the same client address sends the
/// same method, route and request body length to the same service within this long of
/// the failed exchange's end: what a client's retry of that request looks like on the
/// wire.
const RETRY_WINDOW_NS: i64 = 2_000_000_000;

/// Per row and per set of `sets`: the header-name list `column` (lower-case,
/// comma-separated) holds one of the set's names. One pass answers every set; a client
/// sends the same list on most of its requests, so each distinct list is split once.
fn header_flags<const N: usize>(
    df: &DataFrame,
    column: &str,
    sets: [&[&str]; N],
) -> PolarsResult<[Vec<bool>; N]> {
    let mut seen: FxHashMap<&str, [bool; N]> = FxHashMap::default();
    let mut out: [Vec<bool>; N] = std::array::from_fn(|_| Vec::with_capacity(df.height()));
    for list in df.column(column)?.str()?.iter() {
        let flags = list.map_or([false; N], |l| {
            *seen.entry(l).or_insert_with(|| {
                sets.map(|names| l.split(',').any(|h| names.contains(&h.trim())))
            })
        });
        for (o, f) in out.iter_mut().zip(flags) {
            o.push(f);
        }
    }
    Ok(out)
}

/// Per row: the exchange failed (5xx, 429, no response) and the client retried it
/// (`RETRY_WINDOW_NS`); and the retry succeeded (a status below 400).
fn retried_failures(ex: &DataFrame, names: &RowNames) -> PolarsResult<(Vec<bool>, Vec<bool>)> {
    let n = ex.height();
    let method = ex.column(columns::METHOD)?.str()?;
    let route = ex.column(columns::ROUTE)?.str()?;
    let body = ex.column(columns::REQ_BODY_LEN)?.u64()?;
    let status = ex.column(columns::STATUS)?.u32()?;
    let start = ex.column(columns::REQ_FIRST_NS)?.i64()?;
    let end = ex.column(columns::RESP_LAST_NS)?.i64()?;
    let req_last = ex.column(columns::REQ_LAST_NS)?.i64()?;
    let failed = |s: Option<u32>| s.is_none_or(|s| s >= 500 || s == 429);
    // The same request from the same client, in time order. Each row's key is made of
    // numbers standing for its strings (equal strings, equal numbers), so that the sort
    // compares integers: only which rows share a key and their order in time matter. The
    // client's position in `names` stands for its address (and so its name); the server
    // is its name, whichever endpoint answered.
    fn id<'a>(ids: &mut FxHashMap<&'a str, u32>, s: Option<&'a str>) -> u32 {
        s.map_or(0, |s| {
            let next = ids.len() as u32 + 1;
            *ids.entry(s).or_insert(next)
        })
    }
    let mut ids: FxHashMap<&str, u32> = FxHashMap::default();
    type Key = (u32, u32, u32, u32, Option<u64>);
    let mut keys: Vec<(Key, Option<i64>)> = Vec::with_capacity(n);
    for (i, (((m, r), b), t)) in method
        .iter()
        .zip(route.iter())
        .zip(body.iter())
        .zip(start.iter())
        .enumerate()
    {
        let server = id(&mut ids, Some(names.server(i).name.as_str()));
        let k = (
            names.client_position(i),
            server,
            id(&mut ids, m),
            id(&mut ids, r),
            b,
        );
        keys.push((k, t));
    }
    let key = |i: usize| keys[i].0;
    let mut order: Vec<usize> = (0..n).filter(|&i| keys[i].1.is_some()).collect();
    // Rows with equal keys and times stay in row order, as a stable sort leaves them.
    order.sort_unstable_by_key(|&i| (keys[i], i));
    let (mut retried, mut recovered) = (vec![false; n], vec![false; n]);
    for w in order.windows(2) {
        let (i, j) = (w[0], w[1]);
        if !failed(status.get(i)) || key(i) != key(j) {
            continue;
        }
        let Some(done) = end.get(i).or(req_last.get(i)).or(start.get(i)) else {
            continue;
        };
        let next = start.get(j).unwrap_or(i64::MIN);
        if next >= done && next - done <= RETRY_WINDOW_NS {
            retried[i] = true;
            recovered[i] = status.get(j).is_some_and(|s| s < 400);
        }
    }
    Ok((retried, recovered))
}

/// One direction's message columns of the exchanges table.
struct Messages {
    first: Int64Chunked,
    last: Int64Chunked,
    head: UInt64Chunked,
    body: UInt64Chunked,
}

/// Linux's initial congestion window (RFC 6928), in segments: what a sender may send in
/// its first round trip, and again after a restart.
const INITIAL_WINDOW_SEGMENTS: u64 = 10;

/// A sender idle longer than its retransmission timeout restarts slow start (RFC 5681
/// §4.1; Linux's `net.ipv4.tcp_slow_start_after_idle`, on by default). Linux's RTO is at
/// least 200 ms, so a shorter pause never restarts it.
const IDLE_RESTART_NS: i64 = 200_000_000;

/// Per row: what a slow-start restart cost the exchange, in ms (request and response
/// added), or null when none did. A message restarts slow start when its sender sent
/// nothing on the connection for [`IDLE_RESTART_NS`] before it (its previous message on
/// the connection ended that long before) and it is larger than the initial window of
/// the connection's MSS: it then needs `ceil(log2(size / window + 1))` round trips instead
/// of the one a warm window takes. The extra round trips are priced at the connection's
/// handshake RTT, and only counted when the message's own sending time shows them (at
/// least half of them elapsed between its first and last byte); the cost is capped by
/// that sending time. Connections without a SYN (no MSS, no RTT) are not judged.
/// Returns the cost per row and whether the row's response restarted.
fn slow_start_restarts(
    exchanges: &DataFrame,
    connections: &DataFrame,
) -> PolarsResult<(Vec<Option<f64>>, Vec<bool>)> {
    let path: HashMap<u64, (u64, i64)> = {
        let ids = connections.column(columns::CONN_ID)?.u64()?;
        let mss = connections.column(columns::MSS)?.cast(&DataType::UInt64)?;
        let rtt = connections.column(columns::HANDSHAKE_RTT_NS)?.i64()?;
        ids.iter()
            .zip(mss.u64()?.iter())
            .zip(rtt.iter())
            .filter_map(|((id, m), r)| Some((id?, (m?, r.filter(|r| *r > 0)?))))
            .collect()
    };
    let n = exchanges.height();
    let (mut out, mut response) = (vec![None; n], vec![false; n]);
    if path.is_empty() {
        return Ok((out, response));
    }
    let t = |c: &str| exchanges.column(c).and_then(|c| c.i64().cloned());
    let b = |c: &str| exchanges.column(c).and_then(|c| c.u64().cloned());
    let conn = exchanges.column(columns::CONN_ID)?.u64()?;
    let index = exchanges.column(columns::INDEX)?.u32()?;
    // One direction's messages: first and last byte, header and body bytes.
    let side = |first: &str, last: &str, head: &str, body: &str| -> PolarsResult<Messages> {
        Ok(Messages {
            first: t(first)?,
            last: t(last)?,
            head: b(head)?,
            body: b(body)?,
        })
    };
    let requests = side(
        columns::REQ_FIRST_NS,
        columns::REQ_LAST_NS,
        columns::REQ_HEADER_BYTES,
        columns::REQ_BODY_BYTES,
    )?;
    let responses = side(
        columns::RESP_FIRST_NS,
        columns::RESP_LAST_NS,
        columns::RESP_HEADER_BYTES,
        columns::RESP_BODY_BYTES,
    )?;
    let mut order: Vec<usize> = (0..n)
        .filter(|&i| conn.get(i).is_some_and(|c| path.contains_key(&c)))
        .collect();
    order.sort_by_key(|&i| (conn.get(i), index.get(i)));
    // Message `i` of one direction, its sender's previous message `p` on the connection.
    let cost = |m: &Messages, p: usize, i: usize, (mss, rtt): (u64, i64)| -> Option<f64> {
        let (prev, first, last) = (m.last.get(p)?, m.first.get(i)?, m.last.get(i)?);
        let size = m.head.get(i).unwrap_or(0) + m.body.get(i).unwrap_or(0);
        let window = INITIAL_WINDOW_SEGMENTS * mss.max(1);
        if first - prev < IDLE_RESTART_NS || size <= window {
            return None;
        }
        let rounds = (size as f64 / window as f64 + 1.0).log2().ceil();
        let extra_ns = (rounds - 1.0) * rtt as f64;
        let sending = (last - first) as f64;
        (extra_ns > 0.0 && sending * 2.0 >= extra_ns).then(|| extra_ns.min(sending) / 1e6)
    };
    for w in order.windows(2) {
        let (p, i) = (w[0], w[1]);
        if conn.get(p) != conn.get(i) {
            continue;
        }
        let Some(&link_path) = conn.get(i).and_then(|c| path.get(&c)) else {
            continue;
        };
        let req = cost(&requests, p, i, link_path);
        let resp = cost(&responses, p, i, link_path);
        if req.is_some() || resp.is_some() {
            out[i] = Some(req.unwrap_or(0.0) + resp.unwrap_or(0.0));
            response[i] = resp.is_some();
        }
    }
    Ok((out, response))
}

/// The exchanges table plus `client`, `server`, `json` (either body is JSON), `new_conn`
/// (first request on a connection whose SYN was captured), `incomplete`, `ttfb_ms`,
/// `total_ms`, the stalls in ms (`req_stall_ms`, `resp_stall_ms`, `stall_ms`) and `second`
/// (the 1 s bucket of the request's first byte), and `slow_start_ms` (see
/// [`slow_start_restarts`]).
pub(crate) fn exchanges_frame(
    exchanges: &DataFrame,
    connections: &DataFrame,
    names: &RowNames,
) -> PolarsResult<DataFrame> {
    let derivation = Derivation::new(exchanges, connections, names)?;
    derivation.block(0, derivation.rows())
}

/// What deriving the exchanges' figures takes beyond each row itself: the figures whose
/// rules span rows (a retried failure, a slow-start restart), computed once over the
/// whole table, and whether each connection's SYN was seen. [`Derivation::block`] then
/// derives the frame of any block of rows, so the measures can fold the table a block at
/// a time without the whole derived frame in memory.
pub(crate) struct Derivation<'a> {
    /// The exchanges, with `status` as the measures count it (`failures_as_status`).
    exchanges: DataFrame,
    names: &'a RowNames,
    syn_seen: HashMap<u64, bool>,
    retried: Vec<bool>,
    recovered: Vec<bool>,
    slow_start: Vec<Option<f64>>,
    slow_start_response: Vec<bool>,
}

impl<'a> Derivation<'a> {
    pub(crate) fn new(
        exchanges: &DataFrame,
        connections: &DataFrame,
        names: &'a RowNames,
    ) -> PolarsResult<Derivation<'a>> {
        let exchanges = failures_as_status(exchanges)?;
        let syn_seen: HashMap<u64, bool> = {
            let ids = connections.column(columns::CONN_ID)?.u64()?;
            let syn = connections.column(columns::SYN_NS)?.i64()?;
            ids.iter()
                .zip(syn.iter())
                .filter_map(|(id, s)| Some((id?, s.is_some())))
                .collect()
        };
        let (retried, recovered) = retried_failures(&exchanges, names)?;
        let (slow_start, slow_start_response) = slow_start_restarts(&exchanges, connections)?;
        Ok(Derivation {
            exchanges,
            names,
            syn_seen,
            retried,
            recovered,
            slow_start,
            slow_start_response,
        })
    }

    pub(crate) fn rows(&self) -> usize {
        self.exchanges.height()
    }

    /// The derived frame of rows `offset..offset + len` (cut at the table's end).
    pub(crate) fn block(&self, offset: usize, len: usize) -> PolarsResult<DataFrame> {
        let end = offset.saturating_add(len).min(self.rows());
        let rows = offset.min(end)..end;
        let exchanges = &self.exchanges.slice(rows.start as i64, rows.len());
        let syn_seen = &self.syn_seen;
        let conn = exchanges.column(columns::CONN_ID)?.u64()?;
        let index = exchanges.column(columns::INDEX)?.u32()?;
        let req_ct = exchanges.column(columns::REQ_CONTENT_TYPE)?.str()?;
        let resp_ct = exchanges.column(columns::RESP_CONTENT_TYPE)?.str()?;
        let completeness = exchanges.column(columns::COMPLETENESS)?.str()?;
        let new_conn: Vec<bool> = conn
            .iter()
            .zip(index.iter())
            .map(|(c, i)| i == Some(0) && c.and_then(|c| syn_seen.get(&c).copied()) == Some(true))
            .collect();
        let json: Vec<bool> = req_ct
            .iter()
            .zip(resp_ct.iter())
            .map(|(a, b)| is_json(a) || is_json(b))
            .collect();
        let incomplete: Vec<bool> = completeness.iter().map(|c| c != Some("complete")).collect();
        // Body bytes that are JSON, per direction: what protobuf would replace.
        let req_body = exchanges.column(columns::REQ_BODY_BYTES)?.u64()?;
        let resp_body = exchanges.column(columns::RESP_BODY_BYTES)?.u64()?;
        let json_body_bytes: Vec<u64> = req_ct
            .iter()
            .zip(resp_ct.iter())
            .zip(req_body.iter().zip(resp_body.iter()))
            .map(|((qt, st), (qb, sb))| {
                let q = if is_json(qt) { qb.unwrap_or(0) } else { 0 };
                let s = if is_json(st) { sb.unwrap_or(0) } else { 0 };
                q + s
            })
            .collect();
        // The same, for the bodies sent without a Content-Encoding.
        let req_enc = exchanges.column(columns::REQ_CONTENT_ENCODING)?.str()?;
        let resp_enc = exchanges.column(columns::RESP_CONTENT_ENCODING)?.str()?;
        let json_identity_body_bytes: Vec<u64> = req_ct
            .iter()
            .zip(resp_ct.iter())
            .zip(req_body.iter().zip(resp_body.iter()))
            .zip(req_enc.iter().zip(resp_enc.iter()))
            .map(|(((qt, st), (qb, sb)), (qe, se))| {
                let plain = |e: Option<&str>| e.is_none_or(|e| e.eq_ignore_ascii_case("identity"));
                let q = if is_json(qt) && plain(qe) {
                    qb.unwrap_or(0)
                } else {
                    0
                };
                let s = if is_json(st) && plain(se) {
                    sb.unwrap_or(0)
                } else {
                    0
                };
                q + s
            })
            .collect();
        // The HTTP/2 and gRPC header replay (when the tables carry it): both directions,
        // null unless both header blocks were replayed.
        let has = |c: &str| exchanges.get_column_names().iter().any(|n| n.as_str() == c);
        let pair_sum = |a: &str, b: &str| -> PolarsResult<Vec<Option<u64>>> {
            if !(has(a) && has(b)) {
                return Ok(vec![None; exchanges.height()]);
            }
            let a = exchanges.column(a)?.cast(&DataType::UInt64)?;
            let b = exchanges.column(b)?.cast(&DataType::UInt64)?;
            Ok(a.u64()?
                .iter()
                .zip(b.u64()?.iter())
                .map(|(a, b)| Some(a? + b?))
                .collect())
        };
        let h2 = pair_sum(columns::REQ_HEADER_BYTES_H2, columns::RESP_HEADER_BYTES_H2)?;
        let grpc = pair_sum(
            columns::REQ_HEADER_BYTES_GRPC,
            columns::RESP_HEADER_BYTES_GRPC,
        )?;
        let h1_replayed: Vec<Option<u64>> = h2
            .iter()
            .zip(grpc.iter())
            .zip(
                exchanges
                    .column(columns::REQ_HEADER_BYTES)?
                    .u64()?
                    .iter()
                    .zip(exchanges.column(columns::RESP_HEADER_BYTES)?.u64()?.iter()),
            )
            .map(|((h2, g), (q, s))| {
                (h2.is_some() && g.is_some()).then(|| q.unwrap_or(0) + s.unwrap_or(0))
            })
            .collect();
        let h2: Vec<Option<u64>> = h2
            .iter()
            .zip(grpc.iter())
            .map(|(a, b)| if b.is_some() { *a } else { None })
            .collect();
        let grpc: Vec<Option<u64>> = grpc
            .iter()
            .zip(h1_replayed.iter())
            .map(|(g, h)| if h.is_some() { *g } else { None })
            .collect();
        let [keyed, forwarded] = header_flags(
            exchanges,
            columns::REQ_HEADER_NAMES,
            [IDEMPOTENCY_HEADERS, FORWARDING_HEADERS],
        )?;
        let [retry_after] =
            header_flags(exchanges, columns::RESP_HEADER_NAMES, [&["retry-after"]])?;
        let (retried, recovered) = (&self.retried[rows.clone()], &self.recovered[rows.clone()]);
        let (slow_start, slow_start_response) = (
            &self.slow_start[rows.clone()],
            &self.slow_start_response[rows.clone()],
        );
        // Bucketed here: polars' integer floor division needs a feature this build leaves out.
        let second: Vec<Option<i64>> = exchanges
            .column(columns::REQ_FIRST_NS)?
            .i64()?
            .iter()
            .map(|t| t.map(|t| t.div_euclid(1_000_000_000)))
            .collect();
        let mut df = exchanges.clone();
        df.with_column(self.names.column(columns::CLIENT, false, rows.clone()))?;
        df.with_column(self.names.column(columns::SERVER, true, rows.clone()))?;
        df.with_column(Column::new(columns::JSON.into(), json))?;
        df.with_column(Column::new(columns::NEW_CONN.into(), new_conn))?;
        df.with_column(Column::new(columns::INCOMPLETE.into(), incomplete))?;
        df.with_column(Column::new(
            columns::JSON_BODY_BYTES.into(),
            json_body_bytes,
        ))?;
        df.with_column(Column::new(
            columns::JSON_IDENTITY_BODY_BYTES.into(),
            json_identity_body_bytes,
        ))?;
        df.with_column(Column::new(
            columns::REPLAY_H1_HEADER_BYTES.into(),
            h1_replayed,
        ))?;
        df.with_column(Column::new(columns::REPLAY_H2_HEADER_BYTES.into(), h2))?;
        df.with_column(Column::new(columns::REPLAY_GRPC_HEADER_BYTES.into(), grpc))?;
        df.with_column(Column::new(columns::SECOND.into(), second))?;
        df.with_column(Column::new(columns::IDEMPOTENCY_KEYED.into(), keyed))?;
        df.with_column(Column::new(columns::RETRY_AFTER.into(), retry_after))?;
        df.with_column(Column::new(columns::FORWARDED.into(), forwarded))?;
        df.with_column(Column::new(columns::RETRIED_FAILURE.into(), retried))?;
        df.with_column(Column::new(columns::RECOVERED_FAILURE.into(), recovered))?;
        df.with_column(Column::new(columns::SLOW_START_MS.into(), slow_start))?;
        df.with_column(Column::new(
            columns::SLOW_START_RESPONSE.into(),
            slow_start_response,
        ))?;
        let ms = |a: &str, b: &str| (col(a) - col(b)).cast(DataType::Float64) / lit(1e6);
        let stall_ms = |c: &str| col(c).cast(DataType::Float64) / lit(1e6);
        df.lazy()
            .with_columns([
                ms(columns::RESP_FIRST_NS, columns::REQ_LAST_NS).alias(columns::TTFB_MS),
                ms(columns::RESP_LAST_NS, columns::REQ_FIRST_NS).alias(columns::TOTAL_MS),
                stall_ms(columns::REQ_STALL_NS).alias(columns::REQ_STALL_MS),
                stall_ms(columns::RESP_STALL_NS).alias(columns::RESP_STALL_MS),
                (stall_ms(columns::REQ_STALL_NS).fill_null(lit(0.0))
                    + stall_ms(columns::RESP_STALL_NS).fill_null(lit(0.0)))
                .alias(columns::STALL_MS),
            ])
            .collect()
    }
}

/// The figures `exchanges_frame` derives per exchange, which the link measures sum,
/// count and rank (the status as the measures count it goes as `measured_status`).
pub const DERIVED_EXCHANGE_COLUMNS: &[&str] = &[
    columns::GRPC_STATUS_NAME,
    columns::JSON,
    columns::NEW_CONN,
    columns::INCOMPLETE,
    columns::JSON_BODY_BYTES,
    columns::JSON_IDENTITY_BODY_BYTES,
    columns::REPLAY_H1_HEADER_BYTES,
    columns::REPLAY_H2_HEADER_BYTES,
    columns::REPLAY_GRPC_HEADER_BYTES,
    columns::SECOND,
    columns::IDEMPOTENCY_KEYED,
    columns::RETRY_AFTER,
    columns::FORWARDED,
    columns::RETRIED_FAILURE,
    columns::RECOVERED_FAILURE,
    columns::SLOW_START_MS,
    columns::SLOW_START_RESPONSE,
    columns::TTFB_MS,
    columns::TOTAL_MS,
    columns::REQ_STALL_MS,
    columns::RESP_STALL_MS,
    columns::STALL_MS,
];

/// The column of the status as the measures count it (see `failures_as_status`).
pub const MEASURED_STATUS: &str = "measured_status";

/// The exchanges table with the per-exchange figures the link measures aggregate
/// ([`DERIVED_EXCHANGE_COLUMNS`] and [`MEASURED_STATUS`]), in the table's row order. They
/// need the capture's own connections (a SYN seen, a retry on the same client), so a
/// fleet node derives them and the fleet only sums and counts them.
pub fn exchange_measures(tables: &Tables, naming: &Naming) -> PolarsResult<DataFrame> {
    let names = name_rows(&tables.exchanges, naming)?;
    let frame = exchanges_frame(&tables.exchanges, &tables.connections, &names)?;
    let mut df = tables.exchanges.clone();
    let mut status = frame.column(columns::STATUS)?.clone();
    status.rename(MEASURED_STATUS.into());
    df.with_column(status)?;
    for c in DERIVED_EXCHANGE_COLUMNS {
        df.with_column(frame.column(c)?.clone())?;
    }
    Ok(df)
}

/// The exchanges with `status` as the measures count failures: a gRPC call that ended
/// with a non-OK `grpc-status` has the HTTP status its code maps to (its HTTP status is
/// 200 whatever the outcome), and an HTTP/2 stream the server reset or a GOAWAY refused
/// has none (no answer); plus `grpc_status_name` (`OK`, `UNAVAILABLE`, ...).
fn failures_as_status(exchanges: &DataFrame) -> PolarsResult<DataFrame> {
    let has = |c: &str| exchanges.get_column_names().iter().any(|n| n.as_str() == c);
    let mut df = exchanges.clone();
    // Frames built without the HTTP/2 columns (not read through `tables`) get them null.
    for (c, ty) in [
        (columns::GRPC_STATUS, DataType::UInt32),
        (columns::STREAM_ERROR, DataType::String),
        (columns::STREAM_ID, DataType::UInt32),
        (columns::HEADERS_COMPLETE, DataType::Boolean),
        (columns::GRPC_CALL_KIND, DataType::String),
        (columns::EXCHANGE_PROTOCOL, DataType::String),
    ] {
        if !has(c) {
            df.with_column(Column::full_null(c.into(), df.height(), &ty))?;
        }
    }
    let exchanges = &df.clone();
    let status = exchanges.column(columns::STATUS)?.u32()?;
    let grpc = exchanges.column(columns::GRPC_STATUS)?.u32()?;
    let error = exchanges.column(columns::STREAM_ERROR)?.str()?;
    let effective: Vec<Option<u32>> = status
        .iter()
        .zip(grpc.iter())
        .zip(error.iter())
        .map(|((s, g), e)| match (g, e) {
            (Some(g), _) if g != 0 => Some(grpc_http_status(g)),
            (None, Some(e)) if e.starts_with("rst_server") || e == "goaway_refused" => None,
            _ => s,
        })
        .collect();
    let names: Vec<Option<&str>> = grpc.iter().map(|g| g.map(grpc_status_name)).collect();
    df.with_column(Column::new(columns::STATUS.into(), effective))?;
    df.with_column(Column::new(columns::GRPC_STATUS_NAME.into(), names))?;
    Ok(df)
}

/// The connections table plus `client` and `server`.
pub(crate) fn connections_frame(
    connections: &DataFrame,
    names: &RowNames,
) -> PolarsResult<DataFrame> {
    let mut df = connections.clone();
    df.with_column(names.column(columns::CLIENT, false, 0..names.rows()))?;
    df.with_column(names.column(columns::SERVER, true, 0..names.rows()))?;
    Ok(df)
}

/// A column as `f64`s (integers cast), nulls kept.
pub(crate) fn f64s(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<f64>>> {
    let c = df.column(name)?.cast(&DataType::Float64)?;
    Ok(c.f64()?.iter().collect())
}

pub(crate) fn strs(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<String>>> {
    let c = df.column(name)?.cast(&DataType::String)?;
    Ok(c.str()?.iter().map(|v| v.map(str::to_owned)).collect())
}

/// Failures of `status` on a route that come every n-th request: `failures` of them, and
/// `gaps` counting the distances (in requests, in time order) between consecutive ones.
/// Periodic when there are at least 4, and 80% of the gaps are the same n >= 2.
pub(crate) fn periodic_failure(
    status: u32,
    failures: u64,
    gaps: &BTreeMap<u64, u64>,
) -> Option<super::PeriodicFailure> {
    if failures < 4 {
        return None;
    }
    let total: u64 = gaps.values().sum();
    let (&every, &n) = gaps
        .iter()
        .max_by_key(|(g, n)| (**n, std::cmp::Reverse(**g)))?;
    (every >= 2 && n * 5 >= total * 4).then(|| super::PeriodicFailure {
        status: u16::try_from(status).unwrap_or(u16::MAX),
        every,
        failures,
        regular_gaps: n,
    })
}

/// Periodic failures per route: (client, server, method, route) -> the statuses found.
pub(crate) type PeriodicByRoute = BTreeMap<Vec<Option<String>>, Vec<super::PeriodicFailure>>;
