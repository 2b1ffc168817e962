"""Observed traffic split vs configured weights: one statistical judgement for both meshes.

Used by ``config.split_mismatch`` (Istio VirtualService subsets) and ``appmesh.split_mismatch``
(App Mesh route weighted targets): request counts per target (rate x window) are tested
against the configured shares with a chi-square goodness-of-fit test, and a minimum difference
in share keeps small meshes from flapping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SPLIT_P_VALUE = 0.001  # chi-square significance for "beyond statistical noise"
SPLIT_MIN_DIFF = 0.05  # and at least 5 points of share apart, so tiny meshes do not flap
SPLIT_MIN_DIFF_MATCHED = 0.15  # when matched routes before the default also send traffic
SPLIT_MIN_REQUESTS = 100.0


def _gammaincc(a: float, x: float) -> float:
    """Regularized upper incomplete gamma Q(a, x) (series / continued fraction, as in
    Numerical Recipes); enough for chi-square tail probabilities."""
    if x <= 0:
        return 1.0
    gln = math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        ap = a
        for _ in range(500):
            ap += 1
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(-x + a * math.log(x) - gln))
    b, c, d = x + 1 - a, 1e300, 1.0 / (x + 1 - a)
    h = d
    for i in range(1, 500):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = 1e-300 if abs(d) < 1e-300 else d
        c = b + an / c
        c = 1e-300 if abs(c) < 1e-300 else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return math.exp(-x + a * math.log(x) - gln) * h


def chi_square_p(observed: dict[str, float], expected_share: dict[str, float]) -> tuple[float, float]:
    """Goodness of fit of counts to shares: (chi-square statistic, p-value).

    Categories with an expected share of 0 that still received requests make the fit impossible
    (p = 0).
    """
    n = sum(observed.values())
    stat, df = 0.0, -1
    for k, share in expected_share.items():
        if share > 0:
            e = n * share
            stat += (observed.get(k, 0.0) - e) ** 2 / e
            df += 1
    if any(v > 0 and expected_share.get(k, 0.0) == 0 for k, v in observed.items()):
        return math.inf, 0.0
    if df <= 0:
        return stat, 1.0
    return stat, _gammaincc(df / 2.0, stat / 2.0)


@dataclass(frozen=True)
class SplitVerdict:
    """A split that differs from its weights beyond noise (shares in 0..1)."""

    requests: float
    observed: dict[str, float]
    expected: dict[str, float]
    chi_square: float
    p_value: float
    max_difference: float

    def percent(self, shares: dict[str, float]) -> dict[str, float]:
        return {k: round(100 * v, 1) for k, v in shares.items()}


def require_requests(counts: dict[str, float], where: str) -> None:
    """A split is judged on at least SPLIT_MIN_REQUESTS requests; fewer is "could not check",
    never a pass."""
    from .base import CouldNotCheck

    total = sum(counts.values())
    if total < SPLIT_MIN_REQUESTS:
        raise CouldNotCheck(f"{total:.0f} requests split across {where} in the window, need at least "
                            f"{SPLIT_MIN_REQUESTS:.0f} to judge the split")


def judge_split(counts: dict[str, float], weights: dict[str, float], *,
                matched_elsewhere: bool = False) -> SplitVerdict | None:
    """The verdict when ``counts`` (requests per target) do not fit ``weights``; None when they
    fit, or when there are too few requests (< 100) or no weights to judge."""
    total = sum(counts.values())
    wsum = sum(weights.values())
    if total < SPLIT_MIN_REQUESTS or wsum <= 0:
        return None
    expected = {k: v / wsum for k, v in weights.items()}
    observed = {k: v / total for k, v in counts.items()}
    diff = max(abs(observed.get(k, 0.0) - expected.get(k, 0.0)) for k in set(expected) | set(counts))
    stat, p = chi_square_p(counts, expected)
    min_diff = SPLIT_MIN_DIFF_MATCHED if matched_elsewhere else SPLIT_MIN_DIFF
    if p >= SPLIT_P_VALUE or diff < min_diff:
        return None
    return SplitVerdict(total, observed, expected, stat, p, diff)
