"""Fetching from Prometheus: the instant and range queries of :mod:`meshobs.collectors.promql`.

Five instant queries for the whole mesh at the evaluation time, plus the range queries for the
history sparklines, through prometheus-api-client. Every answer is kept as received; a failed
query is a Payload with ``error`` set, never an exception.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import requests
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from urllib3.util.retry import Retry

from meshobs.durations import format_duration
from meshobs.raw import Payload, RawSource, iso, utc_now

from ..base import FetchContext
from ..http import bounded_session, describe_error
from ..promql import QUERIES, RANGE_QUERIES, render, render_range, series_step_s
from .labels import KIND

DEFAULT_TIMEOUT_S = 10.0


class PrometheusCollector:
    """Queries one Prometheus for the whole mesh with a constant number of queries."""

    kind = KIND

    def __init__(self, url: str, *, headers: dict[str, str] | None = None, verify_tls: bool = True,
                 ca_file: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        # Bounded: each query's total time (a trickling server is cut off), the answer's size.
        session = bounded_session(timeout_s=timeout_s)
        session.verify = (ca_file or True) if verify_tls else False
        # No automatic retries: a failing Prometheus should be reported at once, not after
        # the library's default back-off (seconds per query).
        self.client = PrometheusConnect(url=self.url, headers=headers or None, session=session,  # type: ignore[arg-type]
                                        timeout=timeout_s,  # type: ignore[arg-type]
                                        retry=Retry(total=0, raise_on_status=False))

    def fetch(self, ctx: FetchContext) -> list[RawSource]:
        """Run every query at ``ctx.time``; a failed query is a payload with ``error``."""
        raw = RawSource(name="prometheus", kind=KIND, meta={"url": self.url})
        ts = ctx.time.timestamp()
        window = format_duration(ctx.window_s)
        unreachable: str | None = None
        with raw.timed():
            for name in QUERIES:
                promql = render(name, window)
                if unreachable is not None:
                    # The server is down or hung: do not wait out the timeout once per query.
                    raw.add(Payload(key=f"query:{name}", url=f"{self.url}/api/v1/query",
                                    params={"query": promql, "time": ts},
                                    error=f"not sent: {unreachable}"))
                    continue
                payload = raw.add(self._query(name, promql, ts))
                if payload.meta.get("unreachable"):
                    unreachable = payload.error
            if unreachable is None:
                for name in RANGE_QUERIES:
                    raw.add(self._range(name, render_range(name, ctx.window_s), ctx))
        return [raw]

    def _range(self, name: str, promql: str, ctx: FetchContext) -> Payload:
        """One history query over the window; failures only cost the sparklines."""
        step = series_step_s(ctx.window_s)
        end = ctx.time
        start = datetime.fromtimestamp(end.timestamp() - ctx.window_s, tz=UTC)
        payload = Payload(key=f"range:{name}", url=f"{self.url}/api/v1/query_range",
                          params={"query": promql, "start": start.timestamp(), "end": end.timestamp(),
                                  "step": step}, fetched_at=iso(utc_now()))
        t0 = time.perf_counter()
        try:
            result = self.client.custom_query_range(promql, start_time=start, end_time=end, step=f"{step:g}s")
            payload.body = json.dumps({"resultType": "matrix", "result": result})
            payload.status = 200
        except PrometheusApiClientException as exc:
            payload.error = f"Prometheus at {self.url} answered {_http_reason(str(exc))} to range query {name}"
        except requests.RequestException as exc:
            payload.error = describe_error(exc, self.url, self.timeout_s)
        except (KeyError, TypeError, ValueError) as exc:
            payload.error = f"Prometheus at {self.url} answered range query {name} unexpectedly ({exc})"
        payload.elapsed_s = time.perf_counter() - t0
        return payload

    def _query(self, name: str, promql: str, ts: float) -> Payload:
        start, fetched_at = time.perf_counter(), iso(utc_now())
        payload = Payload(key=f"query:{name}", url=f"{self.url}/api/v1/query",
                          params={"query": promql, "time": ts}, fetched_at=fetched_at)
        try:
            result = self.client.custom_query(promql, params={"time": ts})
            payload.body = json.dumps({"resultType": "vector", "result": result})
            payload.status = 200
        except PrometheusApiClientException as exc:
            payload.error = f"Prometheus at {self.url} answered {_http_reason(str(exc))} to query {name}"
        except requests.exceptions.JSONDecodeError:
            payload.error = (f"Prometheus at {self.url} answered query {name} with a body that is "
                             f"not JSON: is sources.prometheus.url the Prometheus server?")
        except requests.RequestException as exc:
            reason = describe_error(exc, self.url, self.timeout_s)
            reason = reason.replace(self.url, f"Prometheus at {self.url}", 1)
            payload.error = f"{reason}: check sources.prometheus.url"
            payload.meta["unreachable"] = isinstance(exc, (requests.ConnectionError, requests.Timeout))
        except (KeyError, TypeError) as exc:
            payload.error = (f"Prometheus at {self.url} answered query {name} with an unexpected "
                             f"JSON shape (missing {exc}): is this a Prometheus query API?")
        payload.elapsed_s = time.perf_counter() - start
        return payload


def _http_reason(text: str) -> str:
    # The library's message is "HTTP Status Code 500 (b'...')": keep the status and a snippet.
    head, _, rest = text.partition(" (")
    return head.replace("HTTP Status Code", "HTTP") + (f" ({rest[:120]}" if rest else "")
