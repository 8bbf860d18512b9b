"""The center's settings page: who may open it, every field's rule (a refused value answers
4xx and writes nothing), one audit record per changed setting with before and after, the
production calendar's lists, two coordinators saving at once, and new deadlines only."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest
from sqlalchemy import func, select

from review_portal.assignment.models import Assignment
from review_portal.assignment.services import assign_manually, due_date, local_today
from review_portal.audit.models import AuditEvent
from review_portal.enums import Role
from review_portal.errors import Forbidden
from review_portal.extensions import db
from review_portal.reconciliation.services import discussion_deadline
from review_portal.settings import services
from review_portal.settings.calendar import center_calendar, official_year
from review_portal.settings.models import Setting
from review_portal.settings.services import (
    FORM_KEYS,
    SettingError,
    SettingsConflict,
    get_setting,
    set_setting,
    update_settings,
)
from review_portal.working_days import WorkingCalendar
from tests import factories
from tests.conftest import Auth, csrf_from
from tests.factories import (
    AdminFactory,
    ApplicantFactory,
    CoordinatorFactory,
    ExpertUserFactory,
    MunicipalViewerFactory,
)

#: A valid page, as a coordinator of the Smolensk center fills it in.
FILLED = {
    "region_code": "67",
    "region_name": "Смоленская область",
    "center_name": "Региональный модельный центр Смоленской области",
    "center_address": "214000, г. Смоленск, ул. Ленина, д. 1",
    "center_phone": "+7 (4812) 00-00-00",
    "center_email": "rmc@rmc67.example",
    "head_name": "Семёнова Людмила Александровна",
    "head_position": "Руководитель РМЦ",
    "municipality_policy": "different",
    "deadline_working_days": 10,
    "discussion_working_days": 5,
    "reminder_days_before": 2,
    "appeal_working_days": 10,
    "validity_months_certified": 36,
    "validity_months_significant": 0,
    "validity_months_general": 0,
    "validity_months_pre_professional": 0,
    "timezone": "Europe/Moscow",
    "mail_sender_name": "РМЦ Смоленской области",
    "mail_signature": "Региональный модельный центр Смоленской области\nтел. +7 (4812) 00-00-00",
}


def stored() -> dict:
    return {
        row.key: row.value
        for row in db.session.execute(
            select(Setting).execution_options(populate_existing=True)
        ).scalars()
    }


def changes() -> list[AuditEvent]:
    return list(
        db.session.execute(
            select(AuditEvent).where(AuditEvent.action == "settings.change").order_by(AuditEvent.id)
        ).scalars()
    )


def page_form(client) -> dict:
    """The settings form as the page shows it: its values, its ``seen`` and its token."""
    html = client.get("/settings").get_data(as_text=True)
    seen = re.search(r'name="seen" type="hidden" value="([^"]*)"', html).group(1)
    values = json.loads(seen.replace("&#34;", '"').replace("&amp;", "&"))
    return {**values, "seen": json.dumps(values), "csrf_token": csrf_from(html)}


@pytest.fixture
def coordinator(session):
    return CoordinatorFactory()


@pytest.fixture
def filled(session, coordinator):
    """The center's settings filled in (as on a running portal)."""
    update_settings(coordinator, FILLED)
    db.session.flush()
    return FILLED


# --- who --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        CoordinatorFactory,
        AdminFactory,
        lambda: ExpertUserFactory(roles=[Role.EXPERT, Role.COORDINATOR]),
        lambda: ApplicantFactory(roles=[Role.APPLICANT, Role.ADMIN]),
    ],
    ids=["coordinator", "admin", "expert-coordinator", "applicant-admin"],
)
def test_staff_open_the_page_from_the_navigation(client, auth, make):
    auth.login(make())
    home = client.get("/coordinator").get_data(as_text=True)
    assert 'href="/settings"' in home
    response = client.get("/settings")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Настройки центра" in page
    assert 'name="region_code"' in page and 'name="appeal_working_days"' in page
    # The official calendar of the year, from the package: 9 January 2026 moved from Saturday.
    assert "Производственный календарь" in page


@pytest.mark.parametrize(
    "make", [ExpertUserFactory, ApplicantFactory, MunicipalViewerFactory], ids=str
)
def test_others_are_refused_and_not_shown_the_link(client, auth, make):
    auth.login(make())
    assert 'href="/settings"' not in client.get("/home", follow_redirects=True).get_data(
        as_text=True
    )
    assert client.get("/settings").status_code == 403
    assert auth.post("/settings", {"region_code": "67"}).status_code == 403
    assert auth.post("/settings/calendar/days_off/add", {"day": "2026-11-09"}).status_code == 403
    assert get_setting("region_code") == "00" and stored() == {}


def test_anonymous_goes_to_the_login_page(client):
    response = client.get("/settings")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_service_checks_the_actor_itself(session):
    for actor in (None, ExpertUserFactory(), ApplicantFactory(), MunicipalViewerFactory()):
        with pytest.raises(Forbidden):
            update_settings(actor, {"region_code": "67"})
        with pytest.raises(Forbidden):
            services.add_calendar_day(actor, "days_off", date(2026, 11, 9))
        with pytest.raises(Forbidden):
            services.remove_calendar_day(actor, "days_off", date(2026, 11, 9))
    assert stored() == {}


# --- saving -------------------------------------------------------------------------------------


def test_saving_writes_and_audits_the_changed_settings_only(client, auth, coordinator, filled):
    auth.login(coordinator)
    form = page_form(client)
    assert {k: form[k] for k in FORM_KEYS} == FILLED
    before = len(changes())
    form.update(head_name="Иванов Иван Иванович", deadline_working_days="12")
    response = client.post("/settings", data=form)
    assert response.status_code == 302
    assert stored()["head_name"] == "Иванов Иван Иванович"
    assert stored()["deadline_working_days"] == 12
    new = changes()[before:]
    assert [(e.object_id, e.before, e.after, e.actor_id) for e in new] == [
        (
            "head_name",
            {"value": "Семёнова Людмила Александровна"},
            {"value": "Иванов Иван Иванович"},
            coordinator.id,
        ),
        ("deadline_working_days", {"value": 10}, {"value": 12}, coordinator.id),
    ]
    page = client.get("/settings").get_data(as_text=True)
    assert "Настройки сохранены" in page
    # Saved again unchanged: nothing written, nothing audited.
    response = client.post("/settings", data=page_form(client))
    assert response.status_code == 302
    assert len(changes()) == before + 2
    assert "Ничего не изменено" in client.get("/settings").get_data(as_text=True)


def test_values_are_stored_cleaned(session, coordinator):
    changed = update_settings(
        coordinator,
        {**FILLED, "region_name": "  Смоленская область  ", "deadline_working_days": "15"},
    )
    assert "region_name" in changed and "deadline_working_days" in changed
    assert stored()["region_name"] == "Смоленская область"
    assert stored()["deadline_working_days"] == 15


def test_the_signature_keeps_its_lines(client, auth, coordinator, filled):
    """A browser sends the lines of a text area with CR LF: stored with LF, each line
    stripped, and shown again in the text area."""
    auth.login(coordinator)
    form = page_form(client)
    form["mail_signature"] = "  С уважением,\r\nРМЦ Смоленской области  \r\n\r\n"
    response = client.post("/settings", data=form)
    assert response.status_code == 302
    assert stored()["mail_signature"] == "С уважением,\nРМЦ Смоленской области"
    page = client.get("/settings").get_data(as_text=True)
    assert re.search(
        r'<textarea[^>]*name="mail_signature"[^>]*>\s*С уважением,\nРМЦ Смоленской области</textarea>',
        page,
    )


BAD_VALUES = [
    ("region_code", "6", "две цифры"),
    ("region_code", "670", "две цифры"),
    ("region_code", "00", "две цифры"),
    ("region_code", "ab", "две цифры"),
    ("region_code", "٦٧", "две цифры"),
    ("region_code", "6/", "две цифры"),
    ("region_code", "", "две цифры"),
    ("region_name", "о" * 201, "Не более 200 символов"),
    ("center_name", "ц" * 501, "Не более 500 символов"),
    ("center_address", "а" * 501, "Не более 500 символов"),
    ("center_address", "г. Смоленск\nул. Ленина", "одну строку"),
    ("center_phone", "1" * 41, "Не более 40 символов"),
    ("center_email", "rmc at example.org", "адрес электронной почты"),
    ("center_email", "rmc@localhost", "адрес электронной почты"),
    ("head_name", "Иванов\tИван", "одну строку"),
    ("head_position", "р" * 201, "Не более 200 символов"),
    ("municipality_policy", "nearest", "Выберите одно из правил"),
    ("deadline_working_days", "0", "от 1 до 60"),
    ("deadline_working_days", "61", "от 1 до 60"),
    ("deadline_working_days", "-3", "от 1 до 60"),
    ("deadline_working_days", "", "от 1 до 60"),
    ("deadline_working_days", "1e3", "Введите целое число"),
    ("deadline_working_days", "٢", "Введите целое число"),
    ("deadline_working_days", "99999999999999999999", "Введите целое число"),
    ("discussion_working_days", "31", "от 1 до 30"),
    ("reminder_days_before", "-1", "от 0 до 30"),
    ("reminder_days_before", "10", "до срока"),
    ("appeal_working_days", "0", "от 1 до 60"),
    ("appeal_working_days", "61", "от 1 до 60"),
    ("timezone", "Mars/Olympus", "Выберите часовой пояс из списка"),
    ("timezone", "../../etc/passwd", "Выберите часовой пояс из списка"),
    ("mail_sender_name", "РМЦ\nСмоленск", "одну строку"),
    ("mail_sender_name", "р" * 201, "Не более 200 символов"),
    ("mail_signature", "п" * 1001, "Не более 1000 символов"),
    ("mail_signature", "\n".join(["строка"] * 11), "Не более 10 строк"),
    ("mail_signature", "РМЦ\tСмоленск", "без управляющих символов"),
]


@pytest.mark.parametrize(("key", "value", "message"), BAD_VALUES)
def test_a_refused_value_answers_422_and_writes_nothing(
    client, auth, coordinator, filled, key, value, message
):
    auth.login(coordinator)
    before_rows, before_events = stored(), len(changes())
    form = page_form(client)
    # Another, valid change in the same submission is not written either.
    form.update({"region_name" if key == "head_position" else "head_position": "Директор"})
    form[key] = value
    response = client.post("/settings", data=form)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert message in page
    assert f'id="{key}-error"' in page
    assert stored() == before_rows
    assert len(changes()) == before_events


@pytest.mark.parametrize(
    ("key", "value"),
    [(k, v) for k, v, _ in BAD_VALUES if k != "reminder_days_before" or v != "10"]
    + [("timezone", "Mars/Olympus"), ("unknown", "1"), ("holidays", ["2026-13-01"])],
)
def test_the_service_refuses_the_same_values(session, coordinator, filled, key, value):
    before = stored()
    with pytest.raises(SettingError):
        update_settings(coordinator, {key: value})
    assert stored() == before


@pytest.mark.parametrize(
    ("key", "value"),
    [("region_code", "00"), ("deadline_working_days", 0), ("holidays", ["2026-13-01"])],
)
def test_set_setting_refuses_what_the_page_refuses(session, coordinator, filled, key, value):
    """The demo seed and ``simulate`` store settings with ``set_setting``: the same rule."""
    before = stored()
    with pytest.raises(SettingError):
        set_setting(key, value, actor=coordinator)
    assert stored() == before


def test_the_reminder_must_come_before_the_deadline(session, coordinator, filled):
    with pytest.raises(SettingError) as refused:
        update_settings(coordinator, {"deadline_working_days": 2})
    assert refused.value.key == "reminder_days_before"
    assert update_settings(coordinator, {"deadline_working_days": 3}) == ["deadline_working_days"]


def test_control_characters_are_refused_before_anything_is_read(client, auth, coordinator):
    auth.login(coordinator)
    form = page_form(client)
    form["center_name"] = "Центр\x00"
    response = client.post("/settings", data=form)
    assert response.status_code == 400
    assert stored() == {}


@pytest.mark.parametrize(
    "seen",
    ["", "not json", "[]", '{"region_code": "00"}', "[" * 5000 + "]" * 5000, "{" * 30_000],
)
def test_a_broken_page_snapshot_is_refused(client, auth, coordinator, seen):
    auth.login(coordinator)
    form = {**page_form(client), "region_code": "67", "seen": seen}
    response = client.post("/settings", data=form)
    assert response.status_code == 422
    assert "Страница устарела" in response.get_data(as_text=True)
    assert stored() == {}


# --- two coordinators at once -------------------------------------------------------------------


def test_two_coordinators_changing_different_settings_keep_both(
    app, client, auth, coordinator, filled
):
    auth.login(coordinator)
    first = page_form(client)
    other = app.test_client()
    other_auth = Auth(other)
    other_auth.login(CoordinatorFactory())
    second = page_form(other)
    # Both opened the page; the first saves the head's name, then the second the address
    # (with the head's old name still in their form).
    first["head_name"] = "Петров Пётр Петрович"
    assert client.post("/settings", data=first).status_code == 302
    second["center_address"] = "214000, г. Смоленск, пл. Победы, д. 2"
    assert other.post("/settings", data=second).status_code == 302
    assert stored()["head_name"] == "Петров Пётр Петрович"
    assert stored()["center_address"] == "214000, г. Смоленск, пл. Победы, д. 2"


def test_two_coordinators_changing_the_same_setting_the_second_is_told(
    app, client, auth, coordinator, filled
):
    auth.login(coordinator)
    first = page_form(client)
    other = app.test_client()
    other_auth = Auth(other)
    other_auth.login(CoordinatorFactory())
    second = page_form(other)
    first["head_name"] = "Петров Пётр Петрович"
    assert client.post("/settings", data=first).status_code == 302
    events = len(changes())
    second["head_name"] = "Сидоров Сидор Сидорович"
    second["region_name"] = "Смоленская обл."
    response = other.post("/settings", data=second)
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "изменил другой пользователь" in page and "Руководитель центра" in page
    # Nothing of the second save is written; the page now shows the first one's value.
    assert stored()["head_name"] == "Петров Пётр Петрович"
    assert stored()["region_name"] == "Смоленская область"
    assert len(changes()) == events
    assert 'value="Петров Пётр Петрович"' in page
    assert 'value="Смоленская обл."' in page


def test_the_service_refuses_a_setting_changed_meanwhile(session, coordinator, filled):
    seen = dict(FILLED)
    set_setting("head_name", "Петров Пётр Петрович", actor=coordinator)
    with pytest.raises(SettingsConflict) as conflict:
        update_settings(coordinator, {**seen, "head_name": "Сидоров"}, seen)
    assert conflict.value.keys == ["head_name"]
    # The same change made by both is no conflict, and writes nothing.
    assert update_settings(coordinator, {**seen, "head_name": "Петров Пётр Петрович"}, seen) == []


# --- the production calendar's lists ------------------------------------------------------------


def test_adding_and_removing_days(client, auth, coordinator):
    auth.login(coordinator)
    response = auth.post("/settings/calendar/days_off/add", {"day": "2026-11-09"}, "/settings")
    assert response.status_code == 302
    response = auth.post("/settings/calendar/working_days/add", {"day": "2026-11-07"}, "/settings")
    assert response.status_code == 302
    auth.post("/settings/calendar/days_off/add", {"day": "2026-11-02"}, "/settings")
    assert stored()["holidays"] == ["2026-11-02", "2026-11-09"]
    assert stored()["extra_working_days"] == ["2026-11-07"]
    page = client.get("/settings").get_data(as_text=True)
    assert 'data-day="2026-11-09"' in page and "09.11.2026" in page
    assert 'data-day="2026-11-07"' in page
    events = changes()
    assert [(e.object_id, e.before, e.after) for e in events] == [
        ("holidays", {"value": []}, {"value": ["2026-11-09"]}),
        ("extra_working_days", {"value": []}, {"value": ["2026-11-07"]}),
        ("holidays", {"value": ["2026-11-09"]}, {"value": ["2026-11-02", "2026-11-09"]}),
    ]
    response = auth.post("/settings/calendar/days_off/remove", {"day": "2026-11-09"}, "/settings")
    assert response.status_code == 302
    assert stored()["holidays"] == ["2026-11-02"]
    assert changes()[-1].after == {"value": ["2026-11-02"]}
    # Removing a day that is not there: 404, nothing written.
    response = auth.post("/settings/calendar/days_off/remove", {"day": "2026-11-09"}, "/settings")
    assert response.status_code == 404
    assert len(changes()) == 4


@pytest.mark.parametrize(
    ("kind", "day", "message"),
    [
        ("days_off", "2026-11-07", "уже выходной"),  # a Saturday
        ("days_off", "2026-11-04", "уже выходной"),  # Unity Day
        ("days_off", "2026-01-09", "уже выходной"),  # moved from Saturday 03.01.2026
        ("working_days", "2026-11-10", "уже рабочий"),  # a Tuesday
        ("working_days", "2025-11-01", "уже рабочий"),  # the official working Saturday
        ("days_off", "1999-12-31", "с 01.01.2000 по 31.12.2100"),
        ("days_off", "2101-01-01", "с 01.01.2000 по 31.12.2100"),
        ("days_off", "2026-02-30", "с 01.01.2000 по 31.12.2100"),
        ("days_off", "09.11.2026", "с 01.01.2000 по 31.12.2100"),
        ("days_off", "", "с 01.01.2000 по 31.12.2100"),
        ("days_off", "2" * 5000, "с 01.01.2000 по 31.12.2100"),
    ],
)
def test_a_refused_day_answers_422_and_writes_nothing(
    client, auth, coordinator, kind, day, message
):
    auth.login(coordinator)
    response = auth.post(f"/settings/calendar/{kind}/add", {"day": day}, "/settings")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert message in page
    assert f'id="day-{kind}-error"' in page
    assert stored() == {} and changes() == []


def test_a_day_in_one_list_is_refused_in_the_other_and_twice(client, auth, coordinator):
    auth.login(coordinator)
    auth.post("/settings/calendar/days_off/add", {"day": "2026-11-09"}, "/settings")
    again = auth.post("/settings/calendar/days_off/add", {"day": "2026-11-09"}, "/settings")
    assert again.status_code == 422 and "уже в списке" in again.get_data(as_text=True)
    # 4 November 2026 is an official holiday: the center may work it, unless it is in its
    # days off (it cannot be: that list takes working days only).
    other = auth.post("/settings/calendar/working_days/add", {"day": "2026-11-04"}, "/settings")
    assert other.status_code == 302
    assert stored() == {"holidays": ["2026-11-09"], "extra_working_days": ["2026-11-04"]}
    with pytest.raises(SettingError):
        services.add_calendar_day(coordinator, "working_days", "2026-11-09")


def test_an_unknown_list_is_not_found(client, auth, coordinator):
    auth.login(coordinator)
    response = auth.post("/settings/calendar/birthdays/add", {"day": "2026-11-09"}, "/settings")
    assert response.status_code == 404


def test_a_list_is_bounded(session, coordinator):
    days = [date(2030, 1, 1).fromordinal(date(2030, 1, 1).toordinal() + n) for n in range(400)]
    weekdays = [d for d in days if d.weekday() < 5 and center_calendar().is_working_day(d)]
    for day in weekdays[: services.MAX_CALENDAR_DAYS]:
        services.add_calendar_day(coordinator, "days_off", day)
    with pytest.raises(SettingError):
        services.add_calendar_day(coordinator, "days_off", weekdays[services.MAX_CALENDAR_DAYS])
    assert len(get_setting("holidays")) == services.MAX_CALENDAR_DAYS


# --- new deadlines only ---------------------------------------------------------------------------


def test_changing_the_days_or_the_calendar_keeps_existing_deadlines(session, coordinator):
    """An assignment's deadline is stored when it is made: a new length or a new day off
    moves the next assignment's deadline, never the one already given."""
    program = factories.program_in_review(coordinator)
    review = program.current_review
    first = assign_manually(review, factories.expert(), coordinator)
    today = local_today()
    assert first.due_on == center_calendar().add_working_days(today, 10)
    kept = first.due_on

    update_settings(coordinator, {"deadline_working_days": 15})
    # A day off the center adds between today and the old deadline.
    day_off = next(
        d
        for d in (today.fromordinal(today.toordinal() + n) for n in range(1, 30))
        if center_calendar().is_working_day(d)
    )
    services.add_calendar_day(coordinator, "days_off", day_off)
    db.session.flush()

    second = assign_manually(review, factories.expert(), coordinator)
    db.session.expire_all()
    assert db.session.get(Assignment, first.id).due_on == kept
    # 15 working days, the first of which is now the center's day off: the 16th working
    # day of the official calendar.
    assert second.due_on == WorkingCalendar(official_year).add_working_days(today, 16)
    assert db.session.scalar(select(func.count(Assignment.id))) == 2


def test_changing_the_discussion_days_keeps_a_running_discussion(session, discussion_rubric):
    coordinator = CoordinatorFactory()
    review, _ = factories.scored_review(
        factories.points(2, 2, 2, 2, 2, 2, 2, 2, 0, 2), factories.points(2)
    )
    deadline = review.discussion_deadline
    assert deadline is not None
    update_settings(coordinator, {"discussion_working_days": 10})
    db.session.flush()
    db.session.expire_all()
    assert review.discussion_deadline == deadline
    assert discussion_deadline() > deadline


def test_due_date_follows_the_calendar_of_the_request(session, coordinator):
    start = date(2026, 12, 25)
    assert due_date(start) == date(2027, 1, 19)
    # Saturday 9 January 2027 worked: the 4th working day, and the deadline a day earlier.
    services.add_calendar_day(coordinator, "working_days", date(2027, 1, 9))
    assert due_date(start) == date(2027, 1, 18)


def test_the_page_shows_the_official_calendar_in_the_interface_language(client, auth, coordinator):
    auth.login(coordinator)
    page = client.get("/settings").get_data(as_text=True)
    year = local_today().year
    assert f'id="official-{year}"' in page and f'id="official-{year + 1}"' in page
    # 1–8 January always holds weekdays of the New Year holidays.
    assert re.search(rf"0[1-8]\.01\.{year} — Новогодние каникулы", page)
    with client.session_transaction() as browser_session:
        browser_session["locale"] = "en"
    page = client.get("/settings").get_data(as_text=True)
    assert "Settings of the center" in page
    assert re.search(rf"0[1-8]\.01\.{year} — New Year Holidays", page)
