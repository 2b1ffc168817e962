"""What the Kubernetes side of a live ``diagnose SERVICE`` costs, before and after, alternated.

    .venv/bin/python benchmarks/live_k8s.py --before /tmp/before-s22 --runs 5 \
        --ask /tmp/serve-5000/meshobs.yaml=ns-04/svc-2994 --ask /tmp/serve-1000/meshobs.yaml=ns-04/svc-0594 \
        [--out live5k-k8s-s22]

For each question: the real command (``python -m meshobs diagnose SERVICE -o json``) of both
checkouts, alternated, ``--runs`` times each, through :func:`live_question_cpu.alternate`: wall
time and the child's CPU time (user + system, ``os.wait4``); a JSON document that differs in any
run stops the benchmark (the documents are kept to be read: under load a source may miss its
own timeout in one run only). Then, once per checkout, in a
child process of that checkout: every Kubernetes request of the question (both phases) with the
bytes kept of its answer and its time, and the CPU time of the graph phase's Kubernetes fetch
and normalisation (median of ``--runs``), measured on the same served mesh.

The machine may be shared: compare the before and after columns of the same run only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from live_question_cpu import alternate, env_of, one

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


def _probe(tree: str, config: str, service: str, runs: int) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", PROBE, config, service, str(runs)], env=env_of(tree), cwd=tree,
                          capture_output=True, check=True, text=True)
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the other checkout (precompiled)")
    parser.add_argument("--ask", action="append", required=True, help="CONFIG=SERVICE (repeatable)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", help="write benchmarks/results/NAME.md and NAME.json too")
    args = parser.parse_args()
    trees = {"before": str(Path(args.before).resolve()), "after": str(HERE)}
    lines = [f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average at start "
             f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}; machine shared with other engineers. "
             f"Before: {trees['before']}; after: {HERE}. {args.runs} runs each, alternated "
             "(benchmarks/live_question_cpu.py's driver: the same JSON every run, else it stops).", ""]
    record: dict[str, object] = {}
    for ask in args.ask:
        config, service = ask.split("=", 1)
        result = alternate(list(trees.values()), args.runs, partial(one, config=config, service=service),
                           f"diagnose {service}")
        runs = {side: result["runs"][path] for side, path in trees.items()}
        med = {side: result["median"][path] for side, path in trees.items()}
        probes = {side: _probe(path, config, service, args.runs) for side, path in trees.items()}
        kube = {k: (sum(int(p["bytes"]) for p in v["listed"]), len(v["listed"]))  # type: ignore[attr-defined]
                for k, v in probes.items()}
        lines += [f"## `diagnose {service}` ({config})", "",
                  "| | before | after | ratio |", "|---|---|---|---|",
                  *(f"| {name} s (median) | {med['before'][key]:.2f} | {med['after'][key]:.2f} | "
                    f"x{med['after'][key] / med['before'][key]:.2f} |"
                    for key, name in (("wall", "wall"), ("cpu", "CPU"), ("user", "user CPU"), ("sys", "system CPU"))),
                  f"| Kubernetes requests | {kube['before'][1]} | {kube['after'][1]} | |",
                  f"| Kubernetes bytes kept | {kube['before'][0]:,} | {kube['after'][0]:,} | |",
                  f"| graph phase: Kubernetes fetch CPU s | {probes['before']['fetch_cpu']:.3f} | "
                  f"{probes['after']['fetch_cpu']:.3f} | |",
                  f"| graph phase: Kubernetes normalise CPU s | {probes['before']['normalize_cpu']:.3f} | "
                  f"{probes['after']['normalize_cpu']:.3f} | |",
                  "", "Same JSON in every run. Walls before "
                  f"{[round(r['wall'], 2) for r in runs['before']]}, "
                  f"after {[round(r['wall'], 2) for r in runs['after']]}; "
                  f"CPU before {[round(r['cpu'], 2) for r in runs['before']]}, after "
                  f"{[round(r['cpu'], 2) for r in runs['after']]}; 1-minute load average "
                  f"{result['load_before'][0]:.1f} -> {result['load_after'][0]:.1f}.",
                  "", "Kubernetes requests of the question (after; both phases): key, bytes kept, seconds", ""]
        lines += [f"- `{p['key']}` {p['bytes']:,} B, {p['s']} s" for p in probes["after"]["listed"]]  # type: ignore[attr-defined]
        lines.append("")
        record[ask] = {"runs": runs, "load": [result["load_before"], result["load_after"]], "same": True,
                       "probes": probes}
    text = "\n".join(lines)
    print(text)
    if args.out:
        out = HERE / "benchmarks" / "results"
        title = "# Live `diagnose SERVICE`: the Kubernetes side (k8s5k, issue 9)\n\n"
        (out / f"{args.out}.md").write_text(title + text)
        (out / f"{args.out}.json").write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    sys.exit(main())
