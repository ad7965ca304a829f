#!/usr/bin/env bash
# bench/make_h2_capture.sh [h2c|grpc] [OUT] [MIN_MB]
#
# Builds an HTTP/2 benchmark capture (not committed) from real servers and clients:
#   h2c   (default bench/out/h2c.pcap)  nginx serving JSON documents over h2c with prior
#         knowledge (fixtures/h2/src/nginx_h2.conf), loaded by h2load: 8 connections,
#         up to 16 concurrent streams each, cycling 200 / 404 / 500 / a 3 KB document
#   grpc  (default bench/out/grpc.pcap) the grpcio service of fixtures/h2/src/kinds.py,
#         loaded by 3 grpcio clients (`kinds.py load`: unary, server, client and bidi
#         streaming calls, each client on its own channel)
# in a server network namespace and a client one joined by a veth pair (MTU 1500,
# offloads off: wire-sized segments). Bounded: stops when OUT reaches MIN_MB (default
# 100) or after MAX_SECS (240) seconds; every load generator has a fixed request count
# as well. Prints size, packets and elapsed time. Runs as root; installs what it needs:
#   apt: nginx-light nghttp2-client tcpdump iproute2 ethtool wireshark-common (capinfos)
#   pip: grpcio grpcio-tools
# Drops at the capture point under full load are reported, not fatal (a benchmark
# input, not a fixture).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
KIND=${1:-h2c}
OUT=${2:-$HERE/out/$KIND.pcap}
MIN_MB=${3:-100}
MAX_SECS=${MAX_SECS:-240}
SRC=$REPO/fixtures/h2/src
NSS=lrbh2s
NSC=lrbh2c
ADDR=10.79.0.2
PORT=8082
GPORT=50051

# shellcheck source=SCRIPTDIR/../fixtures/scripts/lib.sh
. "$REPO/fixtures/scripts/lib.sh"   # need_*, python_bin, netns_pair, wait_tcp, cleanup_all, cap_*, wait_size
need_root
need_tools nginx:nginx-light h2load:nghttp2-client tcpdump:tcpdump ip:iproute2 ethtool:ethtool \
           capinfos:wireshark-common python3:python3
PY=$(python_bin)
case $KIND in
    h2c) ;;
    grpc) "$PY" -c 'import grpc, grpc_tools' 2>/dev/null || "$PY" -m pip install -q grpcio grpcio-tools ;;
    *) echo "usage: ${0##*/} [h2c|grpc] [OUT] [MIN_MB]" >&2; exit 2 ;;
esac
# full-load capture settings, as bench/make_capture.sh's
CAP_OPTS=(-B 262144)
CAP_ABORT_ON_DROPS=0

mkdir -p "$(dirname "$OUT")"
OUT=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")
WORK=$(mktemp -d /tmp/linkrank-bench-h2.XXXXXX)
chmod 755 "$WORK"   # nginx workers (nobody) read the docroot
trap cleanup_all EXIT
netns_pair "$NSC" lrbh0 10.79.0.1 "$NSS" lrbh1 "$ADDR"
export PYTHONPATH=$SRC

LOADS=()
if [ "$KIND" = h2c ]; then
    mkdir -p "$WORK/root/orders" "$WORK/root/catalog"
    "$PY" -c 'import json, sys, app
for i in range(1001, 1017):
    json.dump(app.order(i), open("%s/orders/%d" % (sys.argv[1], i), "w"), separators=(",", ":"))
json.dump([app.order(i) for i in range(2000, 2012)], open(sys.argv[1] + "/catalog/page", "w"))' \
        "$WORK/root"
    sed -e "s#__PREFIX__#$WORK#g" -e "s#__ROOT__#$WORK/root#g" -e "s#__INNER__#8090#g" \
        -e "s#__LISTEN__#listen $ADDR:$PORT http2;#" -e "s#__LISTEN_SHORT__#listen $ADDR:$((PORT + 2)) http2;#" \
        -e "s#keepalive_requests 1000;#keepalive_requests 100000;#" \
        "$SRC/nginx_h2.conf" > "$WORK/nginx.conf"
    ip netns exec "$NSS" nginx -p "$WORK" -c "$WORK/nginx.conf" &
    PIDS+=($!)
    wait_tcp "$NSS" "$ADDR" "$PORT" || { cat "$WORK/error.log" >&2; exit 1; }
    cap_start "$NSS" "$OUT" -i lrbh1 "tcp port $PORT"
    U=http://$ADDR:$PORT
    ip netns exec "$NSC" timeout "$MAX_SECS" h2load -n 3000000 -c 8 -m 16 \
        "$U/orders/1001" "$U/orders/1002" "$U/orders/9001" "$U/fail" "$U/catalog/page" \
        "$U/orders/1003" >"$WORK/load.0" 2>&1 &
    LOADS+=($!)
else
    GEN=$WORK/gen
    mkdir -p "$GEN"
    "$PY" -m grpc_tools.protoc -I"$SRC" --python_out="$GEN" --grpc_python_out="$GEN" "$SRC/kinds.proto"
    ip netns exec "$NSS" env PYTHONPATH="$SRC:$GEN" "$PY" "$SRC/kinds.py" server "$ADDR" "$GPORT" &
    PIDS+=($!)
    wait_tcp "$NSS" "$ADDR" "$GPORT" || { echo "grpc server did not start" >&2; exit 1; }
    PORT=$GPORT
    cap_start "$NSS" "$OUT" -i lrbh1 "tcp port $PORT"
    for i in 0 1 2; do
        ip netns exec "$NSC" timeout $((MAX_SECS + 10)) env PYTHONPATH="$SRC:$GEN" \
            "$PY" "$SRC/kinds.py" load "$ADDR" "$GPORT" "$MAX_SECS" 1000000 >"$WORK/load.$i" 2>&1 &
        LOADS+=($!)
    done
fi
PIDS+=("${LOADS[@]}")

start=$(date +%s)
wait_size "$OUT" $((MIN_MB * 1000 * 1000)) "$MAX_SECS" "${LOADS[@]}"
stop_pids "${LOADS[@]}"
cap_stop

echo "kind: $KIND; server $ADDR:$PORT (veth/netns, MTU 1500, offloads off)"
echo "elapsed: $(( $(date +%s) - start )) s"
echo "file: $OUT"
echo "size: $(stat -c %s "$OUT") bytes ($(( $(stat -c %s "$OUT") / 1000000 )) MB)"
echo "packets: $(capinfos -M -c "$OUT" 2>/dev/null | awk -F: '/Number of packets/ {gsub(/ /,"",$2); print $2}')"
