"""Which services the history queries are narrowed to.

An hour per edge is cheap for a neighbourhood and expensive for a whole mesh (a 1,000-service
mesh has ~8,000 edge-reporter series: ~70 MB of JSON for an hour at 15 s). So the history is
always narrowed, with the same label matchers as every scoped query:

* ``diagnose SERVICE`` (the scoped phase): to the neighbourhood;
* a mesh-wide question (``diagnose --all``, ``snapshot``, the dashboard): to the services whose
  requests fail *now* (5xx or no response in the requests answer of the same run) and the
  workloads that sent the failing requests -- only a symptom present now has an onset to look
  for. Services that are only slow are not timed there (``diagnose SERVICE`` times them).

The p99 history is per service, so it is narrowed to the traffic INTO those services only (the
FROM side would add a partial p99 -- one caller's share -- of services outside them; see
``Query.into_only``).

When the narrowed query would not fit in one query string the history is not sent, and the
payload-less source records why (``RawSource.meta["history"]``), so the timeline says "could not
check" rather than "nothing started".
"""

from __future__ import annotations

import json

from meshobs.model import ResponseStat, ServiceRef, WorkloadRef
from meshobs.raw import Payload

from ..promql import scope_matchers
from .labels import UNKNOWN


def failing(requests: Payload | None) -> tuple[set[ServiceRef], set[WorkloadRef]] | None:
    """The services answering 5xx (or nothing, a failed gRPC status, a rate-limit refusal) in the
    requests answer, and the workloads that sent those requests; None when the answer is missing
    or unreadable."""
    if requests is None or not requests.ok or not requests.has_body():
        return None
    try:
        # The values as the client decoded them, when at hand: the same as its text's.
        rows = (requests.decoded if requests.decoded is not None else json.loads(requests.body or ""))["result"]
    except (ValueError, KeyError, TypeError):
        return None
    services: set[ServiceRef] = set()
    workloads: set[WorkloadRef] = set()
    for row in rows if isinstance(rows, list) else []:
        m = row.get("metric") if isinstance(row, dict) else None
        if not isinstance(m, dict):
            continue
        # The model's one definition of an error (a gRPC status failed inside a 200 too).
        if not ResponseStat(str(m.get("response_code") or "0"), str(m.get("response_flags") or "-"), 0.0,
                            str(m.get("grpc_response_status") or "")).is_error:
            continue
        name, ns = m.get("destination_service_name"), m.get("destination_service_namespace")
        if name and ns and UNKNOWN not in (name, ns):
            services.add(ServiceRef(ns, name))
        src, src_ns = m.get("source_workload"), m.get("source_workload_namespace")
        if src and src_ns and UNKNOWN not in (src, src_ns):
            workloads.add(WorkloadRef(src_ns, src))
    return services, workloads


def matchers(services: set[ServiceRef], workloads: set[WorkloadRef], compact: bool = False) -> tuple[str, ...]:
    """The label matchers selecting traffic into those services or from those workloads
    (``compact``: written as prefix trees, see :func:`~meshobs.collectors.promql.scope_matchers`)."""
    return scope_matchers(services, workloads, compact)
