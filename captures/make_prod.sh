#!/usr/bin/env bash
# Records linkrank's demo capture, captures/prod.pcap: a small shop made of an
# nginx edge proxy and six Python microservices talking HTTP/1.1 + JSON, one of
# them (fraud) over TLS.
#
#   sudo captures/make_prod.sh            # ~1 minute, needs root
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
OUT="$HERE/prod.pcap"
YAML="$HERE/prod.services.yaml"
WATCHDOG=${WATCHDOG:-300}
DURATION=${DURATION:-30}
MAX_REQUESTS=${MAX_REQUESTS:-1200}
MIN_BYTES=$((2 * 1000 * 1000))
MAX_BYTES=$((15 * 1000 * 1000))
P=lrp                  # namespace prefix
BRNS=$P-br             # namespace holding the bridge
SUBNET=10.77.0
PORT=8080              # every Python service (a default HTTP port for tshark)
GWPORT=80              # the gateway
TLSPORT=8443           # fraud (HTTPS)
FRAUD_NAME=fraud.internal  # SNI, certificate SAN and the name in prod.services.yaml

# name  last-octet  (order = namespace creation order)
SERVICES=(client:2 gateway:10 orders:11 inventory:12 payments:13 users:14 notifications:15 fraud:16)
ip_of() { local s; for s in "${SERVICES[@]}"; do [ "${s%%:*}" = "$1" ] && echo "$SUBNET.${s#*:}"; done; }

# shellcheck source=SCRIPTDIR/../fixtures/scripts/lib.sh
. "$REPO/fixtures/scripts/lib.sh"   # need_*, python_bin, bridge_lan, wait_tcp, stop_pids, watchdog_start, cleanup_all, cap_*, tls_cert, finish_file
need_root
need_tools tshark:tshark tcpdump:tcpdump capinfos:wireshark-common nginx:nginx-light \
           ip:iproute2 ethtool:ethtool python3:python3 openssl:openssl ping:iputils-ping
PY=$(python_bin)

WORK=$(mktemp -d /tmp/linkrank-prod.XXXXXX)
chmod 755 "$WORK"  # nginx workers run as nobody
trap cleanup_all EXIT
watchdog_start "$WATCHDOG"

# --- topology: bridge-side port p-<name> (<= 15 chars), service side eth0 ----------
LAN=()
for s in "${SERVICES[@]}"; do LAN+=("$s:$SUBNET.${s#*:}"); done
bridge_lan --no-static-neigh "$BRNS" "$P" 4d "${LAN[@]}"

# --- TLS material (scratch dir only) ------------------------------------------
# a self-signed CA and a server certificate for fraud.internal, both P-256
TLS=$WORK/tls
tls_cert "$TLS" "linkrank demo" "$FRAUD_NAME"

# --- services ----------------------------------------------------------------
PEERS=(INVENTORY="$(ip_of inventory):$PORT" PAYMENTS="$(ip_of payments):$PORT"
       USERS="$(ip_of users):$PORT" NOTIFICATIONS="$(ip_of notifications):$PORT"
       FRAUD="$(ip_of fraud):$TLSPORT" FRAUD_NAME="$FRAUD_NAME" FRAUD_CA="$TLS/ca.pem")
SVC_PIDS=()
ip netns exec "$P-fraud" env FRAUD_CERT="$TLS/srv.pem" FRAUD_KEY="$TLS/srv.key" \
    "$PY" "$DEMO/services.py" fraud "$(ip_of fraud)" "$TLSPORT" &
SVC_PIDS+=($!); PIDS+=($!)
for name in inventory users payments notifications orders; do
    ip netns exec "$P-$name" env "${PEERS[@]}" "$PY" "$DEMO/services.py" "$name" "$(ip_of "$name")" "$PORT" &
    SVC_PIDS+=($!); PIDS+=($!)
done
sed -e "s#__PREFIX__#$WORK#g" -e "s#__LISTEN__#listen $(ip_of gateway):$GWPORT;#" \
    -e "s#__ORDERS__#$(ip_of orders):$PORT#" -e "s#__USERS__#$(ip_of users):$PORT#" \
    -e "s#__INVENTORY__#$(ip_of inventory):$PORT#" "$DEMO/nginx.conf" > "$WORK/nginx.conf"
ip netns exec "$P-gateway" nginx -p "$WORK" -c "$WORK/nginx.conf" &
NGX_PID=$!
PIDS+=("$NGX_PID")
# readiness: each listener accepts a TCP connection (checked inside its own
# namespace, so the probes do not appear in the capture on br0)
for name in gateway inventory users payments notifications orders fraud; do
    port=$PORT; [ "$name" = gateway ] && port=$GWPORT; [ "$name" = fraud ] && port=$TLSPORT
    wait_tcp "$P-$name" "$(ip_of "$name")" "$port" \
        || { echo "$name did not start" >&2; cat "$WORK/error.log" >&2 2>/dev/null; exit 1; }
done

# --- capture -------------------------------------------------------------------
# cap_start: tcpdump --immediate-mode -B 65536 -U, so a SIGINT loses nothing and
# bursts do not overflow the ring (see lib.sh's CAP_OPTS)
cap_start "$BRNS" "$WORK/prod.pcap" -i br0
sleep 0.3   # 0.5 s in all before the load starts

echo "== load: ${DURATION}s or $MAX_REQUESTS requests"
ip netns exec "$P-client" timeout $((DURATION + 60)) "$PY" "$DEMO/loadgen.py" \
    "$(ip_of gateway)" "$GWPORT" "$DURATION" "$MAX_REQUESTS"
sleep 1
# orderly shutdown while still capturing: nginx closes its idle upstream
# connections (FIN), then the services exit and the kernel closes theirs
kill -QUIT "$NGX_PID" 2>/dev/null || true
for _ in $(seq 50); do kill -0 "$NGX_PID" 2>/dev/null || break; sleep 0.1; done
stop_pids "${SVC_PIDS[@]}"
sleep 0.5   # with cap_stop's 1 s: 1.5 s for the last FINs to reach the capture
cap_stop
size=$(stat -c %s "$WORK/prod.pcap")
if [ "$size" -lt "$MIN_BYTES" ] || [ "$size" -gt "$MAX_BYTES" ]; then
    echo "capture is $size bytes, outside 2..15 MB; adjust DURATION/MAX_REQUESTS" >&2; exit 1
fi
# the TLS link: one ClientHello with SNI fraud.internal per connection to fraud
T() { tshark -r "$WORK/prod.pcap" -d "tcp.port==$TLSPORT,tls" "$@" 2>/dev/null; }
tls_syn=$(T -Y "tcp.flags.syn==1 && tcp.flags.ack==0 && tcp.dstport==$TLSPORT" | wc -l)
tls_ch=$(T -Y "tls.handshake.type==1 && tls.handshake.extensions_server_name==\"$FRAUD_NAME\"" | wc -l)
echo "TLS link: $tls_syn connections, $tls_ch ClientHellos with SNI $FRAUD_NAME"
if [ "$tls_syn" -eq 0 ] || [ "$tls_syn" != "$tls_ch" ]; then
    echo "TLS link: connections and ClientHellos differ; aborting" >&2; exit 1
fi
mv "$WORK/prod.pcap" "$OUT"
finish_file "$OUT"

{
    echo "# IP -> service name for captures/prod.pcap (written by make_prod.sh)"
    echo "# fraud is named by its hostname only (matched to TLS SNI, HTTP Host or DNS)"
    echo "services:"
    for s in "${SERVICES[@]}"; do
        if [ "${s%%:*}" = fraud ]; then echo "  fraud: [\"$FRAUD_NAME\"]"
        else echo "  ${s%%:*}: [\"$SUBNET.${s#*:}\"]"; fi
    done
} > "$YAML"
finish_file "$YAML"

echo "== figures"
"$HERE/figures.sh" "$OUT"
