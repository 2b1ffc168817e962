"""The common route model: one route as any layer of either mesh holds it, and one comparison.

Every route comparison in meshobs goes through :func:`route_differences`: drift's Istio
VirtualService <-> Envoy (:mod:`.effective`), App Mesh VirtualRouter <-> Envoy (:mod:`.appmesh`),
the migration round trip (App Mesh route <-> the Istio route translated from it) and
``migrate verify`` (the Envoy routes before and after a cut-over). Builders turn each layer's
own words into a :class:`RouteView`, with that layer's defaults made explicit:

* **destinations**: target -> percentage of the route's traffic (weights are relative: a
  single destination carries 100, ``9/1`` equals ``90/10``); the key space is the caller's
  (Istio ``host|subset``, an App Mesh virtual node, a workload);
* **retries**: ``attempts``, ``retry_on`` as Envoy conditions (sorted, comma-joined; HTTP codes
  folded into ``retriable-status-codes`` as Istio does), per-try timeout; ``None`` when the
  layer does not say (an App Mesh route without a retry policy may get App Mesh's default, so
  it is not compared);
* **timeout**: seconds, ``None`` for no timeout (Envoy's and App Mesh's default is 15 s,
  Istio's is none).

:class:`FieldNames` says how the reference layer names each field, so one difference reads in
the reference resource's own paths (``spec.http[0].retries.attempts`` for a VirtualService,
``spec.routes[r].httpRoute.retryPolicy.maxRetries`` for an App Mesh router).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from meshobs.model import HttpRoute

NUMERIC = frozenset("0123456789")
ENVOY_DEFAULT_TIMEOUT_S = 15.0  # RouteAction.timeout when unset; App Mesh's perRequest default too
# App Mesh retry events -> the Envoy retry_on conditions the App Mesh control plane writes
# (gRPC events keep their names: Envoy's gRPC conditions are spelled the same).
APPMESH_RETRY_EVENTS = {"server-error": "5xx", "gateway-error": "gateway-error", "client-error": "retriable-4xx",
                        "stream-error": "refused-stream", "connection-error": "connect-failure"}


@dataclass(frozen=True)
class RetryView:
    attempts: int
    retry_on: str = ""
    per_try_s: float | None = None


@dataclass(frozen=True)
class RouteView:
    """One route in mesh-neutral terms (see the module docstring)."""

    destinations: dict[str, float] = field(default_factory=dict)
    retries: RetryView | None = None
    timeout_s: float | None = None
    name: str | None = None


@dataclass(frozen=True)
class FieldNames:
    """How the reference layer names a route's fields (``target`` for a destination it lacks)."""

    weight: Callable[[str], str]
    target: Callable[[str], str]
    attempts: str
    retry_on: str
    per_try: str
    timeout: str


def num(x: float) -> float | int:
    """Round to 2 decimals; whole numbers as int (``90.0`` -> ``90``), as canonical forms do."""
    r = round(x, 2)
    return int(r) if r == int(r) else r


def shares(weights: Iterable[tuple[str, float]]) -> dict[str, float]:
    """(target, weight) -> target -> percentage of the sum (one target = 100; repeats add up)."""
    pairs = list(weights)
    total = sum(w for _k, w in pairs)
    out: dict[str, float] = defaultdict(float)
    for key, w in pairs:
        out[key] += 100.0 if len(pairs) == 1 else (w * 100.0 / total if total else 0.0)
    return {k: num(v) for k, v in out.items()}


def envoy_retry_on(retry_on: str | None) -> str:
    """Retry conditions as a set in Envoy's form: HTTP status codes become
    ``retriable-status-codes`` (Istio moves them out of ``retryOn``)."""
    tokens = {t.strip() for t in (retry_on or "").split(",") if t.strip()}
    codes = {t for t in tokens if set(t) <= NUMERIC}
    tokens -= codes
    if codes:
        tokens.add("retriable-status-codes")
    return ",".join(sorted(tokens))


def appmesh_retry_on(events: Iterable[str]) -> str:
    """App Mesh retry events -> Envoy ``retry_on`` conditions, sorted and comma-joined."""
    return ",".join(sorted({APPMESH_RETRY_EVENTS.get(e, e) for e in events}))


# -- builders ----------------------------------------------------------------------------------

def envoy_view(route: HttpRoute, target_of: Callable[[str], str]) -> RouteView:
    """What an Envoy route does: ``target_of`` maps a cluster name into the caller's key space.
    Envoy's RetryPolicy.num_retries is 1 when a policy is present without it; a route without
    a timeout waits 15 s, ``0s`` disables it."""
    attempts = route.retry_attempts if route.retry_attempts is not None else (1 if route.retry_on else 0)
    retries = RetryView(attempts, envoy_retry_on(route.retry_on), route.per_try_timeout_s or None)
    timeout = ENVOY_DEFAULT_TIMEOUT_S if route.timeout_s is None else (route.timeout_s or None)
    return RouteView(shares((target_of(d.cluster), float(d.weight)) for d in route.destinations),
                     retries, timeout, route.name)


def appmesh_view(route: Mapping[str, Any], target_of: Callable[[Mapping[str, Any]], str]) -> RouteView:
    """An App Mesh route in the collector's common layout (``spec.meshobs.routes[]``)."""
    targets = [t for t in route.get("targets") or [] if isinstance(t, Mapping)]
    retry = route.get("retry")
    retries = None
    if isinstance(retry, Mapping):
        events = [e for k in ("http_events", "tcp_events", "grpc_events") for e in retry.get(k) or ()]
        per_try = retry.get("per_retry_timeout_ms")
        retries = RetryView(int(retry.get("max_retries") or 0), appmesh_retry_on(events),
                            num(float(per_try) / 1000.0) if per_try is not None else None)
    timeout = route.get("timeout") if isinstance(route.get("timeout"), Mapping) else {}
    request_ms = (timeout or {}).get("request_ms")
    timeout_s = ENVOY_DEFAULT_TIMEOUT_S if request_ms is None else (float(request_ms) / 1000.0 or None)
    if route.get("protocol") == "tcp":
        retries, timeout_s = None, None  # TCP routes have neither (idle is a connection timeout)
    return RouteView(shares((target_of(t), float(t.get("weight") or 0)) for t in targets),
                     retries, num(timeout_s) if timeout_s else None, route.get("name"))


def istio_view(route: Mapping[str, Any]) -> RouteView:
    """A canonical VirtualService ``http`` route (:func:`meshobs.drift.normalise.canonical`:
    weights already percentages keyed ``host|subset[|port]``, Istio's retry defaults filled)."""
    retries = route.get("retries") or {}
    attempts = int(retries.get("attempts") or 0)
    return RouteView({k: float(d.get("weight") or 0) for k, d in (route.get("route") or {}).items()},
                     RetryView(attempts, envoy_retry_on(retries.get("retryOn")), retries.get("perTryTimeout")),
                     route.get("timeout"), route.get("name"))


# -- the comparison ----------------------------------------------------------------------------

def route_differences(expected: RouteView, actual: RouteView, names: FieldNames,
                      same_target: Callable[[str, str], bool] | None = None
                      ) -> Iterator[tuple[str, Any, Any]]:
    """(path, expected, actual) for every field of one route; equal values are yielded too
    (callers that track "in sync" need them), ``None`` = absent.

    ``same_target(expected_key, actual_key)`` widens key equality (an Istio destination
    without a port covers every port's cluster); matched shares add up.
    """
    match = same_target or (lambda a, b: a == b)
    seen: set[str] = set()
    for key, share in expected.destinations.items():
        hits = [k for k in actual.destinations if match(key, k)]
        seen.update(hits)
        yield names.weight(key), share, (num(sum(actual.destinations[k] for k in hits)) if hits else None)
    for key, share in actual.destinations.items():
        if key not in seen:
            yield names.target(key), None, {"weight": share}
    if expected.retries is not None:
        want, got = expected.retries, actual.retries or RetryView(0)
        yield names.attempts, want.attempts, got.attempts
        if want.attempts and got.attempts:
            yield names.retry_on, want.retry_on, got.retry_on
            yield names.per_try, want.per_try_s, got.per_try_s
    yield names.timeout, expected.timeout_s, actual.timeout_s
