"""Ask each istiod replica for ``/ready`` and ``/debug/syncz``, bounded like every other source.

Replicas are listed in the config (static) or found in Kubernetes (istiod's pods, every
revision) and reached through the same transports as the Envoy admin API: plain HTTP, or the
Kubernetes port-forward API (:mod:`meshobs.collectors.envoy.portforward`). A replica that does
not answer ``/ready`` at all is not asked for syncz: it would only repeat the wait.

Payload keys (one RawSource named ``istiod``, kind ``istiod``): ``pods`` (the pod list, when
found in Kubernetes), and per replica ``<pod>/ready`` and ``<pod>/syncz`` -- or, in the scoped
phase of ``diagnose SERVICE``, ``<pod>/syncz@<namespace>`` for each namespace of the
neighbourhood (istiod's syncz filters by ``?namespace=``). Payload meta: ``pod``, ``namespace``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from meshobs.raw import Payload, RawSource, iso, utc_now

from ..base import FetchContext
from ..envoy.discovery import Target
from ..envoy.fetch import HttpTransport, Transport

KIND = "istiod"
READY_PATH, SYNCZ_PATH = "/ready", "/debug/syncz"
# A neighbourhood spanning more namespaces than this is asked about as a whole: one request per
# replica beats a dozen.
MAX_SCOPED_NAMESPACES = 6


@dataclass(frozen=True)
class Replica:
    """One istiod pod and how to reach its two ports."""

    pod: str
    namespace: str
    debug: Target  # serves /debug/syncz
    ready: Target  # serves /ready
    ready_path: str = READY_PATH


TransportFactory = Callable[[Target], Transport]


def http_transport(target: Target) -> Transport:
    return HttpTransport(target.url)


@dataclass
class IstiodCollector:
    """Fetches every replica's endpoints. ``discover`` (Kubernetes discovery) lists the replicas
    at fetch time and returns the pod-list payload it read; ``error`` is a whole-source problem."""

    replicas: list[Replica] = field(default_factory=list)
    timeout_s: float = 5.0
    transport: TransportFactory = http_transport
    discover: Callable[[float], tuple[list[Replica], Payload]] | None = None
    error: str | None = None
    namespace: str = "istio-system"
    kind: str = KIND

    def fetch(self, ctx: FetchContext) -> list[RawSource]:
        """One RawSource for every replica; never raises for an unreachable or failing istiod.
        The graph phase of a scoped question needs nothing from istiod."""
        if ctx.phase == "graph":
            return []
        raw = RawSource(name=KIND, kind=KIND, meta={"namespace": self.namespace})
        if self.error:
            raw.error = self.error
            return [raw]
        with raw.timed():
            replicas = self.replicas
            if self.discover is not None:
                replicas, pods = self.discover(self._budget(ctx))
                raw.add(pods)
                if not pods.ok:
                    return [raw]
            namespaces = _scoped_namespaces(ctx)
            raw.meta["syncz_namespaces"] = list(namespaces)
            if not replicas:
                raw.meta["note"] = f"no istiod pod found in namespace {self.namespace}"
                return [raw]
            with ThreadPoolExecutor(max_workers=min(8, len(replicas)), thread_name_prefix="istiod") as pool:
                answers = list(pool.map(lambda r: self._ask(r, ctx, namespaces), replicas))
            for payloads in answers:
                for p in payloads:
                    raw.add(p)
        return [raw]

    def _budget(self, ctx: FetchContext) -> float:
        return min(self.timeout_s, ctx.remaining_s())

    def _ask(self, replica: Replica, ctx: FetchContext, namespaces: tuple[str, ...]) -> list[Payload]:
        meta = {"pod": replica.pod, "namespace": replica.namespace}
        out: list[Payload] = []
        ready_transport = self.transport(replica.ready)
        try:
            ready = self._get(ready_transport, replica.ready, replica.ready_path, f"{replica.pod}/ready", {}, ctx)
        finally:
            ready_transport.close()
        out.append(_with_meta(ready, meta))
        if ready.error:
            return out  # not reached at all: the debug port would only repeat the wait
        debug = self.transport(replica.debug)
        try:
            for ns in namespaces or ("",):
                key = f"{replica.pod}/syncz" + (f"@{ns}" if ns else "")
                params = {"namespace": ns} if ns else {}
                out.append(_with_meta(self._get(debug, replica.debug, SYNCZ_PATH, key, params, ctx), meta))
        finally:
            debug.close()
        return out

    def _get(self, transport: Transport, target: Target, path: str, key: str, params: dict[str, str],
             ctx: FetchContext) -> Payload:
        budget = self._budget(ctx)
        if budget <= 0:
            return Payload(key=key, url=target.url + path, params=params, fetched_at=iso(utc_now()),
                           error="not asked: the run's deadline had passed")
        start = time.perf_counter()
        payload = transport.get(path, key, params, budget)
        payload.elapsed_s = payload.elapsed_s or time.perf_counter() - start
        return payload


def _with_meta(payload: Payload, meta: dict[str, Any]) -> Payload:
    payload.meta.update(meta)
    return payload


def _scoped_namespaces(ctx: FetchContext) -> tuple[str, ...]:
    """The namespaces to ask syncz about: the neighbourhood's in a scoped question (when there
    are few), else none (every proxy)."""
    if ctx.phase != "scoped" or ctx.scope is None:
        return ()
    namespaces = tuple(sorted(ctx.scope.namespaces))
    return namespaces if 0 < len(namespaces) <= MAX_SCOPED_NAMESPACES else ()
