"""Precision: correct configurations produce no analyzer finding.

The corpus is real configuration written by other projects (Istio's samples, Kiali's and the
App Mesh examples' fixtures, in ../shared/corpus) and the manifests of every built-in demo. The
one deliberately broken Kiali fixture must be found, and nothing else; so must the DestinationRule
the mtls-mismatch demo breaks on purpose.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from meshobs.demo.catalog import export_intended, list_demos
from tests.support.manifests import analyzer_findings, manifests_snapshot, pairs

BROKEN_FIXTURE = "subset-presence-no-matching-subsets-1.yaml"
# Its VirtualService routes to subsets not-v1 and not-v2 (the fixture's point), its second
# rule can never match, since the first has no match either (istioctl analyze: IST0130), and
# each rule's single destination weighs 55 and 45: a split written as two rules, which sends
# everything to the first (MSH0227).
BROKEN_FINDINGS = {("MSH0201", "VirtualService bookinfo/reviews-vs"),
                   ("MSH0220", "VirtualService bookinfo/reviews-vs"),
                   ("MSH0227", "VirtualService bookinfo/reviews-vs")}
# Kiali's peer-auth-drs.yaml lists alternatives side by side: for *.local in istio-system and for
# *.bookinfo in bookinfo, one DestinationRule enabling mTLS and one disabling it. Applied
# together (as here) Istio merges each pair and ignores one's trafficPolicy: MSH0236, and nothing
# else.
ALTERNATIVES_FIXTURE = "peer-auth-drs.yaml"
ALTERNATIVES_FINDINGS = {("MSH0236", "DestinationRule istio-system/enable-mtls"),
                         ("MSH0236", "DestinationRule bookinfo/enable-namespace")}
# Kiali's authz_policy_requires_mtls.yaml: policies that name peers (principals, namespaces),
# for pods with no PeerAuthentication, i.e. PERMISSIVE. Two rules fail open there: an ALLOW with
# notPrincipals (policy-1) and one with notNamespaces (policy-9) admit a plaintext request, which
# carries no peer identity (MSH0257). The rules naming peers positively fail closed: silent.
REQUIRES_MTLS_FIXTURE = "authz_policy_requires_mtls.yaml"
REQUIRES_MTLS_FINDINGS = {("MSH0257", "AuthorizationPolicy bookinfo/policy-1"),
                          ("MSH0257", "AuthorizationPolicy bookinfo/policy-9")}
# Read together with peer-auth-drs.yaml, bookinfo's mTLS is DISABLE (one of that file's
# alternatives, disable-namespace-mtls, decides): then no request carries a peer identity and
# every rule of the fixture naming one matches no one (policies 0, 3, 4 and 8 too), which is the
# case the fixture was written for. Policy 5 matches on connection.sni, which any TLS carries.
TOGETHER_MTLS_FINDINGS = REQUIRES_MTLS_FINDINGS | {("MSH0257", f"AuthorizationPolicy bookinfo/policy-{n}")
                                                   for n in (0, 3, 4, 8)}
EXPECTED = {BROKEN_FIXTURE: BROKEN_FINDINGS, ALTERNATIVES_FIXTURE: ALTERNATIVES_FINDINGS,
            REQUIRES_MTLS_FIXTURE: REQUIRES_MTLS_FINDINGS}
DEMO_FAULTS = {"mtls-mismatch": {("MSH0306", "DestinationRule shop/database-service-from-cart")}}


def corpus_files(corpus: Path) -> list[Path]:
    found = [p for folder in ("istio-config", "appmesh-config") for p in sorted((corpus / folder).rglob("*"))
             if p.is_file() and p.name.endswith((".yaml", ".yml", ".json", ".yaml.template"))]
    assert len(found) >= 15, found
    return found


def test_every_corpus_file_alone_is_clean_but_the_broken_fixture(corpus: Path) -> None:
    for path in corpus_files(corpus):
        snapshot = manifests_snapshot({path.name: path.read_text(encoding="utf-8")})
        expected = EXPECTED.get(path.name, set())
        assert pairs(analyzer_findings(snapshot)) == expected, path.name


def test_the_corpus_together_is_clean_but_the_broken_fixture(corpus: Path) -> None:
    """Read as one input, resources of different files meet (the bookinfo DestinationRules and
    VirtualServices in one namespace); still nothing but the fixture's faults."""
    files = {p.name: p.read_text(encoding="utf-8") for p in corpus_files(corpus)}
    found = analyzer_findings(manifests_snapshot(files))
    assert pairs(found) == BROKEN_FINDINGS | ALTERNATIVES_FINDINGS | TOGETHER_MTLS_FINDINGS
    assert {f.file for f in found} == {BROKEN_FIXTURE, ALTERNATIVES_FIXTURE, REQUIRES_MTLS_FIXTURE}


@pytest.mark.parametrize("demo", [name for name, _ in list_demos() if not name.startswith("generated")])
def test_demo_manifests_are_clean_but_their_deliberate_fault(demo: str, tmp_path: Path) -> None:
    files = {p.name: p.read_text(encoding="utf-8") for p in export_intended(demo, tmp_path)}
    assert pairs(analyzer_findings(manifests_snapshot(files))) == DEMO_FAULTS.get(demo, set())


VALID_MESH = Path(__file__).parent / "data" / "valid-mesh"


def test_a_valid_mesh_of_every_analyzed_kind_is_clean_and_fully_judged() -> None:
    """meshobs' own valid corpus: two teams, an ingress with TLS and mutual TLS Gateways and
    their Secrets, delegation, a two-port Service, a canary split, JWT-claim routing with its
    RequestAuthentication, ServiceEntries (TLS with a CA bundle, TCP with addresses), an
    EnvoyFilter, Telemetries, a Gateway API Gateway and HTTPRoutes; a revision-injected namespace
    with Sidecars, STRICT mTLS, policies naming real principals, JWT keys on the issuer's host, an
    egress gateway with image: auto and an ExternalName; an ambient namespace with its waypoint;
    an App Mesh team (routers with two listeners, a canary, mutual TLS with SDS trust, a virtual
    gateway). No finding, and every analyzer judged it (none 'could not check'): silence here is
    a verdict (and BREAKS below shows it is one)."""
    from meshobs.checks.base import Settings
    from meshobs.engine.runner import analyze
    from tests.support.manifests import analyzers

    files = {p.name: p.read_text(encoding="utf-8") for p in sorted(VALID_MESH.glob("*.yaml"))}
    snapshot = manifests_snapshot(files)
    assert pairs(analyzer_findings(snapshot)) == set()
    results = analyze(snapshot, Settings(), analyzers()).results
    assert {name: r.status for name, r in results.items() if r.status != "pass"} == {}


# One edit of the valid mesh -> the finding it must cause: the valid mesh is judged, not skipped.
BREAKS = [
    ("billing.yaml", "cluster.local/ns/billing/sa/tax-calc\n", "cluster.local/ns/billing/sa/tax-calculator\n",
     "MSH0255"),
    ("billing.yaml", "mtls: {mode: STRICT}", "mtls: {mode: DISABLE}", "MSH0257"),
    ("billing.yaml", "jwksUri: https://", "jwksUri: http://", "MSH0256"),
    ("billing.yaml", "labels: {istio.io/rev: 1-18-2}", "labels: {istio.io/rev: 1-18-2, istio-injection: enabled}",
     "MSH0261"),
    ("billing.yaml", "{name: grpc, port: 7070", "{name: rpc, port: 7070", "MSH0264"),
    ("billing.yaml", 'sidecar.istio.io/inject: "true"}', 'sidecar.istio.io/inject: "false"}', "MSH0263"),
    ("billing.yaml", "  workloadSelector:\n    labels: {app: tax-calc}\n", "", "MSH0250"),
    ("billing.yaml", "  - {name: https, port: 443}", "  - {port: 443}", "MSH0266"),
    ("analytics.yaml", 'operation: {ports: ["8080"]}', 'operation: {ports: ["8080"], methods: [POST]}', "MSH0253"),
    ("appmesh.yaml", "weight: 20, port: 8080", "weight: 10, port: 8080", "MSH0267"),
    ("appmesh.yaml", "virtualRouterRef: {name: telematics-router}", "virtualRouterRef: {name: telematic-router}",
     "MSH0269"),
    ("appmesh.yaml", "match: {prefix: /admin, port: 9090}", "match: {prefix: /admin}", "MSH0270"),
    ("appmesh.yaml", 'trust:\n            sds: {secretName: "spiffe://fleet.example"}', "trust: {}", "MSH0271"),
]


@pytest.mark.parametrize(("name", "old", "new", "code"), BREAKS, ids=[f"{b[3]}-{b[0]}" for b in BREAKS])
def test_one_edit_of_the_valid_mesh_is_found(name: str, old: str, new: str, code: str) -> None:
    files = {p.name: p.read_text(encoding="utf-8") for p in sorted(VALID_MESH.glob("*.yaml"))}
    assert old in files[name]
    files[name] = files[name].replace(old, new, 1)
    assert code in {f.code for f in analyzer_findings(manifests_snapshot(files))}
