"""VirtualService and Gateway analyzers that need no other source than the configuration:
several VirtualServices competing for one host, rules that can never match, and Gateways that
claim the same host and port on the same gateway pods.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from meshobs.catalogue import Category
from meshobs.istio_config import GATEWAY, VIRTUAL_SERVICE, host_matches, pick_resources, service_hosts
from meshobs.model import ConfigResource, Mesh, MeshSnapshot

from .base import Finding, Settings, analyzer, finding
from .config import istio_services
from .config_routes import sidecar_virtual_services
from .inventory import touched_by
from .scope import Focus


@analyzer("config.duplicate_virtualservice", Category.CONFIG, ("VirtualService", "Service", "Workload"),
          ("MSH0206",), mesh=Mesh.ISTIO)
def duplicate_virtualservice(snapshot: MeshSnapshot, settings: Settings,
                             focus: Focus | None = None) -> Iterable[Finding]:
    """Two or more sidecar VirtualServices claim one service's host; Istio uses only one."""
    for svc in istio_services(snapshot, focus):  # its findings touch svc only
        vss = sidecar_virtual_services(snapshot, service_hosts(svc))
        if len(vss) < 2:
            continue
        names = [f"{vs.namespace}/{vs.name}" for vs in vss]
        located = {n: vs.location.at("spec.hosts") for n, vs in zip(names, vss) if vs.location}
        # The file and line are the second VirtualService's: Istio keeps the oldest, and the one
        # written later is most often the newcomer it ignores. Every location is in the evidence.
        yield finding("MSH0206", "config.duplicate_virtualservice", f"Service {svc.ref}", resource=vss[1],
                      at="spec.hosts", services=[svc.ref], count=len(vss), host=svc.fqdn,
                      virtual_services=", ".join(names),
                      evidence={"virtual_services": names,
                                "hosts": {n: list(vs.spec.get("hosts") or ()) for n, vs in zip(names, vss)},
                                **({"locations": located} if located else {})},
                      hint="merge the routes into one VirtualService per host (only gateway-bound "
                           "VirtualServices are merged by Istio); istioctl analyze reports IST0109")


def _catch_all(match: Any) -> bool:
    """Does one match entry take every request? An empty entry, or only ``uri: {prefix: /}``.
    (``sourceLabels``, ``gateways``, ``port`` ... narrow it, so they do not.)"""
    if not isinstance(match, Mapping):
        return False
    return not match or dict(match) == {"uri": {"prefix": "/"}}


def _rule_name(rule: Mapping[str, Any], index: int) -> str:
    return f"{rule['name']!s} (#{index})" if rule.get("name") else f"#{index}"


@analyzer("config.unreachable_rule", Category.CONFIG, ("VirtualService", "Service"), ("MSH0220", "MSH0221"),
          mesh=Mesh.ISTIO)
def unreachable_rule(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """A VirtualService http rule can never match: an earlier rule takes every request, or
    every one of its matches repeats an earlier rule's."""
    for vs in pick_resources(snapshot, VIRTUAL_SERVICE):
        yield from _unreachable(snapshot, vs)


def unreachable_rules(snapshot: MeshSnapshot, vs: ConfigResource) -> list[Finding]:
    """The MSH0220 findings of one VirtualService: its rules that can never match (evidence
    ``rule`` is the rule's index); shared with the check that reads their traffic."""
    return [f for f in _unreachable(snapshot, vs) if f.code == "MSH0220"]


def _unreachable(snapshot: MeshSnapshot, vs: ConfigResource) -> Iterable[Finding]:
    name = f"{vs.namespace}/{vs.name}"
    touched = touched_by(snapshot, vs)
    takes_all: int | None = None  # the first rule that takes every request
    first_with: dict[str, int] = {}  # a match, as canonical JSON -> the first rule holding it
    for i, rule in enumerate(vs.spec.get("http") or ()):
        if not isinstance(rule, Mapping):
            continue
        rule_name = _rule_name(rule, i)
        matches = list(rule.get("match") or ())
        if takes_all is not None:
            before = _rule_name(vs.spec["http"][takes_all], takes_all)
            yield finding("MSH0220", "config.unreachable_rule", resource=vs, at=f"spec.http[{i}]",
                          services=touched, rule=rule_name, virtual_service=name,
                          reason=f"rule {before} before it matches every request",
                          evidence={"rule": i, "shadowed_by": takes_all},
                          hint=f"move rule {rule_name} above rule {before}, or give rule {before} a match; "
                               "only the last rule may match everything")
            continue
        if not matches or any(_catch_all(m) for m in matches):
            takes_all = i
            continue
        repeats: list[tuple[int, int]] = []  # (match index, earlier rule)
        for j, match in enumerate(matches):
            key = json.dumps(match, sort_keys=True, default=str)
            if key in first_with:
                repeats.append((j, first_with[key]))
            else:
                first_with[key] = i
        if repeats and len(repeats) == len(matches):
            earlier = sorted({r for _j, r in repeats})
            yield finding("MSH0220", "config.unreachable_rule", resource=vs, at=f"spec.http[{i}].match",
                          services=touched, rule=rule_name, virtual_service=name,
                          reason=f"every match repeats one of rule {', '.join(f'#{r}' for r in earlier)}",
                          evidence={"rule": i, "shadowed_by": earlier},
                          hint="remove the rule or change its matches; the first rule that matches wins")
            continue
        for j, earlier_rule in repeats:
            yield finding("MSH0221", "config.unreachable_rule", resource=vs, at=f"spec.http[{i}].match[{j}]",
                          services=touched, match=f"#{j}", rule=rule_name, virtual_service=name,
                          earlier=f"#{earlier_rule}", evidence={"rule": i, "match": j, "shadowed_by": earlier_rule},
                          hint="remove the repeated match; requests it describes go to the earlier rule")


def _server_hosts(server: Mapping[str, Any]) -> list[str]:
    # "namespace/host" limits which VirtualServices may bind; the listener serves "host".
    return [str(h).split("/", 1)[-1].lower() for h in server.get("hosts") or ()]


def _overlap(a: list[str], b: list[str]) -> list[str]:
    return sorted({x for x in a for y in b if x == y or host_matches(x, y) or host_matches(y, x)})


def _selector_text(selector: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(selector.items())) or "(every gateway)"


@analyzer("config.conflicting_gateways", Category.CONFIG, ("Gateway",), ("MSH0222",), mesh=Mesh.ISTIO)
def conflicting_gateways(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """Two Gateways select the same gateway pods and claim an overlapping host on one port;
    the gateway serves only one of them (istioctl analyze's IST0145)."""
    # (selector, port) -> [(gateway, server index, hosts)]; conflicts only arise within one key.
    servers: dict[tuple[str, int], list[tuple[ConfigResource, int, list[str]]]] = defaultdict(list)
    for gw in pick_resources(snapshot, GATEWAY):
        selector = gw.spec.get("selector") or {}
        for i, server in enumerate(gw.spec.get("servers") or ()):
            port = (server.get("port") or {}).get("number") if isinstance(server, Mapping) else None
            if str(port or "").isdigit():
                servers[(_selector_text(selector), int(str(port)))].append((gw, i, _server_hosts(server)))
    for (selector, port), entries in sorted(servers.items()):
        for gw, i, hosts in entries:
            clashes = {(o.namespace, o.name): _overlap(hosts, other_hosts) for o, _j, other_hosts in entries
                       if o.key != gw.key and _overlap(hosts, other_hosts)}
            if not clashes:
                continue
            others = sorted(f"{ns}/{n}" for ns, n in clashes)
            shared = sorted({h for hs in clashes.values() for h in hs})
            yield finding("MSH0222", "config.conflicting_gateways", resource=gw, at=f"spec.servers[{i}].hosts",
                          gateway=f"{gw.namespace}/{gw.name}", others=", ".join(others), selector=selector,
                          hosts=", ".join(shared), port=port,
                          evidence={"port": port, "selector": selector, "hosts": shared, "conflicts_with": others},
                          hint="serve each host and port from one Gateway (merge the servers), or give the "
                               "Gateways different selectors or ports; istioctl analyze reports IST0145")
