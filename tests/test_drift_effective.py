"""Live (and intended) vs effective: what the callers' Envoys hold, per proxy."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from meshobs.assemble import assemble
from meshobs.collectors.base import NormalizeContext
from meshobs.collectors.manifests import normalize, read_manifest_tree
from meshobs.drift.compare import INTENDED_EFFECTIVE, LIVE_EFFECTIVE, Drift, Severity
from meshobs.drift.effective import compare_effective, envoy_retry_on
from meshobs.drift.ignore import rules_from_config
from meshobs.drift.run import check, intended_from_paths
from meshobs.model import ConfigResource, MeshSnapshot, Proxy
from tests.test_drift_data import HOST, live_docs, proxy, write_intended, write_live

T = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def _live(tmp_path: Path, edit: str | None = None) -> list[ConfigResource]:
    raw = read_manifest_tree([str(write_live(tmp_path / "live", edit))], "live")
    return normalize(raw, NormalizeContext(T, 300)).config


def _by_path(drifts: list[Drift]) -> dict[str, Drift]:
    return {d.path: d for d in drifts}


def test_in_sync_proxies_report_nothing(tmp_path: Path) -> None:
    assert compare_effective(_live(tmp_path), [proxy("a"), proxy("b")], LIVE_EFFECTIVE) == []


def test_weight_change_names_every_proxy(tmp_path: Path) -> None:
    proxies = [proxy("a", weights={"v1": 50, "v2": 50}), proxy("b", weights={"v1": 5, "v2": 5})]
    drifts = _by_path(compare_effective(_live(tmp_path), proxies, LIVE_EFFECTIVE))
    d = drifts[f"spec.http[0].route[{HOST}|v1].weight"]
    assert (d.left, d.right, d.severity, d.layers) == (90, 50, Severity.ERROR, LIVE_EFFECTIVE)
    assert d.proxies == ("a.shop", "b.shop") and dict(d.extra)["proxies_in_sync"] == []
    assert set(drifts) == {f"spec.http[0].route[{HOST}|v1].weight", f"spec.http[0].route[{HOST}|v2].weight"}


def test_a_proxy_that_never_got_the_update_is_reported_alone(tmp_path: Path) -> None:
    proxies = [proxy("a"), proxy("stale", weights={"v1": 50, "v2": 50}), proxy("c")]
    drifts = compare_effective(_live(tmp_path), proxies, LIVE_EFFECTIVE)
    assert {d.proxies for d in drifts} == {("stale.shop",)}
    d = _by_path(drifts)[f"spec.http[0].route[{HOST}|v2].weight"]
    assert d.per_proxy == (("stale.shop", 50),) and dict(d.extra)["proxies_in_sync"] == ["a.shop", "c.shop"]


def test_retry_and_timeout_changes(tmp_path: Path) -> None:
    drifts = _by_path(compare_effective(_live(tmp_path), [proxy("a", attempts=2, timeout=15.0)], LIVE_EFFECTIVE))
    assert set(drifts) == {"spec.http[0].retries.attempts", "spec.http[0].timeout"}
    assert (drifts["spec.http[0].retries.attempts"].left, drifts["spec.http[0].retries.attempts"].right) == (3, 2)
    assert drifts["spec.http[0].timeout"].right == 15.0 and drifts["spec.http[0].timeout"].category == "timeout"
    assert drifts["spec.http[0].timeout"].severity is Severity.WARNING


def test_removed_subset_still_held_by_a_proxy(tmp_path: Path) -> None:
    live = _live(tmp_path, "removed-subset")
    drifts = compare_effective(live, [proxy("a", subsets=("v1", "v2")), proxy("old")], LIVE_EFFECTIVE)
    [d] = drifts
    assert (d.resource.kind, d.path, d.left, d.right, d.proxies) == (
        "DestinationRule", "spec.subsets[v3]", None, "present", ("old.shop",))
    assert d.severity is Severity.ERROR


def test_subset_never_pushed(tmp_path: Path) -> None:
    [d] = compare_effective(_live(tmp_path), [proxy("a", subsets=("v1", "v2"))], LIVE_EFFECTIVE)
    assert (d.path, d.left, d.right) == ("spec.subsets[v3]", "present", None)


def test_gateway_bound_virtual_service_is_not_compared_with_sidecars(tmp_path: Path) -> None:
    docs = live_docs()
    docs[0]["spec"]["gateways"] = ["shop-gateway"]
    from meshobs.collectors.k8s_objects import config_from_object
    from meshobs.model import Layer

    live = [r for d in docs if (r := config_from_object(d, Layer.LIVE, "test")) is not None]
    drifts = compare_effective(live, [proxy("a", weights={"v1": 1, "v2": 1})], LIVE_EFFECTIVE)
    assert drifts == []


def test_route_count_mismatch(tmp_path: Path) -> None:
    p = proxy("a")
    short = Proxy(id=p.id, pod=p.pod, namespace=p.namespace, routes=p.routes[2:], clusters=p.clusters)
    [d] = compare_effective(_live(tmp_path), [short], LIVE_EFFECTIVE)
    assert (d.path, d.left, d.right, d.category) == ("spec.http", 3, 1, "routes")


def test_retry_on_status_codes_compare_as_envoy_holds_them() -> None:
    assert envoy_retry_on("503,connect-failure,5xx") == "5xx,connect-failure,retriable-status-codes"
    assert envoy_retry_on(None) == ""


def test_without_live_layer_intended_is_compared_with_proxies(tmp_path: Path) -> None:
    intended, state = intended_from_paths([str(write_intended(tmp_path / "git"))], T)
    snapshot = MeshSnapshot(time=T, window_s=300, proxies=(proxy("a"), proxy("b", weights={"v1": 50, "v2": 50})))
    run = check(intended, state, snapshot, rules=rules_from_config([]), now=T)
    assert run.checked == [INTENDED_EFFECTIVE]
    assert {d.proxies for d in run.active} == {("b.shop",)}


def test_all_three_layers(tmp_path: Path) -> None:
    """Git 90/10; live hand-edited to 50/50; one proxy still on the old 90/10."""
    intended, state = intended_from_paths([str(write_intended(tmp_path / "git"))], T)
    part = normalize(read_manifest_tree([str(write_live(tmp_path / "live", "weight"))], "live"),
                     NormalizeContext(T, 300))
    part.proxies = [proxy("new", weights={"v1": 50, "v2": 50}), proxy("stale")]
    run = check(intended, state, assemble(part, time=T, window_s=300), rules=rules_from_config([]), now=T)
    assert run.checked == ["intended-live", "live-effective"] and run.complete
    by_pair = {(d.layers, d.path): d for d in run.active}
    key = f"spec.http[0].route[{HOST}|v1].weight"
    assert (by_pair[("intended-live", key)].left, by_pair[("intended-live", key)].right) == (90, 50)
    stale = by_pair[("live-effective", key)]
    assert (stale.left, stale.right, stale.proxies) == (50, 90, ("stale.shop",))
    assert len(run.active) == 4


def test_a_destination_rules_host_read_alone_is_its_canonical_host() -> None:
    """The rules of the hosts the proxies hold are picked by their host before being made
    canonical: that host must be the canonical form's, whatever the spec says."""
    from meshobs.drift.normalise import canonical, destination_rule_host
    from meshobs.model import Mesh, frozen_map

    specs: list[object] = [{"host": "reviews"}, {"host": "reviews.shop.svc.cluster.local"}, {"host": "reviews.other"},
                           {"host": ""}, {"host": None}, {"host": 0}, {"host": 7}, {"host": False}, {"host": []},
                           {"host": ["a", "b"]}, {"host": {"x": ""}}, {"host": {"x": "y"}}, {"subsets": []}, {}]
    for spec in specs:
        rule = ConfigResource("DestinationRule", "shop", "r", frozen_map(spec), mesh=Mesh.ISTIO)
        assert destination_rule_host(rule) == canonical(rule)["spec"].get("host"), spec


def test_only_the_rules_of_hosts_the_proxies_hold_are_read(tmp_path: Path) -> None:
    """A DestinationRule of a host no proxy holds a cluster of changes nothing, and is not made
    canonical (a neighbourhood's proxies hold a few hosts out of a big mesh's thousands)."""
    from unittest import mock

    from meshobs.drift import effective
    from meshobs.model import Mesh, frozen_map

    live = _live(tmp_path)
    elsewhere = [ConfigResource("DestinationRule", "far", f"r{i}", frozen_map({"host": f"svc-{i}", "subsets": [
        {"name": "v9", "labels": {"version": "v9"}}]}), mesh=Mesh.ISTIO) for i in range(3)]
    proxies = [proxy("a", subsets=("", "v1")), proxy("b")]
    expected = compare_effective(live, proxies, LIVE_EFFECTIVE)
    assert expected  # v2 and v3 missing on a: the rules of the hosts held are read
    with mock.patch.object(effective, "canonical", wraps=effective.canonical) as made:
        assert compare_effective([*live, *elsewhere], proxies, LIVE_EFFECTIVE) == expected
    assert not {c.args[0].namespace for c in made.call_args_list} & {"far"}
