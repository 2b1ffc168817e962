"""The control plane (istiod) as meshobs sees it: its replicas, what each sent every proxy and
what the proxy acknowledged, and the rejects it recorded.

Three sources feed it and none is required: istiod's own debug endpoints (``/ready``,
``/debug/syncz``), its ``pilot_*`` metrics in Prometheus, and the Kubernetes pods it runs in.
Each field says which; ``None`` means "that source did not say", never "healthy".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime

from .frozen import EMPTY, FrozenDict

# The xDS types istiod reports per proxy, in the order istioctl proxy-status prints them.
XDS_TYPES = ("cds", "lds", "eds", "rds")

# istioctl proxy-status's words for one xDS type of one proxy (istioctl/pkg/writer/pilot/status.go).
SYNCED, NOT_SENT, STALE, NEVER_ACKED = "SYNCED", "NOT SENT", "STALE", "STALE (Never Acknowledged)"

# istiod's PushVersion is "<RFC 3339 time>/<counter>"; its nonces append a UUID to it
# (``nonce(push.PushVersion)`` in pilot/pkg/xds). The time says when the push was made.
_PUSH_VERSION = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)/(\d+)")


def push_version(nonce_or_version: str) -> str | None:
    """The push version a nonce (or a config_dump ``version_info``) carries, or None when it is
    not in istiod's format."""
    m = _PUSH_VERSION.match(nonce_or_version or "")
    return f"{m.group(1)}/{m.group(2)}" if m else None


def push_time(nonce_or_version: str) -> datetime | None:
    """When istiod made the push a nonce or version belongs to (None when unknown)."""
    m = _PUSH_VERSION.match(nonce_or_version or "")
    if m is None:
        return None
    return datetime.fromisoformat(m.group(1).replace("Z", "+00:00"))


@dataclass(frozen=True, slots=True)
class XdsSync:
    """One row of ``istioctl proxy-status``: what istiod replica ``istiod`` last sent proxy
    ``proxy`` per xDS type, and what the proxy acknowledged (nonces, from ``/debug/syncz``)."""

    proxy: str  # the proxy id istiod uses: "<pod>.<namespace>"
    istiod: str  # the replica's pod name
    sent: FrozenDict = EMPTY  # xds type -> nonce ("" or absent: never sent)
    acked: FrozenDict = EMPTY  # xds type -> nonce ("" or absent: never acknowledged)
    proxy_type: str | None = None  # sidecar | router | ...
    istio_version: str | None = None  # the proxy's Istio version as it told istiod
    cluster_id: str | None = None

    @property
    def pod(self) -> str:
        return self.proxy.rsplit(".", 1)[0]

    @property
    def namespace(self) -> str:
        return self.proxy.rsplit(".", 1)[1] if "." in self.proxy else ""

    def status(self, xds: str) -> str:
        """istioctl's verdict: SYNCED, NOT SENT, STALE or STALE (Never Acknowledged)."""
        sent, acked = str(self.sent.get(xds) or ""), str(self.acked.get(xds) or "")
        if not sent:
            return NOT_SENT
        if sent == acked:
            return SYNCED
        return NEVER_ACKED if not acked else STALE


@dataclass(frozen=True, slots=True)
class XdsReject:
    """A proxy's NACK as istiod recorded it (``pilot_xds_<type>_reject{node, err}``): the gauge is
    set when the proxy rejects a push and, as far as Istio's code shows, not cleared until istiod
    restarts, so it says "rejected at some point", not "rejecting now"."""

    istiod: str
    proxy: str  # "<pod>.<namespace>"
    xds: str
    error: str = ""  # the gRPC code name Envoy sent (Internal, InvalidArgument ...)


def istiod_labels(labels: Mapping[str, object]) -> bool:
    """Are these the labels of istiod's pods, or of the template that makes them (every
    revision)? Istio's charts label them ``app=istiod``."""
    return labels.get("app") == "istiod"


@dataclass(frozen=True, slots=True)
class IstiodReplica:
    """One istiod pod, merged from what each source said about it.

    From its debug endpoints (source ``istiod``): ``ready`` (``/ready`` answered 200) and
    ``reached`` (why it could not be asked, when it could not). From Prometheus (``pilot_*``):
    connected proxies, pushes, send errors, rejects, push context errors and convergence time,
    all per second over the window. From Kubernetes: the pod's Ready condition.
    """

    pod: str
    namespace: str = "istio-system"
    revision: str | None = None
    version: str | None = None  # istio_build's tag, or the image tag
    # Debug endpoints: True/False from /ready; None when not asked or it did not answer.
    ready: bool | None = None
    ready_detail: str = ""  # "HTTP 503", or why /ready could not be asked
    syncz: bool | None = None  # /debug/syncz answered (None: not asked)
    # The namespaces its syncz was asked about: () every namespace, None not asked. Lets a check
    # tell "not listed" from "not asked" in a scoped run.
    syncz_namespaces: tuple[str, ...] | None = None
    unreachable: str = ""  # why its endpoints could not be asked at all
    # Kubernetes: the pod's Ready condition.
    pod_ready: bool | None = None
    # Prometheus (None: no metrics for this replica).
    connected: float | None = None  # pilot_xds: proxies connected now
    connected_by_version: FrozenDict = EMPTY  # proxy Istio version -> count
    pushes_per_s: FrozenDict = EMPTY  # xds type -> pushes/s
    send_errors_per_s: FrozenDict = EMPTY  # xds type -> failed sends/s (pilot_xds_pushes{type="<x>_senderr"})
    rejects_per_s: FrozenDict = EMPTY  # xds type -> NACKs/s (pilot_total_xds_rejects)
    push_context_errors_per_s: float | None = None
    convergence_p99_s: float | None = None
    sources: tuple[str, ...] = field(default=())  # which sources said something: istiod, prometheus, kubernetes

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.pod)

    @property
    def has_metrics(self) -> bool:
        return "prometheus" in self.sources

    @property
    def send_errors(self) -> float:
        return sum(float(v) for v in self.send_errors_per_s.values())

    @property
    def rejects(self) -> float:
        return sum(float(v) for v in self.rejects_per_s.values())


def _unset(value: object) -> bool:
    return value is None or value == "" or (isinstance(value, dict) and not value)


def merge_replica(a: IstiodReplica, b: IstiodReplica) -> IstiodReplica:
    """One replica from two sources' views: each field from whichever source set it."""
    changes: dict[str, object] = {}
    for f in fields(IstiodReplica):
        mine, theirs = getattr(a, f.name), getattr(b, f.name)
        if f.name == "sources":
            changes[f.name] = tuple(dict.fromkeys(mine + theirs))
        elif _unset(mine) and not _unset(theirs):
            changes[f.name] = theirs
    return replace(a, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class InjectionWebhook:
    """One webhook of a MutatingWebhookConfiguration that injects Istio's sidecar (its name ends
    in ``sidecar-injector.istio.io``); only the fields that say which pods it serves and where."""

    configuration: str  # the MutatingWebhookConfiguration's name
    name: str
    revision: str | None = None  # the configuration's istio.io/rev label (or istio.io/tag)
    service: str | None = None  # "namespace/name" of the Service it calls (clientConfig.service)
    url: str | None = None  # clientConfig.url, for an istiod outside the cluster
    namespace_selector: FrozenDict = EMPTY
    object_selector: FrozenDict = EMPTY
    failure_policy: str | None = None


@dataclass(frozen=True)
class ControlPlane:
    """Everything known about istiod in one snapshot, indexed by proxy and replica."""

    replicas: tuple[IstiodReplica, ...] = ()
    syncs: tuple[XdsSync, ...] = ()
    rejects: tuple[XdsReject, ...] = ()
    # The sidecar injector webhooks; None when the MutatingWebhookConfigurations were not listed.
    webhooks: tuple[InjectionWebhook, ...] | None = None
    _by_proxy: dict[str, list[XdsSync]] = field(init=False, repr=False, compare=False)
    _rejects_by_proxy: dict[str, list[XdsReject]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_proxy: dict[str, list[XdsSync]] = {}
        for s in self.syncs:
            by_proxy.setdefault(s.proxy, []).append(s)
        rejects: dict[str, list[XdsReject]] = {}
        for r in self.rejects:
            rejects.setdefault(r.proxy, []).append(r)
        object.__setattr__(self, "_by_proxy", by_proxy)
        object.__setattr__(self, "_rejects_by_proxy", rejects)

    @property
    def known(self) -> bool:
        """Did any source say anything about the control plane?"""
        return bool(self.replicas or self.syncs or self.rejects or self.webhooks is not None)

    def syncs_of(self, proxy_id: str) -> list[XdsSync]:
        """The syncz rows of a proxy (one per replica it is connected to; usually one)."""
        return list(self._by_proxy.get(proxy_id, ()))

    def rejects_of(self, proxy_id: str) -> list[XdsReject]:
        return list(self._rejects_by_proxy.get(proxy_id, ()))

    def replica(self, pod: str) -> IstiodReplica | None:
        return next((r for r in self.replicas if r.pod == pod), None)

    def syncz_asked(self, namespace: str) -> bool:
        """Was every replica's syncz read for proxies of ``namespace``?"""
        if not self.replicas:
            return False
        return all(r.syncz is True and r.syncz_namespaces is not None
                   and (not r.syncz_namespaces or namespace in r.syncz_namespaces) for r in self.replicas)
