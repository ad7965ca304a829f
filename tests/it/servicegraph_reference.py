"""Independent reference for tests/it/traces_rpc.rs: service-graph pairs, request counts
and failed counts computed from the raw JSON of a trace file, with none of linkrank's
code. Prints {"caller -> callee": [calls, failed], ...}.

  python3 servicegraph_reference.py FILE

Rules (docs/traces.md, "Spans to calls"; the Collector's servicegraph connector, Jaeger's
dependencies job, Zipkin's linker):
  SERVER span: called by its parent's service (`user` without a parent id,
    `unknown-caller` when the parent never arrived);
  CONSUMER span: called by its PRODUCER (parent or span link), else its parent's
    service, else its broker;
  a span without a kind (or INTERNAL) under a span of another service: called by it;
  CLIENT / PRODUCER spans no child answered, and kind-less spans with peer.service no
    child answered: a virtual callee named by their attributes.
  A call failed when one of its spans has an ERROR status or `error` tag, an HTTP status
  of 500 or more, or a gRPC status other than 0.
"""
import base64
import json
import re
import sys
from collections import defaultdict

KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def ident(s):
    """Hex, else base64, as an int; None if empty."""
    if not s:
        return None
    s = s[2:] if s[:2] in ("0x", "0X") else s
    if re.fullmatch(r"[0-9a-fA-F]+", s) and len(s) in (16, 32):
        return int(s, 16)
    raw = base64.b64decode(s.replace("-", "+").replace("_", "/") + "=" * (-len(s) % 4))
    return int.from_bytes(raw, "big")


def otlp_value(v):
    for k in ("stringValue", "intValue", "boolValue", "doubleValue"):
        if k in v:
            return int(v[k]) if k == "intValue" else v[k]
    return None


def span(trace, sid, parent, svc, kind, attrs, error=False, links=()):
    return {"trace": trace, "id": sid, "parent": parent, "svc": svc, "kind": kind,
            "attrs": attrs, "error": error, "links": list(links)}


def read(path):
    text = open(path).read()
    docs, dec, i = [], json.JSONDecoder(), 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        d, i = dec.raw_decode(text, i)
        docs.append(d)
    out = []
    for d in docs:
        if isinstance(d, list):
            out += zipkin(d)
            continue
        d = d.get("result", d)
        if "resourceSpans" in d:
            out += otlp(d)
        elif "data" in d:
            for t in d["data"]:
                out += jaeger(t)
        else:
            out += jaeger(d)
    return out


def otlp(d):
    out = []
    for rs in d["resourceSpans"]:
        svc = next((otlp_value(a["value"]) for a in rs.get("resource", {}).get("attributes", [])
                    if a["key"] == "service.name"), "unknown_service")
        for ss in rs.get("scopeSpans", []):
            for s in ss.get("spans", []):
                attrs = {a["key"]: otlp_value(a.get("value", {})) for a in s.get("attributes", [])}
                err = s.get("status", {}).get("code") == 2
                links = [(ident(l["traceId"]), ident(l["spanId"])) for l in s.get("links", [])]
                out.append(span(ident(s["traceId"]), ident(s["spanId"]),
                                ident(s.get("parentSpanId")), svc,
                                KINDS.get(s.get("kind", 0), "internal"), attrs, err, links))
    return out


def jaeger(t):
    procs = t.get("processes", {})
    out = []
    for s in t.get("spans", []):
        proc = s.get("process") or procs.get(s.get("processID"), {})
        attrs = {}
        for tag in s.get("tags", []):
            v = next((tag[k] for k in ("vStr", "vBool", "vInt64", "value") if k in tag), None)
            attrs[tag["key"]] = int(v) if "vInt64" in tag else v
        refs = s.get("references", [])
        parent = ident(refs[0].get("spanID") or refs[0].get("spanId")) if refs else None
        kind = str(attrs.pop("span.kind", "internal")).lower()
        out.append(span(ident(s.get("traceID") or s.get("traceId")),
                        ident(s.get("spanID") or s.get("spanId")), parent,
                        proc.get("serviceName") or "unknown_service", kind, attrs))
    return out


def zipkin(items):
    out = []
    for s in items:
        if isinstance(s, list):
            out += zipkin(s)
            continue
        attrs = dict(s.get("tags", {}))
        remote = s.get("remoteEndpoint") or {}
        if remote.get("serviceName"):
            attrs["peer.service"] = remote["serviceName"]
        if remote.get("ipv4") or remote.get("ipv6"):
            attrs["server.address"] = remote.get("ipv4") or remote.get("ipv6")
        out.append(span(ident(s["traceId"]), ident(s["id"]), ident(s.get("parentId")),
                        (s.get("localEndpoint") or {}).get("serviceName") or "unknown_service",
                        s.get("kind", "internal").lower(), attrs))
    return out


def failed(s):
    a = s["attrs"]
    http = a.get("http.response.status_code", a.get("http.status_code"))
    return (s["error"] or str(a.get("error", "false")).lower() not in ("false", "none")
            or str(a.get("otel.status_code", "")).upper() == "ERROR"
            or (http is not None and int(http) >= 500)
            or a.get("rpc.grpc.status_code", 0) not in (0, None))


def peer(s, producer=False):
    a = s["attrs"]
    if producer and a.get("messaging.system"):
        return a["messaging.system"]
    db = a.get("db.system") or a.get("db.system.name")
    dbn = a.get("db.name") or a.get("db.namespace")
    url = a.get("url.full") or a.get("http.url")
    host = re.sub(r"^[a-z]+://([^@/]*@)?", "", url).split("/")[0].split(":")[0] if url else None
    for v in (a.get("peer.service"), a.get("server.address"), a.get("net.peer.name"),
              f"{db}/{dbn}" if db and dbn else db, a.get("rpc.service"), host,
              a.get("messaging.system")):
        if v:
            return v
    return "unknown-peer"


def calls(spans):
    traces = defaultdict(list)
    for s in spans:
        if s["trace"] and s["id"]:
            traces[s["trace"]].append(s)
    pairs = defaultdict(lambda: [0, 0])
    for ss in traces.values():
        by_id = {}
        for s in ss:
            o = by_id.get(s["id"])
            if o is None:
                by_id[s["id"]] = s
            elif o["kind"] == "client" and s["kind"] == "server":
                s["parent"], s["shared"] = s["id"], o  # Zipkin shared span
                by_id[s["id"]] = s
            elif o["kind"] == "server" and s["kind"] == "client":
                o["parent"], o["shared"] = None, s
        answered = set()

        def parent_of(s):
            if s.get("shared"):
                return s["shared"]
            p = by_id.get(s["parent"]) if s["parent"] else None
            # A span that names itself as its parent is a cut cycle: its parent is lost.
            return None if p is s else p

        def add(caller, callee, *sides):
            pairs[(caller, callee)][0] += 1
            pairs[(caller, callee)][1] += int(any(failed(x) for x in sides if x))

        for s in ss:
            p = parent_of(s)
            if s["kind"] == "server":
                if p is not None:
                    answered.add(id(p))
                caller = p["svc"] if p else ("user" if not s["parent"] else "unknown-caller")
                add(caller, s["svc"], s, p if p and p["kind"] == "client" else None)
            elif s["kind"] == "consumer":
                prod = p if p and p["kind"] == "producer" else next(
                    (by_id[l[1]] for l in s["links"] if l[0] == s["trace"] and l[1] in by_id
                     and by_id[l[1]]["kind"] == "producer"), None)
                if (prod or p) is not None:
                    answered.add(id(prod or p))
                caller = (prod or p)["svc"] if (prod or p) else peer(s, True)
                add(caller, s["svc"], s, prod)
            elif s["kind"] == "internal" and p is not None and p["svc"] != s["svc"]:
                answered.add(id(p))
                client = p if p["kind"] in ("internal", "client") else None
                add(p["svc"], s["svc"], s, client)
        for s in ss:
            virtual = s["kind"] in ("client", "producer") or (
                s["kind"] == "internal" and s["attrs"].get("peer.service"))
            if virtual and id(s) not in answered:
                add(s["svc"], peer(s, s["kind"] == "producer"), s)
    return pairs


if __name__ == "__main__":
    got = calls(read(sys.argv[1]))
    print(json.dumps({f"{a} -> {b}": v for (a, b), v in sorted(got.items())}))
