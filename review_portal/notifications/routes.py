"""The notification centre: a user's notifications, newest first (``/notifications``), one
opened (marked read, then its object), all marked read, and the choice of what also comes
by e-mail (``/notifications/settings``). Each user sees their own only."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from review_portal.extensions import db
from review_portal.input_guard import requested_page
from review_portal.notifications import queries, services
from review_portal.notifications.forms import ChoicesForm, OpenForm
from review_portal.notifications.models import Notification
from review_portal.notifications.permissions import (
    can_choose_digest,
    can_open_notification,
    can_read_notifications,
)
from review_portal.permissions import ensure, requires
from review_portal.url_safety import safe_next_url

bp = Blueprint("notifications", __name__, url_prefix="/notifications")

PER_PAGE = 30


@bp.get("")
@requires(can_read_notifications)
def index():
    page = db.paginate(
        queries.newest_first(current_user.id),
        page=requested_page(),
        per_page=PER_PAGE,
        error_out=False,
    )
    # The unread count is the bell's (``unread_notifications()``, counted once a request).
    return render_template("notifications/index.html", page=page)


@bp.post("/<int:notification_id>")
@requires(can_read_notifications)
def open_(notification_id: int):
    """Opening is a form (POST, with the page's token): a link another site shows cannot
    mark anyone's notifications read."""
    notification = db.get_or_404(Notification, notification_id)
    ensure(can_open_notification(current_user, notification))
    if not OpenForm().validate_on_submit():
        abort(400)
    services.mark_read(current_user, notification)
    target = safe_next_url(notification.link)
    if target is None:
        return redirect(url_for("notifications.index", _anchor=f"n{notification.id}"))
    return redirect(target)


@bp.post("/read")
@requires(can_read_notifications)
def read_all():
    count = services.mark_all_read(current_user)
    if count:
        flash(_("All notifications are marked as read (%(count)s).", count=count), "success")
    else:
        flash(_("There are no unread notifications."), "info")
    return redirect(url_for("notifications.index"))


@bp.route("/settings", methods=["GET", "POST"])
@requires(can_read_notifications)
def choices():
    form = ChoicesForm(kinds=services.kinds_for(current_user))
    digest_allowed = can_choose_digest(current_user)
    stored = queries.choices_of(current_user.id)
    muted = list(stored.muted_kinds) if stored else []
    if request.method == "GET":
        form.by_mail.data = [value for value, _label in form.by_mail.choices if value not in muted]
        form.daily_digest.data = bool(stored and stored.daily_digest)
        return render_template(
            "notifications/settings.html", form=form, digest_allowed=digest_allowed
        )
    if not form.validate_on_submit():
        return (
            render_template(
                "notifications/settings.html", form=form, digest_allowed=digest_allowed
            ),
            422,
        )
    if form.daily_digest.data:
        ensure(digest_allowed)
    changed = services.save_choices(
        current_user, current_user, form.muted_kinds(muted), bool(form.daily_digest.data)
    )
    flash(
        _("Your choices are saved.") if changed else _("Nothing was changed."),
        "success" if changed else "info",
    )
    return redirect(url_for("notifications.choices"))
