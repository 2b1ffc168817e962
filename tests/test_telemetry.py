"""meshobs instruments itself with opentelemetry-api: spans per fetch and per check, -v table."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from meshobs import telemetry
from meshobs.cli.main import cli


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    exp = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exp))
    trace.set_tracer_provider(provider)  # once per process: the API refuses a second provider
    return exp


def test_spans_per_normalize_and_check_with_durations(exporter: InMemorySpanExporter) -> None:
    exporter.clear()
    telemetry.reset()
    result = CliRunner().invoke(cli, ["diagnose", "cart-service", "--from", "demo", "-o", "json"])
    assert result.exit_code == 1, result.output
    spans = exporter.get_finished_spans()
    by_phase: dict[str, set[str]] = {}
    for s in spans:
        by_phase.setdefault(s.name, set()).add(str(s.attributes["meshobs.name"]))
        assert s.attributes["meshobs.duration_s"] >= 0
    assert {"prometheus", "jaeger", "kubernetes", "envoy"} <= by_phase["meshobs.normalize"]
    assert {"proxy.not_ready", "traffic.error_rate", "traces.slow_hop"} <= by_phase["meshobs.check"]


def test_verbose_prints_aggregated_timings_on_stderr() -> None:
    telemetry.reset()
    result = CliRunner().invoke(cli, ["-v", "diagnose", "cart-service", "--from", "demo", "-o", "json"])
    assert "traffic.error_rate" in result.stderr and "phase" in result.stderr
    assert "phase" not in result.stdout  # the table goes to stderr only
    rows = {(t.phase, t.name): t for t in telemetry.timings()}
    # cart-service and the services downstream of it: one row per check, several calls.
    assert rows[("check", "traffic.error_rate")].calls >= 2


@pytest.mark.parametrize(("env", "imported"),
                         [({}, False), ({"OTEL_PYTHON_TRACER_PROVIDER": "sdk_tracer_provider"}, True)])
def test_the_api_is_imported_only_when_a_provider_can_be_configured(env: dict[str, str], imported: bool) -> None:
    """No SDK set up by code that imported opentelemetry, and none named in the environment: no
    span can be recorded, so opentelemetry is not imported (every command's start-up)."""
    import json
    import os
    import subprocess
    import sys

    probe = ("import json, sys\nfrom meshobs.telemetry import timed, timings\n"
             "with timed('check', 'probe'):\n    pass\n"
             "print(json.dumps(['opentelemetry.trace' in sys.modules, [t.calls for t in timings()]]))")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                          env={**clean, **env})
    assert json.loads(done.stdout) == [imported, [1]], done.stderr


def test_without_a_provider_the_check_times_are_still_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default path (no SDK configured, so no span per check): the runner times each
    service's checks itself and adds them in one step; the -v rows count every call. (The module
    fixture above installs an SDK for the whole process, so the default is forced here.)"""
    from meshobs.engine import runner

    monkeypatch.setattr(runner, "tracing", lambda: False)
    telemetry.reset()
    result = CliRunner().invoke(cli, ["-v", "diagnose", "cart-service", "--from", "demo", "-o", "json"])
    assert result.exit_code == 1, result.output
    rows = {(t.phase, t.name): t for t in telemetry.timings()}
    assert rows[("check", "traffic.error_rate")].calls >= 2
    assert rows[("check", "traffic.error_rate")].seconds > 0
    assert "traffic.error_rate" in result.stderr
