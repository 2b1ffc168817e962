"""The Envoy normaliser's certificate readings (``_read_pem``, ``_read_cert``) are kept for a
mesh's worth of proxies: a second round over the same proxies (a dashboard's refresh, a drift
loop) parses no certificate again past 256 of them, and the readings stay bounded."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from meshobs.collectors.envoy import certs
from meshobs.demo.certs import root_ca, workload_cert
from meshobs.model import WorkloadRef

NOW = datetime(2026, 11, 30, tzinfo=UTC)


def _secrets(root_pem: str, leaf_pem: str) -> list[dict[str, object]]:
    """An istio-proxy's SDS secrets as its config dump lists them: its own chain, the trust bundle."""
    return [{"name": "default", "secret": {"tls_certificate": {"certificate_chain": {
                "inline_bytes": base64.b64encode(leaf_pem.encode()).decode()}}}},
            {"name": "ROOTCA", "secret": {"validation_context": {"trusted_ca": {
                "inline_bytes": base64.b64encode(root_pem.encode()).decode()}}}}]


def _proxies(n: int) -> list[list[dict[str, object]]]:
    root, root_key = root_ca("cluster.local", NOW - timedelta(days=30))
    leaves = [workload_cert(f"spiffe://cluster.local/ns/tide/sa/gauge-{i}", NOW, timedelta(hours=24),
                            root, root_key, f"gauge-{i}") for i in range(n)]
    return [_secrets(root.pem, leaf.pem) for leaf in leaves]


def _round(proxies: list[list[dict[str, object]]], start: int = 0) -> list[object]:
    return [certs.certs_from_secrets(s, proxy_id=f"sidecar~10.0.0.{i}~gauge-{i}.tide~tide.svc.cluster.local",
                                     workload=WorkloadRef("tide", f"gauge-{i}"))
            for i, s in enumerate(proxies, start)]


def _parsed() -> tuple[int, int]:
    return certs._read_pem.cache_info().misses, certs._read_cert.cache_info().misses


def _cold() -> None:
    certs._read_pem.cache_clear()
    certs._read_cert.cache_clear()
    getattr(certs, "_READINGS", {}).clear()


def test_a_second_round_over_more_than_256_proxies_parses_no_certificate_again() -> None:
    proxies = _proxies(600)
    _cold()
    first = _round(proxies)
    parsed = _parsed()
    assert parsed == (601, 601)  # every leaf once, the root once
    assert _round(proxies) == first
    assert _parsed() == parsed


def test_the_readings_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Least recently read out first: past the bound, a round parses again only what it evicted."""
    assert 10_000 + 1_000 <= certs.CERT_READINGS <= 32_768  # a 10,000-proxy mesh fits, and no more
    proxies = _proxies(300)
    _cold()
    first = _round(proxies)
    monkeypatch.setattr(certs, "CERT_READINGS", 100)
    _cold()
    assert _round(proxies) == first
    assert len(certs._READINGS) == 100
    before = _parsed()
    # The last 99 proxies' leaves (and the root) are kept.
    assert _round(proxies[-99:], len(proxies) - 99) == first[-99:]
    assert _parsed() == before
