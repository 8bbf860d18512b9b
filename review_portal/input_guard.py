"""The first line of the input layer: what every request must satisfy before a view reads it.

* Integers in URLs are ASCII digits within the database's integer range (1 to 2³¹−1, the
  ``integer`` column of PostgreSQL): anything else does not match the route (404), so no
  20-digit id reaches a query.
* Text in the query string, the form fields and the URL refuses NUL and the other control
  characters (tab, line feed and carriage return are text): a clear 400 in the interface
  language, before anything is read or written (PostgreSQL cannot store NUL at all).
* JSON bodies are bounded in size and nesting depth before they are parsed, and their
  strings follow the same rule as form text.

Each refusal is a :class:`BadInput` domain error, answered by the one handler of
:mod:`review_portal.main.errors` (JSON for JSON clients, a message on the form's page
after a form, otherwise the error page).
"""

from __future__ import annotations

import builtins
import json
import re

from flask import Flask, current_app, request
from flask_babel import lazy_gettext as _l
from werkzeug.routing import IntegerConverter

from review_portal.errors import DomainError

#: The largest value of a PostgreSQL ``integer`` column (ids and counts).
DB_INT_MAX = 2**31 - 1
#: Control characters refused in text: all but tab, line feed and carriage return (as a
#: character range of a regular expression, which the API's document repeats).
CONTROL_RANGE = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f"
CONTROL = re.compile(f"[{CONTROL_RANGE}]")
#: The largest JSON body read, and its deepest nesting (an autosave is a few kilobytes,
#: two levels deep).
JSON_MAX_BYTES = 512 * 1024
JSON_MAX_DEPTH = 20


class BadInput(DomainError):
    """The request itself is malformed (characters, size, nesting): nothing was read."""

    status = 400


class DatabaseIntConverter(IntegerConverter):
    """``<int:...>`` of every route: 1 to ten ASCII digits, at most :data:`DB_INT_MAX`.

    Werkzeug's own converter matches any Unicode digit (``\\d``) and any length, so
    ``/programs/٢`` was program 2 and a 20-digit id overflowed the database driver."""

    regex = r"[0-9]{1,10}"

    def __init__(self, map, fixed_digits=0, min=None, max=None, signed=False):  # noqa: A002
        super().__init__(
            map,
            fixed_digits=fixed_digits,
            min=1 if min is None else min,
            max=DB_INT_MAX if max is None else builtins.min(max, DB_INT_MAX),
            signed=False,
        )


def has_control(text: str) -> bool:
    return CONTROL.search(text) is not None


def refuse_bad_text() -> None:
    """Before every view: the query string, the form fields, the URL's own values and a
    JSON body (forms read JSON bodies too, so it is checked before anything parses it)."""
    if request.is_json and request.content_length != 0:
        view = current_app.view_functions.get(request.endpoint)
        if not getattr(view, "accepts_json", False):
            # A form's page: WTForms would read a JSON object's values (lists, objects)
            # where it expects text.
            raise BadInput(_l("This address accepts a form, not JSON."))
        bounded_json()
    # Every value of a repeated field, not only the first (``MultiDict.values`` gives one).
    texts = [*request.args.keys(), *(v for vs in request.args.listvalues() for v in vs)]
    if request.method in ("POST", "PUT", "PATCH") and not request.is_json:
        texts += [*request.form.keys(), *(v for vs in request.form.listvalues() for v in vs)]
    texts += [v for v in (request.view_args or {}).values() if isinstance(v, str)]
    if any(has_control(text) for text in texts):
        raise BadInput(_l("The request contains characters that are not allowed (such as NUL)."))


def bounded_json() -> object | None:
    """The request's JSON body, parsed after checking its size, its nesting depth and its
    strings; ``None`` when the body is not JSON at all (the caller answers that)."""
    raw = request.get_data(cache=True)
    if len(raw) > JSON_MAX_BYTES:
        raise BadInput(_l("The request is too large."))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if json_depth(text) > JSON_MAX_DEPTH:
        raise BadInput(_l("The request is nested too deeply."))
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if any(has_control(s) for s in _strings(value)):
        raise BadInput(_l("The request contains characters that are not allowed (such as NUL)."))
    return value


def json_depth(text: str) -> int:
    """The deepest nesting of ``[`` and ``{`` outside strings (a scan, no recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _strings(value):
    """Every string in a parsed JSON value, keys included (iterative: no recursion)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


#: The furthest page of a paginated list (50 rows a page: five million rows).
PAGE_MAX = 100_000


def parse_db_int(raw: str | None, maximum: int = DB_INT_MAX) -> int | None:
    """A number typed in a URL or query string: ASCII digits from 1 to ``maximum`` (an id by
    default), else ``None``."""
    if not raw or not (raw.isascii() and raw.isdigit()) or len(raw) > 10:
        return None
    number = int(raw)
    return number if 0 < number <= maximum else None


def requested_page() -> int:
    """``?page=`` of a paginated list: ASCII digits from 1 to :data:`PAGE_MAX`, else the
    first page (as an unreadable page number always was)."""
    return parse_db_int(request.args.get("page"), PAGE_MAX) or 1


def accepts_json(view):
    """Mark a view that reads a JSON body (every other one refuses JSON)."""
    view.accepts_json = True
    return view


def init_app(app: Flask) -> None:
    """Bounded ids in every route (before any blueprint adds its rules) and the text check."""
    app.url_map.converters["int"] = DatabaseIntConverter
    app.before_request(refuse_bad_text)
