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
  scoped phase narrowed to one service's neighbourhood (its callers' and its callees' edges);
* scoped against a second server of the same engine holding the same mesh plus meshobs's edge
  recording rules (evaluated over the loaded span as ``demo serve --recording-rules edges``
  does: promtool for Prometheus, vmalert for VictoriaMetrics), whose graph phase then reads the
  edge-level recorded series: the server answers faster, so the ratio is harder.

Each run also records meshobs's CPU (user+sys of this process) next to its wall time. With
``--compare TREE`` (a source tree of meshobs, e.g. an archive of main) the scoped modes alternate
run by run between this tree's collector and that tree's, each in a warm worker process of its
own against the same server, and record whether both built the same snapshot (a digest of its
edges, nodes and source status).

Also measured once per engine, for reference: the bucket query meshobs sent before it asked the
server for quantiles (server time and bytes).

    .venv/bin/python benchmarks/bench_prometheus.py [--services 1000] [--runs 5]
        [--engines prometheus,victoriametrics] [--modes scoped,scoped-rules] [--compare TREE]

Writes benchmarks/results/prometheus.json and prometheus.md. The machine is shared: numbers are
noisy; compare the medians and ratios of one run, not figures across runs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
import yaml

from meshobs.assemble import assemble
from meshobs.collect import merge_phases
from meshobs.collectors import prometheus as prom
from meshobs.collectors.base import FetchContext, NormalizeContext, Scope
from meshobs.collectors.prometheus.rules import EDGES_GROUP, groups
from meshobs.config import validate
from meshobs.demo.prometheus import openmetrics
from meshobs.demo.promserver import PrometheusServer, prometheus_available, start_prometheus
from meshobs.demo.scale import generated_traffic
from meshobs.demo.vmserver import start_victoriametrics, victoriametrics_available
from meshobs.gc_pause import gc_paused
from meshobs.model import ServiceRef, SnapshotPart, WorkloadRef
from meshobs.raw import RawSource

RESULTS = Path(__file__).resolve().parent / "results"
# The modes, by their --modes name: (the row's name, the server: raw metrics or with the edge rules).
MODES = {
    "mesh-wide": ("mesh-wide", "raw"),
    "one-at-a-time": ("mesh-wide, one query at a time", "raw"),
    "scoped": ("scoped", "raw"),
    "scoped-rules": ("scoped, edge rules", "rules"),
}
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


def _snapshot(raw: RawSource, with_digest: bool = True) -> tuple[SnapshotPart, float, float, int, str]:
    t0 = time.perf_counter()
    part = prom.normalize(raw, NormalizeContext(time=T, window_s=WINDOW))
    t1 = time.perf_counter()
    snapshot = assemble(part, time=T, window_s=WINDOW, origin="bench")
    t2 = time.perf_counter()
    if not with_digest:
        return part, t1 - t0, t2 - t1, len(snapshot.edges), ""
    # What two trees must agree on (outside the timed part): the edges, the nodes, the status.
    # Not the history: VictoriaMetrics's range answers differ in their last digits from one run
    # to the next on the same data (47.879999999999995 or 47.88: its sums run in parallel).
    sources = [replace(status, duration_s=0.0) for status in part.sources]  # the one timing in them
    digest = hashlib.sha256(repr((snapshot.edges, snapshot.services, snapshot.workloads,
                                  sources)).encode()).hexdigest()[:16]
    return part, t1 - t0, t2 - t1, len(snapshot.edges), digest


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


def _question(graph: RawSource, target: ServiceRef) -> Scope | None:
    """What ``diagnose SERVICE``'s question does with the graph phase's answers in the tree
    that runs it: read as edge keys (meshobs.graph_phase, from stop 24), or before that
    normalised and assembled into the mesh-wide graph; then the name looked up and the
    neighbourhood drawn."""
    import meshobs
    from meshobs.cli.diagnose import scoped_question

    question = scoped_question(str(target), None)
    # Asked of the tree's files: with an editable install, a module missing from another tree
    # on PYTHONPATH is imported from the installed one.
    if not (Path(meshobs.__file__).parent / "graph_phase.py").exists():  # before: the whole graph assembled
        part = prom.normalize(graph, NormalizeContext(time=T, window_s=WINDOW))
        return question(assemble(part, time=T, window_s=WINDOW, origin="live"))
    from meshobs.graph_phase import GraphPhase

    phase = GraphPhase(T, WINDOW, {})
    phase.read(graph)  # on the fetch thread in collect, as the answers arrive: on the critical path here too
    return question(phase.done([graph]))


def one_run(collector: prom.PrometheusCollector, config: Any, scope: Scope | None) -> dict[str, Any]:
    """One snapshot's collection (fetch + normalize + assemble), timed as ``collect`` runs it
    (the cycle collector paused); the server's time is read around it by the caller.

    Scoped, as ``diagnose SERVICE`` does: the graph phase's answers read by the question about
    the target (:func:`_question`: the tree's own way, the neighbourhood drawn included; the
    scoped phase then collects the given neighbourhood, the same in every tree), then the scoped
    phase's answers merged with them and the whole source normalised and assembled."""
    c0, t0 = time.process_time(), time.perf_counter()
    with gc_paused():
        if scope is None:
            (raw,) = collector.fetch(FetchContext(time=T, window_s=WINDOW, config=config))
            graph_s = graph_fetch_s = 0.0
        else:
            (graph,) = collector.fetch(FetchContext(time=T, window_s=WINDOW, config=config, phase="graph"))
            graph_fetch_s = time.perf_counter() - t0
            assert scope.target is not None
            _question(graph, scope.target)
            graph_s = time.perf_counter() - t0
            (scoped,) = collector.fetch(FetchContext(time=T, window_s=WINDOW, config=config,
                                                     phase="scoped", scope=scope))
            (raw,) = merge_phases([graph], [scoped])
        fetch_s = time.perf_counter() - t0
        part, normalize_s, assemble_s, edges, digest = _snapshot(raw)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    # A query the server could not answer in time is recorded, not hidden: the run's
    # numbers then describe a partial snapshot.
    failed = [p.key for p in raw.payloads if p.error]
    # A new collector per run would re-check the recording rules: keep the per-run cost honest.
    collector._rules.clear()
    return {"failed": failed, "wall_s": wall, "cpu_s": cpu, "fetch_s": fetch_s, "graph_s": graph_s,
            "graph_fetch_s": graph_fetch_s, "normalize_s": normalize_s, "assemble_s": assemble_s,
            "payloads": len(raw.payloads), "edges": edges,
            "edges_with_latency": sum(1 for e in part.edges if e.latency is not None),
            "response_bytes": sum(len(p.body or "") for p in raw.payloads), "digest": digest}


class Worker:
    """The same runs with another source tree's collector (``--compare``): a warm process that
    runs one collection per line it reads and answers with the run's JSON line."""

    def __init__(self, tree: Path, srv: PrometheusServer, scope: Scope) -> None:
        env = {**os.environ, "PYTHONPATH": str(tree)}
        spec = json.dumps({"url": srv.url, "services": sorted(map(str, scope.services)),
                           "workloads": sorted(map(str, scope.workloads)), "target": str(scope.target)})
        self.process = subprocess.Popen([sys.executable, __file__, "--worker", spec], env=env, cwd=tree,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.tree = self.ask("where")["meshobs"]

    def ask(self, line: str) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise RuntimeError("the --compare worker ended")
        return dict(json.loads(answer))

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)


def worker(spec_text: str) -> int:
    """``--worker``: serve runs of this interpreter's meshobs (see :class:`Worker`)."""
    spec = json.loads(spec_text)

    def ref(cls: Any, text: str) -> Any:
        namespace, name = text.split("/", 1)
        return cls(namespace, name)

    scope = Scope(target=ref(ServiceRef, spec["target"]),
                  services=frozenset(ref(ServiceRef, s) for s in spec["services"]),
                  workloads=frozenset(ref(WorkloadRef, w) for w in spec["workloads"]))
    collector, config = _collector(PrometheusServer(None, spec["url"], Path(), Path()), 4)  # type: ignore[arg-type]
    one_run(collector, config, scope)  # warm, as the parent is
    import meshobs
    for line in sys.stdin:
        answer = {"meshobs": meshobs.__file__} if line.strip() == "where" else one_run(collector, config, scope)
        print(json.dumps(answer), flush=True)
    return 0


def run_mode(srv: PrometheusServer, mode: str, runs: int, scope: Scope | None,
             workers: tuple[Worker, Worker] | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``runs`` runs of this tree, in this process; with ``workers`` (this tree's and the other
    tree's, processes alike, so neither carries this one's heap: the mesh's text, the warm-up's
    snapshot) as many of each, alternated."""
    concurrency = 1 if mode == "mesh-wide, one query at a time" else 4
    collector, config = _collector(srv, concurrency)
    ours: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    for i in range(runs):
        for side in (("ours", "theirs") if i % 2 == 0 else ("theirs", "ours")):
            if side == "theirs" and workers is None:
                continue
            server0, count0 = server_time(srv)
            if workers is None:
                run = one_run(collector, config, scope)
            else:
                run = workers[0 if side == "ours" else 1].ask("run")
            server1, count1 = server_time(srv)
            run.update({"server_s": server1 - server0, "server_queries": count1 - count0})
            (ours if side == "ours" else theirs).append(run)
    return ours, theirs


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
    parser.add_argument("--mesh-wide-runs", type=int, help="runs of the mesh-wide modes (default: --runs); "
                                                          "they take tens of seconds each")
    parser.add_argument("--engines", default="prometheus,victoriametrics")
    parser.add_argument("--modes", default=",".join(MODES), help=f"any of {', '.join(MODES)}")
    parser.add_argument("--target", help="the scoped modes' service (namespace/name); default: one in "
                                         "the middle of the call graph")
    parser.add_argument("--compare", type=Path, help="a meshobs source tree to alternate the scoped runs with")
    parser.add_argument("--output", default="prometheus", help="results file name (without extension)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if unknown := [m for m in modes if m not in MODES]:
        print(f"unknown mode(s) {', '.join(unknown)}: expected {', '.join(MODES)}", file=sys.stderr)
        return 2
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
        results[engine] = {"modes": {}, "load_s": {}}
        for data in ("raw", "rules"):
            chosen = [m for m in modes if MODES[m][1] == data]
            if not chosen:
                continue
            with tempfile.TemporaryDirectory(prefix=f"bench-{engine}-") as tmp:
                t0 = time.perf_counter()
                rules = None
                if data == "rules":
                    rules = Path(tmp) / "recording-rules.yaml"
                    rules.write_text(yaml.safe_dump({"groups": groups((EDGES_GROUP,))}, sort_keys=False),
                                     encoding="utf-8")
                # The rules from a minute before the window, so the check for them (at the
                # window's start) finds them, as on a server that has had them for a while.
                server = starters[engine][1](text, Path(tmp) / "data", rules=rules,
                                             rules_range=(T.timestamp() - WINDOW - 60, T.timestamp()))
                results[engine]["load_s"][data] = round(time.perf_counter() - t0, 1)
                with server:
                    measure(server, data, chosen, args, results[engine])
        print(json.dumps({engine: {k: v for k, v in results[engine].items() if k != "modes"}}), flush=True)

    result = {
        "benchmark": "prometheus collector: fetch + normalize + assemble against real PromQL engines",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
                   f"shared by other jobs (noisy)",
        "load_average_1m_before_after": [round(load_before[0], 1), round(os.getloadavg()[0], 1)],
        "services": args.services, "edges_generated": len(traffic), "samples_loaded": samples,
        "openmetrics_mb": round(len(text) / 1e6, 1), "runs": args.runs,
        "mesh_wide_runs": args.mesh_wide_runs or args.runs, "engines": results,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.output}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (RESULTS / f"{args.output}.md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))
    return 0


def measure(server: PrometheusServer, data: str, modes: list[str], args: argparse.Namespace,
            into: dict[str, Any]) -> None:
    """The runs of ``modes`` against one server (``data``: raw metrics, or with the edge rules),
    into ``into`` (the engine's results)."""
    warm, config = _collector(server, 4)
    (raw,) = warm.fetch(FetchContext(time=T, window_s=WINDOW, config=config))  # warm-up
    part = prom.normalize(raw, NormalizeContext(time=T, window_s=WINDOW))
    target = ServiceRef.parse(args.target) if args.target else pick_target(part)
    scope = neighbourhood(part, target)
    into.update({"version": _version(server), "target": str(target), "neighbourhood_services": len(scope.services),
                 "neighbourhood_workloads": len(scope.workloads)})
    for name in modes:
        mode = MODES[name][0]
        scoped = mode.startswith("scoped")
        workers = None
        if args.compare and scoped:
            workers = (Worker(Path(__file__).resolve().parents[1], server, scope), Worker(args.compare, server, scope))
        try:
            runs = args.runs if scoped or not args.mesh_wide_runs else args.mesh_wide_runs
            ours, theirs = run_mode(server, mode, runs, scope if scoped else None, workers)
        finally:
            for worker_ in workers or ():
                worker_.close()
        into["modes"][mode] = summarise(ours)
        if workers is not None:
            other = workers[1]
            digests = {r["digest"] for r in ours + theirs}
            into["modes"][mode]["compare"] = {**summarise(theirs), "tree": other.tree,
                                              "same_snapshot": len(digests) == 1}
    if "mesh-wide" in modes and "bucket_query_reference" not in into:
        into["bucket_query_reference"] = bucket_reference(server)
    into.setdefault("floor", {})[data] = floor(server)


def floor(srv: PrometheusServer, runs: int = 21) -> dict[str, float]:
    """The fixed cost of one query through the same client: wall and the server's own time of a
    query that reads nothing (``vector(1)``), one at a time; the median per query."""
    collector, _config = _collector(srv, 1)
    server0, count0 = server_time(srv)
    walls = []
    for _ in range(runs):
        t0 = time.perf_counter()
        collector.client.custom_query("vector(1)", params={"time": T.timestamp()})
        walls.append(time.perf_counter() - t0)
    server1, count1 = server_time(srv)
    return {"round_trip_ms": round(statistics.median(walls) * 1000, 2),
            "server_ms": round((server1 - server0) / max(1.0, count1 - count0) * 1000, 2)}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def med(key: str) -> float:
        return float(statistics.median(r[key] for r in runs))

    return {
        "median_wall_s": round(med("wall_s"), 3), "median_cpu_s": round(med("cpu_s"), 3),
        "median_fetch_s": round(med("fetch_s"), 3), "median_graph_s": round(med("graph_s"), 3),
        "median_graph_fetch_s": round(med("graph_fetch_s"), 3),
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
        f"median of {result['runs']} runs per scoped mode"
        + (f", {result.get('mesh_wide_runs') or result['runs']} per mesh-wide mode" if any(
            not mode.startswith("scoped") for r in result["engines"].values() for mode in r["modes"]) else "")
        + ". Wall = fetch + normalize + assemble (scoped: plus what `diagnose SERVICE` does with the "
        "graph phase's answers between its phases: the name looked up and the neighbourhood drawn, each "
        "tree its own way), with the cycle collector "
        "paused as `collect` runs them; CPU = meshobs's "
        "user+sys in that time; server = the "
        "engine's own time answering /api/v1/query and /api/v1/query_range (its request-duration "
        "counters). With concurrent queries the server time adds up overlapping requests, so the "
        "one-at-a-time row is the one that isolates meshobs's own overhead. \"edge rules\": a second "
        "server of the same engine with the same data plus meshobs's edge recording rules, which the "
        "graph phase then reads.", "",
        "| engine | mode | queries | wall s | CPU s | server s | wall / server | MB received | edges (with latency) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def row(engine: str, mode: str, m: dict[str, Any]) -> str:
        n_failed = m["runs_with_failed_queries"]
        failed = f" ({n_failed} runs with a failed query)" if n_failed else ""
        return (f"| {engine} | {mode}{failed} | {m['queries_seen_by_server']:g} | {m['median_wall_s']} | "
                f"{m['median_cpu_s']} | {m['median_server_s']} | {m['ratio_wall_to_server']} | {m['response_mb']} | "
                f"{m['edges']} ({m['edges_with_latency']}) |")

    for engine, r in result["engines"].items():
        for mode, m in r["modes"].items():
            lines.append(row(engine, mode, m))
    compared = [(e, mode, m) for e, r in result["engines"].items() for mode, m in r["modes"].items() if "compare" in m]
    if compared:
        lines += ["", "The scoped modes alternated run by run between this tree's collector and another "
                  "tree's, each in a warm worker process of its own (same servers, same run):", "",
                  "| engine | mode | tree | wall s | CPU s | server s | wall / server | same snapshot |",
                  "|---|---|---|---|---|---|---|---|"]
        for engine, mode, m in compared:
            c = m["compare"]
            lines.append(f"| {engine} | {mode} | {c['tree']} | {c['median_wall_s']} | {c['median_cpu_s']} | "
                         f"{c['median_server_s']} | {c['ratio_wall_to_server']} | {c['same_snapshot']} |")
            lines.append(f"| {engine} | {mode} | this tree | {m['median_wall_s']} | {m['median_cpu_s']} | "
                         f"{m['median_server_s']} | {m['ratio_wall_to_server']} | |")
    meshwide = [(e, r["modes"]["mesh-wide"]) for e, r in result["engines"].items() if "mesh-wide" in r["modes"]]
    if meshwide:
        lines += ["", "Where meshobs's time goes (median seconds, mesh-wide at default concurrency):", "",
                  "| engine | fetch | normalize | assemble |", "|---|---|---|---|"]
        for engine, m in meshwide:
            lines.append(f"| {engine} | {m['median_fetch_s']} | {m['median_normalize_s']} | {m['median_assemble_s']} |")
    scoped = [(e, mode, m) for e, r in result["engines"].items() for mode, m in r["modes"].items()
              if mode.startswith("scoped")]
    if scoped:
        lines += ["", "Scoped: the neighbourhood of one service "
                  + "; ".join(f"{e}: {r['target']} ({r['neighbourhood_services']} services, "
                              f"{r['neighbourhood_workloads']} workloads)" for e, r in result["engines"].items())
                  + ". The graph phase reads who calls whom mesh-wide (edge keys only); request rates, "
                  "latency, TCP and history only for the edges touching the neighbourhood. "
                  "Where the scoped wall goes (median seconds):", "",
                  "| engine | mode | graph phase: fetch | graph phase: the question | scoped phase: "
                  "fetch | normalize + assemble |", "|---|---|---|---|---|---|"]
        for engine, mode, m in scoped:
            lines.append(f"| {engine} | {mode} | {m['median_graph_fetch_s']} | "
                         f"{round(m['median_graph_s'] - m['median_graph_fetch_s'], 3)} | "
                         f"{round(m['median_fetch_s'] - m['median_graph_s'], 3)} | "
                         f"{round(m['median_normalize_s'] + m['median_assemble_s'], 3)} |")
        lines += ["", "The fixed cost of one query (`vector(1)`, one at a time, through the same client; median "
                  "ms): what every round trip on the scoped question's critical path costs whatever meshobs "
                  "does with the answer:", "", "| engine | server | round trip | server's own time |",
                  "|---|---|---|---|"]
        for engine, r in result["engines"].items():
            for data, f in r.get("floor", {}).items():
                lines.append(f"| {engine} | {'edge rules' if data == 'rules' else 'raw metrics'} | "
                             f"{f['round_trip_ms']} | {f['server_ms']} |")
    references = [(e, r["bucket_query_reference"]) for e, r in result["engines"].items()
                  if "bucket_query_reference" in r]
    if references:
        lines += ["", "For reference, the bucket query meshobs sent before the server computed quantiles "
                  "(one query, same run):", "", "| engine | series | MB | server s |", "|---|---|---|---|"]
        for engine, b in references:
            lines.append(f"| {engine} | {b['series']} | {round(b['bytes'] / 1e6, 1)} | {b['server_s']} |")
    lines += ["", "Engines: " + "; ".join(
        f"{e} {r.get('version', '?')} (load " + ", ".join(f"{k} {v} s" for k, v in r["load_s"].items()) + ")"
        for e, r in result["engines"].items()) + ".",
        "Regenerate with `.venv/bin/python benchmarks/bench_prometheus.py`.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
