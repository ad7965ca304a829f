//! The `dns` table: one row per A, AAAA or CNAME answer of a successful DNS response.

use polars::prelude::*;

use super::columns;
use crate::ingest::dns::DnsAnswer;
use crate::model::Symbols;

/// Column name, polars type, meaning (checked against `docs/tables.md` by a test).
pub const COLUMNS: &[(&str, &str, &str)] = &[
    (
        columns::TS_NS,
        "i64",
        "capture time of the response, ns since the Unix epoch",
    ),
    (
        columns::RESOLVER_IP,
        "str",
        "source IP address of the response (the resolver that answered)",
    ),
    (
        columns::CLIENT_IP,
        "str",
        "destination IP address of the response (the client that asked)",
    ),
    (
        columns::QUERY,
        "str",
        "the question's name, lower-case, without the trailing dot",
    ),
    (
        columns::NAME,
        "str",
        "the answer record's owner name, lower-case, without the trailing dot",
    ),
    (columns::TYPE, "str", "`A`, `AAAA` or `CNAME`"),
    (
        columns::ANSWER,
        "str",
        "the address as text (A, AAAA) or the CNAME target, lower-case, without the trailing dot",
    ),
    (columns::TTL, "u32", "the record's time to live, seconds"),
];

/// Rows as columns; every string column repeats (a few resolvers, clients and names), so
/// all are interned.
#[derive(Default)]
pub struct DnsColumns {
    ts_ns: Vec<i64>,
    resolver_ip: Vec<u32>,
    client_ip: Vec<u32>,
    query: Vec<u32>,
    name: Vec<u32>,
    rtype: Vec<u32>,
    answer: Vec<u32>,
    ttl: Vec<u32>,
}

impl DnsColumns {
    pub fn len(&self) -> usize {
        self.ts_ns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ts_ns.is_empty()
    }

    pub fn push(&mut self, a: &DnsAnswer, strings: &mut Symbols) {
        self.ts_ns.push(a.ts.nanos());
        self.resolver_ip
            .push(strings.intern(&a.resolver.to_string()));
        self.client_ip.push(strings.intern(&a.client.to_string()));
        self.query.push(strings.intern(&a.query));
        self.name.push(strings.intern(&a.name));
        self.rtype.push(strings.intern(a.rtype.as_str()));
        self.answer.push(strings.intern(&a.answer));
        self.ttl.push(a.ttl);
    }

    pub fn into_frame(self, strings: &Symbols) -> PolarsResult<DataFrame> {
        let height = self.ts_ns.len();
        let columns = vec![
            Column::new(columns::TS_NS.into(), self.ts_ns),
            Column::new(
                columns::RESOLVER_IP.into(),
                strings.resolve(self.resolver_ip),
            ),
            Column::new(columns::CLIENT_IP.into(), strings.resolve(self.client_ip)),
            Column::new(columns::QUERY.into(), strings.resolve(self.query)),
            Column::new(columns::NAME.into(), strings.resolve(self.name)),
            Column::new(columns::TYPE.into(), strings.resolve(self.rtype)),
            Column::new(columns::ANSWER.into(), strings.resolve(self.answer)),
            Column::new(columns::TTL.into(), self.ttl),
        ];
        DataFrame::new(height, columns)
    }
}
