"""The fast ways of reading Envoy admin bodies give exactly what the general ways give.

``/stats?format=json`` is decoded into typed structs when it has the usual shape, and read the
general way otherwise; cluster and listener objects that several proxies share are read once
(by their JSON). Odd and hostile bodies must read as before: same numbers, same problems.
"""

from __future__ import annotations

import json
import math

import pytest

from meshobs.collectors.envoy.config_dump import parse_config_dump
from meshobs.collectors.envoy.names import parse_cluster_name, register_cluster_name_parser
from meshobs.collectors.envoy.stats import _fold_json_stats, _json_stat_entries, parse_json_stats

CLUSTER = "outbound|9080||ledger.vault.svc.cluster.local"


def _stats(*entries: object) -> str:
    return json.dumps({"stats": list(entries)})


@pytest.mark.parametrize(("body", "expected"), [
    # The usual shape, with the histograms entry the fast path skips undecoded.
    (_stats({"name": f"cluster.{CLUSTER}.upstream_rq_5xx", "value": 7},
            {"histograms": {"computed_quantiles": [{"name": "x", "values": [{"interval": None}]}]}}),
     {"upstream_rq_5xx": 7.0}),
    # A quoted number (proto3 JSON writes uint64 that way) is a number; the struct refuses it.
    (_stats({"name": f"cluster.{CLUSTER}.upstream_rq_5xx", "value": "12"}), {"upstream_rq_5xx": 12.0}),
    # A boolean, a null or a number beyond a float's range is not a value: the entry is skipped.
    (_stats({"name": f"cluster.{CLUSTER}.upstream_rq_5xx", "value": True},
            {"name": f"cluster.{CLUSTER}.upstream_rq_4xx", "value": None},
            {"name": f"cluster.{CLUSTER}.upstream_rq_2xx", "value": 10 ** 400},
            {"name": f"cluster.{CLUSTER}.upstream_rq_total", "value": 3}),
     {"upstream_rq_total": 3.0}),
    # No value: 0, as proto3 JSON omits zeros.
    (_stats({"name": f"cluster.{CLUSTER}.upstream_rq_timeout"}), {"upstream_rq_timeout": 0.0}),
    # NaN and Infinity are not standard JSON (json accepts them, msgspec does not): skipped.
    (_stats({"name": f"cluster.{CLUSTER}.upstream_rq_5xx", "value": math.nan},
            {"name": f"cluster.{CLUSTER}.upstream_rq_total", "value": 5}), {"upstream_rq_total": 5.0}),
    # Items that are not entries are skipped; a whole number is kept as a float.
    (_stats(17, [1], {"name": f"cluster.{CLUSTER}.upstream_cx_total", "value": 2 ** 70}),
     {"upstream_cx_total": float(2 ** 70)}),
])
def test_json_stats_read_the_same_fast_or_not(body: str, expected: dict[str, float]) -> None:
    stats = parse_json_stats(body, [CLUSTER])
    assert stats.clusters == {CLUSTER: expected}
    general = _fold_json_stats(_json_stat_entries(body), [CLUSTER])
    assert (stats.clusters, stats.server) == (general.clusters, general.server)


def test_json_stats_with_a_name_that_is_not_a_string() -> None:
    body = _stats({"name": None, "value": 1}, {"name": 5, "value": 2},
                  {"name": "control_plane.connected_state", "value": 1})
    stats = parse_json_stats(body)
    assert stats.server == {"control_plane.connected_state": 1.0} and stats.clusters == {}


@pytest.mark.parametrize("body", ["[]", '{"stats": {}}', '{"stats": [', '{"stat": []}', '"stats"',
                                  # Nested past the decoder's depth: its RecursionError is the
                                  # general reader's ValueError, not a lost proxy.
                                  pytest.param('{"stats": [{"histograms": ' + "[" * 5000 + "]" * 5000 + "}]}",
                                               id="nested-5000-deep")])
def test_json_stats_of_the_wrong_shape_are_a_value_error(body: str) -> None:
    with pytest.raises(ValueError, match="stats"):
        parse_json_stats(body)


def _dump(clusters: list[str], listener: str = '{"name": "virtualOutbound", "address": {"socket_address": '
          '{"address": "0.0.0.0", "port_value": 15001}}}') -> str:
    entries = ",".join(f'{{"version_info": "v1", "cluster": {c}}}' for c in clusters)
    return ('{"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump", '
            f'"dynamic_active_clusters": [{entries}]}}, '
            '{"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump", '
            f'"dynamic_listeners": [{{"name": "virtualOutbound", "active_state": {{"listener": {listener}}}}}]}}]}}')


def _cluster(name: str, outlier: str = '{"consecutive_5xx": 5}', max_connections: str = "100") -> str:
    return (f'{{"name": "{name}", "type": "EDS", "outlier_detection": {outlier}, '
            f'"circuit_breakers": {{"thresholds": [{{"max_connections": {max_connections}}}]}}, '
            '"transport_socket": {"name": "envoy.transport_sockets.raw_buffer"}}')


def test_a_cluster_shared_by_proxies_reads_the_same_for_each() -> None:
    first = parse_config_dump(_dump([_cluster("outbound|80||till.shop.svc.cluster.local")]))
    second = parse_config_dump(_dump([_cluster("outbound|80||till.shop.svc.cluster.local")]))
    name = "outbound|80||till.shop.svc.cluster.local"
    assert first.cluster_settings == second.cluster_settings
    assert first.cluster_settings[name]["thresholds"] == {"max_connections": 100}
    assert first.cluster_tls == second.cluster_tls == {name: "disable"}
    assert first.listener_details == second.listener_details and first.listener_details[0].port == 15001
    # Each proxy has its own settings dict: one changed does not change the other's.
    assert first.cluster_settings[name] is not second.cluster_settings[name]


def test_a_cluster_whose_settings_do_not_read_keeps_its_tls_every_time() -> None:
    bad = _cluster("outbound|80||till.shop.svc.cluster.local", max_connections='"lots"')
    for _ in range(2):  # the second reading finds nothing kept: a failure is not remembered
        dump = parse_config_dump(_dump([bad]))
        assert dump.cluster_tls == {"outbound|80||till.shop.svc.cluster.local": "disable"}
        assert dump.cluster_settings == {}
        assert len(dump.problems) == 1 and "dynamic_active_clusters[0]" in dump.problems[0]


def test_a_nan_is_not_taken_for_a_null_read_before() -> None:
    # msgspec writes NaN as null: a body that is not standard JSON must not share readings.
    name = "outbound|80||till.shop.svc.cluster.local"
    with_null = parse_config_dump(_dump([_cluster(name, outlier='{"max_ejection_percent": null}')]))
    with_nan = parse_config_dump(_dump([_cluster(name, outlier='{"max_ejection_percent": NaN}')]))
    assert with_null.cluster_settings[name]["outlier_detection"]["max_ejection_percent"] is None
    assert math.isnan(with_nan.cluster_settings[name]["outlier_detection"]["max_ejection_percent"])


def test_a_cluster_name_parser_registered_later_is_used_for_names_read_before() -> None:
    from meshobs.collectors.envoy import names

    name = "kuma:ledger_vault_svc_9080"
    assert parse_cluster_name(name).direction == "other"

    def kuma(n: str) -> names.ClusterName | None:
        return names.ClusterName("outbound", "ledger.vault", 9080) if n.startswith("kuma:") else None

    register_cluster_name_parser(kuma, first=True)
    try:
        assert parse_cluster_name(name) == names.ClusterName("outbound", "ledger.vault", 9080)
    finally:
        names._PARSERS.remove(kuma)
        parse_cluster_name.cache_clear()
