"""Finding codes: configuration and drift (02xx)."""

from __future__ import annotations

from . import Code, Severity

CODES: list[Code] = [
    Code("MSH0201", Severity.ERROR, "VirtualService routes to an undefined subset",
         "VirtualService {virtual_service} routes to subset {subset} of {host}, which no DestinationRule "
         "defines; requests to it fail with 503 (NR/UH)"),
    Code("MSH0202", Severity.ERROR, "DestinationRule subset selects no pods",
         "DestinationRule {destination_rule} subset {subset} selects no pods of {service} "
         "(labels {labels}); requests routed to it fail with 503 UH"),
    Code("MSH0203", Severity.ERROR, "route weights differ between VirtualService and Envoy",
         "route {route} of VirtualService {virtual_service} weighs {live} but the Envoy proxies of "
         "{proxies} route {effective}"),
    Code("MSH0204", Severity.WARNING, "retries or timeout differ between VirtualService and Envoy",
         "{setting} of route {route} of VirtualService {virtual_service} is {live} but the Envoy "
         "proxies of {proxies} use {effective}"),
    Code("MSH0205", Severity.WARNING, "observed traffic split differs from the configured weights",
         "traffic to {service} splits {observed} while VirtualService {virtual_service} sets {configured} "
         "(chi-square p = {p_value:.2g} over {requests:.0f} requests)"),
    Code("MSH0206", Severity.WARNING, "several VirtualServices for one host",
         "{count} VirtualServices define sidecar routes for {host}: {virtual_services}; "
         "Istio applies only one of them"),
    Code("MSH0207", Severity.WARNING, "live VirtualService differs from the intended (Git) one",
         "{setting} of route {route} of VirtualService {virtual_service} is {live} in the cluster but "
         "{intended} in {origin}"),
]
