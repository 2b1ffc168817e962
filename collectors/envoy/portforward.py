"""Reach a pod's Envoy admin port through the Kubernetes port-forward API (no kubectl needed).

Each proxy gets its own ``ApiClient``: ``kubernetes.stream.portforward`` swaps the client's
request method while it runs, so sharing one client across worker threads is not safe.
HTTP/1.1 is spoken over the forwarded socket with ``http.client`` (keep-alive, chunked bodies).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import time
from typing import Any
from urllib.parse import urlencode

from meshobs.raw import Payload, iso, utc_now

from .discovery import Target


def load_client_configuration(kubeconfig: str | None, context: str | None) -> Any:
    """A ``kubernetes.client.Configuration`` from a kubeconfig (or in-cluster); raises on failure."""
    from kubernetes import client, config

    cfg = client.Configuration()
    if not kubeconfig and os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=cfg)
    else:
        config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=cfg)
    return cfg


def _reason(exc: BaseException) -> str:
    """The most telling cause in an exception chain: an API status, else the root error.

    The kubernetes client sometimes masks a refused connection behind an AttributeError raised
    while formatting it, so the whole chain is searched.
    """
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in chain:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    for e in chain:
        status = getattr(e, "status", None)
        if isinstance(status, int) and status > 0:
            return f"{status} {getattr(e, 'reason', '')}".strip()
    root = chain[-1]
    text = str(root).strip().splitlines()[0] if str(root).strip() else type(root).__name__
    if "refused" in text.lower():
        return "connection refused"
    return text[:200]


class ForwardFailed(Exception):
    """The port-forward itself could not be opened (the reason is the message)."""


class _ForwardedConnection(http.client.HTTPConnection):
    """An HTTPConnection whose socket comes from a port-forward instead of ``connect()``."""

    def __init__(self, opener: Any, timeout_s: float) -> None:
        super().__init__("localhost", timeout=timeout_s)
        self._opener = opener

    def connect(self) -> None:
        try:
            self.sock = self._opener()
        except Exception as exc:  # ApiException, websocket and socket errors alike
            raise ForwardFailed(_reason(exc)) from exc
        self.sock.settimeout(self.timeout)


class PortForwardTransport:
    """GETs to ``target.port`` of ``target.pod`` over a Kubernetes port-forward."""

    def __init__(self, target: Target, configuration: Any | None, config_error: str | None = None,
                 timeout_s: float = 5.0) -> None:
        self.target = target
        self.timeout_s = timeout_s
        self.configuration = configuration
        self.config_error = config_error
        self._forwards: list[Any] = []
        self._conn: _ForwardedConnection | None = None
        self._forward_error: str | None = None

    def _where(self) -> str:
        return f"{self.target.namespace}/{self.target.pod}:{self.target.port}"

    def _open_socket(self) -> Any:
        import websocket
        from kubernetes import client
        from kubernetes.stream import portforward

        # The kubernetes client opens its websocket with no timeout of its own; without a
        # default one, an API server that never answers would hang this worker for good.
        if websocket.getdefaulttimeout() is None:
            websocket.setdefaulttimeout(self.timeout_s)

        api = client.CoreV1Api(client.ApiClient(self.configuration))
        forward = portforward(api.connect_get_namespaced_pod_portforward, self.target.pod,
                              self.target.namespace, ports=str(self.target.port))
        self._forwards.append(forward)
        error = forward.error(self.target.port)
        if error:
            raise OSError(error)
        return forward.socket(self.target.port)

    def get(self, path: str, key: str, params: dict[str, str], timeout_s: float) -> Payload:
        query = urlencode(params)
        target_path = path + (f"?{query}" if query else "")
        url = self.target.url + target_path
        start, fetched_at = time.perf_counter(), iso(utc_now())

        def failed(reason: str) -> Payload:
            return Payload(key=key, error=reason, url=url, params=dict(params),
                           elapsed_s=time.perf_counter() - start, fetched_at=fetched_at)

        if self.config_error or self._forward_error:
            return failed(self.config_error or self._forward_error or "")
        if self._conn is None:
            self._conn = _ForwardedConnection(self._open_socket, timeout_s)
        self._conn.timeout = timeout_s
        try:
            self._conn.request("GET", target_path, headers={"Accept": "*/*"})
            resp = self._conn.getresponse()
            body = resp.read().decode("utf-8", errors="replace")
        except ForwardFailed as exc:
            self._reset()
            self._forward_error = f"could not port-forward to {self._where()}: {exc}"
            return failed(self._forward_error)
        except TimeoutError:
            self._reset()
            return failed(f"{url} did not answer within {timeout_s:g} s (timed out)")
        except (http.client.HTTPException, OSError) as exc:
            self._reset()
            return failed(f"request to {url} failed: {_reason(exc)}")
        return Payload(key=key, body=body, status=resp.status, url=url, params=dict(params),
                       elapsed_s=time.perf_counter() - start, fetched_at=fetched_at)

    def _reset(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def close(self) -> None:
        self._reset()
        for forward in self._forwards:
            # Closing a websocket that already died may fail; there is nothing left to do.
            with contextlib.suppress(Exception):
                forward.close()
        self._forwards.clear()
