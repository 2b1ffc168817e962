"""Run the collectors (live) or replay a bundle, and build the MeshSnapshot.

Each collector module in ``meshobs.collectors`` exposes::

    KIND: str
    def from_config(config: Config, prior: list[RawSource]) -> Collector | None
    def normalize(raw: RawSource, ctx: NormalizeContext) -> SnapshotPart

``prior`` holds what the Kubernetes-side collectors fetched first (Envoy discovers its targets
from the pods). Modules are imported lazily so a command only pays for the sources it uses.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from typing import Any

from . import __version__
from .bundle import Bundle, config_for_bundle
from .config import Config
from .model import Mesh, MeshSnapshot, SnapshotPart, SourceState, SourceStatus
from .raw import RawSource, iso, utc_now
from .redact import redact_text, register_config_secrets
from .telemetry import timed

# kind -> module. Order matters for fetch: the first group runs before the second.
FIRST = ("kubernetes", "manifests")
SECOND = ("prometheus", "envoy", "jaeger", "cloudwatch", "xray", "appmesh")
MODULES = {
    "kubernetes": "meshobs.collectors.kubernetes",
    "manifests": "meshobs.collectors.manifests",
    "prometheus": "meshobs.collectors.prometheus",
    "envoy": "meshobs.collectors.envoy",
    "jaeger": "meshobs.collectors.jaeger",
    "cloudwatch": "meshobs.collectors.cloudwatch",
    "xray": "meshobs.collectors.xray",
    "appmesh": "meshobs.collectors.appmesh",
}

Progress = Callable[[str], None]


def _module(kind: str) -> Any:
    return importlib.import_module(MODULES[kind])


def configured_kinds(config: Config) -> list[str]:
    sources = config.sources
    kinds = [k for k in FIRST + SECOND if k in sources and k != "manifests"]
    if sources.get("kubernetes", {}).get("manifests"):
        kinds.insert(0, "manifests")
    return kinds


def _fetch_one(kind: str, config: Config, prior: list[RawSource], ctx: Any,
               progress: Progress | None) -> list[RawSource]:
    try:
        module = _module(kind)
    except ImportError as exc:  # a source this build does not support yet
        return [RawSource(name=kind, kind=kind, error=f"{kind} collector unavailable: {exc}")]
    try:
        collector = module.from_config(config, prior)
        if collector is None:
            return []
        if progress:
            progress(f"fetching {kind}")
        with timed("fetch", kind, source=kind):
            raws: list[RawSource] = collector.fetch(ctx)
        return raws
    except Exception as exc:  # the isolation boundary: one broken source never sinks the run
        if _debug():
            raise
        return [RawSource(name=kind, kind=kind,
                          error=f"{kind}: collector failed: {type(exc).__name__}: {redact_text(str(exc))} "
                                f"(run with --debug for the traceback)")]


def _debug() -> bool:
    """--debug asks for tracebacks instead of 'collector failed' statuses."""
    import click

    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.find_root().params.get("debug"))


def collect(config: Config, *, at: datetime | None = None, progress: Progress | None = None) -> Bundle:
    """Fetch every configured source; never raises for an unreachable or failing source."""
    from meshobs.collectors.base import FetchContext

    register_config_secrets(config.raw)  # a server echoing a credential back gets it masked
    when = at or config.time or utc_now()
    ctx = FetchContext(time=when, window_s=config.window_s, config=config)
    kinds = configured_kinds(config)
    first: list[RawSource] = []
    for kind in (k for k in kinds if k in FIRST):
        first.extend(_fetch_one(kind, config, [], ctx, progress))
    second_kinds = [k for k in kinds if k in SECOND]
    second: list[RawSource] = []
    if second_kinds:
        with ThreadPoolExecutor(max_workers=len(second_kinds)) as pool:
            futures = [pool.submit(_fetch_one, k, config, first, ctx, progress) for k in second_kinds]
            for f in futures:
                second.extend(f.result())
    return Bundle(time=when, window_s=config.window_s, sources=first + second,
                  config=config_for_bundle(config.raw, config.path),
                  created=iso(utc_now()), meshobs_version=__version__)


def normalize_source(raw: RawSource, time: datetime, window_s: float) -> SnapshotPart:
    """Normalise one raw source; a malformed payload becomes that source's error status."""
    from meshobs.collectors.base import NormalizeContext

    if raw.error:
        return SnapshotPart(sources=[SourceStatus(raw.name, SourceState.ERROR, redact_text(raw.error),
                                                  raw.duration_s, raw.kind)])
    ctx = NormalizeContext(time=time, window_s=window_s)
    # Per kind, not per source: a mesh of 1,000 proxies should print one envoy row, not 1,000.
    with timed("normalize", raw.kind, source=raw.name):
        try:
            part: SnapshotPart = _module(raw.kind).normalize(raw, ctx)
        except Exception as exc:  # the isolation boundary: a malformed payload costs its source only
            if _debug() and not isinstance(exc, ValueError):
                raise
            reason = str(exc) if isinstance(exc, ValueError) else f"unexpected payload shape ({exc!r})"
            part = SnapshotPart(sources=[SourceStatus(raw.name, SourceState.ERROR,
                                                      reason, raw.duration_s, raw.kind)])
    # Messages quote URLs; a URL may carry user:password or a token. Every report prints the
    # source's name beside its message, so a message that starts with the name loses it.
    part.sources = [replace(s, message=redact_text(s.message.removeprefix(f"{s.name}: ")),
                            problems=tuple(redact_text(p) for p in s.problems))
                    if s.message or s.problems else s
                    for s in part.sources]
    return part


def build_snapshot(bundle: Bundle, origin: str = "") -> MeshSnapshot:
    """Bundle (live or recorded) -> MeshSnapshot, through each source's ``normalize``."""
    from .assemble import assemble

    parts = [normalize_source(raw, bundle.time, bundle.window_s) for raw in bundle.sources]
    configured = str(bundle.config.get("mesh", "auto"))
    mesh = Mesh(configured) if configured in ("istio", "appmesh") else Mesh.UNKNOWN
    return assemble(SnapshotPart.merge(parts), time=bundle.time, window_s=bundle.window_s,
                    origin=origin, mesh=mesh)
