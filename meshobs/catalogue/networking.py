"""Finding codes of the networking analyzers (MSH0226-MSH0249): schema, VirtualService,
DestinationRule, Gateway, ServiceEntry, deprecations, Telemetry and EnvoyFilter.

Kept apart from ``config.py`` (the other 02xx codes) so the networking and the security
analyzers (MSH0250 upward) add their codes without touching one list.
"""

from __future__ import annotations

from . import Code, Severity

CODES: list[Code] = [
    # schema (istioctl analyze IST0106 / IST0133)
    Code("MSH0226", Severity.ERROR, "Istio resource fails schema validation",
         "{kind} {name}: {path}: {problem}; the API server or Istio's webhook rejects it"),
    Code("MSH0227", Severity.WARNING, "Istio resource has a questionable value",
         "{kind} {name}: {path}: {problem}"),
    # VirtualService
    Code("MSH0228", Severity.ERROR, "VirtualService delegates to a VirtualService that cannot be a delegate",
         "VirtualService {virtual_service} delegates to {delegate}, which {reason}; the delegated routes are "
         "not applied"),
    Code("MSH0229", Severity.WARNING, "destination needs a port: the host has several",
         "VirtualService {virtual_service} routes to {host} without a port, and {host} has ports {ports}; "
         "{consequence}"),
    Code("MSH0230", Severity.ERROR, "destination port not on the host",
         "VirtualService {virtual_service} routes to port {port} of {host}, which has ports {ports}; "
         "requests to it fail (503 NR)", signature=("NR", "NC")),
    Code("MSH0231", Severity.WARNING, "VirtualService host not served by its Gateway",
         "VirtualService {virtual_service} binds host {host} to Gateway {gateway}, whose servers accept "
         "{gateway_hosts}; the gateway never routes it"),
    Code("MSH0232", Severity.WARNING, "VirtualServices on one gateway compete for a host",
         "VirtualServices {virtual_services} bind {host} to gateway {gateway} and each has a rule taking every "
         "request; Istio merges them in creation order, so which one answers is not defined by the configuration"),
    Code("MSH0233", Severity.WARNING, "routing on JWT claims without a RequestAuthentication",
         "VirtualService {virtual_service} matches JWT claim {claim} on gateway {gateway}, but no "
         "RequestAuthentication applies to its pods; the claim is never set and the rule never matches"),
    # DestinationRule
    Code("MSH0234", Severity.WARNING, "DestinationRule host matches no service",
         "DestinationRule {destination_rule} is for {host}, but no Service or ServiceEntry visible from "
         "namespace {namespace} has that host; it applies to nothing"),
    Code("MSH0235", Severity.WARNING, "TLS origination without server certificate verification",
         "DestinationRule {destination_rule} originates {mode} TLS to {host}{where} {reason}"),
    Code("MSH0236", Severity.WARNING, "DestinationRules for one host conflict",
         "DestinationRules {destination_rules} are all for {host} (namespace {namespace}) and both set {what}; "
         "Istio merges them keeping the oldest one's, so the other is ignored"),
    # Gateway
    Code("MSH0237", Severity.ERROR, "Gateway selects no gateway pods",
         "Gateway {gateway} selects gateway pods labelled {selector}, but no pod carries these labels; "
         "its servers listen nowhere"),
    Code("MSH0238", Severity.ERROR, "Gateway port not exposed by the gateway's Service",
         "Gateway {gateway} listens on port {port}, but no Service port of the gateway pods ({selector}) "
         "targets it (they target {service_ports}); clients cannot reach it"),
    Code("MSH0239", Severity.ERROR, "Gateway TLS credential unusable",
         "Gateway {gateway} server {server} uses credentialName {credential}, which {problem}; "
         "TLS handshakes on it fail"),
    Code("MSH0240", Severity.WARNING, "Gateways share a certificate",
         "Gateways {gateways} select the same gateway pods and serve the same certificate ({credential}); "
         "HTTP/2 clients reuse one connection across their hosts and get 404s"),
    Code("MSH0241", Severity.ERROR, "Gateway API route attaches to no parent",
         "{kind} {route} names parent {parent}, which {reason}; the route is not attached there",
         signature=("NR",)),
    # ServiceEntry
    Code("MSH0242", Severity.WARNING, "TCP ServiceEntry without addresses",
         "ServiceEntry {service_entry} declares TCP port {port} for {hosts} without addresses; sidecars send "
         "every TCP connection to port {port} of any address to it"),
    Code("MSH0243", Severity.ERROR, "ServiceEntries disagree on a port's protocol",
         "{host} port {port} is {protocols} in {service_entries}; sidecars build one listener for it, so "
         "one of them is applied wrongly"),
    # deprecations (IST0002 / IST0135)
    # Deprecated still works (istioctl reports IST0002 / IST0135 as Info); removed does nothing.
    Code("MSH0244", Severity.INFO, "deprecated Istio field or annotation",
         "{name}: {what} is {status}; {replacement}"),
    Code("MSH0249", Severity.WARNING, "removed Istio kind or annotation: nothing reads it",
         "{name}: {what} is {status}; {replacement}"),
    # Telemetry (IST0160 / IST0159)
    Code("MSH0245", Severity.WARNING, "several Telemetry resources without selector in one namespace",
         "Telemetries {telemetries} in namespace {namespace} have no selector; Istio applies one of them to "
         "the whole namespace and ignores the others"),
    Code("MSH0246", Severity.WARNING, "Telemetry selectors overlap",
         "Telemetries {telemetries} both select pods of {workload}; Istio applies one of them to those pods and "
         "ignores the others"),
    # EnvoyFilter (IST0151-IST0155)
    Code("MSH0247", Severity.WARNING, "EnvoyFilter relative patch without a reliable anchor",
         "EnvoyFilter {envoy_filter} patch {patch} does {operation} relative to {anchor}, {reason}; the patch "
         "can land in a different place or nowhere"),
    Code("MSH0248", Severity.WARNING, "EnvoyFilter operation that does not do what it says",
         "EnvoyFilter {envoy_filter} patch {patch}: {operation} on {apply_to} {reason}"),
]
