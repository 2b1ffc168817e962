"""A live command registers its configuration's credentials once (``register_config_once``): the
CLI registers them before anything can fail, and :func:`meshobs.collect.collect` (which a library
caller calls directly) must still mask them when nothing registered them before. Both paths
against an auth proxy that echoes the Authorization header it refused."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from meshobs import redact
from meshobs.bundle import write_bundle
from meshobs.cli.main import cli
from meshobs.collect import collect
from meshobs.config import load_config
from meshobs.demo.httpserver import LoopbackHTTPServer, Request, Response

TOKEN = "tok-echoed-4b1d9e"


def _echo_unauthorized(request: Request) -> Response:
    return Response(401, f"invalid credentials: {request.headers.get('Authorization', '')}", "text/plain")


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """A process that has masked nothing yet; how many times each credential gets registered."""
    monkeypatch.setattr(redact, "_KNOWN", set())
    monkeypatch.setattr(redact, "_SEEN", {})
    monkeypatch.setattr(redact, "_REGISTERED", None, raising=False)
    counts: Counter[str] = Counter()
    original = redact.register_secret

    def counting(value: str, into: set[str] | None = None) -> None:
        if into is None:
            counts[value.strip()] += 1
        original(value, into)

    monkeypatch.setattr(redact, "register_secret", counting)
    return counts


@pytest.fixture
def config_file(tmp_path: Path) -> Any:
    with LoopbackHTTPServer(_echo_unauthorized) as prom:
        path = tmp_path / "meshobs.yaml"
        path.write_text(yaml.safe_dump({"sources": {"prometheus": {
            "url": prom.url, "headers": {"Authorization": f"Bearer {TOKEN}"}, "timeout": "10s"}}}), encoding="utf-8")
        yield path, prom


def _text(root: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in sorted(root.rglob("*")) if p.is_file())


def test_a_library_call_of_collect_masks_the_configs_credentials(
        config_file: Any, registered: Counter[str], tmp_path: Path) -> None:
    path, prom = config_file
    config = load_config(str(path))
    assert config is not None and not registered  # loading registers nothing
    bundle = collect(config, deadline=time.monotonic() + 60)
    assert prom.requests  # the proxy was asked, and quoted the token in its answer
    out = write_bundle(bundle, tmp_path / "bundle")
    text = _text(out)
    assert "invalid credentials: <redacted>" in text
    assert TOKEN not in text
    assert registered[TOKEN] == 1
    collect(config, deadline=time.monotonic() + 60)  # the same config again (a dashboard's refresh)
    assert registered[TOKEN] == 1


def test_the_cli_registers_its_configs_credentials_once(
        config_file: Any, registered: Counter[str], tmp_path: Path) -> None:
    path, prom = config_file
    result = CliRunner().invoke(cli, ["snapshot", "--config", str(path), "--out", str(tmp_path / "bundle"),
                                      "--timeout", "60s"])
    assert prom.requests
    text = result.output + _text(tmp_path / "bundle")
    assert "invalid credentials: <redacted>" in text
    assert TOKEN not in text
    assert registered[TOKEN] == 1  # by the CLI, before collecting; collect() found it registered


def test_a_config_registered_then_forgotten_is_registered_again(registered: Counter[str]) -> None:
    raw = {"sources": {"prometheus": {"url": "http://prom:9090", "headers": {"Authorization": f"Bearer {TOKEN}"}}}}
    redact.register_config_once(raw)
    redact.register_config_once(raw)
    assert registered[TOKEN] == 1
    redact._KNOWN.discard(TOKEN)  # masks replaced (as a test does): the same object registers again
    redact.register_config_once(raw)
    assert registered[TOKEN] == 2 and redact.redact_text(f"x {TOKEN}") == f"x {redact.REDACTED}"


def test_a_config_read_back_from_the_cache_is_not_walked_again(
        tmp_path: Path, registered: Counter[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A record exists only for a configuration holding no credential, so a hit is registered as
    clean without the walk; one holding a credential is never recorded and is walked each run."""
    walks: list[object] = []
    original = redact.register_config_secrets

    def counting(value: Any, key: str = "", into: set[str] | None = None) -> None:
        if not key:
            walks.append(value)
        original(value, key, into)

    monkeypatch.setattr(redact, "register_config_secrets", counting)
    clean, secret = tmp_path / "clean.yaml", tmp_path / "secret.yaml"
    clean.write_text("sources: {prometheus: {url: 'http://prom:9090'}}\n", encoding="utf-8")
    secret.write_text(f"sources: {{prometheus: {{url: 'http://prom:9090', headers: "
                      f"{{Authorization: 'Bearer {TOKEN}'}}}}}}\n", encoding="utf-8")
    for path in (clean, secret):
        load_config(str(path))  # validated; the clean one recorded (after a walk finding nothing)
    walks.clear()
    hit = load_config(str(clean))
    assert hit is not None
    redact.register_config_once(hit.raw)
    assert walks == []  # read back: vouched for by the walk done when it was recorded
    again = load_config(str(secret))  # validated again (never recorded)
    assert again is not None
    walks.clear()
    redact.register_config_once(again.raw)
    assert walks == [again.raw] and registered[TOKEN] == 1
    assert redact.redact_text(f"x {TOKEN}") == f"x {redact.REDACTED}"
