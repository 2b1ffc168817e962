"""What a bundle keeps of a proxy's ``/config_dump`` and ``/server_info``: what normalize reads.

A config dump carries credentials meshobs never reads: ``request_headers_to_add`` values on
routes (API keys, Basic auth for an upstream), tracing and stats-sink tokens in the bootstrap,
``generic_secret`` and session ticket keys in SDS secrets, private keys when a proxy does not
redact them, Lua code and ext_authz headers in listener filter chains. The projection below
keeps, section by section, the fields :mod:`config_dump`, :mod:`tls`, :mod:`certs` and
:mod:`server_info` read, in either field spelling (snake_case or the lowerCamelCase of Envoy
1.12); free-form parts that stay (route matches, node metadata) have credentials masked.

A test replays the real dumps of the corpus both ways and checks the model is the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshobs.raw import Payload
from meshobs.redact import scrub_data
from meshobs.shape import dumps_compact, loads_standard

from .clusters import camel  # the one spelling rule, memoised (asked for every field of every dump)

# Node metadata keys the readers use (workload, namespace, identity) or a person wants to see.
NODE_METADATA = ("WORKLOAD_NAME", "NAMESPACE", "NAME", "CLUSTER_ID", "MESH_ID", "ISTIO_VERSION",
                 "SERVICE_ACCOUNT", "APP_CONTAINERS", "INTERCEPTION_MODE", "OWNER", "LABELS")


def _keep(obj: Any, *fields: str, **nested: Any) -> dict[str, Any]:
    """The listed fields of ``obj`` as they are, and ``nested`` fields through their projection;
    each as spelt in ``obj`` (snake_case, else lowerCamelCase). Inline, not a lookup helper per
    field: called ~40,000 times for a question's 132 dumps, the helper's calls were a third of it."""
    out: dict[str, Any] = {}
    if not isinstance(obj, dict) and not isinstance(obj, Mapping):
        return out
    if "@type" in obj:
        out["@type"] = obj["@type"]
    for f in fields:
        if f in obj:
            out[f] = obj[f]
        elif (spelt := camel(f)) in obj:
            out[spelt] = obj[spelt]
    for f, project in nested.items():
        if f in obj:
            out[f] = project(obj[f])
        elif (spelt := camel(f)) in obj:
            out[spelt] = project(obj[spelt])
    return out


def _each(project: Any) -> Any:
    # A list that is not one reads as empty in the normaliser: keep it empty here too.
    return lambda items: [project(i) for i in items] if isinstance(items, list) else []


def node(value: Any) -> Any:
    """Identity and build of a node; metadata reduced to :data:`NODE_METADATA`, masked."""
    if not isinstance(value, Mapping):
        return value
    out = _keep(value, "id", "cluster", "user_agent_name", "user_agent_build_version", "build_version",
                "locality")
    md = value.get("metadata")
    if isinstance(md, Mapping):
        out["metadata"] = scrub_data({k: md[k] for k in NODE_METADATA if k in md})
    return out


# -- transport sockets: what tls.cluster_tls reads ---------------------------------------------
def _data_source_marker(items: Any) -> Any:
    # tls_certificates are only tested for presence: keep how many, never the key material.
    return [{} for _ in items] if isinstance(items, list) else items


def _common_tls(ctx: Any) -> Any:
    return _keep(ctx, "alpn_protocols",
                 tls_certificate_sds_secret_configs=_each(lambda c: _keep(c, "name")),
                 tls_certificates=_data_source_marker,
                 validation_context_sds_secret_config=lambda c: _keep(c, "name"),
                 combined_validation_context=lambda c: _keep(
                     c, validation_context_sds_secret_config=lambda v: _keep(v, "name")))


def _tls_context(ctx: Any) -> Any:
    return _keep(ctx, "sni", common_tls_context=_common_tls)


def _socket(socket: Any) -> Any:
    def inner(typed: Any) -> Any:
        return _keep(typed, common_tls_context=_common_tls, transport_socket=_socket)

    out = _keep(socket, "name", typed_config=inner)
    if isinstance(socket, Mapping) and "config" in socket:  # v2 spelling of typed_config
        out["config"] = inner(socket["config"])
    return out


def _thresholds(t: Any) -> Any:
    return _keep(t, "priority", "max_connections", "max_pending_requests", "max_requests", "max_retries")


def _cluster_metadata(md: Any) -> Any:
    # Only the Istio resource that made the cluster (proxy_config reads filter_metadata.istio.config).
    def istio(fm: Any) -> Any:
        return _keep(fm, istio=lambda i: _keep(i, "config"))
    return _keep(md, filter_metadata=istio)


def _cluster(c: Any) -> Any:
    return _keep(c, "name", "type", "outlier_detection", transport_socket=_socket, tls_context=_tls_context,
                 transport_socket_matches=_each(lambda m: _keep(m, "name", "match", transport_socket=_socket)),
                 cluster_type=lambda t: _keep(t, "name"),
                 circuit_breakers=lambda cb: _keep(cb, thresholds=_each(_thresholds)),
                 metadata=_cluster_metadata)


def _clusters_section(cfg: Any) -> Any:
    entry = _each(lambda e: _keep(e, "version_info", "last_updated", cluster=_cluster))
    return _keep(cfg, "version_info", static_clusters=entry, dynamic_active_clusters=entry,
                 dynamic_warming_clusters=entry)


# -- listeners: names, addresses, direction, and of each filter chain only what it matches and
# where it sends (proxy_config's istioctl view): no filter settings, so no Lua code or headers ---
def _route_match(m: Any) -> Any:
    return _keep(m, "prefix", "path")


def _inline_routes(rc: Any) -> Any:
    route = lambda r: _keep(r, match=_route_match)  # noqa: E731
    return _keep(rc, virtual_hosts=_each(lambda vh: _keep(vh, routes=_each(route))))


def _filter_config(cfg: Any) -> Any:
    return _keep(cfg, "cluster", rds=lambda r: _keep(r, "route_config_name"), route_config=_inline_routes,
                 weighted_clusters=lambda w: _keep(w, clusters=_each(lambda c: _keep(c, "name"))))


def _filter(f: Any) -> Any:
    out = _keep(f, "name", typed_config=_filter_config)
    if isinstance(f, Mapping) and "config" in f:  # v2 spelling of typed_config
        out["config"] = _filter_config(f["config"])
    return out


def _chain(c: Any) -> Any:
    return _keep(c, "filter_chain_match", filters=_each(_filter))


def _listener(lst: Any) -> Any:
    return _keep(lst, "name", "address", "traffic_direction", filter_chains=_each(_chain),
                 default_filter_chain=_chain)


def _listeners_section(cfg: Any) -> Any:
    state = lambda s: _keep(s, "version_info", "last_updated", listener=_listener)  # noqa: E731
    return _keep(cfg, "version_info",
                 static_listeners=_each(lambda e: _keep(e, "last_updated", listener=_listener)),
                 dynamic_listeners=_each(lambda e: _keep(e, "name", active_state=state, warming_state=state)),
                 dynamic_active_listeners=_each(state))


# -- routes: what HttpRoute holds; header values added to requests are never kept ---------------
_RETRY = ("num_retries", "retry_on", "per_try_timeout")


def _route_action(action: Any) -> Any:
    return _keep(action, "cluster", "timeout",
                 weighted_clusters=lambda w: _keep(w, clusters=_each(lambda c: _keep(c, "name", "weight"))),
                 retry_policy=lambda r: _keep(r, *_RETRY))


def _route(r: Any) -> Any:
    return _keep(r, "name", match=scrub_data, route=_route_action)


def _virtual_host(vh: Any) -> Any:
    return _keep(vh, "name", "domains", retry_policy=lambda r: _keep(r, *_RETRY), routes=_each(_route))


def _route_config(rc: Any) -> Any:
    return _keep(rc, "name", virtual_hosts=_each(_virtual_host))


def _routes_section(cfg: Any) -> Any:
    entry = _each(lambda e: _keep(e, "version_info", "last_updated", route_config=_route_config))
    return _keep(cfg, static_route_configs=entry, dynamic_route_configs=entry)


# -- secrets: the certificates (public), never keys, passwords or generic secrets ---------------
def _secret(s: Any) -> Any:
    data = lambda d: _keep(d, "inline_bytes", "inline_string", "filename")  # noqa: E731
    return _keep(s, "name",
                 tls_certificate=lambda t: _keep(t, certificate_chain=data),
                 validation_context=lambda v: _keep(v, trusted_ca=data))


def _secrets_section(cfg: Any) -> Any:
    entry = _each(lambda e: _keep(e, "name", "version_info", "last_updated", secret=_secret))
    return _keep(cfg, static_secrets=entry, dynamic_active_secrets=entry, dynamic_warming_secrets=entry)


def _endpoints_section(cfg: Any) -> Any:
    return _keep(cfg, dynamic_endpoint_configs=_each(lambda e: _keep(e, "version_info", "last_updated")))


_SECTIONS = {
    "BootstrapConfigDump": lambda cfg: _keep(cfg, bootstrap=lambda b: _keep(b, node=node)),
    "ClustersConfigDump": _clusters_section, "ListenersConfigDump": _listeners_section,
    "RoutesConfigDump": _routes_section, "SecretsConfigDump": _secrets_section,
    "EndpointsConfigDump": _endpoints_section,
}


def config_dump(doc: Any) -> Any:
    """A parsed ``/config_dump`` reduced to what :func:`config_dump.parse_config_dump` reads."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("configs"), list):
        return doc
    configs = []
    for cfg in doc["configs"]:
        kind = str(cfg.get("@type", "")).rsplit(".", 1)[-1] if isinstance(cfg, Mapping) else ""
        if kind in _SECTIONS:
            configs.append(_SECTIONS[kind](cfg))
    return {"configs": configs}


def server_info(doc: Any) -> Any:
    """A parsed ``/server_info`` without its command line (which may inline a whole config)."""
    if not isinstance(doc, Mapping):
        return doc
    return _keep(doc, "version", "state", "uptime_current_epoch", "uptime_all_epochs",
                 "hot_restart_version", node=node)


_PAYLOADS = {"config_dump": config_dump, "server_info": server_info}


def minimise(payload: Payload) -> Payload:
    """Reduce a ``config_dump`` or ``server_info`` body in place (others are left as they are).

    A body that is not JSON is left too: the normaliser reports it, and no structure means no
    header values to keep apart. Returns the payload.
    """
    project = _PAYLOADS.get(payload.key)
    if project is None or not payload.body or not payload.ok:
        return payload
    try:
        doc, standard = loads_standard(payload.body)  # msgspec: ~half json's time, the same values
    except (ValueError, RecursionError):
        return payload
    try:
        payload.body = dumps_compact(project(doc), standard)
    except ValueError as exc:  # too large to scrub: keep nothing rather than everything
        payload.body, payload.error = None, f"{payload.key}: {exc}"
    payload.meta["minimised"] = True
    return payload
