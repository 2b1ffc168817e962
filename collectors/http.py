"""HTTP for every source: a total time bound per request, a size cap per response, the run's
deadline, and GETs that never raise for expected failures (they return a Payload with ``error``).

One mechanism, three ways in:

* :func:`http_get` -- what the Envoy admin and Jaeger collectors call; any ``requests.Session``
  passed to it is bounded on first use. Through a :class:`BoundedSession`, a plain ``http://``
  GET that requests would add nothing to (no proxy, credentials or cookies) goes straight
  through the session's urllib3 pool (:meth:`BoundedSession.get_plain`): the same request, the
  same bounds and the same answer or error, at half the CPU (the Envoy fan-out asks hundreds).
* :func:`bounded_session` -- a ``requests.Session`` whose every request (whoever sends it) is
  bounded. For prometheus-api-client::

      session = bounded_session(timeout_s=10, verify=tls_verify(verify_tls, ca_file))
      client = PrometheusConnect(url, session=session, timeout=10, retry=Retry(total=0))

  ``PrometheusConnect`` mounts its own ``HTTPAdapter`` on the URL; a bounded session turns
  that adapter into a :class:`BoundedAdapter` too (keeping its ``max_retries``), so nothing
  else is needed. Failures surface as ``requests`` exceptions: :class:`TotalTimeout` (a
  ``requests.Timeout``) and :class:`ResponseTooLarge` (a ``requests.RequestException``);
  :func:`describe_error` words them.
* :mod:`meshobs.collectors.netbound` -- the same bound for clients that are not ``requests``
  (kubernetes, botocore).

The bounds: ``timeout_s`` is the TOTAL time of one request, from connecting to the last byte
(a source trickling a byte every two seconds is cut off), cut further to what is left of the
run (``--timeout``); a body larger than ``max_bytes`` (default
:data:`~meshobs.collectors.netbound.DEFAULT_MAX_RESPONSE_MB` MB, config ``max_response_mb``) is
abandoned while streaming, never held in memory whole.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, cast
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3.exceptions as urllib3_errors
from requests.adapters import HTTPAdapter
from requests.cookies import extract_cookies_to_jar
from requests.models import PreparedRequest, RequestEncodingMixin
from requests.sessions import merge_setting
from requests.structures import CaseInsensitiveDict
from requests.utils import get_netrc_auth, select_proxy
from urllib3.util import Timeout

from meshobs.durations import seconds
from meshobs.raw import Payload, iso, utc_now

from .netbound import DeadlineExceeded, budget_s, current_run, install, watch

if TYPE_CHECKING:
    from requests.sessions import _Settings

CHUNK = 64 * 1024
DEFAULT_TIMEOUT_S = 10.0
REDIRECTS = frozenset({301, 302, 303, 307, 308})  # the statuses requests follows
# requests' own query encoding (a static method its stubs do not declare)
_encode_query: Callable[[Any], str] = RequestEncodingMixin._encode_params  # type: ignore[attr-defined]


class TotalTimeout(requests.exceptions.Timeout):
    """The request did not complete within its total time (or the run's deadline passed)."""

    def __init__(self, within_s: float, *, run_deadline: bool = False, **kwargs: Any) -> None:
        self.seconds, self.run_deadline = within_s, run_deadline
        super().__init__(f"no complete answer within {seconds(within_s)} s", **kwargs)


class ResponseTooLarge(requests.RequestException):
    """The answer is larger than the size cap; it was not read."""

    def __init__(self, max_bytes: int, **kwargs: Any) -> None:
        self.max_bytes = max_bytes
        super().__init__(f"answer larger than {mb(max_bytes)} MB", **kwargs)


def mb(n_bytes: int) -> str:
    return f"{n_bytes / (1024 * 1024):g}"


class TooLarge(Exception):
    """Raised by :func:`read_capped` (the callers translate it into their library's error)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        super().__init__(f"answer larger than {mb(max_bytes)} MB")


def read_capped(raw: Any, max_bytes: int) -> bytes:
    """Read a urllib3 response's body in chunks, decoded; :class:`TooLarge` past ``max_bytes``."""
    length = (raw.headers or {}).get("Content-Length") if hasattr(raw, "headers") else None
    if length and str(length).isdigit() and int(length) > max_bytes:
        raise TooLarge(max_bytes)
    chunks: list[bytes] = []
    size = 0
    for chunk in raw.stream(CHUNK, decode_content=True):
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def _total_of(timeout: Any) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, tuple):
        values = [float(t) for t in timeout if t is not None]
        return max(values) if values else None
    return float(timeout)


class BoundedAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` that bounds each request's total time and body size.

    ``timeout_s`` caps every request (the ``timeout`` a caller passes caps it further);
    ``max_bytes`` defaults to the run's cap. Bodies are always read here, in chunks, so a
    caller asking for ``stream=True`` still gets a fully read (and capped) response.
    """

    def __init__(self, timeout_s: float | None = None, max_bytes: int | None = None,
                 max_retries: Any = 0, **kwargs: Any) -> None:
        self.timeout_s, self.max_bytes = timeout_s, max_bytes
        super().__init__(max_retries=max_retries, **kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        install(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        install(manager)
        return manager

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: bool | str = True, cert: Any = None, proxies: Mapping[str, str] | None = None,
             ) -> requests.Response:
        def open_response(step: float) -> tuple[Any, requests.Response]:
            resp = super(BoundedAdapter, self).send(request, stream=True, timeout=(step, step), verify=verify,
                                                    cert=cert, proxies=proxies)
            return resp.raw, resp

        resp, content = _read_bounded(self._total(_total_of(timeout)), self.max_bytes or current_run().max_bytes,
                                      request, open_response)
        resp._content = content
        resp._content_consumed = True  # type: ignore[attr-defined]
        return resp

    def send_plain(self, url: str, path_url: str, headers: Mapping[str, str], timeout_s: float) -> PlainAnswer:
        """GET ``path_url`` of ``url``'s host as :meth:`send` would, straight through this adapter's
        urllib3 pool: the same call requests makes (no retries, no redirects followed), its errors
        raised as requests raises them, within the same bounds; without building requests'
        request and response objects (~0.4 ms of CPU a request: 0.3 s of a question that asks
        757 Envoy admin endpoints). See :meth:`BoundedSession.get_plain` for when it applies."""
        pool = self.poolmanager.connection_from_url(url)

        def open_response(step: float) -> tuple[Any, Any]:
            try:
                raw = pool.urlopen(method="GET", url=path_url, body=None, headers=headers, redirect=False,
                                   assert_same_host=False, preload_content=False, decode_content=False,
                                   retries=self.max_retries, timeout=Timeout(connect=step, read=step),
                                   chunked=False)
            except Exception as exc:
                mapped = _as_requests_error(exc)
                if mapped is exc:
                    raise
                raise mapped from exc
            return raw, raw

        raw, content = _read_bounded(self._total(timeout_s), self.max_bytes or current_run().max_bytes,
                                     None, open_response)
        return PlainAnswer(raw.status, raw.headers, content, raw)

    def _total(self, timeout_s: float | None) -> float:
        limits = [t for t in (self.timeout_s, timeout_s) if t is not None]
        return min(limits) if limits else DEFAULT_TIMEOUT_S


class PlainAnswer(NamedTuple):
    """What :meth:`BoundedAdapter.send_plain` received: status, headers, the whole body (decoded
    from its Content-Encoding), and urllib3's response (read and released)."""

    status: int
    headers: Mapping[str, str]
    content: bytes
    raw: Any


def _read_bounded(total: float, max_bytes: int, request: requests.PreparedRequest | None,
                  open_response: Callable[[float], tuple[Any, Any]]) -> tuple[Any, bytes]:
    """The bounds of every request: ``open_response(step)`` sends it (returning urllib3's
    response and what the caller keeps of it) and its body is read here, in chunks, all within
    ``total`` seconds (cut further by the run's deadline) and ``max_bytes``; failures raised as
    :class:`TotalTimeout`, :class:`ResponseTooLarge` or a ``requests`` exception."""
    with watch(total) as w:
        def cut(exc: BaseException | None = None) -> TotalTimeout:
            by_run = current_run().remaining_s() <= 0 or w.seconds < total
            return TotalTimeout(total if not by_run else w.seconds, run_deadline=by_run,
                                request=request)

        if w.expired:
            raise cut()
        step = max(w.remaining_s(), 0.001)
        try:
            raw, kept = open_response(step)
            try:
                content = read_capped(raw, max_bytes)
            finally:
                raw.release_conn()
        except TooLarge:
            kept.close()
            raise ResponseTooLarge(max_bytes, request=request,
                                   response=kept if isinstance(kept, requests.Response) else None) from None
        except DeadlineExceeded:
            raise cut() from None
        except Exception as exc:
            if w.expired:
                raise cut(exc) from exc
            if isinstance(exc, requests.RequestException):
                raise
            # urllib3 errors raised while reading the body (requests wraps only its own reads)
            raise requests.exceptions.ConnectionError(exc, request=request) from exc
        if w.expired:
            # The watch closed the socket mid-body: a body delimited by the connection's end
            # (no Content-Length, not chunked) then ends quietly, cut, like a whole one.
            raise cut()
    return kept, content


def _as_requests_error(exc: BaseException) -> BaseException:
    """The exception requests' ``HTTPAdapter.send`` raises for urllib3's ``exc`` (``exc`` itself
    where requests lets it through), so both ways of asking fail in the same words."""
    errors = requests.exceptions
    if isinstance(exc, (urllib3_errors.ProtocolError, OSError)):
        return errors.ConnectionError(exc)
    if isinstance(exc, urllib3_errors.MaxRetryError):
        reason = exc.reason
        if isinstance(reason, urllib3_errors.ConnectTimeoutError) and \
                not isinstance(reason, urllib3_errors.NewConnectionError):
            return errors.ConnectTimeout(exc)
        if isinstance(reason, urllib3_errors.ResponseError):
            return errors.RetryError(exc)
        return (_named(reason) or errors.ConnectionError)(exc)
    if isinstance(exc, urllib3_errors.ClosedPoolError):
        return errors.ConnectionError(exc)
    named = _named(exc)
    if named is not None:
        return named(exc)
    if isinstance(exc, urllib3_errors.ReadTimeoutError):
        return errors.ReadTimeout(exc)
    if isinstance(exc, urllib3_errors.InvalidHeader):
        return errors.InvalidHeader(exc)
    return exc


# urllib3's errors that requests names after themselves, whether raised alone or as the reason
# of a MaxRetryError (requests' ``HTTPAdapter.send`` checks each at both levels).
_NAMED_ALIKE: tuple[tuple[type[Exception], type[requests.RequestException]], ...] = (
    (urllib3_errors.ProxyError, requests.exceptions.ProxyError),
    (urllib3_errors.SSLError, requests.exceptions.SSLError),
)


def _named(error: BaseException | None) -> type[requests.RequestException] | None:
    """The requests error :data:`_NAMED_ALIKE` pairs with urllib3's ``error`` (None: none)."""
    for theirs, ours in _NAMED_ALIKE:
        if isinstance(error, theirs):
            return ours
    return None


class BoundedSession(requests.Session):
    """A Session whose adapters are all :class:`BoundedAdapter` s, even ones mounted later by a
    library (prometheus-api-client mounts its own on the server's URL)."""

    def __init__(self, timeout_s: float | None = None, max_bytes: int | None = None,
                 pool_size: int | None = None) -> None:
        self.bound_timeout_s, self.bound_max_bytes, self.pool_size = timeout_s, max_bytes, pool_size
        self._settings: dict[tuple[Any, ...], _Settings] = {}
        self._plain: dict[tuple[Any, ...], bool] = {}
        super().__init__()  # mounts the default adapters through self.mount

    def merge_environment_settings(self, url: str | bytes | None, proxies: Any, stream: Any, verify: Any,
                                   cert: Any) -> _Settings:
        """requests' own merge, done once per scheme, host and arguments for the session's life.

        requests reads the environment (every variable, for the proxy settings and
        ``no_proxy``; the CA bundle variables) on every request: ~0.3 ms of CPU each, 0.4 s of
        a question that asks 1,262 Envoy admin endpoints. What it reads depends on the URL's
        scheme and host only (``should_bypass_proxies`` and ``select_proxy`` look at nothing
        else), and the environment does not change while a session asks, so the answer for the
        same scheme, host and arguments is the same. A fresh session reads the environment anew.
        """
        try:
            where = urlsplit(url if isinstance(url, str) else (url or b"").decode())[:2]
            key = (where, _items(proxies), stream, verify, cert, self.trust_env, _items(self.proxies),
                   self.stream, self.verify, self.cert)
            hash(key)
        except (TypeError, ValueError, UnicodeDecodeError):  # unhashable or odd arguments: requests' way
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        found = self._settings.get(key)
        if found is None:
            found = super().merge_environment_settings(url, proxies, stream, verify, cert)
            if len(self._settings) < _SETTINGS_MAX:  # bounded: a session of a few hosts, usually
                self._settings[key] = found
        # The caller's own proxies dict, as requests gives one per request.
        return cast("_Settings", {**found, "proxies": dict(found["proxies"])})

    def get_plain(self, url: str, params: Mapping[str, Any] | None, headers: Mapping[str, str] | None,
                  timeout_s: float) -> PlainAnswer | None:
        """``session.get(url, params=..., headers=..., timeout=...)`` straight through urllib3
        (:meth:`BoundedAdapter.send_plain`), when requests would add nothing to the request but
        its headers; None when it would (then ask requests): a URL other than plain ``http://``
        or carrying credentials, session auth, cookies, params or hooks, a proxy or a netrc
        entry for the host (requests' own lookups, done once per host), a URL requests cannot
        prepare. The request sent is requests' own: its URL (prepared by requests, the query
        encoded once per set of parameters) and headers (the session's merged with ``headers``).
        An answer requests would act on (a redirect, a cookie) is handed to requests: a redirect
        is asked again through ``session.get``, which follows it; cookies go to the session's jar.
        """
        if (url[:7].lower() != "http://" or self.auth is not None or self.params or self.cookies
                or any(self.hooks.values())):
            return None
        adapter = self.get_adapter(url)
        if not isinstance(adapter, BoundedAdapter):
            return None
        try:
            prepared = PreparedRequest()
            prepared.prepare_url(url, None)
            # The session's headers merged with the request's, checked, as requests prepares them.
            prepared.prepare_headers(merge_setting(headers, self.headers,  # type: ignore[no-untyped-call]
                                                   dict_class=CaseInsensitiveDict))
            query = _encoded_params(params)
        except (requests.RequestException, ValueError, TypeError):  # requests says why, in its way
            return None
        full = prepared.url or ""
        if "@" in urlsplit(full).netloc or not self._plain_host(full):
            return None
        path_url = prepared.path_url
        if query:
            path_url += ("&" if "?" in path_url else "?") + query
        sent = prepared.headers
        answer = adapter.send_plain(full, path_url, sent, timeout_s)
        if answer.status in REDIRECTS and "location" in answer.headers:
            return None
        if "set-cookie" in answer.headers:
            cookie_request = PreparedRequest()
            cookie_request.prepare(method="GET", url=url, params=params, headers=sent)
            extract_cookies_to_jar(self.cookies, cookie_request, answer.raw)  # type: ignore[no-untyped-call]
        return answer

    def _plain_host(self, url: str) -> bool:
        """No proxy and no netrc entry for ``url``'s host: what requests decides by the host
        alone, from the environment, read once per host for the session's life."""
        where = urlsplit(url)[:2]
        key = (where, self.trust_env, _items(self.proxies))
        plain = self._plain.get(key)
        if plain is None:
            settings = self.merge_environment_settings(url, {}, None, None, None)
            plain = select_proxy(url, settings["proxies"]) is None and not (
                self.trust_env and get_netrc_auth(url))
            if len(self._plain) < _SETTINGS_MAX:
                self._plain[key] = plain
        return plain

    def mount(self, prefix: str | bytes, adapter: Any) -> None:
        if not isinstance(adapter, BoundedAdapter):
            retries = getattr(adapter, "max_retries", 0)
            size = getattr(self, "pool_size", None)
            # Keep the pool sizes of an adapter a library mounted (prometheus-api-client's caller
            # sizes it to its concurrency), else the session's own.
            pools = ({"pool_connections": getattr(adapter, "_pool_connections", 10),
                      "pool_maxsize": getattr(adapter, "_pool_maxsize", 10)}
                     if isinstance(adapter, HTTPAdapter) else
                     {"pool_connections": max(10, size), "pool_maxsize": max(10, size)} if size else {})
            adapter = BoundedAdapter(getattr(self, "bound_timeout_s", None),
                                     getattr(self, "bound_max_bytes", None), max_retries=retries, **pools)
        super().mount(prefix, adapter)


_SETTINGS_MAX = 16_384  # distinct (scheme, host, arguments) a session remembers (7,415 proxies at 5,000)


_QUERIES: dict[tuple[tuple[str, str], ...], str] = {}  # parameters -> query, as requests encodes them


def _encoded_params(params: Mapping[str, Any] | None) -> str:
    """``params`` as requests encodes them into a query (the stats filter's takes ~0.15 ms),
    remembered for parameters of plain strings."""
    if not params:
        return ""
    items = tuple(params.items())
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in items):
        return _encode_query(params)
    query = _QUERIES.get(items)
    if query is None:
        query = _encode_query(params)
        if len(_QUERIES) < _SETTINGS_MAX:
            _QUERIES[items] = query
    return query


def _items(mapping: Any) -> Any:
    """A mapping as a hashable key (None stays None)."""
    return None if mapping is None else tuple(sorted(mapping.items()))


def tls_verify(verify_tls: bool = True, ca_file: str | None = None) -> bool | str:
    """requests' ``verify`` for a source's ``verify_tls`` and ``ca_file``, the one rule every
    HTTP source follows: ``verify_tls: false`` verifies nothing, whatever ``ca_file`` says
    (the config warns that it goes unused); otherwise the server is verified against ``ca_file``,
    or the system's CAs when there is none."""
    if not verify_tls:
        return False
    return ca_file or True


def bounded_session(*, timeout_s: float | None = None, max_bytes: int | None = None,
                    verify: bool | str = True, headers: Mapping[str, str] | None = None,
                    pool_size: int | None = None) -> BoundedSession:
    """A ``requests.Session`` bounded in total time per request and size per response;
    ``pool_size``: connections kept per host and hosts kept (for many threads at once)."""
    session = BoundedSession(timeout_s, max_bytes, pool_size)
    session.verify = verify
    if headers:
        session.headers.update(headers)
    return session


def ensure_bounded(session: requests.Session) -> requests.Session:
    """Bound a plain Session in place (mounting :class:`BoundedAdapter` for http and https)."""
    if isinstance(session, BoundedSession):
        return session
    for prefix in ("http://", "https://"):
        if not isinstance(session.adapters.get(prefix), BoundedAdapter):
            session.mount(prefix, BoundedAdapter())
    return session


def describe_error(exc: BaseException, url: str, timeout_s: float) -> str:
    """A short, actionable reason for a failed request."""
    if isinstance(exc, ResponseTooLarge):
        return (f"answer from {url} larger than {mb(exc.max_bytes)} MB, not read "
                "(the limit is max_response_mb)")
    if isinstance(exc, TotalTimeout):
        if exc.run_deadline:
            return f"{url} did not answer before the run's deadline (--timeout) passed"
        return f"{url} did not answer within {seconds(exc.seconds)} s (timed out)"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"cannot connect to {url}: timed out after {seconds(timeout_s)} s"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return f"{url} did not answer within {seconds(timeout_s)} s (timed out)"
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


def join_url(base: str, path: str) -> str:
    """``path`` appended to ``base``'s path, keeping ``base``'s query string
    (``http://h/jaeger?orgId=1`` + ``/api/v3/services`` -> ``http://h/jaeger/api/v3/services?orgId=1``);
    requests then adds a request's own ``params`` after it."""
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + path))


def _charset(headers: Mapping[str, str]) -> str:
    ctype = headers.get("Content-Type", "")
    for part in ctype.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and value:
            return value.strip('"')
    # No charset: JSON and Envoy's text are UTF-8 (never guess: guessing reads a big body twice).
    return "utf-8"


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
    """GET ``url`` within ``timeout_s`` in total (and the run's deadline); the Payload holds the
    body text and status, or the error in words."""
    start = time.perf_counter()
    fetched_at = iso(utc_now())
    ensure_bounded(session)

    def failed(reason: str) -> Payload:
        return Payload(key=key, error=reason, url=url, params=dict(params or {}),
                       elapsed_s=time.perf_counter() - start, fetched_at=fetched_at, meta=dict(meta or {}))

    if budget_s(timeout_s) <= 0:
        return failed(f"{url}: not asked, the run's deadline (--timeout) had passed")
    try:
        answer = (session.get_plain(url, params, headers, timeout_s) if isinstance(session, BoundedSession)
                  else None)
        if answer is not None:
            status, content, charset = answer.status, answer.content, _charset(answer.headers)
        else:
            resp = session.get(url, params=params, headers=headers, timeout=timeout_s, verify=verify)
            status, content, charset = resp.status_code, resp.content, _charset(resp.headers)
        try:
            body = content.decode(charset, errors="replace")
        except LookupError:  # an unknown charset name
            body = content.decode("utf-8", errors="replace")
        return Payload(key=key, body=body, status=status, url=url, params=dict(params or {}),
                       elapsed_s=time.perf_counter() - start, fetched_at=fetched_at,
                       meta=dict(meta or {}))
    except requests.RequestException as exc:
        return failed(describe_error(exc, url, timeout_s))
