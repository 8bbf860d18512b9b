"""Confirmation before irreversible steps, without JavaScript: the page's button sends
``step=preview``; the answer says what will happen (the numbers that will be taken, the
counts) and writes nothing; its form sends the same fields again and the step is done.
Covered: submitting a program, removing a file, submitting a score sheet (checked and
saved first), recording a decision (which issues a conclusion), confirming decisions in
bulk, revoking a conclusion; and the registry's publication form saying what it holds."""

from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import date, timedelta
from html import unescape

from sqlalchemy import event, func, select

from review_portal.assignment.models import Assignment
from review_portal.conclusions.models import Conclusion
from review_portal.conclusions.services import local_now
from review_portal.enums import AssignmentStatus, ConclusionStatus, Role, SheetStatus
from review_portal.extensions import db
from review_portal.jobs.models import Job
from review_portal.programs.models import ProgramVersion
from review_portal.reviews.services import decide_review
from review_portal.rubrics.registry import get_rubric
from review_portal.workflow import ReviewState
from tests import factories

CRITERIA = [c.id for c in get_rubric("dop-general", 1).criteria]
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def confirm_form(html: str) -> tuple[str, dict]:
    """The confirming form of a confirmation page: its action and its fields."""
    before, after = html.split('id="confirm-button"', 1)
    form = before.rsplit("<form", 1)[1] + after.split("</form>", 1)[0]
    action = unescape(re.search(r'action="([^"]+)"', form).group(1))
    fields: dict[str, list[str]] = {}
    for name, value in HIDDEN.findall(form):
        if name != "csrf_token":
            fields.setdefault(name, []).append(unescape(value))
    return action, fields


@contextmanager
def no_writes():
    """Fail when a statement that writes (INSERT, UPDATE, DELETE) runs inside the block."""
    writes: list[str] = []

    def before(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            writes.append(statement[:120])

    engine = db.session.get_bind().engine
    event.listen(engine, "before_cursor_execute", before)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", before)
    assert writes == [], writes


def count(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def test_submitting_a_program_is_confirmed_first(client, auth, session):
    program = factories.ProgramFactory()
    factories.attach_document(program)
    applicant = factories.ApplicantFactory(organization=program.organization)
    auth.login(applicant)
    view = client.get(f"/programs/{program.id}").get_data(as_text=True)
    assert 'name="step" value="preview"' in view and "Подать на экспертизу…" in view

    token = auth.token("/")
    with no_writes():
        page = auth.post(f"/programs/{program.id}/submit", {"step": "preview", "csrf_token": token})
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Вот что произойдёт" in html
    assert f"«{program.title}» и её файлы будут зафиксированы как версия 1" in unescape(html)
    assert count(ProgramVersion) == 0  # nothing written by the question
    db.session.expire_all()
    assert program.current_review.state == ReviewState.DRAFT

    action, fields = confirm_form(html)
    assert action == f"/programs/{program.id}/submit" and "step" not in fields
    done = auth.post(action, fields)
    assert done.status_code == 302
    db.session.expire_all()
    assert program.current_review.state == ReviewState.SUBMITTED
    assert count(ProgramVersion) == 1


def test_removing_a_file_is_confirmed_first(client, auth, session):
    program = factories.ProgramFactory()
    document = factories.attach_document(program)
    auth.login(factories.ApplicantFactory(organization=program.organization))
    url = f"/programs/{program.id}/documents/{document.id}/delete"
    token = auth.token("/")
    with no_writes():
        page = auth.post(url, {"step": "preview", "csrf_token": token})
    html = unescape(page.get_data(as_text=True))
    assert page.status_code == 200
    assert f"Файл «{document.original_name}»" in html and "будет удалён" in html
    assert "копия сохранится" not in html  # never submitted: no version has it
    db.session.expire_all()
    assert [d.id for d in program.documents] == [document.id]
    action, fields = confirm_form(page.get_data(as_text=True))
    assert action == url
    assert auth.post(action, fields).status_code == 302
    db.session.expire_all()
    assert program.documents == []


def _accepted_assignment():
    program = factories.program_in_review()
    expert = factories.expert()
    assignment = Assignment(
        review_id=program.current_review_id,
        expert_id=expert.id,
        seat=1,
        due_on=date.today() + timedelta(days=10),
        status=AssignmentStatus.ACCEPTED,
    )
    db.session.add(assignment)
    db.session.flush()
    return assignment, expert


def sheet_form(action: str, revision: int = 0, **overrides) -> dict:
    data = {f"score-{c}": "2" for c in CRITERIA}
    data.update({"recommendations": "Хорошая программа.", "confirmed": "y"})
    data.update({"revision": str(revision), "action": action})
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_a_score_sheet_is_saved_checked_and_confirmed_before_it_is_locked(client, auth, session):
    assignment, expert = _accepted_assignment()
    auth.login(expert)
    url = f"/sheets/{assignment.id}"
    assert "Отправить…" in client.get(url).get_data(as_text=True)

    # Incomplete: the draft is kept and the sheet says what is missing; no confirmation.
    incomplete = auth.post(url, sheet_form("check", **{f"score-{CRITERIA[0]}": None}))
    assert incomplete.status_code == 422
    assert "Вот что произойдёт" not in incomplete.get_data(as_text=True)
    db.session.expire_all()
    assert assignment.sheet.status == SheetStatus.DRAFT and assignment.sheet.revision == 1

    page = auth.post(url, sheet_form("check", revision=1))
    html = unescape(page.get_data(as_text=True))
    assert page.status_code == 200
    assert "лист будет заблокирован" in html
    assert re.search(r"\d+ из \d+ баллов", html)
    db.session.expire_all()
    sheet = assignment.sheet
    assert sheet.status == SheetStatus.DRAFT and sheet.revision == 2  # saved, not submitted
    action, fields = confirm_form(page.get_data(as_text=True))
    assert fields == {"action": ["submit_saved"], "revision": ["2"]}

    # Saved again meanwhile (another tab): the confirmed draft is no longer the sheet.
    auth.post(url, sheet_form("save", revision=2))
    stale = auth.post(action, fields)
    assert stale.status_code == 409
    assert "Лист изменился после подтверждения" in stale.get_data(as_text=True)
    db.session.expire_all()
    assert assignment.sheet.status == SheetStatus.DRAFT

    again = auth.post(url, sheet_form("check", revision=3))
    action, fields = confirm_form(again.get_data(as_text=True))
    assert auth.post(action, fields).status_code == 302
    db.session.expire_all()
    assert assignment.sheet.status == SheetStatus.SUBMITTED
    assert assignment.status == AssignmentStatus.COMPLETED


def test_a_decision_says_which_number_it_takes_and_takes_it_only_when_confirmed(
    client, auth, session
):
    coordinator = factories.CoordinatorFactory()
    review, _ = factories.scored_review(factories.with_total(16), factories.with_total(15))
    auth.login(coordinator)
    url = f"/reviews/{review.id}/decision"
    assert "Принять решение…" in client.get(url).get_data(as_text=True)
    token = auth.token("/")
    with no_writes():
        page = auth.post(
            url,
            {"step": "preview", "decision": "admitted", "justification": "", "csrf_token": token},
        )
    html = unescape(page.get_data(as_text=True))
    assert page.status_code == 200
    year = local_now().year
    assert f"сейчас — 00-{year}-00001" in html
    assert "будет включена в реестр при ближайшей публикации" in html
    assert count(Conclusion) == 0
    db.session.expire_all()
    assert review.state == ReviewState.AWAITING_DECISION

    action, fields = confirm_form(page.get_data(as_text=True))
    assert fields["decision"] == ["admitted"]
    assert auth.post(action, fields).status_code == 302
    conclusion = db.session.execute(select(Conclusion)).scalar_one()
    assert conclusion.number == f"00-{year}-00001"


def test_bulk_confirmation_lists_the_reviews_and_the_numbers(client, auth, session):
    coordinator = factories.CoordinatorFactory()
    reviews = [
        factories.scored_review(factories.with_total(16), factories.with_total(15))[0]
        for _ in range(3)
    ]
    auth.login(coordinator)
    ids = [str(r.id) for r in reviews]
    token = auth.token("/")
    with no_writes():
        page = auth.post(
            "/decisions/confirm", {"step": "preview", "review_ids": ids, "csrf_token": token}
        )
    html = unescape(page.get_data(as_text=True))
    assert page.status_code == 200
    year = local_now().year
    assert f"с 00-{year}-00001 по 00-{year}-00003" in html
    assert "Утвердить 3 решения" in html
    assert all(f"«{r.program.title}»" in html for r in reviews)
    assert count(Job) == 0 and count(Conclusion) == 0
    action, fields = confirm_form(page.get_data(as_text=True))
    assert sorted(fields["review_ids"]) == sorted(ids)
    assert auth.post(action, fields).status_code == 302
    assert count(Job) == 1


def test_revoking_is_confirmed_with_the_reason_and_what_follows(client, auth, session):
    coordinator = factories.CoordinatorFactory()
    review, _ = factories.scored_review(factories.with_total(16), factories.with_total(15))
    decide_review(review, coordinator, review.computed_decision)
    conclusion = db.session.execute(select(Conclusion)).scalar_one()
    auth.login(coordinator)
    url = f"/conclusions/{conclusion.id}/revoke"
    empty = auth.post(url, {"step": "preview", "reason": "   "})
    assert empty.status_code == 422
    token = auth.token("/")
    with no_writes():
        page = auth.post(
            url, {"step": "preview", "reason": "Ошибка в расчёте", "csrf_token": token}
        )
    html = unescape(page.get_data(as_text=True))
    assert page.status_code == 200
    assert f"Заключение № {conclusion.number}" in html and "Ошибка в расчёте" in html
    db.session.expire_all()
    assert conclusion.status == ConclusionStatus.VALID
    action, fields = confirm_form(page.get_data(as_text=True))
    assert auth.post(action, fields).status_code == 302
    db.session.expire_all()
    assert conclusion.status == ConclusionStatus.REVOKED


def test_a_preview_is_refused_to_whoever_may_not_act(client, auth, session):
    program = factories.ProgramFactory()
    factories.attach_document(program)
    auth.login(factories.ApplicantFactory())  # another organization
    assert auth.post(f"/programs/{program.id}/submit", {"step": "preview"}).status_code == 403


def test_a_coordinator_seated_on_a_review_gets_no_preview_of_staff_steps(client, auth, session):
    """A role never widens a relation: the coordinator who sits on a review as an expert
    is refused the decision's and the revocation's previews, and the bulk preview leaves the
    review out with the reason."""
    seated = factories.CoordinatorFactory(roles=[Role.COORDINATOR, Role.EXPERT])
    coordinator = factories.CoordinatorFactory()
    review, _ = factories.scored_review(factories.with_total(16), factories.with_total(15))
    factories.add_assignment(review, seated, 3)
    decided, _ = factories.scored_review(factories.with_total(16), factories.with_total(15))
    decide_review(decided, coordinator, decided.computed_decision)
    conclusion = db.session.execute(
        select(Conclusion).where(Conclusion.review_id == decided.id)
    ).scalar_one()
    factories.add_assignment(decided, seated, 3, status=AssignmentStatus.OFFERED)
    auth.login(seated)
    token = auth.token("/")
    with no_writes():
        decide = auth.post(
            f"/reviews/{review.id}/decision",
            {"step": "preview", "decision": "admitted", "csrf_token": token},
        )
        revoke = auth.post(
            f"/conclusions/{conclusion.id}/revoke",
            {"step": "preview", "reason": "Причина", "csrf_token": token},
        )
        bulk = auth.post(
            "/decisions/confirm",
            {"step": "preview", "review_ids": [str(review.id)], "csrf_token": token},
            follow_redirects=True,
        )
    assert decide.status_code == 403
    assert revoke.status_code == 403
    html = bulk.get_data(as_text=True)
    assert "Вот что произойдёт" not in html
    assert "Ни одну из выбранных экспертиз утвердить нельзя" in html


def test_an_override_without_justification_is_refused_before_the_confirmation(
    client, auth, session
):
    coordinator = factories.CoordinatorFactory()
    review, _ = factories.scored_review(factories.with_total(16), factories.with_total(15))
    auth.login(coordinator)
    url = f"/reviews/{review.id}/decision"
    refused = auth.post(url, {"step": "preview", "decision": "rejected", "justification": ""})
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert "нужно письменное обоснование" in html and "Вот что произойдёт" not in html

    # A justification with quotes and markup is shown as text and sent back intact.
    reason = 'Программа "не та" <b>совсем</b> & иначе'
    page = auth.post(url, {"step": "preview", "decision": "rejected", "justification": reason})
    raw = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<b>совсем</b>" not in raw
    assert "отличается от рассчитанного" in unescape(raw)
    action, fields = confirm_form(raw)
    assert fields["justification"] == [reason]
    assert auth.post(action, fields).status_code == 302
    db.session.expire_all()
    assert review.override_reason == reason


def test_submitting_without_the_program_document_says_so_instead_of_confirming(
    client, auth, session
):
    program = factories.ProgramFactory()
    auth.login(factories.ApplicantFactory(organization=program.organization))
    response = auth.post(
        f"/programs/{program.id}/submit", {"step": "preview"}, follow_redirects=True
    )
    html = response.get_data(as_text=True)
    assert "Перед подачей на экспертизу загрузите документ программы." in html
    assert "Вот что произойдёт" not in html
