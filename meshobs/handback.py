"""Results handed back from a forked child to its parent (:mod:`meshobs.engine.fanout`), pickled
with the model's dataclasses rebuilt through their constructors.

    dumps(obj) -> bytes        loads(bytes) -> obj   (pickle.loads: nothing special to read)
    dump(obj, file)            the same, written to ``file`` as it is made

Pickle rebuilds a frozen, slotted dataclass by calling its generated ``__setstate__``, a loop in
Python setting one field at a time through ``object.__setattr__``; 7,415 normalised proxies
(75,863 clusters) took longer to read back than a third of their normalisation. Pickled as
``(cls, field values)`` instead, each is rebuilt by one call of its generated ``__init__``: the
same fields, the same values, the same sharing of objects (the pickle memo), so the same
model -- measured in ``benchmarks/results/loadpar-s24.md``, with why msgspec, faster still, is
not used (it does not give the same objects back).

Only classes whose constructor takes exactly their fields, in order, are pickled this way: a
generated ``__init__``, no ``__post_init__`` (which would run a second time on values it
already made), no field left out of ``__init__`` or keyword-only. Any other object is pickled
as pickle always does.
"""

from __future__ import annotations

import copyreg
import dataclasses
import importlib
import io
import operator
import pickle
import pkgutil
from collections.abc import Callable
from functools import cache
from typing import IO, Any

Reducer = Callable[[Any], tuple[Any, ...]]


def dumps(obj: Any) -> bytes:
    """``pickle.dumps(obj)``, the model's dataclasses pickled as calls of their constructors;
    read back with ``pickle.loads``."""
    out = io.BytesIO()
    dump(obj, out)
    return out.getvalue()


def dump(obj: Any, file: IO[bytes]) -> None:
    """:func:`dumps` written to ``file`` frame by frame (~64 KB each) as the pickler makes them:
    a result of tens of MB (a 5,000-service document's half) is not also held whole in memory,
    whose fresh pages cost more than the copy."""
    pickler = pickle.Pickler(file, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = reducers()
    pickler.dump(obj)


@cache
def reducers() -> dict[type, Reducer]:
    """copyreg's table, plus one entry per dataclass of :mod:`meshobs.model` that
    :func:`by_constructor` allows."""
    from meshobs import model

    table: dict[type, Reducer] = dict(copyreg.dispatch_table)  # type: ignore[arg-type]
    for info in pkgutil.iter_modules(model.__path__):
        module = importlib.import_module(f"{model.__name__}.{info.name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and obj.__module__ == module.__name__ and by_constructor(obj):
                table[obj] = _reducer(obj)
    return table


def by_constructor(cls: type) -> bool:
    """``cls(*fields)`` rebuilds an instance of ``cls`` exactly: a dataclass with a generated
    ``__init__`` taking every field positionally, and nothing run after it."""
    if not dataclasses.is_dataclass(cls) or hasattr(cls, "__post_init__"):
        return False
    fields = dataclasses.fields(cls)
    init = getattr(cls.__init__, "__code__", None)  # dataclasses generate it from source text
    return (bool(fields) and all(f.init and not f.kw_only for f in fields)
            and init is not None and init.co_filename == "<string>"
            and init.co_argcount == len(fields) + 1)


def _reducer(cls: type) -> Reducer:
    names = [f.name for f in dataclasses.fields(cls)]
    if len(names) == 1:
        name = names[0]
        return lambda obj: (cls, (getattr(obj, name),))
    values = operator.attrgetter(*names)  # a tuple, in field order, built in C
    return lambda obj: (cls, values(obj))
