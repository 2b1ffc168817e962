"""What meshobs's edge rules (edge:*, config/prometheus-recording-rules.yaml) save a live question.

    .venv/bin/python benchmarks/edge_rules.py --prometheus URL [--runs 5] \
        [--ask LABEL=CONFIG[,PYTHONPATH,PYTHON]] ... [--service ns/name] [--out NAME]

Two measurements, each alternated run by run so a shared machine's load falls on all alike:

1. **The graph phase's edge queries** on the server at URL (which must hold the edge rules):
   ``edges`` and ``tcp_edges`` as meshobs renders them over the raw metrics and over the edge
   series, each with ``stats=all``: Prometheus's own evaluation time (median), the series
   answered, the samples it read and the bytes of the answer.
2. **Live questions** (``--ask``, repeatable): ``meshobs diagnose SERVICE -o json`` with each
   CONFIG (optionally importing meshobs from PYTHONPATH with the interpreter PYTHON: another
   checkout, the "before"):
   median wall time, the Prometheus handler time the run cost the server at URL (its
   ``prometheus_http_request_duration_seconds_sum`` for the query handlers, before and after the
   run; 0 for a config pointing elsewhere), and whether every run's JSON is byte-identical to
   the first label's first (each run's JSON and stderr are kept, to see why not).

Writes benchmarks/results/NAME.json (default ``edge-rules``) and prints a Markdown table.
Timings on a shared machine are noisy: compare medians and ratios from the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from promstats import timed_query

from meshobs.collectors.promql import GRAPH_QUERIES

RESULTS = Path(__file__).resolve().parent / "results"
WHEN = "2026-11-20T12:00:00Z"  # the served generated demos' evaluation time
WINDOW = "5m"


def _handler_s(url: str) -> float:
    """Seconds the server spent in its query handlers so far (its own /metrics)."""
    total = 0.0
    for line in requests.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("prometheus_http_request_duration_seconds_sum{") and (
                'handler="/api/v1/query"' in line or 'handler="/api/v1/query_range"' in line):
            total += float(line.rsplit(" ", 1)[1])
    return total


def queries(url: str, runs: int) -> dict[str, Any]:
    """The edge queries raw and over the edge series, alternated; per form the medians."""
    forms = {f"{name} {kind}": q.render(WINDOW, edge=kind == "edge:*")
             for name, q in GRAPH_QUERIES.items() if q.edge_rule for kind in ("raw", "edge:*")}
    seen: dict[str, list[dict[str, float]]] = {k: [] for k in forms}
    for _ in range(runs):
        for label, promql in forms.items():
            got = timed_query(f"{url}/api/v1/query", {"query": promql, "time": WHEN})
            seen[label].append({"eval_s": got.eval_s, "wall_s": got.wall_s, "series": len(got.result),
                                "bytes": got.size, "samples": got.samples})
    return {label: {k: statistics.median(r[k] for r in rows) for k in rows[0]} | {"runs": len(rows)}
            for label, rows in seen.items()}


def ask(url: str, service: str, configs: dict[str, tuple[str, str | None, str]], runs: int,
        out: Path) -> dict[str, Any]:
    """Each config's live question, alternated ``runs`` times."""
    rows: dict[str, list[dict[str, float]]] = {k: [] for k in configs}
    same: dict[str, bool] = dict.fromkeys(configs, True)
    first = next(iter(configs))
    for run in range(runs):
        for label, (config, path, python) in configs.items():
            env = dict(os.environ)
            if path:
                env["PYTHONPATH"] = path
            target = out / f"{label}-{run + 1}.json"
            before = _handler_s(url)
            began = time.perf_counter()
            done = subprocess.run([python, "-m", "meshobs", "-v", "diagnose", service, "--config", config,
                                   "-o", "json"], env=env, stdout=target.open("wb"), stderr=subprocess.PIPE,
                                  check=False, cwd=out)  # not here: ./meshobs would shadow PYTHONPATH
            wall = time.perf_counter() - began
            rows[label].append({"wall_s": wall, "prometheus_s": _handler_s(url) - before, "rc": done.returncode})
            (out / f"{label}-{run + 1}.err").write_bytes(done.stderr)
            # Every run's answer against the first label's first (a timed-out query under load
            # changes the answer: the run's files are kept to say which).
            if target.read_bytes() != (out / f"{first}-1.json").read_bytes():
                same[label] = False
            print(f"{label} run {run + 1}: {wall:.2f} s (rc {done.returncode})", file=sys.stderr, flush=True)
    return {label: {"wall_s": statistics.median(r["wall_s"] for r in rs),
                    "walls": [round(r["wall_s"], 2) for r in rs],
                    "prometheus_s": statistics.median(r["prometheus_s"] for r in rs),
                    "rc": [int(r["rc"]) for r in rs], "same_json_as_first": same[label], "files": str(out)}
            for label, rs in rows.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prometheus", required=True, help="a Prometheus holding the edge rules")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--ask", action="append", default=[], metavar="LABEL=CONFIG[,PYTHONPATH,PYTHON]")
    parser.add_argument("--service", default="ns-04/svc-2994")
    parser.add_argument("--out", default="edge-rules")
    args = parser.parse_args()
    url = args.prometheus.rstrip("/")
    result: dict[str, Any] = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                              "load_average": os.getloadavg(), "service": args.service}
    result["queries"] = queries(url, args.runs)
    configs: dict[str, tuple[str, str | None, str]] = {}
    for label, rest in (a.split("=", 1) for a in args.ask):
        config, path, python = (*rest.split(","), None, None)[:3]
        configs[label] = (config, path, python or sys.executable)
    if configs:
        out = Path(os.environ.get("TMPDIR", "/tmp")) / f"edge-rules-{os.getpid()}"
        out.mkdir(parents=True, exist_ok=True)
        result["questions"] = ask(url, args.service, configs, args.runs, out)
    result["load_average_end"] = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=1) + "\n")
    print("| query | server eval s (median) | wall s | series | samples read | bytes |\n|---|---|---|---|---|---|")
    for label, r in result["queries"].items():
        print(f"| {label} | {r['eval_s']:.3f} | {r['wall_s']:.3f} | {r['series']:,.0f} | {r['samples']:,.0f} "
              f"| {r['bytes']:,.0f} |")
    if configs:
        print("\n| question | wall s (median) | runs | Prometheus handler s (median) | same JSON |")
        print("|---|---|---|---|---|")
        for label, r in result["questions"].items():
            print(f"| {label} | {r['wall_s']:.2f} | {', '.join(map(str, r['walls']))} | {r['prometheus_s']:.2f} "
                  f"| {'yes' if r['same_json_as_first'] else 'NO'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
