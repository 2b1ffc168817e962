"""Which services a trace collector searches, within its budget, and how that is said.

A question about one service (``FetchContext.scope``) searches that service first (its traces
carry the downstream spans too), then its neighbourhood while the budget lasts. A mesh-wide
run cannot search every service of a big mesh, so it searches the busiest first, by the call
counts the tracer's own dependency graph holds (a busy service's traces also cover the services
it calls); services the graph does not rank follow in an order that rotates from one window to
the next, so repeated runs (the dashboard, drift) cover them all over time instead of the first
N alphabetically every time. Everything is pure; the plan is recorded with the payloads so that
``normalize`` can say what was covered and what was left out, on a replay too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from meshobs.collectors.base import Scope
from meshobs.trace_names import tracer_names

TARGET, NEIGHBOUR, BUSIEST, ROTATION = "target", "neighbour", "busiest", "rotation"


@dataclass
class SearchPlan:
    """The searches to send, in order, and what the budget left out."""

    mode: str  # "scoped" | "mesh-wide"
    target: str | None = None  # the diagnosed service, as meshobs names it
    searches: list[tuple[str, str]] = field(default_factory=list)  # (tracer's service name, role)
    not_searched: int = 0  # services the budget (max_services) left out
    known: int = 0  # services the tracer knows

    def record(self, not_sent: Iterable[str] = ()) -> dict[str, Any]:
        """The plan as payload metadata (plain JSON)."""
        return {"mode": self.mode, "target": self.target, "searches": [list(s) for s in self.searches],
                "not_searched": self.not_searched, "known": self.known, "not_sent": list(not_sent)}


def plan_searches(names: list[str], scope: Scope | None, max_services: int,
                  traffic: Mapping[str, float] | None = None, rotation: int = 0) -> SearchPlan:
    """Order the tracer's services ``names`` for searching, at most ``max_services`` of them
    (the target's own names are always searched)."""
    known = sorted(set(names))
    if scope is not None and scope.target is not None:
        return _scoped(known, scope, max_services)
    return _mesh_wide(known, max_services, traffic or {}, rotation)


def _scoped(known: list[str], scope: Scope, max_services: int) -> SearchPlan:
    assert scope.target is not None
    plan = SearchPlan("scoped", str(scope.target), known=len(known))
    chosen: set[str] = set()
    for name in tracer_names(scope.target, known):
        plan.searches.append((name, TARGET))
        chosen.add(name)
    neighbours: list[str] = []
    for ref in sorted(scope.services - {scope.target}):
        neighbours.extend(n for n in tracer_names(ref, known) if n not in chosen and n not in neighbours)
    room = max(0, max_services - len(plan.searches))
    plan.searches.extend((n, NEIGHBOUR) for n in neighbours[:room])
    plan.not_searched = len(neighbours) - min(room, len(neighbours))
    return plan


def _mesh_wide(known: list[str], max_services: int, traffic: Mapping[str, float], rotation: int) -> SearchPlan:
    plan = SearchPlan("mesh-wide", known=len(known))
    busiest = sorted((n for n in known if traffic.get(n, 0) > 0), key=lambda n: (-traffic[n], n))
    rest = [n for n in known if traffic.get(n, 0) <= 0]
    if rest:
        start = rotation % len(rest)
        rest = rest[start:] + rest[:start]
    ordered = [(n, BUSIEST) for n in busiest] + [(n, ROTATION) for n in rest]
    plan.searches = ordered[:max_services]
    plan.not_searched = len(ordered) - len(plan.searches)
    return plan


def traffic_of(links: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Calls per service (made and received) from dependency links ``{parent, child, callCount}``."""
    calls: dict[str, float] = {}
    for link in links:
        count = float(link.get("callCount") or 0)
        for end in (link.get("parent"), link.get("child")):
            if end:
                calls[str(end)] = calls.get(str(end), 0.0) + count
    return calls


def describe(plan: Mapping[str, Any], returned: Mapping[str, int], limit: int, source_key: str) -> str:
    """What was covered and what was left out, for the source status ('' when all was covered).

    ``returned``: traces each sent search returned (a search that returned ``limit`` traces
    was cut there). ``source_key`` names the config section the budget keys live in.
    """
    searches = [(str(n), str(r)) for n, r in plan.get("searches") or []]
    not_sent = set(plan.get("not_sent") or [])
    sent = [n for n, _ in searches if n not in not_sent]
    parts: list[str] = []
    if plan.get("mode") == "scoped":
        targets = [n for n, r in searches if r == TARGET]
        if not targets:
            return f"traces of {plan.get('target')}: the tracer knows no service of that name " \
                   f"({plan.get('known', 0)} services known)"
        neighbours = sum(1 for _, r in searches if r == NEIGHBOUR)
        parts.append(f"searched {plan.get('target')} ({', '.join(targets)})"
                     + (f" and {neighbours} neighbour(s)" if neighbours else ""))
    elif plan.get("not_searched") or not_sent:
        busiest = sum(1 for _, r in searches if r == BUSIEST)
        parts.append(f"searched {len(sent)} of {plan.get('known', 0)} services"
                     + (f" ({busiest} busiest by dependency call counts, the rest in rotation)" if busiest
                        else " (in an order that rotates between windows)"))
    if plan.get("not_searched"):
        parts.append(f"{plan['not_searched']} service(s) not searched ({source_key}.max_services: "
                     f"{len(searches)})")
    if not_sent:
        parts.append(f"{len(not_sent)} search(es) not sent: the run's deadline passed")
    full = sorted(n for n in sent if returned.get(n, 0) >= limit)
    if full:
        parts.append(f"{len(full)} search(es) returned the limit of {limit} traces, so older traces were "
                     f"not fetched ({', '.join(full[:3])}{', ...' if len(full) > 3 else ''}; {source_key}.limit)")
    return "; ".join(parts)
