"""What the ranking walk reads besides findings: the evidence each hop carries, and the
findings about a configuration resource.

A hop *shows errors* when more than the error threshold of its requests failed in either
proxy's view (the caller's, or the callee's own answers that the caller's retries hid), refusals
(401, 403) counted as failures: not errors by Istio's success rate, but the call failed and the
caller usually turns them into errors of its own; mirrored copies and the caller's injected
faults do not count (:mod:`meshobs.checks.intended`). Some errors
below the threshold (background noise, or a failure passed on in part) do not rule it out: None.
It *shows latency* when the caller's proxy gave up on the callee (a timeout flag), or the
callee's p99 as the caller sees it is at least :data:`LATENCY_SHARE` of the caller's own p99.
Without the numbers to tell, the answer is None as well: not ruled out. The walk links a symptom
through any hop not ruled out, but follows the failing path without a symptom only through hops
that show it. *How* a hop's calls failed (status codes, Envoy flags: :func:`hop_failures`) is
what the ranking matches a cause's signature against.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from meshobs.callgraph import failed
from meshobs.checks.base import Finding
from meshobs.checks.intended import as_callers_see
from meshobs.checks.retries import TIMEOUT_FLAGS
from meshobs.checks.traffic import inbound_p99, outbound_edges, worst_p99
from meshobs.model import Edge, MeshSnapshot, ResponseStat, ServiceRef
from meshobs.suppress import Suppression
from meshobs.suppress import apply as apply_suppressions

from .ranking import Failures
from .runner import Analysis

LATENCY_SHARE = 0.5
_TIMED_OUT = TIMEOUT_FLAGS | {"DC"}


def _hop_edges(snapshot: MeshSnapshot, caller: ServiceRef, callee: ServiceRef) -> list[Edge]:
    # The caller's edges grouped by callee once per snapshot: a hop is judged per kind and its
    # failures told apart, and a caller of hundreds of services had its edges scanned per hop.
    by_caller: dict[ServiceRef, dict[ServiceRef, list[Edge]]] = snapshot.derived("engine.hop_edges", lambda _s: {})
    by_callee = by_caller.get(caller)
    if by_callee is None:
        by_callee = {}
        for e in outbound_edges(snapshot, caller):
            by_callee.setdefault(e.destination, []).append(e)
        by_caller[caller] = by_callee
    return as_callers_see(snapshot, by_callee.get(callee, ()))


def _failed(responses: Iterable[ResponseStat]) -> float:
    """Requests per second that failed or were refused."""
    return sum(r.rate for r in responses if failed(r))


def _ratio(errors: float, rps: float) -> float:
    return errors / rps if rps > 0 else 0.0


def _judge(snapshot: MeshSnapshot, caller: ServiceRef, callee: ServiceRef, kind: str,
           error_ratio: float) -> bool | None:
    edges = _hop_edges(snapshot, caller, callee)
    if kind == "errors":
        # Only edges with response codes can tell (Jaeger's dependency links count calls).
        coded = [e for e in edges if e.responses or e.destination_responses]
        if not coded:
            return None
        seen = _ratio(sum(_failed(e.responses) for e in coded), sum(e.request_rate for e in coded))
        own = _ratio(sum(_failed(e.destination_responses) for e in coded),
                     sum(e.destination_request_rate for e in coded))
        if max(seen, own) > error_ratio:
            return True
        return None if seen > 0 or own > 0 else False
    if any(_TIMED_OUT & set(r.flag_list) for e in edges for r in (*e.responses, *e.destination_responses)):
        return True
    hop = worst_p99(edges)
    caller_p99 = _inbound_p99(snapshot, caller)
    if hop is None or caller_p99 is None or caller_p99 <= 0:
        return None
    return hop[0] >= LATENCY_SHARE * caller_p99


def _inbound_p99(snapshot: MeshSnapshot, service: ServiceRef) -> float | None:
    """The service's p99 as the latency check reads it, once per snapshot and service: every
    hop out of a service is judged against it."""
    known: dict[ServiceRef, float | None] = snapshot.derived("engine.inbound_p99", lambda _s: {})
    if service not in known:
        worst = inbound_p99(snapshot, service)
        known[service] = worst[0] if worst is not None else None
    return known[service]


def hop_evidence(snapshot: MeshSnapshot, caller: ServiceRef, callee: ServiceRef, kind: str,
                 error_ratio: float) -> bool | None:
    """Does the hop caller -> callee show ``kind`` ("errors" / "latency"), with ``error_ratio``
    the errors threshold? True or False, None when it cannot be ruled out. Judged once per
    snapshot, hop and threshold."""
    cache: dict[tuple[ServiceRef, ServiceRef, str, float], bool | None] = snapshot.derived(
        "engine.hop_evidence", lambda _s: {})
    key = (caller, callee, kind, error_ratio)
    if key not in cache:
        cache[key] = _judge(snapshot, caller, callee, kind, error_ratio)
    return cache[key]


def hop_failures(snapshot: MeshSnapshot, caller: ServiceRef, callee: ServiceRef) -> Failures | None:
    """How the calls caller -> callee failed or were refused, as the caller saw them: rates by
    status code and by Envoy flag (``-``: none), intended traffic left out; None without such
    calls or where the source reports no exact codes. Told once per snapshot and hop."""
    cache: dict[tuple[ServiceRef, ServiceRef], Failures | None] = snapshot.derived(
        "engine.hop_failures", lambda _s: {})
    if (caller, callee) not in cache:
        cache[(caller, callee)] = _failures(snapshot, caller, callee)
    return cache[(caller, callee)]


def _failures(snapshot: MeshSnapshot, caller: ServiceRef, callee: ServiceRef) -> Failures | None:
    by_code: dict[str, float] = {}
    by_flag: dict[str, float] = {}
    for e in _hop_edges(snapshot, caller, callee):
        for r in e.responses:
            if not failed(r) or r.rate <= 0 or not r.code.isdigit():
                continue
            code = r.http_equivalent  # a gRPC status failed inside a 200: its HTTP equivalent
            by_code[code] = by_code.get(code, 0.0) + r.rate
            for flag in r.flag_list or ("-",):
                by_flag[flag] = by_flag.get(flag, 0.0) + r.rate
    total = sum(by_code.values())
    return Failures(total, by_code, by_flag) if total > 0 else None


class Related:
    """The analyzers' findings by subject, suppressions applied: what a symptom's ``related``
    resources point at (built once per diagnosis run, when first asked: ``analysis`` gives the
    analyzers' whole run, which a question about one service may otherwise not need)."""

    def __init__(self, analysis: Callable[[], Analysis], suppressions: Sequence[Suppression],
                 time: datetime) -> None:
        self._analysis, self._suppressions, self._time = analysis, suppressions, time
        self._by_subject: dict[str, dict[tuple[str, str, str], Finding]] | None = None

    @property
    def by_subject(self) -> dict[str, dict[tuple[str, str, str], Finding]]:
        if self._by_subject is None:
            analysis = self._analysis()
            everything = [*analysis.mesh_level, *(f for fs in analysis.by_service.values() for f in fs)]
            kept, _hidden = apply_suppressions(everything, list(self._suppressions), self._time)
            self._by_subject = {}
            for f in kept:
                self._by_subject.setdefault(f.subject, {}).setdefault(f.identity, f)
        return self._by_subject

    def __call__(self, subject: str) -> list[Finding]:
        return list(self.by_subject.get(subject, {}).values())
