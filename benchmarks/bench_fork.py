"""Benchmark: replayed ``diagnose --all`` before/after, alternated, with the whole process tree's
CPU and memory (``diagnose --all`` forks workers: meshobs.engine.fanout).

For each bundle, ``runs`` pairs (before, after; the next pair after, before; ...) of

    python -m meshobs diagnose --all --from BUNDLE -o json

each measured as:

- wall: from start to exit;
- CPU: user + sys of the process and every descendant it waited for (``wait4``'s rusage; the
  forked workers are waited for by meshobs, so their CPU is in it);
- memory of the whole tree, sampled every ``--every`` s from /proc (the process and its
  children): the peak of the **sum of RSS** (counts the pages the workers share with the parent
  copy-on-write once per process: an upper bound) and the peak of the **sum of PSS** (each shared
  page divided among its sharers: what the tree really holds), and the peak RSS of the parent
  alone (``wait4``'s ru_maxrss is the largest of the tree, which /usr/bin/time reports);
- the SHA-1 of the JSON written (bundle path blanked): before and after must write the same.

    .venv/bin/python benchmarks/bench_fork.py --before /tmp/before-s23 \\
        --bundle /tmp/bench-cache-s20/generated-5000.tar.gz:3 --out results/x.json

``--before DIR`` runs ``python -m meshobs`` from DIR with ``--before-python``; the "after" is
this checkout. Results: a JSON file (every run, and the medians).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc/PID/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return out


def _memory(pid: int) -> tuple[int, int] | None:
    """(RSS, PSS) in KiB of one process, None when it has gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            fields = {k: v for k, _, v in (line.partition(":") for line in f)}
        return int(fields["Rss"].split()[0]), int(fields["Pss"].split()[0])
    except (OSError, KeyError, ValueError):
        return None


def run(args: list[str], cwd: Path, every: float) -> dict[str, Any]:
    started = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    peaks = {"tree_rss": 0, "tree_pss": 0, "parent_rss": 0, "processes": 1}
    out: list[bytes] = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read() if proc.stdout else b""))
    reader.start()
    status = None
    while status is None:
        rss = pss = n = 0
        for p in _tree(proc.pid):
            got = _memory(p)
            if got is not None:
                rss, pss, n = rss + got[0], pss + got[1], n + 1
                if p == proc.pid:
                    peaks["parent_rss"] = max(peaks["parent_rss"], got[0])
        peaks["tree_rss"] = max(peaks["tree_rss"], rss)
        peaks["tree_pss"] = max(peaks["tree_pss"], pss)
        peaks["processes"] = max(peaks["processes"], n)
        time.sleep(every)
        pid, code, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            status = code
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join()
    text = out[0] if out else b""
    return {"wall_s": round(wall, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "exit_code": proc.returncode, "max_rss_any_mb": round(usage.ru_maxrss / 1024, 1),
            "parent_rss_mb": round(peaks["parent_rss"] / 1024, 1),
            "tree_rss_mb": round(peaks["tree_rss"] / 1024, 1), "tree_pss_mb": round(peaks["tree_pss"] / 1024, 1),
            "processes": peaks["processes"], "load": round(os.getloadavg()[0], 1),
            "sha1": hashlib.sha1(text.replace(str(args[-3]).encode(), b"BUNDLE")).hexdigest()[:12]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", type=Path, required=True, help="checkout of the 'before' (precompiled)")
    ap.add_argument("--before-python", default="/work/main/.venv/bin/python")
    ap.add_argument("--bundle", action="append", required=True, help="PATH[:RUNS] (runs: pairs, default 1)")
    ap.add_argument("--every", type=float, default=0.1, help="memory sampling interval, s")
    ap.add_argument("--out", type=Path, required=True)
    opts = ap.parse_args()
    results: dict[str, Any] = {}
    for spec in opts.bundle:
        path, _, runs = spec.partition(":")
        rows: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
        for i in range(int(runs or 1)):
            order = ["before", "after"] if i % 2 == 0 else ["after", "before"]
            for which in order:
                py, cwd = (opts.before_python, opts.before) if which == "before" else (sys.executable, HERE)
                row = run([py, "-m", "meshobs", "diagnose", "--all", "--from", path, "-o", "json"], cwd, opts.every)
                rows[which].append(row)
                print(Path(path).name, which, row, flush=True)
        results[Path(path).name] = {
            which: {"median": {k: statistics.median(r[k] for r in rs) for k in
                               ("wall_s", "cpu_s", "parent_rss_mb", "tree_rss_mb", "tree_pss_mb", "max_rss_any_mb")},
                    "runs": rs} for which, rs in rows.items()}
        results[Path(path).name]["same_output"] = len({r["sha1"] for rs in rows.values() for r in rs}) == 1
        opts.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
