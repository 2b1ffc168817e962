"""Which pods a scoped question lists: per namespace of the neighbourhood, one set-based label
selector matching at least the pods of its Services and workloads, or the whole namespace when
the graph phase's Services and Deployments cannot say which pods those are."""

from __future__ import annotations

from datetime import UTC, datetime

from meshobs.demo.labelselector import parse_selector
from meshobs.model import ConfigResource, MeshSnapshot, Service, ServiceRef, Workload, WorkloadRef
from meshobs.model.frozen import frozen_map
from meshobs.neighbourhood import pod_selectors

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
