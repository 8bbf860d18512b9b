"""The shipped regional rubrics (1–5 invariant sheet, short-term sheet) end to end: the
sheet shows only the criteria that apply to the program under its notes column, the
conclusion prints the section minimum and the experts' floor, and a short-term program
takes the rubric chosen for its type's short-term programs."""

from __future__ import annotations

import io
import re

import pypdf
import pytest
import sqlalchemy as sa

from review_portal.audit.models import AuditEvent
from review_portal.conclusions.services import stored_pdf
from review_portal.enums import Decision, Level, ProgramType
from review_portal.extensions import db
from review_portal.reviews.queries import rubric_of
from review_portal.reviews.services import decide_review
from review_portal.rubrics.models import ActiveRubric
from review_portal.rubrics.registry import active_rubric, choose_active_rubric, get_rubric
from review_portal.scoring.compute import sheet_total
from review_portal.scoring.summary import rebuild, refresh_review
from review_portal.settings.services import set_setting
from tests import factories

REGIONAL = get_rubric("dop-regional-invariant", 1)
#: Version 2 adds the criterion V4 for multi-level programs.
REGIONAL_2 = get_rubric("dop-regional-invariant", 2)
SHORT = get_rubric("dop-short-term", 1)
GENERAL = ProgramType.GENERAL_DEVELOPMENTAL
#: At most 3 months or 36 hours (see scoring.compute.is_short_term).
SHORT_TERM = {"total_hours": 24, "duration_months": 1}
REGULAR = {"total_hours": 144, "duration_months": 9}


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


def test_rebuilt_sheet_percent_keeps_an_applicable_criterion_left_empty(session):
    """An appeal panel's sheet keeps a row, without a score, for each criterion that applies
    but is not contested: the conditional ones still count in its maximum, in the sheet's
    percentage the services keep and in the bulk rebuild alike."""
    _choose(session, REGIONAL)
    program = factories.program_in_review(adapted_for_disabilities=True, level=Level.BASIC)
    review = program.current_review
    scores = {"I1": 5, "I2": 4, "I3": 4, "I4": 3, "I5": 4, "I6": 4, "V1": 5, "V2": 3, "V3": 4}
    sheets = []
    for seat in (1, 2):
        assignment = factories.add_assignment(review, factories.expert(), seat)
        sheets.append(factories.submit_scores(assignment, scores))
    # As a panel scoring I3, I4 and I6 only leaves them (the rows stay, the values go).
    contested = {"I3", "I4", "I6"}
    for sheet in sheets:
        for score in sheet.scores:
            if score.criterion_id not in contested:
                score.value = None
    refresh_review(review)
    expected = sheet_total(rubric_of(review), {c: scores[c] for c in contested})
    assert expected.max_total == 45
    kept = [s.total_percent for s in sheets]
    assert kept[0] == pytest.approx(float(expected.total * 100 / expected.max_total))
    rebuild(db.session.connection())
    db.session.expire_all()
    assert [s.total_percent for s in sheets] == pytest.approx(kept, rel=1e-12)


def test_version_2_of_the_regional_rubric_adds_only_the_multi_level_criterion():
    """Version 1 stays as it was (reviews that used it keep its fingerprint); version 2 adds
    the multi-level criterion and the socially significant registry's policy."""
    assert REGIONAL_2.filename == "dop-regional-invariant-v2.yaml"
    assert [c.id for c in REGIONAL_2.criteria] == [c.id for c in REGIONAL.criteria] + ["V4"]
    assert REGIONAL_2.criterion("V4").applies_if == (("multi_level", True),)
    changed = ("version", "sections", "registry_kinds")
    v1 = {k: v for k, v in REGIONAL.data.items() if k not in changed}
    v2 = {k: v for k, v in REGIONAL_2.data.items() if k not in changed}
    assert v1 == v2
    # Version 2 also sets what the socially significant registry asks beyond admission.
    assert REGIONAL_2.data["registry_kinds"] == {
        "significant": {"admit_percent": 80, "sections": {"I": 75}}
    }


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


def test_short_term_program_takes_the_short_term_choice_a_regular_one_does_not(session):
    coordinator = factories.CoordinatorFactory()
    choose_active_rubric(GENERAL, SHORT, coordinator, short_term=True)
    short = factories.program_in_review(**SHORT_TERM)
    regular = factories.program_in_review(**REGULAR)
    assert (short.current_review.rubric_id, short.current_review.rubric_version) == (SHORT.id, 1)
    assert regular.current_review.rubric_id == "dop-general"
    # The type's regular choice leaves the short-term one in force for short programs.
    choose_active_rubric(GENERAL, REGIONAL, coordinator)
    assert active_rubric(GENERAL, short_term=True) == SHORT
    assert active_rubric(GENERAL) == REGIONAL
    assert factories.program_in_review(**REGULAR).current_review.rubric_id == REGIONAL.id
    assert factories.program_in_review(**SHORT_TERM).current_review.rubric_id == SHORT.id


def test_short_term_program_without_a_choice_of_its_own_takes_the_regular_one(session):
    """Fallback: to the type's choice, else to its default; and again after a clear."""
    coordinator = factories.CoordinatorFactory()
    assert active_rubric(GENERAL, short_term=True).id == "dop-general"
    choose_active_rubric(GENERAL, REGIONAL, coordinator)
    short = factories.program_in_review(**SHORT_TERM)
    assert short.current_review.rubric_id == REGIONAL.id
    choose_active_rubric(GENERAL, SHORT, coordinator, short_term=True)
    choose_active_rubric(GENERAL, None, coordinator, short_term=True)
    assert session.get(ActiveRubric, (GENERAL, True)) is None
    assert factories.program_in_review(**SHORT_TERM).current_review.rubric_id == REGIONAL.id
    # The frozen rubric of the review accepted earlier does not change.
    assert short.current_review.rubric_id == REGIONAL.id
    with pytest.raises(ValueError, match="short-term"):
        choose_active_rubric(GENERAL, None, coordinator)


def test_short_term_is_read_from_the_submitted_version(session):
    """The version under review decides, not the program edited since."""
    choose_active_rubric(GENERAL, SHORT, factories.CoordinatorFactory(), short_term=True)
    program = factories.ProgramFactory(**SHORT_TERM)
    factories.attach_document(program)
    from review_portal.programs.services import accept_submission, submit_program

    submit_program(program, factories.ApplicantFactory(organization=program.organization))
    program.total_hours, program.duration_months = 144, 9
    accept_submission(program, factories.CoordinatorFactory())
    assert program.current_review.version.total_hours == 24
    assert program.current_review.rubric_id == SHORT.id


def test_rubrics_page_chooses_and_clears_the_short_term_rubric(session, auth):
    coordinator = factories.CoordinatorFactory()
    auth.login(coordinator)
    page = auth.client.get("/rubrics").get_data(as_text=True)
    assert "Для краткосрочных программ (продолжительностью не более 3 мес." in page
    assert "Если отдельный лист не выбран, краткосрочные программы оцениваются по листу" in page
    row = page.split('id="active-general_developmental-short-term"')[1].split("</li>")[0]
    assert "Общеразвивающая — краткосрочные программы:" in row
    assert "отдельный лист не выбран, действует лист всех программ вида" in row
    assert "dop-general</code> v1" in row
    assert '<option value="short_term">Краткосрочные программы</option>' in page

    response = auth.post(
        "/rubrics/active",
        {"program_type": GENERAL.value, "scope": "short_term", "rubric": "dop-short-term:1"},
        token_from="/rubrics",
    )
    assert response.status_code == 302
    choice = session.get(ActiveRubric, (GENERAL, True))
    assert (choice.rubric_id, choice.chosen_by_id) == (SHORT.id, coordinator.id)
    assert session.get(ActiveRubric, (GENERAL, False)) is None
    page = auth.client.get("/rubrics").get_data(as_text=True)
    assert (
        "Экспертный лист dop-short-term v1 теперь действует для краткосрочных программ вида "
        "«Общеразвивающая»." in page
    )
    row = page.split('id="active-general_developmental-short-term"')[1].split("</li>")[0]
    assert "dop-short-term</code> v1" in row and "не выбран" not in row
    regular = page.split('id="active-general_developmental"')[1].split("</li>")[0]
    assert "dop-general</code> v1" in regular
    listed = page.split('id="rubric-dop-short-term-1"')[1].split("</tr>")[0]
    assert "Общеразвивающая — краткосрочные программы</td>" in listed

    event = session.execute(
        sa.select(AuditEvent).where(AuditEvent.action == "rubric.activate")
    ).scalar_one()
    assert event.object_id == GENERAL.value
    assert event.after == {"rubric_id": SHORT.id, "rubric_version": 1, "short_term": True}
    log = auth.client.get("/audit/").get_data(as_text=True)
    assert "«Общеразвивающая», краткосрочные программы" in log

    response = auth.post(
        "/rubrics/active",
        {"program_type": GENERAL.value, "scope": "short_term", "rubric": ""},
        token_from="/rubrics",
    )
    assert response.status_code == 302
    assert session.get(ActiveRubric, (GENERAL, True)) is None
    page = auth.client.get("/rubrics").get_data(as_text=True)
    assert (
        "Краткосрочные программы вида «Общеразвивающая» теперь оцениваются по листу всех "
        "программ этого вида." in page
    )
    cleared = (
        session.execute(
            sa.select(AuditEvent)
            .where(AuditEvent.action == "rubric.activate")
            .order_by(AuditEvent.id.desc())
        )
        .scalars()
        .first()
    )
    assert cleared.before == {"rubric_id": SHORT.id, "rubric_version": 1, "short_term": True}
    assert cleared.after == {"rubric_id": None, "rubric_version": None, "short_term": True}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"scope": "regular", "rubric": ""},
            "Выберите экспертный лист: снять можно только отдельный выбор для краткосрочных",
        ),
        ({"scope": "everything", "rubric": "dop-short-term:1"}, 'id="scope-error"'),
        ({"scope": "short_term", "rubric": "dop-short-term:9"}, 'id="rubric-error"'),
    ],
)
def test_rubrics_page_refuses_a_bad_choice_and_writes_nothing(session, auth, data, message):
    auth.login(factories.CoordinatorFactory())
    response = auth.post(
        "/rubrics/active", {"program_type": GENERAL.value, **data}, token_from="/rubrics"
    )
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert session.execute(sa.select(ActiveRubric)).first() is None
    assert (
        session.execute(sa.select(AuditEvent).where(AuditEvent.action == "rubric.activate")).first()
        is None
    )
