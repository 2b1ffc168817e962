"""Proxy-health checks on hand-built meshes: (mesh, target) -> expected {(code, subject)}."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from meshobs.checks.base import Settings
from meshobs.engine import run_checks
from meshobs.model import ContainerRestarts, ServiceRef, XdsResource
from tests.support.builders import T0, MeshBuilder, flags


def healthy() -> MeshBuilder:
    m = MeshBuilder().service("frontend").service("cart-service").service("database-service")
    return m.call("frontend", "cart-service").call("cart-service", "database-service")


def sidecar_missing_injected() -> MeshBuilder:
    return healthy().pod("cart-v1-1", has_sidecar=False, sidecar_ready=None)


def sidecar_missing_peer_meshed() -> MeshBuilder:
    m = MeshBuilder().service("cart-service", versions=("v1", "v2"))
    for pod in ("cart-v2-0", "cart-v2-1"):
        m.pod(pod, has_sidecar=False, sidecar_injection_expected=False)
        m.proxies.pop(pod)
    return m


def ambient_next_to_sidecars() -> MeshBuilder:
    """cart v2 moved to the ambient data plane while v1 keeps its sidecar: no sidecar by design."""
    m = sidecar_missing_peer_meshed()
    for pod in ("cart-v2-0", "cart-v2-1"):
        m.pod(pod, ambient=True)
    return m


def node_proxy_next_to_sidecars() -> MeshBuilder:
    """A Service selects ambient's node proxy (ztunnel, whose container is no sidecar) beside
    meshed pods: a node proxy is a proxy, never a pod missing one."""
    m = sidecar_missing_peer_meshed()
    for pod in ("cart-v2-0", "cart-v2-1"):
        m.pod(pod, node_proxy=True)
    return m


def not_ready() -> MeshBuilder:
    return healthy().proxy("cart-v1-0", ready=False, state="INITIALIZING")


def not_ready_from_pods_only() -> MeshBuilder:
    return healthy().pod("cart-v1-1", sidecar_ready=False).without("envoy")


def restarting() -> MeshBuilder:
    return healthy().pod("cart-v1-0", restarts=5, sidecar_restarts=3)


def restarted(ago: timedelta, *, waiting: str | None = None, sidecar: bool = False) -> Callable[[], MeshBuilder]:
    """cart-v1-0's container restarted twice, the last time ``ago`` before the snapshot."""
    def build() -> MeshBuilder:
        history = (ContainerRestarts("istio-proxy" if sidecar else "cart", 2, T0 - ago, "OOMKilled", 137,
                                     waiting, sidecar),)
        return healthy().pod("cart-v1-0", restarts=2, sidecar_restarts=2 if sidecar else 0,
                             restart_history=history)
    return build


def young_proxy() -> MeshBuilder:
    m = MeshBuilder().service("cart-service", pods=3)
    return m.proxy("cart-v1-2", uptime_s=120.0)


def xds_behind() -> MeshBuilder:
    m = healthy()
    old = tuple(XdsResource(t, "v41", T0 - timedelta(hours=2)) for t in ("cds", "lds", "rds"))
    return m.proxy("cart-v1-0", xds=old)


def xds_old_same_version() -> MeshBuilder:
    m = healthy()
    # rds only: same version string as nobody else would be "behind"; make it old and alone.
    xds = (XdsResource("cds", "v42", T0 - timedelta(seconds=60)),
           XdsResource("lds", "v42", T0 - timedelta(seconds=60)),
           XdsResource("rds", "v42", T0 - timedelta(hours=3)))
    return m.proxy("cart-v1-0", xds=xds)


def rejected_and_disconnected() -> MeshBuilder:
    # Its clusters are stuck two hours back while listeners and routes kept updating: the
    # rejection is current.
    xds = (XdsResource("cds", "v40", T0 - timedelta(hours=2)), XdsResource("lds", "v42", T0 - timedelta(seconds=60)),
           XdsResource("rds", "v42", T0 - timedelta(seconds=60)))
    return healthy().proxy("cart-v1-0", update_rejected=flags(cds=2, lds=0), xds=xds,
                           control_plane_connected=False)


def rejected_long_ago() -> MeshBuilder:
    # Rejected two CDS pushes since it started, accepted the next: every type is current.
    return healthy().proxy("cart-v1-0", update_rejected=flags(cds=2, lds=0))


def warming() -> MeshBuilder:
    return healthy().proxy("cart-v1-1", warming_clusters=2)


CART = "cart-service"
GRID: list[tuple[str, Callable[[], MeshBuilder], str, set[tuple[str, str]]]] = [
    ("healthy", healthy, CART, set()),
    ("healthy-db", healthy, "database-service", set()),
    ("sidecar-missing-injected", sidecar_missing_injected, CART,
     {("MSH0101", "Workload default/cart-v1")}),
    ("sidecar-missing-peer", sidecar_missing_peer_meshed, CART,
     {("MSH0101", "Workload default/cart-v2")}),
    ("ambient-next-to-sidecars", ambient_next_to_sidecars, CART, set()),
    ("node-proxy-next-to-sidecars", node_proxy_next_to_sidecars, CART, set()),
    ("not-ready", not_ready, CART, {("MSH0102", "Proxy cart-v1-0.default")}),
    ("not-ready-pods", not_ready_from_pods_only, CART, {("MSH0102", "Proxy cart-v1-1.default")}),
    ("restarting", restarting, CART, {("MSH0103", "Pod default/cart-v1-0")}),
    # Restarts are judged by how recent the last one is (thresholds.restart_recent, 1 h).
    ("restarted-minutes-ago", restarted(timedelta(minutes=12)), CART, {("MSH0103", "Pod default/cart-v1-0")}),
    ("sidecar-restarted-minutes-ago", restarted(timedelta(minutes=3), sidecar=True), CART,
     {("MSH0103", "Pod default/cart-v1-0")}),
    ("restarted-days-ago", restarted(timedelta(days=3)), CART, set()),
    ("restarted-days-ago-crash-looping", restarted(timedelta(days=3), waiting="CrashLoopBackOff"), CART,
     {("MSH0103", "Pod default/cart-v1-0")}),
    ("young-proxy", young_proxy, CART, {("MSH0104", "Proxy cart-v1-2.default")}),
    # Without istiod's syncz: behind the other proxies of its own workload (never a version
    # string compared across the mesh).
    ("xds-behind", xds_behind, CART, {("MSH0106", "Proxy cart-v1-0.default")}),
    ("xds-old", xds_old_same_version, CART, {("MSH0106", "Proxy cart-v1-0.default")}),
    ("rejected", rejected_and_disconnected, CART,
     {("MSH0107", "Proxy cart-v1-0.default"), ("MSH0108", "Proxy cart-v1-0.default")}),
    ("rejected-long-ago", rejected_long_ago, CART, set()),
    ("warming", warming, CART, {("MSH0109", "Proxy cart-v1-1.default")}),
    # The broken workload belongs to cart: diagnosing the frontend does not report it.
    ("other-service", not_ready, "frontend", set()),
]


@pytest.mark.parametrize(("name", "build", "target", "expected"), GRID, ids=[g[0] for g in GRID])
def test_proxy_grid(name: str, build: Callable[[], MeshBuilder], target: str,
                    expected: set[tuple[str, str]]) -> None:
    _results, found = run_checks(build().build(), ServiceRef("default", target), Settings())
    got = {(f.code, f.subject) for f in found if f.category.value == "proxy health"}
    assert got == expected


def test_restart_counts_split_sidecar_and_application() -> None:
    _r, found = run_checks(restarting().build(), ServiceRef("default", CART), Settings())
    restarts = {f.fields["container"]: f.fields["restarts"] for f in found if f.code == "MSH0103"}
    assert restarts == {"sidecar": 3, "application container": 2}


def test_a_restart_says_when_and_why() -> None:
    _r, found = run_checks(restarted(timedelta(minutes=12))().build(), ServiceRef("default", CART), Settings())
    [f] = [f for f in found if f.code == "MSH0103"]
    assert (f.fields["container"], f.fields["restarts"]) == ("application container", 2)
    assert (f.evidence["last_restart_s_ago"], f.evidence["last_reason"]) == (720, "OOMKilled")
    # A longer horizon keeps a 3-day-old restart; a shorter one drops the 12-minute-old one.
    _r, found = run_checks(restarted(timedelta(days=3))().build(), ServiceRef("default", CART),
                           Settings(restart_recent_s=7 * 86400))
    assert [f.code for f in found if f.code == "MSH0103"] == ["MSH0103"]
    _r, found = run_checks(restarted(timedelta(minutes=12))().build(), ServiceRef("default", CART),
                           Settings(restart_recent_s=300))
    assert not [f for f in found if f.code == "MSH0103"]


def test_a_proxy_younger_than_its_peers_but_for_days_is_history() -> None:
    m = MeshBuilder().service("cart-service", pods=3)
    for pod in m.proxies:
        m.proxy(pod, uptime_s=60 * 86400.0)
    m.proxy("cart-v1-2", uptime_s=2 * 86400.0)  # 1/30 of its peers', but two days ago
    _r, found = run_checks(m.build(), ServiceRef("default", CART), Settings())
    assert not [f for f in found if f.code == "MSH0104"]


def test_xds_behind_its_workload_peers_says_which_signal_it_used() -> None:
    _r, found = run_checks(xds_behind().build(), ServiceRef("default", CART), Settings())
    behind = [f for f in found if f.code == "MSH0106"]
    assert {f.fields["xds_type"] for f in behind} == {"cds", "lds", "rds"}
    assert all(f.evidence["behind_workload_peers_s"] == 7140 and "Envoy" in f.evidence["signal"] for f in behind)


def test_a_proxy_behind_other_workloads_is_not_stale() -> None:
    """A scoped push reaches some workloads only; several replicas number pushes each their
    own way: other workloads' newer versions say nothing about this one."""
    m = healthy()
    for pod in m.proxies_of("frontend"):
        m.proxy(pod, xds=tuple(XdsResource(t, "v99", T0 - timedelta(seconds=30)) for t in ("cds", "lds", "rds")))
    for pod in m.proxies_of(CART):
        m.proxy(pod, xds=tuple(XdsResource(t, "v17", T0 - timedelta(hours=5)) for t in ("cds", "lds", "rds")))
    _r, found = run_checks(m.build(), ServiceRef("default", CART), Settings())
    assert not [f for f in found if f.code in ("MSH0105", "MSH0106", "MSH0107")]


def test_xds_last_update_too_old_when_peers_got_newer_pushes() -> None:
    m = xds_old_same_version()
    # Peers received rds recently with a version the old proxy also claims: a lagging
    # timestamp alone (beyond xds_stale_after_s) is the finding.
    _r, found = run_checks(m.build(), ServiceRef("default", CART), Settings(xds_stale_after_s=600))
    assert {(f.code, f.fields["xds_type"]) for f in found if f.code == "MSH0106"} == {("MSH0106", "rds")}
    _r, found = run_checks(m.build(), ServiceRef("default", CART), Settings(xds_stale_after_s=4 * 3600))
    assert not [f for f in found if f.code == "MSH0106"]


def test_quiet_mesh_with_old_but_equal_pushes_is_not_stale() -> None:
    m = healthy()
    for pod in list(m.proxies):
        m.proxy(pod, xds=tuple(XdsResource(t, "v42", T0 - timedelta(days=3)) for t in ("cds", "lds", "rds")))
    _r, found = run_checks(m.build(), ServiceRef("default", CART), Settings())
    assert not [f for f in found if f.code in ("MSH0105", "MSH0106")]
