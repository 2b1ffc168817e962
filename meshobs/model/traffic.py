"""Edges of the service graph with their RED numbers (rate, errors, duration)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from .refs import Mesh, ServiceRef, WorkloadRef


class Security(StrEnum):
    """How the bytes travelled on an edge, as the destination proxy saw them."""

    MUTUAL_TLS = "mutual_tls"
    PLAINTEXT = "none"
    UNKNOWN = "unknown"


class Reporter(StrEnum):
    """Which side's proxy reported a series (Istio's ``reporter`` label)."""

    SOURCE = "source"
    DESTINATION = "destination"
    BOTH = "both"


# The code of requests counted without their exact outcome, known only not to have failed (no
# 5xx, no "no response", no 401/403): the graph phase of a scoped question (its ``failing``
# query says which did). Its class is "unknown", as for any requests of unknown outcome.
NOT_FAILED = "not failed"


@dataclass(frozen=True, slots=True)
class ResponseStat:
    """Requests per second with one response code and one Envoy response flag.

    ``code`` is a string because Istio reports ``0`` when no response was received and gRPC
    codes separately; ``flags`` is Envoy's ``%RESPONSE_FLAGS%`` (``-`` for none, may be a
    comma-joined list such as ``UH,URX``).
    """

    code: str
    flags: str
    rate: float

    @property
    def code_class(self) -> str:
        """``2xx`` .. ``5xx``, ``0`` for no response (connection failure, reset), or ``unknown``
        for requests a source counted without saying how they ended (CloudWatch without the
        per-class metrics): not knowing is not an error."""
        if not self.code or self.code == "0":
            return "0"
        if not self.code[0].isdigit():
            return "unknown"
        return f"{self.code[0]}xx"

    @property
    def is_error(self) -> bool:
        """5xx and "no response" count as errors (Istio's success-rate definition)."""
        # ``code_class in ("5xx", "0")`` without formatting the class: every error count of every
        # edge asks it (~100k times in a --all's checklists at 5,000 services).
        code = self.code
        return not code or code == "0" or code[0] == "5"

    @property
    def flag_list(self) -> tuple[str, ...]:
        return tuple(f for f in self.flags.split(",") if f and f != "-")


@dataclass(frozen=True, slots=True)
class Latency:
    """Request duration quantiles in milliseconds over the window."""

    p50: float | None = None
    p90: float | None = None
    p99: float | None = None


@dataclass(frozen=True, slots=True)
class Edge:
    """Traffic from a source workload to a destination service over the window.

    ``destination_workload`` is ``None`` when requests never reached a destination (they only
    exist in source-reported series, with destination labels ``unknown``).
    """

    source: WorkloadRef
    destination: ServiceRef
    destination_workload: WorkloadRef | None = None
    source_service: ServiceRef | None = None
    protocol: str = "http"
    mesh: Mesh = Mesh.UNKNOWN
    # int | float, not float: a rate summed from no samples is the int 0, and a bundle's model
    # (meshobs.modelcache) must give back the very type the normaliser made.
    request_rate: int | float = 0.0
    responses: tuple[ResponseStat, ...] = ()
    latency: Latency | None = None
    security: Security = Security.UNKNOWN
    reporter: Reporter = Reporter.DESTINATION
    tcp_sent_bytes_rate: float | None = None
    tcp_received_bytes_rate: float | None = None
    tcp_connections_opened_rate: float | None = None
    source_principal: str | None = None
    destination_principal: str | None = None
    # What the destination's own proxy reported for this edge when ``responses`` are the
    # caller's (reporter BOTH): every attempt it answered, retries included, with its own codes
    # (``0 DC`` where the caller gave up) and its own latency. Empty / None when only one side
    # reported. Retries, timeouts and mirrored copies show up as the difference of the views.
    destination_responses: tuple[ResponseStat, ...] = ()
    destination_latency: Latency | None = None

    def with_responses(self, responses: tuple[ResponseStat, ...]) -> Edge:
        """The same edge carrying only ``responses`` (its request rate their sum): a view of
        part of its requests, e.g. without the ones the caller's fault filter aborted."""
        return replace(self, responses=responses, request_rate=sum(r.rate for r in responses))

    @property
    def destination_request_rate(self) -> float:
        """Requests per second the destination's proxy answered (0 without its view)."""
        return sum(r.rate for r in self.destination_responses)

    @property
    def destination_error_rate(self) -> float:
        """Of those, the ones that failed (5xx or no response), as the destination saw them."""
        return sum(r.rate for r in self.destination_responses if r.is_error)

    @property
    def error_rate(self) -> float:
        """Requests per second that failed (5xx or no response)."""
        return sum(r.rate for r in self.responses if r.is_error)

    @property
    def error_ratio(self) -> float:
        """Failed / all requests, 0 when there was no traffic."""
        return self.error_rate / self.request_rate if self.request_rate > 0 else 0.0

    def rate_by_code_class(self) -> dict[str, float]:
        """Requests per second per response-code class (``2xx`` .. ``5xx``, ``0``)."""
        out: dict[str, float] = {}
        for r in self.responses:
            out[r.code_class] = out.get(r.code_class, 0.0) + r.rate
        return out

    def rate_by_code(self, errors_only: bool = False) -> dict[str, float]:
        out: dict[str, float] = {}
        for r in self.responses:
            if errors_only and not r.is_error:
                continue
            out[r.code] = out.get(r.code, 0.0) + r.rate
        return out

    def rate_by_flag(self, errors_only: bool = False) -> dict[str, float]:
        """Requests per second per Envoy response flag (``UH``, ``UO``...), none -> ``-``."""
        out: dict[str, float] = {}
        for r in self.responses:
            if errors_only and not r.is_error:
                continue
            for flag in r.flag_list or ("-",):
                out[flag] = out.get(flag, 0.0) + r.rate
        return out

    @property
    def key(self) -> tuple[WorkloadRef, ServiceRef, WorkloadRef | None, str]:
        return (self.source, self.destination, self.destination_workload, self.protocol)
