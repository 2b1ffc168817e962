"""A Prometheus that accepts queries and never answers them (a hung server, a proxy holding the
requests) costs a live ``diagnose SERVICE`` the graph phase's timeouts only: the scoped phase
does not send its queries too, wave after wave of them, each its own timeout again (it took five
timeouts, 50 s with the default 10 s, to say "no query answered"). Within one run, once two
queries ran out their timeout and none has been answered, the rest are not sent (a mesh-wide
run took four timeouts). A server that answered anything is asked as before."""

from __future__ import annotations

import time
from urllib.parse import unquote

from meshobs.cli.diagnose import scoped_question
from meshobs.collect import _silent, collect
from meshobs.collectors.prometheus.fetch import SILENT_AFTER
from meshobs.config import validate
from meshobs.raw import Payload, RawSource
from tests.support.faults import Fault, FaultServer

TIMEOUT_S = 1.0


def _config(url: str) -> object:
    return validate({"sources": {"prometheus": {"url": url, "timeout": f"{TIMEOUT_S:g}s"}}})


def _keys(bundle: object) -> list[str]:
    return [p.key for s in bundle.sources for p in s.payloads]  # type: ignore[attr-defined]


def test_a_hung_prometheus_is_not_asked_again_by_the_scoped_phase() -> None:
    with FaultServer(lambda _path: Fault.hang()) as srv:
        start = time.monotonic()
        bundle = collect(_config(srv.url), deadline=start + 60,  # type: ignore[arg-type]
                         question=scoped_question("shop/cart-service", None))
        took = time.monotonic() - start
        asked = len(srv.paths)
    # The recording-rule detection, then the graph's edge queries together: two timeouts. The
    # scoped phase's dozen queries at a concurrency of 4 added three more.
    assert took < 3 * TIMEOUT_S + 1.0, took
    keys = _keys(bundle)
    assert "query:edges" in keys and "query:requests" not in keys and "query:controlplane" not in keys
    assert asked == len(keys)
    (source,) = bundle.sources
    assert source.meta["scoped_not_asked"]
    assert all(p.meta.get("no_answer") for p in source.payloads)


def test_a_prometheus_that_answers_anything_is_asked_by_the_scoped_phase() -> None:
    empty = '{"status": "success", "data": {"resultType": "vector", "result": []}}'

    def answer(path: str) -> Fault:
        # The recording-rule detection answers (none); every other query hangs.
        detection = "group by (__name__)" in unquote(path).replace("+", " ")
        return Fault.ok(empty) if detection else Fault.hang()

    with FaultServer(answer) as srv:
        start = time.monotonic()
        bundle = collect(_config(srv.url), deadline=start + 60,  # type: ignore[arg-type]
                         question=scoped_question("shop/cart-service", None))
    keys = _keys(bundle)
    assert "query:edges" in keys and "query:requests" in keys
    assert all("scoped_not_asked" not in s.meta for s in bundle.sources)
    errors = [p.error or "" for s in bundle.sources for p in s.payloads]
    assert not any(e.startswith("not sent") for e in errors), errors


def test_a_hung_prometheus_is_sent_no_more_once_two_queries_ran_out() -> None:
    with FaultServer(lambda _path: Fault.hang()) as srv:
        start = time.monotonic()
        bundle = collect(_config(srv.url), deadline=start + 60)  # type: ignore[arg-type]  # mesh-wide
        took = time.monotonic() - start
    # The rule detection alone, then the first wave: two timeouts (it was four).
    assert took < 2 * TIMEOUT_S + 1.0, took
    payloads = [p for s in bundle.sources for p in s.payloads]
    unanswered = [p for p in payloads if p.meta.get("no_answer")]
    not_sent = [p for p in payloads if (p.error or "").startswith("not sent: Prometheus")]
    assert len(unanswered) >= SILENT_AFTER and not_sent
    assert not any(p.ok for p in payloads)


def _source(*payloads: Payload) -> RawSource:
    return RawSource(name="prometheus", kind="prometheus", payloads=list(payloads))


def test_silent_needs_every_query_unanswered() -> None:
    hung = Payload(key="query:edges", error="query edges timed out after 1 s",
                   meta={"timed_out": 1.0, "no_answer": True})
    gave_up = Payload(key="query:failing", error="query failing timed out after 1 s (the server gave up)",
                      meta={"timed_out": 1.0})
    late = Payload(key="query:tcp_edges", error="not sent: the run's deadline had passed", meta={"timed_out": 0.0})
    answered = Payload(key="rules", body="{}", status=200)
    assert set(_silent([_source(hung, late)])) == {"prometheus"}
    assert _silent([_source(hung, gave_up)]) == {}  # the server answered its own timeout: alive
    assert _silent([_source(hung, answered)]) == {}
    assert _silent([_source(late)]) == {}  # the deadline, not the server (collect._held_up)
    assert _silent([_source()]) == {}
    assert _silent([RawSource(name="jaeger", kind="jaeger", payloads=[hung])]) == {}
