"""A loopback X-Ray (REST JSON, what boto3 speaks) that honours ``service("name")`` filters.

moto's X-Ray refuses every FilterExpression ("Not implemented yet"), so the collector's scoped
search is tested against this stand-in as well: GetServiceGraph answers the nodes it is given,
GetTraceSummaries keeps the traces with a segment named in any ``service("...")`` term of the
filter (the subset of X-Ray's grammar meshobs writes; other terms are ignored) and pages
``page`` summaries at a time, BatchGetTraces answers the segment documents.
"""

from __future__ import annotations

import json
import re
from typing import Any

from meshobs.demo.httpserver import LoopbackHTTPServer, Request, Response

_SERVICE = re.compile(r'service\("([^"]+)"\)')


class FilteringXRay:
    def __init__(self, traces: dict[str, list[dict[str, Any]]], nodes: list[str], page: int = 10) -> None:
        self.traces = traces  # trace id -> segment documents
        self.nodes = nodes
        self.page = page
        self.filters: list[str | None] = []
        self._server = LoopbackHTTPServer(self._respond)

    def _respond(self, request: Request) -> Response:
        body = json.loads(request.body or b"{}")
        if request.path_only == "/ServiceGraph":
            return Response(200, json.dumps({"Services": [
                {"ReferenceId": i, "Name": n, "Type": "AWS::AppMesh::Proxy", "Edges": []}
                for i, n in enumerate(self.nodes)]}))
        if request.path_only == "/TraceSummaries":
            expr = body.get("FilterExpression")
            self.filters.append(expr)
            wanted = set(_SERVICE.findall(expr or ""))
            ids = sorted(t for t, docs in self.traces.items() if not wanted or {d["name"] for d in docs} & wanted)
            start = int(body.get("NextToken") or 0)
            answer: dict[str, Any] = {"TraceSummaries": [{"Id": i} for i in ids[start:start + self.page]]}
            if start + self.page < len(ids):
                answer["NextToken"] = str(start + self.page)
            return Response(200, json.dumps(answer))
        if request.path_only == "/Traces":
            return Response(200, json.dumps({"Traces": [
                {"Id": t, "Segments": [{"Id": d["id"], "Document": json.dumps(d)} for d in self.traces[t]]}
                for t in body["TraceIds"] if t in self.traces], "UnprocessedTraceIds": []}))
        return Response(404, json.dumps({"message": f"no route {request.path_only}"}))

    @property
    def url(self) -> str:
        return self._server.url

    def __enter__(self) -> FilteringXRay:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()
