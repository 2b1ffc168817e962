"""Critical-path analysis of distributed traces, the way the Jaeger UI computes it.

The Jaeger UI (``TracePage/CriticalPath``, since 2023) works in three steps, reproduced here:

1. drop *non-blocking* children and everything below them: a ``FOLLOWS_FROM`` child, and a
   ``consumer`` span whose parent is a ``producer`` span (messaging: the producer hands the
   message over and does not wait for it to be processed; the UI's rule since 2026). The
   parent does not wait for that work, so it cannot be on the parent's critical path;
2. truncate children that overflow their parent's time range to that range (a child entirely
   outside the range is dropped with its descendants), top-down so that grandchildren are
   clipped to the already-clipped child;
3. from the root, repeatedly follow the *last-finishing child* (on equal end times the one
   that started first, as the UI's stable sort of start-ordered children gives). The parent's
   time after that child ended is the parent's own critical section. When a span has no (more)
   children, its time from its start is a critical section and the walk returns to the parent,
   which now looks for the last child that finished before the returning child started.

One deliberate difference, switchable: the UI picks a child that finished *strictly* before
the returning child started. By default (``back_to_back=True``) a child ending exactly when the
next one starts also counts (``end <= start``): back-to-back sequential calls are the normal
case in instrumented code (and the common case with millisecond clocks), and with the strict
test the first call's whole duration is booked as the parent's self time, which would blame the
caller for its callee's latency. ``back_to_back=False`` gives the UI's sections exactly.

Each child is visited at most once per walk (the walk keeps a cursor into each span's children,
which are sorted by end time and only ever looked at for earlier end times), so a trace of any
shape, including zero-length children that end exactly where they start, is walked in time
linear in its spans.

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


def non_blocking(child: Span, parent: Span) -> bool:
    """The parent does not wait for ``child``: FOLLOWS_FROM, or producer -> consumer."""
    return child.ref_type == FOLLOWS_FROM or (child.kind == "consumer" and parent.kind == "producer")


def _children_index(trace: Trace) -> tuple[dict[str, Span], dict[str, list[Span]]]:
    """Spans by id (first occurrence wins) and blocking children by parent id."""
    by_id: dict[str, Span] = {}
    for s in trace.spans:
        by_id.setdefault(s.span_id, s)
    children: dict[str, list[Span]] = defaultdict(list)
    for s in by_id.values():
        parent_id = s.parent_id
        if not parent_id or parent_id == s.span_id:
            continue
        parent = by_id.get(parent_id)
        if parent is not None and not non_blocking(s, parent):
            children[parent_id].append(s)
    return by_id, children


def root_spans(trace: Trace) -> list[Span]:
    """Spans that start a walk: no parent, or a parent missing from the trace.

    A non-blocking span (FOLLOWS_FROM, a consumer of a producer) whose parent is present is not
    a root: it is asynchronous work of that parent and is left out, as in the Jaeger UI.
    """
    by_id, _ = _children_index(trace)
    roots = [s for s in by_id.values() if not s.parent_id or s.parent_id not in by_id]
    return sorted(roots, key=lambda s: (s.start_us, s.span_id))


class _Node:
    """A span in the sanitised tree: its (truncated) times and its children, latest end first."""

    __slots__ = ("cursor", "end_us", "kids", "parent", "span", "start_us")

    def __init__(self, span: Span, start_us: int, end_us: int, parent: _Node | None) -> None:
        self.span = span
        self.start_us = start_us
        self.end_us = end_us
        self.parent = parent
        self.kids: list[_Node] = []
        self.cursor = 0  # kids before it are visited or ended too late for any later return


def _sanitized_tree(root: Span, children: dict[str, list[Span]]) -> _Node:
    """Truncate overflowing children top-down; children sorted by end time, latest first.

    The order is the UI's: it sorts children by their *original* end time (before truncation),
    stably over children ordered by start time. So on equal (truncated) ends the child that
    really ended later comes first, then the one that started first.
    """
    top = _Node(root, root.start_us, root.end_us, None)
    stack = [top]
    seen = {root.span_id}
    while stack:
        node = stack.pop()
        ps, pe = node.start_us, node.end_us
        for child in children.get(node.span.span_id, ()):
            if child.span_id in seen:  # a cycle in broken data; never loop forever
                continue
            cs, ce = child.start_us, child.end_us
            if (cs >= pe or ce <= ps) and not (cs >= ps and ce <= pe):
                continue  # entirely outside the parent: dropped with its descendants
            seen.add(child.span_id)
            node.kids.append(_Node(child, max(cs, ps), min(ce, pe), node))
        if node.kids:
            node.kids.sort(key=lambda n: (-n.end_us, -n.span.end_us, n.span.start_us, n.span.span_id))
            stack.extend(node.kids)
    return top


def _walk(root: Span, children: dict[str, list[Span]], back_to_back: bool) -> list[Section]:
    current = _sanitized_tree(root, children)
    out: list[Section] = []
    returning: int | None = None  # start time of the child the walk came back from
    while True:
        kids, cursor = current.kids, current.cursor
        if returning is not None:
            # skip children that ended after the returning child started (strictly: at or after)
            while cursor < len(kids) and (kids[cursor].end_us > returning if back_to_back
                                          else kids[cursor].end_us >= returning):
                cursor += 1
        section_end = current.end_us if returning is None else returning
        if cursor < len(kids):
            last = kids[cursor]
            current.cursor = cursor + 1
            if section_end > last.end_us:
                span = current.span
                out.append(Section(span.span_id, span.service, span.operation, last.end_us, section_end))
            current, returning = last, None
            continue
        current.cursor = cursor
        if section_end > current.start_us:
            span = current.span
            out.append(Section(span.span_id, span.service, span.operation, current.start_us, section_end))
        if current.parent is None:
            break
        returning = current.start_us
        current = current.parent
    out.reverse()
    return out


def critical_path(trace: Trace, root_span_id: str | None = None, *, back_to_back: bool = True) -> list[Section]:
    """The critical path of ``trace`` as chronological sections.

    With ``root_span_id`` the walk covers only that span's subtree (e.g. the part of a trace
    spent inside one service); otherwise every root of the trace is walked. ``back_to_back``:
    see the module docstring (False: exactly the Jaeger UI's rule).
    """
    by_id, children = _children_index(trace)
    if root_span_id is not None:
        root = by_id.get(root_span_id)
        return _walk(root, children, back_to_back) if root is not None else []
    sections: list[Section] = []
    for root in root_spans(trace):
        sections.extend(_walk(root, children, back_to_back))
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
