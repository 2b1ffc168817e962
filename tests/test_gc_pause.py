"""gc_paused: the cycle collector off inside, restored after; ``promote`` skips the young
collection that resuming would otherwise start with."""

from __future__ import annotations

import gc

from meshobs.gc_pause import gc_paused


def test_paused_inside_and_restored_after() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer block still holds it
    assert gc.isenabled()


def _generation(obj: object) -> int:
    return next(g for g in range(3) if any(o is obj for o in gc.get_objects(generation=g)))


def test_promote_moves_what_was_built_to_the_oldest_generation() -> None:
    with gc_paused(promote=True):
        kept = [[i] for i in range(10_000)]
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert _generation(kept[-1]) == 2  # no young collection will walk it
    with gc_paused():
        young = [[i] for i in range(10_000)]
    assert _generation(young[-1]) < 2  # without promote: left to the young collections
