"""Jaeger query API: recent traces per service and the dependency links.

``/api/v3`` first (OTLP JSON; the only search API left in current Jaeger), ``/api`` (v1) when
v3 answers 404 on ``/api/v3/services``. Payload keys of the one RawSource ``jaeger``:
``services``, ``traces/<service>`` and ``dependencies``; each payload's meta says ``api``.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import requests

from meshobs.collectors.base import FetchContext, NormalizeContext
from meshobs.collectors.http import http_get, join_url, tls_verify
from meshobs.collectors.otlp import parse_traces
from meshobs.collectors.trace_plan import describe, plan_searches, traffic_of
from meshobs.config import Config
from meshobs.durations import parse_duration
from meshobs.gc_pause import gc_paused
from meshobs.model import (
    UNKNOWN_WORKLOAD,
    Edge,
    Reporter,
    ServiceRef,
    SnapshotPart,
    SourceState,
    SourceStatus,
    Trace,
)
from meshobs.raw import Payload, RawSource
from meshobs.shape import ITEM_ERRORS

KIND = "jaeger"
DEFAULT_LIMIT = 20
MAX_SERVICES = 50
CONCURRENCY = 4
MIN_REQUEST_S = 0.2  # a search is not sent with less time than this left before the deadline


def _rfc3339(ts: Any) -> str:
    return str(ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


@dataclass
class JaegerCollector:
    url: str
    api: str = "auto"  # auto | v3 | v1
    limit: int = DEFAULT_LIMIT
    max_services: int = MAX_SERVICES
    concurrency: int = CONCURRENCY
    timeout_s: float = 10.0
    lookback_s: float | None = None  # None: the run's window
    headers: dict[str, str] = field(default_factory=dict)
    verify: bool | str = True
    kind: str = KIND

    def _get(self, session: requests.Session, path: str, key: str, api: str, ctx: FetchContext,
             params: dict[str, Any] | None = None, meta: dict[str, Any] | None = None) -> Payload:
        # Never wait past the run's deadline: the request's timeout is what is left of it.
        timeout = max(MIN_REQUEST_S, min(self.timeout_s, ctx.remaining_s(self.timeout_s)))
        return http_get(session, join_url(self.url, path), key, params=params, headers=self.headers,
                        timeout_s=timeout, verify=self.verify, meta={"api": api, **(meta or {})})

    def _services(self, session: requests.Session, ctx: FetchContext) -> tuple[Payload, str]:
        if self.api in ("auto", "v3"):
            p = self._get(session, "/api/v3/services", "services", "v3", ctx)
            if not (p.status == 404 and self.api == "auto"):
                return p, "v3"
        return self._get(session, "/api/services", "services", "v1", ctx), "v1"

    def _search(self, session: requests.Session, service: str, role: str, api: str,
                ctx: FetchContext) -> Payload | None:
        if ctx.remaining_s() < MIN_REQUEST_S:
            return None  # not sent: said in the source status
        end = ctx.time
        start = end - timedelta(seconds=self.lookback_s or ctx.window_s)
        meta = {"service": service, "role": role, "limit": self.limit}
        if api == "v3":
            # Jaeger renamed num_traces to search_depth; its HTTP gateway ignores unknown
            # parameters, so sending both works with old and new versions.
            params: dict[str, Any] = {"query.service_name": service, "query.start_time_min": _rfc3339(start),
                                      "query.start_time_max": _rfc3339(end), "query.num_traces": self.limit,
                                      "query.search_depth": self.limit}
            return self._get(session, "/api/v3/traces", f"traces/{service}", api, ctx, params, meta)
        params = {"service": service, "start": int(start.timestamp() * 1e6), "end": int(end.timestamp() * 1e6),
                  "limit": self.limit}
        return self._get(session, "/api/traces", f"traces/{service}", api, ctx, params, meta)

    def fetch(self, ctx: FetchContext) -> list[RawSource]:
        """Services and dependencies, then a bounded, concurrent trace search per planned service
        (``trace_plan``: the question's service and neighbourhood, or the busiest mesh-wide).

        Nothing in the "graph" phase: Jaeger's traces are the scoped part of a question.
        """
        if ctx.phase == "graph":
            return []
        raw = RawSource(name=KIND, kind=KIND, meta={"url": self.url, "api": self.api})
        with raw.timed(), requests.Session() as session:
            services, api = self._services(session, ctx)
            raw.meta["api"] = api
            raw.add(services)
            if services.failure():
                return [raw]
            try:
                names = service_names(services)
            except ValueError:
                return [raw]  # normalize reports the malformed body
            end_ms = int(ctx.time.timestamp() * 1000)
            deps = raw.add(self._get(session, "/api/dependencies", "dependencies", api, ctx,
                                     {"endTs": end_ms, "lookback": int((self.lookback_s or ctx.window_s) * 1000)}))
            plan = plan_searches(names, ctx.scope, self.max_services, _traffic(deps),
                                 rotation=int(ctx.time.timestamp() // max(ctx.window_s, 1.0)))
            with ThreadPoolExecutor(max_workers=max(1, self.concurrency)) as pool:
                found = list(pool.map(lambda s: self._search(session, s[0], s[1], api, ctx), plan.searches))
            for p in found:
                if p is not None:
                    raw.add(p)
            services.meta["plan"] = plan.record(n for (n, _), p in zip(plan.searches, found) if p is None)
            services.meta["limit"] = self.limit
        return [raw]


def _traffic(deps: Payload) -> dict[str, float]:
    """Calls per service from the dependencies answer ({} when it failed or is malformed)."""
    if deps.failure():
        return {}
    try:
        doc = deps.json()
    except ValueError:
        return {}
    links = doc.get("data") if isinstance(doc, Mapping) else doc
    return traffic_of(link for link in links or [] if isinstance(link, Mapping)) if isinstance(links, list) else {}


def from_config(config: Config, prior: list[RawSource]) -> JaegerCollector | None:
    """A collector for ``sources.jaeger`` (None when it is not configured)."""
    if "jaeger" not in config.sources:
        return None
    s = config.section("sources", "jaeger")
    url = s.get("url") or "http://localhost:16686"
    verify = tls_verify(s.get("verify_tls", True), s.get("ca_file"))
    return JaegerCollector(url=url, api=s.get("api", "auto"), limit=int(s.get("limit", DEFAULT_LIMIT)),
                           max_services=int(s.get("max_services", MAX_SERVICES)),
                           concurrency=int(s.get("concurrency", CONCURRENCY)),
                           lookback_s=parse_duration(s["lookback"]) if s.get("lookback") else None,
                           timeout_s=parse_duration(s["timeout"]) if s.get("timeout") else 10.0,
                           headers=dict(s.get("headers") or {}), verify=verify)


# -- normalising ----------------------------------------------------------------------------

def service_names(payload: Payload) -> list[str]:
    """v3 ``{"services": [...]}`` or v1 ``{"data": [...]}`` (``null`` when there are none)."""
    doc = payload.json()
    if isinstance(doc, Mapping):
        names = doc.get("services", doc.get("data"))
        if names is None and ("services" in doc or "data" in doc):
            return []
        if isinstance(names, list):
            return [str(n) for n in names]
    raise ValueError(f"{payload.key}: expected {{\"services\": [...]}} or {{\"data\": [...]}}")


def dependency_edges(payload: Payload, window_s: float) -> list[Edge]:
    """``[{parent, child, callCount}]`` (bare or in ``data``) -> secondary edges.

    Jaeger names services ``canonical-service.namespace`` under Istio; the caller's workload is
    unknown, so the edge carries the caller as ``source_service``.
    """
    doc = payload.json()
    links = doc.get("data") if isinstance(doc, Mapping) else doc
    if links is None:
        return []
    if not isinstance(links, list):
        raise ValueError(f"{payload.key}: expected a list of {{parent, child, callCount}}")
    edges = []
    for link in links:
        if not isinstance(link, Mapping) or not link.get("parent") or not link.get("child"):
            continue
        edges.append(Edge(source=UNKNOWN_WORKLOAD, destination=ServiceRef.parse(str(link["child"])),
                          source_service=ServiceRef.parse(str(link["parent"])), protocol="dependency",
                          request_rate=float(link.get("callCount") or 0) / window_s if window_s > 0 else 0.0,
                          reporter=Reporter.SOURCE))
    return edges


def dedupe_traces(traces: list[Trace]) -> list[Trace]:
    """One trace per id: several service searches return the same trace; keep the fullest."""
    best: dict[str, Trace] = {}
    for t in traces:
        if t.trace_id not in best or len(t.spans) > len(best[t.trace_id].spans):
            best[t.trace_id] = t
    return list(best.values())


def _why(key: str, exc: Exception) -> str:
    # A ValueError already names the payload; a TypeError from a wrong shape does not.
    return str(exc) if isinstance(exc, ValueError) else f"{key}: unexpected shape ({exc!r})"


def normalize(raw: RawSource, ctx: NormalizeContext) -> SnapshotPart:
    """Traces (deduplicated), dependency edges and the source status."""
    part = SnapshotPart()
    where = raw.meta.get("url", "")
    problems: list[str] = []

    def status(state: SourceState, message: str) -> SnapshotPart:
        part.sources.append(SourceStatus(raw.name, state, message, raw.duration_s, raw.kind))
        return part

    services = raw.get("services")
    if services is None:
        return status(SourceState.ERROR, f"jaeger at {where}: no services payload recorded")
    if services.failure():
        return status(SourceState.ERROR, f"jaeger: {services.failure()}; check sources.jaeger.url")
    try:
        names = service_names(services)
    except ITEM_ERRORS as exc:
        return status(SourceState.ERROR, f"jaeger: {_why('services', exc)}")
    traces: list[Trace] = []
    returned: dict[str, int] = {}  # traces each search returned (a full search was cut there)
    with gc_paused():  # one pause for all searches: see meshobs.gc_pause
        for p in raw.payloads:
            if not p.key.startswith("traces/"):
                continue
            if p.status == 404 and not p.error and p.meta.get("api", "v3") == "v3":
                continue  # v3 answers 404 to a search that matched nothing
            if p.failure():
                problems.append(f"{p.key}: {p.failure()}")
                continue
            try:
                found = parse_traces(p.body or "", p.key)
            except ITEM_ERRORS as exc:  # a malformed search answer costs that search
                problems.append(_why(p.key, exc))
                continue
            returned[str(p.meta.get("service", p.key.removeprefix("traces/")))] = len(found)
            traces.extend(found)
        part.traces = dedupe_traces(traces)
    deps = raw.get("dependencies")
    if deps is not None and deps.status != 404:
        if deps.failure():
            problems.append(f"dependencies: {deps.failure()}")
        else:
            try:
                part.edges = dependency_edges(deps, ctx.window_s)
            except ITEM_ERRORS as exc:
                problems.append(_why("dependencies", exc))
    plan = services.meta.get("plan")
    coverage = describe(plan, returned, int(services.meta.get("limit") or DEFAULT_LIMIT), "sources.jaeger") \
        if isinstance(plan, Mapping) else ""
    if problems:
        shown = "; ".join(problems[:3]) + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else "")
        if part.traces:  # what answered is used; what did not is said
            return status(SourceState.OK, "; ".join(x for x in (f"partial: {shown}", coverage) if x))
        return status(SourceState.ERROR, f"jaeger at {where}: {shown}")
    if not names:
        return status(SourceState.NO_DATA, f"jaeger at {where} reports no services")
    if not part.traces and not part.edges:
        return status(SourceState.NO_DATA, "; ".join(x for x in (f"jaeger at {where}: no traces in the window",
                                                               coverage) if x))
    return status(SourceState.OK, coverage)
