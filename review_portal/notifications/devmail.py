"""The development mailbox: what the portal delivers without an SMTP server, kept as real
RFC 5322 messages in a Maildir (``DEV_MAILBOX_DIR``) and read on ``/dev/mail``; and the
web process's look at the outbox every few seconds (``DEV_MAIL_EVERY``), which sends what is
due by a ``send_mail`` job, so that a newcomer sees every message without SMTP or cron.

* :class:`MailboxTransport` is the transport :func:`~review_portal.notifications.services.
  deliver_outbox` uses when there is no ``SMTP_HOST`` and a mailbox is configured: the same
  claim, send and record as with SMTP, so an outbox row becomes ``sent`` exactly the same
  way; the message is stored as the server would have received it.
* :func:`list_messages` and :func:`read_message` read the mailbox for the pages; a
  message is named by its Maildir key, checked against :data:`KEY` and then looked up
  among the keys the mailbox lists (a name is never joined to a path).
* :class:`MailTicker` is a daemon thread of the web process: every ``DEV_MAIL_EVERY``
  seconds, when a message is due, it runs the periodic ``send_mail`` job
  (:func:`review_portal.jobs.worker.run_periodic`, as Celery beat does); when nothing is
  due it creates no job. It starts with the first request a process serves, so only a
  serving process runs it: not ``flask db upgrade``, ``seed-demo`` or the reloader's
  watching parent, which load the application but serve nothing.

Never in production: :func:`mailbox_dir` is empty there whatever the settings say (and
production refuses to deliver without ``SMTP_HOST`` anyway), and neither the pages nor the
thread exist.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask
from markupsafe import Markup, escape

from review_portal.extensions import db

if TYPE_CHECKING:
    import mailbox

log = logging.getLogger(__name__)

#: A message's name in URLs: a Maildir key (``<seconds>.M<µs>P<pid>Q<n>.<host>``, the host
#: with ``/`` and ``:`` written as ``\057`` and ``\072``), at most 128 characters.
KEY = re.compile(r"[A-Za-z0-9._\\-]{1,128}")
_KEY_ORDER = re.compile(r"(\d+)\.M(\d+)P(\d+)Q(\d+)")
#: Messages per page of the list.
PAGE_SIZE = 50
#: Addresses made into links in a message's text.
_LINK = re.compile(r"https?://[^\s<>\"'«»]+")
#: Trailing characters that end a sentence rather than the address.
_LINK_TAIL = ".,;:!?)]»"
#: The headers the list shows.
_SUMMARY_HEADERS = ("From", "To", "Subject", "Date")
#: Extension key of an application's ticker.
TICKER = "review_portal.dev_mail_ticker"


def mailbox_dir(config) -> str | None:
    """The development mailbox's directory, or ``None``: never in production."""
    if config.get("PRODUCTION"):
        return None
    return str(config.get("DEV_MAILBOX_DIR") or "") or None


def _open(directory: str, create: bool) -> mailbox.Maildir | None:
    import mailbox

    path = Path(directory)
    if not create and not (path / "cur").is_dir():
        return None
    if create:
        for sub in ("tmp", "new", "cur"):
            (path / sub).mkdir(parents=True, exist_ok=True)
    return mailbox.Maildir(path, factory=None, create=False)


class MailboxTransport:
    """Development: each message is delivered into the Maildir, as a local mail server
    would (with the envelope's recipient as ``Delivered-To``)."""

    def __init__(self, config, directory: str) -> None:
        self.sender = config["MAIL_SENDER"]
        self.directory = directory
        self.mailbox: mailbox.Maildir | None = None

    def send(self, email: EmailMessage, recipient: str) -> None:
        if self.mailbox is None:
            self.mailbox = _open(self.directory, create=True)
        email["Delivered-To"] = recipient
        # Line ends as the files of a Maildir have them; the bytes are otherwise those the
        # SMTP server would get (base64 UTF-8 body, encoded headers).
        self.mailbox.add(email.as_bytes(policy=email.policy.clone(linesep="\n")))

    def close(self) -> None:
        self.mailbox = None


@dataclass(frozen=True)
class MessageSummary:
    key: str
    sender: str
    to: str
    subject: str
    date: datetime | None


@dataclass(frozen=True)
class MessagePage:
    messages: list[MessageSummary]
    page: int
    pages: int
    total: int


@dataclass(frozen=True)
class MessageView:
    key: str
    subject: str
    date: datetime | None
    #: Every header, in the message's order, decoded.
    headers: list[tuple[str, str]]
    #: The text body, decoded.
    body: str


def _order(key: str) -> tuple[int, ...]:
    """Delivery order from the key (time, microseconds, process, counter); keys of other
    shapes count as oldest."""
    match = _KEY_ORDER.match(key)
    return tuple(int(part) for part in match.groups()) if match else (0, 0, 0, 0)


def _date(message) -> datetime | None:
    header = message["Date"]
    return getattr(header, "datetime", None) if header is not None else None


def _parse(data: bytes, headers_only: bool = False):
    return BytesParser(policy=default_policy).parsebytes(data, headersonly=headers_only)


def list_messages(directory: str, page: int = 1, per_page: int = PAGE_SIZE) -> MessagePage:
    """One page of the mailbox, newest first (only that page's files are read); a page past
    the last is the last."""
    box = _open(directory, create=False)
    keys = sorted(box.keys(), key=_order, reverse=True) if box is not None else []
    pages = max(1, -(-len(keys) // per_page))
    page = min(max(1, page), pages)
    summaries = []
    for key in keys[(page - 1) * per_page : page * per_page]:
        try:
            message = _parse(box.get_bytes(key), headers_only=True)
        except (KeyError, FileNotFoundError):  # removed since the listing
            continue
        summaries.append(
            MessageSummary(
                key=key,
                sender=str(message["From"] or ""),
                to=str(message["To"] or ""),
                subject=str(message["Subject"] or ""),
                date=_date(message),
            )
        )
    return MessagePage(messages=summaries, page=page, pages=pages, total=len(keys))


def read_message(directory: str, key: str) -> MessageView | None:
    """The message named ``key``, or ``None`` when no message of the mailbox has that name."""
    if not KEY.fullmatch(key):
        return None
    box = _open(directory, create=False)
    if box is None:
        return None
    try:
        # The key is looked up among the names the mailbox lists, never joined to a path.
        data = box.get_bytes(key)
    except (KeyError, FileNotFoundError):
        return None
    message = _parse(data)
    part = message.get_body(preferencelist=("plain",))
    # A text travels with CRLF line ends (its canonical form, inside the base64).
    body = part.get_content().replace("\r\n", "\n") if part is not None else ""
    return MessageView(
        key=key,
        subject=str(message["Subject"] or ""),
        date=_date(message),
        headers=[(name, str(value)) for name, value in message.items()],
        body=body,
    )


def linkify(text: str) -> Markup:
    """``text`` escaped, with its http(s) addresses made into links."""
    pieces: list[str] = []
    position = 0
    for match in _LINK.finditer(text):
        url = match.group().rstrip(_LINK_TAIL)
        start, end = match.start(), match.start() + len(url)
        pieces.append(escape(text[position:start]))
        pieces.append(Markup('<a href="{0}" rel="noopener noreferrer">{0}</a>').format(escape(url)))
        position = end
    pieces.append(escape(text[position:]))
    return Markup("").join(pieces)


class MailTicker:
    """The web process's look at the outbox every ``every`` seconds (see the module)."""

    def __init__(self, app: Flask, every: float) -> None:
        self.app = app
        self.every = every
        self.thread: threading.Thread | None = None
        self.pid: int | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._last_error: str | None = None

    def ensure_started(self) -> None:
        """Start the thread in this process, once (a forked process starts its own)."""
        if self.pid == os.getpid():
            return
        with self._lock:
            if self.pid == os.getpid():
                return
            self._stop.clear()
            self.thread = threading.Thread(target=self._run, name="dev-mail", daemon=True)
            self.thread.start()
            self.pid = os.getpid()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        if self.thread is not None:
            self.thread.join(timeout)

    def tick(self) -> int | None:
        """Run the ``send_mail`` job when a message is due; its id (``None``: nothing due,
        no job made, or one still unfinished)."""
        from review_portal.jobs.services import SEND_MAIL
        from review_portal.jobs.worker import run_periodic
        from review_portal.notifications.queries import due_message_exists

        with self.app.app_context():
            try:
                if not due_message_exists():
                    return None
                return run_periodic(SEND_MAIL)
            finally:
                db.session.remove()

    def _resume(self) -> None:
        """A ``send_mail`` job left unfinished by a process that stopped (Ctrl+C during a
        delivery) would hold every later run back: run it again first."""
        from review_portal.jobs.services import SEND_MAIL
        from review_portal.jobs.worker import resume_unfinished

        with self.app.app_context():
            try:
                resume_unfinished(SEND_MAIL)
            finally:
                db.session.remove()

    def _run(self) -> None:
        first = True
        while True:
            try:
                if first:
                    self._resume()
                    first = False
                self.tick()
                self._last_error = None
            except Exception as error:  # noqa: BLE001 - a thread has nobody to raise to
                # Logged with its traceback once, not every few seconds while it lasts.
                text = f"{type(error).__name__}: {error}"
                if text != self._last_error:
                    log.exception("development mail delivery failed; trying again")
                    self._last_error = text
            if self._stop.wait(self.every):
                return


def init_ticker(app: Flask) -> MailTicker | None:
    """In a development process whose jobs run in its threads, with ``DEV_MAIL_EVERY`` set:
    a ticker started by the first request the process serves."""
    from review_portal.jobs.services import runner_mode

    every = float(app.config.get("DEV_MAIL_EVERY") or 0)
    if app.config.get("PRODUCTION") or every <= 0 or runner_mode(app) != "thread":
        return None
    ticker = MailTicker(app, every)
    app.extensions[TICKER] = ticker
    app.before_request(ticker.ensure_started)
    return ticker
