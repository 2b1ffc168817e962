"""Plain HTTP GETs that never raise for expected failures: they return a Payload with ``error``.

Used by the Envoy admin and Jaeger collectors (Prometheus goes through prometheus-api-client,
Kubernetes through the kubernetes client, AWS through boto3).
"""

from __future__ import annotations

import time
from typing import Any

import requests

from meshobs.raw import Payload, iso, utc_now


def describe_error(exc: BaseException, url: str, timeout_s: float) -> str:
    """A short, actionable reason for a failed request."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"cannot connect to {url}: timed out after {timeout_s:g} s"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return f"{url} did not answer within {timeout_s:g} s (timed out)"
    if isinstance(exc, requests.exceptions.SSLError):
        return f"TLS error talking to {url}: {_root(exc)}"
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = _root(exc)
        if "refused" in reason.lower():
            reason = "connection refused"
        elif "name or service not known" in reason.lower() or "nodename nor servname" in reason.lower():
            reason = "host name not found"
        return f"cannot reach {url} ({reason})"
    return f"request to {url} failed: {_root(exc)}"


def _root(exc: BaseException) -> str:
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    text = str(exc) or type(exc).__name__
    return text.split("] ")[-1][:200]


def http_get(
    session: requests.Session,
    url: str,
    key: str,
    *,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout_s: float = 5.0,
    verify: bool | str = True,
    meta: dict[str, Any] | None = None,
) -> Payload:
    """GET ``url``; the Payload holds the body text and status, or the error in words."""
    start = time.perf_counter()
    fetched_at = iso(utc_now())
    try:
        resp = session.get(url, params=params, headers=headers, timeout=timeout_s, verify=verify)
        body = resp.text
        return Payload(key=key, body=body, status=resp.status_code, url=url, params=dict(params or {}),
                       elapsed_s=time.perf_counter() - start, fetched_at=fetched_at,
                       meta=dict(meta or {}))
    except requests.RequestException as exc:
        return Payload(key=key, error=describe_error(exc, url, timeout_s), url=url,
                       params=dict(params or {}), elapsed_s=time.perf_counter() - start,
                       fetched_at=fetched_at, meta=dict(meta or {}))
