#!/usr/bin/env bash
# Installs what linkrank's tests need on a fresh Debian machine, then runs every test.
# The tests compare linkrank's figures with tshark's on real captures, so tshark is needed.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi
if ! command -v tshark >/dev/null; then
    echo "installing tshark (needed by the tests that cross-check against it)" >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # wireshark-common asks whether non-root users may capture; answer no without a prompt.
    echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tshark >/dev/null
fi

# python3 (standard library only) runs the tests' independent references and the bench
# generator.
if ! command -v python3 >/dev/null; then
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 >/dev/null
fi

# The migration kit's tests (tests/it/kit.rs) compile the generated .proto files with
# protoc (Debian's protobuf-compiler; libprotobuf-dev ships google/protobuf/*.proto) and
# run buf lint and the AsyncAPI parser from tests/kit's npm packages.
if ! command -v protoc >/dev/null || [ ! -e /usr/include/google/protobuf/struct.proto ]; then
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler libprotobuf-dev >/dev/null
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
(cd tests/kit && npm ci --no-audit --no-fund --loglevel=error)

# libpcap's headers and library for the `live` feature (live capture), which the tests
# build and run; tcpdump, curl and ethtool for the live tests in network namespaces
# (tests/live/http_netns.sh), which run as root.
if ! dpkg -s libpcap-dev >/dev/null 2>&1; then
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpcap-dev >/dev/null
fi
if [ "$(id -u)" -eq 0 ]; then
    missing=()
    for pair in tcpdump:tcpdump curl:curl ethtool:ethtool ip:iproute2 setpriv:util-linux; do
        command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
fi

# The OTLP export test (tests/it/otel.rs) needs a real collector, rotel, and the
# OpenTelemetry protobuf definitions for its sink; the OTLP receiver's tests send spans
# with the OpenTelemetry Python SDK and its OTLP exporters (gRPC and HTTP).
OTEL_PIP="rotel opentelemetry-proto opentelemetry-sdk opentelemetry-exporter-otlp-proto-grpc opentelemetry-exporter-otlp-proto-http"
if ! python3 -c "import rotel, opentelemetry.proto, opentelemetry.sdk, opentelemetry.exporter.otlp.proto.grpc, opentelemetry.exporter.otlp.proto.http" >/dev/null 2>&1; then
    if ! python3 -m pip --version >/dev/null 2>&1; then
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null
    fi
    # Debian's own python3 refuses pip installs outside a venv (PEP 668) unless told.
    # shellcheck disable=SC2086
    python3 -m pip install -q $OTEL_PIP 2>/dev/null \
        || python3 -m pip install -q --break-system-packages $OTEL_PIP
fi

# One build of everything, with the optional features on; the default build (no
# libpcap, no OpenTelemetry, no DataFusion) is only checked, so that the suite does not
# run twice. `fleet` (DataFusion and Ballista) is the largest part of a cold build
# (docs/fleet.md, Build cost).
FEATURES=live,otel,fleet
cargo fmt --check
cargo clippy --all-targets --features "$FEATURES" -- -D warnings
cargo check

# Tests that read the third-party corpus (LINKRANK_CORPUS, else ../shared/corpus) log
# whether they ran or were skipped; the count is printed after the run.
corpus_log="$(mktemp)"
trap 'rm -f "$corpus_log"' EXIT
LINKRANK_CORPUS_LOG="$corpus_log" cargo test --all-targets --features "$FEATURES"
ran=$(grep -c '^ran' "$corpus_log" || true)
skipped=$(grep -c '^skipped' "$corpus_log" || true)
if [ "$skipped" -gt 0 ]; then
    echo "corpus tests: $ran ran, $skipped skipped ($(grep -m1 '^skipped' "$corpus_log" | cut -f3)):"
    grep '^skipped' "$corpus_log" | cut -f2 | sort | sed 's/^/  skipped /'
else
    echo "corpus tests: $ran ran, 0 skipped"
fi
if [ "${LINKRANK_REQUIRE_CORPUS:-}" = 1 ] && { [ "$skipped" -gt 0 ] || [ "$ran" -eq 0 ]; }; then
    echo "LINKRANK_REQUIRE_CORPUS=1 but the corpus tests did not all run" >&2
    exit 1
fi

# The HTML report in a real browser (tests/browser/): Debian's chromium and node, which
# .ci/run installs; skipped with a notice where they are missing.
if command -v node >/dev/null && command -v npm >/dev/null && [ -x /usr/bin/chromium ]; then
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
    # target/debug/linkrank as `cargo test` built it (with $FEATURES): a separate
    # `cargo build` would resolve other features (no dev-dependencies) and compile
    # polars a second time.
    node tests/browser/report.spec.js
else
    echo "skipping the browser test of report.html: needs node, npm and /usr/bin/chromium" >&2
fi
