"""The ``prometheus`` SourceStatus: how the source fared, and which kinds of data it delivered.

Each kind of data the checks need (:data:`meshobs.engine.inputs.INPUTS`) comes from specific
queries, so a query that failed costs exactly the checks that read its answer:

* graph and requests (edges, rates, response codes and flags) -- the requests query;
* latency -- the three quantile queries (or the bucket query: a neighbourhood's, or an older
  bundle's);
* security (mTLS) -- the requests query for HTTP/gRPC edges and tcp_opened for TCP ones.

A query that was never sent because the question did not need it (the graph phase of a scoped
question reads the request rates only) is "not collected", not a failure of the source.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from meshobs.durations import format_duration
from meshobs.model import Edge, ServiceRef, SourceState, SourceStatus, WorkloadRef, frozen_map
from meshobs.raw import RawSource

from ..base import NormalizeContext
from ..promql import CONTROL_PLANE, LATENCY_BUCKETS, LATENCY_QUERIES, QUERIES
from .labels import KIND

# The bucket query: a neighbourhood's latency (promql.LATENCY_BUCKETS), and that of bundles
# recorded before the server computed the quantiles (the same key, read the same way).
LEGACY_LATENCY = LATENCY_BUCKETS.name
QUANTILES = tuple(q.quantile for q in (QUERIES[n] for n in LATENCY_QUERIES) if q.quantile is not None)

# input -> the instant queries whose answers it is made of.
_INPUT_QUERIES: dict[str, tuple[str, ...]] = {
    "graph": ("requests",),
    "requests": ("requests",),
    "latency": LATENCY_QUERIES,
    "security": ("requests", "tcp_opened"),
    # istiod's pilot_* metrics.
    "control_plane": (CONTROL_PLANE,),
}


@dataclass
class Answers:
    """What the instant queries of one RawSource came to (filled by normalize)."""

    answered: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # name -> why, naming the query
    absent: list[str] = field(default_factory=list)  # not sent in this run (phase) or not recorded
    latency_series: int = 0  # series the latency queries answered (NaN ones included)
    scope: dict[str, Any] | None = None  # the neighbourhood the scoped queries were narrowed to
    recorded: bool = False  # read Istio's recording rules
    graph_edges: int = 0  # series the graph phase's edge queries answered (a scoped question's)


def _inputs(answers: Answers, edges: Sequence[Edge]) -> dict[str, str | None]:
    legacy = LEGACY_LATENCY in answers.answered or LEGACY_LATENCY in answers.failed
    out: dict[str, str | None] = {}
    for name, queries in _INPUT_QUERIES.items():
        if name == "latency" and legacy:
            queries = (LEGACY_LATENCY,)
        # One reason shared by several queries (the run gave up on the heavy ones) is said once.
        failed = list(dict.fromkeys(answers.failed[q] for q in queries if q in answers.failed))
        absent = [q for q in queries if q in answers.absent]
        if failed:
            out[name] = "; ".join(failed)
        elif absent:
            out[name] = f"not collected in this run (query {', '.join(absent)} not sent)"
        else:
            out[name] = None
    if out["latency"] is None and answers.latency_series == 0 and (busy := _http_edges(edges, answers.scope)):
        # A mesh whose histograms are not scraped (or a recording rule that is missing) looks
        # exactly like a mesh where nothing is slow: say it cannot be judged.
        out["latency"] = (f"the latency queries answered no series although {busy} HTTP/gRPC edges "
                          f"carried requests: is istio_request_duration_milliseconds scraped?")
    return out


def _http_edges(edges: Sequence[Edge], scope: dict[str, Any] | None) -> int:
    """HTTP/gRPC edges with requests (inside the neighbourhood the queries were narrowed to)."""
    services = {ServiceRef(*s.split("/", 1)) for s in (scope or {}).get("services", []) if "/" in s}
    workloads = {WorkloadRef(*w.split("/", 1)) for w in (scope or {}).get("workloads", []) if "/" in w}
    return sum(1 for e in edges if e.protocol != "tcp" and e.request_rate > 0 and (
        scope is None or e.destination in services or e.source in workloads))


def source_status(raw: RawSource, answers: Answers, edges: Sequence[Edge],
                  ctx: NormalizeContext) -> SourceStatus:
    """The status, with per-input verdicts when some kinds of data are missing."""
    url = raw.meta.get("url", "")
    inputs = _inputs(answers, edges)
    # Per-input verdicts when the source answered in part. istiod's metrics not being asked for
    # (an older bundle) is no reason on its own: the control plane's checks say what they lack.
    partial = any(v is not None for k, v in inputs.items() if k != "control_plane") or CONTROL_PLANE in answers.failed
    explicit = frozen_map(inputs) if partial else frozen_map({})
    if answers.failed:
        if not answers.answered:
            message = f"no query answered: {_root_reason(raw, answers)}"
        else:
            message = ("; ".join(dict.fromkeys(answers.failed.values()))
                       + f"; kept the {len(answers.answered)} queries that answered")
        return SourceStatus(raw.name, SourceState.ERROR, message, raw.duration_s, KIND, explicit)
    if not edges and answers.scope is not None and answers.graph_edges:
        # The neighbourhood carried no request in the window, the rest of the mesh did: the
        # server scrapes the proxies, and no traffic is what it says of these services.
        services = len(answers.scope.get("services", []))
        return SourceStatus(raw.name, SourceState.OK, f"0 edges: no traffic in the neighbourhood "
                            f"({services} services)", raw.duration_s, KIND, explicit)
    if not edges:
        window = format_duration(ctx.window_s)
        return SourceStatus(raw.name, SourceState.NO_DATA,
                            f"no istio_requests_total series in the last {window} at {url or 'Prometheus'}: "
                            f"is Prometheus scraping the sidecars?", raw.duration_s, KIND)
    notes = [f"{len(edges)} edges"]
    if answers.recorded:
        notes.append("read Istio's recording rules")
    if answers.scope is not None:
        services = len(answers.scope.get("services", []))
        notes.append(f"requests, latency and TCP for the neighbourhood ({services} services)")
    if inputs["latency"] is not None and not set(answers.absent) & set(_INPUT_QUERIES["latency"]):
        notes.append(f"no latency: {inputs['latency']}")
    return SourceStatus(raw.name, SourceState.OK, "; ".join(notes), raw.duration_s, KIND, explicit)


def _root_reason(raw: RawSource, answers: Answers) -> str:
    """Why nothing answered: the failure to connect when there was one (the queries after it
    were not sent), else the first query's failure."""
    for p in raw.payloads:
        if p.meta.get("unreachable") and p.error:
            return p.error
    # A query that was sent and ran out of time (a hung server) is why the ones after it were
    # "not sent: the run's deadline had passed"; naming those instead hides the cause.
    for p in raw.payloads:
        if p.error and p.meta.get("timed_out"):
            return p.error
    reason = next(iter(answers.failed.values()))
    return reason.split(": ", 1)[-1] if reason.startswith("query ") else reason
