"""Benchmark: the Envoy fan-out's CPU alone (:mod:`benchmarks.envoy_fanout`) in several trees
(one per commit of a change, or before and after), alternated round by round in the same run
(:func:`live_question_cpu.alternate`), to say what each step saved.

    .venv/bin/python benchmarks/envoy_fanout_steps.py --config /tmp/serve5k/meshobs.yaml \\
        --service ns-00/svc-0690 --rounds 5 --repeats 3 --out envoycpu-s28-steps-0690 \\
        base=/tmp/before-s28 http=/tmp/envoycpu-e27d50c head=.

Each tree is a checkout (``git archive COMMIT | tar -x``, precompiled); the fan-out driver runs
with ``cwd`` and ``PYTHONPATH`` that tree, ``--repeats`` fan-outs per child. Every tree must send
the same requests and keep the same payloads (the fan-out's fingerprint), else the run stops.
Writes benchmarks/results/<out>.json and .md: per tree, the median CPU (user+sys) and user CPU
of the fan-out. The whole question's CPU, before and after: ``live_question_cpu.py``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from live_question_cpu import alternate, env_of

RESULTS = Path(__file__).resolve().parent / "results"
FANOUT = Path(__file__).resolve().parent / "envoy_fanout.py"


def fanout(tree: str, service: str, config: str, repeats: int) -> tuple[dict[str, Any], bytes]:
    """``repeats`` fan-outs of ``diagnose SERVICE``'s scoped phase in one child of ``tree``: their
    CPU, user CPU and wall (lists), the requests and proxies; and the payloads' fingerprint."""
    done = subprocess.run([sys.executable, str(FANOUT), str(repeats), "diagnose", service, "--config", config,
                           "-o", "json", "--timeout", "600s"], cwd=tree, env=env_of(tree),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    line = next((ln for ln in reversed(done.stderr.splitlines()) if ln.startswith("{")), None)
    if line is None:
        raise SystemExit(f"{tree}: the fan-out driver printed no result:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(line)
    figures = {k: result[k] for k in ("cpu_s", "user_s", "wall_s", "requests", "proxies")}
    return figures, f"{result['fingerprint']} {result['requests']}".encode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--service", required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", required=True)
    parser.add_argument("trees", nargs="+", help="NAME=PATH, in the order of the change")
    args = parser.parse_args()
    trees = {name: str(Path(path).resolve()) for name, _, path in (t.partition("=") for t in args.trees)}
    names = list(trees)
    result = alternate(list(trees.values()), args.rounds,
                       lambda tree: fanout(tree, args.service, args.config, args.repeats),
                       f"fan-out of {args.service}")
    load = result["load_before"], result["load_after"]
    summary: dict[str, Any] = {"service": args.service, "rounds": args.rounds, "repeats": args.repeats,
                               "load_before": load[0], "load_after": load[1], "same_payloads": True, "trees": {}}
    for name, path in trees.items():
        median = result["median"][path]
        summary["trees"][name] = {"path": path, "cpu_s": round(median["cpu_s"], 3),
                                  "user_s": round(median["user_s"], 3),
                                  "requests": sorted({row["requests"] for row in result["runs"][path]}),
                                  "runs": result["runs"][path]}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(summary, indent=1) + "\n")
    first = summary["trees"][names[0]]["cpu_s"]
    lines = [f"# {args.out}: Envoy fan-out CPU of {args.service}, per step, alternated", "",
             f"{args.rounds} rounds x {args.repeats} fan-outs per tree, load average {load[0][0]:.2f} -> "
             f"{load[1][0]:.2f} (1 min); every tree sent the same requests and kept the same payloads", "",
             "| tree | fan-out CPU (median) | user | vs first | requests |", "|---|---|---|---|---|"]
    for name in names:
        t = summary["trees"][name]
        lines.append(f"| {name} | {t['cpu_s']} | {t['user_s']} | {t['cpu_s'] / first:.2f} | {t['requests']} |")
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
