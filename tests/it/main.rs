//! linkrank's integration tests, one crate (one link of polars instead of one per test
//! file), a module per area. Shared helpers are in `common`.
//!
//! `cargo test --test it` runs them all; `cargo test --test it golden::` one area.

mod common;

mod architecture;
mod chain_fixtures;
mod chains;
mod cli;
mod corpus;
mod diff;
mod exchange_prop;
mod fixtures;
#[cfg(feature = "fleet")]
mod fleet;
mod flow_reassembly_prop;
mod fuzz_replay;
mod golden;
mod h2_truth;
mod h2cost;
mod http2;
mod html;
mod kit;
mod links;
#[cfg(feature = "live")]
mod live;
mod names;
#[cfg(feature = "otel")]
mod otel;
mod recommend;
mod robustness;
mod serialization;
mod tls_decrypt;
mod tls_handshake;
mod threads;
mod trace_scale;
mod traces;
mod traces_join;
mod traces_rpc;
mod transport;
