"""Ask every proxy's admin API, with bounded concurrency, a per-request timeout and a deadline.

One worker per proxy asks its endpoints in turn, so ``concurrency`` bounds the requests in
flight. A proxy that does not answer ``/ready`` at all is not asked anything else, so an
unreachable or hung proxy costs one timeout, not six.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Protocol

import requests

from meshobs.collectors.base import FetchContext
from meshobs.collectors.http import http_get
from meshobs.raw import Payload, RawSource, iso, utc_now

from .discovery import Target
from .minimise import minimise

# (payload key, path, query parameters), in the order they are asked.
ENDPOINTS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("ready", "/ready", {}),
    ("server_info", "/server_info", {}),
    ("clusters", "/clusters", {"format": "json"}),
    ("stats", "/stats", {"format": "json"}),
    # include_eds adds the EDS version (ignored by Envoys that predate it).
    ("config_dump", "/config_dump", {"include_eds": ""}),
    ("certs", "/certs", {}),
)
STATS_FALLBACK: tuple[str, dict[str, str]] = ("/stats/prometheus", {})


class Transport(Protocol):
    """How requests reach one proxy's admin API (plain HTTP, or through a port-forward)."""

    def get(self, path: str, key: str, params: dict[str, str], timeout_s: float) -> Payload: ...

    def close(self) -> None: ...


class HttpTransport:
    """Plain HTTP to an admin base URL, through :func:`meshobs.collectors.http.http_get`."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()

    def get(self, path: str, key: str, params: dict[str, str], timeout_s: float) -> Payload:
        return http_get(self.session, self.base_url + path, key, params=params or None,
                        timeout_s=timeout_s)

    def close(self) -> None:
        self.session.close()


TransportFactory = Callable[[Target], Transport]


def http_transport(target: Target) -> Transport:
    return HttpTransport(target.url)


@dataclass
class EnvoyCollector:
    """Fetches the admin endpoints of ``targets``; ``error`` is a whole-source problem."""

    targets: list[Target]
    timeout_s: float = 5.0
    concurrency: int = 8
    deadline_s: float = 120.0
    transport: TransportFactory = http_transport
    error: str | None = None
    kind: str = "envoy"

    def fetch(self, ctx: FetchContext | None = None) -> list[RawSource]:
        """One RawSource per proxy; never raises for an unreachable or failing proxy."""
        if self.error:
            return [RawSource(name="envoy", kind="envoy", error=self.error)]
        if not self.targets:
            return [RawSource(name="envoy", kind="envoy",
                              meta={"note": "no Envoy proxies found (no running pod has an "
                                            "istio-proxy or envoy container, and no "
                                            "sources.envoy.targets are set)"})]
        deadline = time.monotonic() + self.deadline_s
        pool = ThreadPoolExecutor(max_workers=max(1, self.concurrency), thread_name_prefix="envoy-admin")
        try:
            futures = [pool.submit(self._fetch_proxy, t, deadline) for t in self.targets]
            # Every request is bounded by the timeout, so this wait only ends early if a
            # transport ignores it; then the late proxies are reported rather than waited for.
            wait(futures, timeout=self.deadline_s + self.timeout_s + 1.0)
            out = []
            for t, f in zip(self.targets, futures):
                if f.done():
                    out.append(f.result())
                else:
                    late = RawSource(name=t.source_name, kind="envoy", meta=t.meta)
                    late.add(_skipped("ready", t, self.deadline_s))
                    out.append(late)
            return out
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _fetch_proxy(self, target: Target, deadline: float) -> RawSource:
        raw = RawSource(name=target.source_name, kind="envoy", meta=target.meta)
        with raw.timed():
            if time.monotonic() >= deadline:
                raw.add(_skipped("ready", target, self.deadline_s))
                return raw
            transport = self.transport(target)
            try:
                self._ask(transport, raw, target, deadline)
            finally:
                transport.close()
        for payload in raw.payloads:
            minimise(payload)  # keep what normalize reads: no header values, tokens or keys
        return raw

    def _ask(self, transport: Transport, raw: RawSource, target: Target, deadline: float) -> None:
        for key, path, params in ENDPOINTS:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raw.add(_skipped(key, target, self.deadline_s))
                continue
            payload = transport.get(path, key, params, min(self.timeout_s, remaining))
            if key == "stats" and not payload.ok:
                payload = self._stats_fallback(transport, payload, deadline)
            raw.add(payload)
            if key == "ready" and payload.error:
                return  # no answer at all: asking the rest would only repeat the wait

    def _stats_fallback(self, transport: Transport, failed: Payload, deadline: float) -> Payload:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return failed
        path, params = STATS_FALLBACK
        second = transport.get(path, "stats", params, min(self.timeout_s, remaining))
        if second.ok:
            second.meta["fallback_from"] = failed.failure()
            return second
        failed.meta["fallback"] = f"{path}: {second.failure()}"
        return failed


def _skipped(key: str, target: Target, deadline_s: float) -> Payload:
    return Payload(key=key, url=target.url, fetched_at=iso(utc_now()),
                   error=f"not fetched: the Envoy collection deadline of {deadline_s:g} s passed "
                         "(narrow sources.envoy.namespaces or raise sources.envoy.concurrency)")

