"""Total time per request, size caps and the run's deadline, for every kind of client meshobs
uses (requests, prometheus-api-client, the kubernetes client, botocore), against loopback
servers that trickle, hang, flood, throttle or answer garbage."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from meshobs.collectors import aws
from meshobs.collectors.base import FetchContext
from meshobs.collectors.http import ResponseTooLarge, TotalTimeout, bounded_session, describe_error, http_get
from meshobs.collectors.kubernetes import KubernetesCollector
from meshobs.collectors.netbound import RunLimits, run_limits
from meshobs.collectors.workers import fan_out
from meshobs.config import validate
from tests.support.fake_kube import token_kubeconfig
from tests.support.faults import Fault, FaultServer

SLACK_S = 1.0  # the contract (issue 15): within the deadline plus a second; a trickle would take minutes


@pytest.fixture
def fault(request: pytest.FixtureRequest) -> Iterator[FaultServer]:
    kind: Fault = request.param
    with FaultServer(lambda _path: kind) as srv:
        yield srv


def timed(fn: object) -> tuple[object, float]:
    start = time.monotonic()
    result = fn()  # type: ignore[operator]
    return result, time.monotonic() - start


@pytest.mark.parametrize(("fault", "words"), [
    (Fault.trickle(0.2), "within 1 s"),          # the status line, a byte every 0.2 s
    (Fault.trickle_body(0.2), "within 1 s"),     # headers at once, then the body
    (Fault.trickle_unsized(0.2), "within 1 s"),  # the same, the body's end being the connection's
    (Fault.hang(), "within 1 s"),
    (Fault.huge(), "larger than 64 MB"),         # the default cap; streamed, never held whole
], indirect=["fault"])
def test_every_request_ends_within_its_total_time(fault: FaultServer, words: str) -> None:
    # The huge answer must hit the size cap, not the clock: streaming 64 MB over loopback takes
    # seconds on a loaded 2-core machine, so it gets a total time it cannot reach first.
    timeout_s = 30.0 if "larger" in words else 1.0
    payload, took = timed(lambda: http_get(requests.Session(), fault.url + "/x", "x", timeout_s=timeout_s))
    assert payload.error is not None and words in payload.error  # type: ignore[attr-defined]
    assert took < timeout_s + SLACK_S


@pytest.mark.parametrize("fault", [Fault.ok("slow down", status=429, content_type="text/plain"),
                                   Fault.ok("<html>not json", content_type="text/html")], indirect=True)
def test_answers_that_are_not_data_are_kept_as_received(fault: FaultServer) -> None:
    payload = http_get(requests.Session(), fault.url + "/x", "x", timeout_s=1.0)
    # The collector's normaliser judges them; the transport keeps status and body as they came.
    assert payload.error is None and payload.body in ("slow down", "<html>not json")


@pytest.mark.parametrize("fault", [Fault.trickle(0.2)], indirect=True)
def test_the_run_deadline_cuts_a_request_short(fault: FaultServer) -> None:
    with run_limits(RunLimits(deadline=time.monotonic() + 0.5)):
        payload, took = timed(lambda: http_get(requests.Session(), fault.url + "/x", "x", timeout_s=30))
        late = http_get(requests.Session(), fault.url + "/y", "y", timeout_s=30)
    assert "deadline" in (payload.error or "") and took < 0.5 + SLACK_S  # type: ignore[attr-defined]
    assert late.error is not None and "not asked" in late.error


def test_a_cut_budget_reads_as_a_short_number() -> None:
    # A budget cut to what is left of the run's deadline is any float; messages round it.
    assert str(TotalTimeout(3.57462)) == "no complete answer within 3.6 s"
    reason = describe_error(requests.exceptions.ReadTimeout(), "http://p:9090", 0.123456)
    assert reason == "http://p:9090 did not answer within 0.12 s (timed out)"


@pytest.mark.parametrize("fault", [Fault.huge()], indirect=True)
def test_the_size_cap_is_the_runs(fault: FaultServer) -> None:
    with run_limits(RunLimits(max_bytes=1024 * 1024)):
        payload = http_get(requests.Session(), fault.url + "/x", "x", timeout_s=5)
    assert "larger than 1 MB" in (payload.error or "")


@pytest.mark.parametrize("fault", [Fault.trickle(0.2), Fault.huge()], indirect=True)
def test_prometheus_api_client_through_a_bounded_session(fault: FaultServer) -> None:
    from prometheus_api_client import PrometheusConnect
    from urllib3.util.retry import Retry

    client = PrometheusConnect(url=fault.url, session=bounded_session(timeout_s=1.0, max_bytes=1024 * 1024),
                               timeout=30, retry=Retry(total=0, raise_on_status=False))  # type: ignore[arg-type]
    start = time.monotonic()
    with pytest.raises((TotalTimeout, ResponseTooLarge)):
        client.custom_query("up")
    assert time.monotonic() - start < 1.0 + SLACK_S


def _ctx(deadline_s: float = 30.0, **kwargs: object) -> FetchContext:
    return FetchContext(time=datetime(2026, 1, 1, tzinfo=UTC), window_s=300, config=validate({}),
                        deadline=time.monotonic() + deadline_s, **kwargs)  # type: ignore[arg-type]


def _kubeconfig(tmp_path: Path, url: str) -> Path:
    return token_kubeconfig(tmp_path / "kubeconfig", url)


@pytest.mark.parametrize("fault", [Fault.trickle(0.2), Fault.trickle_unsized(0.2), Fault.hang()], indirect=True)
def test_kubernetes_client_calls_end_within_the_timeout(fault: FaultServer, tmp_path: Path) -> None:
    collector = KubernetesCollector(kubeconfig=str(_kubeconfig(tmp_path, fault.url)), timeout_s=1.0)
    collector.load()[0].close()  # the first load imports the client (half a second), not the network
    (raw,), took = timed(lambda: collector.fetch(_ctx()))  # type: ignore[misc]
    assert took < 1.0 + SLACK_S  # the probe timed out, nothing else was waited for
    assert "timed out" in (raw.payloads[0].error or "")


@pytest.mark.parametrize("fault", [Fault.huge()], indirect=True)
def test_kubernetes_answers_are_capped(fault: FaultServer, tmp_path: Path) -> None:
    collector = KubernetesCollector(kubeconfig=str(_kubeconfig(tmp_path, fault.url)), timeout_s=5.0)
    with run_limits(RunLimits(max_bytes=1024 * 1024)):
        (raw,) = collector.fetch(_ctx())
    assert "larger than 1 MB" in (raw.payloads[0].error or "")


@pytest.mark.parametrize("fault", [Fault.trickle(0.2)], indirect=True)
def test_botocore_calls_end_within_their_total_time(fault: FaultServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = aws.make_client("xray", {"region": "eu-west-1", "endpoint_url": fault.url, "timeout": "1s",
                                      "max_attempts": 1})
    assert aws.install_boto(client)  # a botocore release that moves its HTTP session fails here
    (payload, body), took = timed(lambda: aws.call(client, "get_service_graph", "g",  # type: ignore[misc]
                                                  {"StartTime": 0, "EndTime": 1}, service="xray"))
    assert body is None and "timed out" in (payload.error or "")
    assert took < 1.0 + SLACK_S


def _unused(n: int, exc: Exception) -> str:
    raise AssertionError(f"item {n} raised {exc!r}")


def test_fan_out_one_items_exception_costs_that_item_only() -> None:
    def flaky(n: int) -> str:
        if n == 2:
            raise KeyError("a shape nobody expected")
        return f"done {n}"

    out = fan_out(flaky, list(range(5)), workers=2, late=lambda n, _s: f"late {n}",
                  failed=lambda n, exc: f"failed {n}: {type(exc).__name__}")
    assert out == ["done 0", "done 1", "failed 2: KeyError", "done 3", "done 4"]

    def stop(n: int, exc: Exception) -> str:
        raise RuntimeError(f"stop at {n}") from exc

    # What ``failed`` raises (a --debug run asking for the traceback) reaches the caller.
    with pytest.raises(RuntimeError, match="stop at 2"):
        fan_out(flaky, list(range(5)), workers=2, late=lambda n, _s: f"late {n}", failed=stop)


def test_fan_out_returns_at_the_deadline_on_daemon_threads() -> None:
    release = threading.Event()

    def stuck(n: int) -> str:
        if n % 2:
            release.wait(30)
        return f"done {n}"

    start = time.monotonic()
    out = fan_out(stuck, list(range(6)), workers=6, deadline=time.monotonic() + 0.3, failed=_unused,
                  late=lambda n, started: f"late {n}" + (" started" if started else ""))
    assert time.monotonic() - start < 0.3 + SLACK_S
    assert out == ["done 0", "late 1 started", "done 2", "late 3 started", "done 4", "late 5 started"]
    workers = [t for t in threading.enumerate() if t.name.startswith("meshobs-worker")]
    assert workers and all(t.daemon for t in workers)  # the interpreter will not wait for them
    release.set()
