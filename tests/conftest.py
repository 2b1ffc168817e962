from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# CI checks the repo out with ../shared beside it; MESHOBS_SHARED overrides for other layouts.
SHARED = Path(os.environ.get("MESHOBS_SHARED", REPO.parent / "shared"))
CORPUS = SHARED / "corpus"


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The shared corpus of real payloads (never copied into the project)."""
    if not CORPUS.is_dir():
        pytest.fail(f"shared corpus not found at {CORPUS}; set MESHOBS_SHARED")
    return CORPUS


@pytest.fixture(autouse=True)
def _isolate_user_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's own ~/.config/meshobs or $MESHOBS_CONFIG, or writes the
    validated-config records (meshobs.config_cache) into their ~/.cache."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg")))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    monkeypatch.delenv("MESHOBS_CONFIG", raising=False)


@pytest.fixture(scope="session")
def require_prometheus() -> None:
    """Skip when prometheus/promtool are missing, but fail when MESHOBS_REQUIRE_PROMETHEUS=1
    (CI sets it: the real-server tests must never skip silently there)."""
    from meshobs.demo.promserver import prometheus_available

    if not prometheus_available():
        if os.environ.get("MESHOBS_REQUIRE_PROMETHEUS") == "1":
            pytest.fail("prometheus/promtool not on PATH but MESHOBS_REQUIRE_PROMETHEUS=1")
        pytest.skip("prometheus/promtool not installed")
