"""E-mail delivery against a real SMTP server on the loopback (aiosmtpd): what the server
receives (Cyrillic intact, right headers), TLS and login, back-off and giving up, the
development log, and two delivery runs at once sending nothing twice."""

from __future__ import annotations

import logging
import random
import ssl
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from sqlalchemy import select

from review_portal.db import utcnow
from review_portal.enums import OutboxStatus
from review_portal.extensions import db
from review_portal.notifications.models import OutboxMessage
from review_portal.notifications.services import (
    MailConfigurationError,
    _Claimed,
    build_email,
    deliver_outbox,
    queue_email,
    retry_delay,
)
from tests.processes import free_port

SENDER = "Региональный модельный центр <rmc@example.org>"
SUBJECT = "Напоминание: экспертиза программы «Юные техники» — срок 20.11.2026"
BODY = (
    "Здравствуйте, Анна Сергеевна!\n\n"
    "Срок экспертизы программы «Юные техники» истекает 20.11.2026. "
    "Пожалуйста, заполните экспертный лист вовремя: "
    "http://127.0.0.1:5000/expert\n\n"
    "Ёжик, щука, эхо: проверка букв ё, щ, э."
)

#: A self-signed certificate for 127.0.0.1 (valid until 2126) and its key, for the TLS tests.
CERTIFICATE = """-----BEGIN CERTIFICATE-----
MIIDHDCCAgSgAwIBAgIUT0VM9FkzGdgFwHKXkfphuPE7v54wDQYJKoZIhvcNAQEL
BQAwFDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTEyMjE2NTczN1oYDzIxMjYx
MDI5MTY1NzM3WjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwggEiMA0GCSqGSIb3DQEB
AQUAA4IBDwAwggEKAoIBAQCvlE3C33z4Hm3mpwQgfFS6+qnK/ZzIN+QE9Oi5BA+R
uHKocC2+CAMW8+a4vNh7Otb9km53S+kLneD8W+fqnTHSXEyKGmWlOh9bTmr8r38M
8KKTQZTm3Q4dXQ0dpEIOXief/MB0rvGK3knmC0sbOrNgKc4r7VO60uLHJIJ+ZD+d
qe8gH3D/jVRw6tqtaxh2cXEJBghmNRfdW8qqBlxgXxkgHuroFAXy2FIztb43ZbnG
zpd4S1p4WxdAQC6o3+K1w3ZCXn7qNpACE3zf4+zlsnJ2Oqpa6YWY1F+EwD7nvPXE
iZPLmCTJUFGn5MSva2feI/8eCyN4T/2eU5XMFQAeaL9BAgMBAAGjZDBiMB0GA1Ud
DgQWBBRyMhc1x2ZFBwhkY/W/dtuC6I06OjAfBgNVHSMEGDAWgBRyMhc1x2ZFBwhk
Y/W/dtuC6I06OjAPBgNVHRMBAf8EBTADAQH/MA8GA1UdEQQIMAaHBH8AAAEwDQYJ
KoZIhvcNAQELBQADggEBAEpOYg+Ss0VIzcuh8rhS+GnFITN+u5jyTDZmznFzCU/V
quyFG8qED7VIymXz8QB4NSSIEjjWpL67NHSlEnMa2BuZaX/u9sYnna+VfC21PwOl
FwN55/xPNQC4wSo/RKxPcIKhbrehITYtRwiQB/NAJTSJtAINxeUJkp2W09VjCed+
uGe3GtMWhRN19by3KW8FwpNzvfQ37CQzNP+dGcyXLEfL8Oz8rw4bJjbesbuVntO5
il9VzqYgmptwwg+5hYg1c7lrGkTBgADvMCZ/nZ3tv+VV+NuazAkzK0oMqrsYH1oV
lW3Vda4lULeSa5X3R3fZ65VryEucJccwG6x6ZeZ+OQY=
-----END CERTIFICATE-----
"""
PRIVATE_KEY = """-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCvlE3C33z4Hm3m
pwQgfFS6+qnK/ZzIN+QE9Oi5BA+RuHKocC2+CAMW8+a4vNh7Otb9km53S+kLneD8
W+fqnTHSXEyKGmWlOh9bTmr8r38M8KKTQZTm3Q4dXQ0dpEIOXief/MB0rvGK3knm
C0sbOrNgKc4r7VO60uLHJIJ+ZD+dqe8gH3D/jVRw6tqtaxh2cXEJBghmNRfdW8qq
BlxgXxkgHuroFAXy2FIztb43ZbnGzpd4S1p4WxdAQC6o3+K1w3ZCXn7qNpACE3zf
4+zlsnJ2Oqpa6YWY1F+EwD7nvPXEiZPLmCTJUFGn5MSva2feI/8eCyN4T/2eU5XM
FQAeaL9BAgMBAAECggEAII3jjhyAcAO6VlAEvp422pVD2piD04azXyzmonlLhrX3
gl4MSSX0prKRxpJzJAQQnSLjmvhm7Qm4j6nduf0r4ehNo7SJwKUib7w+L3w9lxFd
32ZDPLvjVFPurN6KBd50w9/p8iiGrfwRoRbadeHAJPYTXUcrZWIY/Jn7HQKq3ek3
dunFk6eaHmCy4zHWKSFXqmc3A8VRDhaQ/bNwYB24DLGARPDN7T2V92FfOAocqriP
YpggLVTTvndqFGfUNJzbRoLBWyhkImxjhfsDn2PHsg2/6KgS9XVDpwgkouwyVmlF
3w/EA03MscEmsSnr5+ulRo9tbC4ABdoIIiUwdmlh3QKBgQDn5Skq8RvHZ8k3sBmr
Ym/HYWX8ubHf6DPptTDKrFHMVUJnL3DzXh2fuGXAqNrpcpzWujDRsAGkyEQI9weZ
zLXi6otHlXFAqHEYmSK6xP2Ktbajf+8dr3Ox5I+eyd9v/ozclPtScS+j848tyPFC
mIr3nKpvfHsXZqPBA4V81hjizQKBgQDB1I1APO0GAzsiNwNEg0f/HyPXmDehindG
vAl2eNgduTtaG7pRg8kGMf1KwZ6Q1YZVJA+dj8brR/EYoZZ0xlT+Ee0/ifOADV+r
zz8wh1R13O/1Noy2yeyLgsCD0jxHrddV4NvH+5H8he41/2SF90A2wuj8Vrrx3FCO
xCPdWw4WRQKBgQCxOFPW6n6lTO7dLSrg7JCqWggcNTn3+Tg7QmqwaTL2Kq5dt0bl
5qZTGxRAQYtTX3D3NUH77jvDV/2OsGNRqb3TVhXtNgtgM5qDBv0gqU1uxWJ331y5
Xg3YBOmxm2uz5mB2bzEGl1OmQ4vHnMqsb3G8vDEQlJxpjNpWtr88YU6RfQKBgBFS
jqEcEM7FwSYopnkcBnYtcUWWS/p65ngC3BGjcSUO5dgCvF8GmROdqhZhQWuOOago
ReD99XgXgNuDrW+YPgZK0doo2QMrrs4rAmmy3oB+E0/l5SN83lAFinD9e/en+KOr
KdkwiXZ4/bYDshcq5qk+OBY9Jg3xc52et9nThmnFAoGBAIDAyd7rEJpZX5ON5yF/
cuJ3yE45IUAyNtKdunLgfrOSL0vuEBfKpL2jEQOuUj4LcLTGoYvWMnRpcA4tITtx
aoSQUjgM0q/WwTZd9twxm+WACoTgGWjhO7BXHMfpMHNjL+ugPT9VeDZdZRfC8bGB
6MJC4oewtRNH3OWBPVFw//fu
-----END PRIVATE KEY-----
"""


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Recorder:
    """The aiosmtpd handler: keeps every message it accepts, refuses listed recipients."""

    refuse: set[str] = field(default_factory=set)
    messages: list[Received] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.original_content, policy=default_policy)
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.logins.append((login, password))
        # handled=False: aiosmtpd answers a failure with 535 itself.
        return AuthResult(success=(login, password) == ("portal", "s3cret-Pass"), handled=False)


class Server:
    """A running aiosmtpd server on 127.0.0.1."""

    def __init__(self, port: int | None = None, authenticate=False, **smtp_parameters) -> None:
        self.port = port or free_port()
        self.recorder = Recorder()
        if authenticate:
            smtp_parameters["authenticator"] = self.recorder.authenticate
        self.controller = Controller(
            self.recorder,
            hostname="127.0.0.1",
            port=self.port,
            server_hostname="mail.test",
            **smtp_parameters,
        )
        self.controller.start()

    @property
    def messages(self) -> list[Received]:
        return self.recorder.messages

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture
def smtp_server():
    server = Server()
    yield server
    server.stop()


@pytest.fixture
def tls_files(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text(CERTIFICATE + "\n")
    key.write_text(PRIVATE_KEY + "\n")
    return str(cert), str(key)


def server_tls_context(tls_files) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*tls_files)
    return context


def use_server(monkeypatch, app, port: int, **extra) -> None:
    """Point the application at the SMTP server on ``port``."""
    settings = {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": port,
        "SMTP_SECURITY": "none",
        "SMTP_USERNAME": "",
        "SMTP_PASSWORD": "",
        "SMTP_CA_FILE": "",
        "SMTP_TIMEOUT": 5,
        "MAIL_SENDER": SENDER,
        **extra,
    }
    for key, value in settings.items():
        monkeypatch.setitem(app.config, key, value)


def outbox(session) -> list[OutboxMessage]:
    session.expire_all()
    return list(session.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars())


def plain(text: str) -> str:
    return text.replace("\r\n", "\n").rstrip("\n")


#: The center's name before it is set: the sender's name and the signature by default.
DEFAULT_SIGNATURE = "Региональный модельный центр"


def signed(body: str, signature: str = DEFAULT_SIGNATURE) -> str:
    """``body`` as queued: the signature under it."""
    return f"{body}\n\n-- \n{signature}"


def text_of(message: EmailMessage) -> str:
    """The plain part of a received ``multipart/alternative`` message."""
    return plain(message.get_body(preferencelist=("plain",)).get_content())


def html_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


# --- delivery over SMTP -----------------------------------------------------------------


def test_delivery_sends_russian_message_intact(app, session, monkeypatch, smtp_server):
    use_server(monkeypatch, app, smtp_server.port)
    queue_email("expert@example.org", SUBJECT, BODY)
    session.flush()

    report = deliver_outbox()

    assert (report.sent, report.retrying, report.failed) == (1, 0, 0)
    [received] = smtp_server.messages
    assert received.mail_from == "rmc@example.org"
    assert received.rcpt_tos == ["expert@example.org"]
    message = received.message
    assert message["Subject"] == SUBJECT
    [sender] = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (
        "Региональный модельный центр",
        "rmc@example.org",
    )
    assert message["To"] == "expert@example.org"
    assert message.get_content_type() == "multipart/alternative"
    text, html = message.iter_parts()
    assert (text.get_content_type(), text.get_content_charset()) == ("text/plain", "utf-8")
    assert (html.get_content_type(), html.get_content_charset()) == ("text/html", "utf-8")
    assert plain(text.get_content()) == signed(BODY)
    assert '<a href="http://127.0.0.1:5000/expert">' in html.get_content()
    assert message["Message-ID"].endswith("@example.org>")
    assert message["Date"].datetime is not None
    assert message["Auto-Submitted"] == "auto-generated"
    # Nothing but ASCII on the wire: any server carries it.
    assert received.message.as_bytes().isascii()
    [row] = outbox(session)
    assert row.status == OutboxStatus.SENT
    assert row.attempts == 1
    assert row.sent_at is not None


@pytest.mark.parametrize(
    "subject",
    [
        "Назначение: экспертиза программы «Юные техники»",
        "Решение по программе «Художественная студия „Акварель“» принято: рекомендована",
    ],
)
def test_long_cyrillic_subject_arrives_with_every_space(
    app, session, monkeypatch, smtp_server, subject
):
    use_server(monkeypatch, app, smtp_server.port)
    queue_email("expert@example.org", subject, BODY)
    session.flush()

    deliver_outbox()

    [received] = smtp_server.messages
    assert received.message["Subject"] == subject
    assert received.message.as_bytes().isascii()


def test_built_subjects_read_back_as_written():
    """Subjects of every length and mix, folded onto several lines, decode to themselves
    (Python's own folding ran two words together at a third of these breaks)."""
    words = "Назначение: экспертиза программы «Юные техники» — срок ДООП Report 20.11.2026 a"
    rng = random.Random(20)
    for number in range(400):
        subject = " ".join(rng.choice(words.split()) for _ in range(rng.randint(1, 40)))[:255]
        claimed = _Claimed(number + 1, "a@example.org", subject, "Текст", utcnow(), 1)
        data = build_email(claimed, SENDER).as_bytes()
        assert data.isascii()
        assert max(len(line) for line in data.split(b"\r\n")) <= 78
        assert message_from_bytes(data, policy=default_policy)["Subject"] == subject


def test_delivery_sends_each_message_once(app, session, monkeypatch, smtp_server):
    use_server(monkeypatch, app, smtp_server.port)
    for n in range(3):
        queue_email(f"expert{n}@example.org", f"Письмо № {n}", "Текст")
    session.flush()

    assert deliver_outbox().sent == 3
    assert deliver_outbox().sent == 0

    assert sorted(m.message["Subject"] for m in smtp_server.messages) == [
        "Письмо № 0",
        "Письмо № 1",
        "Письмо № 2",
    ]
    assert {r.status for r in outbox(session)} == {OutboxStatus.SENT}


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_delivery_over_tls_logs_in(app, session, monkeypatch, tls_files, security):
    context = server_tls_context(tls_files)
    if security == "starttls":
        server = Server(authenticate=True, tls_context=context, require_starttls=True)
    else:
        # TLS from the first byte; aiosmtpd only offers AUTH after STARTTLS unless told.
        server = Server(authenticate=True, ssl_context=context, auth_require_tls=False)
    try:
        use_server(
            monkeypatch,
            app,
            server.port,
            SMTP_SECURITY=security,
            SMTP_CA_FILE=tls_files[0],
            SMTP_USERNAME="portal",
            SMTP_PASSWORD="s3cret-Pass",
        )
        queue_email("expert@example.org", SUBJECT, BODY)
        session.flush()

        assert deliver_outbox().sent == 1
    finally:
        server.stop()
    assert server.recorder.logins == [("portal", "s3cret-Pass")]
    [received] = server.messages
    assert received.message["Subject"] == SUBJECT
    assert text_of(received.message) == signed(BODY)


def test_delivery_with_wrong_password_is_retried(app, session, monkeypatch, tls_files):
    server = Server(
        authenticate=True, tls_context=server_tls_context(tls_files), require_starttls=True
    )
    try:
        use_server(
            monkeypatch,
            app,
            server.port,
            SMTP_SECURITY="starttls",
            SMTP_CA_FILE=tls_files[0],
            SMTP_USERNAME="portal",
            SMTP_PASSWORD="wrong",
        )
        queue_email("expert@example.org", SUBJECT, BODY)
        session.flush()

        report = deliver_outbox()
    finally:
        server.stop()
    assert report.unreachable and report.retrying == 1
    assert server.messages == []
    [row] = outbox(session)
    assert (row.status, row.attempts) == (OutboxStatus.PENDING, 1)
    assert "535" in row.last_error


def test_delivery_refuses_untrusted_certificate(app, session, monkeypatch, tls_files):
    server = Server(tls_context=server_tls_context(tls_files), require_starttls=True)
    try:
        # The self-signed certificate is not in the system store and no CA file is given.
        use_server(monkeypatch, app, server.port, SMTP_SECURITY="starttls")
        queue_email("expert@example.org", SUBJECT, BODY)
        session.flush()
        report = deliver_outbox()
    finally:
        server.stop()
    assert report.unreachable
    assert server.messages == []
    [row] = outbox(session)
    assert row.status == OutboxStatus.PENDING
    assert "CERTIFICATE_VERIFY_FAILED" in row.last_error


# --- failures, back-off, giving up -----------------------------------------------------------


def test_retry_delay_doubles_up_to_the_cap():
    assert [retry_delay(n) for n in (1, 2, 3, 4)] == [
        timedelta(minutes=1),
        timedelta(minutes=2),
        timedelta(minutes=4),
        timedelta(minutes=8),
    ]
    assert retry_delay(10) == timedelta(hours=6)
    assert retry_delay(1000) == timedelta(hours=6)


def test_delivery_failure_backs_off_then_succeeds(app, session, monkeypatch):
    port = free_port()  # nothing listens there yet
    use_server(monkeypatch, app, port)
    queue_email("expert@example.org", SUBJECT, BODY)
    session.flush()

    before = utcnow()
    report = deliver_outbox()

    assert report.unreachable and (report.sent, report.retrying) == (0, 1)
    [row] = outbox(session)
    assert row.status == OutboxStatus.PENDING
    assert row.attempts == 1
    assert row.last_error
    assert before + timedelta(seconds=59) <= row.next_attempt_at <= utcnow() + timedelta(minutes=1)
    # Not due yet: a run right away leaves it alone.
    assert deliver_outbox().sent == 0
    assert outbox(session)[0].attempts == 1

    server = Server(port=port)
    try:
        row.next_attempt_at = utcnow() - timedelta(seconds=1)  # the back-off has passed
        session.flush()
        report = deliver_outbox()
    finally:
        server.stop()
    assert report.sent == 1
    [received] = server.messages
    assert received.message["Subject"] == SUBJECT
    [row] = outbox(session)
    assert (row.status, row.attempts) == (OutboxStatus.SENT, 2)


def test_delivery_second_failure_waits_longer(app, session, monkeypatch):
    use_server(monkeypatch, app, free_port())
    message = queue_email("expert@example.org", SUBJECT, BODY)
    message.attempts = 1
    session.flush()

    before = utcnow()
    deliver_outbox()

    [row] = outbox(session)
    assert row.attempts == 2
    assert before + timedelta(seconds=119) <= row.next_attempt_at <= utcnow() + timedelta(minutes=2)


def test_delivery_gives_up_after_max_attempts(app, session, monkeypatch):
    use_server(monkeypatch, app, free_port(), MAIL_MAX_ATTEMPTS=3)
    message = queue_email("expert@example.org", SUBJECT, BODY)
    message.attempts = 2
    session.flush()

    report = deliver_outbox()

    assert (report.sent, report.retrying, report.failed) == (0, 0, 1)
    [row] = outbox(session)  # kept, for the coordinators to see
    assert (row.status, row.attempts) == (OutboxStatus.FAILED, 3)
    assert row.last_error
    assert row.sent_at is None
    assert deliver_outbox().failed == 0  # never tried again


def test_delivery_refused_recipient_fails_and_others_go(app, session, monkeypatch, smtp_server):
    smtp_server.recorder.refuse.add("nobody@example.org")
    use_server(monkeypatch, app, smtp_server.port)
    queue_email("nobody@example.org", "Первое", "Текст")
    queue_email("expert@example.org", "Второе", "Текст")
    session.flush()

    report = deliver_outbox()

    assert (report.sent, report.retrying, report.failed) == (1, 0, 1)
    refused, delivered = outbox(session)
    assert (refused.status, refused.attempts) == (OutboxStatus.FAILED, 1)
    assert "550" in refused.last_error
    assert delivered.status == OutboxStatus.SENT
    assert [m.rcpt_tos for m in smtp_server.messages] == [["expert@example.org"]]


def test_delivery_limit_sends_at_most_that_many(app, session, monkeypatch, smtp_server):
    use_server(monkeypatch, app, smtp_server.port)
    for n in range(5):
        queue_email(f"expert{n}@example.org", "Письмо", "Текст")
    session.flush()

    assert deliver_outbox(limit=2).sent == 2
    assert len(smtp_server.messages) == 2
    assert [r.status for r in outbox(session)].count(OutboxStatus.PENDING) == 3


def test_queue_email_keeps_subject_on_one_line(app, session):
    message = queue_email(" expert@example.org ", "Первая строка\nвторая  строка", "Текст")
    long = queue_email("expert@example.org", "Программа " * 40, "Текст")
    session.flush()

    assert message.subject == "Первая строка вторая строка"
    assert message.to_email == "expert@example.org"
    assert len(long.subject) == 255 and long.subject.endswith("…")


# --- concurrency -------------------------------------------------------------------------------


def test_delivery_runs_at_once_never_send_twice(scratch_app, monkeypatch, smtp_server):
    use_server(monkeypatch, scratch_app, smtp_server.port)
    count = 40
    with scratch_app.app_context():
        for n in range(count):
            queue_email(f"expert{n}@example.org", f"Письмо № {n}", "Текст")
        db.session.commit()

    start = threading.Barrier(2)
    reports, errors = [], []

    def run() -> None:
        try:
            with scratch_app.app_context():
                start.wait()
                reports.append(deliver_outbox(batch_size=2))
                db.session.remove()
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sum(r.sent for r in reports) == count
    subjects = Counter(m.message["Subject"] for m in smtp_server.messages)
    assert len(subjects) == count
    assert set(subjects.values()) == {1}
    with scratch_app.app_context():
        rows = db.session.execute(select(OutboxMessage)).scalars().all()
        assert {(r.status, r.attempts) for r in rows} == {(OutboxStatus.SENT, 1)}


# --- development and configuration -------------------------------------------------------------


def test_delivery_without_smtp_host_writes_to_log(app, session, monkeypatch, caplog):
    monkeypatch.setitem(app.config, "SMTP_HOST", "")
    queue_email("expert@example.org", SUBJECT, BODY)
    session.flush()

    with caplog.at_level(logging.INFO, logger=app.logger.name):
        report = deliver_outbox()

    assert report.sent == 1
    [record] = [r for r in caplog.records if "expert@example.org" in r.getMessage()]
    text = record.getMessage()
    assert SUBJECT in text
    assert BODY in plain(text)
    assert outbox(session)[0].status == OutboxStatus.SENT


def test_delivery_without_smtp_host_is_refused_in_production(app, session, monkeypatch):
    monkeypatch.setitem(app.config, "SMTP_HOST", "")
    monkeypatch.setitem(app.config, "PRODUCTION", True)
    queue_email("expert@example.org", SUBJECT, BODY)
    session.flush()

    with pytest.raises(MailConfigurationError):
        deliver_outbox()

    [row] = outbox(session)
    assert (row.status, row.attempts) == (OutboxStatus.PENDING, 0)


def test_delivery_with_unknown_security_is_refused(app, session, monkeypatch):
    use_server(monkeypatch, app, free_port(), SMTP_SECURITY="tls13")

    with pytest.raises(MailConfigurationError, match="SMTP_SECURITY"):
        deliver_outbox()


def test_send_mail_command_drains_outbox(app, session, monkeypatch, smtp_server):
    use_server(monkeypatch, app, smtp_server.port)
    queue_email("expert@example.org", SUBJECT, BODY)
    queue_email("other@example.org", SUBJECT, BODY)
    session.flush()

    result = app.test_cli_runner().invoke(args=["send-mail"])

    assert result.exit_code == 0, result.output
    assert "Sent: 2; to retry: 0; failed: 0." in result.output
    assert len(smtp_server.messages) == 2
    # The former name still works.
    result = app.test_cli_runner().invoke(args=["deliver-outbox"])
    assert result.exit_code == 0
    assert "Sent: 0;" in result.output
