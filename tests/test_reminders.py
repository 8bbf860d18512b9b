"""Deadlines in working days, reminders before them and overdue notices after them (each sent
exactly once however often ``send-reminders`` runs), the coordinators' digest, and the
coordinator's page of overdue assignments."""

from __future__ import annotations

import re
import threading
from datetime import date, timedelta

import pytest
from flask_babel import force_locale
from sqlalchemy import select

from review_portal.accounts.models import User
from review_portal.assignment.models import Assignment
from review_portal.assignment.reminders import overdue_assignments, send_reminders
from review_portal.assignment.services import due_date, local_today
from review_portal.audit.models import AuditEvent
from review_portal.enums import AccountStatus, AssignmentStatus
from review_portal.extensions import db
from review_portal.notifications.models import Notification, OutboxMessage
from review_portal.settings.calendar import center_calendar
from review_portal.settings.services import set_setting
from review_portal.workflow import ReviewState, advance
from tests.factories import (
    AdminFactory,
    ApplicantFactory,
    CoordinatorFactory,
    ExpertUserFactory,
    MunicipalViewerFactory,
    ProgramFactory,
)

# November 2026: Thursday the 5th, a weekend on the 7th and 8th, and (in these tests) a
# public holiday on Monday the 9th.
THU_5, FRI_6, TUE_10 = date(2026, 11, 5), date(2026, 11, 6), date(2026, 11, 10)
FRI_20, MON_23, TUE_24 = date(2026, 11, 20), date(2026, 11, 23), date(2026, 11, 24)
HOLIDAY = "2026-11-09"


def days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def make_assignment(due_on: date, status=AssignmentStatus.OFFERED, **program_fields):
    program = ProgramFactory(**program_fields)
    expert = ExpertUserFactory()
    assignment = Assignment(
        review=program.current_review,
        expert_id=expert.id,
        seat=1,
        due_on=due_on,
        status=status,
    )
    db.session.add(assignment)
    db.session.flush()
    return assignment


def mail_to(email: str) -> list[OutboxMessage]:
    return list(
        db.session.execute(
            select(OutboxMessage).where(OutboxMessage.to_email == email).order_by(OutboxMessage.id)
        ).scalars()
    )


def notifications_of(user_id: int) -> list[Notification]:
    return list(
        db.session.execute(
            select(Notification).where(Notification.user_id == user_id).order_by(Notification.id)
        ).scalars()
    )


def events(action: str) -> list[AuditEvent]:
    return list(
        db.session.execute(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        ).scalars()
    )


def hourly(day: date, runs: int = 3) -> list[dict]:
    """``send-reminders`` run several times on ``day`` (as cron does every hour)."""
    return [send_reminders(day) for _ in range(runs)]


# --- deadlines ---------------------------------------------------------------------------------


def test_deadline_skips_weekend_and_holiday(session):
    assert due_date(THU_5) == date(2026, 11, 19)  # 10 working days, one weekend
    set_setting("holidays", [HOLIDAY])
    assert due_date(THU_5) == FRI_20  # the holiday moves it one working day on
    assert center_calendar().add_working_days(FRI_6, 1) == TUE_10
    assert center_calendar().working_days_between(FRI_20, MON_23) == 1


def test_deadline_counts_configured_working_days(session):
    set_setting("deadline_working_days", 3)
    set_setting("holidays", [HOLIDAY])
    assert due_date(THU_5) == date(2026, 11, 11)  # Fri 6, Tue 10, Wed 11


# --- reminders before the deadline --------------------------------------------------------------


def test_reminder_sent_once_when_run_hourly(session):
    set_setting("holidays", [HOLIDAY])
    assignment = make_assignment(FRI_20, title="Юные техники")
    email = assignment.expert.email

    sent_on = {day: sum(r["reminders"] for r in hourly(day)) for day in days(THU_5, FRI_20)}

    # Two working days before Friday the 20th: Thursday and Friday are left on Wednesday.
    assert {day for day, n in sent_on.items() if n} == {date(2026, 11, 18)}
    assert sum(sent_on.values()) == 1
    [message] = mail_to(email)
    assert "Юные техники" in message.subject
    assert "20.11.2026" in message.body
    assert "http://127.0.0.1:5000/expert" in message.body
    [notification] = notifications_of(assignment.expert_id)
    assert notification.link == "/expert"
    assert assignment.reminder_sent_at is not None
    assert assignment.overdue_notified_at is None
    [event] = events("assignment.reminder")
    assert event.object_id == str(assignment.id)
    assert event.actor_label == "system"


@pytest.mark.parametrize(
    ("holidays", "reminded_on"),
    [
        ([], FRI_6),  # Mon 9 and Tue 10 are left on Friday
        ([HOLIDAY], THU_5),  # Fri 6 and Tue 10 are left on Thursday: weekend and holiday skipped
    ],
)
def test_reminder_counts_working_days_across_weekend_and_holiday(session, holidays, reminded_on):
    set_setting("holidays", holidays)
    make_assignment(TUE_10)

    sent_on = {
        day: sum(r["reminders"] for r in hourly(day)) for day in days(THU_5 - timedelta(3), TUE_10)
    }

    assert [day for day, n in sent_on.items() if n] == [reminded_on]
    assert sum(sent_on.values()) == 1


def test_reminder_days_before_is_a_setting(session):
    set_setting("reminder_days_before", 0)
    make_assignment(FRI_20)

    assert send_reminders(date(2026, 11, 19))["reminders"] == 0
    assert send_reminders(FRI_20)["reminders"] == 1  # on the deadline day itself


def test_reminder_sent_late_when_runs_were_missed(session):
    assignment = make_assignment(FRI_20)

    # Nothing ran on Wednesday or Thursday; Friday's run still reminds, once.
    assert send_reminders(FRI_20)["reminders"] == 1
    assert send_reminders(FRI_20)["reminders"] == 0
    assert len(mail_to(assignment.expert.email)) == 1


def test_reminder_email_in_english(session):
    """In the expert's language, whatever the language the run happens in."""
    assignment = make_assignment(FRI_20, title="Robotics")
    assignment.expert.locale = "en"

    with force_locale("ru"):
        send_reminders(date(2026, 11, 18))

    [message] = mail_to(assignment.expert.email)
    assert message.subject == "Reminder: the review of “Robotics” is due on 20.11.2026"
    assert message.body.startswith(f"Hello, {assignment.expert.full_name}!")
    assert "Please submit your score sheet on time: http://127.0.0.1:5000/expert" in message.body


# --- overdue notices after the deadline -----------------------------------------------------------


@pytest.mark.parametrize(
    ("holidays", "noticed_on"),
    [([], MON_23), (["2026-11-23"], TUE_24)],
)
def test_overdue_notice_on_first_working_day_after_deadline(session, holidays, noticed_on):
    set_setting("holidays", holidays)
    assignment = make_assignment(FRI_20, title="Юные техники")
    assignment.reminder_sent_at = assignment.assigned_at  # reminded already

    noticed = {day: sum(r["overdue"] for r in hourly(day)) for day in days(FRI_20, TUE_24)}

    assert [day for day, n in noticed.items() if n] == [noticed_on]
    assert sum(noticed.values()) == 1
    [message] = mail_to(assignment.expert.email)
    assert "Юные техники" in message.subject
    assert "20.11.2026" in message.body
    assert assignment.overdue_notified_at is not None
    assert [e.object_id for e in events("assignment.overdue")] == [str(assignment.id)]


def test_overdue_notice_sent_when_runs_were_missed(session):
    assignment = make_assignment(FRI_20)

    # The first run after the deadline comes a week late: the notice, never a reminder.
    result = send_reminders(date(2026, 11, 27))

    assert (result["reminders"], result["overdue"]) == (0, 1)
    assert assignment.reminder_sent_at is None
    assert len(mail_to(assignment.expert.email)) == 1
    assert send_reminders(date(2026, 11, 30))["overdue"] == 0


def test_overdue_digest_lists_newly_overdue_once(session):
    coordinator = CoordinatorFactory()
    left_out = [
        CoordinatorFactory(active=False),  # switched off
        CoordinatorFactory(status=AccountStatus.PENDING),
        AdminFactory(),  # the digest is the coordinators' work
    ]
    first = make_assignment(FRI_20, title="Программа А")
    second = make_assignment(FRI_20, title="Программа Б")
    later = make_assignment(MON_23, title="Программа В")

    monday = send_reminders(MON_23)
    assert (monday["overdue"], monday["digests"]) == (2, 1)
    assert send_reminders(MON_23)["digests"] == 0
    tuesday = send_reminders(TUE_24)
    assert (tuesday["overdue"], tuesday["digests"]) == (1, 1)

    digest_1, digest_2 = mail_to(coordinator.email)
    for assignment in (first, second):
        assert assignment.review.program.title in digest_1.body
        assert assignment.expert.full_name in digest_1.body
    assert "Программа В" not in digest_1.body
    assert "Программа В" in digest_2.body and "Программа А" not in digest_2.body
    assert "http://127.0.0.1:5000/assignments/overdue" in digest_1.body
    assert later.expert.full_name in digest_2.body
    assert [n.link for n in notifications_of(coordinator.id)] == [
        "/assignments/overdue",
        "/assignments/overdue",
    ]
    assert all(mail_to(user.email) == [] for user in left_out)


def test_digest_subject_in_english(session):
    """In the coordinator's language, whatever the language the run happens in."""
    coordinator = CoordinatorFactory(locale="en")
    make_assignment(FRI_20)
    make_assignment(FRI_20)

    with force_locale("ru"):
        send_reminders(MON_23)

    [digest] = mail_to(coordinator.email)
    assert digest.subject == "Overdue assignments: 2"
    assert digest.body.startswith("The deadline has passed for these assignments:")


@pytest.mark.parametrize(
    "status",
    [AssignmentStatus.DECLINED, AssignmentStatus.COMPLETED, AssignmentStatus.WITHDRAWN],
)
def test_no_reminders_for_closed_assignments(session, status):
    CoordinatorFactory()
    make_assignment(FRI_20, status=status)

    for day in (date(2026, 11, 18), MON_23):
        assert send_reminders(day) == {"reminders": 0, "overdue": 0, "digests": 0, "waiting": 0}
    assert db.session.execute(select(OutboxMessage)).first() is None


def test_no_reminders_for_a_withdrawn_review(session):
    assignment = make_assignment(FRI_20)
    review = assignment.review
    applicant = db.session.get(User, review.program.created_by_id)
    advance(review, ReviewState.WITHDRAWN, applicant)

    for day in (date(2026, 11, 18), MON_23):
        assert send_reminders(day) == {"reminders": 0, "overdue": 0, "digests": 0, "waiting": 0}
    assert overdue_assignments(MON_23) == []


def test_accepted_assignments_are_reminded(session):
    assignment = make_assignment(FRI_20, status=AssignmentStatus.ACCEPTED)

    assert send_reminders(date(2026, 11, 18))["reminders"] == 1
    assert send_reminders(MON_23)["overdue"] == 1
    assert len(mail_to(assignment.expert.email)) == 2


def test_send_reminders_command_prints_counts_and_never_repeats(app, session):
    today = local_today()
    make_assignment(today)  # due today: a reminder
    make_assignment(today - timedelta(days=14))  # two weeks late: an overdue notice

    runner = app.test_cli_runner()
    first = runner.invoke(args=["send-reminders"])
    second = runner.invoke(args=["send-reminders"])

    assert first.exit_code == 0, first.output
    assert "Reminders: 1; overdue notices: 1; coordinator digests: 0." in first.output
    assert "Reminders: 0; overdue notices: 0; coordinator digests: 0." in second.output


# --- the coordinator's page ----------------------------------------------------------------------


def test_overdue_assignments_lists_open_ones_past_due(session):
    set_setting("holidays", ["2026-11-23"])
    late = make_assignment(FRI_20)
    make_assignment(TUE_24)  # due today: not overdue
    make_assignment(FRI_20, status=AssignmentStatus.COMPLETED)

    [row] = overdue_assignments(TUE_24)

    assert row.assignment == late
    assert row.working_days_overdue == 1  # Monday the 23rd was a holiday


def row_of(page: str, assignment: Assignment) -> str:
    match = re.search(rf'<tr id="assignment-{assignment.id}">(.*?)</tr>', page, re.S)
    assert match, f"assignment {assignment.id} is not listed"
    return match.group(1)


def test_overdue_page_lists_overdue_assignments_for_coordinator(english, auth, session):
    today = local_today()
    late = make_assignment(today - timedelta(days=15), title="Опоздавшая программа")
    on_time = make_assignment(today + timedelta(days=5), title="Программа в срок")
    declined = make_assignment(
        today - timedelta(days=15), status=AssignmentStatus.DECLINED, title="Отклонённая"
    )
    auth.login(CoordinatorFactory())

    response = english.get("/assignments/overdue")

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<h1>Overdue assignments</h1>" in page
    row = row_of(page, late)
    assert f'href="/programs/{late.review.program_id}">Опоздавшая программа</a>' in row
    assert late.expert.full_name in row
    assert late.due_on.strftime("%d.%m.%Y") in row
    assert f"<td>{center_calendar().working_days_between(late.due_on, today)}</td>" in row
    assert f'href="/reviews/{late.review_id}/experts">Reassign</a>' in row
    assert on_time.review.program.title not in page
    assert declined.review.program.title not in page


def test_overdue_page_says_when_nothing_is_overdue(english, auth, session):
    auth.login(AdminFactory())

    page = english.get("/assignments/overdue").get_data(as_text=True)

    assert "No overdue assignments." in page


@pytest.mark.parametrize(
    "make_user",
    [ApplicantFactory, ExpertUserFactory, MunicipalViewerFactory],
    ids=["applicant", "expert", "municipal"],
)
def test_overdue_page_refused_for_non_staff(client, auth, session, make_user):
    make_assignment(local_today() - timedelta(days=15))
    auth.login(make_user())

    assert client.get("/assignments/overdue").status_code == 403


def test_overdue_page_sends_anonymous_to_login(client, session):
    response = client.get("/assignments/overdue")

    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_reminder_runs_at_once_never_send_twice(scratch_app):
    with scratch_app.app_context():
        for _ in range(5):
            make_assignment(FRI_20)
        db.session.commit()

    start = threading.Barrier(2)
    results, errors = [], []

    def run() -> None:
        try:
            with scratch_app.app_context():
                start.wait()
                results.append(send_reminders(date(2026, 11, 18)))
                db.session.commit()
                db.session.remove()
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sorted(r["reminders"] for r in results) == [0, 5]
    with scratch_app.app_context():
        assert len(db.session.execute(select(OutboxMessage)).all()) == 5
