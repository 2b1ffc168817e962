"""Where the dashboard's data comes from, and the messages that carry it to the UI.

A *loader* produces a (bundle, snapshot) pair: a live collection (``--config``), a recorded
bundle (``--from PATH``, frozen in time) or a demo. :func:`analyse` runs a loader, the engine
and the view models; the app calls it in a thread worker and posts the resulting
:class:`Analysis` back as a :class:`DataLoaded` message, so the UI thread never collects,
diagnoses or sorts thousands of rows itself.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from textual.message import Message

from meshobs.bundle import Bundle
from meshobs.checks.base import Settings
from meshobs.engine.report import MeshReport, Report
from meshobs.model import MeshSnapshot, ServiceRef

from .viewmodel import FindingRow, ServiceRow, failing_sources, finding_rows, overview_rows


class Loader(Protocol):
    """Produces the data to show. ``live`` loaders are polled on the refresh interval."""

    live: bool
    description: str

    def load(self) -> tuple[Bundle | None, MeshSnapshot]: ...

    def settings(self) -> tuple[Settings, Sequence[Any]]: ...


class SourceLoader:
    """The CLI's loader: ``--from`` (bundle or demo, frozen), else ``--config`` (live), else the demo.

    A frozen source is read once; "refresh" then re-shows the same snapshot. A live source
    collects again on every load.
    """

    def __init__(self, from_path: str | None = None, config_path: str | None = None,
                 timeout: str | None = None) -> None:
        self.from_path, self.config_path, self.timeout = from_path, config_path, timeout
        self.live = False
        self.description = from_path or "…"
        self._config: Any = None
        self._frozen: tuple[Bundle | None, MeshSnapshot] | None = None

    def load(self) -> tuple[Bundle | None, MeshSnapshot]:
        from meshobs.collect import build_snapshot

        if self._frozen is not None:
            return self._frozen
        if self._config is not None and self.live:
            from meshobs.cli.common import run_timeout_s
            from meshobs.collect import collect

            # Each refresh gets the whole --timeout (or the config's), counted from now.
            bundle = collect(self._config, deadline=time.monotonic() + run_timeout_s(self.timeout, self._config))
            return bundle, build_snapshot(bundle, origin="live")
        from meshobs.cli.common import load_bundle

        bundle, config, origin = load_bundle(self.from_path, self.config_path, quiet_demo=True,
                                             timeout=self.timeout)
        self._config, self.live, self.description = config, origin == "live", origin
        result = (bundle, build_snapshot(bundle, origin=origin))
        if not self.live:
            self._frozen = result
        return result

    def settings(self) -> tuple[Settings, Sequence[Any]]:
        from meshobs.suppress import parse as parse_suppressions

        raw = self._config.raw if self._config is not None else {}
        return Settings.from_thresholds(raw.get("thresholds")), parse_suppressions(raw.get("suppress"))


class SnapshotLoader:
    """Shows snapshots produced by a function (tests, benchmarks, embedding)."""

    def __init__(self, produce: Callable[[], MeshSnapshot], *, live: bool = True,
                 description: str = "snapshot", bundle: Bundle | None = None) -> None:
        self.produce, self.live, self.description, self.bundle = produce, live, description, bundle

    def load(self) -> tuple[Bundle | None, MeshSnapshot]:
        return self.bundle, self.produce()

    def settings(self) -> tuple[Settings, Sequence[Any]]:
        return Settings(), ()


@dataclass(frozen=True)
class Analysis:
    """One load: the snapshot, its diagnosis and the overview rows, ready to show."""

    snapshot: MeshSnapshot
    bundle: Bundle | None
    report: MeshReport | None
    rows: list[ServiceRow]
    findings: list[FindingRow]
    failing: list[str]
    timings: dict[str, float] = field(default_factory=dict)

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
    """Load, diagnose every service and build the overview: the whole refresh, off the UI thread."""
    from meshobs.engine import diagnose_all

    global _refreshes
    _refreshes += 1
    if _refreshes % COLLECT_EVERY == 0:
        gc.unfreeze()
        gc.collect()
    t0 = time.perf_counter()
    bundle, snapshot = loader.load()
    # A snapshot of a big mesh is millions of long-lived objects; a full (gen 2) garbage
    # collection walks them all and stops every thread, the UI's too, for 0.2-0.4 s per 1,000
    # services. Freezing moves them out of the collector's sight (refcounting still frees them).
    gc.freeze()
    t1 = time.perf_counter()
    report = None
    if diagnose:
        settings, suppressions = loader.settings()
        report = diagnose_all(snapshot, settings, suppressions)
    t2 = time.perf_counter()
    rows = overview_rows(snapshot, report)
    findings = finding_rows(report)
    gc.freeze()
    t3 = time.perf_counter()
    return Analysis(snapshot, bundle, report, rows, findings, failing_sources(snapshot),
                    {"load_s": t1 - t0, "diagnose_s": t2 - t1, "view_s": t3 - t2})


class DataLoaded(Message):
    """A load finished; ``analysis`` replaces what the screens show."""

    def __init__(self, analysis: Analysis) -> None:
        super().__init__()
        self.analysis = analysis


class DataFailed(Message):
    """A load failed as a whole (a single failing source does not: it shows in the snapshot)."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error
