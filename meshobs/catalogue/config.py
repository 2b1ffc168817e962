"""Finding codes: config."""

from __future__ import annotations

from . import Code, Severity

CODES: list[Code] = []
