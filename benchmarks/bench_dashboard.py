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

A load is shown in two stages (the table with the traffic as soon as the sources answered,
then the findings when the diagnosis finished): both are timed from the sources' answer (the
moment the loader returned the snapshot), for the first load and for every refresh.

The UI thread's CPU time per applied load (``ui_apply_cpu_ms``, thread time, not wall time)
says what the dashboard itself costs on that thread, whatever the machine's load; the table
work a load leaves for later turns of the event loop is timed slice by slice
(``ui_slice_cpu_max_ms``: the longest the UI thread worked in one go). ``gc`` lists the longest
garbage collections while refreshing (any thread's: a collection holds the GIL), and those on the
UI thread apart (``ui_gc_longest_wall_ms``, ``ui_gc_gen2``: a key waits for the whole of one;
generation and objects freed in ``gc_runs``). After each refresh the process's RSS and how many
objects are frozen away from the collector are recorded (``--refreshes 30``: a long session
must not grow); the machine's load average before and after each size is in the results. The first full render is
counted from the app's start, from the first load reaching the UI thread
(``first_render_after_load_s``) and from the sources' answer (``first_render_after_sources_s``);
``findings_after_sources_s``: until the diagnosed rows are in the table too. ``--runs N``
repeats the app N times per size: the page quotes medians (key waits: the largest of any run).

Writes benchmarks/results/dashboard.json and dashboard.md.
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import gc
import json
import os
import pickle
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import events
from textual.message import Message

from meshobs.collect import build_snapshot
from meshobs.demo.catalog import load_demo
from meshobs.model import MeshSnapshot
from meshobs.tui import data as tui_data
from meshobs.tui.app import MeshobsApp
from meshobs.tui.data import DataLoaded, SnapshotLoader
from meshobs.tui.widgets.tables import SyncTable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.builders import busier

RESULTS = Path(__file__).parent / "results"
TICK_S = 0.010
KEY_EVERY_S = 0.050
IDLE_S = 4.0
# --stalls: a key that has waited this long has every thread's stack dumped (and again every
# STALL_S while it waits) by faulthandler's watchdog, a C thread that needs no GIL: it sees what
# the worker is doing while the UI thread cannot run.
STALL_S = 0.060
STALLS: Any = None  # the open dump file while --stalls is on


# The diagnosis's own message (absent before the two-stage render: then one message per load).
DiagnosisReady: Any = getattr(tui_data, "DiagnosisReady", None)
LOAD_MESSAGES = tuple(m for m in (DataLoaded, DiagnosisReady) if m is not None)


class TimedApp(MeshobsApp):
    """Records how long the UI thread spends showing each load message (wall and thread CPU
    time): the handler itself (numbers, then findings: each counts), then every slice of table
    work it left for later turns of the event loop (``SyncTable._update_rows`` / ``_add_chunk``
    run from timers)."""

    ui_times: list[float]
    ui_cpu: list[float]
    slices: list[list[float]]  # per load message: the thread CPU time of each later slice
    posted: list[float]  # per load message: when the worker posted it (perf_counter)

    def post_message(self, message: Message) -> bool:
        if isinstance(message, LOAD_MESSAGES):
            self.posted.append(time.perf_counter())
        return super().post_message(message)

    def _timed(self, handler: Callable[[Any], None], message: Message) -> None:
        t, c = time.perf_counter(), time.thread_time()
        self.slices.append([])
        self.in_handler = True
        try:
            handler(message)
        finally:
            self.in_handler = False
        self.ui_times.append(time.perf_counter() - t)
        self.ui_cpu.append(time.thread_time() - c)
        # Textual calls every class's handler in the MRO: without this, MeshobsApp's ran twice.
        message.prevent_default()

    def on_data_loaded(self, message: DataLoaded) -> None:
        self._timed(super().on_data_loaded, message)

    if DiagnosisReady is not None:
        def on_diagnosis_ready(self, message: Any) -> None:
            self._timed(super().on_diagnosis_ready, message)  # type: ignore[misc]


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
    """The garbage collections while the app runs: a collection holds the GIL, so one in the
    worker stops the UI thread too. Thread CPU time (what the collection itself cost) and wall
    time (that plus whatever the shared machine took away meanwhile), its generation, what it
    freed, and whether it ran on the UI thread (the thread that made this object): a collection
    there delays the key being handled by its whole length, whatever the other threads do."""

    def __init__(self) -> None:
        # (cpu s, wall s, generation, collected, on the UI thread)
        self.pauses: list[tuple[float, float, int, int, bool]] = []
        self.ui_thread = threading.get_ident()
        self._start: dict[int, tuple[float, float]] = {}

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        me = threading.get_ident()
        if phase == "start":
            self._start[me] = (time.thread_time(), time.perf_counter())
        elif me in self._start:
            c0, w0 = self._start.pop(me)
            self.pauses.append((time.thread_time() - c0, time.perf_counter() - w0, info["generation"],
                                info["collected"], me == self.ui_thread))

    def summary(self) -> dict[str, Any]:
        def ms(pauses: list[tuple[float, float, int, int, bool]]) -> list[tuple[float, float, int, int]]:
            return [(round(c * 1000, 1), round(w * 1000, 1), g, n) for c, w, g, n, _ui in pauses]

        longest = sorted(self.pauses, reverse=True)[:3]
        ui = [p for p in self.pauses if p[4]]
        return {"collections": len(self.pauses),
                "longest_cpu_ms_wall_ms_generation": [x[:3] for x in ms(longest)],
                "ui_thread_collections": len(ui),
                "ui_thread_gen2": sum(1 for p in ui if p[2] == 2),
                "ui_thread_longest_wall_ms": round(max((p[1] for p in ui), default=0) * 1000, 1),
                "ui_thread_longest_cpu_wall_ms_generation_collected": ms(sorted(ui, reverse=True)[:5]),
                "other_threads_longest_wall_ms": round(max((p[1] for p in self.pauses if not p[4]),
                                                           default=0) * 1000, 1)}


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
            if STALLS is not None:
                STALLS.write(f"=== key {len(self.latencies)} sent {sent:.4f}\n")
                STALLS.flush()
                faulthandler.dump_traceback_later(STALL_S, repeat=True, file=STALLS)
            self.app._driver.send_message(key)  # as a terminal delivers it
            while table.cursor_row == before and self._running:
                await asyncio.sleep(0.001)
            if STALLS is not None:
                faulthandler.cancel_dump_traceback_later()
            if table.cursor_row != before:
                self.latencies.append(time.perf_counter() - sent)
                if STALLS is not None:
                    STALLS.write(f"=== waited {(time.perf_counter() - sent) * 1000:.1f} ms\n")
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
        return {"keys": len(lat), "latencies_ms": [round(x * 1000, 1) for x in self.latencies],
                "key_latency_median_ms": round(statistics.median(lat) * 1000, 1) if lat else None,
                "key_latency_p95_ms": round(lat[int(0.95 * (len(lat) - 1))] * 1000, 1) if lat else None,
                "key_latency_max_ms": round(lat[-1] * 1000, 1) if lat else None,
                "max_tick_gap_ms": round(max(gaps) * 1000, 1) if gaps else None}


class BenchLoader(SnapshotLoader):
    """The bench's loader for ``--process``: it must pickle, so it reads the cached generated
    bundle and builds the snapshot in the load process on its first load (then each refresh
    busier, as the thread mode's ``produce``)."""

    def __init__(self, size: int, cache: Path) -> None:
        super().__init__(self._produce, live=True, description="bench")
        self.size, self.cache, self.calls = size, cache, 0
        self.snapshot: MeshSnapshot | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"size": self.size, "cache": self.cache}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["size"], state["cache"])  # type: ignore[misc]

    def _produce(self) -> MeshSnapshot:
        if self.snapshot is None:
            self.snapshot = build_snapshot(generated(self.size, self.cache), origin=f"demo:generated-{self.size}")
        self.calls += 1
        return self.snapshot if self.calls == 1 else busier(self.snapshot, 1.0 + self.calls / 10)


async def run_app(snapshot: MeshSnapshot, refreshes: int, diagnose: bool,
                  process: tuple[int, Path] | None = None) -> dict[str, Any]:
    calls = [0]
    answered: list[float] = []  # when the loader returned each snapshot: the sources' answer

    def produce() -> MeshSnapshot:
        calls[0] += 1
        out = snapshot if calls[0] == 1 else busier(snapshot, 1.0 + calls[0] / 10)
        answered.append(time.perf_counter())
        return out

    loader = BenchLoader(*process) if process else SnapshotLoader(produce, live=True, description="bench")
    app = TimedApp(loader, refresh_s=0, diagnose=diagnose, process=process is not None)

    def answer() -> float:
        """When the sources answered the load on screen (the load process says when)."""
        return app.analysis.timings["loaded_at"] if process else answered[-1]  # type: ignore[union-attr]
    app.ui_times, app.ui_cpu, app.slices, app.posted = [], [], [], []
    untime_slices = time_slices(app)
    gc_pauses = GcPauses()
    gc.callbacks.append(gc_pauses)
    out: dict[str, Any] = {}
    started = time.perf_counter()

    def table_full() -> bool:
        return (app.analysis is not None and table.settled and table.row_count == len(app.analysis.rows)
                and table.row_count > 0)

    async with app.run_test(size=(160, 48)) as pilot:
        while app.analysis is None:
            await asyncio.sleep(0.002)
        table = app.screen.query_one("#services", SyncTable)
        while not table_full():
            await asyncio.sleep(0.002)
        done = time.perf_counter()
        out["first_render_s"] = done - started
        out["first_shown_counts"] = app.analysis.counts
        # "After the first answer": from the first load reaching the UI (posted by the worker),
        # and from the sources' answer (the loader returned the snapshot).
        out["first_render_after_load_s"] = done - app.posted[0]
        first_answer = answer()
        out["first_render_after_sources_s"] = done - first_answer
        while app.loading or not table_full():  # the diagnosis, then its rows
            await asyncio.sleep(0.002)
        found = time.perf_counter()
        out["findings_after_sources_s"] = found - first_answer
        out["first_worker"] = app.analysis.timings
        out["first_diagnosed_counts"] = app.analysis.counts
        await pilot.pause()
        probe = Probe(app)
        out["idle"] = await probe.measure(asyncio.sleep(IDLE_S))
        refresh_times, numbers_times, findings_times, workers = [], [], [], []
        # After each refresh: RSS (MB), objects frozen away from the collector, objects in the
        # collector's generations, and whether automatic collection is on: a long session must
        # not grow.
        memory: list[tuple[float, int, int, bool]] = [(rss_mb(), gc.get_freeze_count(), sum(gc.get_count()),
                                                       gc.isenabled())]

        async def refresh_all() -> None:
            for _ in range(refreshes):
                before = app.loads
                t = time.perf_counter()
                app.action_refresh()
                while app.loads == before or not table.settled:
                    await asyncio.sleep(0.005)
                numbers_times.append(time.perf_counter() - answer())
                while app.loading or not table.settled:
                    await asyncio.sleep(0.005)
                findings_times.append(time.perf_counter() - answer())
                await pilot.pause()
                refresh_times.append(time.perf_counter() - t)
                workers.append(app.analysis.timings)  # type: ignore[union-attr]
                memory.append((rss_mb(), gc.get_freeze_count(), sum(gc.get_count()), gc.isenabled()))

        # The first load's and the idle keys' collections apart: a key waits for those too.
        out["gc_first_load_and_idle"] = gc_pauses.summary()
        gc_pauses.pauses.clear()
        out["during_refresh"] = await probe.measure(refresh_all())
        out["refresh_s"] = refresh_times
        out["refresh_numbers_after_sources_s"] = numbers_times
        out["refresh_findings_after_sources_s"] = findings_times
        out["refresh_worker"] = workers
        out["ui_apply_s"] = app.ui_times
        out["ui_apply_cpu_ms"] = [round(c * 1000, 1) for c in app.ui_cpu]
        out["ui_slices"] = [len(s) for s in app.slices]
        out["ui_slice_cpu_max_ms"] = [round(max(s, default=0) * 1000, 1) for s in app.slices]
        out["ui_slices_cpu_total_ms"] = [round(sum(s) * 1000, 1) for s in app.slices]
        out["rows"] = len(app.analysis.rows)
        out["memory_rss_mb_frozen_tracked_gc_on"] = memory
        if app.load_process is not None:
            out["load_process_rss_mb"] = rss_mb(app.load_process.process.pid)
    gc.callbacks.remove(gc_pauses)
    untime_slices()
    out["gc"] = gc_pauses.summary()
    return out


def rss_mb(pid: int | None = None) -> float:
    """This process's (or ``pid``'s) resident set size now, in MB (Linux)."""
    pages = int(Path(f"/proc/{pid or 'self'}/statm").read_text().split()[1])
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 1e6, 1)


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


BUCKETS_MS = (10, 25, 50, 100, 200)


def wait_buckets(waits_ms: list[float]) -> dict[str, int]:
    """How many key waits fell under each bound (and above the last): the shape, not one max."""
    out: dict[str, int] = {}
    low = 0
    for high in BUCKETS_MS:
        out[f"{low}-{high}"] = sum(1 for w in waits_ms if low <= w < high)
        low = high
    out[f">{low}"] = sum(1 for w in waits_ms if w >= low)
    return out


def bench(size: int, refreshes: int, diagnose: bool, cache: Path | None, runs: int = 1,
          process: bool = False) -> dict[str, Any]:
    load_before = os.getloadavg()
    t = time.perf_counter()
    bundle = generated(size, cache)
    # --process: the load process builds the snapshot; this process (the UI's) must not hold it.
    snapshot: Any = None if process else build_snapshot(bundle, origin=f"demo:generated-{size}")
    del bundle
    gc.collect()
    build_s = time.perf_counter() - t
    each = []
    for _ in range(runs):
        each.append(asyncio.run(run_app(snapshot, refreshes, diagnose,
                                        (size, cache) if process and cache is not None else None)))
        gc.collect()
    result = dict(each[len(each) // 2])  # the details (UI slices, GC) of one run
    med = statistics.median
    for key in ("first_render_s", "first_render_after_load_s", "first_render_after_sources_s",
                "findings_after_sources_s"):
        result[key] = med(r[key] for r in each)
        result[key + "_runs"] = [round(r[key], 3) for r in each]
    for key in ("refresh_numbers_after_sources_s", "refresh_findings_after_sources_s", "refresh_s"):
        result[key + "_median"] = med(x for r in each for x in r[key])
    busy = [r["during_refresh"] for r in each]
    result["during_refresh"] = {
        "keys": sum(b["keys"] for b in busy),
        "key_latency_median_ms": round(med(b["key_latency_median_ms"] for b in busy), 1),
        "key_latency_p95_ms": round(med(b["key_latency_p95_ms"] for b in busy), 1),
        "key_latency_max_ms": max(b["key_latency_max_ms"] for b in busy),
        "max_tick_gap_ms": max(b["max_tick_gap_ms"] for b in busy),
        "distribution_ms": wait_buckets([x for b in busy for x in b.get("latencies_ms", [])]),
        "runs": busy}
    idle = [r["idle"] for r in each]
    result["idle"] = {"keys": sum(i["keys"] for i in idle),
                      "key_latency_median_ms": round(med(i["key_latency_median_ms"] for i in idle), 1),
                      "key_latency_max_ms": max(i["key_latency_max_ms"] for i in idle),
                      "max_tick_gap_ms": max(i["max_tick_gap_ms"] for i in idle)}
    gcs = [r["gc"] for r in each]
    result["ui_gc_longest_wall_ms"] = max(g["ui_thread_longest_wall_ms"] for g in gcs)
    result["ui_gc_gen2"] = sum(g["ui_thread_gen2"] for g in gcs)
    # Thread CPU time of the longest: what the collection itself cost, whatever the machine's load.
    result["ui_gc_longest_cpu_ms"] = max((g["ui_thread_longest_cpu_wall_ms_generation_collected"] or [(0,)])[0][0]
                                         for g in gcs)
    result["gc_runs"] = gcs
    before = [r["gc_first_load_and_idle"] for r in each]
    result["ui_gc_first_load_idle_longest_wall_ms"] = max(g["ui_thread_longest_wall_ms"] for g in before)
    result["ui_gc_first_load_idle_gen2"] = sum(g["ui_thread_gen2"] for g in before)
    # The machine's load (1-minute average) before and after: another engineer's suite shows here.
    result["loadavg_1m_before_after"] = (round(load_before[0], 2), round(os.getloadavg()[0], 2))
    return {"services": size, "snapshot_build_s": round(build_s, 2), "diagnose": diagnose, "runs": runs, **result}


def markdown(results: list[dict[str, Any]], note: str) -> str:
    lines = ["# Dashboard benchmark", "",
             f"Machine: {platform.machine()}, Python {platform.python_version()}, 2 cores shared with other "
             "engineers' test suites and benchmarks: absolute times are noisy; compare within one run. "
             "Headless app at 160x48.", ""]
    if note:
        lines += [note, ""]
    lines += ["| services (runs) | after the sources answered: table / findings (first load, median) | "
              "refreshes after the answer: table / findings (median) | first table: from start / after the load "
              "reached the UI | UI thread per load message: handler CPU (wall) | later slices (count, max CPU, "
              "total CPU) | worker: load / rows / diagnose / view | key latency idle: median / max | key latency "
              "during refreshes: median / p95 / max | max tick gap idle / refreshing | GC on the UI thread while "
              "refreshing: longest CPU (wall) / gen-2 runs (first load and idle: wall) | RSS after the first / "
              "last refresh | load average |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        w = r["refresh_worker"][-1] if r["refresh_worker"] else r["first_worker"]
        idle, busy = r["idle"], r["during_refresh"]
        mem = r["memory_rss_mb_frozen_tracked_gc_on"]
        label = f" {r['label']}" if r.get("label") else ""
        lines.append(
            f"| {r['services']}{label} ({r['runs']}) | {r['first_render_after_sources_s']:.2f} s / "
            f"{r['findings_after_sources_s']:.2f} s | {r['refresh_numbers_after_sources_s_median']:.2f} s / "
            f"{r['refresh_findings_after_sources_s_median']:.2f} s | {r['first_render_s']:.2f} s / "
            f"{r['first_render_after_load_s']:.2f} s | "
            + ", ".join(f"{c:.0f} ms ({x * 1000:.0f})" for c, x in zip(r["ui_apply_cpu_ms"], r["ui_apply_s"])) + " | "
            + ", ".join(f"{n}, {m:.0f} ms, {t:.0f} ms" for n, m, t in
                        zip(r["ui_slices"], r["ui_slice_cpu_max_ms"], r["ui_slices_cpu_total_ms"])) + " | "
            + f"{w['load_s']:.2f} / {w.get('rows_s', 0):.2f} / {w.get('diagnose_s', 0):.2f} / "
            + f"{w.get('view_s', 0):.2f} s | "
            + f"{idle['key_latency_median_ms']} / {idle['key_latency_max_ms']} ms | "
            + f"{busy['key_latency_median_ms']} / {busy['key_latency_p95_ms']} / {busy['key_latency_max_ms']} ms "
            + f"({busy['keys']} keys) | {idle['max_tick_gap_ms']} / {busy['max_tick_gap_ms']} ms | "
            + f"{r.get('ui_gc_longest_cpu_ms', '-')} ({r['ui_gc_longest_wall_ms']}) ms / {r['ui_gc_gen2']} "
            + f"({r.get('ui_gc_first_load_idle_longest_wall_ms', '-')} ms / "
            + f"{r.get('ui_gc_first_load_idle_gen2', '-')}) | "
            + f"{mem[min(1, len(mem) - 1)][0]} / {mem[-1][0]} MB | "
            + "{} / {} |".format(*r["loadavg_1m_before_after"]))
    lines += ["", "After the sources answered: from the moment the loader returned the snapshot until the overview "
              "table holds every service with its traffic (table), and until it holds them with the diagnosis's "
              "health (findings); medians of the runs, per-run values in dashboard.json. Refreshes change every "
              "row's numbers. UI thread per load message: CPU time the UI thread spent in the handler of each "
              "message (with the two-stage render two per load: numbers, then findings), wall time in brackets; "
              "later slices: the table work it left for later turns of the event loop, each slice timed apart "
              "(keys are read between slices). Key latency: a ↓/↑ sent through the driver every 50 ms until the "
              "cursor moved (median and p95: median of the runs; max: the largest of any run). Tick gap: largest "
              "gap between ticks of a 10 ms UI timer, minus 10 ms. Idle: the same with no refresh running, i.e. "
              "what the shared machine alone costs. GC on the UI thread: garbage collections that ran on the "
              "app's own thread while refreshing (each delays a key by its whole length; all runs), the longest "
              "and how many were full (generation 2); in brackets the same for the first load and the idle keys; "
              "`gc_runs` in the .json lists them with what they freed. "
              "RSS after the first and the last refresh of the median run (`--refreshes 30` for a long session). "
              "Load average: 1-minute, before and after the size's runs. Collection cost (rendering and "
              "normalising the generated bundle) is `snapshot_build_s` in the .json.", ""]
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
    parser.add_argument("--runs", type=int, default=1, help="app runs per size (the page quotes medians)")
    parser.add_argument("--out", default="dashboard",
                        help="results file name in benchmarks/results, or a path (without .md/.json)")
    parser.add_argument("--process", action="store_true",
                        help="loads built in the dashboard's load process (needs --cache: it reads the bundle)")
    parser.add_argument("--switch-interval", type=float,
                        help="sys.setswitchinterval for the run (s; Python's default is 0.005)")
    parser.add_argument("--stalls", type=Path,
                        help="dump every thread's stack into this file while a key waits > 60 ms")
    args = parser.parse_args()
    if args.process and args.cache is None:
        parser.error("--process needs --cache (the load process reads the generated bundle from it)")
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    if args.stalls:
        global STALLS
        STALLS = args.stalls.open("w")
    results = []
    for size in args.sizes:
        r = bench(size, args.refreshes, size <= args.no_diagnose_above, args.cache, args.runs, args.process)
        r["process"] = args.process
        if args.label:
            r["label"] = args.label
        r["switch_interval_s"] = sys.getswitchinterval()
        print(json.dumps(r, default=str), flush=True)
        results.append(r)
    out = Path(args.out) if "/" in args.out else RESULTS / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    out.with_suffix(".md").write_text(markdown(results, args.note))


if __name__ == "__main__":
    main()
