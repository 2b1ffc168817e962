"""Envoy ``/config_dump`` -> xDS versions, cluster versions, routes, listeners, secrets, node.

Sections are found by the last part of their ``@type`` (``ClustersConfigDump``...), so both
``envoy.admin.v3`` and the ``envoy.admin.v2alpha`` / ``envoy.api.v2`` dumps of Envoy 1.12 work;
field names are read in snake_case with a lowerCamelCase fallback (see :func:`pick`).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import msgspec

from meshobs.model import HttpRoute, Listener, RouteDestination, XdsResource, freeze
from meshobs.raw import parse_iso
from meshobs.shape import ITEM_ERRORS, as_list, as_map, describe, each, load_json_standard

from .clusters import pick
from .proxy_config import cluster_settings, listener_detail
from .tls import cluster_tls


@dataclass
class ConfigDump:
    """The parts of one proxy's config dump that the model needs."""

    node: dict[str, Any] = field(default_factory=dict)
    xds: list[XdsResource] = field(default_factory=list)
    cluster_versions: dict[str, str | None] = field(default_factory=dict)  # active dynamic + static
    cluster_tls: dict[str, str | None] = field(default_factory=dict)  # name -> istio_mutual|mutual|simple|disable
    warming_clusters: list[str] = field(default_factory=list)
    routes: list[HttpRoute] = field(default_factory=list)
    listeners: list[str] = field(default_factory=list)
    secrets: list[dict[str, Any]] = field(default_factory=list)  # {"name", "secret", "state"}
    problems: list[str] = field(default_factory=list)  # items left out: "routes ... [3]: why"
    # What istioctl proxy-config shows beyond names (see .proxy_config).
    listener_details: list[Listener] = field(default_factory=list)
    cluster_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The body was standard JSON (msgspec read it): its objects' encodings are exact, so they
    # may key the readings shared between proxies (see :func:`shared`).
    standard: bool = False


T = TypeVar("T")
# Readings of cluster and listener objects by (what, digest of their JSON). A mesh's proxies
# hold the same cluster for the same upstream and the same few listeners: 75,863 clusters and
# 22,243 listeners at 5,000 services, of which 8,239 and 3 distinct. Readings are pure and
# immutable (frozen model objects, str), so one serves every proxy; only successes are kept (an
# object that fails is read, and reported, each time). Bounded: emptied when full.
_READINGS: dict[tuple[str, bytes], Any] = {}
_READINGS_MAX = 32_768
_UNREAD = object()


def shared(what: str, obj: Mapping[str, Any], dump: ConfigDump, read: Callable[[Mapping[str, Any]], T]) -> T:
    """``read(obj)``, or the reading of an object with the same JSON read before."""
    if not dump.standard:
        return read(obj)
    try:
        key = (what, hashlib.blake2b(msgspec.json.encode(obj), digest_size=16).digest())
    except (TypeError, ValueError, OverflowError, RecursionError):  # not encodable: read it
        return read(obj)
    # One lookup, not "in" then "[]": a live collection normalises on several threads, and
    # another may empty the dict in between.
    found = _READINGS.get(key, _UNREAD)
    if found is not _UNREAD:
        return cast(T, found)
    value = read(obj)
    if len(_READINGS) >= _READINGS_MAX:
        _READINGS.clear()
    _READINGS[key] = value
    return value


def _section_type(cfg: dict[str, Any]) -> str:
    return str(cfg.get("@type", "")).rsplit(".", 1)[-1]


def _when(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    return _time(text)


@functools.lru_cache(maxsize=16_384)
def _time(text: str) -> datetime | None:
    # Proxies fed by one control plane share their push times: the 94,581 ``last_updated`` of
    # 7,415 proxies at 5,000 services are 7,526 distinct. datetimes are immutable.
    try:
        return parse_iso(text).astimezone(UTC)
    except (ValueError, OverflowError):  # not a time, or one no clock can hold
        return None


def _latest(entries: list[dict[str, Any]], xds_type: str, section_version: Any = None) -> XdsResource | None:
    """The section's version (or the newest entry's) with the newest ``last_updated``."""
    return latest_of([(pick(e, "last_updated"), pick(e, "version_info")) for e in entries], xds_type,
                     section_version)


def latest_of(stamps: list[tuple[Any, Any]], xds_type: str, section_version: Any = None) -> XdsResource | None:
    """:func:`_latest` of the entries' ``(last_updated, version_info)``."""
    stamped = [(_when(updated), version) for updated, version in stamps]
    times = [t for t, _ in stamped if t is not None]
    newest = max(times) if times else None
    version = section_version
    if version in (None, ""):
        for t, v in stamped:
            if v not in (None, "") and (newest is None or t == newest):
                version = v
                break
    if version in (None, "") and newest is None:
        return None
    return XdsResource(xds_type, str(version) if version not in (None, "") else None, newest)


def duration_s(value: Any) -> float | None:
    """``"15s"``, ``"0.250s"`` or ``{"seconds": 15, "nanos": 0}`` -> seconds."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value.endswith("s"):
        try:
            return float(value[:-1])
        except ValueError:
            return None
    if isinstance(value, dict):
        try:
            return float(value.get("seconds", 0) or 0) + float(value.get("nanos", 0) or 0) / 1e9
        except (TypeError, ValueError):
            return None
    return None


def _uint(value: Any) -> int | None:
    # Wrapper types (UInt32Value) render as a bare number or as {"value": n}, by version.
    if isinstance(value, dict):
        value = value.get("value")
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _destinations(action: dict[str, Any]) -> tuple[RouteDestination, ...]:
    if "cluster" in action:
        return (RouteDestination(str(action["cluster"]), 100),)
    weighted = pick(action, "weighted_clusters")
    if isinstance(weighted, dict):
        return tuple(RouteDestination(str(c.get("name", "")), _uint(c.get("weight")) or 0)
                     for c in as_list(weighted.get("clusters")) if isinstance(c, dict))
    return ()


def _route(rc_name: str, vh: dict[str, Any], vh_retry: Any, r: Any) -> HttpRoute:
    if not isinstance(r, dict):
        raise ValueError(f"expected a route object, got {describe(r)}")
    action = r.get("route")
    if not isinstance(action, dict):
        action = {}
    retry = pick(action, "retry_policy") or vh_retry or {}
    if not isinstance(retry, dict):
        raise ValueError(f"retry_policy: expected an object, got {describe(retry)}")
    match = r.get("match") or {}
    if not isinstance(match, dict):
        raise ValueError(f"match: expected an object, got {describe(match)}")
    name = r.get("name")
    retry_on = pick(retry, "retry_on") if retry else None
    return HttpRoute(
        route_config=rc_name,
        virtual_host=str(vh.get("name", "")),
        domains=tuple(str(d) for d in as_list(vh.get("domains"))),
        name=name if isinstance(name, str) else None,
        match=freeze(match),
        destinations=_destinations(action),
        timeout_s=duration_s(action.get("timeout")),
        retry_attempts=_uint(pick(retry, "num_retries")) if retry else None,
        retry_on=retry_on if isinstance(retry_on, str) else None,
        per_try_timeout_s=duration_s(pick(retry, "per_try_timeout")) if retry else None,
    )


def routes_of(route_config: dict[str, Any], problems: list[str]) -> list[HttpRoute]:
    """The routes of one route configuration; a malformed route costs that route only."""
    out: list[HttpRoute] = []
    rc_name = str(route_config.get("name", ""))
    for i, vh in enumerate(as_list(pick(route_config, "virtual_hosts"))):
        if not isinstance(vh, dict):
            problems.append(f"config_dump: route config {rc_name} virtual_hosts[{i}]: "
                            f"expected an object, got {describe(vh)}")
            continue
        vh_retry = pick(vh, "retry_policy")
        where = f"config_dump: route config {rc_name} virtual host {vh.get('name', i)} routes"
        def one(r: Any, vh: dict[str, Any] = vh, vh_retry: Any = vh_retry) -> HttpRoute:
            return _route(rc_name, vh, vh_retry, r)

        out.extend(each(as_list(vh.get("routes")), where, one, problems))
    return out


def _clusters(cfg: dict[str, Any], dump: ConfigDump) -> None:
    active = as_list(pick(cfg, "dynamic_active_clusters"))
    for key in ("static_clusters", "dynamic_active_clusters", "dynamic_warming_clusters"):
        def one(e: Any, key: str = key) -> None:
            cluster = as_map(as_map(e).get("cluster"))
            name = cluster.get("name")
            if not name:
                return
            if key == "dynamic_warming_clusters":
                dump.warming_clusters.append(str(name))
            else:
                version = None if key == "static_clusters" else pick(e, "version_info")
                dump.cluster_versions[str(name)] = str(version) if version is not None else None
            if key != "dynamic_warming_clusters" or str(name) not in dump.cluster_tls:
                try:
                    tls, settings = shared("cluster", cluster, dump, cluster_reading)
                except ITEM_ERRORS:
                    # Read again step by step, so a cluster whose TLS reads but whose settings
                    # do not keeps its TLS, as always (and the error is raised for the problem).
                    dump.cluster_tls[str(name)] = cluster_tls(dict(cluster))
                    dump.cluster_settings[str(name)] = cluster_settings(dict(cluster))
                    return
                dump.cluster_tls[str(name)] = tls
                dump.cluster_settings[str(name)] = dict(settings)  # the proxy's own dict

        each(as_list(pick(cfg, key)), f"config_dump: {key}", one, dump.problems)
    x = _latest(active, "cds", pick(cfg, "version_info"))
    if x:
        dump.xds.append(x)


def cluster_reading(cluster: Mapping[str, Any]) -> tuple[str | None, tuple[tuple[str, Any], ...]]:
    return cluster_tls(dict(cluster)), tuple(cluster_settings(dict(cluster)).items())


def listener_name(listener: Any) -> str | None:
    """A listener's name; unnamed (bootstrap) listeners are named ``IP_PORT`` as Istio does."""
    if not isinstance(listener, dict):
        return None
    if listener.get("name"):
        return str(listener["name"])
    sock = as_map(pick(as_map(listener.get("address")), "socket_address"))
    if "address" in sock:
        return f"{sock['address']}_{pick(sock, 'port_value', '')}"
    return None


def _listeners(cfg: dict[str, Any], dump: ConfigDump) -> None:
    def detail(listener: Any, state: str) -> None:
        found = (shared(f"listener {state}", listener, dump, lambda x: listener_detail(dict(x), state))
                 if isinstance(listener, dict) else None)
        if found is not None:
            dump.listener_details.append(found)

    for e in as_list(pick(cfg, "static_listeners")):
        name = listener_name(as_map(e).get("listener"))
        if name:
            dump.listeners.append(str(name))
        detail(as_map(e).get("listener"), "static")
    active: list[dict[str, Any]] = []
    for e in as_list(pick(cfg, "dynamic_listeners")):
        if not isinstance(e, dict):
            continue
        state = as_map(pick(e, "active_state") or pick(e, "warming_state"))
        name = e.get("name") or as_map(state.get("listener")).get("name")
        if name:
            dump.listeners.append(str(name))
        if isinstance(pick(e, "active_state"), dict):
            active.append(pick(e, "active_state"))
        detail(state.get("listener"), "active" if isinstance(pick(e, "active_state"), dict) else "warming")
    # Envoy 1.12 and older: dynamic_active_listeners[] of {version_info, listener, last_updated}.
    for e in as_list(pick(cfg, "dynamic_active_listeners")):
        if not isinstance(e, dict):
            continue
        name = as_map(e.get("listener")).get("name")
        if name:
            dump.listeners.append(str(name))
        active.append(e)
        detail(e.get("listener"), "active")
    x = _latest(active, "lds", pick(cfg, "version_info"))
    if x:
        dump.xds.append(x)


def _route_configs(cfg: dict[str, Any], dump: ConfigDump) -> None:
    dynamic = as_list(pick(cfg, "dynamic_route_configs"))
    for e in as_list(pick(cfg, "static_route_configs")) + dynamic:
        rc = pick(e, "route_config")
        if isinstance(rc, dict):
            dump.routes.extend(routes_of(rc, dump.problems))
    x = _latest(dynamic, "rds")
    if x:
        dump.xds.append(x)


def _secrets(cfg: dict[str, Any], dump: ConfigDump) -> None:
    active = as_list(pick(cfg, "dynamic_active_secrets"))
    for state, key in (("static", "static_secrets"), ("active", "dynamic_active_secrets"),
                       ("warming", "dynamic_warming_secrets")):
        for e in as_list(pick(cfg, key)):
            if not isinstance(e, dict):
                continue
            secret = as_map(e.get("secret"))
            dump.secrets.append({"name": e.get("name") or secret.get("name"), "secret": dict(secret),
                                 "state": state})
    x = _latest(active, "sds")
    if x:
        dump.xds.append(x)


def _endpoints(cfg: dict[str, Any], dump: ConfigDump) -> None:
    x = _latest(as_list(pick(cfg, "dynamic_endpoint_configs")), "eds")
    if x:
        dump.xds.append(x)


_SECTIONS = {
    "ClustersConfigDump": _clusters, "ListenersConfigDump": _listeners,
    "RoutesConfigDump": _route_configs, "SecretsConfigDump": _secrets,
    "EndpointsConfigDump": _endpoints,
}


def parse_config_dump(text: str) -> ConfigDump:
    """Parse ``/config_dump`` (with or without ``?include_eds``); ValueError when unusable.

    A malformed item (a route, a cluster, a whole section) costs that item: it is listed in
    ``problems`` and the rest of the dump is read. A body of the usual shape is decoded by
    schema (:mod:`.config_typed`); any other is read by :func:`parse_config_dump_general`, the
    reference both give the same as.
    """
    from .config_typed import TYPED_FAILS, parse_typed  # it reads with this module's readers

    try:
        return parse_typed(text)
    except TYPED_FAILS:
        return parse_config_dump_general(text)


def parse_config_dump_general(text: str) -> ConfigDump:
    """:func:`parse_config_dump` by walking the decoded JSON: any shape, every problem named."""
    try:
        doc, standard = load_json_standard(text, "config_dump")
    except ValueError as exc:
        raise ValueError(f"{exc}; a truncated dump usually means the proxy or a proxy in between "
                         "cut it off") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("configs"), list):
        raise ValueError("config_dump: expected an object with a 'configs' list (/config_dump)")
    dump = ConfigDump(standard=standard)
    for cfg in doc["configs"]:
        if not isinstance(cfg, dict):
            continue
        kind = _section_type(cfg)
        if kind == "BootstrapConfigDump":
            node = as_map(cfg.get("bootstrap")).get("node")
            dump.node = node if isinstance(node, dict) else {}
        elif kind in _SECTIONS:
            def section(c: dict[str, Any], kind: str = kind) -> None:
                _SECTIONS[kind](c, dump)

            each([cfg], f"config_dump: {kind}", section, dump.problems)
    return dump
