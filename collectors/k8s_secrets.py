"""Kubernetes Secrets -> their public facts, never their data.

A Gateway's ``credentialName`` names a Secret, and "is it there, in the right namespace, with
the right keys, holding a certificate that has not expired" is what the analyzers ask. So a
Secret becomes a :class:`ConfigResource` of kind ``Secret`` whose spec holds only:

* ``type`` (``kubernetes.io/tls``, ``Opaque`` ...) and ``keys``: the names of its data keys;
* ``certificates``: for each key that holds a certificate Istio reads (``tls.crt``, ``ca.crt``,
  and the generic format's ``cert`` / ``cacert``), the first certificate's subject, issuer,
  SANs and validity, or the reason it could not be read.

The private key (``tls.key``, ``key``) and every other value are never copied: a certificate is
public (every TLS client is sent it), a key is not. A minimised bundle stores this same form
(``PUBLIC_FACTS``), which reads back to the same model.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from meshobs.model import ConfigResource, Layer, SourceLocation, freeze, frozen_map

# Keys holding a certificate (chain) Istio reads from a credentialName Secret.
CERTIFICATE_KEYS = ("tls.crt", "ca.crt", "cert", "cacert")
# Where a minimised Secret carries the facts in place of its data.
PUBLIC_FACTS = "meshobs.io/public-facts"


def certificate_facts(pem: bytes) -> dict[str, Any]:
    """The first certificate of a PEM chain: subject, issuer, SANs, validity (ISO 8601 UTC);
    ``{"error": why}`` when there is none or it does not parse."""
    from cryptography import x509

    try:
        text = pem.decode("ascii")
    except UnicodeDecodeError:
        return {"error": "not PEM text"}
    start = text.find("-----BEGIN CERTIFICATE-----")
    if start < 0:
        return {"error": "no PEM certificate in it"}
    end = text.find("-----END CERTIFICATE-----", start)
    if end < 0:
        return {"error": "a PEM certificate without its END line"}
    try:
        cert = x509.load_pem_x509_certificate(text[start:end + 25].encode("ascii"))
    except ValueError as exc:
        return {"error": f"not a valid certificate ({exc})"}
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = [str(v) for v in ext.get_values_for_type(x509.DNSName)]
        sans += [str(v) for v in ext.get_values_for_type(x509.UniformResourceIdentifier)]
    except x509.ExtensionNotFound:
        sans = []
    return {"subject": cert.subject.rfc4514_string(), "issuer": cert.issuer.rfc4514_string(),
            "sans": sans, "not_before": cert.not_valid_before_utc.isoformat(),
            "not_after": cert.not_valid_after_utc.isoformat(),
            "chain_length": text.count("-----BEGIN CERTIFICATE-----")}


def _value(obj: Mapping[str, Any], key: str) -> bytes | None:
    """A data value decoded (``data`` is base64, ``stringData`` plain); None when unreadable."""
    data, string_data = obj.get("data"), obj.get("stringData")
    if isinstance(string_data, Mapping) and isinstance(string_data.get(key), str):
        return str(string_data[key]).encode("utf-8")
    raw = data.get(key) if isinstance(data, Mapping) else None
    if not isinstance(raw, str):
        return None
    try:
        return base64.b64decode(raw, validate=False)
    except (binascii.Error, ValueError):
        return None


def public_facts(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What may be kept of a Secret: its type, its key names, its certificates' facts."""
    given = obj.get(PUBLIC_FACTS)
    if isinstance(given, Mapping):  # already reduced (a minimised bundle)
        return dict(given)
    keys: set[str] = set()
    for field in ("data", "stringData"):
        if isinstance(obj.get(field), Mapping):
            keys.update(str(k) for k in obj[field])
    certificates: dict[str, Any] = {}
    for key in CERTIFICATE_KEYS:
        if key in keys:
            value = _value(obj, key)
            certificates[key] = certificate_facts(value) if value is not None else {"error": "not base64"}
    return {"type": str(obj.get("type") or "Opaque"), "keys": sorted(keys), "certificates": certificates}


def secret_resource(obj: Mapping[str, Any], layer: Layer, origin: str,
                    location: SourceLocation | None = None) -> ConfigResource:
    """A Secret object -> ``ConfigResource(kind="Secret")`` holding its public facts only."""
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    assert isinstance(meta, Mapping)
    return ConfigResource(
        kind="Secret", namespace=str(meta.get("namespace") or "default"), name=str(meta.get("name", "")),
        spec=freeze(public_facts(obj)), layer=layer, api_version="v1",
        labels=frozen_map({str(k): str(v) for k, v in (meta.get("labels") or {}).items()}),
        origin=origin, location=location)
