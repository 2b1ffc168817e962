"""The networking analyzers' grid (schema, VirtualService, DestinationRule, Gateway,
ServiceEntry, deprecations, Telemetry, EnvoyFilter): input manifests -> the exact set of
(code, resource); valid inputs produce nothing from any analyzer. Rows join the grid of
``tests/test_analyzers.py`` (its coverage test reads both), never asserting on message text.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.support.manifests import assert_grid_case
from tests.support.tls_secrets import tls_secret
from tests.test_analyzers import deployment, docs, dr, gateway, policy, route, service, vs

NET = "networking.istio.io/v1beta1"  # no networking.istio.io/v1: the Istio version is not known


def two_port_service(name: str, ns: str) -> str:
    return (f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\n"
            f"spec:\n  selector: {{app: {name}}}\n  ports:\n  - {{name: http, port: 8080}}\n"
            f"  - {{name: grpc-admin, port: 9090}}\n")


def ingress(ns: str = "edge", labels: str = "{istio: ingressgateway}", target: int = 8443) -> str:
    """A gateway deployment and its Service (443 -> ``target``, 80 -> 8080)."""
    return docs(deployment("ingress", ns, labels),
                f"apiVersion: v1\nkind: Service\nmetadata: {{name: ingress, namespace: {ns}}}\n"
                f"spec:\n  selector: {labels}\n  ports:\n  - {{name: https, port: 443, targetPort: {target}}}\n"
                "  - {name: http2, port: 80, targetPort: 8080}\n")


def tls_gateway(name: str, ns: str, credential: str, mode: str = "SIMPLE", port: int = 8443,
                hosts: str = "[shop.example.org]", selector: str = "{istio: ingressgateway}") -> str:
    return (f"apiVersion: {NET}\nkind: Gateway\nmetadata: {{name: {name}, namespace: {ns}}}\n"
            f"spec:\n  selector: {selector}\n  servers:\n  - port: {{number: {port}, name: https, protocol: HTTPS}}\n"
            f"    hosts: {hosts}\n    tls: {{mode: {mode}, credentialName: {credential}}}\n")


def gw_vs(name: str, ns: str, host: str, gateways: str, http: str) -> str:
    return vs(name, ns, http, hosts=f"[{host}]", extra=f"  gateways: {gateways}\n")


def older(manifest: str) -> str:
    """The manifest as written for an Istio that does not serve networking.istio.io/v1."""
    return manifest.replace("networking.istio.io/v1\n", f"{NET}\n")


def service_entry(name: str, ns: str, hosts: str, ports: str, extra: str = "") -> str:
    return (f"apiVersion: {NET}\nkind: ServiceEntry\nmetadata: {{name: {name}, namespace: {ns}}}\n"
            f"spec:\n  hosts: {hosts}\n  ports: {ports}\n  resolution: DNS\n{extra}")


def telemetry(name: str, ns: str, selector: str = "") -> str:
    return (f"apiVersion: telemetry.istio.io/v1alpha1\nkind: Telemetry\nmetadata: {{name: {name}, namespace: {ns}}}\n"
            f"spec:\n{selector}  accessLogging: [{{providers: [{{name: envoy}}]}}]\n")


def envoy_filter(name: str, ns: str, apply_to: str, operation: str, anchor: str = "", priority: str = "") -> str:
    sub = f"\n            subFilter: {{name: {anchor}}}" if anchor else ""
    return ("apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\n"
            f"metadata: {{name: {name}, namespace: {ns}}}\n"
            f"spec:\n{priority}  configPatches:\n  - applyTo: {apply_to}\n    match:\n      context: SIDECAR_INBOUND\n"
            f"      listener:\n        filterChain:\n          filter:\n"
            f"            name: envoy.filters.network.http_connection_manager{sub}\n"
            f"    patch:\n      operation: {operation}\n      value:\n        name: example.lua\n"
            "        typed_config:\n          '@type': type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua\n"
            "          defaultSourceCode: {inlineString: 'function envoy_on_request(h) end'}\n")


def http_route(name: str, ns: str, parent: str, hostnames: str = "[shop.example.org]") -> str:
    return (f"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {name}, namespace: {ns}}}\n"
            f"spec:\n  parentRefs: [{parent}]\n  hostnames: {hostnames}\n"
            "  rules:\n  - backendRefs: [{name: ledger, port: 8080}]\n")


def k8s_gateway(name: str, ns: str, listeners: str) -> str:
    return (f"apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: {name}, namespace: {ns}}}\n"
            f"spec:\n  gatewayClassName: istio\n  listeners:\n{listeners}")


PG = "[{number: 5432, name: pg, protocol: TCP}]"
HTTPS = "[{number: 443, name: https, protocol: HTTPS}]"
PUBLIC_LISTENER = ("  - name: web\n    port: 80\n    protocol: HTTP\n    hostname: '*.example.org'\n"
                   "    allowedRoutes: {namespaces: {from: All}}\n")
CLAIM_RULE = ("  - match:\n    - headers: {'@request.auth.claims.groups': {exact: admin}}\n"
              + route("ledger", indent="  ") + "  -" + route("ledger")[3:])
EXPIRED = tls_secret("shop-cert", "edge", not_before=datetime(2024, 1, 1, tzinfo=UTC),
                     not_after=datetime(2025, 1, 1, tzinfo=UTC))

NET_GRID: list[tuple[str, str, dict[str, str], set[tuple[str, str]]]] = [
    # -- schema ----------------------------------------------------------------------------------
    ("config.schema", "an invalid duration and an unknown field",
     {"a.yaml": vs("ledger", "payments", "  - timeout: 5x\n    retry: {attempts: 2}\n" + route("ledger", indent="  "))},
     {("MSH0226", "VirtualService payments/ledger")}),
    ("config.schema", "weights that add up to 90",
     {"a.yaml": vs("ledger", "payments", "  - route:\n    - {destination: {host: ledger, subset: v1}, weight: 60}\n"
                   "    - {destination: {host: ledger, subset: v2}, weight: 30}\n")},
     {("MSH0227", "VirtualService payments/ledger")}),
    ("config.schema", "fields Istio added after 1.18 (mirrors) are not unknown",
     {"a.yaml": docs(service("ledger", "payments"), service("ledger-shadow", "payments"),
                     vs("ledger", "payments", "  -" + route("ledger")[3:]
                        + "    mirrors: [{destination: {host: ledger-shadow}}]\n    timeout: 1.5s\n"))}, set()),
    # -- deprecated ------------------------------------------------------------------------------
    ("config.deprecated", "a deprecated field, a Mixer annotation and a removed kind",
     {"a.yaml": docs(vs("ledger", "payments", "  - fault: {delay: {percent: 5, fixedDelay: 1s}}\n"
                        + route("ledger", indent="  ")),
                     "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: ledger, namespace: payments}\nspec:\n"
                     "  selector: {matchLabels: {app: ledger}}\n  template:\n    metadata:\n"
                     "      labels: {app: ledger}\n      annotations: {policy.istio.io/check: disable}\n"
                     "    spec: {containers: [{name: app, image: 'app:1'}]}\n",
                     "apiVersion: rbac.istio.io/v1alpha1\nkind: ServiceRole\n"
                     "metadata: {name: reader, namespace: payments}\n"
                     "spec:\n  rules: [{services: ['*'], methods: [GET]}]\n")},
     {("MSH0244", "VirtualService payments/ledger"), ("MSH0249", "Workload payments/ledger"),
      ("MSH0249", "ServiceRole payments/reader")}),
    ("config.deprecated", "percentage, mirrorPercentage and the injection label",
     {"a.yaml": docs(deployment("ledger", "payments", "{app: ledger, sidecar.istio.io/inject: 'true'}"),
                     service("ledger", "payments"), service("ledger-shadow", "payments"),
                     vs("ledger", "payments", "  - fault: {delay: {percentage: {value: 5}, fixedDelay: 1s}}\n"
                        "    mirror: {host: ledger-shadow}\n    mirrorPercentage: {value: 10}\n"
                        + route("ledger", indent="  ")))}, set()),
    # -- delegation ------------------------------------------------------------------------------
    ("config.delegate", "a delegate that does not exist, and one that has hosts",
     {"a.yaml": docs(gw_vs("shop", "edge", "shop.example.org", "[public]",
                           "  - match: [{uri: {prefix: /pay}}]\n    delegate: {name: payments, namespace: payments}\n"
                           "  - delegate: {name: catalog, namespace: edge}\n"),
                     vs("payments", "payments", "  -" + route("ledger")[3:], hosts="[ledger]"))},
     {("MSH0228", "VirtualService edge/shop")}),
    ("config.delegate", "a delegate without hosts, exported to the root",
     {"a.yaml": docs(gw_vs("shop", "edge", "shop.example.org", "[public]",
                           "  - delegate: {name: payments, namespace: payments}\n"),
                     "apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\n"
                     "metadata: {name: payments, namespace: payments}\nspec:\n  exportTo: [edge]\n  http:\n"
                     "  -" + route("ledger")[3:])}, set()),
    ("config.host_not_found", "a delegate's destination that does not exist",
     {"a.yaml": docs(service("ledger", "payments"),
                     "apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\n"
                     "metadata: {name: payments, namespace: payments}\nspec:\n  http:\n  -" + route("ledgr")[3:])},
     {("MSH0223", "VirtualService payments/payments")}),
    # -- destination ports ---------------------------------------------------------------------------
    ("config.destination_port", "a port the service does not have",
     {"a.yaml": docs(two_port_service("ledger", "payments"),
                     vs("ledger", "payments",
                        "  - route:\n    - destination: {host: ledger, port: {number: 8081}}\n"))},
     {("MSH0230", "VirtualService payments/ledger")}),
    ("config.destination_port", "a gateway routing to a two-port service without a port",
     {"a.yaml": docs(two_port_service("ledger", "payments"), gateway("public", "edge", "{istio: ingressgateway}", 80,
                                                                   "['*']"),
                     gw_vs("ledger-public", "payments", "pay.example.org", "[edge/public]",
                           "  -" + route("ledger")[3:]))},
     {("MSH0229", "VirtualService payments/ledger-public")}),
    ("config.destination_port", "sidecars: the request's own port is one of the service's",
     {"a.yaml": docs(two_port_service("ledger", "payments"), vs("ledger", "payments", "  -" + route("ledger")[3:]),
                     gateway("public", "edge", "{istio: ingressgateway}", 8080, "['*']"),
                     gw_vs("ledger-public", "payments", "pay.example.org", "[edge/public]",
                           "  - route:\n    - destination: {host: ledger, port: {number: 8080}}\n"))}, set()),
    # -- hosts of the bound Gateway -------------------------------------------------------------------
    ("config.gateway_host", "a host the Gateway does not serve, and one it serves to another namespace",
     {"a.yaml": docs(gateway("public", "edge", "{istio: ingressgateway}", 80,
                             "['shop/*.example.org', www.example.org]"),
                     gw_vs("pay", "payments", "pay.example.org", "[edge/public]", "  -" + route("ledger")[3:]))},
     {("MSH0231", "VirtualService payments/pay")}),
    ("config.gateway_host", "wildcard and namespace-scoped server hosts that admit it",
     {"a.yaml": docs(gateway("public", "edge", "{istio: ingressgateway}", 80, "['payments/*.example.org']"),
                     gw_vs("pay", "payments", "pay.example.org", "[edge/public]", "  -" + route("ledger")[3:]))},
     set()),
    # -- VirtualServices merged on one gateway ------------------------------------------------------
    ("config.gateway_virtualservices", "two VirtualServices for one gateway host, one catch-all",
     {"a.yaml": docs(gateway("public", "edge", "{istio: ingressgateway}", 80, "['*']"),
                     gw_vs("pay", "payments", "shop.example.org", "[edge/public]", "  -" + route("ledger")[3:]),
                     gw_vs("pay-admin", "payments", "shop.example.org", "[edge/public]",
                           "  - match: [{uri: {prefix: /admin}}]\n" + route("ledger", indent="  ")))},
     {("MSH0232", "VirtualService payments/pay")}),
    ("config.gateway_virtualservices", "two VirtualServices for one gateway host, each with matches only",
     {"a.yaml": docs(gateway("public", "edge", "{istio: ingressgateway}", 80, "['*']"),
                     gw_vs("pay", "payments", "shop.example.org", "[edge/public]",
                           "  - match: [{uri: {prefix: /pay}}]\n" + route("ledger", indent="  ")),
                     gw_vs("pay-admin", "payments", "shop.example.org", "[edge/public]",
                           "  - match: [{uri: {prefix: /admin}}]\n" + route("ledger", indent="  ")))}, set()),
    # -- JWT claims ---------------------------------------------------------------------------------
    ("config.jwt_claim_route", "claim routing on a gateway no RequestAuthentication covers",
     {"a.yaml": docs(ingress(), gateway("public", "edge", "{istio: ingressgateway}", 8080, "['*']"),
                     policy("RequestAuthentication", "jwt", "payments", "  selector: {matchLabels: {app: ledger}}\n"
                            "  jwtRules: [{issuer: 'https://idp.example.org'}]\n"),
                     policy("RequestAuthentication", "other", "edge", "  selector: {matchLabels: {app: web}}\n"
                            "  jwtRules: [{issuer: 'https://idp.example.org'}]\n"),
                     gw_vs("admin", "payments", "admin.example.org", "[edge/public]", CLAIM_RULE))},
     {("MSH0233", "VirtualService payments/admin")}),
    ("config.jwt_claim_route", "a RequestAuthentication selecting the gateway pods",
     {"a.yaml": docs(ingress(), gateway("public", "edge", "{istio: ingressgateway}", 8080, "['*']"),
                     policy("RequestAuthentication", "jwt", "edge",
                            "  selector: {matchLabels: {istio: ingressgateway}}\n"
                            "  jwtRules: [{issuer: 'https://idp.example.org'}]\n"),
                     gw_vs("admin", "payments", "admin.example.org", "[edge/public]", CLAIM_RULE))}, set()),
    # -- DestinationRule host --------------------------------------------------------------------------
    ("config.destinationrule_host", "a typo in the host",
     {"a.yaml": docs(service("ledger", "payments"), dr("ledger", "payments", "ledgr",
                                                       policy="  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}\n"))},
     {("MSH0234", "DestinationRule payments/ledger")}),
    ("config.destinationrule_host", "a Service and a ServiceEntry host",
     {"a.yaml": docs(service("ledger", "payments"), dr("ledger", "payments", "ledger",
                                                       policy="  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}\n"),
                     service_entry("fx", "payments", "[fx.example.com]", "[{number: 443, name: https, protocol: TLS}]"),
                     dr("fx", "payments", "fx.example.com",
                        policy="  trafficPolicy: {connectionPool: {tcp: {maxConnections: 10}}}\n"))}, set()),
    # -- TLS without verification ------------------------------------------------------------------------
    ("config.tls_verification", "SIMPLE without a CA, and MUTUAL skipping verification on a port",
     {"a.yaml": docs(older(dr("fx", "payments", "fx.example.com",
                              policy="  trafficPolicy:\n    tls: {mode: SIMPLE}\n")),
                     older(dr("bank", "payments", "bank.example.com", policy=(
                         "  trafficPolicy:\n    portLevelSettings:\n    - port: {number: 443}\n"
                         "      tls: {mode: MUTUAL, clientCertificate: /etc/c.pem, privateKey: /etc/k.pem, "
                         "insecureSkipVerify: true}\n"))))},
     {("MSH0235", "DestinationRule payments/fx"), ("MSH0235", "DestinationRule payments/bank")}),
    ("config.tls_verification", "a CA bundle, a credential, and an Istio that falls back to the OS trust store",
     {"a.yaml": docs(older(dr("fx", "payments", "fx.example.com",
                        policy="  trafficPolicy:\n    tls: {mode: SIMPLE, caCertificates: /etc/ssl/certs/ca.pem}\n")),
                     dr("bank", "payments", "bank.example.com",
                        policy="  trafficPolicy:\n    tls: {mode: MUTUAL, credentialName: bank-client}\n")),
      "b.yaml": "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: maps, namespace: web}\n"
                "spec:\n  host: maps.example.com\n  trafficPolicy: {tls: {mode: SIMPLE}}\n"}, set()),
    # -- conflicting DestinationRules ------------------------------------------------------------------------
    ("config.destinationrule_conflict", "two rules for one host both setting a traffic policy",
     {"a.yaml": docs(dr("ledger", "payments", "ledger", policy="  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}\n"),
                     dr("ledger-pool", "payments", "ledger.payments.svc.cluster.local",
                        policy="  trafficPolicy: {connectionPool: {tcp: {maxConnections: 10}}}\n"))},
     {("MSH0236", "DestinationRule payments/ledger-pool")}),
    ("config.destinationrule_conflict", "subsets split over two rules, other namespaces, other selectors",
     {"a.yaml": docs(dr("ledger", "payments", "ledger", "  - {name: v1, labels: {version: v1}}\n",
                        policy="  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}\n"),
                     dr("ledger-v2", "payments", "ledger", "  - {name: v2, labels: {version: v2}}\n"),
                     dr("ledger", "web", "ledger.payments.svc.cluster.local",
                        policy="  trafficPolicy: {connectionPool: {tcp: {maxConnections: 10}}}\n"),
                     dr("ledger-batch", "payments", "ledger", policy="  workloadSelector: {matchLabels: {app: batch}}\n"
                        "  trafficPolicy: {connectionPool: {tcp: {maxConnections: 5}}}\n"))}, set()),
    # -- Gateway selector, port, credential, certificates ---------------------------------------------------
    ("config.gateway_selector", "a selector no gateway pod carries",
     {"a.yaml": docs(ingress(), tls_gateway("shop", "edge", "shop-cert", selector="{istio: ingress-gateway}"))},
     {("MSH0237", "Gateway edge/shop")}),
    ("config.gateway_selector", "no gateway deployment in the input: not judged",
     {"a.yaml": tls_gateway("shop", "edge", "shop-cert", selector="{istio: ingress-gateway}")}, set()),
    ("config.gateway_port", "a server port the Service does not target",
     {"a.yaml": docs(ingress(), tls_gateway("shop", "edge", "shop-cert", port=443), tls_secret("shop-cert", "edge"))},
     {("MSH0238", "Gateway edge/shop")}),
    ("config.gateway_port", "server ports the Service targets (8443 behind 443, 8080 behind 80)",
     {"a.yaml": docs(ingress(), tls_gateway("shop", "edge", "shop-cert"), tls_secret("shop-cert", "edge"),
                     gateway("plain", "edge", "{istio: ingressgateway}", 8080, "[shop.example.org]"))}, set()),
    ("config.gateway_credential", "an expired certificate",
     {"a.yaml": docs(ingress(), tls_gateway("shop", "edge", "shop-cert"), EXPIRED)},
     {("MSH0239", "Gateway edge/shop")}),
    ("config.gateway_credential", "the Secret in the Gateway's namespace, not the pods'",
     {"a.yaml": docs(ingress(), tls_gateway("shop", "web", "shop-cert"), tls_secret("shop-cert", "web"),
                     tls_secret("other", "edge"))},
     {("MSH0239", "Gateway web/shop")}),
    ("config.gateway_credential", "MUTUAL without a CA, and a Secret without its key",
     {"a.yaml": docs(ingress(), tls_gateway("shop", "edge", "shop-cert", mode="MUTUAL"),
                     tls_secret("shop-cert", "edge"),
                     tls_gateway("api", "edge", "api-cert", hosts="[api.example.org]"),
                     tls_secret("api-cert", "edge", keys=("tls.crt",)))},
     {("MSH0239", "Gateway edge/shop"), ("MSH0239", "Gateway edge/api")}),
    ("config.gateway_credential", "valid certificates: SIMPLE, MUTUAL with ca.crt and with a -cacert Secret",
     {"a.yaml": docs(ingress(), tls_gateway("shop", "edge", "shop-cert"), tls_secret("shop-cert", "edge"),
                     tls_gateway("api", "edge", "api-cert", mode="MUTUAL", hosts="[api.example.org]"),
                     tls_secret("api-cert", "edge", keys=("tls.crt", "tls.key", "ca.crt")),
                     tls_gateway("b2b", "edge", "b2b-cert", mode="MUTUAL", hosts="[b2b.example.org]"),
                     tls_secret("b2b-cert", "edge"), tls_secret("b2b-cert-cacert", "edge", keys=("ca.crt",)))}, set()),
    ("config.gateway_duplicate_certificate", "two Gateways on one deployment with one certificate",
     {"a.yaml": docs(tls_gateway("shop", "web", "wildcard-cert"),
                     tls_gateway("api", "api", "wildcard-cert", hosts="[api.example.org]"))},
     {("MSH0240", "Gateway web/shop"), ("MSH0240", "Gateway api/api")}),
    ("config.gateway_duplicate_certificate", "one Gateway serving two hosts with one certificate",
     {"a.yaml": tls_gateway("shop", "web", "wildcard-cert", hosts="[shop.example.org, api.example.org]")}, set()),
    # -- Gateway API --------------------------------------------------------------------------------------------
    ("config.route_parent", "a missing Gateway, a missing listener, a namespace not admitted",
     {"a.yaml": docs(k8s_gateway("public", "edge", PUBLIC_LISTENER),
                     k8s_gateway("internal", "edge", "  - {name: web, port: 80, protocol: HTTP}\n"),
                     http_route("shop", "web", "{name: publc, namespace: edge}"),
                     http_route("cart", "web", "{name: public, namespace: edge, sectionName: https}"),
                     http_route("pay", "web", "{name: internal, namespace: edge}"))},
     {("MSH0241", "HTTPRoute web/shop"), ("MSH0241", "HTTPRoute web/cart"), ("MSH0241", "HTTPRoute web/pay")}),
    ("config.route_parent", "routes admitted by their listeners, and one attached to a Service (mesh)",
     {"a.yaml": docs(k8s_gateway("public", "edge", PUBLIC_LISTENER), service("ledger", "payments"),
                     http_route("shop", "web", "{name: public, namespace: edge, sectionName: web}"),
                     http_route("ledger", "payments", "{group: '', kind: Service, name: ledger}", hostnames="[]"))},
     set()),
    # -- ServiceEntry -------------------------------------------------------------------------------------------
    ("config.serviceentry_addresses", "a TCP port without addresses",
     {"a.yaml": service_entry("ledger-db", "payments", "[db.example.com]", PG)},
     {("MSH0242", "ServiceEntry payments/ledger-db")}),
    ("config.serviceentry_addresses", "addresses given, and an HTTPS port",
     {"a.yaml": docs(service_entry("ledger-db", "payments", "[db.example.com]",
                                   PG, "  addresses: [203.0.113.10/32]\n"),
                     service_entry("fx", "payments", "[fx.example.com]", HTTPS))},
     set()),
    ("config.serviceentry_protocol", "one host's port declared HTTPS and HTTP",
     {"a.yaml": docs(service_entry("fx", "payments", "[fx.example.com]", HTTPS),
                     service_entry("fx-legacy", "treasury", "[fx.example.com]",
                                   "[{number: 443, name: http, protocol: HTTP}]"))},
     {("MSH0243", "ServiceEntry payments/fx"), ("MSH0243", "ServiceEntry treasury/fx-legacy")}),
    ("config.serviceentry_protocol", "the same protocol twice, or hidden from each other by exportTo",
     {"a.yaml": docs(service_entry("fx", "payments", "[fx.example.com]", HTTPS,
                                   "  exportTo: ['.']\n"),
                     service_entry("fx-legacy", "treasury", "[fx.example.com]",
                                   "[{number: 443, name: http, protocol: HTTP}]", "  exportTo: ['.']\n"),
                     service_entry("fx-copy", "treasury", "[api.example.com]",
                                   HTTPS),
                     service_entry("fx-copy2", "web", "[api.example.com]",
                                   HTTPS))}, set()),
    # -- Telemetry ------------------------------------------------------------------------------------------------
    ("config.telemetry_conflict", "two namespace-wide Telemetries, and two selecting one workload",
     {"a.yaml": docs(deployment("ledger", "payments", "{app: ledger, tier: backend}"),
                     telemetry("logs", "payments"), telemetry("tracing", "payments"),
                     telemetry("ledger-logs", "payments", "  selector: {matchLabels: {app: ledger}}\n"),
                     telemetry("backend-logs", "payments", "  selector: {matchLabels: {tier: backend}}\n"))},
     {("MSH0245", "Telemetry payments/tracing"), ("MSH0246", "Telemetry payments/ledger-logs")}),
    ("config.telemetry_conflict", "one per namespace, one per workload",
     {"a.yaml": docs(deployment("ledger", "payments", "{app: ledger}"), deployment("web", "payments", "{app: web}"),
                     telemetry("mesh", "istio-system"), telemetry("logs", "payments"),
                     telemetry("ledger-logs", "payments", "  selector: {matchLabels: {app: ledger}}\n"),
                     telemetry("web-logs", "payments", "  selector: {matchLabels: {app: web}}\n"))}, set()),
    # -- EnvoyFilter --------------------------------------------------------------------------------------------------
    ("config.envoyfilter", "anchored on a filter only some configurations have",
     {"a.yaml": envoy_filter("lua", "payments", "HTTP_FILTER", "INSERT_BEFORE", "envoy.filters.http.jwt_authn")},
     {("MSH0247", "EnvoyFilter payments/lua")}),
    ("config.envoyfilter", "after the router, and REPLACE on a cluster",
     {"a.yaml": docs(envoy_filter("lua", "payments", "HTTP_FILTER", "INSERT_AFTER", "envoy.filters.http.router"),
                     envoy_filter("pool", "payments", "CLUSTER", "REPLACE"))},
     {("MSH0248", "EnvoyFilter payments/lua"), ("MSH0248", "EnvoyFilter payments/pool")}),
    ("config.envoyfilter", "before the router, and after a filter an earlier EnvoyFilter adds",
     {"a.yaml": docs(envoy_filter("lua", "payments", "HTTP_FILTER", "INSERT_BEFORE", "envoy.router"),
                     envoy_filter("audit", "payments", "HTTP_FILTER", "INSERT_BEFORE", "example.lua",
                                  priority="  priority: 10\n"))}, set()),
]


@pytest.mark.parametrize(("analyzer", "case", "files", "expected"), NET_GRID, ids=[f"{g[0]}: {g[1]}" for g in NET_GRID])
def test_networking_analyzer_grid(analyzer: str, case: str, files: dict[str, str],
                                  expected: set[tuple[str, str]]) -> None:
    assert_grid_case(analyzer, files, expected)
