"""One canonical form per mesh resource, so that only differences in meaning remain.

A resource read from Git, from the Kubernetes API or from an App Mesh export says the same
thing in many spellings: ``reviews`` and ``reviews.default.svc.cluster.local``; ``10s`` and
``10000ms``; a single destination with or without ``weight: 100``; subsets in any order; an
absent ``retries`` block and Istio's default retry policy. :func:`canonical` maps all of those
to one value, so :mod:`meshobs.drift.compare` can diff plainly.

Rules, and where they come from:

* **Server-managed data is not compared.** ``status``, ``metadata.managedFields``,
  ``resourceVersion``, ``uid``, ``generation``, ``creationTimestamp`` and the
  ``kubectl.kubernetes.io/last-applied-configuration`` annotation are dropped (the collectors
  already keep only spec, labels and annotations; this module drops them again in case a
  ``status`` slips into a spec, as App Mesh exports do).
* **proto3 zero values equal absence** for Istio resources (they are protobuf messages:
  ``false``, ``0``, ``""``, ``{}`` and ``[]`` are indistinguishable from an unset field).
* **Defaults are filled** (Istio ``pilot/pkg/networking/core/route/retry/retry.go`` and the
  ``networking.istio.io`` API reference):

  - a route with one destination and no weight sends it 100%; weights are relative, so they are
    compared as percentages of their sum (``9/1`` equals ``90/10``);
  - no ``retries`` block means Istio's default policy, ``attempts: 2`` with ``retryOn:
    connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes``; a block with
    ``attempts: 0`` (or no attempts) disables retries; a block without ``retryOn`` uses the same
    default conditions; retryOn is a set (order of the conditions means nothing);
  - no ``timeout`` (or ``0s``) means no timeout: both are written ``None``;
  - durations are seconds (``1.5s``, ``1500ms`` -> ``1.5``);
  - short hosts are qualified with the resource's namespace (``reviews`` in ``default`` is
    ``reviews.default.svc.cluster.local``), as Istio resolves them.
  - App Mesh CRDs: ``awsName`` defaults to ``NAME_NAMESPACE`` (``Mesh``: ``NAME``), as the
    appmesh-controller's defaulting webhook sets it; ``meshRef.uid`` is server data.
* **Order is ignored where it means nothing** (``hosts``, ``gateways``, ``exportTo``, match
  conditions of one route (they are ORed), the destinations of one route, subsets (by name),
  App Mesh routes (by name: App Mesh orders them by ``priority``, not by position), listeners
  (by port), weighted targets (by virtual node), AuthorizationPolicy rules) and **respected where
  it matters** (the ``http``/``tcp``/``tls`` routes of a VirtualService are evaluated in order).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from meshobs.durations import parse_duration
from meshobs.model import ConfigResource, Mesh, thaw

DOMAIN_SUFFIX = "svc.cluster.local"
ISTIO_DEFAULT_RETRY_ATTEMPTS = 2
ISTIO_DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
SERVER_METADATA = ("status", "managedFields", "resourceVersion", "uid", "generation",
                   "creationTimestamp", "selfLink")
SERVER_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)
# Spec fields a server or webhook fills in on admission: compared only when the intended side
# says something about them (the webhook derives them from the namespace).
SERVER_FILLED = {("appmesh", "meshRef")}


class Keyed(dict[str, Any]):
    """A list whose order means nothing, re-keyed by identity (paths show ``[key]``)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True, order=True)
class ResourceId:
    """Which resource: mesh, kind, namespace and name (Istio and App Mesh share kind names)."""

    mesh: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}"

    @classmethod
    def of(cls, resource: ConfigResource) -> ResourceId:
        mesh = resource.mesh.value if isinstance(resource.mesh, Mesh) else str(resource.mesh)
        return cls(mesh, resource.kind, resource.namespace, resource.name)


def fqdn(host: str, namespace: str) -> str:
    """Istio's short-name resolution: a host without a dot lives in the resource's namespace."""
    if not host or "." in host or host == "*":
        return host
    return f"{host}.{namespace}.{DOMAIN_SUFFIX}"


def seconds(value: Any) -> float | None:
    """A protobuf or Go duration in seconds; ``None`` for absent or zero (no timeout)."""
    if value in (None, "", 0):
        return None
    try:
        out = parse_duration(value)
    except ValueError:
        return value  # type: ignore[no-any-return]  # keep unparsable text: it still compares
    return out or None


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def prune(value: Any) -> Any:
    """Drop proto3 zero values (``None``, ``""``, ``False``, ``0``, empty maps and lists)."""
    if isinstance(value, Mapping):
        out = type(value)() if isinstance(value, Keyed) else {}
        for k, v in value.items():
            p = prune(v)
            if not _zero(p):
                out[k] = p
        return out
    if isinstance(value, list):
        return [prune(v) for v in value]
    return value


def _pruned(value: Mapping[str, Any]) -> dict[str, Any]:
    out = prune(value)
    return out if isinstance(out, dict) else {}


def _zero(value: Any) -> bool:
    if isinstance(value, bool):
        return value is False
    return value is None or value == "" or value == 0 or (isinstance(value, (dict, list)) and not value)


def _set(values: Any) -> list[Any]:
    """A list whose order means nothing, sorted (deduplicated) by canonical JSON."""
    if not isinstance(values, list):
        return values  # type: ignore[no-any-return]
    return sorted({canonical_json(v): v for v in values}.values(), key=canonical_json)


def _keyed(values: Any, key: Callable[[Any], str]) -> Any:
    if not isinstance(values, list):
        return values
    return Keyed({key(v): v for v in values})


def _percentages(weights: list[Any]) -> list[float | int]:
    """Relative weights as percentages of their sum (one destination without weight = 100)."""
    if len(weights) == 1 and not weights[0]:
        return [100]
    nums = [float(w or 0) for w in weights]
    total = sum(nums)
    if total <= 0:
        return [0 for _ in nums]
    return [_num(n * 100.0 / total) for n in nums]


def _num(x: float) -> float | int:
    r = round(x, 2)
    return int(r) if r == int(r) else r


# -- Istio ------------------------------------------------------------------------------------

def istio_retries(raw: Any) -> dict[str, Any]:
    """The retry policy a route ends up with (Istio's defaults when the block is absent)."""
    if raw is None:
        return {"attempts": ISTIO_DEFAULT_RETRY_ATTEMPTS, "retryOn": _retry_on(None)}
    if not isinstance(raw, Mapping):
        return {"value": raw}
    attempts = int(raw.get("attempts") or 0)
    if attempts <= 0:
        return {"attempts": 0}
    out: dict[str, Any] = {"attempts": attempts, "retryOn": _retry_on(raw.get("retryOn"))}
    per_try = seconds(raw.get("perTryTimeout"))
    if per_try is not None:
        out["perTryTimeout"] = per_try
    for k, v in raw.items():
        if k not in ("attempts", "retryOn", "perTryTimeout") and not _zero(prune(v)):
            out[k] = prune(v)
    return out


def _retry_on(value: Any) -> str:
    text = str(value) if value else ISTIO_DEFAULT_RETRY_ON
    return ",".join(sorted({t.strip() for t in text.split(",") if t.strip()}))


def _destination(dest: Any, namespace: str) -> tuple[str, dict[str, Any]]:
    d = dict(dest.get("destination") or {}) if isinstance(dest, Mapping) else {}
    host = fqdn(str(d.get("host", "")), namespace)
    subset = str(d.get("subset") or "")
    port = (d.get("port") or {}).get("number") if isinstance(d.get("port"), Mapping) else None
    key = "|".join([host, subset, *([str(port)] if port else [])])
    rest = {k: v for k, v in dest.items() if k not in ("destination", "weight")} if isinstance(dest, Mapping) else {}
    return key, prune(rest)


def _http_route(route: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    """An L4 route plus retries (Istio's defaults filled), timeout, and mirror/delegate hosts."""
    out = _l4_route(route, namespace, handled=("retries", "timeout"))
    out["retries"] = istio_retries(route.get("retries"))
    timeout = seconds(route.get("timeout"))
    if timeout is not None:
        out["timeout"] = timeout
    for key in ("mirror", "delegate"):
        if isinstance(out.get(key), dict) and "host" in out[key]:
            out[key] = {**out[key], "host": fqdn(str(out[key]["host"]), namespace)}
    return out


def _l4_route(route: Mapping[str, Any], namespace: str, handled: tuple[str, ...] = ()) -> dict[str, Any]:
    """A route's destinations (weights as percentages, keyed by host/subset) and match set;
    ``handled`` names further fields the caller normalises itself."""
    out: dict[str, Any] = prune({k: v for k, v in route.items() if k not in ("route", "match", *handled)})
    dests = [d for d in route.get("route") or [] if isinstance(d, Mapping)]
    weights = _percentages([d.get("weight") for d in dests])
    table = Keyed()
    for dest, weight in zip(dests, weights):
        key, rest = _destination(dest, namespace)
        table[key] = {"weight": weight, **rest}
    if table:
        out["route"] = table
    if route.get("match"):
        out["match"] = _set(prune(list(route["match"])))
    return out


def _virtual_service(spec: dict[str, Any], ns: str) -> dict[str, Any]:
    out = _pruned({k: v for k, v in spec.items() if k not in ("http", "tcp", "tls")})
    if "hosts" in out:
        out["hosts"] = sorted({fqdn(str(h), ns) for h in out["hosts"]})
    for key in ("gateways", "exportTo"):
        if key in out:
            out[key] = sorted(set(map(str, out[key])))
    if out.get("gateways") == ["mesh"]:
        del out["gateways"]  # no gateways means the sidecars ("mesh"): the same binding
    if spec.get("http"):
        out["http"] = [_http_route(r, ns) for r in spec["http"] if isinstance(r, Mapping)]
    for key in ("tcp", "tls"):
        if spec.get(key):
            out[key] = [_l4_route(r, ns) for r in spec[key] if isinstance(r, Mapping)]
    return out


def _rule_host(pruned: Any, ns: str) -> str:
    """A DestinationRule's ``host`` as its canonical form writes it (``pruned``: the value kept)."""
    return fqdn(str(pruned), ns)


def destination_rule_host(resource: ConfigResource) -> str | None:
    """``canonical(resource)["spec"].get("host")`` of an Istio DestinationRule, without
    canonicalising the rest of it: the drift of a few proxies reads the rules of the hosts
    they hold only, out of thousands (a live ``diagnose SERVICE`` at 5,000 services)."""
    spec = resource.spec
    if not spec or not isinstance(spec, Mapping) or "host" not in spec:
        return None
    kept = prune(thaw(spec["host"]))
    return None if _zero(kept) else _rule_host(kept, resource.namespace)


def _traffic_policy(policy: Any) -> Any:
    if not isinstance(policy, Mapping):
        return policy
    out = dict(policy)
    if "portLevelSettings" in out:
        out["portLevelSettings"] = _keyed(
            out["portLevelSettings"], lambda p: str((p.get("port") or {}).get("number", "")))
    return out


def _destination_rule(spec: dict[str, Any], ns: str) -> dict[str, Any]:
    out = _pruned(spec)
    if "host" in out:
        out["host"] = _rule_host(out["host"], ns)
    if "exportTo" in out:
        out["exportTo"] = sorted(set(map(str, out["exportTo"])))
    if "trafficPolicy" in out:
        out["trafficPolicy"] = _traffic_policy(out["trafficPolicy"])
    if "subsets" in out:
        subsets = _keyed(out["subsets"], lambda s: str(s.get("name", "")))
        out["subsets"] = Keyed({name: {k: (_traffic_policy(v) if k == "trafficPolicy" else v)
                                       for k, v in s.items() if k != "name"}
                                for name, s in subsets.items()})
    return out


def _service_entry(spec: dict[str, Any], ns: str) -> dict[str, Any]:
    out = _pruned(spec)
    for key in ("hosts", "addresses", "exportTo", "subjectAltNames"):
        if key in out:
            out[key] = sorted(set(map(str, out[key])))
    if "ports" in out:
        out["ports"] = _keyed(out["ports"], lambda p: str(p.get("number", "")))
    if "endpoints" in out:
        out["endpoints"] = _set(out["endpoints"])
    return out


def _unordered(*keys: str) -> Callable[[dict[str, Any], str], dict[str, Any]]:
    def normalise(spec: dict[str, Any], _ns: str) -> dict[str, Any]:
        out = _pruned(spec)
        for key in keys:
            if key in out:
                out[key] = _set(out[key])
        return out
    return normalise


def _sidecar(spec: dict[str, Any], _ns: str) -> dict[str, Any]:
    out = _pruned(spec)
    if "egress" in out:
        out["egress"] = _set([{**e, "hosts": sorted(e.get("hosts") or [])} for e in out["egress"]])
    return out


# -- App Mesh (appmesh.k8s.aws CRDs) ------------------------------------------------------------

def _node_ref(target: Mapping[str, Any]) -> str:
    ref = target.get("virtualNodeRef") or {}
    if isinstance(ref, Mapping) and ref.get("name"):
        return str(ref["name"]) + (f".{ref['namespace']}" if ref.get("namespace") else "")
    return str(target.get("virtualNodeARN") or target.get("virtualNode") or "")


def _appmesh_route(route: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(route)
    out.pop("name", None)
    for kind in ("httpRoute", "http2Route", "grpcRoute", "tcpRoute"):
        body = out.get(kind)
        if not isinstance(body, Mapping):
            continue
        body = dict(body)
        action = dict(body.get("action") or {})
        targets = [t for t in action.get("weightedTargets") or [] if isinstance(t, Mapping)]
        if targets:
            weights = _percentages([t.get("weight") for t in targets])
            action["weightedTargets"] = Keyed(
                {_node_ref(t): {**{k: v for k, v in t.items()
                                   if k not in ("virtualNodeRef", "virtualNodeARN", "virtualNode")},
                                "weight": w}
                 for t, w in zip(targets, weights)})
            body["action"] = action
        for tkey in ("timeout",):
            if isinstance(body.get(tkey), Mapping):
                body[tkey] = {k: (_appmesh_duration(v) if isinstance(v, Mapping) else v)
                              for k, v in body[tkey].items()}
        if isinstance(body.get("retryPolicy"), Mapping):
            policy = dict(body["retryPolicy"])
            for k in ("httpRetryEvents", "tcpRetryEvents", "grpcRetryEvents"):
                if isinstance(policy.get(k), list):
                    policy[k] = sorted(policy[k])
            if isinstance(policy.get("perRetryTimeout"), Mapping):
                policy["perRetryTimeout"] = _appmesh_duration(policy["perRetryTimeout"])
            body["retryPolicy"] = policy
        out[kind] = body
    return out


def _appmesh_duration(value: Mapping[str, Any]) -> Any:
    """``{unit: ms, value: 1500}`` -> seconds."""
    unit, amount = str(value.get("unit", "")), value.get("value")
    if isinstance(amount, (int, float)) and unit in ("ms", "s"):
        return _num(amount / 1000.0 if unit == "ms" else float(amount))
    return dict(value)


def _appmesh(kind: str, spec: dict[str, Any], ns: str, name: str) -> dict[str, Any]:
    # "meshobs" is the common layout the App Mesh collector derives from the spec, not config.
    out = {k: v for k, v in spec.items() if k not in ("status", "meshobs")}
    out.setdefault("awsName", name if kind == "Mesh" or not ns else f"{name}_{ns}")
    if isinstance(out.get("meshRef"), Mapping):
        out["meshRef"] = {k: v for k, v in out["meshRef"].items() if k != "uid"}
    if "routes" in out:
        out["routes"] = _keyed(out["routes"], lambda r: str(r.get("name", "")))
        out["routes"] = Keyed({k: _appmesh_route(r) for k, r in out["routes"].items()})
    if "listeners" in out:
        out["listeners"] = _keyed(out["listeners"], lambda lst: str(
            (lst.get("portMapping") or {}).get("port", "")))
    for key in ("backends", "gatewayRoutes"):
        if key in out:
            out[key] = _set(out[key])
    return _pruned(out)


ISTIO_KINDS: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {
    "VirtualService": _virtual_service,
    "DestinationRule": _destination_rule,
    "ServiceEntry": _service_entry,
    "Gateway": _unordered("servers"),
    "AuthorizationPolicy": _unordered("rules"),
    "Sidecar": _sidecar,
}


def canonical(resource: ConfigResource) -> dict[str, Any]:
    """The comparable form of a resource: ``{"spec", "labels", "annotations"}`` (plain data)."""
    spec = thaw(resource.spec) if resource.spec else {}
    if not isinstance(spec, dict):
        spec = {"value": spec}
    for key in SERVER_METADATA:
        spec.pop(key, None)
    mesh = resource.mesh.value if isinstance(resource.mesh, Mesh) else str(resource.mesh)
    if mesh == "appmesh":
        body = _appmesh(resource.kind, spec, resource.namespace, resource.name)
    else:
        normalise = ISTIO_KINDS.get(resource.kind)
        body = normalise(spec, resource.namespace) if normalise else prune(spec)
    annotations = {k: v for k, v in dict(resource.annotations).items() if k not in SERVER_ANNOTATIONS}
    return {"spec": body, "labels": dict(resource.labels), "annotations": annotations}
