"""A live collection imports its collectors' modules on one thread (collectors/preload.py):
two collector threads importing the same packages crosswise can deadlock in the import system
(it cost a live --all at 1,000 services its whole Envoy source once)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from meshobs.collectors import preload
from meshobs.collectors.preload import Preload, modules_for
from meshobs.demo.serve import serve_scenario

REPO = Path(__file__).resolve().parents[1]

# Run in a fresh interpreter (this one has imported everything already): every module imported
# for the first time by a thread other than the main thread, the preloader and the diagnosis's
# warm-up is recorded with the thread's name; then the CLI runs the question.
RECORDER = textwrap.dedent("""
    import json, sys, threading
    ALLOWED = ("MainThread", "meshobs-preload", "meshobs-warm-up")
    first = []

    class Recorder:
        @staticmethod
        def find_spec(name, path=None, target=None):
            thread = threading.current_thread().name
            if thread not in ALLOWED:
                first.append([thread, name])
            return None  # only watching: the next finder imports it

    sys.meta_path.insert(0, Recorder)
    from meshobs.cli.main import main
    code = None
    try:
        main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
    print(json.dumps({"code": code, "first_imports": first, "modules": sorted(sys.modules)}), file=sys.stderr)
""")

# What a live question about one service (-o json, Prometheus, Kubernetes, static Envoy targets,
# Jaeger) has no use for, with each one's import cost measured in a fresh interpreter (CPU,
# 2-core machine, stop 22): pandas 0.28-0.38 s (the timeline uses it only for histories of
# thousands of rows), boto3/botocore 0.16 s (no AWS source configured), kubernetes' ~700
# generated model classes 0.3 s (answers are read raw: collectors/k8s_import.py), textual 0.1 s
# (the dashboard's), the built-in demo (0.2 s with what it pulls in), and the renderers of the
# other output formats (xml.etree for junit). The run is CPU-bound, so each would add its cost
# to the wall time.
NOT_FOR_ONE_LIVE_SERVICE = ("pandas", "boto3", "botocore", "textual", "meshobs.demo", "meshobs.tui",
                            "meshobs.render.text", "meshobs.render.markdown", "meshobs.render.junit",
                            "xml.etree.ElementTree")


def _ask(args: list[str]) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", RECORDER, *args], capture_output=True, text=True,
                          cwd=REPO, timeout=300)
    result: dict[str, object] = json.loads(done.stderr.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def live_runs(tmp_path_factory: pytest.TempPathFactory, require_prometheus: None) -> dict[str, dict[str, object]]:
    # The ecommerce demo served live: Prometheus, Kubernetes, static Envoy targets (so the scrape
    # reader too), Jaeger. Both shapes of a live run: two phases (one service), one (--all).
    with serve_scenario("ecommerce", tmp_path_factory.mktemp("demo")) as demo:
        config = str(demo.config_path)
        one = _ask(["diagnose", "cart-service", "--config", config, "-o", "json", "--timeout", "120s"])
        every = _ask(["diagnose", "--all", "--config", config, "-o", "json", "--timeout", "120s"])
    assert one["code"] in (0, 1) and every["code"] in (0, 1)
    return {"one": one, "every": every}


@pytest.mark.slow
def test_no_collector_thread_imports_a_module_of_its_own(live_runs: dict[str, dict[str, object]]) -> None:
    assert live_runs["one"]["first_imports"] == []
    assert live_runs["every"]["first_imports"] == []


@pytest.mark.slow
def test_a_live_question_about_one_service_imports_nothing_heavy_it_does_not_use(
        live_runs: dict[str, dict[str, object]]) -> None:
    modules = live_runs["one"]["modules"]
    assert isinstance(modules, list) and "meshobs.render.json" in modules  # the recorder saw the run
    assert [m for m in modules if m.split(".")[0] in NOT_FOR_ONE_LIVE_SERVICE or m in NOT_FOR_ONE_LIVE_SERVICE
            or m.startswith(("meshobs.demo.", "meshobs.tui."))] == []
    assert not [m for m in modules if m.startswith("kubernetes.client.models.")]


def test_the_built_in_demo_imports_no_config_model() -> None:
    """No config file, no thresholds to validate: pydantic and the config model (~0.15 s of CPU
    to import and build) stay out of a demo or replay run (Settings.from_thresholds)."""
    done = subprocess.run([sys.executable, "-c", RECORDER, "diagnose", "cart-service", "--from", "demo", "-o", "json"],
                          capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != "MESHOBS_CONFIG"})
    result = json.loads(done.stderr.strip().splitlines()[-1])
    modules = result["modules"]
    assert result["code"] in (0, 1) and "meshobs.engine" in modules
    assert "pydantic" not in modules and "meshobs.config_model" not in modules


def test_the_recorder_sees_a_collector_thread_importing() -> None:
    # The live test above can fail: a module first imported on a collector's thread is seen.
    done = subprocess.run([sys.executable, "-c", RECORDER.replace(
        "from meshobs.cli.main import main", "from meshobs.collectors.workers import fan_out\n"
        "fan_out(lambda n: __import__(n), ['colorsys'], workers=1, late=None, failed=None, name='collect')\n"
        "main = lambda argv: None"), "x"], capture_output=True, text=True, cwd=REPO, timeout=60)
    result = json.loads(done.stderr.strip().splitlines()[-1])
    assert result["first_imports"] == [["collect-0", "colorsys"]]


def test_prometheus_is_imported_first_and_each_kind_is_waited_for_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    imported: list[str] = []
    gate = threading.Event()

    def import_module(name: str) -> None:
        if name == "slow.kubernetes":
            gate.wait(10)  # Kubernetes' imports still running...
        imported.append(name)

    monkeypatch.setattr(preload.importlib, "import_module", import_module)
    monkeypatch.setattr(preload, "COMMON", ())
    monkeypatch.setattr(preload, "MODULES", {"prometheus": ("slow.prometheus",), "kubernetes": ("slow.kubernetes",),
                                             "jaeger": ("slow.jaeger",)})
    after = threading.Event()
    loader = Preload(["jaeger", "kubernetes", "prometheus"], {}, after=after.set).start()
    loader.wait("prometheus", timeout=10)  # ... do not hold Prometheus back
    assert imported == ["slow.prometheus"]
    assert not after.is_set()
    gate.set()
    loader.wait("jaeger", timeout=10)
    assert imported == ["slow.prometheus", "slow.kubernetes", "slow.jaeger"]
    assert after.wait(10)


def test_a_module_that_fails_to_import_releases_its_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    # The collector's own import then says what is missing ("collector unavailable").
    monkeypatch.setattr(preload, "MODULES", {"xray": ("meshobs_no_such_module",)})
    loader = Preload(["xray"], {}).start()
    loader.wait("xray", timeout=10)
    assert loader._ready["xray"].is_set()


def test_a_preloader_stopped_early_releases_every_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    """An error outside the per-module guard (here: in working out the modules) ends the thread;
    no collector may then wait on it until the run's deadline."""
    def broken(kind: str, sources: object) -> tuple[str, ...]:
        raise RuntimeError("modules_for broke")

    monkeypatch.setattr(preload, "modules_for", broken)
    monkeypatch.setattr(preload, "_lazy_kubernetes_needed", lambda kinds, sources: False)
    monkeypatch.setattr(threading, "excepthook", lambda args: None)  # the thread's own error
    loader = Preload(["prometheus", "envoy"], {}).start()
    loader._thread.join(10)
    assert all(e.is_set() for e in loader._ready.values())


def test_port_forwarding_and_the_scrape_reader_are_imported_only_when_configured() -> None:
    static = {"envoy": {"targets": [{"url": "http://127.0.0.1:1"}]}}
    assert "meshobs.collectors.envoy.portforward" not in modules_for("envoy", static)
    assert "meshobs.collectors.envoy.portforward" in modules_for("envoy", {"envoy": {}})
    assert "meshobs.collectors.envoy.portforward" in modules_for("istiod", {"istiod": {"discovery": "kubernetes"}})
    assert "meshobs.collectors.prometheus.fetch" not in modules_for("envoy", static)
    assert "meshobs.collectors.prometheus.fetch" in modules_for("envoy", {**static, "prometheus": {"url": "x"}})


def test_the_warm_up_imports_only_while_the_collection_is_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from meshobs.cli import diagnose as diagnose_cli

    imported: list[str] = []
    monkeypatch.setattr(importlib, "import_module", lambda name: imported.append(name))
    monkeypatch.setattr(diagnose_cli, "DIAGNOSIS_MODULES", ("first", "second"))
    monkeypatch.setattr(diagnose_cli, "MESH_WIDE_MODULES", ("every",))
    monkeypatch.setattr(diagnose_cli, "QUESTION_MODULES", ("graph",))
    waiting = threading.Event()  # the collection is busy between its phases
    thread = diagnose_cli.warm_up("json", waiting)
    thread.join(0.3)
    assert imported == [] and thread.is_alive()
    waiting.set()
    thread.join(10)
    assert imported == ["first", "second", "every", diagnose_cli.RENDERERS["json"]]
    # A question about one service: the graph's modules first, and nothing only --all uses.
    imported.clear()
    diagnose_cli.warm_up("text", waiting, scoped=True).join(10)
    assert imported == ["graph", "first", "second", diagnose_cli.RENDERERS["text"]]


def test_a_question_about_one_service_never_imports_jsonschema() -> None:
    """Its analyzers judge no resource's schema (given a focus, the schema analyzer only asks
    whether one exists): the import (~30 ms of CPU) is left to what validates."""
    probe = """
import sys
from meshobs.cli import diagnose as cli
from meshobs.collect import build_snapshot
from meshobs.demo.catalog import load_demo
from meshobs.engine import diagnose
for name in (*cli.QUESTION_MODULES, *cli.DIAGNOSIS_MODULES, cli.RENDERERS["json"]):
    __import__(name)
snapshot = build_snapshot(load_demo("ecommerce"), origin="demo")
report = diagnose(snapshot, snapshot.services[0].ref)
assert "config.schema" in {r.id for r in report.checks}, "the schema analyzer ran"
print("jsonschema" in sys.modules)
"""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"]
    from meshobs.istio_schema import validate

    assert validate({"apiVersion": "networking.istio.io/v1beta1", "kind": "DestinationRule",
                     "metadata": {"name": "r"}, "spec": {"hots": "x"}})  # it still validates


def test_the_gate_is_shut_between_the_phases_and_open_at_the_end() -> None:
    # Nothing to reach (connection refused): both phases still run. While the question is
    # resolved the gate is shut; when collect returns it is open, so a warm-up still importing
    # is never left waiting for ever.
    import time

    from meshobs.cli.diagnose import scoped_question
    from meshobs.collect import collect
    from meshobs.config import validate

    config = validate({"sources": {"prometheus": {"url": "http://127.0.0.1:9", "timeout": "2s"}}})
    gates: list[threading.Event] = []
    during: list[bool] = []
    resolve = scoped_question("shop/till", None)

    def question(snapshot):  # type: ignore[no-untyped-def]
        until = time.monotonic() + 10
        while not gates and time.monotonic() < until:  # handed over by the preloader's thread
            time.sleep(0.01)
        during.append(gates[0].is_set())
        return resolve(snapshot)

    collect(config, question=question, imported=gates.append)
    assert during == [False]
    assert len(gates) == 1 and gates[0].is_set()
