//! Parquet files of the tables: written at the end of a run, read back as inputs.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::columns;
use super::{connections, dns, exchanges, payloads, Tables};

pub const EXCHANGES_FILE: &str = "exchanges.parquet";
pub const CONNECTIONS_FILE: &str = "connections.parquet";
pub const DNS_FILE: &str = "dns.parquet";
pub const PAYLOADS_FILE: &str = "payloads.parquet";

/// Nullable columns newer than the first tables: a file without them (written by an
/// earlier linkrank) is still read, with the columns null, typed as `COLUMNS` says.
pub(crate) const ADDED_LATER: &[&str] = &[
    // connections: TLS names and the TLS handshake
    columns::TLS_SNI,
    columns::TLS_ALPN,
    columns::TLS_VERSION,
    columns::TLS_CIPHER,
    columns::TLS_ALPN_SELECTED,
    columns::TLS_RESUMED,
    columns::TLS_TICKET_OFFERED,
    columns::TLS_CERT_BYTES,
    columns::TLS_HANDSHAKE_NS,
    columns::TLS_HANDSHAKE_BYTES,
    // exchanges: the HTTP/2 and gRPC header replay
    columns::REQ_HEADER_BYTES_H2,
    columns::RESP_HEADER_BYTES_H2,
    columns::REQ_HEADER_BYTES_GRPC,
    columns::RESP_HEADER_BYTES_GRPC,
    columns::REQ_DATA_FRAME_BYTES_H2,
    columns::RESP_DATA_FRAME_BYTES_H2,
    // payloads: risks seen in the samples
    columns::UNSAFE_INTEGERS,
    columns::TYPE_CONFLICTS,
    // exchanges and connections: transport pathologies (sender stalls, zero windows,
    // retransmission timeouts)
    columns::REQ_STALL_NS,
    columns::RESP_STALL_NS,
    columns::C2S_ZERO_WINDOWS,
    columns::S2C_ZERO_WINDOWS,
    columns::C2S_RETRANSMISSION_TIMEOUTS,
    columns::S2C_RETRANSMISSION_TIMEOUTS,
    columns::C2S_RTO_WAIT_NS,
    columns::S2C_RTO_WAIT_NS,
    columns::C2S_ZERO_WINDOW_NS,
    columns::S2C_ZERO_WINDOW_NS,
    columns::MSS,
    // TLS decryption
    columns::TLS_DECRYPTED,
    columns::TLS_DECRYPTION,
    columns::TLS_EST_MODE,
    columns::TLS_EST_TURNS,
    columns::TLS_EST_REQUESTS,
    columns::TLS_EST_TTFB_NS,
    columns::TLS_EST_TOTAL_NS,
    columns::TLS_EST_REQ_BYTES,
    columns::TLS_EST_RESP_BYTES,
    columns::TLS_EST_CONFIDENCE,
];

/// Every column an older file may lack: [`ADDED_LATER`] and the HTTP/2 and gRPC columns.
pub(crate) fn added_later() -> impl Iterator<Item = &'static str> {
    ADDED_LATER
        .iter()
        .chain(super::h2::EXCHANGE_NAMES.iter())
        .chain(super::h2::CONNECTION_NAMES.iter())
        .copied()
}

/// The polars type of a nullable column type of `COLUMNS` (`u64?`, `str?`, ...).
fn nullable_dtype(ty: &str) -> Option<DataType> {
    Some(match ty.strip_suffix('?')? {
        "str" => DataType::String,
        "u32" => DataType::UInt32,
        "u64" => DataType::UInt64,
        "i64" => DataType::Int64,
        "f64" => DataType::Float64,
        "bool" => DataType::Boolean,
        _ => return None,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Polars {
        path: PathBuf,
        #[source]
        source: PolarsError,
    },
    #[error("{path}: a Parquet file, but none of linkrank's exchanges, connections, dns or payloads tables (columns: {columns})")]
    UnknownTable { path: PathBuf, columns: String },
}

/// Which table a Parquet file holds, told by its columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableKind {
    Exchanges,
    Connections,
    Dns,
    Payloads,
}

/// Parquet files start with `PAR1`.
pub fn is_parquet(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && &magic == b"PAR1"
}

/// Rows per Parquet row group: the writer holds one group's encoded pages at a time, so
/// smaller groups keep the write's extra memory small (polars' default is 512²).
const ROW_GROUP_ROWS: usize = 32 * 1024;

pub fn write_tables(tables: &Tables, dir: &Path) -> Result<(), TableError> {
    std::fs::create_dir_all(dir).map_err(|source| TableError::Io {
        path: dir.into(),
        source,
    })?;
    for (name, df) in [
        (EXCHANGES_FILE, &tables.exchanges),
        (CONNECTIONS_FILE, &tables.connections),
        (DNS_FILE, &tables.dns),
        (PAYLOADS_FILE, &tables.payloads),
    ] {
        let path = dir.join(name);
        let file = File::create(&path).map_err(|source| TableError::Io {
            path: path.clone(),
            source,
        })?;
        let mut df = df.clone();
        ParquetWriter::new(file)
            .with_compression(ParquetCompression::Zstd(None))
            .with_row_group_size(Some(ROW_GROUP_ROWS))
            .finish(&mut df)
            .map_err(|source| TableError::Polars {
                path: path.clone(),
                source,
            })?;
    }
    Ok(())
}

/// The tables being written to Parquet while the run goes on: on a thread of their own,
/// or already written when the run has one thread. The writer holds its own copy of the
/// tables (a DataFrame's columns are shared, not copied), so the memory they hold is
/// freed once both the run and the writer are done with them. Dropped without
/// [`TableWrite::wait`] (a run that failed later), it still waits for the files to be
/// complete.
pub struct TableWrite {
    state: WriteState,
}

enum WriteState {
    Running(std::thread::JoinHandle<Result<(), TableError>>),
    Done(Result<(), TableError>),
    Taken,
}

impl TableWrite {
    /// Starts writing `tables` under `dir`; `background: false` writes them now.
    pub fn start(tables: &Tables, dir: &Path, background: bool) -> TableWrite {
        // The directory is made here, so the run can write its other files beside.
        if !background || std::fs::create_dir_all(dir).is_err() {
            return TableWrite {
                state: WriteState::Done(write_tables(tables, dir)),
            };
        }
        let (tables, dir) = (tables.clone(), dir.to_path_buf());
        TableWrite {
            state: WriteState::Running(std::thread::spawn(move || write_tables(&tables, &dir))),
        }
    }

    /// Waits for the files; a panic of the writer is passed on.
    pub fn wait(mut self) -> Result<(), TableError> {
        match std::mem::replace(&mut self.state, WriteState::Taken) {
            WriteState::Running(handle) => handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            WriteState::Done(result) => result,
            WriteState::Taken => Ok(()),
        }
    }
}

impl Drop for TableWrite {
    fn drop(&mut self) {
        if let WriteState::Running(handle) = std::mem::replace(&mut self.state, WriteState::Taken) {
            // The run has already failed: its error is the one reported.
            let _ = handle.join();
        }
    }
}

fn read_one(path: &Path) -> Result<(TableKind, DataFrame), TableError> {
    let file = File::open(path).map_err(|source| TableError::Io {
        path: path.into(),
        source,
    })?;
    let df = ParquetReader::new(file)
        .finish()
        .map_err(|source| TableError::Polars {
            path: path.into(),
            source,
        })?;
    let names: Vec<&str> = df.get_column_names().iter().map(|s| s.as_str()).collect();
    let optional =
        |c: &str, ty: &str| added_later().any(|a| a == c) && nullable_dtype(ty).is_some();
    let matches = |cols: &[(&str, &str, &str)]| {
        cols.iter()
            .all(|(c, ty, _)| names.contains(c) || optional(c, ty))
    };
    let kind = if matches(exchanges::COLUMNS) {
        TableKind::Exchanges
    } else if matches(connections::COLUMNS) {
        TableKind::Connections
    } else if matches(dns::COLUMNS) {
        TableKind::Dns
    } else if matches(payloads::COLUMNS) {
        TableKind::Payloads
    } else {
        return Err(TableError::UnknownTable {
            path: path.into(),
            columns: names.join(","),
        });
    };
    // Keep exactly our columns, in our order, so frames of different runs stack.
    let cols = match kind {
        TableKind::Exchanges => exchanges::COLUMNS,
        TableKind::Connections => connections::COLUMNS,
        TableKind::Dns => dns::COLUMNS,
        TableKind::Payloads => payloads::COLUMNS,
    };
    let mut df = df;
    let height = df.height();
    for (c, ty, _) in cols {
        if df.column(c).is_err() {
            let Some(dtype) = nullable_dtype(ty) else {
                continue;
            };
            let nulls = Column::full_null((*c).into(), height, &dtype);
            df.with_column(nulls).map_err(|source| TableError::Polars {
                path: path.into(),
                source,
            })?;
        }
    }
    let df = df
        .select(cols.iter().map(|(c, _, _)| *c))
        .map_err(|source| TableError::Polars {
            path: path.into(),
            source,
        })?;
    Ok((kind, df))
}

/// Reads tables written by earlier runs. Files in the same folder belong to one run and
/// share connection ids; each folder's ids are renumbered after the previous ones.
pub fn read_tables(paths: &[PathBuf]) -> Result<Tables, TableError> {
    let mut by_dir: Vec<(PathBuf, Tables)> = Vec::new();
    for path in paths {
        let (kind, df) = read_one(path)?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let slot = match by_dir.iter().position(|(d, _)| *d == dir) {
            Some(i) => i,
            None => {
                let empty = Tables::empty().map_err(|source| TableError::Polars {
                    path: path.clone(),
                    source,
                })?;
                by_dir.push((dir, empty));
                by_dir.len() - 1
            }
        };
        let run = &mut by_dir[slot].1;
        match kind {
            TableKind::Exchanges => run.exchanges = df,
            TableKind::Connections => run.connections = df,
            TableKind::Dns => run.dns = df,
            TableKind::Payloads => run.payloads = df,
        }
    }
    let mut all = Tables::empty().map_err(|source| TableError::Polars {
        path: PathBuf::new(),
        source,
    })?;
    for (dir, run) in by_dir {
        all.append(run)
            .map_err(|source| TableError::Polars { path: dir, source })?;
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written on a thread or inline, the files are the same; the writer's error is
    /// returned by `wait`; a writer dropped unwaited still leaves complete files.
    #[test]
    fn a_background_write_gives_the_inline_files_and_its_errors() {
        let tables = Tables::empty().unwrap();
        let (inline, background) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        TableWrite::start(&tables, inline.path(), false)
            .wait()
            .unwrap();
        TableWrite::start(&tables, background.path(), true)
            .wait()
            .unwrap();
        for file in [EXCHANGES_FILE, CONNECTIONS_FILE, DNS_FILE, PAYLOADS_FILE] {
            let read = |dir: &Path| std::fs::read(dir.join(file)).unwrap();
            assert_eq!(read(inline.path()), read(background.path()), "{file}");
        }

        let dropped = tempfile::tempdir().unwrap();
        drop(TableWrite::start(&tables, dropped.path(), true));
        let paths: Vec<PathBuf> = [EXCHANGES_FILE, CONNECTIONS_FILE]
            .iter()
            .map(|f| dropped.path().join(f))
            .collect();
        let back = read_tables(&paths).unwrap();
        assert_eq!(
            back.exchanges.get_column_names(),
            tables.exchanges.get_column_names()
        );

        // A directory that cannot be made: a file stands in its way.
        let blocked = tempfile::tempdir().unwrap();
        let file = blocked.path().join("out");
        std::fs::write(&file, b"not a directory").unwrap();
        for background in [false, true] {
            let err = TableWrite::start(&tables, &file, background).wait();
            assert!(matches!(err, Err(TableError::Io { .. })), "{err:?}");
        }
    }
}
