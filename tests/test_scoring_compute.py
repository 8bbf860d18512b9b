"""The score computation against a plain reference formula, on random weighted rubrics."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from review_portal.rubrics.registry import get_rubric
from review_portal.scoring.compute import rubric_view, sheet_total


@st.composite
def rubrics_and_scores(draw):
    low = draw(st.integers(0, 2))
    high = draw(st.integers(low + 1, low + 5))
    n_sections = draw(st.integers(1, 3))
    sections, scores, weights = [], {}, {}
    for s in range(n_sections):
        criteria = []
        for c in range(draw(st.integers(1, 5))):
            cid = f"S{s}C{c}"
            weight = draw(
                st.one_of(
                    st.integers(1, 5),
                    st.decimals("0.1", "5", places=2, allow_nan=False, allow_infinity=False),
                )
            )
            weights[cid] = weight
            criteria.append({"id": cid, "weight": weight, "blocking": False, "title": cid})
            scores[cid] = draw(st.one_of(st.none(), st.integers(low, high)))
        sections.append({"id": f"S{s}", "title": "", "criteria": criteria})
    rubric = {
        "scale": {"min": low, "max": high, "labels": {}},
        "comment_required_below": high,
        "sections": sections,
    }
    return rubric, scores, weights, high


def reference(weights, scores, high):
    """Σ w·s and Σ w·max as exact fractions, the percentage rounded half up by hand."""
    total = sum(Fraction(str(w)) * (scores[c] or 0) for c, w in weights.items())
    maximum = sum(Fraction(str(w)) * high for w in weights.values())
    hundredths = total * 10000 / maximum  # percent · 100
    whole = int(hundredths)  # non-negative, so int() floors
    if hundredths - whole >= Fraction(1, 2):
        whole += 1
    return total, maximum, Decimal(whole) / 100


@given(rubrics_and_scores())
def test_sheet_total_matches_reference_formula(case):
    rubric, scores, weights, high = case
    result = sheet_total(rubric, scores)
    total, maximum, percent = reference(weights, scores, high)
    assert Fraction(result.total) == total
    assert Fraction(result.max_total) == maximum
    assert result.percent == percent
    assert result.percent.as_tuple().exponent == -2
    assert set(result.missing) == {c for c, v in scores.items() if v is None}
    for cid, weight in weights.items():
        assert Fraction(result.weighted[cid]) == Fraction(str(weight)) * (scores[cid] or 0)


@given(rubrics_and_scores())
def test_sheet_total_percent_bounds(case):
    rubric, scores, _, _ = case
    result = sheet_total(rubric, scores)
    assert Decimal(0) <= result.percent <= Decimal(100)
    full = sheet_total(rubric, dict.fromkeys(scores, rubric["scale"]["max"]))
    assert full.percent == Decimal("100.00")


def test_default_rubric_totals():
    rubric = get_rubric("dop-general", 1)
    view = rubric_view(rubric)
    assert len(view.criteria) == 10
    scores = {c.id: 2 for c in view.criteria}
    scores["B1"] = 1
    scores["D3"] = 0
    result = sheet_total(rubric, scores)
    assert result.total == Decimal(17)
    assert result.max_total == Decimal(20)
    assert result.percent == Decimal("85.00")


def test_half_up_rounding():
    rubric = {
        "scale": {"min": 0, "max": 2},
        "sections": [
            {"id": "A", "criteria": [{"id": c, "weight": 1} for c in ("A1", "A2", "A3")]},
        ],
    }
    # 1/6 = 16.666… % → 16.67; 5/6 = 83.333… → 83.33; 3/8 of a custom max → exact half.
    assert sheet_total(rubric, {"A1": 1}).percent == Decimal("16.67")
    assert sheet_total(rubric, {"A1": 2, "A2": 2, "A3": 1}).percent == Decimal("83.33")
    eighth = {
        "scale": {"min": 0, "max": 8},
        "sections": [{"id": "A", "criteria": [{"id": "A1", "weight": "0.125"}]}],
    }
    # 1/8 · 100 = 12.5 exactly; (a value needing half-up at 2 places:) 1/800 → 0.125 %
    assert sheet_total(eighth, {"A1": 1}).percent == Decimal("12.50")
    tiny = {
        "scale": {"min": 0, "max": 800},
        "sections": [{"id": "A", "criteria": [{"id": "A1", "weight": 1}]}],
    }
    assert sheet_total(tiny, {"A1": 1}).percent == Decimal("0.13")  # 0.125 → half up
