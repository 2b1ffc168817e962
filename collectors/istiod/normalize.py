"""istiod's payloads -> IstiodReplicas, XdsSync rows and the ``istiod`` SourceStatus. Pure.

``/ready`` answers 200 (ready) or 503 with an empty body (istiod's ``istiodReadyHandler``).
``/debug/syncz`` is a JSON list of ``SyncStatus`` (pilot/pkg/xds/debug.go), one per proxy
connected to that replica: ``proxy``, ``proxy_type``, ``istio_version``, ``cluster_id`` and a
``<type>_sent`` / ``<type>_acked`` nonce per xDS type (cluster, listener, route, endpoint).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshobs.model import (
    IstiodReplica,
    SnapshotPart,
    SourceState,
    SourceStatus,
    XdsSync,
    frozen_map,
)
from meshobs.raw import Payload, RawSource

from ..base import NormalizeContext
from .discovery import running_istiod_pods

# syncz's field prefix -> the xDS short name.
SYNCZ_TYPES = {"cluster": "cds", "listener": "lds", "route": "rds", "endpoint": "eds"}


def _sync_rows(doc: Any, replica: str, key: str) -> list[XdsSync]:
    if not isinstance(doc, list):
        raise ValueError(f"{key}: expected a JSON list of proxy sync statuses, got {type(doc).__name__}")
    rows = []
    for item in doc:
        if not isinstance(item, Mapping) or not item.get("proxy"):
            continue
        sent = {x: str(item.get(f"{field}_sent") or "") for field, x in SYNCZ_TYPES.items()}
        acked = {x: str(item.get(f"{field}_acked") or "") for field, x in SYNCZ_TYPES.items()}
        rows.append(XdsSync(proxy=str(item["proxy"]), istiod=replica, sent=frozen_map(sent),
                            acked=frozen_map(acked), proxy_type=item.get("proxy_type") or None,
                            istio_version=item.get("istio_version") or None,
                            cluster_id=item.get("cluster_id") or None))
    return rows


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _image_tag(pod: Mapping[str, Any]) -> str | None:
    """The discovery container's image tag (``1.24.2`` of ``pilot:1.24.2@sha256:...``): what
    istiod's version is when it is not asked."""
    from meshobs.images import parse_image

    for c in _dicts(_map(pod.get("spec")).get("containers")):
        if c.get("name") == "discovery" and c.get("image"):
            return parse_image(str(c["image"])).tag
    return None


def _pod_replicas(payload: Payload) -> list[IstiodReplica]:
    """What the discovery's pod list says of each replica: revision, version, Ready."""
    out = []
    for pod in running_istiod_pods(payload.json()):
        md, status = _map(pod.get("metadata")), _map(pod.get("status"))
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in _dicts(status.get("conditions")))
        out.append(IstiodReplica(pod=str(md["name"]), namespace=str(md.get("namespace") or ""),
                                 revision=str(_map(md.get("labels")).get("istio.io/rev") or "default"),
                                 version=_image_tag(pod), pod_ready=ready, sources=("kubernetes",)))
    return out


def _ready(payload: Payload | None) -> tuple[bool | None, str, str]:
    """(ready, detail, unreachable) from the /ready payload."""
    if payload is None:
        return None, "", ""
    if payload.error:
        return None, payload.error, payload.error
    if payload.status == 200:
        return True, "", ""
    body = (payload.body or "").strip()
    return False, f"/ready answered HTTP {payload.status}" + (f": {body[:80]}" if body else ""), ""


def normalize(raw: RawSource, ctx: NormalizeContext) -> SnapshotPart:
    """Replicas and their syncz rows; the source is in error only when no replica answered."""
    part = SnapshotPart()
    if raw.error:
        part.sources.append(SourceStatus(raw.name, SourceState.ERROR, raw.error, raw.duration_s, raw.kind))
        return part
    by_pod: dict[str, list[Payload]] = {}
    pods = raw.get("pods")
    if pods is not None and not pods.ok:
        part.sources.append(SourceStatus(raw.name, SourceState.ERROR,
                                         f"could not find istiod's pods: {pods.failure()}", raw.duration_s, raw.kind))
        return part
    for p in raw.payloads:
        if p.key != "pods":
            by_pod.setdefault(str(p.meta.get("pod") or p.key.split("/", 1)[0]), []).append(p)
    listed = {r.pod: r for r in _pod_replicas(pods)} if pods is not None else {}
    problems: list[str] = []
    answered = 0
    for pod, payloads in sorted(by_pod.items()):
        ready_payload = next((p for p in payloads if p.key == f"{pod}/ready"), None)
        ready, detail, unreachable = _ready(ready_payload)
        syncz = [p for p in payloads if p.key.split("@", 1)[0] == f"{pod}/syncz"]
        asked: list[str] = []
        syncz_ok: bool | None = None if not syncz else True
        for p in syncz:
            reason = p.failure()
            if reason:
                syncz_ok = False
                problems.append(f"{pod}: /debug/syncz: {_syncz_reason(p, reason)}")
                continue
            part.xds_sync.extend(_sync_rows(p.json(), pod, p.key))
            asked.append(p.key.split("@", 1)[1] if "@" in p.key else "")
        if unreachable:
            problems.append(f"{pod}: {unreachable}")
        if ready is not None or syncz_ok:
            answered += 1
        namespace = str((ready_payload.meta if ready_payload else {}).get("namespace")
                        or raw.meta.get("namespace") or "istio-system")
        seen = listed.pop(pod, None)
        replica = IstiodReplica(
            pod=pod, namespace=seen.namespace if seen else namespace, ready=ready, ready_detail=detail,
            syncz=syncz_ok, unreachable=unreachable, sources=("istiod",),
            syncz_namespaces=None if syncz_ok is not True else (() if "" in asked else tuple(sorted(asked))),
            revision=seen.revision if seen else None, version=seen.version if seen else None,
            pod_ready=seen.pod_ready if seen else None)
        part.istiod.append(replica)
    part.istiod.extend(listed.values())  # listed but not asked (the deadline passed)
    part.sources.append(_status(raw, answered, len(by_pod), problems))
    return part


def _syncz_reason(payload: Payload, reason: str) -> str:
    if payload.status == 404:
        return (f"{reason} (this istiod does not serve syncz over HTTP: newer releases answer it over "
                "xDS only; sent vs acked is judged from the proxies' own xDS state)")
    return reason


def _status(raw: RawSource, answered: int, replicas: int, problems: list[str]) -> SourceStatus:
    if replicas == 0:
        note = str(raw.meta.get("note") or "no istiod replica listed")
        return SourceStatus(raw.name, SourceState.NO_DATA, note, raw.duration_s, raw.kind)
    if answered == 0:
        return SourceStatus(raw.name, SourceState.ERROR, "no istiod replica answered: " + "; ".join(problems),
                            raw.duration_s, raw.kind)
    message = f"{answered} of {replicas} replicas answered" + (f"; {'; '.join(problems)}" if problems else "")
    return SourceStatus(raw.name, SourceState.OK, message, raw.duration_s, raw.kind)

