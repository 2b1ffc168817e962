"""Test servers start on a port of their own even when a parallel worker took it first.

Under pytest-xdist two workers may be handed the same "free" port. The loser's Prometheus
exits (address in use) while the winner answers ``ready``: the loser must not read the
winner's data. Reproduced here by handing the second server the first one's port.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from meshobs.demo import promserver
from meshobs.demo.promserver import prometheus_available, start_prometheus

pytestmark = pytest.mark.prometheus

SERIES = "# TYPE {name} gauge\n{name} 1 1714564800\n# EOF\n"


def _names(url: str) -> set[str]:
    answer = requests.get(f"{url}/api/v1/label/__name__/values", timeout=5).json()
    return set(answer["data"])


@pytest.mark.skipif(not prometheus_available(), reason="prometheus not installed")
def test_a_taken_port_is_retried_not_shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with start_prometheus(SERIES.format(name="first_worker"), tmp_path / "a") as first:
        taken = int(first.url.rsplit(":", 1)[1])
        ports = iter([taken])
        real = promserver.free_port
        monkeypatch.setattr(promserver, "free_port", lambda: next(ports, None) or real())
        with start_prometheus(SERIES.format(name="second_worker"), tmp_path / "b") as second:
            assert second.url != first.url
            assert "second_worker" in _names(second.url)
            assert "first_worker" not in _names(second.url)
