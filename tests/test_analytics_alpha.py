"""Krippendorff's alpha (interval) against the published worked examples, the
``krippendorff`` package, and the block sums the dashboard's queries produce."""

from __future__ import annotations

import random

import krippendorff
import numpy as np
import pytest

from review_portal.analytics.agreement import (
    alpha_of_units,
    estimate,
    estimate_many,
    sums_of_units,
    unit_sums,
)

N = None

#: Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", example C/D: four
#: observers, twelve units, values 1..5, missing values. Published: nominal 0.743,
#: ordinal 0.815, interval 0.849, ratio 0.797.
KRIPPENDORFF_4X12 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
    [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
]
#: The same paper, example A: two observers, ten units, binary data; published alpha 0.095
#: (for two values the interval metric equals the nominal one, so interval alpha is 0.095).
KRIPPENDORFF_BINARY = [
    [0, 1, 0, 0, 0, 0, 0, 0, 1, 0],
    [1, 1, 1, 0, 0, 1, 0, 0, 0, 0],
]


def units_of(observers):
    """Reliability data (observers × units) as units (each the observers' values)."""
    return list(zip(*observers, strict=True))


def as_array(observers):
    return np.array([[np.nan if v is None else v for v in row] for row in observers], float)


def test_alpha_matches_krippendorffs_interval_worked_example():
    assert alpha_of_units(units_of(KRIPPENDORFF_4X12)) == pytest.approx(0.849, abs=0.0005)
    # The unit with a single value (the twelfth) is not pairable and is left out.
    sums = sums_of_units(units_of(KRIPPENDORFF_4X12))
    assert (sums.units, sums.n) == (11, 40)


def test_alpha_matches_krippendorffs_binary_worked_example():
    assert alpha_of_units(units_of(KRIPPENDORFF_BINARY)) == pytest.approx(0.095, abs=0.0005)


@pytest.mark.parametrize("data", [KRIPPENDORFF_4X12, KRIPPENDORFF_BINARY])
def test_alpha_equals_the_krippendorff_package_on_the_worked_examples(data):
    expected = krippendorff.alpha(as_array(data), level_of_measurement="interval")
    assert alpha_of_units(units_of(data)) == pytest.approx(expected, abs=1e-12)


def test_alpha_of_perfect_agreement_is_one():
    units = [(2, 2), (1, 1, 1), (0, 0), (2, N, 2)]
    assert alpha_of_units(units) == 1.0
    assert (
        estimate(np.array([[1, *unit_sums([v for v in u if v is not None])] for u in units])).alpha
        == 1.0
    )


def test_alpha_is_undefined_without_variation_or_pairs():
    assert alpha_of_units([(1, 1), (1, 1)]) is None
    assert alpha_of_units([(1, N), (2,)]) is None


@pytest.mark.parametrize("seed", range(5))
def test_alpha_equals_the_krippendorff_package_on_random_data(seed):
    rng = random.Random(seed)
    observers, units = rng.randint(2, 4), rng.randint(20, 80)
    data = [
        [rng.choice([N, 0, 1, 2, 2, 1]) if rng.random() < 0.9 else N for _ in range(units)]
        for _ in range(observers)
    ]
    expected = krippendorff.alpha(as_array(data), level_of_measurement="interval")
    assert alpha_of_units(units_of(data)) == pytest.approx(expected, abs=1e-9)


def test_alpha_of_block_sums_equals_alpha_of_units():
    """The database adds units up per block; the sums of blocks give the same alpha."""
    rng = random.Random(7)
    units = [[rng.randint(0, 20) for _ in range(rng.choice((2, 2, 3)))] for _ in range(200)]
    blocks = np.zeros((13, 5))
    for n, unit in enumerate(units):
        blocks[n % 13] += (1, *unit_sums(unit))
    assert estimate(blocks).alpha == pytest.approx(alpha_of_units(units), abs=1e-12)
    assert (estimate(blocks).units, estimate(blocks).values) == (200, sum(map(len, units)))


def test_bootstrap_interval_surrounds_alpha_and_repeats():
    rng = random.Random(3)
    quality = [rng.uniform(0, 20) for _ in range(300)]
    units = [[q + rng.gauss(0, 3), q + rng.gauss(0, 3)] for q in quality]
    blocks = np.array([(1, *unit_sums(u)) for u in units])
    first, again = estimate(blocks), estimate(blocks)
    assert first == again
    assert first.low < first.alpha < first.high
    assert 0.0 < first.high - first.low < 0.1
    # Twice the noise: lower agreement, and the intervals of the two do not overlap.
    noisy = [[q + rng.gauss(0, 6), q + rng.gauss(0, 6)] for q in quality]
    worse = estimate(np.array([(1, *unit_sums(u)) for u in noisy]))
    assert worse.high < first.low


def test_measures_estimated_together_equal_each_alone():
    rng = random.Random(11)
    stack = np.zeros((2, 40, 5))
    for b in range(40):
        stack[0, b] = (1, *unit_sums([rng.randint(0, 2), rng.randint(0, 2)]))
        if b % 3:
            stack[1, b] = (1, *unit_sums([rng.randint(0, 20) for _ in range(3)]))
    together = estimate_many(stack)
    assert together[0].alpha == estimate(stack[0]).alpha
    assert together[1].alpha == pytest.approx(estimate(stack[1][stack[1][:, 0] > 0]).alpha)
    assert together[1].units == 26
