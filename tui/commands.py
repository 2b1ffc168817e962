"""The ``:`` prompt: k9s-style commands, parsed and completed (pure, no textual).

``:svc [NAME]``, ``:proxies``, ``:findings``, ``:graph [NAME]``, ``:sources``, ``:ns [NAME]``
(no name: every namespace), ``:range 15m``, ``:at 2026-11-20T11:00:00Z|now``, ``:help``, ``:q``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# verb -> aliases (the first spelling is what the help shows).
VERBS: dict[str, tuple[str, ...]] = {
    "svc": ("services", "service", "svcs"),
    "proxies": ("proxy", "px", "pods", "po", "envoy"),
    "findings": ("finding", "fi"),
    "graph": ("g",),
    "sources": ("source", "src"),
    "ns": ("namespace", "namespaces"),
    "range": ("window", "w"),
    "at": ("time",),
    "help": ("h", "?"),
    "quit": ("q", "q!", "exit"),
}
ARG_VERBS = ("svc", "graph", "ns", "range", "at")  # the ones that take a word
RANGES = ("5m", "15m", "1h", "6h")
HINT = "svc [NAME]  proxies  findings  graph [NAME]  sources  ns NAME  range 15m  at TIME|now  q"


@dataclass(frozen=True)
class Command:
    verb: str  # one of VERBS
    arg: str = ""


def _verb(word: str) -> str | None:
    word = word.lower()
    for verb, aliases in VERBS.items():
        if word == verb or word in aliases:
            return verb
    return None


def parse(text: str) -> Command:
    """``":ns shop"`` -> Command("ns", "shop"); ValueError saying what is known otherwise."""
    words = text.strip().lstrip(":").split(None, 1)
    if not words:
        raise ValueError(f"type a command: {HINT}")
    verb = _verb(words[0])
    if verb is None:
        import difflib

        close = difflib.get_close_matches(words[0].lower(), list(VERBS), n=1, cutoff=0.5)
        guess = f"did you mean :{close[0]}? " if close else ""
        raise ValueError(f"unknown command :{words[0]} ({guess}known: {', '.join(VERBS)})")
    arg = words[1].strip() if len(words) > 1 else ""
    if arg and verb not in ARG_VERBS:
        raise ValueError(f":{verb} takes no argument")
    if verb in ("range", "at") and not arg:
        raise ValueError(f":{verb} needs a value: :range {'|'.join(RANGES)}, :at 2026-11-20T11:00:00Z or :at now")
    return Command(verb, arg)


def candidates(text: str, namespaces: Sequence[str] = (), services: Sequence[str] = ()) -> list[str]:
    """Full command lines that complete ``text`` (for the suggestion and the hint)."""
    text = text.lstrip(":")
    if " " not in text:
        word = text.lower()
        return [v for v in VERBS if v.startswith(word)] or \
               [v for v, aliases in VERBS.items() if any(a.startswith(word) for a in aliases)]
    head, _, tail = text.partition(" ")
    verb = _verb(head)
    options: Iterable[str] = ()
    if verb == "ns":
        options = namespaces
    elif verb in ("svc", "graph"):
        options = services
    elif verb == "range":
        options = RANGES
    elif verb == "at":
        options = ("now",)
    tail = tail.lstrip().lower()
    # A service completes from its name too ("ca" -> shop/cart-service).
    return [f"{head} {o}" for o in options if o.lower().startswith(tail) or o.lower().split("/")[-1].startswith(tail)]


def complete(text: str, namespaces: Sequence[str] = (), services: Sequence[str] = ()) -> str | None:
    """The first completion of ``text`` that adds to it (None when there is none)."""
    typed = text.lstrip(":")
    for c in candidates(text, namespaces, services):
        if len(c) > len(typed) or c != typed:
            return c
    return None
