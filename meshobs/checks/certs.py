"""Certificates and identity: expiry, SPIFFE identity, trust domain (mTLS modes in config_mtls).

The certificates of the target service are those held by the proxies of its workloads (and
any certificate attributed to one of its workloads). Time is the snapshot's, never the clock.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

from meshobs.catalogue import Category
from meshobs.model import Cert, CertRole, MeshSnapshot, ServiceRef, Workload, WorkloadRef

from .base import Finding, Settings, check, finding, memo, now_of

WORKLOAD_ERROR_FRACTION = 0.1  # a workload cert with < 10 % of its lifetime left was not rotated


def _certs(snapshot: MeshSnapshot, service: ServiceRef) -> Iterator[tuple[Workload, Cert]]:
    """(workload, cert) pairs for the service, each certificate once per workload."""
    for w in snapshot.workloads_of(service):
        for c in _workload_certs(snapshot, w.ref):
            yield w, c


def _workload_certs(snapshot: MeshSnapshot, workload: WorkloadRef) -> tuple[Cert, ...]:
    """The certificates of a workload's proxies, then those attributed to it, each once: found
    once per snapshot (three checks ask, and --all asks again for the deadlines' walk)."""
    known: dict[WorkloadRef, tuple[Cert, ...]] = memo(snapshot, "certs.of_workload", lambda _s: {})
    found = known.get(workload)
    if found is None:
        seen: set[tuple[str, str]] = set()
        certs = [c for p in snapshot.proxies_of(workload) for c in snapshot.certs_of(p.id)]
        certs += memo(snapshot, "certs.by_workload", _certs_by_workload).get(workload, [])
        kept: list[Cert] = []
        for c in certs:
            if (c.serial, c.role.value) not in seen:
                seen.add((c.serial, c.role.value))
                kept.append(c)
        found = known[workload] = tuple(kept)
    return found


def _certs_by_workload(snapshot: MeshSnapshot) -> dict[WorkloadRef, list[Cert]]:
    out: dict[WorkloadRef, list[Cert]] = defaultdict(list)
    for c in snapshot.certs:
        if c.workload is not None:
            out[c.workload].append(c)
    return dict(out)


def human(seconds: float) -> str:
    """``2h 05m``, ``12.5 days``: how people read a certificate's remaining life."""
    seconds = abs(seconds)
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} days"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h {rest // 60:02d}m"


def _subject(w: Workload, c: Cert) -> str:
    return f"Workload {w.ref}" if c.role is CertRole.WORKLOAD else f"Certificate {c.serial}"


# The proxies attribute certificates to workloads when the certificates do not name one.
@check("certs.expiry", Category.CERTS, ("certs",), ("MSH0301", "MSH0302", "MSH0303"), uses=("proxies",))
def expiry(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """A certificate of the service's proxies has expired or is close to its end.

    Roots and intermediates: error under ``root_cert_error_days``, warning under
    ``root_cert_warning_days``. Workload certificates are judged against their lifetime (24 h by
    default in Istio): error under 10 % left, warning under ``workload_cert_warning_fraction``.
    """
    now = now_of(snapshot)
    # One finding per subject (a workload, or a CA certificate): the worst certificate speaks
    # for the others (every replica of a stuck workload holds its own, equally old cert).
    worst: dict[str, tuple[int, float, Workload, Cert, list[str]]] = {}
    for w, c in _certs(snapshot, service):
        remaining = c.remaining_s(now)
        level = _level(c, remaining, settings)
        if level == 0:
            continue
        subject = _subject(w, c)
        prior = worst.get(subject)
        proxies = [*(prior[4] if prior else []), c.proxy_id or "?"]
        if prior is None or (level, -remaining) > (prior[0], -prior[1]):
            worst[subject] = (level, remaining, w, c, proxies)
        else:
            worst[subject] = (*prior[:4], proxies)
    for subject, (level, remaining, w, c, proxies) in sorted(worst.items()):
        yield _expiry_finding(subject, level, remaining, w, c, sorted(set(proxies)), service, settings)


def _limits(c: Cert, settings: Settings) -> tuple[float, float]:
    """(error seconds, warning seconds) for a certificate's role."""
    if c.role is CertRole.WORKLOAD:
        life = c.lifetime_s
        return WORKLOAD_ERROR_FRACTION * life, settings.workload_cert_warning_fraction * life
    return settings.root_cert_error_days * 86400, settings.root_cert_warning_days * 86400


def _thresholds(c: Cert, settings: Settings) -> tuple[float, float, str, str]:
    """(error seconds, warning seconds, error label, warning label) for a certificate's role."""
    if c.role is CertRole.WORKLOAD:
        labels = (f"{WORKLOAD_ERROR_FRACTION:.0%} of its lifetime",
                  f"{settings.workload_cert_warning_fraction:.0%} of its lifetime")
    else:
        labels = (f"{settings.root_cert_error_days:g} days", f"{settings.root_cert_warning_days:g} days")
    return (*_limits(c, settings), *labels)


def _level(c: Cert, remaining: float, settings: Settings) -> int:
    """3 expired, 2 error, 1 warning, 0 fine (the labels are formatted only for a finding:
    every certificate of every service is levelled, ~15k at 5,000 services)."""
    error_s, warn_s = _limits(c, settings)
    return 3 if remaining <= 0 else 2 if remaining < error_s else 1 if remaining < warn_s else 0


def _expiry_finding(subject: str, level: int, remaining: float, w: Workload, c: Cert, proxies: list[str],
                    service: ServiceRef, settings: Settings) -> Finding:
    error_s, warn_s, error_label, warn_label = _thresholds(c, settings)
    lifetime = c.lifetime_s
    evidence: dict[str, object] = {
        "serial": c.serial, "role": c.role.value, "not_before": c.not_before.isoformat(),
        "not_after": c.not_after.isoformat(), "remaining_s": round(remaining), "lifetime_s": round(lifetime),
        "remaining_fraction": round(remaining / lifetime, 3) if lifetime else 0.0, "proxies": proxies,
        "workload": str(w.ref), "identity": c.spiffe_id}
    if c.role is CertRole.WORKLOAD:
        hint = ("the workload certificate is not being rotated: check the istio-proxy (pilot-agent) logs "
                "for SDS/CSR errors and istiod's CA; restarting the pod issues a fresh certificate")
    else:
        hint = ("rotate the mesh CA (plug in new cacerts, or let istiod renew its self-signed root) before "
                "it expires, and roll the workloads so they pick up the new chain")
    common: dict[str, Any] = {"role": c.role.value, "serial": c.serial,
                                 "cert_subject": c.subject or c.spiffe_id or "no subject"}
    if level == 3:
        return finding("MSH0301", "certs.expiry", subject, service=service, evidence=evidence, hint=hint,
                       magnitude=-remaining, ago=human(remaining), **common)
    code, threshold, limit = ("MSH0302", error_label, error_s) if level == 2 else ("MSH0303", warn_label, warn_s)
    return finding(code, "certs.expiry", subject, service=service, evidence=evidence, hint=hint,
                   magnitude=limit - remaining, remaining=human(remaining), threshold=threshold, **common)


def _service_account(snapshot: MeshSnapshot, w: Workload) -> str | None:
    if w.service_account:
        return w.service_account
    accounts = {p.service_account for p in snapshot.pods_of(w.ref) if p.service_account}
    return accounts.pop() if len(accounts) == 1 else None


@check("certs.spiffe_identity", Category.CERTS, ("certs",), ("MSH0304",), uses=("proxies",))
def spiffe_identity(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """A workload certificate's SPIFFE ID names another namespace or service account."""
    for w, c in _certs(snapshot, service):
        if c.role is not CertRole.WORKLOAD or c.spiffe_id is None:
            continue
        path = c.spiffe_id[len("spiffe://"):].split("/", 1)[1] if "/" in c.spiffe_id[len("spiffe://"):] else ""
        parts = path.split("/")
        ns = parts[1] if len(parts) >= 4 and parts[0] == "ns" else None
        sa = parts[3] if len(parts) >= 4 and parts[2] == "sa" else None
        want_sa = _service_account(snapshot, w)
        if ns == w.namespace and (want_sa is None or sa == want_sa):
            continue
        expected = f"spiffe://{c.trust_domain}/ns/{w.namespace}/sa/{want_sa or '<service account>'}"
        yield finding("MSH0304", "certs.spiffe_identity", f"Workload {w.ref}", service=service,
                      workload=str(w.ref), identity=c.spiffe_id, expected=expected,
                      evidence={"identity": c.spiffe_id, "expected": expected, "serial": c.serial,
                                "proxy": c.proxy_id, "service_account": want_sa},
                      hint="the proxy presents a certificate issued for another identity: check the pod's "
                           "serviceAccountName, and for a custom CA (cert-manager, SPIRE) the SAN it issues")


def _trust_domains(snapshot: MeshSnapshot) -> Counter[str]:
    """Trust domain -> how many proxies present a workload certificate from it."""
    per_proxy: dict[str, str] = {}
    for c in snapshot.certs:
        if c.role is CertRole.WORKLOAD and c.trust_domain and c.proxy_id:
            per_proxy.setdefault(c.proxy_id, c.trust_domain)
    return Counter(per_proxy.values())


@check("certs.trust_domain", Category.CERTS, ("certs",), ("MSH0305",))
def trust_domain(snapshot: MeshSnapshot, service: ServiceRef, settings: Settings) -> Iterable[Finding]:
    """The service's proxies use a trust domain the rest of the mesh does not."""
    domains = memo(snapshot, "certs.trust_domains", _trust_domains)
    if len(domains) < 2:
        return
    (mesh_domain, peers), *_ = sorted(domains.items(), key=lambda kv: (-kv[1], kv[0]))
    flagged: set[str] = set()
    for w, c in _certs(snapshot, service):
        td = c.trust_domain
        if c.role is not CertRole.WORKLOAD or td is None or td == mesh_domain or str(w.ref) in flagged:
            continue
        flagged.add(str(w.ref))
        yield finding("MSH0305", "certs.trust_domain", f"Workload {w.ref}", service=service, workload=str(w.ref),
                      trust_domain=td, peers=peers, mesh_trust_domain=mesh_domain,
                      evidence={"trust_domain": td, "mesh_trust_domain": mesh_domain,
                                "proxies_per_trust_domain": dict(domains), "identity": c.spiffe_id},
                      hint="peers reject identities from a foreign trust domain: align meshConfig.trustDomain "
                           "(or add trustDomainAliases) and the CA that signs this workload")


import meshobs.checks.config_mtls  # noqa: E402,F401  (registers the mTLS-mode checks)
