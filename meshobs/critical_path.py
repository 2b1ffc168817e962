"""Critical-path analysis of distributed traces, the way the Jaeger UI computes it.

The Jaeger UI (``TracePage/CriticalPath``, since 2023) works in three steps, reproduced here:

1. drop ``FOLLOWS_FROM`` children and everything below them: the parent does not wait for
   asynchronous work, so it cannot be on the parent's critical path;
2. truncate children that overflow their parent's time range to that range (a child entirely
   outside the range is dropped with its descendants), top-down so that grandchildren are
   clipped to the already-clipped child;
3. from the root, repeatedly follow the *last-finishing child*. The parent's time after that
   child ended is the parent's own critical section. When a span has no (more) children, its
   time from its start is a critical section and the walk returns to the parent, which now
   looks for the last child that finished before the returning child started.

One deliberate difference: the UI picks a child that finished *strictly* before the returning
child started; here a child ending exactly when the next one starts also counts
(``end <= start``). Back-to-back sequential calls are the normal case in instrumented code, and
with the strict test the first call's whole duration would be booked as the parent's self time.

A span whose parent is missing from the trace (a lost or not yet flushed span) starts its own
walk, like any root. Everything is pure; times are microseconds as in :class:`meshobs.model.Span`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from meshobs.model import Span, Trace

FOLLOWS_FROM = "FOLLOWS_FROM"


@dataclass(frozen=True, slots=True)
class Section:
    """A stretch of time during which ``span`` alone was holding up the request."""

    span_id: str
    service: str
    operation: str
    start_us: int
    end_us: int

    @property
    def duration_us(self) -> int:
        return self.end_us - self.start_us

    @property
    def hop(self) -> tuple[str, str]:
        return (self.service, self.operation)


@dataclass(frozen=True, slots=True)
class _Node:
    span: Span
    start_us: int  # after truncation to the parent's range
    end_us: int
    parent: str | None


def _children_index(trace: Trace) -> tuple[dict[str, Span], dict[str, list[Span]]]:
    """Spans by id (first occurrence wins) and CHILD_OF children by parent id."""
    by_id: dict[str, Span] = {}
    for s in trace.spans:
        by_id.setdefault(s.span_id, s)
    children: dict[str, list[Span]] = defaultdict(list)
    for s in by_id.values():
        if s.parent_id and s.parent_id in by_id and s.parent_id != s.span_id and s.ref_type != FOLLOWS_FROM:
            children[s.parent_id].append(s)
    return by_id, children


def root_spans(trace: Trace) -> list[Span]:
    """Spans that start a walk: no parent, or a parent missing from the trace.

    A FOLLOWS_FROM span whose parent is present is not a root: it is asynchronous work of that
    parent and is left out, as in the Jaeger UI.
    """
    by_id, _ = _children_index(trace)
    roots = [s for s in by_id.values() if not s.parent_id or s.parent_id not in by_id]
    return sorted(roots, key=lambda s: (s.start_us, s.span_id))


def _sanitized_tree(root: Span, children: dict[str, list[Span]]) -> dict[str, tuple[_Node, list[_Node]]]:
    """Truncate overflowing children top-down; children sorted by end time, latest first."""
    tree: dict[str, tuple[_Node, list[_Node]]] = {}
    top = _Node(root, root.start_us, root.end_us, None)
    stack = [top]
    seen = {root.span_id}
    while stack:
        node = stack.pop()
        kids: list[_Node] = []
        for child in children.get(node.span.span_id, ()):
            if child.span_id in seen:  # a cycle in broken data; never loop forever
                continue
            if child.start_us >= node.end_us or child.end_us <= node.start_us:
                continue  # entirely outside the parent: dropped with its descendants
            seen.add(child.span_id)
            kids.append(_Node(child, max(child.start_us, node.start_us), min(child.end_us, node.end_us),
                              node.span.span_id))
        kids.sort(key=lambda n: (n.end_us, n.start_us, n.span.span_id), reverse=True)
        tree[node.span.span_id] = (node, kids)
        stack.extend(kids)
    return tree


def _walk(root: Span, children: dict[str, list[Span]]) -> list[Section]:
    tree = _sanitized_tree(root, children)
    out: list[Section] = []

    def push(node: _Node, start: int, end: int) -> None:
        if end > start:
            out.append(Section(node.span.span_id, node.span.service, node.span.operation, start, end))

    current, _ = tree[root.span_id]
    returning: int | None = None  # start time of the child the walk came back from
    while True:
        _, kids = tree[current.span.span_id]
        if returning is None:
            last = kids[0] if kids else None
        else:
            last = next((k for k in kids if k.end_us <= returning), None)
        section_end = current.end_us if returning is None else returning
        if last is not None:
            push(current, last.end_us, section_end)
            current, returning = last, None
            continue
        push(current, current.start_us, section_end)
        if current.parent is None:
            break
        returning = current.start_us
        current, _ = tree[current.parent]
    out.reverse()
    return out


def critical_path(trace: Trace, root_span_id: str | None = None) -> list[Section]:
    """The critical path of ``trace`` as chronological sections.

    With ``root_span_id`` the walk covers only that span's subtree (e.g. the part of a trace
    spent inside one service); otherwise every root of the trace is walked.
    """
    by_id, children = _children_index(trace)
    if root_span_id is not None:
        root = by_id.get(root_span_id)
        return _walk(root, children) if root is not None else []
    sections: list[Section] = []
    for root in root_spans(trace):
        sections.extend(_walk(root, children))
    return sections


def hop_times(sections: Iterable[Section]) -> dict[tuple[str, str], int]:
    """Critical-path time per hop (service, operation), in microseconds."""
    out: dict[tuple[str, str], int] = defaultdict(int)
    for s in sections:
        out[s.hop] += s.duration_us
    return dict(out)


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile (numpy's default method) of a non-empty sequence."""
    if not values:
        raise ValueError("quantile of an empty sequence")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True)
class HopStats:
    """One hop's part in the critical paths of many traces."""

    service: str
    operation: str
    total_us: int  # critical-path time summed over all traces
    share: float  # of all critical-path time across the traces
    traces: int  # traces where the hop was on the critical path
    p50_us: float  # per-trace critical-path self time of the hop
    p99_us: float
    example_trace_ids: tuple[str, ...]  # the traces where the hop held things up longest

    @property
    def hop(self) -> tuple[str, str]:
        return (self.service, self.operation)


def rank_hops(paths: Iterable[tuple[str, Sequence[Section]]], examples: int = 3) -> list[HopStats]:
    """Aggregate critical paths ``(trace_id, sections)`` per hop, largest share first."""
    per_hop: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
    grand_total = 0
    for trace_id, sections in paths:
        for hop, us in hop_times(sections).items():
            per_hop[hop].append((us, trace_id))
            grand_total += us
    ranked: list[HopStats] = []
    for (service, operation), samples in per_hop.items():
        total = sum(us for us, _ in samples)
        times = [float(us) for us, _ in samples]
        worst = sorted(samples, key=lambda s: (-s[0], s[1]))[:examples]
        ranked.append(HopStats(
            service=service, operation=operation, total_us=total,
            share=total / grand_total if grand_total else 0.0, traces=len(samples),
            p50_us=quantile(times, 0.5), p99_us=quantile(times, 0.99),
            example_trace_ids=tuple(tid for _, tid in worst),
        ))
    ranked.sort(key=lambda h: (-h.total_us, h.service, h.operation))
    return ranked
