"""Template helpers: date formats (DD.MM.YYYY in the portal's time zone), predicates, labels."""

from __future__ import annotations

from datetime import date, datetime

from flask import Flask
from flask_babel import format_datetime, get_locale

from review_portal.permissions import TEMPLATE_PREDICATES
from review_portal.programs.permissions import TEMPLATE_PREDICATES as PROGRAM_PREDICATES


def format_date(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return format_datetime(value, "dd.MM.yyyy")
    if isinstance(value, date):
        return value.strftime("%d.%m.%Y")
    return str(value)


def format_moment(value) -> str:
    if value is None:
        return ""
    return format_datetime(value, "dd.MM.yyyy HH:mm")


def register(app: Flask) -> None:
    app.jinja_env.filters["date"] = format_date
    app.jinja_env.filters["moment"] = format_moment
    app.jinja_env.globals.update(TEMPLATE_PREDICATES)
    app.jinja_env.globals.update(PROGRAM_PREDICATES)
    # base.html sets <html lang> and the language switch from it; Flask-Babel 4 does not
    # expose it to templates by itself.
    app.jinja_env.globals["get_locale"] = get_locale

    @app.context_processor
    def inject_navigation():
        from flask_login import current_user

        from review_portal.main.navigation import navigation_for

        return {"navigation": navigation_for(current_user)}
