"""Benchmark: the node-edge rule (meshobs.node_edges) on the hot paths it sits on, before/after.

1. ``diagnose SERVICE`` replayed from a generated bundle (assembly runs the rule on every edge),
   this tree against a before tree, alternated, each run a fresh process timed by
   ``/usr/bin/time`` (wall, user CPU, max RSS), with the load average at each run.
2. The rule alone over a generated mesh's edges, in one process, alternated: the base's (two
   passes in assembly, the second after the App Mesh names are mapped; a Python call per edge
   each) against this tree's ``dedupe_node_edges`` (one pass); and the graph phase's
   ``CallGraph._dropped`` over the same edges as Prometheus keys (the base's copy of the rule
   against the shared engine).

    .venv/bin/python benchmarks/node_edges.py --before /tmp/before-s25 --bundle /tmp/bench-cache/generated-1000.tar.gz
        --service ns-03/web-0083 [--runs 5] [--micro-bundle /tmp/bench-cache/generated-5000.tar.gz] --out node-edges-s25

Writes benchmarks/results/OUT.json and OUT.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def _timed(cwd: Path, args: list[str]) -> dict[str, float]:
    load = os.getloadavg()[0]
    out = subprocess.run(["/usr/bin/time", "-f", "%e %U %M", sys.executable, "-m", "meshobs", *args],
                         cwd=cwd, capture_output=True, text=True, check=False)
    if out.returncode not in (0, 1, 2):
        raise SystemExit(f"{cwd}: meshobs {' '.join(args)} exited {out.returncode}: {out.stderr[-500:]}")
    wall, user, rss = out.stderr.strip().splitlines()[-1].split()
    return {"wall_s": float(wall), "user_s": float(user), "max_rss_mb": int(rss) / 1024, "load1": load}


def _old_dedupe(edges: list) -> list:  # type: ignore[type-arg]
    """4865bbe's dedupe_node_edges, verbatim but for the names."""
    def is_node(edge) -> bool:  # type: ignore[no-untyped-def]
        dw = edge.destination_workload
        return dw is not None and edge.destination.name == dw.name and edge.destination.namespace == dw.namespace
    if not any(is_node(e) for e in edges):
        return list(edges)
    richer = {(e.source, e.destination_workload) for e in edges
              if e.destination_workload is not None and not is_node(e)}
    return [e for e in edges if not (is_node(e) and (e.source, e.destination_workload) in richer)]


def _old_dropped(keys: list[tuple[str, ...]]) -> set[tuple[str, ...]]:
    """4865bbe's CallGraph._dropped, verbatim but for the names."""
    def is_node(k: tuple[str, ...]) -> bool:
        return k[5] != "unknown" and k[3] == k[5] and k[2] == k[4]
    if not any(map(is_node, keys)):
        return set()
    richer = {(k[0], k[1], k[4], k[5]) for k in keys if k[5] != "unknown" and not is_node(k)}
    return {k for k in keys if is_node(k) and (k[0], k[1], k[4], k[5]) in richer}


def micro(bundle: str, rounds: int) -> dict[str, object]:
    from meshobs.assemble import dedupe_node_edges
    from meshobs.bundle import read_bundle
    from meshobs.collect import build_snapshot
    from meshobs.collectors.prometheus.graph import CallGraph

    edges = list(build_snapshot(read_bundle(bundle)).edges)
    keys = [(e.source.namespace, e.source.name, e.destination.namespace, e.destination.name,
             *((e.destination_workload.namespace, e.destination_workload.name) if e.destination_workload
               else ("unknown", "unknown")), e.protocol) for e in edges]
    graph = CallGraph.__new__(CallGraph)
    graph.keys = dict.fromkeys(keys)
    times: dict[str, list[float]] = {"assemble before (2 passes)": [], "assemble after (1 pass)": [],
                                      "graph phase before": [], "graph phase after": []}
    for _ in range(rounds):
        for name, run in (("assemble before (2 passes)", lambda: _old_dedupe(_old_dedupe(edges))),
                          ("assemble after (1 pass)", lambda: dedupe_node_edges(edges)),
                          ("graph phase before", lambda: _old_dropped(keys)),
                          ("graph phase after", lambda: graph._dropped())):
            t = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - t) * 1000)
    return {"edges": len(edges), "rounds": rounds,
            "median_ms": {k: round(statistics.median(v), 2) for k, v in times.items()}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--service", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--micro-bundle")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    args = ["diagnose", a.service, "--from", a.bundle, "-o", "json"]
    runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for i in range(min(a.runs, 10)):  # bounded
        order = [("before", Path(a.before)), ("after", HERE)]
        for name, cwd in order if i % 2 == 0 else order[::-1]:
            runs[name].append(_timed(cwd, args))
    med = {n: {k: round(statistics.median(r[k] for r in rs), 2) for k in ("wall_s", "user_s", "max_rss_mb", "load1")}
           for n, rs in runs.items()}
    result: dict[str, object] = {"command": "meshobs " + " ".join(args), "runs": runs, "median": med,
                                 "ratio_after_before": {k: round(med["after"][k] / med["before"][k], 3)
                                                        for k in ("wall_s", "user_s")}}
    if a.micro_bundle:
        result["micro"] = micro(a.micro_bundle, 7)
    out = HERE / "benchmarks" / "results"
    (out / f"{a.out}.json").write_text(json.dumps(result, indent=1))
    lines = [f"# node edges: before/after ({a.out})", "", f"`{result['command']}`, {a.runs} runs each, alternated; "
             "medians (wall and user CPU seconds, max RSS MB, 1-min load average at the start of each run).", "",
             "| tree | wall s | user s | max RSS MB | load |", "|---|---|---|---|---|"]
    lines += [f"| {n} | {m['wall_s']} | {m['user_s']} | {m['max_rss_mb']} | {m['load1']} |" for n, m in med.items()]
    lines += ["", f"after/before: wall {result['ratio_after_before']['wall_s']}, "  # type: ignore[index]
              f"user {result['ratio_after_before']['user_s']}"]  # type: ignore[index]
    if "micro" in result:
        m = result["micro"]
        lines += ["", f"The rule alone over {m['edges']} edges of {a.micro_bundle} ({m['rounds']} rounds, "  # type: ignore[index]
                  "alternated, medians in ms):", "", "| | ms |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in m["median_ms"].items()]  # type: ignore[index]
    (out / f"{a.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
