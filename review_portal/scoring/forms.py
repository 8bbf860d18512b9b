"""Reading a score sheet from a posted form or an autosave's JSON, and the reopen form.

Both give the same :class:`~review_portal.scoring.services.SheetInput`, so the plain Save
button (JavaScript off) and the autosave store exactly the same things.
"""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length

from review_portal.input_guard import DB_INT_MAX
from review_portal.scoring.compute import RubricView
from review_portal.scoring.services import SheetInput


class BadInput(ValueError):
    """The request is not a score sheet (a malformed revision or score)."""


#: A score or revision as sent: ASCII digits only (``int("٢")`` would read 2).
_INTEGER = re.compile(r"-?[0-9]{1,9}")


def _int_or_none(value) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise BadInput("boolean score")
    if isinstance(value, int):
        if abs(value) > DB_INT_MAX:
            raise BadInput("out of range")
        return value
    if not isinstance(value, str) or not _INTEGER.fullmatch(value.strip()):
        raise BadInput("not an integer")
    return int(value.strip())


def _revision(value) -> int:
    revision = _int_or_none(value)
    if revision is None or revision < 0:
        raise BadInput("revision")
    return revision


def _text(value) -> str:
    """Text as sent; absent is empty. Anything else (a number, a list, an object) is not
    text and is refused rather than stored as empty."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadInput("not text")
    return value


def from_form(view: RubricView, form) -> SheetInput:
    """The sheet from a posted form: ``score-<id>``, ``comment-<id>``, ``recommendations``,
    ``confirmed`` and ``revision``."""
    return SheetInput(
        revision=_revision(form.get("revision")),
        scores={c.id: _int_or_none(form.get(f"score-{c.id}")) for c in view.criteria},
        comments={c.id: _text(form.get(f"comment-{c.id}", "")) for c in view.criteria},
        recommendations=_text(form.get("recommendations", "")),
        confirmed=form.get("confirmed") in ("y", "on", "1", "true"),
    )


def from_json(view: RubricView, payload) -> SheetInput:
    """The sheet from the autosave's JSON: ``{"revision", "scores", "comments",
    "recommendations", "confirmed"}``."""
    if not isinstance(payload, dict):
        raise BadInput("not an object")
    scores = payload.get("scores")
    comments = payload.get("comments")
    scores = {} if scores is None else scores
    comments = {} if comments is None else comments
    if not isinstance(scores, dict) or not isinstance(comments, dict):
        raise BadInput("scores and comments are objects")
    return SheetInput(
        revision=_revision(payload.get("revision")),
        scores={c.id: _int_or_none(scores.get(c.id)) for c in view.criteria},
        comments={c.id: _text(comments.get(c.id, "")) for c in view.criteria},
        recommendations=_text(payload.get("recommendations", "")),
        confirmed=payload.get("confirmed") is True,
    )


class ReopenForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason for reopening"),
        validators=[
            DataRequired(message=_l("A reason is required for this action.")),
            Length(max=2000),
        ],
    )
