//! Helpers shared by the integration tests: run the pipeline on a capture, read columns.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use linkrank::app::{
    open_captures, run_captures, run_captures_with_keys, run_pipeline, PipelineConfig,
};
use linkrank::ingest::capture::MergedCaptures;
use linkrank::ingest::tls::keylog::KeyLog;
use linkrank::model::Coverage;
use linkrank::tables::Tables;
use polars::prelude::*;

pub fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A file of the third-party corpus (see `linkrank::testing::corpus`); only after `require()`.
pub fn corpus(name: &str) -> PathBuf {
    linkrank::testing::corpus::path(name)
}

pub fn analyse(paths: &[PathBuf]) -> (Tables, Coverage) {
    let (_, builder, cov) =
        run_captures(paths, PipelineConfig::default(), None).unwrap_or_else(|e| panic!("{e:#}"));
    (builder.finish().unwrap(), cov)
}

/// [`analyse`] with TLS key logs (as `--keylog`).
pub fn analyse_with_keys(paths: &[PathBuf], keylogs: &[PathBuf]) -> (Tables, Coverage) {
    let mut keys = KeyLog::new();
    for k in keylogs {
        keys.merge(&KeyLog::read(k).unwrap_or_else(|e| panic!("{e:#}")));
    }
    let (_, builder, cov) = run_captures_with_keys(paths, PipelineConfig::default(), None, &keys)
        .unwrap_or_else(|e| panic!("{e:#}"));
    (builder.finish().unwrap(), cov)
}

/// One pass through the pipeline, clocks as the files have them.
pub fn analyse_one_pass(paths: &[PathBuf]) -> (Tables, Coverage) {
    let files = open_captures(paths).unwrap_or_else(|e| panic!("{e:#}"));
    let mut merged = MergedCaptures::new(files);
    let (builder, cov) = run_pipeline(&mut merged, PipelineConfig::default());
    (builder.finish().unwrap(), cov)
}

pub fn u64s(df: &DataFrame, col: &str) -> Vec<Option<u64>> {
    let c = df.column(col).unwrap().cast(&DataType::UInt64).unwrap();
    c.u64().unwrap().iter().collect()
}

pub fn i64s(df: &DataFrame, col: &str) -> Vec<Option<i64>> {
    df.column(col).unwrap().i64().unwrap().iter().collect()
}

pub fn strs(df: &DataFrame, col: &str) -> Vec<Option<String>> {
    df.column(col)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|s| s.map(str::to_owned))
        .collect()
}

pub fn bools(df: &DataFrame, col: &str) -> Vec<bool> {
    df.column(col)
        .unwrap()
        .bool()
        .unwrap()
        .iter()
        .map(|b| b.unwrap_or(false))
        .collect()
}

pub fn sum(df: &DataFrame, col: &str) -> u64 {
    u64s(df, col).into_iter().flatten().sum()
}

/// Runs tshark; the tests that compare with it need it (scripts/test.sh installs it).
pub fn tshark(args: &[&str]) -> String {
    let out = std::process::Command::new("tshark")
        .args(args)
        .output()
        .expect("tshark is needed by this test: run `bash scripts/test.sh`, which installs it");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A caller of a traced fixture's truth file as trace files name it: the driver sends no
/// traceparent and exports no span, so traces call it `user` (an untraced caller).
pub fn traced_caller(truth_caller: &serde_json::Value) -> &str {
    match truth_caller.as_str().unwrap() {
        "driver" => "user",
        c => c,
    }
}
