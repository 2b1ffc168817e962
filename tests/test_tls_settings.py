"""Every HTTP source decides TLS by one rule (``collectors.http.tls_verify``): ``ca_file``
verifies the server against that CA, ``verify_tls: false`` verifies nothing (whatever
``ca_file`` says, and the run says once that the ca_file goes unused), neither verifies against
the system's CAs. Asked of a loopback HTTPS server whose certificate a private CA signed, for
each source kind: Prometheus, Jaeger, static Envoy targets, static istiod replicas, and the
Envoy stats read from Prometheus (``sources.prometheus``'s settings)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshobs.collect import build_snapshot, collect
from meshobs.collectors.base import FetchContext
from meshobs.collectors.envoy import scraped, static_targets
from meshobs.config import validate
from meshobs.demo.httpserver import Request, Response
from meshobs.model import SourceState
from tests.support.https import https_server, tls_files
from tests.test_tls_and_urls import ADMIN

NOW = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
PROMETHEUS_EMPTY = '{"status": "success", "data": {"resultType": "vector", "result": []}}'


def _respond(request: Request) -> Response:
    path = request.path_only
    if path.startswith("/api/v1/"):
        return Response(200, PROMETHEUS_EMPTY)
    if path == "/api/v3/services":
        return Response(200, '{"services": []}')
    if path == "/api/dependencies":
        return Response(200, "[]")
    if path.endswith("/debug/syncz"):
        return Response(200, "[]")
    ctype, body = ADMIN.get("/" + path.split("/", 2)[-1], ("text/plain", ""))
    if path.endswith("/ready"):
        ctype, body = "text/plain", "LIVE"
    return Response(200 if body else 404, body, ctype)


@pytest.fixture(scope="module")
def https(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    """(https URL, the CA that signed its certificate, another CA)."""
    tmp = tmp_path_factory.mktemp("tls")
    (tmp / "other").mkdir()
    ca, cert, key = tls_files(tmp)
    other_ca = tls_files(tmp / "other")[0]
    with https_server(_respond, cert, key) as url:
        yield url, ca, other_ca


def _sources(kind: str, url: str, tls: dict[str, Any]) -> dict[str, Any]:
    if kind == "prometheus":
        return {"prometheus": {"url": url, "timeout": "3s", **tls}}
    if kind == "jaeger":
        return {"jaeger": {"url": url, "api": "v3", "timeout": "3s", **tls}}
    if kind == "envoy":
        return {"envoy": {"discovery": "static", "timeout": "3s", **tls, "targets": [
            {"namespace": "bank", "pod": f"teller-v1-{i}", "workload": "teller-v1", "url": f"{url}/teller-v1-{i}"}
            for i in range(2)]}}
    assert kind == "istiod"
    return {"istiod": {"discovery": "static", "timeout": "3s", "targets": [{"url": url}], **tls}}


def _problems(kind: str, url: str, tls: dict[str, Any]) -> list[str]:
    """What went wrong talking to the server, one line per source of ``kind`` (empty: all ok)."""
    if kind == "scraped":
        config = validate({"mesh": "istio", "sources": _sources("prometheus", url, tls)})
        scrape = scraped.from_config(config.sources)
        assert scrape is not None
        targets = static_targets([{"namespace": "bank", "pod": "teller-v1-0", "url": f"{url}/teller-v1-0"}])
        scrape(targets, FetchContext(time=NOW, window_s=300.0, config=config))
        return [scrape.last_error] if scrape.last_error else []
    config = validate({"mesh": "istio", "sources": _sources(kind, url, tls)})
    snapshot = build_snapshot(collect(config, at=NOW))
    statuses = [s for s in snapshot.sources if s.kind == kind or s.name.startswith(kind)]
    assert statuses, snapshot.sources
    return [f"{s.name}: {s.state.value}: {s.message}" for s in statuses
            if s.state is SourceState.ERROR or "TLS" in s.message or "certificate" in s.message]


KINDS = ["prometheus", "jaeger", "envoy", "istiod", "scraped"]
# (tls settings, verified?): "CA" is the CA that signed the server's certificate, "OTHER" one that did not
SETTINGS = {
    "ca_file": ({"ca_file": "CA"}, True),
    "verify off": ({"verify_tls": False}, True),
    "verify off, ca_file unused": ({"verify_tls": False, "ca_file": "OTHER"}, True),
    "system CAs": ({}, False),
    "another CA": ({"ca_file": "OTHER"}, False),
}


@pytest.mark.slow
@pytest.mark.parametrize("setting", list(SETTINGS), ids=list(SETTINGS))
@pytest.mark.parametrize("kind", KINDS)
def test_each_source_verifies_tls_by_the_one_rule(https: tuple[str, Path, Path], kind: str, setting: str) -> None:
    url, ca, other_ca = https
    tls, answers = SETTINGS[setting]
    tls = {k: str(ca) if v == "CA" else str(other_ca) if v == "OTHER" else v for k, v in tls.items()}
    problems = _problems(kind, url, tls)
    if answers:
        assert problems == []
    else:
        assert problems and all("certificate verify failed" in p for p in problems), problems


@pytest.mark.slow
def test_unverified_sources_are_named_once_with_their_unused_ca_file(https: tuple[str, Path, Path],
                                                                       tmp_path: Path) -> None:
    """Neither setting: every source fails in words (certificate verify failed), without a
    traceback. verify_tls: false with a ca_file: one warning line per source, naming the ca_file
    unused, from ``config check`` and from a run alike."""
    url, ca, _other = https
    sources = {k: v for kind in ("prometheus", "jaeger", "envoy", "istiod") for k, v in _sources(kind, url, {}).items()}
    config = tmp_path / "meshobs.yaml"
    config.write_text(yaml.safe_dump({"mesh": "istio", "sources": sources}))
    done = subprocess.run([sys.executable, "-m", "meshobs", "graph", "-o", "json", "--config", str(config)],
                          capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stderr, done.stderr
    failed = [s for s in json.loads(done.stdout)["sources"] if "certificate verify failed" in json.dumps(s)]
    assert {s["name"].split(":")[0] for s in failed} >= {"prometheus", "jaeger", "envoy", "istiod"}, done.stdout

    off = {name: {**section, "verify_tls": False, **({"ca_file": str(ca)} if name != "jaeger" else {})}
           for name, section in sources.items()}
    config.write_text(yaml.safe_dump({"mesh": "istio", "sources": off}))
    for command in (["config", "check", str(config)], ["graph", "-o", "json", "--config", str(config)]):
        done = subprocess.run([sys.executable, "-m", "meshobs", *command], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        warned = [line for line in done.stderr.splitlines() if "not verified" in line]
        assert sorted(line.split(": ")[2] for line in warned) == sorted(f"sources.{n}" for n in sources), warned
        assert sorted("ca_file" in line for line in warned) == [False, True, True, True], warned
        assert "Unverified HTTPS request" not in done.stderr  # urllib3's per request: one line per source instead
