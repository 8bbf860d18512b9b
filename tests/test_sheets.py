"""The score sheet through HTTP: form and JSON autosave with revisions, submit validation,
the lock, reopening, the expert's history, permissions and the blind rules."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from review_portal.assignment.models import Assignment
from review_portal.audit.models import AuditEvent
from review_portal.enums import AssignmentStatus, SheetStatus
from review_portal.notifications.models import Notification, OutboxMessage
from review_portal.rubrics.registry import get_rubric
from review_portal.scoring.models import ScoreRevision, ScoreSheet
from tests import factories

RUBRIC = get_rubric("dop-general", 1)
CRITERIA = [c.id for c in RUBRIC.criteria]

OTHER_NAME = "Засекреченный Эксперт Второй"
OTHER_COMMENT = "Уникальный-комментарий-второго-эксперта-7731"
OTHER_RECOMMENDATION = "Уникальная-рекомендация-второго-эксперта-4410"


def _assign(review_id, user, seat, status=AssignmentStatus.ACCEPTED):
    assignment = Assignment(
        review_id=review_id,
        expert_id=user.id,
        seat=seat,
        due_on=date.today() + timedelta(days=10),
        status=status,
    )
    factories.db.session.add(assignment)
    factories.db.session.flush()
    return assignment


@pytest.fixture
def case(session):
    program = factories.program_in_review()
    review_id = program.current_review_id
    first = factories.expert(full_name="Первый Эксперт Тестовый")
    second = factories.expert(full_name=OTHER_NAME)
    a1 = _assign(review_id, first, 1)
    a2 = _assign(review_id, second, 2)
    session.commit()
    return {"program": program, "first": first, "second": second, "a1": a1, "a2": a2}


def full_form(revision, action="save", **overrides):
    data = {f"score-{c}": "2" for c in CRITERIA}
    data.update({"recommendations": "Хорошая программа.", "confirmed": "y"})
    data.update({"revision": str(revision), "action": action})
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def payload(revision, **overrides):
    data = {
        "revision": revision,
        "scores": dict.fromkeys(CRITERIA, 2),
        "comments": {},
        "recommendations": "Хорошая программа.",
        "confirmed": True,
    }
    data.update(overrides)
    return data


def autosave(auth, assignment_id, data):
    token = auth.token("/")
    return auth.client.post(
        f"/sheets/{assignment_id}/autosave", json=data, headers={"X-CSRFToken": token}
    )


def sheet_of(session, assignment):
    session.expire_all()
    return session.execute(
        select(ScoreSheet).where(ScoreSheet.assignment_id == assignment.id)
    ).scalar_one_or_none()


def error_text(html: str, field: str) -> str:
    match = re.search(rf'id="error-{field}"[^>]*>(.*?)</div>', html, re.S)
    assert match, f"no #error-{field}"
    return match.group(1).strip()


def submit_as(auth, session, assignment, user, comment=""):
    auth.login(user)
    overrides = {f"comment-{CRITERIA[0]}": comment} if comment else {}
    existing = sheet_of(session, assignment)
    revision = existing.revision if existing is not None else 0
    response = auth.post(f"/sheets/{assignment.id}", full_form(revision, "submit", **overrides))
    assert response.status_code == 302, response.get_data(as_text=True)
    auth.logout()
    return sheet_of(session, assignment)


# --- the page ---------------------------------------------------------------------------


def test_sheet_page_shows_rubric_program_and_documents(case, auth, english):
    auth.login(case["first"])
    html = english.get(f"/sheets/{case['a1'].id}").get_data(as_text=True)
    assert case["program"].title in html
    assert "program.pdf" in html
    for c in RUBRIC.criteria:
        assert f'id="criterion-{c.id}"' in html
        assert f'name="comment-{c.id}"' in html
        for value, label in RUBRIC.scale_labels.items():
            assert f'id="score-{c.id}-{value}"' in html
            assert label in html
    assert 'name="recommendations"' in html
    assert 'name="confirmed"' in html
    assert 'name="revision" value="0"' in html
    assert "js/sheet.js" in html
    assert 'value="save"' in html and 'value="check"' in html


def test_expert_home_links_accepted_assignment_to_its_sheet(case, auth):
    auth.login(case["first"])
    html = auth.client.get("/expert").get_data(as_text=True)
    assert f'href="/sheets/{case["a1"].id}"' in html


def test_plain_save_keeps_values_without_javascript(case, auth, session):
    auth.login(case["first"])
    form = full_form(0, **{"score-A1": "1", "comment-A1": "Нет учебного плана."})
    response = auth.post(f"/sheets/{case['a1'].id}", form)
    assert response.status_code == 302
    sheet = sheet_of(session, case["a1"])
    assert sheet.revision == 1
    assert sheet.status == SheetStatus.DRAFT
    assert {s.criterion_id: s.value for s in sheet.scores}["A1"] == 1
    html = auth.client.get(f"/sheets/{case['a1'].id}").get_data(as_text=True)
    assert re.search(r'id="score-A1-1"[^>]*checked', html.replace("\n", " "))
    assert "Нет учебного плана." in html
    assert 'name="revision" value="1"' in html
    assert case["a1"].status == AssignmentStatus.ACCEPTED


# --- autosave and revisions ----------------------------------------------------------------


def test_autosave_saves_and_returns_new_revision(case, auth, session):
    auth.login(case["first"])
    data = payload(0, scores={"A1": 0, "A2": None}, comments={"A1": "Нет титульного листа"})
    response = autosave(auth, case["a1"].id, data)
    assert response.status_code == 200
    assert response.json["status"] == "saved"
    assert response.json["revision"] == 1
    sheet = sheet_of(session, case["a1"])
    values = {s.criterion_id: (s.value, s.comment) for s in sheet.scores}
    assert values["A1"] == (0, "Нет титульного листа")
    assert values["A2"] == (None, "")
    assert sheet.no_conflict_confirmed is True
    second = autosave(auth, case["a1"].id, payload(1, recommendations="Ещё"))
    assert second.json["revision"] == 2
    assert sheet_of(session, case["a1"]).recommendations == "Ещё"


def _statements(client, method: str, url: str, **kwargs) -> tuple[int, object]:
    """The SQL statements of one request (after the test's writes are committed)."""
    import sqlalchemy as sa

    statements: list[str] = []

    def count(conn, cursor, statement, *_args) -> None:
        statements.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", count)
    try:
        response = client.open(url, method=method, **kwargs)
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", count)
    return len(statements), response


def test_sheet_page_and_autosave_read_a_fixed_number_of_statements(case, auth, session):
    """The expert's sheet page and autosave cost as many statements with one assignment and
    one sheet in the database as with many; what the save stores is what it answers."""
    auth.login(case["first"])
    token = auth.token("/")
    url = f"/sheets/{case['a1'].id}"
    headers = {"X-CSRFToken": token}

    def measure(revision: int) -> tuple[int, int]:
        page, answer = _statements(auth.client, "GET", url)
        assert answer.status_code == 200
        save, answer = _statements(
            auth.client, "POST", f"{url}/autosave", json=payload(revision), headers=headers
        )
        assert answer.status_code == 200, answer.get_data(as_text=True)
        stored = sheet_of(session, case["a1"])
        assert answer.json["revision"] == stored.revision == revision + 1
        assert answer.json["saved_at"] == stored.saved_at.isoformat()
        assert {s.criterion_id: s.value for s in stored.scores} == dict.fromkeys(CRITERIA, 2)
        return page, save

    assert autosave(auth, case["a1"].id, payload(0)).status_code == 200  # the sheet exists
    few = measure(1)
    for _ in range(3):
        other = factories.program_in_review()
        _assign(other.current_review_id, case["first"], 1)
        _assign(other.current_review_id, case["second"], 2)
    session.commit()
    assert measure(2) == few


def test_autosave_stale_revision_is_refused_with_current_state(case, auth, session):
    auth.login(case["first"])
    assert (
        autosave(auth, case["a1"].id, payload(0, recommendations="Первая вкладка")).status_code
        == 200
    )
    stale = autosave(auth, case["a1"].id, payload(0, recommendations="Вторая вкладка"))
    assert stale.status_code == 409
    assert stale.json["status"] == "stale"
    assert stale.json["current"]["revision"] == 1
    assert stale.json["current"]["recommendations"] == "Первая вкладка"
    sheet = sheet_of(session, case["a1"])
    assert sheet.revision == 1
    assert sheet.recommendations == "Первая вкладка"


def test_form_save_from_stale_page_is_refused(case, auth, session, english):
    auth.login(case["first"])
    autosave(auth, case["a1"].id, payload(0, recommendations="Из другой вкладки"))
    response = auth.post(f"/sheets/{case['a1'].id}", full_form(0, recommendations="Старая"))
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert "A newer version of this score sheet exists." in html
    assert "Из другой вкладки" in html
    assert 'name="revision" value="1"' in html
    assert sheet_of(session, case["a1"]).recommendations == "Из другой вкладки"


def test_autosave_refuses_score_outside_scale(case, auth, session, english):
    auth.login(case["first"])
    response = autosave(auth, case["a1"].id, payload(0, scores={"A1": 5}))
    assert response.status_code == 422
    assert response.json["errors"]["A1"] == "Choose a score from 0 to 2."
    assert sheet_of(session, case["a1"]) is None
    bad = autosave(auth, case["a1"].id, {"revision": "x"})
    assert bad.status_code == 400


def test_form_refuses_score_outside_scale(case, auth, session, english):
    auth.login(case["first"])
    response = auth.post(f"/sheets/{case['a1'].id}", full_form(0, **{"score-B2": "3"}))
    assert response.status_code == 422
    assert error_text(response.get_data(as_text=True), "B2") == "Choose a score from 0 to 2."
    assert sheet_of(session, case["a1"]) is None


# --- submit ----------------------------------------------------------------------------------


def test_submit_shows_every_validation_message_at_once(case, auth, session, english):
    auth.login(case["first"])
    form = full_form(
        0,
        "submit",
        **{"score-A1": "1", "score-A2": None, "recommendations": "  ", "confirmed": None},
    )
    response = auth.post(f"/sheets/{case['a1'].id}", form)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert error_text(html, "A1") == "A score below 2 needs a comment."
    assert error_text(html, "A2") == "Score this criterion."
    assert error_text(html, "recommendations") == "Write your overall recommendations."
    assert error_text(html, "confirmation") == "Confirm that you have no conflict of interest."
    for c in CRITERIA[2:]:
        assert f'id="error-{c}"' not in html or error_text(html, c) == ""
    sheet = sheet_of(session, case["a1"])
    # The draft is kept; the submission is refused.
    assert sheet.status == SheetStatus.DRAFT
    assert sheet.revision == 1
    assert case["a1"].status == AssignmentStatus.ACCEPTED


def test_submit_refused_banner_names_what_is_missing(case, auth, session):
    """The banner above the sheet lists each criterion still wrong (its number and title,
    linked to its place) and the other missing fields, not only "the marked fields"."""
    auth.login(case["first"])
    form = full_form(0, "submit", **{"score-A2": None, "score-B1": None, "confirmed": None})
    response = auth.post(f"/sheets/{case['a1'].id}", form)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    banner = re.search(r'<ul class="mb-0" id="sheet-error-list">(.*?)</ul>', html, re.S).group(1)
    items = [
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", item)).strip()
        for item in re.findall(r"<li>(.*?)</li>", banner, re.S)
    ]
    titles = {c.id: c.title for c in RUBRIC.criteria}
    assert items == [
        f"A2. {titles['A2']} — Оцените этот критерий.",
        f"B1. {titles['B1']} — Оцените этот критерий.",
        "Отсутствие конфликта интересов — Подтвердите отсутствие конфликта интересов.",
    ]
    assert 'href="#criterion-A2"' in banner and 'href="#criterion-confirmation"' in banner


def test_sheet_total_percent_in_the_locale_format(case, auth, session):
    """The sheet's total reads like the other pages: "13 из 20 баллов (65 %)", no "65.00"."""
    auth.login(case["first"])
    form = full_form(0, "save", **{f"score-{c}": "1" for c in CRITERIA[:3]})
    auth.post(f"/sheets/{case['a1'].id}", form)
    html = auth.client.get(f"/sheets/{case['a1'].id}").get_data(as_text=True)
    total = re.search(r'id="sheet-totals">.*?<p>(.*?)</p>', html, re.S).group(1)
    assert total == "17 из 20 баллов (85 %)"


def test_submit_locks_sheet_and_completes_assignment(case, auth, session):
    sheet = submit_as(auth, session, case["a1"], case["first"])
    assert sheet.status == SheetStatus.SUBMITTED
    assert sheet.submitted_at is not None
    assert sheet.assignment.status == AssignmentStatus.COMPLETED
    event = session.execute(
        select(AuditEvent).where(
            AuditEvent.action == "sheet.submit", AuditEvent.object_id == str(sheet.id)
        )
    ).scalar_one()
    assert event.after["percent"] == "100.00"
    # The review's state is left to the reconciliation issue.
    assert case["program"].current_review.state.value == "in_review"


def test_submitted_sheet_cannot_be_changed_by_its_expert(case, auth, session):
    sheet = submit_as(auth, session, case["a1"], case["first"])
    revision = sheet.revision
    auth.login(case["first"])
    aid = case["a1"].id
    responses = [
        auth.post(f"/sheets/{aid}", full_form(revision, **{"score-A1": "0"})),
        auth.post(f"/sheets/{aid}", full_form(revision, "submit", **{"score-A1": "0"})),
        autosave(auth, aid, payload(revision, scores={"A1": 0})),
        auth.post(f"/sheets/{sheet.id}/reopen", {"reason": "хочу исправить"}),
    ]
    assert [r.status_code for r in responses] == [403, 403, 403, 403]
    sheet = sheet_of(session, case["a1"])
    assert sheet.status == SheetStatus.SUBMITTED
    assert sheet.revision == revision
    assert {s.criterion_id: s.value for s in sheet.scores}["A1"] == 2
    html = auth.client.get(f"/sheets/{aid}").get_data(as_text=True)
    assert 'value="check"' not in html
    assert "js/sheet.js" not in html
    assert re.search(r'id="score-A1-2"[^>]*checked[^>]*disabled', html.replace("\n", " "))


# --- permissions -------------------------------------------------------------------------


def _requests(auth, assignment_id):
    return [
        ("page", auth.client.get(f"/sheets/{assignment_id}")),
        ("save", auth.post(f"/sheets/{assignment_id}", full_form(0))),
        ("submit", auth.post(f"/sheets/{assignment_id}", full_form(0, "submit"))),
        ("autosave", autosave(auth, assignment_id, payload(0))),
    ]


@pytest.mark.parametrize(
    "who", ["unassigned_expert", "other_expert_same_review", "applicant", "municipal"]
)
def test_sheet_of_someone_else_is_forbidden(case, auth, session, who):
    program = case["program"]
    user = {
        "unassigned_expert": lambda: factories.expert(),
        "other_expert_same_review": lambda: case["second"],
        "applicant": lambda: factories.ApplicantFactory(organization=program.organization),
        "municipal": lambda: factories.MunicipalViewerFactory(municipality=program.municipality),
    }[who]()
    session.commit()
    auth.login(user)
    results = _requests(auth, case["a1"].id)
    assert [(name, r.status_code) for name, r in results] == [(name, 403) for name, _ in results]
    assert sheet_of(session, case["a1"]) is None


def test_anonymous_is_sent_to_login(case, client):
    response = client.get(f"/sheets/{case['a1'].id}")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert client.get("/expert/history").status_code == 302


def test_offered_assignment_has_no_sheet_yet(case, auth, session):
    expert = factories.expert()
    offered = _assign(case["program"].current_review_id, expert, 3, AssignmentStatus.OFFERED)
    session.commit()
    auth.login(expert)
    assert [r.status_code for _, r in _requests(auth, offered.id)] == [403] * 4


@pytest.mark.parametrize("factory", [factories.CoordinatorFactory, factories.AdminFactory])
def test_staff_read_sheet_but_do_not_fill_it(case, auth, session, factory):
    user = factory()
    session.commit()
    auth.login(user)
    codes = [r.status_code for _, r in _requests(auth, case["a1"].id)]
    assert codes == [200, 403, 403, 403]


# --- reopen --------------------------------------------------------------------------------


def test_reopen_requires_reason_then_unlocks_audits_and_notifies(case, auth, session, english):
    sheet = submit_as(auth, session, case["a1"], case["first"])
    coordinator = factories.CoordinatorFactory()
    session.commit()
    auth.login(coordinator)
    page = auth.client.get(f"/sheets/{case['a1'].id}").get_data(as_text=True)
    assert 'id="reopen-form"' in page
    refused = auth.post(f"/sheets/{sheet.id}/reopen", {"reason": "  "}, follow_redirects=True)
    assert "A reason is required for this action." in refused.get_data(as_text=True)
    assert sheet_of(session, case["a1"]).status == SheetStatus.SUBMITTED

    response = auth.post(f"/sheets/{sheet.id}/reopen", {"reason": "Уточнить оценку A1"})
    assert response.status_code == 302
    sheet = sheet_of(session, case["a1"])
    assert sheet.status == SheetStatus.DRAFT
    assert sheet.reopen_reason == "Уточнить оценку A1"
    assert sheet.assignment.status == AssignmentStatus.ACCEPTED
    event = session.execute(
        select(AuditEvent).where(AuditEvent.action == "sheet.reopen")
    ).scalar_one()
    assert event.actor_id == coordinator.id
    assert event.after["reason"] == "Уточнить оценку A1"
    note = session.execute(
        select(Notification).where(Notification.user_id == case["first"].id)
    ).scalar_one()
    assert "Уточнить оценку A1" in note.text
    assert note.link == f"/sheets/{case['a1'].id}"
    mail = session.execute(
        select(OutboxMessage).where(OutboxMessage.to_email == case["first"].email)
    ).scalar_one()
    assert "Уточнить оценку A1" in mail.body

    # The expert can change and submit it again; the change is kept with the reason.
    auth.logout()
    auth.login(case["first"])
    response = auth.post(
        f"/sheets/{case['a1'].id}",
        full_form(sheet.revision, "submit", **{"score-A1": "1", "comment-A1": "Частично"}),
    )
    assert response.status_code == 302
    sheet = sheet_of(session, case["a1"])
    assert sheet.status == SheetStatus.SUBMITTED
    change = session.execute(
        select(ScoreRevision).where(ScoreRevision.sheet_id == sheet.id)
    ).scalar_one()
    assert (change.criterion_id, change.old_value, change.new_value) == ("A1", 2, 1)
    assert change.reason == "Уточнить оценку A1"


def test_reopen_of_draft_is_refused(case, auth, session):
    auth.login(case["first"])
    autosave(auth, case["a1"].id, payload(0))
    sheet = sheet_of(session, case["a1"])
    auth.logout()
    coordinator = factories.CoordinatorFactory()
    session.commit()
    auth.login(coordinator)
    assert auth.post(f"/sheets/{sheet.id}/reopen", {"reason": "x"}).status_code == 403


# --- history -------------------------------------------------------------------------------


def test_history_lists_submitted_sheets_read_only(case, auth, session):
    auth.login(case["first"])
    autosave(auth, case["a1"].id, payload(0))
    assert case["program"].title not in auth.client.get("/expert/history").get_data(as_text=True)
    auth.logout()
    sheet = submit_as(auth, session, case["a1"], case["first"], comment="Мой комментарий")
    auth.login(case["first"])
    listing = auth.client.get("/expert/history").get_data(as_text=True)
    assert f'href="/expert/history/{sheet.id}"' in listing
    page = auth.client.get(f"/expert/history/{sheet.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Мой комментарий" in html
    assert 'value="save"' not in html
    auth.logout()
    auth.login(case["second"])
    assert auth.client.get(f"/expert/history/{sheet.id}").status_code == 403


# --- blind review -----------------------------------------------------------------------------


def test_blind_expert_pages_never_show_the_other_expert(case, auth, session):
    submit_as(auth, session, case["a2"], case["second"], comment=OTHER_COMMENT)
    second = sheet_of(session, case["a2"])
    second.recommendations = OTHER_RECOMMENDATION
    session.commit()
    # The first expert has a draft and a submitted sheet elsewhere (so history has a row).
    other_program = factories.program_in_review()
    done = _assign(other_program.current_review_id, case["first"], 1)
    session.commit()
    submit_as(auth, session, done, case["first"])
    auth.login(case["first"])
    autosave(auth, case["a1"].id, payload(0, scores={"A1": 1}))
    program = case["program"]
    version = program.current_review.version
    done_sheet = sheet_of(session, done)
    pages = [
        "/expert",
        f"/sheets/{case['a1'].id}",
        f"/programs/{program.id}",
        f"/programs/{program.id}/versions/{version.number}",
        "/expert/history",
        f"/expert/history/{done_sheet.id}",
        f"/sheets/{done.id}",
    ]
    forbidden = [OTHER_NAME, OTHER_COMMENT, OTHER_RECOMMENDATION, case["second"].email]
    for path in pages:
        response = auth.client.get(path)
        assert response.status_code == 200, path
        html = response.get_data(as_text=True)
        for text in forbidden:
            assert text not in html, (path, text)


def test_provider_never_sees_expert_names(case, auth, session):
    submit_as(auth, session, case["a1"], case["first"], comment="Комментарий первого")
    submit_as(auth, session, case["a2"], case["second"], comment=OTHER_COMMENT)
    applicant = factories.ApplicantFactory(organization=case["program"].organization)
    session.commit()
    auth.login(applicant)
    program = case["program"]
    for path in (
        f"/programs/{program.id}",
        f"/programs/{program.id}/versions/{program.current_review.version.number}",
        "/provider",
    ):
        html = auth.client.get(path, follow_redirects=True).get_data(as_text=True)
        for text in (
            OTHER_NAME,
            case["first"].full_name,
            case["first"].email,
            case["second"].email,
        ):
            assert text not in html, (path, text)
