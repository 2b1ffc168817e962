"""Which Prometheus servers stopped answering during a run: one record per server URL, for the
whole run.

A server that accepts requests and never answers them (a hung Prometheus, a proxy holding the
requests) costs every request sent to it a full timeout. Several readers ask one Prometheus in a
run: the collector's queries, in one phase or two (``diagnose SERVICE``: the call graph, then
the neighbourhood), and the Envoy collector's query for the proxies' scraped stats. Each tells
the record what became of its requests, and each asks it before sending: once
:data:`SILENT_AFTER` requests ran out their timeout without a word and none was answered, the
server is silent for the rest of the run, and nothing more is sent to it (each wave of requests
would wait as long again).

The record lives in the run's :class:`~meshobs.collectors.base.FetchContext` (``servers``),
shared by its phases, so a new run (a dashboard refresh, a ``--baseline`` window) asks again.
"""

from __future__ import annotations

import threading

# Requests left unanswered past their timeout, with none answered at all, after which a run sends
# a server no more: a hung Prometheus held a mesh-wide run four timeouts, now two.
SILENT_AFTER = 2


class ServerRecord:
    """What one server did with the run's requests so far."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        self.answered = 0  # requests it answered at all (an error, its own "timed out", too)
        self.unanswered = 0  # requests it let run past their timeout without a word

    def heard(self) -> None:
        """The server answered a request (whatever it said): it is alive."""
        with self._lock:
            self.answered += 1

    def no_answer(self) -> None:
        """A request ran out its timeout and the server had said nothing."""
        with self._lock:
            self.unanswered += 1

    def silent(self) -> str | None:
        """Why nothing more is sent to the server in this run; None while it may answer."""
        with self._lock:
            if self.answered or self.unanswered < SILENT_AFTER:
                return None
            n = self.unanswered
        return f"Prometheus at {self.url} answered none of the {n} queries sent before this one within their timeout"


class ServerRecords:
    """The run's records, by server URL (a trailing slash ignored)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_url: dict[str, ServerRecord] = {}

    def of(self, url: str) -> ServerRecord:
        key = url.rstrip("/")
        with self._lock:
            record = self._by_url.get(key)
            if record is None:
                record = self._by_url[key] = ServerRecord(key)
            return record
