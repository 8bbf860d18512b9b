"""``/dev/mail``: the development mailbox, newest first, and one message with its headers
and text. Registered by the application factory only when a development mailbox is
configured (:func:`review_portal.notifications.devmail.mailbox_dir`), so elsewhere — in
production, and in testing unless a test sets ``DEV_MAILBOX_DIR`` — the address is a 404."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template

from review_portal.input_guard import requested_page
from review_portal.notifications.devmail import linkify, list_messages, mailbox_dir, read_message
from review_portal.notifications.permissions import can_read_dev_mail
from review_portal.permissions import requires

bp = Blueprint("devmail", __name__)


def _directory() -> str:
    directory = mailbox_dir(current_app.config)
    if directory is None:  # the blueprint is not registered then; a safeguard
        abort(404)
    return directory


@bp.get("/dev/mail")
@requires(can_read_dev_mail)
def index():
    directory = _directory()
    return render_template(
        "notifications/dev_mail.html",
        listing=list_messages(directory, requested_page()),
        directory=directory,
    )


@bp.get("/dev/mail/<key>")
@requires(can_read_dev_mail)
def message(key: str):
    view = read_message(_directory(), key)
    if view is None:
        abort(404)
    return render_template("notifications/dev_message.html", message=view, body=linkify(view.body))
