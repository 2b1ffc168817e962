"""The recording rules meshobs reads, as Prometheus rule groups (the one source of them).

config/prometheus-recording-rules.yaml ships them for users to install (tests/test_prometheus_rules.py
holds it equal to :func:`groups`); ``meshobs demo serve --recording-rules`` installs them into
the demo's Prometheus. Two groups:

* ``istio.recording-rules``: Istio's recommended workload-level rules (each Istio metric summed
  over the pods of a workload; ``workload:*``), read by every query when present;
* ``meshobs.edges``: meshobs's own (``edge:*``), the graph phase's counters summed to exactly the
  labels its edge queries keep (:data:`~meshobs.collectors.promql.EDGE_FAMILIES`).
"""

from __future__ import annotations

from typing import Any

from ..promql import EDGE_FAMILIES, EDGE_MARKER, EDGE_PREFIX, GRAPH_QUERIES, RECORDED_PREFIX

ISTIO_GROUP, EDGES_GROUP = "istio.recording-rules", "meshobs.edges"
# The labels Istio's sample scrape config adds per pod: what its workload rules sum away.
POD_LABELS = ("instance", "kubernetes_namespace", "kubernetes_pod_name")
# Every Istio family its recommended rules record, in the order the shipped file lists them.
ISTIO_FAMILIES = (
    "istio_requests_total",
    "istio_request_duration_milliseconds_count", "istio_request_duration_milliseconds_sum",
    "istio_request_duration_milliseconds_bucket",
    "istio_request_bytes_count", "istio_request_bytes_sum", "istio_request_bytes_bucket",
    "istio_response_bytes_count", "istio_response_bytes_sum", "istio_response_bytes_bucket",
    "istio_tcp_sent_bytes_total", "istio_tcp_received_bytes_total",
    "istio_tcp_connections_opened_total", "istio_tcp_connections_closed_total",
)
# Istio's documentation evaluates its rules every 5 s; the edge rules at the usual scrape
# interval (rate() needs two samples in the rate window; more only adds samples to read).
ISTIO_INTERVAL, EDGES_INTERVAL = "5s", "15s"


def _edge_labels(family: str) -> tuple[str, ...]:
    """The labels the graph phase's edge query over ``family`` keeps."""
    return next(q.labels for q in GRAPH_QUERIES.values() if q.edge_rule and q.family == family)


def groups(which: tuple[str, ...] = (ISTIO_GROUP, EDGES_GROUP)) -> list[dict[str, Any]]:
    """The rule groups named in ``which``, as the ``groups:`` list of a rules file."""
    out: list[dict[str, Any]] = []
    if ISTIO_GROUP in which:
        without = ", ".join(POD_LABELS)
        out.append({"name": ISTIO_GROUP, "interval": ISTIO_INTERVAL, "rules": [
            {"record": RECORDED_PREFIX + f, "expr": f"sum without({without}) ({f})"} for f in ISTIO_FAMILIES]})
    if EDGES_GROUP in which:
        out.append({"name": EDGES_GROUP, "interval": EDGES_INTERVAL, "rules": [
            *({"record": EDGE_PREFIX + f, "expr": f"sum by ({', '.join(_edge_labels(f))}) ({f})"}
              for f in EDGE_FAMILIES),
            {"record": EDGE_MARKER, "expr": "vector(1)"}]})
    return out
