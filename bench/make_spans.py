#!/usr/bin/env python3
"""Writes an OTLP/JSON-lines trace file for bench/traces.sh (never into the repo).

usage: make_spans.py OUT [SPANS]   (default 1,000,000 spans, OUT under /tmp)

Shapes follow what OpenTelemetry SDKs export: one ExportTraceServiceRequest per line
(the Collector's file exporter), each a batch of resourceSpans per service, canonical
OTLP/JSON (hex ids, 64-bit integers as strings, integer enums), HTTP semantic-convention
attributes (new names on most services, old names on one), and trees of depth 2-6:
user -> frontend SERVER -> CLIENT -> SERVER of a backend -> ... -> database CLIENT
(virtual peer), sometimes a PRODUCER/CONSUMER pair through kafka. Spans of one trace are
spread over consecutive batches, as an exporter flushing every few hundred spans does.
"""
import json
import random
import sys

SERVICES = ["frontend", "cart", "checkout", "catalog", "payment", "shipping", "users", "search"]
OLD_NAMES = {"shipping"}  # one service on the old HTTP attribute names
ROUTES = ["/api/v1/items/{id}", "/api/v1/cart", "/api/v1/orders", "/api/v1/users/{id}", "/health"]
BATCH = 512  # spans per line


def kv(key, value):
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def http_attrs(service, kind, route, status):
    if service in OLD_NAMES:
        a = [kv("http.method", "GET"), kv("http.status_code", status), kv("http.flavor", "1.1")]
        a.append(kv("http.target", route.replace("{id}", "42") + "?q=secret") if kind == 2 else kv("net.peer.name", "peer"))
    else:
        a = [kv("http.request.method", "POST"), kv("http.response.status_code", status),
             kv("network.protocol.version", "1.1"), kv("http.request.body.size", random.randint(50, 5000)),
             kv("http.response.body.size", random.randint(50, 50000))]
        if kind == 2:
            a += [kv("http.route", route), kv("url.path", route.replace("{id}", "42"))]
        else:
            a += [kv("server.address", "svc.local"), kv("url.full", "http://svc.local:8080" + route.replace("{id}", "42"))]
    a += [kv("user_agent.original", "bench/1.0"), kv("thread.id", random.randint(1, 64))]
    return a


def make_trace(rng, t0):
    """Spans of one trace as (service, span dict)."""
    tid = "%032x" % rng.getrandbits(128)
    out = []

    def span(service, kind, name, parent, start, dur, attrs, status=0):
        sid = "%016x" % rng.getrandbits(64)
        s = {"traceId": tid, "spanId": sid, "parentSpanId": parent, "name": name, "kind": kind,
             "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + dur),
             "attributes": attrs, "status": {"code": status} if status else {}}
        out.append((service, s))
        return sid

    def serve(service, parent, start, dur, depth):
        route = rng.choice(ROUTES)
        status = 500 if rng.random() < 0.02 else 200
        sid = span(service, 2, "POST " + route, parent, start, dur, http_attrs(service, 2, route, status), 2 if status == 500 else 0)
        t = start + dur // 10
        for _ in range(rng.randint(0, 3) if depth < 5 else 0):
            callee = rng.choice(SERVICES[1:])
            cdur = dur // 4
            cid = span(service, 3, "POST", sid, t, cdur, http_attrs(service, 3, route, status))
            if rng.random() < 0.9:
                serve(callee, cid, t + cdur // 20, cdur * 9 // 10, depth + 1)
            t += cdur // 3
        if rng.random() < 0.5:
            span(service, 3, "SELECT", sid, t, dur // 8, [kv("db.system", "postgresql"), kv("db.operation.name", "SELECT")])
        if rng.random() < 0.1:
            pid = span(service, 4, "orders publish", sid, t, 1000, [kv("messaging.system", "kafka"), kv("messaging.destination.name", "orders")])
            span("shipping", 5, "orders process", pid, t + 5000, 20000, [kv("messaging.system", "kafka")])
        return sid

    serve("frontend", "", t0, rng.randint(2_000_000, 50_000_000), 1)
    return out


def main():
    out = sys.argv[1]
    want = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    rng = random.Random(7)
    random.seed(7)
    t = 1_700_000_000_000_000_000
    written = 0
    pending = []
    with open(out, "w") as f:
        while written < want:
            # A few traces interleave in one batch, like concurrent requests.
            while len(pending) < BATCH:
                pending.extend(make_trace(rng, t))
                t += rng.randint(100_000, 2_000_000)
            batch, pending = pending[:BATCH], pending[BATCH:]
            by_service = {}
            for service, s in batch:
                by_service.setdefault(service, []).append(s)
            req = {"resourceSpans": [
                {"resource": {"attributes": [kv("service.name", svc), kv("telemetry.sdk.language", "python"),
                                             kv("host.name", svc + "-7d9f8")]},
                 "scopeSpans": [{"scope": {"name": "opentelemetry.instrumentation.flask", "version": "0.48b0"},
                                 "spans": spans}]}
                for svc, spans in by_service.items()]}
            f.write(json.dumps(req, separators=(",", ":")))
            f.write("\n")
            written += len(batch)
    print(f"{out}: {written} spans")


if __name__ == "__main__":
    main()
