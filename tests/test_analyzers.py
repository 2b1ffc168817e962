"""The analyzer grid, in the style of Istio's analyzer tests: input manifests -> the exact set
of (code, resource) each analyzer reports; valid inputs report nothing. Every analyzer code has
at least one positive and one negative case (checked below). Never asserts on message text.

The inputs go through the manifests collector and assembly, as ``diagnose --config-only -f``.
"""

from __future__ import annotations

import pytest

from meshobs.catalogue import CATALOGUE
from meshobs.model import MeshSnapshot
from tests.support.manifests import analyzer_findings, analyzers, assert_grid_case, manifests_snapshot, pairs


def vs(name: str, ns: str, http: str, hosts: str = "[ledger]", extra: str = "") -> str:
    return (f"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}, namespace: {ns}}}\n"
            f"spec:\n  hosts: {hosts}\n{extra}  http:\n{http}")


def service(name: str, ns: str) -> str:
    return (f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\n"
            f"spec:\n  selector: {{app: {name}}}\n  ports: [{{name: http, port: 8080}}]\n")


def deployment(name: str, ns: str, labels: str) -> str:
    return (f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: {ns}}}\n"
            f"spec:\n  selector: {{matchLabels: {labels}}}\n  template:\n    metadata: {{labels: {labels}}}\n"
            f"    spec: {{containers: [{{name: app, image: 'app:1'}}]}}\n")


def dr(name: str, ns: str, host: str, subsets: str = "", policy: str = "") -> str:
    return (f"apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: {name}, namespace: {ns}}}\n"
            f"spec:\n  host: {host}\n{policy}" + (f"  subsets:\n{subsets}" if subsets else ""))


def gateway(name: str, ns: str, selector: str, port: int, hosts: str) -> str:
    return (f"apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: {name}, namespace: {ns}}}\n"
            f"spec:\n  selector: {selector}\n  servers:\n  - port: {{number: {port}, name: p{port}, protocol: HTTP}}\n"
            f"    hosts: {hosts}\n")


def policy(kind: str, name: str, ns: str, selector: str, group: str = "security.istio.io/v1") -> str:
    return f"apiVersion: {group}\nkind: {kind}\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n{selector}"


def ledger_vs(http: str) -> str:
    """The ledger VirtualService with these http rules, and its DestinationRule (v1, v2)."""
    return docs(LEDGER_DR, vs("ledger", "payments", http))


def route(host: str, subset: str = "", indent: str = "  ") -> str:
    sub = f", subset: {subset}" if subset else ""
    return f"{indent}  route:\n{indent}  - destination: {{host: {host}{sub}}}\n"


def docs(*texts: str) -> str:
    """One multi-document file."""
    return "---\n".join(texts)


LEDGER_DR = dr("ledger", "payments", "ledger", "  - {name: v1, labels: {version: v1}}\n"
                                                 "  - {name: v2, labels: {version: v2}}\n")
CATCH_ALL = "  -" + route("ledger", "v1")[3:]
HEADER_RULE = "  - match:\n    - headers: {x-tier: {exact: gold}}\n" + route("ledger", "v2", "  ")

# analyzer -> [(case, {file: text}, expected {(code, subject)})]
GRID: list[tuple[str, str, dict[str, str], set[tuple[str, str]]]] = [
    # -- unknown subset -----------------------------------------------------------------------
    ("config.unknown_subset", "route to a subset no DestinationRule defines",
     {"a.yaml": vs("ledger", "payments", "  -" + route("ledger", "v3")[3:]) + "---\n" + LEDGER_DR},
     {("MSH0201", "VirtualService payments/ledger")}),
    ("config.unknown_subset", "mirror to an undefined subset",
     {"a.yaml": docs(vs("ledger", "payments", "  -" + route("ledger", "v1")[3:]
                        + "    mirror: {host: ledger, subset: shadow}\n"), LEDGER_DR)},
     {("MSH0201", "VirtualService payments/ledger")}),
    ("config.unknown_subset", "subsets defined", {"a.yaml": vs("ledger", "payments", HEADER_RULE + CATCH_ALL)
                                                  + "---\n" + LEDGER_DR}, set()),
    ("config.unknown_subset", "no subsets named", {"a.yaml": vs("ledger", "payments", "  -" + route("ledger")[3:])},
     set()),
    ("config.unknown_subset", "the DestinationRules live elsewhere (not in the input): not judged",
     {"a.yaml": vs("ledger", "payments", "  -" + route("ledger", "v3")[3:])}, set()),
    # -- subset without pods ------------------------------------------------------------------
    ("config.empty_subset", "subset label no pod template carries",
     {"a.yaml": docs(service("ledger", "payments"), deployment("ledger-v1", "payments", "{app: ledger, version: v1}"),
                     LEDGER_DR)},
     {("MSH0202", "DestinationRule payments/ledger")}),
    ("config.empty_subset", "every subset selects a version",
     {"a.yaml": docs(service("ledger", "payments"), deployment("ledger-v1", "payments", "{app: ledger, version: v1}"),
                     deployment("ledger-v2", "payments", "{app: ledger, version: v2}"), LEDGER_DR)}, set()),
    ("config.empty_subset", "no workloads in the input: not judged",
     {"a.yaml": service("ledger", "payments") + "---\n" + LEDGER_DR}, set()),
    # -- duplicate VirtualServices ------------------------------------------------------------
    ("config.duplicate_virtualservice", "two sidecar VirtualServices for one host",
     {"a.yaml": vs("ledger", "payments", "  -" + route("ledger")[3:]),
      "b.yaml": vs("ledger-retries", "payments", "  - retries: {attempts: 2}\n" + route("ledger", indent="  "),
                   hosts="[ledger.payments.svc.cluster.local]")},
     {("MSH0206", "Service payments/ledger")}),
    ("config.duplicate_virtualservice", "one for the gateway, one for the sidecars",
     {"a.yaml": vs("ledger", "payments", "  -" + route("ledger")[3:]),
      "b.yaml": vs("ledger-public", "payments", "  -" + route("ledger")[3:], extra="  gateways: [edge]\n")}, set()),
    # -- unreachable rules --------------------------------------------------------------------
    ("config.unreachable_rule", "catch-all before a header rule",
     {"a.yaml": ledger_vs(CATCH_ALL + HEADER_RULE)}, {("MSH0220", "VirtualService payments/ledger")}),
    ("config.unreachable_rule", "prefix / takes every request",
     {"a.yaml": ledger_vs("  - match: [{uri: {prefix: /}}]\n" + route("ledger", "v1", "  ")
                   + HEADER_RULE)}, {("MSH0220", "VirtualService payments/ledger")}),
    ("config.unreachable_rule", "every match repeats an earlier rule",
     {"a.yaml": ledger_vs(HEADER_RULE + HEADER_RULE + CATCH_ALL)},
     {("MSH0220", "VirtualService payments/ledger")}),
    ("config.unreachable_rule", "one match of two repeats an earlier rule",
     {"a.yaml": ledger_vs(HEADER_RULE + "  - match:\n    - headers: {x-tier: {exact: gold}}\n"
                   "    - uri: {prefix: /v2}\n" + route("ledger", "v2", "  ") + CATCH_ALL)},
     {("MSH0221", "VirtualService payments/ledger")}),
    ("config.unreachable_rule", "match first, catch-all last",
     {"a.yaml": ledger_vs(HEADER_RULE + CATCH_ALL)}, set()),
    ("config.unreachable_rule", "rules for different callers (sourceLabels narrow per proxy)",
     {"a.yaml": ledger_vs("  - match: [{sourceLabels: {app: web}}]\n" + route("ledger", "v2", "  ")
                   + "  - match: [{sourceLabels: {app: batch}}]\n" + route("ledger", "v1", "  ") + CATCH_ALL)},
     set()),
    # -- conflicting gateways -----------------------------------------------------------------
    ("config.conflicting_gateways", "same pods, port and host",
     {"a.yaml": gateway("shop", "web", "{istio: ingressgateway}", 80, "[shop.example.org]"),
      "b.yaml": gateway("promo", "marketing", "{istio: ingressgateway}", 80, "['marketing/*.example.org']")},
     {("MSH0222", "Gateway web/shop"), ("MSH0222", "Gateway marketing/promo")}),
    ("config.conflicting_gateways", "different gateway pods",
     {"a.yaml": gateway("shop", "web", "{istio: ingressgateway}", 80, "[shop.example.org]"),
      "b.yaml": gateway("internal", "web", "{istio: internal-gateway}", 80, "[shop.example.org]")}, set()),
    ("config.conflicting_gateways", "different ports",
     {"a.yaml": gateway("shop", "web", "{istio: ingressgateway}", 80, "[shop.example.org]"),
      "b.yaml": gateway("shop-tls", "web", "{istio: ingressgateway}", 443, "[shop.example.org]")}, set()),
    ("config.conflicting_gateways", "different hosts",
     {"a.yaml": gateway("shop", "web", "{istio: ingressgateway}", 80, "[shop.example.org]"),
      "b.yaml": gateway("promo", "web", "{istio: ingressgateway}", 80, "[deals.example.org]")}, set()),
    # -- destination host not found -----------------------------------------------------------
    ("config.host_not_found", "a typo in the host",
     {"a.yaml": service("ledger", "payments") + "---\n" + vs("ledger", "payments", "  -" + route("ledgr")[3:])},
     {("MSH0223", "VirtualService payments/ledger")}),
    ("config.host_not_found", "mirror to a host that does not exist",
     {"a.yaml": service("ledger", "payments") + "---\n"
      + vs("ledger", "payments", "  -" + route("ledger")[3:] + "    mirror: {host: ledger-shadow}\n")},
     {("MSH0223", "VirtualService payments/ledger")}),
    ("config.host_not_found", "a ServiceEntry exported only to its own namespace",
     {"a.yaml": service("ledger", "payments") + "---\n"
      + "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: fx, namespace: treasury}\n"
        "spec:\n  hosts: [fx.example.com]\n  exportTo: ['.']\n  ports: [{number: 443, name: https, protocol: HTTPS}]\n"
        "  resolution: DNS\n---\n"
      + vs("fx", "payments", "  -" + route("fx.example.com")[3:], hosts="[fx.example.com]")},
     {("MSH0223", "VirtualService payments/fx")}),
    ("config.host_not_found", "a declared Service",
     {"a.yaml": docs(service("ledger", "payments"), vs("ledger", "payments", "  -" + route("ledger")[3:]))}, set()),
    ("config.host_not_found", "a ServiceEntry visible everywhere, wildcard host",
     {"a.yaml": "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: fx, namespace: treasury}\n"
                "spec:\n  hosts: ['*.example.com']\n  ports: [{number: 443, name: https, protocol: HTTPS}]\n"
                "  resolution: NONE\n---\n"
                + vs("fx", "payments", "  -" + route("api.example.com")[3:], hosts="[api.example.com]")}, set()),
    ("config.host_not_found", "a namespace whose Services the input does not hold",
     {"a.yaml": vs("ledger", "payments", "  -" + route("ledgr")[3:])}, set()),
    # -- gateway not found --------------------------------------------------------------------
    ("config.gateway_not_found", "a typo in namespace/name",
     {"a.yaml": gateway("public", "edge", "{istio: ingressgateway}", 80, "['*']"),
      "b.yaml": vs("pay", "payments", "  -" + route("ledger")[3:], hosts="[pay.example.org]",
                   extra="  gateways: [edge/publc]\n")},
     {("MSH0224", "VirtualService payments/pay")}),
    ("config.gateway_not_found", "a bare name means the VirtualService's own namespace",
     {"a.yaml": gateway("public", "edge", "{istio: ingressgateway}", 80, "['*']")
      + "---\n" + gateway("internal", "payments", "{istio: internal}", 80, "['*']"),
      "b.yaml": vs("pay", "payments", "  -" + route("ledger")[3:], hosts="[pay.example.org]",
                   extra="  gateways: [public]\n")},
     {("MSH0224", "VirtualService payments/pay")}),
    ("config.gateway_not_found", "a route match naming a missing gateway",
     {"a.yaml": gateway("public", "edge", "{istio: ingressgateway}", 80, "['*']"),
      "b.yaml": vs("pay", "payments", "  - match: [{gateways: [edge/privat]}]\n" + route("ledger", indent="  "),
                   hosts="[pay.example.org]", extra="  gateways: [edge/public, mesh]\n")},
     {("MSH0224", "VirtualService payments/pay")}),
    ("config.gateway_not_found", "namespace/name that exists, and mesh",
     {"a.yaml": gateway("public", "edge", "{istio: ingressgateway}", 80, "['*']"),
      "b.yaml": vs("pay", "payments", "  -" + route("ledger")[3:], hosts="[pay.example.org]",
                   extra="  gateways: [edge/public, mesh]\n")}, set()),
    ("config.gateway_not_found", "a namespace whose Gateways the input does not hold",
     {"b.yaml": vs("pay", "payments", "  -" + route("ledger")[3:], hosts="[pay.example.org]",
                   extra="  gateways: [istio-system/ingress]\n")}, set()),
    # -- selector matching nothing ------------------------------------------------------------
    ("config.selector_matches_nothing", "an AuthorizationPolicy with a typo in its selector",
     {"a.yaml": deployment("ledger", "payments", "{app: ledger}") + "---\n"
      + policy("AuthorizationPolicy", "callers", "payments", "  selector: {matchLabels: {app: ledgr}}\n")},
     {("MSH0225", "AuthorizationPolicy payments/callers")}),
    ("config.selector_matches_nothing", "a Sidecar selecting a version that does not run",
     {"a.yaml": deployment("ledger", "payments", "{app: ledger, version: v1}") + "---\n"
      + policy("Sidecar", "egress", "payments", "  workloadSelector: {labels: {app: ledger, version: v9}}\n",
               "networking.istio.io/v1")},
     {("MSH0225", "Sidecar payments/egress")}),
    ("config.selector_matches_nothing", "selectors that match",
     {"a.yaml": deployment("ledger", "payments", "{app: ledger, version: v1}") + "---\n"
      + policy("AuthorizationPolicy", "callers", "payments", "  selector: {matchLabels: {app: ledger}}\n") + "---\n"
      + policy("PeerAuthentication", "strict", "payments", "  selector: {matchLabels: {version: v1}}\n")}, set()),
    ("config.selector_matches_nothing", "no workloads of the namespace in the input",
     {"a.yaml": policy("AuthorizationPolicy", "callers", "payments", "  selector: {matchLabels: {app: ledgr}}\n")},
     set()),
    ("config.selector_matches_nothing", "the root namespace reaches every namespace",
     {"a.yaml": deployment("istiod", "istio-system", "{app: istiod}") + "---\n"
      + policy("AuthorizationPolicy", "deny-x", "istio-system", "  selector: {matchLabels: {app: ledger}}\n")},
     set()),
    # -- mTLS conflict ------------------------------------------------------------------------
    ("certs.mtls_conflict", "STRICT server, client DestinationRule disabling TLS",
     {"a.yaml": service("ledger", "payments") + "---\n"
      + policy("PeerAuthentication", "strict", "payments", "  mtls: {mode: STRICT}\n") + "---\n"
      + dr("ledger", "payments", "ledger", policy="  trafficPolicy: {tls: {mode: DISABLE}}\n")},
     {("MSH0306", "DestinationRule payments/ledger")}),
    ("certs.mtls_conflict", "STRICT server, ISTIO_MUTUAL client",
     {"a.yaml": service("ledger", "payments") + "---\n"
      + policy("PeerAuthentication", "strict", "payments", "  mtls: {mode: STRICT}\n") + "---\n"
      + dr("ledger", "payments", "ledger", policy="  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}\n")}, set()),
    ("certs.mtls_conflict", "PERMISSIVE server accepts plaintext",
     {"a.yaml": service("ledger", "payments") + "---\n"
      + policy("PeerAuthentication", "permissive", "payments", "  mtls: {mode: PERMISSIVE}\n") + "---\n"
      + dr("ledger", "payments", "ledger", policy="  trafficPolicy: {tls: {mode: DISABLE}}\n")}, set()),
]


@pytest.mark.parametrize(("analyzer", "case", "files", "expected"), GRID, ids=[f"{g[0]}: {g[1]}" for g in GRID])
def test_analyzer_grid(analyzer: str, case: str, files: dict[str, str], expected: set[tuple[str, str]]) -> None:
    assert_grid_case(analyzer, files, expected)


def test_every_analyzer_code_has_a_positive_and_a_negative_case() -> None:
    from tests.test_analyzers_net import NET_GRID
    from tests.test_analyzers_sec import SEC_GRID

    grid = GRID + NET_GRID + SEC_GRID
    positive = {code for _a, _c, _f, expected in grid for code, _s in expected}
    negative = {a for a, _c, _f, expected in grid if not expected}
    for a in analyzers():
        assert a.id in negative, f"{a.id} has no case that must produce nothing"
        for code in a.codes:
            assert code in positive, f"{code} ({a.id}) has no case that must produce it"


def test_analyzer_findings_touch_the_services_they_are_about() -> None:
    """diagnose SERVICE shows the analyzer findings that touch SERVICE."""
    snapshot = manifests_snapshot({"a.yaml": service("ledger", "payments") + "---\n"
                                   + vs("ledger", "payments", "  -" + route("ledgr")[3:])})
    (f,) = analyzer_findings(snapshot, ["config.host_not_found"])
    assert [str(s) for s in f.services] == ["payments/ledger"]
    assert f.evidence["host"] == "ledgr.payments.svc.cluster.local"


def test_no_input_vouches_for_the_references_so_the_analyzer_says_could_not_check() -> None:
    from meshobs.checks.base import Settings
    from meshobs.engine.runner import analyze

    snapshot = manifests_snapshot({"a.yaml": vs("ledger", "payments", "  -" + route("ledgr")[3:])})
    result = analyze(snapshot, Settings(), analyzers(["config.host_not_found"])).results["config.host_not_found"]
    assert (result.status, result.could_not_check) == ("skipped", True)
    assert result.reason.startswith("could not check: the input holds no Services of payments")


@pytest.mark.parametrize("code", sorted(c for a in analyzers() for c in a.codes))
def test_analyzer_codes_are_catalogued(code: str) -> None:
    assert CATALOGUE[code].category.value in ("configuration", "certificates and identity")


def live_namespace_without_pods() -> MeshSnapshot:
    """A live cluster listing (the Kubernetes source answered) where namespace payments holds a
    Service and no pod: the listing vouches that nothing there carries the policy's labels."""
    from dataclasses import replace

    from meshobs.model import SourceState, SourceStatus

    snap = manifests_snapshot({"live.yaml": docs(
        service("ledger", "payments"),
        policy("AuthorizationPolicy", "callers", "payments", "  selector: {matchLabels: {app: ledger}}\n"))})
    return replace(snap, services=tuple(replace(s, origin="kubernetes") for s in snap.services),
                   sources=(SourceStatus("kubernetes", SourceState.OK, kind="kubernetes"),))


def test_a_live_listing_vouches_for_a_namespace_with_no_pods() -> None:
    found = analyzer_findings(live_namespace_without_pods(), ["config.selector_matches_nothing"])
    assert pairs(found) == {("MSH0225", "AuthorizationPolicy payments/callers")}
