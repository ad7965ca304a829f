//! linkrank: measure the HTTP traffic between services from packet captures and rank the
//! service-to-service links by what migrating them off HTTP/1.1 + JSON would gain.
//!
//! Data flows one way through the stages, each a module:
//! `capture` (files -> frames) -> `decode` (frames -> TCP segments) -> `flow` (segments ->
//! ordered byte streams) -> `http` (streams -> exchanges and connection records) ->
//! `tables` (records -> polars DataFrames and Parquet) -> `identity` (names) -> `links`
//! -> `cost` -> `chains` -> `rank` -> `report`. Beside them, `dns` reads the answers of
//! UDP DNS responses and `tls` the names of ClientHellos; `traces` reads span files into
//! calls, and `join` matches those calls to the captured exchanges when both are given.

pub mod app;
pub mod assess;
pub mod capture;
pub mod chains;
pub mod cli;
mod config_error;
pub mod cost;
pub mod decode;
pub mod diff;
pub mod dns;
pub mod flow;
pub mod h2cost;
pub mod http;
pub mod identity;
pub mod join;
pub mod links;
pub mod model;
pub mod plan;
pub mod rank;
pub mod recommend;
pub mod report;
pub mod serialization;
pub mod tables;
#[doc(hidden)]
pub mod testing;
pub mod tls;
pub mod traces;
