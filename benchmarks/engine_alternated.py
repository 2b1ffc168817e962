"""Benchmark: ``diagnose_all`` on a replayed bundle, this tree against a "before" tree, alternated
in the same run (stop 24, bugs: the deadlines reuse each service's checklist).

Each measurement is a fresh child process started in the tree measured (``cwd``, so ``import
meshobs`` is that tree's): it replays the bundle once, then runs ``diagnose_all(jobs=1)`` (one
process: its user CPU is the engine's, no fork) and reports the user CPU and wall of that call,
the certificate check's calls, and a hash of the JSON report (the same bytes before and after).

    .venv/bin/python benchmarks/engine_alternated.py --before /tmp/before-s24 \\
        --bundle /tmp/bench-cache/generated-1000.tar.gz --rounds 5 --out engine-deadlines-1000-s24

Writes benchmarks/results/<out>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
HERE = Path(__file__).resolve().parent.parent

CHILD = r"""
import hashlib, json, resource, sys, time
from dataclasses import replace
from meshobs.bundle import read_bundle
from meshobs.collect import build_snapshot
from meshobs.checks import certs, registry
from meshobs.engine import diagnose_all
from meshobs.render.json import render

snapshot = build_snapshot(read_bundle(sys.argv[1]), origin=sys.argv[1])
calls = [0]
original = certs.expiry
def counting(snapshot, service, settings):
    calls[0] += 1
    return original.run(snapshot, service, settings)
counting.__doc__ = original.run.__doc__
registry.ALL = tuple(replace(c, run=counting) if c is original else c for c in registry.ALL)
u0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_utime, time.perf_counter()
mesh = diagnose_all(snapshot, jobs=1)
u1, t1 = resource.getrusage(resource.RUSAGE_SELF).ru_utime, time.perf_counter()
print(json.dumps({"user_s": u1 - u0, "wall_s": t1 - t0, "cert_check_calls": calls[0],
                  "services": len(snapshot.services),
                  "report_sha256": hashlib.sha256(render(mesh).encode()).hexdigest()}))
"""


def measure(tree: Path, bundle: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", CHILD, bundle], cwd=tree, check=True, capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(tree)})
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", required=True)
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, object]]] = {"before": [], "after": []}
    loads: list[str] = []
    for _ in range(args.rounds):
        for side, tree in (("before", Path(args.before)), ("after", HERE)):
            runs[side].append(measure(tree, args.bundle))
        loads.append(Path("/proc/loadavg").read_text().split(" ")[0])
    summary = {side: {"user_s_median": statistics.median(float(str(r["user_s"])) for r in rs),
                      "wall_s_median": statistics.median(float(str(r["wall_s"])) for r in rs),
                      "cert_check_calls": sorted({int(str(r["cert_check_calls"])) for r in rs}),
                      "report_sha256": sorted({str(r["report_sha256"]) for r in rs})}
               for side, rs in runs.items()}
    same = summary["before"]["report_sha256"] == summary["after"]["report_sha256"]
    doc = {"bundle": args.bundle, "rounds": args.rounds, "load_1min": loads, "same_report": same,
           "summary": summary, "runs": runs}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(doc, indent=2) + "\n")
    b, a = summary["before"], summary["after"]
    lines = [f"# diagnose_all(jobs=1) on {args.bundle}: before {args.before} vs this tree, alternated",
             "", f"{args.rounds} rounds; 1-min load average after each round: {', '.join(loads)} (2 cores).",
             f"Same JSON report before and after: {same}.", "",
             "| | user CPU s (median) | wall s (median) | certs.expiry calls |", "|---|---|---|---|",
             f"| before | {b['user_s_median']:.2f} | {b['wall_s_median']:.2f} | {b['cert_check_calls']} |",
             f"| after | {a['user_s_median']:.2f} | {a['wall_s_median']:.2f} | {a['cert_check_calls']} |",
             "", f"after/before user CPU: {float(str(a['user_s_median'])) / float(str(b['user_s_median'])):.3f}"]
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
