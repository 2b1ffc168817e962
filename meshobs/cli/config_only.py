"""``diagnose -f PATH`` and ``--config-only``: configuration analysis in CI, as people run
``istioctl analyze -f DIR`` before ``kubectl apply``.

``-f`` adds manifest files or directories as ``sources.kubernetes.manifests`` (the source a
configuration-only run already uses); ``--config-only`` keeps only the sources that carry
configuration (Kubernetes, App Mesh) and the checks that judge it, so nothing reaches for
Prometheus or the proxies.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from meshobs.config import Config

from .common import UsageError

CONFIG_SOURCES = ("kubernetes", "appmesh")


def configuration_view(manifests: tuple[str, ...], config_only: bool, replay: bool
                       ) -> Callable[[Config | None], Config | None] | None:
    """A rewrite of the loaded configuration for ``-f`` / ``--config-only``, or None when neither
    is given. ``replay`` (``--from``) reads no source, so only ``-f`` matters then."""
    if not manifests and not config_only:
        return None
    missing = [m for m in manifests if not Path(m).expanduser().exists()]
    if missing:
        raise UsageError(f"-f: no such file or directory: {', '.join(missing)}")
    if replay:
        if manifests:
            raise UsageError("-f reads manifests, --from replays a recorded bundle: pass one of them")
        return None

    def view(config: Config | None) -> Config | None:
        if config is None and not manifests:
            return None  # no configuration at all: the built-in demo, judged by its configuration
        raw = dict(config.raw) if config is not None else {}
        sources = dict(raw.get("sources") or {})
        if config_only:
            sources = {k: v for k, v in sources.items() if k in CONFIG_SOURCES}
        if manifests:
            kubernetes = dict(sources.get("kubernetes") or {})
            kubernetes["manifests"] = [*(kubernetes.get("manifests") or []), *manifests]
            sources["kubernetes"] = kubernetes
        if not sources:
            raise UsageError("--config-only: no configuration source (sources.kubernetes or sources.appmesh) "
                             "in the configuration; pass -f DIR with the manifests to analyze")
        raw["sources"] = sources
        if config is None:
            return Config(raw=raw)
        return Config(raw=raw, path=config.path, window_s=config.window_s, time=config.time, mesh=config.mesh)

    return view


def collection_label(config: Config) -> str:
    """What a collection from the (rewritten) configuration read, for the report's heading: the
    manifest files when they are its only source (nothing live was asked), else "live"."""
    kubernetes = config.section("sources", "kubernetes")
    files = [str(m) for m in kubernetes.get("manifests") or []]
    # The Kubernetes collector's own rule (collectors/kubernetes.py from_config): a section that
    # only lists manifests asks no API server.
    only_files = set(config.sources) == {"kubernetes"} and set(kubernetes) == {"manifests"}
    return f"manifests {', '.join(files)}" if files and only_files else "live"

