"""The source bar's model: every source's state in one line, so failure is never silent.

Pure (no textual). A source is one of:

* ``ok`` (√): answered on the last refresh;
* ``stale`` (‼): failed on the last refresh, and what the dashboard shows from it is the last
  good answer, from ``since``;
* ``down`` (a cross): failed, and nothing from it is shown (it never answered, or the data was
  dropped when the time range changed);
* ``no data`` (a dash): answered with nothing (no traces in the window, no proxies found).

The hundreds of ``envoy:<ns>/<pod>`` sources of a mesh are one entry (``envoy 8/10``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from meshobs.model import MeshSnapshot, SourceState, SourceStatus

MARKS = {"ok": "√", "stale": "‼", "down": "×", "no data": "–"}
# Sources people think of first come first; any other kind follows in name order.
ORDER = ("kubernetes", "manifests", "prometheus", "envoy", "jaeger", "cloudwatch", "xray", "appmesh")


@dataclass(frozen=True, slots=True)
class Stale:
    """A source whose last refresh failed: its data is from ``since``; ``why`` it failed now."""

    since: datetime
    why: str


@dataclass(frozen=True, slots=True)
class SourceEntry:
    """One entry of the source bar: a source, or every source of one kind (the Envoy pods)."""

    kind: str
    state: str  # ok | stale | down | no data
    why: str = ""
    since: datetime | None = None  # stale: when its data is from
    total: int = 1
    failed: int = 0

    @property
    def mark(self) -> str:
        return MARKS[self.state]

    def text(self, now: datetime) -> str:
        """``√ prometheus``, ``‼ jaeger stale since 12:03:10 (45s): timed out``, a cross and
        ``envoy 2/10 down: connection refused``."""
        name = self.kind
        if self.total > 1:
            name += f" {self.failed}/{self.total}" if self.failed else f" {self.total}"
        if self.state == "ok":
            return f"{self.mark} {name}"
        if self.state == "stale" and self.since is not None:
            word = f"stale since {self.since:%H:%M:%S} ({age(now, self.since)})"
        else:
            word = self.state
        return f"{self.mark} {name} {word}" + (f": {self.why}" if self.why else "")


def age(now: datetime, then: datetime) -> str:
    """``45s``, ``3m05s``, ``2h10m``, ``3d4h``: how long ago, compactly."""
    s = max(0, int((now - then).total_seconds()))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600}h"


def kind_of(status: SourceStatus) -> str:
    return status.kind or status.name.split(":", 1)[0]


def _group(statuses: Iterable[SourceStatus]) -> dict[str, list[SourceStatus]]:
    groups: dict[str, list[SourceStatus]] = {}
    for s in statuses:
        groups.setdefault(kind_of(s), []).append(s)
    order = {k: i for i, k in enumerate(ORDER)}
    return {k: groups[k] for k in sorted(groups, key=lambda k: (order.get(k, len(ORDER)), k))}


def _entry(kind: str, members: list[SourceStatus], stale: Mapping[str, Stale]) -> SourceEntry:
    total = len(members)
    old = [stale[s.name] for s in members if s.name in stale]
    failed = [s for s in members if s.name in stale or s.state is SourceState.ERROR]
    # A pod's own message is "proxy unreachable: ..."; the first one stands for the rest.
    why = old[0].why if old else next((s.message or "failed" for s in failed), "")
    count = len(failed) if total > 1 else 0
    if old:
        return SourceEntry(kind, "stale", why, min(o.since for o in old), total, count)
    if failed:
        return SourceEntry(kind, "down", why, None, total, count)
    if all(s.state is SourceState.NO_DATA for s in members):
        return SourceEntry(kind, "no data", members[0].message, None, total, 0)
    return SourceEntry(kind, "ok", "", None, total, 0)


def source_board(statuses: Iterable[SourceStatus], stale: Mapping[str, Stale] | None = None) -> list[SourceEntry]:
    """One entry per source kind, in :data:`ORDER`. ``stale``: sources (by name) whose shown
    data is an earlier answer; they read ‼ even when their current status is an error."""
    return [_entry(kind, members, stale or {}) for kind, members in _group(statuses).items()]


class SourceHistory:
    """When each source last answered, so a failed refresh can say how old the shown data is.

    Lives on the UI thread (the app owns one); fed every load that is shown.
    """

    def __init__(self) -> None:
        self.last_ok: dict[str, datetime] = {}

    def observe(self, snapshot: MeshSnapshot, at: datetime, stale: Mapping[str, Stale]) -> None:
        """A load that is shown: its answering sources are good as of ``at``."""
        for s in snapshot.sources:
            if s.state is not SourceState.ERROR and s.name not in stale:
                self.last_ok[s.name] = at

    def forget(self) -> None:
        """The time range changed: earlier answers are about another window."""
        self.last_ok.clear()

    def kept(self, failed: Iterable[SourceStatus], shown: MeshSnapshot, why: str | None = None) -> dict[str, Stale]:
        """A refresh failed and ``shown`` (the last good snapshot) stays on screen: each of
        its sources is stale since it last answered, failing for the new reason (``failed``:
        the statuses of the failed refresh; ``why``: a whole-load error)."""
        now_failing = {s.name: s.message or "failed" for s in failed if s.state is SourceState.ERROR}
        out: dict[str, Stale] = {}
        for s in shown.sources:
            since = self.last_ok.get(s.name)
            if since is not None:
                out[s.name] = Stale(since, why or now_failing.get(s.name, "did not answer"))
        return out

    def after_failure(self, failed: Iterable[SourceStatus], shown: MeshSnapshot,
                      why: str | None = None) -> tuple[dict[str, Stale], list[SourceEntry]]:
        """The stale map and the source bar when ``shown`` stays on screen after a failed
        refresh; sources only the failed refresh knows of are listed as down."""
        failed = list(failed)
        stale = self.kept(failed, shown, why)
        names = {s.name for s in shown.sources}
        statuses = [*shown.sources, *(s for s in failed if s.name not in names)]
        return stale, source_board(statuses, stale)

