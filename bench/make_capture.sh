#!/usr/bin/env bash
# bench/make_capture.sh [OUT] [MIN_MB]
#
# Builds a benchmark capture (default bench/out/bench.pcap, >= 200 MB, not
# committed) of real HTTP/1.1 JSON traffic: nginx serving JSON documents of a
# few sizes (fixtures/scripts/gen_docroot.py) in a server network namespace,
# and two wrk load generators in a client namespace, one keep-alive and one
# sending "Connection: close" (a new connection per request), joined by a veth
# pair with MTU 1500 and offloads off so segments are wire-sized. If network
# namespaces are unavailable it falls back to the host loopback.
# Bounded: stops when OUT reaches MIN_MB or after MAX_SECS (120) seconds.
# Runs as root; installs wrk/nginx/tcpdump with apt-get when missing.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
OUT=${1:-$HERE/out/bench.pcap}
MIN_MB=${2:-200}
MAX_SECS=${MAX_SECS:-120}
PORT=8080
NSS=lrbns
NSC=lrbnc

# shellcheck source=SCRIPTDIR/../fixtures/scripts/lib.sh
. "$REPO/fixtures/scripts/lib.sh"   # need_*, netns_*, wait_tcp, cleanup_all, cap_*, wait_size
need_root
need_tools wrk:wrk nginx:nginx-light tcpdump:tcpdump ip:iproute2 ethtool:ethtool \
           capinfos:wireshark-common python3:python3
# tcpdump for a capture at full load (lib.sh's default is made for short fixtures):
# without --immediate-mode libpcap packs packets into the ring's blocks instead of one
# snaplen-sized slot each, so the 256 MiB buffer (-B, KiB) keeps up; no -U, writes are
# buffered. A block not yet handed over when the capture stops can be lost, and so can
# packets under full load: for a benchmark input that does not matter, so drops are
# reported, not fatal.
CAP_OPTS=(-B 262144)
CAP_ABORT_ON_DROPS=0

mkdir -p "$(dirname "$OUT")"
OUT=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")
WORK=$(mktemp -d /tmp/linkrank-bench.XXXXXX)
chmod 755 "$WORK"   # nginx workers (nobody) read the docroot
trap cleanup_all EXIT

python3 "$REPO/fixtures/scripts/gen_docroot.py" "$WORK/root"

# Network: veth between two namespaces, else loopback.
if netns_pair "$NSC" lrb0 10.78.0.1 "$NSS" lrb1 10.78.0.2; then
    SNS=$NSS; CNS=$NSC; SRV=(ip netns exec "$NSS"); CLI=(ip netns exec "$NSC")
    IFACE=lrb0; ADDR=10.78.0.2; MODE="veth/netns, MTU 1500, offloads off"
else
    echo "network namespaces unavailable: using loopback" >&2
    netns_del "$NSS" "$NSC"
    SNS=; CNS=; SRV=(); CLI=(); IFACE=lo; ADDR=127.0.0.1; PORT=18089; MODE="loopback"
fi

sed -e "s#__PREFIX__#$WORK#g" -e "s#__ROOT__#$WORK/root#g" \
    -e "s#__LISTEN__#listen $ADDR:$PORT;#" "$REPO/fixtures/scripts/nginx.conf" > "$WORK/nginx.conf"
"${SRV[@]}" nginx -p "$WORK" -c "$WORK/nginx.conf" &
PIDS+=($!)
wait_tcp "$SNS" "$ADDR" "$PORT" || true

rm -f "$OUT"
cap_start "$CNS" "$OUT" -i "$IFACE" "tcp port $PORT"

URL="http://$ADDR:$PORT"
"${CLI[@]}" wrk -t1 -c2 -d"${MAX_SECS}s" -s "$HERE/mix.lua" "$URL" >"$WORK/wrk_ka.txt" 2>&1 &
PIDS+=($!); W1=$!
"${CLI[@]}" wrk -t1 -c16 -d"${MAX_SECS}s" -s "$HERE/mix.lua" -H "Connection: close" "$URL" \
    >"$WORK/wrk_close.txt" 2>&1 &
PIDS+=($!); W2=$!

start=$(date +%s)
wait_size "$OUT" $((MIN_MB * 1024 * 1024)) "$MAX_SECS" "$W1" "$W2"
kill -INT "$W1" "$W2" 2>/dev/null || true
wait "$W1" "$W2" 2>/dev/null || true
cap_stop

echo "mode: $MODE; interface $IFACE; server nginx at $ADDR:$PORT"
echo "elapsed: $(( $(date +%s) - start )) s"
grep -h "requests in" "$WORK"/wrk_*.txt 2>/dev/null || true
echo "file: $OUT"
echo "size: $(stat -c %s "$OUT") bytes ($(( $(stat -c %s "$OUT") / 1048576 )) MiB)"
echo "packets: $(capinfos -M -c "$OUT" 2>/dev/null | awk -F: '/Number of packets/ {gsub(/ /,"",$2); print $2}')"
