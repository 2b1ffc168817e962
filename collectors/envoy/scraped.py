"""Proxy readiness and cluster stats that Prometheus already scraped: one query instead of asking
every proxy's ``/ready`` and ``/stats``.

Istio's merged metrics (port 15020) carry the Envoy stats its ``proxyStatsMatcher`` includes;
with the outbound cluster stats included (``inclusionPrefixes: [cluster.outbound]``) Prometheus
holds, per pod, what the checks read from ``/stats``: ``envoy_server_live``, the clusters'
``membership_*``, ``outlier_detection_ejections_active``, ``upstream_rq_pending_overflow``,
``upstream_cx_overflow`` and the open circuit breakers, plus the control-plane gauges. One
instant query fetches them for the whole mesh (or the neighbourhood's namespaces).

A proxy counts as covered only when Prometheus has its ``envoy_server_live`` and the stats of
at least one outbound (service) cluster: by default Istio exports only the ``xds-grpc``
cluster's, and an absent series must not read as "no ejections". Covered proxies get their
slice of the answer as a ``scraped`` payload and are not asked for ``/ready`` or ``/stats``;
the others are asked as before. Any failure of the query only means nobody is covered.

The query goes to the Prometheus server the Prometheus collector asks, with its per-query
timeout, and keeps the run's record of that server (:mod:`meshobs.collectors.silence`): a server
that has answered none of the run's queries and let two run out (a hung one) is not asked (its
timeout would be spent for nothing: the proxies are asked instead), and this query's own fate
counts for the Prometheus collector's next queries.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from typing import Any

from meshobs.collectors.base import FetchContext
from meshobs.durations import parse_duration
from meshobs.raw import Payload, iso, utc_now

from .discovery import Target
from .stats import SERVER_STATS

CLUSTER_METRICS = (
    "envoy_cluster_membership_healthy", "envoy_cluster_membership_total",
    "envoy_cluster_outlier_detection_ejections_active", "envoy_cluster_upstream_rq_pending_overflow",
    "envoy_cluster_upstream_cx_overflow", "envoy_cluster_circuit_breakers_default_cx_open",
    "envoy_cluster_circuit_breakers_default_rq_open", "envoy_cluster_circuit_breakers_default_rq_pending_open",
)
METRICS = (*SERVER_STATS, "envoy_http_rds_update_rejected", *CLUSTER_METRICS)
POD_LABELS = ("pod", "pod_name", "kubernetes_pod_name")
NAMESPACE_LABELS = ("namespace", "kubernetes_namespace", "pod_namespace")
TIMEOUT_S = 10.0  # sources.prometheus.timeout's default


def query(namespaces: frozenset[str] | None = None) -> str:
    """The one PromQL query: every metric above, in ``namespaces`` when given."""
    names = "|".join(METRICS)
    where = f',namespace=~"{"|".join(re.escape(n) for n in sorted(namespaces))}"' if namespaces else ""
    return f'{{__name__=~"{names}"{where}}}'


def _label(metric: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    return next((metric[n] for n in names if metric.get(n)), None)


def covered(series: list[dict[str, Any]]) -> bool:
    """Does one pod's series say enough to stand in for /ready and /stats?"""
    names = {(s.get("metric") or {}).get("__name__") for s in series}
    outbound = any(str((s.get("metric") or {}).get("envoy_cluster_name", "")).startswith("outbound|")
                   for s in series)
    return "envoy_server_live" in names and outbound


def by_pod(result: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The answer's series grouped by (namespace, pod)."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for s in result:
        metric = s.get("metric") if isinstance(s, dict) else None
        if not isinstance(metric, dict):
            continue
        pod, ns = _label(metric, POD_LABELS), _label(metric, NAMESPACE_LABELS)
        if pod and ns:
            out.setdefault((ns, pod), []).append(s)
    return out


def as_exposition(body: str) -> str:
    """A ``scraped`` payload (a Prometheus vector) as exposition text, so the ``/stats/prometheus``
    parser reads it exactly as it reads a proxy's own (one translation of Envoy's names)."""
    doc = json.loads(body)
    if not isinstance(doc, dict) or not isinstance(doc.get("result"), list):
        raise ValueError("scraped: expected a Prometheus vector ({\"result\": [...]})")
    lines = []
    for s in doc["result"]:
        if not isinstance(s, dict):
            continue
        metric = dict(s.get("metric") or {})
        name = metric.pop("__name__", "")
        value = (s.get("value") or [None, None])[1]
        if not name or value is None:
            continue
        labels = ",".join(f'{k}="{_escape(str(v))}"' for k, v in sorted(metric.items()))
        lines.append(f"{name}{{{labels}}} {value}")
    return "\n".join(lines) + "\n"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class PrometheusScrape:
    """Reads the scraped signals from ``sources.prometheus`` (prometheus-api-client)."""

    def __init__(self, section: Mapping[str, Any]) -> None:
        from meshobs.collectors.http import tls_verify

        self.url = str(section.get("url", "")).rstrip("/")
        self.headers = dict(section.get("headers") or {})
        self.verify = tls_verify(section.get("verify_tls", True), section.get("ca_file"))
        timeout = section.get("timeout")
        self.timeout_s = parse_duration(timeout) if timeout is not None else TIMEOUT_S
        self.last_error: str | None = None

    def __call__(self, targets: list[Target], ctx: FetchContext) -> dict[str, Payload]:
        """Target source name -> its ``scraped`` payload, for the covered targets only."""
        import importlib

        # In a live collection all of this is imported already, on one thread, before any
        # collector runs (meshobs.collectors.preload): two collector threads importing
        # prometheus_api_client crosswise deadlocked in the import system once ("_DeadlockError:
        # deadlock detected by _ModuleLock('prometheus_api_client.exceptions')", a live --all at
        # 1,000 services lost its Envoy source whole). Called on its own (the dashboard, tests),
        # the Prometheus collector's module still comes first, never the library first.
        importlib.import_module("meshobs.collectors.prometheus.fetch")
        import requests
        from prometheus_api_client import PrometheusConnect
        from prometheus_api_client.exceptions import PrometheusApiClientException
        from urllib3.util.retry import Retry

        from meshobs.collectors.http import bounded_session, describe_error

        budget = min(self.timeout_s, ctx.remaining_s())
        if budget <= 0:
            return {}
        record = ctx.servers.of(self.url)
        silent = record.silent()
        if silent is not None:
            self.last_error = f"not sent: {silent}"
            return {}
        namespaces = ctx.scope.namespaces if ctx.scope is not None else None
        promql = query(namespaces)
        params = {"query": promql, "time": ctx.time.timestamp()}
        start, fetched_at = time.perf_counter(), iso(utc_now())
        # The session's total bound a little past the read timeout, so a server that says
        # nothing surfaces as a read timeout (no answer), not as a cut-off connection; read=False
        # keeps urllib3 from wrapping that timeout into a ConnectionError ("cannot reach").
        session = bounded_session(timeout_s=budget + 1.0, verify=self.verify)
        client = PrometheusConnect(url=self.url, headers=self.headers or None, session=session,  # type: ignore[arg-type]
                                   timeout=budget,  # type: ignore[arg-type]
                                   retry=Retry(total=0, read=False, raise_on_status=False))
        try:
            result = client.custom_query(promql, params={"time": params["time"]})
            record.heard()
        except (PrometheusApiClientException, requests.RequestException, ValueError, KeyError) as exc:
            if isinstance(exc, requests.Timeout) and not isinstance(exc, requests.ConnectTimeout):
                record.no_answer()  # sent, and not a word back: as a hung query of the collector's
            elif not isinstance(exc, requests.ConnectionError):
                record.heard()  # an error answer, or an answer of the wrong shape: it is alive
            self.last_error = (describe_error(exc, self.url, budget)
                               if isinstance(exc, requests.RequestException) else str(exc))
            return {}
        finally:
            session.close()
        elapsed = time.perf_counter() - start
        series = by_pod(result if isinstance(result, list) else [])
        out: dict[str, Payload] = {}
        for t in targets:
            mine = series.get((t.namespace, t.pod))
            if mine and covered(mine):
                out[t.source_name] = Payload(
                    key="scraped", body=json.dumps({"resultType": "vector", "result": mine}), status=200,
                    url=f"{self.url}/api/v1/query", params=params, elapsed_s=elapsed, fetched_at=fetched_at,
                    meta={"from": "prometheus", "note": "this proxy's series of one mesh-wide query"})
        return out


def from_config(sources: Mapping[str, Any]) -> PrometheusScrape | None:
    """A scrape reader when ``sources.prometheus`` is configured."""
    section = sources.get("prometheus")
    return PrometheusScrape(section) if isinstance(section, Mapping) and section.get("url") else None
