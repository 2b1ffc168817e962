"""The security, workload and App Mesh analyzers' grid (Sidecar, ambient, AuthorizationPolicy,
PeerAuthentication, RequestAuthentication, injection, proxy images, Service ports, App Mesh
routes, references and TLS): input manifests -> the exact set of (code, resource); valid inputs
produce nothing from any analyzer. Rows join the grid of ``tests/test_analyzers.py`` (its
coverage test reads them), never asserting on message text.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from meshobs.model import MeshSnapshot, SourceState, SourceStatus
from tests.support.manifests import analyzer_findings, assert_grid_case, manifests_snapshot, pairs
from tests.test_analyzers import docs, policy

SEC = "security.istio.io/v1"
NET = "networking.istio.io/v1"


def namespace(name: str, labels: str = "") -> str:
    meta = f"{{name: {name}, labels: {{{labels}}}}}" if labels else f"{{name: {name}}}"
    return f"apiVersion: v1\nkind: Namespace\nmetadata: {meta}\n"


INJECTED = "istio-injection: enabled"
AMBIENT = "istio.io/dataplane-mode: ambient"


def workload(name: str, ns: str, labels: str, account: str = "", proxy: str = "") -> str:
    """A Deployment; ``proxy`` adds an istio-proxy container with that image (a gateway template)."""
    sa = f"      serviceAccountName: {account}\n" if account else ""
    extra = f"      - {{name: istio-proxy, image: '{proxy}'}}\n" if proxy else ""
    return (f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: {ns}}}\n"
            f"spec:\n  selector: {{matchLabels: {labels}}}\n  template:\n    metadata: {{labels: {labels}}}\n"
            f"    spec:\n{sa}      containers:\n      - {{name: app, image: 'app:1'}}\n{extra}")


def pod(name: str, ns: str, app: str, image: str = "", annotations: str = "") -> str:
    """A running pod; ``image`` gives it an istio-proxy sidecar with that image."""
    proxy = f"  - {{name: istio-proxy, image: '{image}'}}\n" if image else ""
    notes = f", annotations: {{{annotations}}}" if annotations else ""
    return (f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {ns}, labels: {{app: {app}}}{notes}}}\n"
            f"spec:\n  containers:\n  - {{name: app, image: 'app:1'}}\n{proxy}")


def svc(name: str, ns: str, ports: str, selector: str = "", extra: str = "") -> str:
    sel = f"  selector: {selector or '{app: ' + name + '}'}\n"
    return (f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\n"
            f"spec:\n{sel}{extra}  ports: {ports}\n")


def sidecar(name: str, ns: str, selector: str = "") -> str:
    sel = f"  workloadSelector: {{labels: {selector}}}\n" if selector else ""
    return (f"apiVersion: {NET}\nkind: Sidecar\nmetadata: {{name: {name}, namespace: {ns}}}\n"
            f"spec:\n{sel}  egress: [{{hosts: ['./*', 'istio-system/*']}}]\n")


def authz(name: str, ns: str, rules: str, selector: str = "", action: str = "") -> str:
    sel = f"  selector: {{matchLabels: {selector}}}\n" if selector else ""
    act = f"  action: {action}\n" if action else ""
    return policy("AuthorizationPolicy", name, ns, f"{sel}{act}  rules:\n{rules}", SEC)


def principals(*names: str, negative: bool = False) -> str:
    field = "notPrincipals" if negative else "principals"
    return f"  - from: [{{source: {{{field}: [{', '.join(names)}]}}}}]\n"


def peer_auth(name: str, ns: str, mode: str, selector: str = "") -> str:
    sel = f"  selector: {{matchLabels: {selector}}}\n" if selector else ""
    return policy("PeerAuthentication", name, ns, f"{sel}  mtls: {{mode: {mode}}}\n", SEC)


def request_authn(name: str, ns: str, rule: str, selector: str = "") -> str:
    sel = f"  selector: {{matchLabels: {selector}}}\n" if selector else ""
    return policy("RequestAuthentication", name, ns, f"{sel}  jwtRules:\n  - {rule}\n", SEC)


APPMESH = "appmesh.k8s.aws/v1beta2"


def node(name: str, ns: str, ports: tuple[int, ...] = (8080,), extra: str = "") -> str:
    listeners = "".join(f"  - portMapping: {{port: {p}, protocol: http}}\n" for p in ports)
    return (f"apiVersion: {APPMESH}\nkind: VirtualNode\nmetadata: {{name: {name}, namespace: {ns}}}\n"
            f"spec:\n  podSelector: {{matchLabels: {{app: {name}}}}}\n  listeners:\n{listeners}"
            f"  serviceDiscovery: {{dns: {{hostname: {name}.{ns}.svc.cluster.local}}}}\n{extra}")


def router(name: str, ns: str, routes: str, ports: tuple[int, ...] = (8080,)) -> str:
    listeners = "".join(f"  - portMapping: {{port: {p}, protocol: http}}\n" for p in ports)
    return (f"apiVersion: {APPMESH}\nkind: VirtualRouter\nmetadata: {{name: {name}, namespace: {ns}}}\n"
            f"spec:\n  listeners:\n{listeners}  routes:\n{routes}")


def mesh_route(name: str, targets: str, match: str = "prefix: /") -> str:
    return (f"  - name: {name}\n    httpRoute:\n      match: {{{match}}}\n"
            f"      action:\n        weightedTargets: [{targets}]\n")


def target(node_name: str, weight: int, port: int | None = None) -> str:
    p = f", port: {port}" if port is not None else ""
    return f"{{virtualNodeRef: {{name: {node_name}}}, weight: {weight}{p}}}"


def virtual_service(name: str, ns: str, provider: str) -> str:
    return (f"apiVersion: {APPMESH}\nkind: VirtualService\nmetadata: {{name: {name}, namespace: {ns}}}\n"
            f"spec:\n  awsName: {name}.{ns}.svc.cluster.local\n  provider: {{{provider}}}\n")


def backend(name: str) -> str:
    return f"  backends:\n  - virtualService: {{virtualServiceRef: {{name: {name}}}}}\n"


LEDGER_NS = docs(namespace("payments", INJECTED),
                 workload("ledger", "payments", "{app: ledger, version: v1}", "ledger"))
CLAIMS = docs(namespace("claims", INJECTED), workload("intake", "claims", "{app: intake}", "claims-intake"),
              workload("adjuster", "claims", "{app: adjuster}", "claims-adjuster"))
# Istio's mesh config moving the root namespace (meshConfig.rootNamespace) away from istio-system.
MESH_ROOT_CONFIG = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\n"
                    "data:\n  mesh: 'rootNamespace: mesh-root'\n")
WEB_PRINCIPAL = "cluster.local/ns/claims/sa/claims-intake"
ANALYTICS = docs(namespace("analytics", AMBIENT), workload("ingest", "analytics", "{app: ingest}", "ingest"))
TRUST = "{sds: {secretName: spiffe://fleet.example/bundle}}"

SEC_GRID: list[tuple[str, str, dict[str, str], set[tuple[str, str]]]] = [
    # -- Sidecar ---------------------------------------------------------------------------------------------------
    ("config.sidecar_conflict", "two Sidecars without selector in one namespace",
     {"a.yaml": docs(LEDGER_NS, sidecar("default", "payments"), sidecar("egress", "payments"))},
     {("MSH0250", "Sidecar payments/default"), ("MSH0250", "Sidecar payments/egress")}),
    ("config.sidecar_conflict", "two Sidecars selecting the same pods",
     {"a.yaml": docs(LEDGER_NS, sidecar("ledger", "payments", "{app: ledger}"),
                     sidecar("ledger-v1", "payments", "{version: v1}"))},
     {("MSH0251", "Sidecar payments/ledger"), ("MSH0251", "Sidecar payments/ledger-v1")}),
    ("config.sidecar_conflict", "one namespace default and one per workload, disjoint selectors",
     {"a.yaml": docs(LEDGER_NS, workload("audit", "payments", "{app: audit}", "audit"),
                     sidecar("default", "payments"), sidecar("ledger", "payments", "{app: ledger}"),
                     sidecar("audit", "payments", "{app: audit}"))}, set()),
    ("config.sidecar_conflict", "overlapping selectors where the input holds no workloads: not judged",
     {"a.yaml": docs(sidecar("ledger", "payments", "{app: ledger}"),
                     sidecar("ledger-v1", "payments", "{version: v1}"))},
     set()),
    # -- ambient ---------------------------------------------------------------------------------------------------
    ("config.ambient_ineffective", "a Sidecar, a RequestAuthentication and an HTTP rule for ambient pods",
     {"a.yaml": docs(ANALYTICS, sidecar("default", "analytics"),
                     request_authn("jwt", "analytics", "{issuer: 'https://id.example.org', "
                                   "jwksUri: 'https://id.example.org/keys'}", "{app: ingest}"),
                     authz("readers", "analytics", "  - to: [{operation: {methods: [GET], paths: ['/reports/*']}}]\n",
                           "{app: ingest}"))},
     {("MSH0252", "Sidecar analytics/default"), ("MSH0252", "RequestAuthentication analytics/jwt"),
      ("MSH0253", "AuthorizationPolicy analytics/readers")}),
    ("config.ambient_ineffective", "an EnvoyFilter selecting ambient pods; a root-namespace HTTP rule reaching them",
     {"a.yaml": docs(ANALYTICS, "apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\n"
                     "metadata: {name: lua, namespace: analytics}\nspec:\n  workloadSelector: {labels: {app: ingest}}\n"
                     "  configPatches:\n  - applyTo: HTTP_FILTER\n    match: {context: SIDECAR_INBOUND}\n"
                     "    patch: {operation: INSERT_FIRST, value: {name: example.lua}}\n",
                     authz("no-admin", "istio-system", "  - to: [{operation: {paths: ['/admin/*']}}]\n",
                           action="DENY"))},
     {("MSH0252", "EnvoyFilter analytics/lua"), ("MSH0253", "AuthorizationPolicy istio-system/no-admin")}),
    ("config.ambient_ineffective", "layer-4 rules at ztunnel, HTTP ones on the waypoint, a Sidecar for sidecar pods",
     {"a.yaml": docs(ANALYTICS, namespace("payments", INJECTED),
                     workload("ledger", "payments", "{app: ledger}", "ledger"), sidecar("default", "payments"),
                     authz("ingest-callers", "analytics", "  - from: [{source: {principals: "
                           "['cluster.local/ns/payments/sa/ledger']}}]\n    to: [{operation: {ports: ['8080']}}]\n",
                           "{app: ingest}"),
                     policy("AuthorizationPolicy", "waypoint-readers", "analytics",
                            "  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]\n"
                            "  rules:\n  - to: [{operation: {methods: [GET]}}]\n", SEC),
                     policy("RequestAuthentication", "waypoint-jwt", "analytics",
                            "  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]\n"
                            "  jwtRules: [{issuer: 'https://id.example.org', jwksUri: 'https://id.example.org/keys'}]\n",
                            SEC))}, set()),
    ("config.ambient_ineffective", "an ambient namespace whose workloads the input does not hold: not judged",
     {"a.yaml": docs(namespace("analytics", AMBIENT), sidecar("default", "analytics"))}, set()),
    # -- AuthorizationPolicy identities ----------------------------------------------------------------------------
    ("config.authz_identity", "a principal whose service account no workload runs as",
     {"a.yaml": docs(CLAIMS, LEDGER_NS, authz("callers", "payments",
                                              principals("cluster.local/ns/claims/sa/claims-portal", WEB_PRINCIPAL),
                                              "{app: ledger}"))},
     {("MSH0255", "AuthorizationPolicy payments/callers")}),
    ("config.authz_identity", "namespaces that do not exist: near misses of ones the input holds",
     {"a.yaml": docs(CLAIMS, LEDGER_NS, authz("callers", "payments",
                                              "  - from: [{source: {namespaces: [claim]}}]\n", "{app: ledger}"),
                     authz("deny-legacy", "payments", principals("cluster.local/ns/paymnts/sa/batch"),
                           "{app: ledger}", "DENY"), peer_auth("strict", "payments", "STRICT"))},
     {("MSH0254", "AuthorizationPolicy payments/callers"), ("MSH0254", "AuthorizationPolicy payments/deny-legacy")}),
    ("config.authz_identity", "principals and namespaces that exist, wildcards, the ingress gateway's",
     {"a.yaml": docs(CLAIMS, LEDGER_NS, authz("callers", "payments", principals(
         WEB_PRINCIPAL, "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account",
         "cluster.local/ns/claims/*") + "  - from: [{source: {namespaces: [claims]}}]\n", "{app: ledger}"))}, set()),
    ("config.authz_identity", "names in namespaces the input does not hold: not judged",
     {"a.yaml": docs(LEDGER_NS, authz("callers", "payments", principals("cluster.local/ns/billing/sa/bill-run")
                                      + "  - from: [{source: {namespaces: [reporting]}}]\n", "{app: ledger}"))}, set()),
    ("config.authz_identity", "a namespace whose workloads are outside the mesh: its accounts hold no principal",
     {"a.yaml": docs(LEDGER_NS, namespace("batch"), workload("nightly", "batch", "{app: nightly}", "nightly"),
                     authz("callers", "payments", principals("cluster.local/ns/batch/sa/cron"), "{app: ledger}"))},
     set()),
    # -- identities need mTLS --------------------------------------------------------------------------------------
    ("config.authz_requires_mtls", "DENY by principal under PERMISSIVE, ALLOW by principal under DISABLE",
     {"a.yaml": docs(LEDGER_NS, namespace("vault", INJECTED), workload("keys", "vault", "{app: keys}", "keys"),
                     authz("deny-batch", "payments", principals("cluster.local/ns/batch/sa/nightly"), "{app: ledger}",
                           "DENY"),
                     peer_auth("plain", "vault", "DISABLE"),
                     authz("callers", "vault", principals("cluster.local/ns/ops/sa/rotator"), "{app: keys}"))},
     {("MSH0257", "AuthorizationPolicy payments/deny-batch"), ("MSH0257", "AuthorizationPolicy vault/callers")}),
    ("config.authz_requires_mtls", "an ALLOW-except rule without workloads in the input, mesh-wide PERMISSIVE",
     {"a.yaml": authz("all-but-batch", "payments", principals("cluster.local/ns/batch/sa/nightly", negative=True),
                      "{app: ledger}")},
     {("MSH0257", "AuthorizationPolicy payments/all-but-batch")}),
    ("config.authz_requires_mtls", "DENY under STRICT, ALLOW by principal under PERMISSIVE (fails closed)",
     {"a.yaml": docs(LEDGER_NS, peer_auth("mesh", "istio-system", "STRICT"),
                     authz("deny-batch", "payments", principals("cluster.local/ns/batch/sa/nightly"), "{app: ledger}",
                           "DENY"),
                     peer_auth("permissive", "payments", "PERMISSIVE", "{app: audit}"),
                     workload("audit", "payments", "{app: audit}", "audit"),
                     authz("audit-callers", "payments", principals("cluster.local/ns/batch/sa/nightly"),
                           "{app: audit}"))},
     set()),
    ("config.authz_requires_mtls", "DENY under the mesh-wide STRICT of a root namespace the mesh config renames",
     {"a.yaml": docs(LEDGER_NS, MESH_ROOT_CONFIG, peer_auth("mesh", "mesh-root", "STRICT"),
                     authz("deny-batch", "payments", principals("cluster.local/ns/batch/sa/nightly"), "{app: ledger}",
                           "DENY"))},
     set()),
    ("config.authz_requires_mtls", "STRICT in istio-system is not mesh-wide when the root namespace is another",
     {"a.yaml": docs(LEDGER_NS, MESH_ROOT_CONFIG, peer_auth("mesh", "istio-system", "STRICT"),
                     authz("deny-batch", "payments", principals("cluster.local/ns/batch/sa/nightly"), "{app: ledger}",
                           "DENY"))},
     {("MSH0257", "AuthorizationPolicy payments/deny-batch")}),
    # -- RequestAuthentication -------------------------------------------------------------------------------------
    ("config.request_authentication", "plain HTTP, a metadata address, a Service that does not exist",
     {"a.yaml": docs(LEDGER_NS, svc("ledger", "payments", "[{name: http, port: 8080}]"),
                     request_authn("http-keys", "payments", "{issuer: 'https://id.example.org', "
                                   "jwksUri: 'http://id.example.org/keys'}", "{app: ledger}"),
                     request_authn("metadata", "payments", "{issuer: 'https://id.example.org', "
                                   "jwksUri: 'https://169.254.169.254/latest/meta-data/keys'}", "{app: ledger}"),
                     request_authn("in-cluster", "payments", "{issuer: 'https://keycloak.payments', "
                                   "jwksUri: 'https://keycloak.payments.svc.cluster.local/realms/pay/certs'}",
                                   "{app: ledger}"))},
     {("MSH0256", "RequestAuthentication payments/http-keys"), ("MSH0256", "RequestAuthentication payments/metadata"),
      ("MSH0256", "RequestAuthentication payments/in-cluster")}),
    ("config.request_authentication", "a JWT on a workload whose Service port is TCP",
     {"a.yaml": docs(LEDGER_NS, svc("ledger", "payments", "[{name: tcp-api, port: 8080}]"),
                     request_authn("jwt", "payments", "{issuer: 'https://id.example.org', "
                                   "jwksUri: 'https://id.example.org/keys'}", "{app: ledger}"))},
     {("MSH0258", "RequestAuthentication payments/jwt")}),
    ("config.request_authentication", "the IdP's HTTPS keys, an in-cluster IdP that exists, inline keys, a gateway",
     {"a.yaml": docs(LEDGER_NS, svc("ledger", "payments", "[{name: http-api, port: 8080}, {name: grpc, port: 9090}]"),
                     svc("keycloak", "payments", "[{name: https, port: 443}]"),
                     request_authn("jwt", "payments", "{issuer: 'https://accounts.google.com', "
                                   "jwksUri: 'https://www.googleapis.com/oauth2/v3/certs'}", "{app: ledger}"),
                     request_authn("in-cluster", "payments", "{issuer: 'https://keycloak.payments', "
                                   "jwksUri: 'https://keycloak.payments.svc/realms/pay/certs'}", "{app: ledger}"),
                     request_authn("inline", "payments", "{issuer: testing@secure.istio.io, jwks: '{\"keys\": []}'}",
                                   "{app: ledger}"),
                     namespace("edge", INJECTED), workload("ingress", "edge", "{istio: ingressgateway}", proxy="auto"),
                     svc("ingress", "edge", "[{name: https, port: 443}]", "{istio: ingressgateway}"),
                     request_authn("partners", "edge", "{issuer: 'https://id.example.org'}",
                                   "{istio: ingressgateway}"))},
     set()),
    # -- namespace injection ---------------------------------------------------------------------------------------
    ("config.namespace_injection", "policies in a namespace neither injected nor ambient",
     {"a.yaml": docs(namespace("reports"), workload("builder", "reports", "{app: builder}", "builder"),
                     peer_auth("strict", "reports", "STRICT"))},
     {("MSH0260", "Namespace reports")}),
    ("config.namespace_injection", "two injection labels; injection and ambient together",
     {"a.yaml": docs(namespace("payments", f"{INJECTED}, istio.io/rev: canary"),
                     namespace("analytics", f"istio.io/rev: canary, {AMBIENT}"))},
     {("MSH0261", "Namespace payments"), ("MSH0261", "Namespace analytics")}),
    ("config.namespace_injection", "a namespace outside the mesh without policies; a gateway injected by label",
     {"a.yaml": docs(namespace("reports"), workload("builder", "reports", "{app: builder}", "builder"),
                     namespace("edge"), workload("ingress", "edge", "{istio: ingressgateway, sidecar.istio.io/inject: "
                                                 "'true'}", proxy="auto"),
                     peer_auth("strict", "edge", "STRICT"), namespace("payments", "istio.io/rev: stable"))}, set()),
    # -- proxy images ----------------------------------------------------------------------------------------------
    ("config.proxy_image", "two proxy images in one namespace",
     {"a.yaml": docs(pod("ledger-1", "payments", "ledger", "docker.io/istio/proxyv2:1.24.2"),
                     pod("ledger-2", "payments", "ledger", "docker.io/istio/proxyv2:1.24.2"),
                     pod("audit-1", "payments", "audit", "docker.io/istio/proxyv2:1.23.4"))},
     {("MSH0262", "Namespace payments")}),
    ("config.proxy_image", "image: auto where nothing injects, and a running pod still saying auto",
     {"a.yaml": docs(namespace("edge"), workload("ingress", "edge", "{istio: ingressgateway}", proxy="auto"),
                     pod("egress-7d9", "edge", "egress", "auto"))},
     {("MSH0263", "Workload edge/ingress"), ("MSH0263", "Pod edge/egress-7d9")}),
    ("config.proxy_image", "one image; a pinned image; auto where injection is on",
     {"a.yaml": docs(pod("ledger-1", "payments", "ledger", "docker.io/istio/proxyv2:1.24.2"),
                     pod("audit-1", "payments", "audit", "docker.io/istio/proxyv2:1.24.2"),
                     pod("debug-1", "payments", "debug", "docker.io/istio/proxyv2:1.25.0-debug",
                         "sidecar.istio.io/proxyImage: docker.io/istio/proxyv2:1.25.0-debug"),
                     namespace("edge", INJECTED), workload("ingress", "edge", "{istio: ingressgateway}", proxy="auto"),
                     workload("egress", "egress", "{istio: egressgateway, sidecar.istio.io/inject: 'true'}",
                              proxy="auto"))}, set()),
    ("config.proxy_image", "ambient's ztunnel (a node proxy in a container named istio-proxy) beside a gateway",
     {"a.yaml": docs(pod("ztunnel-x2k9d", "istio-system", "ztunnel", "docker.io/istio/ztunnel:1.24.2"),
                     pod("ztunnel-7bq4m", "istio-system", "ztunnel", "gcr.io/istio-release/ztunnel:1.24.2-distroless"),
                     pod("istio-ingressgateway-1", "istio-system", "istio-ingressgateway",
                         "docker.io/istio/proxyv2:1.24.2"))}, set()),
    ("config.proxy_image", "ztunnel set aside, two gateway images are still two",
     {"a.yaml": docs(pod("ztunnel-x2k9d", "istio-system", "ztunnel", "docker.io/istio/ztunnel:1.24.2"),
                     pod("istio-ingressgateway-1", "istio-system", "istio-ingressgateway",
                         "docker.io/istio/proxyv2:1.24.2"),
                     pod("istio-egressgateway-1", "istio-system", "istio-egressgateway",
                         "docker.io/istio/proxyv2:1.23.4"))},
     {("MSH0262", "Namespace istio-system")}),
    ("config.proxy_image", "App Mesh's Envoy in two versions is not Istio's sidecar",
     {"a.yaml": docs(*(f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {n}, namespace: fleet, labels: {{app: {n}}}, "
                       "annotations: {appmesh.k8s.aws/mesh: fleet}}\nspec:\n  containers:\n"
                       f"  - {{name: app, image: 'app:1'}}\n  - {{name: envoy, image: '{i}'}}\n"
                       for n, i in (("dispatch", "public.ecr.aws/appmesh/aws-appmesh-envoy:v1.27.3.0-prod"),
                                    ("telematics", "public.ecr.aws/appmesh/aws-appmesh-envoy:v1.29.6.0-prod"))))},
     set()),
    # -- Service ports ---------------------------------------------------------------------------------------------
    ("config.port_protocol", "an unnamed port, a misspelt prefix and a server-first port of meshed Services",
     {"a.yaml": docs(LEDGER_NS, svc("ledger", "payments", "[{port: 8080}, {name: http_admin, port: 9901}]"),
                     workload("db", "payments", "{app: db}", "db"), svc("db", "payments", "[{name: db, port: 3306}]"))},
     {("MSH0264", "Service payments/ledger"), ("MSH0264", "Service payments/db")}),
    ("config.port_protocol", "an ExternalName port without a protocol",
     {"a.yaml": svc("fx", "payments", "[{port: 443}]", extra="  type: ExternalName\n  externalName: fx.example.com\n")},
     {("MSH0266", "Service payments/fx")}),
    ("config.port_protocol", "one workload behind two Services giving a port different protocols",
     {"a.yaml": docs(LEDGER_NS, svc("ledger", "payments", "[{name: http, port: 8080}]"),
                     svc("ledger-raw", "payments", "[{name: tcp, port: 8080}]", "{app: ledger}"))},
     {("MSH0265", "Workload payments/ledger")}),
    ("config.port_protocol", "named ports, appProtocol, an ExternalName's tls port, a gateway, an unmeshed Service",
     {"a.yaml": docs(LEDGER_NS, svc("ledger", "payments", "[{name: http-api, port: 8080}, {name: grpc, port: 9090}, "
                                    "{port: 9901, appProtocol: kubernetes.io/h2c}, {name: metrics, port: 15090}]"),
                     svc("ledger-admin", "payments", "[{name: http-admin, port: 8080}]", "{app: ledger}"),
                     svc("fx", "payments", "[{name: tls, port: 443}]",
                         extra="  type: ExternalName\n  externalName: fx.example.com\n"),
                     namespace("edge", INJECTED), workload("ingress", "edge", "{istio: ingressgateway}", proxy="auto"),
                     svc("ingress", "edge", "[{name: web, port: 80}]", "{istio: ingressgateway}"),
                     namespace("legacy"), workload("ftp", "legacy", "{app: ftp}", "ftp"),
                     svc("ftp", "legacy", "[{port: 21}]"))}, set()),
    # -- App Mesh routes -------------------------------------------------------------------------------------------
    ("appmesh.routes", "weights adding up to 90, a target that does not exist",
     {"a.yaml": docs(node("ledger-v1", "pay"), node("ledger-v2", "pay"),
                     router("ledger", "pay",
                            mesh_route("split", f"{target('ledger-v1', 60)}, {target('ledger-v2', 30)}")
                            + mesh_route("beta", target("ledger-v3", 100), "prefix: /beta")))},
     {("MSH0267", "VirtualRouter pay/ledger"), ("MSH0268", "VirtualRouter pay/ledger")}),
    ("appmesh.routes", "a router with two listeners and a route without port; a target port the node lacks",
     {"a.yaml": docs(node("ledger-v1", "pay", (8080, 9090)),
                     router("ledger", "pay", mesh_route("api", target("ledger-v1", 100, 8080))
                            + mesh_route("admin", target("ledger-v1", 100, 9191), "prefix: /admin, port: 9090"),
                            (8080, 9090)))},
     {("MSH0270", "VirtualRouter pay/ledger")}),
    ("appmesh.routes", "a 90/10 split to nodes that exist, ports that agree, weight 1 for a single target",
     {"a.yaml": docs(node("ledger-v1", "pay", (8080, 9090)), node("ledger-v2", "pay", (8080, 9090)),
                     router("ledger", "pay", mesh_route("api", f"{target('ledger-v1', 90, 8080)}, "
                                                        f"{target('ledger-v2', 10, 8080)}", "prefix: /, port: 8080")
                            + mesh_route("admin", target("ledger-v1", 1, 9090), "prefix: /admin, port: 9090"),
                            (8080, 9090)))}, set()),
    ("appmesh.routes", "targets in a namespace whose virtual nodes the input does not hold: not judged",
     {"a.yaml": router("ledger", "pay", mesh_route("api", target("ledger-v1", 100)))}, set()),
    # -- App Mesh references ---------------------------------------------------------------------------------------
    ("appmesh.references", "a backend, a router and a node that do not exist",
     {"a.yaml": docs(node("web", "pay", extra=backend("ledgr")),
                     virtual_service("ledger", "pay", "virtualRouter: {virtualRouterRef: {name: ledger-router}}"),
                     virtual_service("audit", "pay", "virtualNode: {virtualNodeRef: {name: audit-v1}}"),
                     router("fx-router", "pay", mesh_route("fx", target("web", 100))))},
     {("MSH0269", "VirtualNode pay/web"), ("MSH0269", "VirtualService pay/ledger"),
      ("MSH0268", "VirtualService pay/audit")}),
    ("appmesh.references", "every reference resolves",
     {"a.yaml": docs(node("web", "pay", extra=backend("ledger")), node("ledger-v1", "pay"),
                     virtual_service("ledger", "pay", "virtualRouter: {virtualRouterRef: {name: ledger-router}}"),
                     router("ledger-router", "pay", mesh_route("api", target("ledger-v1", 100))))}, set()),
    # -- App Mesh TLS ----------------------------------------------------------------------------------------------
    ("appmesh.tls_trust", "a client policy with an empty trust, a listener validating without one",
     {"a.yaml": docs(node("web", "pay", extra="  backendDefaults:\n    clientPolicy:\n      tls:\n"
                                              "        validation: {trust: {acm: {certificateAuthorityARNs: []}}}\n"),
                     node("ledger-v1", "pay").replace(
                         "protocol: http}\n", "protocol: http}\n    tls:\n      mode: STRICT\n"
                         "      certificate: {sds: {secretName: ledger}}\n      validation: {subjectAlternativeNames: "
                         "{match: {exact: [web]}}}\n", 1))},
     {("MSH0271", "VirtualNode pay/web"), ("MSH0271", "VirtualNode pay/ledger-v1")}),
    ("appmesh.tls_trust", "SDS trust on both sides",
     {"a.yaml": docs(node("web", "pay", extra="  backendDefaults:\n    clientPolicy:\n      tls:\n"
                                              f"        validation: {{trust: {TRUST}}}\n"),
                     node("ledger-v1", "pay").replace(
                         "protocol: http}\n", "protocol: http}\n    tls:\n      mode: STRICT\n"
                         "      certificate: {sds: {secretName: ledger}}\n"
                         f"      validation: {{trust: {TRUST}}}\n", 1))}, set()),
]


@pytest.mark.parametrize(("analyzer", "case", "files", "expected"), SEC_GRID, ids=[f"{g[0]}: {g[1]}" for g in SEC_GRID])
def test_security_and_workload_analyzer_grid(analyzer: str, case: str, files: dict[str, str],
                                             expected: set[tuple[str, str]]) -> None:
    assert_grid_case(analyzer, files, expected)


def live(files: dict[str, str], listed: str = "kubernetes:all-namespaces") -> MeshSnapshot:
    """The manifests as the live API's answer: Services and Namespaces from the cluster, the
    Namespace list read cluster-wide (or, with ``listed="kubernetes"``, one namespace at a time)."""
    snap = manifests_snapshot(files)
    return replace(snap, services=tuple(replace(s, origin="kubernetes") for s in snap.services),
                   config=tuple(replace(c, origin=listed) if c.kind == "Namespace" else c for c in snap.config),
                   sources=(SourceStatus("kubernetes", SourceState.OK, kind="kubernetes"),))


def test_the_cluster_wide_namespace_list_vouches_that_a_namespace_does_not_exist() -> None:
    files = {"live.yaml": docs(LEDGER_NS, authz("callers", "payments", "  - from: [{source: {namespaces: [claim]}}]\n",
                                                "{app: ledger}"))}
    found = analyzer_findings(live(files), ["config.authz_identity"])
    assert pairs(found) == {("MSH0254", "AuthorizationPolicy payments/callers")}
    assert [str(s) for s in found[0].services] == []  # no Service in the input selects ledger
    # Namespaces read one by one (sources.kubernetes.namespaces) say nothing of the others.
    assert analyzer_findings(live(files, "kubernetes"), ["config.authz_identity"]) == []


def test_an_identity_finding_touches_the_services_the_policy_protects() -> None:
    snap = manifests_snapshot({"a.yaml": docs(
        CLAIMS, LEDGER_NS, svc("ledger", "payments", "[{name: http, port: 8080}]"),
        authz("callers", "payments", principals("cluster.local/ns/claims/sa/claims-portal"), "{app: ledger}"))})
    (f,) = analyzer_findings(snap, ["config.authz_identity"])
    assert [str(s) for s in f.services] == ["payments/ledger"]
    assert f.evidence["service_accounts_in_namespace"] == ("claims-adjuster", "claims-intake")
    assert (f.file, f.line) == ("a.yaml", 58)  # the principal's own line
