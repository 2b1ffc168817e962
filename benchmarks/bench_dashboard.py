"""Dashboard speed on generated meshes: time to first full render, per-refresh time, and how
long input waits while refreshes run.

    .venv/bin/python benchmarks/bench_dashboard.py [--sizes 1000 5000] [--refreshes 3] [--note TEXT]

For each size the generated demo mesh is rendered into a bundle and normalised once (that is
collection, not dashboard, cost: reported as ``snapshot_build_s``; ``--cache DIR`` keeps the
generated bundle between runs). The app then runs headless (``run_test``) at 160x48 with a
loader that returns the snapshot, each refresh with every edge's rate scaled so every row
changes. While refreshes run:

* **key latency**: a ↓ or ↑ is sent through the driver every 50 ms, as a terminal would, and
  the time until the table's cursor moved is recorded: how long a key press waits;
* **tick gaps**: a 10 ms UI timer records the largest gap between its ticks;
* the same two are measured for a few seconds with no refresh running (``idle``): on a shared
  machine the operating system alone stalls the process, and that is not the dashboard's doing.

The UI thread's CPU time per applied load (``ui_apply_cpu_ms``, thread time, not wall time)
says what the dashboard itself costs on that thread, whatever the machine's load; the table
work a load leaves for later turns of the event loop is timed slice by slice
(``ui_slice_cpu_max_ms``: the longest the UI thread worked in one go). ``gc`` lists the longest
garbage collections (any thread's: a collection holds the GIL). The first full render is
counted from the app's start, from the first load reaching the UI thread
(``first_render_after_load_s``) and from the sources' answer (``first_render_after_sources_s``,
which adds the worker's diagnosis).

Writes benchmarks/results/dashboard.json and dashboard.md.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import pickle
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import events
from textual.message import Message

from meshobs.collect import build_snapshot
from meshobs.demo.catalog import load_demo
from meshobs.model import MeshSnapshot
from meshobs.tui.app import MeshobsApp
from meshobs.tui.data import DataLoaded, SnapshotLoader
from meshobs.tui.widgets.tables import SyncTable

RESULTS = Path(__file__).parent / "results"
TICK_S = 0.010
KEY_EVERY_S = 0.050
IDLE_S = 4.0


class TimedApp(MeshobsApp):
    """Records how long the UI thread spends showing each load (wall and thread CPU time): the
    handler of the load itself, then every slice of table work it left for later turns of the
    event loop (``SyncTable._update_rows`` / ``_add_chunk`` run from timers)."""

    ui_times: list[float]
    ui_cpu: list[float]
    slices: list[list[float]]  # per load: the thread CPU time of each later slice
    posted: list[float]  # per load: when the worker posted it (perf_counter)

    def post_message(self, message: Message) -> bool:
        if isinstance(message, DataLoaded):
            self.posted.append(time.perf_counter())
        return super().post_message(message)

    def on_data_loaded(self, message: DataLoaded) -> None:
        t, c = time.perf_counter(), time.thread_time()
        self.slices.append([])
        self.in_handler = True
        try:
            super().on_data_loaded(message)
        finally:
            self.in_handler = False
        self.ui_times.append(time.perf_counter() - t)
        self.ui_cpu.append(time.thread_time() - c)
        # Textual calls every class's handler in the MRO: without this, MeshobsApp's ran twice.
        message.prevent_default()


def time_slices(app: TimedApp) -> Callable[[], None]:
    """Wrap the table's slice methods so each call outside the load handler is timed; returns
    what puts them back (one app per size in one process: wrappers must not pile up, each
    older app's timing every later slice too)."""
    originals = {name: getattr(SyncTable, name) for name in ("_update_rows", "_add_chunk")}
    for name, original in originals.items():

        def timed(self: SyncTable, *args: Any, _original: Any = original) -> Any:
            if getattr(app, "in_handler", True) or not app.slices:
                return _original(self, *args)
            c = time.thread_time()
            try:
                return _original(self, *args)
            finally:
                app.slices[-1].append(time.thread_time() - c)

        setattr(SyncTable, name, timed)

    def restore() -> None:
        for name, original in originals.items():
            setattr(SyncTable, name, original)

    return restore


class GcPauses:
    """The longest garbage collections while the app runs: a collection holds the GIL, so one
    in the worker stops the UI thread too. Thread CPU time (what the collection itself cost)
    and wall time (that plus whatever the shared machine took away meanwhile)."""

    def __init__(self) -> None:
        self.pauses: list[tuple[float, float, int]] = []  # (cpu s, wall s, generation)
        self._start = (0.0, 0.0)

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = (time.thread_time(), time.perf_counter())
        else:
            cpu, wall = time.thread_time() - self._start[0], time.perf_counter() - self._start[1]
            self.pauses.append((cpu, wall, info["generation"]))

    def summary(self) -> dict[str, Any]:
        longest = sorted(self.pauses, reverse=True)[:3]
        return {"collections": len(self.pauses),
                "longest_cpu_ms_wall_ms_generation": [(round(c * 1000, 1), round(w * 1000, 1), g)
                                                      for c, w, g in longest]}


def scaled(snapshot: MeshSnapshot, factor: float) -> MeshSnapshot:
    """The same mesh with every edge busier: a refresh in which every row changes."""
    edges = tuple(dataclasses.replace(e, request_rate=e.request_rate * factor,
                                      responses=tuple(dataclasses.replace(r, rate=r.rate * factor)
                                                      for r in e.responses))
                  for e in snapshot.edges)
    return dataclasses.replace(snapshot, edges=edges)


class Probe:
    """Sends a key every 50 ms and times until the table's cursor moved; ticks a 10 ms timer."""

    def __init__(self, app: MeshobsApp) -> None:
        self.app = app
        self.latencies: list[float] = []
        self.gaps: list[float] = []
        self._last = time.perf_counter()
        self._running = False

    def tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self._last)
        self._last = now

    async def keys(self) -> None:
        table = self.app.screen.query_one("#services", SyncTable)
        down = True
        while self._running:
            before = table.cursor_row
            key = events.Key("down" if down else "up", None)
            key.set_sender(self.app)
            sent = time.perf_counter()
            self.app._driver.send_message(key)  # as a terminal delivers it
            while table.cursor_row == before and self._running:
                await asyncio.sleep(0.001)
            if table.cursor_row != before:
                self.latencies.append(time.perf_counter() - sent)
            down = not down
            await asyncio.sleep(KEY_EVERY_S)

    async def measure(self, work: Any) -> dict[str, Any]:
        """Run the probes while ``work`` (a coroutine) runs; their statistics."""
        self.latencies, self.gaps, self._running = [], [], True
        self._last = time.perf_counter()
        timer = self.app.set_interval(TICK_S, self.tick)
        keys = asyncio.create_task(self.keys())
        try:
            await work
        finally:
            self._running = False
            timer.stop()
            await keys
        lat = sorted(self.latencies)
        gaps = [g - TICK_S for g in self.gaps]
        return {"keys": len(lat),
                "key_latency_median_ms": round(statistics.median(lat) * 1000, 1) if lat else None,
                "key_latency_p95_ms": round(lat[int(0.95 * (len(lat) - 1))] * 1000, 1) if lat else None,
                "key_latency_max_ms": round(lat[-1] * 1000, 1) if lat else None,
                "max_tick_gap_ms": round(max(gaps) * 1000, 1) if gaps else None}


async def run_app(snapshot: MeshSnapshot, refreshes: int, diagnose: bool) -> dict[str, Any]:
    calls = [0]

    def produce() -> MeshSnapshot:
        calls[0] += 1
        return snapshot if calls[0] == 1 else scaled(snapshot, 1.0 + calls[0] / 10)

    app = TimedApp(SnapshotLoader(produce, live=True, description="bench"), refresh_s=0, diagnose=diagnose)
    app.ui_times, app.ui_cpu, app.slices, app.posted = [], [], [], []
    untime_slices = time_slices(app)
    gc_pauses = GcPauses()
    gc.callbacks.append(gc_pauses)
    out: dict[str, Any] = {}
    started = time.perf_counter()
    async with app.run_test(size=(160, 48)) as pilot:
        while app.analysis is None:
            await asyncio.sleep(0.002)
        table = app.screen.query_one("#services", SyncTable)
        while not table.settled or table.row_count < len(app.analysis.rows):
            await asyncio.sleep(0.002)
        done = time.perf_counter()
        out["first_render_s"] = done - started
        out["first_worker"] = w = app.analysis.timings
        # "After the first answer": from the first load reaching the UI (posted by the worker),
        # and from the sources' answer (the worker then diagnosed and built the rows).
        out["first_render_after_load_s"] = done - app.posted[0]
        out["first_render_after_sources_s"] = done - app.posted[0] + w["diagnose_s"] + w["view_s"]
        await pilot.pause()
        probe = Probe(app)
        out["idle"] = await probe.measure(asyncio.sleep(IDLE_S))
        refresh_times, workers = [], []

        async def refresh_all() -> None:
            for _ in range(refreshes):
                before = app.loads
                t = time.perf_counter()
                app.action_refresh()
                while app.loads == before or not table.settled:
                    await asyncio.sleep(0.005)
                await pilot.pause()
                refresh_times.append(time.perf_counter() - t)
                workers.append(app.analysis.timings)  # type: ignore[union-attr]

        gc_pauses.pauses.clear()  # only the collections while refreshing (the first load's are not input waits)
        out["during_refresh"] = await probe.measure(refresh_all())
        out["refresh_s"] = refresh_times
        out["refresh_worker"] = workers
        out["ui_apply_s"] = app.ui_times
        out["ui_apply_cpu_ms"] = [round(c * 1000, 1) for c in app.ui_cpu]
        out["ui_slices"] = [len(s) for s in app.slices]
        out["ui_slice_cpu_max_ms"] = [round(max(s, default=0) * 1000, 1) for s in app.slices]
        out["ui_slices_cpu_total_ms"] = [round(sum(s) * 1000, 1) for s in app.slices]
        out["rows"] = len(app.analysis.rows)
    gc.callbacks.remove(gc_pauses)
    untime_slices()
    out["gc"] = gc_pauses.summary()
    return out


def generated(size: int, cache: Path | None) -> Any:
    if cache is not None:
        path = cache / f"generated-{size}.bundle.pickle"
        if path.is_file():
            return pickle.loads(path.read_bytes())
    bundle = load_demo(f"generated-{size}")
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(bundle))
    return bundle


def bench(size: int, refreshes: int, diagnose: bool, cache: Path | None) -> dict[str, Any]:
    t = time.perf_counter()
    bundle = generated(size, cache)
    snapshot = build_snapshot(bundle, origin=f"demo:generated-{size}")
    build_s = time.perf_counter() - t
    result = asyncio.run(run_app(snapshot, refreshes, diagnose))
    return {"services": size, "snapshot_build_s": round(build_s, 2), "diagnose": diagnose, **result}


def markdown(results: list[dict[str, Any]], note: str) -> str:
    lines = ["# Dashboard benchmark", "",
             f"Machine: {platform.machine()}, Python {platform.python_version()}, 2 cores shared with other "
             "engineers' test suites and benchmarks: absolute times are noisy; compare within one run. "
             "Headless app at 160x48.", ""]
    if note:
        lines += [note, ""]
    lines += ["| services | first full render: from start / after the load reached the UI / after the sources "
              "answered | refresh (each) | UI thread per load: handler CPU (wall) | UI thread per load: later "
              "slices (count, max CPU, total CPU) | worker: load / diagnose / view | key latency idle: median / "
              "max | key latency during refreshes: median / p95 / max | max tick gap idle / refreshing |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        w = r["refresh_worker"][-1] if r["refresh_worker"] else r["first_worker"]
        idle, busy = r["idle"], r["during_refresh"]
        label = f" ({r['label']})" if r.get("label") else ""
        lines.append(
            f"| {r['services']}{label} | {r['first_render_s']:.2f} s / {r['first_render_after_load_s']:.2f} s / "
            f"{r['first_render_after_sources_s']:.2f} s | "
            + ", ".join(f"{x:.2f} s" for x in r["refresh_s"]) + " | "
            + ", ".join(f"{c:.0f} ms ({x * 1000:.0f})" for c, x in zip(r["ui_apply_cpu_ms"], r["ui_apply_s"])) + " | "
            + ", ".join(f"{n}, {m:.0f} ms, {t:.0f} ms" for n, m, t in
                        zip(r["ui_slices"], r["ui_slice_cpu_max_ms"], r["ui_slices_cpu_total_ms"])) + " | "
            + f"{w['load_s']:.2f} / {w['diagnose_s']:.2f} / {w['view_s']:.2f} s | "
            + f"{idle['key_latency_median_ms']} / {idle['key_latency_max_ms']} ms | "
            + f"{busy['key_latency_median_ms']} / {busy['key_latency_p95_ms']} / {busy['key_latency_max_ms']} ms "
            + f"({busy['keys']} keys) | {idle['max_tick_gap_ms']} / {busy['max_tick_gap_ms']} ms |")
    lines += ["", "First full render: until the overview table holds every service, counted from the app's start "
              "(load, diagnosis and view models in the worker, then the table), from the moment the worker posted "
              "the first load to the UI thread, and from the sources' answer (that plus the worker's diagnosis and "
              "view time). A refresh changes every row's numbers. UI thread per load: CPU time the UI thread spent "
              "in the handler of each load (first, then each refresh), wall time in brackets; later slices: the "
              "table work it left for later turns of the event loop, each slice timed apart (keys are read between "
              "slices). Key latency: a ↓/↑ sent through the driver every 50 ms until the cursor moved. Tick gap: "
              "largest gap between ticks of a 10 ms UI timer, minus 10 ms. Idle: the same with no refresh running, "
              "i.e. what the shared machine alone costs. Collection cost (rendering and normalising the generated "
              "bundle) is `snapshot_build_s` in dashboard.json.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--refreshes", type=int, default=3)
    parser.add_argument("--no-diagnose-above", type=int, default=10_000,
                        help="skip the engine for meshes larger than this (its cost is in bench_diagnose)")
    parser.add_argument("--cache", type=Path, help="keep generated bundles here between runs")
    parser.add_argument("--note", default="", help="a line for the results page (what changed, machine load)")
    parser.add_argument("--label", default="", help="names this run in the table (e.g. the commit)")
    args = parser.parse_args()
    results = []
    for size in args.sizes:
        r = bench(size, args.refreshes, size <= args.no_diagnose_above, args.cache)
        if args.label:
            r["label"] = args.label
        print(json.dumps(r, default=str), flush=True)
        results.append(r)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dashboard.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (RESULTS / "dashboard.md").write_text(markdown(results, args.note))


if __name__ == "__main__":
    main()
