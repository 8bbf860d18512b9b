"""The shipped regional rubrics (1–5 invariant sheet, short-term sheet) end to end: the
sheet shows only the criteria that apply to the program under its notes column, and the
conclusion prints the section minimum and the experts' floor."""

from __future__ import annotations

import io
import re

import pypdf
import pytest

from review_portal.conclusions.services import stored_pdf
from review_portal.enums import Decision, Level, ProgramType
from review_portal.extensions import db
from review_portal.reviews.queries import rubric_of
from review_portal.reviews.services import decide_review
from review_portal.rubrics.models import ActiveRubric
from review_portal.rubrics.registry import active_rubric, get_rubric
from review_portal.scoring.compute import sheet_total
from review_portal.scoring.summary import rebuild
from review_portal.settings.services import set_setting
from tests import factories

REGIONAL = get_rubric("dop-regional-invariant", 1)
#: Version 2 adds the criterion V4 for multi-level programs.
REGIONAL_2 = get_rubric("dop-regional-invariant", 2)
SHORT = get_rubric("dop-short-term", 1)


def _choose(session, rubric):
    session.add(
        ActiveRubric(
            program_type=ProgramType.GENERAL_DEVELOPMENTAL,
            rubric_id=rubric.id,
            rubric_version=rubric.version,
        )
    )
    session.flush()


def test_shipped_rubrics_have_thresholds_a_floor_and_a_disability_criterion():
    for rubric in (REGIONAL, SHORT):
        assert rubric.decision.floor_percent is not None
        assert any(s.min_percent is not None for s in rubric.sections)
        assert ("adapted_for_disabilities", True) in [
            pair for c in rubric.criteria for pair in c.applies_if
        ]
        assert rubric.notes_title == "Примечание"
        assert not rubric.default
    assert (REGIONAL.scale_min, REGIONAL.scale_max) == (1, 5)
    assert [c.id for c in REGIONAL.sections[0].criteria] == [f"I{n}" for n in range(1, 7)]


def test_rubrics_marked_not_default_are_not_in_force_unless_chosen(session):
    assert active_rubric(ProgramType.GENERAL_DEVELOPMENTAL).id == "dop-general"
    _choose(session, REGIONAL)
    assert active_rubric(ProgramType.GENERAL_DEVELOPMENTAL).id == REGIONAL.id


@pytest.mark.parametrize(
    ("fields", "shown", "hidden"),
    [
        ({"adapted_for_disabilities": False, "level": Level.INTRODUCTORY}, ["V1"], ["V2", "V3"]),
        ({"adapted_for_disabilities": True, "level": Level.BASIC}, ["V1", "V2", "V3"], []),
    ],
)
def test_sheet_shows_only_the_criteria_that_apply(session, auth, fields, shown, hidden):
    _choose(session, REGIONAL)
    program = factories.program_in_review(**fields)
    review = program.current_review
    assert review.rubric_id == REGIONAL.id
    expert = factories.expert()
    assignment = factories.add_assignment(review, expert, 1)
    session.commit()
    auth.login(expert)
    html = auth.client.get(f"/sheets/{assignment.id}").get_data(as_text=True)
    for cid in [f"I{n}" for n in range(1, 7)] + shown:
        assert f'id="criterion-{cid}"' in html
    for cid in hidden:
        assert f'id="criterion-{cid}"' not in html
        assert f'name="score-{cid}"' not in html
    assert f'for="comment-I1">{REGIONAL.notes_title}</label>' in html
    maximum = 5 * (6 + len(shown))
    assert rubric_of(review).max_total == maximum
    assert f"из {maximum} " in html or f"of {maximum} " in html


def test_short_term_rubric_hides_the_disability_criterion_for_other_programs(session, auth):
    _choose(session, SHORT)
    program = factories.program_in_review(total_hours=24, duration_months=1)
    rubric = rubric_of(program.current_review)
    assert [c.id for c in rubric.criteria] == ["A1", "A2", "B1", "B2"]
    assert rubric.max_total == 8


def test_conclusion_prints_the_section_minimum_and_the_floor(session, auth):
    for key, value in {
        "center_name": "Центр",
        "region_name": "Регион",
        "region_code": "76",
    }.items():
        set_setting(key, value)
    _choose(session, REGIONAL)
    program = factories.program_in_review(adapted_for_disabilities=True, level=Level.BASIC)
    review = program.current_review
    # Section I: 17 of 30 (56.67 % < 60 %); in all 32 of 45 (71.11 %, admitted by the band).
    scores = {"I1": 3, "I2": 3, "I3": 3, "I4": 3, "I5": 3, "I6": 2, "V1": 5, "V2": 5, "V3": 5}
    for seat in (1, 2):
        assignment = factories.add_assignment(review, factories.expert(), seat)
        factories.submit_scores(assignment, scores, {"I6": "Результаты не измеримы."})
    session.refresh(review)
    assert review.final_result["sections_failed"] == ["I"]
    assert review.final_result["floor_failed"] == []
    assert review.computed_decision == Decision.REVISION_REQUIRED
    coordinator = factories.CoordinatorFactory()
    session.commit()
    auth.login(coordinator)
    page = auth.client.get(f"/reviews/{review.id}/decision").get_data(as_text=True)
    assert re.search(r'id="sections-failed">\s*I\s*<', page)
    assert 'id="floor-failed"' not in page
    auth.logout()
    decide_review(review, coordinator, review.computed_decision, None)
    session.expire(review, ["conclusions"])
    pdf = stored_pdf(review.conclusions[-1])
    text = " ".join(
        " ".join(page.extract_text().split()) for page in pypdf.PdfReader(io.BytesIO(pdf)).pages
    )
    assert "не менее 60 % баллов раздела; итог раздела 56,67 %" in text
    assert "Разделы, итог которых ниже установленного минимума: I" in text
    assert "Минимальный порог по оценке каждого эксперта: 60 %" in text
    assert "Оценки всех учтённых экспертов не ниже порога." in text
    assert "V2" in text and "Программа адаптирована для детей с ОВЗ" in text


def test_preview_marks_conditional_criteria_and_section_minimum(session, auth, client):
    auth.login(factories.CoordinatorFactory())
    html = client.get("/rubrics/dop-regional-invariant/1").get_data(as_text=True)
    block = html.split('id="criterion-V2"')[1].split("</fieldset>")[0]
    assert "только для программ: адаптированных для детей с ОВЗ" in block
    assert ">Примечание</label>" in block
    other = html.split('id="criterion-V3"')[1].split("</fieldset>")[0]
    assert "только для программ: Базовый, Продвинутый (углублённый)" in other
    plain = html.split('id="criterion-I1"')[1].split("</fieldset>")[0]
    assert "только для программ" not in plain
    assert "Итоговые баллы раздела должны составить не менее 60 % от его максимума." in html


@pytest.mark.parametrize("adapted", [False, True])
def test_rebuilt_sheet_percent_counts_only_the_criteria_that_apply(session, adapted):
    """The bulk rebuild of the analytics totals gives each sheet the percentage the scoring
    module gives it, whether the conditional criterion applies or not."""
    _choose(session, REGIONAL)
    program = factories.program_in_review(adapted_for_disabilities=adapted, level=Level.BASIC)
    review = program.current_review
    scores = {"I1": 5, "I2": 4, "I3": 4, "I4": 3, "I5": 4, "I6": 4, "V1": 5, "V3": 4}
    if adapted:
        scores["V2"] = 3
    sheets = []
    for seat in (1, 2):
        assignment = factories.add_assignment(review, factories.expert(), seat)
        sheets.append(factories.submit_scores(assignment, scores))
    expected = sheet_total(rubric_of(review), scores)
    assert expected.max_total == 5 * len(scores)
    kept = [s.total_percent for s in sheets]
    assert kept[0] == pytest.approx(float(expected.total * 100 / expected.max_total))
    rebuild(db.session.connection())
    db.session.expire_all()
    assert [s.total_percent for s in sheets] == pytest.approx(kept, rel=1e-12)


def test_version_2_of_the_regional_rubric_adds_only_the_multi_level_criterion():
    """Version 1 stays as it was (reviews that used it keep its fingerprint)."""
    assert REGIONAL_2.filename == "dop-regional-invariant-v2.yaml"
    assert [c.id for c in REGIONAL_2.criteria] == [c.id for c in REGIONAL.criteria] + ["V4"]
    assert REGIONAL_2.criterion("V4").applies_if == (("multi_level", True),)
    v1 = {k: v for k, v in REGIONAL.data.items() if k not in ("version", "sections")}
    v2 = {k: v for k, v in REGIONAL_2.data.items() if k not in ("version", "sections")}
    assert v1 == v2


@pytest.mark.parametrize(("multi_level", "shown"), [(True, True), (False, False)])
def test_multi_level_criterion_is_on_the_sheet_of_multi_level_programs_only(
    session, auth, multi_level, shown
):
    _choose(session, REGIONAL_2)
    program = factories.program_in_review(
        multi_level=multi_level, adapted_for_disabilities=False, level=Level.INTRODUCTORY
    )
    review = program.current_review
    assert (review.rubric_id, review.rubric_version) == (REGIONAL_2.id, 2)
    expert = factories.expert()
    assignment = factories.add_assignment(review, expert, 1)
    session.commit()
    auth.login(expert)
    html = auth.client.get(f"/sheets/{assignment.id}").get_data(as_text=True)
    assert ('id="criterion-V4"' in html) is shown
    assert ('name="score-V4"' in html) is shown
    assert ("Разноуровневость: содержание, задания" in html) is shown
    assert 'id="criterion-V1"' in html
    assert rubric_of(review).max_total == 5 * (7 + shown)


def test_preview_marks_the_multi_level_criterion(session, auth, client):
    auth.login(factories.CoordinatorFactory())
    html = client.get("/rubrics/dop-regional-invariant/2").get_data(as_text=True)
    block = html.split('id="criterion-V4"')[1].split("</fieldset>")[0]
    assert "только для программ: разноуровневых" in block

