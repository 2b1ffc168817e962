"""Onset detection on synthetic series: steps, ramps, noise, gaps, batch bursts, too few points.

Every series is one point per 15 s step over an hour, as the history queries return it; the
thresholds are the engine's defaults (an error ratio over 1 %, three times the baseline and half a
point more; a p99 twice the baseline and 50 ms more).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from meshobs.timeline.onset import MIN_POINTS, Thresholds, detect

STEP = 15.0
N = 241  # an hour
T0 = 1_700_000_000.0
ERRORS = Thresholds(floor=0.01, min_rise=0.005, ratio=3.0, alarm=0.01)
LATENCY = Thresholds(floor=0.0, min_rise=50.0, ratio=2.0, alarm=1000.0)


def series(values: np.ndarray | list[float]) -> pd.Series:
    times = T0 + STEP * np.arange(len(values))
    return pd.Series(np.asarray(values, dtype=float), index=pd.Index(times))


def noise(seed: int, level: float, spread: float, n: int = N) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(level + rng.normal(0.0, spread, n), 0.0, None)


def at(i: int) -> float:
    return T0 + STEP * i


def test_a_step_is_found_at_its_step() -> None:
    values = noise(1, 0.001, 0.0005)
    values[180:] += 0.18
    v = detect(series(values), ERRORS)
    assert v.started == at(180)
    assert v.before == pytest.approx(0.001, abs=0.001) and v.after == pytest.approx(0.181, abs=0.002)


def test_the_rate_windows_ramp_is_moved_back_to_the_step() -> None:
    """rate() over 60 s turns a step at t into a ramp over [t, t+60]: the first point above the
    band is part-way up it, and the onset is moved back by that part of the window."""
    true_onset = at(160) + 5.0
    times = T0 + STEP * np.arange(N)
    level = np.clip((times - true_onset) / 60.0, 0.0, 1.0) * 0.2
    v = detect(series(level), ERRORS, ramp_s=60.0)
    assert v.started is not None and abs(v.started - true_onset) <= STEP / 2
    # Without the correction it would be a step or more late.
    late = detect(series(level), ERRORS)
    assert late.started is not None and late.started - true_onset >= STEP / 2


def test_a_slow_ramp_starts_where_it_leaves_the_baseline() -> None:
    values = noise(2, 0.002, 0.0005)
    values[100:140] += np.linspace(0.0, 0.2, 40)
    values[140:] += 0.2
    v = detect(series(values), ERRORS)
    assert v.started is not None and at(100) <= v.started <= at(108)


def test_a_latency_step() -> None:
    values = noise(3, 120.0, 10.0)
    values[200:] = noise(4, 900.0, 40.0, N - 200)
    v = detect(series(values), LATENCY)
    assert v.started == at(200)


@pytest.mark.parametrize("seed", range(5))
def test_background_errors_with_spikes_are_no_onset(seed: int) -> None:
    """0.05-0.4 % errors, with a few one- and two-step bursts to 3 %: nothing started."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0005, 0.004, N)
    for start in rng.choice(N - 2, 6, replace=False):
        values[start:start + int(rng.integers(1, 3))] = 0.03
    v = detect(series(values), ERRORS)
    assert not v.found and not v.unchecked


def test_a_batch_jobs_bursts_are_no_onset_even_during_a_burst() -> None:
    """p99 880 ms for 4 minutes every 11 (a CronJob), the hour ending inside a burst: today's
    level was reached before, so the latest burst is no onset."""
    values = noise(5, 90.0, 8.0)
    for start in range(N - 16, 0, -44):
        values[start:start + 16] = noise(6, 880.0, 30.0, len(values[start:start + 16]))
    assert values[-1] > 800  # the hour ends during a run
    assert not detect(series(values), LATENCY).found


def test_a_shift_below_the_thresholds_is_no_onset() -> None:
    """0.2 % -> 0.6 %: three times more, but under the 1 % alarm threshold."""
    values = noise(7, 0.002, 0.0003)
    values[150:] = noise(8, 0.006, 0.0003, N - 150)
    assert not detect(series(values), ERRORS).found


def test_an_incident_that_ended_is_no_current_onset() -> None:
    values = noise(9, 0.001, 0.0003)
    values[60:120] += 0.2
    assert not detect(series(values), ERRORS).found


def test_gaps_are_steps_without_data_not_health() -> None:
    values = noise(10, 0.001, 0.0003)
    values[170:] += 0.3
    values[40:70] = np.nan  # scrapes missing for 7 minutes
    values[175:178] = np.nan
    v = detect(series(values), ERRORS)
    assert v.started == at(170)


def test_too_few_samples_cannot_be_checked() -> None:
    v = detect(series([0.0, 0.0, 0.3, 0.3, 0.3]), ERRORS)
    assert not v.found and v.unchecked == f"5 samples in the history, need at least {MIN_POINTS}"
    sparse = np.full(N, np.nan)
    sparse[::30] = 0.2
    assert detect(series(sparse), ERRORS).unchecked.startswith("9 samples")


def test_a_symptom_older_than_the_history_started_before_it() -> None:
    v = detect(series(noise(11, 0.08, 0.005)), ERRORS)
    assert v.before_history and v.started is None and v.after == pytest.approx(0.08, abs=0.005)
    assert math.isnan(v.before)


def test_a_series_born_elevated_mid_history_started_when_it_began() -> None:
    """Requests that exist only since 20 minutes (a new caller), failing from their first."""
    values = np.full(N, np.nan)
    values[160:] = noise(12, 0.5, 0.01, N - 160)
    v = detect(series(values), ERRORS)
    assert v.started == at(160)


def test_a_healthy_flat_series_is_checked_and_clean() -> None:
    v = detect(series(np.zeros(N)), ERRORS)
    assert not v.found and not v.unchecked


def test_a_step_without_a_ramp_is_moved_back_one_step_only() -> None:
    """An engine that does not extrapolate (VictoriaMetrics) shows a series born mid-window as a
    step at its second scrape: no ramp to read back along."""
    values = np.zeros(N)
    values[160:] = 0.18
    v = detect(series(values), ERRORS, ramp_s=60.0)
    assert v.started == at(159)


_MEDIAN_GRID = [
    [0.5], [1.0, 2.0], [3.0, 1.0, 2.0], [0.1, 0.2, 0.3, 0.4], [2.0, 2.0, 1.0, 2.0, 3.0],
    [-0.0, -0.0, 0.0], [-0.0, -0.0], [0.0, -0.0, -0.0, 0.0], [math.inf, 1.0, math.inf, 2.0], [-math.inf, math.inf],
    [1.0, math.nan, 2.0], [1e308, 1e308], [0.1, 0.7, 0.2], [5e-324, 0.0, 5e-324, -5e-324],
]


@pytest.mark.parametrize("values", [*_MEDIAN_GRID, *(list(noise(s, 0.01, 0.02, n)) for s, n in ((1, 241), (2, 120),
                                                                                                (3, 7), (4, 720)))])
def test_medians_are_np_medians_to_the_bit(values: list[float]) -> None:
    """The timeline takes its medians by np.median's own steps without its wrapping (which
    imports numpy.ma): the same bits, signed zeros and NaN included."""
    from meshobs.timeline.onset import _median, _rolling_median

    x = np.asarray(values, dtype=float)
    with np.errstate(all="ignore"):  # inf - inf, 1e308 + 1e308: both ways say so alike
        assert repr(_median(x)) == repr(float(np.median(x)))
        if len(x) >= 3 and not np.isnan(x).any():
            expected = np.empty_like(x)
            expected[1:-1] = np.median(np.stack([x[:-2], x[1:-1], x[2:]]), axis=0)
            expected[0], expected[-1] = (x[0] + x[1]) / 2, (x[-2] + x[-1]) / 2
            assert repr(_rolling_median(x).tolist()) == repr(expected.tolist())


def test_an_onset_is_found_without_numpy_ma() -> None:
    """np.median imports numpy.ma on its first call (~10 ms of a live question's CPU): the
    detection takes its medians without it."""
    import subprocess
    import sys

    probe = """
import sys
import numpy as np
from meshobs.timeline.onset import Thresholds, detect
from meshobs.timeline.frame import Series
values = np.array([0.001] * 150 + [0.2] * 91)
verdict = detect(Series(1.7e9 + 15.0 * np.arange(241), values), Thresholds(0.01, 0.005, 3.0, 0.01), 60.0)
print(verdict.found, "numpy.ma" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"]
