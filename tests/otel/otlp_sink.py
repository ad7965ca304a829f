#!/usr/bin/env python3
"""An OTLP/HTTP receiver that writes what it receives as JSON lines (tests/it/otel.rs).

It stands behind a real collector (rotel) in the test: linkrank exports to rotel, rotel
forwards to this sink over OTLP/HTTP (protobuf), and the sink decodes each request with
the OpenTelemetry protobuf definitions (the opentelemetry-proto package) into one line of
OUT: {"signal": "metrics" | "traces", "body": <the request as protobuf JSON>}.

    otlp_sink.py OUT        # prints the port it listens on (127.0.0.1), then serves

It exits after 120 s at the latest.
"""
import gzip
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

OUT = sys.argv[1]
LOCK = threading.Lock()
SIGNALS = {
    "/v1/metrics": ("metrics", metrics_service_pb2.ExportMetricsServiceRequest,
                    metrics_service_pb2.ExportMetricsServiceResponse),
    "/v1/traces": ("traces", trace_service_pb2.ExportTraceServiceRequest,
                   trace_service_pb2.ExportTraceServiceResponse),
}


class Sink(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        # Collectors compress their exports (rotel: gzip by default).
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if self.path not in SIGNALS:
            self.send_response(404)
            self.end_headers()
            return
        signal, request, response = SIGNALS[self.path]
        msg = request()
        msg.ParseFromString(body)
        line = json.dumps({"signal": signal, "body": MessageToDict(msg)})
        with LOCK, open(OUT, "a") as f:
            f.write(line + "\n")
        out = response().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Sink)
print(server.server_address[1], flush=True)
threading.Timer(120, server.shutdown).start()
server.serve_forever()
