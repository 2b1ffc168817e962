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
import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import __version__
from .bundle import Bundle, config_for_bundle
from .config import Config
from .model import Mesh, MeshSnapshot, SnapshotPart, SourceState, SourceStatus
from .raw import RawSource, iso, utc_now
from .redact import redact_text, register_config_once
from .telemetry import timed

if TYPE_CHECKING:
    import threading

    from meshobs.collectors.base import Scope
    from meshobs.collectors.preload import Preload
    from meshobs.collectors.silence import ServerRecords
    from meshobs.graph_phase import GraphPhase
    from meshobs.modelcache import Snapshot

# kind -> module. Order matters for fetch: the first group runs before the second.
FIRST = ("kubernetes", "manifests")
SECOND = ("prometheus", "envoy", "istiod", "jaeger", "cloudwatch", "xray", "appmesh")
MODULES = {
    "kubernetes": "meshobs.collectors.kubernetes",
    "manifests": "meshobs.collectors.manifests",
    "prometheus": "meshobs.collectors.prometheus",
    "envoy": "meshobs.collectors.envoy",
    "istiod": "meshobs.collectors.istiod",
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


def _fetched_in(kind: str, ctx: Any) -> bool:
    """Does ``kind`` fetch anything in ``ctx``'s phase? A collector module fetching in one phase
    of a two-phase run only says which in its ``PHASE``."""
    try:
        phase = getattr(_module(kind), "PHASE", None)
    except ImportError:
        return True  # _fetch_one says the collector is unavailable
    return phase is None or bool(ctx.runs(phase))


def _debug() -> bool:
    """--debug asks for tracebacks instead of 'collector failed' statuses."""
    import click

    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.find_root().params.get("debug"))


# Of a run's --timeout, the share kept for normalising, diagnosing and printing after the
# collection's deadline (at least RESERVE_MIN_S, at most RESERVE_MAX_S), and how long the
# orchestrator waits past that deadline for collectors to hand in their "timed out" payloads.
# A mesh-wide run (--all, graph, snapshot, drift) keeps more: it diagnoses every service, and
# --timeout holds for the whole run (meshobs.cli.common.hold_deadline). Measured on the served
# generated-5000 mesh (2 shared cores, load 10-14): 35-40 s from the last answer to the report
# (benchmarks/results/all5k2.md); idle, about 15 s. At least 1 s: when the graph phase runs to the
# deadline, the scoped phase (during which the diagnosis's imports warm up) never starts, and those
# imports, the diagnosis and printing took over 1 s on a loaded 2-core machine -- with 0.3 s
# left (--timeout 3s) the run lost its report to the deadline (tests/test_run_deadline.py).
RESERVE_SHARE, RESERVE_MIN_S, RESERVE_MAX_S = 0.1, 1.0, 5.0
MESH_WIDE_RESERVE_SHARE, MESH_WIDE_RESERVE_MAX_S = 0.25, 60.0
GRACE_S = 0.25

Question = Callable[["GraphPhase"], "Scope | None"]


def fetch_deadline(run_deadline: float | None, mesh_wide: bool = False) -> float | None:
    """When collection must stop so that the run can still end by ``run_deadline``."""
    if run_deadline is None:
        return None
    left = run_deadline - time.monotonic()
    share, most = (MESH_WIDE_RESERVE_SHARE, MESH_WIDE_RESERVE_MAX_S) if mesh_wide else (RESERVE_SHARE, RESERVE_MAX_S)
    reserve = min(most, max(RESERVE_MIN_S, share * left))
    return run_deadline - min(reserve, max(0.0, left) / 2)


def _late_source(kind: str, _started: bool) -> list[RawSource]:
    return [RawSource(name=kind, kind=kind,
                      error="not finished before the run's deadline (--timeout); what it had not "
                            "fetched could not be checked")]


def _failed_source(kind: str, exc: Exception) -> list[RawSource]:
    """A collector's thread raised past _fetch_one's boundary (a --debug run re-raises there:
    then so does this, so the traceback reaches the user)."""
    if _debug():
        raise exc
    return [RawSource(name=kind, kind=kind, error=f"{kind}: collector failed: {type(exc).__name__}: "
                                                  f"{redact_text(str(exc))} (run with --debug for the traceback)")]


def _needs_pods(kind: str, config: Config) -> bool:
    """Envoy discovering its targets in Kubernetes waits for the pod list; nothing else does."""
    envoy = config.sources.get("envoy") or {}
    return kind == "envoy" and (envoy.get("discovery") or ("static" if envoy.get("targets") else
                                                           "kubernetes")) == "kubernetes"


def _fetch_phase(config: Config, ctx: Any, prior: list[RawSource], progress: Progress | None,
                 preload: Preload, finish: Callable[[RawSource], None] | None = None,
                 answered: Callable[[], None] | None = None, returned: dict[str, float] | None = None,
                 not_asked: Callable[[str], list[RawSource] | None] | None = None) -> list[RawSource]:
    """One phase: every collector at once on daemon threads, except Envoy discovering its
    targets in the pods, which starts when the Kubernetes-side sources are done. Each starts
    once ``preload`` has imported its modules. The phase ends at the collection deadline with
    what has come in. ``finish`` is called on each source's thread as soon as its fetch returns
    (while the other sources are still fetching); ``answered`` once the last fetch has returned
    (before its ``finish``). ``returned`` gets, per kind, when its fetch returned
    (``time.monotonic()``); a kind for which ``not_asked`` gives sources is not fetched: they
    stand for it."""
    import threading

    from meshobs.collectors.workers import fan_out

    kinds = configured_kinds(config)
    wait = None if ctx.deadline is None else ctx.deadline + GRACE_S
    first_kinds = [k for k in kinds if k in FIRST]
    first: dict[str, list[RawSource]] = {}
    lock, first_done, left = threading.Lock(), threading.Event(), [len(kinds)]
    if not first_kinds:
        first_done.set()

    def run(kind: str) -> list[RawSource]:
        raws = not_asked(kind) if not_asked is not None else None
        if raws is None:
            preload.wait(kind, None if wait is None else max(0.0, wait - time.monotonic()))
            known = prior
            if not _fetched_in(kind, ctx):
                # Not built, nor waiting for the pods: Envoy's collector lists every static
                # target (7,500 at 5,000 services) to fetch nothing in the graph phase.
                raws = []
            else:
                if _needs_pods(kind, config):
                    first_done.wait(None if wait is None else max(0.0, wait - time.monotonic()))
                    with lock:
                        known = prior + [r for k in first_kinds for r in first.get(k, [])]
                raws = _fetch_one(kind, config, known, ctx, progress)
        if returned is not None:
            returned[kind] = time.monotonic()
        with lock:
            left[0] -= 1
            last = left[0] == 0
        if last and answered is not None:
            answered()
        if kind in first_kinds:
            with lock:
                first[kind] = raws
                if len(first) == len(first_kinds):
                    first_done.set()
        if finish is not None:  # after Envoy may start: it waits for the pods, not for this
            for raw in raws:
                finish(raw)
        return raws

    groups = fan_out(run, kinds, workers=max(1, len(kinds)), deadline=wait,
                     late=_late_source, failed=_failed_source, name="collect")
    return [r for group in groups for r in group]


def merge_phases(graph: list[RawSource], scoped: list[RawSource]) -> list[RawSource]:
    """The scoped phase's payloads appended to the graph phase's RawSource of the same name, so
    one normalize call sees both; a payload key the graph phase already has is kept from there.
    A source that failed as a whole in one phase stays a separate source (``<name>:scoped``),
    so the other phase's answers are not thrown away with it."""
    out = [RawSource(r.name, r.kind, list(r.payloads), dict(r.meta), r.error, r.duration_s, r.part) for r in graph]
    by_name = {r.name: r for r in out}
    for r in scoped:
        mine = by_name.get(r.name)
        if mine is None:
            out.append(r)
            by_name[r.name] = r
        elif mine.error or r.error:
            # The same failure again (no kubeconfig, connection refused) is one problem, said once.
            repeated = bool(mine.error) and r.error == mine.error and not r.payloads
            if (r.error or r.payloads) and not repeated:
                out.append(RawSource(f"{r.name}:scoped", r.kind, r.payloads, r.meta, r.error, r.duration_s))
        else:
            have = {p.key for p in mine.payloads}
            added = [p for p in r.payloads if p.key not in have]
            if added:
                if mine.part is not None:
                    mine.earlier = (mine.part, len(mine.payloads))
                mine.payloads.extend(added)
                mine.part = None  # normalised again, with the scoped payloads
            mine.meta.update({k: v for k, v in r.meta.items() if k not in mine.meta})
            mine.duration_s += r.duration_s
    return out


def collect(config: Config, *, at: datetime | None = None, progress: Progress | None = None,
            deadline: float | None = None, needs: frozenset[str] | None = None,
            question: Question | None = None, keep_raw: bool = True,
            imported: Callable[[threading.Event], None] | None = None) -> Bundle:
    """Fetch every configured source; never raises for an unreachable or failing source.

    ``deadline`` (``time.monotonic()``) is the whole run's: collection stops a little before it
    (:func:`fetch_deadline`), and whatever has not answered by then is reported as such.
    ``needs`` narrows what collectors ask for (see ``FetchContext.needs``). With ``question``
    the collection runs in two phases: "graph" (the cheap mesh-wide part), then ``question``
    (which may raise, e.g. for an unknown service, before anything heavy is fetched) turns that
    graph into the Scope the "scoped" phase collects; the Scope is recorded in the bundle.
    ``keep_raw=False`` (no bundle will be written): sources may be normalised as they arrive
    and their bodies dropped (``FetchContext.digest``); the bundle then only builds a snapshot.
    The collectors' modules are imported first, on one thread (:mod:`meshobs.collectors.preload`);
    ``imported(waiting)`` is called on that thread once they are, to do more work while the
    backends answer (the diagnosis's imports): ``waiting`` is set while the collection only
    waits for its backends, and clear while it is busy on the critical path between its phases
    (normalising the graph phase's last answer, assembling the graph, resolving the question),
    where work on another thread would slow it down (one interpreter lock).
    """
    import threading

    import click

    from meshobs.collectors.base import FetchContext
    from meshobs.collectors.netbound import RunLimits, run_limits
    from meshobs.collectors.preload import Preload
    from meshobs.graph_phase import GraphPhase

    register_config_once(config.raw)  # a server echoing a credential back gets it masked
    when = at or config.time or utc_now()
    until = fetch_deadline(deadline, mesh_wide=question is None)
    limits = RunLimits(deadline=until, max_bytes=max_response_bytes(config))
    ctx = FetchContext(time=when, window_s=config.window_s, config=config, deadline=until, needs=needs,
                       digest=None if keep_raw else (lambda raw: _digest(raw, when, config.window_s)))
    scope = None
    from .gc_pause import gc_paused

    waiting, switching, graph_over = threading.Event(), threading.Lock(), [False]
    waiting.set()

    def busy() -> None:  # the graph phase's last answer is in (on its fetch thread)
        with switching:
            if not graph_over[0]:  # not a fetch returning after the phase's deadline
                waiting.clear()

    # The cycle collector paused while collecting: the fetch threads decode megabytes of JSON
    # (acyclic) and import the clients (kubernetes: thousands of classes) while the heap grows;
    # its passes cost a live diagnose SERVICE at 1,000 services about 0.4 s, none of it garbage.
    with run_limits(limits), _tls_warnings(config), gc_paused():
        preload = Preload(configured_kinds(config), config.sources,
                          after=None if imported is None else lambda: imported(waiting)).start()
        if question is None:
            sources = _fetch_phase(config, ctx, [], progress, preload)
        else:
            # Read once, each source on its fetch thread as it arrives (a source the scoped phase
            # adds nothing to is reused): Prometheus's edges are read while the pods are still
            # being listed, not after (0.3 s of a served 1,000-service mesh's critical path), and
            # as edge keys only (meshobs.graph_phase: the question normalises the few edges it
            # reads; the scoped phase's answers are normalised with the graph's, as before).
            phase = GraphPhase(when, config.window_s, config.raw)
            returned: dict[str, float] = {}
            try:
                graph = _fetch_phase(config, replace(ctx, phase="graph"), [], progress, preload,
                                     finish=phase.read, answered=busy, returned=returned)
                scope = question(phase.done(graph))
                if gaps := graph_gaps(graph):
                    # A graph missing one of its edge queries draws a wrong neighbourhood (only
                    # the TCP edges when the HTTP query timed out), and the narrowed run would
                    # look complete: collect what a mesh-wide question collects, and say why.
                    asked = f"{scope.target}'s neighbourhood" if scope is not None else "a neighbourhood"
                    click.echo(redact_text(f"meshobs: warning: the call graph is incomplete ({'; '.join(gaps)}): "
                                           f"collecting the whole mesh, not {asked}"), err=True)
                    scope = None
            finally:
                with switching:
                    graph_over[0] = True
                    waiting.set()
            early = None if keep_raw or _debug() else EarlyParts(graph, when, config.window_s)
            scoped = _fetch_phase(config, replace(ctx, phase="scoped", scope=scope),
                                  [r for r in graph if r.kind in FIRST], progress, preload,
                                  not_asked=_not_asked(configured_kinds(config), graph, returned, until,
                                                       ctx.servers),
                                  finish=None if early is None else early.read)
            sources = merge_phases(graph, scoped)
            if early is not None:
                early.hand_over(sources, scoped)
    return Bundle(time=when, window_s=config.window_s, sources=sources,
                  config=config_for_bundle(config.raw, config.path),
                  created=iso(utc_now()), meshobs_version=__version__,
                  scope=scope_to_dict(scope) if scope is not None else None)


def _not_asked(kinds: list[str], graph: list[RawSource], returned: dict[str, float],
               until: float | None, servers: ServerRecords) -> Callable[[str], list[RawSource] | None] | None:
    """What the scoped phase does not ask, and why: every source when the graph phase ran into
    the deadline (:func:`_held_up`), and a graph source the run's record says stopped answering
    (:func:`_silent`). None when every source is asked."""
    held_up = _held_up(kinds, graph, returned, until)
    silent = _silent(graph, servers)
    if held_up is None and not silent:
        return None

    def instead(kind: str) -> list[RawSource] | None:
        if kind in silent:
            return [RawSource(name=r.name, kind=r.kind, meta={"scoped_not_asked": silent[kind]})
                    for r in graph if r.kind == kind]
        return held_up(kind) if held_up is not None else None

    return instead


def _silent(graph: list[RawSource], servers: ServerRecords) -> dict[str, str]:
    """The graph phase's Prometheus sources whose server the run's record (``servers``:
    :mod:`meshobs.collectors.silence`) says accepted the queries and answered none before their
    timeout (a hung server, a proxy that holds requests): asking the scoped phase's queries too
    would cost the same timeout again for each wave of them (a hung Prometheus held a live
    ``diagnose SERVICE`` five timeouts, 50 s by default, for nothing). Kind -> why. A server that
    answered anything (even an error), or refused the connection (already fast), is asked."""
    out: dict[str, str] = {}
    for raw in graph:
        url = raw.meta.get("url")
        if raw.kind != "prometheus" or raw.error or not isinstance(url, str):
            continue
        why = servers.of(url).silent()
        if why is not None:
            out[raw.kind] = f"{why}: the scoped phase did not ask the server again"
    return out


def _held_up(kinds: list[str], graph: list[RawSource], returned: dict[str, float],
             until: float | None) -> Callable[[str], list[RawSource] | None] | None:
    """When the graph phase ran into the collection's deadline, the sources only the scoped
    phase asks (Envoy, Jaeger, ...) are not asked at all. Each collector would say so in its own
    words, with its own hint ("raise sources.envoy.concurrency", "check sources.jaeger.url"),
    blaming itself for time a graph source took: this names that source instead. None when
    time is left, or when no graph source ran to the deadline."""
    if until is None or time.monotonic() < until:
        return None
    in_graph = {r.kind for r in graph}
    # A fetch bounded by the deadline returns at it (a hung server), one cut off never returns.
    slow = [k for k in kinds if k in in_graph and returned.get(k, until) >= until - GRACE_S]
    if not slow:
        return None
    names = " and ".join(slow)
    why = (f"not asked: the run's deadline (--timeout) passed while the call graph waited for {names} "
           f"(see {'their statuses' if len(slow) > 1 else 'its status'}); this source is asked once the "
           f"graph is drawn: raise --timeout, or fix {names}")

    def instead(kind: str) -> list[RawSource] | None:
        return None if kind in in_graph else [RawSource(name=kind, kind=kind, error=why)]

    return instead


class EarlyParts:
    """A scoped question's sources normalised on their fetch threads as they arrive, not on the
    main thread once the last one has: each with its graph-phase payloads, as
    :func:`merge_phases` merges them and :func:`normalize_source` reads them afterwards.

    The scoped phase ends with the proxies of the neighbourhood (Envoy's fan-out, hundreds of
    admin requests for a wide one), seconds after Kubernetes and Prometheus have answered;
    their normalising (the neighbourhood's pods and mesh configuration, its services' series:
    0.3 s of CPU each at 123 services of a 5,000-service mesh) then runs while the proxies are
    still being asked, instead of after them on the critical path. Envoy's proxies are normalised
    as they arrive already (``FetchContext.digest``). A part is handed over only to the source
    it was made from: the same payloads, meta and timing (a source cut off by the deadline, one
    the scoped phase returned twice, or one the graph phase did not ask, is normalised
    afterwards as before)."""

    def __init__(self, graph: list[RawSource], time: datetime, window_s: float) -> None:
        import threading

        self.graph = {r.name: r for r in graph}
        self.time, self.window_s = time, window_s
        self.made: dict[str, RawSource] = {}
        self.lock = threading.Lock()

    def read(self, raw: RawSource) -> None:
        """Merge and normalise one scoped source (on its fetch thread; never raises: whatever
        goes wrong here is normalised afterwards, on the main thread, as before)."""
        mine = self.graph.get(raw.name)
        if mine is None or raw.part is not None:
            return  # nothing to merge (Envoy's proxies are normalised as they arrive already)
        try:
            merged = merge_phases([mine], [raw])
            if len(merged) != 1:
                return  # a failure kept apart from the graph phase's answers
            made = merged[0]
            if made.part is None:
                made.part = normalize_source(made, self.time, self.window_s)
        except Exception:  # the main thread normalises it again, and says what failed
            return
        with self.lock:
            self.made[raw.name] = made

    def hand_over(self, sources: list[RawSource], scoped: list[RawSource]) -> None:
        """Give each merged source of the run the part made of the very same inputs."""
        with self.lock:
            made = dict(self.made)
        once = Counter(r.name for r in scoped)
        for source in sources:
            early = made.get(source.name)
            if (early is None or once[source.name] != 1 or source.part is not None
                    or len(early.payloads) != len(source.payloads)
                    or any(a is not b for a, b in zip(early.payloads, source.payloads, strict=True))
                    or (early.error, early.meta, early.duration_s) != (source.error, source.meta, source.duration_s)):
                continue
            source.part, source.earlier = early.part, None


def graph_gaps(graph: list[RawSource]) -> list[str]:
    """Why the graph phase's call graph may lack edges: each edge query (``promql.GRAPH_EDGE_QUERIES``)
    a Prometheus source sent and got no answer to, while its other queries answered. Empty when
    every one answered, or when none of the source's did (unreachable: its checks say so, and
    without edges no neighbourhood is drawn)."""
    from meshobs.collectors.promql import GRAPH_EDGE_QUERIES

    gaps = []
    for raw in graph:
        if raw.kind != "prometheus" or all(p.failure() for p in raw.payloads):
            continue
        for name in GRAPH_EDGE_QUERIES:
            payload = raw.get(f"query:{name}")
            if payload is not None and (why := payload.failure()) is not None:
                gaps.append(why if name in why else f"query {name}: {why}")  # as the status says it
    return gaps


def _digest(raw: RawSource, time: datetime, window_s: float) -> RawSource:
    raw.part = normalize_source(raw, time, window_s)
    raw.drop_bodies()
    return raw


def max_response_bytes(config: Config) -> int:
    from meshobs.collectors.netbound import DEFAULT_MAX_RESPONSE_MB

    return int(float(config.raw.get("max_response_mb") or DEFAULT_MAX_RESPONSE_MB) * 1024 * 1024)


@contextmanager
def _tls_warnings(config: Config) -> Iterator[None]:
    """One line per source whose TLS verification is off, instead of urllib3's warning per
    request (30 lines for a small mesh)."""
    import warnings

    import click

    for line in config.tls_warnings():
        click.echo(f"meshobs: warning: {line}", err=True)
    with warnings.catch_warnings():
        # urllib3's InsecureRequestWarning, told by its words: importing urllib3 here, on the
        # main thread before the collectors' modules are preloaded, cost ~40 ms of the
        # critical path. (A kubeconfig's insecure-skip-tls-verify warns the same way.)
        warnings.filterwarnings("ignore", message="Unverified HTTPS request")
        yield


def scope_to_dict(scope: Scope) -> dict[str, Any]:
    """A Scope as the bundle records it (sorted, so equal scopes write equal bundles)."""
    return {"target": str(scope.target) if scope.target else None,
            "services": sorted(str(s) for s in scope.services),
            "workloads": sorted(str(w) for w in scope.workloads)}


def scope_from_dict(doc: Any) -> Scope | None:
    """The Scope recorded in a bundle (None for a mesh-wide bundle or an unreadable entry)."""
    from meshobs.collectors.base import Scope
    from meshobs.model import ServiceRef, WorkloadRef

    if not isinstance(doc, dict):
        return None
    try:
        target = doc.get("target")
        return Scope(target=ServiceRef(*str(target).split("/", 1)) if target else None,
                     services=frozenset(ServiceRef(*str(s).split("/", 1)) for s in doc.get("services") or []),
                     workloads=frozenset(WorkloadRef(*str(w).split("/", 1)) for w in doc.get("workloads") or []))
    except TypeError:  # not "namespace/name"
        return None


def normalize_source(raw: RawSource, time: datetime, window_s: float) -> SnapshotPart:
    """Normalise one raw source; a malformed payload becomes that source's error status."""
    from meshobs.collectors.base import NormalizeContext

    from .gc_pause import gc_paused

    if raw.error:
        return SnapshotPart(sources=[SourceStatus(raw.name, SourceState.ERROR, redact_text(raw.error),
                                                  raw.duration_s, raw.kind)])
    ctx = NormalizeContext(time=time, window_s=window_s)
    # Per kind, not per source: a mesh of 1,000 proxies should print one envoy row, not 1,000.
    # The cycle collector is paused as in build_snapshot: sources normalised as they arrive
    # (live, on the fetch threads) build the same acyclic objects.
    with timed("normalize", raw.kind, source=raw.name), gc_paused():
        try:
            part: SnapshotPart = _normalize(_module(raw.kind), raw, ctx)
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


def _normalize(module: Any, raw: RawSource, ctx: Any) -> SnapshotPart:
    """``module.normalize(raw)``, or, when the module can (``normalize_added``) and ``raw``
    was normalised before more payloads joined it, what that makes of the earlier part and the
    added payloads (the same result, without reading the earlier payloads again)."""
    if raw.earlier is not None and hasattr(module, "normalize_added"):
        earlier, known = raw.earlier
        raw.earlier = None
        part: SnapshotPart | None = module.normalize_added(raw, earlier, known, ctx)
        if part is not None:
            return part
    result: SnapshotPart = module.normalize(raw, ctx)
    return result


def _consume(bundle: Bundle) -> Iterator[RawSource]:
    stream, bundle.stream = bundle.stream, None
    yield from stream or ()


def _all_sources(bundle: Bundle) -> tuple[Iterable[RawSource], int | None, Callable[[], Iterable[RawSource]] | None]:
    """The bundle's sources; how many Envoy sources among them are to be normalised when a
    forked child may read them too (:mod:`meshobs.loadsplit`: a list, or a streamed archive
    whose first source is not read yet and whose index said how many), else None; and for a
    stream, how to read it again."""
    import inspect

    if bundle.stream is None:
        return (bundle.sources, sum(1 for r in bundle.sources if r.kind == "envoy" and r.part is None and not r.error),
                None)
    fresh = inspect.isgenerator(bundle.stream) and inspect.getgeneratorstate(bundle.stream) == inspect.GEN_CREATED
    kinds, again = bundle.stream_kinds, bundle.stream_again
    if not fresh or kinds is None or again is None or bundle.sources:
        return itertools.chain(bundle.sources, _consume(bundle)), None, None
    return _consume(bundle), kinds.get("envoy", 0), again


def build_snapshot(bundle: Bundle, origin: str = "", *, keep_raw: bool = True,
                   sources: Iterable[RawSource] | None = None) -> MeshSnapshot:
    """Bundle (live or recorded) -> MeshSnapshot, through each source's ``normalize``.

    ``keep_raw=False``: each source's bodies are dropped once it is normalised (the bundle is
    not written afterwards), so the raw payloads and the model are not both held whole.
    ``sources`` replaces ``bundle.sources`` (e.g. :func:`meshobs.bundle.iter_bundle`'s, read one
    at a time)."""
    from .gc_pause import gc_paused
    from .loadsplit import normalize_all

    # Normalising a big mesh builds millions of acyclic dicts, tuples and model objects; with the
    # cycle collector on, each of its passes walks the ever larger heap of them (about a fifth
    # of a 1,000-service replay's CPU time, none of it garbage).
    with gc_paused():
        if sources is None and (assembled := _assembled(bundle)) is not None:
            # The archive's own assembly of its sources (meshobs.modelcache): none is read.
            return assembled.snapshot(bundle.time, bundle.window_s, origin)
        proxies, again = None, None
        if sources is None:
            sources, proxies, again = _all_sources(bundle)
        parts = normalize_all(sources, lambda raw: normalize_source(raw, bundle.time, bundle.window_s),
                              keep_raw=keep_raw, proxies=proxies, again=again)
        return assemble_parts(parts, bundle, origin)


def assemble_parts(parts: Iterable[SnapshotPart], bundle: Bundle, origin: str = "") -> MeshSnapshot:
    """The bundle's sources' parts (in source order) assembled: its time, its window and its
    config's ``mesh`` are all that assembly reads besides them."""
    from .assemble import assemble

    configured = str(bundle.config.get("mesh", "auto"))
    mesh = Mesh(configured) if configured in ("istio", "appmesh") else Mesh.UNKNOWN
    return assemble(SnapshotPart.merge(parts), time=bundle.time, window_s=bundle.window_s, origin=origin, mesh=mesh)


def _assembled(bundle: Bundle) -> Snapshot | None:
    """The bundle's assembled snapshot (``Bundle.assembled``), when its sources are all still to
    be read from the stream it came with: taken (used once)."""
    import inspect

    assembled, bundle.assembled = bundle.assembled, None
    if assembled is None or bundle.sources or bundle.stream is None:
        return None
    if not (inspect.isgenerator(bundle.stream) and inspect.getgeneratorstate(bundle.stream) == inspect.GEN_CREATED):
        return None
    stream, bundle.stream = bundle.stream, None
    stream.close()  # never started: closing reads nothing
    return assembled
