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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import msgspec

from meshobs.gc_pause import gc_paused
from meshobs.model import Span, Trace

FOLLOWS_FROM = "FOLLOWS_FROM"


class Section(msgspec.Struct, frozen=True, gc=False):
    """A stretch of time during which ``span`` alone was holding up the request.

    A msgspec Struct like :class:`meshobs.model.Span`: thousands of traces give hundreds of
    thousands of sections, and a Struct is built in C and not tracked by the cycle collector.
    """

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
    return _roots(by_id)


def _roots(by_id: dict[str, Span]) -> list[Span]:
    roots = [s for s in by_id.values() if not s.parent_id or s.parent_id not in by_id]
    return sorted(roots, key=lambda s: (s.start_us, s.span_id))


def _walk(root: Span, children: dict[str, list[Span]], back_to_back: bool) -> list[Section]:
    """Sanitise the root's subtree, then walk it (steps 2 and 3 of the module docstring).

    Spans are numbered in the order they are reached (parents first) and kept in flat lists:
    a trace of a few hundred spans is walked thousands of times in a ``diagnose --all``.
    """
    # -- step 2: truncate top-down; children sorted by end time, latest first. The order is the
    # UI's: it sorts children by their *original* end (before truncation), stably over children
    # ordered by start. So on equal truncated ends the child that really ended later comes
    # first, then the one that started first.
    spans, starts, ends, parents = [root], [root.start_us], [root.end_us], [-1]
    kids: list[list[int]] = []
    seen = {root.span_id}
    i = 0
    while i < len(spans):
        ps, pe = starts[i], ends[i]
        mine: list[int] = []
        for child in children.get(spans[i].span_id, ()):
            if child.span_id in seen:  # a cycle in broken data; never loop forever
                continue
            cs, ce = child.start_us, child.start_us + child.duration_us
            if (cs >= pe or ce <= ps) and not (cs >= ps and ce <= pe):
                continue  # entirely outside the parent: dropped with its descendants
            seen.add(child.span_id)
            mine.append(len(spans))
            spans.append(child)
            starts.append(cs if cs > ps else ps)
            ends.append(ce if ce < pe else pe)
            parents.append(i)
        if len(mine) > 1:
            mine.sort(key=lambda j: (-ends[j], -spans[j].end_us, spans[j].start_us, spans[j].span_id))
        kids.append(mine)
        i += 1
    # -- step 3: the walk. cursor[n]: kids[n] before it are visited, or ended too late for any
    # later return (returns only ever come back with earlier start times).
    cursor = [0] * len(spans)
    found: list[tuple[int, int, int]] = []
    node, returning = 0, -1  # -1: arriving from the parent, else the returning child's start
    while True:
        mine, at = kids[node], cursor[node]
        if returning < 0:
            section_end = ends[node]
        else:
            section_end = returning
            if back_to_back:
                while at < len(mine) and ends[mine[at]] > returning:
                    at += 1
            else:
                while at < len(mine) and ends[mine[at]] >= returning:
                    at += 1
        if at < len(mine):
            last = mine[at]
            cursor[node] = at + 1
            if section_end > ends[last]:
                found.append((node, ends[last], section_end))
            node, returning = last, -1
            continue
        if section_end > starts[node]:
            found.append((node, starts[node], section_end))
        if parents[node] < 0:
            break
        returning = starts[node]
        node = parents[node]
    found.reverse()
    return [Section(spans[n].span_id, spans[n].service, spans[n].operation, a, b) for n, a, b in found]


def critical_path(trace: Trace, root_span_id: str | None = None, *, roots: Iterable[str] | None = None,
                  back_to_back: bool = True) -> list[Section]:
    """The critical path of ``trace`` as chronological sections.

    With ``root_span_id`` the walk covers only that span's subtree (e.g. the part of a trace
    spent inside one service), with ``roots`` the subtrees of several spans one after the other
    (one index of the trace for all of them); otherwise every root of the trace is walked.
    ``back_to_back``: see the module docstring (False: exactly the Jaeger UI's rule).
    """
    by_id, children = _children_index(trace)
    if root_span_id is not None:
        starts = [by_id[root_span_id]] if root_span_id in by_id else []
    elif roots is not None:
        starts = [by_id[r] for r in roots if r in by_id]
    else:
        starts = _roots(by_id)
    sections: list[Section] = []
    for root in starts:
        sections.extend(_walk(root, children, back_to_back))
    return sections


def critical_paths(traces: Iterable[Trace], roots: Callable[[Trace], Iterable[str]] | None = None,
                   ) -> list[tuple[str, list[Section]]]:
    """``(trace_id, sections)`` for many traces: every root of each, or the spans ``roots``
    names in it. The cycle collector is paused meanwhile (see ``meshobs.gc_pause``): sections
    hold no cycles, and thousands of traces otherwise trigger full collections of the heap."""
    with gc_paused():
        return [(t.trace_id, critical_path(t) if roots is None else critical_path(t, roots=roots(t)))
                for t in traces]


def hop_times(sections: Iterable[Section]) -> dict[tuple[str, str], int]:
    """Critical-path time per hop (service, operation), in microseconds."""
    out: dict[tuple[str, str], int] = {}
    for s in sections:
        hop = (s.service, s.operation)
        out[hop] = out.get(hop, 0) + s.end_us - s.start_us
    return out


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
    with gc_paused():  # a tuple per hop per trace, thousands of traces: see meshobs.gc_pause
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
