"""Benchmark: the CPU a meshobs command spends importing, per thread and per package (stop 29).

``python -X importtime`` measures wall time per import, and a live question imports on three
threads at once (the main thread, the collectors' preloader, the diagnosis warm-up): a module's
"self" time then includes whatever the other threads ran while it held the import, and on a
loaded host the time the process was not running at all (stop 29: ``meshobs.drift.ignore``
"80 ms self" is 1.2 ms of CPU). This wraps ``importlib._bootstrap._find_and_load`` (what every
``import`` statement and ``importlib.import_module`` call) and reads ``time.thread_time()``
around each import: the CPU of the importing thread only, nested imports subtracted. Within the
imports it also counts the CPU of dataclass creation, ``collections.namedtuple`` and regular
expressions compiled (a miss of ``re``'s cache), and the cycle collector's passes.

    .venv/bin/python benchmarks/import_cpu.py TREE [TREE ...] --rounds 5 [--json OUT] -- ARGS...

runs ``python -m meshobs ARGS`` from each TREE in turn (alternated), and prints per tree the
medians of the process CPU, the import CPU, and the part of it in dataclasses, regexes and the
collector, then the import CPU of the last run by thread and by top-level package. The command's
stdout must be the same bytes for every tree and run (else the run stops).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections import Counter

HOOK = r"""
import collections, dataclasses, gc, importlib._bootstrap as b, json, re, runpy, sys, threading, time, atexit
local = threading.local(); records = []; within = collections.Counter(); collected = [0.0, 0.0]
def stack():
    s = getattr(local, "s", None)
    if s is None:
        s = local.s = []
    return s
find = b._find_and_load
def find_and_load(name, import_):
    s = stack(); t0 = time.thread_time(); s.append(0.0)
    try:
        return find(name, import_)
    finally:
        incl = time.thread_time() - t0; nested = s.pop()
        if s:
            s[-1] += incl
        records.append((name, threading.current_thread().name, incl - nested))
b._find_and_load = find_and_load
def timed(kind, f):
    def w(*a, **k):
        if getattr(local, "busy", False) or not stack():
            return f(*a, **k)
        local.busy = True; t0 = time.thread_time()
        try:
            return f(*a, **k)
        finally:
            local.busy = False; within[kind] += time.thread_time() - t0
    return w
dataclasses._process_class = timed("dataclass", dataclasses._process_class)
collections.namedtuple = timed("namedtuple", collections.namedtuple)
compile_ = re._compile; timed_compile = timed("re", compile_)
re._compile = lambda p, f: compile_(p, f) if (type(p), p, f) in re._cache else timed_compile(p, f)
def on_gc(phase, info):
    if phase == "start":
        collected[1] = time.thread_time()
    else:
        collected[0] += time.thread_time() - collected[1]
gc.callbacks.append(on_gc)
def dump():
    with open(OUT, "w") as f:
        json.dump({"records": records, "within": within, "gc": collected[0], "cpu": time.process_time()}, f)
atexit.register(dump)
sys.argv = ["meshobs", *ARGS]
runpy.run_module("meshobs", run_name="__main__", alter_sys=True)
"""


def run(tree: str, args: list[str], cache: str) -> tuple[dict[str, object], bytes]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        code = f"OUT = {out.name!r}\nARGS = {args!r}\n" + HOOK
        env = {**os.environ, "PYTHONPATH": tree, "PYTHONDONTWRITEBYTECODE": "1", "XDG_CACHE_HOME": cache}
        proc = subprocess.run([sys.executable, "-c", code], cwd=tree, env=env, capture_output=True)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{tree}: meshobs {' '.join(args)} exited {proc.returncode}: {proc.stderr[-500:]!r}")
        with open(out.name, encoding="utf-8") as f:
            return json.load(f), proc.stdout


def figures(run_: dict[str, object]) -> dict[str, float]:
    records = run_["records"]
    within = run_["within"]
    assert isinstance(records, list) and isinstance(within, dict)
    return {"process": float(run_["cpu"]), "imports": sum(r[2] for r in records), "modules": len(records),  # type: ignore[arg-type]
            "dataclass": within.get("dataclass", 0.0), "re": within.get("re", 0.0),
            "gc": float(run_["gc"])}  # type: ignore[arg-type]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("trees", nargs="+")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json")
    ap.add_argument("--top", type=int, default=25)
    argv = sys.argv[1:]
    if "--" not in argv:
        ap.error("give the command after --")
    at = argv.index("--")
    a = ap.parse_args(argv[:at])
    command = argv[at + 1:]
    # A config cache folder per tree, filled by an untimed run (as live_question_cpu.env_of gives each tree).
    caches = {tree: tempfile.mkdtemp(prefix="meshobs-import-cpu-") for tree in a.trees}
    for tree in a.trees:
        run(tree, command, caches[tree])
    runs: dict[str, list[dict[str, float]]] = {t: [] for t in a.trees}
    last: dict[str, dict[str, object]] = {}
    outputs: set[bytes] = set()
    load_before = os.getloadavg()
    for _ in range(a.rounds):
        for tree in a.trees:
            got, stdout = run(tree, command, caches[tree])
            runs[tree].append(figures(got))
            last[tree] = got
            outputs.add(stdout)
    if len(outputs) != 1:
        raise SystemExit("the trees' outputs differ")
    print(f"meshobs {' '.join(command)}: load average {load_before[0]:.2f} -> {os.getloadavg()[0]:.2f}; "
          f"{a.rounds} rounds alternated; output identical")
    summary = {}
    for tree, rs in runs.items():
        m = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        each = ", ".join(f"{r['imports']:.3f}" for r in rs)
        summary[tree] = m
        print(f"  {tree}: process {m['process']:.3f} s, imports {m['imports']:.3f} s ({m['modules']:.0f} imports; "
              f"dataclasses {m['dataclass']:.3f}, regexes {m['re']:.3f}), gc {m['gc']:.3f}; "
              f"imports per run [{each}]")
    for tree, got in last.items():
        records = got["records"]
        assert isinstance(records, list)
        by_thread: Counter[str] = Counter()
        by_package: Counter[str] = Counter()
        for name, thread, own in records:
            by_thread[thread if not thread.startswith(("envoy-admin", "collect-")) else thread.rsplit("-", 1)[0]] += own
            by_package[".".join(name.split(".")[:2]) if name.startswith("meshobs.") else name.split(".")[0]] += own
        print(f"  {tree}, last run, by thread: "
              + ", ".join(f"{t} {v * 1000:.0f} ms" for t, v in by_thread.most_common() if v >= 0.0005))
        print(f"  {tree}, last run, by package: "
              + ", ".join(f"{p} {v * 1000:.1f}" for p, v in by_package.most_common(a.top)))
    for cache in caches.values():
        import shutil

        shutil.rmtree(cache, ignore_errors=True)
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump({"command": command, "rounds": a.rounds, "load_before": load_before,
                       "load_after": os.getloadavg(), "runs": runs, "median": summary}, f, indent=1)


if __name__ == "__main__":
    main()
