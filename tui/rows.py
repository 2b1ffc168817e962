"""The generic table row (pure): a key, the cells, and what the row stands for."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TableRow:
    """A row for tables whose rows need no model of their own (``item``: a finding, a proxy...)."""

    key: str
    values: tuple[str, ...]
    item: object = None

    def cells(self) -> tuple[str, ...]:
        return self.values
