"""Shared boto3 plumbing for the AWS collectors (CloudWatch, X-Ray, App Mesh).

One place builds clients (region, profile, endpoint_url, botocore retry mode and timeouts,
the standard credential chain) and one place turns a boto3 call into a :class:`Payload`:
the response as JSON (without ``ResponseMetadata``; datetimes as ISO strings) or the failure
in words. Nothing from the credentials is ever put in a payload or a message: access key ids
that an error text happens to echo are redacted.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime
from typing import Any

from meshobs.durations import parse_duration, seconds
from meshobs.raw import Payload, iso, utc_now

from .netbound import DeadlineExceeded, install_boto, watch

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MAX_ATTEMPTS = 5
RETRY_MODES = ("standard", "adaptive")
_ACCESS_KEY = re.compile(r"\b(AKIA|ASIA|AIDA|AROA)[A-Z0-9]{12,20}\b")
_THROTTLE_CODES = {"Throttling", "ThrottlingException", "ThrottledException", "TooManyRequestsException",
                   "RequestLimitExceeded", "RequestThrottled", "RequestThrottledException",
                   "ProvisionedThroughputExceededException", "LimitExceededException"}
_DENIED_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
                 "UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken",
                 "ExpiredTokenException", "InvalidSignatureException", "SignatureDoesNotMatch"}


class _Cut(Exception):
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


class AwsSetupError(Exception):
    """A client could not be built (unknown profile, no region ...); the message says what to set."""


def redact(text: str) -> str:
    """``text`` with anything shaped like an AWS access key id replaced."""
    return _ACCESS_KEY.sub("<redacted-key-id>", text)


def timeout_of(section: Mapping[str, Any], default: float = DEFAULT_TIMEOUT_S) -> float:
    raw = section.get("timeout")
    return float(parse_duration(raw)) if raw is not None else default


def make_client(service: str, section: Mapping[str, Any], *, config_key: str | None = None) -> Any:
    """A boto3 client for ``service`` configured from a ``sources.<kind>`` section.

    Keys used: ``region``, ``profile``, ``endpoint_url``, ``timeout``, ``retry_mode``
    (``standard`` | ``adaptive``) and ``max_attempts``. Credentials come from the standard boto3
    chain (environment, shared files / profile, SSO, container or instance role); none is read here.
    Raises :class:`AwsSetupError` with an actionable message when the client cannot be built.
    """
    where = f"sources.{config_key or service}"
    try:
        import boto3
        import botocore.config
        import botocore.exceptions
    except ImportError:  # an optional dependency: Istio-only installs do without it
        raise AwsSetupError(f"{where} needs boto3, which is not installed: pip install 'meshobs[aws]'") from None

    timeout = timeout_of(section)
    retry_mode = str(section.get("retry_mode") or "standard")
    attempts = int(section.get("max_attempts") or DEFAULT_MAX_ATTEMPTS)
    cfg = botocore.config.Config(
        retries={"mode": retry_mode, "max_attempts": attempts},  # type: ignore[typeddict-item]
        connect_timeout=timeout, read_timeout=timeout,
        user_agent_extra="meshobs",
    )
    try:
        session = boto3.Session(profile_name=section.get("profile") or None,
                                region_name=section.get("region") or None)
        if session.region_name is None:
            raise AwsSetupError(f"no AWS region for {service}: set {where}.region or AWS_REGION")
        client = session.client(service, endpoint_url=section.get("endpoint_url") or None, config=cfg)
    except botocore.exceptions.ProfileNotFound:
        raise AwsSetupError(f"AWS profile {section.get('profile')!r} not found in the shared config/"
                            f"credentials files: check {where}.profile") from None
    except botocore.exceptions.NoRegionError:
        raise AwsSetupError(f"no AWS region for {service}: set {where}.region or AWS_REGION") from None
    except ValueError as exc:  # e.g. a malformed endpoint_url
        raise AwsSetupError(f"cannot build the {service} client: {redact(str(exc))}: check "
                            f"{where}.endpoint_url") from None
    # botocore's timeouts apply per read; this bounds each call's total time (see call()).
    install_boto(client)
    client.meta.meshobs_total_s = timeout * attempts  # every attempt may use its whole timeout
    return client


def endpoint_of(client: Any) -> str:
    try:
        return str(client.meta.endpoint_url)
    except AttributeError:
        return "AWS"


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"cannot serialise {type(value).__name__}")


def response_json(response: Mapping[str, Any]) -> str:
    """A boto3 response as JSON text, without ``ResponseMetadata`` (request ids, headers)."""
    return json.dumps({k: v for k, v in response.items() if k != "ResponseMetadata"},
                      default=_default, sort_keys=True)


def params_json(params: Mapping[str, Any]) -> dict[str, Any]:
    """Request parameters in JSON-safe form (datetimes as ISO strings)."""
    return json.loads(json.dumps(dict(params), default=_default))  # type: ignore[no-any-return]


def error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        code = (response.get("Error") or {}).get("Code")
        return str(code) if code else None
    return None


def describe_error(exc: BaseException, service: str, operation: str, endpoint: str) -> str:
    """What failed, where, and what to do, for a failed boto3 call."""
    import botocore.exceptions as bce

    where = f"{service} {operation} at {endpoint}"
    if isinstance(exc, bce.NoCredentialsError | bce.PartialCredentialsError):
        return (f"{where}: no AWS credentials found (standard chain: environment, shared credentials "
                f"file or profile, SSO, container or instance role); configure one of them")
    if isinstance(exc, bce.EndpointConnectionError | bce.ConnectTimeoutError):
        return f"cannot reach {endpoint} for {service} {operation} ({type(exc).__name__}): check the network " \
               f"and the endpoint_url / region"
    if isinstance(exc, bce.ReadTimeoutError):
        return f"{where} did not answer in time (read timeout): raise the source's timeout"
    if isinstance(exc, bce.ClientError):
        code = error_code(exc) or "Error"
        message = str((exc.response.get("Error") or {}).get("Message") or "")
        attempts = (exc.response.get("ResponseMetadata") or {}).get("RetryAttempts")
        if code in _THROTTLE_CODES:
            tried = f" after {int(attempts) + 1} attempts" if attempts is not None else ""
            return redact(f"{where}: throttled by AWS ({code}){tried}: retry later, lower the query "
                          f"volume, or set retry_mode: adaptive / a higher max_attempts")
        if code in _DENIED_CODES:
            return redact(f"{where}: {code}: {message or 'access denied'}: the credentials need "
                          f"permission for {service}:{operation}")
        return redact(f"{where}: {code}: {_plain(message)}".rstrip(": "))
    if isinstance(exc, bce.BotoCoreError):
        return redact(f"{where}: {exc}")
    return redact(f"{where}: {type(exc).__name__}: {exc}")


def call(client: Any, operation: str, key: str, params: Mapping[str, Any], *,
         service: str, meta: Mapping[str, Any] | None = None) -> tuple[Payload, dict[str, Any] | None]:
    """Run ``client.<operation>(**params)``; never raises for AWS or network failures.

    ``operation`` is the boto3 method name (``get_metric_data``). Returns the payload (body =
    the response as JSON, or ``error`` set) and the parsed response.
    """
    result = _timed(client, operation, key, params, service=service, meta=meta,
                    send=lambda: getattr(client, operation)(**params))
    assert result is not None  # a single call always answers or fails
    return result


def pages(client: Any, operation: str, key: str, params: Mapping[str, Any], *, service: str,
          first: int = 0, max_pages: int = 100, meta: Mapping[str, Any] | None = None,
          stop: Callable[[], bool] | None = None) -> Iterator[tuple[Payload, dict[str, Any] | None]]:
    """Every page of ``operation`` through boto3's own paginator, one payload per page.

    Keys are ``{key}/{first + n}``; each page's recorded params carry the token that asked for
    it, so a bundle says how it was paged. Stops after a failed page (yielded with ``None``),
    after ``max_pages`` (whatever the server keeps answering), or when ``stop()`` says so
    before a page (the run's deadline). Never raises for AWS or network failures.
    """
    paginator = client.get_paginator(operation)
    # The service model's names for the token (NextToken, nextToken), to record each page's.
    cfg = getattr(paginator, "_pagination_cfg", None) or {}
    token_in, token_out = (_first(cfg.get(k, "NextToken")) for k in ("input_token", "output_token"))
    responses = iter(paginator.paginate(**params, PaginationConfig={"MaxItems": None}))
    asked: dict[str, Any] = dict(params)
    for n in range(max_pages):
        if stop is not None and stop():
            return
        result = _timed(client, operation, f"{key}/{first + n}", asked, service=service,
                        meta=meta if n == 0 else None, send=lambda: next(responses))
        if result is None:
            return  # the last page was the one before
        payload, body = result
        yield payload, body
        token = body.get(token_out) if body else None
        if not token:
            return
        asked = {**params, token_in: token}


def _first(names: str | list[str]) -> str:
    return names[0] if isinstance(names, list) else names


def _timed(client: Any, operation: str, key: str, params: Mapping[str, Any], *, service: str,
           meta: Mapping[str, Any] | None, send: Callable[[], Any]) -> tuple[Payload, dict[str, Any] | None] | None:
    """``send()`` bounded by the client's total time, as a payload; None when it says
    StopIteration (a paginator with nothing more)."""
    import botocore.exceptions as bce

    start = time.perf_counter()
    fetched_at = iso(utc_now())
    endpoint = endpoint_of(client)
    total = float(getattr(client.meta, "meshobs_total_s", DEFAULT_TIMEOUT_S * DEFAULT_MAX_ATTEMPTS))
    try:
        with watch(total) as w:
            try:
                if w.expired:
                    raise DeadlineExceeded("the run's deadline had passed")
                response = send()
            except StopIteration:
                return None
            except Exception as exc:
                if w.expired or isinstance(exc, DeadlineExceeded):
                    raise _Cut(w.seconds) from exc
                raise
    except _Cut as cut:
        payload = Payload(key=key, error=f"{service} {_api_name(operation)} at {endpoint} did not complete "
                                         f"within {seconds(cut.seconds)} s (timed out, retries included)",
                          url=endpoint, params=params_json(params), elapsed_s=time.perf_counter() - start,
                          fetched_at=fetched_at, meta={**dict(meta or {}), "error_code": "Timeout"})
        return payload, None
    except (bce.BotoCoreError, bce.ClientError) as exc:
        payload = Payload(key=key, error=describe_error(exc, service, _api_name(operation), endpoint),
                          url=endpoint, params=params_json(params), elapsed_s=time.perf_counter() - start,
                          fetched_at=fetched_at, meta={**dict(meta or {}), "error_code": error_code(exc)})
        return payload, None
    attempts = (response.get("ResponseMetadata") or {}).get("RetryAttempts", 0)
    body = response_json(response)
    payload = Payload(key=key, body=body, status=200, url=endpoint, params=params_json(params),
                      elapsed_s=time.perf_counter() - start, fetched_at=fetched_at,
                      meta={**dict(meta or {}), "retry_attempts": attempts})
    return payload, json.loads(body)


def _plain(message: str) -> str:
    """An error text without HTML markup (proxies and test servers answer HTML pages), short."""
    if "<" in message and ">" in message:
        title = re.search(r"<title>(.*?)</title>", message, re.S | re.I)
        message = title.group(1) if title else re.sub(r"<[^>]+>", " ", message)
    return " ".join(message.split())[:200]


def _api_name(operation: str) -> str:
    """``get_metric_data`` -> ``GetMetricData`` (the name AWS documents)."""
    return "".join(part.capitalize() for part in operation.split("_"))
