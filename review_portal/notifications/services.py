"""Queueing e-mail in the outbox (same transaction as its cause) and delivering it afterwards.

:func:`queue_email` adds a row to the outbox in the caller's transaction, so a message exists
exactly when the change that caused it is committed. :func:`deliver_outbox` (``flask send-mail``)
sends the due messages over SMTP (the ``SMTP_*`` settings of :mod:`review_portal.config`) or,
in development without ``SMTP_HOST``, delivers them into the development mailbox read at
``/dev/mail`` (:mod:`review_portal.notifications.devmail`), or writes them to the log when
there is none. Every message is plain text, with a simple HTML part made from it at delivery
(:func:`html_body`: the text escaped, its links made clickable): the outbox keeps one body,
the text that was queued. :func:`queue_email` ends the text with the link to the page the
message is about (absolute, on ``PUBLIC_URL``) and the center's signature (the
``mail_signature`` setting); the ``From`` header carries the ``mail_sender_name`` setting
with the address of ``MAIL_SENDER``. It works in short steps, so no database lock is held
while the mail server is talking:

1. *claim* a batch in one transaction: due pending rows (``FOR UPDATE SKIP LOCKED`` on
   PostgreSQL; SQLite serialises transactions anyway), the attempt counted and
   ``next_attempt_at`` pushed a lease into the future, so a second ``send-mail`` running at
   the same moment passes them by;
2. *send* them one by one over one SMTP connection;
3. *record* each outcome in its own transaction: ``sent`` only once the server accepted the
   message; otherwise the error and a later ``next_attempt_at`` (exponential back-off with a
   cap), or ``failed`` after ``MAIL_MAX_ATTEMPTS`` attempts or a permanent refusal (a 5xx
   answer for the recipient or the content). Failed messages are kept, never deleted.

A process that dies between sending and recording leaves its claim to expire, and the message
goes out again after the lease: at least once, never lost. Its Message-ID stays the same, so
a mail client can recognise the duplicate.
"""

from __future__ import annotations

import logging
import os
import re
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, parseaddr

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import escape
from sqlalchemy import select, update

from review_portal.audit.services import record_event
from review_portal.db import utcnow
from review_portal.enums import NotificationKind, OutboxStatus
from review_portal.errors import InvalidInput
from review_portal.extensions import db
from review_portal.i18n import in_language_of
from review_portal.notifications.models import Notification, NotificationSettings, OutboxMessage
from review_portal.permissions import authorize, is_approved, is_staff
from review_portal.unit_of_work import unit_of_work

log = logging.getLogger(__name__)

#: Attempts before a message is marked failed, unless ``MAIL_MAX_ATTEMPTS`` says otherwise.
MAX_ATTEMPTS = 12
#: The wait after the first failed attempt; it doubles after each further one, up to the cap.
RETRY_BASE = timedelta(minutes=1)
RETRY_CAP = timedelta(hours=6)
#: How long a claimed message is left alone by other senders. Far longer than a batch can
#: take (each server answer is bounded by ``SMTP_TIMEOUT``).
CLAIM_LEASE = timedelta(minutes=15)
BATCH_SIZE = 10
SECURITY_MODES = ("none", "starttls", "ssl")
SUBJECT_LENGTH = 255


class MailConfigurationError(RuntimeError):
    """The mail settings cannot work (unknown ``SMTP_SECURITY``, no server in production)."""


def queue_email(recipient, subject, body, *, link: str | None = None) -> OutboxMessage:
    """Write a message to the outbox (sent after the transaction commits).

    ``recipient`` is a user, whose language the message is written in, or an e-mail
    address without an account (the portal's default language). ``subject`` and ``body``
    may be lazy strings: they are rendered here, in that language. Text composed before
    the call must be composed inside :func:`review_portal.i18n.in_language_of` the
    recipient, never in the language of the request that causes the message.

    ``link`` is the page the message is about (a path of the portal or an absolute link):
    the body ends with it, made absolute on ``PUBLIC_URL`` (unless the body already gives
    it), and then with the center's signature (:func:`compose_body`).
    """
    user = None if isinstance(recipient, str) else recipient
    to_email = recipient if user is None else user.email
    with in_language_of(user):
        # A header is one line; a long program title must not make the row too long.
        subject = " ".join(str(subject).split())
        body = compose_body(str(body), link)
    if len(subject) > SUBJECT_LENGTH:
        subject = subject[: SUBJECT_LENGTH - 1] + "…"
    message = OutboxMessage(to_email=to_email.strip(), subject=subject, body=body)
    db.session.add(message)
    return message


#: The line that opens a signature (RFC 3676: mail clients recognise it).
SIGNATURE_SEPARATOR = "-- "


def center_name() -> str:
    """The center's name (its setting), or "Regional model center" before it is set."""
    from review_portal.settings.services import get_setting

    return get_setting("center_name") or _("Regional model center")


def mail_signature() -> str:
    """The lines under every e-mail: the ``mail_signature`` setting, else the center's name."""
    from review_portal.settings.services import get_setting

    return get_setting("mail_signature") or center_name()


def mail_sender_name() -> str:
    """The sender's name of every e-mail: ``mail_sender_name``, else the center's name."""
    from review_portal.settings.services import get_setting

    return get_setting("mail_sender_name") or center_name()


def compose_body(text: str, link: str | None = None) -> str:
    """The plain body: ``text``, the absolute ``link`` (unless ``text`` gives it already)
    and the signature, in the language of the moment."""
    from review_portal.urls import absolute_url

    parts = [text.rstrip()]
    if link:
        url = absolute_url(link)
        given = {match.group().rstrip(_URL_TAIL) for match in _URL.finditer(text)}
        if url not in given:  # the same address, not one that merely begins with it
            parts.append(_("Open on the portal: %(url)s", url=url))
    parts.append(f"{SIGNATURE_SEPARATOR}\n{mail_signature()}")
    return "\n\n".join(parts)


#: A link in a body: up to a space, a quotation mark or an angle bracket.
_URL = re.compile(r"https?://[^\s<>\"«»„“”]+")
#: Punctuation after a link ends the sentence, not the link.
_URL_TAIL = ".,;:!?)"


def _linked(line: str) -> str:
    """One line of text as HTML: escaped, each link clickable (its text is the link itself,
    so an HTML part never shows one address and leads to another)."""
    html, start = [], 0
    for match in _URL.finditer(line):
        url = match.group().rstrip(_URL_TAIL)
        end = match.start() + len(url)
        html.append(str(escape(line[start : match.start()])))
        html.append(f'<a href="{escape(url)}">{escape(url)}</a>')
        start = end
    html.append(str(escape(line[start:])))
    return "".join(html)


def html_body(text: str) -> str:
    """The HTML part of a message: each paragraph of the plain ``text`` a ``<p>``, its lines
    kept, everything escaped, links clickable; the signature set apart in grey."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.split("\n")
        style = ""
        if lines[0].rstrip() == SIGNATURE_SEPARATOR.rstrip():
            lines, style = lines[1:], ' style="color:#555555"'
        inner = "<br>\n".join(_linked(line) for line in lines)
        paragraphs.append(f"<p{style}>{inner}</p>")
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head>\n'
        '<body style="font-family:Arial,sans-serif;font-size:15px;line-height:1.4">\n'
        + "\n".join(paragraphs)
        + "\n</body></html>\n"
    )


def notify(user, text, link: str | None = None, *, kind: NotificationKind) -> Notification:
    """Add an in-app notification of ``kind`` for ``user``, rendered (a lazy ``text``) in
    their language: it is stored as text, as :func:`queue_email` stores a message. Nothing
    is mailed: :func:`tell` also mails when the user wants it."""
    with in_language_of(user):
        text = str(text)
    notification = Notification(user_id=user.id, kind=kind, text=text, link=link)
    db.session.add(notification)
    return notification


def tell(
    user,
    kind: NotificationKind,
    text,
    *,
    link: str | None = None,
    subject=None,
    body=None,
) -> Notification:
    """Notify ``user`` in the portal (``text``, ``link``) and by e-mail (``subject`` and
    ``body``, by default ``text``) unless they chose to have ``kind`` in the portal only
    (:func:`wants_mail`). Lazy strings are rendered in the user's language. The e-mail
    ends with ``link`` made absolute (:func:`queue_email`)."""
    notification = notify(user, text, link, kind=kind)
    if wants_mail(user, kind):
        queue_email(
            user,
            text if subject is None else subject,
            text if body is None else body,
            link=link,
        )
    return notification


def wants_mail(user, kind: NotificationKind) -> bool:
    """Whether a notification of ``kind`` is also mailed to ``user``: always for their
    account; otherwise unless they muted the kind or, for the center's work, chose the
    daily digest."""
    if kind == NotificationKind.ACCOUNT:
        return True
    choices = db.session.get(NotificationSettings, user.id)
    if choices is None:
        return True
    if kind.value in choices.muted_kinds:
        return False
    return not (kind == NotificationKind.WORK_QUEUE and choices.daily_digest and is_staff(user))


#: The kinds a user may choose to have in the portal only.
MUTABLE_KINDS = tuple(kind for kind in NotificationKind if kind != NotificationKind.ACCOUNT)


def kinds_for(user) -> list[NotificationKind]:
    """The kinds that may reach ``user`` by their roles (the choices their page offers)."""
    from review_portal.enums import Role

    mine = set()
    if user.has_role(Role.EXPERT):
        mine |= {NotificationKind.ASSIGNMENTS, NotificationKind.REMINDERS}
        mine.add(NotificationKind.DISCUSSIONS)
    if user.has_role(Role.APPLICANT):
        mine.add(NotificationKind.PROGRAMS)
    if is_staff(user):
        mine.add(NotificationKind.WORK_QUEUE)
    return [kind for kind in MUTABLE_KINDS if kind in mine]


def mark_read(actor, notification: Notification) -> None:
    """Mark ``actor``'s own ``notification`` read (once: the first reading is kept)."""
    authorize(notification.user_id == actor.id)
    if notification.read_at is None:
        notification.read_at = utcnow()


def mark_all_read(actor) -> int:
    """Mark every unread notification of ``actor`` read; how many were."""
    result = db.session.execute(
        update(Notification)
        .where(Notification.user_id == actor.id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def save_choices(actor, user, muted_kinds, daily_digest: bool) -> bool:
    """Save what ``user`` receives by e-mail: the kinds ``muted_kinds`` in the portal only,
    and (staff only) the daily digest. Only the user themself chooses. Audited with before
    and after; whether anything changed."""
    authorize(is_approved(actor) and actor.id == user.id)
    try:
        muted = sorted({NotificationKind(value) for value in muted_kinds})
    except ValueError:
        raise InvalidInput(_l("Unknown kind of notification.")) from None
    if NotificationKind.ACCOUNT in muted:
        raise InvalidInput(_l("Notices about your account are always sent by e-mail."))
    if daily_digest and not is_staff(user):
        raise InvalidInput(_l("The daily digest is for the center's staff."))
    choices = db.session.get(NotificationSettings, user.id)
    before = (
        {"muted_kinds": [], "daily_digest": False}
        if choices is None
        else {"muted_kinds": sorted(choices.muted_kinds), "daily_digest": choices.daily_digest}
    )
    after = {"muted_kinds": [kind.value for kind in muted], "daily_digest": bool(daily_digest)}
    if after == before:
        return False
    if choices is None:
        choices = NotificationSettings(user_id=user.id)
        db.session.add(choices)
    choices.muted_kinds = after["muted_kinds"]
    choices.daily_digest = after["daily_digest"]
    record_event(
        "notification.choices",
        actor=actor,
        object_type="user",
        object_id=user.id,
        before=before,
        after=after,
    )
    db.session.flush()
    return True


# --- delivery ---------------------------------------------------------------------------


@dataclass
class DeliveryReport:
    """What one delivery run did."""

    sent: int = 0
    #: Failed this time; each will be tried again after its back-off.
    retrying: int = 0
    #: Given up (too many attempts or refused for good); kept in the outbox.
    failed: int = 0
    #: The server could not be reached; the run stopped and left the rest for the next one.
    unreachable: bool = False


@dataclass(frozen=True)
class _Claimed:
    """A claimed message as plain data: sending touches neither the session nor a lock."""

    id: int
    to_email: str
    subject: str
    body: str
    created_at: datetime
    #: Attempts so far, this one included.
    attempts: int


class _Unreachable(Exception):
    """The connection, TLS or login failed: no message can go out now."""


def retry_delay(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: 1, 2, 4 … minutes, at most 6 hours."""
    return min(RETRY_CAP, RETRY_BASE * 2 ** min(max(attempts - 1, 0), 30))


def message_id(outbox_id: int, created_at: datetime, sender: str) -> str:
    """The same Message-ID for every attempt to send one outbox row."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    return f"<outbox-{outbox_id}-{created_at:%Y%m%d%H%M%S%f}@{domain}>"


def sender_header(address: str, name: str | None) -> str:
    """The ``From`` header: ``name`` with the address of ``address`` (``MAIL_SENDER``, which
    may carry a name of its own: ``name`` replaces it; without ``name`` it stays)."""
    display, addr_spec = parseaddr(address)
    if not addr_spec:
        return address
    return str(Address(display_name=name or display, addr_spec=addr_spec))


def build_email(message: _Claimed, sender: str) -> EmailMessage:
    """The MIME message: UTF-8 throughout, encoded so that any server carries it intact;
    ``multipart/alternative`` of the plain text and its HTML (:func:`html_body`)."""
    email = EmailMessage(policy=SMTP_POLICY)
    email["From"] = sender
    email["To"] = message.to_email
    if message.subject.isascii():
        email["Subject"] = message.subject
    else:
        # Python's own folding of a long encoded header drops the space where it breaks the
        # line between two encoded words (a quarter of long Cyrillic subjects arrived with
        # two words run together); the older Header class encodes the spaces themselves.
        email.set_raw("Subject", Header(message.subject, "utf-8", header_name="Subject").encode())
    email["Date"] = format_datetime(message.created_at, usegmt=True)
    email["Message-ID"] = message_id(message.id, message.created_at, sender)
    # RFC 3834: vacation responders must not answer the portal.
    email["Auto-Submitted"] = "auto-generated"
    # Base64 keeps the Cyrillic body 7-bit clean, whether or not the server speaks 8BITMIME.
    email.set_content(message.body, charset="utf-8", cte="base64")
    email.add_alternative(html_body(message.body), subtype="html", charset="utf-8", cte="base64")
    return email


def _permanent(error: smtplib.SMTPException) -> bool:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in error.recipients.values())
    # A refused sender is the portal's configuration, not this message: try again later.
    return isinstance(error, smtplib.SMTPDataError) and error.smtp_code >= 500


class _SmtpTransport:
    """One SMTP connection, opened on first use and reused for the whole run."""

    def __init__(self, config) -> None:
        self.config = config
        self.sender = config["MAIL_SENDER"]
        self.smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        config = self.config
        security = config["SMTP_SECURITY"]
        context = ssl.create_default_context()
        if config.get("SMTP_CA_FILE"):
            context.load_verify_locations(cafile=config["SMTP_CA_FILE"])
        host, port, timeout = (
            config["SMTP_HOST"],
            config["SMTP_PORT"],
            config.get("SMTP_TIMEOUT", 30),
        )
        try:
            if security == "ssl":
                smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
            else:
                smtp = smtplib.SMTP(host, port, timeout=timeout)
        except (OSError, smtplib.SMTPException) as error:
            raise _Unreachable(f"{host}:{port}: {error}") from error
        try:
            smtp.ehlo()
            if security == "starttls":
                smtp.starttls(context=context)
                smtp.ehlo()
            if config.get("SMTP_USERNAME"):
                smtp.login(config["SMTP_USERNAME"], config.get("SMTP_PASSWORD", ""))
        # UnicodeError: smtplib sends credentials as ASCII only.
        except (OSError, smtplib.SMTPException, UnicodeError) as error:
            smtp.close()
            raise _Unreachable(f"{host}:{port}: {error}") from error
        return smtp

    def send(self, email: EmailMessage, recipient: str) -> None:
        sender = parseaddr(self.sender)[1] or self.sender
        for second_try in (False, True):
            fresh = self.smtp is None
            if self.smtp is None:
                self.smtp = self._connect()
            try:
                self.smtp.send_message(email, from_addr=sender, to_addrs=[recipient])
                return
            except smtplib.SMTPRecipientsRefused:
                raise  # the session is still usable (smtplib has reset it)
            except smtplib.SMTPServerDisconnected:
                self.close()
                # The server may drop a connection that sat idle between two batches: one
                # new connection is worth a try, a fresh one that drops is a failure.
                if fresh or second_try:
                    raise
            except (OSError, smtplib.SMTPException):
                self.close()
                raise

    def close(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (OSError, smtplib.SMTPException):
                self.smtp.close()
            self.smtp = None


class _LogTransport:
    """Development: the message goes to the log instead of a server."""

    def __init__(self, config) -> None:
        self.sender = config["MAIL_SENDER"]

    def send(self, email: EmailMessage, recipient: str) -> None:
        current_app.logger.info(
            "E-mail not sent (SMTP_HOST is not set).\nFrom: %s\nTo: %s\nSubject: %s\n\n%s",
            self.sender,
            recipient,
            email["Subject"],
            email.get_body(preferencelist=("plain",)).get_content(),
        )

    def close(self) -> None:
        pass


def _transport(config):
    """SMTP when ``SMTP_HOST`` is set; else, in development, the development mailbox
    (``DEV_MAILBOX_DIR``), or the log when there is none."""
    from review_portal.notifications.devmail import MailboxTransport, mailbox_dir

    if config.get("SMTP_HOST"):
        return _SmtpTransport(config)
    directory = mailbox_dir(config)
    if directory:
        return MailboxTransport(config, directory)
    return _LogTransport(config)


def check_mail_config(config) -> None:
    """Refuse settings that would lose or misroute mail, before anything is claimed."""
    if config.get("SMTP_SECURITY") not in SECURITY_MODES:
        raise MailConfigurationError(
            f"SMTP_SECURITY must be one of {', '.join(SECURITY_MODES)}, "
            f"not {config.get('SMTP_SECURITY')!r}"
        )
    ca_file = config.get("SMTP_CA_FILE")
    if ca_file and not os.path.isfile(ca_file):
        raise MailConfigurationError(f"SMTP_CA_FILE {ca_file!r} is not a readable file")
    if not config.get("SMTP_HOST") and config.get("PRODUCTION"):
        # Logging the message and calling it sent would lose every e-mail of a production.
        raise MailConfigurationError("SMTP_HOST is not set; production mail needs a server")


def _claim(batch_size: int) -> list[_Claimed]:
    """Claim up to ``batch_size`` due messages (committed, so other senders skip them)."""
    with unit_of_work():
        now = utcnow()
        rows = db.session.execute(
            select(
                OutboxMessage.id,
                OutboxMessage.to_email,
                OutboxMessage.subject,
                OutboxMessage.body,
                OutboxMessage.created_at,
                OutboxMessage.attempts,
            )
            .where(
                OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.next_attempt_at <= now
            )
            .order_by(OutboxMessage.id)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        ).all()
        if rows:
            db.session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_([row.id for row in rows]))
                .values(attempts=OutboxMessage.attempts + 1, next_attempt_at=now + CLAIM_LEASE)
                .execution_options(synchronize_session=False)
            )
    return [
        _Claimed(
            id=row.id,
            to_email=row.to_email,
            subject=row.subject,
            body=row.body,
            created_at=row.created_at,
            attempts=row.attempts + 1,
        )
        for row in rows
    ]


def _record(message_id_: int, **values) -> None:
    with unit_of_work():
        db.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id_)
            .values(**values)
            .execution_options(synchronize_session=False)
        )


def _record_failure(
    message: _Claimed, error: BaseException | str, report: DeliveryReport, *, permanent: bool
) -> None:
    max_attempts = current_app.config.get("MAIL_MAX_ATTEMPTS", MAX_ATTEMPTS)
    text = (str(error) or type(error).__name__)[:2000]
    if permanent or message.attempts >= max_attempts:
        _record(message.id, status=OutboxStatus.FAILED, last_error=text)
        report.failed += 1
        _log_attempt(message, "failed", logging.ERROR, error=text)
    else:
        _record(
            message.id,
            last_error=text,
            next_attempt_at=utcnow() + retry_delay(message.attempts),
        )
        report.retrying += 1
        _log_attempt(message, "retrying", logging.WARNING, error=text)


def _log_attempt(message: _Claimed, outcome: str, level: int = logging.INFO, **fields) -> None:
    """The one line of a delivery attempt: the outbox id, the attempt and its outcome — not
    the address (a citizen's e-mail is personal data; the outbox row has it)."""
    if message.to_email:  # an SMTP refusal quotes the address
        fields = {k: str(v).replace(message.to_email, "<recipient>") for k, v in fields.items()}
    details = "".join(f" {key}={value}" for key, value in fields.items())
    log.log(
        level,
        "e-mail %s attempt %s %s%s",
        message.id,
        message.attempts,
        outcome,
        details,
        extra={"outbox_id": message.id, "attempt": message.attempts, "outcome": outcome, **fields},
    )


def deliver_outbox(limit: int | None = None, *, batch_size: int = BATCH_SIZE) -> DeliveryReport:
    """Send the due messages (all of them, or at most ``limit``) and record each outcome.

    Commits (claims and outcomes), so call it on its own, not inside a unit of work. Any
    number of runs may overlap: each message is claimed by one of them.
    """
    config = current_app.config
    check_mail_config(config)
    transport = _transport(config)
    with unit_of_work():
        transport.sender = sender_header(config["MAIL_SENDER"], mail_sender_name())
    report = DeliveryReport()
    handled = 0
    try:
        while limit is None or handled < limit:
            size = batch_size if limit is None else min(batch_size, limit - handled)
            claimed = _claim(size)
            if not claimed:
                break
            handled += len(claimed)
            for position, message in enumerate(claimed):
                try:
                    email = build_email(message, transport.sender)
                except (ValueError, TypeError) as error:  # e.g. a malformed address header
                    _record_failure(message, error, report, permanent=True)
                    continue
                try:
                    transport.send(email, message.to_email)
                except _Unreachable as error:
                    for rest in claimed[position:]:
                        _record_failure(rest, error, report, permanent=False)
                    report.unreachable = True
                    return report
                except smtplib.SMTPException as error:
                    _record_failure(message, error, report, permanent=_permanent(error))
                except OSError as error:
                    _record_failure(message, error, report, permanent=False)
                else:
                    _record(message.id, status=OutboxStatus.SENT, sent_at=utcnow())
                    report.sent += 1
                    _log_attempt(message, "sent")
    finally:
        transport.close()
    return report


class MailServerUnreachable(RuntimeError):
    """The SMTP server did not answer: the run stopped, the messages wait for the next."""


def send_mail_job(job_id: int) -> None:
    """Job handler (``send_mail``, scheduled every few minutes): deliver the due messages.
    Delivery commits each outcome itself; the job counts the messages handled, and a mail
    server that cannot be reached fails the job with that error (the messages stay due)."""
    from review_portal.jobs.services import finish_counted

    report = deliver_outbox()
    handled = report.sent + report.retrying + report.failed
    finish_counted(job_id, total=handled, done=report.sent)
    if report.unreachable:
        raise MailServerUnreachable(
            f"the mail server could not be reached ({report.sent} sent before it stopped)"
        )


def tell_provider(program, subject, body, link: str | None = None) -> None:
    """E-mail (outbox) and notify in the portal every active user of the program's
    organization (its applicants), each in their language: ``subject`` and ``body`` are
    lazy strings (``lazy_gettext``)."""
    from review_portal.accounts.models import User
    from review_portal.enums import AccountStatus, Role
    from review_portal.urls import site_path

    users = (
        db.session.execute(
            select(User).where(
                User.organization_id == program.organization_id,
                User.status == AccountStatus.APPROVED,
                User.active.is_(True),
            )
        )
        .scalars()
        .all()
    )
    link = link or site_path("programs.view", program_id=program.id)
    for user in users:
        if not user.has_role(Role.APPLICANT):
            continue
        # Each in their own language (``subject`` and ``body`` are lazy strings).
        tell(user, NotificationKind.PROGRAMS, subject, link=link, body=body)
