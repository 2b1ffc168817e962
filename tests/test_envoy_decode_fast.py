"""The fast ways of reading Envoy admin bodies give exactly what the general ways give.

``/stats?format=json`` is decoded into typed structs when it has the usual shape, and read the
general way otherwise; cluster and listener objects that several proxies share are read once
(by their JSON). Odd and hostile bodies must read as before: same numbers, same problems.
"""

from __future__ import annotations

import ipaddress
import json
import math
from datetime import UTC, datetime, timedelta

import pytest

from meshobs.collectors.envoy.config_dump import parse_config_dump
from meshobs.collectors.envoy.names import parse_cluster_name, register_cluster_name_parser
from meshobs.collectors.envoy.stats import _fold_json_stats, _json_stat_entries, parse_json_stats
from meshobs.model import CertRole

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


def _cluster_stats(name: str, values: dict[str, int]) -> list[dict[str, object]]:
    return [{"name": f"cluster.{name}.{stat}", "value": v} for stat, v in values.items()]


def test_clusters_with_the_same_stat_names_keep_their_own_values() -> None:
    from meshobs.collectors.base import NormalizeContext
    from meshobs.collectors.envoy import normalize
    from meshobs.raw import Payload, RawSource

    # The first two share one list of stat names (one plan); the third has another list:
    # ejections counted by the older stat only, a breaker gauge of the high priority first.
    first, second, third = (f"outbound|80||{n}.vault.svc.cluster.local" for n in ("ledger", "till", "safe"))
    shared = ("upstream_rq_total", "circuit_breakers.default.rq_open", "outlier_detection.ejections_enforced_total",
              "outlier_detection.ejections_total", "upstream_rq_5xx", "circuit_breakers.default.cx_open")
    body = json.dumps({"stats": [
        *_cluster_stats(first, dict(zip(shared, (10, 1, 4, 9, 2, 0), strict=True))),
        *_cluster_stats(second, dict(zip(shared, (20, 0, 6, 7, 3, 1), strict=True))),
        *_cluster_stats(third, {"circuit_breakers.high.rq_open": 1, "outlier_detection.ejections_total": 5,
                                "circuit_breakers.default.rq_pending_open": 1, "circuit_breakers.high.bogus": 3,
                                "upstream_rq_total": 30})]})
    raw = RawSource("envoy:vault/teller-1", "envoy", meta={"namespace": "vault", "pod": "teller-1"})
    raw.add(Payload("ready", body="LIVE\n", status=200, url="http://127.0.0.1:15000/ready"))
    raw.add(Payload("stats", body=body, status=200, url="http://127.0.0.1:15000/stats"))
    for _ in range(2):  # the second time the plans are remembered: the same proxy
        proxy = normalize(raw, NormalizeContext(time=datetime(2024, 1, 1, tzinfo=UTC), window_s=300)).proxies[0]
        got = {c.name: c for c in proxy.clusters}
        assert dict(got[first].counters) == {"upstream_rq_total": 10, "upstream_rq_5xx": 2}
        assert dict(got[second].counters) == {"upstream_rq_total": 20, "upstream_rq_5xx": 3}
        assert list(got[first].circuit_breaker_open.items()) == [("rq_open", 1), ("cx_open", 0)]
        assert list(got[second].circuit_breaker_open.items()) == [("rq_open", 0), ("cx_open", 1)]
        assert (got[first].outlier_ejections_total, got[second].outlier_ejections_total) == (4, 6)
        assert list(got[third].circuit_breaker_open.items()) == [("high.rq_open", 1), ("rq_pending_open", 1)]
        assert got[third].outlier_ejections_total == 5 and dict(got[third].counters) == {"upstream_rq_total": 30}


def test_certificate_fields_read_by_oid_are_those_of_the_library_lookups() -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from meshobs.collectors.envoy.certs import cert_from_x509

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "vault.example")])
    sans = [x509.DNSName("teller.vault.svc"), x509.UniformResourceIdentifier("spiffe://vault.example/ns/vault/sa/teller"),
            x509.IPAddress(ipaddress.ip_address("10.1.2.3")), x509.DNSName("teller")]
    now = datetime(2024, 1, 1, tzinfo=UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(0xBEEF).not_valid_before(now).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    read = cert_from_x509(cert, trust_anchor=False, proxy_id="teller-1.vault", workload=None, secret_name="default")
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    expected = (*ext.get_values_for_type(x509.UniformResourceIdentifier), *ext.get_values_for_type(x509.DNSName),
                *(str(ip) for ip in ext.get_values_for_type(x509.IPAddress)))
    assert read.sans == expected == ("spiffe://vault.example/ns/vault/sa/teller", "teller.vault.svc", "teller",
                                     "10.1.2.3")
    assert read.role == CertRole.ROOT and read.serial == "beef"
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(name).public_key(key.public_key())
            .serial_number(7).not_valid_before(now).not_valid_after(now + timedelta(days=1)).sign(key, hashes.SHA256()))
    # No extensions at all: a leaf, unless it came from a trust bundle.
    for anchor, role in ((False, CertRole.WORKLOAD), (True, CertRole.INTERMEDIATE)):
        read = cert_from_x509(leaf, trust_anchor=anchor, proxy_id=None, workload=None, secret_name=None)
        assert (read.role, read.sans) == (role, ())
