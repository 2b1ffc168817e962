"""The ground truth a demo scenario is generated from: who calls whom, how much, how well.

Every per-source renderer (Prometheus query results and OpenMetrics backfill, Envoy stats,
Jaeger traces, X-Ray, CloudWatch) turns the same ``EdgeTraffic`` list into that source's raw
payloads, so the sources of a demo agree with each other the way a real mesh's do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from meshobs.model import ResponseStat


@dataclass(frozen=True)
class LatencyProfile:
    """Log-normal request duration, fixed by its median and p99 in milliseconds."""

    p50_ms: float
    p99_ms: float

    @property
    def sigma(self) -> float:
        # p99 = median * exp(2.3263 * sigma)
        return math.log(max(self.p99_ms, self.p50_ms * 1.0001) / self.p50_ms) / 2.326347874

    def cdf(self, ms: float) -> float:
        """Fraction of requests that took at most ``ms``."""
        if ms <= 0:
            return 0.0
        z = (math.log(ms) - math.log(self.p50_ms)) / self.sigma
        return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))

    def quantile(self, q: float) -> float:
        # Inverse normal CDF via bisection on erf (q in (0,1)); precise enough for fixtures.
        lo, hi = -10.0, 10.0
        for _ in range(80):
            mid = (lo + hi) / 2
            if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < q:
                lo = mid
            else:
                hi = mid
        return self.p50_ms * math.exp(self.sigma * (lo + hi) / 2)


Responses = tuple[tuple[str, str, float], ...]  # (response code, Envoy flags, fraction)


@dataclass(frozen=True)
class Reported:
    """Traffic as one side's proxy reports it, when the two sides disagree (see
    ``EdgeTraffic.destination_view``) or as it was earlier (see :class:`Phase`)."""

    rps: float
    responses: Responses = (("200", "-", 1.0),)
    latency: LatencyProfile = LatencyProfile(10.0, 50.0)
    grpc_statuses: tuple[str, ...] = ()  # per entry of ``responses``, for gRPC edges


@dataclass(frozen=True)
class Phase:
    """What an edge carried until ``until_s_ago`` seconds before the scenario time (the edge's
    own fields describe the latest phase). ``destination_view`` as on the edge."""

    until_s_ago: float
    source_view: Reported
    destination_view: Reported | None = None


@dataclass(frozen=True)
class EdgeTraffic:
    """Traffic from one source workload to one destination workload of a service.

    ``responses`` are (response code, Envoy response flags, fraction of requests) and sum to 1.
    ``destination_workload=None`` models requests that never reached a destination (only the
    source proxy reports them, with destination labels ``unknown``).
    """

    source_namespace: str
    source_workload: str
    source_service: str  # canonical service of the source ("unknown" for outside callers)
    source_version: str
    destination_namespace: str
    destination_service: str
    destination_workload: str | None
    destination_version: str
    rps: float
    responses: tuple[tuple[str, str, float], ...] = (("200", "-", 1.0),)
    latency: LatencyProfile = LatencyProfile(10.0, 50.0)
    protocol: str = "http"  # http | grpc | tcp
    mtls: bool = True
    trust_domain: str = "cluster.local"
    source_service_account: str = "default"
    destination_service_account: str = "default"
    tcp_sent_bps: float = 0.0
    tcp_received_bps: float = 0.0
    # False when the destination's sidecar is not Istio's (an App Mesh Envoy in a migration):
    # then only the calling Istio proxy reports the request to Prometheus.
    destination_istio: bool = True
    # -- what the authoring API (meshobs.demo.author) adds; the defaults render as before ----
    # What the destination's proxy reports when it differs from the caller's: with retries the
    # destination sees every attempt (more requests, its own 503s), the source one request.
    destination_view: Reported | None = None
    # Earlier phases, oldest first: a fault with an onset, so history shows when it started.
    phases: tuple[Phase, ...] = ()
    # False for mirrored (shadow) traffic: only the destination's proxy reports it.
    source_reported: bool = True
    # The destination_service label when it is not a Kubernetes service FQDN: a ServiceEntry
    # host, BlackHoleCluster / PassthroughCluster, or the :authority of an unrouted request.
    destination_host: str | None = None
    # gRPC status per entry of ``responses`` (default: derived from the HTTP code).
    grpc_statuses: tuple[str, ...] = ()
    # Who reports the edge when not the two sidecars: ("waypoint",) or ztunnel's L4 pair.
    reporters: tuple[str, ...] | None = None

    def view(self, side: str, age_s: float = 0.0) -> Reported:
        """The traffic ``side`` (source | destination) reported ``age_s`` seconds before the
        scenario time."""
        phase: Phase | None = None
        for earlier in reversed(self.phases):  # newest first; older phases end further back
            if age_s < earlier.until_s_ago:
                break
            phase = earlier
        if phase is not None:
            if side == "destination" and phase.destination_view is not None:
                return phase.destination_view
            return phase.source_view
        if side == "destination" and self.destination_view is not None:
            return self.destination_view
        return Reported(self.rps, self.responses, self.latency, self.grpc_statuses)

    @property
    def boundaries(self) -> tuple[float, ...]:
        """Ages (seconds before the scenario time) where the traffic changes, newest first."""
        return tuple(sorted(p.until_s_ago for p in self.phases))

    @property
    def plain(self) -> bool:
        """True when nothing beyond the original model is used (renders as it always did)."""
        return (self.destination_view is None and not self.phases and self.source_reported
                and self.destination_host is None and not self.grpc_statuses and self.reporters is None)

    @property
    def source_principal(self) -> str:
        return (f"spiffe://{self.trust_domain}/ns/{self.source_namespace}/sa/"
                f"{self.source_service_account}")

    @property
    def destination_principal(self) -> str:
        return (f"spiffe://{self.trust_domain}/ns/{self.destination_namespace}/sa/"
                f"{self.destination_service_account}")

    @property
    def destination_fqdn(self) -> str:
        if self.destination_host is not None:
            return self.destination_host
        return f"{self.destination_service}.{self.destination_namespace}.svc.cluster.local"

    @property
    def error_fraction(self) -> float:
        """The share of requests that failed, by the model's one definition (ResponseStat.is_error:
        5xx, no response, and gRPC statuses failed inside a 200)."""
        statuses = self.grpc_statuses
        return sum(f for i, (code, flags, f) in enumerate(self.responses)
                   if ResponseStat(code, flags, f, statuses[i] if i < len(statuses) else "").is_error)
