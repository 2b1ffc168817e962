"""When did a symptom start? Onset detection on one series (numpy).

The question is narrower than general change-point detection: a symptom a check sees *now*
(errors above the threshold, a p99 that regressed) -- since when has it been there? So the model
is "a baseline, then one sustained shift up that lasts until now", and the method is chosen for
that and for noise:

1. **A 3-point rolling median** first: a single scrape-sized spike (a batch request, a GC pause)
   cannot move it, a real shift lasting two steps or more passes through unchanged.
2. **One change point by least absolute deviations**: the split of the smoothed series into a
   before and an after segment that minimises the sum of absolute deviations from each
   segment's median (the L1 cost PELT and binary segmentation use for robust mean shifts, with
   exactly one change: the current regime is the one that matters). Medians, not means, so the
   occasional outlier on either side does not drag the split.
3. **The verdict, against a baseline band** made of the before segment's median and its robust
   spread (1.4826 x the median absolute deviation, the MAD's consistent estimate of sigma):
   the shift counts only when
   - it is large by the checks' own thresholds (``Thresholds`` below: an error ratio over the
     alarm threshold and several times the baseline; a p99 twice the baseline and tens of ms
     more), so a healthy service's wobble is never an onset;
   - it is **sustained**: most points after the split are above the band, and so are the last
     ones (the symptom is still there);
   - the level is **new**: the before segment hardly ever reached it. A batch job whose p99
     jumps for four minutes every eleven, or background errors that spike now and then, reached
     today's level before, so their latest burst is not an onset.
4. **The onset** is then walked back from the split to the first point of the run that stands
   out of the baseline's own noise: on a ramp that is where the rise left the baseline, not its
   middle.

Too few points (a new service, a scrape gap) is "could not check", never "no onset".
A series that is already elevated from its first point started before the history did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

MIN_POINTS = 12  # three minutes at 15 s: fewer cannot tell a shift from a wobble
MIN_BEFORE = 4  # points of baseline needed before a split
MIN_AFTER = 3  # points after it (the rate window itself spans four)
# Longest series split with the n x n matrices (~n*n*8 bytes each, a few of them); longer
# ones take the plain scan, whose memory is linear.
VECTOR_MAX_POINTS = 720
SMOOTHING = 3  # rolling-median width (points)
SUSTAINED = 0.8  # share of the points after the split above the band
RECENT = 3  # the last points, all above the band: the symptom is current
NEW_LEVEL = 0.05  # at most this share of the baseline reached halfway to the new level
BAND_SIGMAS = 4.0  # the band: baseline median + this many robust sigmas ...


@dataclass(frozen=True)
class Thresholds:
    """How big a shift must be to be a symptom's onset, in the series' own unit.

    ``floor``: the level after the shift must reach it; ``min_rise``: and exceed the baseline by
    at least this much; ``ratio``: and be at least this many times the baseline (for latency:
    the regression factor). ``alarm``: a series at or above it from its first point to now had
    the symptom before the history began (the checks' alarm threshold; 0: never said).
    """

    floor: float
    min_rise: float
    ratio: float
    alarm: float = 0.0


@dataclass(frozen=True)
class Verdict:
    """What one series says. ``started`` is the onset's time (seconds since the epoch), None
    with ``before_history`` when the series was elevated from its first point, None without a
    shift. ``unchecked`` says why no verdict could be reached (too few points)."""

    started: float | None = None
    before: float = 0.0  # baseline level (median before the shift)
    after: float = 0.0  # level since (median after it)
    before_history: bool = False
    unchecked: str = ""

    @property
    def found(self) -> bool:
        return self.started is not None or self.before_history


class Indexed(Protocol):
    """A series of values indexed by time in seconds: :class:`meshobs.timeline.frame.Series`,
    or a ``pandas.Series``."""

    @property
    def index(self) -> Any: ...

    @property
    def values(self) -> Any: ...


def detect(series: Indexed, limits: Thresholds, ramp_s: float = 0.0) -> Verdict:
    """The onset of a sustained rise in ``series`` (values indexed by time in seconds, NaN or
    missing for steps without data), judged against ``limits``.

    ``ramp_s``: each value is a rate over the preceding ``ramp_s`` seconds, so a step change
    shows as a ramp that long (Prometheus's rate() extrapolates a counter born mid-window back to
    zero, so even a new error series ramps). The first point above the band then lies part-way
    up it, and the step happened ``ramp_s`` x (its rise / the full rise) before it: the onset is
    moved back by that much. When the next point does not climb the ramp's slope (an engine that
    does not extrapolate shows a new series as a step), there is no ramp to read: the onset is
    moved back by one step only. The point before it, still at the baseline, does
    not bound it: its window barely overlapped the change, and a series Istio creates on the
    first failing request has no rate until its second scrape.
    """
    import numpy as np

    every = np.asarray(series.values, dtype=float)
    index = np.asarray(series.index, dtype=float)
    kept = ~np.isnan(every)
    raw, times = every[kept], index[kept]
    n = len(raw)
    if n < MIN_POINTS:
        return Verdict(unchecked=f"{n} samples in the history, need at least {MIN_POINTS}")
    smooth = _rolling_median(raw)

    if limits.alarm > 0 and (raw[:MIN_BEFORE + 1] >= limits.alarm).all() and (raw[-RECENT:] >= limits.alarm).all():
        level = _median(raw)
        if level >= limits.alarm:
            # Elevated since its first point: since before the history, or -- when the series
            # only begins mid-history (the requests themselves began then) -- since it began.
            step = _median(np.diff(index)) if len(index) > 1 else 0.0
            if times[0] - float(index[0]) <= MIN_BEFORE * step:
                return Verdict(before=float("nan"), after=level, before_history=True)
            return Verdict(started=float(times[0]), before=float("nan"), after=level)

    k = _split(smooth)
    if k is None:
        return Verdict()
    before, after = smooth[:k], smooth[k:]
    m0, m1 = _median(before), _median(after)
    if not _significant(m0, m1, limits):
        return Verdict(before=m0, after=m1)
    sigma = 1.4826 * _median(np.abs(before - m0))
    band = m0 + max(BAND_SIGMAS * sigma, (m1 - m0) / 4)
    above = raw > band
    if above[k:].mean() < SUSTAINED or not above[-RECENT:].all():
        return Verdict(before=m0, after=m1)
    halfway = (m0 + m1) / 2
    if (raw[:k] >= halfway).mean() > NEW_LEVEL:
        return Verdict(before=m0, after=m1)
    # Back to where the rise left the baseline's own noise (not the wide band above, which a
    # ramp crosses only a quarter of the way up).
    leaving = raw > m0 + max(BAND_SIGMAS * sigma, limits.min_rise / 10)
    start = k
    while start > 0 and leaving[start - 1]:
        start -= 1
    if start < MIN_BEFORE:
        # The rise reaches back to the first points: it started before the history.
        return Verdict(before=m0, after=m1, before_history=True)
    started = float(times[start])
    if ramp_s > 0 and m1 > m0 and start + 1 < n:
        def share(i: int) -> float:
            return min(1.0, max(0.0, float((raw[i] - m0) / (m1 - m0))))

        step = float(times[start + 1] - times[start])
        if share(start + 1) - share(start) >= 0.5 * step / ramp_s:
            started -= ramp_s * share(start)  # a ramp: back to where it began
        else:
            # No ramp to read (an engine that does not extrapolate, e.g. VictoriaMetrics on a
            # series born mid-window, shows a step): it happened within the step before.
            started -= float(times[start] - times[start - 1])
    return Verdict(started=started, before=m0, after=m1)


def _median(x: np.ndarray) -> float:
    """``np.median`` of a 1-D array, by its very steps (the partition at the middle, the middle
    value or the mean of the two, NaN when one is NaN) without its generic wrapping: that costs
    more than the partition on series this short, and its NaN check imports numpy.ma on the
    first call, start-up a live question pays (tests/test_timeline.py compares the two)."""
    import numpy as np

    n = len(x)
    if n == 0:
        return float("nan")
    half = n // 2
    odd = n % 2 == 1
    part = np.partition(x, [half, -1] if odd else [half - 1, half, -1])
    if np.isnan(part[-1]):  # NaN sorts last
        return float("nan")
    # The mean of the middle value, or of the two, as np.median takes it (the mean of -0.0 is 0.0).
    return float(np.mean(part[half:half + 1] if odd else part[half - 1:half + 1]))


def _rolling_median(x: np.ndarray) -> np.ndarray:
    """The median of each point and its neighbours (``SMOOTHING`` = 3 points, centred; the two
    ends have one neighbour: the mean of the two), as pandas' ``rolling(3, center=True,
    min_periods=1).median()`` gives it: the middle one of three as ``np.median`` partitions them
    (``x`` holds no NaN: :func:`detect` drops them)."""
    import numpy as np

    assert SMOOTHING == 3
    out = np.empty_like(x)
    out[1:-1] = np.mean(np.partition(np.stack([x[:-2], x[1:-1], x[2:]]), [1, -1], axis=0)[1:2], axis=0)
    out[0], out[-1] = (x[0] + x[1]) / 2, (x[-2] + x[-1]) / 2
    return out


def _split(smooth: object) -> int | None:
    """The index k minimising the L1 cost of [..k) and [k..] around their medians.

    The answer is the one the plain scan gives (:func:`_scan`: two ``np.median`` calls and two
    sums per candidate k, the first k whose cost beats the best so far by more than 1e-12), and
    is found with a few array operations instead (a 5,000-service history asks ~3,000 series,
    ~120k medians). Every median is taken exactly as ``np.median`` takes it, so each k's
    deviations are the scan's own numbers; only their summation order differs. That can move a
    near-tie, so the k that decide are summed again the scan's way: every k whose cost can lie,
    within the rounding of either order, in the run of costs the scan's 1e-12 margin chains
    together above the minimum. The rest cannot change the scan's answer: a k above that run
    never beats a cost in it, and any cost in it beats them.
    """
    import numpy as np

    x = np.asarray(smooth, dtype=float)
    n = len(x)
    ks = np.arange(MIN_BEFORE, n - MIN_AFTER + 1)
    if len(ks) == 0:
        return None
    # The matrices below are n x n: beyond a few hundred points (a window's worth at the usual
    # step) they cost more memory than the scan's time is worth, and a bundle sets n.
    if n > VECTOR_MAX_POINTS or not np.isfinite(x).all():
        return _scan(x, ks)
    before = np.arange(n) < ks[:, None]  # row i: the points before ks[i]
    high = np.inf
    # Row i holds x[:k] (resp. x[k:]) sorted, the rest of the row pushed to its end.
    lows = np.sort(np.where(before, x, high), axis=1)
    highs = np.sort(np.where(before, high, x), axis=1)
    dev_before = np.abs(x - _medians(lows, ks)[:, None])
    dev_after = np.abs(x - _medians(highs, n - ks)[:, None])
    cost = np.where(before, dev_before, 0.0).sum(axis=1) + np.where(before, 0.0, dev_after).sum(axis=1)
    # Sums of n non-negative terms in two orders differ by at most ~2(n+2) half-ulps of the sum:
    # ``err`` bounds that four times over. ``chain``: how far above the minimum the scan's margin
    # can reach, one 1e-12 (and its rounding) per candidate.
    eps = float(np.finfo(float).eps)
    err = 4 * (n + 2) * eps * cost
    chain = (len(ks) + 1) * (2e-12 + 2 * eps * (float(cost.min()) + 1.0))
    deciding = np.flatnonzero(cost - err <= float((cost + err).min()) + chain)
    best, best_k = float("inf"), None
    for i in deciding:
        k = int(ks[i])
        # A sum of non-negative terms is 0 in any order exactly when every term is.
        exact = 0.0 if cost[i] == 0.0 else float(dev_before[i, :k].sum() + dev_after[i, k:].sum())
        if exact < best - 1e-12:
            best, best_k = exact, k
    return best_k


def _medians(rows: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``np.median`` of the first ``counts[i]`` values of each sorted row, with its arithmetic:
    the middle value, or the sum of the two middle values halved."""
    import numpy as np

    at = np.arange(len(rows))
    upper = rows[at, counts // 2]
    lower = rows[at, (counts - 1) // 2]
    middle: np.ndarray = np.where(counts % 2 == 1, upper, (lower + upper) / 2)
    return middle


def _scan(x: np.ndarray, ks: np.ndarray) -> int | None:
    """The plain scan :func:`_split` answers as: each candidate's cost from ``np.median`` and
    sums, the first k beating the best so far by more than 1e-12 (also used as is for a series
    holding infinities, whose costs are not finite)."""
    import numpy as np

    best, best_k = float("inf"), None
    for k in ks:
        a, b = x[:k], x[k:]
        cost = float(np.abs(a - np.median(a)).sum() + np.abs(b - np.median(b)).sum())
        if cost < best - 1e-12:
            best, best_k = cost, int(k)
    return best_k


def _significant(before: float, after: float, limits: Thresholds) -> bool:
    return (after >= limits.floor and after - before >= limits.min_rise
            and after >= limits.ratio * max(before, 0.0))


