#!/usr/bin/env python3
"""Write a synthetic gateway-log corpus for benches/side_by_side.sh.

Mostly benign nginx, envoy and Kong lines (as real logs are), with one line in
twenty taken from the labeled evaluation set (planted synthetic PHI and secrets).
Usage: gen_corpus.py OUT_FILE SIZE_MB
"""
import json
import os
import random
import sys

R = random.Random(7)
HERE = os.path.dirname(os.path.abspath(__file__))
planted = [json.loads(l)["line"] for l in open(os.path.join(HERE, "..", "fixtures", "eval", "labeled.jsonl"))]

PATHS = ["/api/v1/items", "/fhir/Observation", "/fhir/metadata", "/health", "/static/app.js", "/api/v2/orders",
         "/fhir/Encounter/_search", "/login", "/api/v1/catalog/search", "/images/logo.png"]
UA = ["curl/8.5.0", "okhttp/4.12.0", "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
      "python-requests/2.31.0", "Go-http-client/1.1"]


def hexid(n):
    return "".join(R.choice("0123456789abcdef") for _ in range(n))


def ip():
    return f"10.{R.randint(0, 255)}.{R.randint(0, 255)}.{R.randint(1, 254)}"


def target():
    p = R.choice(PATHS)
    if R.random() < 0.5:
        p += f"?page={R.randint(1, 50)}&_count={R.choice([10, 20, 50])}&ts=2024-01-15T10:{R.randint(10, 59)}:00Z"
    return p


def benign():
    c = R.randrange(3)
    m = R.choice(["GET", "GET", "GET", "POST"])
    if c == 0:
        return (f'{ip()} - - [15/Jan/2024:10:22:{R.randint(10, 59)} +0000] "{m} {target()} HTTP/1.1" '
                f'{R.choice([200, 200, 304, 404])} {R.randint(100, 99999)} "-" "{R.choice(UA)}"')
    if c == 1:
        return (f'[2024-01-15T10:22:31.{R.randint(100, 999)}Z] "{m} {target()} HTTP/1.1" 200 - 0 '
                f'{R.randint(100, 9999)} {R.randint(1, 99)} {R.randint(1, 99)} "-" "{R.choice(UA)}" '
                f'"{hexid(8)}-{hexid(4)}-{hexid(4)}-{hexid(4)}-{hexid(12)}" "api.example" "10.0.3.7:8080"')
    rec = {"request": {"method": m, "uri": target(), "size": R.randint(100, 999),
                       "headers": {"host": "api.example", "user-agent": R.choice(UA), "x-request-id": hexid(32)}},
           "response": {"status": 200, "size": R.randint(100, 9999)},
           "latencies": {"request": R.randint(1, 500), "kong": R.randint(0, 9), "proxy": R.randint(1, 490)},
           "client_ip": ip(), "started_at": 1705314151000 + R.randint(0, 999999)}
    return json.dumps(rec)


def main():
    out, size = sys.argv[1], int(sys.argv[2]) * 1024 * 1024
    written = 0
    with open(out, "w") as f:
        while written < size:
            line = R.choice(planted) if R.random() < 0.05 else benign()
            f.write(line + "\n")
            written += len(line) + 1


main()
