"""Finding codes 00xx: meshobs itself."""

from __future__ import annotations

from . import Code, Severity

CODES: list[Code] = [
    Code("MSH0001", Severity.ERROR, "Check failed internally",
         "check {check_id} raised {error}; the other checks ran"),
    Code("MSH0002", Severity.WARNING, "Source could not be read",
         "{source}: {reason}"),
    Code("MSH0003", Severity.WARNING, "Items of a source could not be read",
         "{source}: {count} item(s) could not be read and were left out: {first}"),
]
