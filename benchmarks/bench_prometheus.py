"""Benchmark: the Prometheus collector on a generated mesh held by real PromQL engines.

Generates the mesh (meshobs.demo.scale), loads it into a loopback Prometheus (promtool backfill)
and a loopback VictoriaMetrics (Prometheus text import), then builds the snapshot (fetch +
normalize + assemble) several times per engine and mode, and compares our wall time with the time
the engine itself spent answering the queries we sent (its own request-duration counters for
/api/v1/query and /api/v1/query_range, read before and after each run):

* mesh-wide, default concurrency (``snapshot``, ``--all``, the dashboard);
* mesh-wide, one query at a time: wall time minus server time is then meshobs's own overhead
  (with concurrent queries the server's time adds up overlapping requests);
* scoped, as ``diagnose SERVICE`` collects: the graph phase (edge keys, mesh-wide), then the
  scoped phase narrowed to one service's neighbourhood (its callers' and its callees' edges).

Also measured once per engine, for reference: the bucket query meshobs sent before it asked the
server for quantiles (server time and bytes).

    .venv/bin/python benchmarks/bench_prometheus.py [--services 1000] [--runs 5]
        [--engines prometheus,victoriametrics]

Writes benchmarks/results/prometheus.json and prometheus.md. The machine is shared: numbers are
noisy; compare the medians and ratios of one run, not figures across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from meshobs.assemble import assemble
from meshobs.collectors import prometheus as prom
from meshobs.collectors.base import FetchContext, NormalizeContext, Scope
from meshobs.config import validate
from meshobs.demo.prometheus import openmetrics
from meshobs.demo.promserver import PrometheusServer, prometheus_available, start_prometheus
from meshobs.demo.scale import generated_traffic
from meshobs.demo.vmserver import start_victoriametrics, victoriametrics_available
from meshobs.model import ServiceRef, SnapshotPart
from meshobs.raw import RawSource

RESULTS = Path(__file__).resolve().parent / "results"
T = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
WINDOW = 300.0
# The latency query meshobs sent before the server computed quantiles: every bucket series.
BUCKET_QUERY = ("sum by (le, reporter, source_workload, source_workload_namespace, destination_service_name, "
                "destination_service_namespace, destination_workload, destination_workload_namespace, "
                "request_protocol) (rate(istio_request_duration_milliseconds_bucket[5m]))")


def server_time(srv: PrometheusServer) -> tuple[float, float]:
    """(seconds the server spent answering /api/v1/query and /api/v1/query_range, requests
    answered) so far, from its own /metrics."""
    if srv.engine == "victoriametrics":
        time.sleep(1.2)  # its counters show up in /metrics about a second late
    seconds = count = 0.0
    for line in requests.get(f"{srv.url}/metrics", timeout=30).text.splitlines():
        value = line.rsplit(" ", 1)[-1]
        if srv.engine == "prometheus":
            handler = any(f'handler="{h}"' in line for h in ("/api/v1/query", "/api/v1/query_range"))
            if handler and line.startswith("prometheus_http_request_duration_seconds_sum{"):
                seconds += float(value)
            elif handler and line.startswith("prometheus_http_request_duration_seconds_count{"):
                count += float(value)
        else:
            path = any(f'path="{h}"' in line for h in ("/api/v1/query", "/api/v1/query_range"))
            if path and line.startswith("vm_request_duration_seconds_sum{"):
                seconds += float(value)
            elif path and line.startswith("vm_http_requests_total{"):
                count += float(value)
    return seconds, count


def _collector(srv: PrometheusServer, concurrency: int) -> tuple[prom.PrometheusCollector, Any]:
    config = validate({"sources": {"prometheus": {"url": srv.url, "timeout": "120s", "concurrency": concurrency}}})
    collector = prom.from_config(config, [])
    assert collector is not None
    return collector, config


def _snapshot(raw: RawSource) -> tuple[SnapshotPart, float, float, int]:
    t0 = time.perf_counter()
    part = prom.normalize(raw, NormalizeContext(time=T, window_s=WINDOW))
    t1 = time.perf_counter()
    snapshot = assemble(part, time=T, window_s=WINDOW, origin="bench")
    return part, t1 - t0, time.perf_counter() - t1, len(snapshot.edges)


def neighbourhood(part: SnapshotPart, target: ServiceRef) -> Scope:
    """What a diagnosis of ``target`` reads: the target, its callers (their workloads) and its
    callees three hops down -- the orchestrator computes its own; this is its shape."""
    services, workloads = {target}, set()
    frontier = {target}
    for _depth in range(3):
        nxt: set[ServiceRef] = set()
        for e in part.edges:
            if e.source_service in frontier and e.destination not in services:
                nxt.add(e.destination)
        services |= nxt
        frontier = nxt
    for e in part.edges:
        if e.destination == target:
            workloads.add(e.source)
        if e.destination_workload is not None and e.destination in services:
            workloads.add(e.destination_workload)
    return Scope(target=target, services=frozenset(services), workloads=frozenset(workloads))


def pick_target(part: SnapshotPart) -> ServiceRef:
    """A service in the middle of the call graph: called by others, calling others."""
    inbound: dict[ServiceRef, int] = {}
    for e in part.edges:
        inbound[e.destination] = inbound.get(e.destination, 0) + 1
    callers = {e.source_service for e in part.edges}
    ranked = sorted((n, ref) for ref, n in inbound.items() if ref in callers and not ref.is_unknown)
    return ranked[len(ranked) // 2][1]


def run_mode(srv: PrometheusServer, mode: str, runs: int, scope: Scope | None) -> list[dict[str, Any]]:
    concurrency = 1 if mode == "mesh-wide, one query at a time" else 4
    collector, config = _collector(srv, concurrency)
    out = []
    for _ in range(runs):
        server0, count0 = server_time(srv)
        t0 = time.perf_counter()
        if scope is None:
            (raw,) = collector.fetch(FetchContext(time=T, window_s=WINDOW, config=config))
        else:
            (raw,) = collector.fetch(FetchContext(time=T, window_s=WINDOW, config=config, phase="graph"))
            (scoped,) = collector.fetch(FetchContext(time=T, window_s=WINDOW, config=config,
                                                     phase="scoped", scope=scope))
            raw.payloads.extend(scoped.payloads)
        fetch_s = time.perf_counter() - t0
        part, normalize_s, assemble_s, edges = _snapshot(raw)
        wall = time.perf_counter() - t0
        server1, count1 = server_time(srv)
        # A query the server could not answer in time is recorded, not hidden: the run's
        # numbers then describe a partial snapshot.
        failed = [p.key for p in raw.payloads if p.error]
        out.append({"failed": failed, "wall_s": wall, "fetch_s": fetch_s, "normalize_s": normalize_s,
                    "assemble_s": assemble_s,
                    "server_s": server1 - server0, "server_queries": count1 - count0,
                    "payloads": len(raw.payloads), "edges": edges,
                    "edges_with_latency": sum(1 for e in part.edges if e.latency is not None),
                    "response_bytes": sum(len(p.body or "") for p in raw.payloads)})
        # A new collector per run would re-check the recording rules: keep the per-run cost honest.
        collector._rules.clear()
    return out


def bucket_reference(srv: PrometheusServer) -> dict[str, float]:
    """The old latency query, once: what the server spent and sent."""
    server0, _ = server_time(srv)
    t0 = time.perf_counter()
    body = requests.get(f"{srv.url}/api/v1/query", params={"query": BUCKET_QUERY, "time": T.timestamp()},
                        timeout=300).content
    wall = time.perf_counter() - t0
    server1, _ = server_time(srv)
    series = len(json.loads(body)["data"]["result"])
    return {"server_s": round(server1 - server0, 3), "wall_s": round(wall, 3), "bytes": len(body), "series": series}


def _version(srv: PrometheusServer) -> str:
    """The engine's version, from its own build-info metric."""
    import re

    text = requests.get(f"{srv.url}/metrics", timeout=30).text
    for metric in ("prometheus_build_info{", "vm_app_version{"):
        for line in text.splitlines():
            if line.startswith(metric) and (m := re.search(r'[{,]\s*(?:short_)?version="([^"]+)"', line)):
                return m.group(1)
    # Debian's victoria-metrics build leaves its version label empty: ask the package.
    import subprocess

    done = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "victoria-metrics"],
                          capture_output=True, text=True, check=False)
    return f"{done.stdout.strip()} (Debian package)" if done.returncode == 0 else "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--engines", default="prometheus,victoriametrics")
    args = parser.parse_args()
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    starters: dict[str, tuple[Callable[[], bool], Callable[..., PrometheusServer]]] = {
        "prometheus": (prometheus_available, start_prometheus),
        "victoriametrics": (victoriametrics_available, start_victoriametrics),
    }
    for engine in engines:
        if not starters[engine][0]():
            print(f"{engine} not installed (scripts/test.sh installs it)", file=sys.stderr)
            return 2

    load_before = os.getloadavg()
    traffic = generated_traffic(args.services)
    # Three samples per series (window start, middle, end) keep the load small while rate()
    # over the window stays exact.
    text = openmetrics(traffic, T, WINDOW, step_s=WINDOW / 2, history_s=WINDOW)
    samples = text.count("\n") - text.count("# ")
    results: dict[str, Any] = {}
    for engine in engines:
        with tempfile.TemporaryDirectory(prefix=f"bench-{engine}-") as tmp:
            t0 = time.perf_counter()
            server = starters[engine][1](text, Path(tmp))
            load_s = time.perf_counter() - t0
            with server:
                warm, config = _collector(server, 4)
                (raw,) = warm.fetch(FetchContext(time=T, window_s=WINDOW, config=config))  # warm-up
                part = prom.normalize(raw, NormalizeContext(time=T, window_s=WINDOW))
                target = pick_target(part)
                scope = neighbourhood(part, target)
                modes: dict[str, Any] = {}
                for mode, sc in (("mesh-wide", None), ("mesh-wide, one query at a time", None),
                                 ("scoped", scope)):
                    runs = run_mode(server, mode, args.runs, sc)
                    modes[mode] = summarise(runs)
                results[engine] = {"version": _version(server), "load_s": round(load_s, 1),
                                   "target": str(target), "neighbourhood_services": len(scope.services),
                                   "neighbourhood_workloads": len(scope.workloads),
                                   "bucket_query_reference": bucket_reference(server), "modes": modes}
        print(json.dumps({engine: {k: v for k, v in results[engine].items() if k != "modes"}}), flush=True)

    result = {
        "benchmark": "prometheus collector: fetch + normalize + assemble against real PromQL engines",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
                   f"shared by other jobs (noisy)",
        "load_average_1m_before_after": [round(load_before[0], 1), round(os.getloadavg()[0], 1)],
        "services": args.services, "edges_generated": len(traffic), "samples_loaded": samples,
        "openmetrics_mb": round(len(text) / 1e6, 1), "runs": args.runs, "engines": results,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "prometheus.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (RESULTS / "prometheus.md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))
    return 0


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def med(key: str) -> float:
        return float(statistics.median(r[key] for r in runs))

    return {
        "median_wall_s": round(med("wall_s"), 3), "median_fetch_s": round(med("fetch_s"), 3),
        "median_normalize_s": round(med("normalize_s"), 3), "median_assemble_s": round(med("assemble_s"), 3),
        "median_server_s": round(med("server_s"), 3),
        "ratio_wall_to_server": round(med("wall_s") / med("server_s"), 2) if med("server_s") else None,
        "queries_seen_by_server": med("server_queries"), "payloads": runs[-1]["payloads"],
        "response_mb": round(med("response_bytes") / 1e6, 2), "edges": runs[-1]["edges"],
        "edges_with_latency": runs[-1]["edges_with_latency"],
        "runs_with_failed_queries": sum(1 for r in runs if r["failed"]), "all_runs": runs,
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Prometheus collector benchmark", "",
        f"{result['date']}, {result['machine']}; 1-minute load average "
        f"{result['load_average_1m_before_after'][0]} before, {result['load_average_1m_before_after'][1]} after "
        f"(2 cores: the numbers are noisy, a quiet run will differ). "
        f"A generated mesh of {result['services']} services "
        f"({result['edges_generated']} edges, {result['samples_loaded']} samples, "
        f"{result['openmetrics_mb']} MB of OpenMetrics) loaded into each engine on loopback; "
        f"median of {result['runs']} runs per mode. Wall = fetch + normalize + assemble; server = the "
        "engine's own time answering /api/v1/query and /api/v1/query_range (its request-duration "
        "counters). With concurrent queries the server time adds up overlapping requests, so the "
        "one-at-a-time row is the one that isolates meshobs's own overhead.", "",
        "| engine | mode | queries | wall s | server s | wall / server | MB received | edges (with latency) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for engine, r in result["engines"].items():
        for mode, m in r["modes"].items():
            n_failed = m["runs_with_failed_queries"]
            failed = f" ({n_failed} runs with a failed query)" if n_failed else ""
            lines.append(f"| {engine} | {mode}{failed} | {m['queries_seen_by_server']:g} | {m['median_wall_s']} | "
                         f"{m['median_server_s']} | {m['ratio_wall_to_server']} | {m['response_mb']} | "
                         f"{m['edges']} ({m['edges_with_latency']}) |")
    lines += ["", "Where meshobs's time goes (median seconds, mesh-wide at default concurrency):", "",
              "| engine | fetch | normalize | assemble |", "|---|---|---|---|"]
    for engine, r in result["engines"].items():
        m = r["modes"]["mesh-wide"]
        lines.append(f"| {engine} | {m['median_fetch_s']} | {m['median_normalize_s']} | {m['median_assemble_s']} |")
    lines += ["", "Scoped: the neighbourhood of one service "
              + "; ".join(f"{e}: {r['target']} ({r['neighbourhood_services']} services, "
                          f"{r['neighbourhood_workloads']} workloads)" for e, r in result["engines"].items())
              + ". The graph phase reads who calls whom mesh-wide (edge keys only); request rates, "
              "latency, TCP and history only for the edges touching the neighbourhood.", "",
              "For reference, the bucket query meshobs sent before the server computed quantiles "
              "(one query, same run):", "",
              "| engine | series | MB | server s |", "|---|---|---|---|"]
    for engine, r in result["engines"].items():
        b = r["bucket_query_reference"]
        lines.append(f"| {engine} | {b['series']} | {round(b['bytes'] / 1e6, 1)} | {b['server_s']} |")
    lines += ["", "Engines: " + "; ".join(f"{e} {r['version']} (load {r['load_s']} s)"
                                          for e, r in result["engines"].items()) + ".",
              "Regenerate with `.venv/bin/python benchmarks/bench_prometheus.py`.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
