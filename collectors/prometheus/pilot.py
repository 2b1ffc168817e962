"""The control-plane query's answer -> one IstiodReplica per istiod pod (its metrics) and the
rejects istiod recorded per proxy. Pure.

Each series carries a ``meshobs`` label naming the branch of
:func:`meshobs.collectors.promql.control_plane_query` it answers: ``pushes`` (per ``type``;
``<xds>_senderr`` types are failed sends), ``rejects``, ``push_context_errors``,
``reject_<xds>`` (gauge per ``node`` and ``err``), ``connected`` (per proxy ``version``),
``convergence_p99`` (seconds) and ``build`` (``tag``).
"""

from __future__ import annotations

import math
from typing import Any

from meshobs.model import IstiodReplica, XdsReject, frozen_map

_SENDERR = "_senderr"


def replica_key(metric: dict[str, str]) -> tuple[str, str] | None:
    """(namespace, pod) of the istiod replica a series was scraped from."""
    pod = metric.get("pod") or metric.get("kubernetes_pod_name") or metric.get("instance")
    if not pod:
        return None
    return (metric.get("namespace") or metric.get("kubernetes_namespace") or "istio-system", pod)


class _Replica:
    def __init__(self, namespace: str, pod: str) -> None:
        self.namespace, self.pod = namespace, pod
        self.pushes: dict[str, float] = {}
        self.send_errors: dict[str, float] = {}
        self.rejects: dict[str, float] = {}
        self.connected: dict[str, float] = {}
        self.context_errors: float | None = None
        self.convergence_p99: float | None = None
        self.version: str | None = None

    def replica(self) -> IstiodReplica:
        return IstiodReplica(
            pod=self.pod, namespace=self.namespace, version=self.version,
            connected=sum(self.connected.values()) if self.connected else None,
            connected_by_version=frozen_map(self.connected), pushes_per_s=frozen_map(self.pushes),
            send_errors_per_s=frozen_map(self.send_errors), rejects_per_s=frozen_map(self.rejects),
            push_context_errors_per_s=self.context_errors, convergence_p99_s=self.convergence_p99,
            sources=("prometheus",))


def control_plane(series: list[dict[str, Any]]) -> tuple[list[IstiodReplica], list[XdsReject]]:
    """Replicas with their metrics, and the per-proxy rejects, from the query's series."""
    replicas: dict[tuple[str, str], _Replica] = {}
    rejects: list[XdsReject] = []
    for s in series:
        m = {str(k): str(v) for k, v in (s.get("metric") or {}).items()}
        key = replica_key(m)
        if key is None:
            continue
        r = replicas.setdefault(key, _Replica(*key))
        value = float(s["value"][1])
        what = m.get("meshobs", "")
        if math.isnan(value):
            continue
        if what == "pushes":
            xds = m.get("type", "")
            if xds.endswith(_SENDERR):
                r.send_errors[xds.removesuffix(_SENDERR)] = value
            else:
                r.pushes[xds] = value
        elif what == "rejects":
            r.rejects[m.get("type", "")] = value
        elif what == "push_context_errors":
            r.context_errors = value
        elif what.startswith("reject_") and value > 0 and m.get("node"):
            rejects.append(XdsReject(istiod=key[1], proxy=m["node"], xds=what.removeprefix("reject_"),
                                     error=m.get("err", "")))
        elif what == "connected":
            r.connected[m.get("version") or "unknown"] = value
        elif what == "convergence_p99":
            r.convergence_p99 = value
        elif what == "build" and m.get("tag"):
            r.version = m["tag"]
    return [r.replica() for _k, r in sorted(replicas.items())], rejects

