"""The scenario library: realistic meshes, each with a known fault (or known to be healthy but
noisy), written with :mod:`meshobs.demo.author`, one module per family.

Every scenario carries ``cause`` (in words) and ``expect`` (the machine-readable conclusion a good
diagnosis reaches); docs/scenarios.md describes each for the engineers writing checks.
"""

from __future__ import annotations

from collections.abc import Callable

from ..scenario import Scenario
from . import (
    analyzers,
    appmesh_names,
    authn,
    chains,
    changes,
    checkin,
    clearing,
    controlplane,
    enrolment,
    failures,
    healthy,
    ingress,
    labresults,
    ledger,
    nack,
    nodata,
    parcels,
    retries,
)

# name -> factory, in the order `meshobs demo list` shows them (faults, then healthy meshes).
LIBRARY: dict[str, Callable[[], Scenario]] = {
    "retries-mask-ledger": retries.retries_mask_ledger,
    "fault-injection-elsewhere": failures.fault_injection_elsewhere,
    "authz-deny-legacy": failures.authz_deny_legacy,
    "jwt-missing-token": authn.jwt_missing_token,
    "jwt-wrong-issuer": authn.jwt_wrong_issuer,
    "sidecar-egress-blackhole": failures.sidecar_egress_blackhole,
    "registry-only-egress": failures.registry_only_egress,
    "envoyfilter-nack": nack.envoyfilter_nack,
    "deep-chain-timeout": chains.deep_chain_timeout,
    "loud-fault-and-cert": chains.loud_fault_and_cert,
    "gateway-binding-404": ingress.gateway_binding_404,
    "istiod-not-ready": controlplane.istiod_not_ready,
    "proxy-unacked": controlplane.proxy_unacked,
    "dr-change-onset": changes.dr_change_onset,
    "appmesh-controller-names": appmesh_names.appmesh_controller_names,
    "empty-window": nodata.empty_window,
    "clearing-grpc-unavailable": clearing.clearing_grpc_unavailable,
    "parcels-eta-no-route": parcels.parcels_eta_no_route,
    "parcels-engine-disconnects": parcels.parcels_engine_disconnects,
    "checkin-pending-overflow": checkin.checkin_pending_overflow,
    "enrolment-rate-limited": enrolment.enrolment_rate_limited,
    "subset-without-pods": analyzers.subset_without_pods,
    "authz-unknown-principal": analyzers.authz_unknown_principal,
    "canary-within-slo": healthy.canary_within_slo,
    "mirror-shadow": healthy.mirror_shadow,
    "chaos-fault-injection": healthy.chaos_fault_injection,
    "ambient-namespace": healthy.ambient_namespace,
    "old-restart": healthy.old_restart,
    "batch-spiky-p99": healthy.batch_spiky_p99,
    "background-errors": healthy.background_errors,
    "cert-rotation": healthy.cert_rotation,
    "passthrough-egress": healthy.passthrough_egress,
    "jwt-valid-tokens": authn.jwt_valid_tokens,
    "scoped-push-replicas": controlplane.scoped_push_replicas,
    "clearing-grpc-noisy": clearing.clearing_grpc_noisy,
    "parcels-noisy": parcels.parcels_noisy,
    "checkin-noisy": checkin.checkin_noisy,
    "ledger-day": ledger.ledger_day,
    "ledger-night": ledger.ledger_night,
    "labresults-noisy": labresults.labresults_noisy,
}


def library_scenario(name: str) -> Scenario:
    """A library scenario by name (``KeyError`` for an unknown name)."""
    scenario = LIBRARY[name]()
    if scenario.name != name:
        raise AssertionError(f"library entry {name} builds a scenario named {scenario.name}")
    return scenario
