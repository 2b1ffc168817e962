"""meshobs packaged the way a release does it: sdist, then a wheel built from the sdist, then a
clean virtualenv, where the commands a new user runs first must work."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _tracked_copy(dest: Path) -> Path:
    """The tracked files, as a fresh clone has them (symlinks included, nothing untracked).
    Building in the checkout would leave build/ behind, where a stale build/lib can smuggle
    removed modules into later wheels."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        origin = REPO / name
        if origin.is_symlink():
            target.symlink_to(origin.readlink())
        elif origin.is_file():
            shutil.copy2(origin, target)
    return dest


def test_every_package_folder_is_listed_in_pyproject() -> None:
    """The package list is explicit (see pyproject.toml): a new subpackage must be added to it,
    or the wheel silently ships without it."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping: dict[str, str] = config["package-dir"]
    found = set()
    for package, folder in mapping.items():
        root = REPO / folder
        for init in root.rglob("*"):
            if init.is_dir() and "__pycache__" not in init.parts and not init.is_symlink() \
                    and not any(p.is_symlink() for p in init.parents if p != REPO and REPO in p.parents) \
                    and any(init.glob("*.py")) | any(init.glob("*.md")) | any(init.glob("*.tar.gz")):
                rel = init.relative_to(root)
                found.add(".".join([package, *rel.parts]) if rel.parts else package)
        found.add(package)
    assert set(config["packages"]) == found


@pytest.mark.slow
def test_release_build_installs_and_runs_in_a_clean_venv(tmp_path: Path) -> None:
    src = _tracked_copy(tmp_path / "src")
    dist = tmp_path / "dist"
    # `python -m build` with no flag is what a release runs: the sdist, then the wheel from it.
    subprocess.run([sys.executable, "-m", "build", "-o", str(dist), str(src)], check=True, capture_output=True)
    (sdist,) = dist.glob("meshobs-*.tar.gz")
    (wheel,) = dist.glob("meshobs-*.whl")

    with tarfile.open(sdist) as tar:
        members = tar.getmembers()
    assert not [m.name for m in members if m.issym()], "the sdist must not need symlinks"
    names = zipfile.ZipFile(wheel).namelist()
    for module in ("collectors/__init__.py", "collectors/envoy/config_dump.py", "collectors/prometheus/fetch.py",
                   "tui/__init__.py", "tui/screens/overview.py", "docs/findings/MSH0406.md", "config_model.py",
                   "schemas/diagnose.json"):
        assert f"meshobs/{module}" in names, module
    tops = {n.split("/")[0] for n in names if not n.startswith("meshobs-")}
    assert tops == {"meshobs"}, tops  # no generic top-level `collectors`, `tui` or `docs`
    assert any(n.startswith("meshobs/demo/bundles/") and n.endswith(".tar.gz") for n in names)
    # The vendored Istio CRD schemas (and their licence) ship as package data.
    assert "meshobs/istio_schema/schemas/networking.istio.io_v1beta1_VirtualService.json" in names
    assert "meshobs/istio_schema/schemas/LICENSE-kubernetes-models" in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "meshobs = meshobs.cli.main:main" in zipfile.ZipFile(wheel).read(entry).decode()

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bin_dir = env_dir / "bin"
    subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", str(wheel)], check=True,
                   capture_output=True)
    # Away from the repo, with no config anywhere: only the installed copy can answer.
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
           "LANG": os.environ.get("LANG", "C.UTF-8")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(bin_dir / "meshobs"), *args], cwd=tmp_path, env=env, capture_output=True,
                              text=True)

    # The default install: no optional extra, so no boto3; the README's first command still works,
    # and so does replaying the App Mesh demo.
    has_boto3 = subprocess.run([str(bin_dir / "python"), "-c", "import boto3"], env=env, capture_output=True)
    assert has_boto3.returncode != 0, "boto3 belongs to the [aws] extra, not the default install"
    assert run("graph", "--from", "demo:ecommerce-appmesh").returncode == 0
    diagnose = run("diagnose", "cart-service", "--from", "demo")
    assert diagnose.returncode == 1, diagnose.stderr  # the demo's fault is found
    assert "MSH0406" in diagnose.stdout and "meshobs explain MSH0406" in diagnose.stdout
    explain = run("explain", "MSH0406")
    assert explain.returncode == 0 and explain.stdout.startswith("# MSH0406"), explain.stderr
    check = run("config", "check", str(src / "config" / "meshobs.example.yaml"))
    assert check.returncode == 0, check.stderr
    imported = subprocess.run([str(bin_dir / "python"), "-c", "import meshobs.tui.app, meshobs.collectors as c; "
                               "print(c.__file__)"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip().startswith(str(env_dir))
