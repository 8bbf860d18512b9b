"""Validity of registry entries: end dates set by publication, reminders 90 and 30 days
before (each once), expiry into a pending removal «срок действия истёк», renewal keeping the
entry's number with a new end date, the municipal viewer's list, and the end date in the
pages, exports and API — on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest
from dateutil.relativedelta import relativedelta
from sqlalchemy import select

from review_portal.enums import Decision, RegistryEntryStatus, RegistryKind
from review_portal.extensions import db
from review_portal.notifications.models import Notification
from review_portal.programs import services as programs
from review_portal.programs.services import SubmissionNotAllowed
from review_portal.registry import services as registry_services
from review_portal.registry.models import RegistrySnapshotItem
from review_portal.registry.services import publish_registry
from review_portal.registry.validity import (
    EXPIRED_REASON,
    end_date,
    send_validity_notices,
    validity_due,
)
from review_portal.reviews.services import decide_review
from review_portal.settings.services import set_setting
from review_portal.workflow import ActorNotAllowed, ReviewState
from tests.factories import (
    ApplicantFactory,
    CoordinatorFactory,
    MunicipalViewerFactory,
    admitted_program,
    attach_document,
    scored_review,
    with_total,
)


@pytest.fixture
def coordinator(session):
    return CoordinatorFactory()


def published(coordinator, **fields):
    """An admitted certified program published in the registry: (program, entry)."""
    program, conclusion, entry = admitted_program(coordinator=coordinator, **fields)
    publish_registry(RegistryKind.CERTIFIED, coordinator)
    db.session.refresh(entry)
    return program, entry


def test_publication_dates_new_entries_by_the_kinds_validity(session, coordinator):
    set_setting("validity_months_certified", 36, actor=coordinator)
    program, entry = published(coordinator)
    first_day = entry.included_on
    assert entry.valid_until == first_day + relativedelta(months=36) - timedelta(days=1)
    assert entry.end_date_pending is False
    item = db.session.execute(
        select(RegistrySnapshotItem).where(RegistrySnapshotItem.entry_id == entry.id)
    ).scalar_one()
    assert item.valid_until == entry.valid_until
    # Unlimited: no end date.
    set_setting("validity_months_certified", 0, actor=coordinator)
    other, unlimited = published(coordinator)
    assert unlimited.valid_until is None and unlimited.end_date_pending is False
    assert end_date(RegistryKind.CERTIFIED, date(2026, 1, 31)) is None


def test_end_date_in_the_page_the_api_and_the_exports(session, coordinator, client):
    set_setting("validity_months_certified", 24, actor=coordinator)
    program, entry = published(coordinator)
    db.session.commit()
    shown = entry.valid_until.strftime("%d.%m.%Y")
    page = client.get("/registry").get_data(as_text=True)
    assert f"действует до {shown}" in page
    api = client.get("/api/v1/registry").json
    item = next(i for i in api["items"] if i["registry_number"] == entry.registry_number)
    assert item["valid_until"] == entry.valid_until.isoformat()
    spec = client.get("/api/v1/openapi.json").json
    assert "valid_until" in spec["components"]["schemas"]["RegistryItem"]["required"]
    exported = client.get("/registry.csv").get_data().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(exported), delimiter=";"))
    column = rows[0].index("Действует до")
    row = next(r for r in rows[1:] if r[0] == entry.registry_number)
    assert row[column] == shown


def test_reminders_90_and_30_days_before_are_sent_once_each(session, coordinator):
    program, entry = published(coordinator)
    applicant = ApplicantFactory(organization=program.organization)
    end = entry.valid_until
    assert not validity_due(end - timedelta(days=91))
    assert send_validity_notices(end - timedelta(days=91)) == {"reminders": 0, "expired": 0}
    assert validity_due(end - timedelta(days=90))
    assert send_validity_notices(end - timedelta(days=90))["reminders"] == 1
    assert entry.reminded_90_on == end - timedelta(days=90)
    assert send_validity_notices(end - timedelta(days=60))["reminders"] == 0
    assert send_validity_notices(end - timedelta(days=30))["reminders"] == 1
    assert send_validity_notices(end - timedelta(days=29))["reminders"] == 0
    texts = db.session.execute(
        select(Notification.text).where(Notification.user_id == applicant.id)
    ).scalars()
    reminders = [t for t in texts if "заканчивается" in t or "действует до" in t.lower()]
    assert len(reminders) == 2, reminders
    assert not validity_due(end)


def test_a_late_first_run_sends_one_reminder(session, coordinator):
    program, entry = published(coordinator)
    assert send_validity_notices(entry.valid_until - timedelta(days=10))["reminders"] == 1
    assert entry.reminded_30_on and entry.reminded_90_on
    assert send_validity_notices(entry.valid_until - timedelta(days=5))["reminders"] == 0


def test_an_entry_past_its_end_date_becomes_a_pending_removal(session, coordinator):
    program, entry = published(coordinator)
    end = entry.valid_until
    assert send_validity_notices(end)["expired"] == 0  # the last valid day
    assert send_validity_notices(end + timedelta(days=1))["expired"] == 1
    assert entry.status == RegistryEntryStatus.PENDING_REMOVAL
    assert entry.removal_reason == EXPIRED_REASON == "срок действия истёк"
    assert send_validity_notices(end + timedelta(days=2))["expired"] == 0
    publish_registry(RegistryKind.CERTIFIED, coordinator)
    db.session.refresh(entry)
    assert entry.status == RegistryEntryStatus.REMOVED


def renew_and_admit(program, coordinator, today):
    """The provider starts the renewal on ``today``, submits; two experts score high; the
    coordinator confirms the admission."""
    applicant = ApplicantFactory(organization=program.organization)
    programs.start_renewal(program, applicant, today=today)
    assert program.state == ReviewState.DRAFT
    attach_document(program)
    programs.submit_program(program, applicant)
    programs.accept_submission(program, coordinator)
    review, _ = scored_review(with_total(18), with_total(17), program=program)
    decide_review(review, coordinator, review.computed_decision)
    assert review.decision == Decision.ADMITTED
    return review


def test_a_renewed_entry_keeps_its_number_with_a_new_end_date(session, coordinator, monkeypatch):
    program, entry = published(coordinator)
    number, end = entry.registry_number, entry.valid_until
    too_early = end - timedelta(days=programs.RENEWAL_OPENS_DAYS + 1)
    with pytest.raises(SubmissionNotAllowed):
        programs.start_renewal(
            program, ApplicantFactory(organization=program.organization), today=too_early
        )
    review = renew_and_admit(program, coordinator, today=end - timedelta(days=60))
    db.session.refresh(entry)
    assert review.round == 2
    assert entry.status == RegistryEntryStatus.INCLUDED and entry.end_date_pending
    # The end date passes before the next publication: a renewal was admitted, no expiry.
    assert send_validity_notices(end + timedelta(days=1))["expired"] == 0
    later = end - timedelta(days=30)
    monkeypatch.setattr(registry_services, "local_today", lambda: later)
    publish_registry(RegistryKind.CERTIFIED, coordinator)
    db.session.refresh(entry)
    assert entry.registry_number == number
    assert entry.valid_until == later + relativedelta(months=36) - timedelta(days=1)
    assert entry.valid_until > end and not entry.end_date_pending
    assert entry.reminded_90_on is None and entry.reminded_30_on is None


def test_renewal_after_the_expiry_takes_the_entry_back_before_the_publication(session, coordinator):
    program, entry = published(coordinator)
    end = entry.valid_until
    send_validity_notices(end + timedelta(days=1))
    assert entry.status == RegistryEntryStatus.PENDING_REMOVAL
    renew_and_admit(program, coordinator, today=end + timedelta(days=3))
    db.session.refresh(entry)
    assert entry.status == RegistryEntryStatus.INCLUDED and entry.removal_reason is None


def test_only_the_provider_renews_an_admitted_program(session, coordinator):
    program, entry = published(coordinator)
    today = entry.valid_until - timedelta(days=10)
    with pytest.raises(ActorNotAllowed):
        programs.start_renewal(program, coordinator, today=today)
    with pytest.raises(ActorNotAllowed):
        programs.start_renewal(program, ApplicantFactory(), today=today)
    assert program.state == ReviewState.ADMITTED


def test_the_municipal_viewer_sees_entries_ending_within_90_days(
    session, coordinator, client, auth
):
    program, entry = published(coordinator, title="Шахматы: первые ходы")
    far, far_entry = published(coordinator, title="Театральная студия «Маска»")
    far_entry.valid_until = entry.valid_until + timedelta(days=400)
    entry.valid_until = date.today() + timedelta(days=45)
    viewer = MunicipalViewerFactory(municipality=program.organization.municipality)
    db.session.commit()
    auth.login(viewer)
    page = client.get("/municipal").get_data(as_text=True)
    assert "Шахматы: первые ходы" in page
    assert entry.valid_until.strftime("%d.%m.%Y") in page
    assert "Театральная студия" not in page


def test_validity_settings_are_bounded(session, coordinator):
    from review_portal.settings.services import SettingError

    for bad in (-1, 121, "три"):
        with pytest.raises(SettingError):
            set_setting("validity_months_general", bad, actor=coordinator)
    set_setting("validity_months_general", 60, actor=coordinator)


def test_renewal_through_the_program_page(session, coordinator, client, auth):
    program, entry = published(coordinator)
    entry.valid_until = date.today() + timedelta(days=30)
    provider = ApplicantFactory(organization=program.organization)
    db.session.commit()
    auth.login(provider)
    page = client.get(f"/programs/{program.id}").get_data(as_text=True)
    assert "Подать на продление…" in page
    assert f"действует до {entry.valid_until.strftime('%d.%m.%Y')}" in page
    token_page = f"/programs/{program.id}"
    preview = auth.post(f"/programs/{program.id}/renew", {"step": "preview"}, token_from=token_page)
    assert preview.status_code == 200
    assert "сохранит номер" in preview.get_data(as_text=True)
    db.session.refresh(program)
    assert program.state == ReviewState.ADMITTED  # the preview wrote nothing
    done = auth.post(f"/programs/{program.id}/renew", {}, token_from=token_page)
    assert done.status_code == 302
    db.session.expire_all()
    program = db.session.get(type(program), program.id)
    assert program.state == ReviewState.DRAFT and program.current_review.round == 2
    # Not twice: the program is no longer admitted.
    again = auth.post(f"/programs/{program.id}/renew", {}, token_from=token_page)
    assert again.status_code == 403


def test_a_new_decision_after_a_revocation_keeps_the_end_date(session, coordinator):
    from review_portal.conclusions.services import revoke_conclusion
    from review_portal.registry.models import RegistryEntry

    review, _ = scored_review(with_total(18), with_total(17))
    decide_review(review, coordinator, review.computed_decision)
    publish_registry(RegistryKind.CERTIFIED, coordinator)
    entry = db.session.execute(
        select(RegistryEntry).where(RegistryEntry.program_id == review.program_id)
    ).scalar_one()
    end = entry.valid_until
    assert end is not None
    revoke_conclusion(review.conclusions[-1], coordinator, "Ошибка в данных программы.")
    assert entry.status == RegistryEntryStatus.PENDING_REMOVAL
    decide_review(review, coordinator, Decision.ADMITTED)
    db.session.refresh(entry)
    assert entry.status == RegistryEntryStatus.INCLUDED
    assert entry.end_date_pending is False and entry.valid_until == end


def test_the_center_excludes_a_program_while_its_renewal_is_under_way(
    session, coordinator, client, auth
):
    from review_portal.registry.permissions import can_exclude_program
    from review_portal.registry.services import exclude_program

    program, entry = published(coordinator)
    admitted = program.current_review
    applicant = ApplicantFactory(organization=program.organization)
    programs.start_renewal(program, applicant, today=entry.valid_until - timedelta(days=30))
    assert program.state == ReviewState.DRAFT
    assert can_exclude_program(coordinator, program)
    db.session.commit()
    auth.login(coordinator)
    response = auth.post(
        f"/programs/{program.id}/exclude",
        {"reason": "Программа не реализуется."},
        token_from=f"/programs/{program.id}/exclude",
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert admitted.state == ReviewState.EXCLUDED
    entry = db.session.get(type(entry), entry.id)
    assert entry.status == RegistryEntryStatus.PENDING_REMOVAL
    assert entry.removal_reason == "Программа не реализуется."
    # Nothing else to exclude now.
    program = db.session.get(type(program), program.id)
    assert not can_exclude_program(coordinator, program)
    with pytest.raises(registry_services.RegistryError):
        exclude_program(admitted, coordinator, "Ещё раз.")
