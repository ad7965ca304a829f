#!/usr/bin/env bash
# Records the before/after pair that `linkrank diff` is tested on:
# captures/before_after/before.pcap and after.pcap, two short captures of the demo
# shop (captures/make_prod.sh) under the same load that differ in ONE link:
#
#   before  gateway -> inventory as in prod.pcap: nginx's default upstream, HTTP/1.0
#           and a new TCP connection per request
#   after   the same upstream with an nginx keep-alive pool (`keepalive 4`,
#           `proxy_http_version 1.1`, `Connection ""`), like gateway -> users
#
#   sudo captures/before_after/make_before_after.sh    # ~1 minute per capture, root
#
# Not a copy of make_prod.sh: each run builds a scratch tree whose make_prod.sh,
# figures.sh, services.py and loadgen.py are symlinks to the real ones, whose
# fixtures/scripts is a symlink to the real directory (lib.sh, pool.py), and whose
# nginx.conf is the demo's (before) or the demo's with the pool added
# (after); make_prod.sh then writes its prod.pcap into the scratch tree, and this
# script moves it here. Namespaces, services, load generator, checks and cleanup
# are make_prod.sh's. DURATION (default 12 s) keeps each file under 3 MB.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CAPS=$(dirname "$HERE")
REPO=$(dirname "$CAPS")
export DURATION=${DURATION:-12}
export MAX_REQUESTS=${MAX_REQUESTS:-1000}
MAX_OUT=$((3 * 1000 * 1000))

# pooled_conf IN : the demo nginx.conf with the gateway -> inventory upstream pooled
pooled_conf() {
    sed -e '/^ *server __INVENTORY__;/a\        keepalive 4;' \
        -e '/proxy_pass http:\/\/inventory_direct\/catalog;/a\            proxy_http_version 1.1;\n            proxy_set_header Connection "";' \
        "$1"
}

# record VARIANT : runs make_prod.sh in a scratch tree, moves the capture here
record() {
    local variant=$1 tree f
    tree=$(mktemp -d /tmp/linkrank-ba.XXXXXX)
    mkdir -p "$tree/captures/demo" "$tree/fixtures"
    for f in make_prod.sh figures.sh; do ln -s "$CAPS/$f" "$tree/captures/$f"; done
    for f in services.py loadgen.py; do ln -s "$CAPS/demo/$f" "$tree/captures/demo/$f"; done
    ln -s "$REPO/fixtures/scripts" "$tree/fixtures/scripts"
    if [ "$variant" = after ]; then
        pooled_conf "$CAPS/demo/nginx.conf" > "$tree/captures/demo/nginx.conf"
        # the edit must have happened: a changed demo config would silently give two equal files
        [ "$(grep -c 'keepalive 4;' "$tree/captures/demo/nginx.conf")" = 2 ] \
            && [ "$(grep -c 'proxy_http_version 1.1;' "$tree/captures/demo/nginx.conf")" = 3 ] \
            || { echo "could not add the inventory pool to nginx.conf" >&2; rm -rf "$tree"; exit 1; }
    else
        cp "$CAPS/demo/nginx.conf" "$tree/captures/demo/nginx.conf"
    fi
    echo "=== $variant: DURATION=$DURATION"
    bash "$tree/captures/make_prod.sh" > "$tree/run.log" 2>&1 \
        || { cat "$tree/run.log" >&2; rm -rf "$tree"; exit 1; }
    local size
    size=$(stat -c %s "$tree/captures/prod.pcap")
    if [ "$size" -gt "$MAX_OUT" ]; then
        echo "$variant.pcap is $size bytes, over 3 MB; lower DURATION" >&2; rm -rf "$tree"; exit 1
    fi
    mv "$tree/captures/prod.pcap" "$HERE/$variant.pcap"
    sed -e "s#captures/prod.pcap#captures/before_after/$variant.pcap#" \
        -e "s#(written by make_prod.sh)#(written by make_before_after.sh)#" \
        "$tree/captures/prod.services.yaml" > "$HERE/$variant.services.yaml"
    chown --reference="$HERE" "$HERE/$variant.pcap" "$HERE/$variant.services.yaml"
    # make_prod.sh's closing figures (figures.sh) for the README
    sed -n '/^== figures/,$p' "$tree/run.log" > "$HERE/$variant.figures.txt"
    rm -rf "$tree"
}

record before
record after

echo "== the changed link, gateway 10.77.0.10 -> inventory 10.77.0.12:8080"
for v in before after; do
    F=$HERE/$v.pcap
    syns=$(tshark -r "$F" -Y 'tcp.flags.syn==1 && tcp.flags.ack==0 && ip.src==10.77.0.10 && ip.dst==10.77.0.12' 2>/dev/null | wc -l)
    reqs=$(tshark -r "$F" -Y 'http.request && ip.src==10.77.0.10 && ip.dst==10.77.0.12' -T fields -e http.request.method 2>/dev/null | tr ',' '\n' | grep -c .)
    convs=$(tshark -r "$F" -q -z conv,tcp,'ip.addr==10.77.0.10 && ip.addr==10.77.0.12' 2>/dev/null | grep -c '<->')
    echo "$v: $(stat -c %s "$F") bytes; $reqs requests, $syns SYNs, $convs TCP conversations"
done
