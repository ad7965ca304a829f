//! MB/s of TLS record decryption with linkrank's own code (`RecordKeys::open`), per suite:
//! full 16 KiB records (a bulk transfer) and 1 KiB records (small API calls). The
//! records are sealed first with the same keys (`RecordKeys::seal`); only `open` is timed,
//! in CPU time of the thread (MB per CPU second), so that a machine shared with other work
//! gives the figure of the code, not of the load; the wall-clock rate is printed beside.
//!
//! usage: cargo run --release -- [SECONDS_PER_CASE]

// linkrank's files, compiled here as they are (cipher.rs names `super::keylog`).
#[path = "../../../src/ingest/tls/cipher.rs"]
#[allow(dead_code)]
mod cipher;
#[path = "../../../src/ingest/tls/keylog.rs"]
#[allow(dead_code)]
mod keylog;

use std::time::{Duration, Instant};

/// CPU time this thread has used.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to write.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

use cipher::{suite, RecordKeys, Suite};
use keylog::Secret;

fn keys(version: u16, s: Suite) -> RecordKeys {
    if version == 0x0304 {
        let secret = Secret::from_bytes(&vec![
            7u8;
            if s.aead == cipher::Aead::Aes256Gcm {
                48
            } else {
                32
            }
        ]);
        RecordKeys::tls13(s, secret.unwrap()).unwrap()
    } else {
        let master = Secret::from_bytes(&[3u8; 48]).unwrap();
        RecordKeys::tls12(s, &master, &[1; 32], &[2; 32]).0
    }
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1.0);
    let cases = [
        ("TLS 1.3 AES-128-GCM", 0x0304, 0x1301),
        ("TLS 1.3 AES-256-GCM", 0x0304, 0x1302),
        ("TLS 1.3 ChaCha20-Poly1305", 0x0304, 0x1303),
        ("TLS 1.2 AES-128-GCM", 0x0303, 0xc02f),
        ("TLS 1.2 ChaCha20-Poly1305", 0x0303, 0xcca8),
    ];
    println!("suite\trecord bytes\tMB per CPU s\tMB/s wall");
    for (name, version, id) in cases {
        let s = suite(version, id).unwrap();
        for size in [16384usize, 1024] {
            // 64 MiB of records, sealed once, opened in sequence until the time is up.
            let n = (64 << 20) / size;
            let mut tx = keys(version, s);
            let plain = vec![0x5au8; size];
            let records: Vec<Vec<u8>> = (0..n).map(|_| tx.seal(23, &plain)).collect();
            let mut bytes = 0u64;
            let mut spent = Duration::ZERO;
            let mut wall = Duration::ZERO;
            let mut body = Vec::with_capacity(size + 64);
            while spent.as_secs_f64() < secs {
                let mut rx = keys(version, s);
                let (t0, c0) = (Instant::now(), thread_cpu());
                for rec in &records {
                    body.clear();
                    body.extend_from_slice(&rec[5..]);
                    let header: [u8; 5] = rec[..5].try_into().unwrap();
                    rx.open(header, &mut body).expect("opens");
                    bytes += body.len() as u64;
                }
                spent += thread_cpu() - c0;
                wall += t0.elapsed();
            }
            let mb = bytes as f64 / 1e6;
            println!(
                "{name}\t{size}\t{:.0}\t{:.0}",
                mb / spent.as_secs_f64(),
                mb / wall.as_secs_f64()
            );
        }
    }
}
