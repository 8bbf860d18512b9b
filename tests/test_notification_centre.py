"""The notification centre: the bell's unread count on every page, ``/notifications``
newest first (the user's own only, a fixed number of statements), a notification opened
(marked read, then its object; never a link off the site), all marked read, the choice of
what also comes by e-mail (audited; account notices always mailed; bad choices refused
with nothing written), and the staff's daily digest (instead of one e-mail per event, once
a day from 8:00, what waits for the center)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from review_portal.audit.models import AuditEvent
from review_portal.enums import AccountStatus, NotificationKind, Role
from review_portal.extensions import db
from review_portal.main.digest import digest_due, send_digests
from review_portal.notifications.models import Notification, NotificationSettings, OutboxMessage
from review_portal.notifications.services import notify, save_choices, tell, wants_mail
from tests.factories import ApplicantFactory, CoordinatorFactory, UserFactory
from tests.test_analytics import statements_of

MOSCOW = ZoneInfo("Europe/Moscow")


def outbox_to(user) -> list[OutboxMessage]:
    return list(
        db.session.execute(select(OutboxMessage).where(OutboxMessage.to_email == user.email))
        .scalars()
        .all()
    )


def notifications_of(user) -> list[Notification]:
    return list(
        db.session.execute(
            select(Notification).where(Notification.user_id == user.id).order_by(Notification.id)
        )
        .scalars()
        .all()
    )


# --- the bell and the list ----------------------------------------------------------------


def test_bell_shows_the_unread_count_and_the_list_shows_newest_first(client, auth, session):
    user = ApplicantFactory()
    other = ApplicantFactory()
    for n in range(3):
        notify(user, f"Сообщение номер {n}", f"/programs/{n + 1}", kind=NotificationKind.PROGRAMS)
    notify(other, "Чужое сообщение", kind=NotificationKind.ACCOUNT)
    read = notify(user, "Прочитанное сообщение", kind=NotificationKind.ACCOUNT)
    read.read_at = datetime.now(MOSCOW)
    auth.login(user)

    home = client.get("/home", follow_redirects=True).get_data(as_text=True)
    assert 'id="nav-unread">3<' in home
    assert "Уведомления: 3 непрочитанных" in home

    page = client.get("/notifications").get_data(as_text=True)
    assert "3 непрочитанных уведомления" in page
    assert "Чужое сообщение" not in page
    positions = [page.index(f"Сообщение номер {n}") for n in (2, 1, 0)]
    assert positions == sorted(positions)  # newest first
    assert page.index("Прочитанное сообщение") < positions[0]
    assert page.count('data-unread="true"') == 3


def test_bell_is_empty_when_everything_is_read(client, auth, session):
    user = ApplicantFactory()
    auth.login(user)
    home = client.get("/home", follow_redirects=True).get_data(as_text=True)
    assert 'id="nav-bell"' in home
    assert 'id="nav-unread"' not in home
    assert "Уведомления: непрочитанных нет" in home


def test_opening_marks_read_and_goes_to_the_object(client, auth, session):
    user = ApplicantFactory()
    first = notify(user, "Первое", "/programs/7", kind=NotificationKind.PROGRAMS)
    second = notify(user, "Второе", "/programs/8", kind=NotificationKind.PROGRAMS)
    auth.login(user)

    # Opening is a form: a link another site shows (a GET) marks nothing read.
    assert client.get(f"/notifications/{first.id}").status_code == 405
    db.session.expire_all()
    assert db.session.get(Notification, first.id).read_at is None
    response = auth.post(f"/notifications/{first.id}", token_from="/notifications")
    assert response.status_code == 302
    assert response.headers["Location"] == "/programs/7"
    db.session.expire_all()
    assert db.session.get(Notification, first.id).read_at is not None
    assert db.session.get(Notification, second.id).read_at is None
    home = client.get("/home", follow_redirects=True).get_data(as_text=True)
    assert 'id="nav-unread">1<' in home


def test_someone_elses_notification_is_refused_and_stays_unread(client, auth, session):
    owner = ApplicantFactory()
    theirs = notify(owner, "Личное", "/programs/1", kind=NotificationKind.PROGRAMS)
    auth.login(CoordinatorFactory())  # even the staff do not read others' notifications
    assert auth.post(f"/notifications/{theirs.id}").status_code == 403
    assert auth.post("/notifications/99999999").status_code == 404
    assert auth.post("/notifications/99999999999999999999").status_code == 404
    # Without the page's token nothing is marked either.
    assert client.post(f"/notifications/{theirs.id}").status_code == 400
    db.session.expire_all()
    assert db.session.get(Notification, theirs.id).read_at is None


def test_a_link_off_the_site_is_never_followed(client, auth, session):
    user = ApplicantFactory()
    outside = notify(user, "Ссылка наружу", "//evil.example/x", kind=NotificationKind.PROGRAMS)
    auth.login(user)
    response = auth.post(f"/notifications/{outside.id}")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/notifications#n{outside.id}"


def test_mark_all_as_read_touches_only_ones_own(client, auth, session):
    user = ApplicantFactory()
    other = ApplicantFactory()
    for n in range(4):
        notify(user, f"Сообщение {n}", kind=NotificationKind.ACCOUNT)
    foreign = notify(other, "Чужое", kind=NotificationKind.ACCOUNT)
    auth.login(user)
    response = auth.post("/notifications/read", follow_redirects=True)
    assert "Все уведомления отмечены как прочитанные (4)." in response.get_data(as_text=True)
    db.session.expire_all()
    assert all(n.read_at is not None for n in notifications_of(user))
    assert db.session.get(Notification, foreign.id).read_at is None
    again = auth.post("/notifications/read", follow_redirects=True).get_data(as_text=True)
    assert "Непрочитанных уведомлений нет." in again


def test_the_list_reads_a_fixed_number_of_statements(client, auth, session):
    user = ApplicantFactory()
    auth.login(user)

    notify(user, "Одно", "/programs/1", kind=NotificationKind.PROGRAMS)
    db.session.flush()
    few = statements_of(client, "/notifications")
    for n in range(25):
        notify(user, f"Ещё {n}", f"/programs/{n}", kind=NotificationKind.REMINDERS)
    db.session.flush()
    assert statements_of(client, "/notifications") == few


# --- what comes by e-mail ----------------------------------------------------------------


def test_a_muted_kind_is_shown_in_the_portal_but_not_mailed(client, auth, session):
    user = UserFactory(roles=[Role.EXPERT])
    auth.login(user)
    page = client.get("/notifications/settings").get_data(as_text=True)
    # An expert's kinds only (account notices: always by e-mail, not offered).
    assert page.count('type="checkbox"') == 3
    assert "Назначения:" in page and "Напоминания о сроках" in page
    assert "Программы вашей организации" not in page and "Работа центра" not in page
    assert "одним письмом в день" not in page

    kept = ["assignments", "discussions"]
    response = auth.post("/notifications/settings", {"by_mail": kept}, follow_redirects=True)
    assert "Настройки сохранены." in response.get_data(as_text=True)
    choices = db.session.get(NotificationSettings, user.id)
    assert choices.muted_kinds == ["reminders"] and choices.daily_digest is False
    audit = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "notification.choices")
    ).scalar_one()
    assert audit.before == {"muted_kinds": [], "daily_digest": False}
    assert audit.after == {"muted_kinds": ["reminders"], "daily_digest": False}

    tell(user, NotificationKind.REMINDERS, "Срок экспертизы завтра", subject="Напоминание")
    tell(user, NotificationKind.ASSIGNMENTS, "Новое назначение", subject="Назначение")
    tell(user, NotificationKind.ACCOUNT, "Работа приостановлена", subject="Приостановлено")
    assert [n.text for n in notifications_of(user)] == [
        "Срок экспертизы завтра",
        "Новое назначение",
        "Работа приостановлена",
    ]
    assert sorted(m.subject for m in outbox_to(user)) == ["Назначение", "Приостановлено"]

    # Saving the same choices again changes nothing and writes no second record.
    again = auth.post("/notifications/settings", {"by_mail": kept}, follow_redirects=True)
    assert "Ничего не изменено." in again.get_data(as_text=True)
    assert (
        db.session.execute(
            select(func.count(AuditEvent.id)).where(AuditEvent.action == "notification.choices")
        ).scalar_one()
        == 1
    )


def test_bad_choices_are_refused_and_nothing_is_written(client, auth, session):
    user = ApplicantFactory()
    auth.login(user)
    account = auth.post("/notifications/settings", {"by_mail": ["account", "nonsense"]})
    assert account.status_code == 422
    assert "Выберите из предложенных вариантов." in account.get_data(as_text=True)
    assert "nonsense" not in account.get_data(as_text=True)
    # A NUL in the second value of a repeated field is refused as in the first.
    nul = auth.post("/notifications/settings", {"by_mail": ["programs", "programs\x00"]})
    assert nul.status_code == 400
    digest = auth.post("/notifications/settings", {"by_mail": [], "daily_digest": "y"})
    assert digest.status_code == 403  # the digest is for the staff
    assert db.session.get(NotificationSettings, user.id) is None
    assert wants_mail(user, NotificationKind.PROGRAMS)


def test_the_service_refuses_what_the_page_refuses(session):
    import pytest

    from review_portal.errors import Forbidden, InvalidInput

    user = ApplicantFactory()
    other = ApplicantFactory()
    with pytest.raises(Forbidden):
        save_choices(other, user, [], False)  # nobody chooses for someone else
    with pytest.raises(InvalidInput):
        save_choices(user, user, ["account"], False)
    with pytest.raises(InvalidInput):
        save_choices(user, user, ["no-such-kind"], False)
    with pytest.raises(InvalidInput):
        save_choices(user, user, [], True)
    assert db.session.get(NotificationSettings, user.id) is None


# --- the staff's daily digest --------------------------------------------------------------


def test_digest_replaces_the_mails_of_the_centers_work_once_a_day(client, auth, session):
    coordinator = CoordinatorFactory()
    ApplicantFactory(status=AccountStatus.PENDING)  # a registration to approve
    auth.login(coordinator)
    response = auth.post(
        "/notifications/settings",
        {"by_mail": ["work_queue"], "daily_digest": "y"},
        follow_redirects=True,
    )
    assert "Настройки сохранены." in response.get_data(as_text=True)

    tell(coordinator, NotificationKind.WORK_QUEUE, "Просрочено назначений: 2", subject="Просрочено")
    assert notifications_of(coordinator)[-1].text == "Просрочено назначений: 2"
    assert outbox_to(coordinator) == []  # in the digest, not by itself

    early = datetime(2026, 12, 8, 7, 59, tzinfo=MOSCOW)
    assert not digest_due(early)
    assert send_digests(early) == 0
    morning = datetime(2026, 12, 8, 9, 0, tzinfo=MOSCOW)
    assert digest_due(morning)
    assert send_digests(morning) == 1
    [mail] = outbox_to(coordinator)
    assert mail.subject == "Что ждёт центр на 08.12.2026"
    assert "- Заявки на регистрацию, ожидающие подтверждения: 1 — http" in mail.body
    assert "Экспертизы на согласовании" not in mail.body  # nothing there: no line
    assert "/notifications/settings" in mail.body
    assert not digest_due(morning + timedelta(hours=3))
    assert send_digests(morning + timedelta(hours=3)) == 0  # never twice a day
    assert send_digests(morning + timedelta(days=1)) == 1  # the next day again
    assert len(outbox_to(coordinator)) == 2


def test_digest_is_for_the_staff_only_and_skips_an_empty_day(session):
    coordinator = CoordinatorFactory()
    save_choices(coordinator, coordinator, [], True)
    morning = datetime(2026, 12, 8, 9, 0, tzinfo=MOSCOW)
    # Nothing waits: no mail, but the day counts as done.
    assert send_digests(morning) == 0
    assert outbox_to(coordinator) == []
    assert db.session.get(NotificationSettings, coordinator.id).digest_sent_on.isoformat() == (
        "2026-12-08"
    )
    assert not digest_due(morning)
    # A coordinator who lost the role gets no digest although the choice is stored.
    for role in list(coordinator.role_rows):
        db.session.delete(role)
    db.session.flush()
    db.session.expire(coordinator)
    ApplicantFactory(status=AccountStatus.PENDING)
    assert send_digests(morning + timedelta(days=1)) == 0
    assert outbox_to(coordinator) == []


def test_digest_leaves_out_the_reviews_its_reader_sits_on(session):
    """A coordinator who is also an expert on a review in reconciliation: their digest does
    not count it (their list does not show it); another coordinator's does."""
    from tests import factories

    seated = CoordinatorFactory(roles=[Role.COORDINATOR, Role.EXPERT])
    other = CoordinatorFactory()
    review, _ = factories.scored_review(factories.with_total(18), factories.with_total(10))
    assert review.state.value == "reconciliation"
    factories.add_assignment(review, seated, 3)
    for user in (seated, other):
        save_choices(user, user, [], True)
    morning = datetime(2026, 12, 8, 9, 0, tzinfo=MOSCOW)
    assert send_digests(morning) == 1  # nothing else waits for the seated one

    def digests(user):
        return [m for m in outbox_to(user) if m.subject.startswith("Что ждёт центр")]

    [mail] = digests(other)
    assert "Экспертизы на согласовании расхождений: 1" in mail.body
    assert digests(seated) == []


def test_a_digest_choice_kept_after_the_staff_role_went_makes_nothing_due(session):
    coordinator = CoordinatorFactory()
    save_choices(coordinator, coordinator, [], True)
    for role in list(coordinator.role_rows):
        db.session.delete(role)
    db.session.flush()
    db.session.expire(coordinator)
    morning = datetime(2026, 12, 8, 9, 0, tzinfo=MOSCOW)
    assert not digest_due(morning)
    # A moment given in UTC is read in the center's time zone (06:30 UTC is 09:30 there).
    ApplicantFactory(status=AccountStatus.PENDING)
    boss = CoordinatorFactory()
    save_choices(boss, boss, [], True)
    assert digest_due(datetime(2026, 12, 8, 6, 30, tzinfo=ZoneInfo("UTC")))
    assert not digest_due(datetime(2026, 12, 8, 4, 30, tzinfo=ZoneInfo("UTC")))
