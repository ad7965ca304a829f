//! Reads trace files with `linkrank::traces::read` and prints throughput; driven by
//! bench/traces.sh (which adds peak memory from /usr/bin/time).
//!
//! usage: cargo run --release --example trace_bench -- FILE...

use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(!paths.is_empty(), "usage: trace_bench FILE...");
    let t0 = Instant::now();
    let set = linkrank::traces::read(&paths)?;
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
    Ok(())
}
