"""Snapshots from manifest text, through the same code a configuration-only run uses: the
manifests collector's ``normalize`` (line numbers included) and ``assemble``."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from meshobs.assemble import assemble
from meshobs.checks.base import Analyzer, Finding, Settings
from meshobs.checks.registry import ALL
from meshobs.collectors.base import NormalizeContext
from meshobs.collectors.manifests import normalize
from meshobs.engine.runner import analyze, unique
from meshobs.model import MeshSnapshot
from meshobs.raw import Payload, RawSource

TIME = datetime(2026, 2, 3, 4, 5, tzinfo=UTC)


def manifests_snapshot(files: dict[str, str]) -> MeshSnapshot:
    """``{file name: YAML or JSON text}`` -> the snapshot a run over those files builds."""
    raw = RawSource(name="manifests", kind="manifests", meta={"layer": "live", "roots": ["."]})
    for name, text in files.items():
        raw.add(Payload(key=name, url=f"file:///{name}", body=text))
    part = normalize(raw, NormalizeContext(time=TIME, window_s=300.0))
    return assemble(part, time=TIME, window_s=300.0, origin="test")


def analyzers(ids: Iterable[str] | None = None) -> list[Analyzer]:
    """The configuration analyzers (all, or ``ids``): those that judge resources, which is
    what manifests hold (the control plane's analyzers judge istiod: tests/test_controlplane*)."""
    wanted = set(ids) if ids is not None else None
    return [c for c in ALL if isinstance(c, Analyzer) and c.needs == ("config",)
            and (wanted is None or c.id in wanted)]


def analyzer_findings(snapshot: MeshSnapshot, ids: Iterable[str] | None = None) -> list[Finding]:
    """Every finding of the analyzers (all, or ``ids``), each once; an analyzer that raises
    fails the test instead of hiding as an MSH0001."""
    analysis = analyze(snapshot, Settings(), analyzers(ids))
    broken = [r for r in analysis.results.values() if r.status == "error"]
    assert not broken, f"an analyzer raised: {broken}"
    touched = [f for fs in analysis.by_service.values() for f in fs]
    return unique([*analysis.mesh_level, *touched])


def pairs(findings: Iterable[Finding]) -> set[tuple[str, str]]:
    return {(f.code, f.subject) for f in findings}


def assert_grid_case(analyzer: str, files: dict[str, str], expected: set[tuple[str, str]]) -> None:
    """One row of an analyzer grid: the manifests load, ``analyzer`` finds exactly ``expected``
    (code, subject) pairs, and a valid input (nothing expected) gives no analyzer anything."""
    snapshot = manifests_snapshot(files)
    assert snapshot.sources[0].state.value == "ok", snapshot.sources[0].message
    assert pairs(analyzer_findings(snapshot, [analyzer])) == expected
    if not expected:  # a valid input: no analyzer at all may find anything in it
        assert pairs(analyzer_findings(snapshot)) == set()
