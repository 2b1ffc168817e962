"""``/ready`` and ``/server_info``, and who a proxy belongs to (pod, namespace, workload)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from meshobs.model import WorkloadRef

from .clusters import pick

# Kubernetes generated-name suffixes: "<rs-hash>-<pod-suffix>" for Deployments (the hash is the
# pod-template-hash, up to 10 chars), "-<suffix>" for DaemonSets/Jobs, "-<ordinal>" for StatefulSets.
_DEPLOYMENT_POD = re.compile(r"^(?P<base>.+)-[a-z0-9]{6,10}-[a-z0-9]{5}$")
_SUFFIXED_POD = re.compile(r"^(?P<base>.+)-[a-z0-9]{5}$")
_SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[\w.]+)?$")


@dataclass(frozen=True)
class ServerInfo:
    version: str | None = None
    state: str | None = None
    uptime_s: float | None = None
    node: dict[str, Any] | None = None


def parse_server_info(text: str) -> ServerInfo:
    """Parse ``/server_info``; raises ValueError when it is not that shape."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"server_info: not valid JSON ({exc.msg} at char {exc.pos})") from None
    if not isinstance(doc, dict):
        raise ValueError("server_info: expected a JSON object")
    uptime = pick(doc, "uptime_current_epoch")
    return ServerInfo(
        version=short_version(doc.get("version")),
        state=doc.get("state"),
        uptime_s=_seconds(uptime),
        node=doc.get("node") if isinstance(doc.get("node"), dict) else None,
    )


def _seconds(value: Any) -> float | None:
    if isinstance(value, str) and value.endswith("s"):
        try:
            return float(value[:-1])
        except ValueError:
            return None
    if isinstance(value, (int, float)):
        return float(value)
    return None


def short_version(text: Any) -> str | None:
    """``sha/1.12.0-dev/Clean/RELEASE/BoringSSL`` -> ``1.12.0-dev``; other strings unchanged."""
    if not isinstance(text, str) or not text:
        return None
    for part in text.split("/"):
        if _SEMVER.match(part):
            return part
    return text


def node_version(node: dict[str, Any]) -> str | None:
    """The Envoy version a node announces (``user_agent_build_version`` or ``build_version``)."""
    build = pick(node, "user_agent_build_version")
    if isinstance(build, dict):
        v = build.get("version") or {}
        if isinstance(v, dict) and "major_number" in v:
            patch = v.get("patch", 0)
            return f"{v.get('major_number', 0)}.{v.get('minor_number', 0)}.{patch}"
    return short_version(pick(node, "build_version"))


SERVER_STATES = ("LIVE", "DRAINING", "PRE_INITIALIZING", "INITIALIZING")


def is_ready(status: int | None, body: str | None) -> bool | None:
    """``/ready``: 200 with body ``LIVE`` is ready; 503 with a server state (``DRAINING``,
    ``PRE_INITIALIZING``...) is not. Anything else (429, 500, a proxy in between, garbage) is
    no evidence either way: None, "could not check"."""
    state = (body or "").strip().upper()
    if status == 200 and state == "LIVE":
        return True
    if status == 503 and state in SERVER_STATES:
        return False
    return None


def pod_from_node_id(node_id: str | None) -> tuple[str, str] | None:
    """``sidecar~10.0.0.1~cart-v1-7bbd79f8fd-k6j79.default~default.svc.cluster.local`` -> (pod, ns)."""
    if not node_id:
        return None
    parts = node_id.split("~")
    if len(parts) != 4 or "." not in parts[2]:
        return None
    pod, ns = parts[2].split(".", 1)
    return pod, ns.split(".", 1)[0]


def workload_name_from_pod(pod: str) -> str:
    """Best guess of a pod's workload from its generated name (strips the ReplicaSet hash)."""
    for pattern in (_DEPLOYMENT_POD, _SUFFIXED_POD):
        m = pattern.match(pod)
        if m:
            return m.group("base")
    return pod


def workload_of(meta: dict[str, Any], node: dict[str, Any] | None, pod: str | None,
                namespace: str | None) -> WorkloadRef | None:
    """The proxy's workload: from the target's meta, Istio's node metadata, then the pod name."""
    if not namespace:
        return None
    if meta.get("workload"):
        return WorkloadRef(namespace, str(meta["workload"]))
    md = (node or {}).get("metadata") or {}
    if isinstance(md, dict) and md.get("WORKLOAD_NAME"):
        return WorkloadRef(namespace, str(md["WORKLOAD_NAME"]))
    if pod:
        return WorkloadRef(namespace, workload_name_from_pod(pod))
    return None
