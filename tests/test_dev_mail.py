"""The development mailbox: delivery into a Maildir through ``deliver_outbox`` (the row
``sent`` as with SMTP, the message as the server would have received it), the serving
process's thread that sends due mail by the ``send_mail`` job, the ``/dev/mail`` pages, and
their absence in testing and production.

The pages' tests use an application of this module with a mailbox (a testing application
has none unless a test gives it one); the thread's tests an application of their own, on a
scratch database of each backend, since the thread commits on its own connection."""

from __future__ import annotations

import base64
import mailbox
import re
import time
from datetime import timedelta
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from review_portal import create_app
from review_portal.config import DevelopmentConfig, ProductionConfig, TestingConfig
from review_portal.db import utcnow
from review_portal.enums import OutboxStatus
from review_portal.extensions import db
from review_portal.jobs.models import Job, JobStatus
from review_portal.jobs.services import SEND_MAIL
from review_portal.notifications.devmail import TICKER, init_ticker, linkify, mailbox_dir
from review_portal.notifications.models import OutboxMessage
from review_portal.notifications.services import (
    MailConfigurationError,
    deliver_outbox,
    queue_email,
)
from tests.conftest import make_app, migrated_app
from tests.factories import AdminFactory, CoordinatorFactory, ExpertUserFactory
from tests.processes import wait_until
from tests.test_demo import PRODUCTION_SETTINGS

SUBJECT = "Назначение: экспертиза программы «Юные техники»"
BODY = (
    "Здравствуйте, Анна Сергеевна!\n\n"
    "Вам назначена экспертиза программы «Юные техники». Откройте лист оценки: "
    "http://127.0.0.1:5000/expert.\n\n"
    "Ёжик, щука, эхо: проверка букв ё, щ, э."
)
ROW = re.compile(
    r'<tr>\s*<td class="text-nowrap">([^<]+)</td>\s*<td>([^<]+)</td>\s*'
    r'<td><a href="(/dev/mail/[^"]+)">([^<]+)</a>'
)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """A testing application with a development mailbox (SQLite: the mailbox is the same
    on every database)."""
    directory = tmp_path_factory.mktemp("devmail-app")
    app = make_app("sqlite", directory, DEV_MAILBOX_DIR=str(directory / "mail"))
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def mail_dir(app, tmp_path, monkeypatch) -> Path:
    """This test's own mailbox (the setting is read on every delivery and request)."""
    path = tmp_path / "mail"
    monkeypatch.setitem(app.config, "DEV_MAILBOX_DIR", str(path))
    return path


def rows(session) -> list[OutboxMessage]:
    session.expire_all()
    return list(session.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars())


def stored(path: Path) -> list[bytes]:
    """The messages of the Maildir at ``path``, in delivery order."""
    box = mailbox.Maildir(path, create=False)
    return [box.get_bytes(key) for key in sorted(box.keys(), key=_delivered)]


def _delivered(key: str) -> tuple[int, ...]:
    """A Maildir key's delivery moment, as numbers: ``<seconds>.M<microseconds>P<pid>Q<n>``
    has no zero-padding, so two messages of the same second sort wrongly as text."""
    match = re.match(r"(\d+)\.M(\d+)P(\d+)Q(\d+)", key)
    return tuple(int(part) for part in match.groups()) if match else (0, 0, 0, 0)


def parse(data: bytes):
    return BytesParser(policy=default_policy).parsebytes(data)


# --- delivery -------------------------------------------------------------------------------


def test_delivery_without_smtp_host_goes_to_the_development_mailbox(app, session, mail_dir):
    queue_email("anna@example.org", SUBJECT, BODY)
    session.flush()

    report = deliver_outbox()

    assert (report.sent, report.retrying, report.failed) == (1, 0, 0)
    [row] = rows(session)
    assert (row.status, row.attempts, row.last_error) == (OutboxStatus.SENT, 1, None)
    assert row.sent_at is not None
    [data] = stored(mail_dir)
    # The bytes an SMTP server would get: 7-bit clean, the body base64 of UTF-8.
    data.decode("ascii")
    message = parse(data)
    assert message["Subject"] == SUBJECT
    assert message["To"] == "anna@example.org"
    assert message["Delivered-To"] == "anna@example.org"
    # The sender's name is the center's (its name before it is set), the address the setting's.
    [sender] = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (
        "Региональный модельный центр",
        app.config["MAIL_SENDER"],
    )
    assert message["Message-ID"].startswith(f"<outbox-{row.id}-")
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"
    text, html = message.get_payload()
    assert text["Content-Transfer-Encoding"] == "base64"
    text = base64.b64decode(text.get_payload()).decode("utf-8")
    assert text.replace("\r\n", "\n") == BODY + "\n\n-- \nРегиональный модельный центр\n"
    assert html.get_content_type() == "text/html"


def test_a_mailbox_that_refuses_leaves_the_message_for_a_later_attempt(
    app, session, tmp_path, monkeypatch
):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the mailbox should be")
    monkeypatch.setitem(app.config, "DEV_MAILBOX_DIR", str(blocked))
    queue_email("anna@example.org", SUBJECT, BODY)
    session.flush()

    report = deliver_outbox()

    assert (report.sent, report.retrying) == (0, 1)
    [row] = rows(session)
    assert (row.status, row.attempts) == (OutboxStatus.PENDING, 1)
    assert row.last_error

    monkeypatch.setitem(app.config, "DEV_MAILBOX_DIR", str(tmp_path / "mail"))
    row.next_attempt_at = utcnow() - timedelta(seconds=1)
    session.flush()
    assert deliver_outbox().sent == 1
    assert rows(session)[0].status == OutboxStatus.SENT
    assert parse(stored(tmp_path / "mail")[0])["Subject"] == SUBJECT


def test_production_never_delivers_to_the_development_mailbox(app, session, monkeypatch, tmp_path):
    monkeypatch.setitem(app.config, "PRODUCTION", True)
    monkeypatch.setitem(app.config, "DEV_MAILBOX_DIR", str(tmp_path / "mail"))
    queue_email("anna@example.org", SUBJECT, BODY)
    session.flush()

    assert mailbox_dir(app.config) is None
    with pytest.raises(MailConfigurationError, match="SMTP_HOST"):
        deliver_outbox()

    [row] = rows(session)
    assert (row.status, row.attempts) == (OutboxStatus.PENDING, 0)
    assert not (tmp_path / "mail").exists()


def test_only_the_development_configuration_has_a_mailbox_and_a_delivery_thread():
    assert Path(DevelopmentConfig.DEV_MAILBOX_DIR).parts[-2:] == ("instance", "mail")
    assert DevelopmentConfig.DEV_MAIL_EVERY > 0
    for config in (TestingConfig, ProductionConfig):
        assert (config.DEV_MAILBOX_DIR, config.DEV_MAIL_EVERY) == ("", 0)


def test_links_in_a_text_are_made_clickable_and_the_rest_escaped():
    html = linkify(
        "См. http://127.0.0.1:5000/expert. <b>«x»</b> "
        'https://nok.rmc67.ru/a?b=1&c="2" javascript:alert(1)'
    )
    assert html == (
        'См. <a href="http://127.0.0.1:5000/expert" rel="noopener noreferrer">'
        "http://127.0.0.1:5000/expert</a>. &lt;b&gt;«x»&lt;/b&gt; "
        '<a href="https://nok.rmc67.ru/a?b=1&amp;c=" rel="noopener noreferrer">'
        "https://nok.rmc67.ru/a?b=1&amp;c=</a>&#34;2&#34; javascript:alert(1)"
    )


# --- the pages ------------------------------------------------------------------------------


def deliver(session, *messages: tuple[str, str, str]) -> None:
    for to, subject, body in messages:
        queue_email(to, subject, body)
    session.flush()
    assert deliver_outbox().sent == len(messages)


def test_coordinator_reads_the_mailbox_newest_first_and_each_message(
    client, auth, session, mail_dir
):
    deliver(
        session,
        ("first@example.org", "Первое письмо", "Текст первого."),
        ("second@example.org", "Второе письмо", "Текст второго."),
        ("anna@example.org", SUBJECT, BODY),
    )
    auth.login(CoordinatorFactory())

    listing = client.get("/dev/mail")

    assert listing.status_code == 200
    html = listing.get_data(as_text=True)
    assert "Почта, отправленная порталом (разработка)" in html
    assert 'href="/dev/mail">Почта (разработка)</a>' in html  # the navigation's link
    found = ROW.findall(html)
    assert [(to, subject) for _date, to, _url, subject in found] == [
        ("anna@example.org", "Назначение: экспертиза программы «Юные техники»"),
        ("second@example.org", "Второе письмо"),
        ("first@example.org", "Первое письмо"),
    ]
    assert all(re.fullmatch(r"\d\d\.\d\d\.\d{4} \d\d:\d\d", date) for date, *_ in found)

    page = client.get(found[0][2])

    assert page.status_code == 200
    html = page.get_data(as_text=True)
    headers = dict(
        re.findall(r'<th scope="row" class="text-nowrap">([^<]+)</th><td>([^<]*)</td>', html)
    )
    assert headers["To"] == headers["Delivered-To"] == "anna@example.org"
    assert headers["Subject"] == "Назначение: экспертиза программы «Юные техники»"
    assert headers["Message-ID"].startswith("&lt;outbox-")
    assert "Заголовки" in html
    body = re.search(r'<pre[^>]*id="dev-message-body">(.*?)</pre>', html, re.S).group(1)
    assert "Ёжик, щука, эхо" in body
    assert (
        '<a href="http://127.0.0.1:5000/expert" rel="noopener noreferrer">'
        "http://127.0.0.1:5000/expert</a>." in body
    )


def test_admin_reads_the_mailbox_too(client, auth, session, mail_dir):
    deliver(session, ("anna@example.org", SUBJECT, BODY))
    auth.login(AdminFactory())

    assert len(ROW.findall(client.get("/dev/mail").get_data(as_text=True))) == 1


def test_the_list_shows_fifty_a_page(client, auth, session, mail_dir):
    deliver(session, *((f"p{n}@example.org", f"Письмо {n}", "Текст.") for n in range(1, 56)))
    auth.login(CoordinatorFactory())

    first = client.get("/dev/mail").get_data(as_text=True)
    second = client.get("/dev/mail?page=2").get_data(as_text=True)

    assert [subject for *_, subject in ROW.findall(first)] == [
        f"Письмо {n}" for n in range(55, 5, -1)
    ]
    assert "Писем: 55." in first and "Страница 1 из 2" in first
    assert 'href="/dev/mail?page=2"' in first
    assert [subject for *_, subject in ROW.findall(second)] == [
        f"Письмо {n}" for n in range(5, 0, -1)
    ]
    assert 'href="/dev/mail?page=1"' in second
    # A page past the last is the last; an unreadable one the first.
    assert ROW.findall(client.get("/dev/mail?page=9").get_data(as_text=True)) == ROW.findall(second)
    assert ROW.findall(client.get("/dev/mail?page=x").get_data(as_text=True)) == ROW.findall(first)


def test_an_empty_mailbox_says_so(client, auth, mail_dir):
    auth.login(CoordinatorFactory())

    html = client.get("/dev/mail").get_data(as_text=True)

    assert "Писем пока нет." in html
    assert not mail_dir.exists()  # reading creates nothing


def test_expert_is_refused_and_anonymous_sent_to_log_in(client, auth, session, mail_dir):
    deliver(session, ("anna@example.org", SUBJECT, BODY))
    [key] = mailbox.Maildir(mail_dir, create=False).keys()

    for url in ("/dev/mail", f"/dev/mail/{key}"):
        anonymous = client.get(url)
        assert anonymous.status_code == 302
        assert "/login" in anonymous.headers["Location"]

    auth.login(ExpertUserFactory())
    for url in ("/dev/mail", f"/dev/mail/{key}"):
        assert client.get(url).status_code == 403
    assert 'href="/dev/mail"' not in client.get("/expert").get_data(as_text=True)


@pytest.mark.parametrize(
    "name",
    [
        "..",
        ".",
        "nope",
        "new",
        "cur",
        "a" * 129,
        "..%2F..%2Fsecret",
        "%2e%2e",
        "..%5C..%5Csecret",
        "KEY:2,S",
        "KEYx",
        "secret",
    ],
)
def test_a_message_name_that_names_no_message_is_not_found(client, auth, session, mail_dir, name):
    deliver(session, ("anna@example.org", SUBJECT, BODY))
    [key] = mailbox.Maildir(mail_dir, create=False).keys()
    (mail_dir.parent / "secret").write_text("outside the mailbox")
    (mail_dir / "tmp" / "secret").write_text("not delivered yet")
    auth.login(CoordinatorFactory())

    response = client.get(f"/dev/mail/{name.replace('KEY', key)}")

    assert response.status_code == 404
    assert "outside the mailbox" not in response.get_data(as_text=True)
    assert client.get(f"/dev/mail/{key}").status_code == 200


def test_without_a_mailbox_there_are_no_pages(tmp_path):
    """Testing (unless a test gives it a mailbox): the address is unknown, the navigation
    has no link."""
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 't.sqlite'}")

    assert "devmail.index" not in app.view_functions
    assert TICKER not in app.extensions
    assert app.test_client().get("/dev/mail").status_code == 404


def test_production_has_no_pages_and_no_thread_whatever_the_settings(tmp_path, monkeypatch):
    for name in ("SECRET_KEY", "SQLALCHEMY_DATABASE_URI", "AUDIT_ANCHOR_KEY"):
        # get_config("production") writes these class attributes; restore them afterwards.
        monkeypatch.setattr(ProductionConfig, name, getattr(ProductionConfig, name))
    monkeypatch.setenv("SECRET_KEY", "a-production-secret-of-forty-characters!!")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'p.sqlite'}")
    production = create_app(
        "production",
        **PRODUCTION_SETTINGS,
        DEV_MAILBOX_DIR=str(tmp_path / "mail"),
        DEV_MAIL_EVERY=1,
        JOBS_RUNNER="thread",
    )

    assert "devmail.index" not in production.view_functions
    assert TICKER not in production.extensions
    response = production.test_client().get("/dev/mail", base_url="https://nok.rmc67.ru")
    assert response.status_code == 404
    assert not (tmp_path / "mail").exists()


# --- the serving process's delivery ---------------------------------------------------------


@pytest.fixture
def serving_app(scratch_database_url, tmp_path):
    """A development-like application: jobs in threads, a mailbox, a look at the outbox
    every 0.2 s."""
    with migrated_app(
        scratch_database_url,
        tmp_path,
        DEV_MAILBOX_DIR=str(tmp_path / "mail"),
        DEV_MAIL_EVERY=0.2,
        JOBS_RUNNER="thread",
    ) as app:
        yield app
        app.extensions[TICKER].stop()


def outbox_statuses(app) -> list[OutboxStatus]:
    with app.app_context():
        try:
            return list(
                db.session.execute(
                    select(OutboxMessage.status).order_by(OutboxMessage.id)
                ).scalars()
            )
        finally:
            db.session.remove()


def send_mail_jobs(app) -> list[tuple[JobStatus, int, int]]:
    with app.app_context():
        try:
            return [
                (job.status, job.done, job.total)
                for job in db.session.execute(
                    select(Job).where(Job.kind == SEND_MAIL).order_by(Job.id)
                ).scalars()
            ]
        finally:
            db.session.remove()


def test_serving_process_delivers_due_mail_within_seconds(serving_app, tmp_path):
    with serving_app.app_context():
        queue_email("anna@example.org", SUBJECT, BODY)
        queue_email("boris@example.org", "Второе письмо", "Текст.")
        db.session.commit()
        db.session.remove()
    ticker = serving_app.extensions[TICKER]

    # A command loads the application but serves nothing: no thread.
    with serving_app.app_context():
        result = serving_app.test_cli_runner().invoke(args=["close-discussions"])
        db.session.remove()
    assert result.exit_code == 0, result.output
    assert ticker.thread is None

    assert serving_app.test_client().get("/healthz").status_code == 200

    assert ticker.thread is not None and ticker.thread.daemon
    wait_until(
        lambda: outbox_statuses(serving_app) == [OutboxStatus.SENT] * 2,
        "both messages sent",
        timeout=10,
    )
    # One send_mail job did it, and the looks that found nothing due made none.
    wait_until(
        lambda: send_mail_jobs(serving_app) == [(JobStatus.DONE, 2, 2)],
        "one send_mail job done",
        timeout=10,
    )
    time.sleep(1)
    assert send_mail_jobs(serving_app) == [(JobStatus.DONE, 2, 2)]
    subjects = [parse(data)["Subject"] for data in stored(tmp_path / "mail")]
    assert subjects == [SUBJECT, "Второе письмо"]


def test_nothing_due_makes_no_job(serving_app):
    with serving_app.app_context():
        later = queue_email("anna@example.org", SUBJECT, BODY)
        later.next_attempt_at = utcnow() + timedelta(hours=1)
        db.session.commit()
        db.session.remove()
    ticker = serving_app.extensions[TICKER]

    assert ticker.tick() is None
    serving_app.test_client().get("/healthz")
    time.sleep(1.2)  # several looks at the outbox

    assert ticker.thread.is_alive()
    assert send_mail_jobs(serving_app) == []
    assert outbox_statuses(serving_app) == [OutboxStatus.PENDING]


def test_a_send_mail_job_left_running_is_resumed_first(serving_app):
    with serving_app.app_context():
        db.session.add(Job(kind=SEND_MAIL, status=JobStatus.RUNNING, payload={}, total=0))
        queue_email("anna@example.org", SUBJECT, BODY)
        db.session.commit()
        db.session.remove()

    serving_app.test_client().get("/healthz")

    wait_until(
        lambda: outbox_statuses(serving_app) == [OutboxStatus.SENT],
        "the message sent",
        timeout=10,
    )
    wait_until(
        lambda: send_mail_jobs(serving_app) == [(JobStatus.DONE, 1, 1)],
        "the resumed job done",
        timeout=10,
    )


@pytest.mark.parametrize(
    ("config", "testing", "starts"),
    [
        ({"DEV_MAIL_EVERY": 5}, False, True),
        ({"DEV_MAIL_EVERY": 0}, False, False),
        ({"DEV_MAIL_EVERY": 5, "PRODUCTION": True}, False, False),
        ({"DEV_MAIL_EVERY": 5, "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0"}, False, False),
        ({"DEV_MAIL_EVERY": 5, "JOBS_RUNNER": "none"}, False, False),
        ({"DEV_MAIL_EVERY": 5}, True, False),
        ({"DEV_MAIL_EVERY": 5, "JOBS_RUNNER": "thread"}, True, True),
    ],
)
def test_the_thread_is_set_up_only_where_jobs_run_in_the_web_process(config, testing, starts):
    app = Flask("ticker-test")
    app.config.update(config)
    app.testing = testing

    ticker = init_ticker(app)

    assert (ticker is not None) is starts
    assert (TICKER in app.extensions) is starts
    hooks = app.before_request_funcs.get(None, [])
    assert (ticker is not None and ticker.ensure_started in hooks) is starts
    if ticker is not None:
        assert ticker.thread is None  # not before a request
