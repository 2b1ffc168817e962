"""Loading a replay (read the bundle, normalise every source, assemble): this tree against a
before tree, alternated, each run a fresh process.

    .venv/bin/python benchmarks/loadpar.py BUNDLE.tar.gz [--before /tmp/before-s24] [--runs 3]
        [--demo N ...]  [--out benchmarks/results/loadpar-s24]

For each run: wall and CPU (user, sys) of the load alone (the modules it needs imported first),
the parent's peak RSS and each forked child's (``fanout.children_max_rss_kib``), and the load
average. ``--demo N``: the generated mesh of N services built in memory (``demo:generated-N``,
a list of sources, not a stream) instead of a bundle, for the threshold. Prints a markdown table
and writes it with the raw rows as JSON when ``--out`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent

CODE = r"""
import importlib, json, os, resource, sys, time
from meshobs.collect import MODULES, build_snapshot
from meshobs.engine import fanout
import meshobs.assemble
for kind in ("kubernetes", "prometheus", "envoy", "jaeger"):
    importlib.import_module(MODULES[kind])
where = sys.argv[1]
if where.startswith("demo:"):
    from meshobs.demo.catalog import load_demo
    bundle = load_demo(where[5:])
else:
    from meshobs.bundle import iter_bundle
    bundle, sources = iter_bundle(where)
    bundle.stream = sources
def cpu():
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + c.ru_utime, s.ru_stime + c.ru_stime
u0, s0 = cpu()
p0 = resource.getrusage(resource.RUSAGE_SELF).ru_utime
t0 = time.perf_counter()
snap = build_snapshot(bundle, origin=where, keep_raw=False)
wall = time.perf_counter() - t0
u1, s1 = cpu()
print(json.dumps({"wall": wall, "user": u1 - u0, "sys": s1 - s0,
                  "parent_user": resource.getrusage(resource.RUSAGE_SELF).ru_utime - p0,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "children_rss_mb": [k / 1024 for k in getattr(fanout, "children_max_rss_kib", [])],
                  "proxies": len(snap.proxies), "services": len(snap.services), "edges": len(snap.edges)}))
"""


def run(tree: Path, where: str, env: dict[str, str]) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", CODE, where], cwd=tree, env=env, capture_output=True,
                         text=True, check=True)
    row: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    row["load"] = os.getloadavg()[0]
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundles", nargs="*")
    ap.add_argument("--demo", type=int, action="append", default=[])
    ap.add_argument("--before", default="/tmp/before-s24")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out")
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": ""}
    wheres = [*args.bundles, *(f"demo:generated-{n}" for n in args.demo)]
    rows: list[dict[str, object]] = []
    for where in wheres:
        for k in range(args.runs):
            order = [("before", Path(args.before)), ("after", HERE)]
            for label, tree in order if k % 2 == 0 else order[::-1]:
                row = run(tree, where, env)
                row.update(tree=label, where=where, run=k)
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    lines = ["| source | proxies | runs | before wall s | after wall s | wall ratio | before user s | "
             "after user s | user ratio | before RSS MB | after RSS MB (parent / child) | load |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for where in wheres:
        mine = [r for r in rows if r["where"] == where]

        def med(label: str, key: str, mine: list[dict[str, object]] = mine) -> float:
            return statistics.median(float(r[key]) for r in mine if r["tree"] == label)  # type: ignore[arg-type]

        child = [max(r["children_rss_mb"] or [0]) for r in mine if r["tree"] == "after"]  # type: ignore[type-var]
        loads = [float(r["load"]) for r in mine]  # type: ignore[arg-type]
        lines.append(
            f"| {Path(where).name} | {mine[0]['proxies']} | {args.runs} | {med('before', 'wall'):.2f} | "
            f"{med('after', 'wall'):.2f} | x{med('after', 'wall') / med('before', 'wall'):.2f} | "
            f"{med('before', 'user'):.2f} | {med('after', 'user'):.2f} | "
            f"x{med('after', 'user') / med('before', 'user'):.2f} | {med('before', 'rss_mb'):.0f} | "
            f"{med('after', 'rss_mb'):.0f} / {statistics.median(child):.0f} | "
            f"{min(loads):.1f}-{max(loads):.1f} |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        Path(args.out + ".md").write_text(table + "\n")
        Path(args.out + ".json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
