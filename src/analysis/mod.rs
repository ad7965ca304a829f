//! Analysis: from the tables (and the traces' calls) to ranked, planned advice, one way:
//! `join` (trace calls matched to captured exchanges) -> `identity` (endpoints named as
//! services) -> `links` (measures per service pair) -> `chains` (call trees and critical
//! paths) -> `cost` (the cost model: savings and what-if) -> `assess` (per link: savings,
//! what-if and the decision of the `recommend` rules) -> `rank` -> `plan` (the rollout).

pub mod join;
pub mod identity;
pub mod links;
pub mod chains;
pub mod cost;
pub mod recommend;
pub mod assess;
pub mod rank;
pub mod plan;
