"""Real X.509 certificates for the demo mesh: an Istio-style root CA and SPIFFE workload certs.

Keys come from ``ec.derive_private_key`` on a seed and signatures are RFC 6979 deterministic,
so regenerating a demo gives byte-identical certificates.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def derived_key(seed: str) -> ec.EllipticCurvePrivateKey:
    """A P-256 key determined by ``seed``."""
    value = int.from_bytes(hashlib.sha256(seed.encode()).digest(), "big") % (_P256_ORDER - 1) + 1
    return ec.derive_private_key(value, ec.SECP256R1())


def _serial(seed: str) -> int:
    return int.from_bytes(hashlib.sha256(b"serial:" + seed.encode()).digest()[:16], "big") >> 1


@dataclass(frozen=True)
class IssuedCert:
    """A certificate with its PEM text."""

    cert: x509.Certificate
    pem: str

    @property
    def serial_hex(self) -> str:
        return format(self.cert.serial_number, "x")


def _issue(builder: x509.CertificateBuilder, key: ec.EllipticCurvePrivateKey) -> IssuedCert:
    cert = builder.sign(key, hashes.SHA256(), ecdsa_deterministic=True)
    return IssuedCert(cert, cert.public_bytes(serialization.Encoding.PEM).decode())


def root_ca(trust_domain: str, not_before: datetime, years: int = 10) -> tuple[IssuedCert, ec.EllipticCurvePrivateKey]:
    """Istiod's self-signed root (``O=<trust domain>``), valid ``years`` from ``not_before``."""
    key = derived_key(f"root:{trust_domain}")
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, trust_domain)])
    builder = (x509.CertificateBuilder()
               .subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(_serial(f"root:{trust_domain}"))
               .not_valid_before(not_before).not_valid_after(not_before + timedelta(days=365 * years))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False,
                                            key_agreement=False, key_cert_sign=True, crl_sign=True,
                                            encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    return _issue(builder, key), key


def workload_cert(spiffe_id: str, not_before: datetime, lifetime: timedelta,
                  root: IssuedCert, root_key: ec.EllipticCurvePrivateKey, seed: str) -> IssuedCert:
    """A workload certificate as istiod issues it: empty subject, SPIFFE URI SAN, mTLS usages."""
    key = derived_key(f"workload:{seed}")
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([])).issuer_name(root.cert.subject)
               .public_key(key.public_key()).serial_number(_serial(f"workload:{seed}"))
               .not_valid_before(not_before).not_valid_after(not_before + lifetime)
               .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe_id)]),
                              critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                            key_encipherment=True, data_encipherment=False,
                                            key_agreement=False, key_cert_sign=False, crl_sign=False,
                                            encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                     ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
                              critical=False))
    return _issue(builder, key)
