#!/usr/bin/env bash
# bench/run.sh [CAPTURE]
#
# Throughput of the whole `linkrank analyze` (reports included) beside tshark on the same
# file, in the same run. Without CAPTURE it uses the realistic capture, built by
# bench/make_realistic.sh when missing (>= 300 MB of the demo shop scaled up: 32 services
# and clients, TLS with a connection per call, keep-alive, per-request connections,
# fan-out, errors; not committed). `bash bench/run.sh bench/out/bench.pcap` measures the
# engine on the single nginx/wrk link of bench/make_capture.sh instead. Prints for each
# tool: wall time, CPU time, MB/s, packets/s, exchanges/s and peak memory (RSS), the
# ratio, and linkrank's time per stage (--timings). linkrank uses every core (--threads);
# tshark runs `-q -z http,tree` (it parses HTTP like linkrank).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
CAP=${1:-$HERE/out/realistic.pcap}

if [ ! -f "$CAP" ]; then
    case $(basename "$CAP") in
        realistic.pcap) bash "$HERE/make_realistic.sh" "$CAP" 300 ;;
        *) bash "$HERE/make_capture.sh" "$CAP" 200 ;;
    esac
fi
command -v tshark >/dev/null || { echo "bench/run.sh needs tshark (apt-get install tshark)" >&2; exit 1; }
[ -x /usr/bin/time ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null

(cd "$REPO" && cargo build --release --quiet)
BIN=$REPO/target/release/linkrank
BYTES=$(stat -c %s "$CAP")
PKTS=$(capinfos -M -c -T "$CAP" | awk -F'\t' 'NR==2 {print $2}')
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

measure() { # name, command...  -> prints "secs cpu_secs rss_kb"
    local name=$1; shift
    /usr/bin/time -f "%e %U %S %M" -o "$OUT/$name.time" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"
    awk '{print $1, $2 + $3, $4}' "$OUT/$name.time"
}

# Warm the page cache so both tools read from memory.
cat "$CAP" >/dev/null
read -r LR_S LR_CPU LR_KB < <(measure linkrank "$BIN" analyze -q --timings "$CAP" --out "$OUT/report")
read -r TS_S TS_CPU TS_KB < <(measure tshark tshark -r "$CAP" -q -z http,tree)
EXCH=$(python3 -c "import json; print(json.load(open('$OUT/report/quality.json'))['capture']['exchanges'])")

python3 - "$BYTES" "$PKTS" "$EXCH" "$LR_S" "$LR_CPU" "$LR_KB" "$TS_S" "$TS_CPU" "$TS_KB" "$CAP" <<'PY'
import sys
b, p, x = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
ls, lc, lk, ts, tc, tk = (float(v) for v in sys.argv[4:10])
cap = sys.argv[10]
ls, ts = max(ls, 0.01), max(ts, 0.01)
print(f"capture  {cap}: {b/1e6:.1f} MB, {p} packets, {x} exchanges")
print(f"{'tool':<10}{'seconds':>9}{'CPU s':>8}{'MB/s':>9}{'packets/s':>12}{'exchanges/s':>13}{'peak RSS MB':>13}")
print(f"{'linkrank':<10}{ls:>9.2f}{lc:>8.2f}{b/1e6/ls:>9.1f}{p/ls:>12.0f}{x/ls:>13.0f}{lk/1024:>13.1f}")
print(f"{'tshark':<10}{ts:>9.2f}{tc:>8.2f}{b/1e6/ts:>9.1f}{p/ts:>12.0f}{x/ts:>13.0f}{tk/1024:>13.1f}")
print(f"linkrank is {ts/ls:.1f}x tshark (wall clock)")
PY
echo "linkrank's stages (wall clock, --timings):"
grep -v '^$' "$OUT/linkrank.err" | sed 's/^/  /' || true
uptime
# Cross-check: the two tools count the same requests.
echo "linkrank exchanges: $EXCH"
grep -E "^ (Total HTTP Packets|HTTP Request Packets|HTTP Response Packets)" "$OUT/tshark.out" | sed 's/^/tshark: /' || true
