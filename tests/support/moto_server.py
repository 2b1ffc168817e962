"""A real moto server on loopback for the AWS collector tests (boto3 over HTTP).

Use the ``moto_endpoint`` fixture (session scope): it starts ``moto_server -H 127.0.0.1 -p PORT``
from the venv, waits until it answers, and stops it at the end. Each test gets dummy AWS
credentials in the environment (``aws_env``) and should use its own names (mesh, namespace) or
call ``reset(endpoint)`` because the server is shared. When moto cannot start the tests skip,
unless ``MESHOBS_REQUIRE_MOTO=1`` (CI), which turns that into a failure.

Also here: ``ThrottlingServer``, a loopback AWS-JSON/query endpoint that answers a scripted
sequence (throttling errors, then a real answer) so retry handling is tested over real HTTP.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from meshobs.demo.httpserver import LoopbackHTTPServer, Request, Response

from .loopback import listens, unused_port

DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def _moto_binary() -> str | None:
    candidate = Path(sys.executable).with_name("moto_server")
    if candidate.is_file():
        return str(candidate)
    return shutil.which("moto_server")


def _unavailable(reason: str) -> None:
    if os.environ.get("MESHOBS_REQUIRE_MOTO") == "1":
        pytest.fail(f"moto server required (MESHOBS_REQUIRE_MOTO=1) but {reason}")
    pytest.skip(f"moto server unavailable: {reason}")


class _Shared:
    """One moto process per test session, however many modules import the fixture (pytest makes
    one session fixture per importing module; they share this process and the last one stops it)."""

    proc: subprocess.Popen[bytes] | None = None
    url: str = ""
    users: int = 0


def _start() -> str:
    binary = _moto_binary()
    if binary is None:
        _unavailable("moto_server is not installed (pip install 'moto[server]')")
    last = ""
    for _attempt in range(5):
        port = unused_port()
        url = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen([str(binary), "-H", "127.0.0.1", "-p", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env={**os.environ, **DUMMY_ENV})
        _Shared.proc, _Shared.url = proc, url
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                err = (proc.stderr.read() if proc.stderr else b"").decode(errors="replace")[-300:]
                _Shared.proc = None
                last = f"moto_server exited with {proc.returncode}: {err}"
                break
            try:
                # Answered by OUR process: a parallel worker may have been handed the same port.
                if requests.get(f"{url}/moto-api/", timeout=1).status_code < 500 and listens(proc.pid, port):
                    return url
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                _stop()
                _unavailable("moto_server did not answer within 30 s")
            time.sleep(0.2)
        if "in use" not in last:
            break
    _unavailable(last)


def _stop() -> None:
    proc, _Shared.proc = _Shared.proc, None
    if proc is None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a moto server running for the whole test session."""
    url = _Shared.url if _Shared.proc is not None and _Shared.proc.poll() is None else _start()
    _Shared.users += 1
    try:
        yield url
    finally:
        _Shared.users -= 1
        if _Shared.users == 0:
            _stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """Dummy credentials and region in the environment; no shared config files are read."""
    for k, v in DUMMY_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return dict(DUMMY_ENV)


def reset(endpoint: str) -> None:
    """Forget everything the moto server holds."""
    requests.post(f"{endpoint}/moto-api/reset", timeout=5)


class ThrottlingServer:
    """Answers the first ``throttles`` POSTs with an AWS throttling error, then ``success``.

    ``protocol`` "query" answers in the XML of the query protocol (CloudWatch's classic wire
    format), "json" in the AWS JSON protocol (``x-amzn-query-mode``-aware botocore accepts
    both for CloudWatch when the server says so). ``requests`` counts the calls received.
    """

    def __init__(self, success: str, *, throttles: int, content_type: str = "application/x-amz-json-1.0",
                 throttle_body: str = '{"__type":"ThrottlingException","message":"Rate exceeded"}',
                 throttle_status: int = 400) -> None:
        self.requests = 0
        self.bodies: list[bytes] = []

        def respond(request: Request) -> Response:
            self.bodies.append(request.body)
            self.requests += 1
            headers = {"x-amzn-RequestId": f"req-{self.requests}"}
            if self.requests <= throttles:
                return Response(throttle_status, throttle_body, content_type,
                                {**headers, "x-amzn-ErrorType": "ThrottlingException"})
            return Response(200, success, content_type, headers)

        self._server = LoopbackHTTPServer(respond)

    @property
    def url(self) -> str:
        return self._server.url

    def __enter__(self) -> ThrottlingServer:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()


def cli_outputs(path: Path) -> list[Any]:
    """The JSON bodies in the ``Output::`` blocks of an AWS CLI example page (reStructuredText).

    Blocks are the indented lines after ``Output::``; an ``... TRUNCATED ...`` line (and the comma
    before it) is dropped so the abridged real response still parses.
    """
    import json
    import re

    bodies: list[Any] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if line.strip() != "Output::":
            continue
        block: list[str] = []
        for follow in lines[i + 1:]:
            if follow.strip() and not follow.startswith((" ", "\t")):
                break
            if "TRUNCATED" in follow:
                continue
            block.append(follow)
        text = re.sub(r",(\s*[\]}])", r"\1", "\n".join(block))
        bodies.append(json.loads(text))
    return bodies
