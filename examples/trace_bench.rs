//! Reads trace files with `linkrank::ingest::traces::read` and prints throughput; driven by
//! bench/traces.sh (which adds peak memory from /usr/bin/time).
//!
//! usage: cargo run --release --example trace_bench -- [--parse-only | --digest] FILE...
//!
//! `--digest` also prints a hash of everything read (calls, services, edges, coverage),
//! to check that two builds (the reference OTLP path and the fast path) agree on a file.
//!
//! `--parse-only` only deserializes each line of an OTLP/JSON-lines file into
//! opentelemetry-proto's `ExportTraceServiceRequest` (no conversion, no assembly): the
//! ceiling the reader cannot beat while it uses those types.

use std::io::BufRead;
use std::time::Instant;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

fn parse_only(path: &str) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let r = std::io::BufReader::with_capacity(256 * 1024, std::fs::File::open(path)?);
    let (mut spans, mut bytes) = (0u64, 0u64);
    for line in r.split(b'\n') {
        let line = line?;
        bytes += line.len() as u64 + 1;
        if line.is_empty() {
            continue;
        }
        let req: ExportTraceServiceRequest = serde_json::from_slice(&line)?;
        spans += req
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .map(|ss| ss.spans.len() as u64)
            .sum::<u64>();
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "parse only: {spans} spans, {:.1} MB in {secs:.3} s",
        bytes as f64 / 1e6
    );
    println!("spans/s        {:.0}", spans as f64 / secs);
    println!("MB/s           {:.1}", bytes as f64 / 1e6 / secs);
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let mut paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.first().map(String::as_str) == Some("--parse-only") {
        return paths[1..].iter().try_for_each(|p| parse_only(p));
    }
    let digest = paths.iter().any(|p| p == "--digest");
    paths.retain(|p| !p.starts_with("--"));
    anyhow::ensure!(
        !paths.is_empty(),
        "usage: trace_bench [--parse-only | --digest] FILE..."
    );
    let t0 = Instant::now();
    let set = linkrank::ingest::traces::read(&paths)?;
    let secs = t0.elapsed().as_secs_f64();
    let c = &set.coverage;
    let mb = c.bytes as f64 / 1e6;
    println!("files          {}", c.files);
    println!("bytes          {} ({mb:.1} MB)", c.bytes);
    println!("spans read     {}", c.spans_read);
    println!("spans kept     {}", c.spans_kept);
    println!(
        "traces         {} (evicted {}, idle-flushed {})",
        c.traces, c.traces_evicted, c.traces_flushed_idle
    );
    println!(
        "calls          {} (virtual {}, async {})",
        c.calls, c.calls_virtual, c.calls_async
    );
    println!("services       {}", set.services.len());
    println!("orphans        {}", c.orphan_spans);
    println!("errors         {}", c.errors);
    println!("seconds        {secs:.3}");
    println!("spans/s        {:.0}", c.spans_read as f64 / secs);
    println!("MB/s           {:.1}", mb / secs);
    if digest {
        // SipHash with fixed keys: the same input gives the same digest in every build.
        struct H(std::collections::hash_map::DefaultHasher);
        impl std::fmt::Write for H {
            fn write_str(&mut self, s: &str) -> std::fmt::Result {
                std::hash::Hasher::write(&mut self.0, s.as_bytes());
                Ok(())
            }
        }
        let mut h = H(Default::default());
        use std::fmt::Write as _;
        write!(
            h,
            "{:?}{:?}{:?}{:?}",
            set.calls, set.services, set.edges, set.coverage
        )?;
        println!("digest         {:016x}", std::hash::Hasher::finish(&h.0));
    }
    Ok(())
}
