"""Deep-immutable containers for payload-shaped data (config specs, span attributes).

``FrozenDict`` subclasses ``dict`` so that ``json.dumps`` and equality keep working, but every
mutating method raises. ``freeze`` converts nested dicts and lists recursively.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NoReturn


class FrozenDict(dict[str, Any]):
    """A dict that refuses mutation; hashable when its values are."""

    __slots__ = ()

    def _immutable(self, *_args: object, **_kwargs: object) -> NoReturn:
        raise TypeError("FrozenDict is immutable")

    __setitem__ = _immutable
    __delitem__ = _immutable
    clear = _immutable
    pop = _immutable
    popitem = _immutable
    setdefault = _immutable
    update = _immutable
    __ior__ = _immutable

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items(), key=lambda kv: kv[0])))

    def __repr__(self) -> str:
        return f"FrozenDict({dict.__repr__(self)})"

    def __reduce__(self) -> tuple[type[FrozenDict], tuple[dict[str, Any]]]:
        # Pickle (the dashboard's load process sends findings and views) would fill a dict
        # subclass item by item, which this refuses: rebuilt from a plain dict instead.
        return (FrozenDict, (dict(self),))

    def thaw(self) -> dict[str, Any]:
        """A deep mutable copy (for code that needs to edit a spec, e.g. to fill defaults)."""
        return thaw(self)  # type: ignore[no-any-return]


# The leaves JSON and YAML decode to, returned as they are: a leaf's exact type is checked
# before the ABC checks (Mapping's is slow) and before the call itself (a pod holds hundreds).
_LEAVES = frozenset({str, int, float, bool, type(None)})


def freeze(value: Any) -> Any:
    """Recursively turn dicts into FrozenDict and lists into tuples."""
    cls = value.__class__
    if cls in _LEAVES:
        return value
    if cls is dict:  # what decoders make: no subclass, no ABC check
        return FrozenDict({k if k.__class__ is str else str(k): v if v.__class__ in _LEAVES else freeze(v)
                           for k, v in value.items()})
    if cls is list or cls is tuple:
        return tuple([v if v.__class__ in _LEAVES else freeze(v) for v in value])
    if isinstance(value, FrozenDict):
        return value
    if isinstance(value, Mapping):
        return FrozenDict({str(k): freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Inverse of :func:`freeze`: plain dicts and lists, safe to mutate."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


EMPTY = FrozenDict()


def frozen_strings(strings: dict[str, str]) -> FrozenDict:
    """:func:`frozen_map` of a dict whose keys and values are all strings (labels, selectors,
    annotations once read): the same FrozenDict, copied in one call rather than item by item."""
    return FrozenDict(strings)


def frozen_map(items: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None) -> FrozenDict:
    """A FrozenDict from a mapping or pairs (values are frozen too)."""
    if items is None:
        return EMPTY
    # freeze copies a dict as it goes: a dict needs no copy of its own first.
    return freeze(items if items.__class__ is dict else dict(items))  # type: ignore[no-any-return]
