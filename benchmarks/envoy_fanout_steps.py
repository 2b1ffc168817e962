"""Benchmark: the Envoy fan-out's CPU alone (:mod:`benchmarks.envoy_fanout`) in several trees
(one per commit of a change), rotated round by round in the same run, to say what each step saved.

    .venv/bin/python benchmarks/envoy_fanout_steps.py --config /tmp/serve5k/meshobs.yaml \\
        --service ns-00/svc-0690 --rounds 5 --repeats 3 --out envoycpu-s28-steps-0690 \\
        base=/tmp/before-s28 http=/tmp/envoycpu-e27d50c head=.

Each tree is a checkout (``git archive COMMIT | tar -x``, precompiled); the fan-out driver runs
with ``cwd`` and ``PYTHONPATH`` that tree. Writes benchmarks/results/<out>.json and .md: per
tree, the median CPU (user+sys) and user CPU of the fan-out, and the payload fingerprints.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from live_alternated import RESULTS, fanout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--service", required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", required=True)
    parser.add_argument("trees", nargs="+", help="NAME=PATH, in the order of the change")
    args = parser.parse_args()
    trees = {name: Path(path).resolve() for name, _, path in (t.partition("=") for t in args.trees)}
    names = list(trees)
    load = [os.getloadavg()]
    rows: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:  # each tree first in turn
            rows[name].append(fanout(trees[name], args.service, args.config, args.repeats))
            print(name, rows[name][-1]["cpu_s"], file=sys.stderr)
    load.append(os.getloadavg())
    summary: dict[str, Any] = {"service": args.service, "rounds": args.rounds, "repeats": args.repeats,
                               "load_before": load[0], "load_after": load[1], "trees": {}}
    for name in names:
        summary["trees"][name] = {
            "path": str(trees[name]),
            "cpu_s": round(statistics.median(c for row in rows[name] for c in row["cpu_s"]), 3),
            "user_s": round(statistics.median(c for row in rows[name] for c in row["user_s"]), 3),
            "requests": sorted({row["requests"] for row in rows[name]}),
            "fingerprints": sorted({row["fingerprint"] for row in rows[name]}),
            "runs": rows[name]}
    (RESULTS / f"{args.out}.json").write_text(json.dumps(summary, indent=1) + "\n")
    first = summary["trees"][names[0]]["cpu_s"]
    lines = [f"# {args.out}: Envoy fan-out CPU of {args.service}, per step, rotated", "",
             f"{args.rounds} rounds x {args.repeats} fan-outs per tree, load average {load[0][0]:.2f} -> "
             f"{load[1][0]:.2f} (1 min)", "", "| tree | fan-out CPU (median) | user | vs first | requests | payloads |",
             "|---|---|---|---|---|---|"]
    for name in names:
        t = summary["trees"][name]
        lines.append(f"| {name} | {t['cpu_s']} | {t['user_s']} | {t['cpu_s'] / first:.2f} | {t['requests']} | "
                     f"{t['fingerprints']} |")
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
