"""Finding codes: certificates and identity (03xx)."""

from __future__ import annotations

from . import Code, Severity

CODES: list[Code] = [
    Code("MSH0301", Severity.ERROR, "certificate expired",
         "{role} certificate {serial} ({cert_subject}) expired {ago} ago"),
    Code("MSH0302", Severity.ERROR, "certificate about to expire",
         "{role} certificate {serial} ({cert_subject}) expires in {remaining} (below {threshold})"),
    Code("MSH0303", Severity.WARNING, "certificate expiring",
         "{role} certificate {serial} ({cert_subject}) expires in {remaining} (below {threshold})"),
    Code("MSH0304", Severity.ERROR, "SPIFFE identity does not match the workload",
         "the certificate of {workload} carries identity {identity}, expected {expected}"),
    Code("MSH0305", Severity.ERROR, "trust domain differs from the rest of the mesh",
         "{workload} uses trust domain {trust_domain} while {peers} proxies use {mesh_trust_domain}"),
    Code("MSH0306", Severity.ERROR, "client DestinationRule disables mTLS towards a STRICT service",
         "DestinationRule {destination_rule} sets tls.mode {tls_mode} for {host} while "
         "PeerAuthentication {peer_authentication} requires STRICT mTLS; calls fail with 503 UC",
         signature=("UC", "URX")),
    Code("MSH0307", Severity.ERROR, "plaintext traffic where STRICT mTLS applies",
         "{source} sends {rate:.2f} req/s in plaintext to {service} although "
         "PeerAuthentication {peer_authentication} requires STRICT mTLS"),
]
