"""Drift metrics: the textfile parses with prometheus_client's parser; the Pushgateway PUT."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from meshobs.drift.compare import INTENDED_LIVE, LIVE_EFFECTIVE, Drift, Severity
from meshobs.drift.metrics import PushError, push, registry, render, write_textfile
from meshobs.drift.normalise import ResourceId

VS = ResourceId("istio", "VirtualService", "shop", 'we"ird\\name')
DR = ResourceId("istio", "DestinationRule", "shop", "reviews")


def _drifts() -> list[Drift]:
    return [Drift(VS, INTENDED_LIVE, "a", 1, 2, "spec", Severity.WARNING),
            Drift(VS, INTENDED_LIVE, "b", 1, 2, "spec", Severity.WARNING),
            Drift(DR, LIVE_EFFECTIVE, "spec.subsets[v3]", None, "present", "subset", Severity.ERROR),
            Drift(DR, INTENDED_LIVE, "labels.x", "a", "b", "labels", Severity.WARNING).with_ignore("managed")]


EMPTY = registry([], last_run=1, last_success=None, check_errors_total=0)


def _families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_textfile_parses_and_counts(tmp_path: Path) -> None:
    path = write_textfile(tmp_path / "textfiles" / "meshobs_drift.prom",
                          registry(_drifts(), last_run=1795300000.5, last_success=1795299000, check_errors_total=3))
    tmp_path = path.parent
    fams = _families(path.read_text())
    assert fams["meshobs_drift_resources"].type == "gauge"
    samples = {(s.labels["kind"], s.labels["name"], s.labels["layers"]): s.value
               for s in fams["meshobs_drift_resources"].samples}
    assert samples == {("VirtualService", 'we"ird\\name', INTENDED_LIVE): 2.0,
                       ("DestinationRule", "reviews", LIVE_EFFECTIVE): 1.0}  # the ignored one is not counted
    assert fams["meshobs_drift_last_run_timestamp_seconds"].samples[0].value == 1795300000.5
    assert fams["meshobs_drift_last_success_timestamp_seconds"].samples[0].value == 1795299000
    errors = fams["meshobs_drift_check_errors"]  # the parser drops _total from counter family names
    assert errors.type == "counter" and errors.samples[0].name == "meshobs_drift_check_errors_total"
    assert errors.samples[0].value == 3
    assert not [p for p in tmp_path.iterdir() if p.name != "meshobs_drift.prom"]  # no temp file left


def test_no_drift_no_success_yet() -> None:
    fams = _families(render([], last_run=10, last_success=None, check_errors_total=1))
    assert fams["meshobs_drift_resources"].samples == []
    assert fams["meshobs_drift_last_success_timestamp_seconds"].samples == []


class _Gateway:
    """A loopback stand-in for the Pushgateway that records PUTs."""

    def __init__(self, status: int = 200) -> None:
        self.received: list[tuple[str, str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                outer.received.append((self.path, self.headers.get("Content-Type", ""), body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def gateway() -> Iterator[_Gateway]:
    gw = _Gateway()
    gw.thread.start()
    yield gw
    gw.server.shutdown()
    gw.server.server_close()


def test_push_puts_the_text_format(gateway: _Gateway) -> None:
    metrics = registry(_drifts(), last_run=1, last_success=1, check_errors_total=0)
    push(gateway.url + "/", metrics, grouping={"cluster": "prod eu"})
    [(path, ctype, body)] = gateway.received
    # A value with a space travels base64-encoded (Pushgateway >= 0.9), as the library does it.
    assert path == f"/metrics/job/meshobs_drift/cluster@base64/{base64.urlsafe_b64encode(b'prod eu').decode()}"
    assert ctype.startswith("text/plain; version=0.0.4")
    assert body == render(_drifts(), last_run=1, last_success=1, check_errors_total=0)


def test_push_failures_are_push_errors() -> None:
    bad = _Gateway(status=400)
    bad.thread.start()
    try:
        with pytest.raises(PushError):
            push(bad.url, EMPTY)
    finally:
        bad.server.shutdown()
        bad.server.server_close()
    with pytest.raises(PushError):
        push("http://127.0.0.1:9", EMPTY, timeout_s=2)
