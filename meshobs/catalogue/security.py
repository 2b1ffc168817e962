"""Finding codes of the security analyzers (MSH0250-MSH0258): Sidecar resources, the ambient
data plane, AuthorizationPolicy, PeerAuthentication and RequestAuthentication; and MSH0259, the
traffic check that confirms an unreachable VirtualService rule (its number was free here).

Kept apart from ``config.py`` and ``networking.py`` (the other 02xx codes) so each group of
analyzers adds its codes without touching another's list.
"""

from __future__ import annotations

from . import Code, Severity

CODES: list[Code] = [
    # Sidecar (istioctl analyze IST0111 / IST0110)
    Code("MSH0250", Severity.ERROR, "several Sidecars without workload selector in one namespace",
         "Sidecars {sidecars} in namespace {namespace} have no workloadSelector; Istio applies one of them to "
         "the namespace's proxies and ignores the others"),
    Code("MSH0251", Severity.ERROR, "Sidecar selectors overlap",
         "Sidecars {sidecars} both select the pods of {workload}; Istio applies one of them to those proxies "
         "and ignores the others"),
    # the ambient data plane (IST0167)
    Code("MSH0252", Severity.WARNING, "resource has no effect on ambient pods",
         "{kind} {name} does nothing for the ambient pods of namespace {namespace}: {reason}"),
    Code("MSH0253", Severity.ERROR, "ztunnel enforces an AuthorizationPolicy with HTTP rules",
         "AuthorizationPolicy {policy} ({action}) applies to ambient pods of {namespace} through ztunnel but "
         "matches on {attributes}, which ztunnel cannot read; it enforces the rule as DENY and refuses the "
         "connections it matches"),
    # AuthorizationPolicy references (IST0101) and identities
    Code("MSH0254", Severity.ERROR, "AuthorizationPolicy names a namespace that does not exist",
         "AuthorizationPolicy {policy} ({action}) names namespace {namespace} in {field}, which does not exist; "
         "{consequence}", signature=("403",)),
    Code("MSH0255", Severity.WARNING, "AuthorizationPolicy names a service account no workload runs as",
         "AuthorizationPolicy {policy} ({action}) names principal {principal}, but no workload in namespace "
         "{namespace} runs as service account {service_account} (they run as {accounts}); {consequence}",
         signature=("403",)),
    Code("MSH0256", Severity.ERROR, "RequestAuthentication fetches its keys from where it should not",
         "RequestAuthentication {request_authentication} (issuer {issuer}) has jwksUri {uri}: {problem}",
         signature=("401",)),
    Code("MSH0257", Severity.WARNING, "AuthorizationPolicy matches peer identities where mTLS is not enforced",
         "AuthorizationPolicy {policy} ({action}) matches on {attributes}, which only mutual TLS carries, but "
         "PeerAuthentication {peer_authentication} leaves {selected} {mode}: {consequence}",
         signature=("403",)),
    # the traffic a rule that can never match does not get (reads what config.unreachable_rule finds)
    Code("MSH0259", Severity.INFO, "only an unreachable rule routes to a subset, and it gets no traffic",
         "subset {subset} of {host} received none of the {requests:.0f} requests to the service: only rule {rule} of "
         "VirtualService {virtual_service} routes there, and that rule can never match", symptom="routing"),
    Code("MSH0258", Severity.WARNING, "RequestAuthentication on a port Istio does not read as HTTP",
         "RequestAuthentication {request_authentication} applies to {workload}, but port {port} of Service "
         "{service_name} ({port_name}) is not HTTP to Istio, so no JWT is validated on it"),
]
