"""Trace and span ids as meshobs keeps them: lower-case hex, whatever the document used."""

from __future__ import annotations

import base64
import binascii
from typing import Any

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def norm_id(value: Any) -> str:
    """Hex ids stay as they are (lower-cased); base64 ids (protojson bytes) become hex."""
    text = value if type(value) is str else str(value or "")
    if len(text) in (16, 32):
        # A 16- or 32-character id is hex, or at least not the base64 of an 8- or 16-byte id
        # (those are 12 and 24 characters): either way no decoding is needed.
        return text.lower() if _HEX_DIGITS.issuperset(text) else text
    if not text:
        return text
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return text  # neither: keep it (jaeger-ui fixtures use ids like "span-1")
    return raw.hex() if len(raw) in (8, 16) else text


class Ids(dict[str, str]):
    """``norm_id`` with a memory: one search answer names each trace id on every span and each
    span id again as its children's parent id, so most ids are looked up, not normalised."""

    def __missing__(self, key: str) -> str:
        value = self[key] = norm_id(key)
        return value
