"""A GET straight through urllib3 (``BoundedSession.get_plain``, what the Envoy admin fan-out
uses) sends what requests sends and hands back what requests hands back: the same request on the
wire and the same Payload (status, body, the error in the same words) for every kind of answer,
within the same bounds; and requests itself still asks whenever it would add something (a proxy,
credentials, cookies, a redirect to follow)."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
import requests

from meshobs.collectors import http
from meshobs.collectors.envoy.fetch import STATS_FILTER
from meshobs.collectors.http import bounded_session, http_get
from meshobs.collectors.netbound import RunLimits, run_limits
from meshobs.raw import Payload
from tests.support.faults import Fault, FaultServer
from tests.support.loopback import unused_port

SLACK_S = 1.0


def _answer(status_line: bytes, headers: list[bytes], body: bytes) -> Fault:
    # The server closes the connection after a raw answer, and says so: a client may otherwise
    # reuse it for the next request before it sees the close (and fail, rightly, on the reset).
    if b"Connection: close" not in headers:
        headers = [*headers, b"Connection: close"]
    return Fault.raw(status_line + b"\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body)


GZIPPED = gzip.compress(b'{"state": "LIVE"}')
ANSWERS = {
    "json": Fault.ok('{"state": "LIVE"}'),
    "not found": Fault.ok("not found\n", status=404, content_type="text/plain"),
    "server error": Fault.ok("internal error", status=500, content_type="text/plain"),
    "latin-1": _answer(b"HTTP/1.1 200 OK", [b"Content-Type: text/plain; charset=latin-1",
                                            b"Content-Length: 3"], b"\xe9t\xe9"),
    "unknown charset": _answer(b"HTTP/1.1 200 OK", [b"Content-Type: text/plain; charset=nope",
                                                    b"Content-Length: 3"], b"\xe9t\xe9"),
    "not utf-8": _answer(b"HTTP/1.1 200 OK", [b"Content-Type: application/json",
                                              b"Content-Length: 4"], b'"\xff\xfe"'),
    "gzip": _answer(b"HTTP/1.1 200 OK", [b"Content-Type: application/json", b"Content-Encoding: gzip",
                                         b"Content-Length: %d" % len(GZIPPED)], GZIPPED),
    "chunked": _answer(b"HTTP/1.1 200 OK", [b"Content-Type: application/json", b"Transfer-Encoding: chunked"],
                       b"5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n"),
    "ended by close": _answer(b"HTTP/1.1 200 OK", [b"Content-Type: text/plain", b"Connection: close"], b"LIVE"),
    "cut short": _answer(b"HTTP/1.1 200 OK", [b"Content-Type: text/plain", b"Content-Length: 100"], b"LIVE"),
    "malformed": Fault.raw(b"garbage\r\n\r\n"),
    "closed at once": Fault.raw(b""),
    "bad chunk": _answer(b"HTTP/1.1 200 OK", [b"Transfer-Encoding: chunked"], b"zz\r\nnope\r\n"),
}
# (path, params): the admin API's own, a query already in the URL, characters that need quoting
REQUESTS = [("/p-1/server_info", None), ("/p-1/stats", {"format": "json", "filter": STATS_FILTER}),
            ("/p-1/clusters?format=json", {"filter": "a b&c=d/é"}), ("/p-1/ready#top", None),
            ("/p 1/é%zz/../certs", {}), ("", None)]


def _same(payload: Payload) -> dict[str, Any]:
    """A payload without what differs from one request to the next."""
    return {k: v for k, v in asdict(payload).items() if k not in ("elapsed_s", "fetched_at")}


@pytest.fixture
def asked_by_requests(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The URLs requests' adapter sent (the plain way sends none through it)."""
    sent: list[str] = []
    real = http.BoundedAdapter.send

    def send(self: http.BoundedAdapter, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        sent.append(str(request.url))
        return real(self, request, *args, **kwargs)

    monkeypatch.setattr(http.BoundedAdapter, "send", send)
    yield sent


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                 "NO_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))


def both_ways(url: str, params: dict[str, str] | None = None, timeout_s: float = 2.0) -> tuple[Payload, Payload]:
    """(through requests, the plain way)"""
    return (http_get(requests.Session(), url, "k", params=params, timeout_s=timeout_s),
            http_get(bounded_session(), url, "k", params=params, timeout_s=timeout_s))


@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_every_answer_reads_the_same_both_ways(name: str, asked_by_requests: list[str]) -> None:
    with FaultServer(lambda _path: ANSWERS[name]) as srv:
        by_requests, plain = both_ways(srv.url + "/p-1/server_info")
        heads = list(srv.heads)
    assert len(asked_by_requests) == 1  # the first: the plain way asked none through requests
    assert _same(plain) == _same(by_requests)
    assert heads[0] == heads[1]


@pytest.mark.parametrize(("path", "params"), REQUESTS)
def test_the_request_sent_is_requests_own(path: str, params: dict[str, str] | None) -> None:
    with FaultServer(lambda _path: ANSWERS["json"]) as srv:
        by_requests, plain = both_ways(srv.url + path, params)
        heads = list(srv.heads)
    assert _same(plain) == _same(by_requests) and plain.ok
    assert len(heads) == 2 and heads[0] == heads[1], heads


@pytest.mark.parametrize("fault", [Fault.trickle(0.2), Fault.trickle_body(0.2), Fault.trickle_unsized(0.2),
                                   Fault.hang()])
def test_a_slow_answer_is_cut_at_the_same_time_in_the_same_words(fault: Fault) -> None:
    with FaultServer(lambda _path: fault) as srv:
        start = time.monotonic()
        by_requests, plain = both_ways(srv.url + "/x", timeout_s=0.5)
        took = time.monotonic() - start
    assert _same(plain) == _same(by_requests)
    assert "within 0.5 s" in (plain.error or "")
    assert took < 2 * 0.5 + SLACK_S


def test_the_size_cap_and_the_run_deadline_both_ways() -> None:
    with FaultServer(lambda path: Fault.huge() if path == "/huge" else Fault.trickle(0.2)) as srv:
        with run_limits(RunLimits(max_bytes=1024 * 1024)):
            huge = both_ways(srv.url + "/huge", timeout_s=30)
        cut, late = [], []
        for session in (requests.Session(), bounded_session()):  # each with a deadline of its own
            with run_limits(RunLimits(deadline=time.monotonic() + 0.5)):
                cut.append(http_get(session, srv.url + "/slow", "k", timeout_s=30))
                time.sleep(0.6)
                late.append(http_get(session, srv.url + "/late", "k", timeout_s=30))
    for by_requests, plain in (huge, cut, late):
        assert _same(plain) == _same(by_requests)
    assert "larger than 1 MB" in (huge[1].error or "")
    assert "deadline" in (cut[1].error or "")
    assert "not asked" in (late[1].error or "")


def test_a_refused_connection_reads_the_same() -> None:
    by_requests, plain = both_ways(f"http://127.0.0.1:{unused_port()}/ready")
    assert _same(plain) == _same(by_requests)
    assert "connection refused" in (plain.error or "")


def test_a_redirect_is_followed_by_requests(asked_by_requests: list[str]) -> None:
    moved = _answer(b"HTTP/1.1 302 Found", [b"Location: /there", b"Content-Length: 0"], b"")
    with FaultServer(lambda path: moved if path == "/here" else ANSWERS["json"]) as srv:
        url = srv.url
        by_requests, plain = both_ways(url + "/here")
    assert _same(plain) == _same(by_requests) and plain.body == '{"state": "LIVE"}'
    # requests followed it both times (the plain way asked /here once itself, then let requests ask)
    assert asked_by_requests == [url + "/here", url + "/there"] * 2


def test_cookies_a_server_sets_are_sent_back_as_requests_would(asked_by_requests: list[str]) -> None:
    cookie = _answer(b"HTTP/1.1 200 OK", [b"Set-Cookie: session=abc; Path=/", b"Content-Length: 2"], b"{}")
    with FaultServer(lambda path: cookie if path == "/login" else ANSWERS["json"]) as srv:
        url = srv.url
        session = bounded_session()
        http_get(session, url + "/login", "login")
        again = http_get(session, url + "/ready", "ready")
        heads = list(srv.heads)
    assert again.ok and b"Cookie: session=abc" in heads[1]
    assert asked_by_requests == [url + "/ready"]  # with cookies to send, requests asks


def test_a_proxy_or_netrc_for_the_host_leaves_the_request_to_requests(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, asked_by_requests: list[str]) -> None:
    with FaultServer(lambda _path: ANSWERS["json"]) as srv:
        url = srv.url
        monkeypatch.setenv("HTTP_PROXY", url)  # the fault server stands in for the proxy too
        through_proxy = http_get(bounded_session(), "http://admin.example.test:15000/ready", "ready")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        netrc = tmp_path / "netrc"
        netrc.write_text("machine 127.0.0.1 login admin password secret\n")
        netrc.chmod(0o600)
        monkeypatch.setenv("NETRC", str(netrc))
        with_netrc = http_get(bounded_session(), url + "/ready", "ready")
        heads = list(srv.heads)
    assert through_proxy.ok and with_netrc.ok
    assert heads[0].startswith(b"GET http://admin.example.test:15000/ready ")  # asked of the proxy
    assert b"Authorization: Basic " in heads[1]
    assert asked_by_requests == ["http://admin.example.test:15000/ready", url + "/ready"]


def test_a_header_requests_refuses_is_refused_in_its_words(asked_by_requests: list[str]) -> None:
    with FaultServer(lambda _path: ANSWERS["json"]) as srv:
        url = srv.url + "/ready"
        by_requests = http_get(requests.Session(), url, "k", headers={"X-Token": "abc\nInjected: 1"})
        plain = http_get(bounded_session(), url, "k", headers={"X-Token": "abc\nInjected: 1"})
        asked = list(srv.paths)
    assert _same(plain) == _same(by_requests) and plain.error is not None
    assert asked == [] and asked_by_requests == []  # refused before anything was sent
