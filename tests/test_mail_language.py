"""E-mails and in-app notifications are written in the recipient's language, not in the
language of the request that caused them (issue 21, item 3): a coordinator browsing in
English approves a Russian-speaking applicant, who gets Russian mail, and the other way
round; a message to several people is written once per person, each in their language.
"""

from __future__ import annotations

from email.header import decode_header, make_header

import pytest
from flask_babel import force_locale
from sqlalchemy import select

from review_portal.enums import AccountStatus
from review_portal.notifications.models import Notification, OutboxMessage
from review_portal.notifications.services import deliver_outbox
from review_portal.programs.services import return_submission, submit_program
from tests import factories
from tests.conftest import Auth
from tests.test_i18n import compile_stale_catalogs
from tests.test_mail import smtp_server, use_server  # noqa: F401 - the fixture

compile_stale_catalogs()

APPROVED = {
    "ru": (
        "Ваша учётная запись на портале экспертизы ДООП подтверждена",
        "Ваша регистрация подтверждена.",
    ),
    "en": (
        "Your account on the program review portal is approved",
        "Your registration has been approved.",
    ),
}


def subject_of(received) -> str:
    return str(make_header(decode_header(received.message["Subject"])))


def outbox_to(session, email: str) -> list[OutboxMessage]:
    session.expire_all()
    return list(
        session.execute(select(OutboxMessage).where(OutboxMessage.to_email == email)).scalars()
    )


def notifications_of(session, user) -> list[str]:
    return list(
        session.execute(select(Notification.text).where(Notification.user_id == user.id)).scalars()
    )


@pytest.mark.parametrize(("browsing", "recipient"), [("en", "ru"), ("ru", "en"), ("en", None)])
def test_an_approval_is_mailed_in_the_applicants_language(
    app,
    session,
    client,
    monkeypatch,
    smtp_server,  # noqa: F811
    browsing,
    recipient,
):
    use_server(monkeypatch, app, smtp_server.port)
    coordinator = factories.CoordinatorFactory(locale=browsing)
    organization = factories.OrganizationFactory(status=AccountStatus.PENDING)
    applicant = factories.ApplicantFactory(
        status=AccountStatus.PENDING, organization=organization, locale=recipient
    )
    session.commit()
    auth = Auth(client)
    auth.login(coordinator)
    with client.session_transaction() as browser:
        browser["locale"] = browsing
    page = f"/registrations/{applicant.id}"
    assert client.get(page).status_code == 200

    answer = auth.post(f"{page}/approve", token_from=page)

    assert answer.status_code == 302
    language = recipient or "ru"  # no language chosen: the portal's default one
    subject, notice = APPROVED[language]
    [message] = outbox_to(session, applicant.email)
    assert message.subject == subject
    assert notifications_of(session, applicant) == [notice]
    assert deliver_outbox().sent == 1
    [received] = smtp_server.messages
    assert subject_of(received) == subject
    body = received.message.get_body(preferencelist=("plain",)).get_content()
    assert ("Ваша регистрация подтверждена" in body) == (language == "ru")
    assert ("Your registration has been approved" in body) == (language == "en")


def test_a_message_to_several_people_is_written_in_each_ones_language(app, session):
    """Returning a program tells every applicant of its organization (``tell_provider``):
    one reads Russian, one English, one has chosen nothing; the request is English."""
    program = factories.ProgramFactory()
    factories.attach_document(program)
    readers = {
        locale: factories.ApplicantFactory(organization=program.organization, locale=locale)
        for locale in ("ru", "en", None)
    }
    coordinator = factories.CoordinatorFactory()
    submit_program(program, readers["ru"])

    with force_locale("en"):
        return_submission(program, coordinator, "Нет учебного плана.")

    expected = {
        "ru": f"Программа возвращена на исправление: {program.title}",
        "en": f"Program returned for fixes: {program.title}",
        None: f"Программа возвращена на исправление: {program.title}",
    }
    for locale, reader in readers.items():
        [message] = outbox_to(session, reader.email)
        assert message.subject == expected[locale], locale
        assert notifications_of(session, reader)[-1] == expected[locale], locale
