"""Certificate and identity checks: expiry, SPIFFE identity, trust domain, mTLS modes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from meshobs.checks.base import Settings
from meshobs.istio_config import destination_rule_for, peer_auth_mode
from meshobs.model import Cert, CertRole, MeshSnapshot, Security, ServiceRef
from tests.support.e2_builders import (
    NS,
    TIME,
    dr,
    edge,
    healthy_config,
    healthy_edges,
    pa,
    pairs,
    resource,
    root_cert,
    run,
    snapshot,
    svc,
    wl,
    workload_cert,
)

CART, DB = svc("cart-service"), svc("database-service")


def real_cert(spiffe: str, not_before: datetime, not_after: datetime, proxy: str, workload: str) -> Cert:
    """Issue a real X.509 workload certificate and read it back the way a collector would."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cluster.local")])
    pem = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(name).public_key(key.public_key())
           .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
           .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe)]), critical=True)
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    parsed = x509.load_pem_x509_certificate(pem)
    sans = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return Cert(serial=format(parsed.serial_number, "x"), subject=parsed.subject.rfc4514_string(),
                issuer=parsed.issuer.rfc4514_string(), not_before=parsed.not_valid_before_utc,
                not_after=parsed.not_valid_after_utc, role=CertRole.WORKLOAD,
                sans=tuple(sans.get_values_for_type(x509.UniformResourceIdentifier)), proxy_id=proxy,
                workload=wl(workload))


def fresh_certs() -> list[Cert]:
    return [workload_cert(w) for w in ("frontend-v1", "product-v1", "product-v2", "cart-v1", "database-v1")] + [
        root_cert(3000)]


def certs_with(*replace: Cert) -> list[Cert]:
    names = {c.workload for c in replace}
    return [c for c in fresh_certs() if c.workload not in names or c.role is not CertRole.WORKLOAD] + list(replace)


def mtls_config(client_tls: str = "DISABLE", pa_mode: str = "STRICT") -> list:  # type: ignore[type-arg]
    return [*healthy_config(),
            pa("database-service", pa_mode, selector={"app": "database-service"}),
            dr("database-service-from-cart", "database-service", tls=client_tls,
               workloadSelector={"matchLabels": {"app": "cart-service"}})]


def mtls_edges() -> list:  # type: ignore[type-arg]
    return [e for e in healthy_edges() if e.source != wl("cart-v1")] + [
        edge("cart-v1", "database-v1", 12.0, Security.PLAINTEXT, (("503", "UC", 1.0),))]


CASES: list[tuple[str, Callable[[], MeshSnapshot], ServiceRef, set[tuple[str, str]]]] = [
    ("fresh certificates", lambda: snapshot(certs=fresh_certs()), CART, set()),
    ("workload cert 2 h of 24 h left", lambda: snapshot(certs=certs_with(workload_cert("cart-v1", 22))),
     CART, {("MSH0302", "Workload shop/cart-v1")}),
    ("workload cert 4 h of 24 h left", lambda: snapshot(certs=certs_with(workload_cert("cart-v1", 20))),
     CART, {("MSH0303", "Workload shop/cart-v1")}),
    ("workload cert expired", lambda: snapshot(certs=certs_with(workload_cert("cart-v1", 25))),
     CART, {("MSH0301", "Workload shop/cart-v1")}),
    ("the expiring cert belongs to another service", lambda: snapshot(
        certs=certs_with(workload_cert("cart-v1", 22))), DB, set()),
    ("real X.509 cert, 1 h of 24 h left", lambda: snapshot(certs=certs_with(real_cert(
        f"spiffe://cluster.local/ns/{NS}/sa/cart-service", TIME - timedelta(hours=23), TIME + timedelta(hours=1),
        f"cart-v1-0.{NS}", "cart-v1"))), CART, {("MSH0302", "Workload shop/cart-v1")}),
    ("root with 5 days left", lambda: snapshot(certs=[*fresh_certs(), root_cert(5, "root-2")]),
     CART, {("MSH0302", "Certificate root-2")}),
    ("root with 20 days left", lambda: snapshot(certs=[*fresh_certs(), root_cert(20, "root-2")]),
     CART, {("MSH0303", "Certificate root-2")}),
    ("SPIFFE id names another service account", lambda: snapshot(certs=certs_with(workload_cert(
        "cart-v1", spiffe=f"spiffe://cluster.local/ns/{NS}/sa/default"))),
     CART, {("MSH0304", "Workload shop/cart-v1")}),
    ("SPIFFE id names another namespace", lambda: snapshot(certs=certs_with(workload_cert(
        "cart-v1", spiffe="spiffe://cluster.local/ns/other/sa/cart-service"))),
     CART, {("MSH0304", "Workload shop/cart-v1")}),
    ("foreign trust domain", lambda: snapshot(certs=certs_with(workload_cert(
        "cart-v1", spiffe=f"spiffe://corp.example/ns/{NS}/sa/cart-service"))),
     CART, {("MSH0305", "Workload shop/cart-v1")}),
    ("STRICT server, client DR DISABLE, plaintext edge", lambda: snapshot(config=mtls_config(), edges=mtls_edges()),
     DB, {("MSH0306", "DestinationRule shop/database-service-from-cart"),
          ("MSH0307", "Edge shop/cart-v1 -> shop/database-service")}),
    ("STRICT server, client DR SIMPLE", lambda: snapshot(config=mtls_config("SIMPLE")),
     DB, {("MSH0306", "DestinationRule shop/database-service-from-cart")}),
    ("STRICT server, client DR ISTIO_MUTUAL", lambda: snapshot(config=mtls_config("ISTIO_MUTUAL")), DB, set()),
    ("PERMISSIVE server: plaintext and DISABLE are allowed", lambda: snapshot(
        config=mtls_config(pa_mode="PERMISSIVE"), edges=mtls_edges()), DB, set()),
    ("mesh-wide STRICT, namespace-wide DISABLE DestinationRule", lambda: snapshot(config=[
        *healthy_config()[:2], pa("default", "STRICT", namespace="istio-system"),
        dr("no-mtls", "*.shop.svc.cluster.local", tls="DISABLE")]),
     DB, {("MSH0306", "DestinationRule shop/no-mtls")}),
    ("port-level STRICT on the service port", lambda: snapshot(config=[
        *healthy_config()[:2], pa("db-port", "PERMISSIVE", selector={"app": "database-service"},
                                  port_level={8080: "STRICT"}),
        dr("db-simple", "database-service", tls="SIMPLE")]),
     DB, {("MSH0306", "DestinationRule shop/db-simple")}),
    ("port-level STRICT on another port", lambda: snapshot(config=[
        *healthy_config()[:2], pa("db-port", "PERMISSIVE", selector={"app": "database-service"},
                                  port_level={9090: "STRICT"}),
        dr("db-simple", "database-service", tls="SIMPLE")]), DB, set()),
    ("a DestinationRule in a namespace without clients does not apply", lambda: snapshot(config=[
        *mtls_config("ISTIO_MUTUAL"), dr("db-simple", "database-service", tls="SIMPLE", namespace="elsewhere")]),
     DB, set()),
]


@pytest.mark.parametrize(("name", "build", "target", "expected"), CASES, ids=[c[0] for c in CASES])
def test_certs_grid(name: str, build: Callable[[], MeshSnapshot], target: ServiceRef,
                    expected: set[tuple[str, str]]) -> None:
    assert pairs(run(build(), target, prefixes=("certs.",))) == expected


def test_expiry_evidence_and_one_finding_per_workload() -> None:
    two_replicas = [workload_cert("cart-v1", 22, serial="a"),
                    workload_cert("cart-v1", 23, serial="b")]
    snap = snapshot(certs=certs_with(*two_replicas))
    [f] = run(snap, CART, prefixes=("certs.expiry",))
    assert f.code == "MSH0302" and f.evidence["serial"] == "b"  # the worse replica
    assert f.evidence["remaining_s"] == 3600 and f.evidence["lifetime_s"] == 86400


def test_thresholds_come_from_settings() -> None:
    snap = snapshot(certs=[*fresh_certs(), root_cert(20, "root-2")])
    lenient = Settings(root_cert_error_days=1, root_cert_warning_days=10)
    assert run(snap, CART, prefixes=("certs.expiry",), settings=lenient) == []
    strict = Settings(root_cert_error_days=60, root_cert_warning_days=90)
    assert pairs(run(snap, CART, prefixes=("certs.expiry",), settings=strict)) == {("MSH0302", "Certificate root-2")}


def _corpus_resources(corpus: Path, name: str) -> list:  # type: ignore[type-arg]
    return [resource(d) for d in yaml.safe_load_all((corpus / "istio-config" / name).read_text()) if d]


def test_peer_auth_scope_resolution_on_kiali_corpus(corpus: Path) -> None:
    pas = [r for r in _corpus_resources(corpus, "kiali/peer-auth-drs.yaml") if r.kind == "PeerAuthentication"]
    mode, src = peer_auth_mode(pas, "bookinfo", {"app": "details"})
    assert (mode, src.name if src else None) == ("PERMISSIVE", "permissive-namespace-mtls")  # selector wins
    mode, src = peer_auth_mode(pas, "istio-system", {"app": "grafana"})
    assert (mode, src.name if src else None) == ("PERMISSIVE", "permissive-mesh-mtls")
    only_mesh = [p for p in pas if p.name == "strict-mesh-mtls"]
    assert peer_auth_mode(only_mesh, "bookinfo", {"app": "reviews"})[0] == "STRICT"  # inherited from the mesh
    assert peer_auth_mode([], "bookinfo", {})[0] == "PERMISSIVE"  # Istio's default


def test_unset_workload_mode_inherits_namespace_and_port_level_overrides() -> None:
    pas = [resource(pa("ns", "STRICT")),
           resource(pa("wl", "UNSET", selector={"app": "db"}, port_level={9000: "DISABLE"}))]
    assert peer_auth_mode(pas, NS, {"app": "db"})[0] == "STRICT"
    assert peer_auth_mode(pas, NS, {"app": "db"}, port=9000)[0] == "DISABLE"


def test_destination_rule_lookup_order(corpus: Path) -> None:
    drs = [r for r in _corpus_resources(corpus, "kiali/peer-auth-drs.yaml") if r.kind == "DestinationRule"]
    host = "reviews.bookinfo.svc.cluster.local"
    chosen = destination_rule_for(drs, host, "bookinfo", "bookinfo")
    assert chosen is not None and chosen.namespace == "bookinfo"  # client namespace before root
    chosen = destination_rule_for(drs, host, "other", "other")
    assert chosen is not None and chosen.namespace == "istio-system"  # falls back to the root namespace
