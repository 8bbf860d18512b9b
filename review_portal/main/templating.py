"""Template helpers: date formats (DD.MM.YYYY in the portal's time zone), predicates, labels."""

from __future__ import annotations

from datetime import date, datetime, time

from flask import Flask, request
from flask_babel import get_locale
from markupsafe import Markup

from review_portal.conclusions.permissions import TEMPLATE_PREDICATES as CONCLUSION_PREDICATES
from review_portal.permissions import TEMPLATE_PREDICATES
from review_portal.programs.permissions import TEMPLATE_PREDICATES as PROGRAM_PREDICATES
from review_portal.reconciliation.permissions import (
    TEMPLATE_PREDICATES as RECONCILIATION_PREDICATES,
)
from review_portal.registry.permissions import TEMPLATE_PREDICATES as REGISTRY_PREDICATES
from review_portal.reviews.queries import expert_number


def _local(moment) -> datetime:
    """``moment`` in the portal's time zone, as Flask-Babel's ``format_datetime`` converts
    it (a date is its midnight, a naive moment UTC) — without parsing a Babel pattern per
    call: the formats below are digits and dots in every language."""
    from review_portal.i18n import local_moment

    if not isinstance(moment, datetime):
        moment = datetime.combine(moment, time())
    return local_moment(moment)


def format_date(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return _local(value).strftime("%d.%m.%Y")
    if isinstance(value, date):
        return value.strftime("%d.%m.%Y")
    return str(value)


def format_moment(value) -> str:
    if value is None:
        return ""
    return _local(value).strftime("%d.%m.%Y %H:%M")


def tel_href(phone: str | None) -> str | None:
    """A ``tel:`` link for a phone number as people type it (``+7 (4812) 00-00-00``): its
    digits with the leading plus; ``None`` when it has too few digits to dial."""
    text = (phone or "").strip()
    digits = "".join(c for c in text if c.isascii() and c.isdigit())
    if len(digits) < 5:
        return None
    return f"tel:{'+' if text.startswith('+') else ''}{digits}"


def registry_kind_label(value):
    """The label of a registry kind given by its value (the value itself when unknown)."""
    from review_portal.enums import RegistryKind

    try:
        return RegistryKind(value).label
    except ValueError:
        return value


def url_for_cached(app: Flask):
    """Templates' ``url_for``: Flask's, with the answers for an endpoint alone or a static
    file kept (a page asks for twenty, each a walk of the URL map). Kept per application by
    (script root, endpoint, file name): the same for every request, as the URL map never
    changes and the portal registers no URL defaults; bounded, as both sets are."""
    flask_url_for = app.url_for
    urls: dict[tuple, str] = {}

    def url_for(endpoint: str, **values) -> str:
        if endpoint.startswith(".") or (values and values.keys() != {"filename"}):
            return flask_url_for(endpoint, **values)
        key = (request.script_root, endpoint, values.get("filename"))
        found = urls.get(key)
        if found is None:
            found = flask_url_for(endpoint, **values)
            if len(urls) < 1000:
                urls[key] = found
        return found

    return url_for


def scale_radios(app: Flask):
    """Templates' ``scale_radios(rubric, c, chosen, error, disabled)``: a criterion's scale
    as radio buttons (``rubrics/_scale_radios.html``), rendered once per rubric file,
    criterion and state and then kept per application: a score sheet renders five of them
    for each of its criteria, and they are the same for every sheet of that rubric."""
    kept: dict[tuple, Markup] = {}

    def render(rubric, c, chosen, error, disabled) -> Markup:
        key = (
            rubric.id,
            rubric.version,
            rubric.sha256,
            c.id,
            None if chosen is None else str(chosen),
            bool(error),
            bool(disabled),
        )
        found = kept.get(key)
        if found is None:
            template = app.jinja_env.get_template("rubrics/_scale_radios.html")
            found = Markup(
                template.render(rubric=rubric, c=c, chosen=chosen, error=error, disabled=disabled)
            )
            if len(kept) >= 20_000:
                kept.clear()
            kept[key] = found
        return found

    return render


def register(app: Flask) -> None:
    from review_portal.i18n import format_points, format_size, quote_in

    def quoted(text) -> str:
        """A program's title in the page language's quotation marks (inner ones „…“)."""
        locale = get_locale()
        return quote_in(locale.language if locale is not None else "ru", text)

    app.jinja_env.filters["date"] = format_date
    app.jinja_env.filters["moment"] = format_moment
    app.jinja_env.filters["points"] = format_points
    app.jinja_env.filters["filesize"] = format_size
    app.jinja_env.filters["tel_href"] = tel_href
    app.jinja_env.filters["quoted"] = quoted
    app.jinja_env.filters["registry_kind"] = registry_kind_label
    app.jinja_env.globals.update(TEMPLATE_PREDICATES)
    app.jinja_env.globals.update(PROGRAM_PREDICATES)
    app.jinja_env.globals.update(RECONCILIATION_PREDICATES)
    app.jinja_env.globals.update(CONCLUSION_PREDICATES)
    app.jinja_env.globals.update(REGISTRY_PREDICATES)
    app.jinja_env.globals["expert_number"] = expert_number
    # base.html sets <html lang> and the language switch from it; Flask-Babel 4 does not
    # expose it to templates by itself.
    app.jinja_env.globals["get_locale"] = get_locale
    app.jinja_env.globals["url_for"] = url_for_cached(app)
    app.jinja_env.globals["scale_radios"] = scale_radios(app)

    def unread_notifications() -> int:
        """The signed-in user's unread notifications, counted once per request (the bell)."""
        from flask import g
        from flask_login import current_user

        from review_portal.notifications.queries import unread_count

        if "unread_notifications" not in g:
            g.unread_notifications = unread_count(current_user.id)
        return g.unread_notifications

    app.jinja_env.globals["unread_notifications"] = unread_notifications

    @app.context_processor
    def inject_navigation():
        """The navigation bar, built once per request and user (a page rendering several
        templates, an error page after a page, asks again)."""
        from flask import g
        from flask_login import current_user

        from review_portal.db import loaded_id
        from review_portal.main.navigation import navigation_for

        user = current_user._get_current_object()
        held = g.get("_navigation")
        if held is None or held[0] != loaded_id(user):
            held = g._navigation = (loaded_id(user), navigation_for(user))
        return {"navigation": held[1]}
