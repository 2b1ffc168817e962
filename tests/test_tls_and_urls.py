"""TLS and URLs for HTTP sources: Envoy https targets verify with ``ca_file`` (or not, with one
warning line, not one per request), a Jaeger URL's query string survives, and a source given
two ways to authenticate is a configuration error."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from meshobs.collectors import jaeger
from meshobs.collectors.base import FetchContext
from meshobs.config import validate
from meshobs.demo.httpserver import Request, Response
from tests.support.https import https_server, tls_files
from tests.support.loopback import LoopbackServer

NOW = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)


ADMIN = {"/ready": ("text/plain", "LIVE"), "/server_info": ("application/json", '{"state": "LIVE"}'),
         "/stats": ("application/json", '{"stats": []}'), "/config_dump": ("application/json", '{"configs": []}'),
         "/certs": ("application/json", '{"certificates": []}')}


@pytest.fixture
def https_admin(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    ca, cert, key = tls_files(tmp_path)

    def respond(request: Request) -> Response:
        ctype, body = ADMIN.get("/" + request.path_only.split("/", 2)[-1], ("text/plain", ""))
        return Response(200 if body else 404, body, ctype)

    with https_server(respond, cert, key) as url:
        yield url, ca


def _graph(tmp_path: Path, url: str, **envoy: object) -> tuple[dict[str, object], str]:
    config = tmp_path / "meshobs.yaml"
    config.write_text(yaml.safe_dump({"mesh": "istio", "sources": {"envoy": {
        "discovery": "static", "timeout": "3s", **envoy,
        "targets": [{"namespace": "bank", "pod": f"teller-v1-{i}", "workload": "teller-v1",
                     "url": f"{url}/teller-v1-{i}"} for i in range(12)]}}}))
    done = subprocess.run([sys.executable, "-m", "meshobs", "graph", "-o", "json", "--config", str(config)],
                          capture_output=True, text=True, timeout=120)
    return json.loads(done.stdout), done.stderr


@pytest.mark.slow
def test_https_envoy_targets_verify_with_ca_file(https_admin: tuple[str, Path], tmp_path: Path) -> None:
    url, ca = https_admin
    doc, _ = _graph(tmp_path, url)  # the system's CAs do not know this one: could not check
    assert all(s["status"] == "error" and "TLS" in (s["error"] or "") for s in doc["sources"])  # type: ignore[attr-defined]
    doc, _ = _graph(tmp_path, url, ca_file=str(ca))
    assert all(s["status"] == "ok" for s in doc["sources"])  # type: ignore[attr-defined]


@pytest.mark.slow
def test_unverified_tls_warns_once(https_admin: tuple[str, Path], tmp_path: Path) -> None:
    url, _ca = https_admin
    doc, stderr = _graph(tmp_path, url, verify_tls=False)
    assert all(s["status"] == "ok" for s in doc["sources"])  # type: ignore[attr-defined]
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "sources.envoy" in lines[0] and "not verified" in lines[0], stderr


@pytest.mark.slow
@pytest.mark.parametrize("tls", [{}, {"ca_file": "CA"}, {"verify_tls": False}], ids=["system CAs", "ca_file", "off"])
def test_static_https_istiod_honours_its_tls_settings(tmp_path: Path, tls: dict[str, object]) -> None:
    """sources.istiod's ca_file and verify_tls reach each request (they were set on the session,
    where requests lets the request's own verify=True win: both were ignored)."""
    ca, cert, key = tls_files(tmp_path)
    def respond(request: Request) -> Response:
        return Response(200, "[]" if "syncz" in request.path else "ok", "application/json")

    with https_server(respond, cert, key) as url:
        config = tmp_path / "meshobs.yaml"
        istiod = {"discovery": "static", "timeout": "3s", "targets": [{"url": url}],
                  **{k: str(ca) if v == "CA" else v for k, v in tls.items()}}
        config.write_text(yaml.safe_dump({"mesh": "istio", "sources": {"istiod": istiod}}))
        done = subprocess.run([sys.executable, "-m", "meshobs", "graph", "-o", "json", "--config", str(config)],
                              capture_output=True, text=True, timeout=120)
    statuses = [s for s in json.loads(done.stdout)["sources"] if s["name"].startswith("istiod")]
    assert statuses, done.stdout
    if tls:
        assert all(s["status"] == "ok" for s in statuses), statuses
    else:  # the system's CAs do not know this one
        assert all(s["status"] != "ok" and "TLS" in json.dumps(s) for s in statuses), statuses


def test_a_jaeger_url_keeps_its_query_string() -> None:
    with LoopbackServer() as srv:
        srv.route("/tracing/api/v3/services", body='{"services": []}')
        srv.route("/tracing/api/dependencies", body="[]")
        collector = jaeger.JaegerCollector(url=f"{srv.url}/tracing?orgId=7&tenant=blue", api="v3", timeout_s=2)
        collector.fetch(FetchContext(time=NOW, window_s=300, config=validate({})))
        paths = [path for _m, path, _h in srv.requests]
    assert paths and all(p.startswith("/tracing/api/") and "orgId=7" in p and "tenant=blue" in p for p in paths)


def test_two_ways_to_authenticate_one_source_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "meshobs.yaml"
    config.write_text(yaml.safe_dump({"sources": {"prometheus": {
        "url": "http://reader:pw@prometheus.example:9090", "headers": {"Authorization": "Bearer t"}}}}))
    done = subprocess.run([sys.executable, "-m", "meshobs", "graph", "--config", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "sources.prometheus" in done.stderr and "pw" not in done.stderr
