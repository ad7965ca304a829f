#!/usr/bin/env bash
# TLS record decryption throughput (MB/s of plaintext) of linkrank's record code, per suite
# and record size, with bench/tls_decrypt (a small crate that compiles
# src/ingest/tls/cipher.rs by path; release build, one thread).
#
#   bench/tls_decrypt.sh [SECONDS_PER_CASE]     # default 1
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}/tls-decrypt-bench
# AES-NI and PCLMULQDQ are detected at run time by the aes and polyval crates.
cargo run --quiet --release --manifest-path "$REPO/bench/tls_decrypt/Cargo.toml" -- "${1:-1}"
