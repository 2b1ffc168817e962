"""Where a live ``diagnose SERVICE`` spends its wall time, from the process's start: before and
after, alternated on the same served mesh.

    .venv/bin/python benchmarks/live_split.py --config /tmp/serve-1000/meshobs.yaml \
        --service ns-04/svc-0594 --before /path/to/other/checkout --runs 5 [--out NAME]

Each run is the real command (``python -m meshobs diagnose SERVICE -o json``) started by this
script, which notes the time just before starting it (the process's start), and reads
Prometheus's own answering time from its /metrics before and after (as bench_collect does).
Inside the child, a few functions are wrapped (by name, only those imported before the command
runs, so nothing is imported earlier than the command would import it) and every HTTP request's
send and answer is noted (urllib3: every collector's client goes through it). Marks, in seconds
from the process's start: configuration loaded; first request sent; first PromQL query sent;
the graph phase's end; the graph assembled; the scoped phase's end (the question was resolved
before it started); the snapshot built; exit (diagnosed and printed). And the process's CPU time,
and, for static Envoy targets behind one port (the served demo), the admin requests sent and
the megabytes of their bodies read.

Medians per mark over the runs; ``wall / answering`` is the CLI's wall time over Prometheus's
own answering time for the queries of that run (the issue's 1.5x target). The machine may be
shared: compare the before and after columns of the same run only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_collect import prometheus_seconds  # noqa: E402 - the benchmark's own reading

# Runs inside the child: SPLIT_T0 is the parent's time.monotonic() just before it started us.
CHILD = r'''
import atexit, json, os, sys, threading, time
T0 = float(os.environ["SPLIT_T0"])
marks, requests = {}, []
def mark(name, first=False):
    now = time.monotonic() - T0
    if not (first and name in marks):
        marks[name] = now
from urllib3.connectionpool import HTTPConnectionPool
send = HTTPConnectionPool._make_request
prom_port = os.environ.get("SPLIT_PROM_PORT")
def timed(self, conn, method, url, *a, **k):
    sent = time.monotonic() - T0
    try:
        return send(self, conn, method, url, *a, **k)
    finally:
        requests.append((sent, time.monotonic() - T0, str(self.port) == prom_port))
HTTPConnectionPool._make_request = timed
# Bytes of Envoy admin bodies: every body is read through urllib3's HTTPResponse.stream
# (requests' BoundedAdapter) or .read; only the admin port's are counted.
from urllib3.response import HTTPResponse
envoy_port = os.environ.get("SPLIT_ENVOY_PORT")
envoy = {"requests": 0, "bytes": 0}
stream = HTTPResponse.stream
def counted(self, *a, **k):
    mine = str(getattr(getattr(self, "_pool", None), "port", "")) == envoy_port
    for chunk in stream(self, *a, **k):
        if mine:
            envoy["bytes"] += len(chunk)
        yield chunk
HTTPResponse.stream = counted
send_envoy = HTTPConnectionPool.urlopen
def urlopen(self, *a, **k):
    if str(self.port) == envoy_port:
        envoy["requests"] += 1
    return send_envoy(self, *a, **k)
HTTPConnectionPool.urlopen = urlopen
import meshobs.cli.common as common, meshobs.collect as collect
def wrap(owner, attr, before=None, after=None):
    fn = getattr(owner, attr)
    def w(*a, **k):
        if before: before(a)
        try:
            return fn(*a, **k)
        finally:
            if after: after(a)
    setattr(owner, attr, w)
wrap(common, "load_config", after=lambda a: mark("config loaded"))
wrap(collect, "_fetch_phase", after=lambda a: mark(f"{a[1].phase or 'only'} phase end"))
builds = []
def built(a):
    builds.append(1)
    graph = len(builds) == 1 and "graph phase end" in marks and "scoped phase end" not in marks
    mark("graph assembled" if graph else "snapshot built")
wrap(collect, "build_snapshot", after=built)
def done():
    mark("exit")
    t = os.times()
    first = min((s for s, _, _ in requests), default=None)
    first_prom = min((s for s, _, p in requests if p), default=None)
    print("SPLIT " + json.dumps({**marks, "first request sent": first, "first PromQL sent": first_prom,
                                 "cpu": t.user + t.system, "envoy requests": envoy["requests"],
                                 "envoy MB": envoy["bytes"] / 1e6}), file=sys.stderr)
atexit.register(done)
from meshobs.cli.main import main
sys.argv = ["meshobs", *sys.argv[1:]]
main()
'''

ORDER = ("config loaded", "first request sent", "first PromQL sent", "graph phase end", "graph assembled",
         "scoped phase end", "snapshot built", "exit")


def one(checkout: Path, config: str, service: str, prom: str | None, env: dict[str, str]) -> dict[str, Any]:
    before = prometheus_seconds(prom) if prom else (0.0, 0, 0.0)
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", CHILD, "diagnose", service, "--config", config, "-o", "json",
                           "--timeout", "600s"], cwd=checkout, capture_output=True, text=True,
                          env={**env, "SPLIT_T0": repr(start)})
    wall = time.monotonic() - start
    after = prometheus_seconds(prom) if prom else (0.0, 0, 0.0)
    line = next((ln for ln in reversed(done.stderr.splitlines()) if ln.startswith("SPLIT ")), None)
    if line is None:
        raise SystemExit(f"{checkout}: no marks\n{done.stderr[-2000:]}")
    row = json.loads(line[len("SPLIT "):])
    return {**row, "wall": wall, "answering": after[0] - before[0], "queries": after[1] - before[1],
            "code": done.returncode, "stdout": done.stdout}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--service", required=True)
    parser.add_argument("--before", required=True, help="the other checkout (e.g. an export of main, precompiled)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", help="write the table to benchmarks/results/NAME.md too")
    args = parser.parse_args()
    from meshobs.config import load_config

    config = load_config(args.config)
    prom = (config.sources.get("prometheus") or {}).get("url") if config else None
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    if prom:
        env["SPLIT_PROM_PORT"] = prom.rsplit(":", 1)[1].split("/")[0]
    targets = ((config.sources.get("envoy") or {}).get("targets") or []) if config else []
    if targets:  # static targets (the served demo: every admin API behind one port)
        env["SPLIT_ENVOY_PORT"] = str(urlsplit(targets[0]["url"]).port)
    checkouts = {"before": Path(args.before).resolve(), "after": HERE.parent}
    rows: dict[str, list[dict[str, Any]]] = {k: [] for k in checkouts}
    same = True
    for i in range(args.runs):
        order = list(checkouts) if i % 2 == 0 else list(checkouts)[::-1]
        outs = {}
        for name in order:
            row = one(checkouts[name], args.config, args.service, prom, env)
            rows[name].append(row)
            outs[name] = (row["code"], row.pop("stdout"))
        same = same and outs["before"] == outs["after"]
    lines = [f"live `diagnose {args.service} -o json`, {args.runs} runs each, alternated; load average at the end "
             f"{os.getloadavg()[0]:.1f}; same stdout and exit code in every pair: {same}", "",
             "| seconds from process start (median) | before | after |", "|---|---|---|"]

    def med(name: str, key: str) -> str:
        values = [r[key] for r in rows[name] if r.get(key) is not None]
        return f"{statistics.median(values):.3f}" if values else "-"

    for key in (*ORDER, "wall", "cpu", "answering", "envoy requests", "envoy MB"):
        lines.append(f"| {key} | {med('before', key)} | {med('after', key)} |")
    ratios = {name: [r["wall"] / r["answering"] for r in rows[name] if r["answering"]] for name in checkouts}
    lines.append("| wall / Prometheus answering (median of the runs' ratios) | "
                 + " | ".join(f"{statistics.median(v):.2f}" if v else "-" for v in ratios.values()) + " |")
    lines.append("")
    lines.append("walls: " + "; ".join(f"{k} {[round(r['wall'], 2) for r in v]}" for k, v in rows.items()))
    text = "\n".join(lines)
    print(text)
    if args.out:
        (HERE / "results" / f"{args.out}.md").write_text(text + "\n")
        with tempfile.NamedTemporaryFile("w", delete=False, dir=HERE / "results", suffix=".json") as f:
            json.dump(rows, f)
        os.replace(f.name, HERE / "results" / f"{args.out}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
