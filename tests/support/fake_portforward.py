"""A fake Kubernetes API server on loopback that also answers pod port-forwards.

Plain GETs are answered by a :class:`~tests.support.fake_kube.FakeKube` responder (token check,
list JSON, 404/403 Status). ``GET /api/v1/namespaces/{ns}/pods/{pod}/portforward?ports=N`` is
upgraded to a websocket (RFC 6455, written here: server frames unmasked, client frames masked)
speaking the ``v4.channel.k8s.io`` channel protocol the ``kubernetes`` client's ``PortForward``
expects: every binary message starts with a channel byte, port ``i`` uses data channel ``2*i``
and error channel ``2*i+1``, and the first message on each carries the port number as two
bytes little-endian. Behind the data channel a tiny HTTP/1.1 server answers admin requests with
recorded Envoy payloads (keep-alive; ``/config_dump`` is sent chunked, as Envoy streams it).

Per pod, :meth:`FakePortForward.add_pod` chooses the behaviour: ``ok``, ``error`` (the kubelet's
"connection refused" on the error channel), ``refuse`` (the upgrade is answered 403) or
``hang`` (the upgrade is never answered).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from requests.structures import CaseInsensitiveDict

from meshobs.demo.httpserver import Request
from tests.support.fake_kube import FakeKube, status

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PROTOCOL = "v4.channel.k8s.io"
PORTFORWARD = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)/portforward$")
ADMIN_PATHS = {"/ready": "ready", "/server_info": "server_info", "/clusters": "clusters",
               "/stats": "stats", "/config_dump": "config_dump", "/certs": "certs"}
OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA


@dataclass
class FakePod:
    payloads: dict[str, str]  # admin payload key -> body
    mode: str = "ok"  # ok | error | refuse | hang
    error: str = ""


@dataclass
class Forward:
    """One port-forward the client asked for, as the server saw it."""

    namespace: str
    pod: str
    ports: str
    authorization: str
    protocols: str
    protocol: str = ""
    admin_requests: list[str] = field(default_factory=list)


def _frame(opcode: int, data: bytes) -> bytes:
    n = len(data)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + data


def _read_frame(rfile: Any) -> tuple[int, bytes] | None:
    head = rfile.read(2)
    if len(head) < 2:
        return None
    opcode, n = head[0] & 0x0F, head[1] & 0x7F
    if n == 126:
        n = struct.unpack("!H", rfile.read(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", rfile.read(8))[0]
    mask = rfile.read(4) if head[1] & 0x80 else b""
    data = rfile.read(n)
    if mask:
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return opcode, data


def _http_response(code: int, body: bytes, *, chunked: bool = False) -> bytes:
    reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}.get(code, "OK")
    head = f"HTTP/1.1 {code} {reason}\r\ncontent-type: application/json\r\n"
    if not chunked:
        return (head + f"content-length: {len(body)}\r\n\r\n").encode() + body
    out = (head + "transfer-encoding: chunked\r\n\r\n").encode()
    for i in range(0, len(body), 4096):
        piece = body[i:i + 4096]
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    return out + b"0\r\n\r\n"


class FakePortForward:
    """``with FakePortForward(token) as api: api.add_pod(...); api.write_kubeconfig(tmp)``."""

    def __init__(self, token: str = "fake-token-123", delay_s: float = 0.0) -> None:
        self.kube = FakeKube(token=token)
        self.pods: dict[tuple[str, str], FakePod] = {}
        self.forwards: list[Forward] = []
        self.delay_s = delay_s  # per admin answer, so concurrent forwards overlap
        # Admin requests being answered at once. Counted per request, not per websocket: the
        # client tears a websocket down in the background after the worker has moved on.
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                outer._handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    # -- setup ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def serve(self, path: str, body: Any) -> None:
        """List JSON for a plain GET (pods, services ...), as :class:`FakeKube` serves it."""
        self.kube.serve(path, body)

    def add_pod(self, namespace: str, pod: str, payloads: dict[str, str], mode: str = "ok",
                error: str = "") -> None:
        self.pods[(namespace, pod)] = FakePod(payloads, mode, error)

    def write_kubeconfig(self, directory: Path, **kw: Any) -> Path:
        return self.kube.write_kubeconfig(directory, server=self.url, **kw)

    def forwards_to(self, namespace: str, pod: str) -> list[Forward]:
        return [f for f in self.forwards if (f.namespace, f.pod) == (namespace, pod)]

    # -- serving -------------------------------------------------------------------------
    def _send(self, h: BaseHTTPRequestHandler, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        h.send_response(code)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        path = urlsplit(h.path).path
        match = PORTFORWARD.match(path)
        if not match:
            answer = self.kube._respond(Request("GET", h.path, CaseInsensitiveDict(dict(h.headers))))
            self._send(h, answer.status, json.loads(answer.body))
            return
        ns, name = match.groups()
        fwd = Forward(ns, name, ",".join(parse_qs(urlsplit(h.path).query).get("ports", [])),
                      h.headers.get("Authorization", ""), h.headers.get("Sec-WebSocket-Protocol", ""))
        with self._lock:
            self.forwards.append(fwd)
        pod = self.pods.get((ns, name))
        if fwd.authorization != f"Bearer {self.kube.token}":
            self._send(h, 401, status(401, "Unauthorized", "Unauthorized"))
            return
        if pod is None:
            self._send(h, 404, status(404, "NotFound", f'pods "{name}" not found'))
            return
        if pod.mode == "refuse":
            self._send(h, 403, status(403, "Forbidden", f'pods "{name}" is forbidden: User '
                                      '"system:serviceaccount:meshobs:meshobs" cannot create resource '
                                      f'"pods/portforward" in API group "" in the namespace "{ns}"'))
            return
        if pod.mode == "hang":
            self._stopping.wait(30)
            # Hang up when stopped: a kept-alive connection would wait for a next request while
            # the client waits for this answer, and both threads outlived the test (a later test
            # in the same worker then found threads alive and meshobs rightly refused to fork).
            h.close_connection = True
            return
        offered = [p.strip() for p in fwd.protocols.split(",")]
        key = h.headers.get("Sec-WebSocket-Key", "")
        if h.headers.get("Upgrade", "").lower() != "websocket" or not key or PROTOCOL not in offered:
            self._send(h, 400, status(400, "BadRequest", "websocket upgrade with v4.channel.k8s.io expected"))
            return
        fwd.protocol = PROTOCOL
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        h.send_response(101, "Switching Protocols")
        h.send_header("Upgrade", "websocket")
        h.send_header("Connection", "Upgrade")
        h.send_header("Sec-WebSocket-Accept", accept)
        h.send_header("Sec-WebSocket-Protocol", PROTOCOL)
        h.end_headers()
        h.close_connection = True
        # The client may go away mid-frame.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, struct.error):
            self._channels(h, fwd, pod)

    def _channels(self, h: BaseHTTPRequestHandler, fwd: Forward, pod: FakePod) -> None:
        port = int(fwd.ports.split(",")[0])
        port_bytes = struct.pack("<H", port)
        h.wfile.write(_frame(OP_BINARY, b"\x00" + port_bytes) + _frame(OP_BINARY, b"\x01" + port_bytes))
        if pod.mode == "error":
            # What the kubelet sends when nothing listens on the port inside the pod.
            h.wfile.write(_frame(OP_BINARY, b"\x01" + pod.error.encode()))
        buffer = b""
        while not self._stopping.is_set():
            got = _read_frame(h.rfile)
            if got is None:
                return
            opcode, data = got
            if opcode == OP_CLOSE:
                h.wfile.write(_frame(OP_CLOSE, data[:2]))
                return
            if opcode == OP_PING:
                h.wfile.write(_frame(OP_PONG, data))
                continue
            if opcode != OP_BINARY or not data or data[0] != 0 or pod.mode != "ok":
                continue
            buffer += data[1:]
            while b"\r\n\r\n" in buffer:
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                target = head.split(b"\r\n", 1)[0].split(b" ")[1].decode()
                fwd.admin_requests.append(target)
                with self._lock:
                    self.active += 1
                    self.max_active = max(self.max_active, self.active)
                time.sleep(self.delay_s)
                with self._lock:
                    self.active -= 1
                key = ADMIN_PATHS.get(urlsplit(target).path, "")
                body = pod.payloads.get(key)
                answer = (_http_response(200, body.encode(), chunked=key == "config_dump")
                          if body is not None else _http_response(404, b"invalid path\n"))
                # Split over several messages: the client must reassemble the stream.
                for i in range(0, len(answer), 16384):
                    h.wfile.write(_frame(OP_BINARY, b"\x00" + answer[i:i + 16384]))

    def __enter__(self) -> FakePortForward:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
