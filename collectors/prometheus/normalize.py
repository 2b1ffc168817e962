"""Instant-query answers -> the edges of the service graph, the nodes they imply, the status.

``normalize`` turns the answers of :mod:`.fetch`'s instant queries into Edges plus the Workloads
and Services their labels imply; the range queries go to :mod:`.history`. Pure: no I/O.

How the two reporters are merged, per edge (source workload, destination service, destination
workload, protocol):

* Rate, responses (code x response flag) and latency come from ONE reporter, never the sum of
  both (that would double-count every request): the source proxy's series when there are any
  (the caller's experience, which includes retries' outcome, client-side timeouts and local
  503s), otherwise the destination proxy's (a caller without a sidecar, e.g. traffic from
  outside the mesh, only shows up there). The edge's ``reporter`` says which one was used,
  ``BOTH`` when both proxies saw the edge.
* Requests that never reached a destination exist only in source-reported series with
  ``destination_workload="unknown"``; they become an edge with ``destination_workload=None``.
* Security comes only from destination-reported series (``connection_security_policy`` is
  meaningful only there): plaintext if any destination-reported traffic arrived as ``none``,
  mutual TLS if all of it was ``mutual_tls``, unknown otherwise.
* Principals: the first known value from either reporter.
* When both reporters saw the edge, the destination's own responses and latency are kept
  beside the caller's (``Edge.destination_responses`` / ``destination_latency``): the callee's
  own errors behind the caller's retries, ``0 DC`` behind a caller's ``504 UT``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from itertools import repeat
from typing import Any

from meshobs.model import (
    Edge,
    Latency,
    Mesh,
    Reporter,
    ResponseStat,
    Security,
    Service,
    ServiceRef,
    SnapshotPart,
    SourceState,
    Workload,
    WorkloadRef,
    frozen_map,
)
from meshobs.raw import Payload, RawSource

from ..base import NormalizeContext
from ..promql import CONTROL_PLANE, LATENCY_QUERIES, QUERIES, histogram_quantile
from .history import add_history
from .history_series import read_history
from .labels import UNKNOWN
from .status import LEGACY_LATENCY, QUANTILES, Answers, source_status

_EdgeKey = tuple[WorkloadRef, ServiceRef, WorkloadRef | None, str]


@dataclass
class _Side:
    """What one reporter said about one edge."""

    responses: dict[tuple[str, str], float] = field(default_factory=dict)
    quantiles: dict[float, float] = field(default_factory=dict)  # 0.5/0.9/0.99 -> ms
    buckets: dict[float, float] = field(default_factory=dict)  # bundles with the bucket query
    tcp: dict[str, float] = field(default_factory=dict)
    security: dict[str, float] = field(default_factory=dict)
    principals: dict[str, str] = field(default_factory=dict)


@dataclass
class _EdgeFacts:
    key: _EdgeKey
    source_service: ServiceRef | None
    sides: dict[str, _Side] = field(default_factory=lambda: {"source": _Side(), "destination": _Side()})


def _series(payload: Payload) -> list[dict[str, Any]]:
    """The result series of one query payload (body as fetched, or a full API envelope)."""
    data = payload.json()
    if isinstance(data, dict) and "status" in data:  # a full /api/v1/query response
        if data["status"] == "error":
            raise ValueError(f"{payload.key}: Prometheus error: {data.get('error', 'unknown')}")
        data = data.get("data") or {}
    if isinstance(data, dict):
        if data.get("resultType", "vector") != "vector":
            raise ValueError(f"{payload.key}: expected an instant vector, got {data['resultType']}")
        data = data.get("result", [])
    if not isinstance(data, list):
        raise ValueError(f"{payload.key}: expected a list of series, got {type(data).__name__}")
    for i, s in enumerate(data):
        if not isinstance(s, dict) or "value" not in s:
            raise ValueError(f"{payload.key}: a series without an instant value (a range result?)")
        check_series(payload.key, i, s, "value")
    return data


def _sample(value: Any) -> bool:
    """``[time, "number"]`` as the HTTP API writes a sample ("NaN" and "+Inf" included)."""
    if not isinstance(value, list | tuple) or len(value) != 2:
        return False
    try:
        float(value[0])
        float(value[1])
    except (TypeError, ValueError):
        return False
    return not isinstance(value[1], bool)


def check_series(key: str, i: int, series: dict[str, Any], field: str) -> None:
    """Raise ValueError naming the payload, the series and the field when a series is not what
    the HTTP API sends: labels a mapping of strings, ``value`` one sample, ``values`` a list."""
    labels = series.get("metric")
    # map() keeps the per-item loops in C: a big mesh's answers hold millions of labels and samples.
    if not isinstance(labels, dict) or not all(map(isinstance, labels.values(), repeat(str))):
        raise ValueError(f"{key}: series {i}: 'metric' is not a mapping of label strings")
    samples = [series.get(field)] if field == "value" else series.get(field)
    if not isinstance(samples, list) or not all(map(_sample, samples)):
        raise ValueError(f"{key}: series {i}: '{field}' is not [time, number]" + ("" if field == "value" else " pairs"))


# An edge's identity as label values: (source workload namespace, source workload, destination
# service namespace, destination service, destination workload namespace, destination workload,
# protocol). Plain strings hash in C: tens of thousands of series are keyed per snapshot, and the
# refs are built once per edge.
_RawKey = tuple[str, str, str, str, str, str, str]
_KEY_LABELS = ("source_workload_namespace", "source_workload", "destination_service_namespace",
               "destination_service_name", "destination_workload_namespace", "destination_workload")


def _raw_key(m: dict[str, str], protocol: str) -> _RawKey:
    a, b, c, d, e, f = (m.get(label) or UNKNOWN for label in _KEY_LABELS)
    return (a, b, c, d, e, f, protocol)


def _key(raw: _RawKey) -> _EdgeKey:
    src_ns, src_wl, dst_ns, dst_svc, dst_wl_ns, dst_wl, protocol = raw
    return (WorkloadRef(src_ns, src_wl), ServiceRef(dst_ns, dst_svc),
            None if dst_wl == UNKNOWN else WorkloadRef(dst_wl_ns, dst_wl), protocol)


def normalize(raw: RawSource, ctx: NormalizeContext) -> SnapshotPart:
    """Query results -> Edges, Workloads, Services and the ``prometheus`` SourceStatus."""
    facts: dict[_RawKey, _EdgeFacts] = {}
    answers = Answers()
    revisions: dict[tuple[str, str], str] = {}  # (namespace, workload) -> canonical revision

    def side(m: dict[str, str], protocol: str) -> _Side:
        raw_key = _raw_key(m, protocol)
        edge = facts.get(raw_key)
        if edge is None:
            key = _key(raw_key)
            src_svc = m.get("source_canonical_service") or UNKNOWN
            edge = facts[raw_key] = _EdgeFacts(key, None if src_svc == UNKNOWN
                                               else ServiceRef(key[0].namespace, src_svc))
        rev_src, rev_dst = m.get("source_canonical_revision"), m.get("destination_canonical_revision")
        if rev_src and rev_src not in (UNKNOWN, "latest"):
            revisions.setdefault((raw_key[0], raw_key[1]), rev_src)
        if raw_key[5] != UNKNOWN and rev_dst and rev_dst not in (UNKNOWN, "latest"):
            revisions.setdefault((raw_key[4], raw_key[5]), rev_dst)
        s = edge.sides["source" if m.get("reporter") == "source" else "destination"]
        for label in ("source_principal", "destination_principal"):
            if (v := m.get(label)) and v != UNKNOWN:
                s.principals.setdefault(label, v)
        return s

    # Bundles recorded before the server computed quantiles hold the buckets ("query:latency").
    legacy = raw.get(f"query:{LEGACY_LATENCY}") is not None
    names = [n for n in QUERIES if not (legacy and n in LATENCY_QUERIES)]
    names += [LEGACY_LATENCY] if legacy else []
    for name in names:
        payload = raw.get(f"query:{name}")
        if payload is None:
            answers.absent.append(name)
            continue
        if (why := payload.failure()) is not None:
            answers.failed[name] = why if name in why else f"query {name}: {why}"
            continue
        answers.answered.append(name)
        if payload.meta.get("scope"):
            answers.scope = payload.meta["scope"]
        quantile = QUERIES[name].quantile if name in QUERIES else None
        for s in _series(payload):
            m, value = s["metric"], float(s["value"][1])
            if name in LATENCY_QUERIES:
                answers.latency_series += 1
            if math.isnan(value):
                continue
            if name == "requests":
                sd = side(m, m.get("request_protocol") or "http")
                code = (m.get("response_code") or "0", m.get("response_flags") or "-")
                sd.responses[code] = sd.responses.get(code, 0.0) + value
                if m.get("reporter") == "destination" and (csp := m.get("connection_security_policy")):
                    sd.security[csp] = sd.security.get(csp, 0.0) + value
            elif quantile is not None:
                # One series per edge and reporter; two only if a label is empty on one and
                # "unknown" on the other, which _key reads alike: the first answer stands.
                side(m, m.get("request_protocol") or "http").quantiles.setdefault(quantile, value)
            elif name == LEGACY_LATENCY:
                answers.latency_series += 1
                sd = side(m, m.get("request_protocol") or "http")
                le = float(m.get("le", "nan"))
                sd.buckets[le] = sd.buckets.get(le, 0.0) + value
            else:
                sd = side(m, "tcp")
                sd.tcp[name] = sd.tcp.get(name, 0.0) + value
                if name == "tcp_opened" and m.get("reporter") == "destination" and (
                        csp := m.get("connection_security_policy")):
                    sd.security[csp] = sd.security.get(csp, 0.0) + value
    answers.recorded = bool((rules := raw.get("rules")) is not None and rules.meta.get("recorded"))

    part = SnapshotPart()
    _control_plane(raw, answers, part)
    for f in facts.values():
        edge = _edge(f.key, f)
        if edge is not None:
            part.edges.append(edge)
    _nodes(part, {WorkloadRef(ns, name): rev for (ns, name), rev in revisions.items()})
    history_problems = add_history(raw, ctx, part)
    part.history, onset_problems = read_history(raw)
    if part.history is not None and part.history.problems and not onset_problems:
        onset_problems = list(part.history.problems)  # not sent, and why
    status = source_status(raw, answers, part.edges, ctx)
    if history_problems and status.state is SourceState.OK:
        status = replace(status, message=f"{status.message}; no history: {history_problems[0]}")
    # The onsets' input: delivered when every history query answered; otherwise why not (a
    # source that failed as a whole says so itself). A bundle recorded without the history
    # queries was never asked for it: no reason on its own that the source left data out (as
    # with istiod's metrics), the onset check says what it lacks.
    lacking: str | None = None
    if part.history is not None and onset_problems:
        lacking = "; ".join(onset_problems)
    if lacking is not None:
        # Said per input, so the rest reads as delivered (an empty map means "all of it").
        delivered = dict.fromkeys(("graph", "requests", "latency", "security"))
        status = replace(status, inputs=frozen_map({**delivered, **status.inputs, "history": lacking}))
    part.sources.append(status)
    return part


def _control_plane(raw: RawSource, answers: Answers, part: SnapshotPart) -> None:
    """istiod's metrics (the control-plane query) -> replicas and rejects; the answer's fate goes
    to ``answers`` as the other queries' do."""
    from .pilot import control_plane

    payload = raw.get(f"query:{CONTROL_PLANE}")
    if payload is None:
        answers.absent.append(CONTROL_PLANE)
        return
    if (why := payload.failure()) is not None:
        answers.failed[CONTROL_PLANE] = why if CONTROL_PLANE in why else f"query {CONTROL_PLANE}: {why}"
        return
    answers.answered.append(CONTROL_PLANE)
    replicas, rejects = control_plane(_series(payload))
    part.istiod.extend(replicas)
    part.xds_rejects.extend(rejects)


def _edge(key: _EdgeKey, f: _EdgeFacts) -> Edge | None:
    src, dst = f.sides["source"], f.sides["destination"]
    # Histograms series exist even at zero rate: a side "saw" the edge only if it counted
    # requests or bytes.
    src_active = bool(src.responses or src.tcp)
    dst_active = bool(dst.responses or dst.tcp)
    if not (src_active or dst_active):
        return None
    chosen = src if src_active else dst
    reporter = Reporter.BOTH if src_active and dst_active else (
        Reporter.SOURCE if src_active else Reporter.DESTINATION)
    responses = tuple(ResponseStat(code, flags, rate)
                      for (code, flags), rate in sorted(chosen.responses.items()))
    latency = None
    # The chosen reporter's quantiles; the other's when the chosen one recorded nothing (NaN).
    for sd in (chosen, dst if chosen is src else src):
        latency = _latency(sd)
        if latency is not None:
            break
    both = src_active and dst_active
    security = Security.UNKNOWN
    if dst.security.get("none", 0.0) > 0:
        security = Security.PLAINTEXT
    elif dst.security.get("mutual_tls", 0.0) > 0:
        security = Security.MUTUAL_TLS
    principals = {**dst.principals, **src.principals} if src_active else {**src.principals, **dst.principals}
    return Edge(
        source=key[0], destination=key[1], destination_workload=key[2],
        source_service=f.source_service, protocol=key[3], mesh=Mesh.ISTIO,
        request_rate=sum(r.rate for r in responses), responses=responses, latency=latency,
        security=security, reporter=reporter,
        tcp_sent_bytes_rate=chosen.tcp.get("tcp_sent") if key[3] == "tcp" else None,
        tcp_received_bytes_rate=chosen.tcp.get("tcp_received") if key[3] == "tcp" else None,
        tcp_connections_opened_rate=chosen.tcp.get("tcp_opened") if key[3] == "tcp" else None,
        source_principal=principals.get("source_principal"),
        destination_principal=principals.get("destination_principal"),
        destination_responses=tuple(ResponseStat(code, flags, rate)
                                    for (code, flags), rate in sorted(dst.responses.items())) if both else (),
        destination_latency=_latency(dst) if both else None,
    )


def _latency(sd: _Side) -> Latency | None:
    """One reporter's quantiles (None when it recorded none: NaN)."""
    if sd.buckets:  # a bundle recorded with the bucket query: Prometheus's arithmetic, here
        for p in QUANTILES:
            sd.quantiles.setdefault(p, histogram_quantile(p, sd.buckets.items()))
    q = [sd.quantiles.get(p, math.nan) for p in QUANTILES]
    return None if any(math.isnan(v) for v in q) else Latency(p50=q[0], p90=q[1], p99=q[2])


def _nodes(part: SnapshotPart, revisions: dict[WorkloadRef, str]) -> None:
    """Workloads and Services implied by the edges' labels (canonical service -> workload)."""
    services: dict[ServiceRef, set[WorkloadRef]] = {}
    workloads: dict[WorkloadRef, set[ServiceRef]] = {}
    for e in part.edges:
        if not e.destination.is_unknown:
            services.setdefault(e.destination, set())
        if e.destination_workload is not None and not e.destination.is_unknown:
            services[e.destination].add(e.destination_workload)
            workloads.setdefault(e.destination_workload, set()).add(e.destination)
        if not e.source.is_unknown:
            owned = workloads.setdefault(e.source, set())
            if e.source_service is not None:
                owned.add(e.source_service)
    part.services.extend(Service(ref=ref, mesh=Mesh.ISTIO, workloads=tuple(sorted(wls)),
                                 hosts=(f"{ref.name}.{ref.namespace}.svc.cluster.local",))
                         for ref, wls in sorted(services.items()))
    part.workloads.extend(Workload(ref=ref, mesh=Mesh.ISTIO, services=tuple(sorted(svcs)),
                                   version=revisions.get(ref), meshed=True)
                          for ref, svcs in sorted(workloads.items()))
