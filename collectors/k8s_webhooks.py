"""Istio's sidecar injector webhooks, from MutatingWebhookConfiguration objects.

Only the webhooks whose name ends in ``sidecar-injector.istio.io`` (Istio's charts name them
``namespace.``, ``object.``, ``rev.namespace.``, ``rev.object.`` ...) and only what says which
pods they serve and where they call: never the ``caBundle``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshobs.model import InjectionWebhook, freeze

INJECTOR_SUFFIX = "sidecar-injector.istio.io"


def injection_webhooks(obj: Mapping[str, Any]) -> list[InjectionWebhook]:
    """The sidecar injector webhooks of one MutatingWebhookConfiguration (none for others)."""
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    revision = labels.get("istio.io/rev") or labels.get("istio.io/tag")
    out = []
    for hook in obj.get("webhooks") or []:
        if not isinstance(hook, Mapping) or not str(hook.get("name", "")).endswith(INJECTOR_SUFFIX):
            continue
        client = hook.get("clientConfig") or {}
        svc = client.get("service") if isinstance(client.get("service"), Mapping) else None
        out.append(InjectionWebhook(
            configuration=str(meta.get("name", "")), name=str(hook["name"]),
            revision=str(revision) if revision else None,
            service=f"{svc.get('namespace', '')}/{svc.get('name', '')}" if svc else None,
            url=str(client["url"]) if client.get("url") else None,
            namespace_selector=freeze(hook.get("namespaceSelector") or {}),
            object_selector=freeze(hook.get("objectSelector") or {}),
            failure_policy=hook.get("failurePolicy")))
    return out
