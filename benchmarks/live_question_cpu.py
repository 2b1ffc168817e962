"""Benchmark: the CPU of a whole live ``diagnose SERVICE``, trees alternated (stop 28); and the
one alternation driver every before/after benchmark uses (:func:`alternate`).

A live question is bound by the interpreter on one core (stop 27: wall is CPU), so its user +
system CPU is what a change on its path saves, and on a loaded machine a steadier figure than
its wall. Each tree runs it once uncounted (each tree keeps its own cache folder), then each
round runs the question once per tree, one after the other, as the CLI runs it
(``python -m meshobs diagnose SERVICE --config CONFIG -o json``), and reads the child's CPU from
``os.wait4``; the JSON documents of every run must be the same bytes (the question pins its
time: a demo's meshobs.yaml says ``time:``), else the run stops, keeping the documents that
differ to be read.

    .venv/bin/python benchmarks/live_question_cpu.py CONFIG TREE [TREE ...] --service NS/NAME
        [--service ...] [--rounds 6] [--json OUT]

TREE is a source tree holding ``meshobs/`` (this worktree, or a ``git archive`` of the base,
compiled with ``python -m compileall -q meshobs collectors tui``). The load average is read
before and after each service's rounds.

Other benchmarks measure something else per run (the Envoy fan-out alone:
``envoy_fanout_steps.py``; the Kubernetes side: ``live_k8s.py``) through :func:`alternate`,
giving it their own ``measure``.
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

# One measurement of one tree: figures (a number, or a list of numbers: repeats within the run)
# and the document that must be the same for every tree and run.
Measure = Callable[[str], tuple[dict[str, Any], bytes]]


# Each tree's own cache folder for this process's children (removed at exit): the config cache
# (meshobs.config_cache) keeps one record per config file, keyed by the code that validates, so
# trees that differ there, sharing ~/.cache, replaced each other's record on every run (and
# another engineer's, measuring at the same time): ~0.7 s more CPU a question at 5,000 services.
_CACHES = Path(tempfile.mkdtemp(prefix="alternate-caches-"))
atexit.register(shutil.rmtree, _CACHES, ignore_errors=True)


def env_of(tree: str) -> dict[str, str]:
    """The environment a child runs ``tree`` in (its ``cwd`` is ``tree`` too), with the tree's
    own cache folder."""
    cache = _CACHES / hashlib.sha256(str(Path(tree).resolve()).encode()).hexdigest()[:16]
    return {**os.environ, "PYTHONPATH": tree, "PYTHONDONTWRITEBYTECODE": "1", "XDG_CACHE_HOME": str(cache)}


def one(tree: str, config: str, service: str) -> tuple[dict[str, float], bytes]:
    """``diagnose SERVICE -o json`` in ``tree``: its wall, user, system and user + system CPU
    (``os.wait4``), and its JSON document."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "meshobs", "diagnose", service, "--config", config,
                             "-o", "json", "--timeout", "600s"], cwd=tree, env=env_of(tree),
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


def _median(values: Sequence[Any]) -> float:
    flat = [v for value in values for v in (value if isinstance(value, list) else [value])]
    return statistics.median(flat)


def alternate(trees: Sequence[str], rounds: int, measure: Measure, what: str) -> dict[str, Any]:
    """``measure(tree)`` ``rounds`` times per tree, the trees in the same order every round;
    stops (SystemExit) when the documents differ, writing them to a temporary folder named in
    the message. Returns the load average before and after, every run's figures per tree and
    their medians (a figure holding a list counts each of its values), and the host's speed
    (``bench_collect.host_speed``) at the start and the end.

    Each tree runs once first, uncounted, and keeps its own caches (:func:`env_of`), so every
    counted run finds what the tree's previous run left, as a user's next question does. Before,
    in the one shared cache folder, two trees differing in the code that validates the config
    replaced each other's record: rotated round by round, a run right after its own tree's
    skipped validating and one after the other tree's did not (at 5,000 services 2.3 s of CPU
    against 3.0 s, a bimodal median)."""
    from bench_collect import host_speed  # the one reading of this host's speed

    speed_before = host_speed()
    documents: dict[bytes, str] = {}
    for tree in trees:  # warm-up, not counted: fills the tree's own caches
        documents.setdefault(measure(tree)[1], f"{Path(tree).name or 'tree'}-warm-up")
    load_before = os.getloadavg()
    runs: dict[str, list[dict[str, Any]]] = {t: [] for t in trees}
    for r in range(rounds):
        for tree in trees:
            figures, document = measure(tree)
            runs[tree].append(figures)
            documents.setdefault(document, f"{Path(tree).name or 'tree'}-round{r}")
            print(f"{what} {tree}: {figures}", file=sys.stderr)
    if len(documents) != 1:
        kept = Path(tempfile.mkdtemp(prefix="alternate-differ-"))
        for document, name in documents.items():
            (kept / f"{name}.out").write_bytes(document)
        raise SystemExit(f"{what}: the trees' documents differ (kept in {kept})")
    median = {tree: {k: _median([row[k] for row in rows]) for k in rows[0]} for tree, rows in runs.items()}
    return {"load_before": load_before, "load_after": os.getloadavg(), "runs": runs, "median": median,
            "same_json": True, "host_speed_s": [speed_before, host_speed()]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("trees", nargs="+")
    ap.add_argument("--service", action="append", required=True)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--json")
    args = ap.parse_args()
    results: dict[str, object] = {"rounds": args.rounds, "trees": args.trees, "services": {}}
    for service in args.service:
        result = alternate(args.trees, args.rounds, partial(one, config=args.config, service=service),
                           f"diagnose {service}")
        results["services"][service] = result  # type: ignore[index]
        summary, runs = result["median"], result["runs"]
        base = summary[args.trees[0]]["cpu"]
        for tree in args.trees:
            m = summary[tree]
            cpus = ", ".join(f"{r['cpu']:.2f}" for r in runs[tree])
            print(f"{service} {tree}: median cpu {m['cpu']:.3f} s (user {m['user']:.3f}, sys {m['sys']:.3f}), "
                  f"wall {m['wall']:.3f} s; x{m['cpu'] / base:.3f}; runs cpu [{cpus}]")
        print(f"{service}: load average {result['load_before'][0]:.2f} -> {result['load_after'][0]:.2f}; "
              f"host speed {' -> '.join(f'{x:.2f}' for x in result['host_speed_s'])} s of a fixed loop; "
              "JSON identical")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
