#!/usr/bin/env bash
# bench/analyze_spans.sh [SPANS...]
#
# The whole `linkrank analyze` (reading, assembly, link measures, chains, every report) on
# OTLP/JSON-lines trace files of SPANS spans each (default: 1,000,000 and 5,000,000),
# built with bench/make_spans.py under $BENCH_DIR (default /tmp; never in the repo) and
# deleted after their run unless KEEP=1 (a 5,000,000-span file is about 3.4 GB).
# For each it prints spans/s and MB/s (wall clock of the whole process), CPU seconds and
# spans per CPU second, peak RSS (/usr/bin/time -v) and the per-stage wall times of
# `--timings`. The issue's goals: 500,000 spans/s (stretch 1,000,000) on two cores, peak
# RSS under 200 MB at any size. analyze uses every core (--threads, default: all
# cores); BIN overrides the binary (default: the release build of this checkout).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
DIR=${BENCH_DIR:-/tmp}
BIN=${BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/linkrank}
[ $# -gt 0 ] || set -- 1000000 5000000
[ -x /usr/bin/time ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
if [ -z "${NO_BUILD:-}" ]; then
    (cd "$REPO" && cargo build --release --quiet --bin linkrank)
fi

for SPANS in "$@"; do
    FILE=$DIR/linkrank-bench-spans-$SPANS.jsonl
    OUT=$(mktemp -d)
    TIMES=$(mktemp)
    [ -f "$FILE" ] || python3 "$HERE/make_spans.py" "$FILE" "$SPANS" >/dev/null
    BYTES=$(stat -c %s "$FILE")
    echo "=== analyze $FILE ($SPANS spans, $((BYTES / 1000000)) MB)"
    /usr/bin/time -v "$BIN" analyze "$FILE" --out "$OUT" --quiet --timings \
        >/dev/null 2>"$TIMES"
    # The stage table --timings writes on stderr, then /usr/bin/time's report.
    sed -n '/^stage /,/^total /p' "$TIMES"
    awk -F': ' -v spans="$SPANS" -v bytes="$BYTES" '
      /User time/ {u = $2} /System time/ {s = $2}
      /Maximum resident set size/ {rss = $2}
      /Elapsed \(wall clock\) time/ {
        n = split($2, p, ":"); wall = 0
        for (i = 1; i <= n; i++) wall = wall * 60 + p[i]
      }
      END {
        printf "wall seconds   %.2f\n", wall
        if (wall > 0) printf "spans/s        %.0f\nMB/s           %.1f\n", spans / wall, bytes / 1e6 / wall
        printf "CPU seconds    %.2f (user %.2f, sys %.2f)\n", u + s, u, s
        if (u + s > 0) printf "spans/CPU-s    %.0f\n", spans / (u + s)
        printf "peak RSS       %.1f MB\n", rss / 1024
      }' "$TIMES"
    grep -o '"spans": *[0-9]*\|"calls": *[0-9]*\|"traces_evicted": *[0-9]*' "$OUT/links.json" \
        | head -3 | tr '\n' ' '
    echo
    rm -rf "$OUT" "$TIMES"
    [ -n "${KEEP:-}" ] || rm -f "$FILE"
done
uptime
