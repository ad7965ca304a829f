#!/usr/bin/env bash
# Records linkrank's demo capture, captures/prod.pcap: a small shop made of an
# nginx edge proxy and six Python microservices talking HTTP/1.1 + JSON, one of
# them (fraud) over TLS.
#
#   sudo captures/make_prod.sh            # ~1 minute, needs root
#
# Every service runs in its own network namespace with its own address on
# 10.77.0.0/24; each namespace has one veth whose peer is a port of the bridge
# br0 in a separate namespace (lrp-br). tcpdump on br0 sees every frame
# between any two services exactly once (the bridge passes forwarded frames up
# to its own device while it is promiscuous). MTU 1500, offloads off: the
# capture shows wire-size segments. IPv6 is disabled so only ARP and TCP appear.
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

. "$REPO/fixtures/scripts/lib.sh"   # need_*, netns_*, wait_tcp, watchdog_start, cleanup_all, cap_*
need_root
need_tools tshark:tshark tcpdump:tcpdump capinfos:wireshark-common nginx:nginx-light \
           ip:iproute2 ethtool:ethtool python3:python3 openssl:openssl
# the real interpreter, not a version-manager shim, so a pid is the process itself
PY=$(python3 -c 'import sys; print(sys.executable)')

WORK=$(mktemp -d /tmp/linkrank-prod.XXXXXX)
chmod 755 "$WORK"  # nginx workers run as nobody
NSLIST=("$BRNS")
for s in "${SERVICES[@]}"; do NSLIST+=("$P-${s%%:*}"); done
trap 'cleanup_all "${NSLIST[@]}"' EXIT
watchdog_start "$WATCHDOG"   # first in PIDS: the shutdown below leaves PIDS[0] alone

# --- topology ----------------------------------------------------------------
netns_del "${NSLIST[@]}"
ip netns add "$BRNS"
ip netns exec "$BRNS" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip netns exec "$BRNS" ip link set lo up
ip netns exec "$BRNS" ip link add br0 type bridge stp_state 0 forward_delay 0
ip netns exec "$BRNS" ip link set br0 mtu 1500 up
for s in "${SERVICES[@]}"; do
    name=${s%%:*}; octet=${s#*:}; ns=$P-$name
    ip netns add "$ns"
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    # bridge-side port p-<name> (<= 15 chars), service side eth0; fixed MACs
    ip link add eth0 netns "$ns" mtu 1500 address "02:00:0a:4d:00:$(printf %02x "$octet")" \
        type veth peer name "p-$name" netns "$BRNS" mtu 1500
    ip netns exec "$BRNS" ip link set "p-$name" master br0 up
    ip netns exec "$ns" ip link set lo up
    ip netns exec "$ns" ip addr add "$SUBNET.$octet/24" dev eth0
    ip netns exec "$ns" ip link set eth0 up
    offloads_off "$ns" eth0
    offloads_off "$BRNS" "p-$name"
done
offloads_off "$BRNS" br0
# wait (bounded) until the bridge forwards: client can reach the gateway's address
for _ in $(seq 50); do
    ip netns exec "$P-client" ping -c1 -W1 "$(ip_of gateway)" >/dev/null 2>&1 && break
    sleep 0.2
done

# --- TLS material (scratch dir only) ------------------------------------------
# a self-signed CA and a server certificate for fraud.internal, both P-256
TLS=$WORK/tls
mkdir -m 700 "$TLS"
openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -days 2 \
    -subj "/O=linkrank demo/CN=linkrank demo CA" -keyout "$TLS/ca.key" -out "$TLS/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -subj "/O=linkrank demo/CN=$FRAUD_NAME" -keyout "$TLS/fraud.key" -out "$TLS/fraud.csr" 2>/dev/null
printf '%s\n' "subjectAltName=DNS:$FRAUD_NAME" "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" \
    "authorityKeyIdentifier=keyid" "subjectKeyIdentifier=hash" > "$TLS/fraud.ext"
openssl x509 -req -in "$TLS/fraud.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" -CAcreateserial \
    -days 2 -extfile "$TLS/fraud.ext" -out "$TLS/fraud.pem" 2>/dev/null
openssl verify -CAfile "$TLS/ca.pem" "$TLS/fraud.pem" >/dev/null

# --- services ----------------------------------------------------------------
PEERS=(INVENTORY="$(ip_of inventory):$PORT" PAYMENTS="$(ip_of payments):$PORT"
       USERS="$(ip_of users):$PORT" NOTIFICATIONS="$(ip_of notifications):$PORT"
       FRAUD="$(ip_of fraud):$TLSPORT" FRAUD_NAME="$FRAUD_NAME" FRAUD_CA="$TLS/ca.pem")
ip netns exec "$P-fraud" env FRAUD_CERT="$TLS/fraud.pem" FRAUD_KEY="$TLS/fraud.key" \
    "$PY" "$DEMO/services.py" fraud "$(ip_of fraud)" "$TLSPORT" &
PIDS+=($!)
for name in inventory users payments notifications orders; do
    ip netns exec "$P-$name" env "${PEERS[@]}" "$PY" "$DEMO/services.py" "$name" "$(ip_of "$name")" "$PORT" &
    PIDS+=($!)
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
# bursts do not overflow the ring (see lib.sh)
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
for p in "${PIDS[@]}"; do
    [ "$p" = "$CAP_PID" ] || [ "$p" = "$NGX_PID" ] || [ "$p" = "${PIDS[0]}" ] || kill "$p" 2>/dev/null || true
done
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
chmod 644 "$OUT"
chown --reference="$HERE" "$OUT"  # tcpdump writes as its own user

{
    echo "# IP -> service name for captures/prod.pcap (written by make_prod.sh)"
    echo "# fraud is named by its hostname only (matched to TLS SNI, HTTP Host or DNS)"
    echo "services:"
    for s in "${SERVICES[@]}"; do
        if [ "${s%%:*}" = fraud ]; then echo "  fraud: [\"$FRAUD_NAME\"]"
        else echo "  ${s%%:*}: [\"$SUBNET.${s#*:}\"]"; fi
    done
} > "$YAML"
chown --reference="$HERE" "$YAML"

echo "== figures"
"$HERE/figures.sh" "$OUT"
