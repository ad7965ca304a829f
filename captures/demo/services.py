#!/usr/bin/env python3
"""The linkrank demo microservices (standard library only).

    services.py ROLE LISTEN_IP PORT

ROLE is one of orders, inventory, payments, users, notifications, fraud. Every
service is a ThreadingHTTPServer speaking HTTP/1.1 + JSON; fraud speaks it over
TLS (its certificate and key come from FRAUD_CERT / FRAUD_KEY). Peers are reached
by IP (set by make_prod.sh through the environment, e.g. INVENTORY=10.77.0.12:8080)
with an explicit Host header, as a service mesh's DNS names would give.

Outgoing call styles differ per link on purpose (see captures/README.md):
  orders -> inventory      keep-alive pool (http.client connections reused)
  orders -> users          keep-alive pool, N+1 calls (one per line item)
  orders -> payments       urllib, new connection per request, retried once on 503/429
  orders -> notifications  new connection per request, fire-and-forget (202, body ignored)
  payments -> users        urllib, new connection per request, no traceparent
  payments -> fraud        urllib over HTTPS, new connection (full TLS handshake) per
                           request, SNI and certificate check for fraud.internal
Payments answers 503 on every 17th charge and 429 on every 23rd (deterministic).
All data is synthetic; nothing secret is logged.
"""
import http.client
import json
import os
import random
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The keep-alive pool is shared with the fixtures' services (fixtures/scripts/pool.py).
# realpath: captures/before_after/make_before_after.sh runs this file through a symlink.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "..",
                                "fixtures", "scripts"))
from pool import Pool  # noqa: E402

ROLE = sys.argv[1] if len(sys.argv) > 1 else "orders"
TIMEOUT = 5.0  # every outgoing call is bounded

SKUS = [
    ("SKU-10042", "Espresso beans 1kg", 2399), ("SKU-10057", "Pour-over kettle", 4599),
    ("SKU-10311", "Ceramic dripper", 1899), ("SKU-10420", "Paper filters x100", 599),
    ("SKU-11007", "Burr grinder", 12900), ("SKU-11230", "Milk jug 600ml", 1499),
    ("SKU-12001", "Cold brew bottle", 2199), ("SKU-12116", "Travel mug", 1799),
    ("SKU-13050", "Digital scale", 3299), ("SKU-13377", "Descaler tablets", 899),
    ("SKU-14002", "Tamper 58mm", 2599), ("SKU-14090", "Knock box", 2099),
]
FIRST = ["Ada", "Grace", "Linus", "Barbara", "Ken", "Radia", "Edsger", "Frances", "Donald", "Hedy"]
LAST = ["Lovelace", "Hopper", "Torvalds", "Liskov", "Thompson", "Perlman", "Dijkstra", "Allen"]
CITIES = [("Berlin", "DE", "10115"), ("Lyon", "FR", "69001"), ("Porto", "PT", "4000-001"),
          ("Utrecht", "NL", "3511"), ("Graz", "AT", "8010"), ("Turku", "FI", "20100")]


def peer(name):
    host, port = os.environ[name.upper()].rsplit(":", 1)
    return host, int(port), "%s.internal:%s" % (name, port)


def child_traceparent(incoming):
    """W3C trace context: same trace id, a new span id for the outgoing call."""
    if not incoming:
        return None
    parts = incoming.split("-")
    if len(parts) != 4 or len(parts[1]) != 32:
        return None
    return "00-%s-%016x-%s" % (parts[1], random.getrandbits(64), parts[3])


def upstream(name):
    """The keep-alive pool to one peer: up to 8 idle connections, a request that fails
    on a reused connection is sent once more on a new one, compact JSON bodies."""
    host, port, hostname = peer(name)
    return Pool(host, port, TIMEOUT, max_idle=8, retry_stale=True, separators=(",", ":"),
                headers={"Host": hostname, "Accept": "application/json",
                         "User-Agent": "orders-svc/2.3 http.client"})


def urllib_call(name, method, path, body=None, headers=None):
    """One request on a new connection (urllib sends Connection: close)."""
    host, port, hostname = peer(name)
    data = json.dumps(body, separators=(",", ":")).encode() if body is not None else None
    req = urllib.request.Request("http://%s:%d%s" % (host, port, path), data=data, method=method)
    req.add_header("Host", hostname)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        if v is not None:
            req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            return resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as e:
        payload = e.read()
        e.close()
        return e.code, payload, e.headers


class SNIHTTPSConnection(http.client.HTTPSConnection):
    """Connects to an IP but sends SNI and checks the certificate for a hostname."""

    server_name = None  # set on a subclass per peer

    def connect(self):
        http.client.HTTPConnection.connect(self)  # the TCP connection only
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.server_name)


class SNIHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, context, server_name):
        super().__init__(context=context)
        self.conn_class = type("SNI_" + server_name, (SNIHTTPSConnection,), {"server_name": server_name})

    def https_open(self, req):
        return self.do_open(self.conn_class, req, context=self._context)


_fraud_opener = None


def fraud_call(path, body, headers=None):
    """POST to fraud over HTTPS: a new connection and TLS handshake per call
    (urllib sends Connection: close; no session is resumed)."""
    global _fraud_opener
    host, port = os.environ["FRAUD"].rsplit(":", 1)
    name = os.environ.get("FRAUD_NAME", "fraud.internal")
    if _fraud_opener is None:
        ctx = ssl.create_default_context(cafile=os.environ["FRAUD_CA"])  # TLS 1.3 when both sides can
        _fraud_opener = urllib.request.build_opener(SNIHTTPSHandler(ctx, name))
    data = json.dumps(body, separators=(",", ":")).encode()
    req = urllib.request.Request("https://%s:%s%s" % (host, port, path), data=data, method="POST")
    req.add_header("Host", "%s:%s" % (name, port))
    req.add_header("Accept", "application/json")
    req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        if v is not None:
            req.add_header(k, v)
    try:
        with _fraud_opener.open(req, timeout=TIMEOUT) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        payload = e.read()
        e.close()
        return e.code, payload


def make_order(oid):
    rng = random.Random(oid)
    n = rng.randint(1, 6)
    items = []
    for line in range(n):
        sku, name, price = rng.choice(SKUS)
        items.append({"line": line + 1, "sku": sku, "name": name, "qty": rng.randint(1, 4),
                      "unit_price_cents": price, "seller_id": rng.randint(100, 180)})
    subtotal = sum(i["qty"] * i["unit_price_cents"] for i in items)
    city, country, postcode = rng.choice(CITIES)
    return {
        "id": oid,
        "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "customer_id": rng.randint(1000, 1999),
        "status": rng.choice(["paid", "packed", "shipped", "delivered"]),
        "currency": "EUR",
        "items": items,
        "totals": {"subtotal_cents": subtotal, "shipping_cents": 495 if subtotal < 5000 else 0,
                   "tax_cents": subtotal * 19 // 119, "total_cents": subtotal + (495 if subtotal < 5000 else 0)},
        "shipping_address": {"street": "%d Example Street" % rng.randint(1, 200), "city": city,
                             "postcode": postcode, "country": country},
        "payment_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "created_at": "2024-05-%02dT%02d:%02d:%02dZ" % (rng.randint(1, 28), rng.randint(0, 23),
                                                        rng.randint(0, 59), rng.randint(0, 59)),
    }


class Base(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "%s-svc/2.3" % ROLE
    sys_version = ""

    def log_message(self, fmt, *args):  # quiet; never log headers or bodies
        pass

    def send_json(self, code, obj, extra=None):
        body = json.dumps(obj, separators=(",", ":")).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def read_json(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(min(n, 1 << 20)) if n else b""
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            return {}

    def split(self):
        path, _, query = self.path.partition("?")
        params = dict(kv.split("=", 1) for kv in query.split("&") if "=" in kv)
        return [p for p in path.split("/") if p], params

    def tp(self):
        return child_traceparent(self.headers.get("traceparent"))


# --- leaf services ------------------------------------------------------------

class Users(Base):
    def do_GET(self):
        parts, _ = self.split()
        time.sleep(0.001)
        if len(parts) >= 2 and parts[0] == "users" and parts[1].isdigit():
            uid = int(parts[1])
            if uid >= 5000:
                return self.send_json(404, {"error": "user_not_found", "id": uid})
            rng = random.Random(uid)
            if len(parts) == 3 and parts[2] == "risk":
                return self.send_json(200, {"user_id": uid, "score": rng.randint(0, 99),
                                            "checked": ["velocity", "geo", "device"]})
            first, last = rng.choice(FIRST), rng.choice(LAST)
            city, country, _ = rng.choice(CITIES)
            return self.send_json(200, {
                "id": uid, "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "name": "%s %s" % (first, last), "email": "%s.%s@example.com" % (first.lower(), last.lower()),
                "tier": rng.choice(["basic", "silver", "gold"]), "city": city, "country": country,
                "roles": ["buyer"] + (["seller"] if uid < 200 else []),
                "preferences": {"newsletter": rng.random() < 0.5, "language": rng.choice(["en", "de", "fr"])},
            })
        self.send_json(404, {"error": "not_found"})


class Inventory(Base):
    def do_GET(self):
        parts, params = self.split()
        if parts[:1] == ["items"] and len(parts) == 2:
            time.sleep(0.002)
            for sku, name, price in SKUS:
                if sku == parts[1]:
                    rng = random.Random(sku)
                    return self.send_json(200, {
                        "sku": sku, "name": name, "price_cents": price, "stock": rng.randint(0, 400),
                        "warehouse": rng.choice(["FRA-1", "AMS-2", "WAW-1"]),
                        "dimensions_mm": [rng.randint(50, 400) for _ in range(3)],
                        "weight_g": rng.randint(80, 4000)})
            return self.send_json(404, {"error": "unknown_sku"})
        if parts == ["catalog"]:
            time.sleep(0.004)
            page = int(params.get("page", "1")) if params.get("page", "1").isdigit() else 1
            size = 40
            rows = []
            for i in range(size):
                n = (page - 1) * size + i
                sku, name, price = SKUS[n % len(SKUS)]
                rows.append({"sku": "%s-%03d" % (sku, n), "name": "%s (variant %d)" % (name, n),
                             "price_cents": price + n % 7 * 10, "stock": (n * 37) % 250,
                             "tags": ["coffee", "kitchen", "gift"][: 1 + n % 3],
                             "description": "Hand-picked %s, ships from our %s warehouse within 2 days."
                                            % (name.lower(), ["Frankfurt", "Amsterdam", "Warsaw"][n % 3])})
            return self.send_json(200, {"page": page, "page_size": size, "total": 480, "items": rows})
        self.send_json(404, {"error": "not_found"})

    def do_POST(self):
        parts, _ = self.split()
        body = self.read_json()
        time.sleep(0.003)
        if parts == ["reservations"]:
            lines = body.get("lines", [])
            # deterministic out-of-stock: a quantity of 4 of the burr grinder
            if any(l.get("sku") == "SKU-11007" and l.get("qty", 0) >= 4 for l in lines):
                return self.send_json(409, {"error": "insufficient_stock", "sku": "SKU-11007"})
            return self.send_json(201, {"reservation_id": str(uuid.uuid4()), "expires_in_s": 900,
                                        "lines": [{"sku": l.get("sku"), "qty": l.get("qty"),
                                                   "warehouse": "FRA-1"} for l in lines]})
        self.send_json(404, {"error": "not_found"})


class Payments(Base):
    counter = 0
    lock = threading.Lock()

    def do_GET(self):
        parts, _ = self.split()
        time.sleep(0.008)
        if parts[:1] == ["payments"] and len(parts) == 2:
            rng = random.Random(parts[1])
            return self.send_json(200, {"id": parts[1], "status": "captured", "method": "card",
                                        "card": {"brand": "visa", "last4": "4242"},
                                        "amount_cents": rng.randint(500, 40000), "currency": "EUR",
                                        "captured_at": "2024-05-11T09:%02d:%02dZ" % (rng.randint(0, 59), rng.randint(0, 59))})
        self.send_json(404, {"error": "not_found"})

    def do_POST(self):
        parts, _ = self.split()
        body = self.read_json()
        if parts != ["charges"]:
            return self.send_json(404, {"error": "not_found"})
        with Payments.lock:
            Payments.counter += 1
            n = Payments.counter
        # fraud scoring on every charge attempt, before the acquirer is asked
        fraud = {"amount_cents": body.get("amount_cents"), "currency": body.get("currency", "EUR"),
                 "customer_id": body.get("customer_id"), "card_bin": "424242",
                 "idempotency_key": self.headers.get("Idempotency-Key")}
        try:
            fstatus, fbody = fraud_call("/scores", fraud, {"traceparent": self.tp()})
            decision = json.loads(fbody).get("decision", "allow") if fstatus == 200 else "unavailable"
        except (OSError, ValueError):
            decision = "unavailable"  # fail open, as a scoring outage must not stop sales
        if n % 17 == 0:
            time.sleep(0.05)
            return self.send_json(503, {"error": "acquirer_unavailable", "retryable": True})
        if n % 23 == 0:
            return self.send_json(429, {"error": "rate_limited", "retry_after_s": 1}, {"Retry-After": "1"})
        # fraud check on a new connection, without trace context (a legacy client)
        status, risk, _ = urllib_call("users", "GET", "/users/%d/risk" % int(body.get("customer_id", 1000)))
        score = json.loads(risk).get("score", 0) if status == 200 else 50
        time.sleep(0.02 + (n % 5) * 0.006)  # the acquirer round trip
        self.send_json(201, {"id": str(uuid.uuid4()), "status": "authorized", "amount_cents": body.get("amount_cents"),
                             "currency": body.get("currency", "EUR"), "risk_score": score,
                             "fraud_decision": decision, "three_ds": score > 80 or decision == "review"})


class Fraud(Base):
    """Scores a charge; served over HTTPS only (see main)."""

    def do_POST(self):
        parts, _ = self.split()
        body = self.read_json()
        if parts != ["scores"]:
            return self.send_json(404, {"error": "not_found"})
        time.sleep(0.002)
        rng = random.Random("%s/%s" % (body.get("customer_id"), body.get("amount_cents")))
        score = round(rng.random() ** 3, 2)  # mostly low
        decision = "allow" if score < 0.6 else ("review" if score < 0.9 else "deny_advised")
        self.send_json(200, {"score": score, "decision": decision, "model": "gbm-2024-05",
                             "reasons": (["amount_velocity"] if score >= 0.6 else []),
                             "evaluated_rules": 14, "request_id": str(uuid.uuid4())})


class TLSServer(ThreadingHTTPServer):
    """HTTPS: the TLS handshake runs in the request's thread (finish_request),
    not in the accept loop, so one slow client cannot stall the others."""

    ssl_context = None

    def finish_request(self, request, client_address):
        tls = self.ssl_context.wrap_socket(request, server_side=True)
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            tls.close()

    def handle_error(self, request, client_address):
        pass  # readiness probes close without a handshake; nothing to log


class Notifications(Base):
    def do_POST(self):
        self.read_json()
        self.send_json(202, {"queued": True, "id": str(uuid.uuid4())})


# --- orders: the fan-out service -----------------------------------------------

class Orders(Base):
    inventory = None
    users = None
    fanout = ThreadPoolExecutor(max_workers=16)
    fire = ThreadPoolExecutor(max_workers=4)

    def do_GET(self):
        parts, params = self.split()
        if parts == ["orders"]:
            return self.list_orders(params)
        if len(parts) >= 2 and parts[0] == "orders" and parts[1].isdigit():
            oid = int(parts[1])
            if oid % 50 == 0:
                return self.send_json(404, {"error": "order_not_found", "id": oid})
            if len(parts) == 2:
                return self.get_order(oid)
            if parts[2] == "details":
                return self.get_details(oid)
        self.send_json(404, {"error": "not_found"})

    def do_POST(self):
        parts, _ = self.split()
        if parts == ["orders"]:
            return self.create_order(self.read_json())
        self.send_json(404, {"error": "not_found"})

    def get_order(self, oid):
        order = make_order(oid)
        r = self.users.request("GET", "/users/%d" % order["customer_id"], headers={"traceparent": self.tp()})
        if r.status == 200:
            u = json.loads(r.body)
            order["customer"] = {"id": u["id"], "name": u["name"], "tier": u["tier"]}
        self.send_json(200, order)

    def get_details(self, oid):
        order = make_order(oid)
        tp = self.tp()
        # parallel: stock for every line, and the payment record
        futs = [self.fanout.submit(self.inventory.request, "GET", "/items/%s" % it["sku"],
                                   headers={"traceparent": child_traceparent(tp) or tp}) for it in order["items"]]
        pay = self.fanout.submit(urllib_call, "payments", "GET", "/payments/%s" % order["payment_id"],
                                 None, {"traceparent": self.tp()})
        # N+1: one users call per line item, sequential, on the pool
        for it in order["items"]:
            r = self.users.request("GET", "/users/%d" % it["seller_id"], headers={"traceparent": self.tp()})
            if r.status == 200:
                it["seller"] = json.loads(r.body).get("name")
        for it, f in zip(order["items"], futs):
            r = f.result(timeout=TIMEOUT)
            if r.status == 200:
                d = json.loads(r.body)
                it["stock"], it["warehouse"] = d["stock"], d["warehouse"]
        status, body, _ = pay.result(timeout=TIMEOUT)
        order["payment"] = json.loads(body) if status == 200 else None
        self.send_json(200, order)

    def list_orders(self, params):
        cid = int(params["customer_id"]) if params.get("customer_id", "").isdigit() else 1000
        r = self.users.request("GET", "/users/%d" % cid, headers={"traceparent": self.tp()})
        if r.status != 200:
            return self.send_json(404, {"error": "customer_not_found"})
        rows = []
        for k in range(8):
            o = make_order(cid * 10 + k)
            rows.append({"id": o["id"], "uuid": o["uuid"], "status": o["status"],
                         "total_cents": o["totals"]["total_cents"], "lines": len(o["items"]),
                         "created_at": o["created_at"]})
        self.send_json(200, {"customer_id": cid, "orders": rows, "next_cursor": None})

    def create_order(self, req):
        tp = self.tp()
        lines = req.get("lines", [])
        r = self.inventory.request("POST", "/reservations", headers={"traceparent": tp}, body={"lines": lines})
        if r.status != 201:
            return self.send_json(409 if r.status == 409 else 502, {"error": "reservation_failed", "upstream_status": r.status})
        reservation = json.loads(r.body)
        amount = sum(int(l.get("qty", 1)) * int(l.get("unit_price_cents", 0)) for l in lines)
        charge = {"amount_cents": amount, "currency": "EUR", "customer_id": req.get("customer_id", 1000),
                  "reservation_id": reservation["reservation_id"], "payment_method": req.get("payment_method")}
        # retry once on a retryable answer (503, 429), after a short pause
        for attempt in range(2):
            status, body, _ = urllib_call("payments", "POST", "/charges", charge,
                                          {"traceparent": self.tp(), "Idempotency-Key": reservation["reservation_id"]})
            if status not in (429, 503) or attempt == 1:
                break
            time.sleep(0.05)
        if status != 201:
            return self.send_json(502, {"error": "payment_failed", "upstream_status": status})
        oid = random.randint(100000, 999999)
        order = {"id": oid, "uuid": str(uuid.uuid4()), "status": "paid", "customer_id": charge["customer_id"],
                 "lines": lines, "amount_cents": amount, "payment": json.loads(body), "reservation": reservation}
        self.fire.submit(self.notify, oid, charge["customer_id"], child_traceparent(tp))
        self.send_json(201, order, {"Location": "/orders/%d" % oid})

    @staticmethod
    def notify(oid, cid, tp):
        """Fire-and-forget: new connection, read the status line only, ignore the body."""
        host, port, hostname = peer("notifications")
        conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
        try:
            body = json.dumps({"template": "order_confirmation", "order_id": oid, "customer_id": cid,
                               "channels": ["email", "push"]}).encode()
            hdrs = {"Host": hostname, "Content-Type": "application/json", "Connection": "close"}
            if tp:
                hdrs["traceparent"] = tp
            conn.request("POST", "/notifications", body=body, headers=hdrs)
            conn.getresponse().status  # noqa: B018 - status only, body ignored
        except (http.client.HTTPException, OSError):
            pass
        finally:
            conn.close()


def main():
    host, port = sys.argv[2], int(sys.argv[3])
    handler = {"orders": Orders, "inventory": Inventory, "payments": Payments,
               "users": Users, "notifications": Notifications, "fraud": Fraud}[ROLE]
    if handler is Orders:
        Orders.inventory = upstream("inventory")
        Orders.users = upstream("users")
    ThreadingHTTPServer.request_queue_size = 128
    ThreadingHTTPServer.daemon_threads = True
    if handler is Fraud:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.environ["FRAUD_CERT"], os.environ["FRAUD_KEY"])
        TLSServer.ssl_context = ctx
        srv = TLSServer((host, port), handler)
        return srv.serve_forever()
    srv = ThreadingHTTPServer((host, port), handler)
    srv.serve_forever()


if __name__ == "__main__":
    main()
