"""Envoy's /stats/prometheus through prometheus_client's parser: Envoy's own names survive the
library's counter naming, and one bad or truncated line costs that line only."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshobs.collectors.envoy.stats import parse_prometheus_stats


@pytest.fixture
def netdata(corpus: Path) -> str:
    return (corpus / "envoy-stats/netdata-go.d.plugin/envoy.txt").read_text()


def test_counter_names_are_envoys_own(netdata: str) -> None:
    stats = parse_prometheus_stats(netdata)
    cluster = stats.clusters["service_envoyproxy_io"]
    assert cluster["update_attempt"] == 1242  # declared without _total
    assert "upstream_rq_total" in cluster and "upstream_rq_total_total" not in cluster  # declared with it
    assert stats.server["server.uptime"] == 6225


def test_a_garbage_line_costs_only_that_line(netdata: str) -> None:
    clean = parse_prometheus_stats(netdata)
    lines = netdata.splitlines()
    broken = "\n".join([*lines[:40], 'envoy_cluster_bogus{envoy_cluster_name="x" 1 2 3', *lines[40:]])
    salvaged = parse_prometheus_stats(broken)
    assert salvaged.clusters == clean.clusters and salvaged.server == clean.server


def test_a_truncated_payload_keeps_what_arrived(netdata: str) -> None:
    cut = netdata[: len(netdata) // 2].rsplit("\n", 1)[0] + '\nenvoy_cluster_upstream_rq_total{envoy_clus'
    stats = parse_prometheus_stats(cut)
    assert stats.clusters and stats.format == "prometheus"


def test_no_samples_is_an_error() -> None:
    with pytest.raises(ValueError):
        parse_prometheus_stats("# just a comment\n")
