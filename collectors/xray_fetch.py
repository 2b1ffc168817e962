"""X-Ray fetch: the service graph, then traces of the services the question is about.

Payload keys of the RawSource ``xray``: ``GetGroup/0`` (when ``group`` is set and no
``filter``: the group's filter expression narrows the trace search), ``GetServiceGraph/<n>``
(every page), ``GetTraceSummaries/<n>`` (pages until ``limit`` trace ids), ``BatchGetTraces/<n>``
(5 ids per call, as the API allows, following NextToken).

Phases (``FetchContext.phase``): the service graph is App Mesh's request graph, the cheap
mesh-wide part a scoped question starts from, so it is fetched in "graph" (and "all"); traces
in "scoped" (and "all"). A question about one service asks X-Ray for traces through it with
a filter expression (``service("mesh/node") OR ...``), then for its neighbourhood with what is
left of ``limit``; without a scope, the window's latest traces (narrowed by the group's or the
configured filter). Each ``GetTraceSummaries`` sequence records in its first payload's meta
what it asked for (``role``, ``services``) and in its last whether ``limit`` cut it; a filter
X-Ray refuses is recorded (``filter_refused``) and the search repeated without the service
filter, which the status then says. Calls stop at the run's deadline.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from meshobs.durations import parse_duration
from meshobs.model import ServiceRef, WorkloadRef
from meshobs.raw import Payload, RawSource, iso
from meshobs.trace_names import span_service_matches

from . import aws
from .base import FetchContext, Scope

KIND = "xray"
DEFAULT_LIMIT = 50
BATCH = 5  # BatchGetTraces accepts at most 5 ids
MAX_PAGES = 100
MIN_CALL_S = 0.2  # no call is started with less time than this left before the deadline
TARGET, NEIGHBOURS, MESH = "target", "neighbours", "mesh"


def xray_names(ref: ServiceRef | WorkloadRef, known: Iterable[str]) -> list[str]:
    """X-Ray service-node names for a service or workload.

    App Mesh sidecars name their segments ``<mesh>/<virtualNode>``: meshobs models that as
    ``(mesh, node)``, and the Kubernetes controller names nodes ``<name>_<namespace>``; other
    tracers use the plain or ``name.namespace`` name. With no graph to look the name up in,
    the App Mesh form is asked for.
    """
    controller = f"{ref.name}_{ref.namespace}"
    found = [n for n in known
             if n == f"{ref.namespace}/{ref.name}" or n.partition("/")[2] == controller
             or span_service_matches(n, ServiceRef(ref.namespace, ref.name))]
    return sorted(set(found)) or [f"{ref.namespace}/{ref.name}"]


def service_filter(names: Iterable[str]) -> str | None:
    """``service("a") OR service("b")`` (names with a quote cannot be written and are left out)."""
    parts = [f'service("{n}")' for n in names if '"' not in n and "\\" not in n]
    return " OR ".join(parts) or None


def _and(base: str | None, services: str | None) -> str | None:
    if base and services:
        return f"({base}) AND ({services})"
    return base or services


@dataclass
class XRayCollector:
    section: dict[str, Any]
    prior: list[RawSource] = field(default_factory=list)
    kind: str = KIND
    meta: dict[str, Any] = field(default_factory=dict)

    def fetch(self, ctx: FetchContext) -> list[RawSource]:
        raw = RawSource(name=KIND, kind=KIND, meta=dict(self.meta))
        with raw.timed():
            try:
                client = aws.make_client("xray", self.section)
            except aws.AwsSetupError as exc:
                raw.error = str(exc)
                return [raw]
            start, end = iso(ctx.time - timedelta(seconds=ctx.window_s)), iso(ctx.time)
            lookback = parse_duration(self.section["lookback"]) if self.section.get("lookback") else ctx.window_s
            group = self.section.get("group")
            if ctx.phase in ("all", "graph"):
                self._graph(client, raw, start, end, group, ctx)
            if ctx.phase in ("all", "scoped"):
                trace_start = iso(ctx.time - timedelta(seconds=lookback))
                base = self._filter(client, raw, group)
                ids = self._search(client, raw, trace_start, end, base, ctx)
                self._traces(client, raw, ids, ctx)
        return [raw]

    @property
    def limit(self) -> int:
        return int(self.section["limit"] if self.section.get("limit") is not None else DEFAULT_LIMIT)

    def _pages(self, client: Any, raw: RawSource, op: str, key: str, params: dict[str, Any],
               ctx: FetchContext, meta: dict[str, Any] | None = None) -> Iterator[tuple[Payload, dict[str, Any]]]:
        def out_of_time() -> bool:
            if ctx.remaining_s() < MIN_CALL_S:
                raw.meta["deadline_cut"] = True
                return True
            return False

        for payload, body in aws.pages(client, op, key, params, service="xray", first=self._count(raw, key),
                                       max_pages=MAX_PAGES, meta=meta, stop=out_of_time):
            raw.add(payload)
            if body is None:
                return
            yield payload, body

    @staticmethod
    def _count(raw: RawSource, key: str) -> int:
        # Keys stay unique across several paginated sequences of one operation.
        return sum(1 for p in raw.payloads if p.key.startswith(key + "/"))

    def _graph(self, client: Any, raw: RawSource, start: str, end: str, group: str | None,
               ctx: FetchContext) -> None:
        params: dict[str, Any] = {"StartTime": start, "EndTime": end}
        if group:
            params["GroupName"] = group
        for _ in self._pages(client, raw, "get_service_graph", "GetServiceGraph", params, ctx):
            pass

    def _filter(self, client: Any, raw: RawSource, group: str | None) -> str | None:
        if self.section.get("filter"):
            return str(self.section["filter"])
        if not group or group == "Default":
            return None
        payload, body = aws.call(client, "get_group", "GetGroup/0", {"GroupName": group}, service="xray")
        raw.add(payload)
        expr = ((body or {}).get("Group") or {}).get("FilterExpression")
        return str(expr) if expr else None

    def _known(self, raw: RawSource) -> list[str]:
        """Service-node names of the service graph (this fetch's or the graph phase's)."""
        names: set[str] = set()
        for source in [raw, *(r for r in self.prior if r.kind == KIND)]:
            for p in source.payloads:
                if p.key.startswith("GetServiceGraph/") and p.ok and p.body:
                    names.update(str(s.get("Name")) for s in p.json().get("Services") or [] if s.get("Name"))
        return sorted(names)

    def _search(self, client: Any, raw: RawSource, start: str, end: str, base: str | None,
                ctx: FetchContext) -> list[str]:
        """Trace ids: through the scope's target first, then its neighbourhood; else mesh-wide."""
        limit = self.limit
        if limit <= 0:
            return []
        scope: Scope | None = ctx.scope
        if scope is None or scope.target is None:
            return self._summaries(client, raw, start, end, base, [], MESH, limit, ctx)
        known = self._known(raw)
        target_refs: list[ServiceRef | WorkloadRef] = [scope.target, *_workloads_of(scope, scope.target)]
        target = sorted({n for ref in target_refs for n in xray_names(ref, known)})
        ids = self._summaries(client, raw, start, end, base, target, TARGET, limit, ctx)
        refs: list[ServiceRef | WorkloadRef] = [*scope.services, *scope.workloads]
        others = {n for ref in refs for n in xray_names(ref, known)} - set(target)
        if others and len(ids) < limit:
            more = self._summaries(client, raw, start, end, base, sorted(others), NEIGHBOURS, limit - len(ids), ctx)
            ids += [i for i in more if i not in ids]
        return ids[:limit]

    def _summaries(self, client: Any, raw: RawSource, start: str, end: str, base: str | None,
                   services: list[str], role: str, limit: int, ctx: FetchContext) -> list[str]:
        expr = _and(base, service_filter(services))
        params: dict[str, Any] = {"StartTime": start, "EndTime": end, "Sampling": False}
        if expr:
            params["FilterExpression"] = expr
        meta = {"role": role, "services": services}
        ids: list[str] = []
        last: Payload | None = None
        before = len(raw.payloads)
        for last, body in self._pages(client, raw, "get_trace_summaries", "GetTraceSummaries", params, ctx, meta):
            for s in body.get("TraceSummaries") or []:
                if s.get("Id") and s["Id"] not in ids:
                    ids.append(str(s["Id"]))
            if len(ids) >= limit:
                last.meta["truncated"] = len(ids) > limit or bool(body.get("NextToken"))
                break
        first = raw.payloads[before] if len(raw.payloads) > before else None
        if last is None and first is not None and first.failure() and services:
            # X-Ray refused the service filter (a name it cannot parse, or a server that does not
            # implement filters): the window's traces unfiltered, said in the status.
            first.meta["filter_refused"] = True
            return self._summaries(client, raw, start, end, base, [], role, limit, ctx)
        return ids[:limit]

    def _traces(self, client: Any, raw: RawSource, ids: list[str], ctx: FetchContext) -> None:
        for first in range(0, len(ids), BATCH):
            for _ in self._pages(client, raw, "batch_get_traces", "BatchGetTraces",
                                 {"TraceIds": ids[first:first + BATCH]}, ctx):
                pass


def _workloads_of(scope: Scope, service: ServiceRef) -> list[WorkloadRef]:
    """The scope's workloads named like the service (an App Mesh virtual node per service)."""
    return [w for w in scope.workloads if w.namespace == service.namespace and w.name == service.name]


def from_config(config: Any, prior: list[RawSource]) -> XRayCollector | None:
    """A collector when ``sources.xray`` is configured."""
    section = config.sources.get("xray")
    return None if section is None else XRayCollector(section=dict(section or {}), prior=list(prior))
