"""Rendering a conclusion's content into its PDF with WeasyPrint.

The document is ``templates/conclusions/document.html`` (Jinja, autoescaped) styled by the
print stylesheet ``conclusions/static/conclusion.css`` and set in DejaVu Serif, shipped in
``conclusions/fonts/`` with its license, so a conclusion looks the same on every machine
and its text copies out as Russian.

Safety: WeasyPrint fetches nothing but the package's own assets. Every URL it meets goes
through :func:`asset_fetcher`, which serves the fixed whitelist :data:`ASSETS` under the
private scheme ``portal-asset:`` and refuses everything else (``file:``, ``http(s):``,
``data:``, relative paths, unlisted asset names) with :class:`AssetRefused`. The fetcher is
installed with WeasyPrint's ``fail_on_errors``: a refused URL stops the rendering, and
:func:`render_pdf` / :func:`render_html_bare` turn that (and any other failure) into
:class:`RenderError` — a document that asks for something outside the whitelist is a bug,
never something to print half of. The QR code of the verification link is drawn by
``segno`` as inline SVG, so no image URL is needed at all.

Fonts: the stylesheet names one family, "Portal Serif" (a name no system has), whose
@font-face rules load the packaged DejaVu Serif files. The WeasyPrint font configuration is
built from an empty fontconfig configuration (``fonts/fonts.conf``), so no system font can be
matched or substituted, not even for a glyph DejaVu Serif lacks (that prints as an empty box,
its text still extractable): the PDF embeds only the packaged font and is byte-for-byte the
same on every machine with the same library versions.

Archival: every document comes out as PDF/A-3b with a structure tree and XMP metadata
(:mod:`review_portal.conclusions.archival`); the template gives the title, the language,
the date, the number and the issuing center as ``<html lang>``, ``<title>`` and ``<meta>``.

Content: the template is rendered with strict undefined, so a key missing from the content
fails the rendering (:class:`RenderError`) instead of printing an empty field.

Processes: rendering needs only the content dictionary and an application context (for the
Jinja environment); it reads no request, no user, no database, so a worker process (spawned
or forked) can render a content built elsewhere. The font configuration is built once per
process (the fonts are fetched and registered by the first render, later renders reuse
them); a forked worker notices the new process id and builds its own without touching the
parent's, a spawned one builds it on first use. Within a process, renders are serialised by
a lock (Pango's font map is shared and not thread-safe); a forked child starts with a fresh
lock.
"""

from __future__ import annotations

import atexit
import functools
import os
import threading
import weakref
from pathlib import Path

from flask import current_app
from jinja2 import Environment, StrictUndefined
from markupsafe import Markup

from review_portal.conclusions.archival import PDF_OPTIONS, archival_metadata, color_profiles

#: The private URL scheme of the packaged assets; no system knows it, so nothing else serves it.
ASSET_SCHEME = "portal-asset"
#: Base URL of every rendered document: relative references do not resolve to anything.
BASE_URL = f"{ASSET_SCHEME}:"

_PACKAGE_DIR = Path(__file__).resolve().parent

#: The only URLs WeasyPrint may load: ``portal-asset:<name>`` → (file in this package, type).
ASSETS: dict[str, tuple[str, str]] = {
    "conclusion.css": ("static/conclusion.css", "text/css"),
    "fonts/DejaVuSerif.ttf": ("fonts/DejaVuSerif.ttf", "font/ttf"),
    "fonts/DejaVuSerif-Bold.ttf": ("fonts/DejaVuSerif-Bold.ttf", "font/ttf"),
    "fonts/DejaVuSerif-Italic.ttf": ("fonts/DejaVuSerif-Italic.ttf", "font/ttf"),
    "fonts/DejaVuSerif-BoldItalic.ttf": ("fonts/DejaVuSerif-BoldItalic.ttf", "font/ttf"),
}

#: Fontconfig configuration without font directories: only the @font-face fonts exist.
FONTCONFIG_FILE = _PACKAGE_DIR / "fonts" / "fonts.conf"

TEMPLATE = "conclusions/document.html"

#: The QR code's title: its alternative text in the tagged PDF.
QR_TITLE = "QR-код ссылки на страницу проверки подлинности"


class RenderError(Exception):
    """The PDF could not be produced."""


class AssetRefused(ValueError):
    """A URL outside the packaged-asset whitelist was asked for."""


def asset_name(url: str) -> str:
    """The whitelisted asset a URL names, or :class:`AssetRefused`."""
    prefix = BASE_URL
    if not isinstance(url, str) or not url.startswith(prefix):
        raise AssetRefused(f"refused URL (not a packaged asset): {str(url)[:200]!r}")
    name = url[len(prefix) :]
    if name not in ASSETS:
        raise AssetRefused(f"refused URL (unknown packaged asset): {url[:200]!r}")
    return name


@functools.cache
def asset_bytes(name: str) -> bytes:
    """The bytes of a whitelisted asset (read once per process)."""
    relative, _media_type = ASSETS[name]
    return (_PACKAGE_DIR / relative).read_bytes()


def asset_fetcher(url: str):
    """WeasyPrint's URL fetcher: a whitelisted packaged asset, or :class:`AssetRefused`.

    Returns a ``weasyprint.urls.URLFetcherResponse``; it never opens a file, a socket or a
    ``data:`` URL.
    """
    from weasyprint.urls import URLFetcherResponse

    name = asset_name(url)
    media_type = ASSETS[name][1]
    content_type = f"{media_type}; charset=utf-8" if media_type == "text/css" else media_type
    return URLFetcherResponse(url, body=asset_bytes(name), headers={"Content-Type": content_type})


@functools.cache
def _fetcher_class():
    from weasyprint.urls import URLFetcher

    class AssetFetcher(URLFetcher):
        """WeasyPrint's fetcher interface around :func:`asset_fetcher`; refusals are fatal."""

        def __init__(self):
            super().__init__(allowed_protocols=(ASSET_SCHEME,), fail_on_errors=True)

        def fetch(self, url, headers=None):
            return asset_fetcher(url)

    return AssetFetcher


_lock = threading.Lock()
_fonts: tuple[int, object] | None = None


def _after_fork_in_child() -> None:
    # A thread of the parent may have held the lock at the fork: the child starts unlocked.
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _isolated_font_configuration():
    """A WeasyPrint font configuration that sees no system font (see ``fonts/fonts.conf``).

    Fontconfig reads ``FONTCONFIG_FILE`` when a configuration is created; it is pointed at
    the packaged empty configuration only for that moment. WeasyPrint's own import-time
    check of the system configuration has run before (the import comes first).
    """
    from weasyprint.text.fonts import FontConfiguration

    previous = os.environ.get("FONTCONFIG_FILE")
    os.environ["FONTCONFIG_FILE"] = str(FONTCONFIG_FILE)
    try:
        return FontConfiguration()
    finally:
        if previous is None:
            os.environ.pop("FONTCONFIG_FILE", None)
        else:
            os.environ["FONTCONFIG_FILE"] = previous


def font_configuration():
    """This process's WeasyPrint font configuration (built on first use, then reused).

    The packaged fonts are fetched and registered by the first render; later renders find
    them registered. Call with the render lock held.
    """
    global _fonts
    pid = os.getpid()
    if _fonts is None or _fonts[0] != pid:
        if _fonts is not None:
            # Inherited through fork: its temporary font folder belongs to the parent, which
            # still uses it; this process must not delete it when the object is collected.
            _fonts[1]._folder = None
        if _fonts is None:
            atexit.register(_drop_font_configuration)
        _fonts = (pid, _isolated_font_configuration())
    return _fonts[1]


def _drop_font_configuration() -> None:
    """Free the configuration (and its temporary font folder) while the interpreter is
    still whole: collected at shutdown, WeasyPrint's cleanup finds its modules gone."""
    global _fonts
    if _fonts is not None and _fonts[0] == os.getpid():
        _fonts = None


def ru_number(value) -> str:
    """A number as a Russian document writes it: ``15.5`` → ``15,5``."""
    if value is None:
        return "—"
    return str(value).replace(".", ",")


def iso_date(value: str) -> str:
    """A document's date as its metadata writes it: ``07.12.2026`` → ``2026-12-07``."""
    day, month, year = value.split(".")
    return f"{year}-{month}-{day}"


def qr_svg(url: str) -> Markup:
    """The QR code of ``url`` as inline SVG (segno's own markup, holding no user text)."""
    import segno

    code = segno.make(url, error="m", micro=False)
    svg = code.svg_inline(
        scale=1, border=4, omitsize=True, svgclass="qr", dark="#000", title=QR_TITLE
    )
    return Markup(svg)


_strict_environments: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _document_environment(app_environment: Environment) -> Environment:
    """The application's Jinja environment (loaders, autoescape) with strict undefined.

    A key missing from the content fails the rendering instead of printing an empty field.
    The overlay has its own template cache: a template compiled by the lenient environment
    would stay bound to it.
    """
    environment = _strict_environments.get(app_environment)
    if environment is None:
        environment = app_environment.overlay(undefined=StrictUndefined, cache_size=50)
        _strict_environments[app_environment] = environment
    return environment


def conclusion_html(content: dict, template: str = TEMPLATE) -> str:
    """The HTML of the conclusion with ``content`` (or of another numbered document of the
    portal, by its ``template``: the decision on an appeal); needs an app context, no request.

    The template is rendered from the application's Jinja environment directly, without the
    request's context processors: the document depends on its content alone.
    """
    template = _document_environment(current_app.jinja_env).get_template(template)
    return template.render(
        c=content, num=ru_number, iso_date=iso_date, qr=qr_svg(content["verify_url"])
    )


def render_html_bare(html: str) -> bytes:
    """PDF bytes of ``html`` with the conclusions' fetcher, fonts and base URL, as an archival
    PDF (PDF/A-3b, tagged: :mod:`review_portal.conclusions.archival`).

    A URL outside the whitelist makes it raise :class:`RenderError`, as any other failure.
    """
    try:
        from weasyprint import HTML
        from weasyprint.urls import FatalURLFetchingError
    except Exception as error:  # noqa: BLE001 - a broken installation is a render failure
        raise RenderError(f"WeasyPrint is unavailable: {error}") from error
    try:
        with _lock:
            source = HTML(string=html, base_url=BASE_URL, url_fetcher=_fetcher_class()())
            document = source.render(
                font_config=font_configuration(), color_profiles=color_profiles(), **PDF_OPTIONS
            )
            document.metadata = archival_metadata(document.metadata)
            return document.write_pdf(**PDF_OPTIONS)
    except FatalURLFetchingError as error:  # a BaseException in WeasyPrint
        cause = error.__cause__ or error
        raise RenderError(str(cause)) from error
    except Exception as error:  # noqa: BLE001 - any failure of the renderer
        raise RenderError(f"{type(error).__name__}: {error}") from error


def render_pdf(content: dict, template: str = TEMPLATE) -> bytes:
    """The PDF of the conclusion with ``content`` (``template``: another document of the
    portal); any failure raises :class:`RenderError`.

    Works in any process given the content dictionary and an application context.
    """
    try:
        html = conclusion_html(content, template)
    except Exception as error:  # noqa: BLE001 - a template failure is a render failure
        raise RenderError(f"{type(error).__name__}: {error}") from error
    return render_html_bare(html)
