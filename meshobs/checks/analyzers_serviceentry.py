"""ServiceEntry analyzers: a TCP port declared without addresses (MSH0242, istioctl analyze's
IST0134) and ServiceEntries that disagree on the protocol of one host's port (MSH0243)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from meshobs.catalogue import Category
from meshobs.istio_config import SERVICE_ENTRY, fqdn, pick_resources
from meshobs.model import ConfigResource, Mesh, MeshSnapshot

from .analyzers_destinationrule import _overlap
from .base import Finding, Settings, analyzer, finding
from .inventory import services_of_hosts


def _ports(se: ConfigResource) -> Iterable[tuple[int, int, str]]:
    """(index, number, protocol as written, upper case) of a ServiceEntry's ports."""
    for i, p in enumerate(se.spec.get("ports") or ()):
        if isinstance(p, Mapping) and str(p.get("number") or "").isdigit():
            yield i, int(str(p["number"])), str(p.get("protocol") or "").upper()


@analyzer("config.serviceentry_addresses", Category.CONFIG, ("ServiceEntry", "Service"), ("MSH0242",), mesh=Mesh.ISTIO)
def tcp_without_addresses(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """A ServiceEntry declares a TCP port (or one without a protocol) but no addresses: sidecars
    cannot tell its connections from others by host, so they send every TCP connection to that
    port, whatever the address, to it."""
    for se in pick_resources(snapshot, SERVICE_ENTRY):
        if se.spec.get("addresses"):
            continue
        hosts = [str(h) for h in se.spec.get("hosts") or ()]
        for i, port, protocol in _ports(se):
            if protocol not in ("", "TCP"):
                continue
            yield finding("MSH0242", "config.serviceentry_addresses", resource=se, at=f"spec.ports[{i}]",
                          services=services_of_hosts(snapshot, [fqdn(h, se.namespace) for h in hosts]),
                          service_entry=f"{se.namespace}/{se.name}", port=port, hosts=", ".join(hosts),
                          evidence={"port": port, "protocol": protocol or "(none)", "hosts": hosts},
                          hint="add the host's IP addresses (addresses: [...]), or let Istio allocate them (DNS "
                               "proxying with ISTIO_META_DNS_AUTO_ALLOCATE); istioctl analyze reports IST0134")
            break  # one finding per ServiceEntry: every such port has the same cause


@analyzer("config.serviceentry_protocol", Category.CONFIG, ("ServiceEntry", "Service"), ("MSH0243",), mesh=Mesh.ISTIO)
def conflicting_protocols(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """ServiceEntries visible in one namespace declare one host's port with different protocols;
    sidecars build one listener and one cluster for it, so one declaration loses."""
    declared: dict[tuple[str, int], list[tuple[ConfigResource, int, str]]] = defaultdict(list)
    for se in pick_resources(snapshot, SERVICE_ENTRY):
        for h in se.spec.get("hosts") or ():
            for i, port, protocol in _ports(se):
                if protocol:
                    declared[(fqdn(str(h), se.namespace), port)].append((se, i, protocol))
    for (host, port), uses in sorted(declared.items()):
        for j, (se, i, protocol) in enumerate(uses):
            others = [(o, p) for o, _k, p in uses if o.key != se.key and p != protocol and _overlap(o, se)]
            if not others:
                continue
            names = sorted({f"{x.namespace}/{x.name}" for x, _p in [(se, protocol), *others]})
            protocols = sorted({protocol, *(p for _o, p in others)})
            yield finding("MSH0243", "config.serviceentry_protocol", resource=se, at=f"spec.ports[{i}].protocol",
                          services=services_of_hosts(snapshot, [host]), host=host, port=port,
                          protocols=" and ".join(protocols), service_entries=", ".join(names),
                          evidence={"protocols": protocols, "service_entries": names, "index": j},
                          hint="declare the port once, with one protocol (merge the ServiceEntries or fix the one "
                               "that is wrong)")
