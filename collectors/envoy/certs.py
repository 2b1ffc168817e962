"""Certificates a proxy holds: from its SDS secrets (``/config_dump``) or, failing that, ``/certs``.

Only certificates are read; ``private_key`` fields are never looked at (Envoy redacts them
anyway), so no key material can reach a snapshot or a bundle.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hashlib
import warnings
from collections import OrderedDict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from meshobs.model import Cert, CertRole, WorkloadRef
from meshobs.raw import parse_iso
from meshobs.shape import ITEM_ERRORS, as_list, as_map, load_json

_UNSET: Any = object()

if TYPE_CHECKING:
    # Imported where a certificate is read: a proxy whose certificates are not asked for (a
    # question about one service) never pays for cryptography (~0.03 s of CPU).
    from cryptography import x509


def _pem_text(source: Any) -> tuple[bool, str] | None:
    """A DataSource as (base64?, its text): ``inline_bytes`` (base64) or ``inline_string``;
    None if absent."""
    if not isinstance(source, dict):
        return None
    if source.get("inline_bytes"):
        return (True, source["inline_bytes"]) if isinstance(source["inline_bytes"], str) else None
    text = source.get("inline_string") or source.get("inlineString")
    return (False, text) if isinstance(text, str) and text else None


def _pem_bytes(encoded: bool, text: str) -> bytes | None:
    """The PEM bytes of a :func:`_pem_text`; None when the base64 does not decode."""
    if not encoded:
        return text.encode()
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _extensions(cert: x509.Certificate) -> tuple[Any, Any]:
    """The certificate's (BasicConstraints, SubjectAlternativeName) values, None when absent,
    in one walk over its extensions by OID (``get_extension_for_class`` tests every extension
    with an ABC ``isinstance``: a third of a leaf's reading on a big mesh)."""
    from cryptography.x509.oid import ExtensionOID

    basic = sans = None
    for ext in cert.extensions:
        oid = ext.oid
        if oid == ExtensionOID.BASIC_CONSTRAINTS:
            basic = ext.value if basic is None else basic
        elif oid == ExtensionOID.SUBJECT_ALTERNATIVE_NAME:
            sans = ext.value if sans is None else sans
    return basic, sans


def _is_ca(basic: Any) -> bool | None:
    return None if basic is None else bool(basic.ca)


def _sans(names: Any) -> tuple[str, ...]:
    """URIs, then DNS names, then IP addresses (as ``str``), each in the certificate's order."""
    from cryptography import x509

    if names is None:
        return ()
    uris: list[str] = []
    dns: list[str] = []
    ips: list[str] = []
    for name in names:
        kind = type(name)  # cryptography builds these exact classes; isinstance on them is an ABC check
        if kind is x509.UniformResourceIdentifier:
            uris.append(name.value)
        elif kind is x509.DNSName:
            dns.append(name.value)
        elif kind is x509.IPAddress:
            ips.append(str(name.value))
    return (*uris, *dns, *ips)


def role_of(cert: x509.Certificate, *, trust_anchor: bool = False, basic: Any = _UNSET) -> CertRole:
    """Root = self-signed CA, intermediate = CA signed by another, workload = leaf.

    Certificates from a ``trusted_ca`` with no basic-constraints extension (old v1 roots) are
    taken as CAs. ``basic``: the BasicConstraints already found (see :func:`_extensions`).
    """
    ca = _is_ca(_extensions(cert)[0] if basic is _UNSET else basic)
    if ca is None:
        ca = trust_anchor
    if not ca:
        return CertRole.WORKLOAD
    return CertRole.ROOT if cert.subject == cert.issuer else CertRole.INTERMEDIATE


def _name(name: x509.Name) -> str:
    return name.rfc4514_string()


def cert_from_x509(cert: x509.Certificate, *, trust_anchor: bool, proxy_id: str | None,
                   workload: WorkloadRef | None, secret_name: str | None) -> Cert:
    """The model's view of one parsed certificate (times in UTC)."""
    return _cert(cert, format(cert.serial_number, "x"), _name(cert.issuer), trust_anchor=trust_anchor,
                 proxy_id=proxy_id, workload=workload, secret_name=secret_name)


def _cert(cert: x509.Certificate, serial: str, issuer: str, *, trust_anchor: bool, proxy_id: str | None,
          workload: WorkloadRef | None, secret_name: str | None) -> Cert:
    basic, sans = _extensions(cert)
    return Cert(
        serial=serial,
        subject=_name(cert.subject),
        issuer=issuer,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        role=role_of(cert, trust_anchor=trust_anchor, basic=basic),
        sans=_sans(sans),
        proxy_id=proxy_id,
        workload=workload,
        secret_name=secret_name,
    )


def _held(read: Cert, proxy_id: str | None, workload: WorkloadRef | None, secret_name: str | None) -> Cert:
    """``read`` as one proxy holds it (``dataclasses.replace`` without its per-call field walk:
    every proxy's chain and trust bundle go through here)."""
    return Cert(read.serial, read.subject, read.issuer, read.not_before, read.not_after, read.role,
                read.sans, proxy_id, workload, secret_name)


# What one certificate reads as: (identity key, its fields without its holder, why it is
# unreadable). Reading is pure, and a mesh's proxies mostly hold the same trust bundle and
# chain root: 7,415 proxies at 5,000 services read the mesh root 14,830 times.
_Outcome = tuple[tuple[str, str] | None, Cert | None, str]


# Within a round, the readings below spare the mesh root (in every proxy's trust bundle, and
# repeated by chains) a parse per proxy: a few entries do. Across rounds (a dashboard's refresh,
# a drift loop over the same proxies), :data:`_READINGS` spares every leaf its parse.
@functools.lru_cache(maxsize=256)
def _read_pem(encoded: bool, text: str) -> tuple[x509.Certificate, ...] | None:
    """The certificates of a :func:`_pem_text` (None: no PEM in it); raises what the PEM loader
    raises. Keyed by the text as the proxy sent it: the trust bundle every proxy holds is then
    neither decoded nor parsed again."""
    from cryptography import x509

    pem = _pem_bytes(encoded, text)
    return tuple(x509.load_pem_x509_certificates(pem)) if pem else None


@functools.lru_cache(maxsize=256)
def _read_cert(c: x509.Certificate, anchor: bool) -> _Outcome:
    """One certificate as :data:`_Outcome` (certificates compare by their DER bytes: a chain
    repeating the root hits the root's entry)."""
    # Real CAs exceed X.520 length limits now and then; cryptography warns (when
    # the name is first read) but reads them fine.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        key = None
        try:
            key = (format(c.serial_number, "x"), _name(c.issuer))
            return key, _cert(c, *key, trust_anchor=anchor, proxy_id=None, workload=None, secret_name=None), ""
        except ITEM_ERRORS as exc:  # one unreadable certificate costs that certificate
            return key, None, str(exc)


# What each PEM text a proxy held reads as (its certificates' readings, in order; None: no PEM),
# least recently read first out. A proxy holds one chain of its own (its leaf) and the mesh's
# trust bundle, so a round over a mesh reads about one text per proxy: sized for a 10,000-proxy
# mesh with room for gateways holding more, and bounded, so a long-running dashboard whose
# leaves rotate evicts the old ones. Keyed by a digest of the text, and holding readings only
# (no parsed certificate, no text): the payloads can go once normalised. Measured at 5,000
# services (7,416 texts): see benchmarks/results/envoy-second-round-5000-s24.md.
CERT_READINGS = 16_384
_READINGS: OrderedDict[tuple[bytes, bool, bool], tuple[_Outcome, ...] | None] = OrderedDict()


def _readings(encoded: bool, text: str, anchor: bool) -> tuple[_Outcome, ...] | None:
    """:func:`_read_cert` of every certificate of :func:`_read_pem`, kept across rounds (raises
    what :func:`_read_pem` raises; that is not kept)."""
    key = (hashlib.blake2b(text.encode(), digest_size=16).digest(), encoded, anchor)
    found = _READINGS.get(key, _UNSET)
    if found is not _UNSET:
        with contextlib.suppress(KeyError):  # evicted meanwhile by a fetch thread normalising another proxy
            _READINGS.move_to_end(key)
        result: tuple[_Outcome, ...] | None = found
        return result
    parsed = _read_pem(encoded, text)
    result = None if parsed is None else tuple(_read_cert(c, anchor) for c in parsed)
    _READINGS[key] = result
    while len(_READINGS) > CERT_READINGS:
        try:
            _READINGS.popitem(last=False)
        except KeyError:  # emptied meanwhile by another thread
            break
    return result


def certs_from_secrets(secrets: list[dict[str, Any]], *, proxy_id: str | None,
                       workload: WorkloadRef | None) -> tuple[list[Cert], list[str]]:
    """Certs in the active/static secrets, plus a list of problems (unparseable chains)."""
    certs: list[Cert] = []
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()
    sources: list[tuple[Any, bool, Any]] = []
    for entry in secrets:
        if entry.get("state") == "warming":
            continue  # not yet in use; its absence is the signal, not its content
        secret = as_map(entry.get("secret"))
        tls = as_map(secret.get("tls_certificate") or secret.get("tlsCertificate"))
        vc = as_map(secret.get("validation_context") or secret.get("validationContext"))
        sources.append((vc.get("trusted_ca") or vc.get("trustedCa"), True, entry.get("name")))
        sources.append((tls.get("certificate_chain") or tls.get("certificateChain"), False, entry.get("name")))
    # Trust bundles first, so a root that a chain repeats is attributed to its trust bundle.
    sources.sort(key=lambda s: not s[1])
    for source, anchor, name in sources:
        text = _pem_text(source)
        if text is None:
            continue
        try:
            readings = _readings(*text, anchor)
        except ITEM_ERRORS as exc:
            problems.append(f"secret {name!r}: certificate not parseable ({exc})")
            continue
        if readings is None:
            continue
        for key, read, error in readings:
            if key is not None and key in seen:
                continue
            if key is None or read is None:
                problems.append(f"secret {name!r}: certificate not readable ({error})")
                continue
            seen.add(key)
            certs.append(_held(read, proxy_id, workload, str(name) if name is not None else None))
    return certs, problems


def _admin_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return parse_iso(text).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def certs_from_admin(text: str, *, proxy_id: str | None, workload: WorkloadRef | None) -> list[Cert]:
    """Parse ``/certs``. It names no subject or issuer, so those stay empty; ``ca_cert`` entries
    are taken as roots, the first of a ``cert_chain`` as the workload cert, the rest as
    intermediates."""
    doc = load_json(text, "certs")
    if not isinstance(doc, dict) or not isinstance(doc.get("certificates", []), list):
        raise ValueError("certs: expected an object with a 'certificates' list (/certs)")
    out: list[Cert] = []
    seen: set[str] = set()
    for group in doc.get("certificates", []):
        if not isinstance(group, dict):
            continue
        chains = [(as_list(group.get("ca_cert")), True), (as_list(group.get("cert_chain")), False)]
        for entries, is_ca in chains:
            for i, e in enumerate(entries):
                if not isinstance(e, dict):
                    continue
                before, after = _admin_time(e.get("valid_from")), _admin_time(e.get("expiration_time"))
                serial = str(e.get("serial_number", "")).lower()
                if after is None or serial in seen:
                    continue
                seen.add(serial)
                role = CertRole.ROOT if is_ca else (CertRole.WORKLOAD if i == 0 else CertRole.INTERMEDIATE)
                sans = tuple(str(v) for s in as_list(e.get("subject_alt_names")) if isinstance(s, dict)
                             for k, v in s.items() if k in ("uri", "dns", "ip_address"))
                path = e.get("path")
                out.append(Cert(serial=serial, subject="", issuer="", not_before=before or after,
                                not_after=after, role=role, sans=sans, proxy_id=proxy_id,
                                workload=workload, secret_name=str(path) if path is not None else None))
    return out
