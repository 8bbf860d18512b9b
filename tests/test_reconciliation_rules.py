"""The divergence, final score and decision rules at every boundary (default rubric: 10
criteria of weight 1 on 0–2, maximum 20; admit 70 % = 14, revision 50 % = 10, blocking A1
and A2 with blocking_min 1; divergence at 20 % = 4 points, decision split, criterion 2)."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from review_portal.enums import Decision
from review_portal.reconciliation import rules
from review_portal.rubrics.registry import get_rubric
from tests.factories import points, with_total

RUBRIC = get_rubric("dop-general", 1)


def fired(outcome) -> set[str]:
    return {rule["rule"] for rule in outcome.fired}


# Each pair: the first sheet and the second differ by ``difference`` points of total, each
# criterion by at most one point and both in the same band, unless the case says otherwise.
@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        # total_percent: 20 % of 20 is 4 points; exactly at it diverges, one below does not.
        (points(2), points(1, 1, 1, 1, 2), {"total_percent"}),  # 20 vs 16
        (points(2), points(1, 1, 1, 2), set()),  # 20 vs 17
        (points(2, 2, 2, 2, 2, 2, 2, 2, 1), points(2, 2, 2, 2, 1), {"total_percent"}),  # 18, 14
        # decision_split: 14 is 70 % (admitted), 13 is 65 % (revision): one point apart.
        (with_total(14), with_total(13), {"decision_split"}),
        (with_total(14), with_total(15), set()),
        # the revision threshold: 10 is 50 % (revision), 9 is 45 % (rejected).
        (with_total(10), with_total(9), {"decision_split"}),
        (with_total(10), with_total(11), set()),
        # criterion_points: 0 against 2 on one criterion is flagged; 1 against 2 is not.
        (points(2), points(2, 2, 0, 2), {"criterion_points"}),
        (points(2), points(2, 2, 1, 2), set()),
        # everything at once.
        (points(2), points(0, 0, 0, 0, 1), {"total_percent", "decision_split", "criterion_points"}),
    ],
)
def test_divergence_boundaries(first, second, expected):
    outcome = rules.check_divergence(RUBRIC, [first, second])
    assert fired(outcome) == expected
    assert outcome.divergent == bool(expected)
    # The order of the sheets does not matter.
    assert fired(rules.check_divergence(RUBRIC, [second, first])) == expected


def test_total_percent_reports_difference_and_limit():
    outcome = rules.check_divergence(RUBRIC, [points(2), points(1, 1, 1, 1, 2)])
    assert outcome.fired == (
        {"rule": "total_percent", "difference": "4", "limit": "4", "percent": "20"},
    )
    assert "4" in rules.describe_rule(outcome.fired[0])


def test_describe_rule_writes_numbers_as_the_language_does(app):
    """The stored "4.4" reads "4,4" in Russian, like every other number of the pages."""
    from flask_babel import force_locale

    fired = {"rule": "total_percent", "difference": "5.5", "limit": "4.4", "percent": "22.5"}
    criterion = {"rule": "criterion_points", "points": 2, "criteria": ["A1", "B2"]}
    with app.test_request_context():
        assert rules.describe_rule(fired) == (
            "Суммы баллов различаются на 5,5, это не меньше 22,5 % от максимума (4,4)."
        )
        assert rules.describe_rule(criterion) == (
            "Оценки расходятся на 2 и более балла по критериям: A1, B2."
        )
        with force_locale("en"):
            assert rules.describe_rule(fired) == (
                "The totals differ by 5.5 points, at least 22.5% of the maximum (4.4 points)."
            )


def test_decision_split_reports_the_bands_in_order():
    outcome = rules.check_divergence(RUBRIC, [with_total(9), with_total(14)])
    split = next(r for r in outcome.fired if r["rule"] == "decision_split")
    assert split["bands"] == ["admitted", "rejected"]


def test_criterion_points_flags_exactly_the_criteria_apart():
    first = points(2, 2, 0, 2, 2, 2, 2, 2, 2, 0)
    second = points(2, 2, 2, 2, 2, 2, 2, 2, 1, 2)
    outcome = rules.check_divergence(RUBRIC, [first, second])
    assert outcome.flagged == ("B1", "D3")
    flags = next(r for r in outcome.fired if r["rule"] == "criterion_points")
    assert flags == {"rule": "criterion_points", "points": 2, "criteria": ["B1", "D3"]}


def test_decision_split_switched_off_does_not_fire():
    data = copy.deepcopy(RUBRIC.data)
    data["divergence"]["decision_split"] = False
    assert rules.check_divergence(data, [with_total(14), with_total(13)]).divergent is False


def test_one_sheet_never_diverges():
    assert rules.check_divergence(RUBRIC, [points(0)]).divergent is False


def test_three_initial_sheets_compare_highest_and_lowest():
    outcome = rules.check_divergence(RUBRIC, [with_total(16), with_total(18), with_total(14)])
    assert "total_percent" in fired(outcome)


# --- final result and decision ---------------------------------------------------------


@pytest.mark.parametrize(
    ("sheets", "total", "percent", "decision"),
    [
        # exactly at admit_percent (14 of 20 = 70 %) → admitted; half a point below → revision.
        ([with_total(14), with_total(14)], "14.00", "70.00", Decision.ADMITTED),
        ([with_total(14), with_total(13)], "13.50", "67.50", Decision.REVISION_REQUIRED),
        # exactly at revision_percent (10 = 50 %) → revision; half a point below → rejected.
        ([with_total(10), with_total(10)], "10.00", "50.00", Decision.REVISION_REQUIRED),
        ([with_total(10), with_total(9)], "9.50", "47.50", Decision.REJECTED),
        ([points(2), points(2)], "20.00", "100.00", Decision.ADMITTED),
        ([points(0), points(0)], "0.00", "0.00", Decision.REJECTED),
    ],
)
def test_decision_thresholds(sheets, total, percent, decision):
    result = rules.final_result(RUBRIC, sheets)
    assert result.total == Decimal(total)
    assert result.percent == Decimal(percent)
    assert result.decision == decision
    assert result.max_total == 20


@pytest.mark.parametrize(
    ("a1_scores", "failed", "decision"),
    [
        # A1 blocking, blocking_min 1: a final score of exactly 1 passes ...
        ((1, 1), (), Decision.ADMITTED),
        # ... 0.5 (the mean of 1 and 0) is below it and caps an admission at revision ...
        ((1, 0), ("A1",), Decision.REVISION_REQUIRED),
        ((0, 0), ("A1",), Decision.REVISION_REQUIRED),
        # ... and 2 is well above.
        ((2, 2), (), Decision.ADMITTED),
    ],
)
def test_blocking_criterion_at_and_below_minimum(a1_scores, failed, decision):
    first = points(a1_scores[0], 2)  # every other criterion 2: 18 or more of 20
    second = points(a1_scores[1], 2)
    result = rules.final_result(RUBRIC, [first, second])
    assert result.blocking_failed == failed
    assert result.decision == decision


def test_blocking_failure_never_raises_a_rejection():
    result = rules.final_result(RUBRIC, [points(0, 0, 1, 0), points(0, 0, 1, 0)])
    assert result.blocking_failed == ("A1", "A2")
    assert result.decision == Decision.REJECTED


def test_final_score_per_criterion_is_the_mean_of_counted_sheets():
    result = rules.final_result(RUBRIC, [points(2, 1, 0), points(1, 1, 2)])
    assert result.scores["A1"] == Decimal("1.50")
    assert result.scores["A2"] == Decimal("1.00")
    assert result.scores["B1"] == Decimal("1.00")
    assert result.total == sum(result.scores.values())


@pytest.mark.parametrize(
    ("totals", "counted", "tie"),
    [
        # the two closest totals count.
        ((10, 11, 14), (0, 1), False),
        ((18, 10, 17), (0, 2), False),
        # equal distances (10–12 and 12–14): the pair with the higher mean counts.
        ((10, 12, 14), (1, 2), True),
        ((14, 12, 10), (0, 1), True),
        # identical totals everywhere: the lowest-numbered experts.
        ((12, 12, 12), (0, 1), True),
    ],
)
def test_closest_pair_mean(totals, counted, tie):
    sheets = [with_total(t) for t in totals]
    result = rules.final_result(RUBRIC, sheets)
    assert result.method == rules.CLOSEST_PAIR_MEAN
    assert result.counted == counted
    assert result.tie_broken is tie
    expected = (Decimal(totals[counted[0]]) + Decimal(totals[counted[1]])) / 2
    assert result.total == expected


def test_two_sheets_both_count_and_mean_method_counts_all():
    assert rules.final_result(RUBRIC, [with_total(18), with_total(10)]).counted == (0, 1)
    result = rules.final_result(RUBRIC, [with_total(9), with_total(12), with_total(15)], "mean")
    assert result.counted == (0, 1, 2)
    assert result.total == Decimal("12.00")


def test_final_result_as_json_uses_expert_numbers():
    result = rules.final_result(RUBRIC, [with_total(10), with_total(12), with_total(14)])
    data = result.as_json([1, 2, 4])
    assert data["counted"] == [2, 4]
    assert data["total"] == "13.00"
    assert data["decision"] == "revision_required"
    assert data["scores"]["A1"] == "2.00"


def test_weights_count_in_the_total():
    data = copy.deepcopy(RUBRIC.data)
    data["sections"][0]["criteria"][0]["weight"] = 2  # A1 doubles: maximum 22
    result = rules.final_result(data, [points(2, 0), points(2, 0)])
    assert result.max_total == 22
    assert result.total == Decimal("4.00")
    assert result.percent == Decimal("18.18")


def test_decision_is_taken_on_exact_means_not_rounded_ones():
    # Three sheets, all counted: on A1, A2, B1 the means are 4/3 (1.33 shown); on B2–B4
    # 2; on the rest 1. Exactly 14 of 20 (70 %): admitted, although the shown scores add
    # up to 13.99.
    sheets = [
        points(2, 2, 2, 2, 2, 2, 1, 1, 1, 1),
        points(1, 1, 1, 2, 2, 2, 1, 1, 1, 1),
        points(1, 1, 1, 2, 2, 2, 1, 1, 1, 1),
    ]
    result = rules.final_result(RUBRIC, sheets, rules.MEAN)
    assert result.scores["A1"] == Decimal("1.33")
    assert result.total == Decimal("14.00")
    assert result.percent == Decimal("70.00")
    assert result.decision == Decision.ADMITTED
