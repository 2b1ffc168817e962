"""The mesh-wide heavy queries on a big mesh: measured first, then split, or given up on early.

A mesh-wide ``histogram_quantile`` (``--all``, the dashboard, ``snapshot``) makes the server
rate every bucket series of the mesh. At 1,000 services that is about 83k series and a few
seconds; at 5,000 it is several hundred thousand series, and the three quantile queries sent
whole ran past their timeout every time (benchmarks/results/all5k2.md), so the run waited 30 s
for nothing and still said "timed out". What this module does instead:

* the request rates' answer first (the cheap query every run sends): its series per destination
  service, times the histogram's buckets, is how many bucket series the heavy queries would read
  (M), for how many services (N), and where they are. Istio's duration histogram carries the
  request counter's labels, so that is exact when the answer is not narrowed by ``> 0`` (idle
  series) or summed over pods; it is an estimate the measured pace corrects. A probe asking
  the server (``count by`` over the bucket series) was measured and dropped: it reads a sample
  of every bucket series, 17-65 s at 5,000 services on a loaded 2-core machine, as much as one
  quantile query;
* up to :data:`SHARD_SERIES` bucket series, nothing changes: the queries go whole, as before
  (the 1,000-service and test meshes send exactly the same PromQL);
* above it, each heavy query is split into shards of at most that many series, by destination
  namespace (a namespace bigger than a shard by service names), sent concurrently like any
  other query. Every shard's answer is a part of the whole query's answer (the quantiles are
  grouped by the destination labels the shards split on), so the merged answer is the same
  series the whole query would have returned, and normalises the same way;
* as shards of the instant quantiles answer, the server's pace on this run (seconds per bucket
  series, measured with the shards in flight together) says how long the rest needs; when that
  is more than the time left before the run's deadline, nothing more is sent and every heavy
  query says why (:meth:`Shards.reason`): the latency checks say "could not check" with the
  number of services and series, and what would make it fit (Istio's recording rules);
* a shard that fails or times out costs its whole query (a partial quantile answer would judge
  some services and silently skip the others), and stops the rest too.

Splitting does not make the server's work smaller; it makes the work measurable while it runs,
keeps each answer and each evaluation small, and lets the run give up with a reason instead of
waiting on a query that cannot finish.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from meshobs.raw import Payload

from ..promql import (
    ISTIO_DURATION_BUCKETS_MS,
    _alternatives,  # the one way a set of names becomes a PromQL regex
)

# Bucket series per shard. Measured on the served generated-1000 mesh: one mesh-wide quantile
# query reads ~83k bucket series (at 1,000 services, whole, as before); generated-5000 has
# ~415k, which one query cannot rate within its timeout on a shared 2-core machine.
SHARD_SERIES = 100_000
# Service names per shard of a namespace too big for one: keeps the query string short
# (fetch.MAX_QUERY_CHARS; names written as a prefix tree).
_NAMES_PER_SHARD = 400
# Bucket series per request series: Istio's buckets and +Inf.
BUCKETS = len(ISTIO_DURATION_BUCKETS_MS) + 1
# Why the heavy queries were not sent when the request rates were not even sent.
DEADLINE_PASSED = "the run's deadline had passed before the request rates were sent"
RULES_HINT = "install the recording rules in config/prometheus-recording-rules.yaml"
_NS, _NAME = "destination_service_namespace", "destination_service_name"


@dataclass(frozen=True)
class Shard:
    """One part of the mesh: a matcher set over the destination labels, and its bucket series."""

    matchers: str
    series: int


@dataclass(frozen=True)
class Census:
    """Bucket series in all (M), services (N), and the shards (one with no matchers: small
    enough to send the heavy queries whole)."""

    series: int
    services: int
    shards: tuple[Shard, ...] = ()


def census(result: Iterable[dict[str, Any]], limit: int = SHARD_SERIES, buckets: int = BUCKETS) -> Census:
    """The request rates' answer (its series) -> a Census of the bucket series behind them;
    shards packed by namespace (first fit, biggest first), a namespace over ``limit`` split by
    service names."""
    per_ns: dict[str, dict[str, int]] = {}
    for s in result:
        labels = s.get("metric") or {}
        names = per_ns.setdefault(str(labels.get(_NS, "")), {})
        name = str(labels.get(_NAME, ""))
        names[name] = names.get(name, 0) + buckets
    total = sum(sum(names.values()) for names in per_ns.values())
    services = sum(len(names) for names in per_ns.values())
    if total <= limit:
        return Census(total, services, (Shard("", total),))  # one shard: the whole query as is
    whole: list[tuple[int, str]] = []  # (series, namespace)
    shards: list[Shard] = []
    for ns, names in per_ns.items():
        size = sum(names.values())
        if size <= limit:
            whole.append((size, ns))
            continue
        group: list[str] = []
        held = 0
        for name, n in sorted(names.items()):
            if group and (held + n > limit or len(group) >= _NAMES_PER_SHARD):
                shards.append(Shard(_one_ns(ns, group), held))
                group, held = [], 0
            group.append(name)
            held += n
        if group:
            shards.append(Shard(_one_ns(ns, group), held))
    # Whole namespaces packed together (first fit, biggest first).
    bins: list[tuple[int, list[str]]] = []
    for size, ns in sorted(whole, key=lambda p: (-p[0], p[1])):
        for i, (held, group) in enumerate(bins):
            if held + size <= limit:
                bins[i] = (held + size, [*group, ns])
                break
        else:
            bins.append((size, [ns]))
    shards += [Shard(f'{_NS}=~"{_alternation(group)}"', held) for held, group in bins]
    return Census(total, services, tuple(shards))


def _one_ns(ns: str, names: list[str]) -> str:
    return f'{_NS}="{_escape(ns)}",{_NAME}=~"{_alternation(names)}"'


def _alternation(values: list[str]) -> str:
    return _alternatives(values, compact=True)


def _escape(text: str) -> str:
    """A PromQL string literal's contents (backslashes and quotes escaped)."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


class Shards:
    """The run's heavy queries split by one Census: the pace measured so far, and whether to
    go on. Shared by the worker threads sending the shards. Instant quantiles (what the latency
    checks read) and range queries (the sparkline) are paced apart; giving up on the former
    gives up on the latter too."""

    def __init__(self, found: Census, queries: dict[bool, int], lanes: int, left_s: Callable[[], float]) -> None:
        self.census = found
        self.lanes = max(1, lanes)  # heavy queries in flight together
        self.left_s = left_s  # seconds left before the run's deadline
        self._lock = threading.Lock()
        # per kind (True: instant): bucket series still to read, seconds spent, series read
        self._pending = {k: found.series * n for k, n in queries.items()}
        self._spent = dict.fromkeys(queries, 0.0)
        self._read = dict.fromkeys(queries, 0)
        self._stopped: dict[bool, str] = {}  # a kind stopped by one of its shards failing
        self._gave_up: str | None = None  # everything stopped: it cannot finish in time

    def go_on(self, instant: bool = True) -> str | None:
        """None to send the next shard of this kind, else why not."""
        with self._lock:
            return self._gave_up or self._stopped.get(instant)

    def give_up(self, why: str) -> None:
        """Send no more heavy shards, of either kind."""
        with self._lock:
            self._gave_up = self._gave_up or why

    def foresee(self, elapsed_s: float, series: int) -> None:
        """Before any heavy query is sent: the request rates' answer took ``elapsed_s`` for
        ``series`` series (client side: the transfer and decoding included, so this errs on
        the long side); the quantiles read the census's bucket series at that pace, ``lanes``
        at a time. Give up at once when that is more than the time left."""
        pace = elapsed_s / max(1, series)
        self._check(pace * self._pending.get(True, 0) / self.lanes, "at the request rates' pace")

    def _check(self, needed: float, how: str) -> None:
        left = self.left_s()
        if needed > left:
            self.give_up(f"mesh-wide quantiles over {self.census.series} series exceed the deadline "
                         f"(about {needed:.0f} s {how}, {max(0.0, left):.0f} s left)")

    def answered(self, payload: Payload, shard: Shard, instant: bool) -> None:
        """One shard came back: a failure stops the rest of its kind (that data is lost
        anyway); an instant quantile's answer updates the pace, and everything stops when the
        rest cannot finish in the time left."""
        with self._lock:
            if self._gave_up or instant in self._stopped:
                return
            if not payload.ok:
                self._stopped[instant] = f"a mesh-wide quantile query failed ({payload.error})"
                return
            if not instant:
                return
            self._spent[instant] += payload.elapsed_s
            self._read[instant] += shard.series
            self._pending[instant] -= shard.series
            pace = self._spent[instant] / max(1, self._read[instant])  # s per series, shards in flight
            needed = pace * self._pending[instant] / self.lanes
        self._check(needed, "more at this server's pace")

    def reason(self, why: str) -> str:
        """The error every heavy query gets once the run gave up on them."""
        services = f" for {self.census.services} services" if self.census.services else ""
        # No recording rule makes a query the run had no time left to send fit.
        hint = "" if why == DEADLINE_PASSED else f"; {RULES_HINT}"
        return f"latency{services} — {why}{hint}"


def merge(key: str, url: str, params: dict[str, Any], parts: list[Payload], kind: str,
          text: Callable[[Any], str] = json.dumps) -> Payload:
    """The shards' answers of one query as the one payload the whole query would have given
    (the series of every shard, in shard order); ``meta["shards"]`` keeps each shard's PromQL."""
    series: list[Any] = []
    for p in parts:
        decoded = p.decoded if p.decoded is not None else json.loads(p.body or "{}")
        series.extend(decoded.get("result", []))
    answer = {"resultType": kind, "result": series}
    merged = Payload(key=key, url=url, params=params, status=200,
                     elapsed_s=max((p.elapsed_s for p in parts), default=0.0),
                     fetched_at=parts[0].fetched_at if parts else "",
                     meta={"shards": [p.params.get("query", "") for p in parts]})
    merged.text_later(answer, text)  # written when read, as each shard's answer (fetch._Run._call)
    return merged
