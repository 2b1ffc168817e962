"""The control plane's checks and configuration delivery on hand-built meshes: istiod's syncz
(sent vs acknowledged), rejects tied to the EnvoyFilter that patches them, istiod's readiness and
push failures, version skew, the injector, and the ranking that puts a delivery fault above
what it leaves behind (weight drift, proxies never configured)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from meshobs.checks.base import Settings
from meshobs.engine import diagnose, run_checks
from meshobs.model import (
    ConfigResource,
    ControlPlane,
    HttpRoute,
    InjectionWebhook,
    IstiodReplica,
    Mesh,
    MeshSnapshot,
    RouteDestination,
    ServiceRef,
    SourceState,
    XdsReject,
    XdsResource,
    XdsSync,
    freeze,
    frozen_map,
)
from tests.support.builders import T0, MeshBuilder, flags

CART = ServiceRef("default", "cart-service")
UUID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def nonce(age_s: float, counter: int, uuid: str = UUID) -> str:
    """istiod's nonce: the push version (RFC 3339 time / counter) followed by a UUID."""
    return f"{(T0 - timedelta(seconds=age_s)).strftime('%Y-%m-%dT%H:%M:%SZ')}/{counter}{uuid}"


def sync(proxy: str, istiod: str = "istiod-a", **acked_differs: str) -> XdsSync:
    """A syncz row: every type sent 100 s ago and acknowledged, except the types given, whose
    acknowledged nonce is the value ("" = never acknowledged)."""
    sent = {x: nonce(100, 40) for x in ("cds", "lds", "eds", "rds")}
    acked = {**sent, **acked_differs}
    return XdsSync(proxy=proxy, istiod=istiod, sent=frozen_map(sent), acked=frozen_map(acked),
                   proxy_type="sidecar", istio_version="1.24.2")


def with_cp(m: MeshBuilder, *syncs: XdsSync, replicas: tuple[IstiodReplica, ...] = (),
            rejects: tuple[XdsReject, ...] = (), config: tuple[ConfigResource, ...] = ()) -> MeshSnapshot:
    m.source("istiod", SourceState.OK, kind="istiod")
    snap = m.build()
    cp = ControlPlane(replicas=replicas or (IstiodReplica("istiod-a", ready=True, syncz=True,
                                                          syncz_namespaces=(), sources=("istiod",)),),
                      syncs=syncs, rejects=rejects)
    return replace(snap, control_plane=cp, config=snap.config + config)


def healthy() -> MeshBuilder:
    return MeshBuilder().service("frontend").service("cart-service").call("frontend", "cart-service")


def every_proxy_synced(m: MeshBuilder) -> list[XdsSync]:
    return [sync(p.id, istiod=f"istiod-{'ab'[i % 2]}") for i, p in enumerate(m.proxies.values())]


def codes(snapshot: MeshSnapshot, service: ServiceRef = CART, settings: Settings | None = None) -> set[tuple[str, str]]:
    _r, found = run_checks(snapshot, service, settings or Settings())
    return {(f.code, f.subject) for f in found if f.code in ("MSH0105", "MSH0106", "MSH0107", "MSH0108")}


# -- sent vs acknowledged ---------------------------------------------------------------------

def test_synced_proxies_with_different_versions_are_not_stale() -> None:
    """Two replicas number pushes their own way and a scoped push reached the frontend only:
    versions differ everywhere, every proxy acknowledged what its replica sent."""
    m = healthy()
    for i, pod in enumerate(m.proxies):
        m.proxy(pod, xds=tuple(XdsResource(t, f"2026-11-20T11:{10 + i}:00Z/{7 + 100 * i}", T0 - timedelta(hours=i))
                               for t in ("cds", "lds", "rds")))
    assert codes(with_cp(m, *every_proxy_synced(m))) == set()


def test_a_push_not_acknowledged_for_minutes_is_stale() -> None:
    m = healthy()
    rows = [sync(p.id) for p in m.proxies.values() if p.pod != "cart-v1-0"]
    rows.append(sync("cart-v1-0.default", cds=nonce(100, 40, uuid="ffffffff-0000-4000-8000-000000000000")))
    snapshot = with_cp(m, *rows)
    assert codes(snapshot) == {("MSH0105", "Proxy cart-v1-0.default")}
    _r, found = run_checks(snapshot, CART, Settings())
    (stale,) = [f for f in found if f.code == "MSH0105"]
    assert stale.fields["xds_type"] == "cds" and stale.fields["status"] == "STALE"
    assert stale.evidence["sent_s_ago"] == 100 and "syncz" in str(stale.evidence["signal"])
    # A push sent 100 s ago may still be in flight for a mesh that allows two minutes.
    assert codes(snapshot, settings=Settings(xds_unacked_after_s=120)) == set()


def test_never_acknowledged_and_not_sent() -> None:
    m = healthy()
    never = sync("cart-v1-0.default", rds="")
    not_sent = replace(sync("cart-v1-1.default"), sent=frozen_map({"cds": nonce(100, 40)}),
                       acked=frozen_map({"cds": nonce(100, 40)}))
    found = codes(with_cp(m, never, not_sent))
    assert found == {("MSH0105", "Proxy cart-v1-0.default")}


def test_a_proxy_listed_by_two_replicas_counts_as_synced_when_one_says_so() -> None:
    """During a reconnect a proxy may show in two replicas' syncz; the old stream's row lags."""
    m = healthy()
    old = sync("cart-v1-0.default", istiod="istiod-a", rds=nonce(900, 3))
    new = sync("cart-v1-0.default", istiod="istiod-b")
    assert codes(with_cp(m, old, new)) == set()


# -- rejected pushes --------------------------------------------------------------------------

def lua_filter(namespace: str = "default", app: str = "cart", apply_to: str = "HTTP_ROUTE",
               context: str = "SIDECAR_OUTBOUND") -> ConfigResource:
    return ConfigResource("EnvoyFilter", namespace, "lua-rewrite", freeze({
        "workloadSelector": {"labels": {"app": app}},
        "configPatches": [{"applyTo": apply_to, "match": {"context": context},
                           "patch": {"operation": "MERGE", "value": {}}}]}), mesh=Mesh.ISTIO)


def nacking(m: MeshBuilder, pod: str = "cart-v1-0") -> MeshBuilder:
    """``pod``'s proxy rejected 5 RDS pushes; its routes are stuck an hour back."""
    xds = (XdsResource("cds", "v9", T0 - timedelta(seconds=60)), XdsResource("lds", "v9", T0 - timedelta(seconds=60)),
           XdsResource("rds", "v3", T0 - timedelta(hours=1)))
    return m.proxy(pod, update_rejected=flags(rds=5), xds=xds)


def test_a_current_rejection_names_the_envoyfilter_that_patches_the_rejected_type() -> None:
    m = nacking(healthy())
    rows = [sync(p.id) for p in m.proxies.values() if p.pod != "cart-v1-0"]
    rows.append(sync("cart-v1-0.default", rds=nonce(3600, 12)))
    cluster_patch = ConfigResource("EnvoyFilter", "default", "cluster-tweak",
                                   freeze({"configPatches": [{"applyTo": "CLUSTER"}]}), mesh=Mesh.ISTIO)
    snapshot = with_cp(m, *rows, config=(lua_filter(), cluster_patch),
                       rejects=(XdsReject("istiod-a", "cart-v1-0.default", "rds", "Internal"),))
    _r, found = run_checks(snapshot, CART, Settings())
    (nack,) = [f for f in found if f.code == "MSH0107"]
    assert nack.subject == "Proxy cart-v1-0.default" and nack.fields["xds_type"] == "rds"
    # The route patch, not the cluster patch (CDS is accepted).
    assert nack.evidence["envoy_filters"] == {"default/lua-rewrite": ("HTTP_ROUTE",)}
    assert "lua-rewrite" in str(nack.fields["culprit"]) and "cluster-tweak" not in str(nack.fields["culprit"])
    assert {"Envoy counted 5 rejected", "istiod recorded a reject (Internal)"} <= set(
        str(nack.fields["signals"]).split(", "))
    assert not [f for f in found if f.code == "MSH0105"]  # the NACK, not a second "unacknowledged"


@pytest.mark.parametrize(("ef", "named"), [
    (lua_filter(), True),
    (lua_filter(app="frontend"), False),  # selects another workload
    (lua_filter(namespace="istio-system", app="cart"), True),  # the root namespace: the whole mesh
    (lua_filter(namespace="other"), False),
    (lua_filter(context="GATEWAY"), False),  # patches gateways only
    (lua_filter(apply_to="LISTENER"), False),  # patches listeners: LDS is accepted
])
def test_which_envoyfilters_are_named(ef: ConfigResource, named: bool) -> None:
    m = nacking(healthy())
    snapshot = replace(m.build(), config=(ef,))
    _r, found = run_checks(snapshot, CART, Settings())
    (nack,) = [f for f in found if f.code == "MSH0107"]
    assert bool(nack.evidence["envoy_filters"]) is named


def test_a_rejection_acknowledged_since_or_no_longer_stuck_is_not_reported() -> None:
    m = healthy().proxy("cart-v1-0", update_rejected=flags(rds=5))  # every type current
    assert codes(m.build()) == set()
    assert codes(with_cp(nacking(healthy()), *every_proxy_synced(healthy()))) == set()  # syncz: SYNCED


def test_istiods_reject_gauge_and_syncz_suffice_without_envoy() -> None:
    m = healthy().without("envoy")
    snapshot = with_cp(m, sync("cart-v1-0.default", rds=nonce(3600, 12)), sync("cart-v1-1.default"),
                       rejects=(XdsReject("istiod-a", "cart-v1-0.default", "rds", "InvalidArgument"),))
    _r, found = run_checks(snapshot, CART, Settings())
    (nack,) = [f for f in found if f.code == "MSH0107"]
    assert nack.subject == "Proxy cart-v1-0.default" and "syncz" in str(nack.evidence["signal"])


def test_no_proxy_data_and_no_syncz_could_not_check() -> None:
    m = healthy().without("envoy")
    results, _found = run_checks(with_cp(m), CART, Settings())
    (result,) = [r for r in results if r.id == "proxy.config_stale"]
    assert result.status == "skipped" and "syncz lists none" in result.reason


# -- the ranking: delivery faults above what they leave behind --------------------------------

def drifted(m: MeshBuilder) -> MeshSnapshot:
    """cart's proxies route database 100/0 although the VirtualService says 80/20."""
    m.service("database-service", versions=("v1", "v2")).call("cart-service", "database-service")
    host = "database-service.default.svc.cluster.local"
    routes = (HttpRoute("8080", f"{host}:8080", (host,), "canary", frozen_map({}),
                        (RouteDestination(f"outbound|8080|v1|{host}", 100),)),)
    for pod in m.proxies_of("cart-service"):
        m.proxy(pod, routes=routes)
    vs = ConfigResource("VirtualService", "default", "database-service", freeze({
        "hosts": ["database-service"], "http": [{"name": "canary", "route": [
            {"destination": {"host": "database-service", "subset": "v1"}, "weight": 80},
            {"destination": {"host": "database-service", "subset": "v2"}, "weight": 20}]}]}), mesh=Mesh.ISTIO)
    snap = m.build()
    return replace(snap, config=(*snap.config, vs))


def test_weight_drift_ranks_below_the_rejection_that_explains_it_from_either_side() -> None:
    snapshot = drifted(nacking(healthy()))
    for target in (CART, ServiceRef("default", "database-service")):
        report = diagnose(snapshot, target)
        order = [f.code for f in report.findings]
        assert order.index("MSH0107") < order.index("MSH0203"), (target, order)
        drift = next(f for f in report.findings if f.code == "MSH0203")
        assert drift.caused_by == ("MSH0107 Proxy cart-v1-0.default",)


def test_a_rejection_on_another_workload_does_not_explain_the_drift() -> None:
    snapshot = drifted(nacking(healthy(), pod="frontend-v1-0"))
    report = diagnose(snapshot, ServiceRef("default", "database-service"))
    assert report.findings[0].code == "MSH0203" and report.findings[0].caused_by == ()


def test_istiod_not_ready_explains_proxies_never_configured() -> None:
    m = healthy().proxy("cart-v1-0", ready=False, state="PRE_INITIALIZING", control_plane_connected=False)
    down = IstiodReplica("istiod-a", ready=False, ready_detail="/ready answered HTTP 503", syncz=True,
                         syncz_namespaces=(), sources=("istiod",))
    m.call("frontend", "cart-service", responses=[("503", "UF", 1.0)])
    report = diagnose(with_cp(m, replicas=(down,)), ServiceRef("default", "frontend"))
    first = report.findings[0]
    assert (first.code, first.subject) == ("MSH0110", "Pod istio-system/istiod-a")
    not_ready = next(f for f in report.findings if f.code == "MSH0102")
    assert "MSH0110 Pod istio-system/istiod-a" in not_ready.caused_by


def test_a_healthy_istiod_is_not_pulled_into_a_diagnosis() -> None:
    m = healthy().proxy("cart-v1-0", ready=False, state="INITIALIZING")
    report = diagnose(with_cp(m, *every_proxy_synced(m)), CART)
    assert {f.code for f in report.findings} == {"MSH0102"}


# -- istiod itself ----------------------------------------------------------------------------

def analyzer_codes(snapshot: MeshSnapshot, analyzer_id: str) -> tuple[str, list[tuple[str, str]], str]:
    from meshobs.checks.registry import REGISTRY
    from meshobs.engine.runner import analyze

    a = REGISTRY[analyzer_id]
    analysis = analyze(snapshot, Settings(), [a])  # type: ignore[list-item]
    result = analysis.results[analyzer_id]
    found = [(f.code, f.subject) for f in analysis.mesh_level]
    return result.status, found, result.reason


def replica(**kw: object) -> IstiodReplica:
    base: dict[str, object] = {"pod": "istiod-a", "sources": ("istiod", "prometheus"), "version": "1.24.2",
                               "pushes_per_s": frozen_map({"cds": 0.5, "lds": 0.5})}
    return IstiodReplica(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(("r", "expected"), [
    (replica(ready=True), []),
    (replica(ready=False, ready_detail="/ready answered HTTP 503"), ["MSH0110"]),
    # /ready could not be asked; the pod's Ready condition says it.
    (replica(ready=None, unreachable="connection refused", pod_ready=False), ["MSH0110"]),
    # /ready is istiod's own, current answer: it wins over a pod condition a probe period old.
    (replica(ready=True, pod_ready=False), []),
    # Failed sends: 40 % of CDS sends; push context errors.
    (replica(ready=True, send_errors_per_s=frozen_map({"cds": 0.35})), ["MSH0111"]),
    (replica(ready=True, push_context_errors_per_s=0.1), ["MSH0111"]),
    # The churn of proxies leaving mid-push: 1 % of sends.
    (replica(ready=True, pushes_per_s=frozen_map({"cds": 3.0}), send_errors_per_s=frozen_map({"cds": 0.03})), []),
    (replica(ready=False, send_errors_per_s=frozen_map({"lds": 0.35})), ["MSH0110", "MSH0111"]),
])
def test_istiod_health(r: IstiodReplica, expected: list[str]) -> None:
    found = []
    for analyzer_id in ("proxy.istiod_ready", "proxy.istiod_pushes"):
        status, mine, _reason = analyzer_codes(with_cp(healthy(), replicas=(r,)), analyzer_id)
        assert status == ("fail" if mine else "pass")
        found += mine
    assert [c for c, _s in found] == expected
    assert all(s == "Pod istio-system/istiod-a" for _c, s in found)


def test_an_unreachable_istiod_is_could_not_check_never_healthy() -> None:
    r = IstiodReplica("istiod-a", unreachable="cannot reach http://10.0.0.9:8080/ready (connection refused)",
                      sources=("istiod",))
    status, found, reason = analyzer_codes(with_cp(healthy(), replicas=(r,)), "proxy.istiod_ready")
    assert (status, found) == ("skipped", []) and "connection refused" in reason
    status, found, reason = analyzer_codes(with_cp(healthy(), replicas=(r,)), "proxy.istiod_pushes")
    assert (status, found) == ("skipped", []) and "no istiod metrics" in reason
    for analyzer_id in ("proxy.istiod_ready", "proxy.istiod_pushes"):
        status, _found, reason = analyzer_codes(healthy().build(), analyzer_id)
        assert status == "skipped" and "no istiod replica" in reason


@pytest.mark.parametrize(("proxies", "bad"), [
    (("1.24.2", "1.24.1", "1.23.4", "1.22.0"), None),  # a canary upgrade's lag is supported
    (("1.24.2", "1.25.0"), "1.25.0"),  # newer than istiod
    (("1.24.2", "1.21.3"), "1.21.3"),  # three minors older
])
def test_version_skew(proxies: tuple[str, ...], bad: str | None) -> None:
    rows = [replace(sync(f"p{i}.default"), istio_version=v) for i, v in enumerate(proxies)]
    _status, found, _reason = analyzer_codes(with_cp(healthy(), *rows, replicas=(replica(ready=True),)),
                                            "proxy.version_skew")
    assert [c for c, _s in found] == ([] if bad is None else ["MSH0112"])
    if bad:
        assert found[0][1] == "ControlPlane istio-system/istiod"


def test_version_skew_from_pilot_xds_when_there_is_no_syncz() -> None:
    r = replica(ready=True, connected_by_version=frozen_map({"1.24.2": 40.0, "1.26.0": 2.0}))
    _status, found, _reason = analyzer_codes(with_cp(healthy(), replicas=(r,)), "proxy.version_skew")
    assert [c for c, _s in found] == ["MSH0112"]


HOOK = InjectionWebhook("istio-sidecar-injector", "namespace.sidecar-injector.istio.io", "default",
                        service="istio-system/istiod", failure_policy="Fail")


def with_webhooks(m: MeshBuilder, hooks: tuple[InjectionWebhook, ...] | None, *services: str) -> MeshSnapshot:
    snap = m.build()
    from meshobs.model import Service

    extra = tuple(Service(ServiceRef("istio-system", s), origin="kubernetes") for s in services)
    return replace(snap, services=snap.services + extra, control_plane=ControlPlane(webhooks=hooks))


def test_injector() -> None:
    m = healthy()
    assert analyzer_codes(with_webhooks(m, (HOOK,), "istiod"), "proxy.injector")[:2] == ("pass", [])
    status, found, _r = analyzer_codes(with_webhooks(m, (), "istiod"), "proxy.injector")
    assert found == [("MSH0113", "ControlPlane istio-system/istiod")]
    stale = replace(HOOK, service="istio-system/istiod-1-22", configuration="istio-revision-tag-default")
    status, found, _r = analyzer_codes(with_webhooks(m, (HOOK, stale), "istiod"), "proxy.injector")
    assert found == [("MSH0114", "MutatingWebhookConfiguration istio-revision-tag-default")]
    status, found, reason = analyzer_codes(with_webhooks(m, None, "istiod"), "proxy.injector")
    assert (status, found) == ("skipped", []) and "not listed" in reason


def test_no_injector_and_no_pod_expecting_one_is_fine() -> None:
    m = healthy()
    for pod in list(m.pods):
        m.pod(pod, sidecar_injection_expected=None)
    assert analyzer_codes(with_webhooks(m, ()), "proxy.injector")[:2] == ("pass", [])
