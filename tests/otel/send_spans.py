#!/usr/bin/env python3
"""Sends spans to linkrank's OTLP receiver (`--otlp-listen`) with the OpenTelemetry
Python SDK and its OTLP exporters, and prints what it sent (tests/it/otel.rs).

  send_spans.py send grpc|http|json HOST:PORT TRACES
      TRACES traces over four services (user -> frontend -> orders -> payments, and
      frontend -> users in every other trace), CLIENT and SERVER spans; each service's
      spans exported by the SDK's exporter (gRPC or HTTP/protobuf, gzip), or, for
      `json`, the same request as OTLP/JSON posted to /v1/traces. Prints
      {"calls": {"client -> server": n}, "spans": n}, counted here.

  send_spans.py probe HOST:PORT QUEUE_SPANS
      A malformed body over gRPC and over HTTP (protobuf and JSON), then one request of
      three resources (4, QUEUE_SPANS and 2 spans) over gRPC, then a good request over
      HTTP. Prints what came back and what the queue bound implies.

Only to the loopback address it is given; bounded in count.
"""
import gzip
import json
import sys
import time
import urllib.error
import urllib.request

import grpc
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

SERVICES = ["frontend", "orders", "payments", "users"]
ROUTES = {
    "orders": ("GET", "/orders/{id}"),
    "payments": ("POST", "/payments"),
    "users": ("GET", "/users/{id}"),
}


def build(traces):
    """Finished SDK spans per service, and the calls they make, counted."""
    memory = {s: InMemorySpanExporter() for s in SERVICES}
    tracers = {}
    for s in SERVICES:
        provider = TracerProvider(resource=Resource.create({"service.name": s}))
        provider.add_span_processor(SimpleSpanProcessor(memory[s]))
        tracers[s] = provider.get_tracer("linkrank-test")
    calls = {}

    def count(client, server):
        key = f"{client} -> {server}"
        calls[key] = calls.get(key, 0) + 1

    def call(client, server, parent_ctx):
        method, route = ROUTES[server]
        attrs = {
            "http.request.method": method,
            "http.route": route,
            "url.path": route.replace("{id}", "7"),
            "http.response.status_code": 200,
            "server.address": server,
            "server.port": 8080,
        }
        with tracers[client].start_as_current_span(
            f"{method} {route}", context=parent_ctx, kind=trace.SpanKind.CLIENT, attributes=attrs
        ) as c:
            ctx = trace.set_span_in_context(c)
            with tracers[server].start_as_current_span(
                f"{method} {route}", context=ctx, kind=trace.SpanKind.SERVER, attributes=attrs
            ) as srv:
                time.sleep(0.0005)
                if server == "orders":
                    call("orders", "payments", trace.set_span_in_context(srv))
        count(client, server)

    for i in range(traces):
        with tracers["frontend"].start_as_current_span(
            "GET /", kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": "GET", "http.route": "/", "url.path": "/"},
        ) as root:
            ctx = trace.set_span_in_context(root)
            call("frontend", "orders", ctx)
            if i % 2 == 0:
                call("frontend", "users", ctx)
        count("user", "frontend")
    spans = {s: memory[s].get_finished_spans() for s in SERVICES}
    return spans, calls


def send(protocol, endpoint, traces):
    spans, calls = build(int(traces))
    for s in SERVICES:
        batch = spans[s]
        if protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
            exporter = OTLPSpanExporter(
                endpoint=f"http://{endpoint}", insecure=True, compression=grpc.Compression.Gzip
            )
        elif protocol == "http":
            from opentelemetry.exporter.otlp.proto.http import Compression
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            exporter = OTLPSpanExporter(
                endpoint=f"http://{endpoint}/v1/traces", compression=Compression.Gzip
            )
        else:
            exporter = None
        if exporter is not None:
            result = exporter.export(batch)
            exporter.shutdown()
            if result != SpanExportResult.SUCCESS:
                sys.exit(f"export of {s}'s spans over {protocol} failed: {result}")
        else:
            # OTLP/JSON: integer enums as OTLP asks; ids in base64 (protobuf's JSON
            # mapping of bytes, which linkrank also reads); gzip as a Collector sends.
            body = json_format.MessageToJson(encode_spans(batch), use_integers_for_enums=True).encode()
            status, _ = post(endpoint, "application/json", gzip.compress(body), gzip_=True)
            if status != 200:
                sys.exit(f"JSON export of {s}'s spans: HTTP {status}")
    print(json.dumps({"calls": calls, "spans": sum(len(v) for v in spans.values())}))


def post(endpoint, content_type, body, gzip_=False):
    headers = {"Content-Type": content_type}
    if gzip_:
        headers["Content-Encoding"] = "gzip"
    req = urllib.request.Request(f"http://{endpoint}/v1/traces", data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def resource(service, n):
    rs = trace_pb2.ResourceSpans()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", service
    scope = rs.scope_spans.add()
    for k in range(n):
        sp = scope.spans.add()
        sp.trace_id = bytes([1] * 15 + [len(service)])
        sp.span_id = (k + 1).to_bytes(8, "big")
        sp.name = "work"
        sp.kind = trace_pb2.Span.SPAN_KIND_INTERNAL
        sp.start_time_unix_nano = 1_700_000_000_000_000_000 + k
        sp.end_time_unix_nano = sp.start_time_unix_nano + 1000
    return rs


def probe(endpoint, queue_spans):
    queue_spans = int(queue_spans)
    out = {}
    channel = grpc.insecure_channel(endpoint)
    raw = channel.unary_unary(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    try:
        raw(b"\x0a\xff\xff\xff\xff\x0f", timeout=10)
        out["grpc_bad"] = "OK"
    except grpc.RpcError as e:
        out["grpc_bad"] = e.code().name
    status, body = post(endpoint, "application/x-protobuf", b"\x0a\x05\x0a\x03\x0a")
    st = status_pb2.Status()
    st.ParseFromString(body)
    out["http_bad_protobuf"] = [status, st.code, bool(st.message)]
    status, body = post(endpoint, "application/json", b'{"resourceSpans": [{"scopeSpans": 7}]}')
    j = json.loads(body)
    out["http_bad_json"] = [status, j.get("code"), bool(j.get("message"))]
    # One request: the first resource fits, the second does not (4 + QUEUE_SPANS > the
    # bound), the third does (4 + 2 <= QUEUE_SPANS when QUEUE_SPANS >= 6).
    req = trace_service_pb2.ExportTraceServiceRequest()
    for name, n in (("alpha", 4), ("beta", queue_spans), ("gamma", 2)):
        req.resource_spans.append(resource(name, n))
    stub = trace_service_pb2_grpc.TraceServiceStub(channel)
    resp = stub.Export(req, timeout=10)
    out["partial_rejected"] = resp.partial_success.rejected_spans
    out["partial_message"] = bool(resp.partial_success.error_message)
    out["expected_rejected"] = queue_spans if 4 + queue_spans > queue_spans else 0
    out["expected_accepted"] = 4 + 2
    # The receiver still answers: a good request over HTTP, after the queue drained.
    time.sleep(1)
    good = trace_service_pb2.ExportTraceServiceRequest()
    good.resource_spans.append(resource("delta", 3))
    status, body = post(endpoint, "application/x-protobuf", good.SerializeToString())
    resp = trace_service_pb2.ExportTraceServiceResponse()
    resp.ParseFromString(body)
    out["good_after"] = [status, resp.partial_success.rejected_spans]
    out["expected_accepted"] += 3
    channel.close()
    print(json.dumps(out))


if __name__ == "__main__":
    if sys.argv[1] == "send":
        send(*sys.argv[2:5])
    elif sys.argv[1] == "probe":
        probe(*sys.argv[2:4])
    else:
        sys.exit(__doc__)
