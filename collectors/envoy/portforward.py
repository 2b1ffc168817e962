"""Reach a pod's Envoy admin port through the Kubernetes port-forward API (no kubectl needed).

Each proxy gets its own ``ApiClient``: ``kubernetes.stream.portforward`` swaps the client's
request method while it runs, so sharing one client across worker threads is not safe.
HTTP/1.1 is spoken over the forwarded socket with ``http.client`` (keep-alive, chunked bodies).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
from typing import Any
from urllib.parse import urlencode

from meshobs.collectors.http import CHUNK, TooLarge, mb
from meshobs.collectors.netbound import current_run, shutdown_socket, watch
from meshobs.durations import seconds
from meshobs.raw import Payload, iso, utc_now

from .discovery import Target


def _read_capped(resp: http.client.HTTPResponse, max_bytes: int) -> bytes:
    """The body in chunks; :class:`TooLarge` as soon as it passes ``max_bytes``."""
    length = resp.getheader("Content-Length")
    if length and length.isdigit() and int(length) > max_bytes:
        raise TooLarge(max_bytes)
    chunks, size = [], 0
    while chunk := resp.read(CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def load_client_configuration(kubeconfig: str | None, context: str | None) -> Any:
    """A ``kubernetes.client.Configuration`` picked exactly as the Kubernetes collector picks it.

    Raises :class:`meshobs.collectors.kubernetes.KubeConfigError` (the message names the file).
    """
    from meshobs.collectors.kubernetes import load_configuration

    return load_configuration(kubeconfig, context)[0]


def _api_message(body: Any) -> str:
    try:
        doc = json.loads(body.decode() if isinstance(body, bytes) else body)
    except (AttributeError, TypeError, ValueError):
        return ""
    return str(doc.get("message", "")) if isinstance(doc, dict) else ""


def _refused_upgrade(code: int, body: Any, namespace: str) -> str:
    """Why the API server refused the websocket upgrade, and what to do about it."""
    detail = _api_message(body)
    suffix = f" ({detail})" if detail else ""
    if code == 401:
        return (f"unauthorized (HTTP 401){suffix}: the API server rejected the credentials; "
                "check sources.kubernetes.kubeconfig/context and that the token is still valid")
    if code == 403:
        return (f"forbidden (HTTP 403){suffix}: the identity needs create on pods/portforward "
                f"in namespace {namespace}")
    if code == 404:
        return f"HTTP 404{suffix}: the pod is gone (deleted since the pod list was read?)"
    return f"the API server refused the port-forward with HTTP {code}{suffix}"


def _reason(exc: BaseException, namespace: str = "") -> str:
    """The most telling cause in an exception chain: an HTTP status, else the root error.

    The kubernetes client sometimes masks a refused connection behind an AttributeError raised
    while formatting it, so the whole chain is searched.
    """
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in chain:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    for e in chain:
        # websocket-client's WebSocketBadStatusException: the upgrade was answered with an error.
        code = getattr(e, "status_code", None)
        if isinstance(code, int) and code > 0:
            return _refused_upgrade(code, getattr(e, "resp_body", None), namespace)
        status = getattr(e, "status", None)
        if isinstance(status, int) and status > 0:
            return f"{status} {getattr(e, 'reason', '')}".strip()
    root = chain[-1]
    text = str(root).strip().splitlines()[0] if str(root).strip() else type(root).__name__
    if "refused" in text.lower():
        return "connection refused"
    return text[:300]


class ForwardFailed(Exception):
    """The port-forward itself could not be opened (the reason is the message)."""


class _ForwardedConnection(http.client.HTTPConnection):
    """An HTTPConnection whose socket comes from a port-forward instead of ``connect()``."""

    def __init__(self, opener: Any, timeout_s: float) -> None:
        super().__init__("localhost", timeout=timeout_s)
        self._opener = opener

    def connect(self) -> None:
        self.sock = self._opener(self.timeout)
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

    def _open_forward(self) -> Any:
        from meshobs.collectors.k8s_import import lazy_kubernetes

        lazy_kubernetes()
        from kubernetes import client
        from kubernetes.stream import portforward

        api = client.CoreV1Api(client.ApiClient(self.configuration))
        return portforward(api.connect_get_namespaced_pod_portforward, self.target.pod,
                           self.target.namespace, ports=str(self.target.port))

    def _open_socket(self, timeout_s: float) -> Any:
        """The forwarded socket; raises ForwardFailed when the forward cannot be opened in time.

        The kubernetes client opens its websocket with no timeout (``create_websocket`` builds a
        ``WebSocket`` without one and websocket-client 1.x ignores ``setdefaulttimeout`` there),
        and offers no parameter for one. So the open runs in a daemon thread that this worker
        waits for at most ``timeout_s``: an API server that never answers the upgrade costs one
        timeout, and no process-wide setting is changed. An open that completes after we gave
        up is closed by its thread.
        """
        lock, done = threading.Lock(), threading.Event()
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                forward, error = self._open_forward(), None
            except Exception as exc:  # ApiException, websocket and socket errors alike
                forward, error = None, exc
            with lock:
                if outcome.get("abandoned"):
                    if forward is not None:
                        with contextlib.suppress(Exception):
                            forward.close()
                    return
                outcome.update(forward=forward, error=error)
                done.set()

        threading.Thread(target=run, daemon=True, name=f"portforward {self._where()}").start()
        if not done.wait(timeout_s):
            with lock:
                if not done.is_set():
                    outcome["abandoned"] = True
                    raise ForwardFailed(f"the Kubernetes API did not open the port-forward within "
                                        f"{seconds(timeout_s)} s (timed out)")
        if outcome["error"] is not None:
            raise ForwardFailed(_reason(outcome["error"], self.target.namespace)) from outcome["error"]
        forward = outcome["forward"]
        self._forwards.append(forward)
        return forward.socket(self.target.port)

    def _kubelet_error(self) -> str | None:
        """What the error channel said (the kubelet could not reach the port in the pod)."""
        if not self._forwards:
            return None
        error = self._forwards[-1].error(self.target.port)
        return str(error).strip() if error and str(error).strip() else None

    def get(self, path: str, key: str, params: dict[str, str], timeout_s: float) -> Payload:
        """One GET within ``timeout_s`` in total (and the run's deadline), its body capped."""
        query = urlencode(params)
        target_path = path + (f"?{query}" if query else "")
        url = self.target.url + target_path
        start, fetched_at = time.perf_counter(), iso(utc_now())

        def failed(reason: str) -> Payload:
            return Payload(key=key, error=reason, url=url, params=dict(params),
                           elapsed_s=time.perf_counter() - start, fetched_at=fetched_at)

        if self.config_error or self._forward_error:
            return failed(self.config_error or self._forward_error or "")
        max_bytes = current_run().max_bytes
        with watch(timeout_s) as w:
            if w.expired:
                return failed(f"{url}: not asked, the run's deadline (--timeout) had passed")
            if self._conn is None:
                self._conn = _ForwardedConnection(self._open_socket, w.remaining_s())
            conn = self._conn
            conn.timeout = max(w.remaining_s(), 0.001)
            if conn.sock is not None:
                conn.sock.settimeout(conn.timeout)
            # A trickling answer never trips a per-read timeout: shut the socket at the deadline.
            w.on_expiry(lambda: shutdown_socket(conn.sock))
            try:
                conn.request("GET", target_path, headers={"Accept": "*/*"})
                resp = conn.getresponse()
                body = _read_capped(resp, max_bytes).decode("utf-8", errors="replace")
            except ForwardFailed as exc:
                self._reset()
                self._forward_error = f"could not port-forward to {self._where()}: {exc}"
                return failed(self._forward_error)
            except TooLarge:
                self._reset()
                return failed(f"answer from {url} larger than {mb(max_bytes)} MB, not read "
                              "(the limit is max_response_mb)")
            except TimeoutError:
                self._reset()
                return failed(f"{url} did not answer within {seconds(w.seconds)} s (timed out)")
            except (http.client.HTTPException, OSError) as exc:
                if w.expired:
                    self._reset()
                    return failed(f"{url} did not answer within {seconds(w.seconds)} s (timed out)")
                # The kubelet reports a port it cannot reach on the error channel and the client
                # then closes the socket: the request sees only "closed", the reason is there.
                kubelet = self._kubelet_error()
                self._reset()
                if kubelet:
                    self._forward_error = f"could not port-forward to {self._where()}: {kubelet}"
                    return failed(self._forward_error)
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
