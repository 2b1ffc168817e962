"""Which inputs a snapshot can feed to the checks, and why not when it cannot.

An input is available when at least one source of a kind that provides it answered. A check
whose input is missing is *skipped* with the reason (which source, what went wrong), never
passed on empty data.
"""

from __future__ import annotations

from meshobs.model import MeshSnapshot, SourceState

# input -> (source kinds that provide it, words for a person)
INPUTS: dict[str, tuple[tuple[str, ...], str]] = {
    "pods": (("kubernetes",), "pod data"),
    "edges": (("prometheus", "cloudwatch", "xray"), "traffic metrics"),
    "proxies": (("envoy",), "proxy data"),
    "certs": (("envoy",), "certificate data"),
    "config": (("kubernetes", "manifests", "appmesh"), "mesh configuration"),
    "traces": (("jaeger", "xray"), "traces"),
}

_DATA = {"pods": "pods", "edges": "edges", "proxies": "proxies", "certs": "certs",
         "config": "config", "traces": "traces"}


def availability(snapshot: MeshSnapshot) -> dict[str, str | None]:
    """input -> None when available, else the reason it is not (names the source and its error)."""
    out: dict[str, str | None] = {}
    for name, (kinds, words) in INPUTS.items():
        statuses = [s for s in snapshot.sources if s.kind in kinds]
        has_data = bool(getattr(snapshot, _DATA[name]))
        if any(s.state is SourceState.OK for s in statuses) or (has_data and not statuses):
            out[name] = None
        elif has_data:
            # A source failed but another part of the data arrived (e.g. some Envoy pods).
            out[name] = None
        elif not statuses:
            out[name] = f"no {words}: no {' / '.join(kinds)} source configured"
        else:
            # The source's own error is in the report's Sources section: name it, don't repeat it.
            names = ", ".join(s.name for s in statuses[:2])
            more = f" and {len(statuses) - 2} more" if len(statuses) > 2 else ""
            verb = "answered with no data" if all(s.state is SourceState.NO_DATA for s in statuses) else "failed"
            out[name] = f"no {words}: {names}{more} {verb} (see Sources)"
    return out


def missing(needs: tuple[str, ...], available: dict[str, str | None]) -> str | None:
    """The reason a check with these needs cannot run, or None. ``a|b`` needs either."""
    reasons: list[str] = []
    for need in needs:
        options = need.split("|")
        if any(available.get(o, f"unknown input {o}") is None for o in options):
            continue
        reasons.append(" and ".join(str(available.get(o, f"unknown input {o}")) for o in options))
    return "; ".join(reasons) if reasons else None


def answered(snapshot: MeshSnapshot) -> bool:
    """Did any source answer? (A hand-built snapshot without statuses counts when it has data.)"""
    if not snapshot.sources:
        return bool(snapshot.services or snapshot.edges or snapshot.proxies or snapshot.config)
    return any(s.state is not SourceState.ERROR for s in snapshot.sources)
