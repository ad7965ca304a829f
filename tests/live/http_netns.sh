#!/usr/bin/env bash
# Live capture against a file capture of the same traffic (tests/it/live.rs runs it):
# a real HTTP server (python3 -m http.server) and a real client (curl) in two network
# namespaces joined by a veth pair. In the client's namespace tcpdump writes a pcap
# while `linkrank analyze --interface` analyses the same interface live and writes its
# own pcapng (--write); then SIGTERM ends both. Two more live runs end by themselves:
# one after --packets, one after --duration. Last, `linkrank watch` in windows of 2 s
# sees three bursts of requests.
#
#   tests/live/http_netns.sh LINKRANK_BIN OUT_DIR     # as root, ~10 s
#
# Writes into OUT_DIR: tcpdump.pcap, live/ (linkrank's reports), written.pcapng,
# sent.tsv (curl's status code per request, in order), packets/ and duration/ (the two
# self-ending runs), watch/ (windows/NNNNNN/ and links.json) with sent3.tsv, and stderr. Bounded: every wait is counted, a watchdog ends
# the script, the EXIT trap stops what it started and deletes the namespaces.
set -euo pipefail

BIN=$1 OUT=$2
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../fixtures/scripts/lib.sh
. "$HERE/../../fixtures/scripts/lib.sh"
need_root
need_tools tcpdump:tcpdump curl:curl ip:iproute2 ethtool:ethtool python3:python3
PY=$(python_bin)

# Namespace names unique per run: test runs may overlap.
P=lrlive$$
SRV=$P-s CLI=$P-c
WORK=$(mktemp -d /tmp/linkrank-live.XXXXXX)
chmod 755 "$WORK"
trap cleanup_all EXIT
watchdog_start 90
mkdir -p "$OUT"
chmod 777 "$OUT"

netns_pair "$SRV" veth-s 10.84.0.1 "$CLI" veth-c 10.84.0.2

# The served files: JSON documents of a few sizes and one text file.
mkdir -p "$WORK/www/orders"
for i in 1 2 3 4 5 6; do
    "$PY" -c "import json,sys; n=int(sys.argv[1]); print(json.dumps({'id': n, 'items': [{'sku': 'sku-%d' % k, 'qty': k} for k in range(n * 7)]}))" "$i" \
        > "$WORK/www/orders/$i.json"
done
echo "plain text" > "$WORK/www/readme.txt"
ip netns exec "$SRV" "$PY" -m http.server --bind 10.84.0.1 --directory "$WORK/www" 8080 \
    >/dev/null 2>&1 &
PIDS+=($!)
wait_tcp "$CLI" 10.84.0.1 8080 || { echo "server did not start" >&2; exit 1; }

# start_live NAME [COMMAND] ARGS... : linkrank COMMAND (analyze, or watch) --interface
# veth-c in the client namespace, reports into OUT/NAME; waits until it says it is
# capturing. Sets LIVE_PID.
start_live() {
    local name=$1 cmd=analyze _; shift
    if [ "${1:-}" = watch ]; then cmd=watch; shift; fi
    ip netns exec "$CLI" "$BIN" "$cmd" --interface veth-c --out "$OUT/$name" "$@" \
        >"$OUT/$name.stdout" 2>"$OUT/$name.stderr" &
    LIVE_PID=$!
    PIDS+=("$LIVE_PID")
    for _ in $(seq 100); do
        grep -q "capturing on" "$OUT/$name.stderr" && return 0
        kill -0 "$LIVE_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "linkrank did not start capturing:" >&2
    cat "$OUT/$name.stderr" >&2
    exit 1
}

# requests : curl's GETs, one connection each (the server speaks HTTP/1.0), status
# codes appended to sent.tsv
requests() {
    local path
    for path in orders/1.json orders/2.json orders/3.json missing/a orders/4.json \
                readme.txt orders/5.json missing/b orders/6.json orders/1.json; do
        ip netns exec "$CLI" curl -s -o /dev/null --max-time 5 -w "%{http_code}\t/$path\n" \
            "http://10.84.0.1:8080/$path" >> "$OUT/sent.tsv"
    done
}

# 1. tcpdump and linkrank on the same interface, the same traffic, ended by SIGTERM.
: > "$OUT/sent.tsv"
cap_start "$CLI" "$WORK/tcpdump.pcap" --time-stamp-precision=nano -i veth-c
start_live live --reproducible --write "$OUT/written.pcapng"
requests
sleep 1
kill -TERM "$LIVE_PID"
for _ in $(seq 100); do kill -0 "$LIVE_PID" 2>/dev/null || break; sleep 0.1; done
wait "$LIVE_PID" || { echo "linkrank exited with $?" >&2; cat "$OUT/live.stderr" >&2; exit 1; }
cap_stop
cp "$WORK/tcpdump.pcap" "$OUT/tcpdump.pcap"

# 2. --packets: ends after that many packets of ten more requests.
start_live packets --packets 25
: > "$OUT/sent2.tsv"
for _ in $(seq 10); do
    ip netns exec "$CLI" curl -s -o /dev/null --max-time 5 -w "%{http_code}\n" \
        "http://10.84.0.1:8080/orders/2.json" >> "$OUT/sent2.tsv"
done
for _ in $(seq 100); do kill -0 "$LIVE_PID" 2>/dev/null || break; sleep 0.1; done
wait "$LIVE_PID" || { echo "linkrank --packets exited with $?" >&2; exit 1; }

# 3. --duration: ends by itself, with no traffic at all.
start_live duration --duration 1
for _ in $(seq 100); do kill -0 "$LIVE_PID" 2>/dev/null || break; sleep 0.1; done
wait "$LIVE_PID" || { echo "linkrank --duration exited with $?" >&2; exit 1; }

# 4. watch: windows of 2 s for 7 s, three bursts of three requests about 2 s apart.
start_live watch watch --window 2 --duration 7
# Its resident memory (kB), sampled every 0.1 s until it exits (at most 15 s).
: > "$OUT/watch_rss.txt"
( for _ in $(seq 150); do
      awk '/^VmRSS/ {print $2}' "/proc/$LIVE_PID/status" 2>/dev/null >> "$OUT/watch_rss.txt" || break
      sleep 0.1
  done ) &
PIDS+=($!)
: > "$OUT/sent3.tsv"
for _ in 1 2 3; do
    sleep 0.5
    for path in orders/3.json missing/c orders/5.json; do
        ip netns exec "$CLI" curl -s -o /dev/null --max-time 5 -w "%{http_code}\n" \
            "http://10.84.0.1:8080/$path" >> "$OUT/sent3.tsv"
    done
    sleep 1.4
done
for _ in $(seq 150); do kill -0 "$LIVE_PID" 2>/dev/null || break; sleep 0.1; done
wait "$LIVE_PID" || { echo "linkrank watch exited with $?" >&2; cat "$OUT/watch.stderr" >&2; exit 1; }
echo done > "$OUT/ok"
