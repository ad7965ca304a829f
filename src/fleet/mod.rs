//! The analysis of a fleet (docs/fleet.md): every node writes its slice of the tables
//! (`slice`, partitioned Parquet, no query engine needed), and `linkrank fleet` folds the
//! slices with DataFusion, embedded or on a Ballista cluster (`engine`, feature `fleet`),
//! into per-link aggregates that rank, plan and report as `analyze` does (`links`).
//! `cluster` runs a Ballista scheduler or executor inside linkrank.

pub mod sketch;
pub mod slice;

#[cfg(feature = "fleet")]
pub mod cluster;
#[cfg(feature = "fleet")]
pub mod engine;
#[cfg(feature = "fleet")]
pub mod links;
