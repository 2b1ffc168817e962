"""A GET straight through urllib3 (``BoundedAdapter.send_plain``) names urllib3's errors as
requests' own ``HTTPAdapter.send`` names them, whether urllib3 raises one alone or as the reason
of a ``MaxRetryError``: asked of requests itself, here, for each error."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import urllib3.exceptions as u3
from requests.adapters import HTTPAdapter

from meshobs.collectors.http import _as_requests_error

ERRORS: dict[str, BaseException] = {
    "proxy": u3.ProxyError("proxy said no", OSError("refused")),
    "tls": u3.SSLError("certificate verify failed"),
    "read timeout": u3.ReadTimeoutError(None, "/", "read timed out"),  # type: ignore[arg-type]
    "invalid header": u3.InvalidHeader("bad"),
    "closed pool": u3.ClosedPoolError(None, "closed"),  # type: ignore[arg-type]
    "protocol": u3.ProtocolError("aborted"),
    "os": ConnectionResetError("reset"),
    "new connection": u3.NewConnectionError(None, "refused"),  # type: ignore[arg-type]
}
REASONS: dict[str, BaseException] = {
    "proxy": u3.ProxyError("proxy said no", OSError("refused")),
    "tls": u3.SSLError("certificate verify failed"),
    "connect timeout": u3.ConnectTimeoutError("timed out"),
    "new connection": u3.NewConnectionError(None, "refused"),  # type: ignore[arg-type]
    "too many redirects": u3.ResponseError("too many redirects"),
    "other": u3.HTTPError("other"),
}


class _RaisingPool:
    def __init__(self, error: BaseException) -> None:
        self.error = error

    def urlopen(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error


def _raised_by_requests(error: BaseException) -> type[BaseException]:
    """What requests' ``HTTPAdapter.send`` raises when urllib3's pool raises ``error``."""
    adapter = HTTPAdapter(max_retries=0)
    pool = _RaisingPool(error)
    # requests >= 2.32 asks connection_from_host, older ones connection_from_url
    adapter.poolmanager.connection_from_host = lambda *a, **k: pool  # type: ignore[method-assign]
    adapter.poolmanager.connection_from_url = lambda *a, **k: pool  # type: ignore[method-assign]
    prepared = requests.Request("GET", "http://127.0.0.1:9/server_info").prepare()
    try:
        adapter.send(prepared, timeout=1)
    except BaseException as exc:  # whatever requests raises is the answer
        return type(exc)
    raise AssertionError("requests raised nothing")


@pytest.mark.parametrize("error", list(ERRORS.values()), ids=list(ERRORS))
def test_an_error_alone_is_named_as_requests_names_it(error: BaseException) -> None:
    assert type(_as_requests_error(error)) is _raised_by_requests(error)


@pytest.mark.parametrize("reason", list(REASONS.values()), ids=list(REASONS))
def test_a_max_retry_reason_is_named_as_requests_names_it(reason: BaseException) -> None:
    error = u3.MaxRetryError(None, "/server_info", reason)  # type: ignore[arg-type]
    assert type(_as_requests_error(error)) is _raised_by_requests(error)
