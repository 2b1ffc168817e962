"""Telemetry and EnvoyFilter analyzers: several Telemetries without selector in one namespace
(MSH0245), Telemetries whose selectors pick the same pods (MSH0246), EnvoyFilter patches placed
relative to a filter that is not reliably there (MSH0247) and operations that do not do what
they say for their ``applyTo`` (MSH0248).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from meshobs.catalogue import Category
from meshobs.istio_config import pick_resources
from meshobs.model import ConfigResource, Mesh, MeshSnapshot

from .base import Finding, Settings, analyzer, finding
from .inventory import selects
from .scope import Focus

TELEMETRY = "Telemetry"
ENVOY_FILTER = "EnvoyFilter"


def _name(r: ConfigResource) -> str:
    return f"{r.namespace}/{r.name}"


def _selector(r: ConfigResource) -> dict[str, str] | None:
    sel = r.spec.get("selector")
    labels = sel.get("matchLabels") if isinstance(sel, Mapping) else None
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) and labels else None


def _targets(r: ConfigResource) -> bool:
    return bool(r.spec.get("targetRef") or r.spec.get("targetRefs"))


@analyzer("config.telemetry_conflict", Category.CONFIG, ("Telemetry", "Workload", "Pod"), ("MSH0245", "MSH0246"),
          mesh=Mesh.ISTIO)
def telemetry_conflict(snapshot: MeshSnapshot, settings: Settings, focus: Focus | None = None) -> Iterable[Finding]:
    """Telemetry resources compete: several without selector in one namespace, or several whose
    selectors pick the same pods; Istio applies one and ignores the rest (IST0160 / IST0159)."""
    if focus is not None:
        # Its findings are about Telemetry resources and touch no service: a question about one
        # service reads them only for a resource a symptom names, from the whole run.
        return
    by_namespace: dict[str, list[ConfigResource]] = defaultdict(list)
    selected: dict[str, list[ConfigResource]] = defaultdict(list)
    for t in pick_resources(snapshot, TELEMETRY):
        if _targets(t):
            continue  # attached to a Gateway or Service by targetRefs: another scope
        (selected if _selector(t) else by_namespace)[t.namespace].append(t)
    for namespace, ts in sorted(by_namespace.items()):
        if len(ts) < 2:
            continue
        names = [_name(t) for t in ts]
        for t in ts[1:]:
            yield finding("MSH0245", "config.telemetry_conflict", resource=t, at="spec", telemetries=", ".join(names),
                          namespace=namespace, evidence={"telemetries": names},
                          hint="merge them into one Telemetry without selector per namespace (the root namespace "
                               "one applies mesh-wide); istioctl analyze reports IST0160")
    workloads = [(w.namespace, str(w.ref), dict(w.labels)) for w in snapshot.workloads if w.labels]
    named = {(ns, ref) for ns, ref, _l in workloads}
    workloads += [(p.namespace, f"{p.namespace}/{p.name}", dict(p.labels)) for p in snapshot.pods
                  if p.workload is None or (p.namespace, str(p.workload)) not in named]
    clashes: dict[tuple[tuple[str, str, str], ...], list[str]] = defaultdict(list)
    for namespace, ref, labels in workloads:
        matching = [t for t in selected.get(namespace, ()) if selects(_selector(t) or {}, labels)]
        if len(matching) > 1:
            clashes[tuple(t.key for t in matching)].append(ref)
    index = {t.key: t for ts in selected.values() for t in ts}
    for keys, refs in sorted(clashes.items()):
        ts = [index[k] for k in keys]
        names = [_name(t) for t in ts]
        yield finding("MSH0246", "config.telemetry_conflict", resource=ts[-1], at="spec.selector",
                      telemetries=", ".join(names), workload=", ".join(sorted(refs)[:3])
                      + (f" and {len(refs) - 3} more" if len(refs) > 3 else ""),
                      evidence={"telemetries": names, "workloads": sorted(refs)},
                      hint="give the Telemetries disjoint selectors, or merge them; istioctl analyze reports IST0159")


# -- EnvoyFilter ---------------------------------------------------------------------------------------
# Filters Istio puts in every chain of their kind, in every release: anchors that are always there.
ALWAYS_PRESENT = frozenset({"envoy.filters.http.router", "envoy.filters.network.http_connection_manager",
                            "envoy.filters.network.tcp_proxy"})
# Envoy's deprecated filter names, which Istio still matches against the current ones.
LEGACY_NAMES = {"envoy.router": "envoy.filters.http.router",
                "envoy.http_connection_manager": "envoy.filters.network.http_connection_manager",
                "envoy.tcp_proxy": "envoy.filters.network.tcp_proxy"}
RELATIVE = ("INSERT_BEFORE", "INSERT_AFTER")
FILTER_TARGETS = ("HTTP_FILTER", "NETWORK_FILTER")
ROUTE_TARGETS = ("ROUTE_CONFIGURATION", "HTTP_ROUTE")


def _anchor(patch: Mapping[str, Any]) -> str | None:
    """The filter a patch is placed relative to: the matched sub-filter (HTTP_FILTER) or filter."""
    flt = _dig(patch, "match", "listener", "filterChain", "filter")
    if patch.get("applyTo") == "HTTP_FILTER":
        flt = _dig(flt, "subFilter")
    return LEGACY_NAMES.get(str(flt["name"]), str(flt["name"])) if flt.get("name") else None


def _dig(node: Mapping[str, Any], *keys: str) -> Mapping[str, Any]:
    for key in keys:
        child = node.get(key)
        node = child if isinstance(child, Mapping) else {}
    return node


def _patches(ef: ConfigResource) -> Iterable[tuple[int, Mapping[str, Any], str, str]]:
    for i, patch in enumerate(ef.spec.get("configPatches") or ()):
        if isinstance(patch, Mapping) and isinstance(patch.get("patch"), Mapping):
            yield i, patch, str(patch.get("applyTo") or ""), str(patch["patch"].get("operation") or "").upper()


def _added_filters(filters: list[ConfigResource]) -> dict[str, list[tuple[ConfigResource, int]]]:
    """Filter name -> (EnvoyFilter, priority) of the patches that add it."""
    out: dict[str, list[tuple[ConfigResource, int]]] = defaultdict(list)
    for ef in filters:
        for _i, patch, apply_to, op in _patches(ef):
            value = patch["patch"].get("value")
            if apply_to in FILTER_TARGETS and op in ("ADD", "INSERT_BEFORE", "INSERT_AFTER", "INSERT_FIRST") \
                    and isinstance(value, Mapping) and value.get("name"):
                out[str(value["name"])].append((ef, int(ef.spec.get("priority") or 0)))
    return out


@analyzer("config.envoyfilter", Category.CONFIG, ("EnvoyFilter",), ("MSH0247", "MSH0248"), mesh=Mesh.ISTIO)
def envoyfilter_fragile(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """An EnvoyFilter patch is placed before or after a filter that is not reliably in the chain,
    or uses an operation its ``applyTo`` ignores or rejects (IST0151-IST0154)."""
    filters = pick_resources(snapshot, ENVOY_FILTER)
    added = _added_filters(filters)
    for ef in filters:
        priority = int(ef.spec.get("priority") or 0)
        for i, patch, apply_to, op in _patches(ef):
            at = f"spec.configPatches[{i}].patch.operation"
            common: dict[str, Any] = {"envoy_filter": _name(ef), "patch": f"#{i}", "operation": op}
            misuse = _misuse(apply_to, op, _anchor(patch))
            if misuse is not None:
                yield finding("MSH0248", "config.envoyfilter", resource=ef, at=at, apply_to=apply_to or "(none)",
                              reason=misuse, evidence={"apply_to": apply_to, "operation": op}, **common,
                              hint="see the EnvoyFilter Patch.Operation reference for what each operation does "
                                   "where; istioctl analyze reports IST0152-IST0154")
                continue
            anchor = _anchor(patch)
            if op not in RELATIVE or apply_to not in FILTER_TARGETS or anchor is None or anchor in ALWAYS_PRESENT:
                continue
            adders = [(other, p) for other, p in added.get(anchor, ()) if other.key != ef.key]
            if adders and all(p < priority for _o, p in adders):
                continue  # added by EnvoyFilters applied before this one: a defined order
            reason = (f"which EnvoyFilter {', '.join(_name(o) for o, _p in adders)} adds at the same or a later "
                      "priority (applied in creation order)" if adders else
                      "a filter Istio adds only in some configurations or releases, or not at all")
            yield finding("MSH0247", "config.envoyfilter", resource=ef, at=at, anchor=anchor, reason=reason,
                          evidence={"anchor": anchor, "priority": priority,
                                    "added_by": [_name(o) for o, _p in adders]}, **common,
                          hint="anchor on a filter that is always there (envoy.filters.http.router, "
                               "envoy.filters.network.http_connection_manager), or give this EnvoyFilter a higher "
                               "priority than the one adding the anchor; istioctl analyze reports IST0151")


def _misuse(apply_to: str, op: str, anchor: str | None) -> str | None:
    if op == "REPLACE" and apply_to not in FILTER_TARGETS:
        return "REPLACE is only valid for HTTP_FILTER and NETWORK_FILTER; Istio ignores it"
    if op in ("ADD", "REMOVE") and apply_to in ROUTE_TARGETS:
        return f"{op} is ignored for ROUTE_CONFIGURATION and HTTP_ROUTE"
    if op == "INSERT_AFTER" and apply_to == "HTTP_FILTER" and anchor in (None, "envoy.filters.http.router"):
        return ("puts the filter after envoy.filters.http.router, which must end the chain: Envoy rejects the "
                "listener" if anchor else "without a subFilter appends the filter after envoy.filters.http.router, "
                "which must end the chain: Envoy rejects the listener")
    return None
