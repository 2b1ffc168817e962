"""Benchmark: the diagnosis and its JSON alone in a replayed ``diagnose --all`` (stops 24, 25).

A child process per (tree, round) loads a packed bundle the way the CLI does (collector paused,
raw bodies dropped), then times ``diagnose_all`` (forked over the cores as the CLI does) and
``render_parts`` of the JSON document written to /dev/null: wall, and user CPU of the process
and of its forked workers (``os.times``), and the CPU (user + system) of the process alone: on
a loaded machine the wall says little, while the parent's own CPU is the part no worker shares
(an idle 2-core machine's wall is at least it). Trees alternate round by round, so "before"
and "after" share the machine's load.

    .venv/bin/python benchmarks/bench_diagcpu.py BUNDLE TREE [TREE ...] [--rounds 5] [--json OUT]

TREE is a source tree holding ``meshobs/`` (this worktree, or a ``git archive`` of the base).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import gc, json, os, sys, time
sys.path.insert(0, sys.argv[1])
gc.disable()
from meshobs.cli.common import load_snapshot
from meshobs.engine import diagnose_all
from meshobs.render import json as render_json
loaded = load_snapshot(sys.argv[2], None)
snapshot = loaded.snapshot
t0, c0 = time.perf_counter(), os.times()
report = diagnose_all(snapshot)
t1, c1 = time.perf_counter(), os.times()
with open(os.devnull, "w") as sink:
    for part in render_json.render_parts(report, window_s=snapshot.window_s):
        sink.write(part)
t2, c2 = time.perf_counter(), os.times()
user = lambda a, b: (b.user - a.user) + (b.children_user - a.children_user)
print(json.dumps({"diagnose_wall": t1 - t0, "diagnose_user": user(c0, c1),
                  "render_wall": t2 - t1, "render_user": user(c1, c2),
                  "diagnose_parent_cpu": (c1.user + c1.system) - (c0.user + c0.system),
                  "render_parent_cpu": (c2.user + c2.system) - (c1.user + c1.system)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle")
    ap.add_argument("trees", nargs="+")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json")
    args = ap.parse_args()
    runs: dict[str, list[dict[str, float]]] = {t: [] for t in args.trees}
    for _ in range(args.rounds):
        for tree in args.trees:
            out = subprocess.run([sys.executable, "-c", CHILD, tree, args.bundle], cwd=tree,
                                 capture_output=True, text=True, check=True).stdout
            runs[tree].append(json.loads(out.strip().splitlines()[-1]))
            print(tree, runs[tree][-1], flush=True)
    summary = {t: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for t, rs in runs.items()}
    for t, s in summary.items():
        print(t, {k: round(v, 3) for k, v in s.items()})
    print("load average", os.getloadavg())
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"bundle": args.bundle, "runs": runs, "medians": summary,
                       "loadavg_end": os.getloadavg()}, fh, indent=2)


if __name__ == "__main__":
    main()
