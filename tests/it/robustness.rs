//! The corruption suite, after Wireshark's `tools/fuzz-test.sh`: every capture of
//! `fixtures/` and `captures/` (and of the third-party corpus, when present) is corrupted
//! several ways and analysed by the real binary under a watchdog. Each run must end by
//! itself within the time limit with exit 0 or 1: no panic (exit 101), no signal, no hang.
//!
//! The corruptions:
//! - `editcap -E RATE --seed N` (Wireshark's own fuzzer) at rates 0.02 and 0.2;
//! - truncation at pseudo-random offsets;
//! - bit flips confined to headers: pcap record headers and the first 64 bytes of each
//!   packet (link, IP and TCP headers), so the structure is damaged where parsers decide.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::common::*;

/// A run that spends more CPU time than this is a hang (an endless loop). CPU time, not
/// wall time, so that a loaded machine does not make a slow run look like a hang.
const WATCHDOG: Duration = Duration::from_secs(20);
/// A run still going after this much wall time is stuck (waiting forever, a deadlock).
const WALL_LIMIT: Duration = Duration::from_secs(180);

/// Deterministic xorshift: the same corruptions on every run, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Debug, Clone)]
enum Corruption {
    Editcap { rate: &'static str, seed: u32 },
    Truncate { seed: u64 },
    HeaderFlips { seed: u64 },
}

impl Corruption {
    fn label(&self) -> String {
        match self {
            Corruption::Editcap { rate, seed } => format!("editcap -E {rate} --seed {seed}"),
            Corruption::Truncate { seed } => format!("truncated (seed {seed})"),
            Corruption::HeaderFlips { seed } => format!("header bit flips (seed {seed})"),
        }
    }

    /// Writes the corrupted copy of `src` to `dst`.
    fn apply(&self, src: &Path, dst: &Path) {
        match self {
            Corruption::Editcap { rate, seed } => {
                let out = Command::new("editcap")
                    .args(["-E", rate, "--seed", &seed.to_string()])
                    .arg(src)
                    .arg(dst)
                    .output()
                    .expect("editcap (installed with tshark by scripts/test.sh)");
                assert!(
                    out.status.success(),
                    "editcap on {}: {}",
                    src.display(),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Corruption::Truncate { seed } => {
                let bytes = std::fs::read(src).unwrap();
                let mut rng = Rng(*seed ^ 0x5DEE_CE66_D1CE_4E5B);
                let cut = rng.below(bytes.len() as u64) as usize;
                std::fs::write(dst, &bytes[..cut]).unwrap();
            }
            Corruption::HeaderFlips { seed } => {
                let mut bytes = std::fs::read(src).unwrap();
                let mut rng = Rng(*seed ^ 0x2545_F491_4F6C_DD1D);
                for range in header_ranges(&bytes) {
                    for i in range {
                        if rng.below(64) == 0 {
                            bytes[i] ^= 1 << rng.below(8);
                        }
                    }
                }
                std::fs::write(dst, &bytes).unwrap();
            }
        }
    }
}

/// The byte ranges of a classic pcap file that hold headers: each 16-byte record header
/// and the first 64 bytes of its packet. Empty for anything else (pcapng is left to
/// editcap and truncation).
fn header_ranges(b: &[u8]) -> Vec<std::ops::Range<usize>> {
    let le = match b.get(..4) {
        Some([0xd4, 0xc3, 0xb2, 0xa1]) | Some([0x4d, 0x3c, 0xb2, 0xa1]) => true,
        Some([0xa1, 0xb2, 0xc3, 0xd4]) | Some([0xa1, 0xb2, 0x3c, 0x4d]) => false,
        _ => return Vec::new(),
    };
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= b.len() {
        let f = [b[at + 8], b[at + 9], b[at + 10], b[at + 11]];
        let incl = if le {
            u32::from_le_bytes(f)
        } else {
            u32::from_be_bytes(f)
        } as usize;
        let end = (at + 16 + incl).min(b.len());
        out.push(at..(at + 16 + 64).min(end));
        at = end;
        if incl == 0 {
            break;
        }
    }
    out
}

/// Every capture under `dir`, recursively, by extension.
fn captures_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            captures_under(&p, out);
        } else if matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("pcap" | "pcapng" | "cap")
        ) {
            out.push(p);
        }
    }
}

/// The corruptions each file gets: two editcap seeds at each rate, one truncation and one
/// set of header flips, seeded from the file's index so files differ.
fn corruptions(index: u64) -> Vec<Corruption> {
    let s = index as u32 * 7 + 1;
    vec![
        Corruption::Editcap {
            rate: "0.02",
            seed: s,
        },
        Corruption::Editcap {
            rate: "0.02",
            seed: s + 1,
        },
        Corruption::Editcap {
            rate: "0.2",
            seed: s + 2,
        },
        Corruption::Editcap {
            rate: "0.2",
            seed: s + 3,
        },
        Corruption::Truncate { seed: index + 11 },
        Corruption::HeaderFlips { seed: index + 13 },
    ]
}

/// Analyses `capture` with the binary; `Err` says how it failed.
fn run_once(capture: &Path, out: &Path) -> Result<(), String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_linkrank"))
        .args(["analyze", "--quiet", "--reproducible", "--no-auto-services"])
        .arg(capture)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        let cpu = linkrank::app::timings::cpu_time(child.id()).unwrap_or_default();
        if cpu > WATCHDOG || start.elapsed() > WALL_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "hang: still running after {cpu:?} of CPU time, {:?} in all",
                start.elapsed()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read as _;
        let _ = e.read_to_string(&mut stderr);
    }
    match status.code() {
        Some(0 | 1) if !stderr.contains("panicked") => Ok(()),
        Some(c) => Err(format!("exit {c}: {}", stderr.trim())),
        None => Err(format!("killed by a signal: {status}")),
    }
}

/// Every file with every corruption of [`corruptions`].
/// editcap (Wireshark 4.0) refuses to write a pcapng that holds a Decryption Secrets
/// Block; such a file gets the other corruptions (its secret-less twin gets all of them).
fn every_way(files: &[PathBuf]) -> Vec<(PathBuf, Corruption)> {
    files
        .iter()
        .enumerate()
        .flat_map(|(i, f)| {
            let secrets = holds_secrets(f);
            corruptions(i as u64)
                .into_iter()
                .filter(move |c| !(secrets && matches!(c, Corruption::Editcap { .. })))
                .map(move |c| (f.clone(), c))
        })
        .collect()
}

/// A little-endian pcapng with a Decryption Secrets Block (type 0x0000000A).
fn holds_secrets(path: &Path) -> bool {
    let b = std::fs::read(path).unwrap();
    if b.get(..4) != Some(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        return false;
    }
    let mut at = 0;
    while let (Some(t), Some(l)) = (b.get(at..at + 4), b.get(at + 4..at + 8)) {
        let ty = u32::from_le_bytes(t.try_into().unwrap());
        let len = u32::from_le_bytes(l.try_into().unwrap()) as usize;
        if ty == 0x0a {
            return true;
        }
        if len < 12 {
            return false;
        }
        at += len;
    }
    false
}

/// Runs each (file, corruption) on two workers; panics listing the failures.
fn corrupt_and_run(jobs: Vec<(PathBuf, Corruption)>) -> usize {
    let work = tempfile::tempdir().unwrap();
    let queue = Mutex::new(jobs.iter().enumerate());
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let Some((id, (file, corruption))) = queue.lock().unwrap().next() else {
                    break;
                };
                let ext = file.extension().unwrap().to_str().unwrap();
                let bad = work.path().join(format!("{id}.{ext}"));
                corruption.apply(file, &bad);
                let out = work.path().join(format!("out{id}"));
                if let Err(why) = run_once(&bad, &out) {
                    // Keep the reproducer beside the target dir for the report.
                    let keep = Path::new(env!("CARGO_TARGET_TMPDIR"))
                        .join(format!("corrupted-{id}.{ext}"));
                    let _ = std::fs::copy(&bad, &keep);
                    failures.lock().unwrap().push(format!(
                        "{} ({}): {why}; reproducer {}",
                        file.display(),
                        corruption.label(),
                        keep.display()
                    ));
                }
                let _ = std::fs::remove_file(&bad);
                let _ = std::fs::remove_dir_all(&out);
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} corrupted runs failed:\n{}",
        failures.len(),
        jobs.len(),
        failures.join("\n")
    );
    jobs.len()
}

#[test]
fn header_ranges_cover_each_record_header_and_the_packet_start() {
    let bytes = std::fs::read(repo("fixtures/keepalive.pcap")).unwrap();
    let ranges = header_ranges(&bytes);
    // One range per record (tshark -r fixtures/keepalive.pcap | wc -l).
    let frames = tshark(&["-r", repo("fixtures/keepalive.pcap").to_str().unwrap()])
        .lines()
        .count();
    assert_eq!(ranges.len(), frames);
    assert!(ranges.iter().all(|r| r.len() == 80 || r.end == bytes.len()));
    assert_eq!(ranges[0].start, 24);
}

#[test]
fn corrupted_fixtures_and_demo_never_hang_crash_or_panic() {
    let mut files = Vec::new();
    captures_under(&repo("fixtures"), &mut files);
    captures_under(&repo("captures"), &mut files);
    assert!(files.len() >= 20, "fixtures found: {files:?}");
    let runs = corrupt_and_run(every_way(&files));
    eprintln!("{runs} corrupted runs of {} captures", files.len());
}

#[test]
fn corrupted_corpus_captures_never_hang_crash_or_panic() {
    if !linkrank::testing::corpus::require() {
        return;
    }
    let mut files = Vec::new();
    captures_under(&linkrank::testing::corpus::path(""), &mut files);
    assert!(files.len() >= 20, "corpus captures found: {files:?}");
    let runs = corrupt_and_run(every_way(&files));
    eprintln!("{runs} corrupted runs of {} corpus captures", files.len());
}

// ---- adversarial resource inputs ------------------------------------------------------
//
// Each input is generated here (never committed), analysed by the binary, and must finish
// with exit 0 within its time limit, with a peak RSS under `MAX_RSS_MB`, and with the
// bound it hits counted in quality.json.

/// The memory every adversarial input must stay under.
const MAX_RSS_MB: u64 = 200;

/// A classic pcap (µs, Ethernet) written record by record.
struct PcapWriter {
    out: std::io::BufWriter<std::fs::File>,
    t_us: u64,
}

impl PcapWriter {
    fn create(path: &Path) -> Self {
        use std::io::Write as _;
        let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&[0; 8]);
        h.extend_from_slice(&262_144u32.to_le_bytes());
        h.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
        out.write_all(&h).unwrap();
        PcapWriter {
            out,
            t_us: 1_700_000_000_000_000,
        }
    }

    fn frame(&mut self, data: &[u8]) {
        use std::io::Write as _;
        self.t_us += 10;
        let mut h = [0u8; 16];
        h[..4].copy_from_slice(&((self.t_us / 1_000_000) as u32).to_le_bytes());
        h[4..8].copy_from_slice(&((self.t_us % 1_000_000) as u32).to_le_bytes());
        h[8..12].copy_from_slice(&(data.len() as u32).to_le_bytes());
        h[12..16].copy_from_slice(&(data.len() as u32).to_le_bytes());
        self.out.write_all(&h).unwrap();
        self.out.write_all(data).unwrap();
    }

    /// One Ethernet/IPv4/TCP segment.
    #[allow(clippy::too_many_arguments)]
    fn tcp(
        &mut self,
        src: ([u8; 4], u16),
        dst: ([u8; 4], u16),
        seq: u32,
        ack: Option<u32>,
        syn: bool,
        fin: bool,
        payload: &[u8],
    ) {
        let mut b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src.0, dst.0, 64)
            .tcp(src.1, dst.1, seq, 65535);
        if syn {
            b = b.syn();
        }
        if fin {
            b = b.fin();
        }
        if let Some(a) = ack {
            b = b.ack(a);
        }
        let mut buf = Vec::with_capacity(b.size(payload.len()));
        b.write(&mut buf, payload).unwrap();
        self.frame(&buf);
    }

    /// A data segment (ACK set, no SYN or FIN) at `*seq`, which then moves past it.
    fn send(
        &mut self,
        src: ([u8; 4], u16),
        dst: ([u8; 4], u16),
        seq: &mut u32,
        ack: u32,
        payload: &[u8],
    ) {
        self.tcp(src, dst, *seq, Some(ack), false, false, payload);
        *seq = seq.wrapping_add(payload.len() as u32);
    }

    fn finish(mut self) {
        use std::io::Write as _;
        self.out.flush().unwrap();
    }
}

/// What one run of the binary cost.
pub(crate) struct Run {
    pub(crate) code: Option<i32>,
    pub(crate) max_rss_mb: u64,
    pub(crate) stderr: String,
    pub(crate) quality: serde_json::Value,
    pub(crate) links: serde_json::Value,
}

/// Runs `linkrank analyze` on `inputs` and measures its peak RSS with wait4.
fn run_measured(inputs: &[&Path], limit: Duration) -> Run {
    run_measured_with(inputs, &[], limit)
}

/// `run_measured` with more options for `analyze`.
pub(crate) fn run_measured_with(inputs: &[&Path], options: &[&str], limit: Duration) -> Run {
    let out = tempfile::tempdir().unwrap();
    let stderr_path = out.path().join("stderr.txt");
    // Reaped by wait4 below, which std's `Child` does not know about.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(env!("CARGO_BIN_EXE_linkrank"))
        .args(["analyze", "--quiet", "--reproducible", "--no-auto-services"])
        .args(options)
        .args(inputs)
        .arg("--out")
        .arg(out.path().join("r"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let start = Instant::now();
    // The child's own high-water mark, read while it runs. Not wait4's ru_maxrss: a child
    // spawned (vfork + exec) from this test process starts its count at this process's
    // peak, which the other tests of the crate, running in this process, drive up.
    let mut hwm_kb = 0u64;
    let (status, _rusage) = loop {
        hwm_kb = hwm_kb.max(linkrank::app::timings::peak_rss(pid as u32).unwrap_or(0) / 1024);
        let mut status = 0;
        // SAFETY: wait4 on our own child with valid pointers to locals.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
        if r == pid {
            break (status, ru);
        }
        assert!(r == 0, "wait4 failed");
        if start.elapsed() > limit {
            // SAFETY: plain kill of our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("hang: {inputs:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    let quality = std::fs::read_to_string(out.path().join("r/quality.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(serde_json::Value::Null);
    let links = std::fs::read_to_string(out.path().join("r/links.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(serde_json::Value::Null);
    Run {
        links,
        code,
        max_rss_mb: hwm_kb / 1024,
        stderr: std::fs::read_to_string(&stderr_path).unwrap_or_default(),
        quality,
    }
}

fn assert_bounded(what: &str, run: &Run) {
    eprintln!(
        "{what}: exit {:?}, peak RSS {} MB",
        run.code, run.max_rss_mb
    );
    assert_eq!(run.code, Some(0), "{what}: {}", run.stderr);
    assert!(
        run.max_rss_mb < MAX_RSS_MB,
        "{what}: peak RSS {} MB, over {MAX_RSS_MB} MB",
        run.max_rss_mb
    );
}

const CLIENT: [u8; 4] = [10, 1, 0, 1];
const SERVER: [u8; 4] = [10, 1, 0, 2];

#[test]
fn a_million_syn_only_connections_stay_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("syns.pcap");
    let mut w = PcapWriter::create(&path);
    for i in 0..1_000_000u32 {
        let src = [10, 2 + (i >> 16) as u8, (i >> 8) as u8, i as u8];
        w.tcp(
            (src, 40000),
            (SERVER, 80),
            i.wrapping_mul(2654435761),
            None,
            true,
            false,
            b"",
        );
    }
    w.finish();
    let run = run_measured(&[&path], Duration::from_secs(240));
    assert_bounded("1,000,000 SYN-only connections", &run);
    let cap = &run.quality["capture"];
    assert_eq!(cap["connections"], 1_000_000, "{cap}");
    // 100,000 live connections at most: the rest were evicted, and counted.
    assert!(
        cap["evicted_capacity"].as_u64().unwrap() >= 900_000,
        "{cap}"
    );
}

/// A handshake between CLIENT:port and SERVER:80; returns the next sequence numbers.
fn handshake(w: &mut PcapWriter, port: u16) -> (u32, u32) {
    let (c, s) = (1000u32, 5000u32);
    w.tcp((CLIENT, port), (SERVER, 80), c, None, true, false, b"");
    w.tcp(
        (SERVER, 80),
        (CLIENT, port),
        s,
        Some(c + 1),
        true,
        false,
        b"",
    );
    w.tcp(
        (CLIENT, port),
        (SERVER, 80),
        c + 1,
        Some(s + 1),
        false,
        false,
        b"",
    );
    (c + 1, s + 1)
}

#[test]
fn content_length_2_pow_63_and_16_digit_chunk_sizes_stay_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge_lengths.pcap");
    let mut w = PcapWriter::create(&path);
    // Content-Length 2^63, then a chunked response whose chunk size is 16 hex digits.
    let (mut c, mut s) = handshake(&mut w, 40001);
    let req = b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n\r\n";
    w.send((CLIENT, 40001), (SERVER, 80), &mut c, s, req);
    for _ in 0..100 {
        w.send((CLIENT, 40001), (SERVER, 80), &mut c, s, &[b'x'; 1400]);
    }
    let resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFF\r\n";
    w.send((SERVER, 80), (CLIENT, 40001), &mut s, c, resp);
    for _ in 0..100 {
        w.send((SERVER, 80), (CLIENT, 40001), &mut s, c, &[b'y'; 1400]);
    }
    w.tcp((SERVER, 80), (CLIENT, 40001), s, Some(c), false, true, b"");
    w.tcp(
        (CLIENT, 40001),
        (SERVER, 80),
        c,
        Some(s + 1),
        false,
        true,
        b"",
    );
    // A second connection: 17 hex digits (over u64) and an overflowing sum of chunks.
    let (c, s) = handshake(&mut w, 40002);
    let req = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    w.tcp((CLIENT, 40002), (SERVER, 80), c, Some(s), false, false, req);
    let resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1FFFFFFFFFFFFFFFF\r\nzz\r\n";
    w.tcp(
        (SERVER, 80),
        (CLIENT, 40002),
        s,
        Some(c + req.len() as u32),
        false,
        true,
        resp,
    );
    w.finish();
    let run = run_measured(&[&path], Duration::from_secs(60));
    assert_bounded("Content-Length 2^63, 16-digit chunk sizes", &run);
    let cap = &run.quality["capture"];
    assert_eq!(cap["exchanges"], 2, "{cap}");
    // Neither body reached its announced end; the 17-digit size is malformed.
    assert_eq!(cap["incomplete_exchanges"], 2, "{cap}");
    assert!(cap["malformed_http"].as_u64().unwrap() >= 1, "{cap}");
}

#[test]
fn a_100_mb_header_block_without_an_empty_line_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("endless_head.pcap");
    let mut w = PcapWriter::create(&path);
    let (mut c, s) = handshake(&mut w, 40003);
    let mut seg = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    seg.resize(1400, b'a');
    w.send((CLIENT, 40003), (SERVER, 80), &mut c, s, &seg);
    let line = b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let mut seg = Vec::with_capacity(1400);
    while seg.len() + line.len() <= 1400 {
        seg.extend_from_slice(line);
    }
    let mut sent = 0u64;
    while sent < 100 << 20 {
        w.send((CLIENT, 40003), (SERVER, 80), &mut c, s, &seg);
        sent += seg.len() as u64;
    }
    w.tcp((CLIENT, 40003), (SERVER, 80), c, Some(s), false, true, b"");
    w.finish();
    let run = run_measured(&[&path], Duration::from_secs(240));
    assert_bounded("a 100 MB header block", &run);
    let cap = &run.quality["capture"];
    assert!(
        cap["malformed_http"].as_u64().unwrap() + cap["header_budget_overflows"].as_u64().unwrap()
            >= 1,
        "the oversized head is counted: {cap}"
    );
}

#[test]
fn ten_thousand_overlapping_retransmissions_stay_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("retransmissions.pcap");
    let mut w = PcapWriter::create(&path);
    let (c, s) = handshake(&mut w, 40004);
    let req = b"GET /r HTTP/1.1\r\nHost: a\r\n\r\n";
    // The segment after a hole, sent again 10,000 times, each copy shifted by a byte and
    // a byte longer, so that every copy overlaps the buffered ones differently.
    let body = [b'q'; 12_000];
    for i in 0..10_000usize {
        let off = i % 1000;
        w.tcp(
            (CLIENT, 40004),
            (SERVER, 80),
            c + 100 + off as u32,
            Some(s),
            false,
            false,
            &body[..1000 + i % 500],
        );
    }
    w.tcp((CLIENT, 40004), (SERVER, 80), c, Some(s), false, false, req);
    w.tcp(
        (CLIENT, 40004),
        (SERVER, 80),
        c + 2000,
        Some(s),
        false,
        true,
        b"",
    );
    w.finish();
    let run = run_measured(&[&path], Duration::from_secs(60));
    assert_bounded("10,000 overlapping retransmissions", &run);
    let cap = &run.quality["capture"];
    assert!(
        cap["retransmitted_bytes"].as_u64().unwrap() > 1_000_000,
        "{cap}"
    );
}

#[test]
fn a_hundred_nested_tunnels_stay_bounded_and_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tunnels.pcap");
    let mut w = PcapWriter::create(&path);
    // 100 IP-in-IP headers around one TCP segment, 1,000 times.
    let inner = {
        let b = etherparse::PacketBuilder::ipv4(CLIENT, SERVER, 64).tcp(40005, 80, 1, 1000);
        let mut v = Vec::new();
        b.write(&mut v, b"GET / HTTP/1.1\r\n\r\n").unwrap();
        v
    };
    let mut packet = inner;
    for _ in 0..100 {
        let mut h = etherparse::Ipv4Header::new(
            packet.len() as u16,
            64,
            etherparse::IpNumber::IPV4,
            [10, 9, 0, 1],
            [10, 9, 0, 2],
        )
        .unwrap();
        h.header_checksum = h.calc_header_checksum();
        let mut v = h.to_bytes().to_vec();
        v.extend_from_slice(&packet);
        packet = v;
    }
    let mut frame = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    frame.extend_from_slice(&packet);
    for _ in 0..1000 {
        w.frame(&frame);
    }
    w.finish();
    let run = run_measured(&[&path], Duration::from_secs(60));
    assert_bounded("100 nested tunnels", &run);
    let cap = &run.quality["capture"];
    assert_eq!(
        cap["decode_errors"], 1000,
        "too deep is a decode error: {cap}"
    );
    assert_eq!(cap["tcp_segments"], 0, "{cap}");
}

/// One OTLP JSON line (the Collector's file exporter) of `spans` (service, span id,
/// parent id) of one trace.
fn otlp_line(trace: &str, spans: &[(String, String, Option<String>)]) -> String {
    let mut by_service: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for (service, id, parent) in spans {
        let parent = parent
            .as_ref()
            .map(|p| format!(r#","parentSpanId":"{p}""#))
            .unwrap_or_default();
        by_service.entry(service).or_default().push(format!(
            r#"{{"traceId":"{trace}","spanId":"{id}"{parent},"name":"GET /x","kind":2,"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000001000000","attributes":[{{"key":"http.request.method","value":{{"stringValue":"GET"}}}}]}}"#
        ));
    }
    let resources: Vec<String> = by_service
        .into_iter()
        .map(|(service, spans)| {
            format!(
                r#"{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{service}"}}}}]}},"scopeSpans":[{{"spans":[{}]}}]}}"#,
                spans.join(",")
            )
        })
        .collect();
    format!(r#"{{"resourceSpans":[{}]}}"#, resources.join(",")) + "\n"
}

#[test]
fn a_gigabyte_otlp_string_and_parent_cycles_stay_bounded() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    // One line whose service name is a 1 GiB string, then a valid line.
    let big = dir.path().join("big_value.otlp.jsonl");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
        f.write_all(
            br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":""#,
        )
        .unwrap();
        let block = vec![b'a'; 1 << 20];
        for _ in 0..1024 {
            f.write_all(&block).unwrap();
        }
        f.write_all(br#""}}]},"scopeSpans":[]}]}"#).unwrap();
        f.write_all(b"\n").unwrap();
        let spans = [("front".to_owned(), "00000000000000a1".to_owned(), None)];
        f.write_all(otlp_line("0000000000000000000000000000abcd", &spans).as_bytes())
            .unwrap();
        f.flush().unwrap();
    }
    let run = run_measured(&[&big], Duration::from_secs(240));
    assert_bounded("a 1 GiB string in an OTLP line", &run);
    assert!(
        run.stderr.contains("longer than"),
        "the bound is reported: {}",
        run.stderr
    );
    // Two spans of one trace, each the other's parent, beside a sound trace.
    let cycle = dir.path().join("cycle.otlp.jsonl");
    let spans = [
        (
            "a".to_owned(),
            "00000000000000c1".to_owned(),
            Some("00000000000000c2".to_owned()),
        ),
        (
            "b".to_owned(),
            "00000000000000c2".to_owned(),
            Some("00000000000000c1".to_owned()),
        ),
    ];
    std::fs::write(
        &cycle,
        otlp_line("000000000000000000000000000000cc", &spans),
    )
    .unwrap();
    let run = run_measured(&[&cycle], Duration::from_secs(60));
    assert_bounded("a parent cycle", &run);
    assert_eq!(
        run.links["traces"]["coverage"]["cycles_broken"], 1,
        "{}",
        run.links
    );
    assert_eq!(run.links["traces"]["coverage"]["spans_read"], 2);
}

/// One trace of 1,000,000 spans: a call chain (SERVER -> CLIENT -> SERVER ...) through
/// eight services, each span nested in its parent's time, written as the Collector's file
/// exporter batches them (512 spans a line). The trace is cut at its bound and the cut is
/// counted; the deep nesting keeps thousands of serving windows open at once.
#[test]
fn a_million_span_trace_stays_bounded() {
    use std::io::Write as _;
    const SPANS: u64 = 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("million.otlp.jsonl");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let trace = "0000000000000000000000000000abcd";
        let start = 1_700_000_000_000_000_000u64;
        let end = start + 10_000_000_000_000;
        let mut batch: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for i in 1..=SPANS {
            let service = format!("s{}", (i / 2) % 8);
            let kind = if i % 2 == 1 { 2 } else { 3 };
            let parent = if i > 1 {
                format!(r#","parentSpanId":"{:016x}""#, i - 1)
            } else {
                String::new()
            };
            batch.entry(service).or_default().push(format!(
                r#"{{"traceId":"{trace}","spanId":"{i:016x}"{parent},"name":"GET /x","kind":{kind},"startTimeUnixNano":"{}","endTimeUnixNano":"{}"}}"#,
                start + i,
                end - i
            ));
            if i % 512 == 0 || i == SPANS {
                let resources: Vec<String> = std::mem::take(&mut batch)
                    .into_iter()
                    .map(|(service, spans)| {
                        format!(
                            r#"{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{service}"}}}}]}},"scopeSpans":[{{"spans":[{}]}}]}}"#,
                            spans.join(",")
                        )
                    })
                    .collect();
                writeln!(f, r#"{{"resourceSpans":[{}]}}"#, resources.join(",")).unwrap();
            }
        }
        f.flush().unwrap();
    }
    let run = run_measured(&[&path], Duration::from_secs(240));
    assert_bounded("one trace of 1,000,000 spans", &run);
    let cov = &run.links["traces"]["coverage"];
    assert_eq!(cov["spans_read"], SPANS, "{cov}");
    assert_eq!(cov["traces"], 1, "{cov}");
    let kept = cov["spans_kept"].as_u64().unwrap();
    assert!(
        kept > 0 && kept < SPANS,
        "the trace is cut at its bound: {cov}"
    );
    assert_eq!(
        cov["spans_over_trace_cap"].as_u64().unwrap(),
        SPANS - kept,
        "every span over the bound is counted: {cov}"
    );
    assert!(cov["calls"].as_u64().unwrap() > 0, "{cov}");
}

/// The corruption that made the old reassembly spin: the demo (a real multi-service
/// capture) through `editcap -E 0.02` with 40 seeds, each under the watchdog.
#[test]
fn demo_capture_with_forty_editcap_seeds_never_hangs() {
    let demo = repo("captures/prod.pcap");
    let jobs = (1..=40)
        .map(|seed| (demo.clone(), Corruption::Editcap { rate: "0.02", seed }))
        .collect();
    assert_eq!(corrupt_and_run(jobs), 40);
}
