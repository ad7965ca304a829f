//! The cost model: what each link pays today in handshakes, headers and JSON, and what
//! the same traffic would pay pooled over HTTP/2 as gRPC with protobuf bodies.
//!
//! `constants` holds every constant with its default, range and source (overridable);
//! `savings` turns a link's measures (and the header replay and payload samples the
//! engine took) into the per-link `savings` object; `whatif` spreads those savings along
//! the critical paths the chain analysis found. `docs/cost-model.md` states the model.

pub mod constants;
pub mod savings;
pub mod units;
pub mod whatif;

pub use constants::{ConstantsError, CostConstants, DEFINITIONS};
pub use savings::{link_savings, PayloadSamples, Savings};
pub use whatif::{what_if, IfAsync, WhatIf};
