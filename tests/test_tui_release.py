"""A replaced load is freed piece by piece on the release thread, never left alive, and what
others still hold is left alone."""

from __future__ import annotations

import time
import weakref

from meshobs.tui import release


class Node:
    """A weak-referenceable container, so the test sees when each one is freed."""

    def __init__(self, *children: object) -> None:
        self.children = list(children)


def tree(depth: int, fan: int) -> Node:
    return Node(*(tree(depth - 1, fan) for _ in range(fan))) if depth else Node("leaf", 1.5)


def everything(root: Node) -> list[weakref.ref[Node]]:
    out, stack = [], [root]
    while stack:
        node = stack.pop()
        out.append(weakref.ref(node))
        stack.extend(c for c in node.children if isinstance(c, Node))
    return out


def test_teardown_frees_every_container_it_alone_holds_and_nothing_shared() -> None:
    shared = Node("kept")
    root = tree(4, 3)
    root.children.append(shared)
    refs = everything(root)
    retired: list[object] = [root]
    del root
    taken = release.teardown(retired)
    assert all(r() is None for r in refs if r() is not shared)
    assert shared.children == ["kept"]  # held by this test: let go of, not taken apart
    assert taken >= 3**4 + 3**3 + 3**2 + 3 + 1  # every Node (and its list) was taken apart


def test_release_frees_on_its_own_thread() -> None:
    root = tree(3, 4)
    refs = everything(root)
    retired: list[object] = [root]
    del root
    release.release(retired)
    deadline = time.monotonic() + 10
    while any(r() is not None for r in refs) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert all(r() is None for r in refs)
