"""Reconciling disagreements and deciding: what happens after the experts' sheets are in.

* :func:`settle_review` runs after every sheet submission (``scoring.services``): once all
  sheets of the review are in, the divergence rules are applied; a review that does not
  diverge gets its final result and goes to ``awaiting_decision``; one that diverges goes to
  ``reconciliation`` and, by the rubric's ``resolution``, gets a third expert or opens a
  discussion. When the third expert's sheet is in, the final result is computed with the
  rubric's ``final_score`` and the review goes to ``awaiting_decision``.
* :func:`revise_scores`: during a discussion an expert changes their own scores, each change
  with a reason and kept as a :class:`ScoreRevision`; when the sheets no longer diverge the
  review is settled by agreement. :func:`close_expired_discussions` sends a review still
  divergent at the deadline to a third expert.
* :func:`resolve_review`: a coordinator settles a reconciliation directly, choosing the
  counted sheets and writing a justification.

The coordinator's decision, the review lock and reopening belong to the review case
(:mod:`review_portal.reviews.services`), its labelled sheets and expert numbers to
:mod:`review_portal.reviews.queries`. The numbers come from
:mod:`review_portal.reconciliation.rules` only. Services lock the review row, flush and
audit; the caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, select

from review_portal.accounts.models import User
from review_portal.assignment.models import Assignment
from review_portal.audit.services import record_event
from review_portal.db import utcnow
from review_portal.enums import (
    AssignmentRole,
    AssignmentStatus,
    NotificationKind,
    Resolution,
    RevisionKind,
    SheetStatus,
)
from review_portal.extensions import db
from review_portal.i18n import in_language_of, quote
from review_portal.notifications.services import notify, tell
from review_portal.permissions import authorize, authorize_staff_on
from review_portal.reconciliation import rules
from review_portal.reconciliation.permissions import is_discussion_member
from review_portal.reviews.models import Review
from review_portal.reviews.queries import (
    LabelledSheet,
    fixed_scores_of,
    review_sheets,
    rubric_of,
    scope_of,
    wanted_experts,
)
from review_portal.reviews.services import MAX_TEXT, ReviewError, lock_review
from review_portal.scoring.compute import rubric_view
from review_portal.scoring.models import Score, ScoreRevision
from review_portal.scoring.services import after_submission
from review_portal.scoring.summary import refresh_review
from review_portal.settings.services import get_setting
from review_portal.urls import public_url, site_path
from review_portal.workflow import ReviewState, advance

OPEN_STATUSES = (AssignmentStatus.OFFERED, AssignmentStatus.ACCEPTED)


class ReconciliationError(ReviewError):
    """An operation refused for a reason the user should read."""


def current_divergence(review: Review, sheets: list[LabelledSheet] | None = None):
    """The divergence rules applied to the initial sheets as they are now."""
    sheets = review_sheets(review) if sheets is None else sheets
    initial = [s for s in sheets if s.submitted and s.role == AssignmentRole.INITIAL]
    return rules.check_divergence(
        rubric_of(review), [s.scores for s in initial], fixed_scores_of(review)
    )


# --- settling -------------------------------------------------------------------------------


def settle_review(review: Review) -> None:
    """Called after a sheet of ``review`` is submitted (in the same transaction).

    Does nothing until every live assignment is completed and the review has all the
    experts it needs. Then, in ``in_review``: the divergence check on the initial sheets
    (outcome and fired rules stored), and either the final result (``awaiting_decision``)
    or ``reconciliation`` with a third expert or a discussion. In ``reconciliation`` with a
    third expert: the final result of all sheets by the rubric's ``final_score``.
    """
    review = lock_review(review)
    if review.state not in (ReviewState.IN_REVIEW, ReviewState.RECONCILIATION):
        return
    sheets = review_sheets(review, fresh=True)
    if any(not s.submitted for s in sheets) or len(sheets) < wanted_experts(review):
        return
    rubric = rubric_of(review)
    if review.state == ReviewState.IN_REVIEW:
        initial = [s for s in sheets if s.role == AssignmentRole.INITIAL]
        outcome = rules.check_divergence(
            rubric, [s.scores for s in initial], fixed_scores_of(review)
        )
        review.divergent = outcome.divergent
        review.divergence_rules = list(outcome.fired)
        record_event(
            "review.divergence_check",
            object_type="review",
            object_id=review.id,
            after={"divergent": outcome.divergent, "rules": list(outcome.fired)},
        )
        if not outcome.divergent:
            _finalize(review, initial, None)
            advance(review, ReviewState.AWAITING_DECISION, None)
            return
        advance(review, ReviewState.RECONCILIATION, None)
        if review.extra_experts:
            # Reopened after a third expert was asked for: their sheet is already in.
            _settle_by_third_expert(review, sheets)
        elif rules.divergence_rules(rubric).resolution == "discussion" and (
            review.discussion_deadline is None
        ):
            start_discussion(review, initial)
        elif review.discussion_deadline is not None and review.discussion_deadline > utcnow():
            # Reopened during a discussion that is still open: it goes on.
            pass
        else:
            request_third_expert(review)
        return
    if review.extra_experts:
        _settle_by_third_expert(review, sheets)


def _settle_by_third_expert(review: Review, sheets: list[LabelledSheet]) -> None:
    _finalize(review, sheets, None)
    _mark_resolved(review, Resolution.THIRD_EXPERT, None, None)
    advance(review, ReviewState.AWAITING_DECISION, None)


def _finalize(review: Review, sheets: list[LabelledSheet], method: str | None) -> None:
    """Compute and store the final result of ``sheets`` and the decision it leads to."""
    result = rules.final_result(
        rubric_of(review),
        [s.scores for s in sheets],
        method,
        fixed_scores_of(review),
        main_kind=review.version.requested_registry_kind.value,
    )
    stored = result.as_json([s.label for s in sheets])
    stored["counted_assignments"] = [sheets[i].assignment.id for i in result.counted]
    review.final_result = stored
    review.computed_decision = result.decision
    record_event(
        "review.final_result",
        object_type="review",
        object_id=review.id,
        after=stored,
    )


def _mark_resolved(review: Review, how: Resolution, actor: User | None, note: str | None):
    review.resolution = how
    review.resolution_note = note
    review.resolved_at = utcnow()
    review.resolved_by_id = actor.id if actor is not None else None


def request_third_expert(review: Review) -> list[Assignment]:
    """Ask for one more expert on a divergent review and assign one at once when an eligible
    expert exists (same rules and balancing as every assignment). Returns the assignments
    made; when none is possible the coordinators are told at once (and reminded daily) and
    see the review in the list of programs waiting for an expert."""
    from review_portal.assignment.services import fill_vacancy

    if not review.extra_experts:
        review.extra_experts = 1
        db.session.flush()
        record_event(
            "review.third_expert_requested",
            object_type="review",
            object_id=review.id,
            after={"extra_experts": 1},
        )
    return fill_vacancy(review, actor=None)


# --- discussion -----------------------------------------------------------------------------


def discussion_deadline(start: datetime | None = None) -> datetime:
    """The end (23:59:59 local time) of the N-th working day after ``start``."""
    from review_portal.settings.calendar import center_calendar

    zone = ZoneInfo(get_setting("timezone"))
    today = (start or utcnow()).astimezone(zone).date()
    last = center_calendar().add_working_days(today, get_setting("discussion_working_days"))
    return datetime.combine(last, time(23, 59, 59), tzinfo=zone).astimezone(ZoneInfo("UTC"))


def is_discussion_open(review: Review, now: datetime | None = None) -> bool:
    return (
        review.state == ReviewState.RECONCILIATION
        and review.discussion_deadline is not None
        and not review.extra_experts
        and (now or utcnow()) <= review.discussion_deadline
    )


def start_discussion(review: Review, initial: list[LabelledSheet]) -> None:
    review.discussion_deadline = discussion_deadline()
    record_event(
        "review.discussion_start",
        object_type="review",
        object_id=review.id,
        after={"deadline": review.discussion_deadline},
    )
    zone = ZoneInfo(get_setting("timezone"))
    until = review.discussion_deadline.astimezone(zone).strftime("%d.%m.%Y")
    title = review.program.title
    for item in initial:
        text = _l(
            "The experts' scores for %(title)s diverge. Please read the other expert's sheet "
            "and revise your scores if you agree, by %(date)s.",
            title=quote(title),
            date=until,
        )
        expert = item.assignment.expert
        with in_language_of(expert):
            tell(
                expert,
                NotificationKind.DISCUSSIONS,
                text,
                link=site_path("discussion.page", assignment_id=item.assignment.id),
                subject=_l("Discussion of divergent scores: %(title)s", title=title),
                body=f"{text}\n\n{public_url('discussion.page', assignment_id=item.assignment.id)}",
            )


@dataclass
class ScoreChange:
    value: int | None
    comment: str
    reason: str


def revise_scores(assignment: Assignment, actor: User, changes: dict[str, ScoreChange]) -> bool:
    """An expert revises their own submitted scores during an open discussion.

    ``changes`` holds the criteria the expert touched; a criterion whose score and comment
    are unchanged is ignored. Every real change needs a reason, a score on the scale and,
    below ``comment_required_below``, a comment; all problems are reported at once
    (:class:`RevisionInvalid`) and nothing is changed then. Each change is kept as a
    :class:`ScoreRevision`. Returns True when the review is settled by agreement.
    """
    authorize(is_discussion_member(actor, assignment))
    review = lock_review(assignment.review)
    if not is_discussion_open(review):
        raise ReconciliationError(_l("The discussion of this review is closed."))
    sheet = assignment.sheet
    if (
        assignment.role != AssignmentRole.INITIAL
        or sheet is None
        or sheet.status != SheetStatus.SUBMITTED
    ):
        raise ReconciliationError(_l("Only the experts of the discussion may revise scores."))
    view = rubric_view(rubric_of(review))
    by_id = {s.criterion_id: s for s in sheet.scores}
    errors: dict[str, object] = {}
    real: dict[str, tuple[Score, ScoreChange]] = {}
    # An appeal panel revises the criteria it scores, never the kept ones.
    scope = scope_of(review)
    for criterion in view.criteria:
        change = changes.get(criterion.id)
        score = by_id.get(criterion.id)
        if change is None or score is None:
            continue
        if scope is not None and criterion.id not in scope:
            errors[criterion.id] = _l(
                "This criterion is not contested: the panel does not score it."
            )
            continue
        # Browsers post line breaks as CRLF; the stored comment has LF.
        comment = (change.comment or "").replace("\r\n", "\n").strip()
        if change.value == score.value and comment == score.comment:
            continue
        reason = (change.reason or "").strip()
        if change.value is None or not (view.scale_min <= change.value <= view.scale_max):
            errors[criterion.id] = _l(
                "Choose a score from %(low)s to %(high)s.", low=view.scale_min, high=view.scale_max
            )
        elif (
            view.comment_required_below is not None
            and change.value < view.comment_required_below
            and not comment
        ):
            errors[criterion.id] = _l(
                "A score below %(n)s needs a comment.", n=view.comment_required_below
            )
        elif not reason:
            errors[criterion.id] = _l("Give the reason for this change.")
        elif len(reason) > MAX_TEXT or len(comment) > MAX_TEXT:
            errors[criterion.id] = _l("The text is too long.")
        else:
            real[criterion.id] = (score, ScoreChange(change.value, comment, reason))
    if errors:
        raise RevisionInvalid(errors)
    if not real:
        raise ReconciliationError(_l("Nothing was changed."))
    audit = {}
    for criterion_id, (score, change) in real.items():
        sheet.revisions.append(
            ScoreRevision(
                criterion_id=criterion_id,
                kind=RevisionKind.DISCUSSION,
                old_value=score.value,
                new_value=change.value,
                old_comment=score.comment if change.comment != score.comment else None,
                new_comment=change.comment if change.comment != score.comment else None,
                reason=change.reason,
            )
        )
        audit[criterion_id] = {"from": score.value, "to": change.value, "reason": change.reason}
        score.value = change.value
        score.comment = change.comment
    sheet.revision += 1
    db.session.flush()
    refresh_review(review)
    record_event(
        "sheet.revise",
        actor=actor,
        object_type="score_sheet",
        object_id=sheet.id,
        after={"changes": audit},
    )
    sheets = review_sheets(review, fresh=True)
    me = next(s.label for s in sheets if s.assignment.id == assignment.id)
    for other in sheets:
        if other.assignment.id != assignment.id and other.role == AssignmentRole.INITIAL:
            notify(
                other.assignment.expert,
                _l(
                    "Expert %(n)s revised their scores for %(title)s.",
                    n=me,
                    title=quote(review.program.title),
                ),
                site_path("discussion.page", assignment_id=other.assignment.id),
                kind=NotificationKind.DISCUSSIONS,
            )
    initial = [s for s in sheets if s.role == AssignmentRole.INITIAL]
    outcome = rules.check_divergence(
        rubric_of(review), [s.scores for s in initial], fixed_scores_of(review)
    )
    if outcome.divergent:
        return False
    _finalize(review, initial, None)
    _mark_resolved(review, Resolution.AGREEMENT, None, None)
    advance(review, ReviewState.AWAITING_DECISION, None)
    return True


class RevisionInvalid(ReconciliationError):
    """Field errors: ``{criterion id: message}``."""

    def __init__(self, errors: dict[str, object]):
        super().__init__(_l("Please correct the marked fields."))
        self.errors = errors


def _discussion_expired(now: datetime):
    """The condition "the review's discussion is open and its deadline has passed"."""
    return and_(
        Review.state == ReviewState.RECONCILIATION,
        Review.discussion_deadline.is_not(None),
        Review.discussion_deadline < now,
        Review.extra_experts == 0,
    )


def expired_discussions_exist(now: datetime | None = None) -> bool:
    """Whether :func:`close_expired_discussions` has a review to handle (one indexed read;
    the hourly job makes no job row, and no audit record, without one)."""
    found = db.session.execute(
        select(Review.id).where(_discussion_expired(now or utcnow())).limit(1)
    ).first()
    return found is not None


def close_expired_discussions(now: datetime | None = None) -> list[Review]:
    """Send every review whose discussion deadline has passed to a third expert (it is still
    divergent: agreement settles a review at once). Returns the reviews handled."""
    now = now or utcnow()
    due = (
        db.session.execute(select(Review).where(_discussion_expired(now)).order_by(Review.id))
        .scalars()
        .all()
    )
    handled = []
    for review in due:
        review = lock_review(review)
        if review.state != ReviewState.RECONCILIATION or review.extra_experts:
            continue
        record_event(
            "review.discussion_closed",
            object_type="review",
            object_id=review.id,
            after={"deadline": review.discussion_deadline},
        )
        request_third_expert(review)
        handled.append(review)
    return handled


# --- the coordinator ------------------------------------------------------------------------


def resolve_review(
    review: Review, actor: User, justification: str, counted_assignment_ids: list[int]
) -> Review:
    """A coordinator settles a reconciliation: the final scores are the mean of the sheets
    they chose, the justification is required and stored; open third-expert offers are
    withdrawn. The review goes to ``awaiting_decision``."""
    authorize_staff_on(actor, review)
    review = lock_review(review)
    justification = (justification or "").strip()
    if review.state != ReviewState.RECONCILIATION:
        raise ReconciliationError(_l("This review is not in reconciliation."))
    if not justification:
        raise ReconciliationError(_l("A written justification is required."))
    if len(justification) > MAX_TEXT:
        raise ReconciliationError(_l("The text is too long."))
    sheets = review_sheets(review, fresh=True)
    chosen = [s for s in sheets if s.submitted and s.assignment.id in set(counted_assignment_ids)]
    if not chosen or len(chosen) != len(set(counted_assignment_ids)):
        raise ReconciliationError(_l("Choose the submitted sheets to count."))
    for item in sheets:
        if item.assignment.status in OPEN_STATUSES:
            item.assignment.status = AssignmentStatus.WITHDRAWN
            item.assignment.decline_reason = str(_l("Resolved by the coordinator"))
            record_event(
                "assignment.remove",
                actor=actor,
                object_type="assignment",
                object_id=item.assignment.id,
                after={"status": "withdrawn", "reason": "resolved by the coordinator"},
            )
            notify(
                item.assignment.expert,
                _l("Your assignment is no longer needed: the coordinator has resolved it."),
                kind=NotificationKind.ASSIGNMENTS,
            )
    _finalize(review, chosen, rules.MEAN)
    _mark_resolved(review, Resolution.COORDINATOR, actor, justification)
    advance(review, ReviewState.AWAITING_DECISION, actor, reason=justification)
    return review


def close_discussions_job(job_id: int) -> None:
    """Job handler (``close_discussions``, scheduled hourly): discussions past their deadline
    go to a third expert, in one transaction with the job's count."""
    from review_portal.jobs.services import finish_counted

    handled = close_expired_discussions()
    finish_counted(job_id, total=len(handled), done=len(handled))


after_submission(settle_review)
