"""Krippendorff's alpha for interval data, from sufficient statistics, with a bootstrap
confidence interval (a leaf module: numpy only).

For units *u* (reviews) with *m_u ≥ 2* pairable values (one per submitted sheet), Krippendorff's
coincidence-matrix formula for the interval metric δ²(c, k) = (c − k)² reduces to sums::

    n      = Σ m_u                     (pairable values)
    S, Q   = Σ x, Σ x²                 (over those values)
    W      = Σ_u (m_u·q_u − s_u²) / (m_u − 1)      (s_u, q_u: the unit's Σ x, Σ x²)
    alpha  = 1 − (n − 1)·W / (n·Q − S²)

because Σ_{i≠j∈u} (x_i − x_j)² = 2·m_u·SS_u and Σ_{i≠j} over all values = 2·n·SS. Every
statistic is a sum over units, so the database adds them up (per block of units) and the
bootstrap resamples blocks: a resample's statistics are the counts-weighted sums. The tests
check :func:`alpha_of_units` against Krippendorff's published worked example and against the
``krippendorff`` package.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

#: Krippendorff's smallest acceptable alpha for tentative conclusions (0.8 for firm ones).
LOW_AGREEMENT = 0.667
#: Bootstrap resamples and the confidence level of the interval.
RESAMPLES = 1000
CONFIDENCE = 0.95
#: A fixed seed: the same data gives the same interval on every page load.
SEED = 20261204


@dataclass(frozen=True)
class Sums:
    """The sufficient statistics of a set of units (see the module docstring)."""

    units: int
    n: float
    s: float
    q: float
    w: float

    def alpha(self) -> float | None:
        return alpha_from_sums(self.n, self.s, self.q, self.w)


def alpha_from_sums(n, s, q, w):
    """Alpha from the sums (arrays allowed); ``None``/NaN when undefined (fewer than two
    values or no variation at all)."""
    import numpy as np

    n, s, q, w = (np.asarray(v, dtype=float) for v in (n, s, q, w))
    expected = n * q - s * s
    with np.errstate(divide="ignore", invalid="ignore"):
        result = 1.0 - (n - 1.0) * w / expected
    # Rounding can leave a tiny positive "variation" when all values are equal.
    result = np.where((n < 2) | (expected <= 1e-9 * np.maximum(1.0, n * q)), np.nan, result)
    if result.ndim == 0:
        value = float(result)
        return None if np.isnan(value) else value
    return result


def unit_sums(values: Sequence[float]) -> tuple[int, float, float, float]:
    """``(m, Σx, Σx², w)`` of one unit's values (``w = 0`` below two values)."""
    m = len(values)
    s = float(sum(values))
    q = float(sum(v * v for v in values))
    w = (m * q - s * s) / (m - 1) if m >= 2 else 0.0
    return m, s, q, w


def sums_of_units(units: Iterable[Sequence[float | None]]) -> Sums:
    """The sums over units, each a sequence of values (``None`` = missing); units with fewer
    than two values are not pairable and left out, as Krippendorff does."""
    total = [0, 0.0, 0.0, 0.0, 0.0]
    for unit in units:
        values = [float(v) for v in unit if v is not None and not _nan(v)]
        if len(values) < 2:
            continue
        m, s, q, w = unit_sums(values)
        total[0] += 1
        total[1] += m
        total[2] += s
        total[3] += q
        total[4] += w
    return Sums(*total)


def _nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def alpha_of_units(units: Iterable[Sequence[float | None]]) -> float | None:
    """Interval alpha of units given as sequences of values (one per coder, ``None`` missing)."""
    return sums_of_units(units).alpha()


@dataclass(frozen=True)
class AlphaEstimate:
    alpha: float | None
    low: float | None
    high: float | None
    #: Units (reviews with two sheets or more) and pairable values.
    units: int
    values: int


def estimate(blocks: np.ndarray, *, resamples: int = RESAMPLES, seed: int = SEED) -> AlphaEstimate:
    """Alpha of the sums of ``blocks`` (rows ``[units, n, s, q, w]``, one per block of units)
    and its percentile bootstrap interval, resampling the blocks with replacement."""
    import numpy as np

    blocks = np.asarray(blocks, dtype=float).reshape(1, -1, 5)
    return estimate_many(blocks, resamples=resamples, seed=seed)[0]


def estimate_many(
    stack: np.ndarray, *, resamples: int = RESAMPLES, seed: int = SEED
) -> list[AlphaEstimate]:
    """:func:`estimate` of several measures over the same blocks (``stack``: measures ×
    blocks × ``[units, n, s, q, w]``, zeros where a measure has no unit in a block). Every
    measure sees the same resamples of the blocks, as one bootstrap of the reviews."""
    import numpy as np

    stack = np.asarray(stack, dtype=float)
    measures, count = stack.shape[0], stack.shape[1]
    totals = stack.sum(axis=1)
    points = [alpha_from_sums(*t[1:]) for t in totals]
    intervals: list[tuple[float | None, float | None]] = [(None, None)] * measures
    if count >= 2:
        rng = np.random.default_rng(seed)
        drawn = rng.integers(0, count, size=(resamples, count))
        offsets = (np.arange(resamples) * count)[:, None]
        counts = np.bincount((drawn + offsets).ravel(), minlength=resamples * count)
        counts = counts.reshape(resamples, count).astype(float)
        sums = counts @ stack[:, :, 1:].transpose(1, 0, 2).reshape(count, measures * 4)
        sums = sums.reshape(resamples, measures, 4)
        draws = alpha_from_sums(sums[..., 0], sums[..., 1], sums[..., 2], sums[..., 3])
        tail = (1.0 - CONFIDENCE) / 2 * 100
        intervals = []
        for m in range(measures):
            column = draws[:, m]
            column = column[~np.isnan(column)]
            if points[m] is None or not len(column):
                intervals.append((None, None))
            else:
                low, high = np.percentile(column, [tail, 100 - tail])
                intervals.append((float(low), float(high)))
    return [
        AlphaEstimate(points[m], *intervals[m], int(totals[m][0]), int(totals[m][1]))
        for m in range(measures)
    ]
