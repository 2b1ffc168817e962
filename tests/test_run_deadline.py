"""A whole run ends, with its exit code, within --timeout plus a second, whatever the sources do:
the real command in a child process, every source trickling, hanging or flooding."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.support.fake_kube import token_kubeconfig
from tests.support.faults import Fault, FaultServer

TIMEOUT_S = 3.0


def _startup_s() -> float:
    """How long the interpreter and the CLI take to start here (not part of the run's deadline)."""
    start = time.monotonic()
    subprocess.run([sys.executable, "-c", "import meshobs.cli.main, meshobs.collect, requests, kubernetes.client"],
                   check=True, capture_output=True)
    return time.monotonic() - start


def _config(tmp_path: Path, url: str) -> Path:
    kubeconfig = token_kubeconfig(tmp_path / "kubeconfig", url)
    config = tmp_path / "meshobs.yaml"
    config.write_text(yaml.safe_dump({"mesh": "istio", "sources": {
        "prometheus": {"url": url, "timeout": "30s"},
        "jaeger": {"url": url, "api": "v3", "timeout": "30s"},
        "kubernetes": {"kubeconfig": str(kubeconfig), "timeout": "30s"},
        "envoy": {"discovery": "static", "timeout": "30s",
                  "targets": [{"namespace": "shop", "pod": f"cart-v1-{i}", "workload": "cart-v1",
                               "url": f"{url}/envoy{i}"} for i in range(20)]}}}))
    return config


@pytest.mark.slow
@pytest.mark.parametrize("fault", [Fault.trickle(0.5), Fault.hang(), Fault.trickle_body(0.5)],
                         ids=["trickle", "hang", "trickle-body"])
@pytest.mark.parametrize("command", [["diagnose", "shop/cart", "-o", "json"], ["graph", "-o", "json"]])
def test_the_run_ends_within_its_deadline(tmp_path: Path, fault: Fault, command: list[str]) -> None:
    startup = _startup_s()
    with FaultServer(lambda _path: fault) as srv:
        start = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "meshobs", *command, "--config", str(_config(tmp_path, srv.url)),
                               "--timeout", f"{TIMEOUT_S:g}s"], capture_output=True, text=True, timeout=60)
        took = time.monotonic() - start
    assert took - startup < TIMEOUT_S + 1.0, (took, startup, done.stderr[-2000:])
    # Nothing answered: "could not check" (3), never a finding about the mesh.
    assert done.returncode == 3, done.stderr[-2000:]
    doc = json.loads(done.stdout)
    sources = doc["sources"]
    assert sources and all(s.get("status", s.get("state")) == "error" for s in sources)
    findings = doc.get("findings", [])
    assert {f["code"] for f in findings} <= {"MSH0002"}  # only "source failed" findings


@pytest.mark.slow
def test_a_huge_answer_is_could_not_check(tmp_path: Path) -> None:
    with FaultServer(lambda _path: Fault.huge()) as srv:
        config = _config(tmp_path, srv.url)
        doc = yaml.safe_load(config.read_text())
        doc["max_response_mb"] = 1
        config.write_text(yaml.safe_dump(doc))
        done = subprocess.run([sys.executable, "-m", "meshobs", "graph", "-o", "json", "--config", str(config),
                               "--timeout", "10s"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done.stderr[-2000:]
    messages = " ".join(s["error"] or "" for s in json.loads(done.stdout)["sources"])
    assert "larger than 1 MB" in messages


# A diagnosis slower than the run's deadline (a stand-in for a very big mesh on a busy machine):
# the engine sleeps first, in the real command's process.
_SLOW_DIAGNOSIS = """
import sys, time
import meshobs.engine as engine
real = engine.diagnose_all
def slow(*args, **kwargs):
    time.sleep(float(sys.argv[1]))
    return real(*args, **kwargs)
engine.diagnose_all = slow
from meshobs.cli.main import main
main(sys.argv[2:])
"""


@pytest.mark.parametrize("diagnosis_s", [0.0, 30.0], ids=["in-time", "too-slow"])
def test_the_deadline_bounds_diagnosing_and_printing_too(tmp_path: Path, diagnosis_s: float) -> None:
    from tests.test_prometheus_partial import analytic_server

    startup = _startup_s()
    with analytic_server() as srv:
        config = tmp_path / "meshobs.yaml"
        config.write_text(yaml.safe_dump({"mesh": "istio", "time": "2024-05-01T12:00:00Z",
                                          "sources": {"prometheus": {"url": srv.url}}}))
        start = time.monotonic()
        done = subprocess.run([sys.executable, "-c", _SLOW_DIAGNOSIS, str(diagnosis_s), "diagnose", "--all",
                               "-o", "json", "--config", str(config), "--timeout", f"{TIMEOUT_S:g}s"],
                              capture_output=True, text=True, timeout=60)
        took = time.monotonic() - start
    assert took - startup < TIMEOUT_S + 1.0, (took, startup, done.stderr[-2000:])
    if diagnosis_s:
        # No verdict: "could not check" (3), said on stderr, nothing half-printed on stdout.
        assert done.returncode == 3, done.stderr[-2000:]
        assert done.stdout == "" and "deadline" in done.stderr
    else:
        assert done.returncode in (0, 1), done.stderr[-2000:]
        assert json.loads(done.stdout)["services"]
