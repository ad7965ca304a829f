#!/usr/bin/env bash
# bench/make_realistic.sh [OUT] [MIN_MB]
#
# Builds the realistic benchmark capture (default bench/out/realistic.pcap, >= 300 MB,
# not committed) from the demo's own services, scaled up: captures/make_prod.sh with
# four copies of the shop on one LAN (32 services and clients: an nginx gateway, six
# Python services each, TLS with a new connection per call to fraud, keep-alive pools,
# per-request connections to notifications and from the legacy client, an N+1 fan-out,
# 404/409/502 errors) and the load generators' rates raised until the machine is
# saturated. Its services file is written beside it (OUT with .services.yaml).
# Bounded: the load stops after MAX_SECS (default 420) seconds; if the capture is then
# smaller than MIN_MB the script says so and fails. Runs as root.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
OUT=${1:-$HERE/out/realistic.pcap}
MIN_MB=${2:-300}
MAX_SECS=${MAX_SECS:-420}
mkdir -p "$(dirname "$OUT")"
OUT=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")
# A request of the demo costs ~9 KB on the wire with its fan-out: MAX_REQUESTS per shop
# is set so that the size, not the time, usually ends the run.
PER_SHOP=$(( MIN_MB * 1000 * 1000 / 4 / 8000 + 1 ))
SHOPS=4 LOAD_SCALE=40 DURATION=$MAX_SECS MAX_REQUESTS=$PER_SHOP WATCHDOG=$((MAX_SECS + 240)) \
    MIN_BYTES=$((MIN_MB * 1000 * 1000)) MAX_BYTES=$((100 * 1000 * 1000 * 1000)) FIGURES=0 \
    OUT="$OUT" YAML="${OUT%.pcap}.services.yaml" bash "$REPO/captures/make_prod.sh"
