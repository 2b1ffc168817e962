"""Fetching from Prometheus: the instant and range queries of :mod:`meshobs.collectors.promql`.

A constant number of queries for the whole mesh (or, in the scoped phase of ``diagnose
SERVICE``, for its neighbourhood), through prometheus-api-client. Independent queries run
concurrently, each with its own timeout, so one slow query costs only its own data:

* a query that times out (client side, or the server's own ``timeout`` parameter) is a payload
  with ``error`` "query X timed out after N s"; the others are still sent and used;
* the heavy mesh-wide queries (over the duration histogram: the three latency quantiles and the
  p99 sparkline of a ``--all``, a dashboard or a snapshot) run together and share the server, so
  each gets the per-query timeout once for every heavy query beside it (:func:`heavy_factor`);
  the run's deadline still bounds them. They wait for the request rates' answer, which says how
  many bucket series they read and at what pace the server reads: on a big mesh they are split
  into shards, or not sent at all when they cannot finish before the deadline (:mod:`.heavy`);
* only a failure to connect (refused, host name not found, no answer to the TCP handshake)
  marks the server unreachable: the queries not yet sent are then recorded as "not sent";
* nothing is sent once the run's deadline (``ctx.deadline``) has passed, and no query waits
  beyond it.

Every answer is kept as received; a failed query is a Payload with ``error``, never an exception.
"""

from __future__ import annotations

import ast
import functools
import json
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import requests
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.retry import Retry

from meshobs.durations import format_duration, seconds
from meshobs.raw import Payload, RawSource, iso, utc_now

from .. import silence
from ..base import FetchContext, Scope
from ..http import bounded_session, describe_error, tls_verify
from ..promql import (
    CONTROL_PLANE,
    EDGE_FAMILIES,
    EDGE_MARKER,
    EDGE_PREFIX,
    EDGE_RULES_MIN_WINDOW_S,
    GRAPH,
    GRAPH_QUERIES,
    HISTORY_QUERIES,
    LATENCY_BUCKETS,
    LATENCY_QUERIES,
    QUERIES,
    RANGE_QUERIES,
    RECORDED_FAMILIES,
    RECORDED_PREFIX,
    SCOPED,
    Query,
    control_plane_query,
    history_span_s,
    history_step_s,
    render_history,
    render_range,
    rules_query,
    scope_matchers,
    series_step_s,
)
from .heavy import BUCKETS, DEADLINE_PASSED, SHARD_SERIES, Census, Shard, Shards, census, merge
from .history_scope import failing
from .history_scope import matchers as history_matchers
from .labels import KIND

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_CONCURRENCY = 4
# A neighbourhood too big for one query string (hundreds of services) is read mesh-wide
# instead: VictoriaMetrics refuses queries over 16 KB by default, proxies often cap URLs at 8 KB.
MAX_QUERY_CHARS = 7000
# The server gets the query's timeout as its own evaluation limit and answers "timed out" a
# little before the client would give up, so the error says which side ran out of time.
SERVER_GRACE_S = 1.0
# Queries left unanswered past their timeout, with none answered at all, after which a run sends
# the server no more (the run's record of it: meshobs.collectors.silence).
SILENT_AFTER = silence.SILENT_AFTER


@dataclass(frozen=True)
class _Job:
    key: str  # payload key: "query:<name>", "range:<name>" (sparklines) or "history:<name>"
    query: Query
    promql: str
    scoped: bool  # narrowed to the neighbourhood


def _unreachable(exc: BaseException) -> bool:
    """A failure to connect at all (refused, DNS, TCP handshake timeout), as opposed to a query
    that was sent and then failed or ran out of time."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, (NewConnectionError, ConnectTimeoutError, ConnectionRefusedError)):
            return True
        reason = getattr(seen, "reason", None)
        if isinstance(reason, BaseException):
            seen = reason
            continue
        args = getattr(seen, "args", ())
        nested = next((a for a in args if isinstance(a, BaseException)), None)
        seen = nested or seen.__cause__ or seen.__context__
    return False


class PrometheusCollector:
    """Queries one Prometheus-compatible server with a constant number of queries."""

    kind = KIND

    def __init__(self, url: str, *, headers: dict[str, str] | None = None, verify_tls: bool = True,
                 ca_file: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
                 concurrency: int = DEFAULT_CONCURRENCY, recording_rules: str = "auto",
                 history_s: float | None = None) -> None:
        self.url = url.rstrip("/")
        self.history_s = history_s  # history.span; None: an hour, or 12 windows
        self.timeout_s = timeout_s
        self.concurrency = max(1, concurrency)
        self.recording_rules = recording_rules
        # Bounded (meshobs.collectors.http): each query's total time, so a trickling server is cut
        # off, and the answer's size; the adapter mounted below becomes a bounded one too.
        # Every call passes its own timeout; the session's bound is the longest any may get
        # (a heavy mesh-wide query's, see heavy_factor).
        session = bounded_session(timeout_s=timeout_s * self.concurrency)
        session.verify = tls_verify(verify_tls, ca_file)
        self.client = PrometheusConnect(url=self.url, headers=headers or None, session=session,  # type: ignore[arg-type]
                                        timeout=timeout_s)  # type: ignore[arg-type]
        # Replaces the adapter the library mounted: no automatic retries (a failing Prometheus
        # is reported at once, not after seconds of back-off per query), one pooled connection
        # per concurrent query, and read=False so that a read timeout surfaces as ReadTimeout
        # (with total=0 alone urllib3 wraps it into a ConnectionError, which reads as "cannot
        # reach" although the query was sent).
        session.mount(self.url, HTTPAdapter(
            pool_connections=1, pool_maxsize=self.concurrency,
            max_retries=Retry(total=0, read=False, raise_on_status=False)))
        session.hooks["response"].append(_decode_with_msgspec)
        # Bucket series above which a mesh-wide heavy query is split into shards (heavy.py).
        self.shard_series = SHARD_SERIES
        # Recording-rule detection is per evaluation time: the two phases of one question share it.
        self._rules: dict[tuple[float, float], frozenset[str]] = {}

    # -- the plan -------------------------------------------------------------------------------
    def fetch(self, ctx: FetchContext) -> list[RawSource]:
        """Run the phase's queries at ``ctx.time``; a failed query is a payload with ``error``."""
        raw = RawSource(name="prometheus", kind=KIND, meta={"url": self.url})
        run = _Run(self, ctx)
        with raw.timed():
            recorded = self._recorded_families(run, raw)
            jobs = self._jobs(ctx, recorded)
            if ctx.phase == "scoped":
                jobs += self._history_jobs(ctx, recorded, raw)
            self._send(run, raw, jobs, recorded)
            if ctx.phase == "all":
                # Narrowed to what fails now: after the requests answer says what that is.
                self._send(run, raw, self._history_jobs(ctx, recorded, raw))
        return [raw]

    def _send(self, run: _Run, raw: RawSource, jobs: list[_Job], recorded: frozenset[str] = frozenset()) -> None:
        """Send ``jobs`` concurrently; their answers join ``raw`` in plan order. The heavy
        mesh-wide ones wait for the request rates' answer when it is among ``jobs``: it says how
        many bucket series they would read, and they are split into shards when that is too
        many for them whole (:mod:`.heavy`)."""
        if not jobs:
            return
        heavy = [j for j in jobs if _heavy(j)]
        rates = next((j for j in jobs if j.key == "query:requests"), None) if heavy else None
        factor = heavy_factor(jobs, self.concurrency)
        split: _Split | None = None
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="prometheus") as pool:
            if rates is None:
                # The heaviest first (quantiles over buckets), so the cheap ones overlap them; but
                # never more heavy ones at once than heavy_factor allows, so one worker stays free
                # for the cheap ones (the request rates: the graph) while the heavy ones take their
                # longer time.
                futures = {j.key: pool.submit(run.send, j, factor if _heavy(j) else 1)
                           for j in _in_sending_order(jobs, factor)}
            else:
                # The cheap ones first, the request rates first of all; the heavy ones once their
                # answer says how big the mesh is (0.4 s at 1,000 services, 2 s at 5,000).
                cheap = sorted((j for j in jobs if not _heavy(j)), key=lambda j: j is not rates)
                futures = {j.key: pool.submit(run.send, j, 1) for j in cheap}
                split = self._split(run, raw, futures[rates.key].result(), heavy, recorded)
                sent = heavy if split is None else split.jobs
                send = run.send if split is None else split.send
                futures.update({j.key: pool.submit(send, j, factor) for j in sent})
            # Answers are kept in plan order, so a bundle does not depend on timing.
            for job in jobs:
                if split is not None and job.key in split.parts:
                    raw.add(split.whole(job, [futures[k].result() for k in split.parts[job.key]]))
                else:
                    raw.add(futures[job.key].result())

    def _split(self, run: _Run, raw: RawSource, rates: Payload, whole: list[_Job],
               recorded: frozenset[str]) -> _Split | None:
        """The heavy mesh-wide jobs as shards (:mod:`.heavy`; one shard, the query as is, on a
        mesh small enough), with the decision to send them taken from the request rates'
        answer; or None when that answer failed for another reason than time (then whole, as
        before: the per-query timeouts and the run's deadline still bound them)."""
        rules = whole[0].query.rule_family in recorded
        lanes = heavy_factor(whole, self.concurrency)
        if "timed_out" in rates.meta:
            # The cheap query alone could not finish: the quantiles read twenty times as many series.
            split = _Split(run, Census(0, 0, (Shard("", 0),)), whole, rules, lanes)
            if rates.meta["timed_out"]:
                took = seconds(rates.meta["timed_out"])
                split.shards.give_up(f"the request rates alone timed out after {took} s, and "
                                     f"the mesh-wide quantiles read {BUCKETS} times as many series")
            else:  # never sent: the run's deadline had passed (recording rules or not, no fix)
                split.shards.give_up(DEADLINE_PASSED)
            return split
        answer = rates.decoded
        if not rates.ok or not isinstance(answer, dict):
            return None
        try:
            found = census(answer["result"], self.shard_series)
        except (ValueError, KeyError, TypeError, IndexError):
            return None
        raw.meta["heavy"] = {"series": found.series, "services": found.services, "shards": len(found.shards)}
        split = _Split(run, found, whole, rules, lanes)
        split.shards.foresee(rates.elapsed_s, len(answer["result"]))
        return split

    def _jobs(self, ctx: FetchContext, recorded: frozenset[str]) -> list[_Job]:
        phases = (GRAPH,) if ctx.phase == "graph" else (SCOPED,)
        narrow = ctx.phase == "scoped"
        window = format_duration(ctx.window_s)

        def text(prefix: str, q: Query, rules: bool, s: tuple[str, ...], lean: bool = False) -> str:
            if prefix == "query":
                return q.render(window, recorded=rules, scope=s, edge=EDGE_PREFIX + q.family in recorded, lean=lean)
            return render_range(q.name, ctx.window_s, recorded=rules, scope=s, lean=lean)

        def job(prefix: str, q: Query) -> _Job:
            scopes = [functools.partial(_matchers, ctx.scope, q, c) for c in (False, True)] if narrow else []
            promql, scoped = _narrowed(functools.partial(text, prefix, q, q.rule_family in recorded), *scopes,
                                       spare=bool(q.spare))
            return _Job(f"{prefix}:{q.name}", q, promql, scoped)

        jobs: list[_Job] = []
        for prefix, queries in (("query", GRAPH_QUERIES), ("query", QUERIES), ("range", RANGE_QUERIES)):
            for q in queries.values():
                if q.phase in phases:
                    jobs.append(job(prefix, q))
        if narrow and (buckets := job("query", LATENCY_BUCKETS)).scoped:
            # A neighbourhood's latency: one bucket query instead of three quantile queries (see
            # LATENCY_BUCKETS); mesh-wide, the quantiles (the buckets would be 28 MB).
            jobs = [buckets if j.key == "query:latency_p50" else j for j in jobs
                    if j.key not in (f"query:{n}" for n in LATENCY_QUERIES[1:])]
        if SCOPED in phases:
            # istiod's metrics: a handful of series whatever the mesh size, never narrowed.
            jobs.append(_Job(f"query:{CONTROL_PLANE}", _CONTROL_PLANE, control_plane_query(window), False))
        return jobs

    def _history_jobs(self, ctx: FetchContext, recorded: frozenset[str], raw: RawSource) -> list[_Job]:
        """The history queries, narrowed (see :mod:`.history_scope`); none, with the reason in
        ``raw.meta["history"]``, when there is nothing to narrow to or it does not fit."""
        span = self.span_s(ctx)
        end = ctx.time.timestamp()
        note = {"start": end - span, "end": end, "step": history_step_s(span)}
        if ctx.phase == "scoped" and ctx.scope is None:
            # The graph phase gave no traffic edges (or nothing answered): nothing to narrow to.
            raw.meta["history"] = {**note, "skipped": "no traffic graph to take the service's neighbourhood from"}
            return []
        if ctx.phase == "scoped":
            where = _matchers(ctx.scope)
            into = _matchers(ctx.scope, LATENCY_BUCKETS) or where
            what = "the neighbourhood" if where else "an empty neighbourhood"
            compact = (functools.partial(_matchers, ctx.scope, None, True),
                       functools.partial(_matchers, ctx.scope, LATENCY_BUCKETS, True))
        else:
            found = failing(raw.get("query:requests"))
            if found is None:
                raw.meta["history"] = {**note, "skipped": "the requests query did not answer"}
                return []
            if not found[0] and not found[1]:
                raw.meta["history"] = {**note, "skipped": "no request failed in the window: nothing to time",
                                       "empty": True}
                return []
            where = history_matchers(*found)
            into = history_matchers(found[0], set()) or where
            compact = (functools.partial(history_matchers, *found, compact=True),
                       functools.partial(history_matchers, found[0], set(), compact=True))
            what = f"the {len(found[0])} service{'s' if len(found[0]) != 1 else ''} with failing requests"
            raw.meta["history"] = {**note, "covers": what}
        jobs: list[_Job] = []
        for q in HISTORY_QUERIES.values():
            text = functools.partial(_history_text, q, span, q.rule_family in recorded)
            scopes = ((_given(into), lambda: compact[1]() or compact[0]()) if q.into_only
                      else (_given(where), compact[0]))
            promql, fits = _narrowed(text, *scopes, spare=bool(q.spare))
            if not fits:
                why = f"{what} is too large for one history query" if where else f"{what}: nothing to time"
                raw.meta["history"] = {**note, "skipped": why}
                return []
            jobs.append(_Job(f"history:{q.name}", q, promql, True))
        return jobs

    def span_s(self, ctx: FetchContext) -> float:
        """How far back the history queries reach for this question."""
        return history_span_s(ctx.window_s, self.history_s)

    def _recorded_families(self, run: _Run, raw: RawSource) -> frozenset[str]:
        """The families whose Istio recording rule the server has, and the edge-level recorded
        series it has (named with EDGE_PREFIX, see promql.EDGE_FAMILIES); empty: read raw metrics."""
        if self.recording_rules == "off":
            return frozenset()
        key = (run.ctx.time.timestamp(), run.ctx.window_s)
        if key in self._rules:
            return self._rules[key]
        payload = raw.add(run.instant("rules", rules_query(format_duration(run.ctx.window_s))))
        found: set[str] = set()
        if payload.ok and payload.has_body():
            try:
                answer = payload.decoded if payload.decoded is not None else json.loads(payload.body or "")
                for series in answer["result"]:
                    name = str(series.get("metric", {}).get("__name__", ""))
                    if name.startswith(RECORDED_PREFIX):
                        found.add(name.removeprefix(RECORDED_PREFIX))
                    elif name == EDGE_MARKER and run.ctx.window_s >= EDGE_RULES_MIN_WINDOW_S:
                        # the edge rules' group is evaluated: all of them
                        found.update(EDGE_PREFIX + f for f in EDGE_FAMILIES)
            except (ValueError, KeyError, TypeError, AttributeError):
                found.clear()
        # A failed detection (an engine without group(), a timeout) means raw metrics: slower,
        # never wrong. Unreachable is remembered by the run and stops the rest.
        families = frozenset(found & {*RECORDED_FAMILIES, *(EDGE_PREFIX + f for f in EDGE_FAMILIES)})
        payload.meta["recorded"] = sorted(families)
        if payload.ok:
            self._rules[key] = families
        return families


def _heavy(job: _Job) -> bool:
    """A mesh-wide query over the duration histogram: it reads and rates every bucket series of
    the mesh (one alone took 4 s at 1,000 services on a loaded 2-core machine)."""
    return job.query.histogram and not job.scoped


def heavy_factor(jobs: list[_Job], concurrency: int) -> int:
    """How many per-query timeouts each heavy query of ``jobs`` gets: the number of heavy
    queries in flight together, since they share the server. That is at most ``concurrency``,
    less one worker kept for the other queries when there are any (:func:`_in_sending_order`).

    Measured on the served generated-1000 mesh (Prometheus 2.42, 2 cores shared, load 5-8):
    one quantile query alone 4.0 s; the three sent together 9.7-21.6 s each, and 16.3 s each
    beside a --all's Envoy fan-out, so with 10 s each the mesh-wide latency was always lost.
    The alternatives measured: one bucket query for the whole mesh (28 MB, 83,480 series) took
    11-13 s beside the fan-out, as long as the quantiles, and grows past max_response_mb at
    5,000 services; sending the quantiles one after another beside the fan-out took 11.4, 6.6
    and 4.1 s (the first still past 10 s). A narrowed (scoped) query is not heavy."""
    heavy = sum(1 for j in jobs if _heavy(j))
    lanes = concurrency - 1 if heavy < len(jobs) else concurrency
    return max(1, min(heavy, lanes))


def _in_sending_order(jobs: list[_Job], factor: int) -> list[_Job]:
    """The order jobs are handed to the workers (first come, first served): the histogram
    queries first, at most ``factor`` heavy ones among them, then the others, then the heavy
    ones left. The workers beyond ``factor`` thus take the cheap queries, never a heavy one that
    would hold them for several timeouts while the request rates wait."""
    ordered = sorted(jobs, key=lambda j: not j.query.histogram)
    heavy = [j for j in ordered if _heavy(j)]
    rest = [j for j in ordered if not _heavy(j)]
    return heavy[:factor] + rest + heavy[factor:]


def _history_text(query: Query, span: float, recorded: bool, scope: tuple[str, ...], lean: bool = False) -> str:
    return render_history(query.name, span, recorded=recorded, scope=scope, lean=lean)


# The control-plane query as a job of the plan (its PromQL is built by control_plane_query).
_CONTROL_PLANE = Query(CONTROL_PLANE, "pilot_xds_pushes", (), SCOPED)


def _matchers(scope: Scope | None, query: Query | None = None, compact: bool = False) -> tuple[str, ...]:
    """The neighbourhood's matcher sets; for a query over the duration histogram, the edges into
    its services only (see :func:`~meshobs.collectors.promql.scope_matchers`)."""
    if scope is None:
        return ()
    return _scope_matchers(scope, query is not None and query.into_only and bool(scope.services), compact)


@functools.lru_cache(maxsize=16)
def _scope_matchers(scope: Scope, into_only: bool, compact: bool) -> tuple[str, ...]:
    # Every query of a scoped phase is narrowed with one of these few sets: written once per
    # scope, not once per query (a neighbourhood of 42 services and 65 workloads: 28 ms for the
    # phase's 13 queries, before the first could be sent).
    return scope_matchers(scope.services, () if into_only else scope.workloads, compact)


def _given(value: tuple[str, ...]) -> Callable[[], tuple[str, ...]]:
    return lambda: value


def _narrowed(text: Callable[..., str], *scopes: Callable[[], tuple[str, ...]],
              spare: bool = False) -> tuple[str, bool]:
    """The query narrowed to the neighbourhood with the first of ``scopes`` (the same matchers,
    plain then compact; each written only when the ones before it did not fit) that fits in one
    query string, else mesh-wide. A query with ``spare`` matcher sets (Query.spare) that does
    not fit with them is tried again without them before it goes mesh-wide: the neighbourhood's
    errors, less the rate-limit refusals, rather than the whole mesh's or none."""
    for lean in (False, True) if spare else (False,):
        for matchers in scopes:
            if scope := matchers():
                scoped = text(scope, lean=lean)
                if len(scoped) <= MAX_QUERY_CHARS:
                    return scoped, True
    return text(()), False


class _Split:
    """The heavy jobs of one send split into shards (:mod:`.heavy`): the shard jobs, which
    shards make which whole query, and the shared decision to go on."""

    def __init__(self, run: _Run, found: Census, whole: list[_Job], recorded: bool, lanes: int) -> None:
        self.run = run
        kinds = [j.key.startswith("query:") for j in whole]
        self.shards = Shards(found, {k: kinds.count(k) for k in set(kinds)}, lanes, run.ctx.remaining_s)
        self.parts: dict[str, list[str]] = {}
        self.jobs: list[_Job] = []
        self._of: dict[str, Shard] = {}
        window = format_duration(run.ctx.window_s)
        # Shard by shard, the instant quantiles of a shard together (the pace is measured
        # from the first answers); the sparkline's range query (the heaviest, and read by no
        # check) after them.
        for shard_no, shard in enumerate(found.shards):
            for j in sorted(whole, key=lambda j: j.key.startswith("range:")):
                scope = (shard.matchers,) if shard.matchers else ()
                promql = (j.query.render(window, recorded=recorded, scope=scope) if j.key.startswith("query:")
                          else render_range(j.query.name, run.ctx.window_s, recorded=recorded, scope=scope))
                key = f"{j.key}#{shard_no + 1}"
                self.parts.setdefault(j.key, []).append(key)
                self.jobs.append(_Job(key, j.query, promql, False))
                self._of[key] = shard
        self.jobs.sort(key=lambda j: j.key.startswith("range:"))

    def send(self, job: _Job, factor: int = 1) -> Payload:
        shard = self._of.get(job.key)
        if shard is None:
            return self.run.send(job, factor)
        instant = job.key.startswith("query:")
        why = self.shards.go_on(instant)
        if why is not None:
            return Payload(key=job.key, error=f"not sent: {why}", meta={"phase": job.query.phase})
        payload = self.run.send(job, factor)
        self.shards.answered(payload, shard, instant)
        return payload

    def whole(self, job: _Job, parts: list[Payload]) -> Payload:
        """The one payload of ``job`` from its shards' answers, or its failure: the run's reason
        to give up when it gave up, else the first shard's error."""
        kind = "vector" if job.key.startswith("query:") else "matrix"
        url = f"{self.run.url}/api/v1/{'query' if kind == 'vector' else 'query_range'}"
        params = {**(parts[0].params if parts else {}), "query": job.promql}
        if all(p.ok for p in parts):
            payload = merge(job.key, url, params, parts, kind, _text)
        else:
            failed = next(p for p in parts if not p.ok)
            stopped = self.shards.go_on(kind == "vector")
            error = self.shards.reason(stopped) if stopped is not None else str(failed.error)
            # A reason of the whole run, said once for every query it cost (see normalize).
            payload = Payload(key=job.key, url=url, params=params, error=error,
                              meta={"shards": [p.params.get("query", "") for p in parts],
                                    "whole_reason": stopped is not None})
            if "timed_out" in failed.meta:
                payload.meta["timed_out"] = failed.meta["timed_out"]
        payload.meta["phase"] = job.query.phase
        return payload


class _Run:
    """One fetch: the context, whether the server turned out to be unreachable, and the run's
    record of whether it answers at all (``ctx.servers``, shared with the run's other phase and
    with Envoy's scraped-stats query): a server that has answered nothing and let two queries
    run out (the rule detection, sent alone, and one of the first wave) is hung, and each wave
    of queries behind them would wait as long again (SILENT_AFTER)."""

    def __init__(self, collector: PrometheusCollector, ctx: FetchContext) -> None:
        self.collector = collector
        self.ctx = ctx
        self._lock = threading.Lock()
        self.unreachable: str | None = None
        self.record = ctx.servers.of(collector.url)

    @property
    def url(self) -> str:
        return self.collector.url

    def send(self, job: _Job, factor: int = 1) -> Payload:
        """Send one job; ``factor``: how many per-query timeouts it gets (see heavy_factor)."""
        prefix, name = job.key.split(":", 1)
        if prefix == "range":
            step = series_step_s(self.ctx.window_s)
            payload = self.range(job.key, job.promql, self.ctx.window_s, step, factor=factor)
        elif prefix == "history":
            span = self.collector.span_s(self.ctx)
            payload = self.range(job.key, job.promql, span, history_step_s(span))
        else:
            payload = self.instant(name, job.promql, key=job.key, factor=factor)
        payload.meta["phase"] = job.query.phase
        scope = self.ctx.scope
        if job.scoped and scope is not None:
            # Recorded so a replay knows which edges the answers cover.
            payload.meta["scope"] = {"services": sorted(str(s) for s in scope.services),
                                     "workloads": sorted(str(w) for w in scope.workloads)}
        return payload

    def _budget(self, factor: int = 1) -> float:
        return min(self.collector.timeout_s * factor, self.ctx.remaining_s())

    def _skip(self, payload: Payload) -> Payload | None:
        """The reason not to send at all: the server is unreachable, or the deadline passed."""
        with self._lock:
            if self.unreachable is not None:
                payload.error = f"not sent: {self.unreachable}"
                return payload
        silent = self.record.silent()
        if silent is not None:
            payload.error = f"not sent: {silent}"
            return payload
        if self._budget() <= 0:
            payload.error = "not sent: the run's deadline had passed"
            payload.meta["timed_out"] = 0.0
            return payload
        return None

    def instant(self, name: str, promql: str, *, key: str | None = None, factor: int = 1) -> Payload:
        ts = self.ctx.time.timestamp()
        payload = Payload(key=key or name, url=f"{self.url}/api/v1/query",
                          params={"query": promql, "time": ts}, fetched_at=iso(utc_now()))
        if self._skip(payload) is not None:
            return payload

        def call(budget: float) -> Any:
            result = self.collector.client.custom_query(
                promql, params={"time": ts, "timeout": _server_timeout(budget)},
                timeout=budget)  # type: ignore[arg-type]
            return {"resultType": "vector", "result": result}

        return self._call(payload, name, call, factor)

    def range(self, key: str, promql: str, span_s: float, step: float, *, factor: int = 1) -> Payload:
        """One range query over the last ``span_s`` seconds; a failure costs only what reads it
        (the sparklines, or the onsets)."""
        end = self.ctx.time
        start = datetime.fromtimestamp(end.timestamp() - span_s, tz=UTC)
        name = key.split(":", 1)[1]
        what = f"range query {name}" if key.startswith("range:") else f"history query {name}"
        payload = Payload(key=key, url=f"{self.url}/api/v1/query_range",
                          params={"query": promql, "start": start.timestamp(), "end": end.timestamp(),
                                  "step": step}, fetched_at=iso(utc_now()))
        if self._skip(payload) is not None:
            return payload

        def call(budget: float) -> Any:
            result = self.collector.client.custom_query_range(
                promql, start_time=start, end_time=end, step=f"{step:g}s",
                params={"timeout": _server_timeout(budget)}, timeout=budget)  # type: ignore[arg-type]
            return {"resultType": "matrix", "result": result}

        return self._call(payload, what, call, factor)

    def _call(self, payload: Payload, what: str, call: Callable[[float], Any], factor: int = 1) -> Payload:
        budget = self._budget(factor)
        what = what if what.startswith(("range query", "history query")) else f"query {what}"
        start = time.perf_counter()
        heard = False  # the server answered something (an error too): it is alive
        try:
            answer = call(budget)
            # normalize reads the answer as is (the 3.4 MB requests answer: 30 ms); its text is
            # written only when something reads the body (a bundle being written).
            payload.text_later(answer, _text)
            payload.status = 200
            heard = True
        except PrometheusApiClientException as exc:
            heard = True
            text = str(exc)
            if _server_timed_out(text):
                payload.error = f"{what} timed out after {seconds(budget)} s (the server gave up)"
                payload.meta["timed_out"] = budget
            else:
                payload.error = f"Prometheus at {self.url} answered {_http_reason(text)} to {what}"
        except requests.exceptions.JSONDecodeError:
            heard = True
            payload.error = (f"Prometheus at {self.url} answered {what} with a body that is "
                             f"not JSON: is sources.prometheus.url the Prometheus server?")
        except requests.RequestException as exc:
            if _unreachable(exc):
                reason = describe_error(exc, self.url, budget).replace(self.url, f"Prometheus at {self.url}", 1)
                payload.error = f"{reason}: check sources.prometheus.url"
                payload.meta["unreachable"] = True
                with self._lock:
                    self.unreachable = self.unreachable or payload.error
            elif isinstance(exc, requests.Timeout):
                payload.error = f"{what} timed out after {seconds(budget)} s"
                payload.meta["timed_out"] = budget
                # Not even the server's own "timed out" (it gets a shorter limit): a hung
                # server, or a proxy holding the request (meshobs.collect asks it no more).
                payload.meta["no_answer"] = True
                self.record.no_answer()
            else:
                payload.error = f"{what}: {describe_error(exc, self.url, budget)}"
        except (KeyError, TypeError, ValueError) as exc:
            heard = True
            payload.error = (f"Prometheus at {self.url} answered {what} with an unexpected "
                             f"JSON shape ({exc!r}): is this a Prometheus query API?")
        if heard:
            self.record.heard()
        payload.elapsed_s = time.perf_counter() - start
        return payload


def _decode_with_msgspec(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
    """A response hook: the answer's ``json()`` (which prometheus-api-client calls) decoded by
    msgspec, the same values as the standard library's in a fraction of the time (the graph
    phase's edge answers at 1,000 services, 0.7 and 0.6 MB: 10 and 7 ms with ``json``, 2 and
    3 ms with msgspec, one after the other under the GIL while the scoped phase waits for
    them). What msgspec refuses (a bare NaN, which the standard library reads; a body not in
    UTF-8; not JSON at all) goes to the standard decoder, which reads it or raises as before."""
    standard = response.json

    def decode(**kw: Any) -> Any:
        try:
            return msgspec.json.decode(response.content)
        except msgspec.DecodeError:
            return standard(**kw)

    response.json = decode  # type: ignore[method-assign]
    return response


def _text(answer: Any) -> str:
    """The decoded answer as the payload's JSON text. msgspec writes it 30x faster than
    ``json.dumps`` (2 ms instead of 65 ms for the 3.4 MB requests answer of a 1,000-service
    mesh), with the same values once read back; but it writes a NaN or infinite float as
    ``null``: an answer with a ``null`` in it (a server writing bare NaN, which the client's
    ``json`` accepts, or a real null) is written by ``json.dumps`` as before (a label value
    that merely contains the word costs the speed only)."""
    text = msgspec.json.encode(answer)
    return json.dumps(answer) if _NULL.search(text) else text.decode()


_NULL = re.compile(rb"[:\[,]null")


def _server_timeout(budget: float) -> str:
    """The server-side evaluation limit: a little under the client's, at least a second. In
    whole milliseconds: Prometheus refuses fractional units ("9.5s" is HTTP 400)."""
    return f"{round(max(1.0, budget - SERVER_GRACE_S) * 1000)}ms"


def _server_timed_out(text: str) -> bool:
    """The server gave up on its own limit: Prometheus answers 503 ``errorType: timeout`` or,
    when the limit hits while it expands series, 422 "context deadline exceeded";
    VictoriaMetrics answers 503 naming the timeout."""
    lowered = text.lower()
    return ("503" in text or "422" in text) and any(
        w in lowered for w in ("timeout", "timed out", "deadline exceeded"))


def _http_reason(text: str) -> str:
    """The library's message is "HTTP Status Code 400 (b'{...}')": the status, and the body as
    text, Prometheus's own ``error`` when the body is its JSON envelope (not a bytes literal)."""
    head, _, rest = text.partition(" (")
    status = head.replace("HTTP Status Code", "HTTP")
    if not rest:
        return status
    body = rest[:-1] if rest.endswith(")") else rest
    try:
        literal = ast.literal_eval(body)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        literal = body
    shown = literal.decode("utf-8", "replace") if isinstance(literal, bytes) else str(literal)
    try:
        envelope = json.loads(shown)
    except ValueError:
        envelope = None
    if isinstance(envelope, dict) and isinstance(envelope.get("error"), str):
        shown = envelope["error"]
    return f"{status} ({shown.strip()[:200]})"
