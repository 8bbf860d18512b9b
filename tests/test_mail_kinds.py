"""Every kind of e-mail the portal sends (issue 23, item 4): its subject, the absolute link
to the page it is about (in the text and as the ``href`` of the HTML part), the sender's
name and the signature from the center's settings, the ``multipart/alternative``
structure, and a program's title quoted once, its own quotes made inner ones.

One kind goes through a real SMTP server on the loopback (aiosmtpd); the others are read
from the outbox and built into the MIME message exactly as delivery builds it."""

from __future__ import annotations

from datetime import datetime, timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from zoneinfo import ZoneInfo

import pytest
from flask import current_app, render_template_string
from flask_babel import force_locale, lazy_gettext
from markupsafe import escape
from sqlalchemy import select

from review_portal.accounts.models import User
from review_portal.accounts.services import (
    approve_registration,
    reject_registration,
    request_password_reset,
    send_welcome_link,
)
from review_portal.appeals import services as appeals
from review_portal.assignment.reminders import send_reminders
from review_portal.assignment.services import assign_manually, tell_coordinators_experts_wanted
from review_portal.enums import AccountStatus, AssignmentStatus, Decision, RefusalGround, Role
from review_portal.experts.services import reactivate_expert, suspend_expert
from review_portal.extensions import db
from review_portal.i18n import quote, quote_in
from review_portal.main.digest import send_digests
from review_portal.notifications.models import NotificationSettings, OutboxMessage
from review_portal.notifications.services import (
    _Claimed,
    build_email,
    deliver_outbox,
    html_body,
    mail_sender_name,
    sender_header,
)
from review_portal.organizations.services import invite_colleague
from review_portal.programs.services import return_submission, submit_program, withdraw_program
from review_portal.registry.validity import send_validity_notices
from review_portal.reviews.services import decide_review
from review_portal.scoring.services import reopen_sheet
from review_portal.settings.services import set_setting
from review_portal.urls import public_url
from tests import factories
from tests.test_appeals import REASONS, accepted, decided, score_panel
from tests.test_mail import smtp_server, use_server  # noqa: F401 - the fixture
from tests.test_registry_validity import published
from tests.test_reminders import FRI_20, MON_23, make_assignment

TITLE = "Шахматы «Калейдоскоп»"
QUOTED = "«Шахматы „Калейдоскоп“»"
SENDER_NAME = "РМЦ Смоленской области"
SIGNATURE = "С уважением,\nРегиональный модельный центр Смоленской области"


# --- the quotation marks ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "russian", "english"),
    [
        ("Юные техники", "«Юные техники»", "“Юные техники”"),
        (TITLE, QUOTED, "“Шахматы ‘Калейдоскоп’”"),
        # Already inner quotes: kept.
        ("Шахматы „Калейдоскоп“", QUOTED, "“Шахматы ‘Калейдоскоп’”"),
        ('Шахматы "Калейдоскоп"', QUOTED, "“Шахматы ‘Калейдоскоп’”"),
        ("Chess “Kaleidoscope”", "«Chess „Kaleidoscope“»", "“Chess ‘Kaleidoscope’”"),
        # A title quoted as a whole is not quoted twice.
        ("«Калейдоскоп»", "«Калейдоскоп»", "“Калейдоскоп”"),
        ("«Шахматы «Ладья»»", "«Шахматы „Ладья“»", "“Шахматы ‘Ладья’”"),
        ('"Шахматы "Ладья""', "«Шахматы „Ладья“»", "“Шахматы ‘Ладья’”"),
        # Two quotes side by side: not one around the whole.
        ("«А» и «Б»", "«„А“ и „Б“»", "“‘А’ и ‘Б’”"),
        # Unbalanced: an open inner quote is closed, a closing one that closes nothing left out.
        ("Шахматы «Калейдоскоп", QUOTED, "“Шахматы ‘Калейдоскоп’”"),
        ("Шахматы Калейдоскоп»", "«Шахматы Калейдоскоп»", "“Шахматы Калейдоскоп”"),
        # Apostrophes are not quotes; spaces are one.
        ("Children's  chess", "«Children's chess»", "“Children's chess”"),
    ],
)
def test_quote_makes_inner_quotes(text, russian, english):
    assert quote_in("ru", text) == russian
    assert quote_in("en", text) == english


def test_quote_follows_the_language_of_the_message_and_of_the_page(app):
    message = lazy_gettext("The review of %(title)s is overdue", title=quote(TITLE))
    with app.test_request_context():
        with force_locale("ru"):
            assert str(message) == f"Просрочена экспертиза программы {QUOTED}"
        with force_locale("en"):
            assert str(message) == "The review of “Шахматы ‘Калейдоскоп’” is overdue"
        with force_locale("ru"):
            page = render_template_string("<b>{{ title|quoted }}</b>", title="<i> «x»")
        assert page == "<b>«&lt;i&gt; „x“»</b>"


# --- the HTML part ------------------------------------------------------------------------------


def test_the_html_part_escapes_the_text_and_links_each_address():
    html = html_body(
        'Причина: <script>alert("x")</script> & «ещё»\n'
        "Откройте: https://rmc.example/programs/5?a=1&b=2.\n\n-- \nРМЦ"
    )
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; «ещё»<br>" in html
    # The full stop ends the sentence, not the link.
    assert (
        '<a href="https://rmc.example/programs/5?a=1&amp;b=2">'
        "https://rmc.example/programs/5?a=1&amp;b=2</a>." in html
    )
    assert '<p style="color:#555555">РМЦ</p>' in html


# --- helpers ------------------------------------------------------------------------------------


@pytest.fixture
def center(session):
    """The center's sender name and signature set (two lines)."""
    set_setting("mail_sender_name", SENDER_NAME)
    set_setting("mail_signature", SIGNATURE)


def mails_to(email: str) -> list[OutboxMessage]:
    db.session.flush()
    return list(
        db.session.execute(
            select(OutboxMessage).where(OutboxMessage.to_email == email).order_by(OutboxMessage.id)
        ).scalars()
    )


def one_mail(email: str, subject: str) -> OutboxMessage:
    [message] = [m for m in mails_to(email) if subject in m.subject]
    return message


def built(message: OutboxMessage):
    """The message as delivery builds it, parsed back as a mail client reads it."""
    claimed = _Claimed(
        message.id, message.to_email, message.subject, message.body, message.created_at, 1
    )
    sender = sender_header(current_app.config["MAIL_SENDER"], mail_sender_name())
    return message_from_bytes(build_email(claimed, sender).as_bytes(), policy=default_policy)


def check(message, subject: str, url: str, *, signature: str = SIGNATURE) -> str:
    """Check a delivered message (``EmailMessage``) or an outbox row: the subject, the
    absolute ``url`` in the text and as a link of the HTML part, the sender's name, the
    signature, the two parts. Returns the plain text."""
    email = message if not isinstance(message, OutboxMessage) else built(message)
    assert subject in str(email["Subject"])
    assert url.startswith(current_app.config["PUBLIC_URL"] + "/")
    [sender] = email["From"].addresses
    assert sender.display_name == SENDER_NAME
    assert email.get_content_type() == "multipart/alternative"
    text, html = email.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert html.get_content_type() == "text/html"
    plain = text.get_content().replace("\r\n", "\n")
    assert url in plain
    assert plain.rstrip("\n").endswith(f"\n\n-- \n{signature}")
    markup = html.get_content()
    assert f'<a href="{escape(url)}">' in markup
    for line in signature.split("\n"):
        assert str(escape(line)) in markup
    return plain


def applicant_of(program) -> User:
    return db.session.execute(
        select(User).where(User.organization_id == program.organization_id)
    ).scalar()


def program_url(program) -> str:
    return public_url("programs.view", program_id=program.id)


# --- programs -----------------------------------------------------------------------------------


def test_accepted_for_review_goes_over_smtp_with_name_signature_link(
    app,
    session,
    monkeypatch,
    center,
    smtp_server,  # noqa: F811
):
    use_server(monkeypatch, app, smtp_server.port)
    program = factories.program_in_review(title=TITLE)
    applicant = applicant_of(program)
    session.commit()

    assert deliver_outbox().sent >= 1

    [received] = [r for r in smtp_server.messages if r.rcpt_tos == [applicant.email]]
    assert received.mail_from == "rmc@example.org"
    text = check(received.message, "принята на экспертизу", program_url(program))
    assert f"Программа {QUOTED} прошла первичную проверку" in text
    assert "Сейчас от вас ничего не требуется" in text
    assert received.message.as_bytes().isascii()


def test_returned_for_fixes(session, center):
    program = factories.ProgramFactory(title=TITLE)
    factories.attach_document(program)
    applicant = factories.ApplicantFactory(organization=program.organization)
    submit_program(program, applicant)
    return_submission(program, factories.CoordinatorFactory(), "Нет учебного плана.")
    message = one_mail(applicant.email, "возвращена на исправление")
    text = check(message, TITLE, program_url(program))
    assert f"Программа {QUOTED} возвращена на исправление.\nПричина: Нет учебного плана." in text
    assert "снова подайте её на экспертизу" in text


def test_withdrawn_tells_the_provider_and_the_experts(session, center):
    program = factories.program_in_review(title=TITLE)
    applicant = applicant_of(program)
    expert = factories.expert()
    factories.add_assignment(program.current_review, expert, 1)
    withdraw_program(program, applicant, "Программа больше не реализуется.")
    text = check(one_mail(applicant.email, "отозвана"), TITLE, program_url(program))
    assert f"Программа {QUOTED} отозвана с экспертизы." in text
    message = one_mail(expert.email, "Назначение закрыто")
    assert message.subject == f"Назначение закрыто: программа {QUOTED} отозвана"
    check(message, "Назначение закрыто", public_url("main.expert_home"))


# --- the decision and the appeals -----------------------------------------------------------


def test_decision_names_the_conclusion_and_its_verification_page(session, center):
    review, _ = factories.scored_review(
        factories.with_total(8), factories.with_total(8), title=TITLE
    )
    decide_review(review, factories.CoordinatorFactory(), review.computed_decision)
    conclusion = review.conclusions[-1]
    assert conclusion.decision == Decision.REJECTED
    message = one_mail(applicant_of(review.program).email, "Решение по вашей программе")
    text = check(message, TITLE, program_url(review.program))
    verify = public_url("conclusions.verify", number=conclusion.number)
    assert verify.endswith(f"/verify/{conclusion.number}")
    assert f"Заключение № {conclusion.number} размещено" in text
    assert f'<a href="{verify}">' in built(message).get_body(("html",)).get_content()
    assert verify in text
    assert f"Экспертиза программы {QUOTED} завершена." in text
    assert "подайте апелляцию" in text and "в течение 10 рабочих дней" in text


def test_appeal_filed_accepted_upheld(session, center):
    review, conclusion, coordinator, provider, appeal, panel = accepted(total=8)
    page = public_url("appeals.show", appeal_id=appeal.id)
    text = check(one_mail(coordinator.email, "Апелляция"), "Апелляция", page)
    assert f"Апелляция на заключение № {conclusion.number}" in text
    text = check(one_mail(provider.email, "принята"), "Апелляция", page)
    assert "Новая комиссия экспертов" in text
    score_panel(panel, {"C1": 2, "D1": 2})
    appeals.decide_appeal(appeal, coordinator, Decision.REVISION_REQUIRED, "")
    text = check(one_mail(provider.email, "удовлетворена"), "Апелляция", page)
    new = appeal.new_conclusion.number
    assert public_url("conclusions.verify", number=new) in text
    assert f"Заключение № {new} заменяет заключение № {conclusion.number}" in text


def test_appeal_refused(session, center):
    review, conclusion, coordinator, provider = decided(total=8)
    appeal = appeals.file_appeal(conclusion, provider, REASONS)
    appeals.refuse_appeal(appeal, coordinator, RefusalGround.UNFOUNDED, "Доводы не относятся.")
    page = public_url("appeals.show", appeal_id=appeal.id)
    text = check(one_mail(provider.email, "отказано"), "апелляции", page)
    assert "Причина: Доводы не относятся." in text


def test_appeal_dismissed_links_the_decision_on_the_appeal(session, center):
    review, conclusion, coordinator, provider, appeal, panel = accepted(total=8)
    score_panel(panel, {c: v for c, v in factories.with_total(8).items() if c in REASONS})
    appeals.decide_appeal(appeal, coordinator, Decision.REJECTED, "Оценки подтверждены.")
    page = public_url("appeals.show", appeal_id=appeal.id)
    text = check(one_mail(provider.email, "отклонена"), "Апелляция", page)
    assert public_url("appeals.verify", number=appeal.number) in text
    assert f"№ {appeal.number}" in text


# --- experts' work ----------------------------------------------------------------------------


def test_new_assignment(session, center):
    program = factories.program_in_review(title=TITLE)
    expert = factories.expert()
    assign_manually(program.current_review, expert, factories.CoordinatorFactory())
    check(one_mail(expert.email, "Новое назначение"), "назначение", public_url("main.expert_home"))


def test_reminder_overdue_and_the_coordinators_list(session, center):
    coordinator = factories.CoordinatorFactory()
    assignment = make_assignment(FRI_20, status=AssignmentStatus.ACCEPTED, title=TITLE)
    sheet = public_url("scoring.sheet", assignment_id=assignment.id)
    send_reminders(FRI_20 - timedelta(days=2))
    message = one_mail(assignment.expert.email, "Напоминание")
    assert message.subject == f"Напоминание: срок экспертизы программы {QUOTED} истекает 20.11.2026"
    check(message, "Напоминание", sheet)
    send_reminders(MON_23)
    text = check(one_mail(assignment.expert.email, "Просрочена"), QUOTED, sheet)
    assert f"экспертизы программы {QUOTED} истёк 20.11.2026" in text
    text = check(
        one_mail(coordinator.email, "Просроченных назначений"), "", public_url("assignment.overdue")
    )
    assert f"- {QUOTED}: {assignment.expert.full_name}" in text


def test_an_offer_is_reminded_with_the_home_page(session, center):
    assignment = make_assignment(FRI_20, title=TITLE)  # offered, not accepted yet
    send_reminders(FRI_20 - timedelta(days=2))
    check(one_mail(assignment.expert.email, "Напоминание"), QUOTED, public_url("main.expert_home"))


def test_no_expert_for_a_program(session, center):
    coordinator = factories.CoordinatorFactory()
    review = factories.program_in_review(title=TITLE).current_review
    tell_coordinators_experts_wanted([(review, 2)])
    page = public_url("assigning.review_experts", review_id=review.id)
    message = one_mail(coordinator.email, "Нет подходящего эксперта")
    assert message.subject == f"Нет подходящего эксперта для программы {QUOTED}"
    check(message, QUOTED, page)


def test_discussion_of_divergent_scores(session, center, discussion_rubric):
    review, (first, second) = factories.scored_review(
        factories.points(2, 2, 2, 2, 2, 2, 2, 2, 0, 2), factories.points(2), title=TITLE
    )
    page = public_url("discussion.page", assignment_id=first.id)
    text = check(one_mail(first.expert.email, "Обсуждение"), TITLE, page)
    assert f"Оценки экспертов по программе {QUOTED} расходятся" in text


def test_score_sheet_reopened(session, center):
    review, (first, second) = factories.scored_review(
        factories.with_total(16), factories.with_total(15), title=TITLE
    )
    reopen_sheet(first.sheet, factories.CoordinatorFactory(), "Уточните критерий D2.")
    page = public_url("scoring.sheet", assignment_id=first.id)
    text = check(one_mail(first.expert.email, "возвращ"), TITLE, page)
    assert f"по программе {QUOTED}: Уточните критерий D2." in text


def test_expert_suspended_and_resumed(session, center):
    expert = factories.expert()
    coordinator = factories.CoordinatorFactory()
    suspend_expert(expert.expert_profile, coordinator, "Отпуск.")
    home = public_url("main.expert_home")
    text = check(one_mail(expert.email, "приостановлена"), "", home)
    assert "Причина: Отпуск." in text
    reactivate_expert(expert.expert_profile, coordinator)
    check(one_mail(expert.email, "возобновлена"), "", home)


# --- the registry ---------------------------------------------------------------------------


def test_registry_entry_ending_and_expired(session, center):
    coordinator = factories.CoordinatorFactory()
    program, entry = published(coordinator, title=TITLE)
    applicant = factories.ApplicantFactory(organization=program.organization)
    send_validity_notices(entry.valid_until - timedelta(days=90))
    text = check(one_mail(applicant.email, "заканчивается"), "", program_url(program))
    assert f"Запись реестра № {entry.registry_number} программы {QUOTED} действует до" in text
    send_validity_notices(entry.valid_until + timedelta(days=1))
    text = check(one_mail(applicant.email, "истёк"), TITLE, program_url(program))
    assert f"программы {QUOTED} действовала до" in text


# --- accounts -----------------------------------------------------------------------------------


def test_registration_approved_and_rejected(session, center):
    coordinator = factories.CoordinatorFactory()
    pending = factories.OrganizationFactory(status=AccountStatus.PENDING)
    approved = factories.ApplicantFactory(status=AccountStatus.PENDING, organization=pending)
    approve_registration(approved, coordinator)
    check(one_mail(approved.email, "подтверждена"), "", public_url("accounts.login"))
    other = factories.OrganizationFactory(status=AccountStatus.PENDING)
    rejected = factories.ApplicantFactory(status=AccountStatus.PENDING, organization=other)
    reject_registration(rejected, coordinator, "Нет сведений об организации.")
    [message] = mails_to(rejected.email)
    text = built(message).get_body(("plain",)).get_content()
    # Nothing to open: no link, but the name, the signature and what to do.
    assert "Причина: Нет сведений об организации." in text
    assert "обратитесь в региональный модельный центр" in text
    assert text.replace("\r\n", "\n").rstrip("\n").endswith(f"-- \n{SIGNATURE}")


def test_password_reset_welcome_and_invitation(session, center):
    user = factories.ApplicantFactory()
    request_password_reset(user.email)
    [reset] = mails_to(user.email)
    link = public_url("accounts.reset_password", token="TOKEN").rsplit("TOKEN", 1)[0]
    text = built(reset).get_body(("plain",)).get_content()
    token = text.split(link, 1)[1].split()[0]
    check(reset, "пароля", link + token)

    created = factories.ExpertUserFactory()
    send_welcome_link(created)
    [welcome] = mails_to(created.email)
    text = built(welcome).get_body(("plain",)).get_content()
    check(welcome, "учётная запись", link + text.split(link, 1)[1].split()[0])

    invite_colleague(user.organization, user, "colleague@example.org")
    [invitation] = mails_to("colleague@example.org")
    invited = public_url("accounts.accept_invitation", token="TOKEN").rsplit("TOKEN", 1)[0]
    text = built(invitation).get_body(("plain",)).get_content()
    check(invitation, "Приглашение", invited + text.split(invited, 1)[1].split()[0])


def test_the_daily_digest(session, center):
    coordinator = factories.CoordinatorFactory()
    db.session.add(NotificationSettings(user_id=coordinator.id, daily_digest=True))
    factories.ApplicantFactory(status=AccountStatus.PENDING)  # a registration to approve
    db.session.flush()
    assert send_digests(datetime(2026, 12, 8, 9, 0, tzinfo=ZoneInfo("Europe/Moscow"))) == 1
    [digest] = mails_to(coordinator.email)
    check(digest, "Что ждёт центр", public_url("notifications.choices"))


def test_without_settings_the_centers_name_signs(session):
    """Nothing set: the sender's name and the signature are the center's name."""
    set_setting("center_name", "РМЦ Смоленской области")
    user = factories.UserFactory(roles=[Role.APPLICANT])
    request_password_reset(user.email)
    [reset] = mails_to(user.email)
    email = built(reset)
    [sender] = email["From"].addresses
    assert sender.display_name == "РМЦ Смоленской области"
    text = email.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert text.rstrip("\n").endswith("\n\n-- \nРМЦ Смоленской области")


def test_a_quoted_title_is_escaped_where_markup_is_made_of_it(app):
    """``quote`` is lazy; Flask-Babel's lazy strings pass ``escape`` as markup, a title
    must not (it is the provider's text)."""
    from markupsafe import escape

    from review_portal.i18n import quote

    with app.test_request_context():
        assert str(escape(quote("<b>Шахматы</b>"))) == "«&lt;b&gt;Шахматы&lt;/b&gt;»"


def test_the_link_is_added_unless_the_text_gives_that_very_address(app):
    """A text naming ``/programs/12`` does not stand for the link ``/programs/1``."""
    from review_portal.notifications.services import compose_body
    from review_portal.urls import absolute_url

    with app.test_request_context():
        one, twelve = absolute_url("/programs/1"), absolute_url("/programs/12")
        assert one in compose_body(f"См. {twelve}.", "/programs/1").split("\n\n")[1]
        given = compose_body(f"См. {one}.", "/programs/1")
        assert given.count(one) == 1
