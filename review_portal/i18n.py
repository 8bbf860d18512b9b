"""Choosing the interface language and time zone, and formatting dates as DD.MM.YYYY."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from flask import current_app, has_request_context, request, session
from flask_login import current_user


def select_locale() -> str:
    """The language chosen with the switch, else the user's, else Russian (the default)."""
    languages = current_app.config["LANGUAGES"]
    if not has_request_context():
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    chosen = session.get("locale")
    if chosen in languages:
        return chosen
    if getattr(current_user, "is_authenticated", False) and current_user.locale in languages:
        return current_user.locale
    if request.args.get("lang") in languages:
        return request.args["lang"]
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def local_date(moment: datetime) -> date:
    """The date of ``moment`` in the portal's time zone: the date deadlines count in and
    documents print (a naive moment is taken as UTC)."""
    from review_portal.settings.services import get_setting

    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(ZoneInfo(get_setting("timezone"))).date()


def select_timezone() -> str:
    from review_portal.settings.services import get_setting

    return get_setting("timezone")
