"""Benchmark: the client CPU of one ``http_get`` through requests vs straight through urllib3
(``BoundedSession.get_plain``), alternated, against the demo's loopback server (HTTP/1.0, a
connection per request, as the served demo mesh's Envoy gateway answers).

    .venv/bin/python benchmarks/http_get_cost.py [ROUNDS] [REQUESTS]

The calling thread's CPU (``RUSAGE_THREAD``: the server's threads are not counted) per request,
for a config dump-sized answer and for a /stats request with the stats filter (a 1.2 KB query).
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
import time

import requests

from meshobs.collectors.envoy.fetch import ENDPOINTS
from meshobs.collectors.http import bounded_session, http_get
from meshobs.demo.httpserver import LoopbackHTTPServer, Response

BODY = "x" * 21_000  # a config dump of the 5,000-service demo: 21 KB on average


def thread_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    server = LoopbackHTTPServer(lambda _request: Response(200, BODY)).start()
    ways = {"requests": requests.Session(), "plain": bounded_session(pool_size=32)}
    asks = {"config_dump": ("/config_dump", None), "stats": ENDPOINTS["stats"]}
    results: dict[tuple[str, str], list[float]] = {}
    try:
        for r in range(rounds):
            for way in (("requests", "plain") if r % 2 == 0 else ("plain", "requests")):
                for what, (path, params) in asks.items():
                    session = ways[way]
                    start = thread_cpu()
                    for i in range(n):
                        http_get(session, f"{server.url}/ns/p-{i}{path}", what, params=params or None, timeout_s=5)
                    results.setdefault((way, what), []).append((thread_cpu() - start) / n * 1000)
    finally:
        server.stop()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{rounds} rounds x {n} requests, load average {load} at {time.strftime('%H:%M')}")
    print("| request | requests (ms CPU) | plain (ms CPU) | plain/requests |\n|---|---|---|---|")
    for what in asks:
        a, b = statistics.median(results[("requests", what)]), statistics.median(results[("plain", what)])
        print(f"| {what} | {a:.3f} | {b:.3f} | {b / a:.2f} |")


if __name__ == "__main__":
    main()
