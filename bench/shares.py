#!/usr/bin/env python3
"""How evenly each strategy splits a source's contacts, measured on a running server.

    python3 bench/shares.py --url http://127.0.0.1:8000 --contacts 10000 --weights 1 2 3 4

For each strategy: a new source with that strategy and operators linked with the weights (max_load too large
to reach), N contacts posted by a few concurrent clients, then, in assignment order (contact id; on SQLite
the order the one writer committed them), the largest |count − n × weight / Σ weights| over the operators
after any assignment, and the final shares. Use a fresh database: it creates operators and sources.
"""

import argparse
import http.client
import json
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

STRATEGIES = ["weighted_random", "smooth_weighted", "least_loaded"]


class Client:
    """One keep-alive connection per thread."""

    local = threading.local()

    def __init__(self, url):
        self.url = urllib.parse.urlsplit(url)

    def call(self, method, path, body=None):
        connection = getattr(self.local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=30)
            self.local.connection = connection
        payload = None if body is None else json.dumps(body)
        headers = {"Content-Type": "application/json"} if payload else {}
        connection.request(method, path, payload, headers)
        response = connection.getresponse()
        data = response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:200]!r}")
        return json.loads(data) if data else None


def measure(client, strategy, weights, contacts, clients, run):
    source = client.call("POST", "/sources/", {"name": f"{strategy} {run}", "strategy": strategy})["id"]
    operators = []
    for i, weight in enumerate(weights):
        operator = client.call("POST", "/operators/", {"name": f"{strategy} {run} #{i + 1}", "max_load": 1_000_000})
        client.call("POST", f"/sources/{source}/operators", {"operator_id": operator["id"], "weight": weight})
        operators.append(operator["id"])
    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        answers = list(pool.map(lambda _: client.call("POST", "/contacts/", {"source_id": source}), range(contacts)))
    seconds = time.monotonic() - started
    assigned = sorted((a["id"], a["operator_id"]) for a in answers)
    total = sum(weights)
    counts = dict.fromkeys(operators, 0)
    largest = 0.0
    for n, (_, operator_id) in enumerate(assigned, start=1):
        counts[operator_id] += 1
        largest = max(largest, max(abs(counts[o] - n * w / total) for o, w in zip(operators, weights)))
    shares = " / ".join(f"{counts[o] / contacts:.4f}" for o in operators)
    targets = " / ".join(f"{w / total:.4f}" for w in weights)
    print(f"{strategy:16} largest deviation {largest:7.3f} contacts; final shares {shares} "
          f"(target {targets}); counts {[counts[o] for o in operators]}; {contacts / seconds:.0f} contacts/s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--weights", type=float, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--strategies", nargs="+", default=STRATEGIES)
    args = parser.parse_args()
    client = Client(args.url)
    run = int(time.time())
    for strategy in args.strategies:
        measure(client, strategy, args.weights, args.contacts, args.clients, run)


if __name__ == "__main__":
    main()
