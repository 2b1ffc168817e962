"""When the cycle collector may run while the dashboard shows a load.

A full (generation 2) collection walks every object the collector still sees, holding the
GIL. The worker freezes each load it builds (see ``data.numbers``), so what is left are the
objects the UI thread made since: the table's rows and Textual's render caches (lists,
Segments, Strips, FIFOCaches: 56-99k objects at 1,000 services). Filling the table after a
load allocates enough to trigger full collections on the UI thread, and each walked all of
that: 50-89 ms on an idle machine (67-190 ms under load), 183 ms at start-up, and every key
pressed meanwhile waited as long (the ~100 ms maximum key waits of the dashboard benchmark).

So while a load is being shown, only young collections run (they free the short-lived
cycles of the fill and cost a few ms each); once the overview table holds the load, what
survived is frozen (``gc.freeze``, constant time) and the normal thresholds come back. A
later full collection walks only what was made after that.

The cost: cyclic garbage that was frozen (a render cache Textual cleared, an old row) stays
until the worker's periodic unfreeze-and-collect (``data.COLLECT_EVERY``), which bounds a long
session's memory.

With the load process, that periodic collection walks the UI's whole heap (230-290 ms of CPU at
1,000 services on the loaded machine, benchmarks/results/dashproc.md), a pause no key should
meet. So it is only made *due* every ``collect_every`` loads, and runs when the user has pressed
no key for ``QUIET_S`` (:meth:`FullCollections.when_quiet`, asked by the app's timer), or, so a
user who never stops typing still has their memory bounded, once it has waited ``OVERDUE_LOADS``
more loads.
"""

from __future__ import annotations

import gc

# Generation 2's threshold while a load is being shown: larger than any count of young
# collections one load can reach, so no automatic full collection starts.
NO_FULL = (1 << 31) - 1  # a C int
# A due periodic collection runs once no key came for this long (s): a user reading the screen.
QUIET_S = 1.5
# ... or, keys or not, once this many more loads were shown since it became due.
OVERDUE_LOADS = 10


class FullCollections:
    """Holds off automatic full collections (:meth:`hold`) until the load is on screen
    (:meth:`settled`). One per app; the UI thread is its only caller."""

    def __init__(self, collect_every: int = 0) -> None:
        self._saved: tuple[int, int, int] | None = None  # the thresholds to restore
        self.freezes = 0  # loads frozen once shown (tests read it)
        # With the load process (``collect_every`` > 0) no worker here pauses the collector
        # while a load is built, nor unfreezes and collects (``data.COLLECT_EVERY`` runs
        # there). Automatic full collections then ran on the UI thread between loads (30 ms of
        # CPU each at 1,000 services, 160-210 ms wall on the loaded machine): they stay off for
        # the app's life (:meth:`hold` at mount, never given back before :meth:`release`), and
        # the UI unfreezes and collects its own heap (widgets and rows only) every this many
        # loads shown instead.
        self.collect_every = collect_every
        self.full_collections = 0  # those periodic collections (tests read it)
        self.due_at: int | None = None  # ``freezes`` when the periodic collection fell due

    @property
    def held(self) -> bool:
        return self._saved is not None

    def hold(self) -> None:
        """A load is about to be shown: no automatic full collection until :meth:`settled`."""
        if self._saved is None:
            self._saved = gc.get_threshold()
            gc.set_threshold(self._saved[0], self._saved[1], NO_FULL)

    def settled(self) -> None:
        """The load is on screen: free the young cycles (generations 0 and 1 only: bounded by
        what was allocated since the last young collection), freeze the survivors, and give
        the collector its thresholds back."""
        if self._saved is None:
            return
        # Disabled: a worker is building the next load (``gc_paused``, after r or a new time
        # range) and its young objects are millions; walking them would be the very pause this
        # avoids. It freezes them itself when it is done.
        if gc.isenabled():
            gc.collect(1)
        gc.freeze()
        self.freezes += 1
        if self.collect_every and self.due_at is None and self.freezes % self.collect_every == 0:
            self.due_at = self.freezes  # run by when_quiet, not now: a key may be on its way
        if not self.collect_every:
            self.release()

    def when_quiet(self, quiet_for_s: float) -> bool:
        """Run the due periodic collection (unfreeze, collect the UI's heap, freeze again) if no
        key came for ``quiet_for_s`` >= QUIET_S, or it has waited OVERDUE_LOADS loads; True if
        it ran. Not while the collector is disabled (a thread worker is building a load)."""
        if self.due_at is None or not gc.isenabled():
            return False
        if quiet_for_s < QUIET_S and self.freezes - self.due_at < OVERDUE_LOADS:
            return False
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self.full_collections += 1
        self.due_at = None
        return True

    def release(self) -> None:
        """Back to the thresholds found (the app exits, a load failed)."""
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None
