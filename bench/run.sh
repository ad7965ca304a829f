#!/usr/bin/env bash
# bench/run.sh [CAPTURE]
#
# Throughput of `linkrank analyze` beside tshark on the same file, in the same run.
# Builds the capture with bench/make_capture.sh when it is missing (>= 200 MB of real
# nginx/wrk HTTP/1.1 JSON traffic, not committed), then prints for each tool: wall time,
# MB/s, packets/s and peak memory (RSS), and the ratio. linkrank is single-threaded, so
# its figure is one core's. tshark runs `-q -z http,tree` (it parses HTTP like linkrank).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
CAP=${1:-$HERE/out/bench.pcap}

if [ ! -f "$CAP" ]; then
    bash "$HERE/make_capture.sh" "$CAP" 200
fi
command -v tshark >/dev/null || { echo "bench/run.sh needs tshark (apt-get install tshark)" >&2; exit 1; }
[ -x /usr/bin/time ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null

(cd "$REPO" && cargo build --release --quiet)
BIN=$REPO/target/release/linkrank
BYTES=$(stat -c %s "$CAP")
PKTS=$(capinfos -M -c -T "$CAP" | awk -F'\t' 'NR==2 {print $2}')
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

measure() { # name, command...  -> prints "secs rss_kb"
    local name=$1; shift
    /usr/bin/time -f "%e %M" -o "$OUT/$name.time" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"
    cat "$OUT/$name.time"
}

# Warm the page cache so both tools read from memory.
cat "$CAP" >/dev/null
read -r LR_S LR_KB < <(measure linkrank "$BIN" analyze -q "$CAP" --out "$OUT/report")
read -r TS_S TS_KB < <(measure tshark tshark -r "$CAP" -q -z http,tree)

python3 - "$BYTES" "$PKTS" "$LR_S" "$LR_KB" "$TS_S" "$TS_KB" "$CAP" <<'PY'
import sys
b, p, ls, lk, ts, tk, cap = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
ls, ts = max(ls, 0.01), max(ts, 0.01)
print(f"capture  {cap}: {b/1e6:.1f} MB, {p} packets")
print(f"{'tool':<10}{'seconds':>9}{'MB/s':>10}{'packets/s':>12}{'peak RSS MB':>13}")
print(f"{'linkrank':<10}{ls:>9.2f}{b/1e6/ls:>10.1f}{p/ls:>12.0f}{lk/1024:>13.1f}")
print(f"{'tshark':<10}{ts:>9.2f}{b/1e6/ts:>10.1f}{p/ts:>12.0f}{tk/1024:>13.1f}")
print(f"linkrank is {ts/ls:.1f}x tshark")
PY
# Cross-check: the two tools count the same requests.
LR_REQ=$(python3 -c "import json,sys; q=json.load(open('$OUT/report/quality.json')); print(q['capture']['exchanges'])")
TS_REQ=$(awk '/Total HTTP Packets|HTTP Requests by HTTP Host/ {getline; } /^ Total HTTP Packets/ {print}' "$OUT/tshark.out" | head -1)
echo "linkrank exchanges: $LR_REQ"
grep -E "^ (Total HTTP Packets|HTTP Request Packets|HTTP Response Packets)" "$OUT/tshark.out" | sed 's/^/tshark: /' || true
