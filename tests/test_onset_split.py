"""The onset's split (array operations) gives the plain scan's answer on every series.

The reference below is the scan ``onset._split`` was before: two ``np.median`` calls and two sums
per candidate split, the first k beating the best so far by more than 1e-12. The split sums the
deviations in another order and sums again only the candidates that can decide, so ties and
near-ties (costs within a few ulps or within the 1e-12 margin of each other) are where it could
go wrong: the strategies below make them on purpose.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshobs.timeline.onset import MIN_AFTER, MIN_BEFORE, _rolling_median, _split


def scan(smooth: np.ndarray) -> int | None:
    x = np.asarray(smooth, dtype=float)
    n = len(x)
    best, best_k = float("inf"), None
    for k in range(MIN_BEFORE, n - MIN_AFTER + 1):
        a, b = x[:k], x[k:]
        cost = float(np.abs(a - np.median(a)).sum() + np.abs(b - np.median(b)).sum())
        if cost < best - 1e-12:
            best, best_k = cost, k
    return best_k


def same(values: list[float] | np.ndarray) -> None:
    x = np.asarray(values, dtype=float)
    assert _split(x) == scan(x), list(x)


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
# Few distinct values: exact ties between splits everywhere.
few = st.sampled_from([0.0, 0.0, 1.0, 2.0, 0.5, 1e-3, -0.0])
# Values a hair apart (1e-13 and a few ulps): costs that differ by less than the 1e-12 margin,
# or by the rounding of one summation order against another.
hair = st.builds(lambda base, d: base + d * 1e-13, st.sampled_from([0.0, 0.1, 1.0, 250.0, 1e-3]),
                 st.integers(min_value=-3, max_value=3))
ulps = st.builds(lambda base, d: float(np.nextafter(base, np.inf if d > 0 else -np.inf)) if d else base,
                 st.sampled_from([0.1, 0.3, 0.7, 1.1, 12.5]), st.integers(min_value=-1, max_value=1))


@settings(max_examples=400, deadline=None)
@given(st.lists(finite, max_size=40))
def test_any_series(values: list[float]) -> None:
    same(values)


@settings(max_examples=400, deadline=None)
@given(st.lists(few, max_size=40))
def test_ties(values: list[float]) -> None:
    same(values)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(hair, ulps), max_size=40))
def test_near_ties(values: list[float]) -> None:
    same(values)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(few, hair), min_size=12, max_size=60))
def test_smoothed_near_ties(values: list[float]) -> None:
    """As ``detect`` calls it: on the 3-point rolling median of the raw series."""
    same(_rolling_median(np.asarray(values, dtype=float)))


def test_constant_and_short_series() -> None:
    for n in range(0, 30):
        for level in (0.0, -0.0, 1.0, 0.1, 1e300):
            same([level] * n)
    for n in range(0, MIN_BEFORE + MIN_AFTER + 2):
        same(list(range(n)))
        same([0.0] * (n // 2) + [1.0] * (n - n // 2))


def test_seeded_series_as_histories_hold_them() -> None:
    """Error ratios and p99s as a history shows them: baselines with noise, steps, ramps,
    bursts, zeros, repeated values and exact rational levels, an hour of 15 s points and less."""
    rng = np.random.default_rng(20261130)
    for i in range(600):
        n = int(rng.choice([12, 24, 24, 60, 60, 241]))
        level = float(rng.choice([0.0, 0.001, 0.02, 40.0, 1200.0]))
        x = np.full(n, level)
        kind = i % 5
        if kind == 0:
            x = x + rng.normal(0.0, level / 10 + 1e-4, n)
        elif kind == 1:
            k = int(rng.integers(1, n))
            x[k:] += float(rng.choice([0.05, 1.0, 200.0]))
        elif kind == 2:
            x = np.round(x + rng.normal(0.0, 1.0, n), 1)  # repeated values: ties
        elif kind == 3:
            x[rng.integers(0, n, 3)] = float(rng.choice([0.5, 1e-9, 3000.0]))
        else:
            x = np.linspace(0.0, float(rng.choice([0.3, 1.0, 7.0])), n) * float(rng.integers(1, 4)) / 3
        same(_rolling_median(x))
        same(x)


@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_infinities_answer_as_the_scan() -> None:
    same([0.0] * 6 + [np.inf] * 6)
    same([1.0, np.inf, 2.0, -np.inf, 3.0, 4.0, 5.0, 6.0, 7.0])


def test_a_series_longer_than_the_matrices_take_is_split_by_the_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    """The n x n matrices grow with the square of the length, which a bundle's query sets: a
    longer series takes the scan (linear memory) and answers the same."""
    from meshobs.timeline import onset

    rng = np.random.default_rng(21)
    x = np.concatenate([rng.normal(10, 1, 60), rng.normal(14, 1, 40)])
    expected = scan(x)
    monkeypatch.setattr(onset, "VECTOR_MAX_POINTS", 50)
    called = []
    real = onset._scan
    monkeypatch.setattr(onset, "_scan", lambda *a: called.append(1) or real(*a))
    assert _split(x) == expected and called
