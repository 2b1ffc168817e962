"""A replay's sources normalised on two cores: the Envoy sources dealt between this process and
one forked child (:mod:`meshobs.engine.fanout`), the rest here.

    normalize_all(sources, normalize, keep_raw=..., proxies=...) -> [SnapshotPart, ...]

Loading a 5,000-service replay is about 8 s on one core, half of it the 7,415 proxies' Envoy
normalisation. Here the child normalises :data:`CHILD_SHARE` of them while this process reads
and normalises everything else (Kubernetes, Prometheus, the other proxies), then reads the
child's parts back (:mod:`meshobs.handback`) and puts every part in its source's place: the
same parts in the same order as in one process, so the same snapshot.

Both processes read the sources themselves: a list (a bundle read whole, a collection) the child
shares copy-on-write; a streamed archive (:func:`meshobs.bundle.iter_bundle`), forked before its
first source is read, is opened again by the child (no file offset shared) and read up to the
end of the Envoy sources (an archive lists a kind's sources together; an Envoy source of its
share it has not reached, this process normalises). A child that fails or dies (fanout's
fallback) has its share normalised here, so the answer is the same, only later: from the list,
or from the archive read a second time (keeping the child's share's payloads until it answers
took the parent over 500 MB at 5,000 services).

Only where it pays (:data:`MIN_PROXIES`, measured): below it the fork, the second read of the
archive and the hand-back cost more than they save, and everything runs here as before; so it
does where fanout does not fork (another thread alive, not Linux, tracing).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from .model import SnapshotPart
from .raw import RawSource

# Envoy sources to normalise from which the work is split; measured in
# benchmarks/results/loadpar-s24.md (the generated meshes, on 2 cores).
MIN_PROXIES = 400
# The child's share of the Envoy sources, dealt in turn: k of every n. This process also reads
# the whole archive, normalises Kubernetes and Prometheus, reads the child's parts back and
# assembles, so the child takes most of the proxies (measured, see MIN_PROXIES).
CHILD_SHARE = (5, 6)
ENVOY = "envoy"
PARENT, CHILD = 0, 1

Normalize = Callable[[RawSource], SnapshotPart]


def normalize_all(sources: Iterable[RawSource], normalize: Normalize, *, keep_raw: bool,
                  proxies: int | None, again: Callable[[], Iterable[RawSource]] | None = None) -> list[SnapshotPart]:
    """``normalize`` of every source (or its ``part`` when it has one), in order. ``keep_raw``
    False: each source's bodies are dropped once normalised. ``proxies``: how many Envoy sources
    are to be normalised, or None when ``sources`` cannot be read a second time in a child
    (an iterator already started): then everything is done here. ``again``: ``sources`` read
    anew (a stream); without it ``sources`` is a list, whose sources of the child's share keep
    their bodies until the child has answered."""
    from .engine import fanout

    if proxies is None or fanout.workers(None, proxies, MIN_PROXIES) < 2:
        return [_one(raw, normalize, keep_raw) for raw in sources]
    split = _Split(sources, normalize, keep_raw, again)
    _mine, theirs = fanout.fan_out([PARENT, CHILD], split.work)
    return split.join(theirs)


def _one(raw: RawSource, normalize: Normalize, keep_raw: bool) -> SnapshotPart:
    part = raw.part if raw.part is not None else normalize(raw)
    if not keep_raw:
        raw.drop_bodies()
        raw.part = None
    return part


class _Dealer:
    """Which sources are the child's: every Envoy source still to normalise, dealt in turn, k of
    every n (neighbouring proxies are alike: a workload's pods). Both processes deal the same
    sources in the same order, so they agree without talking."""

    def __init__(self) -> None:
        self.dealt = 0

    def to_child(self, raw: RawSource) -> bool:
        if raw.kind != ENVOY or raw.part is not None or raw.error:
            return False
        k, n = CHILD_SHARE
        self.dealt += 1
        return (self.dealt - 1) % n < k


class _Split:
    def __init__(self, sources: Iterable[RawSource], normalize: Normalize, keep_raw: bool,
                 again: Callable[[], Iterable[RawSource]] | None) -> None:
        self.sources = sources
        self.normalize = normalize
        self.keep_raw = keep_raw
        self.again = again
        self.parent = os.getpid()
        self.parts: dict[int, SnapshotPart] = {}  # by position
        self.held: dict[int, RawSource] = {}  # the child's share (bodies kept without ``again``)
        self.count = 0

    def work(self, role: int) -> dict[int, SnapshotPart]:
        if role == PARENT:
            self._mine()
            return {}
        if os.getpid() == self.parent:  # the child failed or died: join does its share here
            return {}
        return self._theirs()

    def _mine(self) -> None:
        deal = _Dealer()
        for i, raw in enumerate(self.sources):
            if deal.to_child(raw):
                self.held[i] = raw
                if self.again is not None and not self.keep_raw:
                    raw.drop_bodies()
            else:
                self.parts[i] = _one(raw, self.normalize, self.keep_raw)
            self.count = i + 1

    def _theirs(self) -> dict[int, SnapshotPart]:
        """In the child: its share, by position, read up to the end of the Envoy sources."""
        deal, done, envoy = _Dealer(), {}, False
        for i, raw in enumerate(self.sources):
            if envoy and raw.kind != ENVOY:
                break  # the rest is this process's parent's (it reads it anyway)
            envoy = envoy or raw.kind == ENVOY
            if deal.to_child(raw):
                done[i] = self.normalize(raw)
            raw.drop_bodies()  # the child's own copy: let it go
        return done

    def join(self, theirs: dict[int, SnapshotPart]) -> list[SnapshotPart]:
        """Every part in its source's place; the child's share it did not hand back done here."""
        left = {i: raw for i, raw in self.held.items() if i not in theirs}
        if left and self.again is not None and not self.keep_raw:  # their bodies were dropped
            last = max(left)
            for i, raw in enumerate(self.again()):
                if i in left:
                    left[i] = raw
                if i >= last:
                    break
        for i, raw in self.held.items():
            got = theirs.get(i)
            self.parts[i] = got if got is not None else _one(left[i], self.normalize, self.keep_raw)
            if not self.keep_raw:
                raw.drop_bodies()
        self.held.clear()
        return [self.parts[i] for i in range(self.count)]
