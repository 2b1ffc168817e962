"""X-Ray: the service graph -> Edges, and traces -> normalised Spans (App Mesh sidecars' view).

fetch: see ``xray_fetch`` (the service graph; traces of the question's service first).

normalize:
* Graph: each service's edge -> Edge. ``OkCount`` -> ``2xx``; ``ErrorStatistics`` are 4xx
  (``ThrottleCount`` -> ``429``, ``OtherCount`` -> ``4xx``); ``FaultStatistics`` are 5xx (``5xx``);
  flags ``-``. Rates are per second over the edge's StartTime..EndTime (else the window).
  Latency in ms from ``ResponseTimeHistogram`` (p50/p90/p99); without a histogram the mean
  (TotalResponseTime / TotalCount) goes in p50 and the status says so.
* Names: an App Mesh segment name ``<mesh>/<virtualNode>`` -> ``WorkloadRef(mesh, virtualNode)``
  and ``ServiceRef(mesh, virtualNode)`` (X-Ray knows nodes, not virtual services); any other
  name ``N`` -> ``WorkloadRef("xray", N)`` / ``ServiceRef("xray", N)``; the ``client`` node ->
  the unknown workload (an outside caller).
* Spans: every segment and subsegment; ids as given, ``parent_id`` from the document or the
  enclosing (sub)segment, times seconds -> microseconds, status ``error`` for faults (5xx) and
  responses >= 500 (Istio's success-rate rule; 4xx and throttles stay ``ok`` with
  ``xray.error`` / ``xray.throttle`` attributes), ``http.response.status`` kept. The span's
  service is the virtual node name (``aws.app_mesh`` metadata or annotations first), its
  workload ``WorkloadRef(mesh, node)``; subsegments inherit their segment's service.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from meshobs.model import (
    UNKNOWN_WORKLOAD,
    Edge,
    Latency,
    Mesh,
    Reporter,
    ResponseStat,
    ServiceRef,
    SnapshotPart,
    SourceState,
    SourceStatus,
    Span,
    Trace,
    Workload,
    WorkloadRef,
    frozen_map,
)
from meshobs.raw import RawSource, parse_iso
from meshobs.shape import as_list, check, each

from .base import NormalizeContext
from .xray_fetch import DEFAULT_LIMIT, KIND, NEIGHBOURS, TARGET, XRayCollector, from_config

__all__ = ["DEFAULT_LIMIT", "KIND", "XRayCollector", "from_config", "normalize", "trace_of"]

OTHER_NAMESPACE = "xray"
APPMESH_ORIGIN = "AWS::AppMesh::Proxy"


# -- names -------------------------------------------------------------------------------------

def workload_of_name(name: str, service_type: str | None = None) -> WorkloadRef:
    """``<mesh>/<virtualNode>`` -> WorkloadRef(mesh, node); the ``client`` node -> unknown."""
    if service_type == "client" or (name == "client" and service_type is None):
        return UNKNOWN_WORKLOAD
    mesh, sep, node = name.partition("/")
    if sep and mesh and node and "/" not in node:
        return WorkloadRef(mesh, node)
    return WorkloadRef(OTHER_NAMESPACE, name)


def service_of_workload(ref: WorkloadRef) -> ServiceRef:
    return ServiceRef(ref.namespace, ref.name)


def _appmesh_identity(doc: Mapping[str, Any]) -> tuple[str, str] | None:
    am = ((doc.get("aws") or {}).get("app_mesh") or {}) if isinstance(doc.get("aws"), Mapping) else {}
    ann = doc.get("annotations") or {}
    mesh = am.get("mesh_name") or ann.get("aws.app_mesh.mesh_name") or ann.get("aws_app_mesh_mesh_name")
    node = (am.get("virtual_node_name") or ann.get("aws.app_mesh.virtual_node_name")
            or ann.get("aws_app_mesh_virtual_node_name"))
    return (str(mesh), str(node)) if mesh and node else None


# -- graph -------------------------------------------------------------------------------------

def histogram_quantile(histogram: list[Mapping[str, Any]], q: float) -> float | None:
    """The q-quantile (seconds) of an X-Ray ResponseTimeHistogram ``[{Value, Count}]``."""
    points = sorted((float(h["Value"]), float(h["Count"])) for h in histogram if h.get("Count"))
    total = sum(c for _, c in points)
    if total <= 0:
        return None
    running = 0.0
    for value, count in points:
        running += count
        if running >= q * total:
            return value
    return points[-1][0]


def _span_seconds(item: Mapping[str, Any], fallback: float) -> float:
    try:
        start, end = item.get("StartTime"), item.get("EndTime")
        if start is not None and end is not None:
            def secs(v: Any) -> float:
                return float(v) if isinstance(v, int | float) else parse_iso(str(v)).timestamp()
            width = secs(end) - secs(start)
            if width > 0:
                return width
    except ValueError:
        pass
    return fallback


def _graph_edges(services: list[Mapping[str, Any]], window: float) -> tuple[list[Edge], bool]:
    by_ref = {s.get("ReferenceId"): s for s in services}
    edges: list[Edge] = []
    mean_only = False
    for svc in services:
        source = workload_of_name(str(svc.get("Name", "")), svc.get("Type"))
        for e in svc.get("Edges") or []:
            target = by_ref.get(e.get("ReferenceId"))
            if target is None:
                continue
            dest = workload_of_name(str(target.get("Name", "")), target.get("Type"))
            stats = e.get("SummaryStatistics") or {}
            seconds = _span_seconds(e, window)
            errors, faults = stats.get("ErrorStatistics") or {}, stats.get("FaultStatistics") or {}
            counts = {"2xx": float(stats.get("OkCount") or 0), "429": float(errors.get("ThrottleCount") or 0),
                      "4xx": float(errors.get("OtherCount") or 0), "5xx": float(faults.get("TotalCount") or 0)}
            total = float(stats.get("TotalCount") or sum(counts.values()))
            hist = e.get("ResponseTimeHistogram") or []
            latency = None
            if hist:
                qs = [histogram_quantile(hist, q) for q in (0.5, 0.9, 0.99)]
                latency = Latency(*(None if v is None else v * 1000.0 for v in qs))
            elif total > 0 and stats.get("TotalResponseTime") is not None:
                latency, mean_only = Latency(p50=float(stats["TotalResponseTime"]) / total * 1000.0), True
            edges.append(Edge(
                source=source, destination=service_of_workload(dest),
                destination_workload=None if dest.is_unknown else dest,
                source_service=None if source.is_unknown else service_of_workload(source),
                mesh=Mesh.APPMESH if dest.namespace != OTHER_NAMESPACE else Mesh.UNKNOWN,
                request_rate=total / seconds,
                responses=tuple(ResponseStat(c, "-", v / seconds) for c, v in counts.items() if v > 0),
                latency=latency, reporter=Reporter.SOURCE))
    return edges, mean_only


# -- traces ------------------------------------------------------------------------------------

def _status(doc: Mapping[str, Any]) -> tuple[str, int | None]:
    code = ((doc.get("http") or {}).get("response") or {}).get("status")
    status_code = int(str(code).split(".")[0]) if code is not None and str(code).split(".")[0].isdigit() \
        else None
    if doc.get("fault") or (status_code is not None and status_code >= 500):
        return "error", status_code
    if doc.get("error") or doc.get("throttle") or status_code is not None:
        return "ok", status_code
    return "unset", status_code


def _spans_of(doc: Mapping[str, Any], trace_id: str, parent: str | None, service: str,
              workload: WorkloadRef | None, top: bool) -> Iterator[Span]:
    if top:
        identity = _appmesh_identity(doc)
        if identity is not None:
            workload = WorkloadRef(*identity)
        else:
            ref = workload_of_name(str(doc.get("name", "")))
            workload = ref if ref.namespace != OTHER_NAMESPACE else None
        service = workload.name if workload is not None else str(doc.get("name", ""))
    start = float(doc.get("start_time") or 0.0)
    end = doc.get("end_time")
    start_us = round(start * 1_000_000)
    duration_us = max(0, round(float(end) * 1_000_000) - start_us) if end is not None else 0
    status, code = _status(doc)
    http = doc.get("http") or {}
    request = http.get("request") or {}
    attrs: dict[str, Any] = {"xray.name": doc.get("name"), "xray.origin": doc.get("origin"),
                             "xray.namespace": doc.get("namespace"),
                             "http.method": request.get("method"), "http.url": request.get("url"),
                             "http.response.status": code}
    for flag in ("error", "fault", "throttle", "inferred", "in_progress"):
        if doc.get(flag):
            attrs[f"xray.{flag}"] = True
    operation = str(doc.get("name", ""))
    if request.get("method") and top:
        operation = f"{request['method']} {request.get('url', '')}".strip()
    kind = "server" if top and not doc.get("inferred") else (
        "client" if doc.get("namespace") in ("remote", "aws") or doc.get("inferred") else "internal")
    span_id = str(doc.get("id", ""))
    yield Span(trace_id=trace_id, span_id=span_id, parent_id=str(doc.get("parent_id") or parent or "") or None,
               service=service, operation=operation, start_us=start_us, duration_us=duration_us,
               status=status, kind=kind, attributes=frozen_map({k: v for k, v in attrs.items() if v is not None}),
               workload=workload)
    for sub in doc.get("subsegments") or []:
        if isinstance(sub, Mapping):
            yield from _spans_of(sub, trace_id, span_id, service, workload, top=False)


def trace_of(item: Mapping[str, Any]) -> Trace:
    """One ``BatchGetTraces`` trace (``{Id, Segments: [{Id, Document}]}``) -> Trace."""
    trace_id = str(item.get("Id", ""))
    spans: list[Span] = []
    for seg in item.get("Segments") or []:
        try:
            doc = json.loads(seg["Document"]) if isinstance(seg.get("Document"), str) else seg.get("Document")
        except json.JSONDecodeError as exc:
            raise ValueError(f"trace {trace_id}: segment {seg.get('Id')} is not JSON ({exc.msg})") from None
        if not isinstance(doc, Mapping):
            raise ValueError(f"trace {trace_id}: segment {seg.get('Id')} has no document")
        spans.extend(_spans_of(doc, str(doc.get("trace_id") or trace_id), None, "", None, top=True))
    spans.sort(key=lambda s: (s.start_us, s.span_id))
    return Trace(trace_id=trace_id, spans=tuple(spans))


_STATS = {"OkCount": "num", "TotalCount": "num", "TotalResponseTime": "num",
          "ErrorStatistics": {"ThrottleCount": "num", "OtherCount": "num", "TotalCount": "num"},
          "FaultStatistics": {"OtherCount": "num", "TotalCount": "num"}}
_SERVICE = {"ReferenceId": "scalar", "Name": "str", "Type": "str",
            "Edges": [{"ReferenceId": "scalar", "SummaryStatistics": _STATS,
                       "ResponseTimeHistogram": [{"Value": "num", "Count": "num"}]}]}


def _graph_service(service: Any) -> Mapping[str, Any]:
    """One GetServiceGraph service with the fields the graph reads checked (ValueError names one)."""
    check(service, _SERVICE, "service")
    for e in service.get("Edges") or []:
        if any(isinstance(h, Mapping) and h.get("Count") and not isinstance(h.get("Value"), int | float)
               for h in e.get("ResponseTimeHistogram") or []):
            raise ValueError("service.Edges[].ResponseTimeHistogram: a bucket without a numeric Value")
    return service  # type: ignore[no-any-return]


def normalize(raw: RawSource, ctx: NormalizeContext) -> SnapshotPart:
    """Service-graph and trace payloads -> Edges, Workloads, Traces and the source status (pure).

    A malformed service or trace costs that item (named in the status's problems, MSH0003)."""
    window = ctx.window_s if ctx.window_s > 0 else 300.0
    part = SnapshotPart()
    problems: list[str] = []
    services: list[Mapping[str, Any]] = []
    traces: dict[str, Trace] = {}
    unprocessed: list[str] = []
    items: list[str] = []
    for payload in raw.payloads:
        if payload.failure():
            if not payload.meta.get("filter_refused"):  # said by _coverage
                problems.append(f"{payload.key}: {payload.failure()}")
            continue
        body = payload.json()
        if not isinstance(body, Mapping):
            raise ValueError(f"{payload.key}: expected a JSON object, got {type(body).__name__}")
        if payload.key.startswith("GetServiceGraph/"):
            services.extend(each(as_list(body.get("Services")), f"{payload.key} Services", _graph_service, items))
        elif payload.key.startswith("BatchGetTraces/"):
            for trace in each(as_list(body.get("Traces")), f"{payload.key} Traces", trace_of, items):
                traces[trace.trace_id] = trace
            unprocessed.extend(str(t) for t in as_list(body.get("UnprocessedTraceIds")))
    # Pages of one graph may repeat a service: merge by reference id (first wins).
    unique = {s.get("ReferenceId"): s for s in reversed(services)}
    edges, mean_only = _graph_edges(list(unique.values()), window)
    part.edges = edges
    part.traces = list(traces.values())
    nodes = {w for e in edges for w in (e.source, e.destination_workload) if w and not w.is_unknown}
    nodes |= {s.workload for t in part.traces for s in t.spans if s.workload is not None}
    part.workloads = [Workload(ref=w, mesh=Mesh.APPMESH if w.namespace != OTHER_NAMESPACE else Mesh.UNKNOWN)
                      for w in sorted(nodes)]
    if unprocessed:
        problems.append(f"X-Ray could not return {len(unprocessed)} trace(s): {', '.join(unprocessed[:3])}")
    notes = ["latency is the mean (TotalResponseTime / TotalCount), shown as p50: no histogram"] \
        if mean_only else []
    notes += _coverage(raw)
    fetched = any(p.ok for p in raw.payloads)
    if problems:
        state = SourceState.OK if fetched and (edges or traces) else SourceState.ERROR
        message = ("partial: " if state is SourceState.OK else "") + "; ".join(problems[:5])
    else:
        state = SourceState.OK if edges or traces else SourceState.NO_DATA
        message = "" if state is SourceState.OK else "X-Ray returned no service graph and no traces for the window"
    part.sources.append(SourceStatus(raw.name, state, "; ".join(x for x in (message, *notes) if x),
                                     raw.duration_s, KIND, problems=tuple(items)))
    return part


def _coverage(raw: RawSource) -> list[str]:
    """What the trace search covered and what it left out (see ``xray_fetch``)."""
    notes: list[str] = []
    firsts = [p for p in raw.payloads if p.key.startswith("GetTraceSummaries/") and "role" in p.meta]
    target = next((p for p in firsts if p.meta["role"] == TARGET and p.meta.get("services")), None)
    if target is not None:
        neighbours = next((p for p in firsts if p.meta["role"] == NEIGHBOURS and p.meta.get("services")), None)
        notes.append(f"traces through {', '.join(target.meta['services'])} first"
                     + (f", then {len(neighbours.meta['services'])} neighbour service name(s)" if neighbours else ""))
    for p in firsts:
        if p.meta.get("filter_refused"):
            notes.append(f"X-Ray refused the service filter ({p.failure()}): the window's latest traces were "
                         f"fetched instead, not only those of {', '.join(p.meta.get('services') or [])}")
    if any(p.meta.get("truncated") for p in raw.payloads if p.key.startswith("GetTraceSummaries/")):
        fetched = sum(len(p.params.get("TraceIds") or []) for p in raw.payloads
                      if p.key.startswith("BatchGetTraces/") and "NextToken" not in p.params)
        notes.append(f"more traces matched than were fetched ({fetched}; sources.xray.limit)")
    if raw.meta.get("deadline_cut"):
        notes.append("stopped at the run's deadline: some pages or traces were not fetched")
    return notes
