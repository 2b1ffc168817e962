"""A test oracle: Jaeger UI's critical-path code transliterated to Python, line for line.

jaeger-ui keeps the algorithm in ``packages/jaeger-ui/src/components/TracePage/CriticalPath/``
(``index.tsx`` with ``utils/getChildOfSpans.tsx``, ``utils/sanitizeOverFlowingChildren.tsx``,
``utils/findLastFinishingChildSpan.tsx``) and orders ``childSpanIds`` in
``model/transform-trace-data.tsx``. jaeger-ui is not published to the npm registry and its
repository cannot be reached from here, so this is a transliteration from the published
algorithm as described in the jaeger-ui sources and docs, kept deliberately close to their
shape (a recursive walk over a mutable span map) rather than to meshobs's iterative one, so
that the two implementations can be compared on many generated traces. Where the UI has a rule
added in 2026 (producer -> consumer is non-blocking) it is added to ``get_child_of_spans``.

It is test code only: recursion depth and the O(children) ``find`` per return are fine for
the small generated traces it is run on.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from meshobs.model import Span as MeshSpan
from meshobs.model import Trace


@dataclass
class UiSpan:
    spanID: str
    startTime: int
    duration: int
    references: list[tuple[str, str]]  # (refType, spanID), the parent first
    kind: str | None = None
    childSpanIds: list[str] = field(default_factory=list)

    @property
    def hasChildren(self) -> bool:
        return bool(self.childSpanIds)


def transform(trace: Trace) -> list[UiSpan]:
    """transformTraceData's part the critical path uses: spans in tree order (children by
    start time, stable), ``childSpanIds`` sorted by end time descending (stable)."""
    spans = {s.span_id: s for s in trace.spans}
    ui = {s.span_id: UiSpan(s.span_id, s.start_us, s.duration_us,
                            [(s.ref_type, s.parent_id)] if s.parent_id else [], s.kind) for s in trace.spans}
    children: dict[str, list[str]] = {"__root__": []}
    for s in trace.spans:  # input order is the tie-break of the stable sorts
        parent = s.parent_id if s.parent_id in spans else "__root__"
        children.setdefault(parent, []).append(s.span_id)
    for kids in children.values():
        kids.sort(key=lambda i: spans[i].start_us)
    ordered: list[UiSpan] = []

    def walk(node: str) -> None:
        if node != "__root__":
            ordered.append(ui[node])
            ui[node].childSpanIds = sorted(children.get(node, []), key=lambda i: -spans[i].end_us)
        for kid in children.get(node, []):
            walk(kid)

    walk("__root__")
    return ordered


def get_child_of_spans(span_map: dict[str, UiSpan]) -> dict[str, UiSpan]:
    follow_from_ids: list[str] = []
    for each in list(span_map.values()):
        if not each.references:
            continue
        ref_type, parent_id = each.references[0]
        parent = span_map[parent_id]
        if ref_type == "FOLLOWS_FROM" or (each.kind == "consumer" and parent.kind == "producer"):
            follow_from_ids.append(each.spanID)
            span_map[parent_id] = replace(parent, childSpanIds=[a for a in parent.childSpanIds
                                                                 if a != each.spanID])

    def find_descendants(ids: list[str]) -> None:
        for span_id in ids:
            span = span_map[span_id]
            if span.hasChildren:
                follow_from_ids.extend(span.childSpanIds)
                find_descendants(span.childSpanIds)

    find_descendants(list(follow_from_ids))
    for span_id in follow_from_ids:
        span_map.pop(span_id, None)
    return span_map


def sanitize_overflowing_children(span_map: dict[str, UiSpan]) -> dict[str, UiSpan]:
    for span_id in list(span_map):
        span = span_map.get(span_id)
        if not (span and span.references):
            continue
        parent = span_map.get(span.references[0][1])
        if parent is None:
            del span_map[span_id]  # the parent was dropped before: drop its children too
            continue
        child_end = span.startTime + span.duration
        parent_end = parent.startTime + parent.duration
        if span.startTime >= parent.startTime and child_end <= parent_end:
            pass  # case 1: inside
        elif span.startTime < parent.startTime and parent.startTime < child_end <= parent_end:
            span_map[span_id] = replace(span, startTime=parent.startTime,
                                        duration=child_end - parent.startTime)  # case 2
        elif parent.startTime <= span.startTime < parent_end and child_end > parent_end:
            span_map[span_id] = replace(span, duration=parent_end - span.startTime)  # case 3
        elif span.startTime >= parent_end or child_end <= parent.startTime:
            span_map[parent.spanID] = replace(parent, childSpanIds=[i for i in parent.childSpanIds
                                                                    if i != span_id])  # case 4
            del span_map[span_id]
    return span_map


def find_last_finishing_child_span(span_map: dict[str, UiSpan], current: UiSpan,
                                   returning_child_start: int | None = None) -> UiSpan | None:
    if returning_child_start is not None:
        found = next((i for i in current.childSpanIds if i in span_map
                      and span_map[i].startTime + span_map[i].duration < returning_child_start), None)
    else:
        found = current.childSpanIds[0] if current.childSpanIds else None
    return span_map[found] if found is not None else None


def compute_critical_path(span_map: dict[str, UiSpan], span_id: str, path: list[tuple[str, int, int]],
                          returning_child_start: int | None = None) -> list[tuple[str, int, int]]:
    current = span_map[span_id]
    lfc = find_last_finishing_child_span(span_map, current, returning_child_start)
    end = returning_child_start if returning_child_start is not None else current.startTime + current.duration
    if lfc is not None:
        start = lfc.startTime + lfc.duration
        if start != end:
            path.append((current.spanID, start, end))
        compute_critical_path(span_map, lfc.spanID, path)
    else:
        if current.startTime != end:
            path.append((current.spanID, current.startTime, end))
        if current.references:
            parent_id = next(i for t, i in current.references if t == "CHILD_OF")
            compute_critical_path(span_map, parent_id, path, current.startTime)
    return path


def ui_critical_path(trace: Trace) -> list[tuple[str, int, int]]:
    """(span id, start, end) sections, latest first as the UI pushes them, made chronological."""
    ordered = transform(trace)
    span_map = {s.spanID: s for s in ordered}
    span_map = sanitize_overflowing_children(get_child_of_spans(span_map))
    return list(reversed(compute_critical_path(span_map, ordered[0].spanID, [])))


def ui_trace(spans: list[MeshSpan]) -> Trace:
    return Trace("t", tuple(spans))
