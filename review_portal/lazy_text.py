"""Translations without walking Flask's context proxies on every string.

Flask-Babel's ``gettext`` finds the translations through ``g`` three times per call
(``get_domain``, ``get_translations``, ``get_locale``), each a ``LocalProxy`` lookup; a page
printing an enum's label in every row of a table did that hundreds of times (and a lazy
label twice per cell: markupsafe's ``escape`` asks for ``__html__`` and then calls it).
Here the current translations are found from the application context's ``g`` directly (one
``ContextVar`` read) once Flask-Babel has chosen the request's locale, and kept per domain
and locale (catalogs never change while the process runs). The result is the same as
Flask-Babel's: the same catalog and the same ``%`` formatting; ``force_locale`` is honoured
(it sets the locale this reads); outside an application context Flask-Babel answers as
before.

A leaf module (Flask and Flask-Babel only), so :mod:`review_portal.enums` may use it.
"""

from __future__ import annotations

from flask.globals import _cv_app
from flask_babel import LazyString, get_translations

#: Translations by (Flask-Babel domain, locale): the objects Flask-Babel caches itself.
_TRANSLATIONS: dict = {}


def translations():
    """The translations of the current locale (Flask-Babel's own object)."""
    app_ctx = _cv_app.get(None)
    if app_ctx is not None:
        babel_ctx = app_ctx.g.__dict__.get("_flask_babel")
        if babel_ctx is not None:
            locale = getattr(babel_ctx, "babel_locale", None)
            domain = getattr(babel_ctx, "babel_domain", None)
            if locale is not None and domain is not None:
                key = (domain, locale)
                found = _TRANSLATIONS.get(key)
                if found is None:
                    found = _TRANSLATIONS[key] = get_translations()
                return found
    return get_translations()


def current_locale():
    """Flask-Babel's ``get_locale()``, read from the application context directly once
    chosen (``None`` outside a request, as Flask-Babel answers)."""
    app_ctx = _cv_app.get(None)
    if app_ctx is not None:
        babel_ctx = app_ctx.g.__dict__.get("_flask_babel")
        locale = getattr(babel_ctx, "babel_locale", None) if babel_ctx is not None else None
        if locale is not None:
            return locale
    from flask_babel import get_locale

    return get_locale()


def gettext(string: str, **variables) -> str:
    """:func:`flask_babel.gettext`, without the proxy walk."""
    s = translations().ugettext(string)
    return s if not variables else s % variables


def ngettext(singular: str, plural: str, num, **variables) -> str:
    """:func:`flask_babel.ngettext`, without the proxy walk."""
    variables.setdefault("num", num)
    s = translations().ungettext(singular, plural, num)
    return s if not variables else s % variables


def pgettext(context: str, string: str, **variables) -> str:
    """:func:`flask_babel.pgettext`, without the proxy walk."""
    s = translations().upgettext(context, string)
    return s if not variables else s % variables


class _LazyText(LazyString):
    """Flask-Babel's lazy string whose ``__html__`` (asked for by every escape) and
    ``__str__`` translate through :func:`translations`."""

    def __str__(self) -> str:
        return str(self._func(*self._args, **self._kwargs))

    def __html__(self) -> str:
        return str(self._func(*self._args, **self._kwargs))


def lazy_gettext(string: str, **variables) -> LazyString:
    """:func:`flask_babel.lazy_gettext`, translating without the proxy walk."""
    return _LazyText(gettext, string, **variables)


def lazy_pgettext(context: str, string: str, **variables) -> LazyString:
    """:func:`flask_babel.lazy_pgettext`, translating without the proxy walk."""
    return _LazyText(pgettext, context, string, **variables)


def install(app) -> None:
    """Templates' ``_``, ``ngettext``, ``pgettext`` through the functions above (after
    Flask-Babel's ``init_app``, which installs its own)."""
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: translations().ugettext(s),
        ngettext=lambda s, p, n: translations().ungettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: translations().unpgettext(c, s, p, n),
    )


#: WTForms' own messages by locale (Flask-WTF reads their catalog from disk once per request).
_WTFORMS: dict = {}


class WTFormsTranslations:
    """WTForms' messages ("Not a valid choice." ...) in the request's language, the catalog
    read once per process and locale: Flask-WTF's ``translations`` loads it from disk in
    every request that asks for one message (every empty select of a form does, even when
    ``Optional`` then drops the error). Set as a form's ``Meta.get_translations``'s answer."""

    @staticmethod
    def _catalog():
        from flask_babel import get_locale

        locale = get_locale()
        if locale is None:
            return None
        found = _WTFORMS.get(locale)
        if found is None:
            from babel import support
            from wtforms.i18n import messages_path

            found = _WTFORMS[locale] = support.Translations.load(
                messages_path(), [locale], domain="wtforms"
            )
        return found

    def gettext(self, string: str) -> str:
        catalog = self._catalog()
        return string if catalog is None else catalog.ugettext(string)

    def ngettext(self, singular: str, plural: str, n) -> str:
        catalog = self._catalog()
        if catalog is None:
            return singular if n == 1 else plural
        return catalog.ungettext(singular, plural, n)


wtforms_translations = WTFormsTranslations()
