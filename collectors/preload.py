"""Import what a live collection's collectors need, once, on one thread, before they need it.

Collectors import their libraries lazily (a replay or ``meshobs --help`` never pays for
``kubernetes`` or ``prometheus_api_client``). In a live run the collectors start together, each
on its own thread, so those imports used to run concurrently, and two threads importing
overlapping packages in different orders can deadlock in the import system: Python detects it
and one of them fails ("_DeadlockError: deadlock detected by _ModuleLock(...)"), which cost a
live ``--all`` at 1,000 services its whole Envoy source (the Envoy thread's scrape reader and
the Prometheus thread both importing ``prometheus_api_client``).

:class:`Preload` imports every configured kind's modules on ONE thread, in the order of
:data:`ORDER` (Prometheus first: its graph query is the longest wait of a live question, so it
goes out first, and the other kinds import while Prometheus evaluates), and each collector's
thread waits for its own kind only (:meth:`Preload.wait`). A collector thread then imports
nothing the preloader has not: ``tests/test_preload.py`` runs a whole live collection in a fresh
interpreter and fails when any collector thread imports a module for the first time.

A module that fails to import is left to fail again where the collector imports it, with its
own error ("collector unavailable"): the preloader only ever saves time.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

# kind -> the modules its fetch and normalize import (lazily, inside functions, or at the top of
# the collector's submodules). Names resolved by ``kubernetes``' lazy packages (k8s_import) are
# listed as the modules that define them.
_KUBERNETES_CLIENT = (
    "kubernetes.client.api_client", "kubernetes.client.configuration", "kubernetes.client.rest",
    "kubernetes.client.exceptions", "kubernetes.config", "kubernetes.config.config_exception",
    "kubernetes.config.kube_config", "kubernetes.config.incluster_config",
)
MODULES: dict[str, tuple[str, ...]] = {
    "prometheus": ("meshobs.collectors.prometheus", "meshobs.collectors.prometheus.fetch",
                   "meshobs.collectors.prometheus.normalize", "meshobs.collectors.prometheus.pilot",
                   "meshobs.collectors.prometheus.graph"),
    "kubernetes": ("meshobs.collectors.kubernetes", *_KUBERNETES_CLIENT,
                   "kubernetes.client.api.core_v1_api", "kubernetes.client.api.apps_v1_api",
                   "kubernetes.client.api.custom_objects_api",
                   "kubernetes.client.api.admissionregistration_v1_api",
                   "meshobs.collectors.k8s_objects", "meshobs.collectors.k8s_secrets",
                   "meshobs.collectors.k8s_webhooks"),
    "manifests": ("meshobs.collectors.manifests",),
    # cryptography: read where a proxy's certificates are (envoy.certs), when they are asked for.
    "envoy": ("meshobs.collectors.envoy", "meshobs.collectors.envoy.fetch", "meshobs.collectors.envoy.scraped",
              "meshobs.collectors.envoy.config_typed",
              "cryptography.x509"),
    "istiod": ("meshobs.collectors.istiod", "meshobs.collectors.envoy.fetch"),
    "jaeger": ("meshobs.collectors.jaeger",),
    "cloudwatch": ("meshobs.collectors.cloudwatch", "boto3", "botocore.config", "botocore.exceptions"),
    "xray": ("meshobs.collectors.xray", "boto3", "botocore.config", "botocore.exceptions"),
    "appmesh": ("meshobs.collectors.appmesh", "boto3", "botocore.config", "botocore.exceptions"),
}
# What a kind imports only in some configurations: (kind, predicate on sources) -> modules.
_PORT_FORWARD = ("meshobs.collectors.envoy.portforward", *_KUBERNETES_CLIENT, "kubernetes.client.api.core_v1_api",
                 "kubernetes.stream", "kubernetes.stream.ws_client")
# Imported first, whatever is configured: what requests imports when it sends its first request
# (netrc, for credentials), on whichever thread sends it.
COMMON = ("requests", "netrc", "urllib3")
ORDER = ("prometheus", "kubernetes", "manifests", "jaeger", "envoy", "istiod", "cloudwatch", "xray", "appmesh")


def modules_for(kind: str, sources: Mapping[str, Any]) -> tuple[str, ...]:
    """The modules ``kind``'s live collection imports with these ``sources`` configured."""
    names = MODULES.get(kind, ())
    if kind in ("envoy", "istiod"):
        section = sources.get(kind) or {}
        # As both collectors' from_config decide: listed targets, else found in Kubernetes and
        # reached through a port-forward.
        if (section.get("discovery") or ("static" if section.get("targets") else "kubernetes")) == "kubernetes":
            names += _PORT_FORWARD
    if kind == "envoy" and isinstance(sources.get("prometheus"), Mapping):
        names += MODULES["prometheus"]  # what Prometheus scraped is read first (envoy.scraped)
    return names


class Preload:
    """One thread importing each kind's modules in :data:`ORDER`, then ``after`` (if given)."""

    def __init__(self, kinds: Iterable[str], sources: Mapping[str, Any],
                 after: Callable[[], None] | None = None) -> None:
        wanted = set(kinds)
        self._kinds = [k for k in ORDER if k in wanted] + sorted(wanted - set(ORDER))
        self._sources = sources
        self._after = after
        self._ready = {kind: threading.Event() for kind in self._kinds}
        self._thread = threading.Thread(target=self._run, name="meshobs-preload", daemon=True)

    def start(self) -> Preload:
        self._thread.start()
        return self

    def wait(self, kind: str, timeout: float | None = None) -> None:
        """Return once ``kind``'s modules are imported (or failed to; or ``timeout`` passed)."""
        event = self._ready.get(kind)
        if event is not None and threading.current_thread() is not self._thread:
            event.wait(timeout)

    def _run(self) -> None:
        try:
            if _lazy_kubernetes_needed(self._kinds, self._sources):
                _lazy_kubernetes()
            for kind in self._kinds:
                for name in (*COMMON, *modules_for(kind, self._sources)):
                    try:
                        importlib.import_module(name)
                    except Exception:  # said by the collector's own import, where it is used
                        continue
                self._ready[kind].set()
        finally:
            # Whatever stopped this thread early, no collector may wait for it: each then
            # imports (and says what is wrong) on its own.
            for event in self._ready.values():
                event.set()
        if self._after is not None:
            self._after()


def _lazy_kubernetes_needed(kinds: list[str], sources: Mapping[str, Any]) -> bool:
    return any(name.startswith("kubernetes") for kind in kinds for name in modules_for(kind, sources))


def _lazy_kubernetes() -> None:
    """The client library without its generated model classes, as the collectors import it."""
    try:
        from meshobs.collectors.k8s_import import lazy_kubernetes

        lazy_kubernetes()
    except Exception:  # the collector's own import says what is wrong
        return
