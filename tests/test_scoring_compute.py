"""The score computation against a plain reference formula, on random weighted rubrics;
the decision with floors, section minimums and conditional criteria against a plain one."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from review_portal.enums import Level, ProgramType
from review_portal.reconciliation.rules import final_result
from review_portal.rubrics.registry import build_rubric, get_rubric
from review_portal.rubrics.schema import PROGRAM_FIELDS, validate_rubric
from review_portal.scoring.compute import applicable, program_facts, rubric_view, sheet_total


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


# --- floors, section minimums and conditional criteria -------------------------------------

CONDITIONS = [
    {"adapted_for_disabilities": True},
    {"adapted_for_disabilities": False},
    {"short_term": True},
    {"short_term": False},
    {"program_type": "pre_professional"},
    {"program_type": ["general_developmental", "pre_professional"]},
    {"level": ["introductory", "basic"]},
    {"adapted_for_disabilities": True, "short_term": True},
]


@st.composite
def sheets_on_rubrics(draw):
    """A valid rubric file's content with floors, section minimums and conditional criteria,
    a program's facts, and 1–3 sheets scored on the criteria that apply to the program."""
    high = draw(st.integers(2, 5))
    low = draw(st.integers(0, 1))
    sections = []
    for s in range(draw(st.integers(1, 3))):
        section = {"id": f"S{s}", "title": f"Раздел {s}", "criteria": []}
        threshold = draw(st.one_of(st.none(), st.integers(1, 100)))
        if threshold is not None:
            section["min_percent"] = threshold
        for c in range(draw(st.integers(1, 4))):
            criterion = {
                "id": f"S{s}C{c}",
                "title": f"Критерий {s}.{c}",
                "weight": draw(st.sampled_from([1, 2, 3, 0.5, 1.5])),
                "blocking": draw(st.booleans()),
            }
            # The first criterion of each section applies to every program (so a section
            # threshold always has a criterion, as the schema wants).
            if c > 0 and draw(st.booleans()):
                criterion["applies_if"] = draw(st.sampled_from(CONDITIONS))
            section["criteria"].append(criterion)
        sections.append(section)
    admit = draw(st.integers(2, 100))
    revision = draw(st.integers(1, admit - 1))
    decision = {
        "admit_percent": admit,
        "revision_percent": revision,
        "blocking_min": draw(st.integers(low + 1, high)),
    }
    if draw(st.booleans()):
        decision["floor_percent"] = draw(st.integers(1, admit))
    rubric = {
        "id": "random",
        "version": 1,
        "title": "Случайный лист",
        "program_types": ["general_developmental", "pre_professional"],
        "scale": {"min": low, "max": high, "labels": {n: f"{n}" for n in range(low, high + 1)}},
        "experts_per_review": 2,
        "comment_required_below": low,
        "sections": sections,
        "decision": decision,
        "divergence": {
            "total_percent": 20,
            "decision_split": True,
            "criterion_points": 1,
            "resolution": "third_expert",
        },
        "final_score": draw(st.sampled_from(["closest_pair_mean", "mean"])),
    }
    facts = {
        "adapted_for_disabilities": draw(st.booleans()),
        "short_term": draw(st.booleans()),
        "program_type": draw(st.sampled_from(["general_developmental", "pre_professional"])),
        "level": draw(st.sampled_from(["introductory", "basic", "advanced"])),
    }
    ids = [c["id"] for s in sections for c in s["criteria"]]
    sheets = [
        {cid: draw(st.integers(low, high)) for cid in ids} for _ in range(draw(st.integers(1, 3)))
    ]
    return rubric, facts, sheets


def _holds(condition, facts) -> bool:
    for name, wanted in (condition or {}).items():
        if facts[name] not in (wanted if isinstance(wanted, list) else [wanted]):
            return False
    return True


def straightforward_decision(rubric, facts, sheets):
    """The decision written out plainly, from the raw rubric: (decision, maximum)."""
    high = rubric["scale"]["max"]
    d = rubric["decision"]
    applying = {
        s["id"]: [c for c in s["criteria"] if _holds(c.get("applies_if"), facts)]
        for s in rubric["sections"]
    }
    criteria = [c for cs in applying.values() for c in cs]
    w = {c["id"]: Fraction(str(c["weight"])) for c in criteria}
    maximum = sum(w[c] * high for c in w)
    totals = [sum(w[c] * sheet[c] for c in w) for sheet in sheets]
    n = len(sheets)
    if rubric["final_score"] == "mean" or n <= 2:
        counted = list(range(n))
    else:
        best = None
        for i in range(n):
            for j in range(i + 1, n):
                key = (abs(totals[i] - totals[j]), -(totals[i] + totals[j]), i, j)
                if best is None or key < best:
                    best = key
        counted = [best[2], best[3]]
    final = {c: Fraction(sum(sheets[i][c] for i in counted), len(counted)) for c in w}
    total = sum(w[c] * final[c] for c in w)
    percent = total * 100 / maximum
    if percent >= d["admit_percent"]:
        decision = "admitted"
    elif percent >= d["revision_percent"]:
        decision = "revision_required"
    else:
        decision = "rejected"
    not_admissible = False
    for c in criteria:
        if c["blocking"] and final[c["id"]] < d["blocking_min"]:
            not_admissible = True
    for section in rubric["sections"]:
        kept = applying[section["id"]]
        if "min_percent" in section and kept:
            got = sum(w[c["id"]] * final[c["id"]] for c in kept)
            top = sum(w[c["id"]] * high for c in kept)
            if got * 100 < section["min_percent"] * top:
                not_admissible = True
    if "floor_percent" in d:
        for i in counted:
            if totals[i] * 100 < d["floor_percent"] * maximum:
                not_admissible = True
    if not_admissible and decision == "admitted":
        decision = "revision_required"
    return decision, maximum


@settings(max_examples=300, deadline=None)
@given(sheets_on_rubrics())
def test_decision_with_floors_sections_and_conditions_matches_plain_computation(case):
    rubric, facts, sheets = case
    validate_rubric(rubric, "random.yaml")  # the generated content is a valid rubric file
    expected, maximum = straightforward_decision(rubric, facts, sheets)
    for form in (rubric, build_rubric(rubric, "random.yaml")):
        fitted = applicable(form, facts)
        result = final_result(fitted, sheets)
        assert result.decision.value == expected
        assert Fraction(result.max_total) == maximum
        assert Fraction(sheet_total(fitted, sheets[0]).max_total) == maximum


@settings(max_examples=100, deadline=None)
@given(sheets_on_rubrics())
def test_criteria_that_do_not_apply_are_not_in_the_rubric(case):
    rubric, facts, _ = case
    kept = {c.id for c in rubric_view(applicable(rubric, facts)).criteria}
    expected = {
        c["id"]
        for s in rubric["sections"]
        for c in s["criteria"]
        if _holds(c.get("applies_if"), facts)
    }
    assert kept == expected
    typed = applicable(build_rubric(rubric, "random.yaml"), facts)
    assert {c.id for c in typed.criteria} == expected
    assert Fraction(typed.max_total) == sum(
        Fraction(str(c["weight"])) * rubric["scale"]["max"]
        for s in rubric["sections"]
        for c in s["criteria"]
        if c["id"] in expected
    )


def test_floor_of_one_expert_stops_admission():
    rubric = {
        "scale": {"min": 0, "max": 2},
        "sections": [{"id": "A", "criteria": [{"id": f"A{i}", "weight": 1} for i in range(5)]}],
        "decision": {
            "admit_percent": 70,
            "revision_percent": 50,
            "blocking_min": 1,
            "floor_percent": 60,
        },
        "final_score": "mean",
    }
    high = dict.fromkeys((f"A{i}" for i in range(5)), 2)  # 100 %
    low = {"A0": 2, "A1": 2, "A2": 1, "A3": 0, "A4": 0}  # 50 % < 60 % floor
    result = final_result(rubric, [high, low])
    assert result.percent == Decimal("75.00")  # admitted by the mean alone
    assert result.floor_failed == (1,)
    assert result.decision.value == "revision_required"
    at_floor = {"A0": 2, "A1": 2, "A2": 1, "A3": 1, "A4": 0}  # 60 %: at the floor is enough
    assert final_result(rubric, [high, at_floor]).decision.value == "admitted"


def test_section_minimum_stops_admission():
    rubric = {
        "scale": {"min": 0, "max": 2},
        "sections": [
            {"id": "A", "criteria": [{"id": "A1", "weight": 3}]},
            {"id": "B", "min_percent": 50, "criteria": [{"id": "B1", "weight": 1}]},
        ],
        "decision": {"admit_percent": 70, "revision_percent": 50, "blocking_min": 1},
        "final_score": "mean",
    }
    result = final_result(rubric, [{"A1": 2, "B1": 0}, {"A1": 2, "B1": 0}])
    assert result.percent == Decimal("75.00")
    assert result.sections_failed == ("B",)
    assert result.decision.value == "revision_required"
    ok = final_result(rubric, [{"A1": 2, "B1": 1}, {"A1": 2, "B1": 1}])
    assert ok.sections_failed == () and ok.decision.value == "admitted"


@pytest.mark.parametrize(
    ("months", "hours", "short"),
    [(3, 200, True), (4, 36, True), (4, 37, False), (9, 144, False), (1, 8, True)],
)
def test_short_term_is_derived_from_months_and_hours(months, hours, short):
    program = SimpleNamespace(
        duration_months=months,
        total_hours=hours,
        adapted_for_disabilities=True,
        multi_level=True,
        program_type=ProgramType.PRE_PROFESSIONAL,
        level=Level.BASIC,
    )
    facts = program_facts(program)
    assert facts == {
        "adapted_for_disabilities": True,
        "short_term": short,
        "multi_level": True,
        "program_type": "pre_professional",
        "level": "basic",
    }
    assert set(facts) == set(PROGRAM_FIELDS)


def test_program_facts_reads_only_the_fact_columns():
    """Queries load only ``FACT_COLUMNS`` of a version for the rubric to apply to it (an
    autosave's sheet): ``program_facts`` must read nothing else."""
    from review_portal.scoring.compute import FACT_COLUMNS, program_facts

    read: list[str] = []

    class Recording:
        def __getattr__(self, name):
            read.append(name)
            return None

    program_facts(Recording())
    assert set(read) == set(FACT_COLUMNS)
