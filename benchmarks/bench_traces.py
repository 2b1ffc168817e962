"""Trace parsing and critical-path analysis: meshobs against the Jaeger UI's own pipeline.

    .venv/bin/python benchmarks/bench_traces.py [--traces 2000] [--repeats 5]
    # writes benchmarks/results/traces.json and traces.md

What is compared, from a search answer already in memory to every trace's critical path:

* **meshobs**: ``jaeger.normalize`` on the raw search answers exactly as the collector records
  them (JSON decoding, span model, id normalisation, de-duplication), then the critical path
  of every trace (``critical_paths``, every root) and the per-hop ranking the slow-hop check
  uses (``rank_hops``). Measured on the ``/api/v3`` answers (OTLP JSON, what meshobs asks
  first) and on the ``/api/traces`` answers (v1, its fallback).
* **Jaeger UI**: ``benchmarks/jaeger_ui/trace_pipeline.mjs`` under Node: ``JSON.parse`` of the
  ``/api/traces`` answers (the API the UI calls), ``transformTraceData`` of every trace and
  ``criticalPathForTrace`` of every trace: the UI's functions re-typed from its source (it is
  not published to the npm registry; see that file's header).

Both sides get the same 2,000 traces (``benchmarks/trace_corpus.py``: an Istio freight mesh of
its own, ~120 spans a trace, Envoy's attributes), split over 20 service searches. Each side
runs ``--repeats`` times in one process; the medians and their ratio come from the same run.
The machine is shared (2 cores, other engineers' builds and tests): the load average is
recorded next to the numbers, and only same-run ratios should be compared.
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
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import trace_corpus  # noqa: E402

from meshobs.collectors import jaeger  # noqa: E402
from meshobs.collectors.base import NormalizeContext  # noqa: E402
from meshobs.critical_path import critical_paths, rank_hops  # noqa: E402
from meshobs.raw import Payload, RawSource  # noqa: E402

CTX = NormalizeContext(datetime(2026, 11, 21, 12, 0, tzinfo=UTC), 300)
PIPELINE = REPO / "benchmarks" / "jaeger_ui" / "trace_pipeline.mjs"


def raw_source(bodies: list[str], api: str) -> RawSource:
    payloads = [Payload("services", body=json.dumps({"services": ["edge-gateway.ingress"]}), status=200,
                        meta={"api": api})]
    payloads += [Payload(f"traces/search-{i}", body=b, status=200, meta={"api": api}) for i, b in enumerate(bodies)]
    return RawSource("jaeger", "jaeger", payloads=payloads, meta={"url": "bench", "api": api})


def meshobs_run(raw: RawSource) -> dict[str, float]:
    c0, t0 = time.process_time(), time.perf_counter()
    part = jaeger.normalize(raw, CTX)
    t1 = time.perf_counter()
    paths = critical_paths(part.traces)
    ranked = rank_hops(paths)
    c2, t2 = time.process_time(), time.perf_counter()
    assert part.sources[0].state.value == "ok", part.sources[0]
    return {"total_s": t2 - t0, "cpu_s": c2 - c0, "parse_s": t1 - t0, "analyse_s": t2 - t1,
            "traces": len(part.traces), "spans": sum(len(t.spans) for t in part.traces), "hops": len(ranked)}


def jaeger_ui_runs(files: list[str], repeats: int) -> dict[str, object]:
    out = subprocess.run(["node", "--stack-size=65500", str(PIPELINE), str(repeats), *files],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def median(runs: list[dict[str, float]], key: str) -> float:
    return round(statistics.median(r[key] for r in runs), 3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--traces", type=int, default=2000)
    parser.add_argument("--searches", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "traces"))
    parser.add_argument("--render", action="store_true", help="only rewrite the .md from the .json")
    args = parser.parse_args()
    if args.render:
        Path(args.out).with_suffix(".md").write_text(markdown(json.loads(Path(args.out).with_suffix(".json")
                                                                         .read_text())))
        return

    traces = trace_corpus.corpus(args.traces)
    v3 = raw_source(trace_corpus.otlp_bodies(traces, args.searches), "v3")
    v1_bodies = trace_corpus.v1_bodies(traces, args.searches)
    v1 = raw_source(v1_bodies, "v1")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i, body in enumerate(v1_bodies):
            path = Path(tmp) / f"search-{i}.json"
            path.write_text(body)
            files.append(str(path))
        ui = jaeger_ui_runs(files, args.repeats)
        ours_v3 = [meshobs_run(v3) for _ in range(args.repeats)]
        ours_v1 = [meshobs_run(v1) for _ in range(args.repeats)]
        ui_again = jaeger_ui_runs(files, args.repeats)  # before and after: load drifts
    ui_runs = ui["runs"] + ui_again["runs"]  # type: ignore[operator]
    ui_total = round(statistics.median(r["total_s"] for r in ui_runs), 3)
    result = {
        "traces": ours_v3[0]["traces"], "spans": ours_v3[0]["spans"],
        "spans_per_trace": round(ours_v3[0]["spans"] / ours_v3[0]["traces"], 1),
        "bytes_v3": sum(len(p.body or "") for p in v3.payloads), "bytes_v1": sum(len(b) for b in v1_bodies),
        "searches": args.searches, "repeats": args.repeats,
        "meshobs_v3": {"total_s": median(ours_v3, "total_s"), "cpu_s": median(ours_v3, "cpu_s"),
                       "parse_s": median(ours_v3, "parse_s"), "analyse_s": median(ours_v3, "analyse_s")},
        "meshobs_v1": {"total_s": median(ours_v1, "total_s"), "cpu_s": median(ours_v1, "cpu_s"),
                       "parse_s": median(ours_v1, "parse_s"), "analyse_s": median(ours_v1, "analyse_s")},
        "jaeger_ui": {"total_s": ui_total, "cpu_s": round(statistics.median(r["cpu_s"] for r in ui_runs), 3),
                      "json_parse_s": round(statistics.median(r["json_parse_s"] for r in ui_runs), 3),
                      "first_run_s": round(ui["runs"][0]["total_s"], 3),  # type: ignore[index]
                      "node": ui["node"], "traces": ui["traces"], "spans": ui["spans"]},
        "ratio_meshobs_v3_to_ui": round(median(ours_v3, "total_s") / ui_total, 2),
        "ratio_meshobs_v1_to_ui": round(median(ours_v1, "total_s") / ui_total, 2),
        "cpu_ratio_meshobs_v3_to_ui": round(median(ours_v3, "cpu_s") / statistics.median(r["cpu_s"] for r in ui_runs),
                                            2),
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "python": sys.version.split()[0], "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(result))
    print(json.dumps(result, indent=1))


def markdown(r: dict[str, object]) -> str:
    v3, v1, ui = r["meshobs_v3"], r["meshobs_v1"], r["jaeger_ui"]
    assert isinstance(v3, dict) and isinstance(v1, dict) and isinstance(ui, dict)
    cpu_v1 = round(v1["cpu_s"] / ui["cpu_s"], 2)
    return f"""# Trace parsing and critical path: meshobs vs the Jaeger UI pipeline

{r['traces']} traces, {r['spans']} spans ({r['spans_per_trace']} a trace) over {r['searches']} searches;
medians of {r['repeats']} runs per side ({2 * int(str(r['repeats']))} for the UI: before and after meshobs), same run,
{r['date']}, Python {r['python']}, Node {ui['node']}. Load average before/after: {r['load_average_before_after']}
(2 shared cores, other engineers' test suites running: compare the ratios, not the seconds,
across runs; wall time includes waiting for a core, CPU time is the process's own, V8's GC and
compiler threads included).

| pipeline | input | wall s | CPU s | of it: JSON + model s | critical paths s | wall vs UI | CPU vs UI |
|---|---|---:|---:|---:|---:|---:|---:|
| meshobs | /api/v3 OTLP, {r['bytes_v3']:,} B | {v3['total_s']} | {v3['cpu_s']} | {v3['parse_s']} | \
{v3['analyse_s']} | {r['ratio_meshobs_v3_to_ui']}x | {r['cpu_ratio_meshobs_v3_to_ui']}x |
| meshobs | /api/traces v1, {r['bytes_v1']:,} B | {v1['total_s']} | {v1['cpu_s']} | {v1['parse_s']} | \
{v1['analyse_s']} | {r['ratio_meshobs_v1_to_ui']}x | {cpu_v1}x |
| Jaeger UI code under Node | /api/traces v1 | {ui['total_s']} | {ui['cpu_s']} | JSON.parse {ui['json_parse_s']} | \
- | 1x | 1x |

meshobs: `jaeger.normalize` (JSON, span model, ids, de-duplication) + `critical_paths` of every
trace (every root) + `rank_hops`. Jaeger UI: `JSON.parse` + `transformTraceData` +
`criticalPathForTrace` of every trace (benchmarks/jaeger_ui/trace_pipeline.mjs: the UI's
functions re-typed from its source, since jaeger-ui is not published to the npm registry; the
UI's first run, JIT cold: {ui['first_run_s']} s). /api/v3 is what meshobs asks first; v1 is its
fallback and the API the UI reads.
""" + _before_after(r)


def _before_after(r: dict[str, object]) -> str:
    ba = r.get("before_after_600_traces_v3_parse")
    if not isinstance(ba, dict):
        return ""
    return (f"\nBefore this work (recorded by hand, {ba['how']}): main {ba['main']['wall_s']} s wall / "
            f"{ba['main']['cpu_s']} s CPU, this branch {ba['branch']['wall_s']} s / {ba['branch']['cpu_s']} s.\n")


if __name__ == "__main__":
    main()
