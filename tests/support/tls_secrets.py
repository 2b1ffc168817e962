"""Kubernetes TLS Secrets holding real certificates, for the Gateway credential analyzer.

The certificates are made here (an EC key, self-signed) with the validity a case needs; the
Secret's ``tls.key`` holds a placeholder, since meshobs only checks that the key is there and
never reads it.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def certificate_pem(host: str, not_before: datetime, not_after: datetime) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def tls_secret(name: str, namespace: str, host: str = "shop.example.org",
               not_before: datetime = datetime(2025, 1, 1, tzinfo=UTC),
               not_after: datetime = datetime(2036, 1, 1, tzinfo=UTC), keys: tuple[str, ...] = ("tls.crt", "tls.key"),
               cert: bytes | None = None) -> str:
    """A ``kubernetes.io/tls`` Secret manifest (YAML) with these data keys."""
    pem = cert if cert is not None else certificate_pem(host, not_before, not_after)
    values = {"tls.crt": pem, "tls.key": b"placeholder: meshobs never reads keys", "ca.crt": pem}
    data = "".join(f"  {k}: {base64.b64encode(values.get(k, b'x')).decode()}\n" for k in keys)
    return (f"apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: {namespace}}}\n"
            f"type: kubernetes.io/tls\ndata:\n{data}")
