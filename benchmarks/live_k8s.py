"""What the Kubernetes side of a live ``diagnose SERVICE`` costs, before and after, alternated.

    .venv/bin/python benchmarks/live_k8s.py --before /tmp/before-s22 --runs 5 \
        --ask /tmp/serve-5000/meshobs.yaml=ns-04/svc-2994 --ask /tmp/serve-1000/meshobs.yaml=ns-04/svc-0594 \
        [--out live5k-k8s-s22]

For each question: the real command (``python -m meshobs diagnose SERVICE -o json``) of both
checkouts, alternated, ``--runs`` times each: wall time, the child's CPU time (user + system),
and whether stdout and the exit code are the same in every pair. Then, once per checkout, in a
child process of that checkout: every Kubernetes request of the question (both phases) with the
bytes kept of its answer and its time, and the CPU time of the graph phase's Kubernetes fetch
and normalisation (median of ``--runs``), measured on the same served mesh.

The machine may be shared: compare the before and after columns of the same run only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
# Run in a child of each checkout: the Kubernetes requests of one question, and the graph
# phase's Kubernetes CPU (fetch, then normalise, as the run does them: cycle collector paused).
PROBE = r"""
import json, sys, time
from meshobs.cli.diagnose import scoped_question
from meshobs.collect import collect, normalize_source
from meshobs.collectors import kubernetes as K
from meshobs.collectors.base import FetchContext
from meshobs.config import load_config
from meshobs.gc_pause import gc_paused
from meshobs.raw import utc_now

config, service, runs = load_config(sys.argv[1]), sys.argv[2], int(sys.argv[3])
bundle = collect(config, question=scoped_question(service, None))
listed = [{"key": p.key, "bytes": len(p.body or ""), "s": round(p.elapsed_s, 3), "status": p.status}
          for r in bundle.sources if r.kind == "kubernetes" for p in r.payloads]
collector = K.from_config(config, [])
ctx = FetchContext(time=config.time or utc_now(), window_s=config.window_s, config=config, deadline=None,
                   needs=None, phase="graph")
fetch, norm = [], []
for _ in range(runs):
    with gc_paused():
        c0 = time.process_time()
        raws = collector.fetch(ctx)
        c1 = time.process_time()
        part = normalize_source(raws[0], ctx.time, config.window_s)
        c2 = time.process_time()
    fetch.append(c1 - c0)
    norm.append(c2 - c1)
print(json.dumps({"listed": listed, "fetch_cpu": sorted(fetch)[len(fetch) // 2],
                  "normalize_cpu": sorted(norm)[len(norm) // 2],
                  "services": len(part.services), "workloads": len(part.workloads)}))
"""


def _command(tree: str | None, args: list[str]) -> tuple[list[str], dict[str, str], str]:
    """(command, environment, working directory): both checkouts run by this one's
    interpreter (the same libraries), the other one from its own directory."""
    env = dict(os.environ)
    if tree is None:
        return [str(HERE / ".venv/bin/python"), *args], env, str(HERE)
    env["PYTHONPATH"] = tree
    return [str(HERE / ".venv/bin/python"), *args], env, tree


def _timed(tree: str | None, config: str, service: str) -> tuple[float, float, bytes, int, float, float]:
    """(wall, user + system CPU, stdout, exit code, user CPU, system CPU) of one question."""
    cmd, env, cwd = _command(tree, ["-m", "meshobs", "diagnose", service, "--config", config, "-o", "json",
                                    "--timeout", "600s"])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    return wall, user + system, done.stdout, done.returncode, user, system


def _probe(tree: str | None, config: str, service: str, runs: int) -> dict[str, object]:
    cmd, env, cwd = _command(tree, ["-c", PROBE, config, service, str(runs)])
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, check=True, text=True)
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the other checkout (precompiled)")
    parser.add_argument("--ask", action="append", required=True, help="CONFIG=SERVICE (repeatable)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", help="write benchmarks/results/NAME.md and NAME.json too")
    args = parser.parse_args()
    lines = [f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average at start "
             f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}; machine shared with other engineers. "
             f"Before: {args.before}; after: {HERE}. {args.runs} runs each, alternated.", ""]
    record: dict[str, object] = {}
    for ask in args.ask:
        config, service = ask.split("=", 1)
        runs: dict[str, list[tuple[float, float]]] = {"before": [], "after": []}
        split: dict[str, list[tuple[float, float]]] = {"before": [], "after": []}  # (user, system)
        loads: list[float] = []
        differ: list[str] = []
        same = True
        for _ in range(args.runs):
            loads.append(os.getloadavg()[0])
            b = _timed(args.before, config, service)
            a = _timed(None, config, service)
            runs["before"].append(b[:2])
            runs["after"].append(a[:2])
            split["before"].append(b[4:])
            split["after"].append(a[4:])
            if b[2] != a[2] or b[3] != a[3]:
                # Kept to be read: under load a source may miss its own timeout in one run only.
                dump = Path(tempfile.mkdtemp(prefix="live-k8s-differ-"))
                (dump / "before.json").write_bytes(b[2])
                (dump / "after.json").write_bytes(a[2])
                differ.append(f"{dump} (exit {b[3]} / {a[3]})")
            same = same and b[2] == a[2] and b[3] == a[3]
        probes = {"before": _probe(args.before, config, service, args.runs),
                  "after": _probe(None, config, service, args.runs)}
        med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in runs.items()}
        kube = {k: (sum(int(p["bytes"]) for p in v["listed"]), len(v["listed"]))  # type: ignore[attr-defined]
                for k, v in probes.items()}
        lines += [f"## `diagnose {service}` ({config})", "",
                  "| | before | after | ratio |", "|---|---|---|---|",
                  f"| wall s (median) | {med['before'][0]:.2f} | {med['after'][0]:.2f} | "
                  f"x{med['after'][0] / med['before'][0]:.2f} |",
                  f"| CPU s (median) | {med['before'][1]:.2f} | {med['after'][1]:.2f} | "
                  f"x{med['after'][1] / med['before'][1]:.2f} |",
                  *(f"| {name} CPU s (median) | {statistics.median(u[i] for u in split['before']):.2f} | "
                    f"{statistics.median(u[i] for u in split['after']):.2f} | |"
                    for i, name in ((0, "user"), (1, "system"))),
                  f"| Kubernetes requests | {kube['before'][1]} | {kube['after'][1]} | |",
                  f"| Kubernetes bytes kept | {kube['before'][0]:,} | {kube['after'][0]:,} | |",
                  f"| graph phase: Kubernetes fetch CPU s | {probes['before']['fetch_cpu']:.3f} | "
                  f"{probes['after']['fetch_cpu']:.3f} | |",
                  f"| graph phase: Kubernetes normalise CPU s | {probes['before']['normalize_cpu']:.3f} | "
                  f"{probes['after']['normalize_cpu']:.3f} | |",
                  "", f"Same stdout and exit code in every pair: {same}. Walls before "
                  f"{[round(w, 2) for w, _ in runs['before']]}, after {[round(w, 2) for w, _ in runs['after']]}; "
                  f"CPU before {[round(c, 2) for _, c in runs['before']]}, after "
                  f"{[round(c, 2) for _, c in runs['after']]}; 1-minute load average before each pair "
                  f"{[round(x, 1) for x in loads]}."
                  + (f" Pairs that differed, kept in: {', '.join(differ)}." if differ else ""),
                  "", "Kubernetes requests of the question (after; both phases): key, bytes kept, seconds", ""]
        lines += [f"- `{p['key']}` {p['bytes']:,} B, {p['s']} s" for p in probes["after"]["listed"]]  # type: ignore[attr-defined]
        lines.append("")
        record[ask] = {"runs": runs, "user_system": split, "load": loads, "same": same, "probes": probes}
    text = "\n".join(lines)
    print(text)
    if args.out:
        out = HERE / "benchmarks" / "results"
        title = "# Live `diagnose SERVICE`: the Kubernetes side (k8s5k, issue 9)\n\n"
        (out / f"{args.out}.md").write_text(title + text)
        (out / f"{args.out}.json").write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    sys.exit(main())
