"""``/config_dump`` decoded by schema: the fast path of :func:`.config_dump.parse_config_dump`.

The dump is decoded into small ``msgspec.Struct`` s holding only the fields meshobs reads; msgspec
skips the rest in C without building it. Each cluster, listener and route configuration stays
undecoded (``msgspec.Raw``): a mesh's proxies hold the same ones, so their reading is looked up
by the digest of their bytes, and only an unseen one is decoded and read, by the very readers of
:mod:`.config_dump`. The result is the :class:`.config_dump.ConfigDump` the general path gives.

Anything off the usual shape raises :class:`Mismatch` (a ``msgspec.ValidationError``, a section
type not listed here, a lowerCamelCase field, an item the general path would report as a
problem), and the caller reads the whole body the general way: its answers, including the
problems it lists, are the reference, and this path never has to reproduce them.

lowerCamelCase spellings (older Envoys, istioctl) are declared as fields of type ``UnsetType``:
present at all, they fail the decode, since the general path reads them (``pick``) and a schema
that ignored them would not.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
from msgspec import UNSET, Raw, Struct, UnsetType, field

from meshobs.model import HttpRoute, Listener
from meshobs.shape import ITEM_ERRORS, as_map

from . import config_dump as general
from .proxy_config import listener_detail


class Mismatch(Exception):
    """The body is not of the shape this path reads: read it the general way."""


# What sends a body to the general path: a mismatch, anything msgspec refuses (ValidationError is
# a DecodeError; text not UTF-8; nesting past its depth), and an item error raised by a reader
# (the general path reads around it and names it as a problem).
TYPED_FAILS = (Mismatch, msgspec.DecodeError, UnicodeError, RecursionError, *ITEM_ERRORS)


_CAMEL = UnsetType  # a lowerCamelCase spelling: present, it sends the body to the general path


# An absent object field: reads as null does (and a listener state without one is told apart by
# identity, see _listeners).
_ABSENT = Raw(b"null")


class _Stamped(Struct):
    """An xDS entry's stamp (``_latest``): both fields strings, else the general path."""

    version_info: str | None = None
    last_updated: str | None = None
    versionInfo: _CAMEL = UNSET
    lastUpdated: _CAMEL = UNSET


class _ClusterEntry(_Stamped):
    cluster: Raw = _ABSENT


class _Section(Struct, tag_field="@type"):
    version_info: str | None = None
    versionInfo: _CAMEL = UNSET


class _Bootstrap(Struct):
    node: Any = None


class _BootstrapDump(_Section, tag="type.googleapis.com/envoy.admin.v3.BootstrapConfigDump"):
    bootstrap: _Bootstrap | None = None


class _ClustersDump(_Section, tag="type.googleapis.com/envoy.admin.v3.ClustersConfigDump"):
    static_clusters: list[_ClusterEntry] | None = None
    dynamic_active_clusters: list[_ClusterEntry] | None = None
    dynamic_warming_clusters: list[_ClusterEntry] | None = None
    staticClusters: _CAMEL = UNSET
    dynamicActiveClusters: _CAMEL = UNSET
    dynamicWarmingClusters: _CAMEL = UNSET


class _ListenerState(_Stamped):
    listener: Raw = _ABSENT


class _StaticListener(Struct):
    listener: Raw = _ABSENT


class _DynamicListener(Struct):
    name: Any = None
    active_state: _ListenerState | UnsetType = UNSET
    warming_state: _ListenerState | UnsetType = UNSET
    activeState: _CAMEL = UNSET
    warmingState: _CAMEL = UNSET


class _ListenersDump(_Section, tag="type.googleapis.com/envoy.admin.v3.ListenersConfigDump"):
    static_listeners: list[_StaticListener] | None = None
    dynamic_listeners: list[_DynamicListener] | None = None
    dynamic_active_listeners: list[_ListenerState] | None = None
    staticListeners: _CAMEL = UNSET
    dynamicListeners: _CAMEL = UNSET
    dynamicActiveListeners: _CAMEL = UNSET


class _RouteConfigEntry(_Stamped):
    route_config: Raw = _ABSENT
    routeConfig: _CAMEL = UNSET


class _RoutesDump(_Section, tag="type.googleapis.com/envoy.admin.v3.RoutesConfigDump"):
    static_route_configs: list[_RouteConfigEntry] | None = None
    dynamic_route_configs: list[_RouteConfigEntry] | None = None
    staticRouteConfigs: _CAMEL = UNSET
    dynamicRouteConfigs: _CAMEL = UNSET


class _SecretEntry(_Stamped):
    name: Any = None
    secret: dict[str, Any] = field(default_factory=dict)


class _SecretsDump(_Section, tag="type.googleapis.com/envoy.admin.v3.SecretsConfigDump"):
    static_secrets: list[_SecretEntry] | None = None
    dynamic_active_secrets: list[_SecretEntry] | None = None
    dynamic_warming_secrets: list[_SecretEntry] | None = None
    staticSecrets: _CAMEL = UNSET
    dynamicActiveSecrets: _CAMEL = UNSET
    dynamicWarmingSecrets: _CAMEL = UNSET


class _EndpointsDump(_Section, tag="type.googleapis.com/envoy.admin.v3.EndpointsConfigDump"):
    dynamic_endpoint_configs: list[_Stamped] | None = None
    dynamicEndpointConfigs: _CAMEL = UNSET


# Sections meshobs does not read, skipped undecoded. A type listed nowhere fails the decode.
class _ScopedRoutesDump(Struct, tag_field="@type", tag="type.googleapis.com/envoy.admin.v3.ScopedRoutesConfigDump"):
    pass


class _EcdsDump(Struct, tag_field="@type", tag="type.googleapis.com/envoy.admin.v3.EcdsConfigDump"):
    pass


_AnySection = (_BootstrapDump | _ClustersDump | _ListenersDump | _RoutesDump | _SecretsDump | _EndpointsDump
               | _ScopedRoutesDump | _EcdsDump)


class _Dump(Struct):
    configs: list[_AnySection]


_DECODER = msgspec.json.Decoder(_Dump)
_GENERIC = msgspec.json.Decoder()

# Readings of raw cluster / listener / route configuration bytes, by (what, digest): pure and
# immutable (str, frozen model objects, tuples), so one serves every proxy. Only clean readings
# are kept. Bounded: emptied when full (see config_dump._READINGS).
_READINGS: dict[tuple[str, bytes], Any] = {}
_READINGS_MAX = 32_768
_UNREAD = object()


def _remember(key: tuple[str, bytes], value: Any) -> Any:
    if len(_READINGS) >= _READINGS_MAX:
        _READINGS.clear()
    _READINGS[key] = value
    return value


def _key(what: str, raw: Raw) -> tuple[str, bytes]:
    return what, hashlib.blake2b(raw, digest_size=16).digest()


_ClusterReading = tuple[str, str | None, tuple[tuple[str, Any], ...]] | None


def _cluster(raw: Raw, dump: general.ConfigDump) -> _ClusterReading:
    """(name, tls, settings) of one cluster object, None when it has no name."""
    key = _key("cluster", raw)
    found = _READINGS.get(key, _UNREAD)
    if found is not _UNREAD:
        return found  # type: ignore[no-any-return]
    cluster = as_map(_GENERIC.decode(raw))
    name = cluster.get("name")
    if not name:
        return _remember(key, None)  # type: ignore[no-any-return]
    try:
        tls, settings = general.shared("cluster", cluster, dump, general.cluster_reading)
    except ITEM_ERRORS:
        raise Mismatch("a cluster that does not read") from None  # the general path reports it
    return _remember(key, (str(name), tls, settings))  # type: ignore[no-any-return]


def _clusters(section: _ClustersDump, dump: general.ConfigDump) -> None:
    for entries, kind in ((section.static_clusters, "static"), (section.dynamic_active_clusters, "active"),
                          (section.dynamic_warming_clusters, "warming")):
        for e in entries or ():
            reading = _cluster(e.cluster, dump)
            if reading is None:
                continue
            name, tls, settings = reading
            if kind == "warming":
                dump.warming_clusters.append(name)
                if name in dump.cluster_tls:
                    continue
            else:
                version = None if kind == "static" else e.version_info
                dump.cluster_versions[name] = version  # a str or None: str() changes nothing
            dump.cluster_tls[name] = tls
            dump.cluster_settings[name] = dict(settings)  # the proxy's own dict
    x = general.latest_of(_stamps(section.dynamic_active_clusters), "cds", section.version_info)
    if x:
        dump.xds.append(x)


def _stamps(entries: list[Any] | None) -> list[tuple[str | None, str | None]]:
    """The (last_updated, version_info) of each entry, repeats left out: a mesh's proxies take a
    push at once, so a section's entries mostly share one stamp; the first of equal pairs is the
    one ``latest_of`` would pick, so leaving the others out changes nothing."""
    return list(dict.fromkeys([(e.last_updated, e.version_info) for e in entries or ()]))


_ListenerReading = tuple[str | None, Any, Listener | None]


def _listener(raw: Raw, state: str, dump: general.ConfigDump) -> _ListenerReading:
    """(its name as a static listener, its ``name`` field, its detail) of one listener object."""
    key = _key(f"listener {state}", raw)
    found = _READINGS.get(key, _UNREAD)
    if found is not _UNREAD:
        return found  # type: ignore[no-any-return]
    listener = _GENERIC.decode(raw)
    detail = (general.shared(f"listener {state}", listener, dump,
                             lambda x: listener_detail(dict(x), state))
              if isinstance(listener, dict) else None)
    name = listener.get("name") if isinstance(listener, dict) else None
    return _remember(key, (general.listener_name(listener), name, detail))  # type: ignore[no-any-return]


def _listeners(section: _ListenersDump, dump: general.ConfigDump) -> None:
    for s in section.static_listeners or ():
        static_name, _, detail = _listener(s.listener, "static", dump)
        if static_name:
            dump.listeners.append(static_name)
        if detail is not None:
            dump.listener_details.append(detail)
    active: list[_ListenerState] = []
    for e in section.dynamic_listeners or ():
        # The general path takes the active state when it is a non-empty object, else the warming
        # one; a state without a listener may be empty, so it is left to the general path.
        is_active = isinstance(e.active_state, _ListenerState)
        state = e.active_state if isinstance(e.active_state, _ListenerState) else e.warming_state
        if isinstance(state, _ListenerState):
            if state.listener is _ABSENT:
                raise Mismatch("a listener state without a listener")
            _, name, detail = _listener(state.listener, "active" if is_active else "warming", dump)
        else:
            name, detail = None, None
        name = e.name or name
        if name:
            dump.listeners.append(str(name))
        if isinstance(e.active_state, _ListenerState):
            active.append(e.active_state)
        if detail is not None:
            dump.listener_details.append(detail)
    for old in section.dynamic_active_listeners or ():  # Envoy 1.12 and older
        _, name, detail = _listener(old.listener, "active", dump)
        if name:
            dump.listeners.append(str(name))
        active.append(old)
        if detail is not None:
            dump.listener_details.append(detail)
    x = general.latest_of(_stamps(active), "lds", section.version_info)
    if x:
        dump.xds.append(x)


def _route_config(raw: Raw, dump: general.ConfigDump) -> tuple[HttpRoute, ...]:
    key = _key("routes", raw)
    found = _READINGS.get(key, _UNREAD)
    if found is not _UNREAD:
        return found  # type: ignore[no-any-return]
    rc = _GENERIC.decode(raw)
    if not isinstance(rc, dict):
        return _remember(key, ())  # type: ignore[no-any-return]
    problems: list[str] = []
    routes = tuple(general.routes_of(rc, problems))
    if problems:  # kept per proxy, in order, by the general path
        raise Mismatch("a route that does not read")
    return _remember(key, routes)  # type: ignore[no-any-return]


def _route_configs(section: _RoutesDump, dump: general.ConfigDump) -> None:
    for e in (section.static_route_configs or []) + (section.dynamic_route_configs or []):
        dump.routes.extend(_route_config(e.route_config, dump))
    x = general.latest_of(_stamps(section.dynamic_route_configs), "rds")
    if x:
        dump.xds.append(x)


def _secrets(section: _SecretsDump, dump: general.ConfigDump) -> None:
    for state, entries in (("static", section.static_secrets), ("active", section.dynamic_active_secrets),
                           ("warming", section.dynamic_warming_secrets)):
        for e in entries or ():
            dump.secrets.append({"name": e.name or e.secret.get("name"), "secret": e.secret, "state": state})
    x = general.latest_of(_stamps(section.dynamic_active_secrets), "sds")
    if x:
        dump.xds.append(x)


def parse_typed(text: str | bytes) -> general.ConfigDump:
    """:func:`.config_dump.parse_config_dump` of a body of the usual shape; :class:`Mismatch`
    (or a ``msgspec.DecodeError``) otherwise."""
    doc = _DECODER.decode(text)
    dump = general.ConfigDump(standard=True)
    for cfg in doc.configs:
        if isinstance(cfg, _ClustersDump):
            _clusters(cfg, dump)
        elif isinstance(cfg, _ListenersDump):
            _listeners(cfg, dump)
        elif isinstance(cfg, _RoutesDump):
            _route_configs(cfg, dump)
        elif isinstance(cfg, _SecretsDump):
            _secrets(cfg, dump)
        elif isinstance(cfg, _EndpointsDump):
            x = general.latest_of(_stamps(cfg.dynamic_endpoint_configs), "eds")
            if x:
                dump.xds.append(x)
        elif isinstance(cfg, _BootstrapDump):
            node = cfg.bootstrap.node if cfg.bootstrap is not None else None
            dump.node = node if isinstance(node, dict) else {}
    return dump
