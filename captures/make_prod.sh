#!/usr/bin/env bash
# Records linkrank's demo capture, captures/prod.pcap: a small shop made of an
# nginx edge proxy and six Python microservices talking HTTP/1.1 + JSON, one of
# them (fraud) over TLS.
#
#   sudo captures/make_prod.sh            # ~1 minute, needs root
#
# The same script builds the benchmark's larger captures (bench/make_realistic.sh):
# SHOPS=N runs N copies of the shop on the same LAN (shop k's services are named
# orders<k>, fraud<k>.internal, ... and use last octets +20*(k-1)), LOAD_SCALE=X
# multiplies the load generator's request rates, and OUT, YAML, MIN_BYTES, MAX_BYTES
# and FIGURES=0 redirect and relax the checks. The defaults record the demo.
#
# Every service runs in its own network namespace with its own address on
# 10.77.0.0/24; each namespace has one veth whose peer is a port of the bridge
# br0 in a separate namespace (lrp-br), built by fixtures/scripts/lib.sh's bridge_lan.
# tcpdump on br0 sees every frame between any two services exactly once (the bridge
# passes forwarded frames up to its own device while it is promiscuous). MTU 1500,
# offloads off: the capture shows wire-size segments. IPv6 is disabled and there are
# no static neighbour entries, so ARP and TCP appear, as on a real LAN.
# Nothing touches the host's network. Bounded: the load generator stops after
# DURATION seconds or MAX_REQUESTS requests, every wait loop has a count limit,
# and a watchdog ends the run after WATCHDOG seconds. Re-running replaces
# prod.pcap and prod.services.yaml (timestamps, ports and ids change).
# The fraud service's CA and server certificate (SAN fraud.internal) are made
# with openssl in the scratch dir at run time and deleted with it: no key is
# ever written into the repository.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
DEMO="$HERE/demo"
OUT=${OUT:-$HERE/prod.pcap}
YAML=${YAML:-$HERE/prod.services.yaml}
WATCHDOG=${WATCHDOG:-300}
DURATION=${DURATION:-30}
MAX_REQUESTS=${MAX_REQUESTS:-1200}
MIN_BYTES=${MIN_BYTES:-$((2 * 1000 * 1000))}
MAX_BYTES=${MAX_BYTES:-$((15 * 1000 * 1000))}
SHOPS=${SHOPS:-1}
LOAD_SCALE=${LOAD_SCALE:-1}
FIGURES=${FIGURES:-1}
P=lrp                  # namespace prefix
BRNS=$P-br             # namespace holding the bridge
SUBNET=10.77.0
PORT=8080              # every Python service (a default HTTP port for tshark)
GWPORT=80              # the gateway
TLSPORT=8443           # fraud (HTTPS)

# name  last-octet  (order = namespace creation order)
SERVICES=(client:2 gateway:10 orders:11 inventory:12 payments:13 users:14 notifications:15 fraud:16)
[ "$SHOPS" -ge 1 ] && [ "$SHOPS" -le 12 ] || { echo "SHOPS must be 1..12" >&2; exit 1; }
# Shop k (1-based): its services' suffix ("" for the first), namespace host names
# (bridge ports p-<host> stay within 15 characters) and addresses.
sfx() { if [ "$1" -ne 1 ]; then echo "$1"; fi; }
host_of() { if [ "$2" -eq 1 ]; then echo "$1"; else echo "${1:0:10}$2"; fi; }
ip_of() {
    local s k=${2:-1}
    for s in "${SERVICES[@]}"; do
        if [ "${s%%:*}" = "$1" ]; then echo "$SUBNET.$(( ${s#*:} + 20 * (k - 1) ))"; fi
    done
}
fraud_name() { echo "fraud$(sfx "$1").internal"; }  # SNI, certificate SAN, name in the YAML
SHOP_IDS=$(seq "$SHOPS")

# shellcheck source=SCRIPTDIR/../fixtures/scripts/lib.sh
. "$REPO/fixtures/scripts/lib.sh"   # need_*, python_bin, bridge_lan, wait_tcp, stop_pids, watchdog_start, cleanup_all, cap_*, tls_cert, finish_file
need_root
need_tools tshark:tshark tcpdump:tcpdump capinfos:wireshark-common nginx:nginx-light \
           ip:iproute2 ethtool:ethtool python3:python3 openssl:openssl ping:iputils-ping
PY=$(python_bin)
if [ "$FIGURES" = 0 ]; then
    # a benchmark input at full load (see bench/make_capture.sh): buffered writes into a
    # large ring; drops are reported, not fatal
    CAP_OPTS=(-B 262144)
    CAP_ABORT_ON_DROPS=0
fi

WORK=$(mktemp -d /tmp/linkrank-prod.XXXXXX)
chmod 755 "$WORK"  # nginx workers run as nobody
trap cleanup_all EXIT
watchdog_start "$WATCHDOG"

# --- topology: bridge-side port p-<name> (<= 15 chars), service side eth0 ----------
LAN=()
for k in $SHOP_IDS; do
    for s in "${SERVICES[@]}"; do
        n=${s%%:*}; LAN+=("$(host_of "$n" "$k"):$(( ${s#*:} + 20 * (k - 1) )):$(ip_of "$n" "$k")")
    done
done
bridge_lan --no-static-neigh "$BRNS" "$P" 4d "${LAN[@]}"

# --- TLS material (scratch dir only) ------------------------------------------
# a self-signed CA and a server certificate for every shop's fraud name, both P-256
TLS=$WORK/tls
FRAUD_NAMES=()
for k in $SHOP_IDS; do FRAUD_NAMES+=("$(fraud_name "$k")"); done
tls_cert "$TLS" "linkrank demo" "${FRAUD_NAMES[@]}"

# --- services ----------------------------------------------------------------
SVC_PIDS=()
NGX_PIDS=()
for k in $SHOP_IDS; do
    ns() { echo "$P-$(host_of "$1" "$k")"; }
    PEERS=(INVENTORY="$(ip_of inventory "$k"):$PORT" PAYMENTS="$(ip_of payments "$k"):$PORT"
           USERS="$(ip_of users "$k"):$PORT" NOTIFICATIONS="$(ip_of notifications "$k"):$PORT"
           FRAUD="$(ip_of fraud "$k"):$TLSPORT" FRAUD_NAME="$(fraud_name "$k")" FRAUD_CA="$TLS/ca.pem")
    ip netns exec "$(ns fraud)" env FRAUD_CERT="$TLS/srv.pem" FRAUD_KEY="$TLS/srv.key" \
        "$PY" "$DEMO/services.py" fraud "$(ip_of fraud "$k")" "$TLSPORT" &
    SVC_PIDS+=($!); PIDS+=($!)
    for name in inventory users payments notifications orders; do
        ip netns exec "$(ns "$name")" env "${PEERS[@]}" "$PY" "$DEMO/services.py" "$name" "$(ip_of "$name" "$k")" "$PORT" &
        SVC_PIDS+=($!); PIDS+=($!)
    done
    # nginx keeps its pid, logs and temporary files under its prefix: one per shop
    NGX=$WORK; [ "$k" -eq 1 ] || { NGX=$WORK/shop$k; mkdir -p "$NGX"; }
    sed -e "s#__PREFIX__#$NGX#g" -e "s#__LISTEN__#listen $(ip_of gateway "$k"):$GWPORT;#" \
        -e "s#__ORDERS__#$(ip_of orders "$k"):$PORT#" -e "s#__USERS__#$(ip_of users "$k"):$PORT#" \
        -e "s#__INVENTORY__#$(ip_of inventory "$k"):$PORT#" "$DEMO/nginx.conf" > "$NGX/nginx.conf"
    ip netns exec "$(ns gateway)" nginx -p "$NGX" -c "$NGX/nginx.conf" &
    NGX_PIDS+=($!); PIDS+=($!)
    # readiness: each listener accepts a TCP connection (checked inside its own
    # namespace, so the probes do not appear in the capture on br0)
    for name in gateway inventory users payments notifications orders fraud; do
        port=$PORT; [ "$name" = gateway ] && port=$GWPORT; [ "$name" = fraud ] && port=$TLSPORT
        wait_tcp "$(ns "$name")" "$(ip_of "$name" "$k")" "$port" \
            || { echo "$name (shop $k) did not start" >&2; cat "$NGX/error.log" >&2 2>/dev/null; exit 1; }
    done
done

# --- capture -------------------------------------------------------------------
# cap_start: tcpdump --immediate-mode -B 65536 -U, so a SIGINT loses nothing and
# bursts do not overflow the ring (see lib.sh's CAP_OPTS)
cap_start "$BRNS" "$WORK/prod.pcap" -i br0
sleep 0.3   # 0.5 s in all before the load starts

echo "== load: ${DURATION}s or $MAX_REQUESTS requests per shop ($SHOPS shops, rates x$LOAD_SCALE)"
LOAD_PIDS=()
for k in $SHOP_IDS; do
    ip netns exec "$P-$(host_of client "$k")" timeout $((DURATION + 60)) "$PY" "$DEMO/loadgen.py" \
        "$(ip_of gateway "$k")" "$GWPORT" "$DURATION" "$MAX_REQUESTS" "$LOAD_SCALE" &
    LOAD_PIDS+=($!)
done
for pid in "${LOAD_PIDS[@]}"; do wait "$pid"; done
sleep 1
# orderly shutdown while still capturing: nginx closes its idle upstream
# connections (FIN), then the services exit and the kernel closes theirs
kill -QUIT "${NGX_PIDS[@]}" 2>/dev/null || true
for pid in "${NGX_PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
done
stop_pids "${SVC_PIDS[@]}"
sleep 0.5   # with cap_stop's 1 s: 1.5 s for the last FINs to reach the capture
cap_stop
size=$(stat -c %s "$WORK/prod.pcap")
if [ "$size" -lt "$MIN_BYTES" ] || [ "$size" -gt "$MAX_BYTES" ]; then
    echo "capture is $size bytes, outside $MIN_BYTES..$MAX_BYTES; adjust DURATION/MAX_REQUESTS" >&2; exit 1
fi
if [ "$FIGURES" = 1 ]; then
    # the TLS links: one ClientHello with SNI fraud<k>.internal per connection to a fraud
    T() { tshark -r "$WORK/prod.pcap" -d "tcp.port==$TLSPORT,tls" "$@" 2>/dev/null; }
    tls_syn=$(T -Y "tcp.flags.syn==1 && tcp.flags.ack==0 && tcp.dstport==$TLSPORT" | wc -l)
    tls_ch=$(T -Y "tls.handshake.type==1 && tls.handshake.extensions_server_name matches \"^fraud[0-9]*[.]internal\$\"" | wc -l)
    echo "TLS link: $tls_syn connections, $tls_ch ClientHellos with SNI ${FRAUD_NAMES[*]}"
    if [ "$tls_syn" -eq 0 ] || [ "$tls_syn" != "$tls_ch" ]; then
        echo "TLS link: connections and ClientHellos differ; aborting" >&2; exit 1
    fi
fi
mv "$WORK/prod.pcap" "$OUT"
finish_file "$OUT"

{
    echo "# IP -> service name for captures/prod.pcap (written by make_prod.sh)"
    echo "# fraud is named by its hostname only (matched to TLS SNI, HTTP Host or DNS)"
    echo "services:"
    for k in $SHOP_IDS; do
        for s in "${SERVICES[@]}"; do
            n=${s%%:*}
            if [ "$n" = fraud ]; then echo "  fraud$(sfx "$k"): [\"$(fraud_name "$k")\"]"
            else echo "  $n$(sfx "$k"): [\"$(ip_of "$n" "$k")\"]"; fi
        done
    done
} > "$YAML"
finish_file "$YAML"

if [ "$FIGURES" = 1 ]; then
    echo "== figures"
    "$HERE/figures.sh" "$OUT"
fi
