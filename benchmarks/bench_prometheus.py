"""Benchmark: the Prometheus collector on a 1,000-service mesh held by a real Prometheus.

Generates the mesh (meshobs.demo.scale), backfills a loopback Prometheus with promtool, then
builds the snapshot (fetch + normalize + assemble) several times and compares our wall time
with the time Prometheus itself spent answering (the server's own
``prometheus_http_request_duration_seconds_sum`` for /api/v1/query and /api/v1/query_range, and the engine's
``prometheus_engine_query_duration_seconds_sum``, read from its /metrics before and after).

    .venv/bin/python benchmarks/bench_prometheus.py [--services 1000] [--runs 5]

Writes benchmarks/results/prometheus.json and prometheus.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

from meshobs.assemble import assemble
from meshobs.collectors import prometheus as prom
from meshobs.collectors.base import FetchContext, NormalizeContext
from meshobs.collectors.promql import QUERIES, RANGE_QUERIES
from meshobs.config import validate
from meshobs.demo.prometheus import openmetrics
from meshobs.demo.promserver import prometheus_available, start_prometheus
from meshobs.demo.scale import generated_traffic

RESULTS = Path(__file__).resolve().parent / "results"
T = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
WINDOW = 300.0


def server_seconds(url: str) -> tuple[float, float, float]:
    """(HTTP time answering queries, engine query time, number of queries) so far: both the
    instant (/api/v1/query) and the range (/api/v1/query_range) handlers."""
    http = engine = count = 0.0
    handlers = ('handler="/api/v1/query"', 'handler="/api/v1/query_range"')
    for line in requests.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("prometheus_http_request_duration_seconds_sum{") and any(h in line for h in handlers):
            http += float(line.rsplit(" ", 1)[1])
        elif line.startswith("prometheus_http_request_duration_seconds_count{") and \
                any(h in line for h in handlers):
            count += float(line.rsplit(" ", 1)[1])
        elif line.startswith("prometheus_engine_query_duration_seconds_sum{"):
            engine += float(line.rsplit(" ", 1)[1])
    return http, engine, count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not prometheus_available():
        print("prometheus/promtool not installed", file=sys.stderr)
        return 2

    traffic = generated_traffic(args.services)
    t0 = time.perf_counter()
    # Three samples per series (window start, middle, end) keep the backfill small while
    # rate() over the window stays exact.
    text = openmetrics(traffic, T, WINDOW, step_s=WINDOW / 2, history_s=WINDOW)
    render_s = time.perf_counter() - t0
    samples = text.count("\n") - text.count("# ")
    text_mb = len(text) / 1e6
    with tempfile.TemporaryDirectory(prefix="bench-prom-") as tmp:
        t0 = time.perf_counter()
        server = start_prometheus(text, Path(tmp))
        del text
        start_s = time.perf_counter() - t0
        with server:
            config = validate({"sources": {"prometheus": {"url": server.url, "timeout": "60s"}}})
            collector = prom.from_config(config, [])
            assert collector is not None
            ctx = FetchContext(time=T, window_s=WINDOW, config=config)
            runs = []
            collector.fetch(ctx)  # warm-up: first queries load the blocks' index into memory
            for _ in range(args.runs):
                http0, engine0, count0 = server_seconds(server.url)
                t0 = time.perf_counter()
                (raw,) = collector.fetch(ctx)
                t1 = time.perf_counter()
                part = prom.normalize(raw, NormalizeContext(time=T, window_s=WINDOW))
                t2 = time.perf_counter()
                snapshot = assemble(part, time=T, window_s=WINDOW, origin="bench")
                t3 = time.perf_counter()
                http1, engine1, count1 = server_seconds(server.url)
                assert part.sources[0].ok, part.sources[0].message
                runs.append({"wall_s": t3 - t0, "fetch_s": t1 - t0, "normalize_s": t2 - t1,
                             "assemble_s": t3 - t2, "prometheus_http_s": http1 - http0,
                             "prometheus_engine_s": engine1 - engine0, "queries": count1 - count0,
                             "edges": len(snapshot.edges), "services": len(snapshot.services),
                             "workloads": len(snapshot.workloads),
                             "response_bytes": sum(len(p.body or "") for p in raw.payloads)})

    def med(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    result = {
        "benchmark": "prometheus collector: fetch + normalize + assemble of a generated mesh",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
        "prometheus": "2.42 (loopback, backfilled with promtool)",
        "services": args.services, "edges_generated": len(traffic), "samples_backfilled": samples,
        "openmetrics_mb": round(text_mb, 1), "render_s": round(render_s, 2),
        "backfill_and_start_s": round(start_s, 2), "runs": args.runs,
        "promql_queries_per_snapshot": len(QUERIES) + len(RANGE_QUERIES),
        "instant_queries": len(QUERIES), "range_queries": len(RANGE_QUERIES),
        "queries_seen_by_server_per_snapshot": med("queries"),
        "median_wall_s": round(med("wall_s"), 3),
        "median_fetch_s": round(med("fetch_s"), 3),
        "median_normalize_s": round(med("normalize_s"), 3),
        "median_assemble_s": round(med("assemble_s"), 3),
        "median_prometheus_http_s": round(med("prometheus_http_s"), 3),
        "median_prometheus_engine_s": round(med("prometheus_engine_s"), 3),
        "overhead_ratio": round(med("wall_s") / med("prometheus_http_s"), 2),
        "edges": runs[-1]["edges"], "snapshot_services": runs[-1]["services"],
        "snapshot_workloads": runs[-1]["workloads"],
        "response_mb": round(runs[-1]["response_bytes"] / 1e6, 1),
        "all_runs": runs,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "prometheus.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (RESULTS / "prometheus.md").write_text(f"""# Prometheus collector benchmark

{result['date']}, {result['machine']}, Prometheus {result['prometheus']}.

A generated mesh of {args.services} services ({len(traffic)} edges, {samples} samples backfilled)
read with **{len(QUERIES) + len(RANGE_QUERIES)} PromQL queries** per snapshot ({len(QUERIES)} instant
for the edges, {len(RANGE_QUERIES)} range for the per-service history; the server saw
{result['queries_seen_by_server_per_snapshot']:g}); median of {args.runs} runs:

| step | seconds |
|---|---|
| snapshot wall time (fetch + normalize + assemble) | {result['median_wall_s']} |
| fetch (HTTP round trips incl. JSON decoding) | {result['median_fetch_s']} |
| normalize | {result['median_normalize_s']} |
| assemble | {result['median_assemble_s']} |
| Prometheus answering the queries (server-side, both handlers) | {result['median_prometheus_http_s']} |
| of which PromQL engine | {result['median_prometheus_engine_s']} |

Overhead ratio (our wall time / Prometheus's own answering time): **{result['overhead_ratio']}**.
Result: {result['edges']} edges, {result['snapshot_services']} services,
{result['snapshot_workloads']} workloads; {result['response_mb']} MB of query results.
Regenerate with `.venv/bin/python benchmarks/bench_prometheus.py`.
""", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "all_runs"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
