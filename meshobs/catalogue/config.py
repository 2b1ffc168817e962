"""Finding codes: configuration and drift (02xx)."""

from __future__ import annotations

from . import Code, Severity

CODES: list[Code] = [
    Code("MSH0201", Severity.ERROR, "VirtualService routes to an undefined subset",
         "VirtualService {virtual_service} routes to subset {subset} of {host}, which no DestinationRule "
         "defines; requests to it fail with 503 (NR/UH)", effects=("errors", "routing"), signature=("NC", "NR", "UH")),
    Code("MSH0202", Severity.ERROR, "DestinationRule subset selects no pods",
         "DestinationRule {destination_rule} subset {subset} selects no pods of {service} "
         "(labels {labels}); requests routed to it fail with 503 UH", effects=("errors", "routing"),
         signature=("UH",)),
    # Drift: the same codes in `diagnose` and `drift` (meshobs.drift.codes maps each difference
    # to one). Effective: the mesh configuration vs what the callers' Envoy proxies hold.
    Code("MSH0203", Severity.ERROR, "routes differ between the mesh configuration and Envoy",
         "{field} of {object} is {expected} in the {reference} configuration but {effective} in the Envoy "
         "proxies of {proxies}", symptom="config", effects=("errors", "routing")),
    Code("MSH0204", Severity.WARNING, "retries or timeout differ between the mesh configuration and Envoy",
         "{field} of {object} is {expected} in the {reference} configuration but {effective} in the Envoy "
         "proxies of {proxies}", symptom="config"),
    Code("MSH0205", Severity.WARNING, "observed traffic split differs from the configured weights",
         "traffic to {service} splits {observed} while VirtualService {virtual_service} sets {configured} "
         "(chi-square p = {p_value:.2g} over {requests:.0f} requests)", symptom="routing",
         follows_from="config"),
    Code("MSH0206", Severity.WARNING, "several VirtualServices for one host",
         "{count} VirtualServices define sidecar routes for {host}: {virtual_services}; "
         "Istio applies only one of them"),
    Code("MSH0207", Severity.WARNING, "live resource differs from the intended (Git) one",
         "{field} of {object} is {live} in the cluster but {intended} in {origin}"),
    Code("MSH0208", Severity.WARNING, "observed traffic split differs from the App Mesh route weights",
         "traffic to {service} splits {observed} while route {route} of VirtualRouter {virtual_router} "
         "sets {configured} (chi-square p = {p_value:.2g} over {requests:.0f} requests)", symptom="routing"),
    Code("MSH0209", Severity.ERROR, "virtual node calls a virtual service it does not declare as a backend",
         "VirtualNode {virtual_node} calls {destination} ({rps:.3g} req/s) but does not list it in its "
         "backends; App Mesh's Envoy has no route for it (404 / NR, or traffic leaves the mesh)"),
    Code("MSH0210", Severity.ERROR, "client TLS policy and listener TLS disagree",
         "VirtualNode {client} {client_tls} when calling {service}, but the listener of {server} "
         "{listener_tls}; the connections fail"),
    Code("MSH0211", Severity.WARNING, "no health check on a failing service's listener",
         "{service} fails {ratio_pct}% of its requests and the listener of VirtualNode {virtual_node} has no "
         "health check: App Mesh keeps sending to endpoints that do not answer"),
    Code("MSH0212", Severity.INFO, "no outlier detection on a failing service's listener",
         "{service} fails {ratio_pct}% of its requests and the listener of VirtualNode {virtual_node} has no "
         "outlier detection: callers keep sending to the endpoints that fail"),
    # Analyzers of single resources and references between them (istioctl analyze's classes).
    Code("MSH0220", Severity.WARNING, "VirtualService rule can never match",
         "rule {rule} of VirtualService {virtual_service} is never used: {reason}", effects=("routing",)),
    Code("MSH0221", Severity.INFO, "VirtualService match repeats an earlier one",
         "match {match} of rule {rule} in VirtualService {virtual_service} repeats a match of rule {earlier}, "
         "which takes those requests first"),
    Code("MSH0222", Severity.ERROR, "Gateways claim the same host and port",
         "Gateway {gateway} and {others} select the same gateway pods ({selector}) and both claim {hosts} on "
         "port {port}; the gateway applies only one of them"),
    Code("MSH0223", Severity.ERROR, "VirtualService destination host not found",
         "VirtualService {virtual_service} {verb} {host}, but no Service or ServiceEntry visible from namespace "
         "{namespace} defines that host; requests to it fail", signature=("NR", "NC")),
    Code("MSH0224", Severity.ERROR, "VirtualService names a Gateway that does not exist",
         "VirtualService {virtual_service} binds to gateway {gateway}, but there is no Gateway {gateway_ref}; "
         "its routes are not applied there", signature=("NR",)),
    Code("MSH0225", Severity.WARNING, "workload selector matches no pod",
         "{kind} {name} selects pods labelled {selector}, but no pod in namespace {namespace} carries "
         "these labels; it applies to nothing"),
    Code("MSH0280", Severity.ERROR, "DestinationRule subsets differ from the proxies' clusters",
         "{field} of {object} is {expected} in the {reference} configuration but {effective} in the Envoy "
         "proxies of {proxies}"),
    Code("MSH0281", Severity.ERROR, "TLS differs between the DestinationRule and Envoy",
         "{field} of {object} is {expected} in the {reference} configuration but {effective} in the Envoy "
         "proxies of {proxies}"),
    # Intended (Git) vs live (the cluster).
    Code("MSH0283", Severity.ERROR, "live resource routes or secures traffic differently from Git",
         "{field} of {object} is {live} in the cluster but {intended} in {origin}"),
    Code("MSH0284", Severity.ERROR, "resource in Git is missing from the cluster",
         "{object} is in {origin} but not in the cluster"),
    Code("MSH0285", Severity.WARNING, "resource in the cluster is not in Git",
         "{object} is in the cluster but not in {origin}"),
    # What changed: a dated change of a mesh resource right before a symptom started. The change
    # reaches the symptom through the callers' proxies: a push they have not acknowledged or
    # rejected explains it (the change did not land as written), so it follows from delivery.
    Code("MSH0290", Severity.WARNING, "configuration changed just before a symptom started",
         "{changed_object} was {what} at {changed_at}, {lead} before {signal} on {service} started "
         "({started_at}; {level})", effects=("errors", "latency"), follows_from="config"),
]
