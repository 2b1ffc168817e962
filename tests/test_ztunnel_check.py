"""proxy.node_proxy (MSH0115): ambient pods whose node has no working ztunnel.

On the ledger library scenario (a savings bank; statement-api's two pods run on Istio's ambient
data plane, on demo-node-a and demo-node-b, one ztunnel per node): healthy, the check passes;
each way a node's ztunnel stops working is one finding on that node, naming its ambient pods;
with no ztunnel read at all, it could not check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from meshobs.checks.base import Settings
from meshobs.collect import build_snapshot
from meshobs.demo.catalog import load_demo
from meshobs.engine import run_checks
from meshobs.model import ContainerRestarts, MeshSnapshot, Pod, ServiceRef

STATEMENTS = ServiceRef("statements", "statement-api")


@pytest.fixture(scope="module")
def ledger() -> MeshSnapshot:
    snapshot = build_snapshot(load_demo("ledger-day"))
    ambient = {p.node for p in snapshot.pods
               if p.ambient and p.workload and p.workload.name.startswith("statement-api")}
    assert ambient == {"demo-node-a", "demo-node-b"}  # what the cases below take apart
    return snapshot


def _ztunnels(snapshot: MeshSnapshot, change: Callable[[Pod], Pod | None]) -> MeshSnapshot:
    """The snapshot with every ztunnel pod changed (None: gone)."""
    pods = [change(p) if p.node_proxy else p for p in snapshot.pods]
    return replace(snapshot, pods=tuple(p for p in pods if p is not None))


def _judged(snapshot: MeshSnapshot) -> tuple[str, str, list[dict[str, object]]]:
    results, found = run_checks(snapshot, STATEMENTS, Settings())
    [result] = [r for r in results if r.id == "proxy.node_proxy"]
    return result.status, result.reason, [
        {"subject": f.subject, "pods": f.fields["pods"], "state": f.fields["state"], "message": f.message,
         "ambient_pods": f.evidence["ambient_pods"]} for f in found if f.code == "MSH0115"]


def test_every_node_with_a_ready_ztunnel_passes(ledger: MeshSnapshot) -> None:
    assert _judged(ledger) == ("pass", "", [])


def test_a_ztunnel_not_ready_cuts_off_its_nodes_ambient_pods_only(ledger: MeshSnapshot) -> None:
    down = _ztunnels(ledger, lambda z: replace(z, ready=False) if z.node == "demo-node-b" else z)
    status, _reason, [found] = _judged(down)
    assert status == "fail"
    assert found["subject"] == "Node demo-node-b" and found["pods"] == "1 ambient pod"
    assert str(found["message"]).startswith("1 ambient pod on node demo-node-b without a working ztunnel: ")
    assert [p.rsplit("-", 2)[0] for p in found["ambient_pods"]] == ["statements/statement-api-v7"]  # type: ignore[attr-defined]
    assert str(found["state"]).endswith("Running, not ready")


def test_a_crash_looping_ztunnel_says_so(ledger: MeshSnapshot) -> None:
    looping = ContainerRestarts("istio-proxy", 7, reason="Error", exit_code=1, waiting="CrashLoopBackOff")
    down = _ztunnels(ledger, lambda z: replace(z, ready=False, restarts=7, restart_history=(looping,))
                     if z.node == "demo-node-a" else z)
    _status, _reason, [found] = _judged(down)
    assert found["subject"] == "Node demo-node-a" and "Running, CrashLoopBackOff" in str(found["state"])


def test_a_node_where_no_ztunnel_is_scheduled(ledger: MeshSnapshot) -> None:
    down = _ztunnels(ledger, lambda z: None if z.node == "demo-node-a" else z)
    _status, _reason, [found] = _judged(down)
    assert found["subject"] == "Node demo-node-a"
    assert found["state"] == "no ztunnel pod runs there (it runs on 2 other node(s))"


def test_a_pending_ztunnel_beside_a_ready_one_is_not_a_fault(ledger: MeshSnapshot) -> None:
    """A DaemonSet's rollout: the new pod starts while the old one still serves."""
    [old] = [p for p in ledger.pods if p.node_proxy and p.node == "demo-node-b"]
    rolling = replace(ledger, pods=(*ledger.pods, replace(old, name="ztunnel-n3w9q", ready=False, phase="Pending")))
    assert _judged(rolling)[0] == "pass"


def test_no_ztunnel_read_at_all_is_could_not_check(ledger: MeshSnapshot) -> None:
    status, reason, found = _judged(_ztunnels(ledger, lambda z: None))
    assert (status, found) == ("skipped", [])
    assert reason.startswith("could not check: no ztunnel pod was read")


def test_a_service_without_ambient_pods_is_not_judged_by_ztunnel(ledger: MeshSnapshot) -> None:
    """Sidecar services pass whatever the node proxies do: their traffic never meets ztunnel."""
    down = _ztunnels(ledger, lambda z: replace(z, ready=False))
    sidecar_services = {s.ref for s in down.services} - {STATEMENTS}
    for service in sorted(sidecar_services, key=str):
        if any(p.ambient for w in down.workloads_of(service) for p in down.pods_of(w.ref)):
            continue
        _results, found = run_checks(down, service, Settings())
        assert [f for f in found if f.code == "MSH0115"] == [], service


def test_a_ztunnel_restart_is_a_change_to_the_services_its_node_carries(ledger: MeshSnapshot) -> None:
    """A ztunnel that restarted and is ready again passes the check, but its restart dropped the
    connections of its node's ambient pods: the timeline dates it as a change touching their
    services (statement-api's pod on demo-node-b), not as a change of nobody's."""
    from datetime import timedelta

    from meshobs.timeline.changes import changes_between

    at = ledger.time - timedelta(minutes=3)
    restarted = _ztunnels(ledger, lambda z: replace(z, restart_history=(
        ContainerRestarts("istio-proxy", 1, at, "OOMKilled", 137),)) if z.node == "demo-node-b" else z)
    assert _judged(restarted)[0] == "pass"
    [change] = [c for c in changes_between(restarted, ledger.time - timedelta(minutes=10), ledger.time)
                if c.kind == "restart"]
    assert change.at == at and change.subject.startswith("Pod istio-system/ztunnel-")
    assert STATEMENTS in change.services and change.detail == "OOMKilled"
