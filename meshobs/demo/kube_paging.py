"""List paging as the Kubernetes API server does it: ``?limit=N`` answers N items at most and,
while more remain, an opaque ``metadata.continue`` token (and ``metadata.remainingItemCount``
when no label selector narrows the list: the server cannot count a filtered remainder without
reading it). A continue token older than the last compaction answers 410 Gone (reason
``Expired``), as etcd's compaction makes a real server do about five minutes after the first
page; a token that does not decode answers 400, as the API server answers it.

The demo's lists never change, so a token carries the revision it was issued at and the offset
of the next item; :meth:`ListPager.compact` is the compaction (tests call it between pages).
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from typing import Any

TOKEN_VERSION = "meta.k8s.io/v1"  # the version field of the API server's own continue tokens


class PagingError(ValueError):
    """A paging request the API server refuses: ``status`` (400 or 410) and the Status body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body["message"])
        self.status, self.body = status, body


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def _encode(doc: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(token: str) -> dict[str, Any]:
    try:
        doc = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, RecursionError) as exc:  # RecursionError: nested past json's depth
        raise ValueError("not base64 JSON") from exc
    if (not isinstance(doc, dict) or doc.get("v") != TOKEN_VERSION or not isinstance(doc.get("rv"), int)
            or not isinstance(doc.get("start"), int) or doc["start"] < 0 or not isinstance(doc.get("path"), str)):
        raise ValueError(f"incorrect encoded start resourceVersion (version {TOKEN_VERSION})")
    return doc


class ListPager:
    """Pages the demo's lists; one per served Kubernetes API (its revision is the server's)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.revision = 1
        self.compacted = 0  # tokens issued at a revision below this one have expired

    def compact(self) -> None:
        """Expire every continue token issued so far (etcd's compaction of their revision)."""
        with self._lock:
            self.revision += 1
            self.compacted = self.revision

    def page(self, doc: dict[str, Any], path: str, query: dict[str, list[str]], *, selected: bool) -> dict[str, Any]:
        """The page of list ``doc`` (served at ``path``) that ``query``'s ``limit`` and
        ``continue`` ask for; ``doc`` itself when no limit is given. ``selected``: a label
        selector narrowed ``doc`` (no remainingItemCount then). Raises :class:`PagingError`."""
        token = (query.get("continue") or [""])[0]
        limit_text = (query.get("limit") or [""])[0]
        try:
            limit = int(limit_text) if limit_text else 0
        except ValueError:
            raise PagingError(400, _status(400, "BadRequest", f"limit: invalid value {limit_text!r}")) from None
        start = 0
        if token:
            try:
                state = _decode(token)
                if state["path"] != path:
                    raise ValueError("continue key is not valid for this list")
            except ValueError as exc:
                raise PagingError(400, _status(400, "BadRequest", f"invalid continue token: {exc}")) from None
            with self._lock:
                expired = state["rv"] < self.compacted
            if expired:
                raise PagingError(410, _status(
                    410, "Expired", "The provided continue parameter is too old to display a consistent "
                    "list result. You can start a new list without the continue parameter."))
            start = state["start"]
        items = doc.get("items") or []
        if limit <= 0 and not token:
            return doc
        end = len(items) if limit <= 0 else start + limit
        meta = {k: v for k, v in (doc.get("metadata") or {}).items()
                if k not in ("continue", "remainingItemCount")}
        if end < len(items):
            with self._lock:
                rv = self.revision
            meta["continue"] = _encode({"v": TOKEN_VERSION, "rv": rv, "start": end, "path": path})
            if not selected:
                meta["remainingItemCount"] = len(items) - end
        return {**doc, "items": items[start:end], "metadata": meta}
