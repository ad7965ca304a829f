#!/usr/bin/env bash
# bench/traces.sh [FILE] [SPANS]
#
# Speed of the trace readers on an OTLP/JSON-lines file of >= 1,000,000 spans: builds it
# with bench/make_spans.py under /tmp when missing (never in the repo), then runs
# examples/trace_bench.rs (one thread) under /usr/bin/time -v and prints spans/s and
# MB/s (wall clock), CPU seconds and spans per CPU second, peak RSS, the machine load,
# and a digest of what was read (the fast and the reference OTLP path give the same one).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
SPANS=${2:-1000000}
FILE=${1:-/tmp/linkrank-bench-spans-$SPANS.jsonl}
BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/examples/trace_bench

[ -f "$FILE" ] || python3 "$HERE/make_spans.py" "$FILE" "$SPANS"
[ -x /usr/bin/time ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null

(cd "$REPO" && cargo build --release --quiet --example trace_bench)
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
RUN=$(/usr/bin/time -v "$BIN" "$FILE" 2>"$OUT")
echo "$RUN"
# The goal is per core: spans per CPU second (user + sys of the whole process, its start
# and the drop of what it read included), beside the wall-clock figure above.
SPANS=$(echo "$RUN" | awk '/^spans read/ {print $3}')
awk -F': ' -v spans="$SPANS" '
  /User time/ {u = $2} /System time/ {s = $2}
  /Maximum resident set size/ {rss = $2}
  END {
    printf "CPU seconds    %.2f (user %.2f, sys %.2f)\n", u + s, u, s
    if (u + s > 0) printf "spans/CPU-s    %.0f\n", spans / (u + s)
    printf "peak RSS       %.1f MB\n", rss / 1024
  }' "$OUT"
uptime
# Apart: hashing the calls for the digest takes CPU time of its own.
"$BIN" --digest "$FILE" | grep '^digest'
echo "--- ceiling: opentelemetry-proto serde alone on the same lines"
"$BIN" --parse-only "$FILE"
