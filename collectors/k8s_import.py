"""Import the ``kubernetes`` client library without its ~700 model classes and ~60 API classes.

``kubernetes/__init__.py`` imports every subpackage, and ``kubernetes/client/__init__.py`` (and
``client/models``, ``client/api``) import every generated class: 1,300 modules and 0.2-0.3 s of
CPU on the critical path of every live run, while meshobs uses five API classes, the
``ApiClient``, ``Configuration``, the config loaders, the exceptions and the port-forward
stream. The answers are read raw (``_preload_content=False``) and decoded by meshobs, so no
model class is ever needed; a name that is used anyway still resolves, on first use.

:func:`lazy_kubernetes` registers those four packages as empty package modules with the
library's own ``__path__`` (so every submodule imports as usual, from the installed library,
unchanged) and a module ``__getattr__`` that imports a name's defining module when the name is
first read; the name-to-module table is read from the package's own ``__init__.py`` (one
``from kubernetes.client.X import Name`` per line, as the OpenAPI generator writes it). A
library whose ``__init__`` is not shaped like that, or that is already imported, is left alone
and imported the ordinary way.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
import threading
import types
from typing import Any

_FROM = re.compile(r"^from (kubernetes(?:\.\w+)+) import (\w+)[ \t]*$", re.M)
_CONSTANT = re.compile(r"""^(__\w+__) = ["']([^"'\n]*)["'][ \t]*$""", re.M)
# The packages whose __init__ imports everything; the others (config, stream, watch, ...) are
# small and import as usual, from their parent's __path__.
_LAZY = ("kubernetes", "kubernetes.client", "kubernetes.client.api", "kubernetes.client.models")
_lock = threading.Lock()
_done = False


def lazy_kubernetes() -> None:
    """Make ``import kubernetes...`` load only the modules that are used (idempotent, thread-safe)."""
    global _done
    if _done:
        return
    with _lock:
        if not _done:
            try:
                _install()
            finally:
                _done = True


def _install() -> None:
    if any(name in sys.modules for name in _LAZY):
        return  # imported already (or being imported): nothing to save
    spec = importlib.util.find_spec("kubernetes")
    if spec is None or not spec.submodule_search_locations:
        return  # not installed: the import that follows says so
    root = next(iter(spec.submodule_search_locations))
    tables: dict[str, tuple[str, dict[str, str], dict[str, str]]] = {}
    for name in _LAZY:
        folder = os.path.join(root, *name.split(".")[1:])
        init = os.path.join(folder, "__init__.py")
        try:
            with open(init, encoding="utf-8") as f:
                text = f.read()
        except OSError:
            return
        names = {attr: module for module, attr in _FROM.findall(text)}
        if name != "kubernetes" and not names:
            return  # not the generated layout this relies on
        tables[name] = (folder, names, dict(_CONSTANT.findall(text)))
    modules = {name: _package(name, *tables[name]) for name in _LAZY}
    for name, module in modules.items():
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(modules[parent], child, module)
    sys.modules.update(modules)


def _package(name: str, folder: str, names: dict[str, str], constants: dict[str, str]) -> types.ModuleType:
    module = types.ModuleType(name)
    init = os.path.join(folder, "__init__.py")
    module.__file__ = init
    module.__path__ = [folder]
    module.__package__ = name
    module.__spec__ = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[folder])
    for key, value in constants.items():
        setattr(module, key, value)

    def __getattr__(attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(f"module {name!r} has no attribute {attr!r}")
        if attr in names:
            value = getattr(importlib.import_module(names[attr]), attr)
        else:
            try:
                value = importlib.import_module(f"{name}.{attr}")
            except ModuleNotFoundError as exc:
                if exc.name != f"{name}.{attr}":
                    raise  # the submodule exists but needs something missing: say that
                raise AttributeError(f"module {name!r} has no attribute {attr!r}") from None
        setattr(module, attr, value)
        return value

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    return module
