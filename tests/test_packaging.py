"""A wheel built from the repo installs meshobs.collectors / meshobs.tui inside the package."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_layout_and_entry_point(tmp_path: Path) -> None:
    # Build from a copy of the tracked files: building in the checkout leaves build/ behind,
    # and a stale build/lib can smuggle removed modules into later wheels.
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    src = tmp_path / "src"
    for name in filter(None, files.decode().split("\0")):
        target = src / name
        target.parent.mkdir(parents=True, exist_ok=True)
        origin = REPO / name
        if origin.is_symlink():
            target.symlink_to(origin.readlink())
        elif origin.is_file():
            shutil.copy2(origin, target)
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "-o", str(tmp_path), str(src)],
                   check=True, capture_output=True)
    (wheel,) = tmp_path.glob("meshobs-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "meshobs/collectors/__init__.py" in names
    # Subpackages of the mapped folders come along too (collectors/envoy, collectors/prometheus).
    for module in ("collectors/envoy/config_dump.py", "collectors/prometheus/fetch.py", "tui/screens/overview.py"):
        assert f"meshobs/{module}" in names, module
    assert "meshobs/tui/__init__.py" in names
    tops = {n.split("/")[0] for n in names if not n.startswith("meshobs-")}
    assert tops == {"meshobs"}, tops  # no generic top-level `collectors` or `tui`
    assert any(n.startswith("meshobs/demo/bundles/") and n.endswith(".tar.gz") for n in names)
    # The vendored Istio CRD schemas (and their licence) ship as package data.
    assert "meshobs/istio_schema/schemas/networking.istio.io_v1beta1_VirtualService.json" in names
    assert "meshobs/istio_schema/schemas/LICENSE-kubernetes-models" in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "meshobs = meshobs.cli.main:main" in zipfile.ZipFile(wheel).read(entry).decode()
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    # Run the installed copy (dependencies come from this environment), away from the repo.
    out = subprocess.run([sys.executable, "-c", "import meshobs.collectors, meshobs.cli.main as m; "
                          "print(meshobs.collectors.__file__)"],
                         cwd=tmp_path, env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, check=True).stdout
    assert out.strip().startswith(str(target))
    graph = subprocess.run([sys.executable, "-m", "meshobs", "graph", "-o", "json"], cwd=tmp_path,
                           env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
                           capture_output=True, text=True)
    assert graph.returncode == 0, graph.stderr
    assert '"edges"' in graph.stdout
