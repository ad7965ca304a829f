//! The `dns` table: one row per A, AAAA or CNAME answer of a successful DNS response.

use polars::prelude::*;

use crate::dns::DnsAnswer;
use crate::model::Symbols;

/// Column name, polars type, meaning (checked against `docs/tables.md` by a test).
pub const COLUMNS: &[(&str, &str, &str)] = &[
    (
        "ts_ns",
        "i64",
        "capture time of the response, ns since the Unix epoch",
    ),
    (
        "resolver_ip",
        "str",
        "source IP address of the response (the resolver that answered)",
    ),
    (
        "client_ip",
        "str",
        "destination IP address of the response (the client that asked)",
    ),
    (
        "query",
        "str",
        "the question's name, lower-case, without the trailing dot",
    ),
    (
        "name",
        "str",
        "the answer record's owner name, lower-case, without the trailing dot",
    ),
    ("type", "str", "`A`, `AAAA` or `CNAME`"),
    (
        "answer",
        "str",
        "the address as text (A, AAAA) or the CNAME target, lower-case, without the trailing dot",
    ),
    ("ttl", "u32", "the record's time to live, seconds"),
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
            Column::new("ts_ns".into(), self.ts_ns),
            Column::new("resolver_ip".into(), strings.resolve(self.resolver_ip)),
            Column::new("client_ip".into(), strings.resolve(self.client_ip)),
            Column::new("query".into(), strings.resolve(self.query)),
            Column::new("name".into(), strings.resolve(self.name)),
            Column::new("type".into(), strings.resolve(self.rtype)),
            Column::new("answer".into(), strings.resolve(self.answer)),
            Column::new("ttl".into(), self.ttl),
        ];
        DataFrame::new(height, columns)
    }
}
