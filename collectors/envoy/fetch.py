"""Ask the proxies' admin APIs: bounded concurrency, a total time per request, a budget per proxy,
the run's deadline, and only the endpoints the run's checks read.

One worker per proxy asks its endpoints in turn, so ``concurrency`` bounds the requests in
flight. A proxy that does not answer its first request at all is not asked anything else, so
an unreachable or hung proxy costs one timeout, not six; one that answers slowly stops when its
budget (``proxy_budget_s``, default three timeouts) is spent, so a few bad proxies cannot hold
the workers the good ones need. Workers are daemon threads: at the run's deadline the proxies
not yet asked are reported "not asked" and the process can exit.

What is asked (see :func:`plan`): ``/ready``, ``/server_info``, ``/stats?format=json`` filtered
to the stats the normaliser keeps, and ``/config_dump`` (no ``include_eds``: the endpoint
versions feed no check). ``/certs`` only when the config dump carries no certificates (SDS
puts them there), ``/clusters`` only when the stats could not be read (the stats carry the
membership and ejection counts the checks use). ``drift`` needs the effective configuration
only: ``/ready``, ``/server_info`` and ``/config_dump``. Proxies whose readiness and stats
Prometheus already scraped (:mod:`.scraped`) are not asked for ``/ready`` and ``/stats``. In a
scoped question, a proxy outside ``Scope.asked_in_full`` is asked for ``/config_dump`` only
(:data:`DUMP_ONLY`; why in :mod:`meshobs.neighbourhood`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import requests

from meshobs.collectors.base import FetchContext, Scope
from meshobs.collectors.http import bounded_session, http_get
from meshobs.collectors.workers import fan_out
from meshobs.durations import seconds
from meshobs.model import WorkloadRef
from meshobs.raw import Payload, RawSource, iso, utc_now

from .discovery import Target
from .minimise import minimise
from .normalize import COUNTERS, NOT_ASKED
from .stats import SERVER_STATS

DEFAULT_CONCURRENCY = 32
PROXY_BUDGET_TIMEOUTS = 3  # a proxy's whole budget, in request timeouts
HAND_IN_S = 0.1  # after the deadline, how long cut-off requests get to hand in their payloads


def stats_filter() -> str:
    """A regex of the stat names the normaliser keeps (Envoy applies it before answering)."""
    gauges = ("membership_healthy", "membership_total", r"outlier_detection\.ejections_\w+",
              r"circuit_breakers\.\w+\.\w+_open")
    cluster = "|".join([re.escape(c) for c in COUNTERS] + list(gauges))
    server = "|".join(re.escape(s) for s in SERVER_STATS.values())
    return rf"^(cluster\..+\.({cluster})|{server}|http\..+\.rds\..+\.update_rejected)$"


STATS_FILTER = stats_filter()
# key -> (path, query parameters)
ENDPOINTS: dict[str, tuple[str, dict[str, str]]] = {
    "ready": ("/ready", {}),
    "server_info": ("/server_info", {}),
    "stats": ("/stats", {"format": "json", "filter": STATS_FILTER}),
    "config_dump": ("/config_dump", {}),
    "certs": ("/certs", {}),
    "clusters": ("/clusters", {"format": "json"}),
}
STATS_FALLBACK: tuple[str, dict[str, str]] = ("/stats/prometheus", {})
# Inputs (meshobs.engine.inputs) that need the whole proxy; "effective" is drift's need.
FULL_NEEDS = frozenset({"proxies", "certs"})
# What a scoped question reads of a proxy outside ``Scope.asked_in_full`` (a caller from outside
# the neighbourhood of a service nothing failed into; see meshobs.neighbourhood): its
# configuration dump, and the certificates when the dump has none.
DUMP_ONLY = frozenset({"dump"})


def plan(needs: frozenset[str] | None, scraped: bool = False) -> tuple[str, ...]:
    """The endpoints asked of every proxy, in order, for a run that reads ``needs``
    (None: everything). ``certs`` and ``clusters`` are added per proxy when needed."""
    if needs == DUMP_ONLY:
        return ("config_dump",)
    if needs is not None and not (needs & FULL_NEEDS):
        return ("server_info", "config_dump") if scraped else ("ready", "server_info", "config_dump")
    if scraped:
        return ("server_info", "config_dump")
    return ("ready", "server_info", "stats", "config_dump")


class Transport(Protocol):
    """How requests reach one proxy's admin API (plain HTTP, or through a port-forward)."""

    def get(self, path: str, key: str, params: dict[str, str], timeout_s: float) -> Payload: ...

    def close(self) -> None: ...


class HttpTransport:
    """Plain HTTP(S) to an admin base URL, through :func:`meshobs.collectors.http.http_get`."""

    def __init__(self, base_url: str, verify: bool | str = True,
                 session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.verify = verify
        self._own = session is None
        self.session = session if session is not None else bounded_session()

    def get(self, path: str, key: str, params: dict[str, str], timeout_s: float) -> Payload:
        return http_get(self.session, self.base_url + path, key, params=params or None,
                        timeout_s=timeout_s, verify=self.verify)

    def close(self) -> None:
        if self._own:
            self.session.close()


TransportFactory = Callable[[Target], Transport]


def http_transport(target: Target) -> Transport:
    return HttpTransport(target.url)


def in_scope(targets: list[Target], scope: Scope | None) -> list[Target]:
    """The targets a scoped question needs: the pods of the scope's workloads (a target whose
    workload is not known is kept: it cannot be ruled out)."""
    if scope is None:
        return targets
    # By (namespace, name): a WorkloadRef made for each of 7,415 targets cost ~10 ms a question.
    wanted = {(w.namespace, w.name) for w in scope.workloads}
    return [t for t in targets if not t.workload or (t.namespace, t.workload) in wanted]


@dataclass
class EnvoyCollector:
    """Fetches the admin endpoints of ``targets``; ``error`` is a whole-source problem."""

    targets: list[Target]
    timeout_s: float = 5.0
    concurrency: int = DEFAULT_CONCURRENCY
    proxy_budget_s: float | None = None  # default PROXY_BUDGET_TIMEOUTS x timeout_s
    transport: TransportFactory = http_transport
    error: str | None = None
    kind: str = "envoy"
    # Scraped readiness and stats, per target source name (see .scraped): those targets are not
    # asked for /ready and /stats.
    scrape: Callable[[list[Target], FetchContext], Mapping[str, Payload]] | None = None

    def fetch(self, ctx: FetchContext | None = None) -> list[RawSource]:
        """One RawSource per proxy; never raises for an unreachable or failing proxy."""
        if self.error:
            return [RawSource(name="envoy", kind="envoy", error=self.error)]
        targets = in_scope(self.targets, ctx.scope if ctx else None)
        if not targets:
            note = ("no Envoy proxies found (no running pod has an istio-proxy or envoy container, "
                    "and no sources.envoy.targets are set)") if not self.targets else \
                "no Envoy proxy belongs to the services this question is about"
            return [RawSource(name="envoy", kind="envoy", meta={"note": note})]
        deadline = ctx.deadline if ctx else None
        needs = ctx.needs if ctx else None
        scraped = dict(self.scrape(targets, ctx)) if (self.scrape is not None and ctx is not None) else {}
        digest = ctx.digest if ctx is not None else None
        scope = ctx.scope if ctx else None

        def one(t: Target) -> RawSource:
            whole = scope is None or not t.workload or scope.in_full(WorkloadRef(t.namespace, t.workload))
            return self._kept(self._fetch_proxy(t, deadline, needs if whole else DUMP_ONLY,
                                                scraped.get(t.source_name)), digest)

        def failed(t: Target, exc: Exception) -> RawSource:
            # One proxy's surprise (a payload shape the minimiser did not expect, a client
            # error outside requests') costs that proxy only.
            raw = _failed(t, exc)
            return digest(raw) if digest is not None else raw

        # In-flight requests are cut at the deadline (see meshobs.collectors.netbound); a moment
        # later they have handed in their "timed out" payloads.
        return fan_out(one, targets, workers=max(1, self.concurrency), name="envoy-admin", failed=failed,
                       deadline=None if deadline is None else deadline + HAND_IN_S, late=self._late)

    @staticmethod
    def _kept(raw: RawSource, digest: Callable[[RawSource], RawSource] | None) -> RawSource:
        """What is kept of a proxy: normalised at once when no bundle is recorded (``digest``),
        else as fetched: its payloads already reduced to what normalize reads, by
        :meth:`_fetch_proxy` (no header values, tokens or keys; free-form parts masked), once."""
        return digest(raw) if digest is not None else raw

    @property
    def budget_s(self) -> float:
        return self.proxy_budget_s if self.proxy_budget_s is not None else PROXY_BUDGET_TIMEOUTS * self.timeout_s

    def _late(self, target: Target, started: bool = False) -> RawSource:
        raw = RawSource(name=target.source_name, kind="envoy", meta=target.meta)
        if started:
            raw.add(Payload(key="ready", url=target.url, fetched_at=iso(utc_now()),
                            error="no answer before the run's deadline (--timeout)"))
        else:
            raw.add(_not_asked("ready", target, "the run's deadline (--timeout) passed before this proxy "
                                                "was asked (raise --timeout or sources.envoy.concurrency)"))
        return raw

    def _fetch_proxy(self, target: Target, deadline: float | None, needs: frozenset[str] | None,
                     scraped: Payload | None) -> RawSource:
        raw = RawSource(name=target.source_name, kind="envoy", meta=target.meta)
        budget_end = time.monotonic() + self.budget_s
        end = budget_end if deadline is None else min(budget_end, deadline)
        with raw.timed():
            if time.monotonic() >= end:
                return self._late(target)
            transport = self.transport(target)
            try:
                self._ask(transport, raw, target, end, needs, scraped)
            finally:
                transport.close()
        for payload in raw.payloads:
            minimise(payload)  # keep what normalize reads: no header values, tokens or keys
        return raw

    def _ask(self, transport: Transport, raw: RawSource, target: Target, end: float,
             needs: frozenset[str] | None, scraped: Payload | None) -> None:
        keys = list(plan(needs, scraped is not None))
        skipped: dict[str, str] = {}
        if scraped is not None:
            raw.add(scraped)
            skipped.update({"ready": "read from Prometheus", "stats": "read from Prometheus"})
        first = True
        while keys:
            key = keys.pop(0)
            remaining = end - time.monotonic()
            if remaining <= 0:
                raw.add(_not_asked(key, target, f"the proxy's budget of {seconds(self.budget_s)} s (or the run's "
                                                 f"deadline) ran out"))
                continue
            path, params = ENDPOINTS[key]
            payload = transport.get(path, key, params, min(self.timeout_s, remaining))
            if key == "stats" and not payload.ok:
                payload = self._stats_fallback(transport, payload, end)
            raw.add(payload)
            if first and payload.error:
                skipped.update(dict.fromkeys(keys, "the proxy did not answer"))
                break  # no answer at all: asking the rest would only repeat the wait
            first = False
            keys.extend(_follow_up(key, payload, needs))
        for key in ("certs", "clusters"):
            if raw.get(key) is None and key not in skipped:
                skipped[key] = ("the config dump carries the certificates" if key == "certs"
                                else "the stats carry the membership and ejection counts")
        if needs == DUMP_ONLY:
            skipped.update({k: "not needed: a caller from outside the neighbourhood, of services no call "
                               "failed into" for k in ("ready", "server_info", "stats", "clusters")
                            if raw.get(k) is None})
        elif needs is not None and not (needs & FULL_NEEDS):
            skipped.update({k: "not needed by this command" for k in ("stats", "certs", "clusters")
                            if raw.get(k) is None})
        raw.meta[NOT_ASKED] = {k: v for k, v in skipped.items() if raw.get(k) is None}

    def _stats_fallback(self, transport: Transport, failed: Payload, end: float) -> Payload:
        remaining = end - time.monotonic()
        if remaining <= 0 or (failed.error and "larger than" in failed.error):
            return failed
        path, params = STATS_FALLBACK
        second = transport.get(path, "stats", params, min(self.timeout_s, remaining))
        if second.ok:
            second.meta["fallback_from"] = failed.failure()
            return second
        failed.meta["fallback"] = f"{path}: {second.failure()}"
        return failed


def _follow_up(key: str, payload: Payload, needs: frozenset[str] | None) -> list[str]:
    """Endpoints worth asking only because of what ``payload`` said (or failed to say)."""
    if needs == DUMP_ONLY:
        return ["certs"] if key == "config_dump" and not _has_certificates(payload) else []
    if needs is not None and not (needs & FULL_NEEDS):
        return []
    if key == "config_dump" and not _has_certificates(payload):
        return ["certs"]  # no SDS certificates in the dump: the admin's own list has them
    if key == "stats" and not payload.ok:
        return ["clusters"]  # membership and ejections from the clusters' host lists instead
    return []


def _has_certificates(dump: Payload) -> bool:
    """A complete config dump with SDS certificates in it (a cheap look; the normaliser parses).
    A dump cut short (not ending its JSON object) cannot be relied on."""
    body = (dump.body or "").rstrip()
    return dump.ok and body.endswith("}") and '"certificate_chain"' in body


def _failed(target: Target, exc: Exception) -> RawSource:
    """A proxy whose fetch raised: its own source, in error, saying what was raised."""
    from meshobs.redact import redact_text

    return RawSource(name=target.source_name, kind="envoy", meta=target.meta,
                     error=f"asking {target.url} failed unexpectedly: {type(exc).__name__}: "
                           f"{redact_text(str(exc))[:300]}")


def _not_asked(key: str, target: Target, why: str) -> Payload:
    return Payload(key=key, url=target.url, fetched_at=iso(utc_now()), error=f"not asked: {why}")
