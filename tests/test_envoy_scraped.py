"""Envoy signals Prometheus already scraped replace /ready and /stats (one query instead of two
requests per proxy), against a real Prometheus backfilled with Istio-style merged metrics;
proxies Prometheus does not fully cover are asked through the admin API as before."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from meshobs.bundle import Bundle
from meshobs.collect import build_snapshot
from meshobs.collectors.base import FetchContext
from meshobs.collectors.envoy import EnvoyCollector, Target
from meshobs.collectors.envoy.scraped import PrometheusScrape
from meshobs.config import validate
from meshobs.demo.promserver import PrometheusServer, start_prometheus
from meshobs.model import SourceState
from tests.support.loopback import LoopbackServer

T = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
LEDGER = "outbound|8080||ledger.bank.svc.cluster.local"


def _series(pod: str, values: dict[str, float], clusters: dict[str, dict[str, float]]) -> list[str]:
    lines = []
    for name, value in values.items():
        lines.append((name, f'namespace="bank",pod="{pod}"', value))
    for cluster, stats in clusters.items():
        for name, value in stats.items():
            lines.append((name, f'envoy_cluster_name="{cluster}",namespace="bank",pod="{pod}"', value))
    return [f"{n}{{{labels}}} {v} {ts}" for n, labels, v in lines
            for ts in (int(T.timestamp()) - 60, int(T.timestamp()))]


def openmetrics() -> str:
    by_family: dict[str, list[str]] = {}
    covered = {LEDGER: {"envoy_cluster_membership_total": 3, "envoy_cluster_membership_healthy": 3,
                        "envoy_cluster_outlier_detection_ejections_active": 0}}
    ejecting = {LEDGER: {"envoy_cluster_membership_total": 3, "envoy_cluster_membership_healthy": 1,
                         "envoy_cluster_outlier_detection_ejections_active": 2}}
    xds_only = {"xds-grpc": {"envoy_cluster_membership_total": 1}}  # Istio's default: not enough
    for line in (_series("teller-v1-a", {"envoy_server_live": 1, "envoy_server_uptime": 5000}, covered)
                 + _series("teller-v1-b", {"envoy_server_live": 1, "envoy_server_uptime": 5100}, ejecting)
                 + _series("teller-v1-c", {"envoy_server_live": 1}, xds_only)):
        by_family.setdefault(line.split("{", 1)[0], []).append(line)
    out = []
    for family, lines in sorted(by_family.items()):
        out.append(f"# TYPE {family} gauge")
        out.extend(lines)
    return "\n".join([*out, "# EOF"]) + "\n"


@pytest.fixture(scope="module")
def prometheus(require_prometheus: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    with start_prometheus(openmetrics(), Path(tmp_path_factory.mktemp("prom-envoy"))) as srv:
        yield srv


def test_scraped_proxies_are_not_asked_for_ready_and_stats(prometheus: PrometheusServer) -> None:
    with LoopbackServer() as admin:
        admin.route("/ready", body="LIVE", content_type="text/plain")
        admin.route("/server_info", body=json.dumps({"state": "LIVE", "version": "x/1.29.4/Clean/RELEASE/BoringSSL"}))
        admin.route("/stats", body=json.dumps({"stats": [
            {"name": f"cluster.{LEDGER}.membership_total", "value": 3},
            {"name": f"cluster.{LEDGER}.membership_healthy", "value": 3}]}))
        admin.route("/config_dump", body='{"configs": []}')
        admin.route("/certs", body='{"certificates": []}')
        targets = [Target("bank", pod, f"{admin.url}/{pod}", workload="teller-v1")
                   for pod in ("teller-v1-a", "teller-v1-b", "teller-v1-c")]
        # The loopback routes match on the full path, so give each pod its own prefix.
        for pod in ("teller-v1-a", "teller-v1-b", "teller-v1-c"):
            for path in ("/ready", "/server_info", "/stats", "/config_dump", "/certs"):
                admin.routes[f"/{pod}{path}"] = admin.routes[path]
        ctx = FetchContext(time=T, window_s=300, config=validate({}))
        raws = EnvoyCollector(targets, timeout_s=5, scrape=PrometheusScrape({"url": prometheus.url})).fetch(ctx)
        asked = [path.split("?")[0] for _m, path, _h in admin.requests]
    # a and b are covered (live + an outbound cluster's stats); c has only xds-grpc's: asked.
    for pod in ("teller-v1-a", "teller-v1-b"):
        assert f"/{pod}/ready" not in asked and f"/{pod}/stats" not in asked
        assert f"/{pod}/server_info" in asked and f"/{pod}/config_dump" in asked
    assert "/teller-v1-c/ready" in asked and "/teller-v1-c/stats" in asked
    snap = build_snapshot(Bundle(time=T, window_s=300, sources=raws))
    assert all(s.state is SourceState.OK for s in snap.sources), [s.message for s in snap.sources]
    proxies = {p.pod: p for p in snap.proxies}
    assert proxies["teller-v1-a"].ready is True and proxies["teller-v1-a"].uptime_s is not None
    ledger = proxies["teller-v1-b"].cluster(LEDGER)
    assert ledger is not None and ledger.outlier_ejections_active == 2 and ledger.membership_healthy == 1


def test_no_prometheus_answer_means_the_admin_api_is_asked() -> None:
    with LoopbackServer() as admin:
        admin.route("/ready", body="LIVE", content_type="text/plain")
        admin.route("/server_info", body="{}")
        admin.route("/stats", body='{"stats": []}')
        admin.route("/config_dump", body='{"configs": []}')
        admin.route("/certs", body='{"certificates": []}')
        ctx = FetchContext(time=T, window_s=300, config=validate({}))
        scrape = PrometheusScrape({"url": "http://127.0.0.1:9"})  # nothing listens there
        (raw,) = EnvoyCollector([Target("bank", "teller-v1-a", admin.url, workload="teller-v1")],
                                timeout_s=2, scrape=scrape).fetch(ctx)
    assert raw.get("ready") is not None and raw.get("stats") is not None
    assert scrape.last_error is not None and "refused" in scrape.last_error
