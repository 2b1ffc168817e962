"""A loopback HTTP server that serves recorded payloads, for collectors with no real server here.

    with LoopbackServer() as srv:
        srv.route("/server_info", body=text)                 # 200
        srv.route("/clusters", status=500, body="boom")
        srv.route("/stats", body=text, delay_s=3)            # slower than the client's timeout
        url = srv.url                                        # http://127.0.0.1:PORT

Routes match on the path (query string ignored unless the route key contains '?'). Unknown
paths answer 404. ``srv.requests`` records (method, path_with_query, headers) for assertions.
Built on meshobs.demo.httpserver, the one loopback server of the project.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshobs.demo.httpserver import LoopbackHTTPServer, Request, Response


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
        self._server = LoopbackHTTPServer(self._respond)

    def _respond(self, request: Request) -> Response:
        route = self.routes.get(request.path) or self.routes.get(request.path_only)
        if route is None:
            return Response(404, '{"error":"not found"}')
        if route.delay_s:
            time.sleep(route.delay_s)
        if route.handler is not None:
            status, body = route.handler(request.path, request.headers)
        else:
            status, body = route.status, route.body
        return Response(status, body, route.content_type)

    @property
    def requests(self) -> list[tuple[str, str, dict[str, str]]]:
        return [(r.method, r.path, r.headers) for r in self._server.requests]

    @property
    def url(self) -> str:
        return self._server.url

    def route(self, path: str, **kwargs: Any) -> None:
        self.routes[path] = Route(**kwargs)

    def __enter__(self) -> LoopbackServer:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()


def unused_port() -> int:
    """A loopback port nothing listens on (for 'connection refused' tests)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listens(pid: int, port: int) -> bool:
    """True when process ``pid`` itself holds the listening socket on loopback ``port``.

    A "free" port can be taken by a parallel test worker between picking and binding it; then
    a readiness probe is answered by the other worker's server. Linux only (``/proc``).
    """
    import os

    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False
