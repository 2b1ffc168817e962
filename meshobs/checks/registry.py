"""Import every check module so their ``@check`` decorators fill ``REGISTRY``.

The engine imports this module, never the check modules one by one, so adding a module here is
all it takes to put its checks on the checklist.
"""

from __future__ import annotations

import importlib

from .base import REGISTRY, Check

MODULES = ("proxy", "config", "certs", "traffic", "traces", "appmesh")


def load() -> dict[str, Check]:
    """All registered checks. A module that does not exist yet is left out; one that fails
    to import for another reason is a bug and raises."""
    for name in MODULES:
        qualified = f"meshobs.checks.{name}"
        try:
            importlib.import_module(qualified)
        except ModuleNotFoundError as exc:
            if exc.name != qualified:
                raise
    return REGISTRY


load()
