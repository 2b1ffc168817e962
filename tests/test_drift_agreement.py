"""``diagnose`` and ``drift`` agree on every VirtualService and DestinationRule difference of the
drift corpus (issue 10, Build 6): the drift tests' data (Git vs live edits, callers' proxies
that lag, TLS, retry conditions) and the demos' intended, live and effective layers.

``drift`` reads the intended layer from ``--intended`` paths (as the CLI does); ``diagnose``
reads the same manifests as the snapshot's intended layer (as a bundle holding them does).
Each side's differences are (code, resource, field path): drift's items, diagnose's findings
of every service (``--all``). The corpus must actually drift (each case says how much), so the
test cannot pass on two empty sets.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from meshobs.catalogue import CATALOGUE
from meshobs.checks.base import Settings
from meshobs.collect import build_snapshot
from meshobs.collectors.base import NormalizeContext
from meshobs.collectors.manifests import normalize as normalize_manifests
from meshobs.collectors.manifests import read_manifest_tree
from meshobs.demo.catalog import export_intended, list_demos, load_demo
from meshobs.demo.scenarios import LIBRARY
from meshobs.drift.compare import EFFECTIVE_CODES
from meshobs.drift.ignore import rules_from_config
from meshobs.drift.run import check, intended_from_paths
from meshobs.engine import diagnose_all
from meshobs.model import ConfigResource, MeshSnapshot, Proxy
from tests.support.scenarios import snapshot as scenario_snapshot
from tests.test_drift_data import proxy, write_intended, write_live
from tests.test_drift_tls_appmesh import _with_tls

T = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
KINDS = ("VirtualService", "DestinationRule")
DRIFT_CODES = {*EFFECTIVE_CODES.values(), "MSH0207", "MSH0283", "MSH0284", "MSH0285"}

Item = tuple[str, str, str]  # (code, "Kind namespace/name", field path)


def _live(directory: Path, proxies: list[Proxy]) -> MeshSnapshot:
    from meshobs.assemble import assemble

    part = normalize_manifests(read_manifest_tree([str(directory)], "live"), NormalizeContext(T, 300))
    part.proxies.extend(proxies)
    return assemble(part, time=T, window_s=300)


def _with_intended(snapshot: MeshSnapshot, intended: list[ConfigResource]) -> MeshSnapshot:
    """The snapshot as a bundle holding the intended layer too would assemble it (the services
    its resources route to included)."""
    from meshobs.assemble import assemble
    from meshobs.model import SnapshotPart

    part = SnapshotPart(services=list(snapshot.services), workloads=list(snapshot.workloads),
                        pods=list(snapshot.pods), edges=list(snapshot.edges), proxies=list(snapshot.proxies),
                        certs=list(snapshot.certs), config=[*snapshot.config, *intended],
                        traces=list(snapshot.traces), sources=list(snapshot.sources), series=list(snapshot.series))
    return assemble(part, time=snapshot.time, window_s=snapshot.window_s, origin=snapshot.origin)


def agree(snapshot: MeshSnapshot, git: Path | None) -> tuple[set[Item], set[Item]]:
    """(drift's items, diagnose's items) for the VirtualServices and DestinationRules."""
    intended, state = intended_from_paths([str(git)], T) if git is not None else (None, None)
    run = check(intended, state, snapshot, rules=rules_from_config([]), now=snapshot.time)
    for d in run.active:  # one severity: the code's
        assert d.code is not None and CATALOGUE[d.code].severity is d.severity, (d.code, d.path)
    drift = {(str(d.code), str(d.resource), d.path) for d in run.active if d.resource.kind in KINDS}
    seen = _with_intended(snapshot, intended) if intended else snapshot
    report = diagnose_all(seen, Settings())
    found = {(f.code, f.subject, str(f.evidence.get("path", ""))) for f in report.findings
             if f.code in DRIFT_CODES and f.subject.split(" ", 1)[0] in KINDS}
    return drift, found


EDITS = [None, "weight", "retries", "timeout", "removed-subset", "live-only", "intended-only", "label"]


def _proxies() -> list[Proxy]:
    """Callers in sync, one that never got a weight change, one with other retries and timeout,
    one that lacks a subset, one whose v2 cluster still sends plaintext."""
    return [proxy("in-sync"), proxy("stale-weights", weights={"v1": 50, "v2": 50}),
            proxy("other-policy", attempts=5, timeout=30.0), proxy("no-v3", subsets=("", "v1", "v2")),
            _with_tls(proxy("plaintext"), {"v2": "disable"})]


@pytest.mark.parametrize("edit", EDITS, ids=[e or "same" for e in EDITS])
def test_drift_data_git_live_and_envoy(tmp_path: Path, edit: str | None) -> None:
    git = write_intended(tmp_path / "git")
    snapshot = _live(write_live(tmp_path / "live", edit), _proxies())
    drift, found = agree(snapshot, git)
    assert drift == found
    codes = {c for c, _r, _p in drift}
    # The proxies drift in every case: weights, retries/timeout, a subset, TLS.
    assert {"MSH0203", "MSH0204", "MSH0280", "MSH0281"} <= codes
    expected = {"weight": "MSH0283", "retries": "MSH0207", "timeout": "MSH0207", "removed-subset": "MSH0283",
                "intended-only": "MSH0284", "label": "MSH0207"}
    if edit in expected:
        assert expected[edit] in codes, codes


def test_without_a_live_layer_git_is_compared_with_envoy(tmp_path: Path) -> None:
    git = write_intended(tmp_path / "git")
    intended, _state = intended_from_paths([str(git)], T)
    from meshobs.assemble import assemble
    from meshobs.model import SnapshotPart

    snapshot = assemble(SnapshotPart(proxies=_proxies()), time=T, window_s=300)
    run = check(intended, _state, snapshot, rules=[], now=T)
    assert run.checked == ["intended-effective"]
    drift = {(str(d.code), str(d.resource), d.path) for d in run.active if d.resource.kind in KINDS}
    report = diagnose_all(_with_intended(snapshot, intended), Settings())
    found = {(f.code, f.subject, str(f.evidence.get("path", ""))) for f in report.findings if f.code in DRIFT_CODES}
    assert drift == found and {c for c, _r, _p in drift} >= {"MSH0203", "MSH0204"}


def test_a_retry_policy_envoy_holds_in_its_own_words_is_equal_for_both(tmp_path: Path) -> None:
    """``retryOn: 5xx,503`` reaches Envoy as ``5xx,retriable-status-codes``: neither command
    reports it (diagnose's MSH0204 did, issue 10)."""
    live = write_live(tmp_path / "live")
    text = (live / "live.yaml").read_text().replace("retryOn: connect-failure,5xx", "retryOn: 5xx,503")
    (live / "live.yaml").write_text(text)
    envoy = [replace(p, routes=tuple(replace(r, retry_on="5xx,retriable-status-codes") if r.name == "canary" else r
                                     for r in p.routes)) for p in [proxy("a"), proxy("b")]]
    drift, found = agree(_live(live, envoy), None)
    assert drift == found == set()
    # The same policy with 503 left out is a difference, for both.
    envoy = [replace(p, routes=tuple(replace(r, retry_on="5xx") if r.name == "canary" else r for r in p.routes))
             for p in [proxy("a")]]
    drift, found = agree(_live(live, envoy), None)
    assert drift == found and {c for c, _r, p in drift if p.endswith("retryOn")} == {"MSH0204"}


DEMOS = [name for name, _ in list_demos() if not name.startswith("generated")]


@pytest.mark.parametrize("demo", DEMOS)
def test_every_demo_with_its_intended_manifests(tmp_path: Path, demo: str) -> None:
    git = tmp_path / "git"
    export_intended(demo, git)
    snapshot = build_snapshot(load_demo(demo), origin=demo)
    drift, found = agree(snapshot, git)
    assert drift == found
    if demo == "weight-drift":  # the demo that drifts: Envoy weights, and a retry count edited by hand
        assert {"MSH0203", "MSH0207"} <= {c for c, _r, _p in drift}
    else:  # the migration's Istio callers of App Mesh services are not held to App Mesh routers
        assert drift == set()


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_every_library_scenario_with_its_intended_manifests(tmp_path: Path, name: str) -> None:
    git = tmp_path / "git"
    export_intended(name, git)
    drift, found = agree(scenario_snapshot(name), git)
    assert drift == found


def test_a_live_source_of_several_that_could_not_be_read_makes_the_run_incomplete() -> None:
    # A second cluster's API down: the first one's resources are compared, the second's are not,
    # so "no drift" would be a guess; the run names the source and is incomplete.
    from meshobs.drift.run import live_layer
    from meshobs.model import SourceState, SourceStatus

    snap = build_snapshot(load_demo("weight-drift"))
    live = [s for s in snap.sources if s.kind == "kubernetes"]
    assert live, "the demo has a live source"
    down = SourceStatus("kubernetes:east", SourceState.ERROR, "cannot reach the API server", kind="kubernetes")
    both = replace(snap, sources=[*snap.sources, down])
    _resources, state = live_layer(both)
    assert state.available and any("kubernetes:east" in item for item in state.items)
    run = check(None, None, both, rules=[], now=T)
    assert not run.complete and any("kubernetes:east" in p for p in run.problems)
    _resources, state = live_layer(snap)
    assert not any("kubernetes:east" in item for item in state.items)
