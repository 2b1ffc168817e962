"""Which pods a scoped question lists: per namespace of the neighbourhood, one set-based label
selector matching at least the pods of its Services and workloads, or the whole namespace when
the graph phase's Services and Deployments cannot say which pods those are."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from meshobs.demo.labelselector import parse_selector
from meshobs.engine import diagnose
from meshobs.model import (
    ConfigResource,
    Edge,
    Latency,
    MeshSnapshot,
    ResponseStat,
    Service,
    ServiceRef,
    Workload,
    WorkloadRef,
)
from meshobs.model.frozen import frozen_map
from meshobs.neighbourhood import neighbourhood, pod_selectors

T = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _svc(ns: str, name: str, **selector: str) -> Service:
    return Service(ServiceRef(ns, name), selector=frozen_map(selector))


def _wl(ns: str, name: str, **labels: str) -> Workload:
    return Workload(WorkloadRef(ns, name), labels=frozen_map(labels))


def _snapshot(*, ambient: str | None = None) -> MeshSnapshot:
    config = (ConfigResource("Namespace", "", ambient, frozen_map({}),
                             labels=frozen_map({"istio.io/dataplane-mode": "ambient"})),) if ambient else ()
    return MeshSnapshot(time=T, window_s=300, services=(
        _svc("quay", "berth-booking", app="berth-booking"),
        _svc("quay", "tide-tables", app="tide-tables", tier="data"),
        _svc("quay", "legacy"),  # no selector: its endpoints are managed by hand
        _svc("yard", "hoist-control", component="hoist"),
        _svc("dunes", "sand-gauge", app="sand-gauge"),
    ), workloads=(
        _wl("quay", "berth-booking-v3", app="berth-booking", version="v3"),
        _wl("quay", "tide-tables-v5", app="tide-tables", version="v5", tier="data"),
        _wl("yard", "crane-scheduler-v9", app="crane-scheduler", version="v9"),
        _wl("dunes", "sand-gauge-v1", app="sand-gauge", version="v1"),
    ), config=config)


def test_a_namespace_is_narrowed_to_its_services_and_workloads_pods() -> None:
    services = {ServiceRef("quay", "berth-booking"), ServiceRef("quay", "tide-tables")}
    workloads = {WorkloadRef("quay", "berth-booking-v3"), WorkloadRef("quay", "tide-tables-v5")}
    [(ns, selector)] = pod_selectors(_snapshot(), services, workloads)
    assert (ns, selector) == ("quay", "app in (berth-booking,tide-tables)")
    assert selector is not None
    match = parse_selector(selector)
    assert match({"app": "tide-tables", "version": "v5", "tier": "data", "pod-template-hash": "7f9d"})
    assert not match({"app": "pilot-roster", "version": "v1"})


def test_whole_namespaces_where_the_pods_cannot_be_told() -> None:
    got = dict(pod_selectors(_snapshot(ambient="dunes"), {
        ServiceRef("quay", "berth-booking"), ServiceRef("quay", "legacy"),  # no selector
        ServiceRef("yard", "hoist-control"),  # shares no key with the workload below
        ServiceRef("dunes", "sand-gauge"),  # an ambient namespace
    }, {WorkloadRef("yard", "crane-scheduler-v9"), WorkloadRef("dunes", "sand-gauge-v1")}))
    assert got == {"quay": None, "yard": None, "dunes": None}
    # A workload known only from traffic (no Deployment template: a StatefulSet's, say).
    assert dict(pod_selectors(_snapshot(), {ServiceRef("quay", "berth-booking")},
                              {WorkloadRef("quay", "slag-store-0")})) == {"quay": None}


def test_a_shared_key_other_than_app_is_used() -> None:
    got = dict(pod_selectors(_snapshot(), {ServiceRef("yard", "hoist-control")}, set()))
    assert got == {"yard": "component in (hoist)"}


# -- a namespace-wide comparison: the target's sidecars behind its neighbours' ------------------
OLD_PROXY, NEW_PROXY = "docker.io/istio/proxyv2:1.23.4", "docker.io/istio/proxyv2:1.24.2"


def _upgraded_quay(behind: str) -> MeshSnapshot:
    """Istio was upgraded and most of namespace quay restarted; ``behind``'s pods were not (their
    sidecars run the old image: config.proxy_image, MSH0262). The ferry desk calls the berth
    booking, which calls the tide gauge in namespace shoal; the pilot roster, the tide watch and
    the crane log talk among themselves beside them."""
    from dataclasses import replace

    from tests.support.builders import MeshBuilder

    quay, shoal = MeshBuilder(namespace="quay"), MeshBuilder(namespace="shoal")
    for name in ("ferry-desk", "berth-booking", "pilot-roster", "tide-watch", "crane-log"):
        quay.service(name)
    shoal.service("tide-gauge").service("buoy-log").service("depth-probe")
    quay.call("ferry-desk", "berth-booking").call("pilot-roster", "tide-watch").call("crane-log", "tide-watch")
    shoal.call("buoy-log", "depth-probe")
    for m in (quay, shoal):
        for name, s in m.services.items():
            m.services[name] = replace(s, selector=frozen_map({"app": name}))
        for name, w in m.workloads.items():
            m.workloads[name] = replace(w, labels=frozen_map({"app": w.app, "version": w.version}))
        for name, p in m.pods.items():
            app = name.rsplit("-", 2)[0]
            m.pods[name] = replace(p, labels=frozen_map({"app": app, "version": "v1", "pod-template-hash": "5d9c"}),
                                   containers=("app", "istio-proxy"),
                                   proxy_image=OLD_PROXY if app == behind else NEW_PROXY)
    a, b = quay.build(), shoal.build()
    hop = Edge(WorkloadRef("quay", "berth-booking-v1"), ServiceRef("shoal", "tide-gauge"),
               destination_workload=WorkloadRef("shoal", "tide-gauge-v1"),
               source_service=ServiceRef("quay", "berth-booking"), request_rate=10.0,
               responses=(ResponseStat("200", "-", 10.0),), latency=Latency(p50=4.0, p99=20.0))
    return replace(a, services=a.services + b.services, workloads=a.workloads + b.workloads, pods=a.pods + b.pods,
                   proxies=a.proxies + b.proxies, edges=(*a.edges, *b.edges, hop))


def _as_scoped(snapshot: MeshSnapshot, target: ServiceRef) -> MeshSnapshot:
    """The pods a scoped question lists, as the API server applies its selectors (the graph
    phase, which the neighbourhood is computed from, lists none)."""
    from dataclasses import replace

    scope = neighbourhood(replace(snapshot, pods=()), target)
    selectors = dict(scope.pod_selectors)
    return replace(snapshot, pods=tuple(
        p for p in snapshot.pods if p.namespace in selectors
        and (selectors[p.namespace] is None or parse_selector(selectors[p.namespace] or "")(dict(p.labels)))))


@pytest.mark.parametrize("behind", ["berth-booking", "tide-gauge", "pilot-roster"])
def test_a_namespace_wide_comparison_finds_the_same_in_a_scoped_question(behind: str) -> None:
    target = ServiceRef("quay", "berth-booking")
    mesh_wide = _upgraded_quay(behind)
    scoped = _as_scoped(mesh_wide, target)
    assert len(scoped.pods) < len(mesh_wide.pods)  # still narrowed (shoal, below the target)
    want, got = diagnose(mesh_wide, target), diagnose(scoped, target)
    assert [(f.code, f.subject, f.service) for f in got.findings] == \
        [(f.code, f.subject, f.service) for f in want.findings]
    assert got.status == want.status
    # The case that differed: the target's own sidecars behind its namespace's.
    assert any(f.code == "MSH0262" for f in want.findings) is (behind == "berth-booking")
