"""``meshobs migrate verify``: does the mesh behave the same after the cut-over?

Both sides are snapshots (a recorded bundle, ``demo:NAME`` or a live collection). Compared:

* **edges** (source workload -> destination service, summed over destination workloads):
  ``missing`` (carried traffic before, none after), ``new``, else ``worse`` / ``better`` /
  ``same`` by the error ratio (chi-square test of the after counts against the before ratio,
  the statistic :mod:`meshobs.checks.split` uses, and at least ``tolerance`` relative and one
  point absolute), the p99 (beyond ``tolerance`` and beyond the resolution of the measurement:
  a Prometheus p99 is only known to its histogram bucket) and TLS (on before, off after is
  worse);
* **splits**: a service's observed split after vs its configured weights after, and vs the
  split observed before (:func:`meshobs.checks.split.judge_split`);
* **configuration**: the App Mesh routes and TLS before vs the Istio resources after, with the
  round-trip engine (:func:`meshobs.migrate.roundtrip.compare_config`);
* **what Envoy holds** (:mod:`.verify_envoy`): each caller's routes before vs after, in drift's
  common route model.

During a gradual migration the after side still has App Mesh workloads: edges into them are
marked ``on App Mesh`` (judged all the same), and the services are listed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from meshobs.checks.split import SPLIT_MIN_REQUESTS, SPLIT_P_VALUE, chi_square_p, judge_split
from meshobs.collectors.promql import ISTIO_DURATION_BUCKETS_MS
from meshobs.drift.compare import Drift
from meshobs.model import Edge, Mesh, MeshSnapshot, Security

from .identity import Identities, identities

DEFAULT_TOLERANCE = 0.2
MIN_ERROR_DIFF = 0.01  # one point of error ratio: below that, nobody notices
SAME, BETTER, WORSE, MISSING, NEW = "same", "better", "worse", "missing", "new"


@dataclass(frozen=True)
class EdgeStats:
    requests: float  # over the window
    errors: float
    p99_ms: float | None
    p99_range: tuple[float, float] | None  # what the p99 could be, given how it was measured
    tls: bool | None
    mesh: str

    @property
    def error_ratio(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"requests": round(self.requests, 1), "error_ratio": round(self.error_ratio, 4),
                "p99_ms": round(self.p99_ms, 1) if self.p99_ms is not None else None, "tls": self.tls,
                "mesh": self.mesh}


@dataclass(frozen=True)
class EdgeVerdict:
    source: str
    destination: str
    status: str
    reasons: tuple[str, ...]
    before: EdgeStats | None
    after: EdgeStats | None
    on_appmesh: bool = False  # the destination still runs App Mesh after

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "destination": self.destination, "status": self.status,
                "reasons": list(self.reasons), "on_appmesh": self.on_appmesh,
                "before": self.before.to_json() if self.before else None,
                "after": self.after.to_json() if self.after else None}


@dataclass(frozen=True)
class SplitVerdict:
    service: str
    against: str  # "configured" (after's weights) | "before" (the split observed before)
    expected: dict[str, float]
    observed: dict[str, float]
    p_value: float

    def to_json(self) -> dict[str, Any]:
        return {"service": self.service, "against": self.against, "p_value": self.p_value,
                "expected": {k: round(100 * v, 1) for k, v in self.expected.items()},
                "observed": {k: round(100 * v, 1) for k, v in self.observed.items()}}


@dataclass
class VerifyResult:
    edges: list[EdgeVerdict]
    splits: list[SplitVerdict]
    config: list[Drift]
    envoy: list[Drift]
    still_on_appmesh: list[str]
    problems: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)

    @property
    def checkable(self) -> bool:
        return bool(self.edges) or bool(self.config) or bool(self.envoy)

    @property
    def failed(self) -> bool:
        return any(e.status in (WORSE, MISSING) for e in self.edges) or bool(self.splits) or \
            any(d.severity.value == "error" or d.category in ("retries", "timeout") for d in self.config + self.envoy)


def _bucket(value: float) -> tuple[float, float]:
    lower = 0.0
    for upper in ISTIO_DURATION_BUCKETS_MS:
        if value <= upper:
            return lower, float(upper)
        lower = float(upper)
    return lower, float("inf")


def _tls(edge: Edge) -> bool | None:
    return {Security.MUTUAL_TLS: True, Security.PLAINTEXT: False}.get(edge.security)


def edge_stats(snapshot: MeshSnapshot, ids: Identities) -> dict[tuple[str, str], EdgeStats]:
    """Edges by (source workload, destination service), over destination workloads."""
    grouped: dict[tuple[str, str], list[Edge]] = defaultdict(list)
    for e in snapshot.edges:
        if e.request_rate > 0:
            grouped[(ids.workload(e.source), ids.service(e.destination))].append(e)
    out = {}
    for key, edges in grouped.items():
        requests = sum(e.request_rate for e in edges) * snapshot.window_s
        errors = sum(e.error_rate for e in edges) * snapshot.window_s
        p99s = [e.latency.p99 for e in edges if e.latency and e.latency.p99 is not None]
        p99 = max(p99s) if p99s else None
        # Istio's p99 comes from histogram buckets (histogram_quantile): it is only known to
        # its bucket. CloudWatch and X-Ray report percentiles of the samples themselves.
        prometheus = any(e.mesh is Mesh.ISTIO for e in edges)
        p99_range = (_bucket(p99) if prometheus else (p99, p99)) if p99 is not None else None
        tls_values = {_tls(e) for e in edges}
        tls = None if None in tls_values or len(tls_values) != 1 else tls_values.pop()
        mesh = "istio" if prometheus else ("appmesh" if any(e.mesh is Mesh.APPMESH for e in edges) else "unknown")
        out[key] = EdgeStats(requests, errors, p99, p99_range, tls, mesh)
    return out


def _judge(before: EdgeStats, after: EdgeStats, tolerance: float) -> tuple[str, tuple[str, ...], list[str]]:
    worse: list[str] = []
    better: list[str] = []
    notes: list[str] = []
    rb, ra = before.error_ratio, after.error_ratio
    if after.requests < SPLIT_MIN_REQUESTS:
        notes.append(f"too few requests after ({after.requests:.0f}) to judge the error ratio")
    else:
        _stat, p = chi_square_p({"error": after.errors, "ok": after.requests - after.errors},
                                {"error": rb, "ok": 1.0 - rb})
        margin = max(MIN_ERROR_DIFF, tolerance * rb)
        if p < SPLIT_P_VALUE and ra - rb > margin:
            worse.append(f"error ratio {100 * rb:.1f}% -> {100 * ra:.1f}%")
        elif p < SPLIT_P_VALUE and rb - ra > margin:
            better.append(f"error ratio {100 * rb:.1f}% -> {100 * ra:.1f}%")
    if before.p99_range and after.p99_range and before.p99_ms is not None and after.p99_ms is not None:
        if after.p99_range[0] > before.p99_range[1] * (1 + tolerance):
            worse.append(f"p99 {before.p99_ms:.0f} ms -> {after.p99_ms:.0f} ms")
        elif after.p99_range[1] < before.p99_range[0] * (1 - tolerance):
            better.append(f"p99 {before.p99_ms:.0f} ms -> {after.p99_ms:.0f} ms")
    if before.tls is True and after.tls is False:
        worse.append("TLS was on, now plaintext")
    elif before.tls is False and after.tls is True:
        better.append("now mTLS (was plaintext)")
    elif before.tls is True and after.tls is None:
        notes.append("could not check TLS after (no security label on the edge)")
    if worse:
        return WORSE, tuple(worse), notes
    return (BETTER, tuple(better), notes) if better else (SAME, (), notes)


def _appmesh_tls(snapshot: MeshSnapshot) -> dict[tuple[str, str], bool]:
    """(source, destination) -> does the caller's App Mesh client policy enforce TLS? (CloudWatch
    does not say whether an edge was encrypted; the configuration does.)"""
    from meshobs import appmesh_spec as spec

    out: dict[tuple[str, str], bool] = {}
    for e in snapshot.edges:
        node = spec.node_of(snapshot, e.source)
        if node is not None:
            policy = spec.client_tls_for(node, e.destination)
            out[(str(e.source), str(e.destination))] = bool(policy and policy.get("enforce", True))
    return out


def _with_config_tls(snapshot: MeshSnapshot, ids: Identities,
                     stats: dict[tuple[str, str], EdgeStats]) -> dict[tuple[str, str], EdgeStats]:
    from dataclasses import replace

    enforced = {(ids.workload(_wref(s)), ids.service(_sref(d))): v for (s, d), v in _appmesh_tls(snapshot).items()}
    return {k: (replace(v, tls=enforced[k]) if v.tls is None and k in enforced else v) for k, v in stats.items()}


def _wref(text: str) -> Any:
    from meshobs.model import WorkloadRef

    ns, _, name = text.partition("/")
    return WorkloadRef(ns, name)


def _sref(text: str) -> Any:
    from meshobs.model import ServiceRef

    ns, _, name = text.partition("/")
    return ServiceRef(ns, name)


def _on_appmesh(snapshot: MeshSnapshot, ids: Identities) -> set[str]:
    return {ids.service(s.ref) for s in snapshot.services if s.mesh is Mesh.APPMESH}


def _shares(snapshot: MeshSnapshot, ids: Identities) -> dict[str, dict[str, float]]:
    """Destination service -> requests per destination workload."""
    out: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for e in snapshot.edges:
        if e.destination_workload is not None and e.request_rate > 0:
            out[ids.service(e.destination)][ids.workload(e.destination_workload)] += e.request_rate * snapshot.window_s
    return {k: dict(v) for k, v in out.items()}


def splits(before: MeshSnapshot, after: MeshSnapshot, ids_before: Identities, ids_after: Identities
           ) -> list[SplitVerdict]:
    from .verify_envoy import configured_weights

    out: list[SplitVerdict] = []
    old, new = _shares(before, ids_before), _shares(after, ids_after)
    for service, counts in sorted(new.items()):
        weights = configured_weights(after, service)
        if weights and len(weights) > 1:
            verdict = judge_split(counts, weights)
            if verdict is not None:
                out.append(SplitVerdict(service, "configured", verdict.expected, verdict.observed, verdict.p_value))
        previous = old.get(service)
        if previous and len(previous) > 1:
            verdict = judge_split(counts, previous)
            if verdict is not None:
                out.append(SplitVerdict(service, "before", verdict.expected, verdict.observed, verdict.p_value))
    return out


def _replaced_callers(edges: list[EdgeVerdict], before: MeshSnapshot, after: MeshSnapshot, ids_b: Identities,
                      ids_a: Identities, tolerance: float, problems: list[str]) -> list[EdgeVerdict]:
    """A caller that exists only before and one that exists only after, calling the same
    service (App Mesh's virtual gateway replaced by Istio's ingress gateway): one edge, judged."""
    gone = {ids_b.workload(w.ref) for w in before.workloads} - {ids_a.workload(w.ref) for w in after.workloads}
    arrived = {ids_a.workload(w.ref) for w in after.workloads} - {ids_b.workload(w.ref) for w in before.workloads}
    out = list(edges)
    for dest in sorted({e.destination for e in edges}):
        missing = [e for e in out if e.destination == dest and e.status == MISSING and e.source in gone]
        new = [e for e in out if e.destination == dest and e.status == NEW and e.source in arrived]
        if len(missing) == 1 and len(new) == 1 and missing[0].before and new[0].after:
            status, reasons, notes = _judge(missing[0].before, new[0].after, tolerance)
            merged = EdgeVerdict(f"{missing[0].source} => {new[0].source}", dest, status,
                                 (f"caller replaced: {missing[0].source} -> {new[0].source}", *reasons),
                                 missing[0].before, new[0].after, new[0].on_appmesh)
            out = [e for e in out if e not in (missing[0], new[0])] + [merged]
            problems += [f"{merged.source} -> {dest}: {n}" for n in notes]
    return sorted(out, key=lambda e: (e.source, e.destination))


def compare(before: MeshSnapshot, after: MeshSnapshot, *, tolerance: float = DEFAULT_TOLERANCE) -> VerifyResult:
    """Everything ``verify`` reports (see the module docstring)."""
    from .verify_envoy import config_differences, envoy_differences

    ids_b, ids_a = identities(before), identities(after)
    old = _with_config_tls(before, ids_b, edge_stats(before, ids_b))
    new = _with_config_tls(after, ids_a, edge_stats(after, ids_a))
    still = _on_appmesh(after, ids_a)
    edges: list[EdgeVerdict] = []
    problems: list[str] = []
    for key in sorted(set(old) | set(new)):
        b, a = old.get(key), new.get(key)
        on_appmesh = key[1] in still
        if a is None:
            edges.append(EdgeVerdict(*key, MISSING, ("carried traffic before, none after",), b, None, on_appmesh))
        elif b is None:
            edges.append(EdgeVerdict(*key, NEW, ("no traffic before",), None, a, on_appmesh))
        else:
            status, reasons, notes = _judge(b, a, tolerance)
            edges.append(EdgeVerdict(*key, status, reasons, b, a, on_appmesh))
            problems += [f"{key[0]} -> {key[1]}: {n}" for n in notes]
    edges = _replaced_callers(edges, before, after, ids_b, ids_a, tolerance, problems)
    if not old:
        problems.append("no edges before (the before side has no traffic data)")
    if not new:
        problems.append("no edges after (the after side has no traffic data)")
    config, config_problems = config_differences(before, after)
    envoy, envoy_problems = envoy_differences(before, after, ids_b, ids_a)
    return VerifyResult(edges, splits(before, after, ids_b, ids_a), config, envoy, sorted(still),
                        problems + config_problems + envoy_problems, _hints(envoy, still))


def _hints(envoy: list[Drift], still: set[str]) -> list[str]:
    """Istio callers of a service that still runs App Mesh do not read its App Mesh router."""
    out = []
    for service in sorted(still):
        ns, _, name = service.partition("/")
        host = f"{name}.{ns}.svc.cluster.local"
        callers = sorted({f"{d.resource.namespace}/{d.resource.name}" for d in envoy if f"[{host}|" in d.path})
        if callers:
            verb = "calls" if len(callers) == 1 else "call"
            out.append(f"{', '.join(callers)} already {verb} {service} through Istio, which does not read App Mesh "
                       f"routers: apply {service}'s translated VirtualService now (Istio sidecars use it while the "
                       f"service still runs App Mesh)")
    return out

