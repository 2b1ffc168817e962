"""What each HTTP request costs beside the network: the environment read once per host, and the
deadline reaper woken only when a deadline comes earlier. Same answers as requests' own."""

from __future__ import annotations

import time

import pytest
import requests
import requests.sessions

from meshobs.collectors.http import bounded_session
from meshobs.collectors.netbound import Watch, _reaper

SLACK_S = 1.0

URLS = ("http://127.0.0.1:9901/ns-a/pod-1/config_dump", "http://127.0.0.1:9901/ns-b/pod-2/stats",
        "http://10.1.2.3:15000/ready", "https://admin.example.test:8443/server_info",
        "http://bypassed.example.test/clusters", "http://user:pw@10.1.2.3:15000/certs")


@pytest.fixture
def proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                 "NO_PROXY", "ALL_PROXY", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://egress-proxy.test:3128")
    monkeypatch.setenv("HTTPS_PROXY", "http://tls-proxy.test:3129")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,bypassed.example.test")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/meshobs-test-bundle.pem")


@pytest.mark.usefixtures("proxy_env")
@pytest.mark.parametrize("verify", [True, False, "/etc/ssl/own-ca.pem"])
def test_settings_are_requests_own_for_every_host(verify: bool | str) -> None:
    plain = requests.Session()
    bounded = bounded_session(verify=verify)
    plain.verify = verify
    for _ in range(2):  # the second round comes from the session's memory
        for url in URLS:
            for proxies in ({}, {"no_proxy": "10.1.2.3"}, {"http": "http://explicit.test:1"}):
                want = plain.merge_environment_settings(url, dict(proxies), None, None, None)
                got = bounded.merge_environment_settings(url, dict(proxies), None, None, None)
                assert got == want, (url, proxies)
    # Spot checks that the environment was read at all: a proxy for one host, none for another.
    assert bounded.merge_environment_settings(URLS[2], {}, None, None, None)["proxies"]["http"] \
        == "http://egress-proxy.test:3128"
    assert "http" not in bounded.merge_environment_settings(URLS[0], {}, None, None, None)["proxies"]


@pytest.mark.usefixtures("proxy_env")
def test_the_environment_is_read_once_per_host_and_anew_per_session(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[str] = []
    real = requests.sessions.get_environ_proxies

    def counted(url: str, no_proxy: str | None = None) -> dict[str, str]:
        reads.append(url)
        return real(url, no_proxy=no_proxy)

    monkeypatch.setattr(requests.sessions, "get_environ_proxies", counted)
    session = bounded_session()
    for _ in range(50):
        session.merge_environment_settings(URLS[0], {}, None, None, None)
        session.merge_environment_settings(URLS[1], {}, None, None, None)  # same host, another path
        session.merge_environment_settings(URLS[2], {}, None, None, None)
    assert len(reads) == 2
    # Each answer is the caller's own: changing it changes nothing for the next request.
    first = session.merge_environment_settings(URLS[2], {}, None, None, None)
    first["proxies"]["http"] = "http://tampered.test:1"
    assert session.merge_environment_settings(URLS[2], {}, None, None, None)["proxies"]["http"] \
        == "http://egress-proxy.test:3128"
    # A new session reads the environment as it is now.
    monkeypatch.setenv("HTTP_PROXY", "http://other-proxy.test:3128")
    assert bounded_session().merge_environment_settings(URLS[2], {}, None, None, None)["proxies"]["http"] \
        == "http://other-proxy.test:3128"


def test_odd_arguments_take_requests_own_way() -> None:
    session = bounded_session()
    plain = requests.Session()
    cert = ["client.pem", "client.key"]  # a list: not hashable, not remembered
    assert session.merge_environment_settings(URLS[3], {}, None, True, cert) \
        == plain.merge_environment_settings(URLS[3], {}, None, True, cert)
    assert not any(cert == list(k[4] or ()) for k in session._settings)


def test_the_reaper_keeps_every_deadline_whatever_order_they_come_in() -> None:
    """The reaper sleeps until the earliest deadline and is woken only by an earlier one: a short
    watch after a long one is still cut on time, and a later one after it too."""
    fired: dict[str, float] = {}
    start = time.monotonic()

    def watch(name: str, seconds: float) -> Watch:
        w = Watch(seconds)
        w.on_expiry(lambda: fired.setdefault(name, time.monotonic() - start))
        _reaper.add(w)
        return w

    long = watch("long", 60.0)
    time.sleep(0.2)  # the reaper is now asleep until the long one's deadline (or an earlier one's)
    start = time.monotonic()
    watch("short", 0.3)
    watch("later", 0.6)
    while len(fired) < 2 and time.monotonic() - start < 10:
        time.sleep(0.02)
    long.finish()
    assert set(fired) == {"short", "later"}
    assert 0.3 <= fired["short"] < 0.3 + SLACK_S
    assert 0.6 <= fired["later"] < 0.6 + SLACK_S
