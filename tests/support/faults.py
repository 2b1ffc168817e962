"""A loopback HTTP server that misbehaves on purpose, at the socket level.

``http.server`` cannot trickle a status line or hold a connection open mid-body, so this
server speaks HTTP/1.1 (keep-alive, Content-Length) over raw sockets. A function decides,
per request path, what to answer::

    def answer(path: str) -> Fault:
        return Fault.ok('{"data": []}') if path.startswith("/api") else Fault.trickle()

    with FaultServer(answer) as srv:
        srv.url, srv.paths          # every path asked, in order

Faults: ``ok`` (any status and body), ``trickle`` (the whole answer one byte every
``interval_s``: never tripping a per-read timeout), ``trickle_body`` (headers at once, then
the body byte by byte), ``trickle_unsized`` (the same with no Content-Length: the body
ends when the connection closes), ``hang`` (read the request, never answer), ``huge`` (an endless
chunked body), ``raw`` (these bytes as the whole answer, then the connection closed: a redirect,
a cookie, a gzip body, a malformed status line), and ``status(429)``-style answers through ``ok``.
``srv.heads`` keeps every request's head (request line and headers) as received.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType


@dataclass(frozen=True)
class Fault:
    kind: str = "ok"
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    interval_s: float = 0.2

    @classmethod
    def ok(cls, body: str | bytes = b"", status: int = 200, content_type: str = "application/json") -> Fault:
        return cls("ok", status, body.encode() if isinstance(body, str) else body, content_type)

    @classmethod
    def trickle(cls, interval_s: float = 0.2) -> Fault:
        return cls("trickle", interval_s=interval_s, body=b'{"data": []}')

    @classmethod
    def trickle_body(cls, interval_s: float = 0.2) -> Fault:
        return cls("trickle_body", interval_s=interval_s, body=b'{"data": [' + b"1," * 500 + b"1]}")

    @classmethod
    def trickle_unsized(cls, interval_s: float = 0.2) -> Fault:
        """Headers at once with no Content-Length (the body ends when the connection closes),
        then the body byte by byte: cut off, it must not pass for a whole answer."""
        return cls("trickle_unsized", interval_s=interval_s, body=b'{"data": [' + b"1," * 500 + b"1]}")

    @classmethod
    def hang(cls) -> Fault:
        return cls("hang")

    @classmethod
    def huge(cls) -> Fault:
        return cls("huge")

    @classmethod
    def raw(cls, answer: bytes) -> Fault:
        return cls("raw", body=answer)


REASONS = {200: "OK", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error",
           503: "Service Unavailable"}


class FaultServer:
    def __init__(self, answer: Callable[[str], Fault]) -> None:
        self.answer = answer
        self.paths: list[str] = []
        self.heads: list[bytes] = []
        self._lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(256)
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def count(self, predicate: Callable[[str], bool] = lambda _p: True) -> int:
        with self._lock:
            return sum(1 for p in self.paths if predicate(p))

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        try:
            while not self._stop.is_set():
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                path = head.split(b"\r\n", 1)[0].split(b" ")[1].decode()
                with self._lock:
                    self.paths.append(path)
                    self.heads.append(head)
                if not self._respond(conn, self.answer(path)):
                    return
        except OSError:
            return
        finally:
            conn.close()

    def _respond(self, conn: socket.socket, fault: Fault) -> bool:
        """Answer; False when the connection is done with."""
        if fault.kind == "hang":
            self._stop.wait(600)
            return False
        if fault.kind == "raw":
            conn.sendall(fault.body)
            return False
        if fault.kind == "huge":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n")
            chunk = b"[" + b"0," * 32767 + b"0]"
            while not self._stop.is_set():
                conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            return False
        reason = REASONS.get(fault.status, "Status")
        head = (f"HTTP/1.1 {fault.status} {reason}\r\nContent-Type: {fault.content_type}\r\n"
                f"Content-Length: {len(fault.body)}\r\n\r\n").encode()
        if fault.kind == "ok":
            conn.sendall(head + fault.body)
            return True
        if fault.kind == "trickle_unsized":
            head = (f"HTTP/1.1 {fault.status} {reason}\r\nContent-Type: {fault.content_type}\r\n"
                    "Connection: close\r\n\r\n").encode()
        if fault.kind in ("trickle_body", "trickle_unsized"):
            conn.sendall(head)
            head = b""
        for byte in head + fault.body:
            if self._stop.wait(fault.interval_s):
                return False
            conn.sendall(bytes([byte]))
        return fault.kind != "trickle_unsized"  # its body ends with the connection

    def __enter__(self) -> FaultServer:
        self._acceptor = threading.Thread(target=self._accept, daemon=True, name="fault-server")
        self._acceptor.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        # close() alone does not wake a thread blocked in accept() on Linux: the thread would
        # outlive the server, and a later test in the same process would find a thread alive
        # (meshobs does not fork then, see meshobs.engine.fanout).
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._acceptor.join(5)
        with self._lock:
            for c in self._conns:
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
                c.close()


def elapsed(fn: Callable[[], object]) -> tuple[object, float]:
    start = time.monotonic()
    result = fn()
    return result, time.monotonic() - start
