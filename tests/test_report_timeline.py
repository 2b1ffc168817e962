"""A ``--all`` report's own timeline is worked out when read (engine.report.TimelineBelow): the
same timeline as ``diagnose SERVICE`` gives, never worked out unless read, and pickled (the
dashboard's load process) as the timeline itself rather than the snapshot."""

from __future__ import annotations

import pickle

from meshobs.checks.base import Settings
from meshobs.engine import diagnose, diagnose_all
from meshobs.engine.report import TimelineBelow
from meshobs.timeline import Timeline
from tests.support.scenarios import snapshot


def test_every_report_of_all_reads_the_timeline_its_own_diagnosis_gives() -> None:
    snap = snapshot("deep-chain-timeout")
    mesh = diagnose_all(snap, Settings())
    assert mesh.timeline.checked and mesh.reports
    below = [r for r in mesh.reports if isinstance(r.timeline_or_below, TimelineBelow)]
    assert len(below) == len(mesh.reports)  # none worked out by diagnosing or by the mesh's status
    assert all(r.timeline_or_below._done is None for r in mesh.reports)  # type: ignore[union-attr]
    onsets = 0
    for report in mesh.reports:
        alone = diagnose(snap, report.service, Settings())
        assert isinstance(alone.timeline_or_below, Timeline)
        assert report.timeline == alone.timeline, report.service
        assert report.timeline_or_below == alone.timeline_or_below  # equal either way round
        assert alone.timeline_or_below == report.timeline_or_below
        onsets += len(report.timeline.onsets)
    assert onsets  # the chain's onsets are somebody's: the comparison compared something


def test_a_pickled_report_carries_its_timeline_worked_out() -> None:
    snap = snapshot("deep-chain-timeout")
    mesh = diagnose_all(snap, Settings())
    back = pickle.loads(pickle.dumps(mesh))
    assert back == mesh
    for was, report in zip(mesh.reports, back.reports, strict=True):
        assert type(report.timeline_or_below) is Timeline  # no snapshot travels with it
        assert report.timeline == was.timeline
    assert any(r.timeline.onsets for r in back.reports)
