#!/usr/bin/env bash
# bench/live_speed.sh LINKRANK_BIN [PPS] [SECS]
#
# Live-capture speed: tcpreplay sends captures/prod.pcap (real HTTP traffic, looped) at
# PPS packets/s (default 200000) for about SECS seconds (default 10) into one end of a
# veth pair; `linkrank analyze --interface` reads the other end in its own namespace
# and stops after SECS + 3 s. Prints tcpreplay's figures and libpcap's counters from
# quality.json (received, dropped, dropped by the interface, analysed): the rate holds
# when nothing was dropped. Runs as root; bounded by the duration and a watchdog.
set -euo pipefail
BIN=$1 PPS=${2:-200000} SECS=${3:-10}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
# shellcheck source=SCRIPTDIR/../fixtures/scripts/lib.sh
. "$REPO/fixtures/scripts/lib.sh"
need_root
need_tools tcpreplay:tcpreplay ip:iproute2 ethtool:ethtool python3:python3
WORK=$(mktemp -d /tmp/linkrank-speed.XXXXXX)
trap cleanup_all EXIT
watchdog_start $((SECS + 300))
P=lrspd$$
netns_pair "$P-tx" veth-tx 10.85.0.1 "$P-rx" veth-rx 10.85.0.2
ip netns exec "$P-rx" "$BIN" analyze --interface veth-rx --duration $((SECS + 3)) \
    --out "$WORK/out" >"$WORK/live.out" 2>"$WORK/live.err" &
LIVE=$!
PIDS+=($LIVE)
for _ in $(seq 100); do grep -q "capturing on" "$WORK/live.err" && break; sleep 0.1; done
ip netns exec "$P-tx" timeout $((SECS + 2)) tcpreplay -q -i veth-tx --pps "$PPS" \
    --duration "$SECS" --loop 0 "$REPO/captures/prod.pcap" 2>&1 | grep -E "Actual|Rated|Failed" || true
wait "$LIVE"
python3 - "$WORK/out/quality.json" <<'PY'
import json, sys
q = json.load(open(sys.argv[1]))
for l in q["capture"]["live"]:
    print("%s: received %d, dropped %d, dropped by the interface %d, analysed %d" % (
        l["interface"], l["received"], l["dropped"], l["if_dropped"], l["analysed"]))
PY
