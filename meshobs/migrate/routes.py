"""App Mesh routes -> the ``http`` / ``tcp`` routes of an Istio VirtualService.

Per route: the match (``prefix``, ``path``, ``headers``, ``method``, ``scheme``,
``queryParameters``, ``port``; gRPC ``serviceName``/``methodName``/``metadata`` as the
``/Service/Method`` path and headers they are on the wire), the weighted targets (each a
destination from :mod:`.destinations`, with its port), the retry policy (``maxRetries`` ->
``attempts``, ``perRetryTimeout`` -> ``perTryTimeout``, the retry events -> ``retryOn`` with
the mapping drift uses, :func:`meshobs.drift.routes.appmesh_retry_on`) and the request timeout
(App Mesh's default 15 s is written out: Istio's default is no timeout).

Order: Istio takes the first matching route; App Mesh takes the route with the lowest
``priority``, then the most specific match, so routes are sorted that way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from meshobs.drift.routes import appmesh_retry_on
from meshobs.model import ConfigResource

from .destinations import Destination, node_key
from .durations import duration_text
from .inventory import Inventory, raw
from .ledger import Ledger

BODIES = {"http": "httpRoute", "http2": "http2Route", "grpc": "grpcRoute", "tcp": "tcpRoute"}
APPMESH_DEFAULT_TIMEOUT_MS = 15000.0


def locate(holder: ConfigResource, route: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """(path of the route in its resource, the route as written): ``spec.routes[i]`` in a CRD
    router, ``spec`` in a separate Route resource (API export)."""
    spec = raw(holder)
    if holder.kind == "Route":
        return "spec", spec
    for i, r in enumerate(spec.get("routes") or []):
        if isinstance(r, Mapping) and r.get("name") == route.get("name"):
            return f"spec.routes[{i}]", r
    return "spec.routes[0]", {}


def _specificity(route: Mapping[str, Any]) -> tuple[Any, ...]:
    match = route.get("match") or {}
    text = str(match.get("prefix") or (match.get("path") or {}).get("exact") or match.get("serviceName") or "")
    conditions = sum(1 for k in ("headers", "method", "queryParameters", "metadata", "methodName") if match.get(k))
    return (route.get("priority") is None, route.get("priority") or 0, -conditions, -len(text), str(route.get("name")))


def ordered(routes: list[tuple[ConfigResource, dict[str, Any]]]) -> list[tuple[ConfigResource, dict[str, Any]]]:
    return sorted(routes, key=lambda hr: _specificity(hr[1]))


def _string_match(match: Mapping[str, Any], holder: ConfigResource, path: str, ledger: Ledger) -> dict[str, Any] | None:
    for key in ("exact", "prefix", "regex"):
        if key in match:
            ledger.used(holder, f"{path}.{key}")
            return {key: str(match[key])}
    if "suffix" in match:
        ledger.used(holder, f"{path}.suffix")
        return {"regex": f".*{re.escape(str(match['suffix']))}"}
    if "range" in match:
        ledger.untranslatable(holder, f"{path}.range", "Istio matches strings, not number ranges",
                              "a regex over the digits (write it by hand)")
        return None
    return {}


def _headers(items: Any, holder: ConfigResource, path: str, ledger: Ledger) -> tuple[dict[str, Any], dict[str, Any]]:
    present: dict[str, Any] = {}
    absent: dict[str, Any] = {}
    for i, h in enumerate(items or []):
        if not isinstance(h, Mapping) or not h.get("name"):
            continue
        ledger.used(holder, f"{path}[{i}].name")
        value = _string_match(h.get("match") or {}, holder, f"{path}[{i}].match", ledger)
        if value is None:
            continue
        if h.get("invert"):
            ledger.used(holder, f"{path}[{i}].invert")
            absent[str(h["name"]).lower()] = value
        else:
            if "invert" in h:
                ledger.used(holder, f"{path}[{i}].invert")
            present[str(h["name"]).lower()] = value
    return present, absent


def http_match(body: Mapping[str, Any], protocol: str, holder: ConfigResource, base: str,
               ledger: Ledger) -> list[dict[str, Any]]:
    """The Istio match list of one App Mesh route ([] = every request)."""
    match = body.get("match") or {}
    path = f"{base}.match"
    out: dict[str, Any] = {}
    if protocol == "grpc":
        service, method = match.get("serviceName"), match.get("methodName")
        if service and method:
            out["uri"] = {"exact": f"/{service}/{method}"}
        elif service:
            out["uri"] = {"prefix": f"/{service}/"}
        ledger.used(holder, f"{path}.serviceName", f"{path}.methodName")
        present, absent = _headers(match.get("metadata"), holder, f"{path}.metadata", ledger)
    else:
        if match.get("prefix") not in (None, "/"):
            out["uri"] = {"prefix": str(match["prefix"])}
        ledger.used(holder, f"{path}.prefix")
        if isinstance(match.get("path"), Mapping):
            uri = _string_match(match["path"], holder, f"{path}.path", ledger)
            if uri:
                out["uri"] = uri
        present, absent = _headers(match.get("headers"), holder, f"{path}.headers", ledger)
        if match.get("method"):
            out["method"] = {"exact": str(match["method"]).upper()}
            ledger.used(holder, f"{path}.method")
        if match.get("scheme"):
            out["scheme"] = {"exact": str(match["scheme"])}
            ledger.used(holder, f"{path}.scheme")
        params: dict[str, Any] = {}
        for i, q in enumerate(match.get("queryParameters") or []):
            if isinstance(q, Mapping) and q.get("name"):
                exact = (q.get("match") or {}).get("exact")
                params[str(q["name"])] = {"exact": str(exact)} if exact is not None else {"regex": ".*"}
                ledger.used(holder, f"{path}.queryParameters[{i}]")
        if params:
            out["queryParams"] = params
    if present:
        out["headers"] = present
    if absent:
        out["withoutHeaders"] = absent
    if match.get("port"):
        out["port"] = int(match["port"])
        ledger.used(holder, f"{path}.port")
    return [out] if out else []


def destinations(route: Mapping[str, Any], holder: ConfigResource, base: str, inventory: Inventory,
                 plan: Mapping[tuple[str, str], Destination], ledger: Ledger) -> list[dict[str, Any]]:
    """The weighted destinations of one route (targets that cannot be addressed are listed)."""
    out: list[dict[str, Any]] = []
    targets = [t for t in route.get("targets") or [] if isinstance(t, Mapping)]
    body = BODIES.get(str(route.get("protocol")), "httpRoute")
    for i, t in enumerate(targets):
        where = f"{base}.{body}.action.weightedTargets[{i}]"
        node = inventory.node(str(t.get("virtual_node") or ""), t.get("namespace"), holder)
        dest = plan.get(node_key(node)) if node is not None else None
        if dest is None:
            why = ("the target virtual node is not in the input" if node is None
                   else "the target virtual node has no service discovery to address it by")
            ledger.untranslatable(holder, where, why, "add the target's configuration (or a ServiceEntry) and re-run")
            continue
        ledger.used(holder, where)
        d: dict[str, Any] = {"host": dest.host}
        if dest.subset:
            d["subset"] = dest.subset
        if t.get("port"):
            d["port"] = {"number": int(t["port"])}
        out.append({"destination": d, "weight": int(t.get("weight") or 0)})
    if len(out) == 1:
        out[0].pop("weight")  # one destination carries everything (App Mesh: any weight > 0)
    return out


def retries(route: Mapping[str, Any], holder: ConfigResource, base: str, ledger: Ledger) -> dict[str, Any] | None:
    retry = route.get("retry")
    body = BODIES.get(str(route.get("protocol")), "httpRoute")
    if not isinstance(retry, Mapping):
        ledger.changed(holder, f"{base}.{body}.retryPolicy",
                       "no retry policy: App Mesh may have applied its default one; Istio applies its own default "
                       "(2 attempts on connect-failure, refused-stream, unavailable, cancelled, "
                       "retriable-status-codes)", "set http[].retries to pin the policy")
        return None
    ledger.used(holder, f"{base}.{body}.retryPolicy")
    out: dict[str, Any] = {"attempts": int(retry.get("max_retries") or 0)}
    if retry.get("per_retry_timeout_ms") is not None:
        out["perTryTimeout"] = duration_text(float(retry["per_retry_timeout_ms"]))
    events = [e for k in ("http_events", "tcp_events", "grpc_events") for e in retry.get(k) or ()]
    if events:
        out["retryOn"] = appmesh_retry_on(events)
    return out


def timeout(route: Mapping[str, Any], holder: ConfigResource, base: str, ledger: Ledger) -> str | None:
    """Istio's ``timeout`` (None: no timeout). App Mesh waits 15 s unless told otherwise; 0 disables."""
    body = BODIES.get(str(route.get("protocol")), "httpRoute")
    t = route.get("timeout") if isinstance(route.get("timeout"), Mapping) else None
    if t and t.get("idle_ms") is not None:
        ledger.untranslatable(holder, f"{base}.{body}.timeout.idle",
                              "a per-route stream idle timeout has no VirtualService field",
                              "DestinationRule trafficPolicy.connectionPool.http.idleTimeout (per host, "
                              "connection idle time)")
    request_ms = (t or {}).get("request_ms")
    if request_ms is not None:
        ledger.used(holder, f"{base}.{body}.timeout.perRequest")
    ms = APPMESH_DEFAULT_TIMEOUT_MS if request_ms is None else float(request_ms)
    return duration_text(ms) if ms > 0 else None


def istio_route(holder: ConfigResource, route: dict[str, Any], inventory: Inventory,
                plan: Mapping[tuple[str, str], Destination], ledger: Ledger) -> tuple[str, dict[str, Any]] | None:
    """("http" | "tcp", the Istio route) for one App Mesh route, None when no target is addressable."""
    base, written = locate(holder, route)
    protocol = str(route.get("protocol") or "http")
    body_key = BODIES.get(protocol, "httpRoute")
    body = written.get(body_key) or {}
    ledger.used(holder, f"{base}.priority", *([f"{base}.name"] if base != "spec" else []))
    dests = destinations(route, holder, base, inventory, plan, ledger)
    if not dests:
        return None
    if protocol == "tcp":
        match = [{"port": int(body["match"]["port"])}] if (body.get("match") or {}).get("port") else []
        ledger.used(holder, f"{base}.{body_key}.match.port")
        if (body.get("timeout") or {}).get("idle"):
            ledger.untranslatable(holder, f"{base}.{body_key}.timeout.idle",
                                  "the VirtualService tcp route has no idle timeout",
                                  "DestinationRule trafficPolicy.connectionPool.tcp.idleTimeout (Istio 1.20+)")
        tcp: dict[str, Any] = {"route": dests}
        if match:
            tcp["match"] = match
        return "tcp", tcp
    http: dict[str, Any] = {"name": str(route.get("name") or "route")}
    match = http_match(body, protocol, holder, f"{base}.{body_key}", ledger)
    if match:
        http["match"] = match
    http["route"] = dests
    t = timeout(route, holder, base, ledger)
    if t is not None:
        http["timeout"] = t
    r = retries(route, holder, base, ledger)
    if r is not None:
        http["retries"] = r
    return "http", http
