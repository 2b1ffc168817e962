"""Raw payloads: exactly what a collector's ``fetch`` received, before normalisation.

A bundle stores these, so ``--from bundle`` replays through the very same ``normalize`` code as
a live run. A failed request is a payload too (with ``error`` set), so a replay reproduces the
"could not check" verdicts of the original run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from meshobs.shape import loads


class _Body:
    """``Payload.body``: the text as received, or, for an answer its client already decoded and
    nothing has read as text yet, the text written from those values on its first read
    (:meth:`Payload.text_later`). A live ``diagnose SERVICE`` writes no bundle and reads none of
    Prometheus's answers as text: writing them (~70 ms of CPU per question at 5,000 services,
    on the interpreter the question is bound by) is left to whoever reads them."""

    def __get__(self, payload: Payload | None, owner: type | None = None) -> str | None:
        if payload is None:
            return None  # the field's default
        state = payload.__dict__
        text: str | None = state.get("_body")
        if text is None and (later := state.get("_later")) is not None:
            write, value = later
            text = state["_body"] = write(value)
            state["_later"] = None
        return text

    def __set__(self, payload: Payload, text: str | None) -> None:
        payload.__dict__["_body"] = text
        payload.__dict__["_later"] = None


@dataclass
class Payload:
    """One request and what came back."""

    key: str  # stable within its source: "query:requests", "server_info", "pods/default"
    body: _Body = _Body()
    status: int | None = None
    error: str | None = None
    url: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    elapsed_s: float = 0.0
    fetched_at: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    # The body as the collector's client already decoded it (the values ``body`` parses to),
    # handed to the first json() call and forgotten: a big answer is not decoded twice. Never
    # written to a bundle.
    decoded: Any = field(default=None, repr=False, compare=False)

    def text_later(self, value: Any, write: Callable[[Any], str]) -> None:
        """The body is ``write(value)``, written when first read (``value``: the answer as
        decoded, never changed afterwards); ``decoded`` is ``value``."""
        self.body = None
        self.__dict__["_later"] = (write, value)
        self.decoded = value

    def has_body(self) -> bool:
        """Is there a body (read or not yet written)? Writes nothing."""
        return self.__dict__.get("_body") is not None or self.__dict__.get("_later") is not None

    def json(self) -> Any:
        """The body parsed as JSON; raises ``ValueError`` naming the payload when it is not."""
        if self.decoded is not None and self.has_body():
            value, self.decoded = self.decoded, None
            return value
        if self.body is None:
            raise ValueError(f"{self.key}: no body ({self.error or 'empty response'})")
        try:
            return loads(self.body)
        except json.JSONDecodeError as exc:
            snippet = self.body[:60].replace("\n", " ")
            raise ValueError(f"{self.key}: not valid JSON ({exc.msg} at char {exc.pos}; "
                             f"starts {snippet!r})") from None
        except RecursionError:
            raise ValueError(f"{self.key}: JSON nested too deeply to read") from None

    @property
    def ok(self) -> bool:
        return self.error is None and (self.status is None or 200 <= self.status < 300)

    def failure(self) -> str | None:
        """Why this payload is unusable, in words; ``None`` when it is usable."""
        if self.error:
            return self.error
        if self.status is not None and not 200 <= self.status < 300:
            snippet = (self.body or "").strip().splitlines()[0][:120] if (self.body or "").strip() else ""
            return f"HTTP {self.status}" + (f": {snippet}" if snippet else "")
        return None


@dataclass
class RawSource:
    """Everything one source instance returned (``prometheus``, ``envoy:default/cart-v1-x``)."""

    name: str
    kind: str
    payloads: list[Payload] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # the whole source failed before any payload (bad config ...)
    duration_s: float = 0.0
    # Set when the source was normalised as soon as it arrived and its bodies dropped (no
    # bundle being recorded): the SnapshotPart that normalize made of it. Never written to a bundle.
    part: Any = field(default=None, repr=False, compare=False)
    # (SnapshotPart, n): what normalize made of the first n payloads, before more were appended
    # (a scoped question's second phase); a collector that can read only the rest does so.
    earlier: Any = field(default=None, repr=False, compare=False)

    def drop_bodies(self) -> None:
        """Forget the payloads' bodies (the big part), keeping what was asked and how it went."""
        for p in self.payloads:
            p.body = p.decoded = None

    def get(self, key: str) -> Payload | None:
        for p in self.payloads:
            if p.key == key:
                return p
        return None

    def add(self, payload: Payload) -> Payload:
        self.payloads.append(payload)
        return payload

    @contextmanager
    def timed(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.duration_s = time.perf_counter() - start


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> datetime:
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    ts = datetime.fromisoformat(text)
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
