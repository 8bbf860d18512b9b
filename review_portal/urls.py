"""Building links outside a request (e-mails, notifications, documents).

Links in messages never come from the request's Host header: a forged header would put a
token into a link to another site. Absolute links use ``PUBLIC_URL``.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from flask import current_app


def public_url(endpoint: str, **values) -> str:
    """An absolute link on the portal's public address (``PUBLIC_URL``)."""
    base = urlsplit(current_app.config["PUBLIC_URL"])
    adapter = current_app.url_map.bind(
        base.netloc, script_name=base.path or "/", url_scheme=base.scheme or "https"
    )
    return adapter.build(endpoint, values, force_external=True)


def site_path(endpoint: str, **values) -> str:
    """The path of a page on this portal (for in-app notification links)."""
    return current_app.url_map.bind("localhost").build(endpoint, values)


def absolute_url(link: str) -> str:
    """``link`` as an absolute link on ``PUBLIC_URL``: a path of this portal (what
    :func:`site_path` returns, an in-app notification's link) is put under the public
    address; an absolute link is returned as it is."""
    if urlsplit(link).scheme:
        return link
    return current_app.config["PUBLIC_URL"].rstrip("/") + "/" + link.lstrip("/")


#: What Werkzeug's converters leave unquoted in a path segment (``BaseConverter.to_url``).
PATH_SAFE = "!$&'()*+,/:;=@"
#: A value no link of the portal contains, put where :class:`LinkPattern` fills in.
PLACEHOLDER = "0link0value0"


class LinkPattern:
    """A link built once with :data:`PLACEHOLDER` for one path value, then filled with each
    value as the URL map's default converter writes it: ``url_for`` (or :func:`public_url`)
    once per list instead of once per row."""

    def __init__(self, built: str) -> None:
        self.head, self.tail = built.split(PLACEHOLDER)

    def __call__(self, value) -> str:
        return f"{self.head}{quote(str(value), safe=PATH_SAFE)}{self.tail}"
