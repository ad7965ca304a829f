#!/usr/bin/env bash
# Fuzz linkrank with cargo-fuzz (libFuzzer). See docs/fuzzing.md.
#
#   scripts/fuzz.sh [SECS] [TARGET...]     build the seed corpora, then run each target
#                                          (all by default) for SECS seconds (default 600)
#   scripts/fuzz.sh --minimize [TARGET...] cargo fuzz cmin each working corpus and copy
#                                          it, bounded, into fuzz/corpus-committed/
#   scripts/fuzz.sh --seeds                only (re)build the seed corpora
#
# Installs what it needs: the nightly toolchain (minimal profile) and cargo-fuzz.
# Seeds come from the committed corpora, the repository's fixtures/ and captures/, the
# third-party corpus ($LINKRANK_CORPUS, else ../shared/corpus beside the repository,
# as listed in its MANIFEST.tsv; skipped when absent) and a few made here. The working
# corpora (fuzz/corpus/), crash artifacts (fuzz/artifacts/) and logs (fuzz/logs/) are
# not committed.
#
# Builds are `-s none --debug-assertions` (release, no sanitizer: linkrank has no unsafe
# code; debug assertions and overflow checks on). CARGO_BUILD_JOBS defaults to 1.
# FUZZ_KEEP_GOING=1 runs libFuzzer in fork mode and goes on after a crash, timeout or
# out-of-memory (each is still saved in fuzz/artifacts/), so that one known but not yet
# fixed finding does not end a long run. Off by default: the reproducers kept in
# fuzz/regressions/ are fixed findings, and a plain run stops at the first new one.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ="$ROOT/fuzz"
ALL_TARGETS=(capture_reader decode_frame tcp_http_flow http1 http2 trace_otlp_json
  trace_otlp_proto trace_jaeger trace_zipkin services_yaml k8s_json)
BUILD_FLAGS=(-s none --debug-assertions)
LIBFUZZER_FLAGS=(-rss_limit_mb=2048 -timeout=20)
KEEP_GOING_FLAGS=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
# Committed corpus bounds: per file and per target.
MAX_COMMITTED_FILE=32768
MAX_COMMITTED_TOTAL=1000000
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"

mode=run
secs=600
case "${1:-}" in
  --minimize) mode=minimize; shift ;;
  --seeds) mode=seeds; shift ;;
  -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
  '' ) ;;
  *[!0-9]*) ;;
  *) secs="$1"; shift ;;
esac
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL_TARGETS[@]}"); fi
for t in "${TARGETS[@]}"; do
  [ -f "$FUZZ/fuzz_targets/$t.rs" ] || { echo "fuzz.sh: no target $t" >&2; exit 2; }
done

# --- tools -------------------------------------------------------------------------
if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
command -v python3 >/dev/null || { echo "fuzz.sh: python3 is needed to build the seeds" >&2; exit 2; }

# Inputs go through temporary files (readers that take paths): keep them in memory.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
  export TMPDIR=/dev/shm/linkrank-fuzz
  mkdir -p "$TMPDIR"
fi

corpus_dir() {
  if [ -n "${LINKRANK_CORPUS:-}" ]; then echo "$LINKRANK_CORPUS"
  elif [ -f "$ROOT/../shared/corpus/MANIFEST.tsv" ]; then (cd "$ROOT/../shared/corpus" && pwd)
  fi
}

# --- seeds -------------------------------------------------------------------------
# Writes fuzz/corpus/<target>/<sha1> for every seed, and fuzz/corpus/.excluded/<target>:
# the names of the seeds that are (parts of) capture files or third-party files, which
# --minimize never copies into the committed corpus.
build_seeds() {
  local third
  third="$(corpus_dir)"
  if [ -n "$third" ] && [ ! -f "$third/MANIFEST.tsv" ]; then
    echo "fuzz.sh: $third has no MANIFEST.tsv, not a corpus" >&2; exit 2
  fi
  [ -n "$third" ] || echo "fuzz.sh: no third-party corpus: seeds from the repository only"
  for t in "${TARGETS[@]}"; do
    mkdir -p "$FUZZ/corpus/$t"
    if [ -d "$FUZZ/corpus-committed/$t" ]; then
      find "$FUZZ/corpus-committed/$t" -maxdepth 1 -type f -exec cp -n {} "$FUZZ/corpus/$t/" \;
    fi
  done
  python3 - "$ROOT" "$FUZZ/corpus" "$third" "${TARGETS[@]}" <<'PY'
import gzip, hashlib, os, re, struct, sys

root, out, third = sys.argv[1], sys.argv[2], sys.argv[3]
wanted = set(sys.argv[4:])
MAX_SEED = 64 * 1024
counts, excluded = {}, {}

def put(target, data, exclude):
    if target not in wanted:
        return
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
    counts[target] = counts.get(target, 0) + 1
    if exclude:
        excluded.setdefault(target, set()).add(name)

def read(path):
    with open(path, "rb") as f:
        return f.read()

# Files: (path, from the third-party corpus).
captures, traces, yamls, k8s = [], [], [], []
for base in ("fixtures", "captures"):
    for dirpath, _, names in os.walk(os.path.join(root, base)):
        for n in sorted(names):
            p = os.path.join(dirpath, n)
            if n.endswith((".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz")):
                captures.append((p, False))
            elif n.endswith((".yaml", ".yml")):
                yamls.append((p, False))
            elif n.endswith((".otlp.jsonl", ".otlp.json")):
                traces.append((p, False, "otlp"))
            elif n.endswith(".otlp.pb"):
                traces.append((p, False, "proto"))
            elif dirpath.endswith(os.path.join("fixtures", "k8s")) and n.endswith(".json"):
                k8s.append((p, False))
if third:
    with open(os.path.join(third, "MANIFEST.tsv"), encoding="utf-8") as f:
        for row in list(f)[1:]:
            cols = row.rstrip("\n").split("\t")
            if len(cols) < 9:
                continue
            p = os.path.join(third, cols[0])
            if not os.path.isfile(p):
                continue
            if cols[7] == "pcap":
                captures.append((p, True))
            elif cols[7] == "trace":
                fmt = cols[8].split(";")[0]
                kind = "zipkin" if "zipkin" in fmt else "jaeger" if "jaeger" in fmt else "otlp"
                traces.append((p, True, kind))

def frames(data):
    """(link type, frame) of a pcap or pcapng, as far as it reads."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except Exception:
            return []
    out = []
    magic = data[:4]
    e = {b"\xd4\xc3\xb2\xa1": "<", b"\x4d\x3c\xb2\xa1": "<",
         b"\xa1\xb2\xc3\xd4": ">", b"\xa1\xb2\x3c\x4d": ">"}.get(magic)
    if e:
        if len(data) < 24:
            return out
        link = struct.unpack(e + "I", data[20:24])[0] & 0x0FFFFFFF
        off = 24
        while off + 16 <= len(data):
            caplen = struct.unpack(e + "I", data[off + 8:off + 12])[0]
            if caplen > 262144 or off + 16 + caplen > len(data):
                break
            out.append((link, data[off + 16:off + 16 + caplen]))
            off += 16 + caplen
        return out
    if magic != b"\x0a\x0d\x0d\x0a":
        return out
    off, e, ifaces = 0, "<", []
    while off + 12 <= len(data):
        if data[off:off + 4] == b"\x0a\x0d\x0d\x0a":
            e = "<" if data[off + 8:off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            ifaces = []
        btype, blen = struct.unpack(e + "II", data[off:off + 8])
        if blen < 12 or off + blen > len(data):
            break
        body = data[off + 8:off + blen - 4]
        if btype == 1 and len(body) >= 2:
            ifaces.append(struct.unpack(e + "H", body[:2])[0])
        elif btype == 6 and len(body) >= 20:
            iface, _, _, caplen, _ = struct.unpack(e + "IIIII", body[:20])
            if iface < len(ifaces):
                out.append((ifaces[iface], body[20:20 + caplen]))
        elif btype == 3 and len(body) >= 4 and ifaces:
            out.append((ifaces[0], body[4:]))
        off += blen
    return out

# The link selector of decode_frame's first byte (src/testing/fuzz.rs).
LINK = {1: 0, 0: 1, 108: 2, 101: 3, 12: 3, 14: 3, 228: 4, 229: 5, 113: 6, 276: 7}
HTTP_START = re.compile(rb"(?:(?:GET|POST|PUT|HEAD|DELETE|OPTIONS|PATCH|CONNECT) \S{1,300} HTTP/1\.[01]\r?\n|HTTP/1\.[01] \d{3}[ \r\n])")

for path, is_third in captures:
    data = read(path)
    # capture_reader: the file itself, cut to 64 KiB, and its first 16 KiB gzipped.
    put("capture_reader", data[:MAX_SEED], True)
    if not data.startswith(b"\x1f\x8b"):
        put("capture_reader", gzip.compress(data[:16384], 6), True)
    # decode_frame: runs of up to 6 frames.
    fs = frames(data)
    groups = [fs[i:i + 6] for i in range(0, len(fs), 6)][:40]
    for g in groups:
        if g[0][0] not in LINK:
            continue
        seed = bytes([LINK[g[0][0]]])
        for link, f in g:
            if link != g[0][0]:
                break
            f = f[:4000]
            seed += bytes([1]) + struct.pack("<H", len(f)) + f
        put("decode_frame", seed[:MAX_SEED], is_third)
    # http1: bytes from each HTTP message start found in the file.
    for i, m in enumerate(HTTP_START.finditer(data)):
        if i >= 30:
            break
        put("http1", bytes([i * 37 & 0xFF, i * 11 & 0xFF]) + data[m.start():m.start() + 1500], is_third)

def proto_entries(data):
    """Top-level field-1 entries (ResourceSpans) of a binary OTLP request."""
    off, out = 0, []
    while off < len(data) and data[off] == 0x0A:
        n, shift, j = 0, 0, off + 1
        while j < len(data):
            b = data[j]; j += 1
            n |= (b & 0x7F) << shift; shift += 7
            if b < 0x80:
                break
        if j + n > len(data):
            break
        out.append(data[off:j + n]); off = j + n
    return out

def varint(n):
    b = b""
    while n >= 0x80:
        b += bytes([n & 0x7F | 0x80]); n >>= 7
    return b + bytes([n])

for path, is_third, kind in traces:
    data = read(path)
    if kind == "proto":
        entries = proto_entries(data)
        if not entries:
            # Length-delimited: requests each after its varint length.
            off = 0
            while off < len(data) and len(entries) < 8:
                n, shift = 0, 0
                while off < len(data):
                    b = data[off]; off += 1
                    n |= (b & 0x7F) << shift; shift += 7
                    if b < 0x80:
                        break
                entries += proto_entries(data[off:off + n]); off += n
        for k in (1, 2, 4):
            req = b"".join(entries[:k])
            if 0 < len(req) <= MAX_SEED:
                put("trace_otlp_proto", req, is_third)
                put("trace_otlp_proto", varint(len(req)) + req, is_third)
        continue
    target = {"otlp": "trace_otlp_json", "jaeger": "trace_jaeger", "zipkin": "trace_zipkin"}[kind]
    if len(data) <= MAX_SEED:
        put(target, data, is_third)
    if kind == "otlp":
        lines = [l for l in data.split(b"\n") if l.strip()]
        for l in lines[:3]:
            if len(l) <= MAX_SEED:
                put(target, l + b"\n", is_third)

for path, is_third in yamls:
    put("services_yaml", read(path)[:MAX_SEED], is_third)
for path, is_third in k8s:
    put("k8s_json", read(path)[:MAX_SEED], is_third)

# --- seeds made here ---------------------------------------------------------------
put("services_yaml", b"""services:
  gateway: ["10.0.1.10", "10.0.2.0/24", "fd00::/64"]
  auth: ["10.0.3.7:8443", "[fd00::7]:443"]
  orders: ["orders.shop.svc.cluster.local", "Orders.Example.test.:8080"]
  single: 10.9.9.9
  7: ["seven.test"]
""", False)
put("k8s_json", b"""{"apiVersion":"v1","kind":"List","items":[
 {"kind":"Pod","metadata":{"name":"orders-5c9d7b8f4-x2k9p","namespace":"shop","labels":{"pod-template-hash":"5c9d7b8f4"},
  "ownerReferences":[{"kind":"ReplicaSet","name":"orders-5c9d7b8f4","controller":true}]},
  "spec":{},"status":{"podIP":"10.1.0.5","podIPs":[{"ip":"10.1.0.5"},{"ip":"fd00::5"}]}},
 {"kind":"Pod","metadata":{"name":"orders-1","namespace":"staging","ownerReferences":[{"kind":"StatefulSet","name":"orders"}]},
  "spec":{"hostNetwork":false},"status":{"podIP":"10.1.0.6"}},
 {"kind":"Pod","metadata":{"name":"node","namespace":"mon"},"spec":{"hostNetwork":true},"status":{"podIP":"192.168.1.10"}},
 {"kind":"Service","metadata":{"name":"orders","namespace":"shop"},"spec":{"clusterIP":"10.96.0.11","clusterIPs":["10.96.0.11","fd00::11"]}},
 {"kind":"Service","metadata":{"name":"headless","namespace":"shop"},"spec":{"clusterIP":"None"}},
 {"kind":"Endpoints","metadata":{"name":"legacy-db","namespace":"shop"},
  "subsets":[{"addresses":[{"ip":"10.20.0.9"},{"ip":"10.1.0.5"}],"notReadyAddresses":[{"ip":"10.20.0.10"}],"ports":[{"port":5432}]}]}
]}
""", False)

OTLP = (b'{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"front"}}]},'
        b'"scopeSpans":[{"spans":[{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331",'
        b'"name":"GET /orders/{id}","kind":3,"startTimeUnixNano":"1600000000000000000","endTimeUnixNano":"1600000000200000000",'
        b'"attributes":[{"key":"http.request.method","value":{"stringValue":"GET"}},{"key":"server.address","value":{"stringValue":"orders"}},'
        b'{"key":"http.response.status_code","value":{"intValue":"200"}},{"key":"url.full","value":{"stringValue":"http://orders/orders/42?x=1"}}]}]}]},'
        b'{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"orders"}}]},"scopeSpans":[{"spans":['
        b'{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"00f067aa0ba902b7","parentSpanId":"b7ad6b7169203331",'
        b'"name":"GET /orders/{id}","kind":2,"startTimeUnixNano":1600000000010000000,"endTimeUnixNano":1600000000190000000,'
        b'"status":{"code":2},"attributes":[{"key":"http.route","value":{"stringValue":"/orders/{id}"}},'
        b'{"key":"http.response.status_code","value":{"intValue":500}},{"key":"client.port","value":{"intValue":"40000"}}]}]}]}]}')
put("trace_otlp_json", OTLP + b"\n", False)
put("trace_otlp_json", OTLP.replace(b"},{", b"},\n  {") + b"\n", False)
put("trace_jaeger", b"""{"traceID":"0af7651916cd43dd8448eb211c80319c","spans":[
 {"traceID":"0af7651916cd43dd8448eb211c80319c","spanID":"b7ad6b7169203331","operationName":"GET /orders",
  "references":[],"startTime":1600000000000000,"duration":200000,"processID":"p1",
  "tags":[{"key":"span.kind","type":"string","value":"client"},{"key":"http.method","type":"string","value":"GET"},{"key":"peer.service","type":"string","value":"orders"}]},
 {"traceID":"0af7651916cd43dd8448eb211c80319c","spanID":"00f067aa0ba902b7","operationName":"GET /orders",
  "references":[{"refType":"CHILD_OF","traceID":"0af7651916cd43dd8448eb211c80319c","spanID":"b7ad6b7169203331"}],
  "startTime":1600000000010000,"duration":180000,"processID":"p2",
  "tags":[{"key":"span.kind","type":"string","value":"server"},{"key":"http.status_code","type":"int64","value":200}]}],
 "processes":{"p1":{"serviceName":"front"},"p2":{"serviceName":"orders"}}}
""", False)
put("trace_zipkin", b"""[{"traceId":"0af7651916cd43dd8448eb211c80319c","id":"b7ad6b7169203331","kind":"CLIENT","name":"get /orders",
  "timestamp":1600000000000000,"duration":200000,"localEndpoint":{"serviceName":"front","ipv4":"10.0.0.1"},
  "remoteEndpoint":{"serviceName":"orders","ipv4":"10.0.0.2","port":80},"tags":{"http.method":"GET","http.path":"/orders/42"}},
 {"traceId":"0af7651916cd43dd8448eb211c80319c","id":"b7ad6b7169203331","kind":"SERVER","name":"get /orders","shared":true,
  "timestamp":1600000000010000,"duration":180000,"localEndpoint":{"serviceName":"orders"},"tags":{"http.status_code":"200"}}]
""", False)

# http1: heads, chunked and coded bodies; byte 0 picks the codings (bits 4-6).
for i, msg in enumerate([
    b"GET /api/v1/users/12345?token=x HTTP/1.1\r\nHost: Users.Internal:8080\r\nTraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n",
    b"POST /p HTTP/1.1\r\nContent-Length: 5\r\nContent-Type: Application/JSON; charset=utf-8\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Encoding: gzip\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nServer: x\r\n obs-fold\r\n\r\nbody until close",
    b"OPTIONS\r\nGET /HTTP/1.1\r\n\r\nM-SEARCH * HTTP/1.1\r\n\r\n",
    b"1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n",
]):
    put("http1", bytes([i << 4, i * 29 & 0xFF]) + msg, False)
for ctl in (0x00, 0x14, 0x24, 0x30, 0x44, 0x50, 0x70, 0x80):
    put("http1", bytes([ctl, 3]) + gzip.compress(b'{"id":1,"items":[1,2,3]}'), False)

# tcp_http_flow: conversations as 8-byte records (layout in src/testing/fuzz.rs,
# flow_frames). Dictionary entries by position (flow_dictionary): 1-based selectors.
SYN, ACK, PSH, FIN, RST = 2, 16, 8, 1, 4
D = {"get": 1, "get_orders": 2, "post_cl10": 3, "post_chunked": 4, "put_expect": 5, "head": 6,
     "upgrade": 7, "connect": 8, "get10": 9, "odd": 10, "options": 11, "split1": 12, "split2": 13,
     "post_json": 14, "post_gz": 15, "r200_cl10": 16, "r200_chunked": 17, "r100": 18, "r101": 19,
     "r204": 20, "r304": 21, "r10_close": 22, "r404": 23, "r200_tunnel": 24, "r500": 25,
     "r_pipelined": 26, "r200_json": 27, "r200_gz": 28, "body10": 29, "chunk5": 30, "chunk0": 31,
     "chunk_trailer": 32, "crlf": 33, "json": 34, "gz": 35, "client_hello": 36, "server_hello": 37,
     "appdata": 38, "h2": 39, "ssh": 40}

def rec(conn, s2c, flags, payload=0, seq=0, ack=0, dt=1, bits=0, raw=b""):
    b0 = conn | (s2c << 2) | bits
    p = D[payload] if isinstance(payload, str) else payload
    return bytes([b0, flags]) + struct.pack("<hh", seq, ack) + bytes([dt, p]) + raw

def handshake(c=0):
    return rec(c, 0, SYN) + rec(c, 1, SYN | ACK) + rec(c, 0, ACK)

def close(c=0):
    return rec(c, 0, FIN | ACK) + rec(c, 1, FIN | ACK) + rec(c, 0, ACK)

def exchange(c, req, resp, *more):
    out = rec(c, 0, PSH | ACK, req) + rec(c, 1, ACK | PSH, resp)
    for m in more:
        out += rec(c, 1, ACK | PSH, m)
    return out + rec(c, 0, ACK)

flows = [
    b"\0\0\0\0" + handshake() + exchange(0, "get", "r200_cl10", "body10") + close(),
    b"\0\0\0\0" + handshake() + exchange(0, "post_json", "r200_json") + exchange(0, "get_orders", "r404")
        + exchange(0, "post_chunked", "r204") + close(),
    b"\0\0\0\0" + handshake() + rec(0, 0, PSH | ACK, "put_expect") + rec(0, 1, PSH | ACK, "r100")
        + rec(0, 0, PSH | ACK, "body10") + rec(0, 1, PSH | ACK, "r200_chunked") + rec(0, 1, PSH | ACK, "chunk5")
        + rec(0, 1, PSH | ACK, "chunk_trailer") + close(),
    # pipelining, then a response lost in a gap (the client acknowledges past it)
    b"\0\0\0\0" + handshake() + rec(0, 0, PSH | ACK, "get") + rec(0, 0, PSH | ACK, "get_orders")
        + rec(0, 1, PSH | ACK, "r_pipelined") + rec(0, 0, PSH | ACK, "get")
        + rec(0, 1, PSH | ACK, "r200_json", seq=300) + rec(0, 0, ACK, ack=200) + close(),
    # out of order (raw 16-byte payloads), retransmission, sequence numbers wrapping
    b"\0\x01\0\0" + handshake() + rec(0, 0, PSH | ACK, 0x82, seq=16, raw=b"B" * 16)
        + rec(0, 0, PSH | ACK, 0x82, seq=-32, raw=b"GET /a HTTP/1.1\r")
        + rec(0, 0, PSH | ACK, 0, bits=0x80) + rec(0, 1, PSH | ACK, "r200_cl10") + rec(0, 1, PSH | ACK, "body10")
        + close(),
    # TLS, HTTP/2, other bytes, on connections 1 and 2 at once
    b"\0\0\0\0" + handshake(2) + rec(2, 0, PSH | ACK, "client_hello") + rec(2, 1, PSH | ACK, "server_hello")
        + rec(2, 0, PSH | ACK, "appdata") + handshake(1) + rec(1, 0, PSH | ACK, "h2") + close(2) + close(1),
    # mid-stream (no handshake), a response first, upgrade then other bytes, RST
    b"\0\0\0\0" + rec(1, 1, PSH | ACK, "r200_cl10") + rec(1, 1, PSH | ACK, "body10") + rec(1, 0, ACK)
        + exchange(0, "upgrade", "r101") + rec(0, 0, PSH | ACK, "ssh") + rec(0, 1, RST),
    # tiny bounds, IPv6, a copy on a second interface, an idle timeout, port reuse
    b"\x07\x2a\x11\x22" + handshake() + rec(0, 0, PSH | ACK, "split1") + rec(0, 0, PSH | ACK, "split2", bits=0x20)
        + rec(0, 0, PSH | ACK, "split2") + rec(0, 1, PSH | ACK, "r200_gz") + rec(0, 0, ACK, dt=255)
        + handshake(3) + exchange(3, "connect", "r200_tunnel") + close(3),
    # a frame cut by the snaplen, FIN with data, sequence jump of 2^31
    b"\0\x02\0\0" + handshake() + rec(0, 0, PSH | ACK, "post_gz", bits=0x40) + rec(0, 1, PSH | ACK | FIN, "r10_close")
        + rec(0, 0, ACK, bits=0x08) + rec(0, 0, FIN | ACK),
]
for f in flows:
    put("tcp_http_flow", f, False)

for t in sorted(wanted):
    os.makedirs(os.path.join(out, ".excluded"), exist_ok=True)
    with open(os.path.join(out, ".excluded", t), "a") as f:
        for name in sorted(excluded.get(t, ())):
            f.write(name + "\n")
    print(f"seeds {t}: {counts.get(t, 0)} written, {len(excluded.get(t, ()))} of them never committed")
PY
}

# --- run ---------------------------------------------------------------------------
summarise() {
  local t="$1" log="$2" before="$3"
  local last execs cov ft found status
  last="$(grep -aE '^#[0-9]+' "$log" | grep -a 'cov:' | tail -1 || true)"
  execs="$(grep -aoE 'Done [0-9]+ runs' "$log" | tail -1 | grep -oE '[0-9]+' || true)"
  [ -n "$execs" ] || execs="$(printf '%s' "$last" | grep -oE '^#[0-9]+' | tr -d '#' || true)"
  cov="$(printf '%s' "$last" | grep -oE 'cov: [0-9]+' | grep -oE '[0-9]+' || true)"
  ft="$(printf '%s' "$last" | grep -oE 'ft: [0-9]+' | grep -oE '[0-9]+' || true)"
  found="$(comm -13 "$before" <(ls "$FUZZ/artifacts/$t" 2>/dev/null | sort) | tr '\n' ' ')"
  status=ok
  [ -z "$found" ] || status="FOUND $(echo $found | wc -w) input(s) in fuzz/artifacts/$t/:"
  printf '%-18s execs %-10s cov %-6s ft %-7s %s\n' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$status"
  [ -z "$found" ] || classify "$t" $found
}

# The panic message of each artifact (replayed once), counted: one line per finding.
classify() {
  local t="$1" a msg bin
  shift
  bin="$FUZZ/target/$(rustc -vV | sed -n 's/^host: //p')/release/$t"
  for a in "$@"; do
    case "$a" in
      crash-*)
        msg="$(timeout 120 "$bin" -runs=1 -rss_limit_mb=2048 -timeout=20 "$FUZZ/artifacts/$t/$a" 2>&1 \
          | grep -a -A1 'panicked at' | sed -n 2p | cut -c1-110 || true)"
        echo "${msg:-crash without a panic message (replay $a)}" ;;
      *) echo "${a%%-*}" ;;
    esac
  done | sed -E "s/[0-9]+/N/g" | sort | uniq -c | sed "s/^/    /"
}

run_targets() {
  mkdir -p "$FUZZ/logs"
  (cd "$FUZZ" && cargo +nightly fuzz build "${BUILD_FLAGS[@]}")
  local summary="" t log before
  for t in "${TARGETS[@]}"; do
    log="$FUZZ/logs/$t.log"
    before="$(mktemp)"
    ls "$FUZZ/artifacts/$t" 2>/dev/null | sort >"$before" || true
    local run_flags=() note=""
    if [ "${FUZZ_KEEP_GOING:-}" = 1 ]; then
      run_flags=("${KEEP_GOING_FLAGS[@]}")
      note=", going on after crashes"
    fi
    echo "== $t: $secs s$note (log: fuzz/logs/$t.log)"
    (cd "$FUZZ" && cargo +nightly fuzz run "${BUILD_FLAGS[@]}" "$t" "corpus/$t" -- \
      -max_total_time="$secs" "${LIBFUZZER_FLAGS[@]}" ${run_flags[@]+"${run_flags[@]}"} \
      -print_final_stats=1) >"$log" 2>&1 || true
    grep -aE 'panicked at|^SUMMARY|Test unit written|ERROR: libFuzzer' "$log" | head -5 || true
    summary+="$(summarise "$t" "$log" "$before")"$'\n'
    rm -f "$before"
  done
  echo
  echo "== summary ($secs s per target; crash inputs in fuzz/artifacts/<target>/)"
  printf '%s' "$summary"
}

# --- minimize ----------------------------------------------------------------------
minimize() {
  (cd "$FUZZ" && cargo +nightly fuzz build "${BUILD_FLAGS[@]}")
  local t dest total
  for t in "${TARGETS[@]}"; do
    [ -d "$FUZZ/corpus/$t" ] || { echo "fuzz.sh: no working corpus for $t (run first)" >&2; continue; }
    echo "== cmin $t"
    (cd "$FUZZ" && cargo +nightly fuzz cmin "${BUILD_FLAGS[@]}" "$t" "corpus/$t" -- \
      "${LIBFUZZER_FLAGS[@]}") >"$FUZZ/logs/$t.cmin.log" 2>&1 || {
      echo "fuzz.sh: cmin $t failed, see fuzz/logs/$t.cmin.log" >&2; continue; }
    dest="$FUZZ/corpus-committed/$t"
    mkdir -p "$dest"
    # Regression inputs (crashes once found, named regression-*) always stay.
    find "$dest" -maxdepth 1 -type f ! -name 'regression-*' -delete
    # Smallest first, within the bounds; never a seed cut from a capture or a third-party
    # file, nor a fuzz-made input still holding 256 bytes or more of a third-party file.
    python3 - "$FUZZ/corpus/$t" "$dest" "$FUZZ/corpus/.excluded/$t" "$(corpus_dir)" \
      "$MAX_COMMITTED_FILE" "$MAX_COMMITTED_TOTAL" <<'PY'
import os, shutil, sys

src, dest, excluded_list, third = sys.argv[1:5]
max_file, max_total = int(sys.argv[5]), int(sys.argv[6])
W = 64
excluded = set()
if os.path.exists(excluded_list):
    with open(excluded_list) as f:
        excluded = set(f.read().split())
chunks = set()
if third:
    with open(os.path.join(third, "MANIFEST.tsv"), encoding="utf-8") as f:
        names = [row.split("\t")[0] for row in list(f)[1:]]
    for n in names:
        p = os.path.join(third, n)
        if os.path.isfile(p):
            with open(p, "rb") as f:
                d = f.read()
            for i in range(0, len(d) - W + 1, W):
                c = d[i:i + W]
                if len(set(c)) >= 8:  # not padding, not a run of a few byte values
                    chunks.add(c)

def third_party_bytes(d):
    hit, i = 0, 0
    while i + W <= len(d):
        if d[i:i + W] in chunks:
            hit += W
            i += W
        else:
            i += 1
    return hit

total = sum(os.path.getsize(os.path.join(dest, n)) for n in os.listdir(dest))
files = sorted((os.path.getsize(os.path.join(src, n)), n) for n in os.listdir(src))
skipped = 0
for size, n in files:
    if n in excluded or size > max_file:
        continue
    if total + size > max_total:
        break
    with open(os.path.join(src, n), "rb") as f:
        d = f.read()
    if chunks and third_party_bytes(d) >= 256:
        skipped += 1
        continue
    shutil.copyfile(os.path.join(src, n), os.path.join(dest, n))
    total += size
print(f"   {skipped} inputs holding third-party bytes left out")
PY
    total="$(find "$dest" -maxdepth 1 -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}')"
    echo "   $(find "$dest" -maxdepth 1 -type f | wc -l) files, $total bytes in fuzz/corpus-committed/$t"
  done
}

mkdir -p "$FUZZ/logs"
case "$mode" in
  seeds) build_seeds ;;
  run) build_seeds; run_targets ;;
  minimize) minimize ;;
esac
