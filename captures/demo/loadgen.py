#!/usr/bin/env python3
"""Bounded load generator for the linkrank demo (standard library only).

    loadgen.py GATEWAY_IP PORT SECONDS MAX_REQUESTS [RATE_SCALE]

Worker threads send a deterministic mix of routes to the gateway, paced to a
few requests per second each, and stop at SECONDS or MAX_REQUESTS, whichever
comes first. Most workers keep one connection open (a browser/SDK); the
"legacy" worker opens a new connection per request and sends Connection: close.
Every request carries fake credentials (Bearer token, session cookie) and some
a ?token= query, so privacy handling can be tested. Trace ids are made here,
at the edge (W3C traceparent); health checks carry none.
"""
import http.client
import json
import random
import sys
import threading
import time

GW, PORT = sys.argv[1], int(sys.argv[2])
SECONDS, MAX_REQ = float(sys.argv[3]), int(sys.argv[4])
# multiplies every worker's pace (the benchmark's larger captures); 1 for the demo
RATE_SCALE = float(sys.argv[5]) if len(sys.argv) > 5 else 1.0
HOST = "shop.example.test"
# Fake secrets: they only exist so that privacy handling can be tested.
BEARER = "Bearer eyJhbGciOiJIUzI1NiJ9.ZGVtby11c2Vy.ZmFrZS1zaWduYXR1cmU"
COOKIE = "session=demo-sess-8c1f02; csrftoken=demo-csrf-47aa"
TOKENQ = "token=demo-query-secret-19"

SKUS = [("SKU-10042", 2399), ("SKU-10057", 4599), ("SKU-10311", 1899), ("SKU-10420", 599),
        ("SKU-11007", 12900), ("SKU-11230", 1499), ("SKU-12001", 2199), ("SKU-12116", 1799)]

lock = threading.Lock()
sent = 0
stats = {}
deadline = time.monotonic() + SECONDS


def take():
    global sent
    with lock:
        if sent >= MAX_REQ or time.monotonic() >= deadline:
            return False
        sent += 1
        return True


def pick(rng):
    r = rng.random()
    tq = "?" + TOKENQ
    if r < 0.28:
        oid = rng.randint(1000, 1400)
        return "GET", "/api/orders/%d" % oid + (tq if rng.random() < 0.2 else ""), None, {}
    if r < 0.42:
        return "GET", "/api/orders/%d/details" % rng.randint(1000, 1400), None, {}
    if r < 0.62:
        lines = []
        for k in range(rng.randint(1, 4)):
            sku, price = rng.choice(SKUS)
            lines.append({"sku": sku, "qty": rng.randint(1, 4), "unit_price_cents": price})
        body = {"customer_id": rng.randint(1000, 1999), "lines": lines, "payment_method": "pm_card_visa_fake",
                "shipping": {"method": rng.choice(["standard", "express"]), "address_id": rng.randint(1, 9999)},
                "coupon": rng.choice([None, "SPRING10"])}
        return "POST", "/api/orders", body, {}
    if r < 0.72:
        q = "?customer_id=%d" % rng.randint(1000, 1999) + ("&" + TOKENQ if rng.random() < 0.5 else "")
        return "GET", "/api/orders" + q, None, {}
    if r < 0.84:
        return "GET", "/api/users/%d" % rng.choice([rng.randint(1000, 1999), 7001]), None, {}
    if r < 0.96:
        gz = rng.random() < 0.35
        return "GET", "/api/catalog?page=%d" % rng.randint(1, 12), None, ({"Accept-Encoding": "gzip"} if gz else {})
    return "GET", "/healthz", None, {"_notrace": True}


def worker(idx, rate, keepalive):
    rng = random.Random(1000 + idx)
    conn = None
    period = 1.0 / rate
    nxt = time.monotonic()
    while take():
        method, path, body, extra = pick(rng)
        hdrs = {"Host": HOST, "Accept": "application/json", "User-Agent": "demo-shop-web/5.2 (loadgen)",
                "Authorization": BEARER, "Cookie": COOKIE}
        if not extra.pop("_notrace", False):
            hdrs["traceparent"] = "00-%032x-%016x-01" % (rng.getrandbits(128), rng.getrandbits(64))
        hdrs.update(extra)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        if not keepalive:
            hdrs["Connection"] = "close"
        for attempt in range(2):
            if conn is None:
                conn = http.client.HTTPConnection(GW, PORT, timeout=10)
            try:
                conn.request(method, path, body=data, headers=hdrs)
                resp = conn.getresponse()
                resp.read()
                code = resp.status
                if resp.will_close or not keepalive:
                    conn.close()
                    conn = None
                break
            except (http.client.HTTPException, OSError):
                conn.close()
                conn = None
                code = "err"
        with lock:
            stats[str(code)] = stats.get(str(code), 0) + 1
        # pacing with jitter; sessions occasionally end and reconnect
        if keepalive and conn is not None and rng.random() < 0.03:
            conn.close()
            conn = None
        nxt += period * rng.uniform(0.5, 1.5)
        pause = nxt - time.monotonic()
        if pause > 0:
            time.sleep(min(pause, 2.0))
    if conn is not None:
        conn.close()


def main():
    threads = [threading.Thread(target=worker, args=(i, 4.0 * RATE_SCALE, True)) for i in range(6)]
    threads.append(threading.Thread(target=worker, args=(99, 2.0 * RATE_SCALE, False)))  # the legacy client
    for t in threads:
        t.start()
    for t in threads:
        t.join(SECONDS + 30)
    print("loadgen: %d requests, status counts %s" % (sent, json.dumps(stats, sort_keys=True)))


if __name__ == "__main__":
    main()
