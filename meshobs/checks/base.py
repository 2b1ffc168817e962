"""What a check is, what it returns, and how checks register.

A check is a pure function ``(snapshot, service, settings) -> Iterable[Finding]`` with a stable
id (``proxy.not_ready``), a category, and the inputs it needs. When an input is absent the
engine records the check as *skipped* with the reason instead of calling it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from meshobs.catalogue import CATALOGUE, Category, Severity
from meshobs.model import EMPTY, FrozenDict, MeshSnapshot, ServiceRef, frozen_map

if TYPE_CHECKING:
    from meshobs.config_model import Thresholds


@dataclass(frozen=True)
class Settings:
    """Thresholds, configurable under ``thresholds:`` in meshobs.yaml."""

    error_ratio: float = 0.01  # 1 % of requests failing
    p99_ms: float = 1000.0
    latency_regression: float = 2.0  # p99 more than twice the baseline
    root_cert_error_days: float = 7.0
    root_cert_warning_days: float = 30.0
    workload_cert_warning_fraction: float = 0.2  # less than 20 % of its lifetime left
    xds_stale_after_s: float = 600.0
    baseline: MeshSnapshot | None = None  # an earlier window to compare latency against
    # A proxy up for less than this fraction of its peers' median uptime restarted recently.
    uptime_fraction: float = 0.1
    # Below this many requests per second an error ratio is noise, not a finding.
    min_request_rate: float = 0.0

    @classmethod
    def from_thresholds(cls, thresholds: Thresholds | Mapping[str, object] | None,
                        baseline: MeshSnapshot | None = None) -> Settings:
        """Settings from the config's ``thresholds:`` (the typed model, or its dict, validated
        by it: the defaults and ranges live in :class:`meshobs.config_model.Thresholds`)."""
        from meshobs.config_model import Thresholds

        typed = thresholds if isinstance(thresholds, Thresholds) else Thresholds.from_mapping(thresholds)
        return cls(baseline=baseline, **typed.settings_values())


@dataclass(frozen=True)
class Finding:
    """One problem found, with the numbers that made the check fire."""

    code: str
    check: str
    subject: str  # "Workload default/cart-v1", "Service default/database-service", ...
    fields: FrozenDict  # the template's named fields
    evidence: FrozenDict = EMPTY
    hint: str = ""
    service: ServiceRef | None = None  # the service the finding is about (for root-cause ranking)
    cause_of: tuple[str, ...] = ()  # set by the engine: subjects of symptoms this explains
    caused_by: tuple[str, ...] = ()  # set by the engine: "CODE subject" of the causes found
    magnitude: float = 0.0  # how bad, in the finding's own unit (req/s, endpoints...): ranks ties
    rank: int = 0  # set by the engine: 1 is the most likely root cause

    @property
    def severity(self) -> Severity:
        return CATALOGUE[self.code].severity

    @property
    def category(self) -> Category:
        return CATALOGUE[self.code].category

    @property
    def message(self) -> str:
        return CATALOGUE[self.code].render(dict(self.fields))

    @property
    def doc(self) -> str:
        return CATALOGUE[self.code].doc

    @property
    def identity(self) -> tuple[str, str, str]:
        """What makes two findings the same: code, subject and fields (one resource can carry
        two findings of one code, e.g. two undefined subsets). Rank and links do not count."""
        return (self.code, self.subject, repr(sorted(self.fields.items())))


def finding(code: str, check: str, subject: str, *, hint: str = "",
            service: ServiceRef | None = None, evidence: dict[str, object] | None = None,
            magnitude: float = 0.0, **fields: object) -> Finding:
    """Build a Finding; fails fast if the template's fields are not all supplied.

    A template field named ``service`` is filled from ``service=`` (the keyword is taken).
    """
    if service is not None and "service" in CATALOGUE[code].fields:
        fields["service"] = str(service)
    CATALOGUE[code].render(fields)
    return Finding(code=code, check=check, subject=subject, fields=frozen_map(fields),
                   evidence=frozen_map(evidence or {}), hint=hint, service=service,
                   magnitude=float(magnitude))


T = TypeVar("T")

CheckFn = Callable[[MeshSnapshot, ServiceRef, Settings], Iterable[Finding]]


@dataclass(frozen=True)
class Check:
    id: str
    category: Category
    # inputs, all required: "pods", "edges", "proxies", "config", "certs", "traces";
    # "pods|proxies" means either one will do.
    needs: tuple[str, ...]
    codes: tuple[str, ...]  # the codes it may emit
    run: CheckFn = field(repr=False)

    @property
    def doc(self) -> str:
        return (self.run.__doc__ or "").strip().splitlines()[0] if self.run.__doc__ else ""


REGISTRY: dict[str, Check] = {}


def check(id: str, category: Category, needs: tuple[str, ...], codes: tuple[str, ...]) -> Callable[[CheckFn], CheckFn]:
    """Register a check function under a stable id."""

    def register(fn: CheckFn) -> CheckFn:
        if id in REGISTRY:
            raise ValueError(f"duplicate check id {id}")
        for c in codes:
            if c not in CATALOGUE:
                raise ValueError(f"check {id} names unknown code {c}")
        REGISTRY[id] = Check(id=id, category=category, needs=needs, codes=codes, run=fn)
        return fn

    return register


def memo(snapshot: MeshSnapshot, key: str, build: Callable[[MeshSnapshot], T]) -> T:
    """An index derived from ``snapshot`` alone, built once per snapshot and shared by checks.

    Checks stay pure (the value depends only on the snapshot); this only avoids rebuilding
    mesh-wide indexes once per service when ``--all`` diagnoses thousands of services. The cache
    lives on the snapshot itself, so it goes when the snapshot goes and is never shared.
    """
    return snapshot.derived(key, build)


def now_of(snapshot: MeshSnapshot) -> datetime:
    """Checks judge time against the snapshot's evaluation time, never the wall clock."""
    return snapshot.time
