"""Where the dashboard's data comes from, and the messages that carry it to the UI.

A *loader* produces a (bundle, snapshot) pair: a live collection (``--config``), a recorded
bundle (``--from PATH``, frozen in time) or a demo. :func:`analyse` runs a loader, the engine
and the view models; the app calls it in a thread worker and posts the resulting
:class:`Analysis` back as a :class:`DataLoaded` message, so the UI thread never collects,
diagnoses or sorts thousands of rows itself.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from textual.message import Message

from meshobs.bundle import Bundle
from meshobs.checks.base import Settings
from meshobs.config import Config
from meshobs.engine.report import MeshReport, Report
from meshobs.model import MeshSnapshot, ServiceRef, SourceState, SourceStatus
from meshobs.raw import RawSource

from .links import TraceLinks
from .release import release
from .sources import SourceEntry, Stale, source_board
from .timerange import TimeRange
from .viewmodel import FindingRow, ServiceRow, finding_rows, overview_rows
from .views import Views, ViewSource


class Loader(Protocol):
    """Produces the data to show. ``live`` loaders are polled on the refresh interval."""

    live: bool
    description: str

    def load(self) -> tuple[Bundle | None, MeshSnapshot]: ...

    def settings(self) -> tuple[Settings, Sequence[Any]]: ...

    def stale(self) -> dict[str, Stale]:
        """Sources of the last load shown from an earlier answer (they failed this time)."""
        ...

    def time_range(self) -> TimeRange | None:
        """The window and time a live load asks for; None when the data cannot be re-queried."""
        ...

    def set_time_range(self, wanted: TimeRange) -> None: ...

    def links(self) -> TraceLinks: ...

    def envoy_access(self) -> EnvoyAccess | None:
        """What fetching one pod's Envoy admin data on demand needs (None: not possible)."""
        ...

    def intended_paths(self) -> list[str]:
        """Where the intended (Git) configuration is (``drift.intended``), for the YAML view."""
        ...


@dataclass(frozen=True)
class EnvoyAccess:
    """The configuration and the Kubernetes payloads the Envoy collector finds its targets in."""

    config: Config
    prior: tuple[RawSource, ...]


def _failure(raw: RawSource) -> str | None:
    """Why a fetched source gave nothing usable at all (None: some or all of it is usable)."""
    if raw.error:
        return raw.error
    if raw.kind == "envoy":
        ready = raw.get("ready")
        if ready is not None and ready.failure():
            return ready.failure()  # an unreachable proxy is asked nothing else
    failures = [p.failure() for p in raw.payloads]
    if failures and all(failures):
        return failures[0]
    return None


class LastGood:
    """The last usable answer of every source, so one failing source does not blank its part
    of the screen: its earlier answer is shown instead, and named stale (since when, why)."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[RawSource, datetime]] = {}

    def apply(self, bundle: Bundle, at: datetime) -> tuple[Bundle, dict[str, Stale]]:
        sources: list[RawSource] = []
        stale: dict[str, Stale] = {}
        for raw in bundle.sources:
            why = _failure(raw)
            if why is None:
                self.answers[raw.name] = (raw, at)
                sources.append(raw)
            elif raw.name in self.answers:
                old, since = self.answers[raw.name]
                sources.append(old)
                stale[raw.name] = Stale(since, why)
            else:
                sources.append(raw)
        return replace(bundle, sources=sources), stale

    def clear(self) -> None:
        self.answers.clear()


def _now() -> datetime:
    return datetime.now(UTC)


def refuse_unless_live(live: bool) -> None:
    """A new time range needs live sources: a recorded bundle holds one window."""
    if not live:
        raise ValueError("a recorded bundle holds one window and cannot be re-queried")


class SourceLoader:
    """The CLI's loader: ``--from`` (bundle or demo, frozen), else ``--config`` (live), else the demo.

    A frozen source is read once; "refresh" then re-shows the same snapshot. A live source
    collects again on every load, for the current :class:`TimeRange`; a source that fails is
    shown from its last good answer (see :class:`LastGood`).
    """

    def __init__(self, from_path: str | None = None, config_path: str | None = None,
                 clock: Callable[[], datetime] = _now, timeout: str | None = None) -> None:
        self.from_path, self.config_path, self.clock = from_path, config_path, clock
        self.timeout = timeout  # --timeout: each live refresh's collection is bounded by it
        self.live = False
        self.description = from_path or "…"
        self._config: Config | None = None
        self._frozen: tuple[Bundle | None, MeshSnapshot] | None = None
        self._range: TimeRange | None = None
        self._last_good = LastGood()
        self._stale: dict[str, Stale] = {}
        self._bundle: Bundle | None = None

    def load(self) -> tuple[Bundle | None, MeshSnapshot]:
        from meshobs.collect import build_snapshot

        if self._frozen is not None:
            return self._frozen
        if self._config is not None and self.live and self._range is not None:
            from meshobs.cli.common import run_timeout_s
            from meshobs.collect import collect

            ranged = replace(self._config, window_s=self._range.window_s, time=self._range.at)
            # Each refresh gets the whole --timeout (or the config's), counted from now.
            deadline = time.monotonic() + run_timeout_s(self.timeout, self._config)
            bundle, self._stale = self._last_good.apply(collect(ranged, deadline=deadline), self.clock())
            # The previous bundle (raw payloads: hundreds of MB at 5,000 services) is freed piece by
            # piece on the release thread: freed here, the cascade would hold the GIL, and with it
            # the UI thread, for as long as it takes.
            retired: list[object] = [self._bundle]
            self._bundle = bundle
            release(retired)
            return bundle, build_snapshot(bundle, origin="live")
        from meshobs.cli.common import load_bundle

        bundle, config, origin = load_bundle(self.from_path, self.config_path, quiet_demo=True,
                                             timeout=self.timeout)
        self._config, self.live, self.description = config, origin == "live", origin
        self._bundle = bundle
        if self.live and config is not None:
            self._range = TimeRange(config.window_s, config.time)
            bundle, self._stale = self._last_good.apply(bundle, self.clock())
        result = (bundle, build_snapshot(bundle, origin=origin))
        if not self.live:
            self._frozen = result
        return result

    def settings(self) -> tuple[Settings, Sequence[Any]]:
        from meshobs.suppress import parse as parse_suppressions

        raw = self._config.raw if self._config is not None else {}
        return Settings.from_thresholds(raw.get("thresholds")), parse_suppressions(raw.get("suppress"))

    def stale(self) -> dict[str, Stale]:
        return dict(self._stale)

    def time_range(self) -> TimeRange | None:
        return self._range if self.live else None

    def set_time_range(self, wanted: TimeRange) -> None:
        refuse_unless_live(self.live)
        self._range = wanted
        self._last_good.clear()  # earlier answers are about another window

    def links(self) -> TraceLinks:
        if self._config is not None:
            return TraceLinks.of(self._config.raw)
        return TraceLinks.of(self._bundle.config if self._bundle is not None else {})

    def envoy_access(self) -> EnvoyAccess | None:
        if self._config is None or "envoy" not in self._config.sources:
            return None
        prior = tuple(r for r in (self._bundle.sources if self._bundle else []) if r.kind == "kubernetes")
        return EnvoyAccess(self._config, prior)

    def intended_paths(self) -> list[str]:
        return list(self._config.section("drift").get("intended") or []) if self._config is not None else []


class SnapshotLoader:
    """Shows snapshots produced by a function (tests, benchmarks, embedding)."""

    def __init__(self, produce: Callable[[], MeshSnapshot], *, live: bool = True,
                 description: str = "snapshot", bundle: Bundle | None = None,
                 access: EnvoyAccess | None = None, links: TraceLinks | None = None,
                 intended: list[str] | None = None) -> None:
        self.produce, self.live, self.description, self.bundle = produce, live, description, bundle
        self.access, self._links, self.intended = access, links, list(intended or [])
        self._range: TimeRange | None = TimeRange() if live else None
        self.ranges: list[TimeRange] = []  # every range asked for (tests)

    def load(self) -> tuple[Bundle | None, MeshSnapshot]:
        return self.bundle, self.produce()

    def settings(self) -> tuple[Settings, Sequence[Any]]:
        return Settings(), ()

    def stale(self) -> dict[str, Stale]:
        return {}

    def time_range(self) -> TimeRange | None:
        return self._range

    def set_time_range(self, wanted: TimeRange) -> None:
        refuse_unless_live(self._range is not None)
        self._range = wanted
        self.ranges.append(wanted)

    def links(self) -> TraceLinks:
        if self._links is not None:
            return self._links
        return TraceLinks.of(self.bundle.config if self.bundle is not None else {})

    def envoy_access(self) -> EnvoyAccess | None:
        return self.access

    def intended_paths(self) -> list[str]:
        return self.intended


# Where the diagnosis of a load stands (``Analysis.diagnosis``).
DIAGNOSED = "done"
PENDING = "pending"  # the numbers are in; the diagnosis runs (findings: none yet, or the previous refresh's)
NOT_DIAGNOSED = "off"  # the app runs without the engine (``diagnose=False``)
DIAGNOSIS_FAILED = "failed"  # the engine raised: ``diagnosis_error`` says what


@dataclass(frozen=True)
class Analysis:
    """One load: the snapshot, its diagnosis and the overview rows, ready to show.

    ``stale``: sources shown from an earlier answer (they failed this time); ``answered``:
    whether any source answered at all (a load where none did replaces nothing on screen).

    A load is shown in two stages: first the snapshot's numbers (``diagnosis`` is
    :data:`PENDING`; ``report`` and ``findings`` are None/empty, or the previous refresh's,
    marked on every row), then the same snapshot with its own diagnosis (:func:`diagnosed`).
    """

    snapshot: MeshSnapshot
    bundle: Bundle | None
    report: MeshReport | None
    rows: list[ServiceRow]
    findings: list[FindingRow]
    timings: dict[str, float] = field(default_factory=dict)
    stale: dict[str, Stale] = field(default_factory=dict)
    answered: bool = True
    links: TraceLinks = field(default_factory=TraceLinks)
    time_range: TimeRange | None = None
    # Worked out in the worker: a mesh has a source per Envoy pod and a row per service.
    board: list[SourceEntry] = field(default_factory=list)
    counts: str = ""
    diagnosis: str = DIAGNOSED
    diagnosis_error: str = ""
    can_fetch: bool = False  # a pod's Envoy can be fetched on demand (the loader has an Envoy source)
    # Set in the UI process when the load process holds the model: the screens' views come from there.
    remote: ViewSource | None = None
    # Set by the load process (see load_process.for_ui), which keeps the diagnosis itself:
    # whether there is one, and what the UI needs of its loader (live, description, intended paths).
    has_report: bool = False
    loader_state: tuple[bool, str, list[str]] | None = None

    def views(self, loader: Loader) -> ViewSource:
        """Where a screen gets the views beyond the overview's rows: this load's model, here
        or in the load process."""
        return self.remote if self.remote is not None else Views(self, loader)

    @property
    def pending(self) -> bool:
        """The diagnosis of this snapshot is still running."""
        return self.diagnosis == PENDING

    @property
    def from_previous(self) -> bool:
        """The findings shown are the previous refresh's (this one's diagnosis still runs)."""
        return self.pending and (self.report is not None or self.has_report)

    def statuses_now(self) -> list[SourceStatus]:
        """Each source as it fared on this load (a source shown from an earlier answer failed)."""
        return [SourceStatus(s.name, SourceState.ERROR, self.stale[s.name].why, s.duration_s, s.kind)
                if s.name in self.stale else s for s in self.snapshot.sources]

    def report_of(self, ref: ServiceRef) -> Report | None:
        if self.report is None:
            return None
        for r in self.report.reports:
            if r.service == ref:
                return r
        return None


_refreshes = 0
# Frozen objects are invisible to the cycle collector, so cyclic garbage from old snapshots
# (a few hundred objects per refresh) would pile up forever; every this many refreshes the
# worker unfreezes and collects once: one short pause instead of unbounded growth.
COLLECT_EVERY = 30


def analyse(loader: Loader, diagnose: bool = True) -> Analysis:
    """Load, diagnose every service and build the overview: the whole refresh, off the UI thread
    (both stages of :func:`numbers` and :func:`diagnosed` in one)."""
    first = numbers(loader, diagnose)
    return diagnosed(loader, first) if diagnose else first


def numbers(loader: Loader, diagnose: bool = True, previous: Analysis | None = None) -> Analysis:
    """Stage one of a load: collect (or replay) and build the overview rows, without the
    diagnosis, so the table can show the traffic as soon as the sources have answered.

    With ``diagnose``, the result is :data:`PENDING`: rows of services the previous load
    (``previous``) diagnosed carry that health, marked as the previous refresh's, and its
    findings stay listed until :func:`diagnosed` replaces them; the others are "pending"."""
    from meshobs.engine.inputs import answered
    from meshobs.gc_pause import gc_paused

    from .status import health_counts

    global _refreshes
    _refreshes += 1
    if _refreshes % COLLECT_EVERY == 0:
        gc.unfreeze()
        gc.collect()
    # No automatic collection while the load is built: it makes millions of objects (the
    # snapshot, the diagnosis, the rows) and the collections their allocations trigger walk
    # them all holding the GIL, so the UI thread stopped as long (a gen-2 collection took 0.75 s
    # of CPU at 5,000 services; 1.4-1.5 s wall on the shared machine). Analysing makes no cyclic
    # garbage (a full collection after it found none); what it builds is frozen instead, and
    # what a live collection leaves in cycles is freed by the periodic collection above.
    with gc_paused():  # shared with the collectors' own pauses (nesting, other threads)
        t0 = time.perf_counter()
        bundle, snapshot = loader.load()
        t1 = time.perf_counter()
        carried = previous.report if diagnose and previous is not None and previous.diagnosis in (
            DIAGNOSED, PENDING) else None
        rows = overview_rows(snapshot, carried, pending=diagnose)
        findings = previous.findings if carried is not None and previous is not None else []
        # A snapshot of a big mesh is millions of long-lived objects; a full (gen 2) garbage
        # collection walks them all and stops every thread, the UI's too, for 0.2-0.4 s per
        # 1,000 services. Freezing moves them out of the collector's sight (refcounting still
        # frees them). Once per stage: with the collector paused nothing walked them before.
        gc.freeze()
    t2 = time.perf_counter()
    stale = loader.stale()
    # Sources shown from an earlier answer did not answer now: if that is all of them, nothing did.
    fresh = [s for s in snapshot.sources if s.name not in stale]
    # loaded_at: when the sources answered (perf_counter: one clock for every process on Linux).
    return Analysis(snapshot, bundle, carried, rows, findings,
                    {"load_s": t1 - t0, "rows_s": t2 - t1, "loaded_at": t1},
                    stale=stale, answered=answered(snapshot) and (not snapshot.sources or
                                                                  any(s.state is not SourceState.ERROR
                                                                      for s in fresh)),
                    links=loader.links(), time_range=loader.time_range(),
                    board=source_board(snapshot.sources, stale), counts=health_counts(rows),
                    diagnosis=PENDING if diagnose else NOT_DIAGNOSED, can_fetch=loader.envoy_access() is not None)


def diagnosed(loader: Loader, first: Analysis) -> Analysis:
    """Stage two: ``first`` (from :func:`numbers`) with its own diagnosis, health and findings.

    An engine that raises is a bug, not a verdict: the rows say "unknown" and the status line
    "could not diagnose: why", never healthy."""
    from meshobs.engine import diagnose_all
    from meshobs.gc_pause import gc_paused

    from .status import health_counts

    with gc_paused():
        t0 = time.perf_counter()
        report: MeshReport | None = None
        error = ""
        try:
            settings, suppressions = loader.settings()
            report = diagnose_all(first.snapshot, settings, suppressions)
        except Exception as exc:  # shown on screen (an engine bug); the numbers stay useful
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        t1 = time.perf_counter()
        rows = overview_rows(first.snapshot, report)
        findings = finding_rows(report)
        gc.freeze()
    t2 = time.perf_counter()
    timings = {**first.timings, "diagnose_s": t1 - t0, "view_s": t2 - t1}
    return replace(first, report=report, rows=rows, findings=findings, timings=timings,
                   counts=health_counts(rows), diagnosis=DIAGNOSIS_FAILED if error else DIAGNOSED,
                   diagnosis_error=error)


class DataLoaded(Message):
    """A load's numbers are in; ``analysis`` replaces what the screens show. ``seq``: the load
    it belongs to (the app drops a superseded one); ``final``: no diagnosis follows;
    ``shown``: set once the overview shows the rows (the diagnosis waits for it)."""

    def __init__(self, analysis: Analysis, seq: int | None = None, final: bool = True,
                 shown: threading.Event | None = None) -> None:
        super().__init__()
        self.analysis, self.seq, self.final, self.shown = analysis, seq, final, shown


class DiagnosisReady(Message):
    """The diagnosis of load ``seq`` finished: ``analysis`` is its snapshot with findings."""

    def __init__(self, analysis: Analysis, seq: int) -> None:
        super().__init__()
        self.analysis, self.seq = analysis, seq


class DataFailed(Message):
    """A load failed as a whole (a single failing source does not: it shows in the snapshot)."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error
