"""Reading an expert's revised scores from the discussion form.

The form has, for each criterion, ``score-<id>`` (radios on the rubric's scale),
``comment-<id>`` and ``reason-<id>``. It gives the
:class:`~review_portal.reconciliation.services.ScoreChange` per criterion that
:func:`~review_portal.reconciliation.services.revise_scores` takes; the rules (what needs a
reason, a comment, which scores are allowed) stay in the service.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from review_portal.reconciliation.services import ScoreChange
from review_portal.scoring.compute import RubricView


class BadInput(ValueError):
    """The request is not a discussion form (a score that is not a whole number)."""


def _int_or_none(value) -> int | None:
    if value is None or str(value).strip() == "":
        return None
    try:
        return int(str(value).strip())
    except ValueError as error:
        raise BadInput(str(error)) from error


def _lines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


@dataclass
class RevisionInput:
    """The posted form: the changes for the service and the raw values to show again."""

    changes: dict[str, ScoreChange] = field(default_factory=dict)
    scores: dict[str, int | None] = field(default_factory=dict)
    comments: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)


def revision_from_form(
    view: RubricView, form, current_comments: Mapping[str, str]
) -> RevisionInput:
    """The criteria present in the form, each as a :class:`ScoreChange`.

    A browser sends a textarea's line breaks as CRLF whatever they were when stored (an
    autosave stores LF), so a comment equal to the stored one but for its line breaks is
    passed on as the stored text: an untouched comment is not a change that needs a reason.
    """
    data = RevisionInput()
    for criterion in view.criteria:
        cid = criterion.id
        names = (f"score-{cid}", f"comment-{cid}", f"reason-{cid}")
        if not any(name in form for name in names):
            continue
        value = _int_or_none(form.get(f"score-{cid}"))
        comment = str(form.get(f"comment-{cid}", ""))
        reason = str(form.get(f"reason-{cid}", ""))
        stored = current_comments.get(cid) or ""
        if _lines(comment).strip() == _lines(stored).strip():
            comment = stored
        data.scores[cid] = value
        data.comments[cid] = comment
        data.reasons[cid] = reason
        data.changes[cid] = ScoreChange(value=value, comment=comment, reason=reason)
    return data
