"""Envoy ``/stats?format=json`` and ``/stats/prometheus`` -> per-cluster and proxy-wide numbers.

Both formats are reduced to one shape (the Prometheus text is parsed by prometheus_client's
parser): Envoy's own dotted stat names (``upstream_rq_timeout``,
``outlier_detection.ejections_active``, ``circuit_breakers.default.rq_open``) per cluster, plus
the few proxy-wide stats the checks read (``control_plane.connected_state``...). Prometheus names
are translated back, so a proxy scraped either way normalises identically.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec

from meshobs.shape import load_json

# Proxy-wide stats we keep (JSON name == dotted name; Prometheus name -> dotted name).
SERVER_STATS = {
    "envoy_control_plane_connected_state": "control_plane.connected_state",
    "envoy_cluster_manager_warming_clusters": "cluster_manager.warming_clusters",
    "envoy_cluster_manager_active_clusters": "cluster_manager.active_clusters",
    "envoy_cluster_manager_cds_update_rejected": "cluster_manager.cds.update_rejected",
    "envoy_listener_manager_lds_update_rejected": "listener_manager.lds.update_rejected",
    "envoy_listener_manager_total_listeners_warming": "listener_manager.total_listeners_warming",
    "envoy_server_uptime": "server.uptime",
    "envoy_server_state": "server.state",
    "envoy_server_live": "server.live",
}
_SERVER_DOTTED = set(SERVER_STATS.values())
RDS_REJECTED = "rds.update_rejected"  # summed over every route configuration
_RDS_JSON = re.compile(r"^http\..+\.rds\..+\.update_rejected$")
# The verdicts of the HTTP filters that refuse callers, per HTTP connection manager, summed over
# the proxy's listeners as ``<filter>.<stat>``: the RBAC filter (AuthorizationPolicy, 403:
# ``http.inbound_0.0.0.0_8080.rbac.denied``) and the JWT filter (RequestAuthentication, 401:
# ``http.inbound_0.0.0.0_8080.jwt_authn.denied``; Prometheus ``envoy_http_jwt_authn_denied``).
RBAC_STATS = ("allowed", "denied", "shadow_allowed", "shadow_denied")
JWT_STATS = ("allowed", "denied", "jwks_fetch_success", "jwks_fetch_failed")
FILTER_STATS = {"rbac": RBAC_STATS, "jwt_authn": JWT_STATS}
HTTP_FILTER_COUNTERS = tuple(f"{f}.{s}" for f, stats in FILTER_STATS.items() for s in stats)
_FILTER_JSON = re.compile(r"^http\..+\.((?:" + "|".join(FILTER_STATS) + r")\.\w+)$")
_FILTER_PROMETHEUS = {f"envoy_http_{k.replace('.', '_')}": k for k in HTTP_FILTER_COUNTERS}

# Where the stat part of ``cluster.<name>.<stat>`` starts when the cluster name is not known.
_STAT_START = re.compile(
    r"\.(?=(upstream_|membership_|outlier_detection\.|circuit_breakers\.|update_|lb_|"
    r"bind_errors|max_host_weight|original_dst_|retry_or_shadow_abandoned|assignment_|"
    r"health_check\.|internal\.|external\.|default\.total_match_count|version$|init_fetch_timeout|"
    r"ssl\.|tls_inspector\.|http1\.|http2\.|warming_state|upstream$))")


@dataclass
class EnvoyStats:
    """Stats of one proxy: ``clusters[name][stat]`` and proxy-wide ``server[dotted name]``."""

    clusters: dict[str, dict[str, float]] = field(default_factory=dict)
    server: dict[str, float] = field(default_factory=dict)
    format: str = "json"  # json | prometheus


def _split_cluster_stat(rest: str, known: set[str]) -> tuple[str, str] | None:
    # Cluster names contain dots (reviews.default.svc.cluster.local), so a known name wins
    # over the heuristic split.
    if known:  # the first dot whose prefix is a known name (str.find: no walk in Python per character)
        dot = rest.find(".")
        while dot != -1:
            if rest[:dot] in known:
                return rest[:dot], rest[dot + 1:]
            dot = rest.find(".", dot + 1)
    m = _STAT_START.search(rest)
    if m is None:
        return None
    return rest[:m.start()], rest[m.start() + 1:]


class _Stat(msgspec.Struct):
    """One entry of ``/stats?format=json``, as the fast path reads it. A field of another type
    (a quoted number, a null name, a boolean) fails the decode, and the whole body is then read
    the general way (:func:`_json_stat_entries`), so both ways give the same stats."""

    name: str | msgspec.UnsetType = msgspec.UNSET  # unset: the {"histograms": ...} entry
    # A whole number is decoded to the float float() makes of it (correctly rounded); one beyond
    # a float's range fails the decode, as float() would overflow.
    value: float = 0.0


class _StatsBody(msgspec.Struct):
    stats: list[_Stat]


# Typed: the entries become two-field structs instead of dicts, and the histograms entry (its
# buckets, per cluster) is skipped by the decoder instead of built into Python objects.
_STATS_DECODER = msgspec.json.Decoder(_StatsBody)
# ValidationError is a DecodeError; a hostile nesting depth is a RecursionError. Each falls back
# to the general reader, which says what is wrong with the body.
_FAST_FAILS = (msgspec.DecodeError, UnicodeError, OverflowError, RecursionError)


def parse_json_stats(text: str, known_clusters: Iterable[str] = ()) -> EnvoyStats:
    """Parse ``/stats?format=json``; raises ValueError when it is not that shape."""
    try:
        # The decoded entries are folded as they are: no (name, value) pair built per stat.
        return _fold_json_stats(_STATS_DECODER.decode(text).stats, known_clusters)
    except _FAST_FAILS:
        pass
    return _fold_json_stats(_json_stat_entries(text), known_clusters)


def _json_stat_entries(text: str) -> Iterator[_Stat]:
    """Every usable entry, from a body of any JSON shape."""
    doc = load_json(text, "stats")
    if not isinstance(doc, dict) or not isinstance(doc.get("stats"), list):
        raise ValueError("stats: expected an object with a 'stats' list (/stats?format=json)")
    for entry in doc["stats"]:
        if not isinstance(entry, dict) or "name" not in entry:
            continue  # the {"histograms": ...} entry
        value = _number(entry.get("value", 0))
        if value is not None:
            yield _Stat(str(entry["name"]), value)


def _fold_json_stats(entries: Iterable[_Stat], known_clusters: Iterable[str]) -> EnvoyStats:
    known = set(known_clusters)
    out = EnvoyStats(format="json")
    # Envoy lists a cluster's stats together: the last known name found answers the next stat
    # by one prefix test (``cluster.<name>.``) without the walk over dots. Exactly what the
    # walk would say: that walk found it as the first known prefix, so no shorter prefix of it
    # is known. Most of a big mesh's ~20 stats per cluster take this path.
    prefix, bucket = "", {}
    for entry in entries:
        name, value = entry.name, entry.value
        if name is msgspec.UNSET:  # the {"histograms": ...} entry
            continue
        if prefix and name.startswith(prefix):
            bucket[name[len(prefix):]] = value
        elif name.startswith("cluster.") and not name.startswith("cluster_manager."):
            split = _split_cluster_stat(name[len("cluster."):], known)
            if split:
                found = out.clusters.setdefault(split[0], {})
                found[split[1]] = value
                if split[0] in known:
                    prefix, bucket = f"cluster.{split[0]}.", found
        elif name in _SERVER_DOTTED:
            out.server[name] = value
        elif _RDS_JSON.match(name):
            out.server[RDS_REJECTED] = out.server.get(RDS_REJECTED, 0.0) + value
        elif (m := _FILTER_JSON.match(name)) is not None and m.group(1) in HTTP_FILTER_COUNTERS:
            key = m.group(1)
            out.server[key] = out.server.get(key, 0.0) + value
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _prom_cluster_stat(metric: str, labels: dict[str, str]) -> str:
    stat = metric[len("envoy_cluster_"):]
    m = re.match(r"circuit_breakers_(default|high)_(\w+)$", stat)
    if m:
        return f"circuit_breakers.{m.group(1)}.{m.group(2)}"
    if stat.startswith("outlier_detection_"):
        return "outlier_detection." + stat[len("outlier_detection_"):]
    # Envoy's tag extraction turns upstream_rq_5xx into upstream_rq_xx{envoy_response_code_class="5"}.
    if stat.endswith("rq_xx") and "envoy_response_code_class" in labels:
        return f"{stat[:-2]}{labels['envoy_response_code_class']}xx"
    if stat.endswith("_rq") and "envoy_response_code" in labels:
        return f"{stat}_{labels['envoy_response_code']}"
    return stat


def _prometheus_samples(text: str) -> Iterator[tuple[str, str, dict[str, str], float]]:
    """``(family type, sample name, labels, value)`` of every sample, parsed by prometheus_client.

    A malformed line makes the library's parser stop; then the text is parsed again one line at
    a time (types from the ``# TYPE`` lines seen so far), so one bad or truncated line costs that
    line, not the proxy's stats.
    """
    from prometheus_client.parser import text_string_to_metric_families

    try:
        families = list(text_string_to_metric_families(text))
    except ValueError:
        families = None
    if families is not None:
        # The library names every counter sample ``<family>_total`` (OpenMetrics); Envoy's own
        # name is the one its ``# TYPE`` line declares (update_attempt, but upstream_rq_total).
        declared = {line.split()[2] for line in text.splitlines()
                    if line.startswith("# TYPE ") and len(line.split()) >= 4}
        for family in families:
            for sample in family.samples:
                name = sample.name
                if family.type == "counter" and name == f"{family.name}_total" and family.name in declared:
                    name = family.name
                yield family.type, name, sample.labels, sample.value
        return
    types: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0] == "#" and parts[1] == "TYPE":
            types[parts[2]] = parts[3]
        if not parts or parts[0].startswith("#"):
            continue
        try:
            parsed = list(text_string_to_metric_families(line + "\n"))
        except ValueError:
            continue
        for family in parsed:
            for sample in family.samples:
                base = sample.name.rsplit("_", 1)[0] if sample.name.endswith(("_bucket", "_sum", "_count")) else ""
                yield types.get(sample.name) or types.get(base, "unknown"), sample.name, sample.labels, sample.value


def parse_prometheus_stats(text: str) -> EnvoyStats:
    """Parse ``/stats/prometheus`` text; raises ValueError when no sample line parses."""
    out = EnvoyStats(format="prometheus")
    samples = 0
    for kind, metric, labels, raw_value in _prometheus_samples(text):
        samples += 1
        if kind in ("histogram", "summary"):
            if "envoy_cluster_name" in labels:  # still proves the cluster exists
                out.clusters.setdefault(labels["envoy_cluster_name"], {})
            continue
        value = _number(raw_value)
        if value is None:
            continue
        if metric in SERVER_STATS:
            out.server[SERVER_STATS[metric]] = value
        elif metric == "envoy_http_rds_update_rejected":
            out.server[RDS_REJECTED] = out.server.get(RDS_REJECTED, 0.0) + value
        elif metric in _FILTER_PROMETHEUS:
            key = _FILTER_PROMETHEUS[metric]
            out.server[key] = out.server.get(key, 0.0) + value
        elif metric.startswith("envoy_cluster_") and "envoy_cluster_name" in labels:
            stat = _prom_cluster_stat(metric, labels)
            bucket = out.clusters.setdefault(labels["envoy_cluster_name"], {})
            bucket[stat] = bucket.get(stat, 0.0) + value
    if samples == 0:
        raise ValueError("stats: no Prometheus samples found (expected /stats/prometheus text)")
    return out


def parse_stats(text: str, known_clusters: Iterable[str] = ()) -> EnvoyStats:
    """Either format, told apart by the first non-blank character."""
    if text.lstrip()[:1] == "{":
        return parse_json_stats(text, known_clusters)
    return parse_prometheus_stats(text)
