"""Benchmark: a live ``diagnose SERVICE`` (whole question) and its Envoy fan-out alone, this tree
against a "before" tree, alternated in the same run (stop 28, envoycpu).

Each measurement is a fresh child process started in the tree measured (``cwd`` and
``PYTHONPATH`` that tree): the whole question reports the child's user and system CPU
(``os.wait4``) and wall, and a hash of its JSON output (the same bytes before and after: the
served demo pins the evaluation time); the fan-out alone is :mod:`benchmarks.envoy_fanout`
(``--fanout N``: N repeats of the scoped phase's Envoy fetch per child, their CPU, and a
fingerprint of the payloads fetched and kept).

    .venv/bin/python benchmarks/live_alternated.py --before /tmp/before-s28 \\
        --config /tmp/serve5k/meshobs.yaml --service ns-00/svc-0690 --rounds 5 --fanout 5 --out envoycpu-s28-0690

Writes benchmarks/results/<out>.json and .md (medians; the load average before and after).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
HERE = Path(__file__).resolve().parent.parent
FANOUT = Path(__file__).resolve().parent / "envoy_fanout.py"


def _env(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}


def question(tree: Path, service: str, config: str) -> dict[str, Any]:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "meshobs", "diagnose", service, "--config", config, "-o", "json",
                             "--timeout", "600s"], cwd=tree, env=_env(tree), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    out = proc.stdout.read() if proc.stdout else b""
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    return {"wall_s": round(wall, 3), "user_s": round(usage.ru_utime, 3), "sys_s": round(usage.ru_stime, 3),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 3), "exit": os.waitstatus_to_exitcode(status),
            "json_sha256": hashlib.sha256(out).hexdigest()[:16]}


def fanout(tree: Path, service: str, config: str, repeats: int) -> dict[str, Any]:
    done = subprocess.run([sys.executable, str(FANOUT), str(repeats), "diagnose", service, "--config", config,
                           "-o", "json", "--timeout", "600s"], cwd=tree, env=_env(tree),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    line = next(ln for ln in reversed(done.stderr.splitlines()) if ln.startswith("{"))
    result: dict[str, Any] = json.loads(line)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", required=True, type=Path)
    parser.add_argument("--after", default=HERE, type=Path)
    parser.add_argument("--config", required=True)
    parser.add_argument("--service", required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fanout", type=int, default=0, help="repeats of the Envoy fan-out per child (0: none)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    load = [os.getloadavg()]
    runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    fans: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    for r in range(args.rounds):
        for side in (("before", "after") if r % 2 == 0 else ("after", "before")):
            runs[side].append(question(trees[side], args.service, args.config))
            if args.fanout:
                fans[side].append(fanout(trees[side], args.service, args.config, args.fanout))
            print(side, runs[side][-1], file=sys.stderr)
    load.append(os.getloadavg())

    def med(rows: list[dict[str, Any]], key: str) -> float:
        return round(statistics.median(row[key] for row in rows), 3)

    summary: dict[str, Any] = {"service": args.service, "rounds": args.rounds, "load_before": load[0],
                               "load_after": load[1], "runs": runs, "fanout": fans}
    for side in trees:
        summary[side] = {k: med(runs[side], k) for k in ("wall_s", "user_s", "sys_s", "cpu_s")}
        summary[side]["json"] = sorted({row["json_sha256"] for row in runs[side]})
        if args.fanout:
            cpu = [c for row in fans[side] for c in row["cpu_s"]]
            summary[side]["fanout_cpu_s"] = round(statistics.median(cpu), 3)
            summary[side]["fanout_requests"] = sorted({row["requests"] for row in fans[side]})
            summary[side]["fanout_fingerprint"] = sorted({row["fingerprint"] for row in fans[side]})
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(summary, indent=1) + "\n")
    b, a = summary["before"], summary["after"]
    lines = [f"# {args.out}: live diagnose {args.service}, before vs after, alternated", "",
             f"{args.rounds} rounds, load average {load[0][0]:.2f} -> {load[1][0]:.2f} (1 min)", "",
             "| | before | after | after/before |", "|---|---|---|---|"]
    for key in ("cpu_s", "user_s", "sys_s", "wall_s") + (("fanout_cpu_s",) if args.fanout else ()):
        lines.append(f"| {key} (median) | {b[key]} | {a[key]} | {a[key] / b[key]:.2f} |")
    lines += ["", f"JSON output: before {b['json']}, after {a['json']} "
                  f"({'identical' if b['json'] == a['json'] and len(a['json']) == 1 else 'DIFFERENT'})"]
    if args.fanout:
        lines.append(f"Envoy fan-out: {a['fanout_requests']} requests; payload fingerprints before "
                     f"{b['fanout_fingerprint']}, after {a['fanout_fingerprint']}")
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
