"""Each load (collection, normalisation, diagnosis) built in a process of its own.

Why a process and not a thread: a thread worker shares the UI's GIL. Whatever the worker
runs, the UI thread waits for the GIL each time it gives it up (every ``select`` of the event
loop, every key), up to the switch interval per hand-over and the whole length of any long C
call (a big JSON answer decoded, a garbage collection of the load's millions of objects). And
the load's objects lived in the UI's heap, so every full collection there walked them: the
periodic unfreeze-and-collect of a long session stopped the UI for seconds at 1,000 services.

Here the load process holds the model (bundle, snapshot, diagnosis) and sends the UI only what
it renders: the overview's rows, the findings, the source board, and a header of the snapshot
(its time, window, sources and services, for the status line and ``:svc``). Every other view
(a service, its graph, a proxy, a YAML diff, saving the bundle) is asked for on demand
(:class:`RemoteViews`, answered by :class:`~.views.Views` in the load process).

The protocol, over one :func:`multiprocessing.Pipe` (pickled tuples):

* UI -> load process: ``("load", seq)``, ``("shown", seq)`` (the table shows its rows: the
  diagnosis may start), ``("range", TimeRange)``, ``("ask", id, key, name, args)``, ``("quit",)``;
* load process -> UI: ``("part", seq, stage, "rows"|"findings", items)`` (see :func:`in_parts`),
  then ``("numbers", seq, Analysis)`` or ``("diagnosed", seq, Analysis)``; ``("failed", seq,
  why)``; ``("answer", id, ok, value or why)``.

A load that raises in the load process reaches the UI as ``DataFailed`` with the error's own
words (no traceback; the rows on screen stay). The process is spawned (not forked: the UI has
threads), ends when the UI says quit or its end of the pipe closes (the UI died), and the app
joins it, terminating it if it does not end in time: no orphan is left behind.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from meshobs.model import MeshSnapshot, Service, ServiceRef

from .data import (
    PENDING,
    Analysis,
    DataFailed,
    DataLoaded,
    DiagnosisReady,
    EnvoyAccess,
    Loader,
    diagnosed,
    numbers,
    refuse_unless_live,
)
from .graph_model import GraphView
from .links import TraceLinks
from .proxy_model import ProxyView
from .rows import TableRow
from .service_model import ServiceView
from .timerange import TimeRange
from .viewmodel import FindingRow, NeighbourRow, ServiceRow
from .views import ASKABLE, Views
from .yaml_model import YamlView

# How long the UI waits for the load process to end on quit before it terminates it (s).
QUIT_WAIT_S = 2.0
# How many loads the load process keeps for the views the UI asks about: the one on screen may
# be older than the newest (a refresh where nothing answered keeps the last good one).
KEPT_LOADS = 3
# How long a screen's worker waits for a view (s): the load process answers while it loads.
ASK_WAIT_S = 60.0
# Rows (or findings) per message to the UI (see in_parts).
PART = 100


def _words(exc: BaseException) -> str:
    """An error as the UI shows it (as a thread worker's: its message, else its kind)."""
    return str(exc) or type(exc).__name__


# -- the load process -------------------------------------------------------------------------
def serve(conn: Connection, loader: Loader, diagnose: bool) -> None:
    """The load process: builds loads when asked and answers the views of the loads it keeps.

    Loads run one at a time on a thread of their own, so a view is answered while a load is
    being built; the pipe is written under a lock."""
    # The UI owns the terminal: a stray print or warning here would draw over its screen.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    sending = threading.Lock()
    kept: dict[tuple[int, str], Analysis] = {}  # (seq, stage) -> the whole load
    latest: list[Analysis] = []  # the newest load (carried into the next one's numbers)
    wanted = threading.Condition()
    queue: list[int] = []
    shown: dict[int, threading.Event] = {}  # set when the UI's table shows the load's rows
    from .app import TABLE_FIRST_S

    def send(message: tuple[Any, ...]) -> None:
        with sending:
            conn.send(message)

    def keep(seq: int, stage: str, analysis: Analysis) -> None:
        kept[(seq, stage)] = analysis
        for old in sorted(kept)[:-KEPT_LOADS * 2]:
            del kept[old]
        latest[:] = [analysis]

    def build(seq: int) -> None:
        try:
            first = numbers(loader, diagnose=diagnose, previous=latest[0] if latest else None)
            keep(seq, "numbers", first)
            shown[seq] = threading.Event()
            for message in in_parts("numbers", seq, for_ui(first, loader)):
                send(message)
            if diagnose:
                # Not while the UI fills its table: no GIL is shared any more, but the cores are
                # (two, on the machine measured, shared with others), as in the thread mode.
                shown[seq].wait(TABLE_FIRST_S)
                second = diagnosed(loader, first)
                keep(seq, "diagnosed", second)
                for message in in_parts("diagnosed", seq, for_ui(second, loader)):
                    send(message)
        except Exception as exc:  # reaches the UI as a message; the rows shown stay
            send(("failed", seq, _words(exc)))

    def loads() -> None:
        while True:
            with wanted:
                while not queue:
                    wanted.wait()
                seq = queue.pop()
                queue.clear()  # loads asked for meanwhile are superseded by the newest
            if seq < 0:
                return
            build(seq)
            shown.pop(seq, None)

    def ask(ident: int, key: tuple[int, str], name: str, args: tuple[Any, ...]) -> None:
        try:
            analysis = kept.get(key) or (latest[0] if latest else None)
            if analysis is None or name not in ASKABLE:
                raise ValueError(f"no load to answer {name!r} from")
            send(("answer", ident, True, getattr(Views(analysis, loader), name)(*args)))
        except Exception as exc:
            send(("answer", ident, False, _words(exc)))

    threading.Thread(target=loads, name="loads", daemon=True).start()
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            break  # the UI is gone
        verb = message[0]
        if verb == "quit":
            break
        if verb == "load":
            with wanted:
                queue.append(message[1])
                wanted.notify()
        elif verb == "range":
            with contextlib.suppress(ValueError):  # a frozen source: the UI says so itself
                loader.set_time_range(message[1])
        elif verb == "shown":
            if message[1] in shown:
                shown[message[1]].set()
        elif verb == "ask":
            threading.Thread(target=ask, args=message[1:], name="ask", daemon=True).start()
    conn.close()
    os._exit(0)  # threads still building a load are not waited for


def in_parts(stage: str, seq: int, analysis: Analysis) -> list[tuple[Any, ...]]:
    """A load for the UI as messages: its rows and findings in parts of :data:`PART` (each
    unpickled in a few ms: the UI's reader thread holds the GIL while it unpickles, and a whole
    load of 1,000 rows took 80-110 ms, a key's wait), then the rest."""
    parts: list[tuple[Any, ...]] = []
    for what, items in (("rows", analysis.rows), ("findings", analysis.findings)):
        parts += [("part", seq, stage, what, items[i:i + PART]) for i in range(0, len(items), PART)]
    return [*parts, (stage, seq, replace(analysis, rows=[], findings=[]))]


def for_ui(analysis: Analysis, loader: Loader) -> Analysis:
    """What the UI process renders of a load: rows, findings, the board, the snapshot's header;
    never the bundle, the whole snapshot or the diagnosis (they stay here)."""
    snap = analysis.snapshot
    header = _Header(snap.time, snap.window_s, snap.sources, snap.origin)
    return replace(analysis, snapshot=header, bundle=None, report=None,  # type: ignore[arg-type]
                   has_report=analysis.report is not None,
                   loader_state=(loader.live, loader.description, loader.intended_paths()))


class _Header:
    """A snapshot's header, pickled (a MeshSnapshot holds a lock and indexes): the UI rebuilds a
    MeshSnapshot of just these from it (:meth:`snapshot`)."""

    def __init__(self, time: datetime, window_s: float, sources: Any, origin: str) -> None:
        self.time, self.window_s, self.sources, self.origin = time, window_s, sources, origin

    def snapshot(self, rows: list[ServiceRow]) -> MeshSnapshot:
        """The header as a snapshot for the status line, the source board and ``:svc``: its
        services are the overview's (each only its name: the whole services stay in the load
        process; sending them cost the UI 50-66 ms of unpickling)."""
        return MeshSnapshot(self.time, self.window_s, services=tuple(Service(r.ref) for r in rows),
                            sources=self.sources, origin=self.origin)


# -- the UI side -------------------------------------------------------------------------------
class RemoteViews:
    """The views of one load the load process keeps (see :class:`~.views.Views`)."""

    def __init__(self, process: LoadProcess, key: tuple[int, str]) -> None:
        self.process, self.key = process, key

    def service(self, ref: ServiceRef) -> tuple[ServiceView, str]:
        return self.process.ask(self.key, "service", ref)  # type: ignore[no-any-return]

    def graph(self, centre: ServiceRef, health: dict[ServiceRef, str],
              previous: frozenset[ServiceRef] = frozenset()) -> GraphView:
        return self.process.ask(self.key, "graph", centre, health, previous)  # type: ignore[no-any-return]

    def neighbourhood(self, ref: ServiceRef, limit: int) -> tuple[list[NeighbourRow], int]:
        return self.process.ask(self.key, "neighbourhood", ref, limit)  # type: ignore[no-any-return]

    def proxy_rows(self) -> list[TableRow]:
        return self.process.ask(self.key, "proxy_rows")  # type: ignore[no-any-return]

    def proxy(self, namespace: str, pod: str) -> tuple[ProxyView | None, str]:
        return self.process.ask(self.key, "proxy", namespace, pod)  # type: ignore[no-any-return]

    def fetch_proxy(self, namespace: str, pod: str, now: datetime) -> tuple[ProxyView | None, str]:
        return self.process.ask(self.key, "fetch_proxy", namespace, pod, now)  # type: ignore[no-any-return]

    def yaml(self, key: Any) -> YamlView:
        return self.process.ask(self.key, "yaml", key)  # type: ignore[no-any-return]

    def save(self, path: Path) -> Path:
        return self.process.ask(self.key, "save", path)  # type: ignore[no-any-return]


class RemoteLoader:
    """The app's loader while the load process holds the real one: what the UI asks of a loader
    (live or frozen, the time range), told by each load; a new range is sent over."""

    def __init__(self, process: LoadProcess, description: str) -> None:
        self.process = process
        self.live = False
        self.description = description
        self._range: TimeRange | None = None
        self._intended: list[str] = []

    def learn(self, analysis: Analysis) -> None:
        if analysis.loader_state is not None:
            self.live, self.description, self._intended = analysis.loader_state
        if self.live and self._range is None:
            self._range = analysis.time_range

    def load(self) -> tuple[Any, MeshSnapshot]:
        raise RuntimeError("loads are built in the load process")

    def settings(self) -> Any:
        raise RuntimeError("the diagnosis runs in the load process")

    def stale(self) -> dict[str, Any]:
        return {}

    def time_range(self) -> TimeRange | None:
        return self._range if self.live else None

    def set_time_range(self, wanted: TimeRange) -> None:
        refuse_unless_live(self.live)
        self._range = wanted
        self.process.send(("range", wanted))

    def links(self) -> TraceLinks:
        return TraceLinks()

    def envoy_access(self) -> EnvoyAccess | None:
        return None  # the load process fetches (Views.fetch_proxy)

    def intended_paths(self) -> list[str]:
        return list(self._intended)


class _Shown(threading.Event):
    """Set by the app once its table shows a load's rows: tells the load process, whose
    diagnosis waits for it."""

    def __init__(self, process: LoadProcess, seq: int) -> None:
        super().__init__()
        self.process, self.seq = process, seq

    def set(self) -> None:
        if not self.is_set():
            super().set()
            with contextlib.suppress(OSError, ValueError):  # the load process is gone
                self.process.send(("shown", self.seq))


class LoadProcess:
    """The UI's end of the load process: starts it, asks it for loads and views, and turns what
    it sends into the app's messages (``post``) on a reader thread."""

    def __init__(self, loader: Loader, diagnose: bool) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self.process = context.Process(target=serve, args=(child, loader, diagnose), name="meshobs-load",
                                       daemon=True)
        # Textual has replaced sys.stderr by then (no file descriptor); the spawn machinery hands
        # its descriptor to a helper process, so it gets the real one back for the start.
        with contextlib.redirect_stderr(sys.__stderr__ or sys.stderr):
            self.process.start()
        child.close()
        self.loader = RemoteLoader(self, getattr(loader, "description", "…"))
        self._sending = threading.Lock()
        self._asked: dict[int, Future[Any]] = {}
        self._ids = itertools.count()
        self._closing = False
        self._reader: threading.Thread | None = None

    def start(self, post: Callable[[Any], object]) -> None:
        """Reads what the load process sends and posts it to the app (``post``)."""
        self._reader = threading.Thread(target=self._read, args=(post,), name="load-process-reader", daemon=True)
        self._reader.start()

    def send(self, message: tuple[Any, ...]) -> None:
        with self._sending:
            self._conn.send(message)

    def load(self, seq: int) -> None:
        self.send(("load", seq))

    def ask(self, key: tuple[int, str], name: str, *args: Any) -> Any:
        """A view of the load ``key``, worked out in the load process (raises what it raised,
        as a RuntimeError with its words)."""
        ident = next(self._ids)
        future: Future[Any] = Future()
        self._asked[ident] = future
        if not self.process.is_alive():
            raise RuntimeError("the load process has stopped")
        self.send(("ask", ident, key, name, args))
        return future.result(ASK_WAIT_S)

    def _read(self, post: Callable[[Any], object]) -> None:
        parts: dict[tuple[int, str], tuple[list[ServiceRow], list[FindingRow]]] = {}
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                break
            verb = message[0]
            if verb == "answer":
                _verb, ident, ok, value = message
                future = self._asked.pop(ident, None)
                if future is not None:
                    future.set_result(value) if ok else future.set_exception(RuntimeError(value))
            elif verb == "failed":
                post(DataFailed(message[2]))
            elif verb == "part":
                _verb, seq, stage, what, items = message
                rows, findings = parts.setdefault((seq, stage), ([], []))
                (rows if what == "rows" else findings).extend(items)
            else:
                seq, stage = message[1], message[0]
                rows, findings = parts.pop((seq, stage), ([], []))
                parts.clear()  # parts of superseded loads
                analysis = self._on_ui(replace(message[2], rows=rows, findings=findings), (seq, stage))
                if stage == "numbers":
                    post(DataLoaded(analysis, seq, final=analysis.diagnosis != PENDING, shown=_Shown(self, seq)))
                else:
                    post(DiagnosisReady(analysis, seq))
        for future in self._asked.values():
            future.set_exception(RuntimeError("the load process has stopped"))
        self._asked.clear()
        if not self._closing:
            self.process.join(QUIT_WAIT_S)
            post(DataFailed(f"the load process stopped (exit code {self.process.exitcode})"))

    def _on_ui(self, analysis: Analysis, key: tuple[int, str]) -> Analysis:
        header = analysis.snapshot
        shown = replace(analysis, snapshot=header.snapshot(analysis.rows),  # type: ignore[attr-defined]
                        remote=RemoteViews(self, key))
        self.loader.learn(shown)
        return shown

    def close(self) -> None:
        """Ends the load process: asks it to quit, then terminates (and kills) it if it does
        not end in time; joins it either way, so no process outlives the app."""
        self._closing = True
        with contextlib.suppress(OSError, ValueError):  # already gone
            self.send(("quit",))
        self.process.join(QUIT_WAIT_S)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(QUIT_WAIT_S)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self._conn.close()
        if self._reader is not None:
            self._reader.join(QUIT_WAIT_S)
