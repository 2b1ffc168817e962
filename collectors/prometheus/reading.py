"""What the instant queries' series say per edge, read series by series, and the Edges of it.

:class:`Reading` is the state :func:`.normalize.normalize` builds from the answers (how the two
reporters are merged is described there). A scoped question's graph phase is read the same way
(its edge-key answers, see ``promql.GRAPH_QUERIES``), then the whole source again with the
scoped phase's answers: those are narrowed to the neighbourhood, a small read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

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
    Workload,
    WorkloadRef,
)
from meshobs.model.traffic import LOCAL_LIMIT, NOT_FAILED, limited_locally

from ..promql import LATENCY_QUERIES, QUERIES, histogram_quantile
from .labels import UNKNOWN
from .status import LEGACY_LATENCY, QUANTILES

# The mesh of every edge Prometheus's Istio metrics make: none is addressed to an App Mesh
# virtual node (meshobs.node_edges), so neither assembly nor the graph phase drops any.
MESH = Mesh.ISTIO
_EdgeKey = tuple[WorkloadRef, ServiceRef, WorkloadRef | None, str]
_UNKNOWN_OUTCOME = ("unknown", "-", "")  # (code, flags, gRPC status) of requests counted without their outcome
_NOT_FAILED = (NOT_FAILED, "-", "")  # ... and once the graph phase's failed calls are known


@dataclass
class _Side:
    """What one reporter said about one edge."""

    responses: dict[tuple[str, str, str], float] = field(default_factory=dict)  # (code, flags, gRPC status)
    quantiles: dict[float, float] = field(default_factory=dict)  # 0.5/0.9/0.99 -> ms
    buckets: dict[float, float] = field(default_factory=dict)  # bundles with the bucket query
    tcp: dict[str, float] = field(default_factory=dict)
    security: dict[str, float] = field(default_factory=dict)
    principals: dict[str, str] = field(default_factory=dict)


@dataclass
class _EdgeFacts:
    key: _EdgeKey
    source_service: ServiceRef | None
    # "source" / "destination", made when a series of that reporter is read: the graph phase's
    # edge answers carry no reporter (one side per edge, not two; tens of thousands of edges).
    sides: dict[str, _Side] = field(default_factory=dict)


# An edge's identity as label values: (source workload namespace, source workload, destination
# service namespace, destination service, destination workload namespace, destination workload,
# protocol). Plain strings hash in C: tens of thousands of series are keyed per snapshot, and the
# refs are built once per edge.
_RawKey = tuple[str, str, str, str, str, str, str]
_KEY_LABELS = ("source_workload_namespace", "source_workload", "destination_service_namespace",
               "destination_service_name", "destination_workload_namespace", "destination_workload")


def _raw_key(m: dict[str, str], protocol: str) -> _RawKey:
    # Spelled out (the labels of _KEY_LABELS, in order): a generator per series cost as much as
    # the lookups, thousands of series per graph phase.
    get = m.get
    return (get("source_workload_namespace") or UNKNOWN, get("source_workload") or UNKNOWN,
            get("destination_service_namespace") or UNKNOWN, get("destination_service_name") or UNKNOWN,
            get("destination_workload_namespace") or UNKNOWN, get("destination_workload") or UNKNOWN, protocol)


class Reading:
    """The facts per edge and the workloads' canonical revisions, from the series read so far."""

    def __init__(self) -> None:
        self.facts: dict[_RawKey, _EdgeFacts] = {}
        self.revisions: dict[tuple[str, str], str] = {}  # (namespace, workload) -> canonical revision
        self.names: list[str] = []  # the queries read, in order
        self.latency_series = 0  # series the latency queries answered (NaN ones included)
        # The Edge last built of each fact (None: none), dropped when a series touches the fact.
        self._built: dict[_RawKey, Edge | None] = {}
        # The services and workloads last made of the edges, with the (edges, revisions) counts
        # they were made of (see :meth:`nodes`).
        self._nodes: tuple[tuple[int, int], list[Service], list[Workload]] | None = None
        # One ref object per service and per workload: the edges, nodes and the snapshot's
        # indexes look them up by the thousand, and an identical key object skips the refs'
        # (Python-level) equality test.
        self._services: dict[tuple[str, str], ServiceRef] = {}
        self._workloads: dict[tuple[str, str], WorkloadRef] = {}

    def _service(self, namespace: str, name: str) -> ServiceRef:
        ref = self._services.get((namespace, name))
        if ref is None:
            ref = self._services[namespace, name] = ServiceRef(namespace, name)
        return ref

    def _workload(self, namespace: str, name: str) -> WorkloadRef:
        ref = self._workloads.get((namespace, name))
        if ref is None:
            ref = self._workloads[namespace, name] = WorkloadRef(namespace, name)
        return ref

    def _key(self, raw: _RawKey) -> _EdgeKey:
        src_ns, src_wl, dst_ns, dst_svc, dst_wl_ns, dst_wl, protocol = raw
        return (self._workload(src_ns, src_wl), self._service(dst_ns, dst_svc),
                None if dst_wl == UNKNOWN else self._workload(dst_wl_ns, dst_wl), protocol)

    def _side(self, m: dict[str, str], protocol: str, raw_key: _RawKey | None = None) -> _Side:
        """The side of the edge series ``m`` names that its reporter said (``raw_key``: the
        series' key when the caller has made it already)."""
        get = m.get
        if raw_key is None:
            raw_key = _raw_key(m, protocol)
        edge = self.facts.get(raw_key)
        if edge is None:
            key = self._key(raw_key)
            src_svc = get("source_canonical_service") or UNKNOWN
            edge = self.facts[raw_key] = _EdgeFacts(key, None if src_svc == UNKNOWN
                                                    else self._service(key[0].namespace, src_svc))
        else:
            self._built.pop(raw_key, None)
        rev_src = get("source_canonical_revision")
        if rev_src and rev_src != UNKNOWN and rev_src != "latest":
            self.revisions.setdefault((raw_key[0], raw_key[1]), rev_src)
        if raw_key[5] != UNKNOWN and (rev_dst := get("destination_canonical_revision")) and (
                rev_dst != UNKNOWN and rev_dst != "latest"):
            self.revisions.setdefault((raw_key[4], raw_key[5]), rev_dst)
        reporter = "source" if get("reporter") == "source" else "destination"
        s = edge.sides.get(reporter)
        if s is None:
            s = edge.sides[reporter] = _Side()
        # Spelled out, as in _raw_key: once per series.
        if (v := get("source_principal")) and v != UNKNOWN:
            s.principals.setdefault("source_principal", v)
        if (v := get("destination_principal")) and v != UNKNOWN:
            s.principals.setdefault("destination_principal", v)
        return s

    def read(self, name: str, samples: list[tuple[dict[str, str], float]]) -> None:
        """Add the answer of instant query ``name``: its series' labels and values, checked.

        One loop per kind of query, so that what depends on the query alone is decided once,
        not per series (hundreds of thousands of series at 5,000 services)."""
        self.names.append(name)
        quantile = QUERIES[name].quantile if name in QUERIES else None
        side = self._side
        isnan = math.isnan
        if name in LATENCY_QUERIES:
            self.latency_series += len(samples)  # NaN ones included
        if name == "edges":
            # The graph phase's requests, summed over how they ended: counted, outcome
            # unknown (not an error, not a success; see ResponseStat.code_class).
            for m, value in samples:
                if isnan(value):
                    continue
                sd = side(m, m.get("request_protocol") or "http")
                sd.responses[_UNKNOWN_OUTCOME] = sd.responses.get(_UNKNOWN_OUTCOME, 0.0) + value
        elif name == "failing":
            # The graph phase's failed calls, by code, flag and gRPC status: taken out of the
            # edge's requests of unknown outcome, which counted them too (``edges`` is read
            # first; when it did not answer, these alone are not the graph).
            for m, value in samples:
                if isnan(value):
                    continue
                raw_key = _raw_key(m, m.get("request_protocol") or "http")
                if raw_key not in self.facts:
                    continue
                sd = side(m, raw_key[6], raw_key)
                code = (m.get("response_code") or "0", m.get("response_flags") or "-",
                        m.get("grpc_response_status") or "")
                sd.responses[code] = sd.responses.get(code, 0.0) + value
                rest = sd.responses.get(_UNKNOWN_OUTCOME, 0.0) - value
                if rest > 1e-9:
                    sd.responses[_UNKNOWN_OUTCOME] = rest
                else:
                    sd.responses.pop(_UNKNOWN_OUTCOME, None)
        elif name == "tcp_failing":
            # Connections that ended with a flag: "no response" (code 0, as Istio reports a
            # failed HTTP call), on a TCP edge the graph already has (a connection refused
            # sends no bytes: an edge of refused connections only is not one of its edges).
            for m, value in samples:
                if isnan(value):
                    continue
                raw_key = _raw_key(m, "tcp")
                if raw_key not in self.facts:
                    continue
                sd = side(m, "tcp", raw_key)
                code = ("0", m.get("response_flags") or "-", "")
                sd.responses[code] = sd.responses.get(code, 0.0) + value
        elif name == "requests":
            for m, value in samples:
                if isnan(value):
                    continue
                get = m.get
                sd = side(m, get("request_protocol") or "http")
                code = (get("response_code") or "0", get("response_flags") or "-",
                        get("grpc_response_status") or "")
                responses = sd.responses
                responses[code] = responses.get(code, 0.0) + value
                if get("reporter") == "destination" and (csp := get("connection_security_policy")):
                    sd.security[csp] = sd.security.get(csp, 0.0) + value
        elif quantile is not None:
            # One series per edge and reporter; two only if a label is empty on one and
            # "unknown" on the other, which _key reads alike: the first answer stands.
            for m, value in samples:
                if not isnan(value):
                    side(m, m.get("request_protocol") or "http").quantiles.setdefault(quantile, value)
        elif name == LEGACY_LATENCY:
            for m, value in samples:
                if isnan(value):
                    continue
                self.latency_series += 1
                sd = side(m, m.get("request_protocol") or "http")
                le = float(m.get("le", "nan"))
                sd.buckets[le] = sd.buckets.get(le, 0.0) + value
        else:
            counter = "tcp_sent" if name == "tcp_edges" else name  # the graph phase's bytes sent
            opened = name == "tcp_opened"
            for m, value in samples:
                if isnan(value):
                    continue
                sd = side(m, "tcp")
                sd.tcp[counter] = sd.tcp.get(counter, 0.0) + value
                if opened and m.get("reporter") == "destination" and (
                        csp := m.get("connection_security_policy")):
                    sd.security[csp] = sd.security.get(csp, 0.0) + value
        if name in ("failing", "tcp_failing"):
            self._failures_known(tcp=name == "tcp_failing")

    def _failures_known(self, tcp: bool) -> None:
        """The graph phase's failed calls (or TCP connections) are read: what is left of each
        HTTP edge's requests of unknown outcome did not fail (see meshobs.model.traffic.NOT_FAILED);
        a TCP edge none of whose connections failed says so with a NOT_FAILED entry at no rate
        (its rate is the bytes'; connections are not counted in the graph phase)."""
        for raw_key, f in self.facts.items():
            if (raw_key[6] == "tcp") != tcp:
                continue
            for sd in f.sides.values():
                if tcp:
                    if sd.tcp and not sd.responses:
                        sd.responses[_NOT_FAILED] = 0.0
                        self._built.pop(raw_key, None)
                elif (rest := sd.responses.pop(_UNKNOWN_OUTCOME, None)) is not None:
                    sd.responses[_NOT_FAILED] = rest
                    self._built.pop(raw_key, None)

    def edges(self) -> list[Edge]:
        """The edges of the facts, in the order the series first named them; an edge no series
        touched since the last call is the same object as then."""
        out: list[Edge] = []
        built = self._built
        for raw_key, f in self.facts.items():
            if raw_key in built:
                edge = built[raw_key]
            else:
                edge = built[raw_key] = _edge(f.key, f)
            if edge is not None:
                out.append(edge)
        return out

    def nodes(self, part: SnapshotPart) -> None:
        """:func:`nodes` of ``part``'s edges (this reading's) with the workloads' revisions. The
        same as last time when no edge and no revision was added since: an edge's endpoints and
        source service never change once it exists, and edges and revisions are only ever added
        (a fact with traffic keeps it), so equal counts are equal sets."""
        counts = (len(part.edges), len(self.revisions))
        if self._nodes is not None and self._nodes[0] == counts:
            part.services.extend(self._nodes[1])
            part.workloads.extend(self._nodes[2])
            return
        services, workloads = len(part.services), len(part.workloads)
        nodes(part, {WorkloadRef(ns, name): rev for (ns, name), rev in self.revisions.items()})
        self._nodes = (counts, part.services[services:], part.workloads[workloads:])


_NO_SIDE = _Side()  # what a reporter that said nothing said (read only, never filled)
_NO_PRINCIPALS: dict[str, str] = {}  # read only


def _edge(key: _EdgeKey, f: _EdgeFacts) -> Edge | None:
    src, dst = f.sides.get("source", _NO_SIDE), f.sides.get("destination", _NO_SIDE)
    # Histograms series exist even at zero rate: a side "saw" the edge only if it counted
    # requests or bytes.
    src_active = bool(src.responses or src.tcp)
    dst_active = bool(dst.responses or dst.tcp)
    if not (src_active or dst_active):
        return None
    chosen = src if src_active else dst
    reporter = Reporter.BOTH if src_active and dst_active else (
        Reporter.SOURCE if src_active else Reporter.DESTINATION)
    responses = tuple(ResponseStat(code, flags, rate, grpc)
                      for (code, flags, grpc), rate in sorted(chosen.responses.items()))
    if chosen is src and dst_active and ("429", "-", "") in src.responses:
        responses = _refusals_carried(responses, dst.responses)
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
    if not (src.principals or dst.principals):  # the graph phase's edges: no principals read
        principals = _NO_PRINCIPALS
    else:
        principals = {**dst.principals, **src.principals} if src_active else {**src.principals, **dst.principals}
    return Edge(
        source=key[0], destination=key[1], destination_workload=key[2],
        source_service=f.source_service, protocol=key[3], mesh=MESH,
        request_rate=sum([r.rate for r in responses]), responses=responses, latency=latency,
        security=security, reporter=reporter,
        tcp_sent_bytes_rate=chosen.tcp.get("tcp_sent") if key[3] == "tcp" else None,
        tcp_received_bytes_rate=chosen.tcp.get("tcp_received") if key[3] == "tcp" else None,
        tcp_connections_opened_rate=chosen.tcp.get("tcp_opened") if key[3] == "tcp" else None,
        source_principal=principals.get("source_principal"),
        destination_principal=principals.get("destination_principal"),
        destination_responses=tuple(ResponseStat(code, flags, rate, grpc)
                                    for (code, flags, grpc), rate in sorted(dst.responses.items())) if both else (),
        destination_latency=_latency(dst) if both else None,
    )


def _refusals_carried(responses: tuple[ResponseStat, ...],
                      destination: dict[tuple[str, str, str], float]) -> tuple[ResponseStat, ...]:
    """The caller's view with the destination proxy's refusals named: a request the callee's
    sidecar refused by its local rate limit is answered 429 with flag RL there, and the caller's
    proxy, which only relays that answer, reports a plain 429. As many of the caller's plain 429s
    as the destination's proxy refused carry its flag (ResponseStat.is_error: the mesh refused
    them); the rest were the application's own answer."""
    refused = sum(rate for (code, flags, _grpc), rate in destination.items()
                  if limited_locally(code, flags))
    out: list[ResponseStat] = []
    for r in responses:
        if refused > 0 and r.code == "429" and r.flags == "-" and not r.grpc_status:
            carried = min(r.rate, refused)
            out.append(ResponseStat("429", LOCAL_LIMIT, carried, ""))
            if r.rate > carried:
                out.append(replace(r, rate=r.rate - carried))
            refused -= carried
        else:
            out.append(r)
    return tuple(sorted(out, key=lambda r: (r.code, r.flags, r.grpc_status)))


def _latency(sd: _Side) -> Latency | None:
    """One reporter's quantiles (None when it recorded none: NaN)."""
    if not sd.buckets and not sd.quantiles:
        # The graph phase's sides and every TCP side: asked twice per edge, tens of thousands
        # of edges at 5,000 services.
        return None
    if sd.buckets:  # a bundle recorded with the bucket query: Prometheus's arithmetic, here
        for p in QUANTILES:
            sd.quantiles.setdefault(p, histogram_quantile(p, sd.buckets.items()))
    q = [sd.quantiles.get(p, math.nan) for p in QUANTILES]
    return None if any(math.isnan(v) for v in q) else Latency(p50=q[0], p90=q[1], p99=q[2])


def nodes(part: SnapshotPart, revisions: dict[WorkloadRef, str]) -> None:
    """Workloads and Services implied by the edges' labels (canonical service -> workload)."""
    services: dict[ServiceRef, set[WorkloadRef]] = {}
    workloads: dict[WorkloadRef, set[ServiceRef]] = {}
    # No set made per lookup (setdefault's default), and refs sorted by their fields as tuples
    # (the order their dataclass order gives, compared in C): thousands of edges per graph phase.
    for e in part.edges:
        dst = e.destination
        if not dst.is_unknown:
            into = services.get(dst)
            if into is None:
                into = services[dst] = set()
            if (dwl := e.destination_workload) is not None:
                into.add(dwl)
                if (owners := workloads.get(dwl)) is None:
                    owners = workloads[dwl] = set()
                owners.add(dst)
        if not e.source.is_unknown:
            if (owned := workloads.get(e.source)) is None:
                owned = workloads[e.source] = set()
            if e.source_service is not None:
                owned.add(e.source_service)
    part.services.extend(Service(ref=ref, mesh=Mesh.ISTIO, workloads=tuple(sorted(wls, key=_fields)),
                                 hosts=(f"{ref.name}.{ref.namespace}.svc.cluster.local",))
                         for ref, wls in sorted(services.items(), key=_first_fields))
    part.workloads.extend(Workload(ref=ref, mesh=Mesh.ISTIO, services=tuple(sorted(svcs, key=_fields)),
                                   version=revisions.get(ref), meshed=True)
                          for ref, svcs in sorted(workloads.items(), key=_first_fields))


def _fields(ref: ServiceRef | WorkloadRef) -> tuple[str, str]:
    return ref.namespace, ref.name


def _first_fields(item: tuple[ServiceRef | WorkloadRef, object]) -> tuple[str, str]:
    return item[0].namespace, item[0].name
