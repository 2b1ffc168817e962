"""Walks over a snapshot's call graph, and whether any source answered: what a live
``diagnose SERVICE`` asks between its two collection phases (:func:`meshobs.neighbourhood`).

Kept out of :mod:`meshobs.engine`, whose package imports every check (~230 modules, ~0.2 s of
CPU): the question between the phases needs only these, so the scoped phase's requests go out
without waiting for that import, which runs instead while the backends answer them (the
diagnosis's warm-up, ``meshobs.cli.diagnose.warm_up``). The engine uses the same functions.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

from meshobs.checks.traffic import outbound_edges
from meshobs.model import MeshSnapshot, ResponseStat, ServiceRef, SourceState, SourceStatus

# How far every downstream service is looked at (its causes, deadlines), whatever the evidence;
# beyond it the walk goes on only through hops that carry evidence (``downstream(follow=...)``).
MAX_DEPTH = 3


# Refusals the caller gets instead of an answer: not errors by Istio's success rate (4xx), but
# the call failed, and the caller usually turns them into errors of its own.
REFUSED = ("401", "403")


def failed(r: ResponseStat) -> bool:
    """Did these calls fail or get refused (what the ranking walk follows: meshobs.engine.evidence)?"""
    return r.is_error or r.http_equivalent in REFUSED  # gRPC PERMISSION_DENIED, UNAUTHENTICATED too


def callees_of(snapshot: MeshSnapshot, service: ServiceRef) -> list[ServiceRef]:
    """Services that ``service`` calls, in a stable order."""
    # Asked ~20 times per service by a --all (each walk down, the ranking, the timeline):
    # remembered with the snapshot, a copy handed out.
    known: dict[ServiceRef, tuple[ServiceRef, ...]] = snapshot.derived("engine.callees_of", lambda _s: {})
    found = known.get(service)
    if found is None:
        found = known[service] = tuple(sorted({e.destination for e in outbound_edges(snapshot, service)
                                               if not e.destination.is_unknown and e.destination != service}))
    return list(found)


def callers_of(snapshot: MeshSnapshot, service: ServiceRef) -> list[ServiceRef]:
    """Services that call ``service``: the exact reverse of :func:`callees_of` (the same edges,
    unknown callers and calls to itself left out), so a walk up reaches what a walk down does."""
    return [c for c in snapshot.callers(service) if not c.is_unknown and c != service]


def downstream(target: ServiceRef, callees: Callable[[ServiceRef], list[ServiceRef]],
               max_depth: int | None = MAX_DEPTH,
               follow: Callable[[ServiceRef, ServiceRef], bool] | None = None,
               followed: Callable[[ServiceRef], list[ServiceRef]] | None = None) -> dict[ServiceRef, int]:
    """Services reachable from ``target`` through calls, with their shortest hop count.

    Every service within ``max_depth`` hops (None: no limit); beyond it, only through hops that
    ``follow(caller, callee)`` says carry evidence of a failure, however deep. ``followed(caller)``
    may say it instead, for all of a caller's hops at once: the callees ``follow`` would take, in
    their order (the engine remembers them per caller).
    """
    depth = {target: 0}
    queue = deque([target])
    while queue:
        s = queue.popleft()
        d = depth[s]
        if max_depth is not None and d >= max_depth:
            if followed is not None:
                onward = followed(s)
            elif follow is not None:
                onward = [c for c in callees(s) if c not in depth and follow(s, c)]
            else:
                continue
        else:
            onward = callees(s)
        for c in onward:
            if c not in depth:
                depth[c] = d + 1
                queue.append(c)
    return depth


def nearest(sources: Iterable[ServiceRef], neighbours: Callable[[ServiceRef], list[ServiceRef]]
            ) -> dict[ServiceRef, tuple[int, ServiceRef]]:
    """Every service reachable from any of ``sources`` through ``neighbours``, with its hop
    count to the nearest source and that source (the first in order on a tie): one walk for
    them all, however many sources there are."""
    found = {s: (0, s) for s in sources}
    queue = deque(found)
    while queue:
        s = queue.popleft()
        d, origin = found[s]
        for n in neighbours(s):
            if n not in found:
                found[n] = (d + 1, origin)
                queue.append(n)
    return found


def partial(status: SourceStatus) -> bool:
    """Did the source deliver some inputs and not others? (Then the reason is input-specific.)"""
    return any(v is None for v in status.inputs.values())


def answered(snapshot: MeshSnapshot) -> bool:
    """Did any source answer, even in part? (A hand-built snapshot without statuses counts when
    it has data.)"""
    if not snapshot.sources:
        return bool(snapshot.services or snapshot.edges or snapshot.proxies or snapshot.config)
    return any(s.state is not SourceState.ERROR or partial(s) for s in snapshot.sources)
