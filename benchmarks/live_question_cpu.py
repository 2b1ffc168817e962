"""Benchmark: the CPU of a whole live ``diagnose SERVICE``, trees alternated (stop 28).

A live question is bound by the interpreter on one core (stop 27: wall is CPU), so its user +
system CPU is what a change on its path saves, and on a loaded machine a steadier figure than
its wall. Each round runs the question once per tree, one after the other, as the CLI runs it
(``python -m meshobs diagnose SERVICE --config CONFIG -o json``), and reads the child's CPU from
``os.wait4``; the JSON documents of every run must be the same bytes (the question pins its
time: a demo's meshobs.yaml says ``time:``), else the run stops.

    .venv/bin/python benchmarks/live_question_cpu.py CONFIG TREE [TREE ...] --service NS/NAME
        [--service ...] [--rounds 6] [--json OUT]

TREE is a source tree holding ``meshobs/`` (this worktree, or a ``git archive`` of the base,
compiled with ``python -m compileall -q meshobs collectors tui``). The load average is read
before and after each service's rounds.

``--own-cache``: each tree reads the validated config from a cache folder of its own
(``XDG_CACHE_HOME``), filled by one untimed run first. The config cache keeps one record per
config file, keyed by the validating modules' source: two trees that differ in one of them
(``meshobs.config_cache.VALIDATING``) would replace each other's record on every run, and every
run would pay for PyYAML and pydantic (~0.5 s at 5,000 services) instead of a hit.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def one(tree: str, config: str, service: str, cache: str | None = None) -> tuple[dict[str, float], bytes]:
    env = {**os.environ, "PYTHONPATH": tree, "PYTHONDONTWRITEBYTECODE": "1"}
    if cache is not None:
        env["XDG_CACHE_HOME"] = cache
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "meshobs", "diagnose", service, "--config", config,
                             "-o", "json", "--timeout", "600s"], cwd=tree, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{tree}: diagnose {service} exited {proc.returncode}")
    return {"wall": wall, "user": usage.ru_utime, "sys": usage.ru_stime,
            "cpu": usage.ru_utime + usage.ru_stime}, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("trees", nargs="+")
    ap.add_argument("--service", action="append", required=True)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--json")
    ap.add_argument("--own-cache", action="store_true", help="a config cache folder per tree (see above)")
    args = ap.parse_args()
    caches: dict[str, str | None] = dict.fromkeys(args.trees)
    if args.own_cache:
        import tempfile

        for tree in args.trees:
            caches[tree] = tempfile.mkdtemp(prefix="meshobs-bench-cache-")  # 0700, ours
            one(tree, args.config, args.service[0], caches[tree])  # fills it: untimed
    results: dict[str, object] = {"rounds": args.rounds, "trees": args.trees, "services": {}}
    for service in args.service:
        load_before = os.getloadavg()
        runs: dict[str, list[dict[str, float]]] = {t: [] for t in args.trees}
        documents: set[bytes] = set()
        for _ in range(args.rounds):
            for tree in args.trees:
                figures, document = one(tree, args.config, service, caches[tree])
                runs[tree].append(figures)
                documents.add(document)
        if len(documents) != 1:
            raise SystemExit(f"diagnose {service}: the trees' JSON documents differ")
        summary = {tree: {k: statistics.median(r[k] for r in rs) for k in ("wall", "user", "sys", "cpu")}
                   for tree, rs in runs.items()}
        results["services"][service] = {  # type: ignore[index]
            "load_before": load_before, "load_after": os.getloadavg(), "runs": runs, "median": summary,
            "same_json": True}
        base = summary[args.trees[0]]["cpu"]
        for tree in args.trees:
            m = summary[tree]
            cpus = ", ".join(f"{r['cpu']:.2f}" for r in runs[tree])
            print(f"{service} {tree}: median cpu {m['cpu']:.3f} s (user {m['user']:.3f}, sys {m['sys']:.3f}), "
                  f"wall {m['wall']:.3f} s; x{m['cpu'] / base:.3f}; runs cpu [{cpus}]")
        print(f"{service}: load average {load_before[0]:.2f} -> {os.getloadavg()[0]:.2f}; JSON identical")
    for cache in caches.values():
        if cache is not None:
            import shutil

            shutil.rmtree(cache, ignore_errors=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
