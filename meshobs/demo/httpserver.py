"""One threaded HTTP server on 127.0.0.1, answering through a function.

The live demo (``meshobs demo serve``) and the tests' stand-ins for servers this machine does
not have (Envoy admin, Jaeger, the Kubernetes API, a throttling AWS endpoint) all build on it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from requests.structures import CaseInsensitiveDict


@dataclass
class Request:
    method: str
    path: str  # with the query string, as sent
    headers: CaseInsensitiveDict[str]  # HTTP header names are case-insensitive
    body: bytes = b""

    @property
    def path_only(self) -> str:
        return self.path.split("?", 1)[0]


@dataclass
class Response:
    status: int = 200
    body: str | bytes = ""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


Responder = Callable[[Request], Response]


class _Server(ThreadingHTTPServer):
    # socketserver's default backlog of 5 drops connections when a client opens dozens at once
    # (meshobs asks 32 Envoy admin endpoints concurrently); a dropped SYN is retried after a
    # second, which reads as a timeout.
    request_queue_size = 256


class LoopbackHTTPServer:
    """``with LoopbackHTTPServer(respond) as srv: ... srv.url``; every request is kept in
    ``srv.requests``. A responder that raises answers 500 instead of hanging the client."""

    def __init__(self, respond: Responder) -> None:
        self.requests: list[Request] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(self.command, self.path, CaseInsensitiveDict(dict(self.headers)),
                                  self.rfile.read(length) if length else b"")
                outer.requests.append(request)
                try:
                    answer = respond(request)
                except Exception as exc:
                    answer = Response(500, f"server error: {exc}\n", "text/plain")
                data = answer.body.encode() if isinstance(answer.body, str) else answer.body
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", answer.content_type)
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PUT = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._started = False

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LoopbackHTTPServer:
        if not self._started:
            self._thread.start()
            self._started = True
        return self

    def stop(self) -> None:
        if self._started:
            self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> LoopbackHTTPServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
