"""The seams closed in the domain services (issue 18, item 6): a suspension withdraws the
expert's offers (and an offer made before it can no longer be accepted), a withdrawn
program leaves nobody with an offer or a draft, a signed-in user cannot register again, and
a review nobody can take is told to the coordinators and reminded once a day."""

from __future__ import annotations

import html as html_lib
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from review_portal.accounts.models import User
from review_portal.assignment import reminders
from review_portal.assignment.models import Assignment
from review_portal.assignment.reminders import send_reminders
from review_portal.assignment.services import (
    AssignmentError,
    accept_assignment,
    decline_assignment,
    local_today,
)
from review_portal.audit.models import AuditEvent
from review_portal.enums import AssignmentRole, AssignmentStatus
from review_portal.errors import Forbidden
from review_portal.experts.services import suspend_expert
from review_portal.extensions import db
from review_portal.notifications.models import Notification, OutboxMessage
from review_portal.programs.services import withdraw_program
from review_portal.workflow import ReviewState
from tests import factories
from tests.factories import with_total
from tests.test_accounts import expert_form, provider_form


def page(response) -> str:
    return html_lib.unescape(response.get_data(as_text=True))


def events(action: str, object_id=None) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.action == action)
    if object_id is not None:
        stmt = stmt.where(AuditEvent.object_id == str(object_id))
    return list(db.session.execute(stmt.order_by(AuditEvent.id)).scalars())


def notifications_of(user) -> list[Notification]:
    return list(
        db.session.execute(
            select(Notification).where(Notification.user_id == user.id).order_by(Notification.id)
        ).scalars()
    )


def mail_to(user) -> list[OutboxMessage]:
    return list(
        db.session.execute(
            select(OutboxMessage)
            .where(OutboxMessage.to_email == user.email)
            .order_by(OutboxMessage.id)
        ).scalars()
    )


def offer(program, user, *, status=AssignmentStatus.OFFERED, seat=1) -> Assignment:
    return factories.add_assignment(program.current_review, user, seat, status=status)


def assignments_of(review) -> list[Assignment]:
    return list(
        db.session.execute(
            select(Assignment)
            .where(Assignment.review_id == review.id)
            .order_by(Assignment.seat)
            .execution_options(populate_existing=True)
        ).scalars()
    )


# --- 1. suspension ----------------------------------------------------------------------


@pytest.mark.parametrize("change", ["suspended", "switched off"])
def test_an_offer_made_before_a_suspension_cannot_be_accepted(session, change):
    program = factories.program_in_review()
    user = factories.expert()
    assignment = offer(program, user)
    if change == "suspended":
        user.expert_profile.suspended = True
    else:
        user.active = False
    db.session.flush()

    # A switched-off account holds no role any more: the permission check refuses it first.
    refusal = (
        (AssignmentError, "приостановлена") if change == "suspended" else (Forbidden, "нет прав")
    )
    with pytest.raises(refusal[0], match=refusal[1]):
        accept_assignment(assignment, user)

    assert assignment.status == AssignmentStatus.OFFERED
    assert events("assignment.accept") == []


def test_a_suspended_expert_cannot_accept_through_the_page(client, auth, session):
    program = factories.program_in_review()
    user = factories.expert()
    assignment = offer(program, user)
    auth.login(user)
    # Suspended after the offer, without the withdrawal (as before the fix, or by hand).
    user.expert_profile.suspended = True
    db.session.flush()

    response = auth.post(f"/assignments/{assignment.id}/accept", token_from="/expert")

    assert response.status_code == 302
    db.session.refresh(assignment)
    assert assignment.status == AssignmentStatus.OFFERED
    assert "принять назначение нельзя" in page(client.get("/expert"))


def test_suspension_withdraws_offers_with_replacement_and_lists_the_accepted(client, auth, session):
    coordinator = factories.CoordinatorFactory()
    suspended = factories.expert(full_name="Сидоров Семён")
    offered_program = factories.program_in_review(title="Юный конструктор")
    accepted_program = factories.program_in_review(title="Шахматы для всех")
    withdrawn_offer = offer(offered_program, suspended)
    accepted = offer(accepted_program, suspended, status=AssignmentStatus.ACCEPTED)
    stand_in = factories.expert(full_name="Замена Зоя")

    auth.login(coordinator)
    response = auth.post(f"/experts/{suspended.id}/suspend", {"reason": "Нарушил сроки"})
    assert response.status_code == 302

    db.session.refresh(withdrawn_offer)
    db.session.refresh(accepted)
    assert withdrawn_offer.status == AssignmentStatus.WITHDRAWN
    assert withdrawn_offer.decline_reason == "Работа эксперта приостановлена"
    [event] = events("assignment.withdraw", withdrawn_offer.id)
    assert event.actor_id == coordinator.id
    assert event.before == {"status": "offered"}
    # The automatic replacement took the empty place.
    replacement = next(
        a for a in assignments_of(offered_program.current_review) if a.expert_id == stand_in.id
    )
    assert replacement.status == AssignmentStatus.OFFERED
    # The accepted one stays, for the coordinator to decide.
    assert accepted.status == AssignmentStatus.ACCEPTED

    html = page(client.get(response.headers["Location"]))
    assert "Принятые назначения приостановленного эксперта: «Шахматы для всех»" in html
    assert 'id="suspended-accepted"' in html
    section = html[html.index('id="suspended-accepted"') :]
    assert "Шахматы для всех" in section
    assert f"/reviews/{accepted_program.current_review_id}/experts" in section
    assert "Юный конструктор" not in section[: section.index("</section>")]


def test_suspend_service_returns_what_it_did(session):
    coordinator = factories.CoordinatorFactory()
    user = factories.expert()
    program = factories.program_in_review()
    other = factories.program_in_review()
    withdrawn = offer(program, user)
    accepted = offer(other, user, status=AssignmentStatus.ACCEPTED)

    result = suspend_expert(user.expert_profile, coordinator, "причина")

    assert result.withdrawn == [withdrawn] and result.accepted == [accepted]
    assert result.replacements == []  # nobody else is eligible
    assert withdrawn.status == AssignmentStatus.WITHDRAWN


# --- 2. a withdrawn program -------------------------------------------------------------


def test_withdrawing_a_program_in_reconciliation_closes_the_third_experts_offer(session):
    third_user = factories.expert(full_name="Третий Эксперт")
    review, _ = factories.scored_review(with_total(18), with_total(10))
    assert review.state == ReviewState.RECONCILIATION
    [third] = [a for a in review.assignments if a.role == AssignmentRole.THIRD]
    assert third.expert_id == third_user.id and third.status == AssignmentStatus.OFFERED
    coordinator = factories.CoordinatorFactory()

    withdraw_program(review.program, coordinator, reason="Организация отозвала заявку")

    assert review.state == ReviewState.WITHDRAWN
    assert third.status == AssignmentStatus.WITHDRAWN
    assert third.decline_reason == "Программа отозвана"
    [event] = events("assignment.withdraw", third.id)
    assert event.actor_id == coordinator.id and event.before == {"status": "offered"}
    title = review.program.title
    assert any(f"Программа «{title}» отозвана" in n.text for n in notifications_of(third_user))
    assert any(title in m.subject for m in mail_to(third_user))
    with pytest.raises(AssignmentError):
        accept_assignment(third, third_user)


def test_withdrawing_a_program_in_review_closes_an_accepted_draft_through_the_page(
    client, auth, session
):
    program = factories.program_in_review()
    drafting, offered = factories.expert(), factories.expert()
    draft = offer(program, drafting, status=AssignmentStatus.ACCEPTED)
    factories.save_scores(draft, factories.points(2))
    pending = offer(program, offered, seat=2)
    applicant = factories.ApplicantFactory(organization=program.organization)

    auth.login(applicant)
    response = auth.post(
        f"/programs/{program.id}/withdraw", {"reason": ""}, token_from=f"/programs/{program.id}"
    )

    assert response.status_code == 302
    statuses = [a.status for a in assignments_of(program.current_review)]
    assert statuses == [AssignmentStatus.WITHDRAWN, AssignmentStatus.WITHDRAWN]
    assert {e.object_id for e in events("assignment.withdraw")} == {
        str(draft.id),
        str(pending.id),
    }
    assert all(e.actor_id == applicant.id for e in events("assignment.withdraw"))
    assert notifications_of(drafting) and notifications_of(offered)


# --- 3. registration while signed in -----------------------------------------------------


@pytest.mark.parametrize("path", ["/register/provider", "/register/expert"])
def test_a_signed_in_user_is_sent_home_from_registration(client, auth, session, path):
    auth.login(factories.CoordinatorFactory())

    response = client.get(path)

    assert response.status_code == 302
    assert response.headers["Location"].endswith("/coordinator")
    assert "Вы уже вошли в систему" in page(client.get(response.headers["Location"]))


@pytest.mark.parametrize(
    ("path", "form", "email"),
    [
        ("/register/provider", provider_form, "director@ddt.example.org"),
        ("/register/expert", expert_form, "petrov@school.example.org"),
    ],
)
def test_a_signed_in_user_cannot_post_a_registration(client, auth, session, path, form, email):
    municipality = factories.MunicipalityFactory()
    auth.login(factories.ExpertUserFactory())
    users = db.session.execute(select(func.count(User.id))).scalar_one()

    response = auth.post(path, form(municipality))

    assert response.status_code == 302
    assert db.session.execute(select(func.count(User.id))).scalar_one() == users
    assert db.session.execute(select(User).where(User.email == email)).first() is None
    assert "Вы уже вошли в систему" in page(client.get(response.headers["Location"]))


# --- 4. a review nobody can take -----------------------------------------------------------


def test_a_third_expert_nobody_can_be_tells_the_coordinators(session):
    coordinator = factories.CoordinatorFactory()
    review, _ = factories.scored_review(with_total(18), with_total(10))

    assert review.state == ReviewState.RECONCILIATION and review.extra_experts == 1
    title = review.program.title
    [note] = [n for n in notifications_of(coordinator) if title in n.text]
    assert note.text == f"Нет подходящего эксперта для программы «{title}»"
    assert note.link == f"/reviews/{review.id}/experts"
    [mail] = mail_to(coordinator)
    assert mail.subject == note.text
    assert f"/reviews/{review.id}/experts" in mail.body
    [event] = events("review.experts_wanted", review.id)
    assert event.after["missing"] == 1


def test_a_decline_nobody_can_replace_tells_the_coordinators(session):
    coordinator = factories.CoordinatorFactory()
    program = factories.program_in_review(title="Программирование роботов")
    first, second = factories.expert(), factories.expert()
    offer(program, first)
    declining = offer(program, second, seat=2)

    assert decline_assignment(declining, second, "Болею") == []

    [note] = notifications_of(coordinator)
    assert note.text == "Нет подходящего эксперта для программы «Программирование роботов»"
    assert [w.review for w in reminders.reviews_waiting_for_experts()] == [program.current_review]


def test_coordinators_are_reminded_of_a_waiting_review_once_a_day(session):
    coordinator = factories.CoordinatorFactory()
    review, _ = factories.scored_review(with_total(18), with_total(10))
    today = local_today()
    told = len(notifications_of(coordinator))

    # Told when the place fell empty: nothing more today, however often the job runs.
    assert send_reminders(today)["waiting"] == 0
    tomorrow = today + timedelta(days=1)
    assert [send_reminders(tomorrow)["waiting"] for _ in range(3)] == [1, 0, 0]
    assert send_reminders(tomorrow + timedelta(days=1))["waiting"] == 1

    notes = notifications_of(coordinator)[told:]
    assert [n.text for n in notes] == [
        f"Нет подходящего эксперта для программы «{review.program.title}»"
    ] * 2
    assert len(events("review.experts_wanted", review.id)) == 3

    # Once an expert is found, the reminders stop.
    late = factories.expert()
    from review_portal.assignment.services import assign_manually

    assign_manually(review, late, coordinator)
    assert send_reminders(tomorrow + timedelta(days=2))["waiting"] == 0


def test_a_review_before_its_first_assignment_run_is_not_waiting(session):
    factories.CoordinatorFactory()
    factories.program_in_review()

    assert reminders.reviews_waiting_for_experts() == []
    assert send_reminders(local_today() + timedelta(days=1))["waiting"] == 0


def test_the_coordinators_list_shows_reviews_waiting_for_an_expert(client, auth, session):
    coordinator = factories.CoordinatorFactory()
    review, _ = factories.scored_review(with_total(18), with_total(10))
    auth.login(coordinator)

    html = page(client.get("/assignments/overdue"))

    assert "Программы, ожидающие эксперта" in html
    row = html[html.index(f'id="waiting-{review.id}"') :]
    row = row[: row.index("</tr>")]
    assert review.program.title in row
    assert f"/reviews/{review.id}/experts" in row and "Назначить эксперта" in row
