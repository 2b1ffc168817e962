"""RequestAuthentication: where its signing keys come from, and whether the proxy can see a JWT.

istiod fetches every ``jwksUri`` (and, without one, the issuer's OpenID discovery document) from
inside the cluster network, on behalf of whoever may create a RequestAuthentication in any
namespace. So a JWKS location is judged as a fetch istiod makes (MSH0256):

* not HTTPS: the keys (and so every token they verify) can be swapped on the way;
* an IP address (loopback, link-local such as a cloud metadata endpoint, private, or any literal
  address no certificate names), ``localhost`` or a name without a domain: not an identity
  provider but something inside the cluster or the node istiod should never be made to call;
* an in-cluster Service (``*.svc``, ``*.svc.cluster.local``) that does not exist, where the
  input holds that namespace's Services: the fetch fails, istiod serves a key that verifies
  nothing, and every token is refused (401).

An HTTPS URL on a domain name (Google's, Auth0's, a company's own IdP) is what identity
providers publish, and is not flagged: which public host is "the right one" is not something
configuration can tell.

MSH0258 (IST0119): the JWT is read from HTTP requests only, so a RequestAuthentication on a
workload whose Service declares a port as TCP, TLS or another non-HTTP protocol validates
nothing there.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from meshobs.catalogue import Category
from meshobs.istio_config import pick_resources
from meshobs.model import ConfigResource, Mesh, MeshSnapshot

from .analyzers_ports import declared_protocol, is_http
from .base import Finding, Settings, analyzer, finding
from .dataplane import NAMESPACE, NONE, is_gateway_of, selected, services_of
from .inventory import declared_service, service_of_host, vouches_for_services
from .meshconfig import root_namespace
from .policy_scope import REQUEST_AUTHENTICATION as REQUEST_AUTHN
from .policy_scope import selector_of


def jwks_locations(ra: ConfigResource) -> Iterable[tuple[int, str, str, str]]:
    """(rule index, issuer, URL istiod fetches, field path) per JWT rule: the jwksUri, else the
    issuer's discovery document when the issuer is a URL; inline ``jwks`` fetch nothing."""
    for i, rule in enumerate(ra.spec.get("jwtRules") or ()):
        if not isinstance(rule, Mapping) or rule.get("jwks"):
            continue
        issuer = str(rule.get("issuer") or "")
        if rule.get("jwksUri"):
            yield i, issuer, str(rule["jwksUri"]), f"spec.jwtRules[{i}].jwksUri"
        elif "://" in issuer:
            yield i, issuer, issuer.rstrip("/") + "/.well-known/openid-configuration", f"spec.jwtRules[{i}].issuer"


def _in_cluster(host: str) -> tuple[str, str] | None:
    """(namespace, FQDN) of a Service name (``name.ns.svc`` or ``name.ns.svc.cluster.local``)."""
    fq = host + ".cluster.local" if host.endswith(".svc") else host
    named = service_of_host(fq)
    return (named.namespace, fq) if named is not None else None


def jwks_problem(snapshot: MeshSnapshot, url: str) -> tuple[str, dict[str, Any]] | None:
    """Why istiod should not fetch ``url`` (with evidence), or None."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return "is not a valid URL: istiod cannot fetch it and every token is refused (401)", {"url": url}
    if not host:
        return "names no host: istiod cannot fetch it and every token is refused (401)", {"url": url}
    if parts.scheme.lower() != "https":
        return (f"is fetched over {parts.scheme or 'no scheme'}, not HTTPS: whoever sits between istiod and {host} can "
                "hand it other keys and mint tokens this policy accepts", {"scheme": parts.scheme, "host": host})
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        kind = ("a loopback" if address.is_loopback else "a link-local (cloud metadata)" if address.is_link_local
                else "a private" if address.is_private else "an")
        return (f"names {kind} address, {host}: istiod fetches it from inside the cluster network, so the policy "
                "points istiod at that address rather than at an identity provider (no certificate names a bare "
                "address either)", {"host": host, "address": kind.split(" ")[-1] if kind != "an" else "public"})
    if host == "localhost" or host.endswith(".localhost") or "." not in host:
        return (f"names {host}, which resolves inside istiod's own pod or namespace, not at an identity provider",
                {"host": host})
    local = _in_cluster(host)
    if local is not None and vouches_for_services(snapshot, local[0]) and declared_service(snapshot, local[1]) is None:
        return (f"names in-cluster Service {local[1]}, which does not exist: istiod cannot fetch the keys and every "
                "token is refused (401)", {"host": host})
    return None


@analyzer("config.request_authentication", Category.CONFIG,
          (REQUEST_AUTHN, NAMESPACE, "Gateway", "Service", "Workload", "Pod", "MeshConfig"), ("MSH0256", "MSH0258"),
          mesh=Mesh.ISTIO)
def request_authentication(snapshot: MeshSnapshot, settings: Settings) -> Iterable[Finding]:
    """A RequestAuthentication has istiod fetch keys from a URL it should not (not HTTPS, an
    internal address, a Service that does not exist), or applies to a workload whose Service
    port is not HTTP, where no JWT is read (IST0119)."""
    root = root_namespace(snapshot)
    for ra in pick_resources(snapshot, REQUEST_AUTHN):
        target = None if ra.namespace == root and selector_of(ra) is None \
            else selected(snapshot, ra.namespace, selector_of(ra))
        touched = services_of(target or [])
        for _i, issuer, url, path in jwks_locations(ra):
            found = jwks_problem(snapshot, url)
            if found is None:
                continue
            problem, evidence = found
            yield finding("MSH0256", "config.request_authentication", resource=ra, at=path, services=touched,
                          request_authentication=f"{ra.namespace}/{ra.name}", issuer=issuer or "(none)", uri=url,
                          problem=problem, evidence={"uri": url, **evidence},
                          hint="use the identity provider's HTTPS JWKS URL (its OpenID configuration lists it as "
                               "jwks_uri), or inline the keys with jwks")
        for m in target or []:
            if m.mode == NONE or is_gateway_of(snapshot, m.labels):
                continue  # no proxy; or a gateway, whose protocols its Gateway servers set
            for sref in m.services:
                svc = snapshot.service(sref)
                for i, port in enumerate(svc.port_specs if svc is not None else ()):
                    if is_http(port) is not False:
                        continue
                    assert svc is not None
                    yield finding("MSH0258", "config.request_authentication", resource=ra,
                                  at="spec.selector" if selector_of(ra) else "spec", services=[sref],
                                  request_authentication=f"{ra.namespace}/{ra.name}",
                                  workload=m.subject.split(" ", 1)[1], port=port.port, service_name=str(sref),
                                  port_name=f"{declared_protocol(port)}: {port.name or port.app_protocol}",
                                  evidence={"port": port.port, "name": port.name, "app_protocol": port.app_protocol,
                                            "service_port_line": svc.location.at(f"spec.ports[{i}]")
                                            if svc.location else None},
                                  hint="if the port carries HTTP, name it http-... (or set appProtocol: http); "
                                       "istioctl analyze reports IST0119")
