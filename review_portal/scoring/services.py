"""Score sheet operations: saving a draft (form or autosave), submitting, reopening.

Every save names the sheet revision it was loaded with; the revision is checked and bumped
in one conditional UPDATE, so a save from a stale page (a second tab, a late autosave) is
refused and never overwrites newer work. Submitting and reopening refresh the review's
agreement sums (:func:`review_portal.scoring.summary.refresh_review`). Services flush and
audit; the caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from review_portal.assignment.models import Assignment
from review_portal.audit.services import record_event
from review_portal.db import utcnow
from review_portal.enums import AssignmentStatus, NotificationKind, SheetStatus
from review_portal.errors import DomainError
from review_portal.extensions import db
from review_portal.i18n import in_language_of, quote
from review_portal.notifications.services import tell
from review_portal.permissions import authorize, authorize_staff_on
from review_portal.reviews.queries import fixed_scores_of, rubric_of, scope_of
from review_portal.scoring.compute import (
    CENT,
    RubricView,
    SheetTotal,
    percent_of,
    rubric_view,
    sheet_total,
)
from review_portal.scoring.models import Score, ScoreRevision, ScoreSheet
from review_portal.scoring.permissions import is_own_assignment
from review_portal.scoring.summary import refresh_review

#: Longest comment / recommendations text accepted (characters).
MAX_TEXT = 10_000


class SheetError(DomainError):
    """A sheet operation refused for a reason the user should read."""


class StaleSheet(SheetError):
    """The save was made from an older revision than the stored one."""


class SheetLocked(SheetError):
    """The sheet is submitted; only a coordinator's reopen unlocks it."""


class SheetInvalid(SheetError):
    """Field errors: ``{criterion id | "recommendations" | "confirmation": message}``."""

    def __init__(self, errors: dict[str, object]):
        super().__init__(_l("Please correct the marked fields."))
        self.errors = errors


class SubmissionRefused(SheetInvalid):
    """The draft is saved (and kept) but does not meet what a submitted sheet requires."""


@dataclass
class SheetInput:
    """What the expert sends: the whole form, whichever way it arrives."""

    revision: int
    scores: dict[str, int | None] = field(default_factory=dict)
    comments: dict[str, str] = field(default_factory=dict)
    recommendations: str = ""
    confirmed: bool = False


def sheet_state(sheet: ScoreSheet | None) -> dict:
    """The sheet as JSON (what a stale page is offered instead of its own data)."""
    if sheet is None:
        return {
            "revision": 0,
            "status": SheetStatus.DRAFT.value,
            "scores": {},
            "comments": {},
            "recommendations": "",
            "confirmed": False,
            "saved_at": None,
        }
    return {
        "revision": sheet.revision,
        "status": sheet.status.value,
        "scores": {s.criterion_id: s.value for s in sheet.scores},
        "comments": {s.criterion_id: s.comment for s in sheet.scores},
        "recommendations": sheet.recommendations,
        "confirmed": sheet.no_conflict_confirmed,
        "saved_at": sheet.saved_at.isoformat() if sheet.saved_at else None,
    }


def totals_of(rubric, sheet: ScoreSheet | None, fixed=None) -> SheetTotal:
    """The sheet's totals; ``fixed`` (an appeal panel scoring the contested criteria only:
    the appealed final scores of the others, as fractions) counts those criteria too."""
    values = {s.criterion_id: s.value for s in sheet.scores} if sheet is not None else {}
    totals = sheet_total(rubric, values)
    if not fixed:
        return totals
    view = rubric_view(rubric)
    weighted = dict(totals.weighted)
    for criterion in view.criteria:
        if criterion.id in fixed:
            value = fixed[criterion.id]
            weighted[criterion.id] = (
                criterion.weight * Decimal(value.numerator) / Decimal(value.denominator)
            )
    total = sum(weighted.values(), Decimal(0)).quantize(CENT, rounding=ROUND_HALF_UP)
    return SheetTotal(
        total=total,
        max_total=totals.max_total,
        percent=percent_of(total, totals.max_total),
        weighted=weighted,
        missing=tuple(c for c in totals.missing if c not in fixed),
    )


def check_draft_input(view: RubricView, data: SheetInput) -> dict[str, object]:
    """Errors a draft may not be saved with: a score outside the scale, overlong text."""
    errors: dict[str, object] = {}
    for criterion in view.criteria:
        value = data.scores.get(criterion.id)
        if value is not None and not (view.scale_min <= value <= view.scale_max):
            errors[criterion.id] = _l(
                "Choose a score from %(low)s to %(high)s.", low=view.scale_min, high=view.scale_max
            )
        elif len(data.comments.get(criterion.id, "")) > MAX_TEXT:
            errors[criterion.id] = _l("The comment is too long.")
    if len(data.recommendations) > MAX_TEXT:
        errors["recommendations"] = _l("The text is too long.")
    return errors


def submit_errors(
    rubric, sheet: ScoreSheet | None, scope: frozenset[str] | None = None
) -> dict[str, object]:
    """Everything a submitted sheet requires (docs/design/rules.md), all problems at once.
    ``scope``: the criteria an appeal panel scores (``None``: all)."""
    view = rubric_view(rubric)
    by_id = {s.criterion_id: s for s in sheet.scores} if sheet is not None else {}
    errors: dict[str, object] = {}
    for criterion in view.criteria:
        if scope is not None and criterion.id not in scope:
            continue
        score = by_id.get(criterion.id)
        value = score.value if score is not None else None
        if value is None:
            errors[criterion.id] = _l("Score this criterion.")
        elif not (view.scale_min <= value <= view.scale_max):
            errors[criterion.id] = _l(
                "Choose a score from %(low)s to %(high)s.", low=view.scale_min, high=view.scale_max
            )
        elif (
            view.comment_required_below is not None
            and value < view.comment_required_below
            and not score.comment.strip()
        ):
            errors[criterion.id] = _l(
                "A score below %(n)s needs a comment.", n=view.comment_required_below
            )
    if sheet is None or not sheet.recommendations.strip():
        errors["recommendations"] = _l("Write your overall recommendations.")
    if sheet is None or not sheet.no_conflict_confirmed:
        errors["confirmation"] = _l("Confirm that you have no conflict of interest.")
    return errors


def _sheet_for(assignment: Assignment) -> ScoreSheet:
    """The assignment's sheet, created (revision 0) on its first save.

    Two first saves at the same moment (the sheet open in two tabs) both find no sheet; the
    second INSERT waits for the first transaction and then breaks the one-sheet-per-
    assignment constraint. Only its savepoint is undone and the sheet just committed is
    read instead, so the revision check refuses that save as stale (409), as it refuses any
    other save from an older revision, instead of the request failing.
    """
    query = select(ScoreSheet).where(ScoreSheet.assignment_id == assignment.id)
    sheet = db.session.execute(query).scalar_one_or_none()
    if sheet is None:
        try:
            with db.session.begin_nested():
                sheet = ScoreSheet(assignment=assignment, revision=0, status=SheetStatus.DRAFT)
                db.session.add(sheet)
                db.session.flush()
        except IntegrityError:
            sheet = db.session.execute(query).scalar_one()
    return sheet


def save_sheet(assignment: Assignment, actor, data: SheetInput) -> ScoreSheet:
    """Store the whole draft and bump the revision by one.

    Raises :class:`SheetLocked` when the sheet is submitted, :class:`StaleSheet` when
    ``data.revision`` is not the stored revision (nothing is changed then), and
    :class:`SheetInvalid` for a score outside the scale. After a reopen, every changed
    score is kept as a :class:`ScoreRevision` with the reopen reason.
    """
    authorize(is_own_assignment(actor, assignment))
    rubric = rubric_of(assignment.review)
    view = rubric_view(rubric)
    existing = assignment.sheet
    if existing is not None and existing.status == SheetStatus.SUBMITTED:
        raise SheetLocked(_l("This score sheet is submitted and can no longer be changed."))
    if assignment.status != AssignmentStatus.ACCEPTED:
        raise SheetLocked(_l("This assignment is no longer open."))
    if data.revision != (existing.revision if existing is not None else 0):
        raise StaleSheet(_l("A newer version of this score sheet exists."))
    errors = check_draft_input(view, data)
    if errors:
        raise SheetInvalid(errors)

    sheet = existing if existing is not None else _sheet_for(assignment)
    now = utcnow()
    # The check and the bump are one statement: of two saves from the same revision, one wins.
    bumped = db.session.execute(
        sa.update(ScoreSheet)
        .where(
            ScoreSheet.id == sheet.id,
            ScoreSheet.revision == data.revision,
            ScoreSheet.status == SheetStatus.DRAFT,
        )
        .values(
            revision=data.revision + 1,
            saved_at=now,
            recommendations=data.recommendations.strip(),
            no_conflict_confirmed=bool(data.confirmed),
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if bumped != 1:
        # Another transaction saved first: the page is answered with the stored version.
        db.session.refresh(sheet)
        db.session.expire(assignment, ["sheet"])
        raise StaleSheet(_l("A newer version of this score sheet exists."))
    # What the UPDATE stored, without reading the row again: it matched the revision this
    # request read, and every change of a sheet bumps the revision, so the rest of the row
    # is as read (the scores too).
    for name, value in (
        ("revision", data.revision + 1),
        ("saved_at", now),
        ("recommendations", data.recommendations.strip()),
        ("no_conflict_confirmed", bool(data.confirmed)),
    ):
        set_committed_value(sheet, name, value)

    by_id = {s.criterion_id: s for s in sheet.scores}
    scope = scope_of(assignment.review)
    for criterion in view.criteria:
        value = data.scores.get(criterion.id)
        comment = (data.comments.get(criterion.id) or "").strip()
        if scope is not None and criterion.id not in scope:
            # An appeal panel scores the contested criteria only; the others are not its.
            value, comment = None, ""
        score = by_id.get(criterion.id)
        if score is None:
            score = Score(criterion_id=criterion.id, value=None, comment="")
            sheet.scores.append(score)
        if sheet.reopened_at is not None and score.value != value:
            sheet.revisions.append(
                ScoreRevision(
                    criterion_id=criterion.id,
                    old_value=score.value,
                    new_value=value,
                    reason=sheet.reopen_reason or "",
                )
            )
        score.value = value
        score.comment = comment
    db.session.flush()
    return sheet


def save_and_submit_sheet(assignment: Assignment, actor, data: SheetInput) -> ScoreSheet:
    """Save the draft, then submit it (the form's "submit" button).

    The draft is saved in a savepoint. A submission refused for missing or invalid fields
    keeps the draft (the savepoint is released) and raises :class:`SubmissionRefused`, so the
    caller's commit keeps it. Any other refusal (:class:`SheetLocked`: the assignment was
    withdrawn meanwhile; :class:`StaleSheet`, :class:`SheetInvalid` from the draft itself)
    rolls the savepoint back: nothing of the request is kept.
    """
    refused: SheetInvalid | None = None
    with db.session.begin_nested():
        sheet = save_sheet(assignment, actor, data)
        try:
            submit_sheet(assignment, actor)
        except SheetInvalid as error:
            refused = error
    if refused is not None:
        raise SubmissionRefused(refused.errors) from refused
    return sheet


def submit_sheet(assignment: Assignment, actor, expected_revision: int | None = None) -> ScoreSheet:
    """Lock the (already saved) sheet after checking it; the assignment becomes completed.

    Raises :class:`SheetInvalid` with every problem at once; nothing changes then.
    ``expected_revision``: the revision the expert confirmed (the confirmation page shows
    that draft); :class:`StaleSheet` when the sheet was saved again since.
    """
    from review_portal.reviews.services import lock_review

    # The review's row lock before the sheet and the assignment change: the services that
    # change a review's assignments (settling, resolving, deciding) take it first too, so
    # a submission racing one of them waits for it instead of deadlocking, and then reads
    # what it did (a coordinator may have withdrawn this assignment meanwhile).
    db.session.flush()
    lock_review(assignment.review)
    db.session.refresh(assignment)
    authorize(is_own_assignment(actor, assignment))
    sheet = assignment.sheet
    if sheet is not None:
        db.session.refresh(sheet)
    if assignment.status != AssignmentStatus.ACCEPTED:
        raise SheetLocked(_l("This assignment is no longer open."))
    if sheet is not None and sheet.status == SheetStatus.SUBMITTED:
        raise SheetLocked(_l("This score sheet is submitted and can no longer be changed."))
    if expected_revision is not None and expected_revision != (sheet.revision if sheet else 0):
        raise StaleSheet(_l("A newer version of this score sheet exists."))
    rubric = rubric_of(assignment.review)
    errors = submit_errors(rubric, sheet, scope_of(assignment.review))
    if errors:
        raise SheetInvalid(errors)
    totals = totals_of(rubric, sheet, fixed_scores_of(assignment.review))
    sheet.status = SheetStatus.SUBMITTED
    sheet.submitted_at = utcnow()
    sheet.revision += 1
    assignment.status = AssignmentStatus.COMPLETED
    db.session.flush()
    refresh_review(assignment.review)
    record_event(
        "sheet.submit",
        actor=actor,
        object_type="score_sheet",
        object_id=sheet.id,
        before={"status": "draft", "assignment_status": "accepted"},
        after={
            "status": "submitted",
            "assignment_status": "completed",
            "scores": {s.criterion_id: s.value for s in sheet.scores},
            "total": totals.total,
            "percent": totals.percent,
        },
    )
    on_sheet_submitted(sheet)
    return sheet


#: What runs after every submission, in the same transaction, with the sheet's review:
#: :mod:`review_portal.reconciliation.services` registers its ``settle_review`` here (it
#: sits above scoring and imports it, so scoring does not import it back).
_submission_handlers: list = []


def after_submission(handler) -> None:
    """Register ``handler(review)`` to run after every submission."""
    if handler not in _submission_handlers:
        _submission_handlers.append(handler)


def on_sheet_submitted(sheet: ScoreSheet) -> None:
    """After every submission (same transaction): once all sheets are in, the review is
    checked for divergence and moves on (:func:`reconciliation.services.settle_review`,
    registered through :func:`after_submission`)."""
    if not _submission_handlers:
        raise RuntimeError("no submission handler: import review_portal.reconciliation.services")
    for handler in _submission_handlers:
        handler(sheet.assignment.review)


def reopen_sheet(sheet: ScoreSheet, actor, reason: str) -> ScoreSheet:
    """A coordinator unlocks a submitted sheet (reason required, audited); the expert is
    told in the portal and by e-mail, and the assignment is open (accepted) again."""
    from review_portal.urls import public_url, site_path

    authorize_staff_on(actor, sheet.assignment.review)
    reason = (reason or "").strip()
    if not reason:
        raise SheetError(_l("A reason is required for this action."))
    if sheet.status != SheetStatus.SUBMITTED:
        raise SheetError(_l("Only a submitted score sheet can be reopened."))
    from review_portal.reviews.services import ReviewError, reset_review_for_reopen

    assignment = sheet.assignment
    # A settled or reconciling review goes back to expertise; its outcome is recomputed.
    try:
        reset_review_for_reopen(assignment.review, actor, reason)
    except ReviewError as error:
        raise SheetError(error.message) from error
    sheet.status = SheetStatus.DRAFT
    sheet.reopened_at = utcnow()
    sheet.reopen_reason = reason
    sheet.revision += 1
    assignment.status = AssignmentStatus.ACCEPTED
    db.session.flush()
    refresh_review(assignment.review)
    record_event(
        "sheet.reopen",
        actor=actor,
        object_type="score_sheet",
        object_id=sheet.id,
        before={"status": "submitted", "assignment_status": "completed"},
        after={"status": "draft", "assignment_status": "accepted", "reason": reason},
    )
    link = site_path("scoring.sheet", assignment_id=assignment.id)
    title = assignment.review.program.title
    text = _l(
        "Your score sheet for %(title)s was reopened by the coordinator: %(reason)s\n\n"
        "Revise your scores and submit the sheet again.",
        title=quote(title),
        reason=reason,
    )
    expert = assignment.expert
    with in_language_of(expert):
        tell(
            expert,
            NotificationKind.ASSIGNMENTS,
            text,
            link=link,
            subject=_l("Score sheet reopened: %(title)s", title=title),
            body=f"{text}\n\n{public_url('scoring.sheet', assignment_id=assignment.id)}",
        )
    return sheet


def submitted_sheets(expert_id: int) -> list[ScoreSheet]:
    """The expert's submitted sheets, newest first, with their programs (one query)."""
    from sqlalchemy.orm import joinedload

    from review_portal.reviews.models import Review

    return list(
        db.session.execute(
            select(ScoreSheet)
            .join(Assignment, ScoreSheet.assignment_id == Assignment.id)
            .where(Assignment.expert_id == expert_id, ScoreSheet.status == SheetStatus.SUBMITTED)
            .options(
                joinedload(ScoreSheet.assignment)
                .joinedload(Assignment.review)
                .joinedload(Review.program)
            )
            .order_by(ScoreSheet.submitted_at.desc(), ScoreSheet.id.desc())
        ).scalars()
    )
