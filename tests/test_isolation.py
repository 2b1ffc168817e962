"""One broken source never sinks a run: collectors and normalizers that raise are contained."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from meshobs import collect
from meshobs.bundle import Bundle
from meshobs.cli.main import cli
from meshobs.config import validate
from meshobs.model import SourceState
from meshobs.raw import Payload, RawSource

T = datetime(2026, 11, 20, 12, tzinfo=UTC)


def test_a_collector_that_raises_becomes_an_error_status(monkeypatch: pytest.MonkeyPatch) -> None:
    class Boom:
        def fetch(self, ctx: object) -> list[RawSource]:
            raise RuntimeError("bug in a collector")

    real = collect._module

    def fake(kind: str) -> object:
        module = real(kind)
        if kind == "jaeger":
            class Wrapped:
                from_config = staticmethod(lambda config, prior: Boom())
                normalize = module.normalize
            return Wrapped
        return module

    monkeypatch.setattr(collect, "_module", fake)
    config = validate({"time": "2026-11-20T12:00:00Z", "sources": {"jaeger": {"url": "http://127.0.0.1:9"}}})
    bundle = collect.collect(config)
    (raw,) = bundle.sources
    assert raw.error and "collector failed: RuntimeError: bug in a collector" in raw.error
    snap = collect.build_snapshot(bundle)
    assert snap.sources[0].state is SourceState.ERROR


def test_a_normalizer_that_raises_anything_costs_only_its_source() -> None:
    broken = RawSource("prometheus", "prometheus")
    broken.add(Payload("query:requests", status=200,
                       body='{"resultType":"vector","result":[{"metric":{},"value":[]}]}'))
    fine = RawSource("jaeger", "jaeger", meta={"api": "v3"})
    fine.add(Payload("services", status=200, body='{"services": []}', meta={"api": "v3"}))
    snap = collect.build_snapshot(Bundle(time=T, window_s=300, sources=[broken, fine]))
    states = {s.name: s.state for s in snap.sources}
    assert states["prometheus"] is SourceState.ERROR  # IndexError inside, reported, contained
    assert states["jaeger"] is not SourceState.ERROR


def test_malformed_kubeconfig_is_a_status_not_a_crash(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nusers:\n- name: x\n  user: {token: abc\n")
    cfg = tmp_path / "m.yaml"
    cfg.write_text(f"sources:\n  kubernetes:\n    kubeconfig: {kubeconfig}\n")
    result = CliRunner().invoke(cli, ["graph", "-o", "json", "--config", str(cfg)])
    assert result.exit_code == 3  # no source answered; not an internal error
    assert "not valid YAML" in result.stdout and "abc" not in result.stdout
    assert "Traceback" not in result.output
