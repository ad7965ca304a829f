//! Tables: owned records -> the `exchanges`, `connections` and `dns` polars DataFrames,
//! written to and read back from Parquet (so captures processed on many nodes can be
//! merged later).

pub mod columns;
pub mod connections;
pub mod dns;
pub mod exchanges;
pub(crate) mod h2;
pub mod parquet;
pub mod payloads;

use polars::prelude::*;

use crate::ingest::dns::DnsAnswer;
use crate::ingest::http::Record;
use crate::model::Symbols;
use connections::ConnectionColumns;
use dns::DnsColumns;
use exchanges::ExchangeColumns;
use payloads::PayloadColumns;

pub use parquet::{read_tables, write_tables, TableError, TableKind, TableWrite};

/// The tables of a run.
#[derive(Clone, Debug)]
pub struct Tables {
    pub exchanges: DataFrame,
    pub connections: DataFrame,
    /// DNS answers seen (no connection ids: rows are matched by address and time).
    pub dns: DataFrame,
    /// JSON bodies and their protobuf size, one row per (client, server, route, direction).
    pub payloads: DataFrame,
}

impl Tables {
    pub fn empty() -> PolarsResult<Tables> {
        TableBuilder::default().finish()
    }

    /// The tables of a pipeline run from the reader's rows (DNS answers, payloads) and the
    /// shards' (connections and their exchanges, with the number of the frame that opened
    /// each connection as its id). The connections are renumbered 0, 1, ... in that
    /// order, which is the order one flow table would have numbered them in, and the rows
    /// are put in one order (connections by id, exchanges by connection and index), so
    /// the tables are the same however the connections were shared.
    pub fn from_shards(reader: Tables, shards: Vec<Tables>) -> PolarsResult<Tables> {
        let mut t = reader;
        for s in shards {
            t.exchanges.vstack_mut_owned(s.exchanges)?;
            t.connections.vstack_mut_owned(s.connections)?;
        }
        let ids = |df: &DataFrame| -> PolarsResult<Vec<u64>> {
            Ok(df
                .column(columns::CONN_ID)?
                .u64()?
                .iter()
                .map(|v| v.unwrap_or(0))
                .collect())
        };
        let (x_ids, c_ids) = (ids(&t.exchanges)?, ids(&t.connections)?);
        let mut order: Vec<u64> = x_ids.iter().chain(&c_ids).copied().collect();
        order.sort_unstable();
        order.dedup();
        let renumber = |old: &[u64]| -> Vec<u64> {
            old.iter()
                .map(|id| order.binary_search(id).unwrap_or_default() as u64)
                .collect()
        };
        let (x_new, c_new) = (renumber(&x_ids), renumber(&c_ids));
        let index: Vec<u32> = t
            .exchanges
            .column(columns::INDEX)?
            .u32()?
            .iter()
            .map(|v| v.unwrap_or(0))
            .collect();
        let permute = |df: &mut DataFrame, new: Vec<u64>, key: &dyn Fn(usize) -> (u64, u32)| {
            let mut rows: Vec<IdxSize> = (0..new.len() as IdxSize).collect();
            rows.sort_by_key(|&r| key(r as usize));
            df.replace(columns::CONN_ID, Column::new(columns::CONN_ID.into(), new))?;
            let rows = IdxCa::from_vec("rows".into(), rows);
            let height = rows.len();
            // Column by column, each unordered column dropped once its ordered copy is
            // made: the table is never held twice.
            let ordered = std::mem::take(df)
                .into_columns()
                .into_iter()
                .map(|c| c.take(&rows))
                .collect::<PolarsResult<Vec<Column>>>()?;
            *df = DataFrame::new(height, ordered)?;
            PolarsResult::Ok(())
        };
        permute(&mut t.exchanges, x_new.clone(), &|r| (x_new[r], index[r]))?;
        permute(&mut t.connections, c_new.clone(), &|r| (c_new[r], 0))?;
        Ok(t)
    }

    /// Appends `other`, renumbering its connection ids after ours so they stay unique.
    pub fn append(&mut self, other: Tables) -> PolarsResult<()> {
        let offset = self.next_conn_id()?;
        let shift = |mut df: DataFrame| -> PolarsResult<DataFrame> {
            if df.height() > 0 && offset > 0 {
                let ids = df.column(columns::CONN_ID)?.u64()?.clone() + offset;
                df.replace(columns::CONN_ID, ids.into_series().into())?;
            }
            Ok(df)
        };
        self.exchanges.vstack_mut_owned(shift(other.exchanges)?)?;
        self.connections
            .vstack_mut_owned(shift(other.connections)?)?;
        self.dns.vstack_mut_owned(other.dns)?;
        self.payloads.vstack_mut_owned(other.payloads)?;
        Ok(())
    }

    /// One past the largest connection id in either table (0 when empty).
    fn next_conn_id(&self) -> PolarsResult<u64> {
        let max = |df: &DataFrame| -> PolarsResult<Option<u64>> {
            Ok(df.column(columns::CONN_ID)?.u64()?.max())
        };
        let m = max(&self.exchanges)?
            .into_iter()
            .chain(max(&self.connections)?)
            .max();
        Ok(m.map_or(0, |m| m + 1))
    }
}

/// Accumulates records column by column; strings that repeat are interned.
#[derive(Default)]
pub struct TableBuilder {
    strings: Symbols,
    exchanges: ExchangeColumns,
    connections: ConnectionColumns,
    dns: DnsColumns,
    payloads: PayloadColumns,
    /// The documents behind the payload rows, parsed: in memory only (never a table),
    /// for the report stage's migration kit.
    samples: Vec<crate::ingest::serialization::KeySamples>,
}

impl TableBuilder {
    /// Takes the record: its own strings (trace ids) move into the columns.
    pub fn push(&mut self, record: Record) {
        match record {
            Record::Exchange(x) => self.exchanges.push(x, &mut self.strings),
            Record::Connection(c) => self.connections.push(&c, &mut self.strings),
        }
    }

    pub fn push_dns(&mut self, answer: &DnsAnswer) {
        self.dns.push(answer, &mut self.strings);
    }

    pub fn push_payloads(&mut self, rows: Vec<crate::ingest::serialization::PayloadRow>) {
        for r in rows {
            self.payloads.push(r);
        }
    }

    /// Keeps the parsed samples behind the payload rows (see [`TableBuilder::take_samples`]).
    pub fn push_samples(&mut self, samples: Vec<crate::ingest::serialization::KeySamples>) {
        self.samples.extend(samples);
    }

    /// The parsed samples, taken out before the tables are built.
    pub fn take_samples(&mut self) -> Vec<crate::ingest::serialization::KeySamples> {
        std::mem::take(&mut self.samples)
    }

    pub fn exchanges(&self) -> usize {
        self.exchanges.len()
    }

    pub fn connections(&self) -> usize {
        self.connections.len()
    }

    pub fn dns_answers(&self) -> usize {
        self.dns.len()
    }

    pub fn finish(self) -> PolarsResult<Tables> {
        let exchanges = self.exchanges.into_frame(&self.strings)?;
        let connections = self.connections.into_frame(&self.strings)?;
        let dns = self.dns.into_frame(&self.strings)?;
        let payloads = self.payloads.into_frame(&self.strings)?;
        Ok(Tables {
            exchanges,
            connections,
            dns,
            payloads,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/tables.md documents every column with its type and meaning, exactly as the code
    /// defines them.
    #[test]
    fn docs_list_every_column_as_defined() {
        let doc = include_str!("../../docs/tables.md");
        for (name, ty, meaning) in exchanges::COLUMNS
            .iter()
            .chain(connections::COLUMNS)
            .chain(dns::COLUMNS)
            .chain(payloads::COLUMNS)
        {
            let row = format!("| `{name}` | {ty} | {meaning} |");
            assert!(doc.contains(&row), "docs/tables.md lacks the row {row}");
        }
    }

    /// Empty tables have exactly the documented columns, in order.
    #[test]
    fn empty_tables_have_the_documented_columns() {
        let t = Tables::empty().unwrap();
        let names = |df: &DataFrame| {
            df.get_column_names()
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
        };
        let want =
            |cols: &[(&str, &str, &str)]| cols.iter().map(|c| c.0.to_string()).collect::<Vec<_>>();
        assert_eq!(names(&t.exchanges), want(exchanges::COLUMNS));
        assert_eq!(names(&t.connections), want(connections::COLUMNS));
        assert_eq!(names(&t.dns), want(dns::COLUMNS));
        assert_eq!(names(&t.payloads), want(payloads::COLUMNS));
        for (df, cols) in [
            (&t.exchanges, exchanges::COLUMNS),
            (&t.connections, connections::COLUMNS),
            (&t.dns, dns::COLUMNS),
            (&t.payloads, payloads::COLUMNS),
        ] {
            for (name, ty, _) in cols {
                let want = match ty.trim_end_matches('?') {
                    "u32" => DataType::UInt32,
                    "u64" => DataType::UInt64,
                    "i64" => DataType::Int64,
                    "bool" => DataType::Boolean,
                    "str" => DataType::String,
                    "f64" => DataType::Float64,
                    other => panic!("undocumented type {other}"),
                };
                assert_eq!(df.column(name).unwrap().dtype(), &want, "column {name}");
            }
        }
    }

    fn sample_records(conns: u64) -> Vec<Record> {
        use crate::model::*;
        use std::net::{IpAddr, Ipv4Addr};
        let client = Endpoint::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 40000);
        let server = Endpoint::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 8080);
        let mut out = Vec::new();
        for c in 0..conns {
            let mut x = Exchange::new(ConnId(c), 0, client, server);
            x.method = Some("GET".into());
            x.route = Some("/orders/{id}".into());
            x.status = Some(200);
            x.req_first = Some(Timestamp(1_000 + c as i64));
            x.resp_body_bytes = 120 + c;
            x.req_header_names = "host,accept".into();
            out.push(Record::Exchange(x));
            let tcp = TcpSummary {
                conn: ConnId(c),
                client,
                server,
                first_packet: Timestamp(1_000),
                last_packet: Timestamp(9_000),
                syn: Some(Timestamp(1_000)),
                syn_ack: Some(Timestamp(1_400)),
                handshake_ack: Some(Timestamp(1_500)),
                handshake_seen: true,
                roles_inferred: false,
                client_to_server: DirStats {
                    packets: 4,
                    bytes: 100,
                    ..Default::default()
                },
                server_to_client: DirStats {
                    packets: 3,
                    bytes: 220,
                    ..Default::default()
                },
                close: CloseReason::Fin,
            };
            out.push(Record::Connection(Connection {
                tcp,
                protocol: L7Protocol::Http11,
                upgraded_to: None,
                exchanges: 1,
                malformed_messages: 0,
                tls_sni: (c % 2 == 1).then(|| format!("api{c}.example")),
                tls_alpn: (c % 2 == 1).then(|| "h2,http/1.1".to_string()),
                tls_handshake: Default::default(),
                tls_decryption: None,
                tls_estimate: None,
                h2: None,
            }));
        }
        out
    }

    fn build(records: &[Record]) -> Tables {
        let mut b = TableBuilder::default();
        for r in records {
            b.push(r.clone());
        }
        b.finish().unwrap()
    }

    #[test]
    fn rows_carry_the_record_values() {
        let t = build(&sample_records(2));
        assert_eq!(t.exchanges.height(), 2);
        let row = t
            .connections
            .column("handshake_rtt_ns")
            .unwrap()
            .i64()
            .unwrap()
            .get(1);
        assert_eq!(row, Some(500), "SYN at 1000 ns, ACK at 1500 ns");
        let ip = t
            .exchanges
            .column("server_ip")
            .unwrap()
            .str()
            .unwrap()
            .get(0);
        assert_eq!(ip, Some("10.0.0.2"));
        let body = t
            .exchanges
            .column("resp_body_bytes")
            .unwrap()
            .u64()
            .unwrap()
            .get(1);
        assert_eq!(body, Some(121));
    }

    #[test]
    fn parquet_round_trip_and_merge_renumbers_connections() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        write_tables(&build(&sample_records(3)), &a).unwrap();
        write_tables(&build(&sample_records(2)), &b).unwrap();
        let one =
            read_tables(&[a.join("exchanges.parquet"), a.join("connections.parquet")]).unwrap();
        assert!(one
            .exchanges
            .equals_missing(&build(&sample_records(3)).exchanges));
        let both = read_tables(&[
            a.join("exchanges.parquet"),
            a.join("connections.parquet"),
            b.join("connections.parquet"),
            b.join("exchanges.parquet"),
        ])
        .unwrap();
        assert_eq!(both.exchanges.height(), 5);
        assert_eq!(both.connections.height(), 5);
        let ids: Vec<u64> = both
            .connections
            .column("conn_id")
            .unwrap()
            .u64()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        assert_eq!(
            ids,
            vec![0, 1, 2, 3, 4],
            "run b's connections 0,1 become 3,4"
        );
        let xids: Vec<u64> = both
            .exchanges
            .column("conn_id")
            .unwrap()
            .u64()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        assert_eq!(xids, ids, "exchanges follow their connections");
    }

    /// Tables written before the TLS and HTTP/2 replay columns existed are read with those
    /// columns null, each typed as `COLUMNS` says, and the rest unchanged.
    #[test]
    fn tables_without_later_columns_are_read_with_typed_nulls() {
        let dir = tempfile::tempdir().unwrap();
        let t = build(&sample_records(2));
        for (file, df, cols) in [
            ("connections.parquet", &t.connections, connections::COLUMNS),
            ("exchanges.parquet", &t.exchanges, exchanges::COLUMNS),
        ] {
            let later: Vec<&str> = cols
                .iter()
                .map(|c| c.0)
                .filter(|c| parquet::added_later().any(|a| a == *c))
                .collect();
            assert!(later.len() >= 6, "{file}: {later:?}");
            let mut old = df.drop_many(later.iter().copied());
            let path = dir.path().join(file);
            ParquetWriter::new(std::fs::File::create(&path).unwrap())
                .finish(&mut old)
                .unwrap();
            let back = read_tables(&[path]).unwrap();
            let back = if file.starts_with("conn") {
                back.connections
            } else {
                back.exchanges
            };
            assert_eq!(back.height(), 2);
            for c in &later {
                let col = back.column(c).unwrap();
                assert_eq!(col.null_count(), 2, "{c}");
                assert_eq!(col.dtype(), df.column(c).unwrap().dtype(), "{c}");
            }
            assert!(back.drop_many(later.iter().copied()).equals_missing(&old));
        }
    }

    /// Every column that may be missing from an older file is a nullable column of a table.
    #[test]
    fn added_later_columns_are_nullable_table_columns() {
        for c in parquet::added_later() {
            let ty = exchanges::COLUMNS
                .iter()
                .chain(connections::COLUMNS)
                .chain(payloads::COLUMNS)
                .find(|x| x.0 == c)
                .map(|x| x.1);
            assert!(ty.is_some_and(|t| t.ends_with('?')), "{c}: {ty:?}");
        }
    }

    #[test]
    fn a_foreign_parquet_file_is_refused_with_its_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.parquet");
        let mut df = DataFrame::new(1, vec![Column::new("x".into(), vec![1u32])]).unwrap();
        ParquetWriter::new(std::fs::File::create(&path).unwrap())
            .finish(&mut df)
            .unwrap();
        let err = read_tables(&[path]).unwrap_err().to_string();
        assert!(
            err.contains("other.parquet") && err.contains("columns: x"),
            "{err}"
        );
    }
}
