#!/usr/bin/env bash
# bench/traces.sh [FILE] [SPANS]
#
# Speed of the trace readers on an OTLP/JSON-lines file of >= 1,000,000 spans: builds it
# with bench/make_spans.py under /tmp when missing (never in the repo), then runs
# examples/trace_bench.rs (one thread) under /usr/bin/time -v and prints spans/s, MB/s,
# peak RSS and a digest of what was read (the fast and the reference OTLP path give the
# same one).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
SPANS=${2:-1000000}
FILE=${1:-/tmp/linkrank-bench-spans-$SPANS.jsonl}

[ -f "$FILE" ] || python3 "$HERE/make_spans.py" "$FILE" "$SPANS"
[ -x /usr/bin/time ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null

(cd "$REPO" && cargo build --release --quiet --example trace_bench)
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
/usr/bin/time -v "$REPO/target/release/examples/trace_bench" --digest "$FILE" 2>"$OUT"
awk -F': ' '/Maximum resident set size/ {printf "peak RSS       %.1f MB\n", $2/1024}' "$OUT"
echo "--- ceiling: opentelemetry-proto serde alone on the same lines"
"$REPO/target/release/examples/trace_bench" --parse-only "$FILE"
