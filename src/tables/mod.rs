//! Tables: owned records -> the `exchanges` and `connections` polars DataFrames, written
//! to and read back from Parquet (so captures processed on many nodes can be merged later).

pub mod connections;
pub mod exchanges;
pub mod intern;
pub mod parquet;

use polars::prelude::*;

use crate::http::Record;
use connections::ConnectionColumns;
use exchanges::ExchangeColumns;
use intern::Interner;

pub use parquet::{read_tables, write_tables, TableError, TableKind};

/// The two tables of a run.
#[derive(Clone, Debug)]
pub struct Tables {
    pub exchanges: DataFrame,
    pub connections: DataFrame,
}

impl Tables {
    pub fn empty() -> PolarsResult<Tables> {
        TableBuilder::default().finish()
    }

    /// Appends `other`, renumbering its connection ids after ours so they stay unique.
    pub fn append(&mut self, other: Tables) -> PolarsResult<()> {
        let offset = self.next_conn_id()?;
        let shift = |mut df: DataFrame| -> PolarsResult<DataFrame> {
            if df.height() > 0 && offset > 0 {
                let ids = df.column("conn_id")?.u64()?.clone() + offset;
                df.replace("conn_id", ids.into_series().into())?;
            }
            Ok(df)
        };
        self.exchanges.vstack_mut_owned(shift(other.exchanges)?)?;
        self.connections.vstack_mut_owned(shift(other.connections)?)?;
        Ok(())
    }

    /// One past the largest connection id in either table (0 when empty).
    fn next_conn_id(&self) -> PolarsResult<u64> {
        let max = |df: &DataFrame| -> PolarsResult<Option<u64>> {
            Ok(df.column("conn_id")?.u64()?.max())
        };
        let m = max(&self.exchanges)?.into_iter().chain(max(&self.connections)?).max();
        Ok(m.map_or(0, |m| m + 1))
    }
}

/// Accumulates records column by column; strings that repeat are interned.
#[derive(Default)]
pub struct TableBuilder {
    strings: Interner,
    exchanges: ExchangeColumns,
    connections: ConnectionColumns,
}

impl TableBuilder {
    pub fn push(&mut self, record: &Record) {
        match record {
            Record::Exchange(x) => self.exchanges.push(x, &mut self.strings),
            Record::Connection(c) => self.connections.push(c, &mut self.strings),
        }
    }

    pub fn exchanges(&self) -> usize {
        self.exchanges.len()
    }

    pub fn connections(&self) -> usize {
        self.connections.len()
    }

    pub fn finish(self) -> PolarsResult<Tables> {
        let exchanges = self.exchanges.into_frame(&self.strings)?;
        let connections = self.connections.into_frame(&self.strings)?;
        Ok(Tables { exchanges, connections })
    }
}
