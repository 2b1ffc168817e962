"""boto3 is an optional dependency (``meshobs[aws]``): without it the AWS sources say how to get
it, and everything else works."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import pytest

from meshobs.collect import build_snapshot, collect
from meshobs.config import validate
from meshobs.model import SourceState


@pytest.fixture
def no_boto3(monkeypatch: pytest.MonkeyPatch) -> None:
    # `import boto3` / `import botocore.x` now raise ImportError. Nothing is removed from
    # sys.modules: a fresh second copy of botocore imported meanwhile would outlive the test,
    # and its exception classes would no longer match the first copy's in later tests.
    monkeypatch.setitem(sys.modules, "boto3", None)
    monkeypatch.setitem(sys.modules, "botocore", None)


@pytest.mark.usefixtures("no_boto3")
def test_aws_sources_without_boto3_say_which_extra_to_install() -> None:
    config = validate({"time": "2026-11-20T12:00:00Z",
                       "sources": {"cloudwatch": {"region": "eu-west-1"}, "xray": {"region": "eu-west-1"},
                                   "appmesh": {"mesh": "shop", "region": "eu-west-1"}}})
    snapshot = build_snapshot(collect(config, at=datetime(2026, 11, 20, 12, tzinfo=UTC)))
    states = {s.name: s for s in snapshot.sources}
    assert set(states) == {"cloudwatch", "xray", "appmesh"}
    for status in states.values():
        assert status.state is SourceState.ERROR
        assert "pip install 'meshobs[aws]'" in status.message, status.message


@pytest.mark.usefixtures("no_boto3")
def test_exported_app_mesh_config_needs_no_boto3(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "mesh.json").write_text('{"meshes": []}')
    config = validate({"sources": {"appmesh": {"exported": [str(tmp_path / "mesh.json")]}}})
    snapshot = build_snapshot(collect(config, at=datetime(2026, 11, 20, 12, tzinfo=UTC)))
    assert all("boto3" not in s.message for s in snapshot.sources)
