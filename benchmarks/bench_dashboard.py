"""Dashboard speed on generated meshes: time to first full render, per-refresh time, and the
longest time the UI thread (input) stays blocked during a refresh.

    .venv/bin/python benchmarks/bench_dashboard.py [--sizes 1000 5000] [--refreshes 2]

For each size the generated demo mesh is rendered into a bundle and normalised once (that is
collection, not dashboard, cost: reported as ``snapshot_build_s``). The app then runs headless
(``run_test``) at 160x48 with a loader that returns the snapshot, each refresh with every edge's
rate scaled so that every row changes. A 10 ms timer on the UI thread records the largest gap
between its ticks while refreshes run: that is how long a key press could wait.

Writes benchmarks/results/dashboard.json and dashboard.md.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import platform
import time
from pathlib import Path
from typing import Any

from meshobs.collect import build_snapshot
from meshobs.demo.catalog import load_demo
from meshobs.model import MeshSnapshot
from meshobs.tui.app import MeshobsApp
from meshobs.tui.data import DataLoaded, SnapshotLoader

RESULTS = Path(__file__).parent / "results"
TICK_S = 0.010


class TimedApp(MeshobsApp):
    """Records how long the UI thread spends showing each load."""

    ui_times: list[float]

    def on_data_loaded(self, message: DataLoaded) -> None:
        t = time.perf_counter()
        super().on_data_loaded(message)
        self.ui_times.append(time.perf_counter() - t)


def scaled(snapshot: MeshSnapshot, factor: float) -> MeshSnapshot:
    """The same mesh with every edge busier: a refresh in which every row changes."""
    edges = tuple(dataclasses.replace(e, request_rate=e.request_rate * factor,
                                      responses=tuple(dataclasses.replace(r, rate=r.rate * factor)
                                                      for r in e.responses))
                  for e in snapshot.edges)
    return dataclasses.replace(snapshot, edges=edges)


async def run_app(snapshot: MeshSnapshot, refreshes: int, diagnose: bool) -> dict[str, Any]:
    calls = [0]

    def produce() -> MeshSnapshot:
        calls[0] += 1
        return snapshot if calls[0] == 1 else scaled(snapshot, 1.0 + calls[0] / 10)

    app = TimedApp(SnapshotLoader(produce, live=True, description="bench"), refresh_s=0, diagnose=diagnose)
    app.ui_times = []
    gaps: list[float] = []
    out: dict[str, Any] = {}
    started = time.perf_counter()
    async with app.run_test(size=(160, 48)) as pilot:
        while app.analysis is None:
            await asyncio.sleep(0.005)
        await pilot.pause()
        out["first_render_s"] = time.perf_counter() - started
        out["first_worker"] = app.analysis.timings
        last = [time.perf_counter()]

        def tick() -> None:
            now = time.perf_counter()
            gaps.append(now - last[0])
            last[0] = now

        refresh_times, workers = [], []
        for _ in range(refreshes):
            timer = app.set_interval(TICK_S, tick)
            last[0] = time.perf_counter()
            before = app.loads
            t = time.perf_counter()
            app.action_refresh()
            while app.loads == before:
                await asyncio.sleep(0.005)
            await pilot.pause()
            refresh_times.append(time.perf_counter() - t)
            workers.append(app.analysis.timings)
            timer.stop()
        out["refresh_s"] = refresh_times
        out["refresh_worker"] = workers
        out["ui_apply_s"] = app.ui_times
        out["max_input_block_ms"] = round(max(gaps) * 1000 - TICK_S * 1000, 1) if gaps else None
        out["ticks"] = len(gaps)
        out["rows"] = len(app.analysis.rows)
    return out


def bench(size: int, refreshes: int, diagnose: bool) -> dict[str, Any]:
    t = time.perf_counter()
    bundle = load_demo(f"generated-{size}")
    snapshot = build_snapshot(bundle, origin=f"demo:generated-{size}")
    build_s = time.perf_counter() - t
    result = asyncio.run(run_app(snapshot, refreshes, diagnose))
    return {"services": size, "snapshot_build_s": round(build_s, 2), "diagnose": diagnose, **result}


def markdown(results: list[dict[str, Any]]) -> str:
    lines = ["# Dashboard benchmark", "",
             f"Machine: {platform.machine()}, Python {platform.python_version()}; shared by other "
             "jobs, so absolute numbers are noisy. Headless app at 160x48.", "",
             "| services | diagnose | first full render | refresh (each) | of which UI thread "
             "| worker: load / diagnose / view | max input block |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        w = r["refresh_worker"][-1] if r["refresh_worker"] else r["first_worker"]
        lines.append(
            f"| {r['services']} | {'yes' if r['diagnose'] else 'no'} | {r['first_render_s']:.2f} s | "
            + ", ".join(f"{x:.2f} s" for x in r["refresh_s"]) + " | "
            + ", ".join(f"{x * 1000:.0f} ms" for x in r["ui_apply_s"]) + " | "
            + f"{w['load_s']:.2f} / {w['diagnose_s']:.2f} / {w['view_s']:.2f} s | {r['max_input_block_ms']} ms |")
    lines += ["", "First full render: app start until the overview table holds every service (load, diagnosis, "
              "view models in the worker, then the table). A refresh changes every row's numbers. "
              "`of which UI thread`: the time the UI thread spent applying a load (first one, then each "
              "refresh). Max input block: largest gap between ticks of a 10 ms UI timer during the refreshes, "
              "minus 10 ms. Collection cost (rendering and normalising the generated bundle) is "
              "`snapshot_build_s` in dashboard.json.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--refreshes", type=int, default=2)
    parser.add_argument("--no-diagnose-above", type=int, default=10_000,
                        help="skip the engine for meshes larger than this (its cost is in bench_diagnose)")
    args = parser.parse_args()
    results = []
    for size in args.sizes:
        r = bench(size, args.refreshes, diagnose=size <= args.no_diagnose_above)
        print(json.dumps(r, default=str), flush=True)
        results.append(r)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dashboard.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (RESULTS / "dashboard.md").write_text(markdown(results))


if __name__ == "__main__":
    main()
