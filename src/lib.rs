//! linkrank: measure the traffic between services from packet captures and distributed
//! traces, and rank the service-to-service links by what migrating them off HTTP/1.1 +
//! JSON (to gRPC, a broker or a mesh) would gain.
//!
//! The data flows one way, and the folders follow it:
//!
//! 1. [`ingest`]: files -> frames (`capture`) -> TCP segments (`decode`) -> ordered byte
//!    streams (`flow`) -> exchanges and connection records (`http`, with `tls`, `dns`,
//!    `serialization` for the JSON samples and `h2cost` for the HTTP/2 header replay);
//!    trace files -> calls (`traces`).
//! 2. [`tables`]: the records as polars DataFrames, written to and read from Parquet.
//! 3. [`analysis`]: traces joined to exchanges (`join`), endpoints named (`identity`),
//!    links measured (`links`), call trees (`chains`), the cost model (`cost`), each link
//!    assessed (`assess`, with the `recommend` rules), ranked (`rank`) and planned
//!    (`plan`).
//! 4. [`report`]: `links.json`, `links.csv`, `report.md`, `report.html`, the terminal,
//!    and the migration kit (`kit`: .proto, AsyncAPI and mesh files per recommendation).
//!
//! [`model`] holds the owned records passed between stages; [`app`] wires the stages of
//! `linkrank analyze`, [`diff`] compares two analyses, [`cli`] parses the command line.

pub mod ingest;
pub mod tables;
pub mod analysis;
pub mod report;

pub mod app;
pub mod cli;
mod config_error;
pub mod diff;
pub mod fleet;
pub mod model;
#[doc(hidden)]
pub mod testing;
