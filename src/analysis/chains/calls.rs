//! `Call` rows: one per HTTP exchange (and one per connection whose HTTP is not visible,
//! e.g. TLS), owned, with both endpoints named, the four wire times and the trace ids.
//!
//! This is the one input of the parent inference and the tree builder. A trace reader
//! (spans with exact parent ids) fills the same rows with `span_id` set, so the same
//! builder serves both sources.

use std::net::{IpAddr, SocketAddr};

use polars::prelude::*;
use rustc_hash::FxHashMap;

use crate::analysis::identity::Naming;
use crate::model::ids::{parse_span_id, parse_trace_id};
pub use crate::model::symbols::{Sym, Symbols};
use crate::tables::columns;
use crate::tables::Tables;

/// What the capture showed of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    /// An HTTP exchange: request and response times are known.
    Http,
    /// A connection whose requests are not visible (TLS, HTTP/2, other): one call from its
    /// first to its last packet. It can be a child, never a parent (no serving window).
    Opaque,
}

/// One request from a client endpoint to a server endpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub conn_id: u64,
    /// Position of the exchange on its connection (0 for an opaque connection).
    pub index: u32,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub client_service: Sym,
    pub server_service: Sym,
    pub method: Option<Sym>,
    pub route: Option<Sym>,
    pub status: Option<u16>,
    pub req_first: Option<i64>,
    pub req_last: Option<i64>,
    pub resp_first: Option<i64>,
    pub resp_last: Option<i64>,
    /// W3C traceparent trace id carried by the request.
    pub trace_id: Option<u128>,
    /// W3C traceparent parent id: the caller's span, shared by siblings.
    pub parent_span_id: Option<u64>,
    /// The call's own span id: known from a trace reader, never from the wire.
    pub span_id: Option<u64>,
    pub kind: CallKind,
    /// Request body bytes (unframed), when the request was seen: a sibling sent the same
    /// payload to another service when method and size agree.
    pub req_body: Option<u64>,
}

impl Call {
    /// When the caller started the call (first request byte; for an opaque call the
    /// first packet).
    pub fn start(&self) -> Option<i64> {
        self.req_first.or(self.req_last)
    }

    /// When the caller had the whole answer.
    pub fn end(&self) -> Option<i64> {
        self.resp_last.or(self.resp_first)
    }

    /// The server side's busy window as seen on the wire: last request byte to first
    /// response byte. Calls it makes in between are its candidate children.
    pub fn serving(&self) -> Option<(i64, i64)> {
        match (self.kind, self.req_last, self.resp_first) {
            (CallKind::Http, Some(a), Some(b)) if b >= a => Some((a, b)),
            _ => None,
        }
    }

    /// Whole-call latency as the caller sees it on the wire, in ns.
    pub fn duration(&self) -> Option<i64> {
        match (self.start(), self.end()) {
            (Some(a), Some(b)) if b >= a => Some(b.saturating_sub(a)),
            _ => None,
        }
    }

    /// `client_ip:client_port>server_ip:server_port#index`, the fixtures' exchange id.
    pub fn id(&self) -> String {
        exchange_id(self.client, self.server, self.index)
    }
}

/// The exchange id the fixtures' truth files use.
pub fn exchange_id(client: SocketAddr, server: SocketAddr, index: u32) -> String {
    format!(
        "{}:{}>{}:{}#{}",
        client.ip(),
        client.port(),
        server.ip(),
        server.port(),
        index
    )
}

/// The calls of a run and the strings they refer to.
#[derive(Clone, Debug, Default)]
pub struct CallSet {
    pub calls: Vec<Call>,
    pub symbols: Symbols,
    /// Rows left out: unparsable address or no time at all.
    pub skipped: u64,
}

/// A column as optional i64 (any integer type cast); absent column -> all null.
fn i64s(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<i64>>> {
    if !df.get_column_names().iter().any(|n| n.as_str() == name) {
        return Ok(vec![None; df.height()]);
    }
    let c = df.column(name)?.cast(&DataType::Int64)?;
    Ok(c.i64()?.iter().collect())
}

fn strs<'a>(df: &'a DataFrame, name: &str) -> PolarsResult<Option<&'a StringChunked>> {
    if !df.get_column_names().iter().any(|n| n.as_str() == name) {
        return Ok(None);
    }
    Ok(Some(df.column(name)?.str()?))
}

fn str_at(col: Option<&StringChunked>, i: usize) -> Option<&str> {
    col.and_then(|c| c.get(i))
}

/// Caches names per address: naming walks maps and clones strings.
struct Namer<'n> {
    naming: &'n Naming,
    clients: FxHashMap<IpAddr, Sym>,
    servers: FxHashMap<SocketAddr, Sym>,
}

impl Namer<'_> {
    fn client(&mut self, ip: IpAddr, symbols: &mut Symbols) -> Sym {
        if let Some(&s) = self.clients.get(&ip) {
            return s;
        }
        let s = symbols.intern(&self.naming.client(ip).name);
        self.clients.insert(ip, s);
        s
    }

    fn server(&mut self, addr: SocketAddr, symbols: &mut Symbols) -> Sym {
        if let Some(&s) = self.servers.get(&addr) {
            return s;
        }
        let s = symbols.intern(&self.naming.server(addr.ip(), addr.port()).name);
        self.servers.insert(addr, s);
        s
    }
}

/// One call per exchange row, plus one per connection that carried payload but no
/// visible HTTP exchange (TLS, HTTP/2, other).
pub fn calls_from_tables(tables: &Tables, naming: &Naming) -> PolarsResult<CallSet> {
    let mut set = CallSet::default();
    let mut namer = Namer {
        naming,
        clients: FxHashMap::default(),
        servers: FxHashMap::default(),
    };
    let ex = &tables.exchanges;
    let conn = i64s(ex, columns::CONN_ID)?;
    let index = i64s(ex, columns::INDEX)?;
    let cport = i64s(ex, columns::CLIENT_PORT)?;
    let sport = i64s(ex, columns::SERVER_PORT)?;
    let status = i64s(ex, columns::STATUS)?;
    let times = [
        i64s(ex, columns::REQ_FIRST_NS)?,
        i64s(ex, columns::REQ_LAST_NS)?,
        i64s(ex, columns::RESP_FIRST_NS)?,
        i64s(ex, columns::RESP_LAST_NS)?,
    ];
    let (cip, sip) = (strs(ex, columns::CLIENT_IP)?, strs(ex, columns::SERVER_IP)?);
    let (method, route) = (strs(ex, columns::METHOD)?, strs(ex, columns::ROUTE)?);
    let (trace, parent) = (
        strs(ex, columns::TRACE_ID)?,
        strs(ex, columns::PARENT_SPAN_ID)?,
    );
    let req_body = i64s(ex, columns::REQ_BODY_LEN)?;
    set.calls.reserve_exact(ex.height());
    for i in 0..ex.height() {
        let Some((client, server)) = endpoints(str_at(cip, i), cport[i], str_at(sip, i), sport[i])
        else {
            set.skipped += 1;
            continue;
        };
        let [rf, rl, sf, sl] = [times[0][i], times[1][i], times[2][i], times[3][i]];
        if rf.or(rl).is_none() {
            set.skipped += 1;
            continue;
        }
        let client_service = namer.client(client.ip(), &mut set.symbols);
        let server_service = namer.server(server, &mut set.symbols);
        set.calls.push(Call {
            conn_id: conn[i].and_then(|v| u64::try_from(v).ok()).unwrap_or(0),
            index: index[i].and_then(|v| u32::try_from(v).ok()).unwrap_or(0),
            client,
            server,
            client_service,
            server_service,
            method: str_at(method, i).map(|m| set.symbols.intern(m)),
            route: str_at(route, i).map(|r| set.symbols.intern(r)),
            status: status[i].and_then(|v| u16::try_from(v).ok()),
            req_first: rf,
            req_last: rl,
            resp_first: sf,
            resp_last: sl,
            trace_id: str_at(trace, i).and_then(parse_trace_id),
            parent_span_id: str_at(parent, i).and_then(parse_span_id),
            span_id: None,
            kind: CallKind::Http,
            req_body: req_body[i].and_then(|v| u64::try_from(v).ok()),
        });
    }
    opaque_calls(&tables.connections, &mut namer, &mut set)?;
    Ok(set)
}

/// Connections with payload but no exchange: one opaque call each.
fn opaque_calls(cn: &DataFrame, namer: &mut Namer<'_>, set: &mut CallSet) -> PolarsResult<()> {
    let conn = i64s(cn, columns::CONN_ID)?;
    let cport = i64s(cn, columns::CLIENT_PORT)?;
    let sport = i64s(cn, columns::SERVER_PORT)?;
    let first = i64s(cn, columns::FIRST_NS)?;
    let syn = i64s(cn, columns::SYN_NS)?;
    let last = i64s(cn, columns::LAST_NS)?;
    let exchanges = i64s(cn, columns::EXCHANGES)?;
    let (cip, sip) = (strs(cn, columns::CLIENT_IP)?, strs(cn, columns::SERVER_IP)?);
    let protocol = strs(cn, columns::PROTOCOL)?;
    let opaque = |i: usize| {
        exchanges[i].unwrap_or(0) == 0 && !matches!(str_at(protocol, i), None | Some("empty"))
    };
    // Exact room: one call past the exchanges' reservation doubled the vector's
    // capacity (a call is 256 bytes: 81 MB reserved for the realistic benchmark's
    // 166,000 calls, the largest allocation heaptrack found in the chains stage).
    set.calls
        .reserve_exact((0..cn.height()).filter(|&i| opaque(i)).count());
    for i in 0..cn.height() {
        if !opaque(i) {
            continue;
        }
        let Some((client, server)) = endpoints(str_at(cip, i), cport[i], str_at(sip, i), sport[i])
        else {
            set.skipped += 1;
            continue;
        };
        let start = syn[i].or(first[i]);
        if start.is_none() {
            set.skipped += 1;
            continue;
        }
        let client_service = namer.client(client.ip(), &mut set.symbols);
        let server_service = namer.server(server, &mut set.symbols);
        set.calls.push(Call {
            conn_id: conn[i].and_then(|v| u64::try_from(v).ok()).unwrap_or(0),
            index: 0,
            client,
            server,
            client_service,
            server_service,
            method: None,
            route: None,
            status: None,
            req_first: start,
            req_last: None,
            resp_first: None,
            resp_last: last[i],
            trace_id: None,
            parent_span_id: None,
            span_id: None,
            kind: CallKind::Opaque,
            req_body: None,
        });
    }
    Ok(())
}

fn endpoints(
    cip: Option<&str>,
    cport: Option<i64>,
    sip: Option<&str>,
    sport: Option<i64>,
) -> Option<(SocketAddr, SocketAddr)> {
    let c: IpAddr = cip?.parse().ok()?;
    let s: IpAddr = sip?.parse().ok()?;
    let cp = u16::try_from(cport?).ok()?;
    let sp = u16::try_from(sport?).ok()?;
    Some((SocketAddr::new(c, cp), SocketAddr::new(s, sp)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_follow_w3c_lengths_and_reject_zero() {
        assert_eq!(
            parse_trace_id("4bf92f3577b34da6a3ce929d0e0e4736"),
            Some(0x4bf92f3577b34da6a3ce929d0e0e4736)
        );
        assert_eq!(parse_trace_id("00000000000000000000000000000000"), None);
        assert_eq!(parse_trace_id("4bf92f3577b34da6"), None);
        assert_eq!(parse_span_id("00f067aa0ba902b7"), Some(0x00f067aa0ba902b7));
        assert_eq!(parse_span_id("zzf067aa0ba902b7"), None);
    }

    #[test]
    fn exchange_ids_match_the_fixture_format() {
        let c: SocketAddr = "10.81.0.2:40312".parse().unwrap();
        let s: SocketAddr = "10.81.0.11:8080".parse().unwrap();
        assert_eq!(exchange_id(c, s, 3), "10.81.0.2:40312>10.81.0.11:8080#3");
    }
}
