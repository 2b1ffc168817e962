"""Istio standard metrics from Prometheus -> the edges of the service graph.

The collector module contract (:mod:`meshobs.collect`): ``KIND``, ``from_config`` and
``normalize``. The work lives in submodules:

* :mod:`.fetch` -- :class:`PrometheusCollector`, the instant and range queries of
  :mod:`meshobs.collectors.promql` through prometheus-api-client: concurrent, each with its own
  timeout, narrowed to the neighbourhood in a scoped question, on Istio's recording rules when
  the server has them;
* :mod:`.normalize` -- the answers -> Edges, the Workloads and Services their labels imply,
  and the ``prometheus`` SourceStatus (how the two reporters are merged is described there);
* :mod:`.history` -- the range queries -> per-service MetricSeries for the sparklines.
"""

from __future__ import annotations

from meshobs.config import Config
from meshobs.durations import parse_duration
from meshobs.raw import RawSource

from .fetch import DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT_S, PrometheusCollector
from .labels import KIND, UNKNOWN
from .normalize import normalize

__all__ = ["DEFAULT_TIMEOUT_S", "KIND", "UNKNOWN", "PrometheusCollector", "from_config", "normalize"]


def from_config(config: Config, prior: list[RawSource]) -> PrometheusCollector | None:
    """A collector for ``sources.prometheus``; None when that section is absent."""
    section = config.sources.get("prometheus")
    if section is None:
        return None
    timeout = section.get("timeout")
    span = section.get("history")
    return PrometheusCollector(
        section.get("url", "http://localhost:9090"),
        headers=section.get("headers"),
        verify_tls=section.get("verify_tls", True),
        ca_file=section.get("ca_file"),
        timeout_s=parse_duration(timeout) if timeout is not None else DEFAULT_TIMEOUT_S,
        concurrency=int(section.get("concurrency", DEFAULT_CONCURRENCY)),
        recording_rules=str(section.get("recording_rules", "auto")),
        history_s=parse_duration(span) if span is not None else None,
    )
