"""A loopback HTTP server that serves recorded payloads, for collectors with no real server here.

    with LoopbackServer() as srv:
        srv.route("/server_info", body=text)                 # 200
        srv.route("/clusters", status=500, body="boom")
        srv.route("/stats", body=text, delay_s=3)            # slower than the client's timeout
        url = srv.url                                        # http://127.0.0.1:PORT

Routes match on the path (query string ignored unless the route key contains '?'). Unknown
paths answer 404. ``srv.requests`` records (method, path_with_query, headers) for assertions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Route:
    status: int = 200
    body: str | bytes = ""
    content_type: str = "application/json"
    delay_s: float = 0.0
    handler: Callable[[str, dict[str, str]], tuple[int, str | bytes]] | None = None


class LoopbackServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(("GET", self.path, dict(self.headers)))
                path_only = self.path.split("?", 1)[0]
                route = outer.routes.get(self.path) or outer.routes.get(path_only)
                if route is None:
                    self._send(404, b'{"error":"not found"}', "application/json")
                    return
                if route.delay_s:
                    time.sleep(route.delay_s)
                if route.handler is not None:
                    status, body = route.handler(self.path, dict(self.headers))
                else:
                    status, body = route.status, route.body
                self._send(status, body.encode() if isinstance(body, str) else body, route.content_type)

            do_POST = do_GET

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, path: str, **kwargs: Any) -> None:
        self.routes[path] = Route(**kwargs)

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def unused_port() -> int:
    """A loopback port nothing listens on (for 'connection refused' tests)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
