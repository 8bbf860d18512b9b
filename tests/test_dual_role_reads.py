"""The staff's lists, logs, exports, digests and figures, read by a coordinator who holds an
open seat (offered or accepted, sheet not submitted) on a review R where a co-expert has
already submitted: nothing of R's co-expert — name, e-mail, scores, relative severity —
reaches them, while a plain coordinator still sees it all, and once the dual user's own
sheet is in, the staff's reading comes back (roles never widen relations).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select

from review_portal.assignment.models import Assignment
from review_portal.assignment.reminders import send_reminders
from review_portal.assignment.services import local_today
from review_portal.audit.models import AuditEvent
from review_portal.audit.services import record_event
from review_portal.enums import AssignmentRole, Role
from review_portal.extensions import db
from review_portal.notifications.models import OutboxMessage
from review_portal.permissions import open_seat_review_ids
from review_portal.workflow import ReviewState
from tests import factories
from tests.factories import CoordinatorFactory, with_total

COLLEAGUE = "Соэксперт Скрытый Иванович"


@dataclass
class Case:
    dual: object
    plain: object
    review: object
    own: Assignment
    theirs: Assignment
    colleague: object


def coordinator_expert():
    """An approved expert (technical direction) who is a coordinator as well."""
    user = factories.expert(full_name="Двойной Координатор Экспертович")
    user.add_role(Role.COORDINATOR)
    db.session.flush()
    return user


@pytest.fixture
def case(session) -> Case:
    """R in expertise: the dual user's seat is open, the co-expert has submitted."""
    dual = coordinator_expert()
    review = factories.program_in_review().current_review
    own = factories.add_assignment(review, dual, 1)
    colleague = factories.expert(full_name=COLLEAGUE)
    theirs = factories.add_assignment(review, colleague, 2)
    record_event(
        "assignment.accept",
        actor=colleague,
        object_type="assignment",
        object_id=theirs.id,
        after={"expert_id": colleague.id, "seat": 2},
    )
    factories.submit_scores(theirs, with_total(12))
    factories.save_scores(own, with_total(20))
    return Case(dual, CoordinatorFactory(), review, own, theirs, colleague)


def submit_own(case: Case) -> None:
    factories.submit_scores(case.own, with_total(20))
    db.session.flush()


def test_open_seat_review_ids_are_the_open_seats_only(case):
    assert open_seat_review_ids(case.dual) == [case.review.id]
    assert open_seat_review_ids(case.plain) == []
    assert open_seat_review_ids(case.colleague) == []  # submitted: not open
    submit_own(case)
    assert open_seat_review_ids(case.dual) == []


# --- 1. the audit log, its filters and its CSV ------------------------------------------------


def audit_csv_ids(client, query: str = "") -> set[int]:
    response = client.get(f"/audit/export.csv{query}")
    assert response.status_code == 200
    lines = response.get_data().decode("utf-8-sig").strip().splitlines()
    return {int(row[0]) for row in csv.reader(lines[1:], delimiter=";")}


def colleague_events(case: Case) -> set[int]:
    """The records that tell who R's co-expert is and what they scored."""
    sheet_id = str(case.theirs.sheet.id)
    rows = db.session.execute(
        select(AuditEvent.id).where(
            ((AuditEvent.object_type == "score_sheet") & (AuditEvent.object_id == sheet_id))
            | (
                (AuditEvent.object_type == "assignment")
                & (AuditEvent.object_id == str(case.theirs.id))
            )
        )
    ).scalars()
    return set(rows)


def test_audit_log_hides_the_open_seat_review_from_the_dual_user(client, auth, case):
    hidden = colleague_events(case)
    assert any(
        e.action == "sheet.submit"
        for e in db.session.scalars(select(AuditEvent).where(AuditEvent.id.in_(hidden)))
    )
    # A record about another review stays in sight: staff rights apply there.
    other = factories.program_in_review().current_review
    elsewhere = record_event("review.note", object_type="review", object_id=other.id, after={})
    about_r = record_event("review.note", object_type="review", object_id=case.review.id)

    auth.login(case.plain)
    seen = audit_csv_ids(client)
    assert hidden | {elsewhere.id, about_r.id} <= seen
    page = client.get("/audit/").get_data(as_text=True)
    assert case.colleague.email in page

    auth.logout()
    auth.login(case.dual)
    seen = audit_csv_ids(client)
    assert not hidden & seen
    assert about_r.id not in seen
    assert elsewhere.id in seen
    page = client.get("/audit/")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert case.colleague.email not in text
    # The filters do not bring them back.
    sheet_filter = f"?object_type=score_sheet&object_id={case.theirs.sheet.id}"
    assert audit_csv_ids(client, sheet_filter) == set()
    assert case.colleague.email not in client.get(f"/audit/{sheet_filter}").get_data(as_text=True)
    assert audit_csv_ids(client, f"?user={case.colleague.email}") == set()

    # Their own sheet in: the staff's reading of the log comes back.
    submit_own(case)
    seen = audit_csv_ids(client)
    assert hidden | {elsewhere.id, about_r.id} <= seen
    assert case.colleague.email in client.get("/audit/").get_data(as_text=True)


# --- 2. the co-expert's page -----------------------------------------------------------------


def test_experts_page_leaves_out_the_open_seat_review(client, auth, case):
    title = case.review.program.title
    elsewhere = factories.program_in_review().current_review
    factories.add_assignment(elsewhere, case.colleague, 1)
    url = f"/experts/{case.colleague.id}"

    auth.login(case.plain)
    text = client.get(url).get_data(as_text=True)
    assert COLLEAGUE in text and title in text

    auth.logout()
    auth.login(case.dual)
    page = client.get(url)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert COLLEAGUE in text  # the expert registry itself stays the staff's
    assert title not in text
    assert elsewhere.program.title in text
    # Their own page lists their own seat.
    assert title in client.get(f"/experts/{case.dual.id}").get_data(as_text=True)

    submit_own(case)
    assert title in client.get(url).get_data(as_text=True)


# --- 3. the overdue page and the coordinators' digest ----------------------------------------

LATE = "Соэксперт Опоздавший Петрович"


def overdue_on(review, name: str, seat: int) -> Assignment:
    """An accepted assignment of a new expert ``name`` on ``review``, ten days overdue."""
    assignment = factories.add_assignment(review, factories.expert(full_name=name), seat)
    assignment.due_on = local_today() - timedelta(days=10)
    db.session.flush()
    return assignment


def digests_to(user) -> list[OutboxMessage]:
    """The overdue digests sent to ``user``."""
    return list(
        db.session.execute(
            select(OutboxMessage).where(
                OutboxMessage.to_email == user.email,
                OutboxMessage.subject.startswith("Просроченных назначений"),
            )
        ).scalars()
    )


def test_overdue_page_and_digest_leave_out_the_open_seat_review(client, auth, case):
    overdue_on(case.review, LATE, 3)

    # The digest: the plain coordinator is told, the dual user gets nothing (their only
    # overdue assignment is on the review they sit on).
    send_reminders(local_today())
    (plain_digest,) = digests_to(case.plain)
    assert LATE in plain_digest.body
    assert digests_to(case.dual) == []
    # An assignment overdue elsewhere: the dual user's digest has it, and only it.
    elsewhere = factories.program_in_review().current_review
    overdue_on(elsewhere, "Эксперт Другой Программы", 1)
    send_reminders(local_today())
    (dual_digest,) = digests_to(case.dual)
    assert "Эксперт Другой Программы" in dual_digest.body
    assert LATE not in dual_digest.body and COLLEAGUE not in dual_digest.body

    auth.login(case.plain)
    assert LATE in client.get("/assignments/overdue").get_data(as_text=True)
    auth.logout()
    auth.login(case.dual)
    page = client.get("/assignments/overdue")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert LATE not in text
    assert "Эксперт Другой Программы" in text

    submit_own(case)
    assert LATE in client.get("/assignments/overdue").get_data(as_text=True)


# --- 4. and 5. a third expert's open seat: analytics and the reconciliation list -------------


@pytest.fixture
def third(session) -> Case:
    """R in reconciliation (totals 18 and 10 of 20), the dual user its third expert with an
    open seat; the first expert is the co-expert named :data:`COLLEAGUE`."""
    review, (first, second) = factories.scored_review(with_total(18), with_total(10))
    assert review.state == ReviewState.RECONCILIATION
    first.expert.full_name = COLLEAGUE
    dual = coordinator_expert()
    own = factories.add_assignment(review, dual, 3, role=AssignmentRole.THIRD)
    return Case(dual, CoordinatorFactory(), review, own, first, first.expert)


def test_analytics_calibration_leaves_out_the_open_seat_review(client, auth, third):
    other, (control, _) = factories.scored_review(with_total(16), with_total(15))

    auth.login(third.plain)
    assert COLLEAGUE in client.get("/analytics/calibration.csv").get_data(as_text=True)
    assert COLLEAGUE in client.get("/analytics/agreement").get_data(as_text=True)

    auth.logout()
    auth.login(third.dual)
    export = client.get("/analytics/calibration.csv")
    assert export.status_code == 200
    text = export.get_data(as_text=True)
    assert COLLEAGUE not in text
    assert control.expert.full_name in text  # staff figures of the other reviews stay
    page = client.get("/analytics/agreement")
    assert page.status_code == 200
    assert COLLEAGUE not in page.get_data(as_text=True)
    assert control.expert.full_name in page.get_data(as_text=True)

    submit_own(third)
    assert COLLEAGUE in client.get("/analytics/calibration.csv").get_data(as_text=True)


def test_reconciliation_list_leaves_out_the_open_seat_review(client, auth, third):
    other, _ = factories.scored_review(with_total(18), with_total(10))
    assert other.state == ReviewState.RECONCILIATION
    row = f'id="review-{third.review.id}"'

    auth.login(third.plain)
    page = client.get("/reconciliations").get_data(as_text=True)
    assert row in page and third.review.program.title in page

    auth.logout()
    auth.login(third.dual)
    response = client.get("/reconciliations")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert row not in page
    assert f"/reviews/{third.review.id}/reconciliation" not in page
    assert f'id="review-{other.id}"' in page  # staff rights on the other reviews
    assert client.get(f"/reviews/{third.review.id}/reconciliation").status_code == 403

    # Their sheet in, the review leaves reconciliation for the decision list, where the
    # staff's reading applies again (deciding stays refused).
    submit_own(third)
    db.session.refresh(third.review)
    assert third.review.state == ReviewState.AWAITING_DECISION
    assert third.review.program.title in client.get("/decisions").get_data(as_text=True)
