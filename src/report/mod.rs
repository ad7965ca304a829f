//! Report: what a run prints and writes for people.

pub mod summary;
