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


# The HTTP status each gRPC status stands for: the standard gRPC <-> HTTP mapping, as
# googleapis' google/rpc/code.proto documents it for every code (and grpc-gateway's
# runtime.HTTPStatusFromCode applies it). gRPC carries its status in the trailers of an HTTP 200,
# so a failed call reads as success by its HTTP code alone; meshobs judges it by this equivalent:
# 5xx (2 UNKNOWN, 4 DEADLINE_EXCEEDED, 12 UNIMPLEMENTED, 13 INTERNAL, 14 UNAVAILABLE, 15 DATA_LOSS)
# fails as a 5xx does; the client-side statuses are the 4xx analogues, counted as 4xx are.
GRPC_HTTP_EQUIVALENT: dict[str, tuple[str, str]] = {
    "0": ("OK", "200"),
    "1": ("CANCELLED", "499"),
    "2": ("UNKNOWN", "500"),
    "3": ("INVALID_ARGUMENT", "400"),
    "4": ("DEADLINE_EXCEEDED", "504"),
    "5": ("NOT_FOUND", "404"),
    "6": ("ALREADY_EXISTS", "409"),
    "7": ("PERMISSION_DENIED", "403"),
    "8": ("RESOURCE_EXHAUSTED", "429"),
    "9": ("FAILED_PRECONDITION", "400"),
    "10": ("ABORTED", "409"),
    "11": ("OUT_OF_RANGE", "400"),
    "12": ("UNIMPLEMENTED", "501"),
    "13": ("INTERNAL", "500"),
    "14": ("UNAVAILABLE", "503"),
    "15": ("DATA_LOSS", "500"),
    "16": ("UNAUTHENTICATED", "401"),
}
# A status outside the table (gRPC reserves no others): what gRPC itself makes of one, UNKNOWN.
_GRPC_UNKNOWN = GRPC_HTTP_EQUIVALENT["2"]


@dataclass(frozen=True, slots=True)
class ResponseStat:
    """Requests per second with one response code, one Envoy response flag and one gRPC status.

    ``code`` is a string because Istio reports ``0`` when no response was received; ``flags``
    is Envoy's ``%RESPONSE_FLAGS%`` (``-`` for none, may be a comma-joined list such as
    ``UH,URX``); ``grpc_status`` is the gRPC status of gRPC calls (Istio's
    ``grpc_response_status``: ``"14"``), empty when the calls were not gRPC or the source does
    not say.
    """

    code: str
    flags: str
    rate: float
    grpc_status: str = ""

    @property
    def http_equivalent(self) -> str:
        """The HTTP status these calls ended with, as far as success goes: the code, unless the
        HTTP exchange succeeded (2xx) while the gRPC call failed: then the gRPC status's HTTP
        equivalent (GRPC_HTTP_EQUIVALENT). An HTTP error stands as it is (503 with status 14)."""
        grpc = self.grpc_status
        if not grpc or grpc == "0" or self.code[:1] != "2":
            return self.code
        return GRPC_HTTP_EQUIVALENT.get(grpc, _GRPC_UNKNOWN)[1]

    @classmethod
    def of_outcome(cls, outcome: str, rate: float = 0.0) -> ResponseStat | None:
        """The calls an :attr:`outcome` names, read back from evidence (``"503"``, ``"200
        grpc-status 14 UNAVAILABLE"``), so that what reads a breakdown judges them by the same
        :attr:`http_equivalent`; None for what names no exact outcome (a class such as ``5xx``,
        as CloudWatch reports them). Their flags are not in the name: ``-``."""
        code, sep, rest = outcome.partition(" grpc-status ")
        grpc = rest.split(" ", 1)[0] if sep else ""
        if not code.isdigit() or (sep and not grpc.isdigit()):
            return None
        return cls(code, "-", rate, grpc)

    @property
    def outcome(self) -> str:
        """How evidence names these calls' outcome: the HTTP code, with the gRPC status next to
        it when that is what failed (``200 grpc-status 14 UNAVAILABLE``)."""
        if self.http_equivalent == self.code:
            return self.code
        name = GRPC_HTTP_EQUIVALENT.get(self.grpc_status, ("",))[0]
        return f"{self.code} grpc-status {self.grpc_status} {name}".rstrip()

    @property
    def code_class(self) -> str:
        """``2xx`` .. ``5xx`` (of :attr:`http_equivalent`: a gRPC call failed with UNAVAILABLE
        inside an HTTP 200 is ``5xx``), ``0`` for no response (connection failure, reset), or
        ``unknown`` for requests a source counted without saying how they ended (CloudWatch
        without the per-class metrics): not knowing is not an error."""
        code = self.code
        if (grpc := self.grpc_status) and grpc != "0" and code[:1] == "2":  # http_equivalent, inline:
            code = GRPC_HTTP_EQUIVALENT.get(grpc, _GRPC_UNKNOWN)[1]  # asked per response, per check
        if not code or code == "0":
            return "0"
        if not code[0].isdigit():
            return "unknown"
        return f"{code[0]}xx"

    @property
    def is_error(self) -> bool:
        """5xx and "no response" count as errors (Istio's success-rate definition), gRPC
        statuses by their HTTP equivalent; and a request the proxy refused on its own, by its
        local rate limit (429 with response flag RL): the mesh's doing, never the client's. A 429
        the application answered (no flag) is the caller's business, as every 4xx."""
        # ``code_class in ("5xx", "0")`` without formatting the class: every error count of every
        # edge asks it (~100k times in a --all's checklists at 5,000 services).
        code = self.code
        if (grpc := self.grpc_status) and grpc != "0" and code[:1] == "2":  # http_equivalent, inline
            code = GRPC_HTTP_EQUIVALENT.get(grpc, _GRPC_UNKNOWN)[1]
        return not code or code == "0" or code[0] == "5" or limited_locally(code, self.flags)

    @property
    def flag_list(self) -> tuple[str, ...]:
        return tuple(f for f in self.flags.split(",") if f and f != "-")


# Envoy's response flag for a request its local rate limit refused (answered 429 by the proxy).
LOCAL_LIMIT = "RL"


def limited_locally(code: str, flags: str) -> bool:
    """The proxy refused the request by its local rate limit: answered 429 with flag RL."""
    return code == "429" and LOCAL_LIMIT in flags.split(",")


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
        """Requests per second per outcome (:attr:`ResponseStat.outcome`: the code, with a gRPC
        status that failed inside it)."""
        out: dict[str, float] = {}
        for r in self.responses:
            if errors_only and not r.is_error:
                continue
            out[r.outcome] = out.get(r.outcome, 0.0) + r.rate
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
