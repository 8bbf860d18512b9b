"""Choosing the interface language and time zone, and formatting dates as DD.MM.YYYY.

A message to a person (an e-mail, an in-app notification) is written in *their* language,
not in the language of the request that caused it: :func:`in_language_of`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel import numbers
from flask import current_app, has_request_context, request, session
from flask_babel import force_locale
from flask_login import current_user

from review_portal.lazy_text import current_locale
from review_portal.quotes import quote_in  # noqa: F401 - i18n.quote_in, as before


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


def language_of(user) -> str:
    """The language ``user`` reads the portal in (their chosen one), else the default
    one; ``None`` (an address with no account yet) gets the default one too."""
    languages = current_app.config["LANGUAGES"]
    chosen = getattr(user, "locale", None)
    return chosen if chosen in languages else current_app.config["BABEL_DEFAULT_LOCALE"]


@contextmanager
def in_language_of(user) -> Iterator[None]:
    """Translate (and format) in ``user``'s language inside the block."""
    with force_locale(language_of(user)):
        yield


def local_moment(moment: datetime) -> datetime:
    """``moment`` in the portal's time zone (a naive moment is taken as UTC)."""
    from review_portal.settings.services import get_setting

    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(ZoneInfo(get_setting("timezone")))


def local_date(moment: datetime) -> date:
    """The date of ``moment`` in the portal's time zone: the date deadlines count in and
    documents print (a naive moment is taken as UTC)."""
    return local_moment(moment).date()


def select_timezone() -> str:
    from review_portal.settings.services import get_setting

    return get_setting("timezone")


def format_points(value) -> str:
    """A score or total without trailing zeros, with the locale's decimal separator
    (``13.50`` → ``13,5`` in Russian)."""
    if value is None or value == "":
        return ""
    number = Decimal(str(value))
    locale = current_locale()
    if locale is None:  # outside a request: Babel's default locale, as Flask-Babel does
        return numbers.format_decimal(number, format=POINTS_FORMAT, locale=None)
    return _POINTS_PATTERN.apply(number, locale)


#: The pattern of :func:`format_points`, parsed once (Babel parses it on every call).
POINTS_FORMAT = "#,##0.##"
_POINTS_PATTERN = numbers.parse_pattern(POINTS_FORMAT)


def format_size(size: int) -> str:
    """A file's size as the pages show it (``1,2 МБ``, ``35 КБ``): the ``filesize`` filter."""
    from flask_babel import format_decimal
    from flask_babel import gettext as _

    if size >= 1048576:
        return _("%(size)s MB", size=format_decimal(size / 1048576, format="0.0"))
    return _("%(size)s KB", size=format_decimal((size + 1023) // 1024))


def quote(text):
    """``text`` (a program's title) in quotation marks, in the language the message is
    rendered in: lazy, so a message composed for one reader and rendered in another's
    language (:func:`in_language_of`) quotes in theirs. See :func:`quote_in`."""
    from flask_babel import LazyString, get_locale
    from markupsafe import escape

    class QuotedText(LazyString):
        """The title is the user's text: escaped where markup is made of it (Flask-Babel's
        lazy string passes itself through ``escape`` as markup)."""

        def __html__(self) -> str:
            return str(escape(str(self)))

    def render() -> str:
        locale = get_locale()
        return quote_in(locale.language if locale is not None else "ru", text)

    return QuotedText(render)
