"""``/config_dump`` decoded by schema (collectors/envoy/config_typed) reads exactly as the general
walk over the decoded JSON does, and a body off the schema's shape is read the general way.

The general path (``parse_config_dump_general``) is the reference: every real dump of the corpus,
every demo and scenario and a generated mesh must give equal ConfigDumps and equal SnapshotParts
either way; odd bodies must fall back and give what the general path gives, problems included.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from meshobs.collectors.base import NormalizeContext
from meshobs.collectors.envoy import config_dump, config_typed, normalize
from meshobs.collectors.envoy.config_dump import ConfigDump, parse_config_dump, parse_config_dump_general
from meshobs.collectors.envoy.server_info import ServerInfo, parse_server_info
from meshobs.demo.catalog import list_demos, list_library, load_demo
from meshobs.raw import Payload, RawSource

ADMIN = "type.googleapis.com/envoy.admin.v3."


def _cold() -> None:
    config_dump._READINGS.clear()
    config_typed._READINGS.clear()


def _general(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(text: str | bytes) -> ConfigDump:
        raise config_typed.Mismatch("read the general way")

    monkeypatch.setattr(config_typed, "parse_typed", refuse)


def _typed_or_none(text: str) -> ConfigDump | None:
    try:
        return config_typed.parse_typed(text)
    except config_typed.TYPED_FAILS:
        return None


def _corpus_dumps(corpus: Path) -> list[Path]:
    found = sorted((corpus / "envoy-config-dump").rglob("*.json"))
    assert len(found) >= 10
    return found


def test_every_corpus_dump_reads_the_same_typed_or_not(corpus: Path) -> None:
    clusters = secrets = 0
    for path in _corpus_dumps(corpus):
        text = path.read_text(encoding="utf-8")
        _cold()
        typed = config_typed.parse_typed(text)  # all of them are of the usual (v3) shape
        _cold()
        assert typed == parse_config_dump_general(text), path.name
        clusters, secrets = clusters + len(typed.cluster_versions), secrets + len(typed.secrets)
    assert clusters > 200 and secrets > 10


def _envoy_sources(names: list[str]) -> Iterator[tuple[str, RawSource, NormalizeContext]]:
    for name in names:
        bundle = load_demo(name)
        ctx = NormalizeContext(time=bundle.time, window_s=bundle.window_s)
        for raw in bundle.sources:
            if raw.kind == "envoy":
                yield name, raw, ctx


def _part(raw: RawSource, ctx: NormalizeContext) -> str:
    part = normalize(raw, ctx)
    return repr((part.proxies, part.certs, part.sources))


MESHES = [name for name, _ in list_demos()] + [name for name, _ in list_library()] + ["generated-60"]


def test_demo_and_generated_meshes_give_the_same_parts_typed_or_not(monkeypatch: pytest.MonkeyPatch) -> None:
    sources = list(_envoy_sources(MESHES))
    assert len(sources) > 200
    typed_parts = []
    for name, raw, ctx in sources:
        dump = raw.get("config_dump")
        if dump is not None and dump.ok and dump.body:
            # The fast path is taken (a fallback would pass the equality below unnoticed).
            assert _typed_or_none(dump.body) is not None, f"{name} {raw.name}"
        _cold()
        typed_parts.append(_part(raw, ctx))
    with monkeypatch.context() as m:
        _general(m)
        for (name, raw, ctx), typed in zip(sources, typed_parts, strict=True):
            _cold()
            assert _part(raw, ctx) == typed, f"{name} {raw.name}"


def _proxy(config_dump_body: str) -> RawSource:
    raw = RawSource("envoy:shop/cart-v1-7bbd79f8fd-k6j79", "envoy",
                    meta={"namespace": "shop", "pod": "cart-v1-7bbd79f8fd-k6j79", "url": "http://127.0.0.1:15000"})
    raw.add(Payload("ready", body="LIVE", status=200, url="http://127.0.0.1:15000/ready"))
    raw.add(Payload("config_dump", body=config_dump_body, status=200, url="http://127.0.0.1:15000/config_dump"))
    return raw


def test_corpus_dumps_give_the_same_parts_typed_or_not(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raws = [_proxy(path.read_text(encoding="utf-8")) for path in _corpus_dumps(corpus)]
    ctx = NormalizeContext(time=datetime(2026, 11, 30, tzinfo=UTC), window_s=300)
    _cold()
    typed = [_part(r, ctx) for r in raws]
    _general(monkeypatch)
    _cold()
    assert [_part(r, ctx) for r in raws] == typed


# Bodies off the schema's shape: each is read the general way, with what the general way finds.
def _body(*configs: dict[str, Any]) -> str:
    return json.dumps({"configs": list(configs)})


_CLUSTER = {"name": "outbound|80||till.shop.svc.cluster.local", "type": "EDS",
            "transport_socket": {"name": "envoy.transport_sockets.raw_buffer"}}


def _clusters(**section: Any) -> dict[str, Any]:
    return {"@type": ADMIN + "ClustersConfigDump", **section}


OFF_SHAPE = {
    # Older Envoys and istioctl write lowerCamelCase: the general path reads it (pick).
    "camel-section": _body(_clusters(dynamicActiveClusters=[{"versionInfo": "7", "cluster": _CLUSTER}])),
    "camel-entry": _body(_clusters(dynamic_active_clusters=[{"versionInfo": "7", "cluster": _CLUSTER}])),
    "camel-listener-state": _body({"@type": ADMIN + "ListenersConfigDump", "dynamic_listeners": [
        {"name": "l", "activeState": {"listener": {"name": "l"}}}]}),
    # Envoy 1.12's admin types, and a type this path does not list.
    "v2alpha": _body({"@type": "type.googleapis.com/envoy.admin.v2alpha.ClustersConfigDump",
                      "dynamic_active_clusters": [{"version_info": "7", "cluster": _CLUSTER}]}),
    "unknown-section": _body({"@type": ADMIN + "SomethingNewConfigDump"}, _clusters(static_clusters=[
        {"cluster": _CLUSTER}])),
    "no-type": _body({"dynamic_active_clusters": []}, _clusters(static_clusters=[{"cluster": _CLUSTER}])),
    # Items of the wrong type: the general path skips them, or names them as problems.
    "entry-not-an-object": _body(_clusters(dynamic_active_clusters=[17, {"cluster": _CLUSTER}])),
    "version-a-number": _body(_clusters(dynamic_active_clusters=[{"version_info": 7, "cluster": _CLUSTER}])),
    "section-not-an-object": _body("ClustersConfigDump", _clusters(static_clusters=[{"cluster": _CLUSTER}])),
    "cluster-settings-unreadable": _body(_clusters(dynamic_active_clusters=[{"version_info": "7", "cluster": {
        **_CLUSTER, "circuit_breakers": {"thresholds": [{"max_connections": "lots"}]}}}])),
    "route-unreadable": _body({"@type": ADMIN + "RoutesConfigDump", "dynamic_route_configs": [
        {"version_info": "3", "route_config": {"name": "80", "virtual_hosts": [
            {"name": "till", "domains": ["till"], "routes": [{"match": 5}, {"match": {"prefix": "/"},
                                                               "route": {"cluster": "c"}}]}]}}]}),
    "empty-listener-state": _body({"@type": ADMIN + "ListenersConfigDump", "dynamic_listeners": [
        {"name": "l", "active_state": {}, "warming_state": {"listener": {"name": "w", "address": {
            "socket_address": {"address": "0.0.0.0", "port_value": 15001}}}}}]}),
    "secret-null": _body({"@type": ADMIN + "SecretsConfigDump", "dynamic_active_secrets": [
        {"name": "default", "secret": None}]}),
    "bootstrap-a-string": _body({"@type": ADMIN + "BootstrapConfigDump", "bootstrap": "node"}),
    "not-standard-json": '{"configs": [' + json.dumps(_clusters(static_clusters=[{"cluster": {
        **_CLUSTER, "outlier_detection": {"max_ejection_percent": "NaN"}}}]))[:-1] + ', "x": NaN}]}',
    "configs-missing": '{"config": []}',
}


@pytest.mark.parametrize("name", sorted(OFF_SHAPE))
def test_a_body_off_the_schema_falls_back_and_reads_the_same(name: str) -> None:
    body = OFF_SHAPE[name]
    with pytest.raises(config_typed.TYPED_FAILS):
        config_typed.parse_typed(body)
    _cold()
    try:
        expected: ConfigDump | str = parse_config_dump_general(body)
    except ValueError as exc:
        expected = str(exc)
    _cold()
    try:
        got: ConfigDump | str = parse_config_dump(body)
    except ValueError as exc:
        got = str(exc)
    assert got == expected


def test_a_listener_state_without_a_listener_but_with_a_stamp_reads_the_same() -> None:
    # Not empty (so the general path takes it as the state), but without a listener: left to the
    # general path, which names the listener after the entry and counts its stamp.
    body = _body({"@type": ADMIN + "ListenersConfigDump", "dynamic_listeners": [
        {"name": "l", "active_state": {"version_info": "9", "last_updated": "2026-01-01T00:00:00Z"}}]})
    general = parse_config_dump_general(body)
    assert parse_config_dump(body) == general and general.listeners == ["l"] and general.xds


def test_a_typed_dump_shares_readings_but_not_the_proxys_own_dicts() -> None:
    body = _body(_clusters(dynamic_active_clusters=[{"version_info": "7", "cluster": _CLUSTER}]))
    first, second = config_typed.parse_typed(body), config_typed.parse_typed(body)
    name = _CLUSTER["name"]
    assert first == second == parse_config_dump_general(body)
    assert first.cluster_settings[name] is not second.cluster_settings[name]
    assert first.cluster_versions == {name: "7"} and first.cluster_tls == {name: "disable"}


def test_the_schema_refuses_camel_case_at_decode() -> None:
    with pytest.raises(msgspec.ValidationError):
        config_typed.parse_typed(OFF_SHAPE["camel-entry"])


@pytest.mark.parametrize(("body", "expected"), [
    # The usual body: what the general path reads from it.
    ('{"version": "sha/1.32.3/Clean/RELEASE/BoringSSL", "state": "LIVE", "uptime_current_epoch": "60s", '
     '"command_line_options": {"concurrency": 2}, "node": {"id": "sidecar~1~p.ns~ns.svc.cluster.local"}}',
     ServerInfo("1.32.3", "LIVE", 60.0, {"id": "sidecar~1~p.ns~ns.svc.cluster.local"})),
    # Fields of another type read as absent, either way.
    ('{"version": 7, "state": 7, "uptime_current_epoch": [1], "node": "n"}', ServerInfo()),
    # lowerCamelCase fails the schema; the general path reads it.
    ('{"uptimeCurrentEpoch": "5s"}', ServerInfo(uptime_s=5.0)),
    # Not standard JSON: the general path reads it.
    ('{"state": "LIVE", "uptime_current_epoch": "9s", "hot_restart_version": NaN}',
     ServerInfo(state="LIVE", uptime_s=9.0)),
])
def test_server_info_reads_the_same_by_schema_or_not(body: str, expected: ServerInfo) -> None:
    assert parse_server_info(body) == expected


@pytest.mark.parametrize("body", ["[]", '"LIVE"', "{", ""])
def test_server_info_of_the_wrong_shape_is_a_value_error(body: str) -> None:
    with pytest.raises(ValueError, match="server_info"):
        parse_server_info(body)
